"""What differs between the languages our LanguageRuntime host runs: how a program starts.

``language.LanguageHost`` serves the engine's LanguageRuntime protocol once; a
:class:`ProgramRuntime` turns the engine's ``Run`` request into a process to start
(``python_runtime``, ``nodejs_runtime``, ``go_runtime``). The engine passes every program the
same facts (monitor and engine addresses, project, stack, organization, root directory,
parallelism, dry run, stack configuration); :func:`run_flags` and :func:`config_environment`
render them once for the runtimes that take flags (Python's ``run_program.py``, Node.js's
``@pulumi/pulumi/cmd/run``), :func:`go_environment` for the Go SDK, which reads ``PULUMI_*``
variables (``sdk/go/pulumi/run.go``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from google.protobuf import json_format  # type: ignore[import-untyped]
from pulumi.runtime.proto import language_pb2

SHOWN_TO_USER_EXIT_CODE = 32
"""Exit code of a program whose error the SDK already reported to the engine (all three SDKs)."""


class LaunchError(Exception):
    """The program cannot be started; the message says what is missing and what to do."""


@dataclass(frozen=True)
class Launch:
    """A program process to start."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    scratch: Path | None = None
    """A directory of the launch's own (e.g. a built program), removed when the program ends."""


class ProgramRuntime(Protocol):
    """One language's way of running a Pulumi program."""

    name: str
    """The language as Pulumi names it (``runtime:`` of ``Pulumi.yaml``)."""

    def plugin_version(self) -> str:
        """The version the host reports as its own (``GetPluginInfo``)."""
        ...

    def launch(
        self, request: language_pb2.RunRequest, engine_address: str, environ: Mapping[str, str]
    ) -> Launch:
        """The process that runs the requested program.

        Raises:
            LaunchError: A toolchain or the project's dependencies are missing.
        """
        ...

    def about(self, info: language_pb2.ProgramInfo, environ: Mapping[str, str]) -> tuple[str, str]:
        """The executable that runs programs and its version.

        Raises:
            LaunchError: The executable cannot be found.
        """
        ...

    def dependencies(
        self, info: language_pb2.ProgramInfo, environ: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        """(name, version) of the packages the program can use.

        Raises:
            LaunchError: They cannot be listed.
        """
        ...


def command_output(argv: Sequence[str]) -> str:
    """The stripped stdout of a short command (a version query), whatever its exit status."""
    return subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout.strip()


class ToolRuntime:
    """Base of the runtimes whose programs start with one toolchain executable on PATH.

    Subclasses set ``name``, ``tool`` (the executable), ``install_hint``, ``version_argv``
    (arguments printing its version, after ``version_prefix``) and implement ``launch``.
    """

    name = ""
    tool = ""
    install_hint = ""
    version_argv: tuple[str, ...] = ("--version",)
    version_prefix = ""

    def executable(self, environ: Mapping[str, str]) -> str:
        """The tool on the host's PATH.

        Raises:
            LaunchError: It is not there; the message says what to install.
        """
        found = shutil.which(self.tool, path=environ.get("PATH"))
        if found is None:
            raise LaunchError(f"`{self.tool}` is not on PATH; install {self.install_hint}")
        return found

    def plugin_version(self) -> str:
        """This host's own version (the SDK's version is the project's affair)."""
        return metadata.version("dicom-transfer-pulumi-host")

    def about(self, info: language_pb2.ProgramInfo, environ: Mapping[str, str]) -> tuple[str, str]:
        """The tool and its version."""
        tool = self.executable(environ)
        return tool, command_output([tool, *self.version_argv]).removeprefix(self.version_prefix)

    def dependencies(
        self, info: language_pb2.ProgramInfo, environ: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        """None listed (the project's own tool lists them: ``npm ls``, ``go list -m all``)."""
        return []


def runtime_options(info: language_pb2.ProgramInfo) -> dict[str, Any]:
    """The ``runtime.options`` of ``Pulumi.yaml`` as the engine sends them."""
    return json_format.MessageToDict(info.options) if info.HasField("options") else {}


def program_directory(request: language_pb2.RunRequest) -> Path:
    """The directory holding the program (``main:`` of ``Pulumi.yaml`` applied)."""
    return Path(request.info.program_directory or request.pwd or os.getcwd())


def root_directory(request: language_pb2.RunRequest) -> Path:
    """The directory holding ``Pulumi.yaml``."""
    return Path(request.info.root_directory or program_directory(request))


def run_flags(request: language_pb2.RunRequest, engine_address: str) -> list[str]:
    """The command-line flags Pulumi's program runners take (``--monitor`` ... ``--dry-run``).

    Args:
        request: The engine's ``Run`` request.
        engine_address: The engine's gRPC address.

    Returns:
        The flags, without the program path.
    """
    flags = [
        "--monitor",
        request.monitor_address,
        "--engine",
        engine_address,
        "--project",
        request.project,
        "--stack",
        request.stack,
        "--organization",
        request.organization or "organization",
        "--root-directory",
        str(root_directory(request)),
        "--parallel",
        str(request.parallel),
    ]
    if request.dryRun:
        flags.append("--dry-run")
    return flags


def config_environment(request: language_pb2.RunRequest) -> dict[str, str]:
    """The stack configuration as the SDKs read it (``PULUMI_CONFIG``, JSON)."""
    return {
        "PULUMI_CONFIG": json.dumps(dict(request.config)),
        "PULUMI_CONFIG_SECRET_KEYS": json.dumps(list(request.configSecretKeys)),
    }


def go_environment(request: language_pb2.RunRequest, engine_address: str) -> dict[str, str]:
    """The variables the Go SDK's ``pulumi.Run`` reads instead of flags (``sdk/go/pulumi/run.go``).

    Args:
        request: The engine's ``Run`` request.
        engine_address: The engine's gRPC address.

    Returns:
        ``PULUMI_MONITOR`` ... ``PULUMI_DRY_RUN`` and the configuration.
    """
    return {
        "PULUMI_MONITOR": request.monitor_address,
        "PULUMI_ENGINE": engine_address,
        "PULUMI_PROJECT": request.project,
        "PULUMI_STACK": request.stack,
        "PULUMI_ORGANIZATION": request.organization or "organization",
        "PULUMI_ROOT_DIRECTORY": str(root_directory(request)),
        "PULUMI_PARALLEL": str(request.parallel),
        "PULUMI_DRY_RUN": "true" if request.dryRun else "false",
        **config_environment(request),
    }
