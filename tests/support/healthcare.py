"""Helpers shared by the Healthcare emulator tests (clients, corpus, polling)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from dicom_transfer_emulator.app import Emulator
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import generate_uid

PROJECT = "test-project"
LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
CORPUS_DIR = Path(pydicom.__file__).parent / "data" / "test_files"


def client(emu: Emulator, version: str = "v1") -> Any:
    """googleapiclient Healthcare client (bundled discovery document) for the emulator."""
    return discovery.build(
        "healthcare",
        version,
        credentials=AnonymousCredentials(),
        static_discovery=True,
        client_options={"api_endpoint": emu.healthcare_url + "/"},
    )


def datasets(hc: Any) -> Any:
    """``projects.locations.datasets`` resource."""
    return hc.projects().locations().datasets()


def make_store(hc: Any, dataset: str = "ds", store: str = "store") -> str:
    """Create a dataset (if needed) and a store; returns the store name."""
    ds = datasets(hc)
    name = f"{PARENT}/datasets/{dataset}"
    try:
        ds.get(name=name).execute()
    except Exception:
        ds.create(parent=PARENT, datasetId=dataset, body={}).execute()
    ds.dicomStores().create(parent=name, dicomStoreId=store, body={}).execute()
    return f"{name}/dicomStores/{store}"


def wait_done(
    hc: Any,
    operation: dict[str, Any],
    timeout: float = 30.0,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll ``operations.get`` until done (the worker runs in a background thread)."""
    deadline = time.monotonic() + timeout
    op = operation
    while not op.get("done"):
        assert time.monotonic() < deadline, f"operation not done in {timeout}s: {op}"
        time.sleep(0.02)
        op = datasets(hc).operations().get(name=op["name"]).execute()
        if on_poll is not None:
            on_poll(op)
    return op


def counters(op: dict[str, Any]) -> tuple[int, int, int]:
    """``(success, failure, pending)`` of an operation (absent = 0)."""
    c = op.get("metadata", {}).get("counter", {})
    return int(c.get("success", 0)), int(c.get("failure", 0)), int(c.get("pending", 0))


def run_import(hc: Any, store: str, uri: str, **extra: Any) -> dict[str, Any]:
    """Submit an import and wait for it."""
    body: dict[str, Any] = {"gcsSource": {"uri": uri}, **extra}
    op = datasets(hc).dicomStores().import_(name=store, body=body).execute()
    return wait_done(hc, op)


def run_export(hc: Any, store: str, body: dict[str, Any]) -> dict[str, Any]:
    """Submit an export and wait for it."""
    op = datasets(hc).dicomStores().export(name=store, body=body).execute()
    return wait_done(hc, op)


def corpus_files() -> list[Path]:
    """Every top-level file of pydicom's bundled test data, sorted by name."""
    return sorted(p for p in CORPUS_DIR.iterdir() if p.is_file())


def corpus_bytes(name: str) -> bytes:
    """Bytes of one of pydicom's bundled test files."""
    return (CORPUS_DIR / name).read_bytes()


def fresh_copy(name: str, **attrs: str) -> bytes:
    """A copy of a bundled file with a new SOP Instance UID (and other attributes)."""
    ds = pydicom.dcmread(CORPUS_DIR / name)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for key, value in attrs.items():
        setattr(ds, key, value)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def relabelled_copy(name: str, transfer_syntax: str) -> bytes:
    """A fresh copy of a bundled file with encapsulated pixel data, labelled ``transfer_syntax``.

    For syntaxes pydicom cannot write (it refuses UIDs it does not list, e.g. JPEG XL): the
    file meta names ``transfer_syntax``, the dataset stays explicit VR little endian with the
    original frames — encoded otherwise than the label says, which only matters to a decoder.
    """
    ds = pydicom.dcmread(io.BytesIO(fresh_copy(name)))
    assert ds["PixelData"].is_undefined_length, f"{name} has no encapsulated pixel data"
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    out = DicomBytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, ds.file_meta, enforce_standard=True)
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, ds)
    return out.getvalue()


@dataclass(frozen=True)
class Expected:
    """Import outcome of a corpus computed with plain pydicom, independent of the emulator."""

    success: int
    failure: int
    stored: set[str]


def expected_import(files: list[tuple[str, bytes]]) -> Expected:
    """Expected counters for importing ``files`` (object name order) into an empty store.

    Rules (documented in the emulator): a file fails when pydicom cannot read it as a Part 10
    file, when it lacks Study/Series/SOP Instance UID, or when it is truncated (the corpus
    marks those with ``_truncated`` in the name — checked below to be shorter than the
    complete file); a repeated SOP Instance UID is a success that is not stored again when its
    file is byte-identical to the one stored first, and a failure otherwise.
    """
    success = failure = 0
    seen: dict[str, bytes] = {}
    for name, data in sorted(files):
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
            uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        except Exception:
            failure += 1
            continue
        if not all(str(u).strip() for u in uids) or "_truncated" in os.path.basename(name):
            failure += 1
            continue
        sop = str(uids[2]).strip()
        if seen.setdefault(sop, data) != data:
            failure += 1
            continue
        success += 1
    return Expected(success, failure, set(seen))
