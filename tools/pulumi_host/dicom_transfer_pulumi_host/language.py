"""A minimal ``pulumi-language-python`` plugin: the engine's LanguageRuntime service for Python.

Pulumi's own Python language host is a Go program that cannot be built here, so the
``pulumi-language-python`` shim runs ``python -u -m dicom_transfer_pulumi_host.language ARGS``.

Protocol (as the engine drives it): the engine starts the plugin in the program directory with
optional logging/tracing flags followed by its own gRPC address as the last argument, reads one
line holding the port the plugin listens on from its stdout, and then calls
``GetRequiredPackages`` and ``Run``. Everything the plugin and its children write to stdout
and stderr after the port line is shown to the user as info messages. To shut the plugin down
the engine sends SIGINT (later SIGKILL) to the plugin's process group; if the engine itself is
killed, the plugin exits within a second of being orphaned.

``Run`` executes ``run_program.py`` with the project's interpreter (see ``interpreter``) in a
child process. Not supported: ``RunPlugin`` (Python-based plugins and policy packs), code
generation, ``pulumi new`` templates, debugger attachment; ``InstallDependencies`` installs
nothing; ``GetRequiredPackages`` reports no packages, so provider plugins are loaded only
when a resource of their package is registered.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from concurrent import futures
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2, json_format  # type: ignore[import-untyped]
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

from dicom_transfer_pulumi_host.interpreter import (
    Interpreter,
    InterpreterNotFound,
    find_interpreter,
)

RUN_PROGRAM = Path(__file__).with_name("run_program.py")
SHOWN_TO_USER_EXIT_CODE = 32

_LIST_DISTRIBUTIONS = (
    "import json, importlib.metadata as m;"
    "print(json.dumps(sorted({(d.metadata['Name'], d.version) for d in m.distributions()"
    " if d.metadata['Name']})))"
)


def _options(info: language_pb2.ProgramInfo) -> dict[str, Any]:
    return json_format.MessageToDict(info.options) if info.HasField("options") else {}


def _interpreter(info: language_pb2.ProgramInfo, environ: Mapping[str, str]) -> Interpreter:
    root = Path(info.root_directory or info.program_directory or os.getcwd())
    return find_interpreter(root, _options(info), environ)


def program_command(
    request: language_pb2.RunRequest, interpreter: Interpreter, engine_address: str
) -> tuple[list[str], Path]:
    """Build the command line that runs the requested program, and its working directory.

    Args:
        request: The engine's ``Run`` request.
        interpreter: Python to run the program with.
        engine_address: The engine's gRPC address (the plugin's last argument).

    Returns:
        The argv list and the directory to run it in.
    """
    program_dir = Path(request.info.program_directory or request.pwd or os.getcwd())
    entry = request.info.entry_point or request.program or "."
    cwd = Path(request.pwd) if request.pwd else program_dir
    command = [
        str(interpreter.python),
        "-u",
        str(RUN_PROGRAM),
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
        request.info.root_directory or str(program_dir),
        "--parallel",
        str(request.parallel),
    ]
    if request.dryRun:
        command.append("--dry-run")
    command += [str(program_dir / entry), *request.args]
    return command, cwd


def program_environment(
    request: language_pb2.RunRequest, interpreter: Interpreter, base: Mapping[str, str]
) -> dict[str, str]:
    """Environment of the program process: the host's, the virtualenv, and the stack config.

    Args:
        request: The engine's ``Run`` request.
        interpreter: Python that runs the program.
        base: The host's environment.

    Returns:
        The environment mapping.
    """
    env = interpreter.program_env(base)
    env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
    env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    """LanguageRuntime service that runs Python programs in child processes.

    Args:
        engine_address: The engine's gRPC address passed on the command line.
        environ: Environment the programs inherit.
    """

    def __init__(self, engine_address: str, environ: Mapping[str, str]) -> None:
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
        """Report the installed ``pulumi`` SDK version as this plugin's version."""
        return plugin_pb2.PluginInfo(version=metadata.version("pulumi"))

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
        """Install nothing: the project's virtualenv is managed by its own set-up."""
        yield from ()

    def About(self, request: language_pb2.AboutRequest, context: Any) -> language_pb2.AboutResponse:
        """Describe the interpreter that would run the program."""
        interpreter = self._resolve(request.info, context)
        version = subprocess.run(
            [str(interpreter.python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return language_pb2.AboutResponse(executable=str(interpreter.python), version=version)

    def GetProgramDependencies(
        self, request: language_pb2.GetProgramDependenciesRequest, context: Any
    ) -> language_pb2.GetProgramDependenciesResponse:
        """List the distributions installed in the program's interpreter."""
        interpreter = self._resolve(request.info, context)
        listing = subprocess.run(
            [str(interpreter.python), "-c", _LIST_DISTRIBUTIONS],
            capture_output=True,
            text=True,
            check=False,
        )
        if listing.returncode != 0:
            context.abort(grpc.StatusCode.INTERNAL, listing.stderr.strip())
        return language_pb2.GetProgramDependenciesResponse(
            dependencies=[
                language_pb2.DependencyInfo(name=name, version=version)
                for name, version in json.loads(listing.stdout)
            ]
        )

    def Run(self, request: language_pb2.RunRequest, context: Any) -> language_pb2.RunResponse:
        """Run the program in a child process and translate its exit status."""
        try:
            interpreter = _interpreter(request.info, self._environ)
        except InterpreterNotFound as error:
            return language_pb2.RunResponse(error=str(error))
        command, cwd = program_command(request, interpreter, self._engine_address)
        env = program_environment(request, interpreter, self._environ)
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

    def _resolve(self, info: language_pb2.ProgramInfo, context: Any) -> Interpreter:
        try:
            return _interpreter(info, self._environ)
        except InterpreterNotFound as error:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
            raise  # abort raises; this keeps type checkers informed


def _engine_address(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(prog="pulumi-language-python", add_help=False)
    parser.add_argument("--tracing")
    parser.add_argument("--logtostderr", action="store_true")
    parser.add_argument("--logflow", action="store_true")
    parser.add_argument("-v", dest="verbose")
    parser.add_argument("engine_address", nargs="?", default="")
    known, _unknown = parser.parse_known_args(argv)
    return str(known.engine_address)


def serve(argv: list[str], environ: Mapping[str, str]) -> int:
    """Start the service, print its port on stdout, and serve until SIGINT/SIGTERM.

    Args:
        argv: Arguments from the engine (flags, then the engine address).
        environ: Environment handed down to programs.

    Returns:
        The process exit code.
    """
    host = LanguageHost(_engine_address(argv), environ)
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
