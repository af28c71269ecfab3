"""Background workers of the emulated ``dicomStores.import`` and ``dicomStores.export``.

Each accepted request becomes an :class:`~.state.OperationRecord` and one daemon thread that
processes the instances one by one, moving ``metadata.counter`` (pending → success/failure)
as it goes, then marks the operation done:

- with ``response`` (``ImportDicomDataResponse`` / ``ExportDicomDataResponse``) when every
  unit succeeded;
- with ``error`` ``{code: 3, message: "… see <logsUrl>"}`` when any unit failed (per-unit
  errors are the operation's log entries, served at ``logsUrl``);
- with ``error`` ``{code: 1}`` after a cancel request, or the code of a queued
  ``fail-next-operation`` fault (then nothing is imported or exported).

Instance faults (``fail-instance=…``, :meth:`.OperationFaults.instance_failure`) fail a
matching instance with the fault's code and message: an import's once the object is parsed
(its SOP Instance UID known; nothing is stored), an export's before anything is written.

Timing faults: an operation takes at least ``operation_seconds`` (spread evenly over its
instances so the counters visibly advance) plus ``instance_seconds`` per instance. A unit
counts once its share of that time has passed, as a real worker's counter moves when a unit
is finished.

Counting rules:

- import: a unit is one matched object. Readable DICOM that is stored counts as success. An
  object whose SOP Instance UID is already stored (from an earlier import, STOW-RS, or
  earlier in the same import — objects are processed in name order) follows the rule of
  :class:`~.state.AddResult`: the same file byte for byte is a duplicate, ignored, not
  overwritten, and counts as success with an INFO log entry; other bytes under the same
  Study/Series/SOP Instance UIDs are a failure logged with Google's message ("… the DICOM
  files differ (checksum mismatch)."), and the UID under a different study or series is a
  failure too (a case Google does not document). The error code of those two log entries is
  not documented either; the emulator's is ALREADY_EXISTS. Anything pydicom cannot read as a
  DICOM Part 10 file with the three UIDs (or that is truncated) is a failure.
- export: a unit is one instance (all frame files of an instance succeed or it fails).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dicom_transfer_emulator.bigquery.rows import RowShape, export_row
from dicom_transfer_emulator.bigquery.tables import BigQueryTables, TableNotEmpty, TableRef
from dicom_transfer_emulator.dicom.export_formats import ExportFormat
from dicom_transfer_emulator.dicom.parsing import DicomParseError, RenderError, parse_instance
from dicom_transfer_emulator.dicom.records import InstanceRecord
from dicom_transfer_emulator.dicom.rendering import render_instance
from dicom_transfer_emulator.errors import RpcCode
from dicom_transfer_emulator.healthcare.filter_paths import FilterKey, parse_filter_file
from dicom_transfer_emulator.healthcare.operation_faults import OperationFaults
from dicom_transfer_emulator.healthcare.state import (
    AddResult,
    HealthcareState,
    NotFound,
    OperationRecord,
)
from dicom_transfer_emulator.storage.errors import StorageError
from dicom_transfer_emulator.storage.port import Storage, rfc3339

CODE_CANCELLED = RpcCode.CANCELLED
CODE_INVALID_ARGUMENT = RpcCode.INVALID_ARGUMENT
CODE_NOT_FOUND = RpcCode.NOT_FOUND
CODE_ALREADY_EXISTS = RpcCode.ALREADY_EXISTS
CODE_FAILED_PRECONDITION = RpcCode.FAILED_PRECONDITION
CODE_INTERNAL = RpcCode.INTERNAL
MAX_SAMPLE_ERRORS = 5
#: Google's import error for a stored instance's UIDs with other bytes, as users quote it
#: (GoogleCloudPlatform/nodejs-docs-samples issue 3502).
CHECKSUM_MISMATCH_MESSAGE = (
    "An instance already exists in this DICOM Store with the same Study/Series/SOPInstance "
    "UID, but the DICOM files differ (checksum mismatch)."
)


@dataclass(frozen=True)
class ImportRequest:
    """A validated import: ``gs://{bucket}/{...}`` objects whose names match ``pattern``."""

    store: str
    source_uri: str
    bucket: str
    prefix: str
    matches: Callable[[str], bool]
    storage_class: str


@dataclass(frozen=True)
class FilterSource:
    """Where the export's filter file lives."""

    uri: str
    bucket: str
    name: str


@dataclass(frozen=True)
class GcsExportRequest:
    """A validated export to Cloud Storage."""

    store: str
    bucket: str
    prefix: str
    fmt: ExportFormat
    filter: FilterSource | None


@dataclass(frozen=True)
class BigQueryExportRequest:
    """A validated export to BigQuery (``shape``: schema, source store column, CDC)."""

    store: str
    table: TableRef
    disposition: str
    shape: RowShape
    filter: FilterSource | None


class _Stop(Exception):
    """The operation vanished (reset / dataset deleted): the worker ends silently."""


class _Job:
    """One running operation: counters, logs, pacing and cancellation."""

    def __init__(self, runner: TransferRunner, op: OperationRecord) -> None:
        self.runner = runner
        self.name = op.name
        self.op_id = op.id
        self.logs_url = op.logs_url
        self.kind = op.kind
        self.version = op.api_version
        self.wake = threading.Event()
        self.started = time.monotonic()
        self.total = 0
        self.failures = 0
        self.samples: list[dict[str, Any]] = []
        self.operation_seconds = runner.faults.operation_seconds
        self.instance_seconds = runner.faults.instance_seconds

    # -- state updates -------------------------------------------------------------------

    def _update(self, change: Callable[[OperationRecord], None], *, persist: bool = False) -> None:
        if persist:
            if self.runner.state.update_operation(self.name, change, persist=True) is None:
                raise _Stop
        elif not self.runner.state.change_operation(self.name, change):
            raise _Stop

    def set_pending(self, count: int) -> None:
        self.total = count

        def change(op: OperationRecord) -> None:
            op.pending = count

        self._update(change)

    def log(self, severity: str, resource: str, message: str, code: int | None = None) -> None:
        entry: dict[str, Any] = {
            "timestamp": rfc3339(self.runner.clock()),
            "severity": severity,
            "resource": resource,
            "message": message,
        }
        if code is not None:
            entry["code"] = code
        self.runner.state.add_log(self.op_id, entry)

    def succeeded(self) -> None:
        def change(op: OperationRecord) -> None:
            op.success += 1
            op.pending = max(op.pending - 1, 0)

        self._update(change)

    def failed(self, resource: str, code: int, message: str) -> None:
        self.failures += 1
        self.log("ERROR", resource, message, code)
        if len(self.samples) < MAX_SAMPLE_ERRORS:
            self.samples.append({"resource": resource, "error": {"code": code, "message": message}})

        def change(op: OperationRecord) -> None:
            op.failure += 1
            op.pending = max(op.pending - 1, 0)

        self._update(change)

    # -- pacing --------------------------------------------------------------------------

    def pace(self, done: int) -> None:
        """Wait until ``done`` units' share of the configured duration has elapsed.

        Called before unit ``done`` is processed, so its counter moves at the end of its share.
        """
        share = self.operation_seconds * (done / self.total) if self.total else 0.0
        self._wait_until(self.started + share + self.instance_seconds * done)

    def finish_pacing(self) -> None:
        self._wait_until(self.started + self.operation_seconds + self.instance_seconds * self.total)

    def _wait_until(self, deadline: float) -> None:
        while not self.wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.wake.wait(min(remaining, 0.5))

    @property
    def stopping(self) -> bool:
        return self.wake.is_set()

    # -- completion ----------------------------------------------------------------------

    def finish(self, *, error: dict[str, Any] | None = None, response_type: str = "") -> None:
        end = rfc3339(self.runner.clock())
        version = self.version

        def change(op: OperationRecord) -> None:
            op.done = True
            op.end_time = end
            if error is not None:
                op.error = error
            elif op.cancel_requested:
                # No final period: clients append their own ("… failed: MESSAGE.").
                op.error = {"code": CODE_CANCELLED, "message": "Operation was cancelled"}
            elif self.failures:
                noun = "import" if self.kind == "import" else "export"
                op.error = {
                    "code": CODE_INVALID_ARGUMENT,
                    "message": (
                        f"{self.failures} of {self.total} instances failed to {noun}. "
                        f"See the per-instance errors at {self.logs_url}"
                    ),
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.cloud.healthcare."
                            f"{version}.dicom.{response_type.replace('Response', 'ErrorDetails')}",
                            "sampleErrors": list(self.samples),
                        }
                    ],
                }
            else:
                op.response = {
                    "@type": f"type.googleapis.com/google.cloud.healthcare.{version}.dicom."
                    f"{response_type}"
                }

        self._update(change, persist=True)


class TransferRunner:
    """Starts, cancels and stops import/export workers."""

    def __init__(
        self,
        state: HealthcareState,
        tables: BigQueryTables,
        storage: Storage,
        faults: OperationFaults,
        clock: Callable[[], float],
    ) -> None:
        """Create the runner.

        Args:
            state: Healthcare state.
            tables: emulated BigQuery tables.
            storage: the Cloud Storage backend (sources, destinations, filter files).
            faults: operation timing and queued operation failures.
            clock: wall clock (POSIX seconds) for timestamps.
        """
        self.state = state
        self.tables = tables
        self.storage = storage
        self.faults = faults
        self.clock = clock
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    def _start(self, op: OperationRecord, work: Callable[[_Job], str]) -> None:
        job = _Job(self, op)
        failure = self.faults.take_operation_failure()
        with self._lock:
            self._jobs[op.name] = job

        def run() -> None:
            try:
                if failure is not None:
                    job.finish_pacing()
                    job.finish(error=failure.to_json())
                    return
                response_type = work(job)
                job.finish_pacing()
                job.finish(response_type=response_type)
            except _Stop:
                return
            except _OperationError as exc:
                try:
                    job.finish_pacing()
                    job.finish(error={"code": exc.code, "message": exc.message})
                except _Stop:
                    return
            except Exception as exc:  # a bug must not leave the operation running forever
                try:
                    job.finish(error={"code": CODE_INTERNAL, "message": f"emulator error: {exc!r}"})
                except _Stop:
                    return
            finally:
                with self._lock:
                    self._jobs.pop(op.name, None)

        threading.Thread(target=run, name=f"operation-{op.id}", daemon=True).start()

    def cancel(self, name: str) -> None:
        """Wake the worker of a cancelled operation so it stops at the next instance."""
        with self._lock:
            job = self._jobs.get(name)
        if job is not None:
            job.wake.set()

    def stop_all(self) -> None:
        """Wake every worker (reset/shutdown); their operations are gone, so they end."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.wake.set()

    def running(self) -> int:
        """How many workers are running."""
        with self._lock:
            return len(self._jobs)

    # -- import --------------------------------------------------------------------------

    def start_import(self, op: OperationRecord, request: ImportRequest) -> None:
        """Run an import in the background."""
        self._start(op, lambda job: self._import(job, request))

    def _import(self, job: _Job, request: ImportRequest) -> str:
        try:
            listed, _ = self.storage.list_objects(request.bucket, prefix=request.prefix)
        except StorageError as exc:
            raise _OperationError(CODE_NOT_FOUND, f"{request.source_uri}: {exc.message}") from None
        names = [m.name for m in listed if request.matches(m.name) and not m.name.endswith("/")]
        if not names:
            raise _OperationError(
                CODE_NOT_FOUND, f"No objects in Cloud Storage match {request.source_uri}"
            )
        job.set_pending(len(names))
        for done, name in enumerate(names, start=1):
            job.pace(done)
            if job.stopping:
                break
            self._import_one(job, request, name)
        return "ImportDicomDataResponse"

    def _import_one(self, job: _Job, request: ImportRequest, name: str) -> None:
        uri = f"gs://{request.bucket}/{name}"
        try:
            data = self.storage.read_object(request.bucket, name)
        except StorageError as exc:
            job.failed(uri, CODE_NOT_FOUND, exc.message)
            return
        try:
            parsed = parse_instance(data)
        except DicomParseError as exc:
            job.failed(uri, CODE_INVALID_ARGUMENT, f"failed to parse DICOM: {exc}")
            return
        if self._injected_failure(job, "import", name, parsed.sop_instance_uid, uri):
            return
        try:
            result = self.state.add_instance(
                request.store,
                parsed,
                data,
                request.storage_class,
                stored_at=rfc3339(self.clock()),
            )
        except NotFound as exc:
            job.failed(uri, CODE_NOT_FOUND, exc.message)
            return
        if result is AddResult.CHECKSUM_MISMATCH:
            job.failed(uri, CODE_ALREADY_EXISTS, CHECKSUM_MISMATCH_MESSAGE)
            return
        if result is AddResult.CONFLICT:
            job.failed(
                uri,
                CODE_ALREADY_EXISTS,
                f"SOP Instance UID {parsed.sop_instance_uid} already exists in the store under "
                "a different study or series",
            )
            return
        if result is AddResult.DUPLICATE:
            job.log(
                "INFO",
                uri,
                f"duplicate instance {parsed.sop_instance_uid} ignored: the stored instance "
                "was kept, not overwritten",
            )
        job.succeeded()

    # -- export --------------------------------------------------------------------------

    def start_gcs_export(self, op: OperationRecord, request: GcsExportRequest) -> None:
        """Run an export to Cloud Storage in the background."""
        self._start(op, lambda job: self._gcs_export(job, request))

    def start_bigquery_export(self, op: OperationRecord, request: BigQueryExportRequest) -> None:
        """Run an export to BigQuery in the background."""
        self._start(op, lambda job: self._bigquery_export(job, request))

    def _selected(self, job: _Job, store: str, source: FilterSource | None) -> list[InstanceRecord]:
        try:
            instances = self.state.list_instances(store)
        except NotFound as exc:
            raise _OperationError(CODE_NOT_FOUND, exc.message) from None
        if source is None:
            return instances
        keys = self._read_filter(source)
        by_path = {
            (r.study_uid,)
            if n == 1
            else (r.study_uid, r.series_uid)
            if n == 2
            else (r.study_uid, r.series_uid, r.sop_instance_uid)
            for r in instances
            for n in (1, 2, 3)
        }
        for key in sorted(keys - by_path):
            job.log("WARNING", source.uri, f"resource {_filter_path(key)} is not in the store")
        return [
            r
            for r in instances
            if (r.study_uid,) in keys
            or (r.study_uid, r.series_uid) in keys
            or (r.study_uid, r.series_uid, r.sop_instance_uid) in keys
        ]

    def _read_filter(self, source: FilterSource) -> set[FilterKey]:
        try:
            raw = self.storage.read_object(source.bucket, source.name)
        except StorageError as exc:
            raise _OperationError(
                CODE_NOT_FOUND, f"filter file {source.uri} cannot be read: {exc.message}"
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _OperationError(
                CODE_INVALID_ARGUMENT, f"filter file {source.uri} is not UTF-8 text"
            ) from None
        try:
            return parse_filter_file(text)
        except ValueError as exc:
            raise _OperationError(
                CODE_INVALID_ARGUMENT, f"filter file {source.uri} {exc}"
            ) from None

    def _gcs_export(self, job: _Job, request: GcsExportRequest) -> str:
        if not self.storage.bucket_exists(request.bucket):
            raise _OperationError(
                CODE_NOT_FOUND, f"destination bucket {request.bucket} does not exist"
            )
        instances = self._selected(job, request.store, request.filter)
        job.set_pending(len(instances))
        for done, record in enumerate(instances, start=1):
            job.pace(done)
            if job.stopping:
                break
            self._export_one(job, request, record)
        return "ExportDicomDataResponse"

    def _injected_failure(
        self, job: _Job, operation: str, path: str, uid: str, resource: str
    ) -> bool:
        """Fail the unit when an instance fault matches it; return whether one did."""
        fault = self.faults.instance_failure(operation, path, uid)
        if fault is not None:
            job.failed(resource, fault.code, fault.message)
        return fault is not None

    def _export_one(self, job: _Job, request: GcsExportRequest, record: InstanceRecord) -> None:
        resource = f"{request.store}/dicomWeb{record.path}"
        if self._injected_failure(job, "export", record.path, record.sop_instance_uid, resource):
            return
        try:
            data = self.state.read_instance(request.store, record.sop_instance_uid)
            files = render_instance(data, request.fmt)
        except (RenderError, NotFound, OSError) as exc:
            job.failed(resource, CODE_INVALID_ARGUMENT, str(exc))
            return
        base = f"{record.study_uid}/{record.series_uid}/{record.sop_instance_uid}"
        for item in files:
            name = request.prefix + base
            if item.frame is not None:
                name += f"/{item.frame}"
            name += request.fmt.extension
            try:
                self.storage.write_object(request.bucket, name, item.data, item.content_type)
            except StorageError as exc:
                job.failed(
                    resource,
                    CODE_FAILED_PRECONDITION,
                    f"writing gs://{request.bucket}/{name} failed: {exc.message}",
                )
                return
        job.succeeded()

    def _bigquery_export(self, job: _Job, request: BigQueryExportRequest) -> str:
        if request.disposition == "WRITE_EMPTY" and self.tables.has_rows(request.table):
            raise _OperationError(
                CODE_FAILED_PRECONDITION,
                f"BigQuery table {request.table.uri} is not empty and the write disposition "
                "is WRITE_EMPTY",
            )
        instances = self._selected(job, request.store, request.filter)
        job.set_pending(len(instances))

        def rows() -> Iterator[dict[str, Any]]:
            # Streamed into the table's spool file one by one (no list of 10,000 rows).
            for done, record in enumerate(instances, start=1):
                job.pace(done)
                if job.stopping:
                    return
                resource = f"{request.store}/dicomWeb{record.path}"
                uid = record.sop_instance_uid
                if self._injected_failure(job, "export", record.path, uid, resource):
                    continue
                try:
                    data = self.state.read_instance(request.store, record.sop_instance_uid)
                    row = export_row(data, record, request.shape)
                except (DicomParseError, NotFound, OSError) as exc:
                    job.failed(resource, CODE_INVALID_ARGUMENT, str(exc))
                else:
                    yield row
                    job.succeeded()

        key = "SOPInstanceUID" if request.shape.change_data_capture else None
        try:
            self.tables.write_rows(request.table, rows(), request.disposition, upsert_key=key)
        except TableNotEmpty as exc:
            raise _OperationError(CODE_FAILED_PRECONDITION, str(exc)) from None
        return "ExportDicomDataResponse"


class _OperationError(Exception):
    """Ends the whole operation with ``error`` = (code, message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _filter_path(key: tuple[str, ...]) -> str:
    parts = ["studies", "series", "instances"]
    return "".join(f"/{label}/{uid}" for label, uid in zip(parts, key, strict=False))
