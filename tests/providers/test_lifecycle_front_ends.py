"""The lifecycle's cases through both front ends: the dynamic and the native provider.

Every case of ``support.lifecycle_cases`` runs through
``DicomImportProvider``/``DicomExportProvider`` (snake_case props) and through
``DicomTransferProvider`` (camelCase property values); both must name the same fields and decide
the same replaces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from dicom_transfer import DicomExportProvider, DicomImportProvider
from dicom_transfer.healthcare.runtime import TransferRuntime
from dicom_transfer.native.provider import DicomTransferProvider
from dicom_transfer.native.values import camel_text, from_props, to_props
from dicom_transfer.specs.inputs import TransferKind
from pulumi.provider.experimental.provider import (
    CheckRequest,
    CreateRequest,
    DeleteRequest,
    DiffRequest,
    ReadRequest,
)
from support.lifecycle_cases import (
    CHECK_CASES,
    DEFAULTS,
    DIFF_CASES,
    IMPORT,
    CheckCase,
    DiffCase,
    recorded,
    run_async,
    urn,
)
from support.scripted_http import OPERATION, ScriptedHttp, error, operation, reply

DYNAMIC = {"import": DicomImportProvider, "export": DicomExportProvider}


def dynamic_check(kind: TransferKind, props: dict[str, Any]) -> set[str]:
    result = DYNAMIC[kind]().check({}, {**props, "resource_name": "t"})
    return {failure.property for failure in result.failures}


def native_check(kind: TransferKind, props: dict[str, Any]) -> set[str]:
    request = CheckRequest(urn(kind), {}, from_props(props), b"")
    response = run_async(DicomTransferProvider().check(request))
    return {failure.property for failure in response.failures or []}


@pytest.mark.parametrize("case", CHECK_CASES, ids=lambda case: case.id)
def test_check_names_the_same_fields_in_both_front_ends(case: CheckCase) -> None:
    assert dynamic_check(case.kind, case.props) == case.failing
    assert native_check(case.kind, case.props) == {camel_text(name) for name in case.failing}


def test_native_check_reasons_name_the_camel_case_property() -> None:
    props = {**CHECK_CASES[0].props, "gcs_uri": "http://not-gcs/x"}
    request = CheckRequest(urn("import"), {}, from_props(props), b"")
    response = run_async(DicomTransferProvider().check(request))
    [failure] = response.failures or []
    assert failure.property == "gcsUri"
    assert failure.reason.startswith("gcsUri: got 'http://not-gcs/x'; expected gs://")


def test_a_nested_problem_names_its_input_and_the_path_in_its_reason() -> None:
    props = {**DEFAULTS["export"], "gcs_destination": {"uri_prefix": "s3://x"}}
    [dynamic] = DYNAMIC["export"]().check({}, {**props, "resource_name": "t"}).failures
    assert dynamic.property == "gcs_destination"
    assert dynamic.reason.startswith("gcs_destination.uri_prefix: got 's3://x'")
    request = CheckRequest(urn("export"), {}, from_props(props), b"")
    [native] = run_async(DicomTransferProvider().check(request)).failures or []
    assert native.property == "gcsDestination"
    assert native.reason.startswith("gcsDestination.uriPrefix: got 's3://x'")


@pytest.mark.parametrize("case", DIFF_CASES, ids=lambda case: case.id)
def test_diff_decides_the_same_in_both_front_ends(case: DiffCase) -> None:
    dynamic = DYNAMIC[case.kind]().diff(
        OPERATION, {**case.olds, "resource_name": "t"}, {**case.props, "resource_name": "t"}
    )
    assert (dynamic.changes, dynamic.replaces) == (case.changed, case.replaces)

    request = DiffRequest(
        urn(case.kind), OPERATION, from_props(case.olds), from_props(case.props), []
    )
    native = run_async(DicomTransferProvider().diff(request))
    assert native.changes is case.changed
    assert native.replaces == [camel_text(key) for key in case.replaces]
    assert set(native.detailed_diff) == set(native.diffs or [])
    assert set(native.replaces or []) <= set(native.detailed_diff)


# --- create, read, delete: the same cases through both front ends ---------------------------


def dynamic_create(runtime: TransferRuntime, props: dict[str, Any]) -> dict[str, Any]:
    outs = DicomImportProvider(runtime).create({**props, "resource_name": "t"}).outs
    assert outs is not None
    return outs


def native_create(runtime: TransferRuntime, props: dict[str, Any]) -> dict[str, Any]:
    request = CreateRequest(urn("import"), from_props(props), 0.0, False)
    return to_props(run_async(DicomTransferProvider(runtime=runtime).create(request)).properties)


def dynamic_read(runtime: TransferRuntime, state: dict[str, Any]) -> dict[str, Any]:
    outs = DicomImportProvider(runtime).read(OPERATION, state).outs
    assert outs is not None
    return outs


def native_read(runtime: TransferRuntime, state: dict[str, Any]) -> dict[str, Any]:
    request = ReadRequest(urn("import"), OPERATION, from_props(state), {})
    return to_props(run_async(DicomTransferProvider(runtime=runtime).read(request)).properties)


def dynamic_delete(runtime: TransferRuntime, state: dict[str, Any]) -> None:
    DicomImportProvider(runtime).delete(OPERATION, {**state, "resource_name": "t"})


def native_delete(runtime: TransferRuntime, state: dict[str, Any]) -> None:
    request = DeleteRequest(urn("import"), OPERATION, from_props(state), 0.0)
    run_async(DicomTransferProvider(runtime=runtime).delete(request))


class FrontEnd(NamedTuple):
    """How one front end creates, reads and deletes an import (snake_case props in and out)."""

    create: Callable[[TransferRuntime, dict[str, Any]], dict[str, Any]]
    read: Callable[[TransferRuntime, dict[str, Any]], dict[str, Any]]
    delete: Callable[[TransferRuntime, dict[str, Any]], None]


FRONT_ENDS = {
    "dynamic": FrontEnd(dynamic_create, dynamic_read, dynamic_delete),
    "native": FrontEnd(native_create, native_read, native_delete),
}


@pytest.fixture(params=sorted(FRONT_ENDS))
def front_end(request: pytest.FixtureRequest) -> FrontEnd:
    """Each front end in turn."""
    return FRONT_ENDS[request.param]


def test_create_submits_once_and_records_the_counters(
    front_end: FrontEnd, http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    http._iterable += [
        reply(200, operation(done=False)),
        reply(200, operation(done=True, success=9)),
    ]
    outs = front_end.create(runtime, IMPORT)
    assert (outs["operation_name"], outs["success_count"], outs["failure_count"]) == (
        OPERATION,
        9,
        0,
    )
    assert outs["gcs_uri"] == IMPORT["gcs_uri"]
    assert len(http.calls("POST", ":import")) == 1


def test_read_refreshes_the_counters_and_keeps_them_once_the_operation_expired(
    front_end: FrontEnd, http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    partial = operation(done=True, success=9, failure=1, error_code=3)
    http._iterable += [reply(200, partial), error(404, "NOT_FOUND", "operation not found")]
    state = recorded(IMPORT)
    refreshed = front_end.read(runtime, state)
    assert (refreshed["success_count"], refreshed["failure_count"]) == (9, 1)
    assert front_end.read(runtime, state)["success_count"] == state["success_count"]


def test_delete_calls_nothing_and_says_no_data_was_deleted(
    front_end: FrontEnd,
    http: ScriptedHttp,
    runtime: TransferRuntime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    front_end.delete(runtime, recorded(IMPORT))
    assert http.request_sequence == []
    assert "deleted none of the data it imported" in capsys.readouterr().err
