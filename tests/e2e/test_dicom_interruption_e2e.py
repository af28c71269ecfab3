"""``pulumi up`` interrupted while an import runs: the import is submitted exactly once.

The emulator makes the import take ``OPERATION_SECONDS``. The CLI is interrupted either once
the provider has reported the submitted operation, or in the middle of the submit itself (the
emulator holds the request while the provider's journal says "submitting").
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support.e2e.dicom_stack import IMPORT_PATH, DicomStack, wait_until
from support.e2e.process_session import kill_session, session_pids

pytestmark = pytest.mark.e2e

OPERATION_SECONDS = 12.0
SUBMIT_DELAY_SECONDS = 4.0
SUBMITTED = re.compile(r"dicom import import-0: submitted (\S+)")


def _start_slow_up(stack: DicomStack, log: Path) -> subprocess.Popen[bytes]:
    stack.emulator.add_faults(spec=f"operation-seconds={OPERATION_SECONDS}")
    return stack.cli.start("up", "--yes", output=log)


def _wait_for(
    process: subprocess.Popen[bytes], log: Path, condition: Callable[[], object], what: str
) -> None:
    def check() -> bool:
        assert process.poll() is None, f"`pulumi up` ended early:\n{log.read_text()}"
        return bool(condition())

    wait_until(check, 60, what)


def _import_operation(stack: DicomStack) -> str:
    [operation] = stack.emulator.import_operations()
    name: str = operation["name"]
    return name


def _assert_imported_once(stack: DicomStack, operation: str) -> None:
    [output] = stack.imports()
    assert output["operation"] == operation
    assert output["success"] == len({f.sop_instance_uid for f in stack.emulator.corpus})
    assert output["failure"] == 0
    assert stack.emulator.import_posts() == 1, "the interrupted import was submitted again"
    assert stack.cli.export()["deployment"].get("pending_operations") in (None, [])
    stack.cli.run("up", "--yes", "--expect-no-changes")


@pytest.mark.parametrize("moment", ["after-submit", "during-submit"])
def test_sigkill_of_the_whole_cli_tree_then_cancel_and_up_resumes(
    stack: DicomStack, tmp_path: Path, moment: str
) -> None:
    log = tmp_path / "up.log"
    if moment == "during-submit":
        # The emulator sits on the submit before creating the operation, so the kill lands
        # after the provider journalled "submitting" and before it could learn the name.
        stack.emulator.add_faults(spec=f"POST:{IMPORT_PATH}=delay{SUBMIT_DELAY_SECONDS}sx1")
        process = _start_slow_up(stack, log)
        _wait_for(process, log, lambda: any(stack.journal_dir.glob("*.json")), "a submit")
    else:
        process = _start_slow_up(stack, log)
        _wait_for(process, log, lambda: SUBMITTED.search(log.read_text()), "the operation name")
    assert stack.emulator.import_posts() == (1 if moment == "after-submit" else 0)

    killed = kill_session(process.pid, signal.SIGKILL)
    process.wait()
    assert len(killed) >= 3, f"CLI, language host and provider expected, killed {killed}"
    assert session_pids(process.pid) == []
    # The held submit still creates its operation, answering a client that is gone.
    wait_until(lambda: stack.emulator.import_posts() == 1, SUBMIT_DELAY_SECONDS + 30, "submit")
    operation = _import_operation(stack)

    # What a user sees and does after a hard kill (Pulumi v3.252, file backend, no TTY):
    # 1. The dead CLI's lock remains: `pulumi up` refuses and names `pulumi cancel`.
    locked = stack.cli.run("up", "--yes", check=False)
    assert locked.returncode != 0
    assert "pulumi cancel" in locked.stdout + locked.stderr
    stack.cli.run("cancel", "--yes")
    # 2. The state holds a pending create for the import. `pulumi up` would warn and run the
    #    create again, but the pending create would stay in the state (and warn on every later
    #    update); a plain non-interactive `pulumi refresh` keeps it silently. The flag that
    #    the warning's "run refresh interactively" corresponds to clears it:
    assert len(stack.cli.export()["deployment"]["pending_operations"]) == 1
    stack.cli.run("refresh", "--yes", "--clear-pending-creates")
    assert stack.cli.export()["deployment"].get("pending_operations") in (None, [])
    # 3. `pulumi up` creates the import again; the provider's journal turns that create into
    #    waiting on the operation the killed run submitted (adopting it when the kill came
    #    before the submit's answer).
    resumed = stack.cli.run("up", "--yes")
    verb = "resuming" if moment == "after-submit" else "adopted"
    assert f"{verb} {operation}" in resumed.stdout
    assert "+ 1 created" in resumed.stdout
    _assert_imported_once(stack, operation)


def test_ctrl_c_waits_for_the_import_and_the_next_up_has_nothing_to_do(
    stack: DicomStack, tmp_path: Path
) -> None:
    log = tmp_path / "up.log"
    process = _start_slow_up(stack, log)
    _wait_for(process, log, lambda: SUBMITTED.search(log.read_text()), "the operation name")
    # A terminal's Ctrl-C signals the foreground process group: the CLI's alone (the engine
    # runs its plugins in groups of their own and asks them to cancel itself).
    os.killpg(process.pid, signal.SIGINT)
    exit_code = process.wait(timeout=OPERATION_SECONDS + 60)

    output = log.read_text()
    assert exit_code != 0
    assert "received; cancelling" in output
    assert "update canceled" in output
    assert "import-0 created" in output, "the running create was allowed to finish"

    again = stack.cli.run("up", "--yes")
    assert "2 unchanged" in again.stdout
    _assert_imported_once(stack, _import_operation(stack))
