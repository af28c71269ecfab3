"""The input table against everything that declares inputs: signatures, README, key lists."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
from dicom_transfer import resources
from dicom_transfer.lifecycle import TransferLifecycle
from dicom_transfer.pipeline import ExportStep, ImportStep
from dicom_transfer.specs.inputs import (
    CONFIG_INPUTS,
    UPDATE_KEYS,
    Input,
    TransferKind,
    fields_of,
    inputs_of,
    request_keys,
)
from dicom_transfer.specs.reference import render_readme

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = {"import": resources.DicomImport, "export": resources.DicomExport}
ARGS = {
    "import": (resources.DicomImportArgs, ImportStep),
    "export": (resources.DicomExportArgs, ExportStep),
}


def _table_default(spec: Input) -> object:
    return inspect.Parameter.empty if spec.required else spec.default


def test_readme_reference_tables_are_the_generated_ones() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "<!-- inputs:import -->" in readme and "<!-- inputs:export -->" in readme
    assert readme == render_readme(readme), (
        "README.md's input tables differ from specs/inputs.py: run "
        "`.venv/bin/python -m dicom_transfer.specs.reference README.md`"
    )


@pytest.mark.parametrize("kind", ["import", "export"])
def test_resource_signature_is_the_table(kind: TransferKind) -> None:
    parameters = inspect.signature(RESOURCES[kind].__init__).parameters
    declared = {
        name: parameter.default
        for name, parameter in parameters.items()
        if name not in ("self", "resource_name", "opts")
    }
    expected = {spec.name: _table_default(spec) for spec in inputs_of(kind) + CONFIG_INPUTS}
    assert declared == expected


@pytest.mark.parametrize("kind", ["import", "export"])
def test_args_dataclasses_and_pipeline_steps_are_the_table(kind: TransferKind) -> None:
    table = {spec.name: spec for spec in inputs_of(kind)}
    for args in ARGS[kind]:
        for field in fields(args):
            if field.name in args.not_inputs:
                continue
            spec = table[field.name]  # a field the table does not know fails here
            default = field.default if field.default is not MISSING else inspect.Parameter.empty
            assert default == _table_default(spec), (args.__name__, field.name)
        # The store and api_version are the resource's own (a pipeline has one store).
        missing = set(table) - {f.name for f in fields(args)} - {"dicom_store", "api_version"}
        assert missing == set(), args.__name__


def test_object_inputs_are_the_table() -> None:
    assert tuple(resources.GcsDestinationArgs.__annotations__) == fields_of("gcs_destination")
    assert tuple(resources.BigQueryDestinationArgs.__annotations__) == fields_of(
        "bigquery_destination"
    )


def test_key_lists_come_from_the_table() -> None:
    assert (
        TransferLifecycle("import").request_keys
        == request_keys("import")
        == (
            "dicom_store",
            "gcs_uri",
            "blob_storage_class",
            "api_version",
            "triggers",
        )
    )
    assert "filter_resource_paths" in request_keys("export")
    assert set(UPDATE_KEYS) == {
        "timeout_seconds",
        "max_failures",
        "permission_retry_seconds",
        "endpoint",
        "storage_endpoint",
        "impersonate_service_account",
        "resource_name",  # an aliased rename records the new name in place
    }
