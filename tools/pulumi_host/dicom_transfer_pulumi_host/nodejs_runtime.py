"""Node.js programs: ``node node_modules/@pulumi/pulumi/cmd/run`` of the project's own SDK.

Pulumi's ``pulumi-language-nodejs`` does the same: the ``@pulumi/pulumi`` package carries the
program runner (``cmd/run``: it takes the flags of ``runtimes.run_flags`` and ``--pwd``, then
the program directory; TypeScript runs through ts-node when ``PULUMI_NODEJS_TYPESCRIPT`` is
``true``, the ``typescript`` runtime option's default). The project installs its dependencies
itself (``npm ci``); this host installs nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from pulumi.runtime.proto import language_pb2

from dicom_transfer_pulumi_host.runtimes import (
    Launch,
    LaunchError,
    config_environment,
    program_directory,
    run_flags,
    runtime_options,
)

RUNNER = Path("node_modules", "@pulumi", "pulumi", "cmd", "run")


def find_runner(program_dir: Path) -> Path:
    """The ``@pulumi/pulumi`` program runner Node.js would resolve from ``program_dir``.

    Args:
        program_dir: The program's directory.

    Returns:
        The runner's directory (``.../node_modules/@pulumi/pulumi/cmd/run``).

    Raises:
        LaunchError: No ``node_modules/@pulumi/pulumi`` in it or above it.
    """
    for directory in (program_dir.absolute(), *program_dir.absolute().parents):
        if (directory / RUNNER / "index.js").is_file():
            return directory / RUNNER
    raise LaunchError(
        f"no node_modules/@pulumi/pulumi in {program_dir} or above it; install the project's "
        f"dependencies first (`npm ci` in {program_dir})"
    )


def _node(environ: Mapping[str, str]) -> str:
    node = shutil.which("node", path=environ.get("PATH"))
    if node is None:
        raise LaunchError("`node` is not on PATH; install Node.js (20 or newer)")
    return node


class NodejsRuntime:
    """Runs Node.js (JavaScript or TypeScript) programs with the project's ``@pulumi/pulumi``."""

    name = "nodejs"

    def plugin_version(self) -> str:
        """This host's own version (the SDK's version is the project's affair)."""
        return metadata.version("dicom-transfer-pulumi-host")

    def launch(
        self, request: language_pb2.RunRequest, engine_address: str, environ: Mapping[str, str]
    ) -> Launch:
        """``node .../cmd/run FLAGS --pwd DIR PROGRAM ARGS`` (see ``ProgramRuntime.launch``)."""
        program_dir = program_directory(request)
        runner = find_runner(program_dir)
        options = runtime_options(request.info)
        entry = request.info.entry_point or request.program or "."
        cwd = Path(request.pwd) if request.pwd else program_dir
        argv = [
            _node(environ),
            str(runner),
            *run_flags(request, engine_address),
            "--pwd",
            str(cwd),
            str(program_dir / entry),
            *request.args,
        ]
        env = {**environ, **config_environment(request)}
        env["PULUMI_NODEJS_TYPESCRIPT"] = "true" if options.get("typescript", True) else "false"
        if isinstance(options.get("tsconfig"), str):
            env["PULUMI_NODEJS_TSCONFIG_PATH"] = options["tsconfig"]
        return Launch(argv, cwd, env)

    def about(self, info: language_pb2.ProgramInfo, environ: Mapping[str, str]) -> tuple[str, str]:
        """``node`` and its version."""
        node = _node(environ)
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        return node, version.removeprefix("v")

    def dependencies(
        self, info: language_pb2.ProgramInfo, environ: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        """None listed (``npm ls`` in the project shows them)."""
        return []
