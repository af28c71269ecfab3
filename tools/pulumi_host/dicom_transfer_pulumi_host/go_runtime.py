"""Go programs: ``go build`` of the program's module, then the binary under ``PULUMI_*`` variables.

Pulumi's ``pulumi-language-go`` does the same (the Go SDK's ``pulumi.Run`` reads the engine's
facts from the environment, ``runtimes.go_environment``). The ``binary`` runtime option names a
prebuilt program instead. The build uses the project's ``go.mod``/``go.sum`` and the machine's
module and build caches; its output is shown to the user like the program's.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pulumi.runtime.proto import language_pb2

from dicom_transfer_pulumi_host.runtimes import (
    Launch,
    LaunchError,
    ToolRuntime,
    go_environment,
    program_directory,
    root_directory,
    runtime_options,
)


def build_program(go: str, program_dir: Path, output: Path, environ: Mapping[str, str]) -> None:
    """``go build -trimpath -o OUTPUT .`` in the program's directory.

    ``-trimpath`` as in the CLI's build (tools/pulumi_host/install-pulumi-cli.sh): the packages
    both use (the Go SDK, gRPC, ...) come from Go's build cache instead of compiling again.

    Args:
        go: The ``go`` executable.
        program_dir: Directory of the program's ``main`` package.
        output: The executable to write.
        environ: The build's environment.

    Raises:
        LaunchError: The build failed (its errors were shown on stderr).
    """
    build = subprocess.run(
        [go, "build", "-trimpath", "-o", str(output), "."],
        cwd=program_dir,
        env=dict(environ),
        check=False,
    )
    if build.returncode != 0:
        raise LaunchError(
            f"`go build` in {program_dir} failed (exit {build.returncode}), see above"
        )


class GoRuntime(ToolRuntime):
    """Builds and runs Go programs."""

    name = "go"
    tool = "go"
    install_hint = "Go (1.25 or newer)"
    version_argv = ("env", "GOVERSION")
    version_prefix = "go"

    def launch(
        self, request: language_pb2.RunRequest, engine_address: str, environ: Mapping[str, str]
    ) -> Launch:
        """Build the program (unless ``binary`` names one) and run it (see ``ProgramRuntime``)."""
        program_dir = program_directory(request)
        binary = runtime_options(request.info).get("binary")
        scratch = None
        if isinstance(binary, str) and binary:
            executable = root_directory(request) / binary
            if not executable.is_file():
                raise LaunchError(
                    f"the `binary` runtime option names {executable}, which does not exist"
                )
        else:
            scratch = Path(tempfile.mkdtemp(prefix="pulumi-go-program-"))
            executable = scratch / "program"
            try:
                build_program(self.executable(environ), program_dir, executable, environ)
            except LaunchError:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
        cwd = Path(request.pwd) if request.pwd else program_dir
        env = {**environ, **go_environment(request, engine_address)}
        return Launch([str(executable), *request.args], cwd, env, scratch=scratch)
