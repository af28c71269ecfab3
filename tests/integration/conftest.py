"""Fixtures: an in-process emulator, a private journal, and providers with short waits.

* ``emulator``: one in-process emulator per session (free ports, memory only), reset before
  and after every test (no state, faults or request log carried over).
* ``journal_dir``: ``DICOM_TRANSFER_STATE_DIR`` pointed at a directory private to the test.
* ``fast_providers``: the providers' poll, retry and permission-retry schedules shortened
  (tens of milliseconds instead of seconds). Everything else is the production path: real
  HTTP through googleapiclient, real clocks and sleeps.
* ``store``: the dataset and DICOM store created over HTTP; returns the store name.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dicom_transfer import providers
from dicom_transfer.emulator.app import Emulator, run_emulator
from dicom_transfer.healthcare import transfer
from dicom_transfer.healthcare.client import HealthcareApi, StorageApi
from dicom_transfer.healthcare.operations import PollPolicy
from dicom_transfer.healthcare.retrying import PermissionRetryPolicy, RetryPolicy
from integration_support import create_store

FAST_POLL = PollPolicy(
    initial_s=0.02,
    multiplier=1.5,
    max_s=0.1,
    jitter=0.0,
    min_tail_s=0.02,
    progress_initial_s=0.2,
)
FAST_RETRY = RetryPolicy(initial_s=0.02, exp_base=2.0, max_s=0.1, jitter_s=0.0, deadline_s=10.0)
FAST_SUBMIT_RETRY = RetryPolicy(
    initial_s=0.02, exp_base=2.0, max_s=0.1, jitter_s=0.0, max_attempts=5, deadline_s=10.0
)
FAST_PERMISSION_RETRY = PermissionRetryPolicy(
    initial_s=0.25, multiplier=1.5, max_s=0.5, jitter_s=0.0
)


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    """The session's running emulator (use ``emulator`` in tests)."""
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
    monkeypatch.setenv("DICOM_TRANSFER_STATE_DIR", str(directory))
    return directory


@pytest.fixture
def fast_providers(monkeypatch: pytest.MonkeyPatch, journal_dir: Path) -> None:
    """Shorten the providers' poll/retry schedules; keep real HTTP, clocks and sleeps."""

    def healthcare(config: Any, api_version: str = "v1") -> HealthcareApi:
        return HealthcareApi(
            config, api_version, read_retry=FAST_RETRY, submit_retry=FAST_SUBMIT_RETRY
        )

    def storage(config: Any) -> StorageApi:
        return StorageApi(config, retry=FAST_RETRY)

    monkeypatch.setattr(providers, "HealthcareApi", healthcare)
    monkeypatch.setattr(providers, "StorageApi", storage)
    monkeypatch.setattr(
        providers,
        "run_transfer",
        functools.partial(
            transfer.run_transfer,
            poll_policy=FAST_POLL,
            permission_retry=FAST_PERMISSION_RETRY,
        ),
    )


@pytest.fixture
def store(emulator: Emulator) -> str:
    """The test's DICOM store (empty), created over HTTP."""
    return create_store(emulator)
