"""The lifecycle's cases through both front ends: the dynamic and the native provider.

Every case of ``lifecycle_cases`` runs through ``DicomImportProvider``/``DicomExportProvider``
(snake_case props) and through ``DicomTransferProvider`` (camelCase property values); both must
name the same fields and decide the same replaces.
"""

from __future__ import annotations

from typing import Any

import pytest
from dicom_transfer import DicomExportProvider, DicomImportProvider
from dicom_transfer.native.provider import DicomTransferProvider
from dicom_transfer.native.schema import RESOURCE_TOKENS
from dicom_transfer.native.values import camel_text, from_props
from dicom_transfer.specs.inputs import TransferKind
from fake_http import OPERATION
from lifecycle_cases import CHECK_CASES, DIFF_CASES, CheckCase, DiffCase, run_async
from pulumi.provider.experimental.provider import CheckRequest, DiffRequest

DYNAMIC = {"import": DicomImportProvider, "export": DicomExportProvider}


def urn(kind: TransferKind, name: str = "t") -> str:
    return f"urn:pulumi:local::dicom::{RESOURCE_TOKENS[kind]}::{name}"


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
