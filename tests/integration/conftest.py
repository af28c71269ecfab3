"""Fixtures: providers with short waits against the in-process emulator.

``emulator`` and ``journal_dir`` come from ``tests/conftest.py``.

* (``integration_support.FAST``, not a fixture: the runtime the tests give the providers, with
  poll, retry and permission-retry schedules of tens of milliseconds instead of seconds.
  Everything else is the production path: real HTTP through googleapiclient, real clocks.)
* ``store``: the dataset and DICOM store created over HTTP; returns the store name.
"""

from __future__ import annotations

import pytest
from dicom_transfer_emulator.app import Emulator
from integration_support import create_store


@pytest.fixture
def store(emulator: Emulator) -> str:
    """The test's DICOM store (empty), created over HTTP."""
    return create_store(emulator)
