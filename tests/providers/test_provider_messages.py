"""What the providers tell a user: retargeting variables, empty transfers, failure fixes."""

from __future__ import annotations

from typing import Any

import pytest
from dicom_transfer import (
    DicomExportProvider,
    DicomImportProvider,
    DicomTransferError,
    OperationFailed,
    Transient,
)
from dicom_transfer.healthcare.runtime import TransferRuntime
from support.clock import FakeClock
from support.lifecycle_cases import EXPORT_PROPS, IMPORT_PROPS
from support.scripted_http import OPERATION, ScriptedHttp, operation, reply


def test_check_fails_on_the_retired_endpoint_variable_naming_its_replacement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DICOM_TRANSFER_HEALTHCARE_ENDPOINT", "http://127.0.0.1:8080")
    for provider, props in (
        (DicomImportProvider(), IMPORT_PROPS),
        (DicomExportProvider(), EXPORT_PROPS),
    ):
        result = provider.check({}, dict(props))
        [failure] = result.failures
        assert failure.property == ""  # about the environment, not an input
        assert "DICOM_TRANSFER_HEALTHCARE_ENDPOINT='http://127.0.0.1:8080'" in failure.reason
        assert "Set HEALTHCARE_EMULATOR_HOST" in failure.reason


def test_check_fails_on_an_export_staging_its_filter_outside_the_emulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEALTHCARE_EMULATOR_HOST", "127.0.0.1:8080")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    props = {k: v for k, v in EXPORT_PROPS.items() if k not in ("endpoint", "storage_endpoint")}
    [failure] = DicomExportProvider().check({}, props).failures
    assert failure.property == "filter_resource_paths"
    assert "STORAGE_EMULATOR_HOST is not" in failure.reason
    assert DicomExportProvider().check({}, dict(EXPORT_PROPS)).failures == []  # inputs say where


def test_refresh_fails_on_the_retired_endpoint_variable_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `pulumi refresh` runs no check: read itself must not quietly call Google's endpoint.
    monkeypatch.setenv("DICOM_TRANSFER_HEALTHCARE_ENDPOINT", "http://127.0.0.1:8080")
    monkeypatch.delenv("HEALTHCARE_EMULATOR_HOST", raising=False)
    http = ScriptedHttp([])  # any request fails the test: nothing is scripted
    runtime = TransferRuntime(http_factory=lambda: http)
    props = {k: v for k, v in IMPORT_PROPS.items() if k != "endpoint"}

    with pytest.raises(DicomTransferError) as caught:
        DicomImportProvider(runtime).read(OPERATION, props)

    message = str(caught.value)
    assert "DICOM_TRANSFER_HEALTHCARE_ENDPOINT='http://127.0.0.1:8080'" in message
    assert "Set HEALTHCARE_EMULATOR_HOST" in message
    assert http.calls() == []


def _submit_then_finish(http: ScriptedHttp, *before: Any, **counters: int) -> None:
    """Scripts ``before`` (e.g. a staged filter file), a submit and a finished operation."""
    http._iterable.extend(
        [*before, reply(200, operation(done=False)), reply(200, operation(True, **counters))]
    )


def test_an_import_that_matched_nothing_succeeds_with_a_warning(
    http: ScriptedHttp, runtime: TransferRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    _submit_then_finish(http)
    result = DicomImportProvider(runtime).create(dict(IMPORT_PROPS))
    assert result.outs is not None and result.outs["success_count"] == 0
    err = capsys.readouterr().err
    # Where the calls go is said first.
    assert err.startswith("dicom import load: Healthcare API at http://127.0.0.1:9/ (from the ")
    assert (
        f"dicom import load: WARNING: {OPERATION} succeeded but moved 0 instances: gcs_uri "
        "gs://raw-dicom/incoming/**.dcm matched no object" in err
    ), err


def test_an_export_whose_filter_matched_nothing_succeeds_with_a_warning(
    http: ScriptedHttp, runtime: TransferRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    _submit_then_finish(http, reply(200, {"name": "filters/x.txt"}))  # filter file exists
    DicomExportProvider(runtime).create(dict(EXPORT_PROPS))
    err = capsys.readouterr().err
    assert err.startswith(  # the filter file is staged through Cloud Storage: both are named
        "dicom export copy: Healthcare API at http://127.0.0.1:9/ (from the endpoint input); "
        "Cloud Storage at http://127.0.0.1:9/ (from the storage_endpoint input)\n"
    ), err
    assert "dicom export copy: WARNING:" in err
    assert "the 2 path(s) in filter_resource_paths match no instance of" in err, err


def test_a_transfer_that_moved_instances_warns_of_nothing(
    http: ScriptedHttp, runtime: TransferRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    _submit_then_finish(http, success=3)
    DicomImportProvider(runtime).create(dict(IMPORT_PROPS))
    assert "WARNING" not in capsys.readouterr().err


def test_the_max_failures_failure_names_both_fixes(
    http: ScriptedHttp, runtime: TransferRuntime
) -> None:
    _submit_then_finish(http, success=98, failure=2, error_code=3)
    props: dict[str, Any] = {**IMPORT_PROPS, "max_failures": 1.0}
    with pytest.raises(OperationFailed) as caught:
        DicomImportProvider(runtime).create(props)
    message = str(caught.value)
    assert "(2 failed instance(s), max_failures=1)" in message
    assert "set max_failures=2 (or more), or max_failures=None to accept any number" in message


class _Refused:
    def request(self, *_args: Any, **_kwargs: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")


def test_refresh_of_an_unreachable_emulator_says_so_and_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clock: FakeClock
) -> None:
    monkeypatch.setenv("HEALTHCARE_EMULATOR_HOST", "127.0.0.1:1")
    runtime = TransferRuntime(http_factory=_Refused, clock=clock, sleep=clock.sleep)
    props = {k: v for k, v in IMPORT_PROPS.items() if k != "endpoint"}

    with pytest.raises(Transient) as caught:
        DicomImportProvider(runtime).read(OPERATION, props)

    target = "http://127.0.0.1:1/ (from HEALTHCARE_EMULATOR_HOST)"
    err = capsys.readouterr().err
    assert f"dicom import load: cannot reach {target}: connection failed" in err
    assert "retrying for up to 96 s" in err
    assert err.count("cannot reach") == 1  # one line, not one per retry
    message = str(caught.value)
    assert f"cannot reach {target}" in message and "still unreachable after" in message
