"""Node.js and Go projects for end-to-end tests: copied into a temporary directory, with the
dependencies `make` installs (tools listed in the failure when missing).

``make sdk-deps`` installs what these projects need on a fresh machine: the TypeScript example's
``node_modules`` (``npm ci`` from its lock file, with the Node.js SDK built by ``tsc``) and the Go
modules of the Go programs (the Go module proxy). A test that finds them missing fails saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from support.e2e.dicom_stack import IMPORT_PATH, SeededEmulator
from support.e2e.native_stack import NativeStack, native_stack
from support.e2e.pulumi_cli import REPO

PROGRAMS = REPO / "tests" / "e2e" / "programs"
TYPESCRIPT_EXAMPLE = REPO / "examples" / "typescript"
GO_EXAMPLE = REPO / "examples" / "go"
NODE_MODULES = TYPESCRIPT_EXAMPLE / "node_modules"
EXPORT_PATH = r"/dicomStores/[^/]+:export$"


def transfer_posts(emulator: SeededEmulator) -> tuple[int, int]:
    """(imports, exports) the emulator was asked to start: one POST is one operation."""
    return (
        len(emulator.requests("POST", IMPORT_PATH)),
        len(emulator.requests("POST", EXPORT_PATH)),
    )


def require_tool(name: str) -> str:
    """The path of ``name`` on PATH; fail the test saying how to get it."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not on PATH; this test needs it (Node.js 20+ / Go 1.25+)", pytrace=False
        )
    return found


def require_node_modules() -> Path:
    """The TypeScript example's installed ``node_modules``; fail saying to run ``make sdk-deps``."""
    require_tool("node")
    if not (NODE_MODULES / "@dicom-transfer" / "dicomtransfer" / "index.js").is_file():
        pytest.fail(
            f"{NODE_MODULES} lacks @pulumi/pulumi or the built SDK; run `make sdk-deps` first",
            pytrace=False,
        )
    return NODE_MODULES


def copy_project(source: Path, target: Path, *, node_modules: bool = False) -> Path:
    """Copy a project to ``target``, without its ``node_modules`` and stack files.

    Args:
        source: The project directory.
        target: Where the copy goes (created, or merged into).
        node_modules: Link ``target/node_modules`` to the TypeScript example's installed one.

    Returns:
        ``target``.
    """
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns("node_modules", "bin", "Pulumi.*.yaml", ".built"),
        dirs_exist_ok=True,
    )
    if node_modules:
        (target / "node_modules").symlink_to(require_node_modules(), target_is_directory=True)
    return target


def go_module_copy(source: Path, target: Path) -> Path:
    """Copy a Go program; a ``go.mod`` replace of the SDK by ``../../sdk/go`` (the examples')
    is rewritten to the checkout's ``sdk/go`` so that the copy builds anywhere.
    """
    require_tool("go")
    copy_project(source, target)
    go_mod = target / "go.mod"
    go_mod.write_text(go_mod.read_text().replace("=> ../../sdk/go", f"=> {REPO / 'sdk' / 'go'}"))
    return target


def local_stack_config(example: Path) -> dict[str, str]:
    """The ``local`` stack's config of an example, keys without the project prefix."""
    project = yaml.safe_load((example / "Pulumi.yaml").read_text())["name"]
    config = yaml.safe_load((example / "Pulumi.local.yaml").read_text())["config"]
    return {key.removeprefix(f"{project}:"): value for key, value in config.items()}


def example_stack(
    example: Path,
    root: Path,
    emulator: SeededEmulator,
    config: dict[str, str],
    *,
    node_modules: bool = False,
) -> NativeStack:
    """An example copied into ``root`` with a stack ``local`` on the native provider, configured.

    ``native_stack`` points the provider at the emulator; ``config`` gives the emulator's store
    and buckets for exactly the keys of the example's ``Pulumi.local.yaml`` (checked, so the
    committed stack file and the test cannot drift apart).
    """
    assert set(config) == set(local_stack_config(example)), (
        f"{example.name}/Pulumi.local.yaml sets other keys than the test configures"
    )
    stack = native_stack(root, emulator, program=(example / "Pulumi.yaml").read_text())
    if (example / "go.mod").exists():
        go_module_copy(example, stack.cli.project_dir)
    else:
        copy_project(example, stack.cli.project_dir, node_modules=node_modules)
    stack.configure(**config)
    return stack


def run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command and return it (text output), whatever its exit status."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
