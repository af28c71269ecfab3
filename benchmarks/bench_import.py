"""Section "import" (issue 3): bulk import through the emulator vs a bare pydicom loop.

Both sides handle the same N files (copies of pydicom's corpus with fresh UIDs):

* **emulator**: the files sit in an emulator bucket; one ``dicomStores.import`` is submitted
  through googleapiclient and polled every ``POLL_S`` until done; the rate is instances per
  second from just before the submit to the poll that saw ``done``. The emulator runs as its
  own process (``python -m dicom_transfer_emulator``), so its peak RSS (``VmHWM``, read from
  ``/proc`` at the end) is its own.
* **bare loop**: read each file from a temporary directory, parse it with pydicom, take its
  UIDs and copy its bytes into a dict -- the least any importer must do.

The two alternate for ``rounds`` rounds in one run (a shared, noisy machine: side by side
beats absolute numbers); each side's figure is its median round. Every round imports into a
new store, and the previous round's store is deleted first, so the emulator holds one
round's instances at a time.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_common import (
    bare_loop,
    create_dataset,
    create_store,
    datasets,
    fresh_copies,
    peak_rss_mb,
    rss_mb,
    upload_objects,
)
from dicom_transfer_emulator.testing.clients import healthcare_client
from dicom_transfer_emulator.testing.launch import EmulatorProcess

POLL_S = 0.05
BUCKET = "bench-import-src"
PREFIX = "corpus"
TIMEOUT_S = 600.0
TARGET_RATIO = 0.5


@dataclass(frozen=True)
class ImportFigures:
    """What the section measured (seconds per round, memory in MiB)."""

    instances: int
    emulator_runs_s: tuple[float, ...]
    emulator_server_runs_s: tuple[float, ...]
    bare_runs_s: tuple[float, ...]
    peak_rss_mb: float
    rss_before_import_mb: float
    corpus_mb: float
    persist: bool = False

    def to_json(self) -> dict[str, Any]:
        """The documented keys (``instances``, ``emulator_per_s``, ``bare_per_s``, ``ratio``,
        ``emulator_peak_rss_mb``) plus details."""
        emulator_per_s = self.instances / statistics.median(self.emulator_runs_s)
        bare_per_s = self.instances / statistics.median(self.bare_runs_s)
        server_per_s = (
            self.instances / statistics.median(self.emulator_server_runs_s)
            if self.emulator_server_runs_s and min(self.emulator_server_runs_s) > 0
            else None
        )
        return {
            "instances": self.instances,
            "emulator_per_s": round(emulator_per_s, 1),
            "bare_per_s": round(bare_per_s, 1),
            "ratio": round(emulator_per_s / bare_per_s, 3),
            "emulator_peak_rss_mb": round(self.peak_rss_mb, 1),
            "target_ratio": TARGET_RATIO,
            "rounds": len(self.emulator_runs_s),
            "emulator_server_per_s": round(server_per_s, 1) if server_per_s else None,
            "emulator_rss_before_import_mb": round(self.rss_before_import_mb, 1),
            "emulator_runs_s": [round(s, 3) for s in self.emulator_runs_s],
            "bare_runs_s": [round(s, 3) for s in self.bare_runs_s],
            "corpus_mb": round(self.corpus_mb, 1),
            "emulator_state": "disk" if self.persist else "memory",
        }


def bare_memory_loop(paths: list[Path]) -> float:
    """Reads, parses and keeps every file in memory; returns the seconds it took."""
    kept: dict[str, bytearray] = {}

    def keep(sop_instance_uid: str, data: bytes) -> None:
        kept[sop_instance_uid] = bytearray(data)

    return bare_loop(paths, keep)


def _epoch(rfc3339: str | None) -> float | None:
    if not rfc3339:
        return None
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


@dataclass
class _Emulator:
    """A running emulator seeded with the files, ready for import rounds."""

    process: EmulatorProcess
    client: Any
    pid: int
    store: str | None = None
    rounds: int = 0

    def import_round(self, instances: int) -> tuple[float, float | None]:
        """Imports the bucket's files into a new store (dropping the previous one).

        Returns:
            (seconds from submit to done seen, the operation's endTime - createTime).
        """
        stores = datasets(self.client).dicomStores()
        if self.store is not None:
            stores.delete(name=self.store).execute()
        self.rounds += 1
        self.store = create_store(self.client, f"import-{self.rounds}")
        operations = datasets(self.client).operations()
        body = {"gcsSource": {"uri": f"gs://{BUCKET}/{PREFIX}/**.dcm"}}
        start = time.perf_counter()
        operation = stores.import_(name=self.store, body=body).execute()
        while not operation.get("done"):
            if time.perf_counter() - start > TIMEOUT_S:
                raise RuntimeError(f"import not done after {TIMEOUT_S:.0f} s: {operation}")
            time.sleep(POLL_S)
            operation = operations.get(name=operation["name"]).execute()
        elapsed = time.perf_counter() - start
        metadata = operation.get("metadata", {})
        success = int(metadata.get("counter", {}).get("success", 0))
        if success != instances or "error" in operation:
            raise RuntimeError(
                f"the import stored {success} of {instances} instances: "
                f"{operation.get('error', metadata.get('counter'))}"
            )
        created, ended = _epoch(metadata.get("createTime")), _epoch(metadata.get("endTime"))
        server_s = ended - created if created is not None and ended is not None else None
        return elapsed, server_s


def measure(instances: int, *, rounds: int = 3, persist: bool = False) -> ImportFigures:
    """Runs the section.

    Args:
        instances: Number of files (1,000 by default in run.py).
        rounds: Alternating (bare loop, emulator import) rounds; medians count.
        persist: Run the emulator with a ``--data-dir`` (state on disk) instead of memory.
    """
    copies = fresh_copies(instances)
    bare_runs: list[float] = []
    emulator_runs: list[float] = []
    server_runs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = Path(tmp)
        files = root / "files"
        files.mkdir()
        paths = []
        for copy in copies:
            path = files / copy.name
            path.write_bytes(copy.data)
            paths.append(path)
        data_dir = root / "emulator-data" if persist else None
        with EmulatorProcess(data_dir=data_dir) as process:
            assert process.pid is not None
            upload_objects(process.storage_url, BUCKET, PREFIX, copies)
            client = healthcare_client(process.healthcare_url)
            create_dataset(client)
            emulator = _Emulator(process, client, process.pid)
            rss_before = rss_mb(process.pid)
            for _ in range(rounds):
                bare_runs.append(bare_memory_loop(paths))
                elapsed, server_s = emulator.import_round(instances)
                emulator_runs.append(elapsed)
                if server_s is not None:
                    server_runs.append(server_s)
            peak = peak_rss_mb(process.pid)
    return ImportFigures(
        instances=instances,
        emulator_runs_s=tuple(emulator_runs),
        emulator_server_runs_s=tuple(server_runs),
        bare_runs_s=tuple(bare_runs),
        peak_rss_mb=peak,
        rss_before_import_mb=rss_before,
        corpus_mb=sum(len(c.data) for c in copies) / 2**20,
        persist=persist,
    )
