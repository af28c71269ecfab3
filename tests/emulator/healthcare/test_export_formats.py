"""Export as the discovery documents describe it: every documented MIME type, BigQuery schemas.

The documented lists (``GcsDestination.mimeType``, ``SchemaJSON`` columns) are regenerated
from the discovery documents bundled with google-api-python-client, so a new API revision
that changes them fails here until the emulator follows.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import googleapiclient
import numpy as np
import pydicom
import pytest
from dicom_transfer_emulator.app import Emulator
from dicom_transfer_emulator.bigquery.rows import JSON_COLUMNS
from dicom_transfer_emulator.dicom.export_formats import DOCUMENTED_MIME_TYPES
from googleapiclient.errors import HttpError
from pydicom.encaps import generate_frames
from support.healthcare import (
    client,
    counters,
    datasets,
    fresh_copy,
    make_store,
    relabelled_copy,
    run_export,
)
from support.healthcare import run_import as import_into

DOCUMENTS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
IMPLICIT_LE = "1.2.840.10008.1.2"
#: 8-bit RGB, 16-bit monochrome, 16-bit JPEG-LS, and JPEG Extended (no decoder here).
SOURCES = ("SC_rgb_rle.dcm", "CT_small.dcm", "MR_small_jpeg_ls_lossless.dcm", "JPEG-lossy.dcm")


def discovery(version: str) -> dict[str, Any]:
    path = DOCUMENTS / f"healthcare.{version}.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def documented_mime_types(version: str) -> list[str]:
    """The bulleted list of ``GcsDestination.mimeType``, without the parenthesised notes."""
    prefix = "GoogleCloudHealthcareV1DicomGcsDestination"
    if version == "v1beta1":
        prefix = "GoogleCloudHealthcareV1beta1DicomGcsDestination"
    text = discovery(version)["schemas"][prefix]["properties"]["mimeType"]["description"]
    listed = text.split("the following are supported:", 1)[1]
    listed = listed.split("The following extensions", 1)[0]
    items = [item.strip() for item in listed.split(" - ") if item.strip()]
    return [item.lstrip("- ").split(" (", 1)[0].strip() for item in items]


def documented_json_columns(version: str) -> list[str]:
    text = discovery(version)["schemas"]["SchemaJSON"]["description"]
    return re.findall(r"\* `(\w+)` \(Type:", text)


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_mime_table_is_the_documented_list(version: str) -> None:
    assert documented_mime_types(version) == list(DOCUMENTED_MIME_TYPES)


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_json_columns_are_the_documented_ones(version: str) -> None:
    assert documented_json_columns(version) == list(JSON_COLUMNS)


def load(emu: Emulator) -> tuple[Any, str, dict[str, tuple[str, bytes]]]:
    """A store with a fresh copy of each of SOURCES; returns sop -> (source name, bytes)."""
    hc = client(emu, "v1beta1")
    store = make_store(hc)
    emu.storage.create_bucket("src", "test-project")
    emu.storage.create_bucket("out", "test-project")
    by_sop = {}
    for name in SOURCES:
        data = fresh_copy(name)
        by_sop[str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID)] = (name, data)
        emu.storage.write_object("src", name, data)
    assert counters(import_into(hc, store, "gs://src/*.dcm")) == (len(SOURCES), 0, 0)
    return hc, store, by_sop


def export_as(emu: Emulator, hc: Any, store: str, mime: str) -> tuple[dict[str, Any], dict]:
    """Export to gs://out/x/ as ``mime``; returns the operation and sop -> exported bytes."""
    op = run_export(hc, store, {"gcsDestination": {"uriPrefix": "gs://out/x", "mimeType": mime}})
    listed, _ = emu.storage.list_objects("out", prefix="x/")
    files = {
        m.name.rsplit("/", 1)[1].removesuffix(".dcm"): emu.storage.read_object("out", m.name)
        for m in listed
    }
    return op, files


def error_logs(emu: Emulator, op: dict[str, Any]) -> list[dict[str, Any]]:
    logs = emu.healthcare.state.get_logs(op["name"].rsplit("/", 1)[1]) or []
    return [entry for entry in logs if entry["severity"] == "ERROR"]


def test_any_transfer_syntax_exports_the_stored_bytes(emulator: Emulator) -> None:
    hc, store, by_sop = load(emulator)

    op, files = export_as(emulator, hc, store, "application/dicom; transfer-syntax=*")

    assert counters(op) == (len(SOURCES), 0, 0)
    assert files == {sop: data for sop, (_, data) in by_sop.items()}


#: Transfer syntaxes of DICOM PS3.6 that pydicom 3.0 does not list (JPEG XL, Deflated Image
#: Frame Compression): the emulator can store them but not decode them.
NEWER_SYNTAXES = (
    "1.2.840.10008.1.2.4.110",
    "1.2.840.10008.1.2.4.111",
    "1.2.840.10008.1.2.4.112",
    "1.2.840.10008.1.2.8.1",
)


def load_newer_syntax(emu: Emulator, syntax: str) -> tuple[Any, str, str, str, bytes]:
    """A store with CT_small.dcm and a JPEG file relabelled ``syntax``: (client, store, CT's
    SOP Instance UID, the relabelled one's, its bytes). Both import."""
    hc = client(emu, "v1beta1")
    store = make_store(hc)
    emu.storage.create_bucket("src", "test-project")
    emu.storage.create_bucket("out", "test-project")
    ct, odd = fresh_copy("CT_small.dcm"), relabelled_copy("SC_rgb_jpeg_dcmtk.dcm", syntax)
    emu.storage.write_object("src", "ct.dcm", ct)
    emu.storage.write_object("src", "odd.dcm", odd)
    assert counters(import_into(hc, store, "gs://src/*.dcm")) == (2, 0, 0)
    sops = [
        str(pydicom.dcmread(io.BytesIO(d), stop_before_pixels=True).SOPInstanceUID)
        for d in (ct, odd)
    ]
    return hc, store, sops[0], sops[1], odd


@pytest.mark.parametrize("syntax", NEWER_SYNTAXES)
@pytest.mark.parametrize(
    "mime",
    [
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1",
        "image/png",
    ],
)
def test_undecodable_syntax_fails_on_its_own(emulator: Emulator, syntax: str, mime: str) -> None:
    hc, store, ct_sop, odd_sop, _ = load_newer_syntax(emulator, syntax)

    op, files = export_as(emulator, hc, store, mime)

    assert counters(op) == (1, 1, 0)
    assert op["error"]["code"] == 3
    [entry] = error_logs(emulator, op)
    assert entry["resource"].endswith(f"/instances/{odd_sop}")
    assert syntax in entry["message"] and "cannot decode" in entry["message"]
    assert [name.removesuffix(".png") for name in files] == [ct_sop]


@pytest.mark.parametrize("syntax", NEWER_SYNTAXES)
@pytest.mark.parametrize(
    "mime",
    ["application/dicom; transfer-syntax=*", "application/octet-stream; transfer-syntax=*"],
)
def test_undecodable_syntax_exports_as_stored(emulator: Emulator, syntax: str, mime: str) -> None:
    hc, store, _, odd_sop, odd = load_newer_syntax(emulator, syntax)

    op, files = export_as(emulator, hc, store, mime)

    assert counters(op) == (2, 0, 0)
    if mime.startswith("application/dicom"):
        assert files[odd_sop] == odd
    else:  # the encapsulated frame as stored, as for any other encapsulated syntax
        [frame] = generate_frames(pydicom.dcmread(io.BytesIO(odd)).PixelData, number_of_frames=1)
        assert files[odd_sop] == frame


@pytest.mark.parametrize(
    ("syntax", "lossless"),
    [
        (IMPLICIT_LE, True),
        ("1.2.840.10008.1.2.1.99", True),  # deflated explicit VR little endian
        ("1.2.840.10008.1.2.5", True),  # RLE
        ("1.2.840.10008.1.2.4.80", True),  # JPEG-LS lossless
        ("1.2.840.10008.1.2.4.81", False),  # JPEG-LS near-lossless
        ("1.2.840.10008.1.2.4.90", True),  # JPEG 2000 lossless
        ("1.2.840.10008.1.2.4.91", False),  # JPEG 2000
    ],
)
def test_transcoded_exports_decode_back(emulator: Emulator, syntax: str, lossless: bool) -> None:
    hc, store, by_sop = load(emulator)

    op, files = export_as(emulator, hc, store, f"application/dicom; transfer-syntax={syntax}")

    # JPEG Extended cannot be decoded here, so it cannot be transcoded: one failure, logged.
    [(jpeg_extended, _)] = [(s, d) for s, (n, d) in by_sop.items() if n == "JPEG-lossy.dcm"]
    assert counters(op) == (len(SOURCES) - 1, 1, 0)
    assert op["error"]["code"] == 3
    [entry] = error_logs(emulator, op)
    assert entry["resource"].endswith(f"/instances/{jpeg_extended}")
    assert "cannot decode" in entry["message"]
    assert jpeg_extended not in files
    for sop, content in files.items():
        source = pydicom.dcmread(io.BytesIO(by_sop[sop][1]))
        out = pydicom.dcmread(io.BytesIO(content))
        assert out.file_meta.TransferSyntaxUID == syntax
        assert str(out.SOPInstanceUID) == sop
        if syntax == IMPLICIT_LE:
            assert out.is_implicit_VR and out.is_little_endian
        expected, got = source.pixel_array.astype(np.int64), out.pixel_array.astype(np.int64)
        assert got.shape == expected.shape
        if lossless:
            assert np.array_equal(got, expected), by_sop[sop][0]
        else:
            assert out.LossyImageCompression == "01"
            assert np.abs(got - expected).mean() < 0.05 * max(int(expected.max()), 1)


def test_jpeg_baseline_takes_8_bit_data_and_fails_the_rest_one_by_one(
    emulator: Emulator,
) -> None:
    hc, store, by_sop = load(emulator)

    op, files = export_as(
        emulator, hc, store, "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50"
    )

    names = {by_sop[sop][0] for sop in files}
    assert names == {"SC_rgb_rle.dcm"}
    assert counters(op) == (1, 3, 0)
    logged = {entry["resource"].rsplit("/", 1)[1] for entry in error_logs(emulator, op)}
    assert logged == set(by_sop) - set(files)
    [rgb] = files.values()
    out = pydicom.dcmread(io.BytesIO(rgb))
    source = pydicom.dcmread(io.BytesIO(fresh_copy("SC_rgb_rle.dcm")))
    assert out.PhotometricInterpretation == "YBR_FULL"
    difference = np.abs(out.pixel_array.astype(int) - source.pixel_array.astype(int))
    assert difference.mean() < 3


def test_documented_syntaxes_without_an_encoder_fail_per_instance(emulator: Emulator) -> None:
    hc, store, _ = load(emulator)

    op, files = export_as(
        emulator, hc, store, "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.201"
    )

    assert files == {}
    assert counters(op) == (0, len(SOURCES), 0)
    messages = {entry["message"] for entry in error_logs(emulator, op)}
    assert all("no encoder for that transfer syntax" in m for m in messages), messages


@pytest.mark.parametrize(
    "mime",
    [
        "application/dicom; transfer-syntax=",
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.2",
        "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.91",
    ],
)
def test_undocumented_mime_types_are_refused_naming_the_field(
    emulator: Emulator, mime: str
) -> None:
    hc = client(emulator)
    store = make_store(hc)
    body = {"gcsDestination": {"uriPrefix": "gs://out/x", "mimeType": mime}}

    with pytest.raises(HttpError) as exc:
        datasets(hc).dicomStores().export(name=store, body=body).execute()

    error = json.loads(exc.value.content)["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert "gcsDestination.mimeType" in error["message"] and repr(mime) in error["message"]


def test_schema_json_rows_have_the_documented_columns(emulator: Emulator) -> None:
    hc, store, by_sop = load(emulator)
    table = "bq://test-project.meta.json_rows"
    destination = {"tableUri": table, "schemaJson": {}, "includeSourceStore": True}

    op = run_export(hc, store, {"bigqueryDestination": destination})

    assert counters(op) == (len(SOURCES), 0, 0)
    rows = emulator.healthcare.read_table(table)
    assert {row["SOPInstanceUID"] for row in rows} == set(by_sop)
    for row in rows:
        assert list(row) == list(JSON_COLUMNS)
        name, data = by_sop[row["SOPInstanceUID"]]
        source = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        assert row["StudyInstanceUID"] == source.StudyInstanceUID
        assert row["SeriesInstanceUID"] == source.SeriesInstanceUID
        assert row["SourceDicomStore"] == store
        assert row["Metadata"]["SOPInstanceUID"] == row["SOPInstanceUID"]
        assert row["Metadata"]["Modality"] == source.Modality
        assert "PixelData" not in row["Metadata"]
        assert row["BlobStorageSize"] == len(data)
        assert row["StructuredStorageSize"] > 0
        assert row["StorageClass"] == "STANDARD" and row["Type"] == "INSERT"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row["LastUpdated"])
        assert isinstance(row["DroppedTags"], list), name


def test_change_data_capture_keeps_the_latest_row_and_no_type(emulator: Emulator) -> None:
    hc, store, by_sop = load(emulator)
    table = "bq://test-project.meta.cdc"
    destination = {
        "tableUri": table,
        "schemaJson": {},
        "changeDataCaptureConfig": {},
        "writeDisposition": "WRITE_APPEND",
    }

    for _ in range(2):
        assert "response" in run_export(hc, store, {"bigqueryDestination": destination})

    rows = emulator.healthcare.read_table(table)
    assert sorted(row["SOPInstanceUID"] for row in rows) == sorted(by_sop)
    assert all("Type" not in row and "SourceDicomStore" not in row for row in rows)


@pytest.mark.parametrize(
    ("version", "options", "named"),
    [
        ("v1beta1", {"changeDataCaptureConfig": {}}, "changeDataCaptureConfig"),
        (
            "v1beta1",
            {"changeDataCaptureConfig": {}, "schemaFlattened": {}},
            "changeDataCaptureConfig",
        ),
        ("v1", {"schemaJson": {}, "changeDataCaptureConfig": {}}, "changeDataCaptureConfig"),
        # Not a v1 field at all: named itself, even with a name inside it.
        ("v1", {"schemaJson": {}, "changeDataCaptureConfig": {"x": 1}}, 'name "changeData'),
        ("v1", {"schemaJson": {}, "schemaFlattened": {}}, "schemaFlattened"),
    ],
)
def test_bigquery_schema_options_are_checked(
    emulator: Emulator, version: str, options: dict[str, Any], named: str
) -> None:
    hc = client(emulator, version)
    store = make_store(hc)
    body = {"bigqueryDestination": {"tableUri": "bq://test-project.d.t", **options}}

    with pytest.raises(HttpError) as exc:
        datasets(hc).dicomStores().export(name=store, body=body).execute()

    error = json.loads(exc.value.content)["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert named in error["message"]


@pytest.mark.parametrize(
    ("version", "field"),
    [
        ("v1", "schemaFlattened"),
        ("v1", "schemaJson"),
        ("v1beta1", "schemaFlattened"),
        ("v1beta1", "schemaJson"),
        ("v1beta1", "changeDataCaptureConfig"),
    ],
)
def test_bigquery_schema_messages_take_no_fields(
    emulator: Emulator, version: str, field: str
) -> None:
    # SchemaFlattened, SchemaJSON and the v1beta1 DICOM ChangeDataCaptureConfig have no
    # properties: the API's JSON parsing refuses any name inside them.
    prefix = f"GoogleCloudHealthcare{version.capitalize()}Dicom"
    message = discovery(version)["schemas"][f"{prefix}BigQueryDestination"]["properties"][field]
    assert discovery(version)["schemas"][message["$ref"]]["properties"] == {}
    hc = client(emulator, version)
    store = make_store(hc)
    options: dict[str, Any] = {"schemaJson": {}} if field == "changeDataCaptureConfig" else {}
    options[field] = {"x": 1}
    body = {"bigqueryDestination": {"tableUri": "bq://test-project.d.t", **options}}

    with pytest.raises(HttpError) as exc:
        datasets(hc).dicomStores().export(name=store, body=body).execute()

    error = json.loads(exc.value.content)["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"] == (
        f"Invalid JSON payload received. Unknown name \"x\" at 'bigqueryDestination.{field}': "
        "Cannot find field."
    )
