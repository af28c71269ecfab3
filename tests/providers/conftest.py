"""Fixtures: providers wired to a scripted transport, a fake clock and a private journal."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dicom_transfer import providers
from dicom_transfer.healthcare import transfer
from dicom_transfer.healthcare.client import HealthcareApi, StorageApi
from fake_http import FakeClock, ScriptedHttp


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def http(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock, journal_dir: Path
) -> Iterator[ScriptedHttp]:
    """One scripted transport for every Healthcare and Storage call of the test."""
    scripted = ScriptedHttp([])

    def healthcare(config: Any, api_version: str = "v1") -> HealthcareApi:
        return HealthcareApi(
            config, api_version, http_factory=lambda: scripted, sleep=clock.sleep, clock=clock
        )

    def storage(config: Any) -> StorageApi:
        return StorageApi(config, http_factory=lambda: scripted, sleep=clock.sleep, clock=clock)

    monkeypatch.setattr(providers, "healthcare_api", healthcare)
    monkeypatch.setattr(providers, "storage_api", storage)
    monkeypatch.setattr(
        providers,
        "run_transfer",
        functools.partial(
            transfer.run_transfer,
            clock=clock,
            sleep=clock.sleep,
            wall_clock=lambda: 1_795_000_000.0 + clock.now,
        ),
    )
    yield scripted
    assert not scripted._iterable, f"scripted responses left unused: {len(scripted._iterable)}"
