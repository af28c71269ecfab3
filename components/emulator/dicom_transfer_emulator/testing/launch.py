"""Start the emulator as a separate process and stop it again (demo, e2e tests, benchmarks)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["EmulatorProcess"]


class EmulatorProcess:
    """``python -m dicom_transfer_emulator`` on free loopback ports, as a context manager.

    Attributes:
        healthcare_url: ``http://127.0.0.1:PORT`` of the Healthcare API.
        storage_url: ``http://127.0.0.1:PORT`` of the Cloud Storage JSON API.
    """

    healthcare_url: str
    storage_url: str

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
        log: IO[str] | None = None,
        start_timeout_s: float = 60.0,
    ) -> None:
        """Prepares the command; nothing starts before ``__enter__``.

        Args:
            data_dir: Where state persists between runs; None keeps it in memory.
            extra_args: More command-line flags (permission checks, faults, ...).
            log: Where the emulator's request log goes (default: discarded).
            start_timeout_s: How long to wait for the ready line.
        """
        self._args = [
            sys.executable,
            "-m",
            "dicom_transfer_emulator",
            "--port",
            "0",
            "--storage-port",
            "0",
        ]
        if data_dir is not None:
            self._args += ["--data-dir", str(data_dir)]
        self._args += list(extra_args)
        self._log = log
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorProcess:
        process = subprocess.Popen(
            self._args,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._process = process
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(self._start_timeout_s)
        line = process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError(
                f"the emulator did not report ready within {self._start_timeout_s:.0f} s "
                f"(command: {' '.join(self._args)})"
            )
        endpoints = json.loads(line)
        self.healthcare_url = str(endpoints["healthcare"])
        self.storage_url = str(endpoints["storage"])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The emulator's process ID while it runs."""
        return self._process.pid if self._process is not None else None

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Stops the emulator with SIGTERM (SIGKILL if it lingers); returns its exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode
