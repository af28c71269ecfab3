"""The warning of a transfer that moved 0 instances says why, in words that fit each case."""

from __future__ import annotations

import pytest
from dicom_transfer.healthcare.results import OperationResult
from dicom_transfer.healthcare.runtime import nothing_moved_warning
from dicom_transfer.specs.props import export_spec_from_props

STORE = "projects/my-project/locations/us/datasets/d/dicomStores/s"
DONE = OperationResult(name="operations/1", done=True)
BUCKET = {"gcs_destination": {"uri_prefix": "gs://out/png"}}


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (
            {"filter_resource_paths": ["/studies/1.2.3"], "filter_staging_uri": "gs://out/f"},
            "the 1 path(s) in filter_resource_paths match no instance of "
            f"{STORE} (check their study/series/instance UIDs)",
        ),
        (
            {"filter_gcs_uri": "gs://out/f/list.txt"},
            f"the paths in the filter file gs://out/f/list.txt match no instance of {STORE} "
            "(check their study/series/instance UIDs)",
        ),
        ({}, f"{STORE} holds no instance (import into it first)"),
    ],
)
def test_an_export_that_moved_nothing_says_why(extra: dict[str, object], why: str) -> None:
    spec = export_spec_from_props({"dicom_store": STORE, **BUCKET, **extra})
    assert nothing_moved_warning(spec, DONE) == (
        f"WARNING: operations/1 succeeded but moved 0 instances: {why}"
    )
