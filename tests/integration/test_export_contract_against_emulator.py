"""Documented export options end to end: DicomExportProvider over HTTP against the emulator.

Each test sets an option the way a user would (MIME types from the discovery documents'
``gcsDestination.mimeType`` list, ``schema_json``, v1beta1 ``change_data_capture``), lets the
provider build and submit the request, and checks what lands in Cloud Storage / BigQuery with
pydicom and the discovery documents, not with the emulator's own code.
"""

from __future__ import annotations

import io
import json
import re
import urllib.request
from typing import Any

import numpy as np
import pydicom
import pytest
from dicom_transfer import DicomExportProvider, DicomImportProvider
from dicom_transfer_emulator.app import Emulator
from googleapiclient.discovery_cache import get_static_doc
from support.integration import (
    EXPORT_BUCKET,
    FAST,
    PROJECT,
    SOURCE_BUCKET,
    corpus_bytes,
    corpus_files,
    expected_distinct_import,
    read_instance,
    upload,
)

pytestmark = [
    pytest.mark.usefixtures("journal_dir"),
    # One corpus file has a UID with a leading-zero component; pydicom warns when reading it.
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning"),
]

# Uncompressed 16-bit grayscale images of the corpus: every documented syntax can encode them.
GRAYSCALE = ("CT_small.dcm", "MR_small.dcm")
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"


def _import_corpus(emu: Emulator, store: str) -> None:
    files = corpus_files()
    upload(emu, files)
    props = {
        "resource_name": "load",
        "dicom_store": store,
        "gcs_uri": f"gs://{SOURCE_BUCKET}/incoming/**.dcm",
        "api_version": "v1",
        "timeout_seconds": 30.0,
        "max_failures": 0,
        "permission_retry_seconds": 5.0,
    }
    outs = DicomImportProvider(FAST).create(props).outs
    assert outs is not None
    assert outs["success_count"] == expected_distinct_import(files).success


def _export(emu: Emulator, store: str, api_version: str = "v1", **inputs: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "resource_name": "copy",
        "dicom_store": store,
        "api_version": api_version,
        "timeout_seconds": 30.0,
        "max_failures": 0,
        "permission_retry_seconds": 5.0,
        **inputs,
    }
    outs = DicomExportProvider(FAST).create(props).outs
    assert outs is not None
    assert outs["failure_count"] == 0
    return outs


def _exported(emu: Emulator, prefix: str) -> dict[str, bytes]:
    objects, _ = emu.storage.list_objects(EXPORT_BUCKET, prefix + "/")
    return {meta.name: emu.storage.read_object(EXPORT_BUCKET, meta.name) for meta in objects}


def _sop(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID)


def _gcs_export(emu: Emulator, store: str, prefix: str, mime: str, **inputs: Any) -> None:
    if not any(b.name == EXPORT_BUCKET for b in emu.storage.list_buckets(PROJECT)):
        emu.storage.create_bucket(EXPORT_BUCKET, PROJECT)
    destination = {"uri_prefix": f"gs://{EXPORT_BUCKET}/{prefix}", "mime_type": mime}
    _export(emu, store, gcs_destination=destination, **inputs)


def test_no_transcoding_exports_byte_identical_instances(emulator: Emulator, store: str) -> None:
    _import_corpus(emulator, store)
    _gcs_export(emulator, store, "asis", "application/dicom; transfer-syntax=*")

    uploaded = {_sop(data): data for data in corpus_files().values() if read_instance(data)}
    exported = _exported(emulator, "asis")
    assert len(exported) == len(uploaded)
    for name, data in exported.items():
        assert name.endswith(".dcm")
        assert data == uploaded[_sop(data)], name


def _export_grayscale_series(
    emulator: Emulator, store: str, prefix: str, mime_type: str
) -> list[tuple[pydicom.Dataset, pydicom.Dataset]]:
    """Export the GRAYSCALE files' series (through an inline filter) as ``mime_type``;
    return (exported, original) data sets, one pair per original."""
    _import_corpus(emulator, store)
    chosen = [pydicom.dcmread(io.BytesIO(corpus_bytes(name))) for name in GRAYSCALE]
    paths = [f"/studies/{d.StudyInstanceUID}/series/{d.SeriesInstanceUID}" for d in chosen]
    _gcs_export(
        emulator,
        store,
        prefix,
        mime_type,
        filter_resource_paths=paths,
        filter_staging_uri=f"gs://{EXPORT_BUCKET}/filters",
    )
    exported = _exported(emulator, prefix)
    originals = {str(d.SOPInstanceUID): d for d in chosen}
    assert len(exported) == len(originals)
    pairs = []
    for data in exported.values():
        dataset = pydicom.dcmread(io.BytesIO(data))
        pairs.append((dataset, originals[str(dataset.SOPInstanceUID)]))
    return pairs


def test_implicit_vr_little_endian_export(emulator: Emulator, store: str) -> None:
    # A spelling the media-type rules allow; the library sends the documented one.
    mime_type = f'Application/DICOM;Transfer-Syntax="{IMPLICIT_VR_LITTLE_ENDIAN}"'
    for dataset, original in _export_grayscale_series(emulator, store, "implicit", mime_type):
        assert dataset.file_meta.TransferSyntaxUID == IMPLICIT_VR_LITTLE_ENDIAN
        # (is_implicit_VR, is_little_endian) of the data set as pydicom parsed it.
        assert dataset.original_encoding == (True, True)
        np.testing.assert_array_equal(dataset.pixel_array, original.pixel_array)


@pytest.mark.parametrize(
    "syntax",
    [
        pytest.param("1.2.840.10008.1.2.4.90", id="jpeg2000-lossless"),
        pytest.param("1.2.840.10008.1.2.4.80", id="jpeg-ls-lossless"),
    ],
)
def test_lossless_compressed_export_decodes_back(
    emulator: Emulator, store: str, syntax: str
) -> None:
    mime_type = f"application/dicom; transfer-syntax={syntax}"
    for dataset, original in _export_grayscale_series(emulator, store, "compressed", mime_type):
        assert dataset.file_meta.TransferSyntaxUID == syntax
        np.testing.assert_array_equal(dataset.pixel_array, original.pixel_array)


def _schema_json_columns(version: str) -> list[str]:
    """The columns the ``SchemaJSON`` description of the discovery document lists."""
    text = get_static_doc("healthcare", version)
    assert text is not None
    description = json.loads(text)["schemas"]["SchemaJSON"]["description"]
    return re.findall(r"\* `(\w+)` \(Type:", description)


def _rows(emu: Emulator, table: str) -> list[dict[str, Any]]:
    url = f"{emu.healthcare_url}/_emulator/bigquery/{table}"
    with urllib.request.urlopen(url, timeout=10) as response:
        rows: list[dict[str, Any]] = json.loads(response.read())["rows"]
    return rows


def test_schema_json_rows_have_the_documented_columns(emulator: Emulator, store: str) -> None:
    _import_corpus(emulator, store)
    table = f"{PROJECT}.dicom_meta.as_json"
    outs = _export(
        emulator,
        store,
        bigquery_destination={
            "table_uri": f"bq://{table}",
            "schema_json": True,
            "include_source_store": True,
            "write_disposition": "WRITE_TRUNCATE",
        },
    )

    documented = _schema_json_columns("v1")
    assert "Metadata" in documented and "SourceDicomStore" in documented
    rows = _rows(emulator, table)
    assert len(rows) == outs["success_count"] > 0
    for row in rows:
        assert set(row) == set(documented)
        assert row["SourceDicomStore"].endswith(store.rsplit("/", 1)[1])
        assert isinstance(row["Metadata"], dict | str)


def test_change_data_capture_on_v1beta1(emulator: Emulator, store: str) -> None:
    _import_corpus(emulator, store)
    table = f"{PROJECT}.dicom_meta.cdc"
    outs = _export(
        emulator,
        store,
        api_version="v1beta1",
        bigquery_destination={
            "table_uri": f"bq://{table}",
            "schema_json": True,
            "change_data_capture": True,
        },
    )

    [submit] = emulator.requests.matching("POST", r":export$")
    assert submit.path.startswith("/v1beta1/")
    rows = _rows(emulator, table)
    assert len(rows) == outs["success_count"] > 0
    # v1beta1 SchemaJSON: "Type ... This field is omitted if ChangeDataCaptureConfig is
    # enabled"; SourceDicomStore only with include_source_store.
    expected = set(_schema_json_columns("v1beta1")) - {"Type", "SourceDicomStore"}
    assert all(set(row) == expected for row in rows)
