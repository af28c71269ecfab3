"""DicomTransferProvider (the native provider) against a scripted HTTP transport.

What only the native front end does: preview outputs, the engine's timeout, partial state of
a failed create, re-judging on update, import of an operation, delete's message, the schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dicom_transfer.healthcare.runtime import TransferRuntime
from dicom_transfer.native.provider import (
    TRANSFER_WORKERS,
    DicomTransferProvider,
    InitializationFailure,
    ProviderFailure,
    TransferCancelled,
)
from dicom_transfer.native.schema import render_schema
from dicom_transfer.native.values import from_props, to_props
from dicom_transfer.specs.problems import UNKNOWN
from pulumi.provider.experimental.provider import (
    CheckRequest,
    CreateRequest,
    DeleteRequest,
    GetSchemaRequest,
    ReadRequest,
    UpdateRequest,
)
from support.clock import FakeClock
from support.lifecycle_cases import IMPORT, recorded, run_async, urn
from support.scripted_http import OPERATION, ScriptedHttp, operation, reply

URN = urn("import", "load")


def _script(http: ScriptedHttp, *responses: tuple[dict[str, str], str]) -> None:
    http._iterable.extend(responses)


def _create(provider: DicomTransferProvider, props: dict[str, Any], timeout: float = 0.0) -> Any:
    return run_async(provider.create(CreateRequest(URN, from_props(props), timeout, False)))


def _update(provider: DicomTransferProvider, olds: Any, props: dict[str, Any]) -> Any:
    request = UpdateRequest(URN, OPERATION, olds, from_props(props), 0.0, [], False)
    return run_async(provider.update(request))


FAILED = operation(done=True, success=98, failure=2, error_code=3)
"""A finished import that moved data and failed 2 instances (over ``max_failures`` 0)."""


def _failed_create(http: ScriptedHttp, provider: DicomTransferProvider) -> InitializationFailure:
    """Scripts a submit that finishes as :data:`FAILED`; returns the create's failure."""
    _script(http, reply(200, operation(done=False)), reply(200, FAILED))
    with pytest.raises(InitializationFailure) as caught:
        _create(provider, IMPORT)
    return caught.value


def test_preview_create_returns_unknown_outputs_and_calls_nothing(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    request = CreateRequest(URN, from_props(IMPORT), 0.0, True)
    response = run_async(DicomTransferProvider(runtime=runtime).create(request))
    state = to_props(response.properties)
    assert state["success_count"] == UNKNOWN and state["operation_name"] == UNKNOWN
    assert state["gcs_uri"] == IMPORT["gcs_uri"]
    assert http.request_sequence == []


def test_create_submits_once_and_records_camel_case_outputs(
    http: ScriptedHttp, runtime: TransferRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    _script(http, reply(200, operation(done=False)), reply(200, operation(done=True, success=9)))
    response = _create(DicomTransferProvider(runtime=runtime), IMPORT)
    assert response.resource_id == OPERATION
    assert response.properties["successCount"].value == 9.0
    assert response.properties["gcsUri"].value == IMPORT["gcs_uri"]
    assert len(http.calls("POST", ":import")) == 1
    err = capsys.readouterr().err
    assert "dicom import load: 9 instance(s) imported, 0 failed" in err


def test_engine_timeout_shorter_than_timeout_seconds_wins_and_the_next_create_resumes(
    http: ScriptedHttp, runtime: TransferRuntime, clock: FakeClock
) -> None:
    _script(http, reply(200, operation(done=False)), *[reply(200, operation(done=False))] * 30)
    start = clock.now
    with pytest.raises(ProviderFailure) as caught:
        _create(DicomTransferProvider(runtime=runtime), IMPORT, timeout=20.0)
    assert clock.now - start <= 21  # timeout_seconds is 600
    message = str(caught.value)
    assert OPERATION in message and "pulumi up" in message and "customTimeouts.create" in message
    assert "timeout_seconds" not in message  # named as the schema names it
    http._iterable.clear()
    _script(http, reply(200, operation(done=False)), reply(200, operation(done=True, success=4)))
    response = _create(DicomTransferProvider(runtime=runtime), IMPORT)
    assert response.resource_id == OPERATION
    assert len(http.calls("POST", ":import")) == 1  # resumed, not submitted again


def test_failed_create_on_a_finished_operation_is_partial_state_and_update_rejudges_it(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    provider = DicomTransferProvider(runtime=runtime)
    failure = _failed_create(http, provider)
    assert failure.resource_id == OPERATION
    state = to_props(failure.properties)
    assert (state["success_count"], state["failure_count"]) == (98.0, 2.0)
    assert "\n" not in str(failure) and "failure=2" in str(failure)

    # The next up: the engine updates the resource that failed to initialise. A tolerance that
    # now accepts the outcome makes it a success; nothing is submitted again.
    _script(http, reply(200, FAILED))
    response = _update(provider, failure.properties, {**IMPORT, "max_failures": 2.0})
    assert response.properties["maxFailures"].value == 2.0
    assert response.properties["failureCount"].value == 2.0
    assert len(http.calls("POST", ":import")) == 1

    _script(http, reply(200, FAILED))
    with pytest.raises(ProviderFailure, match="failure=2"):
        _update(provider, failure.properties, IMPORT)
    assert len(http.calls("POST", ":import")) == 1


def test_import_reads_the_operation_and_refuses_another_kind(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    provider = DicomTransferProvider(runtime=runtime)
    _script(http, reply(200, operation(done=True, success=5)))
    response = run_async(provider.read(ReadRequest(URN, OPERATION, {}, {})))
    assert response.resource_id == OPERATION
    assert response.properties["successCount"].value == 5.0
    _script(http, reply(200, operation(done=True, success=5)))
    export_urn = urn("export", "copy")
    with pytest.raises(ProviderFailure, match="DICOM export operation"):
        run_async(provider.read(ReadRequest(export_urn, OPERATION, {}, {})))


def test_delete_calls_nothing_and_says_the_data_stays(
    http: ScriptedHttp, runtime: TransferRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = DicomTransferProvider(runtime=runtime)
    run_async(provider.delete(DeleteRequest(URN, OPERATION, from_props(recorded(IMPORT)), 0.0)))
    assert http.request_sequence == []
    assert "deleted none of the data it imported" in capsys.readouterr().err


def test_check_config_names_the_bad_property_and_schema_is_served() -> None:
    provider = DicomTransferProvider()
    bad = from_props({"impersonate_service_account": "not-an-email", "endpoint": "ftp://x"})
    response = run_async(provider.check_config(CheckRequest("urn", {}, bad, b"")))
    assert {f.property for f in response.failures or []} == {
        "impersonateServiceAccount",
        "endpoint",
    }
    schema = run_async(provider.get_schema(GetSchemaRequest(0))).schema
    assert schema == render_schema()
    assert json.loads(schema or "{}")["name"] == "dicomtransfer"


def test_unknown_resource_type_fails_cleanly() -> None:
    request = CheckRequest("urn:pulumi:s::p::dicomtransfer:index:Nope::x", {}, {}, b"")
    with pytest.raises(ProviderFailure, match="DicomImport"):
        run_async(DicomTransferProvider().check(request))


def test_pool_holds_sixty_four_waiting_transfers() -> None:
    assert TRANSFER_WORKERS == 64
    assert DicomTransferProvider()._pool._max_workers >= TRANSFER_WORKERS


def test_cancel_stops_waits_at_their_next_sleep_and_says_the_next_up_resumes() -> None:
    provider = DicomTransferProvider()
    # The production runtime sleeps through the provider, so a cancel reaches every wait.
    assert provider._runtime.sleep == provider._sleep
    run_async(provider.cancel())
    with pytest.raises(TransferCancelled, match="next `pulumi up` resumes it"):
        provider._sleep(3600.0)


def test_a_malformed_journal_setting_fails_check_in_one_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DICOM_TRANSFER_JOURNAL", "s3://bucket/journal")
    request = CheckRequest(URN, {}, from_props(IMPORT), b"")
    with pytest.raises(ProviderFailure, match="DICOM_TRANSFER_JOURNAL: got 's3://bucket/journal'"):
        run_async(DicomTransferProvider().check(request))


def test_check_and_read_refuse_a_retired_target_variable_naming_the_one_to_set(
    http: ScriptedHttp, runtime: TransferRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lifecycle's rule, so the native front end refuses it too: preview at check, and
    # `pulumi refresh` (no check) at read, before any call.
    monkeypatch.setenv("DICOM_TRANSFER_HEALTHCARE_ENDPOINT", "http://127.0.0.1:8080")
    monkeypatch.delenv("HEALTHCARE_EMULATOR_HOST", raising=False)
    provider = DicomTransferProvider(runtime=runtime)
    response = run_async(provider.check(CheckRequest(URN, {}, from_props(IMPORT), b"")))
    [failure] = response.failures or []
    assert failure.property == ""  # about the environment, not a property
    assert "DICOM_TRANSFER_HEALTHCARE_ENDPOINT='http://127.0.0.1:8080'" in failure.reason
    assert "Set HEALTHCARE_EMULATOR_HOST" in failure.reason

    read = ReadRequest(URN, OPERATION, from_props(recorded(IMPORT)), from_props(IMPORT))
    with pytest.raises(ProviderFailure) as caught:
        run_async(provider.read(read))
    message = str(caught.value)
    assert message.startswith("dicom import load: DICOM_TRANSFER_HEALTHCARE_ENDPOINT=")
    assert "Set HEALTHCARE_EMULATOR_HOST" in message and "\n" not in message
    assert http.request_sequence == []


def test_a_failed_request_is_submitted_once_whether_state_or_journal_judges_it_again(
    http: ScriptedHttp, runtime: TransferRuntime, journal_dir: Path
) -> None:
    # The native provider keeps the failed operation as partial state (update re-judges it);
    # the journal keeps it as the request's outcome (a create re-judges it). Both paths judge
    # the one operation and agree on the journal; neither submits again.
    provider = DicomTransferProvider(runtime=runtime)
    failure = _failed_create(http, provider)
    partial = failure.properties
    assert "change the resource's `triggers`" in str(failure)
    assert len(list(journal_dir.glob("*.json"))) == 1, "the journal keeps the outcome"

    # The same request created again (its partial state lost): the journal's outcome is
    # judged, with no request at all.
    calls = len(http.request_sequence)
    with pytest.raises(InitializationFailure, match="failure=2"):
        _create(provider, IMPORT)
    assert len(http.request_sequence) == calls

    # The next up updates the partial state under the same tolerance: still failing, and the
    # journal still holds the outcome, with the same advice.
    _script(http, reply(200, FAILED))
    with pytest.raises(ProviderFailure, match="change the resource's `triggers`"):
        _update(provider, partial, IMPORT)
    assert len(list(journal_dir.glob("*.json"))) == 1

    # Raised tolerance: accepted; the request's journal record goes, as a create's would.
    _script(http, reply(200, FAILED))
    response = _update(provider, partial, {**IMPORT, "max_failures": 2.0})
    assert response.properties["failureCount"].value == 2.0
    assert list(journal_dir.glob("*.json")) == []
    assert len(http.calls("POST")) == 1, "one submit in all"


def test_update_leaves_a_journal_record_of_another_operation_alone(
    http: ScriptedHttp, runtime: TransferRuntime, journal_dir: Path
) -> None:
    # A record of this request naming another operation belongs to a create that resumes it.
    other = OPERATION.replace("1234567890", "999")
    _script(http, *[reply(200, operation(done=False, name=other))] * 30)
    provider = DicomTransferProvider(runtime=runtime)
    with pytest.raises(ProviderFailure, match="resumes"):
        _create(provider, IMPORT, timeout=20.0)
    http._iterable.clear()
    [record] = journal_dir.glob("*.json")
    before = record.read_text()

    _script(http, reply(200, FAILED))
    response = _update(provider, from_props(recorded(IMPORT)), {**IMPORT, "max_failures": 2.0})
    assert response.properties["failureCount"].value == 2.0
    assert record.read_text() == before
    assert len(http.calls("POST")) == 1
