"""Run one Pulumi Python program against the engine's resource monitor.

The language host executes this file *by path* with the project's interpreter, so it must import
nothing but the standard library and ``pulumi`` (the project's virtualenv need not contain
``dicom_transfer``). Configuration arrives in ``PULUMI_CONFIG`` / ``PULUMI_CONFIG_SECRET_KEYS``
(JSON), which the SDK reads itself.

Exit codes: 0 success; 32 the program failed and the error was already logged to the engine (the
host then reports a "bail" rather than a second error); anything else is an unexpected crash
whose output went to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import runpy
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor

SHOWN_TO_USER_EXIT_CODE = 32


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--monitor", required=True)
    parser.add_argument("--engine", default="")
    parser.add_argument("--project", required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--organization", default="organization")
    parser.add_argument("--root-directory", required=True)
    parser.add_argument("--parallel", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("program", help="program file, or directory holding __main__.py")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    return parser.parse_args(argv)


def _user_traceback(program: str) -> str:
    """Format the current exception from the program's first frame on, hiding runpy's frames."""
    frames = traceback.extract_tb(sys.exc_info()[2])
    program = os.path.abspath(program)
    for index, frame in enumerate(frames):
        if not frame.filename.startswith("<") and os.path.abspath(frame.filename).startswith(
            program
        ):
            return traceback.format_exc(limit=-(len(frames) - index))
    return traceback.format_exc()


def main(argv: list[str]) -> int:
    """Configure the Pulumi runtime from ``argv`` and run the program inside a stack.

    Args:
        argv: Command-line arguments without the script name.

    Returns:
        The process exit code.
    """
    args = _parse(argv)
    # Running this file by path put its own directory first on sys.path; the program must not
    # see this package's modules as top-level modules.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]

    import pulumi
    import pulumi.runtime

    pulumi.runtime.set_all_config(
        pulumi.runtime.get_config_env(), pulumi.runtime.get_config_secret_keys_env()
    )
    parallel = args.parallel if args.parallel > 0 else None
    pulumi.runtime.configure(
        pulumi.runtime.Settings(
            project=args.project,
            stack=args.stack,
            monitor=args.monitor,
            engine=args.engine or None,
            parallel=parallel,
            dry_run=args.dry_run,
            organization=args.organization,
            root_directory=args.root_directory,
        )
    )

    program = args.program
    sys.argv = [program, *args.args]
    if os.path.isfile(program):
        sys.path.insert(0, os.path.dirname(os.path.abspath(program)))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # Same sizing as Pulumi's own runner: blocking work of the program runs in this pool.
    executor = ThreadPoolExecutor(max_workers=max(parallel or 1, 1) * 4)
    loop.set_default_executor(executor)
    # Unobserved failed futures are normal when a Pulumi program fails; asyncio's complaints
    # about them would bury the real error.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    def run() -> None:
        runpy.run_path(program, run_name="__main__")

    exit_code = SHOWN_TO_USER_EXIT_CODE
    try:
        loop.run_until_complete(pulumi.runtime.run_in_stack(run))
        exit_code = 0
    except pulumi.RunError as error:
        pulumi.log.error(str(error))
    except Exception:
        pulumi.log.error("Program failed with an unhandled exception:\n" + _user_traceback(program))
    finally:
        executor.shutdown(wait=True)
        loop.close()
        sys.stdout.flush()
        sys.stderr.flush()
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
