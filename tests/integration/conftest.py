"""Fixtures: providers with short waits against the in-process emulator.

``emulator`` and ``journal_dir`` come from ``tests/conftest.py``.

* (``support.integration.FAST``, not a fixture: the runtime the tests give the providers, with
  poll, retry and permission-retry schedules of tens of milliseconds instead of seconds.
  Everything else is the production path: real HTTP through googleapiclient, real clocks.)
* ``store``: the dataset and DICOM store created over HTTP; returns the store name.
* ``emulator_hosts`` (every test): ``HEALTHCARE_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST``
  point at the session's emulator, the way a user declares an emulator (anonymous calls).
"""

from __future__ import annotations

import pytest
from dicom_transfer.healthcare.credentials import HEALTHCARE_EMULATOR_ENV, STORAGE_EMULATOR_ENV
from dicom_transfer_emulator.app import Emulator
from support.integration import create_store


@pytest.fixture(autouse=True)
def emulator_hosts(monkeypatch: pytest.MonkeyPatch, emulator_session: Emulator) -> None:
    """Declare the session's emulator through the environment, as users do."""
    monkeypatch.setenv(HEALTHCARE_EMULATOR_ENV, emulator_session.healthcare_url)
    monkeypatch.setenv(STORAGE_EMULATOR_ENV, emulator_session.storage_url)


@pytest.fixture
def store(emulator: Emulator) -> str:
    """The test's DICOM store (empty), created over HTTP."""
    return create_store(emulator)
