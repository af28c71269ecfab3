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

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"
TYPESCRIPT_EXAMPLE = REPO / "examples" / "typescript"
GO_EXAMPLE = REPO / "examples" / "go"
NODE_MODULES = TYPESCRIPT_EXAMPLE / "node_modules"


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
    """Copy a project (without its ``node_modules``) to ``target``.

    Args:
        source: The project directory.
        target: Where the copy goes (must not exist).
        node_modules: Link ``target/node_modules`` to the TypeScript example's installed one.

    Returns:
        ``target``.
    """
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules", "bin"))
    if node_modules:
        (target / "node_modules").symlink_to(require_node_modules(), target_is_directory=True)
    return target


def go_module_copy(source: Path, target: Path) -> Path:
    """Copy a Go program whose ``go.mod`` replaces the SDK by ``../../sdk/go``, keeping it built.

    The replace path is rewritten to the checkout's ``sdk/go`` so the copy builds anywhere.
    """
    require_tool("go")
    copy_project(source, target)
    go_mod = target / "go.mod"
    go_mod.write_text(go_mod.read_text().replace("=> ../../sdk/go", f"=> {REPO / 'sdk' / 'go'}"))
    return target


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
