"""The root program and every example run under Pulumi mocks, so none of them can rot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.pulumi_mocks import Stack, run_under_mocks

ROOT = Path(__file__).resolve().parents[2]
DYNAMIC = "pulumi-python:dynamic:Resource"
STORE = "projects/demo-project/locations/us-central1/datasets/imaging/dicomStores/archive"


def _config(project: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{project}:{key}": value for key, value in values.items()}


LOCAL = {
    "gcpProject": "demo-project",
    "createInfrastructure": False,
    "manageGrants": False,
    "sourceBucket": "demo-dicom-source",
    "importPath": "corpus/**.dcm",
    "exportBucket": "demo-dicom-export",
    "exportFilterPaths": ["/studies/1.2.3"],
    "bigqueryDataset": "meta",
}


def _transfers(stack: Stack) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in stack.of_type(DYNAMIC)}


def test_root_program_local_stack_uses_existing_store_and_no_gcp_resources() -> None:
    stack = run_under_mocks(
        ROOT / "__main__.py",
        project="dicom-transfer-env",
        config=_config("dicom-transfer-env", LOCAL),
    )
    assert not [r for r in stack.resources if r.type.startswith("gcp:")]
    transfers = _transfers(stack)
    assert set(transfers) == {"env-import", "env-export-gcs", "env-export-bq"}
    assert transfers["env-import"]["gcs_uri"] == "gs://demo-dicom-source/corpus/**.dcm"
    assert transfers["env-import"]["dicom_store"] == STORE
    gcs = transfers["env-export-gcs"]
    assert gcs["gcs_destination"]["uri_prefix"] == "gs://demo-dicom-export/export"
    assert gcs["filter_resource_paths"] == ["/studies/1.2.3"]
    assert gcs["filter_staging_uri"] == "gs://demo-dicom-export/filters"
    assert transfers["env-export-bq"]["bigquery_destination"] == {
        "table_uri": "bq://demo-project.meta.dicom_metadata",
        "write_disposition": "WRITE_TRUNCATE",
    }


def test_root_program_creates_infrastructure_and_grants_when_asked() -> None:
    config = {**LOCAL, "createInfrastructure": True, "manageGrants": True}
    stack = run_under_mocks(
        ROOT / "__main__.py",
        project="dicom-transfer-env",
        config=_config("dicom-transfer-env", config),
    )
    types = {r.type for r in stack.resources}
    assert {
        "gcp:storage/bucket:Bucket",
        "gcp:healthcare/dataset:Dataset",
        "gcp:healthcare/dicomStore:DicomStore",
        "gcp:bigquery/dataset:Dataset",
        "gcp:projects/serviceIdentity:ServiceIdentity",
        "gcp:storage/bucketIAMMember:BucketIAMMember",
    } <= types
    store = stack.named("store")
    bucket_urns = {r.urn for r in stack.of_type("gcp:storage/bucket:Bucket")}
    for name in ("env-import", "env-export-gcs"):
        transfer = stack.named(name)
        assert store.urn in transfer.dependencies, f"{name} does not wait for the store"
        assert bucket_urns <= set(transfer.dependencies), f"{name} does not wait for the buckets"


def test_root_program_without_bigquery_dataset_skips_bigquery_export() -> None:
    config = {key: value for key, value in LOCAL.items() if key != "bigqueryDataset"}
    stack = run_under_mocks(
        ROOT / "__main__.py",
        project="dicom-transfer-env",
        config=_config("dicom-transfer-env", config),
    )
    assert set(_transfers(stack)) == {"env-import", "env-export-gcs"}


EXAMPLES = {
    "import-only": (
        "dicom-import-only",
        {"dicomStore": STORE, "sourceUri": "gs://raw/incoming/**.dcm"},
        {"load"},
    ),
    "export-gcs-filtered": (
        "dicom-export-gcs-filtered",
        {
            "dicomStore": STORE,
            "destinationUri": "gs://out/png",
            "stagingUri": "gs://out/filters",
            "paths": ["/studies/1.2.3/series/4.5"],
        },
        {"cohort-png"},
    ),
    "emulator-quickstart": (
        "dicom-emulator-quickstart",
        {
            "dicomStore": STORE,
            "sourceBucket": "demo-dicom-source",
            "exportBucket": "demo-dicom-export",
            "studies": ["1.2.3"],
        },
        {"load", "cohort-png"},
    ),
    "export-bigquery": (
        "dicom-export-bigquery",
        {"gcpProject": "demo-project", "dicomStore": STORE, "bigqueryDataset": "meta"},
        {"metadata"},
    ),
    "pipeline": (
        "dicom-pipeline",
        {"gcpProject": "demo-project"},
        {"archive-load", "archive-deidentified-copy", "archive-thumbnails"},
    ),
}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_runs_under_mocks_and_its_transfers_pass_check(example: str) -> None:
    from dicom_transfer.specs.props import export_problems, import_problems

    project, values, expected = EXAMPLES[example]
    stack = run_under_mocks(
        ROOT / "examples" / example / "__main__.py",
        project=project,
        config=_config(project, values),
    )
    transfers = _transfers(stack)
    assert set(transfers) == expected
    for name, inputs in transfers.items():
        problems = import_problems(inputs) if "gcs_uri" in inputs else export_problems(inputs)
        assert problems == [], f"{example}/{name}: {problems}"
