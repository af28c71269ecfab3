"""Fixtures: providers wired to a scripted transport, a fake clock and a private journal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_transfer.healthcare.runtime import TransferRuntime
from support.clock import FakeClock
from support.scripted_http import ScriptedHttp


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def http(journal_dir: Path) -> Iterator[ScriptedHttp]:
    """One scripted transport for every Healthcare and Storage call of the test."""
    scripted = ScriptedHttp([])
    yield scripted
    assert not scripted._iterable, f"scripted responses left unused: {len(scripted._iterable)}"


@pytest.fixture
def runtime(http: ScriptedHttp, clock: FakeClock) -> TransferRuntime:
    """The production factories, talking through ``http`` on the fake clock."""
    return TransferRuntime(
        http_factory=lambda: http,
        clock=clock,
        sleep=clock.sleep,
        wall_clock=lambda: 1_795_000_000.0 + clock.now,
    )
