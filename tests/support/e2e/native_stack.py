"""Projects on the native provider ``dicomtransfer``, driven by the real CLI against the emulator.

The engine finds the plugin ``pulumi-resource-dicomtransfer`` (the console script of this
checkout's virtualenv) on PATH, and the YAML language host beside the cached CLI
(``tools/pulumi_host/install-pulumi-yaml.sh`` builds it on first use; the test fails with the
script's message when it cannot).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.e2e.dicom_stack import PASSPHRASE, SeededEmulator
from support.e2e.pulumi_cli import REPO, PulumiCli, offline_env

EXAMPLE = REPO / "examples" / "yaml"
IMPORT_TYPE = "dicomtransfer:index:DicomImport"
EXPORT_TYPE = "dicomtransfer:index:DicomExport"


def yaml_host_dir() -> str:
    """The directory of ``pulumi-language-yaml`` (built on first use); fails the test if none."""
    script = REPO / "tools" / "pulumi_host" / "install-pulumi-yaml.sh"
    result = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"pulumi-language-yaml is missing:\n{result.stderr}", pytrace=False)
    return result.stdout.strip()


@dataclass
class NativeStack:
    """One project directory with one initialised stack on the native provider."""

    cli: PulumiCli
    emulator: SeededEmulator

    def configure(self, **values: str | int | float) -> None:
        """Sets plaintext stack config."""
        pairs = [f"--plaintext={key}={value}" for key, value in values.items()]
        self.cli.run("config", "set-all", *pairs)

    def resources(self, type_: str) -> list[dict[str, Any]]:
        """The resources of type ``type_`` in the stack's state."""
        deployment = self.cli.export()["deployment"]
        return [r for r in deployment.get("resources") or [] if r["type"] == type_]

    def events(self, path: Path) -> list[dict[str, Any]]:
        """The engine events of an ``--event-log`` file."""
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def native_stack(
    root: Path,
    emulator: SeededEmulator,
    *,
    program: str | None = None,
    main_py: str | None = None,
    stack: str = "local",
) -> NativeStack:
    """Writes a project (``examples/yaml`` or ``program``, a Pulumi.yaml, with ``main_py`` as
    its ``__main__.py`` for a Python program) and inits ``stack``."""
    project = root / "project"
    project.mkdir(parents=True)
    if program is None:
        shutil.copy(EXAMPLE / "Pulumi.yaml", project / "Pulumi.yaml")
    else:
        (project / "Pulumi.yaml").write_text(program)
    if main_py is not None:
        (project / "__main__.py").write_text(main_py)
    state = root / "state"
    path = os.pathsep.join(
        [yaml_host_dir(), str(Path(sys.executable).parent), offline_env(state)["PATH"]]
    )
    cli = PulumiCli(
        project_dir=project,
        state_dir=state,
        extra_env={
            "PATH": path,
            "HEALTHCARE_EMULATOR_HOST": emulator.healthcare_url,
            "STORAGE_EMULATOR_HOST": emulator.storage_url,
            "DICOM_TRANSFER_STATE_DIR": str(root / "journal"),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            # Registers the engine's `--event-log FILE` flag (hidden otherwise).
            "PULUMI_DEBUG_COMMANDS": "true",
        },
    )
    cli.run("stack", "init", stack)
    return NativeStack(cli, emulator)
