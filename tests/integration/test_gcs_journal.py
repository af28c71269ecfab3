"""The journal in Cloud Storage (``DICOM_TRANSFER_JOURNAL``), against the emulator over HTTP.

The scenario it exists for: a create killed on one machine after the import was submitted, run
again on another machine whose local journal is empty. The second machine must resume the
first machine's operation, not submit a second one.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from dicom_transfer import DicomImportProvider
from dicom_transfer.errors import InvalidSpec
from dicom_transfer.healthcare.client import ApiConfig, StorageApi
from dicom_transfer.healthcare.gcs_journal import GcsJournal
from dicom_transfer.healthcare.journal import JOURNAL_ENV, STATE_DIR_ENV, journal_uri
from dicom_transfer_emulator.app import Emulator
from support.integration import (
    FAST,
    PROJECT,
    claim_and_submit_import,
    corpus_files,
    expected_distinct_import,
    import_props,
    operation_count,
    upload,
)

pytestmark = pytest.mark.usefixtures("journal_dir")

JOURNAL_BUCKET = "journal-bucket"
JOURNAL_URI = f"gs://{JOURNAL_BUCKET}/dicom/journal"
FINGERPRINT = "ab" * 16


def _journal(emulator: Emulator) -> GcsJournal:
    if not any(b.name == JOURNAL_BUCKET for b in emulator.storage.list_buckets(PROJECT)):
        emulator.storage.create_bucket(JOURNAL_BUCKET, PROJECT)
    location = journal_uri({JOURNAL_ENV: JOURNAL_URI})
    assert location is not None
    return GcsJournal(
        StorageApi(ApiConfig(storage_endpoint=emulator.storage_url, storage_emulator=True)),
        location,
    )


def _objects(emulator: Emulator) -> list[str]:
    objects, _ = emulator.storage.list_objects(JOURNAL_BUCKET, "dicom/journal/")
    return [meta.name for meta in objects]


def test_records_round_trip_as_objects_under_the_prefix(emulator: Emulator) -> None:
    journal = _journal(emulator)
    record = journal.new_record(FINGERPRINT, "import", "projects/p/.../dicomStores/s", now=5.0)

    assert journal.get(FINGERPRINT) is None
    assert journal.claim(record)
    assert _objects(emulator) == [f"dicom/journal/{FINGERPRINT}.json"]
    assert journal.path_for(FINGERPRINT) == f"{JOURNAL_URI}/{FINGERPRINT}.json"
    assert journal.get(FINGERPRINT) == record

    named = record.with_operation("projects/p/locations/l/datasets/d/operations/1")
    journal.put(named)
    assert journal.get(FINGERPRINT) == named
    assert list(journal.records()) == [named]

    journal.remove(FINGERPRINT)
    journal.remove(FINGERPRINT)  # absent: no error
    assert journal.get(FINGERPRINT) is None and _objects(emulator) == []


def test_only_one_of_many_concurrent_claims_wins(emulator: Emulator) -> None:
    journals = [_journal(emulator) for _ in range(8)]
    barrier = threading.Barrier(len(journals))
    wins: list[bool] = []
    lock = threading.Lock()

    def claim(journal: GcsJournal) -> None:
        barrier.wait(timeout=10)
        won = journal.claim(journal.new_record(FINGERPRINT, "export", "store"))
        with lock:
            wins.append(won)

    threads = [threading.Thread(target=claim, args=(j,)) for j in journals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(wins) == [False] * 7 + [True]


CLAIM_UPLOAD = rf"/b/{JOURNAL_BUCKET}/o$"  # the conditional insert (a POST)


def test_a_claim_whose_answer_was_lost_is_recognised_as_ours(emulator: Emulator) -> None:
    journal = _journal(emulator)
    record = journal.new_record(FINGERPRINT, "import", "store")
    # Cloud Storage stores the claim, then the connection drops before the answer: the repeat
    # of the conditional insert gets 412 for the object the first attempt created.
    emulator.faults.reset_connections("POST", CLAIM_UPLOAD, after=True)

    assert journal.claim(record)

    attempts = emulator.requests.matching("POST", CLAIM_UPLOAD)
    assert [a.status for a in attempts] == [0, 412], "performed, dropped, repeated"
    assert journal.get(FINGERPRINT) == record


def test_a_lost_answer_does_not_make_another_runs_claim_ours(emulator: Emulator) -> None:
    journal = _journal(emulator)
    theirs = journal.new_record(FINGERPRINT, "import", "store", now=1.0)
    assert journal.claim(theirs)
    emulator.faults.reset_connections("POST", CLAIM_UPLOAD, after=True)

    assert not journal.claim(journal.new_record(FINGERPRINT, "import", "store", now=2.0))
    assert journal.get(FINGERPRINT) == theirs


def test_a_second_machine_resumes_the_first_machines_submit(
    emulator: Emulator, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = corpus_files()
    upload(emulator, files)
    props = import_props(emulator, store)
    journal = _journal(emulator)
    # Machine A: claimed the fingerprint, submitted, recorded the operation name, then died.
    fingerprint, submitted = claim_and_submit_import(emulator, store, props, journal)
    journal.put(journal.new_record(fingerprint, "import", store).with_operation(submitted))

    # Machine B: an empty local state directory, the same shared journal.
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "machine-b"))
    monkeypatch.setenv(JOURNAL_ENV, JOURNAL_URI)
    result = DicomImportProvider(FAST).create(props)

    assert result.id == submitted
    assert result.outs is not None
    assert result.outs["success_count"] == expected_distinct_import(files).success
    assert operation_count(emulator, "import") == 1, "machine B must not submit again"
    assert _objects(emulator) == [], "the finished operation's record is removed"
    assert not (tmp_path / "machine-b").exists(), "nothing was written to the local journal"


@pytest.mark.parametrize("claim_answer_lost", [False, True])
def test_a_fresh_create_with_the_shared_journal_submits_once_and_leaves_no_record(
    emulator: Emulator, store: str, monkeypatch: pytest.MonkeyPatch, claim_answer_lost: bool
) -> None:
    files = corpus_files()
    upload(emulator, files)
    _journal(emulator)  # the bucket
    monkeypatch.setenv(JOURNAL_ENV, JOURNAL_URI)
    if claim_answer_lost:
        emulator.faults.reset_connections("POST", CLAIM_UPLOAD, after=True)

    result = DicomImportProvider(FAST).create(import_props(emulator, store))

    assert result.outs is not None
    assert result.outs["success_count"] == expected_distinct_import(files).success
    assert operation_count(emulator, "import") == 1
    # The record was claimed (ifGenerationMatch=0; repeated after a lost answer), named, then
    # removed.
    writes = emulator.requests.matching("POST", CLAIM_UPLOAD)
    expected = [0, 412, 200] if claim_answer_lost else [200, 200]
    assert [w.status for w in writes] == expected, [w.path for w in writes]
    assert _objects(emulator) == []


@pytest.mark.parametrize(
    "value",
    [
        "s3://bucket/journal",
        "gs://Bad_Bucket/x",
        "gs://bucket/.well-known/acme-challenge",
        "journal",
    ],
)
def test_a_malformed_location_fails_check_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(JOURNAL_ENV, value)
    expected = re.escape(f"{JOURNAL_ENV}: got '{value}'; expected gs://BUCKET")
    with pytest.raises(InvalidSpec, match=expected):
        DicomImportProvider(FAST).check({}, {"dicom_store": "x", "gcs_uri": "gs://b/x"})
