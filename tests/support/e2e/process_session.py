"""Find and signal every process of a session (Linux ``/proc``), e.g. a ``pulumi up`` tree.

The Pulumi CLI starts its language host and each provider plugin in a process group of its
own, so signalling the CLI's process group reaches only the CLI. A CLI started with
``start_new_session=True`` leads a session that all of them stay in, even once orphaned:
killing the session's processes is what a closed terminal, an OOM kill of the container, or a
CI runner's hard stop amounts to.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def session_pids(session_id: int) -> list[int]:
    """Live (non-zombie) processes whose session ID is ``session_id``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, session, ...
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == session_id:
            found.append(int(entry.name))
    return sorted(found)


def kill_session(session_id: int, signal_number: int, timeout_s: float = 10.0) -> list[int]:
    """Sends ``signal_number`` to every process of the session until none is left.

    Args:
        session_id: The session leader's PID.
        signal_number: Usually ``signal.SIGKILL``.
        timeout_s: How long processes may take to disappear.

    Returns:
        The PIDs signalled (the first round: the tree as it was).

    Raises:
        AssertionError: Processes survived ``timeout_s``.
    """
    first = session_pids(session_id)
    deadline = time.monotonic() + timeout_s
    pids = first
    while pids:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal_number)
        time.sleep(0.05)
        pids = session_pids(session_id)
        if pids and time.monotonic() > deadline:
            raise AssertionError(f"processes {pids} of session {session_id} survived")
    return first
