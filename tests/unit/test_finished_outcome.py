"""A finished operation is its request's outcome: after a failure that moved data, a later
create of the same request judges that operation again and submits nothing; only a change of
``triggers`` (another fingerprint) runs the transfer again. Local and ``gs://`` journals."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dicom_transfer.errors import JournalConflict, OperationFailed
from dicom_transfer.healthcare.gcs_journal import GcsJournal
from dicom_transfer.healthcare.journal import Journal, JournalRecord, JournalStore
from dicom_transfer.healthcare.results import parse_operation
from dicom_transfer.specs.gcs import parse_gcs_uri
from dicom_transfer.specs.props import WaitPolicy, export_spec_from_props
from support.scripted_api import (
    EXPORT_METHOD,
    FP,
    OP,
    STORE,
    SUBMITTED_AT,
    FakeApi,
    FakeTime,
    op,
    run,
)

PARTIAL = {"code": 3, "message": "1 of 3 instances failed to export. See the logs"}
TABLE = "bq://my-project.dicom_meta.instances"
APPEND_SPEC = export_spec_from_props(
    {
        "dicom_store": STORE,
        "bigquery_destination": {
            "table_uri": TABLE,
            "write_disposition": "WRITE_APPEND",
            "schema_json": True,
        },
    }
)


class MemoryStorage:
    """Duck-typed StorageApi for GcsJournal: objects in a dict, conditional create."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def read(self, bucket: str, name: str) -> bytes | None:
        return self.objects.get((bucket, name))

    def write(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        *,
        only_if_absent: bool = False,
    ) -> bool:
        if only_if_absent and (bucket, name) in self.objects:
            return False
        self.objects[(bucket, name)] = data
        return True

    def delete(self, bucket: str, name: str) -> None:
        self.objects.pop((bucket, name), None)

    def list_names(self, bucket: str, prefix: str) -> Iterator[str]:
        yield from (n for b, n in list(self.objects) if b == bucket and n.startswith(prefix))


@pytest.fixture(params=["local", "gs"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> JournalStore:
    if request.param == "local":
        return Journal(tmp_path / "journal")
    location = parse_gcs_uri("gs://journal-bucket/dicom", "DICOM_TRANSFER_JOURNAL", kind="prefix")
    return GcsJournal(MemoryStorage(), location)  # type: ignore[arg-type]


def export_op(**kwargs: Any) -> dict[str, Any]:
    return op(done=True, method=EXPORT_METHOD, **kwargs)


def test_s29_failure_after_rows_moved_is_judged_again_not_resubmitted(
    journal: JournalStore,
) -> None:
    finished = export_op(success=2, failure=1, error=PARTIAL)
    api = FakeApi(submits=[OP], operations={OP: [finished]})

    with pytest.raises(OperationFailed) as info:
        run(api, journal, FakeTime(), spec=APPEND_SPEC, policy=WaitPolicy(max_failures=0))
    message = str(info.value)
    assert len(api.submitted) == 1
    assert message.count("None") == 1, "each fix is named once (max_failures=None)"
    assert "change the resource's `triggers`" in message
    assert f"2 successful row(s) are already in {TABLE} (WRITE_APPEND)" in message
    assert str(journal.path_for(FP)) in message
    assert info.value.result == parse_operation(finished), "the error carries the operation"
    record = journal.get(FP)
    assert record is not None and record.outcome == parse_operation(finished)

    # The operator raises max_failures to 1: the same request adopts the outcome.
    gets_before = len(api.gets)
    result, lines = run(
        api, journal, FakeTime(), spec=APPEND_SPEC, policy=WaitPolicy(max_failures=1)
    )
    assert len(api.submitted) == 1, "no second submit"
    assert len(api.gets) == gets_before, "the recorded outcome is judged, not re-read"
    assert (result.name, result.success_count, result.failure_count) == (OP, 2, 1)
    assert any("already finished as this request's outcome" in line for line in lines)
    assert lines[-1] == f"accepted {OP} with max_failures=1"
    assert journal.get(FP) is None, "accepted: the record's job is done"


def test_an_outcome_still_over_the_limit_fails_again_without_submitting(
    journal: JournalStore,
) -> None:
    api = FakeApi(submits=[OP], operations={OP: [export_op(success=5, failure=3, error=PARTIAL)]})
    for _ in range(3):
        with pytest.raises(OperationFailed) as info:
            run(api, journal, FakeTime(), spec=APPEND_SPEC, policy=WaitPolicy(max_failures=2))
        assert "max_failures=2" in str(info.value) and "`triggers`" in str(info.value)
    assert len(api.submitted) == 1
    assert journal.get(FP) is not None


def test_any_error_after_data_moved_is_the_outcome(journal: JournalStore) -> None:
    crashed = export_op(success=4, failure=0, error={"code": 13, "message": "backend died"})
    api = FakeApi(submits=[OP], operations={OP: [crashed]})
    with pytest.raises(OperationFailed, match="code 13"):
        run(api, journal, FakeTime(), spec=APPEND_SPEC)
    # Tolerating any number of failed instances does not accept an INTERNAL error.
    with pytest.raises(OperationFailed, match="4 instance\\(s\\) were already exported"):
        run(api, journal, FakeTime(), spec=APPEND_SPEC, policy=WaitPolicy(max_failures=None))
    assert len(api.submitted) == 1


def test_a_failure_that_moved_nothing_may_be_submitted_again(journal: JournalStore) -> None:
    nothing = export_op(success=0, failure=3, error=PARTIAL)
    second = f"{OP}0"
    api = FakeApi(
        submits=[OP, second],
        operations={OP: [nothing], second: [export_op(name=second, success=3)]},
    )
    with pytest.raises(OperationFailed) as info:
        run(api, journal, FakeTime(), spec=APPEND_SPEC)
    assert "`triggers`" not in str(info.value)
    assert journal.get(FP) is None
    result, _ = run(api, journal, FakeTime(), spec=APPEND_SPEC)
    assert len(api.submitted) == 2 and result.name == second


def test_a_resumed_operation_that_fails_after_moving_data_becomes_the_outcome(
    journal: JournalStore,
) -> None:
    # A run timed out (record with a name); the next one resumes, sees the failure, keeps it.
    journal.put(JournalRecord(FP, "export", STORE, SUBMITTED_AT, OP))
    api = FakeApi(operations={OP: [export_op(success=1, failure=1, error=PARTIAL)]})
    with pytest.raises(OperationFailed):
        run(api, journal, FakeTime(), spec=APPEND_SPEC)
    record = journal.get(FP)
    assert record is not None and record.outcome is not None
    assert record.submitted_at == SUBMITTED_AT, "the record keeps its submit time"
    assert api.submitted == []


def test_an_import_failure_says_what_moved_and_names_no_table(journal: JournalStore) -> None:
    api = FakeApi(
        submits=[OP], operations={OP: [op(done=True, success=6, failure=1, error=PARTIAL)]}
    )
    with pytest.raises(OperationFailed) as info:
        run(api, journal, FakeTime())
    message = str(info.value)
    assert "6 instance(s) were already imported" in message
    assert "run the import again on purpose, change the resource's `triggers`" in message
    assert "row(s)" not in message


def test_the_hint_and_the_result_survive_pickling() -> None:
    finished = parse_operation(export_op(success=2, failure=1, error=PARTIAL))
    error = OperationFailed(OP, 3, "x", finished, None, "change `triggers`")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.hint, copy.result, str(copy)) == (error.hint, finished, str(error))
    assert str(error).endswith(". change `triggers`")


def test_records_with_an_outcome_round_trip_and_older_records_still_read(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    outcome = parse_operation(export_op(success=2, failure=1, error=PARTIAL))
    record = JournalRecord(FP, "export", STORE, SUBMITTED_AT, OP).with_outcome(outcome)
    journal.put(record)
    assert journal.get(FP) == record
    # A record written before outcomes existed, and one whose outcome is unreadable, read as
    # a named in-flight record: the next run reads the operation again (still no submit).
    for text in (
        '{"kind": "export", "store": "s", "submitted_at": 1, "operation_name": "o"}',
        '{"kind": "export", "store": "s", "submitted_at": 1, "operation_name": "o", '
        '"outcome": {"name": "o", "bogus": 1}}',
    ):
        journal.path_for(FP).write_text(text)
        assert journal.get(FP) == JournalRecord(FP, "export", "s", 1.0, "o")


@pytest.mark.parametrize(
    "text",
    [
        "{not json",  # cut short by a full disk or a crash
        '{"kind": "export", "store": "s", "submitted_at": "yesterday", "outcome": {}}',
    ],
)
def test_an_unreadable_record_fails_naming_it_and_submits_nothing(
    journal: JournalStore, text: str
) -> None:
    # The record may hold an outcome (data already moved) or a running operation: without
    # reading it nothing says a submit is safe, so the run stops instead of submitting.
    if isinstance(journal, Journal):
        journal.directory.mkdir(parents=True)
        journal.path_for(FP).write_text(text)
    else:
        assert isinstance(journal, GcsJournal)
        name = str(journal.path_for(FP)).removeprefix(f"gs://{journal.bucket}/")
        journal.storage.objects[(journal.bucket, name)] = text.encode()  # type: ignore[attr-defined]
    api = FakeApi(submits=[OP], operations={OP: [export_op(success=3)]})
    with pytest.raises(JournalConflict) as info:
        run(api, journal, FakeTime(), spec=APPEND_SPEC)
    assert api.submitted == []
    message = str(info.value)
    assert "its journal record cannot be read as an export" in message
    assert "or a record that cannot be read" in message, "no claim of an interrupted submit"
    assert str(journal.path_for(FP)) in message
    assert journal.get(FP) is not None, "the record is left for the user to look at"


def test_an_error_max_failures_cannot_accept_does_not_suggest_raising_it(
    journal: JournalStore,
) -> None:
    crashed = export_op(success=4, failure=0, error={"code": 13, "message": "backend died"})
    api = FakeApi(submits=[OP], operations={OP: [crashed]})
    with pytest.raises(OperationFailed) as info:
        run(api, journal, FakeTime(), spec=APPEND_SPEC, policy=WaitPolicy(max_failures=None))
    message = str(info.value)
    assert "under max_failures" not in message and "None for any" not in message, message
    assert "reports this failure again and submits nothing" in message
    assert "change the resource's `triggers`" in message
    assert len(api.submitted) == 1
