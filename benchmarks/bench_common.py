"""Shared helpers of the benchmarks: corpus copies, emulator set-up, clients, process memory.

Everything here talks to the emulator the way a user's tools do (Cloud Storage JSON API,
Healthcare REST through googleapiclient) plus its documented admin endpoints
(``/_emulator/faults``, ``/_emulator/requests``).
"""

from __future__ import annotations

import io
import itertools
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pydicom
from dicom_transfer_emulator.testing.seed import corpus_files
from pydicom.uid import generate_uid

PROJECT = "bench-project"
LOCATION = "us-central1"
DATASET = "bench"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
RETRIES = 3
"""googleapiclient retries of set-up calls: between two engine runs of a minute or more, the
emulator closes the client's idle kept-alive connection and the next call meets a broken pipe."""


@dataclass(frozen=True)
class DicomCopy:
    """One corpus file rewritten with fresh UIDs.

    Attributes:
        name: Object name (without bucket or prefix).
        data: The file's bytes.
        sop_instance_uid: Its new SOP Instance UID.
    """

    name: str
    data: bytes
    sop_instance_uid: str


def fresh_copies(count: int) -> list[DicomCopy]:
    """``count`` copies of pydicom's bundled corpus (cycled), each with new UIDs.

    Every copy gets a fresh Study, Series and SOP Instance UID (and the matching
    MediaStorageSOPInstanceUID), so importing them all into one store stores every one.

    Args:
        count: How many files to make.

    Returns:
        The copies, named ``00000_<corpus name>.dcm`` and so on.
    """
    sources = corpus_files()
    copies: list[DicomCopy] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the corpus' odd encodings
        for index, source in zip(range(count), itertools.cycle(sources), strict=False):
            ds = pydicom.dcmread(source.path)
            ds.StudyInstanceUID = generate_uid()
            ds.SeriesInstanceUID = generate_uid()
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            copies.append(
                DicomCopy(f"{index:05d}_{source.path.name}", dicom_bytes(ds), ds.SOPInstanceUID)
            )
    return copies


def dicom_bytes(ds: pydicom.Dataset) -> bytes:
    """``ds`` as a Part 10 file, as it was read if its encoding cannot be rewritten."""
    out = io.BytesIO()
    try:
        ds.save_as(out)
    except (TypeError, ValueError):
        # A body in implicit VR under an explicit-VR transfer syntax (pydicom ships one,
        # SC_rgb_jpeg.dcm) has elements without a VR: write it back as it came.
        out = io.BytesIO()
        pydicom.dcmwrite(out, ds, implicit_vr=True, little_endian=True, force_encoding=True)
    return out.getvalue()


def bare_loop(paths: list[Path], keep: Callable[[str, bytes], None]) -> float:
    """The baseline of the import benchmarks: read and parse every file (the three UIDs),
    then hand its bytes to ``keep`` with the SOP Instance UID; returns the seconds it took.

    Raises:
        RuntimeError: ``keep`` was not called once per file.
    """
    kept = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        for path in paths:
            data = path.read_bytes()
            ds = pydicom.dcmread(io.BytesIO(data))
            uids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
            keep(uids[2], data)
            kept += 1
        elapsed = time.perf_counter() - start
    if kept != len(paths):
        raise RuntimeError(f"bare loop kept {kept} of {len(paths)} files")
    return elapsed


def http_json(
    base_url: str,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    content_type: str = "application/json",
    timeout_s: float = 60.0,
) -> Any:
    """Sends one request on a fresh connection and returns the decoded JSON answer.

    A fresh connection per request on purpose: on a kept-alive connection the emulator's
    answers wait ~40 ms each (it writes headers and body in two segments without
    TCP_NODELAY, so Nagle's algorithm waits for the client's delayed ACK).

    Args:
        base_url: ``http://host:port``.
        method: HTTP method.
        path: Path and query, sent as is.
        body: Bytes, or a dict sent as JSON.
        content_type: Content type of a bytes body.
        timeout_s: Socket timeout.

    Raises:
        RuntimeError: The answer is not 2xx.
    """
    parts = urlsplit(base_url)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"Content-Type": content_type} if data is not None else {}
    conn = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    if not 200 <= response.status < 300:
        raise RuntimeError(f"{method} {path}: HTTP {response.status}: {payload[:300]!r}")
    return json.loads(payload) if payload else {}


def upload_objects(
    storage_url: str, bucket: str, prefix: str, copies: list[DicomCopy]
) -> list[str]:
    """Creates ``bucket`` and uploads the copies under ``prefix`` (Cloud Storage JSON API).

    Returns:
        The object names.
    """
    http_json(storage_url, "POST", f"/storage/v1/b?project={PROJECT}", {"name": bucket})
    names = []
    for copy in copies:
        name = f"{prefix.rstrip('/')}/{copy.name}"
        http_json(
            storage_url,
            "POST",
            f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name, safe='')}",
            copy.data,
            content_type="application/dicom",
        )
        names.append(name)
    return names


def datasets(client: Any) -> Any:
    """The ``projects.locations.datasets`` resource of a Healthcare client."""
    return client.projects().locations().datasets()


def create_dataset(client: Any, dataset: str = DATASET) -> str:
    """Creates a dataset; returns its name."""
    datasets(client).create(parent=PARENT, datasetId=dataset, body={}).execute(num_retries=RETRIES)
    return f"{PARENT}/datasets/{dataset}"


def create_store(client: Any, store: str, dataset: str = DATASET) -> str:
    """Creates a DICOM store in ``dataset``; returns its name."""
    parent = f"{PARENT}/datasets/{dataset}"
    request = datasets(client).dicomStores().create(parent=parent, dicomStoreId=store, body={})
    request.execute(num_retries=RETRIES)
    return f"{parent}/dicomStores/{store}"


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident set size (``VmHWM``), in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def rss_mb(pid: int) -> float:
    """A process's current resident set size (``VmRSS``), in MiB."""
    return _status_kib(pid, "VmRSS") / 1024
