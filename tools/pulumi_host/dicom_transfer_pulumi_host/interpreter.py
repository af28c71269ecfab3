"""Choose the Python interpreter that runs a Pulumi project's program.

The order mirrors Pulumi's own Python language host, with one project-specific fallback:

1. the ``virtualenv`` runtime option of ``Pulumi.yaml`` (relative to the project root);
2. the active virtualenv (``VIRTUAL_ENV``);
3. ``DICOM_TRANSFER_PYTHON`` (set by ``tools/pulumi_host/pulumi-env.sh`` to the repository's
   ``.venv``);
4. the interpreter running the language host itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class InterpreterNotFound(Exception):
    """The configured virtualenv has no ``bin/python``."""


@dataclass(frozen=True)
class Interpreter:
    """A Python executable and the virtualenv it belongs to, if any."""

    python: Path
    """Executable to run."""
    virtualenv: Path | None
    """Virtualenv directory whose ``bin`` goes first on the program's PATH."""

    def program_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """Return ``base`` adjusted so that child processes see this virtualenv as active.

        Args:
            base: Environment to start from (usually ``os.environ``).

        Returns:
            A new environment mapping.
        """
        env = dict(base)
        if self.virtualenv is not None:
            env["VIRTUAL_ENV"] = str(self.virtualenv)
            env["PATH"] = os.pathsep.join(
                [str(self.virtualenv / "bin"), *filter(None, [env.get("PATH")])]
            )
            env.pop("PYTHONHOME", None)
        return env


def _venv_python(venv: Path, origin: str) -> Interpreter:
    python = venv / "bin" / "python"
    if not python.exists():
        raise InterpreterNotFound(
            f"{origin} points at {venv}, which has no bin/python; create it with "
            f"`python3 -m venv {venv}` and install the project's dependencies into it"
        )
    return Interpreter(python=python, virtualenv=venv)


def find_interpreter(
    root_directory: Path,
    options: Mapping[str, object],
    environ: Mapping[str, str],
) -> Interpreter:
    """Find the interpreter for a program.

    Args:
        root_directory: Directory holding ``Pulumi.yaml``.
        options: The ``runtime.options`` of ``Pulumi.yaml`` as sent by the engine.
        environ: Environment of the language host.

    Returns:
        The interpreter to use.

    Raises:
        InterpreterNotFound: A configured virtualenv does not exist.
    """
    configured = options.get("virtualenv")
    if isinstance(configured, str) and configured:
        return _venv_python(root_directory / configured, "Pulumi.yaml runtime option `virtualenv`")
    active = environ.get("VIRTUAL_ENV")
    if active:
        return _venv_python(Path(active), "VIRTUAL_ENV")
    pinned = environ.get("DICOM_TRANSFER_PYTHON")
    if pinned:
        python = Path(pinned)
        venv = python.parent.parent
        is_venv = (venv / "pyvenv.cfg").exists()
        return Interpreter(python=python, virtualenv=venv if is_venv else None)
    return Interpreter(python=Path(sys.executable), virtualenv=None)
