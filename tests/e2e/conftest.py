"""Fixtures of the end-to-end tier: a seeded emulator process and a DICOM stack per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.e2e.dicom_stack import DicomStack, SeededEmulator, dicom_stack, seeded_emulator


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[SeededEmulator]:
    """An emulator process of its own, seeded with the corpus, its request log empty."""
    with seeded_emulator(tmp_path / "emulator.log") as running:
        yield running


@pytest.fixture
def stack(tmp_path: Path, emulator: SeededEmulator) -> DicomStack:
    """A stack with one import of the whole corpus into the seeded store (nothing run yet)."""
    return dicom_stack(tmp_path / "stack", emulator)
