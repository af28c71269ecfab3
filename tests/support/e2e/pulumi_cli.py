"""Drive the real Pulumi CLI offline from end-to-end tests.

The environment comes from ``tools/pulumi_host/pulumi-env.sh --format json``, exactly as a
Makefile gets it: the script locates or builds the CLI (``tools/pulumi_host/install-pulumi-cli.sh``)
and the test fails with the script's own message when no CLI can be had. ``PulumiCli`` runs
commands in one project directory against a private state directory (file backend,
``PULUMI_HOME``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dicom_transfer_pulumi_host.environment import checkout_environment

REPO = Path(__file__).resolve().parents[3]


def offline_env(state_dir: Path) -> dict[str, str]:
    """Full environment for ``pulumi`` with state under ``state_dir``; fail the test if no CLI.

    Args:
        state_dir: Private directory for the file backend and ``PULUMI_HOME``.

    Returns:
        ``os.environ`` plus the offline settings.
    """
    try:
        return checkout_environment(REPO, state_dir=state_dir, python=Path(sys.executable))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@dataclass
class PulumiCli:
    """The ``pulumi`` command bound to one project directory and one private state directory."""

    project_dir: Path
    state_dir: Path
    python_path: Sequence[Path] = ()
    """Directories put on PYTHONPATH of the program and of the dynamic-provider process."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    _env: dict[str, str] | None = field(default=None, init=False, repr=False)

    def env(self) -> dict[str, str]:
        """The full environment of every ``pulumi`` command (computed once)."""
        if self._env is None:
            self._env = offline_env(self.state_dir)
        env = dict(self._env)
        if self.python_path:
            env["PYTHONPATH"] = os.pathsep.join(str(path) for path in self.python_path)
        env.update(self.extra_env)
        return env

    def argv(self, *args: str) -> list[str]:
        """The command line of ``pulumi ARGS``, non-interactive and without colours."""
        return ["pulumi", *args, "--non-interactive", "--color", "never"]

    def start(self, *args: str, output: Path) -> subprocess.Popen[bytes]:
        """Start ``pulumi ARGS`` in a process group of its own, its output going to ``output``.

        The caller can signal the whole group (CLI, language host, provider processes) with
        ``os.killpg(process.pid, ...)``, as a terminal does on Ctrl-C or a CI runner on a kill.

        Args:
            *args: Arguments after ``pulumi``.
            output: File receiving stdout and stderr (truncated first).

        Returns:
            The running process.
        """
        with output.open("wb") as sink:
            return subprocess.Popen(
                self.argv(*args),
                cwd=self.project_dir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``pulumi ARGS`` non-interactively; fail the test with its output if it fails.

        Args:
            *args: Arguments after ``pulumi``.
            check: Fail the test on a non-zero exit.

        Returns:
            The completed process (text stdout and stderr).
        """
        result = subprocess.run(
            self.argv(*args),
            cwd=self.project_dir,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`pulumi {' '.join(args)}` exited {result.returncode}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}",
                pytrace=False,
            )
        return result

    def stack_outputs(self) -> dict[str, Any]:
        """``pulumi stack output --json --show-secrets`` as a dict."""
        outputs: dict[str, Any] = json.loads(
            self.run("stack", "output", "--json", "--show-secrets").stdout
        )
        return outputs

    def export(self) -> dict[str, Any]:
        """``pulumi stack export`` as a dict."""
        state: dict[str, Any] = json.loads(self.run("stack", "export").stdout)
        return state
