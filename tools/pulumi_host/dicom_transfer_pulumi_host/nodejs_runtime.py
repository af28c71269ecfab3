"""Node.js programs: ``node node_modules/@pulumi/pulumi/cmd/run`` of the project's own SDK.

Pulumi's ``pulumi-language-nodejs`` does the same: the ``@pulumi/pulumi`` package carries the
program runner (``cmd/run``: it takes the flags of ``runtimes.run_flags`` and ``--pwd``, then
the program directory; TypeScript runs through ts-node when ``PULUMI_NODEJS_TYPESCRIPT`` is
``true``, the ``typescript`` runtime option's default). The project installs its dependencies
itself (``npm ci``); this host installs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pulumi.runtime.proto import language_pb2

from dicom_transfer_pulumi_host.runtimes import (
    Launch,
    LaunchError,
    ToolRuntime,
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


class NodejsRuntime(ToolRuntime):
    """Runs Node.js (JavaScript or TypeScript) programs with the project's ``@pulumi/pulumi``."""

    name = "nodejs"
    tool = "node"
    install_hint = "Node.js (20 or newer)"
    version_prefix = "v"

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
            self.executable(environ),
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
