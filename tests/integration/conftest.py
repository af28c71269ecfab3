"""Fixtures: providers with short waits against the in-process emulator.

``emulator`` and ``journal_dir`` come from ``tests/conftest.py``.

* ``fast_providers``: the providers' poll, retry and permission-retry schedules shortened
  (tens of milliseconds instead of seconds). Everything else is the production path: real
  HTTP through googleapiclient, real clocks and sleeps.
* ``store``: the dataset and DICOM store created over HTTP; returns the store name.
* ``emulator_hosts`` (every test): ``HEALTHCARE_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST``
  point at the session's emulator, the way a user declares an emulator (anonymous calls).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from dicom_transfer import providers
from dicom_transfer.healthcare import transfer
from dicom_transfer.healthcare.client import HealthcareApi, StorageApi
from dicom_transfer.healthcare.credentials import HEALTHCARE_EMULATOR_ENV, STORAGE_EMULATOR_ENV
from dicom_transfer.healthcare.operations import PollPolicy
from dicom_transfer.healthcare.retrying import PermissionRetryPolicy, RetryPolicy
from dicom_transfer_emulator.app import Emulator
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


@pytest.fixture(autouse=True)
def emulator_hosts(monkeypatch: pytest.MonkeyPatch, emulator_session: Emulator) -> None:
    """Declare the session's emulator through the environment, as users do."""
    monkeypatch.setenv(HEALTHCARE_EMULATOR_ENV, emulator_session.healthcare_url)
    monkeypatch.setenv(STORAGE_EMULATOR_ENV, emulator_session.storage_url)


@pytest.fixture
def fast_providers(monkeypatch: pytest.MonkeyPatch, journal_dir: Path) -> None:
    """Shorten the providers' poll/retry schedules; keep real HTTP, clocks and sleeps."""

    def healthcare(config: Any, api_version: str = "v1") -> HealthcareApi:
        return HealthcareApi(
            config, api_version, read_retry=FAST_RETRY, submit_retry=FAST_SUBMIT_RETRY
        )

    def storage(config: Any) -> StorageApi:
        return StorageApi(config, retry=FAST_RETRY)

    monkeypatch.setattr(providers, "healthcare_api", healthcare)
    monkeypatch.setattr(providers, "storage_api", storage)
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
