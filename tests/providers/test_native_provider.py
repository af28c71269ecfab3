"""DicomTransferProvider (the native provider) against a scripted HTTP transport.

What only the native front end does: preview outputs, the engine's timeout, partial state of
a failed create, re-judging on update, import of an operation, delete's message, the schema.
"""

from __future__ import annotations

import asyncio
import json
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
from fake_http import OPERATION, FakeClock, ScriptedHttp, operation, reply
from lifecycle_cases import IMPORT, recorded
from pulumi.provider.experimental.provider import (
    CheckRequest,
    CreateRequest,
    DeleteRequest,
    GetSchemaRequest,
    ReadRequest,
    UpdateRequest,
)
from test_lifecycle_front_ends import urn

URN = urn("import", "load")


def _script(http: ScriptedHttp, *responses: tuple[dict[str, str], str]) -> None:
    http._iterable.extend(responses)


def _create(provider: DicomTransferProvider, props: dict[str, Any], timeout: float = 0.0) -> Any:
    return asyncio.run(provider.create(CreateRequest(URN, from_props(props), timeout, False)))


def test_preview_create_returns_unknown_outputs_and_calls_nothing(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    request = CreateRequest(URN, from_props(IMPORT), 0.0, True)
    response = asyncio.run(DicomTransferProvider(runtime=runtime).create(request))
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
    failed = operation(done=True, success=98, failure=2, error_code=3)
    _script(http, reply(200, operation(done=False)), reply(200, failed))
    provider = DicomTransferProvider(runtime=runtime)
    with pytest.raises(InitializationFailure) as caught:
        _create(provider, IMPORT)
    failure = caught.value
    assert failure.resource_id == OPERATION
    state = to_props(failure.properties)
    assert (state["success_count"], state["failure_count"]) == (98.0, 2.0)
    assert "\n" not in str(failure) and "failure=2" in str(failure)

    # The next up: the engine updates the resource that failed to initialise. A tolerance that
    # now accepts the outcome makes it a success; nothing is submitted again.
    _script(http, reply(200, failed))
    news = from_props({**IMPORT, "max_failures": 2.0})
    request = UpdateRequest(URN, OPERATION, failure.properties, news, 0.0, [], False)
    response = asyncio.run(provider.update(request))
    assert response.properties["maxFailures"].value == 2.0
    assert response.properties["failureCount"].value == 2.0
    assert len(http.calls("POST", ":import")) == 1

    _script(http, reply(200, failed))
    strict = UpdateRequest(URN, OPERATION, failure.properties, from_props(IMPORT), 0.0, [], False)
    with pytest.raises(ProviderFailure, match="failure=2"):
        asyncio.run(provider.update(strict))
    assert len(http.calls("POST", ":import")) == 1


def test_import_reads_the_operation_and_refuses_another_kind(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    provider = DicomTransferProvider(runtime=runtime)
    _script(http, reply(200, operation(done=True, success=5)))
    response = asyncio.run(provider.read(ReadRequest(URN, OPERATION, {}, {})))
    assert response.resource_id == OPERATION
    assert response.properties["successCount"].value == 5.0
    _script(http, reply(200, operation(done=True, success=5)))
    export_urn = urn("export", "copy")
    with pytest.raises(ProviderFailure, match="DICOM export operation"):
        asyncio.run(provider.read(ReadRequest(export_urn, OPERATION, {}, {})))


def test_delete_calls_nothing_and_says_the_data_stays(
    http: ScriptedHttp, runtime: TransferRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = DicomTransferProvider(runtime=runtime)
    asyncio.run(provider.delete(DeleteRequest(URN, OPERATION, from_props(recorded(IMPORT)), 0.0)))
    assert http.request_sequence == []
    assert "deleted none of the data it imported" in capsys.readouterr().err


def test_check_config_names_the_bad_property_and_schema_is_served() -> None:
    provider = DicomTransferProvider()
    bad = from_props({"impersonate_service_account": "not-an-email", "endpoint": "ftp://x"})
    response = asyncio.run(provider.check_config(CheckRequest("urn", {}, bad, b"")))
    assert {f.property for f in response.failures or []} == {
        "impersonateServiceAccount",
        "endpoint",
    }
    schema = asyncio.run(provider.get_schema(GetSchemaRequest(0))).schema
    assert schema == render_schema()
    assert json.loads(schema or "{}")["name"] == "dicomtransfer"


def test_unknown_resource_type_fails_cleanly() -> None:
    request = CheckRequest("urn:pulumi:s::p::dicomtransfer:index:Nope::x", {}, {}, b"")
    with pytest.raises(ProviderFailure, match="DicomImport"):
        asyncio.run(DicomTransferProvider().check(request))


def test_pool_holds_sixty_four_waiting_transfers() -> None:
    assert TRANSFER_WORKERS == 64
    assert DicomTransferProvider()._pool._max_workers >= TRANSFER_WORKERS


def test_cancel_stops_waits_at_their_next_sleep_and_says_the_next_up_resumes() -> None:
    provider = DicomTransferProvider()
    # The production runtime sleeps through the provider, so a cancel reaches every wait.
    assert provider._runtime.sleep == provider._sleep
    asyncio.run(provider.cancel())
    with pytest.raises(TransferCancelled, match="next `pulumi up` resumes it"):
        provider._sleep(3600.0)


def test_a_malformed_journal_setting_fails_check_in_one_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DICOM_TRANSFER_JOURNAL", "s3://bucket/journal")
    request = CheckRequest(URN, {}, from_props(IMPORT), b"")
    with pytest.raises(ProviderFailure, match="DICOM_TRANSFER_JOURNAL: got 's3://bucket/journal'"):
        asyncio.run(DicomTransferProvider().check(request))
