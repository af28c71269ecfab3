"""Python programs: ``run_program.py`` run by the project's interpreter (see ``interpreter``)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from pulumi.runtime.proto import language_pb2

from dicom_transfer_pulumi_host.interpreter import (
    Interpreter,
    InterpreterNotFound,
    find_interpreter,
)
from dicom_transfer_pulumi_host.runtimes import (
    Launch,
    LaunchError,
    command_output,
    config_environment,
    program_directory,
    run_flags,
    runtime_options,
)

RUN_PROGRAM = Path(__file__).with_name("run_program.py")

_LIST_DISTRIBUTIONS = (
    "import json, importlib.metadata as m;"
    "print(json.dumps(sorted({(d.metadata['Name'], d.version) for d in m.distributions()"
    " if d.metadata['Name']})))"
)


def _interpreter(info: language_pb2.ProgramInfo, environ: Mapping[str, str]) -> Interpreter:
    root = Path(info.root_directory or info.program_directory or os.getcwd())
    try:
        return find_interpreter(root, runtime_options(info), environ)
    except InterpreterNotFound as error:
        raise LaunchError(str(error)) from error


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
    program_dir = program_directory(request)
    entry = request.info.entry_point or request.program or "."
    cwd = Path(request.pwd) if request.pwd else program_dir
    command = [
        str(interpreter.python),
        "-u",
        str(RUN_PROGRAM),
        *run_flags(request, engine_address),
        str(program_dir / entry),
        *request.args,
    ]
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
    env.update(config_environment(request))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class PythonRuntime:
    """Runs Python programs with the interpreter ``interpreter.find_interpreter`` chooses."""

    name = "python"

    def plugin_version(self) -> str:
        """The installed ``pulumi`` SDK's version."""
        return metadata.version("pulumi")

    def launch(
        self, request: language_pb2.RunRequest, engine_address: str, environ: Mapping[str, str]
    ) -> Launch:
        """``python -u run_program.py FLAGS PROGRAM ARGS`` (see ``ProgramRuntime.launch``)."""
        interpreter = _interpreter(request.info, environ)
        argv, cwd = program_command(request, interpreter, engine_address)
        return Launch(argv, cwd, program_environment(request, interpreter, environ))

    def about(self, info: language_pb2.ProgramInfo, environ: Mapping[str, str]) -> tuple[str, str]:
        """The program's interpreter and its Python version."""
        python = str(_interpreter(info, environ).python)
        return python, command_output(
            [python, "-c", "import platform; print(platform.python_version())"]
        )

    def dependencies(
        self, info: language_pb2.ProgramInfo, environ: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        """The distributions installed in the program's interpreter."""
        interpreter = _interpreter(info, environ)
        listing = subprocess.run(
            [str(interpreter.python), "-c", _LIST_DISTRIBUTIONS],
            capture_output=True,
            text=True,
            check=False,
        )
        if listing.returncode != 0:
            raise LaunchError(listing.stderr.strip())
        return [(name, version) for name, version in json.loads(listing.stdout)]
