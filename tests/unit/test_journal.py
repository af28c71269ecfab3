"""Journal: location, atomic writes, exclusive claims across threads and processes."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from pathlib import Path

import pytest
from dicom_transfer.healthcare.journal import Journal, JournalRecord, default_journal_dir

FP = "ab" * 32
STORE = "projects/p/locations/l/datasets/d/dicomStores/s"


def record(fp: str = FP, name: str | None = None) -> JournalRecord:
    return JournalRecord(fp, "import", STORE, 1_700_000_000.5, name)


def test_default_directory(tmp_path: Path) -> None:
    assert default_journal_dir({"DICOM_TRANSFER_STATE_DIR": str(tmp_path)}) == tmp_path
    assert default_journal_dir({"XDG_STATE_HOME": "/x/state"}) == Path(
        "/x/state/dicom-transfer/journal"
    )
    assert default_journal_dir({}) == Path("~/.local/state").expanduser() / "dicom-transfer" / (
        "journal"
    )


def test_default_journal_reads_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_TRANSFER_STATE_DIR", str(tmp_path / "j"))
    assert Journal.default().directory == tmp_path / "j"


def test_put_get_remove_roundtrip(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    assert journal.get(FP) is None
    journal.put(record())
    assert journal.get(FP) == record()
    named = record().with_operation("projects/p/locations/l/datasets/d/operations/1")
    journal.put(named)
    assert journal.get(FP) == named
    assert list(journal.records()) == [named]
    text = journal.path_for(FP).read_text()
    assert '"submitted_at_iso": "2023-11-14T22:13:20.500000Z"' in text
    journal.remove(FP)
    journal.remove(FP)
    assert journal.get(FP) is None
    assert [p.name for p in (tmp_path / "journal").iterdir()] == []


def test_no_temporary_files_left(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for i in range(5):
        journal.put(record(name=f"projects/p/locations/l/datasets/d/operations/{i}"))
    assert journal.claim(record()) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{FP}.json"]


def test_claim_is_exclusive_across_threads(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(journal.claim(record()))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def _claim_in_process(directory: str, queue: multiprocessing.Queue[bool]) -> None:
    queue.put(Journal(directory).claim(record()))


def test_claim_is_exclusive_across_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[bool] = context.Queue()
    processes = [
        context.Process(target=_claim_in_process, args=(str(tmp_path), queue)) for _ in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    results = sorted(queue.get(timeout=10) for _ in processes)
    assert results == [False, False, True]


def test_corrupt_file_reads_as_unnamed_record(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.directory.mkdir(exist_ok=True)
    journal.path_for(FP).write_text("{not json")
    got = journal.get(FP)
    assert got is not None and got.operation_name is None


def test_fingerprint_must_be_hex(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        Journal(tmp_path).path_for("../../etc/passwd")


def test_journal_pickles_as_path(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    assert pickle.loads(pickle.dumps(journal)).directory == tmp_path
