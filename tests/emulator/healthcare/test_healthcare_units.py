"""Unit tests of the Healthcare side's building blocks (no HTTP)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from dicom_transfer_emulator.bigquery.tables import (
    TableNotEmpty,
    effective_disposition,
    open_tables,
    parse_table_uri,
)
from dicom_transfer_emulator.dicom.export_formats import export_format
from dicom_transfer_emulator.dicom.parsing import (
    DicomParseError,
    RenderError,
    instance_row,
    parse_instance,
)
from dicom_transfer_emulator.dicom.rendering import render_instance
from dicom_transfer_emulator.errors import ApiException
from dicom_transfer_emulator.healthcare.request_bodies import gcs_destination_format
from dicom_transfer_emulator.healthcare.state import (
    AddResult,
    AlreadyExists,
    HealthcareState,
    NotFound,
)
from support.healthcare import corpus_bytes, fresh_copy

LE = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"


@pytest.mark.parametrize(
    ("value", "mime", "syntax", "ext"),
    [
        (None, "application/dicom", "*", ".dcm"),
        ("", "application/dicom", "*", ".dcm"),
        ("application/dicom; transfer-syntax=*", "application/dicom", "*", ".dcm"),
        (f"Application/DICOM;transfer-syntax={LE}", "application/dicom", LE, ".dcm"),
        (
            "application/dicom; transfer-syntax=1.2.840.10008.1.2",
            "application/dicom",
            IMPLICIT,
            ".dcm",
        ),
        # DICOMweb forms without transfer-syntax take the conformance statement's default.
        ("application/dicom", "application/dicom", LE, ".dcm"),
        ("application/octet-stream", "application/octet-stream", LE, ""),
        ("image/jpeg", "image/jpeg", "1.2.840.10008.1.2.4.50", ".jpg"),
        ("application/octet-stream; transfer-syntax=*", "application/octet-stream", "*", ""),
        (f"application/octet-stream; transfer-syntax={LE}", "application/octet-stream", LE, ""),
        (
            "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50",
            "image/jpeg",
            "1.2.840.10008.1.2.4.50",
            ".jpg",
        ),
        ("image/png", "image/png", None, ".png"),
    ],
)
def test_export_formats(value: str | None, mime: str, syntax: str | None, ext: str) -> None:
    fmt = gcs_destination_format(value)
    assert (fmt.mime_type, fmt.transfer_syntax, fmt.extension) == (mime, syntax, ext)


@pytest.mark.parametrize(
    "value",
    [
        "image/gif",
        "image/png; transfer-syntax=1.2.840.10008.1.2.1",
        "application/dicom; q=1",
        # Older pages showed "transfer-syntax=" where the API documents "transfer-syntax=*".
        "application/dicom; transfer-syntax=",
        "application/octet-stream; transfer-syntax=",
        "application/dicom; transfer-syntax=1.2.3",
        "application/dicom; transfer-syntax=*; transfer-syntax=*",
        "; transfer-syntax=*",
        " ;q=1",
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50",
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2",
        "image/jpeg; transfer-syntax=*",
    ],
)
def test_unsupported_export_formats(value: str) -> None:
    with pytest.raises(ApiException, match=r"mimeType: unsupported mimeType") as err:
        gcs_destination_format(value)
    assert err.value.code == 400 and err.value.message.startswith("gcsDestination.mimeType: ")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("MR_truncated.dcm", "truncated"),
        ("rtplan_truncated.dcm", "truncated"),
        ("no_meta.dcm", "Part 10"),
        ("README.txt", "Part 10"),
        ("empty_charset_LEI.dcm", "StudyInstanceUID"),
    ],
)
def test_unreadable_instances(name: str, reason: str) -> None:
    with pytest.raises(DicomParseError, match=reason):
        parse_instance(corpus_bytes(name))


def test_parse_instance_reads_identifiers() -> None:
    parsed = parse_instance(corpus_bytes("rtdose.dcm"))
    ds = pydicom.dcmread(io.BytesIO(corpus_bytes("rtdose.dcm")))
    assert parsed.study_uid == ds.StudyInstanceUID
    assert parsed.sop_instance_uid == ds.SOPInstanceUID
    assert parsed.number_of_frames == 15
    assert parsed.transfer_syntax_uid == "1.2.840.10008.1.2"


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "SC_rgb_small_odd_big_endian.dcm",
        "rtdose_expb.dcm",
        "image_dfl.dcm",
    ],
)
def test_transcode_to_explicit_little_endian_keeps_pixels(name: str) -> None:
    source = pydicom.dcmread(io.BytesIO(corpus_bytes(name)))
    (out,) = render_instance(
        corpus_bytes(name), export_format("application/dicom", {"transfer-syntax": LE})
    )
    result = pydicom.dcmread(io.BytesIO(out.data))
    assert result.file_meta.TransferSyntaxUID == LE
    assert np.array_equal(result.pixel_array, source.pixel_array)


def test_render_errors_are_explicit() -> None:
    with pytest.raises(RenderError, match="no pixel data"):
        render_instance(corpus_bytes("test-SR.dcm"), export_format("image/png"))
    with pytest.raises(RenderError, match=r"cannot decode pixel data .*JPEG Extended") as info:
        render_instance(corpus_bytes("JPEG-lossy.dcm"), export_format("image/jpeg"))
    # The whole reason, on one line: not pydicom's first line "…all available plugins:".
    message = str(info.value)
    assert "\n" not in message and not message.endswith(":")
    assert "pillow: Pillow does not support" in message
    with pytest.raises(RenderError, match="holds 8-bit unsigned"):
        render_instance(
            corpus_bytes("CT_small.dcm"),
            export_format("application/dicom", {"transfer-syntax": "1.2.840.10008.1.2.4.50"}),
        )
    with pytest.raises(RenderError, match="no encoder for that transfer syntax"):
        render_instance(
            corpus_bytes("CT_small.dcm"),
            export_format("application/dicom", {"transfer-syntax": "1.2.840.10008.1.2.4.57"}),
        )
    # Already in the requested syntax: the original bytes.
    jpeg = corpus_bytes("SC_rgb_jpeg_dcmtk.dcm")
    (same,) = render_instance(
        jpeg, export_format("application/dicom", {"transfer-syntax": "1.2.840.10008.1.2.4.50"})
    )
    assert same.data == jpeg


def test_multiframe_octet_stream_frames() -> None:
    data = corpus_bytes("SC_rgb_rle_2frame.dcm")
    as_stored = export_format("application/octet-stream", {"transfer-syntax": "*"})
    frames = render_instance(data, as_stored)
    assert [f.frame for f in frames] == [1, 2]
    uncompressed = export_format("application/octet-stream", {"transfer-syntax": LE})
    raw = render_instance(data, uncompressed)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert b"".join(f.data for f in raw) == ds.pixel_array.tobytes()


def test_instance_row() -> None:
    row = instance_row(corpus_bytes("CT_small.dcm"))
    assert row["Modality"] == "CT" and row["Rows"] == 128
    assert "PixelData" not in row
    assert isinstance(row["PatientName"], str)


def test_table_uri_and_dispositions(tmp_path: Path) -> None:
    ref = parse_table_uri("bq://example.com:proj-1.ds_1.tab-1")
    assert (ref.project, ref.dataset, ref.table) == ("example.com:proj-1", "ds_1", "tab-1")
    for bad in ("bq://p.d.t", "gs://proj-1.d.t", "bq://proj-1.d", "bq://proj-1." + "d" * 2000):
        with pytest.raises(ValueError):
            parse_table_uri(bad)
    # BigQuery "Table naming": categories L, M, N, Pc, Pd, Zs; at most 1,024 UTF-8 bytes.
    for name in ("Tabl\u00e9 2026-01", "\u8868_\u0301\u0663", "a\u00a0b", "\u00e9" * 512):
        assert parse_table_uri(f"bq://proj-1.ds.{name}").table == name
    for name in ("t@1", "t/x", "t\tx", "t$", "\u00e9" * 513, "t\u200bx"):
        with pytest.raises(ValueError, match="invalid BigQuery table id"):
            parse_table_uri(f"bq://proj-1.ds.{name}")
    assert effective_disposition(None, None) == "WRITE_EMPTY"
    assert effective_disposition(None, True) == "WRITE_TRUNCATE"
    assert effective_disposition("WRITE_APPEND", True) == "WRITE_APPEND"
    assert effective_disposition("WRITE_DISPOSITION_UNSPECIFIED", True) == "WRITE_TRUNCATE"
    for tables in (open_tables(), open_tables(tmp_path)):
        tables.write_rows(ref, [{"a": 1}], "WRITE_EMPTY")
        with pytest.raises(TableNotEmpty):
            tables.write_rows(ref, [{"a": 2}], "WRITE_EMPTY")
        tables.write_rows(ref, [{"a": 2}], "WRITE_APPEND")
        assert tables.read_rows(ref) == [{"a": 1}, {"a": 2}]
        tables.write_rows(ref, [{"a": 3}], "WRITE_TRUNCATE")
        assert tables.read_rows(ref.id) == [{"a": 3}]
        assert tables.list_tables() == [ref.id]
        tables.reset()
        assert tables.read_rows(ref) == [] and not tables.exists(ref)


@pytest.mark.parametrize("persist", [False, True])
def test_written_rows_are_streamed_and_committed_whole(tmp_path: Path, persist: bool) -> None:
    tables = open_tables(tmp_path if persist else None)
    ref = parse_table_uri("bq://proj-1.ds.t")
    tables.write_rows(ref, [{"k": 1, "v": "a"}, {"k": 2, "v": "a"}], "WRITE_EMPTY")
    assert tables.has_rows(ref) and not tables.has_rows("proj-1.ds.other")

    def failing() -> Iterator[dict[str, Any]]:
        yield {"k": 3, "v": "lost"}
        raise RuntimeError("the export stopped")

    with pytest.raises(RuntimeError):
        tables.write_rows(ref, failing(), "WRITE_TRUNCATE")
    assert tables.read_rows(ref) == [{"k": 1, "v": "a"}, {"k": 2, "v": "a"}]
    # Change data capture: a written row replaces the table's row with the same key.
    written = tables.write_rows(
        ref, iter([{"k": 2, "v": "b"}, {"k": 4, "v": "b"}]), "WRITE_APPEND", upsert_key="k"
    )
    assert written == 2
    assert tables.read_rows(ref) == [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}, {"k": 4, "v": "b"}]
    assert tables.list_tables() == [ref.id]
    if persist:  # nothing but the table is left in its folder
        assert [p.name for p in (tmp_path / "bigquery" / "proj-1" / "ds").iterdir()] == ["t.jsonl"]


@pytest.mark.parametrize("persist", [False, True])
def test_state_instances_and_duplicates(tmp_path: Path, persist: bool) -> None:
    state = HealthcareState(tmp_path if persist else None)
    dataset = "projects/p-roject/locations/l/datasets/d"
    store = f"{dataset}/dicomStores/s"
    with pytest.raises(NotFound):
        state.create_store(store, {})
    state.create_dataset(dataset, {})
    state.create_store(store, {})
    with pytest.raises(AlreadyExists):
        state.create_store(store, {})
    data = fresh_copy("CT_small.dcm")
    parsed = parse_instance(data)
    assert state.add_instance(store, parsed, data) is AddResult.ADDED
    assert state.add_instance(store, parsed, bytes(data)) is AddResult.DUPLICATE
    longer = data + b"\0\0"  # same size is not enough, nor is a shared prefix
    assert state.add_instance(store, parsed, longer) is AddResult.CHECKSUM_MISMATCH
    flipped = data[:-1] + bytes([data[-1] ^ 1])
    assert state.add_instance(store, parsed, flipped) is AddResult.CHECKSUM_MISMATCH
    moved = replace(parsed, series_uid="1.2.3")
    assert state.add_instance(store, moved, data) is AddResult.CONFLICT
    assert state.read_instance(store, parsed.sop_instance_uid) == data
    assert [r.size for r in state.list_instances(store)] == [len(data)]
    if persist:  # a stored file removed by hand: the same bytes again are refused, not stored
        next(tmp_path.rglob(f"{parsed.sop_instance_uid}.dcm")).unlink()
        assert state.add_instance(store, parsed, data) is AddResult.CHECKSUM_MISMATCH
    state.delete_dataset(dataset)
    with pytest.raises(NotFound):
        state.list_instances(store)
