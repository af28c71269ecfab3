"""DicomImportProvider / DicomExportProvider lifecycle against a scripted HTTP transport."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dicom_transfer import (
    DicomExportProvider,
    DicomImportProvider,
    OperationFailed,
    OperationTimedOut,
    PermissionDenied,
)
from dicom_transfer.healthcare.runtime import TransferRuntime
from dicom_transfer.specs.problems import UNKNOWN
from pulumi.dynamic import CheckResult
from support.clock import FakeClock
from support.lifecycle_cases import EXPORT_PROPS, IMPORT_PROPS, recorded
from support.scripted_http import (
    LOGS,
    OPERATION,
    STORE,
    ScriptedHttp,
    error,
    operation,
    reply,
)


def _script(http: ScriptedHttp, *responses: tuple[dict[str, str], str]) -> None:
    http._iterable.extend(responses)


# --- check ---------------------------------------------------------------------------------


def _failed_fields(result: CheckResult) -> set[str]:
    return {failure.property for failure in result.failures}


def test_check_accepts_valid_import_and_echoes_inputs() -> None:
    result = DicomImportProvider().check({}, dict(IMPORT_PROPS))
    assert result.failures == []
    assert result.inputs == IMPORT_PROPS


def test_check_reports_every_bad_field_with_its_allowed_form() -> None:
    bad = {
        **IMPORT_PROPS,
        "dicom_store": "projects/p/../x",
        "gcs_uri": "gs://b/**/x/*.dcm",
        "timeout_seconds": -1.0,
    }
    result = DicomImportProvider().check({}, bad)
    assert _failed_fields(result) == {"dicom_store", "gcs_uri", "timeout_seconds"}
    reasons = {failure.property: failure.reason for failure in result.failures}
    assert "'**' may appear once, only at the end" in reasons["gcs_uri"]
    assert "projects/PROJECT/locations/LOCATION" in reasons["dicom_store"]


def test_check_lets_unknown_inputs_through() -> None:
    result = DicomImportProvider().check({}, {**IMPORT_PROPS, "dicom_store": UNKNOWN})
    assert result.failures == []


def test_check_export_needs_exactly_one_destination() -> None:
    both = {**EXPORT_PROPS, "bigquery_destination": {"table_uri": "bq://demo-project.d.t"}}
    assert "bigquery_destination" in _failed_fields(DicomExportProvider().check({}, both))
    neither = {k: v for k, v in EXPORT_PROPS.items() if k != "gcs_destination"}
    assert "gcs_destination" in _failed_fields(DicomExportProvider().check({}, neither))


# --- diff / update ---------------------------------------------------------------------------


def _outputs(props: dict[str, Any]) -> dict[str, Any]:
    return recorded(props)


@pytest.mark.parametrize(
    ("change", "replaces"),
    [
        ({"gcs_uri": "gs://raw-dicom/other/*.dcm"}, ["gcs_uri"]),
        ({"triggers": ["rerun-1"]}, ["triggers"]),
        ({"dicom_store": STORE + "2"}, ["dicom_store"]),
        ({"blob_storage_class": "COLDLINE"}, ["blob_storage_class"]),
        ({"gcs_uri": UNKNOWN}, ["gcs_uri"]),
    ],
)
def test_diff_replaces_when_the_request_changes(
    change: dict[str, Any], replaces: list[str]
) -> None:
    result = DicomImportProvider().diff(
        OPERATION, _outputs(IMPORT_PROPS), {**IMPORT_PROPS, **change}
    )
    assert result.changes is True
    assert result.replaces == replaces


@pytest.mark.parametrize(
    "change",
    [{"timeout_seconds": 7200.0}, {"max_failures": 5.0}, {"endpoint": "http://127.0.0.1:10/"}],
)
def test_diff_updates_in_place_when_only_waiting_or_connection_changes(
    change: dict[str, Any],
) -> None:
    result = DicomImportProvider().diff(
        OPERATION, _outputs(IMPORT_PROPS), {**IMPORT_PROPS, **change}
    )
    assert result.changes is True
    assert result.replaces == []


def test_diff_no_change() -> None:
    result = DicomImportProvider().diff(OPERATION, _outputs(IMPORT_PROPS), dict(IMPORT_PROPS))
    assert result.changes is False
    assert result.replaces == []


@pytest.mark.parametrize(
    "destination",
    [
        {"uri_prefix": "gs://out-dicom/copy", "mime_type": "IMAGE/PNG"},
        {"uri_prefix": "gs://out-dicom/copy", "mime_type": " image/png "},
    ],
)
def test_diff_another_spelling_of_the_same_request_changes_nothing(
    destination: dict[str, Any],
) -> None:
    # The request (and the journal fingerprint) are the same: no re-run of the export.
    news = {**EXPORT_PROPS, "gcs_destination": destination}
    result = DicomExportProvider().diff(OPERATION, _outputs(EXPORT_PROPS), news)
    assert (result.changes, result.replaces) == (False, [])


def test_diff_unset_and_empty_mime_type_are_the_same_request() -> None:
    olds = {**EXPORT_PROPS, "gcs_destination": {"uri_prefix": "gs://out-dicom/copy"}}
    news = {
        **EXPORT_PROPS,
        "gcs_destination": {"uri_prefix": "gs://out-dicom/copy", "mime_type": ""},
    }
    result = DicomExportProvider().diff(OPERATION, _outputs(olds), news)
    assert (result.changes, result.replaces) == (False, [])
    other = {
        **EXPORT_PROPS,
        "gcs_destination": {"uri_prefix": "gs://out-dicom/copy", "mime_type": "image/jpeg"},
    }
    assert DicomExportProvider().diff(OPERATION, _outputs(EXPORT_PROPS), other).replaces == [
        "gcs_destination"
    ]


def test_an_aliased_rename_records_the_new_name_in_place_and_calls_nothing(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    # DicomImport("load") adopted as DicomPipeline("archive")'s step "load": the child is
    # "archive-load" and its resource_name input follows; the request is the same.
    olds = _outputs({**IMPORT_PROPS, "resource_name": "load"})
    news = {**IMPORT_PROPS, "resource_name": "archive-load"}
    provider = DicomImportProvider(runtime)
    result = provider.diff(OPERATION, olds, news)
    assert (result.changes, result.replaces) == (True, [])
    outs = provider.update(OPERATION, olds, news).outs
    assert outs is not None
    assert outs["resource_name"] == "archive-load"
    assert (outs["operation_name"], outs["success_count"]) == (OPERATION, 7)
    assert http.request_sequence == [], "a rename submits and reads nothing"
    # A rename together with a request change is a replace (a new request runs once).
    changed = {**news, "triggers": ["rerun"]}
    assert provider.diff(OPERATION, olds, changed).replaces == ["triggers"]


def test_diff_export_filter_list_change_replaces() -> None:
    news = {**EXPORT_PROPS, "filter_resource_paths": ["/studies/1.2.3"]}
    result = DicomExportProvider().diff(OPERATION, _outputs(EXPORT_PROPS), news)
    assert result.replaces == ["filter_resource_paths"]


def test_update_keeps_operation_outputs_and_resubmits_nothing(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    news = {**IMPORT_PROPS, "timeout_seconds": 7200.0, "max_failures": 3.0}
    outs = DicomImportProvider(runtime).update(OPERATION, _outputs(IMPORT_PROPS), news).outs
    assert outs is not None
    assert outs["operation_name"] == OPERATION
    assert outs["success_count"] == 7
    assert outs["timeout_seconds"] == 7200.0
    assert outs["max_failures"] == 3.0
    assert http.request_sequence == []


# --- create ----------------------------------------------------------------------------------


def test_create_submits_once_waits_and_returns_counters(
    http: ScriptedHttp,
    runtime: TransferRuntime,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _script(
        http,
        reply(200, operation(done=False)),
        reply(200, operation(done=False, success=40, pending=60)),
        reply(200, operation(done=True, success=100)),
    )
    result = DicomImportProvider(runtime).create(dict(IMPORT_PROPS))
    assert result.id == OPERATION
    assert result.outs is not None
    assert {
        k: result.outs[k]
        for k in (
            "operation_name",
            "success_count",
            "failure_count",
            "create_time",
            "end_time",
            "logs_url",
        )
    } == {
        "operation_name": OPERATION,
        "success_count": 100,
        "failure_count": 0,
        "create_time": "2026-11-24T10:00:00Z",
        "end_time": "2026-11-24T10:05:00Z",
        "logs_url": LOGS,
    }
    assert result.outs["gcs_uri"] == IMPORT_PROPS["gcs_uri"]
    submits = http.calls("POST", ":import")
    assert len(submits) == 1
    assert http.bodies(":import") == [{"gcsSource": {"uri": "gs://raw-dicom/incoming/**.dcm"}}]
    assert "dicom import load" in capsys.readouterr().err


def _script_partial_failure(http: ScriptedHttp) -> None:
    """The submit's answer, then the operation done with 98 instances moved and 2 failed."""
    _script(
        http,
        reply(200, operation(done=False)),
        reply(200, operation(done=True, success=98, failure=2, error_code=3)),
    )


def test_create_fails_on_partial_failure_beyond_max_failures(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    _script_partial_failure(http)
    with pytest.raises(OperationFailed) as caught:
        DicomImportProvider(runtime).create(dict(IMPORT_PROPS))
    message = str(caught.value)
    for part in (OPERATION, "code 3", "success=98", "failure=2", LOGS):
        assert part in message


def test_a_create_failed_after_data_moved_is_adopted_by_the_next_create_without_a_submit(
    http: ScriptedHttp, runtime: TransferRuntime, journal_dir: Path
) -> None:
    _script_partial_failure(http)
    with pytest.raises(OperationFailed) as caught:
        DicomImportProvider(runtime).create(dict(IMPORT_PROPS))
    assert "change the resource's `triggers`" in str(caught.value)
    assert caught.value.result.success_count == 98, "the error carries the operation"
    assert len(list(journal_dir.glob("*.json"))) == 1
    calls = len(http.request_sequence)

    # max_failures raised: the same request, judged again; the script has no more answers.
    result = DicomImportProvider(runtime).create({**IMPORT_PROPS, "max_failures": 2.0})
    assert result.id == OPERATION
    assert result.outs is not None
    assert (result.outs["success_count"], result.outs["failure_count"]) == (98, 2)
    assert len(http.request_sequence) == calls, "no submit, no request at all"
    assert len(http.calls("POST")) == 1, "one submit in all"
    assert list(journal_dir.glob("*.json")) == []


def test_create_tolerates_failures_within_max_failures(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    _script_partial_failure(http)
    result = DicomImportProvider(runtime).create({**IMPORT_PROPS, "max_failures": 2.0})
    assert result.outs is not None
    assert (result.outs["success_count"], result.outs["failure_count"]) == (98, 2)


def test_create_fails_on_a_failed_operation_whatever_max_failures(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    _script(
        http, reply(200, operation(done=False)), reply(200, operation(done=True, error_code=13))
    )
    with pytest.raises(OperationFailed, match="code 13"):
        DicomImportProvider(runtime).create({**IMPORT_PROPS, "max_failures": "unlimited"})


def test_create_retries_429_submit_and_503_poll_and_submits_once(
    http: ScriptedHttp, runtime: TransferRuntime, clock: FakeClock
) -> None:
    _script(
        http,
        error(429, "RESOURCE_EXHAUSTED", "quota"),
        reply(200, operation(done=False)),
        error(503, "UNAVAILABLE", "try again"),
        reply(200, operation(done=True, success=5)),
    )
    result = DicomImportProvider(runtime).create(dict(IMPORT_PROPS))
    assert result.outs is not None and result.outs["success_count"] == 5
    assert len(http.calls("POST", ":import")) == 2  # the 429 one created nothing
    assert clock.sleeps, "retries must back off"


def test_create_retries_permission_denied_until_the_grant_propagates(
    http: ScriptedHttp, runtime: TransferRuntime, clock: FakeClock
) -> None:
    denied = error(403, "PERMISSION_DENIED", "service agent lacks storage.objects.list")
    _script(
        http,
        denied,
        denied,
        reply(200, operation(done=False)),
        reply(200, operation(done=True, success=1)),
    )
    result = DicomImportProvider(runtime).create(dict(IMPORT_PROPS))
    assert result.outs is not None and result.outs["success_count"] == 1
    assert sum(clock.sleeps) >= 5


def test_create_gives_up_on_permission_denied_naming_role_and_bucket(
    http: ScriptedHttp, runtime: TransferRuntime, clock: FakeClock
) -> None:
    denied = error(403, "PERMISSION_DENIED", "denied")
    _script(http, *[denied] * 40)
    with pytest.raises(PermissionDenied) as caught:
        DicomImportProvider(runtime).create({**IMPORT_PROPS, "permission_retry_seconds": 30.0})
    message = str(caught.value)
    assert "roles/storage.objectViewer" in message
    assert "raw-dicom" in message
    http._iterable.clear()


def test_create_enforces_its_own_deadline_and_says_how_to_resume(
    http: ScriptedHttp, runtime: TransferRuntime, clock: FakeClock, journal_dir: Path
) -> None:
    _script(http, reply(200, operation(done=False)), *[reply(200, operation(done=False))] * 60)
    with pytest.raises(OperationTimedOut) as caught:
        DicomImportProvider(runtime).create({**IMPORT_PROPS, "timeout_seconds": 60.0})
    assert OPERATION in str(caught.value)
    assert "pulumi up" in str(caught.value)
    assert clock.now - 1_000.0 <= 61
    http._iterable.clear()
    assert list(journal_dir.glob("*.json")), "the journal must keep the operation to resume"


def test_create_after_interruption_resumes_instead_of_submitting_again(
    http: ScriptedHttp, runtime: TransferRuntime, clock: FakeClock
) -> None:
    _script(http, reply(200, operation(done=False)), *[reply(200, operation(done=False))] * 60)
    with pytest.raises(OperationTimedOut):
        DicomImportProvider(runtime).create({**IMPORT_PROPS, "timeout_seconds": 30.0})
    http._iterable.clear()
    submits_before = len(http.calls("POST", ":import"))

    # Resuming checks the recorded operation, then waits on it: two GETs, no POST.
    _script(
        http,
        reply(200, operation(done=False, success=6)),
        reply(200, operation(done=True, success=12)),
    )
    result = DicomImportProvider(runtime).create(dict(IMPORT_PROPS))
    assert result.id == OPERATION
    assert result.outs is not None and result.outs["success_count"] == 12
    assert len(http.calls("POST", ":import")) == submits_before == 1


def test_export_stages_inline_filter_then_submits_with_its_uri(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    _script(
        http,
        error(404, "NOT_FOUND", "no such object"),  # the staged filter does not exist yet
        reply(200, {"kind": "storage#object", "bucket": "out-dicom", "name": "filters/x.txt"}),
        reply(200, operation(done=False)),
        reply(200, operation(done=True, success=3)),
    )
    result = DicomExportProvider(runtime).create(dict(EXPORT_PROPS))
    assert result.outs is not None
    filter_uri = result.outs["filter_uri"]
    assert filter_uri.startswith("gs://out-dicom/filters/") and filter_uri.endswith(".txt")
    uploads = [uri for _m, uri in http.calls("POST") if "/upload/" in uri]
    assert len(uploads) == 1
    assert http.bodies(":export") == [
        {
            "gcsDestination": {"uriPrefix": "gs://out-dicom/copy", "mimeType": "image/png"},
            "filterConfig": {"resourcePathsGcsUri": filter_uri},
        }
    ]


# --- read / delete ---------------------------------------------------------------------------


def test_read_refreshes_counters_from_the_operation(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    _script(http, reply(200, operation(done=True, success=9, failure=1, error_code=3)))
    result = DicomImportProvider(runtime).read(OPERATION, _outputs(IMPORT_PROPS))
    assert result.id == OPERATION
    assert result.outs is not None
    assert (result.outs["success_count"], result.outs["failure_count"]) == (9, 1)


def test_read_keeps_recorded_outputs_once_the_operation_expired(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    _script(http, error(404, "NOT_FOUND", "operation not found"))
    recorded = _outputs(IMPORT_PROPS)
    result = DicomImportProvider(runtime).read(OPERATION, recorded)
    assert result.id == OPERATION
    assert result.outs == recorded


def test_delete_makes_no_call_and_says_what_it_did(
    http: ScriptedHttp, runtime: TransferRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    DicomImportProvider(runtime).delete(OPERATION, _outputs(IMPORT_PROPS))
    assert http.request_sequence == []
    err = capsys.readouterr().err
    assert "made no API call and deleted none of the data it imported" in err
    assert OPERATION in err
    # The store may be gone: delete does not claim where the data is.
    assert "kept" not in err and "stays" not in err
