"""Section "p4" (issue 10, item 4): the emulator at scale, 10,000 instances on disk.

One run, side by side, on one emulator process started with ``--data-dir``:

1. **files**: ``instances`` copies of pydicom's corpus (cycled) with fresh UIDs, grouped as
   ``instances / 20`` studies of 4 series x 5 instances; each study gets its own
   PatientID/PatientName/AccessionNumber so searches have something to find. Written to a
   temporary directory as they are made (never all held in memory).
2. **bare loop**: read each file, parse it with pydicom, take its UIDs and copy its bytes
   to a file of its own in another directory -- the least an importer that keeps instance
   bytes on disk must do, and what the emulator with ``--data-dir`` does. For contrast, the
   loop of section ``import`` (copies into memory) runs over the same files too
   (``bare_memory_per_s``): the difference is the disk. ``os.sync()`` runs before each timed
   phase so that none pays for the dirty pages of the one before.
3. **import**: the files are uploaded to an emulator bucket (Cloud Storage JSON API, timed
   apart), then one ``dicomStores.import`` is submitted through googleapiclient and polled
   every ``POLL_S``; the rate is instances per second from just before the submit to the
   poll that saw ``done``. ``import_ratio`` = import rate / bare-loop rate (target >= 0.5).
4. **QIDO**: study searches (``GET …/dicomWeb/studies``) over the 10,000 instances, each on a
   fresh connection, alternating three kinds -- by PatientID (every instance is matched),
   the first page without a filter (``limit=100``), and a StudyDate range with
   ``includefield=all`` -- ``QIDO_ROUNDS`` of each; ``qido_median_ms`` is the median of all
   (target <= 100 ms), the per-kind medians are details.
5. **BigQuery export**: one ``dicomStores.export`` of the whole store to a new table (JSON
   schema), submit to done; the table's row count is checked in the emulator's data
   directory (``bigquery/{project}/{dataset}/{table}.jsonl``, documented in
   ``dicom_transfer_emulator.bigquery.tables``) rather than over HTTP, which would build all rows
   in one answer.

``rss_mb`` is the emulator's peak RSS (``VmHWM``) over the whole section (target <= 300 MB);
the peaks after the import and after the searches are details.
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pydicom
from bench_common import (
    PROJECT,
    bare_loop,
    create_dataset,
    create_store,
    datasets,
    dicom_bytes,
    http_json,
    peak_rss_mb,
    rss_mb,
)
from bench_import import bare_memory_loop
from dicom_transfer_emulator.testing.clients import healthcare_client
from dicom_transfer_emulator.testing.launch import EmulatorProcess
from dicom_transfer_emulator.testing.seed import corpus_files
from pydicom.uid import generate_uid

POLL_S = 0.05
BUCKET = "bench-p4-src"
PREFIX = "scale"
BQ_DATASET = "bench_p4"
BQ_TABLE = "instances"
TIMEOUT_S = 1800.0
SERIES_PER_STUDY = 4
INSTANCES_PER_SERIES = 5
QIDO_ROUNDS = 7
QIDO_TIMEOUT_S = 600.0
TARGET_RATIO = 0.5
TARGET_RSS_MB = 300.0
TARGET_QIDO_MS = 100.0


@dataclass(frozen=True)
class Study:
    """What a generated study is searchable by."""

    study_uid: str
    patient_id: str
    study_date: str


@dataclass
class Figures:
    """What the section measured (seconds, MiB, milliseconds)."""

    instances: int
    studies: int
    corpus_mb: float
    bare_s: float
    bare_memory_s: float
    upload_s: float
    import_s: float
    rss_before_import_mb: float
    rss_after_import_mb: float
    rss_after_qido_mb: float
    rss_mb: float
    qido_ms: dict[str, list[float]] = field(default_factory=dict)
    bq_export_s: float = 0.0
    bq_rows: int = 0

    def to_json(self) -> dict[str, Any]:
        """The documented keys (``instances``, ``import_ratio``, ``rss_mb``,
        ``qido_median_ms``, ``bq_export_s``) plus details."""
        import_per_s = self.instances / self.import_s
        bare_per_s = self.instances / self.bare_s
        every = [ms for times in self.qido_ms.values() for ms in times]
        return {
            "instances": self.instances,
            "import_ratio": round(import_per_s / bare_per_s, 3),
            "rss_mb": round(self.rss_mb, 1),
            "qido_median_ms": round(statistics.median(every), 1),
            "bq_export_s": round(self.bq_export_s, 2),
            "targets": {
                "import_ratio": TARGET_RATIO,
                "rss_mb": TARGET_RSS_MB,
                "qido_median_ms": TARGET_QIDO_MS,
            },
            "studies": self.studies,
            "corpus_mb": round(self.corpus_mb, 1),
            "import_per_s": round(import_per_s, 1),
            "bare_per_s": round(bare_per_s, 1),
            "bare_memory_per_s": round(self.instances / self.bare_memory_s, 1),
            "upload_s": round(self.upload_s, 2),
            "rss_before_import_mb": round(self.rss_before_import_mb, 1),
            "rss_after_import_mb": round(self.rss_after_import_mb, 1),
            "rss_after_qido_mb": round(self.rss_after_qido_mb, 1),
            "qido_searches": len(every),
            "qido_kind_median_ms": {
                kind: round(statistics.median(times), 1) for kind, times in self.qido_ms.items()
            },
            "qido_max_ms": round(max(every), 1),
            "bq_rows": self.bq_rows,
        }


def write_instances(count: int, folder: Path) -> tuple[list[Path], list[Study]]:
    """Writes ``count`` corpus copies with fresh UIDs into ``folder``, study by study.

    Returns:
        The file paths (in name order) and the generated studies.
    """
    sources = itertools.cycle(corpus_files())
    per_study = SERIES_PER_STUDY * INSTANCES_PER_SERIES
    paths: list[Path] = []
    studies: list[Study] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the corpus' odd encodings
        for index in range(count):
            if index % per_study == 0:
                number = len(studies)
                studies.append(
                    Study(generate_uid(), f"P4-{number:05d}", f"2024{number % 12 + 1:02d}15")
                )
                series_uids = [generate_uid() for _ in range(SERIES_PER_STUDY)]
            study = studies[-1]
            source = next(sources)
            ds = pydicom.dcmread(source.path)
            ds.StudyInstanceUID = study.study_uid
            ds.SeriesInstanceUID = series_uids[(index % per_study) // INSTANCES_PER_SERIES]
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID = study.patient_id
            ds.PatientName = f"Scale^Patient{len(studies):05d}"
            ds.AccessionNumber = f"A{len(studies):07d}"
            ds.StudyDate = study.study_date
            path = folder / f"{index:05d}_{source.path.name}"
            path.write_bytes(dicom_bytes(ds))
            paths.append(path)
    return paths, studies


def bare_disk_loop(paths: list[Path], out: Path) -> float:
    """Reads, parses and copies every file to ``out``; returns the seconds it took."""
    out.mkdir()

    def keep(sop_instance_uid: str, data: bytes) -> None:
        (out / f"{sop_instance_uid}.dcm").write_bytes(data)

    return bare_loop(paths, keep)


def upload(storage_url: str, paths: list[Path]) -> float:
    """Creates the bucket and uploads the files under ``PREFIX``; returns the seconds."""
    start = time.perf_counter()
    http_json(storage_url, "POST", f"/storage/v1/b?project={PROJECT}", {"name": BUCKET})
    for path in paths:
        name = quote(f"{PREFIX}/{path.name}", safe="")
        http_json(
            storage_url,
            "POST",
            f"/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={name}",
            path.read_bytes(),
            content_type="application/dicom",
        )
    return time.perf_counter() - start


def run_operation(client: Any, operation: dict[str, Any], expected: int, what: str) -> float:
    """Polls a submitted operation until done; returns the seconds spent polling.

    Raises:
        RuntimeError: it failed, counted another number of successes, or timed out.
    """
    operations = datasets(client).operations()
    start = time.perf_counter()
    while not operation.get("done"):
        if time.perf_counter() - start > TIMEOUT_S:
            raise RuntimeError(f"{what} not done after {TIMEOUT_S:.0f} s: {operation}")
        time.sleep(POLL_S)
        operation = operations.get(name=operation["name"]).execute()
    success = int(operation.get("metadata", {}).get("counter", {}).get("success", 0))
    if success != expected or "error" in operation:
        raise RuntimeError(
            f"the {what} counted {success} of {expected} instances: "
            f"{operation.get('error', operation.get('metadata'))}"
        )
    return time.perf_counter() - start


def qido_queries(studies: list[Study]) -> Iterator[tuple[str, str]]:
    """(kind, query string) of the searches, kinds alternating, ``QIDO_ROUNDS`` each."""
    step = max(len(studies) // QIDO_ROUNDS, 1)
    for round_ in range(QIDO_ROUNDS):
        study = studies[(round_ * step + step // 2) % len(studies)]
        yield "by_patient_id", f"PatientID={study.patient_id}"
        yield "first_page", "limit=100"
        month = study.study_date[:6]
        yield "date_range_all_fields", f"StudyDate={month}01-{month}28&includefield=all"


def search_studies(base_url: str, store: str, studies: list[Study]) -> dict[str, list[float]]:
    """Runs the searches; returns milliseconds per kind.

    Raises:
        RuntimeError: a search answered an error or not what the generated data holds.
    """
    path = f"/v1/{store}/dicomWeb/studies"
    times: dict[str, list[float]] = {}
    for kind, query in qido_queries(studies):
        start = time.perf_counter()
        results = http_json(base_url, "GET", f"{path}?{query}", timeout_s=QIDO_TIMEOUT_S)
        elapsed_ms = (time.perf_counter() - start) * 1000
        if kind == "by_patient_id" and len(results) != 1:
            raise RuntimeError(f"{query} found {len(results)} studies, expected 1")
        if kind == "first_page" and len(results) != min(100, len(studies)):
            raise RuntimeError(f"{query} found {len(results)} studies")
        if not results:
            raise RuntimeError(f"{query} found nothing")
        times.setdefault(kind, []).append(elapsed_ms)
    return times


def measure(instances: int) -> Figures:
    """Runs the section.

    Args:
        instances: Number of files (10,000 by default in run.py; a multiple of 20 keeps
            studies whole).
    """
    with tempfile.TemporaryDirectory(prefix="bench-p4-") as tmp:
        root = Path(tmp)
        files = root / "files"
        files.mkdir()
        paths, studies = write_instances(instances, files)
        corpus_mb = sum(p.stat().st_size for p in paths) / 2**20
        bare_memory_s = bare_memory_loop(paths)
        os.sync()
        bare_s = bare_disk_loop(paths, root / "bare-copies")
        data_dir = root / "emulator-data"
        with EmulatorProcess(data_dir=data_dir) as process:
            assert process.pid is not None
            upload_s = upload(process.storage_url, paths)
            client = healthcare_client(process.healthcare_url)
            create_dataset(client)
            store = create_store(client, "scale")
            stores = datasets(client).dicomStores()
            rss_before = rss_mb(process.pid)

            body = {"gcsSource": {"uri": f"gs://{BUCKET}/{PREFIX}/**.dcm"}}
            os.sync()
            start = time.perf_counter()
            operation = stores.import_(name=store, body=body).execute()
            run_operation(client, operation, instances, "import")
            import_s = time.perf_counter() - start
            rss_after_import = peak_rss_mb(process.pid)

            qido_ms = search_studies(process.healthcare_url, store, studies)
            rss_after_qido = peak_rss_mb(process.pid)

            # A new client: the emulator closes connections left idle during the searches.
            client = healthcare_client(process.healthcare_url)
            stores = datasets(client).dicomStores()
            table = f"{PROJECT}.{BQ_DATASET}.{BQ_TABLE}"
            export = {"bigqueryDestination": {"tableUri": f"bq://{table}", "schemaJson": {}}}
            start = time.perf_counter()
            operation = stores.export(name=store, body=export).execute()
            run_operation(client, operation, instances, "BigQuery export")
            bq_export_s = time.perf_counter() - start
            peak = peak_rss_mb(process.pid)
            rows_file = data_dir / "bigquery" / PROJECT / BQ_DATASET / f"{BQ_TABLE}.jsonl"
            with rows_file.open("rb") as fh:
                bq_rows = sum(1 for line in fh if line.strip())
            if bq_rows != instances:
                raise RuntimeError(f"the BigQuery table has {bq_rows} rows, not {instances}")
    return Figures(
        instances=instances,
        studies=len(studies),
        corpus_mb=corpus_mb,
        bare_s=bare_s,
        bare_memory_s=bare_memory_s,
        upload_s=upload_s,
        import_s=import_s,
        rss_before_import_mb=rss_before,
        rss_after_import_mb=rss_after_import,
        rss_after_qido_mb=rss_after_qido,
        rss_mb=peak,
        qido_ms=qido_ms,
        bq_export_s=bq_export_s,
        bq_rows=bq_rows,
    )
