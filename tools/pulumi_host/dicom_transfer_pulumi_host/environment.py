"""The environment under which the Pulumi CLI runs fully offline.

``python -m dicom_transfer_pulumi_host.environment --cli-dir DIR --state-dir DIR`` prints
``export`` lines for a shell (``--format json`` prints one JSON object instead); the
``tools/pulumi_host/pulumi-env.sh`` wrapper fills in the arguments. Tests call
``offline_environment``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

DEFAULT_PASSPHRASE = "dicom-transfer-local"
"""Passphrase of the local stacks' secrets provider; guards nothing of value (emulator only)."""

DEFAULT_PARALLEL = 64
"""``PULUMI_PARALLEL`` unless set: resource operations the engine runs at once."""


def offline_environment(
    *,
    cli_dir: Path,
    state_dir: Path,
    python: Path,
    plugins_dir: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the variables to set so that ``pulumi`` works without network access.

    Args:
        cli_dir: Directory holding the ``pulumi`` executable (and, for our build, the shims).
        state_dir: Directory for the file backend (``backend/``) and ``PULUMI_HOME`` (``home/``).
        python: Interpreter that runs our language host and, by default, the programs.
        plugins_dir: Directory with fallback plugin shims, searched after ``cli_dir``.
        base: Current environment (defaults to ``os.environ``); its PATH is extended and an
            existing ``PULUMI_CONFIG_PASSPHRASE``/``_FILE`` or ``PULUMI_PARALLEL`` is kept.

    Returns:
        Only the variables that change, ``PATH`` included.
    """
    environ = os.environ if base is None else base
    state_dir = state_dir.absolute()
    path = [str(cli_dir.absolute())]
    if plugins_dir is not None:
        path.append(str(plugins_dir.absolute()))
    path += [entry for entry in environ.get("PATH", "").split(os.pathsep) if entry]
    variables = {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "PULUMI_HOME": str(state_dir / "home"),
        "PULUMI_BACKEND_URL": (state_dir / "backend").as_uri(),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "DICOM_TRANSFER_PYTHON": str(python),
    }
    has_passphrase = any(
        environ.get(name) for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
    )
    if not has_passphrase:
        variables["PULUMI_CONFIG_PASSPHRASE"] = DEFAULT_PASSPHRASE
    if not environ.get("PULUMI_PARALLEL"):
        # The engine's default (4 x CPUs) would run transfers, which mostly wait, in waves.
        variables["PULUMI_PARALLEL"] = str(DEFAULT_PARALLEL)
    return variables


BACKEND_SETTINGS = ("PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE")
"""Ambient settings that would send the CLI to a real backend or change the secrets provider."""


def checkout_environment(
    checkout: Path,
    *,
    state_dir: Path | None = None,
    python: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of ``pulumi`` commands run from a checkout of this project.

    Runs ``tools/pulumi_host/pulumi-env.sh --format json`` (which finds or builds the CLI) for
    tools in the checkout: the demo, the end-to-end tests, the benchmarks.

    Args:
        checkout: The repository root.
        state_dir: The file backend's directory (default: the script's, ``.pulumi-state`` in
            the current directory).
        python: Interpreter of the language host and programs (default: the checkout's venv).
        base: The environment to start from (default ``os.environ``), minus
            :data:`BACKEND_SETTINGS`.

    Returns:
        ``base`` with the offline variables applied.

    Raises:
        RuntimeError: The script could not provide a CLI; carries its message.
    """
    environ = os.environ if base is None else base
    env = {name: value for name, value in environ.items() if name not in BACKEND_SETTINGS}
    if state_dir is not None:
        env["DICOM_TRANSFER_PULUMI_STATE"] = str(state_dir)
    if python is not None:
        env["DICOM_TRANSFER_PYTHON"] = str(python)
    script = checkout / "tools" / "pulumi_host" / "pulumi-env.sh"
    result = subprocess.run(
        [str(script), "--format", "json"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{script.name} could not provide a Pulumi CLI (exit {result.returncode}):\n"
            f"{result.stderr.strip()}"
        )
    variables: dict[str, str] = json.loads(result.stdout)
    return {**env, **variables}


def prepare_state_dir(state_dir: Path) -> None:
    """Create the backend and home directories (the file backend requires them to exist).

    Args:
        state_dir: The ``state_dir`` given to ``offline_environment``.
    """
    (state_dir / "backend").mkdir(parents=True, exist_ok=True)
    (state_dir / "home").mkdir(parents=True, exist_ok=True)


def render(variables: Mapping[str, str], fmt: str) -> str:
    """Render variables as shell ``export`` lines or as a JSON object.

    Args:
        variables: Names and values.
        fmt: ``"shell"`` or ``"json"``.

    Returns:
        The text to print.
    """
    if fmt == "json":
        return json.dumps(dict(variables), indent=2, sort_keys=True)
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items())


def main(argv: list[str] | None = None) -> int:
    """Print the offline environment; see the module docstring.

    Args:
        argv: Arguments (defaults to ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cli-dir", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--plugins-dir", type=Path)
    parser.add_argument("--python", type=Path, default=Path(sys.executable))
    parser.add_argument("--format", choices=["shell", "json"], default="shell")
    args = parser.parse_args(argv)
    prepare_state_dir(args.state_dir.absolute())
    variables = offline_environment(
        cli_dir=args.cli_dir,
        state_dir=args.state_dir,
        python=args.python,
        plugins_dir=args.plugins_dir,
    )
    print(render(variables, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
