"""Fixtures shared by every test tier.

* ``emulator``: one in-process emulator per test session (free ports, memory only), reset
  before and after every test, so tests see empty state, no faults and an empty request log.
* ``journal_dir``: ``DICOM_TRANSFER_STATE_DIR`` (the providers' resume journal) pointed at a
  directory private to the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_transfer.healthcare.journal import STATE_DIR_ENV
from dicom_transfer_emulator.app import Emulator, run_emulator


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    """The session's running emulator (not reset; use ``emulator`` in tests)."""
    with run_emulator() as emu:
        yield emu


@pytest.fixture
def emulator(emulator_session: Emulator) -> Iterator[Emulator]:
    """The running emulator, reset before and after the test."""
    emulator_session.reset()
    yield emulator_session
    emulator_session.reset()


@pytest.fixture
def journal_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A journal directory private to the test (``DICOM_TRANSFER_STATE_DIR``)."""
    directory = tmp_path / "journal"
    monkeypatch.setenv(STATE_DIR_ENV, str(directory))
    return directory
