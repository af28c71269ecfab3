"""``dicom-transfer-emulator seed``: a running emulator gets a store, buckets and DICOM files."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from dicom_transfer_emulator.app import Emulator
from dicom_transfer_emulator.seed import DEMO_PLAN, corpus_files

CONSOLE_SCRIPT = Path(sys.executable).parent / "dicom-transfer-emulator"


def _seed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), "seed", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as response:
        loaded: dict[str, object] = json.load(response)
    return loaded


def test_seed_creates_the_store_and_buckets_uploads_files_and_prints_the_environment(
    emulator: Emulator,
) -> None:
    healthcare, storage = emulator.healthcare_url, emulator.storage_url

    seeded = _seed("--healthcare", healthcare, "--storage", storage)

    assert seeded.returncode == 0, seeded.stderr
    out = seeded.stdout
    files = corpus_files()
    assert f"DICOM store    {DEMO_PLAN.store_name}" in out
    assert f"gs://{DEMO_PLAN.source_bucket}/corpus/ ({len(files)} DICOM files;" in out
    assert f"export bucket  gs://{DEMO_PLAN.export_bucket}" in out
    for file in files:
        assert file.study_uid in out
    assert f"export HEALTHCARE_EMULATOR_HOST={healthcare.rstrip('/')}" in out.splitlines()
    assert f"export STORAGE_EMULATOR_HOST={storage.rstrip('/')}" in out.splitlines()
    # What it printed exists, through the public APIs.
    assert _get(f"{healthcare}/v1/{DEMO_PLAN.store_name}")["name"] == DEMO_PLAN.store_name
    listing = _get(f"{storage}/storage/v1/b/{DEMO_PLAN.source_bucket}/o?prefix=corpus/")
    assert len(listing["items"]) == len(files)  # type: ignore[arg-type]
    assert _get(f"{storage}/storage/v1/b/{DEMO_PLAN.export_bucket}")["name"] == (
        DEMO_PLAN.export_bucket
    )

    again = _seed("--healthcare", healthcare, "--storage", storage)
    assert again.returncode == 0, again.stderr  # existing store and buckets are kept


def test_seed_takes_other_names(emulator: Emulator) -> None:
    seeded = _seed(
        "--healthcare",
        emulator.healthcare_url,
        "--storage",
        emulator.storage_url,
        "--project",
        "my-project",
        "--store",
        "mine",
        "--source-bucket",
        "my-source",
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "projects/my-project/locations/us-central1/datasets/imaging/dicomStores/mine" in (
        seeded.stdout
    )
    assert "gs://my-source/corpus/" in seeded.stdout


def test_seed_without_an_emulator_says_what_to_start() -> None:
    seeded = _seed("--healthcare", "http://127.0.0.1:1", "--storage", "http://127.0.0.1:1")
    assert seeded.returncode == 1
    assert "cannot seed http://127.0.0.1:1" in seeded.stderr
    assert "Is the emulator running (dicom-transfer-emulator)?" in seeded.stderr
