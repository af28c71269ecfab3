"""Section "import" (issue 3): bulk import through the emulator vs a bare pydicom loop.

Both sides handle the same N files (copies of pydicom's corpus with fresh UIDs):

* **emulator**: the files sit in an emulator bucket; one ``dicomStores.import`` is submitted
  through googleapiclient and polled every ``POLL_S`` until done; the rate is instances per
  second from just before the submit to the poll that saw ``done``. The emulator runs as its
  own process (``python -m dicom_transfer.emulator``), so its peak RSS (``VmHWM``) is its own.
* **bare loop**: read each file from a temporary directory, parse it with pydicom, take its
  UIDs and copy its bytes into a dict -- the least any importer must do. It runs once before
  and once after the emulator import; the faster run counts (the conservative choice for the
  ratio on a shared, noisy machine).
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from bench_common import (
    DicomCopy,
    create_dataset,
    create_store,
    datasets,
    fresh_copies,
    healthcare_client,
    peak_rss_mb,
    rss_mb,
    upload_objects,
)
from dicom_transfer.emulator.launch import EmulatorProcess

POLL_S = 0.05
BUCKET = "bench-import-src"
PREFIX = "corpus"
TIMEOUT_S = 600.0


@dataclass(frozen=True)
class ImportFigures:
    """What the section measured."""

    instances: int
    emulator_s: float
    emulator_server_s: float | None
    bare_runs_s: tuple[float, ...]
    peak_rss_mb: float
    rss_before_import_mb: float
    corpus_mb: float

    def to_json(self) -> dict[str, Any]:
        """The documented keys (``instances``, ``emulator_per_s``, ``bare_per_s``, ``ratio``,
        ``emulator_peak_rss_mb``) plus details."""
        emulator_per_s = self.instances / self.emulator_s
        bare_per_s = self.instances / min(self.bare_runs_s)
        return {
            "instances": self.instances,
            "emulator_per_s": round(emulator_per_s, 1),
            "bare_per_s": round(bare_per_s, 1),
            "ratio": round(emulator_per_s / bare_per_s, 3),
            "emulator_peak_rss_mb": round(self.peak_rss_mb, 1),
            "emulator_rss_before_import_mb": round(self.rss_before_import_mb, 1),
            "emulator_s": round(self.emulator_s, 3),
            "emulator_server_s": (
                round(self.emulator_server_s, 3) if self.emulator_server_s is not None else None
            ),
            "bare_runs_s": [round(s, 3) for s in self.bare_runs_s],
            "corpus_mb": round(self.corpus_mb, 1),
        }


def bare_loop(paths: list[Path]) -> float:
    """Reads, parses and copies every file; returns the seconds it took."""
    kept: dict[str, bytearray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        for path in paths:
            data = path.read_bytes()
            ds = pydicom.dcmread(io.BytesIO(data))
            uids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
            kept[uids[2]] = bytearray(data)
        elapsed = time.perf_counter() - start
    if len(kept) != len(paths):
        raise RuntimeError(f"bare loop kept {len(kept)} of {len(paths)} files")
    return elapsed


def _epoch(rfc3339: str | None) -> float | None:
    if not rfc3339:
        return None
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def emulator_import(copies: list[DicomCopy], *, data_dir: Path | None) -> tuple[float, float | None,
                                                                              float, float]:
    """Imports the copies through a fresh emulator process.

    Returns:
        (seconds from submit to done seen, endTime - createTime, peak RSS MiB, RSS MiB just
        before the submit).
    """
    with EmulatorProcess(data_dir=data_dir) as emulator:
        assert emulator.pid is not None
        upload_objects(emulator.storage_url, BUCKET, PREFIX, copies)
        client = healthcare_client(emulator.healthcare_url)
        create_dataset(client)
        store = create_store(client, "import")
        operations = datasets(client).operations()
        rss_before = rss_mb(emulator.pid)
        body = {"gcsSource": {"uri": f"gs://{BUCKET}/{PREFIX}/**.dcm"}}
        start = time.perf_counter()
        operation = datasets(client).dicomStores().import_(name=store, body=body).execute()
        while not operation.get("done"):
            if time.perf_counter() - start > TIMEOUT_S:
                raise RuntimeError(f"import not done after {TIMEOUT_S:.0f} s: {operation}")
            time.sleep(POLL_S)
            operation = operations.get(name=operation["name"]).execute()
        elapsed = time.perf_counter() - start
        peak = peak_rss_mb(emulator.pid)
    counter = operation.get("metadata", {}).get("counter", {})
    success = int(counter.get("success", 0))
    if success != len(copies) or "error" in operation:
        raise RuntimeError(
            f"the import stored {success} of {len(copies)} instances: "
            f"{operation.get('error', counter)}"
        )
    metadata = operation.get("metadata", {})
    created, ended = _epoch(metadata.get("createTime")), _epoch(metadata.get("endTime"))
    server_s = ended - created if created is not None and ended is not None else None
    return elapsed, server_s, peak, rss_before


def measure(instances: int, *, persist: bool = False) -> ImportFigures:
    """Runs the section.

    Args:
        instances: Number of files (1,000 by default in run.py).
        persist: Run the emulator with a ``--data-dir`` (state on disk) instead of memory.
    """
    copies = fresh_copies(instances)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = Path(tmp)
        files = root / "files"
        files.mkdir()
        paths = []
        for copy in copies:
            path = files / copy.name
            path.write_bytes(copy.data)
            paths.append(path)
        bare_first = bare_loop(paths)
        emulator_s, server_s, peak, before = emulator_import(
            copies, data_dir=root / "emulator-data" if persist else None
        )
        bare_second = bare_loop(paths)
    return ImportFigures(
        instances=instances,
        emulator_s=emulator_s,
        emulator_server_s=server_s,
        bare_runs_s=(bare_first, bare_second),
        peak_rss_mb=peak,
        rss_before_import_mb=before,
        corpus_mb=statistics.fsum(len(c.data) for c in copies) / 2**20,
    )
