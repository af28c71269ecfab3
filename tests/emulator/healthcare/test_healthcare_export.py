"""``dicomStores.export``: the MIME matrix, object naming, filters and BigQuery."""

from __future__ import annotations

import io
import json
import urllib.request
from typing import Any

import numpy as np
import pydicom
import pytest
from dicom_transfer_emulator.app import Emulator
from googleapiclient.errors import HttpError
from PIL import Image
from support.healthcare import (
    client,
    counters,
    datasets,
    fresh_copy,
    make_store,
    run_export,
    run_import,
)

EXPLICIT_LE = "1.2.840.10008.1.2.1"
#: name -> (frames, has pixel data, pixel data decodable here)
SOURCES = {
    "CT_small.dcm": (1, True, True),
    "MR_small_bigendian.dcm": (1, True, True),
    "MR_small_RLE.dcm": (1, True, True),
    "JPEG2000.dcm": (1, True, True),
    "MR_small_jpeg_ls_lossless.dcm": (1, True, True),  # decoded by pyjpegls
    "JPEG-lossy.dcm": (1, True, False),  # JPEG Extended: no decoder installed
    "rtdose.dcm": (15, True, True),
    "test-SR.dcm": (1, False, False),
}


def load_store(emu: Emulator) -> tuple[Any, str, dict[str, pydicom.Dataset]]:
    """A store holding one fresh copy of each SOURCES file; returns sop -> source dataset."""
    hc = client(emu)
    store = make_store(hc)
    emu.storage.create_bucket("src", "test-project")
    emu.storage.create_bucket("out", "test-project")
    by_sop: dict[str, pydicom.Dataset] = {}
    for name in SOURCES:
        data = fresh_copy(name)
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.source_name = name
        ds.source_bytes = data
        by_sop[str(ds.SOPInstanceUID)] = ds
        emu.storage.write_object("src", name, data)
    op = run_import(hc, store, "gs://src/*.dcm")
    assert counters(op) == (len(SOURCES), 0, 0)
    return hc, store, by_sop


def exported(emu: Emulator, prefix: str = "") -> dict[str, bytes]:
    items, _ = emu.storage.list_objects("out", prefix=prefix)
    return {m.name: emu.storage.read_object("out", m.name) for m in items}


@pytest.mark.parametrize(
    "mime",
    [
        None,
        "application/dicom",  # DICOMweb default: explicit VR little endian
        "application/dicom; transfer-syntax=*",
        f"application/dicom; transfer-syntax={EXPLICIT_LE}",
        "application/octet-stream",  # DICOMweb default: uncompressed little endian
        "application/octet-stream; transfer-syntax=*",
        f"application/octet-stream; transfer-syntax={EXPLICIT_LE}",
        "image/jpeg",
        "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50",
        "image/png",
    ],
)
def test_export_mime_matrix(emulator: Emulator, mime: str | None) -> None:
    hc, store, by_sop = load_store(emulator)
    destination: dict[str, Any] = {"uriPrefix": "gs://out/exp"}
    if mime is not None:
        destination["mimeType"] = mime
    op = run_export(hc, store, {"gcsDestination": destination})
    files = exported(emulator, "exp/")
    assert all("//" not in name for name in files)

    media = (mime or "application/dicom").split(";")[0]
    transcode = mime is not None and "transfer-syntax=*" not in mime
    ext = {"application/dicom": ".dcm", "image/jpeg": ".jpg", "image/png": ".png"}.get(media, "")
    expected_ok: set[str] = set()
    for sop, ds in by_sop.items():
        frames, has_pixels, decodable = SOURCES[ds.source_name]
        if media == "application/dicom":
            ok = (
                decodable
                or not transcode
                or not has_pixels
                or (str(ds.file_meta.TransferSyntaxUID) == EXPLICIT_LE)
            )
        elif media == "application/octet-stream":
            ok = has_pixels and (decodable or not transcode)
        else:
            ok = has_pixels and decodable
        base = f"exp/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{sop}"
        names = (
            [f"{base}/{i}{ext}" for i in range(1, frames + 1)]
            if frames > 1 and media != "application/dicom"
            else [f"{base}{ext}"]
        )
        if not ok:
            assert not any(n.startswith(base) for n in files), ds.source_name
            continue
        expected_ok.add(sop)
        for name in names:
            assert name in files, (ds.source_name, name, sorted(files))
        content = files[names[0]]
        if media == "application/dicom" and not transcode:
            assert content == ds.source_bytes
        elif media == "application/dicom":
            out = pydicom.dcmread(io.BytesIO(content))
            assert out.file_meta.TransferSyntaxUID == EXPLICIT_LE
            if has_pixels:
                assert np.array_equal(out.pixel_array, ds.pixel_array), ds.source_name
        elif media == "application/octet-stream" and not transcode:
            if not ds.file_meta.TransferSyntaxUID.is_compressed:
                assert (
                    b"".join(files[n] for n in names)
                    == ds.PixelData[: sum(len(files[n]) for n in names)]
                )
        elif media == "application/octet-stream":
            arr = ds.pixel_array
            little = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
            assert b"".join(files[n] for n in names) == little, ds.source_name
        else:
            with Image.open(io.BytesIO(content)) as image:
                assert image.format == {".jpg": "JPEG", ".png": "PNG"}[ext]
                assert image.size == (int(ds.Columns), int(ds.Rows))
    assert counters(op)[0] == len(expected_ok)
    failures = len(by_sop) - len(expected_ok)
    assert counters(op)[1] == failures
    if failures:
        assert op["error"]["code"] == 3
        logs = emulator.healthcare.state.get_logs(op["name"].rsplit("/", 1)[1])
        assert logs is not None and len([e for e in logs if e["severity"] == "ERROR"]) == failures
    else:
        assert op["response"]["@type"].endswith("ExportDicomDataResponse")


@pytest.mark.parametrize(
    ("prefix", "object_prefix"),
    [
        ("gs://out", ""),
        ("gs://out/", ""),
        ("gs://out/a/b", "a/b/"),
        ("gs://out/a/b/", "a/b/"),
        # No wildcards in a directory: "*" and "?" are legal object-name characters.
        ("gs://out/run*?", "run*?/"),
    ],
)
def test_object_naming_and_overwrite(emulator: Emulator, prefix: str, object_prefix: str) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    emulator.storage.create_bucket("out", "test-project")
    data = fresh_copy("CT_small.dcm")
    ds = pydicom.dcmread(io.BytesIO(data))
    emulator.storage.write_object("src", "x.dcm", data)
    run_import(hc, store, "gs://src/x.dcm")
    name = f"{object_prefix}{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
    emulator.storage.write_object("out", name, b"stale")
    op = run_export(hc, store, {"gcsDestination": {"uriPrefix": prefix}})
    assert counters(op) == (1, 0, 0)
    assert list(exported(emulator)) == [name]
    assert emulator.storage.read_object("out", name) == data
    assert emulator.storage.get_object_meta("out", name).content_type == "application/dicom"


def test_unsupported_mime_type_is_rejected(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    bodies: list[dict[str, Any]] = [
        {"gcsDestination": {"uriPrefix": "gs://out/x", "mimeType": "image/gif"}},
        {
            "gcsDestination": {
                "uriPrefix": "gs://out/x",
                "mimeType": "application/dicom; transfer-syntax=1.2.3",
            }
        },
        {"gcsDestination": {"uriPrefix": "gs://Bad_Bucket/x"}},
        {"gcsDestination": {}},
        {},
        {
            "gcsDestination": {"uriPrefix": "gs://out/x"},
            "bigqueryDestination": {"tableUri": "bq://test-project.d.t"},
        },
    ]
    for body in bodies:
        with pytest.raises(HttpError) as exc:
            datasets(hc).dicomStores().export(name=store, body=body).execute()
        assert exc.value.resp.status == 400, body


def test_filters(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    emulator.storage.create_bucket("out", "test-project")
    layout = {  # study -> series -> count
        "1.1": {"1.1.1": 2, "1.1.2": 1},
        "1.2": {"1.2.1": 2},
        "1.3": {"1.3.1": 1},
    }
    sops: dict[tuple[str, str], list[str]] = {}
    for study, series_map in layout.items():
        for series, count in series_map.items():
            for i in range(count):
                data = fresh_copy("CT_small.dcm", StudyInstanceUID=study, SeriesInstanceUID=series)
                sops.setdefault((study, series), []).append(
                    str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID)
                )
                emulator.storage.write_object("src", f"{series}-{i}.dcm", data)
    assert counters(run_import(hc, store, "gs://src/*.dcm")) == (6, 0, 0)
    lines = [
        "/studies/1.1/series/1.1.2",
        "",
        f"/studies/1.2/series/1.2.1/instances/{sops[('1.2', '1.2.1')][0]}",
        "/studies/1.3",
        "/studies/9.9",  # not in the store: a warning, not a failure
    ]
    for sep, folder in (("\n", "lf"), ("\r\n", "crlf")):
        emulator.storage.write_object("src", f"filter-{folder}.txt", sep.join(lines).encode())
        op = run_export(
            hc,
            store,
            {
                "gcsDestination": {"uriPrefix": f"gs://out/{folder}"},
                "filterConfig": {"resourcePathsGcsUri": f"gs://src/filter-{folder}.txt"},
            },
        )
        assert counters(op) == (3, 0, 0), op
        got = {name.rsplit("/", 1)[1].removesuffix(".dcm") for name in exported(emulator, folder)}
        assert got == {*sops[("1.1", "1.1.2")], sops[("1.2", "1.2.1")][0], *sops[("1.3", "1.3.1")]}
    emulator.storage.write_object("src", "bad-filter.txt", b"/studies/1.1\n/nonsense/1\n")
    op = run_export(
        hc,
        store,
        {
            "gcsDestination": {"uriPrefix": "gs://out/bad"},
            "filterConfig": {"resourcePathsGcsUri": "gs://src/bad-filter.txt"},
        },
    )
    assert op["error"]["code"] == 3 and "line 2" in op["error"]["message"]
    op = run_export(
        hc,
        store,
        {
            "gcsDestination": {"uriPrefix": "gs://out/bad"},
            "filterConfig": {"resourcePathsGcsUri": "gs://src/missing.txt"},
        },
    )
    assert op["error"]["code"] == 5
    # BigQuery honours the filter too.
    op = run_export(
        hc,
        store,
        {
            "bigqueryDestination": {"tableUri": "bq://test-project.d.f"},
            "filterConfig": {"resourcePathsGcsUri": "gs://src/filter-lf.txt"},
        },
    )
    assert counters(op) == (3, 0, 0)
    assert len(emulator.healthcare.read_table("test-project.d.f")) == 3


def bq_export(hc: Any, store: str, table: str, **options: Any) -> dict[str, Any]:
    return run_export(hc, store, {"bigqueryDestination": {"tableUri": table, **options}})


def test_bigquery_dispositions(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    for name in ("CT_small.dcm", "MR_small.dcm"):
        emulator.storage.write_object("src", name, fresh_copy(name))
    run_import(hc, store, "gs://src/*.dcm")
    table = "bq://test-project.dicom_meta.instances"
    service = emulator.healthcare

    def rows() -> list[dict[str, Any]]:
        return service.read_table(table)

    op = bq_export(hc, store, table)  # default: WRITE_EMPTY on a new table
    assert counters(op) == (2, 0, 0) and "response" in op
    assert len(rows()) == 2
    assert {r["Modality"] for r in rows()} == {"CT", "MR"}
    assert all("PixelData" not in r and r["SOPInstanceUID"] for r in rows())
    failed = bq_export(hc, store, table, writeDisposition="WRITE_EMPTY")
    assert failed["error"]["code"] == 9 and len(rows()) == 2
    assert bq_export(hc, store, table, force=False)["error"]["code"] == 9
    assert "response" in bq_export(hc, store, table, writeDisposition="WRITE_APPEND")
    assert len(rows()) == 4
    assert "response" in bq_export(hc, store, table, writeDisposition="WRITE_TRUNCATE")
    assert len(rows()) == 2
    assert "response" in bq_export(hc, store, table, force=True)  # deprecated: truncate
    assert len(rows()) == 2
    # force is ignored when writeDisposition is set.
    assert "response" in bq_export(hc, store, table, writeDisposition="WRITE_APPEND", force=True)
    assert len(rows()) == 4
    assert "response" in bq_export(
        hc, store, table, writeDisposition="WRITE_TRUNCATE", includeSourceStore=True
    )
    assert {r["SourceStore"] for r in rows()} == {store}
    with urllib.request.urlopen(
        f"{emulator.healthcare_url}/_emulator/bigquery/test-project.dicom_meta.instances"
    ) as response:
        assert len(json.loads(response.read())["rows"]) == 2


@pytest.mark.parametrize(
    "table",
    [
        # Documented (guide "Exporting DICOM metadata to a different project"): the table
        # may live in another project than the store's.
        "bq://analytics-project.dicom_meta.instances",
        # BigQuery "Table naming": letters, marks, numbers, connectors, dashes and spaces.
        "bq://test-project.ds.Tabl\u00e9 2026-01",
    ],
)
def test_bigquery_tables_the_api_allows_are_written(emulator: Emulator, table: str) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    emulator.storage.write_object("src", "ct.dcm", fresh_copy("CT_small.dcm"))
    run_import(hc, store, "gs://src/ct.dcm")
    op = bq_export(hc, store, table)
    assert counters(op) == (1, 0, 0)
    assert len(emulator.healthcare.read_table(table)) == 1


@pytest.mark.parametrize(
    "table",
    [
        "test-project.d.t",
        "bq://test-project.d",
        "bq://test-project.d-bad.t",
        "bq://test-project.d." + "t" * 2000,
        "bq://test-project.d.t@1",
        "bq://test-project.d.t.x",
    ],
)
def test_bigquery_table_uri_validation(emulator: Emulator, table: str) -> None:
    hc = client(emulator)
    store = make_store(hc)
    with pytest.raises(HttpError) as exc:
        datasets(hc).dicomStores().export(
            name=store, body={"bigqueryDestination": {"tableUri": table}}
        ).execute()
    assert exc.value.resp.status == 400
    error = json.loads(exc.value.content)["error"]
    assert error["status"] == "INVALID_ARGUMENT"


def test_bigquery_bad_disposition(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    with pytest.raises(HttpError) as exc:
        datasets(hc).dicomStores().export(
            name=store,
            body={
                "bigqueryDestination": {
                    "tableUri": "bq://test-project.d.t",
                    "writeDisposition": "WRITE_SOMETIMES",
                }
            },
        ).execute()
    assert exc.value.resp.status == 400
