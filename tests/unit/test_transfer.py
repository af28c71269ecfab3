"""run_transfer: submit once, resume from the journal, adopt interrupted submits, deadlines."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from dicom_transfer.errors import (
    JournalConflict,
    OperationFailed,
    OperationForgotten,
    OperationTimedOut,
    PermissionDenied,
    Transient,
)
from dicom_transfer.healthcare.client import ApiConfig, HealthcareApi, StorageApi
from dicom_transfer.healthcare.journal import Journal, JournalRecord
from dicom_transfer.healthcare.transfer import (
    find_interrupted_operation,
    stage_filter_file,
)
from dicom_transfer.specs.props import WaitPolicy, export_spec_from_props
from dicom_transfer.specs.requests import ExportSpec
from googleapiclient.http import HttpMockSequence
from support.scripted_api import (
    BODY,
    DATASET,
    EXPORT_METHOD,
    FP,
    IMPORT_METHOD,
    OP,
    STORE,
    SUBMITTED_AT,
    FakeApi,
    FakeTime,
    op,
    run,
)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal")


def test_fresh_submit_waits_and_clears_the_journal(journal: Journal) -> None:
    fake = FakeTime(0.0)
    api = FakeApi(submits=[OP], operations={OP: [op(), op(success=5), op(done=True, success=10)]})
    result, lines = run(api, journal, fake)
    assert result.success_count == 10 and result.done
    assert len(api.submitted) == 1 and api.submitted[0] == (STORE, BODY)
    assert journal.get(FP) is None
    assert lines[0] == f"submitted {OP}"
    assert "success=10" in lines[-1] and "done" in lines[-1]
    assert fake.sleeps[0] > 0 and len(api.gets) == 3, "no GET before the first sleep"


def test_journal_with_name_resumes_without_submitting(journal: Journal) -> None:
    fake = FakeTime(0.0)
    journal.put(JournalRecord(FP, "import", STORE, SUBMITTED_AT, OP))
    api = FakeApi(operations={OP: [op(success=3), op(done=True, success=9)]})
    result, lines = run(api, journal, fake)
    assert api.submitted == []
    assert result.success_count == 9
    assert any(line.startswith(f"resuming {OP}") for line in lines)
    assert journal.get(FP) is None
    assert len(api.gets) == 2 and fake.sleeps == [], "a resumed operation is read at once"


def test_resumed_operation_is_polled_for_its_age_from_create_time(journal: Journal) -> None:
    # Created 101 s before this run (wall clock), reporting no counters: the waiter sleeps
    # what an operation of that age calls for, not the 1 s a fresh one starts with.
    fake = FakeTime(0.0)
    journal.put(JournalRecord(FP, "import", STORE, SUBMITTED_AT - 101, OP))
    created = "2024-05-01T09:58:19Z"
    running = op(created=created)
    running["metadata"]["counter"] = {}
    api = FakeApi(operations={OP: [running, running, op(done=True, success=1, created=created)]})
    run(api, journal, fake)
    assert len(fake.sleeps) == 1 and fake.sleeps[0] >= 15.0, fake.sleeps


class RacingJournal(Journal):
    """Another run claims every time just before this one and is gone when it looks."""

    def claim(self, record: JournalRecord) -> bool:
        return False


def test_a_claim_lost_twice_to_another_run_submits_nothing(tmp_path: Path) -> None:
    fake = FakeTime(0.0)
    api = FakeApi(submits=[OP], operations={OP: [op(done=True)]})
    with pytest.raises(JournalConflict, match="another run claimed the same request"):
        run(api, RacingJournal(tmp_path / "journal"), fake)
    assert api.submitted == []


def test_a_forgotten_operation_submits_nothing_and_keeps_its_record(journal: Journal) -> None:
    # The journal names an operation only once the API answered the submit: the request ran
    # (or runs) and may have moved data, so a 404 for it is no licence to submit again.
    fake = FakeTime(0.0)
    old = f"{DATASET}/operations/1"
    record = JournalRecord(FP, "import", STORE, SUBMITTED_AT - 40 * 86400, old)
    journal.put(record)
    api = FakeApi(submits=[OP], operations={OP: [op(done=True, success=1)]})
    with pytest.raises(OperationForgotten) as forgotten:
        run(api, journal, fake)
    assert api.submitted == []
    assert journal.get(FP) == record
    message = str(forgotten.value)
    assert old in message and record.submitted_at_iso in message
    assert "change `triggers`" in message and str(journal.path_for(FP)) in message
    assert isinstance(forgotten.value, JournalConflict)
    assert str(pickle.loads(pickle.dumps(forgotten.value))) == message
    journal.remove(FP)  # what the message says to do when the transfer never ran
    result, _ = run(api, journal, fake)
    assert len(api.submitted) == 1 and result.name == OP


def test_interrupted_submit_adopts_the_single_matching_operation(journal: Journal) -> None:
    fake = FakeTime(0.0)
    journal.put(JournalRecord(FP, "import", STORE, SUBMITTED_AT, None))
    listing = [
        op(f"{DATASET}/operations/1", created="2024-04-30T10:00:00Z"),  # too old
        op(f"{DATASET}/operations/2", method=EXPORT_METHOD),  # other method
        op(OP, created="2024-05-01T10:00:02.123456789Z"),
    ]
    api = FakeApi(listing=listing, operations={OP: [op(done=True, success=4)]})
    result, lines = run(api, journal, fake)
    assert api.submitted == []
    assert result.name == OP and result.success_count == 4
    assert any(line.startswith(f"adopted {OP}") for line in lines)
    assert journal.get(FP) is None


def test_operation_owned_by_another_record_is_not_adopted(journal: Journal) -> None:
    fake = FakeTime(0.0)
    journal.put(JournalRecord(FP, "import", STORE, SUBMITTED_AT, None))
    journal.put(JournalRecord("ef" * 32, "import", STORE, SUBMITTED_AT, OP))
    api = FakeApi(listing=[op(OP)])
    with pytest.raises(JournalConflict):
        run(api, journal, fake)
    assert api.submitted == []


@pytest.mark.parametrize("count", [0, 2])
def test_interrupted_submit_without_unique_match_fails_safe(journal: Journal, count: int) -> None:
    fake = FakeTime(0.0)
    journal.put(JournalRecord(FP, "import", STORE, SUBMITTED_AT, None))
    listing = [op(f"{DATASET}/operations/{i}") for i in range(count)]
    api = FakeApi(listing=listing)
    with pytest.raises(JournalConflict) as info:
        run(api, journal, fake)
    assert api.submitted == []
    message = str(info.value)
    assert str(journal.path_for(FP)) in message and "delete the journal entry" in message
    assert journal.get(FP) is not None


def test_interrupted_submit_that_created_nothing_is_resubmitted_once_it_cannot_appear(
    journal: Journal,
) -> None:
    fake = FakeTime(0.0)
    fake.now = 600.0  # the interrupted run submitted ten minutes ago
    journal.put(JournalRecord(FP, "import", STORE, SUBMITTED_AT, None))
    api = FakeApi(listing=[], submits=[OP], operations={OP: [op(done=True, success=2)]})
    result, lines = run(api, journal, fake)
    assert len(api.submitted) == 1 and result.name == OP
    assert any("created no import operation" in line for line in lines)
    assert journal.get(FP) is None


def test_timeout_keeps_the_record_and_next_run_resumes(journal: Journal) -> None:
    fake = FakeTime(0.0)
    api = FakeApi(submits=[OP], operations={OP: [op(success=1)]})
    with pytest.raises(OperationTimedOut) as info:
        run(api, journal, fake, policy=WaitPolicy(timeout_seconds=60))
    assert info.value.operation_name == OP
    assert "re-run `pulumi up`" in str(info.value)
    assert fake.now == pytest.approx(60.0)
    record = journal.get(FP)
    assert record is not None and record.operation_name == OP

    api.operations[OP] = [op(done=True, success=7)]
    result, _ = run(api, journal, FakeTime(0.0))
    assert result.success_count == 7
    assert len(api.submitted) == 1  # no second submit
    assert journal.get(FP) is None


def test_partial_failure_policy(journal: Journal) -> None:
    error = {"code": 3, "message": "some instances failed; see logs"}
    finished = op(done=True, success=8, failure=2, error=error)
    api = FakeApi(submits=[OP], operations={OP: [finished]})
    with pytest.raises(OperationFailed) as info:
        run(api, journal, FakeTime(0.0), policy=WaitPolicy(max_failures=1))
    assert info.value.code == 3 and info.value.logs_url == "https://logs/q"
    # 8 instances moved: the operation stays the request's outcome (test_finished_outcome.py).
    record = journal.get(FP)
    assert record is not None and record.outcome is not None

    result, _ = run(api, journal, FakeTime(0.0), policy=WaitPolicy(max_failures=None))
    assert result.failure_count == 2 and len(api.submitted) == 1


def test_cancelled_operation_fails_even_when_tolerating_failures(journal: Journal) -> None:
    api = FakeApi(
        submits=[OP], operations={OP: [op(done=True, error={"code": 1, "message": "cancelled"})]}
    )
    with pytest.raises(OperationFailed, match="code 1"):
        run(api, journal, FakeTime(0.0), policy=WaitPolicy(max_failures=None))


def test_refused_submit_clears_the_record(journal: Journal) -> None:
    api = FakeApi(submits=[Transient(429, "RESOURCE_EXHAUSTED", "quota", request_sent=False)])
    with pytest.raises(Transient):
        run(api, journal, FakeTime(0.0))
    assert journal.get(FP) is None


def test_ambiguous_submit_adopts_at_once_or_keeps_the_record(journal: Journal) -> None:
    fake = FakeTime(0.0)
    reset = Transient(0, "UNAVAILABLE", "connection reset", request_sent=True)
    api = FakeApi(
        submits=[reset],
        listing=[op(OP, created="2024-05-01T10:00:00.5Z")],
        operations={OP: [op(done=True, success=2)]},
    )
    result, lines = run(api, journal, fake)
    assert result.name == OP and len(api.submitted) == 1
    assert any("adopted" in line for line in lines)

    api = FakeApi(submits=[reset], listing=[])
    with pytest.raises(Transient) as info:
        run(api, journal, FakeTime(0.0))
    assert "may or may not have created" in str(info.value)
    record = journal.get(FP)
    assert record is not None and record.operation_name is None
    api.submit_script = [OP]
    with pytest.raises(JournalConflict):
        run(api, journal, FakeTime(0.0))
    assert len(api.submitted) == 1  # the next run did not submit blindly


def test_permission_window_is_bounded_by_the_deadline(journal: Journal) -> None:
    fake = FakeTime(0.0)
    denied = PermissionDenied(403, "PERMISSION_DENIED", "denied")
    api = FakeApi(submits=[denied] * 100)
    with pytest.raises(PermissionDenied) as info:
        run(
            api,
            journal,
            fake,
            policy=WaitPolicy(timeout_seconds=90, permission_retry_seconds=600),
        )
    assert fake.now == pytest.approx(90.0)
    assert "roles/storage.objectViewer on bucket raw-images" in str(info.value)
    assert journal.get(FP) is None


# --- through HttpMockSequence --------------------------------------------------------------------


def response(code: int, body: dict[str, Any]) -> tuple[dict[str, str], str]:
    return ({"status": str(code)}, json.dumps(body))


def test_http_permission_denied_then_success_then_503_on_poll(journal: Journal) -> None:
    fake = FakeTime(0.0)
    denied = {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "no access"}}
    unavailable = {"error": {"code": 503, "status": "UNAVAILABLE", "message": "later"}}
    http = HttpMockSequence(
        [
            response(403, denied),
            response(403, denied),
            response(503, unavailable),
            response(200, {"name": OP}),
            response(503, unavailable),
            response(200, op(success=1)),
            response(200, op(done=True, success=3)),
        ]
    )
    api = HealthcareApi(
        ApiConfig(endpoint="http://127.0.0.1:1/"),
        http_factory=lambda: http,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    result, lines = run(api, journal, fake)
    assert result.success_count == 3
    assert sum("PERMISSION_DENIED on submit" in line for line in lines) == 2
    assert http._iterable == []


def test_http_export_with_failure_over_limit(journal: Journal) -> None:
    fake = FakeTime(0.0)
    finished = op(
        done=True,
        success=1,
        failure=4,
        method=EXPORT_METHOD,
        error={"code": 3, "message": "4 failed"},
    )
    http = HttpMockSequence([response(200, {"name": OP}), response(200, finished)])
    api = HealthcareApi(ApiConfig(endpoint="http://h:1/"), http_factory=lambda: http)
    with pytest.raises(OperationFailed) as info:
        run(
            api,
            journal,
            fake,
            spec=export_spec_from_props(
                {"dicom_store": STORE, "gcs_destination": {"uri_prefix": "gs://out"}}
            ),
            policy=WaitPolicy(max_failures=3),
        )
    assert "failure=4" in str(info.value) and "https://logs/q" in str(info.value)


# --- adoption matching and filter staging --------------------------------------------------------


def test_find_interrupted_operation_window() -> None:
    record = JournalRecord(FP, "export", STORE, SUBMITTED_AT, None)
    ops = [
        op("a", method=EXPORT_METHOD, created="2024-05-01T09:58:30Z"),  # skew allowance
        op("b", method=EXPORT_METHOD, created="2024-05-01T09:50:00Z"),  # too early
        op("c", method=EXPORT_METHOD, created="2024-05-01T10:14:00Z"),  # within window
        op("d", method=EXPORT_METHOD, created="2024-05-01T10:30:00Z"),  # too late
        op("e", method=IMPORT_METHOD),
        op("f", method=EXPORT_METHOD, created="garbage"),
    ]
    assert [r.name for r in find_interrupted_operation(ops, record)] == ["a", "c"]
    assert [r.name for r in find_interrupted_operation(ops, record, exclude=["a"])] == ["c"]


class FakeStorage:
    def __init__(self, existing: set[tuple[str, str]] | None = None) -> None:
        self.objects = {key: b"" for key in existing or set()}
        self.uploads: list[tuple[str, str, bytes, str]] = []

    def exists(self, bucket: str, name: str) -> bool:
        return (bucket, name) in self.objects

    def write(
        self, bucket: str, name: str, data: bytes, content_type: str, *, only_if_absent: bool
    ) -> bool:
        assert only_if_absent, "a staged filter file is only ever created"
        self.uploads.append((bucket, name, data, content_type))
        self.objects[(bucket, name)] = data
        return True


def export_spec() -> ExportSpec:
    return export_spec_from_props(
        {
            "dicom_store": STORE,
            "gcs_destination": {"uri_prefix": "gs://out-bucket/x"},
            "filter_resource_paths": ["/studies/1.2", "/studies/1.3/series/4.5"],
            "filter_staging_uri": "gs://stage-bucket/filters",
        }
    )


def test_stage_filter_file_uploads_once() -> None:
    storage = FakeStorage()
    spec = export_spec()
    uri = stage_filter_file(storage, spec)  # type: ignore[arg-type]
    assert uri.startswith("gs://stage-bucket/filters/") and uri.endswith(".txt")
    bucket, name, data, content_type = storage.uploads[0]
    assert (bucket, f"gs://{bucket}/{name}") == ("stage-bucket", uri)
    assert data == b"/studies/1.2\n/studies/1.3/series/4.5\n" and content_type == "text/plain"
    assert stage_filter_file(storage, spec) == uri  # type: ignore[arg-type]
    assert len(storage.uploads) == 1
    assert spec.filter_uri == uri
    assert spec.request_body()["filterConfig"] == {"resourcePathsGcsUri": uri}


def test_stage_filter_file_permission_message() -> None:
    class Denied(FakeStorage):
        def write(
            self, bucket: str, name: str, data: bytes, content_type: str, *, only_if_absent: bool
        ) -> bool:
            raise PermissionDenied(403, "PERMISSION_DENIED", "no write")

    with pytest.raises(PermissionDenied, match="objectCreator on bucket stage-bucket"):
        stage_filter_file(Denied(), export_spec())  # type: ignore[arg-type]


def test_stage_filter_file_over_http() -> None:
    http = HttpMockSequence(
        [
            response(404, {"error": {"code": 404, "message": "No such object"}}),
            response(200, {"name": "x"}),
        ]
    )
    storage = StorageApi(
        ApiConfig(storage_endpoint="http://127.0.0.1:2/"), http_factory=lambda: http
    )
    assert stage_filter_file(storage, export_spec()).startswith("gs://stage-bucket/filters/")
    assert http._iterable == []
