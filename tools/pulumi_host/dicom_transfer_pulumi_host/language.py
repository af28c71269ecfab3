"""A minimal Pulumi language plugin: the engine's LanguageRuntime service for our offline runs.

Pulumi's own language hosts are Go programs that cannot be built here, so the shims in
``tools/pulumi_host/plugins`` (``pulumi-language-python``, ``-nodejs``, ``-go``) run
``python -u -m dicom_transfer_pulumi_host.language [--runtime LANGUAGE] ARGS``; what differs
between the languages (how a program starts) is a ``runtimes.ProgramRuntime``.

Protocol (as the engine drives it): the engine starts the plugin in the program directory with
optional logging/tracing flags followed by its own gRPC address as the last argument, reads one
line holding the port the plugin listens on from its stdout, and then calls
``GetRequiredPackages`` and ``Run``. Everything the plugin and its children write to stdout
and stderr after the port line is shown to the user as info messages. To shut the plugin down
the engine sends SIGINT (later SIGKILL) to the plugin's process group; if the engine itself is
killed, the plugin exits within a second of being orphaned.

``Run`` starts the runtime's program process. Not supported: ``RunPlugin`` (plugins and policy
packs written in these languages), code generation, ``pulumi new`` templates, debugger
attachment; ``InstallDependencies`` installs nothing; ``GetRequiredPackages`` reports no
packages, so provider plugins are loaded only when a resource of their package is registered.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

from dicom_transfer_pulumi_host.go_runtime import GoRuntime
from dicom_transfer_pulumi_host.nodejs_runtime import NodejsRuntime
from dicom_transfer_pulumi_host.python_runtime import PythonRuntime
from dicom_transfer_pulumi_host.runtimes import (
    SHOWN_TO_USER_EXIT_CODE,
    LaunchError,
    ProgramRuntime,
)

RUNTIMES: dict[str, Callable[[], ProgramRuntime]] = {
    "python": PythonRuntime,
    "nodejs": NodejsRuntime,
    "go": GoRuntime,
}
"""The languages this host runs, by their ``runtime:`` name in ``Pulumi.yaml``."""


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    """LanguageRuntime service that runs programs of one language in child processes.

    Args:
        engine_address: The engine's gRPC address passed on the command line.
        environ: Environment the programs inherit.
        runtime: How programs of the language start (default: Python).
    """

    def __init__(
        self,
        engine_address: str,
        environ: Mapping[str, str],
        runtime: ProgramRuntime | None = None,
    ) -> None:
        self._runtime: ProgramRuntime = runtime if runtime is not None else PythonRuntime()
        self._engine_address = engine_address
        self._environ = dict(environ)
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def Handshake(
        self, request: language_pb2.LanguageHandshakeRequest, context: Any
    ) -> language_pb2.LanguageHandshakeResponse:
        """Record the engine address when the engine attaches instead of launching us."""
        if request.engine_address:
            self._engine_address = request.engine_address
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: empty_pb2.Empty, context: Any) -> plugin_pb2.PluginInfo:
        """Report the runtime's version as this plugin's version."""
        return plugin_pb2.PluginInfo(version=self._runtime.plugin_version())

    def GetRequiredPlugins(
        self, request: language_pb2.GetRequiredPluginsRequest, context: Any
    ) -> language_pb2.GetRequiredPluginsResponse:
        """Report no plugins: they are loaded when a resource of their package is registered."""
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(
        self, request: language_pb2.GetRequiredPackagesRequest, context: Any
    ) -> language_pb2.GetRequiredPackagesResponse:
        """Report no packages (see ``GetRequiredPlugins``)."""
        return language_pb2.GetRequiredPackagesResponse()

    def InstallDependencies(
        self, request: language_pb2.InstallDependenciesRequest, context: Any
    ) -> Iterator[language_pb2.InstallDependenciesResponse]:
        """Install nothing: the project's dependencies are managed by its own set-up."""
        yield from ()

    def About(self, request: language_pb2.AboutRequest, context: Any) -> language_pb2.AboutResponse:
        """Describe the executable that would run the program."""
        try:
            executable, version = self._runtime.about(request.info, self._environ)
        except LaunchError as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
            raise  # abort raises; this keeps type checkers informed
        return language_pb2.AboutResponse(executable=executable, version=version)

    def GetProgramDependencies(
        self, request: language_pb2.GetProgramDependenciesRequest, context: Any
    ) -> language_pb2.GetProgramDependenciesResponse:
        """List the packages the program can use, as far as the runtime tells."""
        try:
            listed = self._runtime.dependencies(request.info, self._environ)
        except LaunchError as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
            raise
        return language_pb2.GetProgramDependenciesResponse(
            dependencies=[
                language_pb2.DependencyInfo(name=name, version=version) for name, version in listed
            ]
        )

    def Run(self, request: language_pb2.RunRequest, context: Any) -> language_pb2.RunResponse:
        """Run the program in a child process and translate its exit status."""
        try:
            launch = self._runtime.launch(request, self._engine_address, self._environ)
        except LaunchError as error:
            return language_pb2.RunResponse(error=str(error))
        try:
            return self._run(launch.argv, launch.cwd, launch.env)
        finally:
            if launch.scratch is not None:
                shutil.rmtree(launch.scratch, ignore_errors=True)

    def _run(self, command: list[str], cwd: Path, env: dict[str, str]) -> language_pb2.RunResponse:
        try:
            # stdout/stderr are inherited: the engine shows them as the program's messages.
            child = subprocess.Popen(command, cwd=cwd, env=env)
        except OSError as error:
            return language_pb2.RunResponse(error=f"could not start {command[0]}: {error}")
        with self._lock:
            self._children.add(child)
        try:
            code = child.wait()
        finally:
            with self._lock:
                self._children.discard(child)
        if code == 0:
            return language_pb2.RunResponse()
        if code == SHOWN_TO_USER_EXIT_CODE:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {code}")

    def Cancel(self, request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:
        """Acknowledge shutdown; running programs end with the engine's resource monitor."""
        return empty_pb2.Empty()

    def stop_children(self) -> None:
        """Terminate programs still running (the host is being shut down)."""
        with self._lock:
            children = list(self._children)
        for child in children:
            if child.poll() is None:
                child.terminate()


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pulumi-language-host", add_help=False)
    parser.add_argument("--runtime", choices=sorted(RUNTIMES), default="python")
    parser.add_argument("--tracing")
    parser.add_argument("--logtostderr", action="store_true")
    parser.add_argument("--logflow", action="store_true")
    parser.add_argument("-v", dest="verbose")
    parser.add_argument("engine_address", nargs="?", default="")
    known, _unknown = parser.parse_known_args(argv)
    return known


def serve(argv: list[str], environ: Mapping[str, str]) -> int:
    """Start the service, print its port on stdout, and serve until SIGINT/SIGTERM.

    Args:
        argv: ``--runtime LANGUAGE`` (from our shim), then the engine's flags and its address.
        environ: Environment handed down to programs.

    Returns:
        The process exit code.
    """
    arguments = _arguments(argv)
    host = LanguageHost(str(arguments.engine_address), environ, RUNTIMES[arguments.runtime]())
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[
            ("grpc.max_receive_message_length", 400 * 1024 * 1024),
            ("grpc.max_send_message_length", 400 * 1024 * 1024),
        ],
    )
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(host, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # The engine runs plugins in their own process group, so if it is killed outright nothing
    # signals us: notice being orphaned instead of lingering forever.
    parent = os.getppid()
    while not stopping.wait(timeout=1.0):
        if os.getppid() != parent:
            break
    host.stop_children()
    server.stop(grace=1).wait()
    return 0


def main(argv: list[str]) -> int:
    """Serve the LanguageRuntime service; see ``serve``.

    Args:
        argv: Arguments from the engine.

    Returns:
        The process exit code.
    """
    return serve(argv, os.environ)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
