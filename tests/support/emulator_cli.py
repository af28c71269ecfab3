"""Run the emulator's command line as a process (``python -m dicom_transfer_emulator``)."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def cli(
    tmp_path: Path, *args: str, command: list[str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """Start the emulator process; yield it and the endpoints from its JSON line."""
    stderr = (tmp_path / "stderr.log").open("a")
    base = command or [sys.executable, "-m", "dicom_transfer_emulator"]
    proc = subprocess.Popen(
        [*base, "--port", "0", "--storage-port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        assert proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=60), "the emulator printed nothing within 60 s"
        line = proc.stdout.readline()
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        stderr.close()
