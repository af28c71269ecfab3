"""The composition root: each emulator builds and owns its parts (no registry, no hooks)."""

from __future__ import annotations

from dicom_transfer_emulator.app import Emulator, run_emulator
from dicom_transfer_emulator.healthcare.api import HealthcareService


def test_each_emulator_owns_its_healthcare_service_wired_to_its_storage() -> None:
    with run_emulator() as first, run_emulator() as second:
        assert isinstance(first.healthcare, HealthcareService)
        assert first.healthcare is not second.healthcare
        assert first.healthcare.storage is first.storage
        assert first.healthcare.healthcare_url == first.healthcare_url
        assert first.healthcare.state is not second.healthcare.state


def test_permission_checks_and_propagation_delay_are_restored_by_reset(
    emulator: Emulator,
) -> None:
    start = (emulator.permission_checks, emulator.propagation_delay_s)
    emulator.permission_checks = not start[0]
    emulator.propagation_delay_s = start[1] + 5.0

    assert emulator.healthcare.permission_checks is not start[0]
    assert emulator.storage.propagation_delay_s == start[1] + 5.0

    emulator.reset()

    assert (emulator.permission_checks, emulator.propagation_delay_s) == start
    assert emulator.healthcare.permission_checks is start[0]
