"""State of the emulated Healthcare API: datasets, DICOM stores, instances and operations.

The model lives in memory; where it persists is :mod:`.persistence`'s job (memory only, or
files under ``{data_dir}/healthcare/`` so a restarted emulator finds it again):

- ``datasets.json``, ``dataset_policies.json``, ``stores.json``: small documents rewritten on
  every change;
- ``stores/{key}/index.jsonl`` (one line per stored instance, appended) and
  ``stores/{key}/{sop_instance_uid}.dcm`` (the original bytes), ``key`` a hash of the store
  name — appending keeps a 10,000-file import linear; deleting instances (DICOMweb) rewrites
  the index without them;
- ``operations/{id}.json`` (written when created, cancelled and finished) and
  ``operations/{id}.logs.json`` (per-file log entries, written when finished). An operation
  that was still running when the emulator stopped is loaded as failed with ``ABORTED``.

Instances are keyed by SOP Instance UID within a store and remember their study and series.
With a data directory only their records stay in memory (UIDs, sizes and the few attributes
QIDO-RS searches match on, :class:`~.dicom.records.InstanceRecord`), grouped by study and series in
a :class:`~.dicom.search_index.StoreIndex`; their bytes are read from disk when asked for.
The class is thread-safe: one lock guards the maps; searches run under it.
"""

from __future__ import annotations

import copy
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any

from dicom_transfer_emulator.dicom.qido import Hit, SearchRequest
from dicom_transfer_emulator.dicom.records import InstanceRecord
from dicom_transfer_emulator.dicom.search_index import StoreIndex
from dicom_transfer_emulator.errors import RpcCode
from dicom_transfer_emulator.healthcare.persistence import open_state_files
from dicom_transfer_emulator.iam.policy import next_policy_etag, policy_etag, stale_etag

OPERATION_METADATA_TYPE = "type.googleapis.com/google.cloud.healthcare.{version}.OperationMetadata"


class StateError(Exception):
    """A request conflicts with the state; carries the Google status to answer with."""

    http_status = 400
    status = "FAILED_PRECONDITION"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(StateError):
    """The resource does not exist."""

    http_status = 404
    status = "NOT_FOUND"


class AlreadyExists(StateError):
    """A resource with that name exists already."""

    http_status = 409
    status = "ALREADY_EXISTS"


class AddResult(Enum):
    """Outcome of storing one instance by import or STOW-RS (:meth:`.add_instance`).

    The rule for an instance whose SOP Instance UID is already stored, one for both ways in
    (Google's words, with their sources):

    - ``DUPLICATE``: the same Study/Series/SOP Instance UIDs and the same file, byte for byte.
      Import "accepts duplicate DICOM instances by ignoring the newly-pushed instance. It does
      not overwrite." (``ImportDicomDataRequest`` in the v1 discovery document / REST
      reference); STOW-RS answers it as stored: "if the md5 of the instances match, we will get
      a HTTP 200" (Google's DICOM adapter, GoogleCloudPlatform/healthcare-dicom-dicomweb-adapter,
      ``dicom_util/.../DicomWebClient.java``, ``tryStowRs``; also
      GoogleCloudPlatform/healthcare-api-dicom-fuse issue 20: "If we upload a file and the
      file exist on the server, the file will be uploaded without any error"). "Identical" is
      therefore the file's bytes (Google compares a checksum, MD5), not the data set: a
      re-encoded copy of the same instance differs.
    - ``CHECKSUM_MISMATCH``: the same three UIDs, other bytes. Rejected, the stored file kept:
      "We will only get an HTTP 409 when there is a difference in the MD5 between the
      instances" (same adapter source); import logs "An instance already exists in this DICOM
      Store with the same Study/Series/SOPInstance UID, but the DICOM files differ (checksum
      mismatch)." (error quoted in GoogleCloudPlatform/nodejs-docs-samples issue 3502).
    - ``CONFLICT``: the SOP Instance UID is stored under another study or series. Google does
      not document this case; the emulator keys instances by SOP Instance UID and rejects it
      (its behaviour before the rule above, kept).

    The conformance statement (https://cloud.google.com/healthcare-api/docs/dicom, "Store
    transaction") is where the API reference sends STOW-RS readers; the parts of it available
    to this project state no rule for duplicates, hence the sources above. Which Failure
    Reason (STOW-RS) or error code (import log) Google gives a rejected one is not documented:
    see :mod:`.dicomweb` and :mod:`.transfers` for the emulator's choice.
    """

    ADDED = "added"
    DUPLICATE = "duplicate"  # identical file already stored: ignored, counted as stored
    CHECKSUM_MISMATCH = "checksum-mismatch"  # same UIDs, other bytes: rejected
    CONFLICT = "conflict"  # same SOP Instance UID under another study/series: rejected


@dataclass
class OperationRecord:
    """A long-running operation and its progress."""

    name: str
    api_method_name: str
    api_version: str
    create_time: str
    logs_url: str
    kind: str = ""
    target: str = ""
    done: bool = False
    end_time: str | None = None
    success: int = 0
    failure: int = 0
    pending: int = 0
    cancel_requested: bool = False
    error: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    counted: bool = True

    @property
    def id(self) -> str:
        """The last segment of the name."""
        return self.name.rsplit("/", 1)[-1]

    @property
    def dataset_name(self) -> str:
        """``projects/…/datasets/{d}``."""
        return self.name.split("/operations/", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """The REST representation (``Operation``)."""
        metadata: dict[str, Any] = {
            "@type": OPERATION_METADATA_TYPE.format(version=self.api_version),
            "apiMethodName": self.api_method_name,
            "createTime": self.create_time,
            "logsUrl": self.logs_url,
        }
        if self.end_time:
            metadata["endTime"] = self.end_time
        if self.cancel_requested:
            metadata["cancelRequested"] = True
        if self.counted:
            counter = {
                key: str(value)
                for key, value in (
                    ("success", self.success),
                    ("failure", self.failure),
                    ("pending", self.pending),
                )
                if value
            }
            metadata["counter"] = counter
        body: dict[str, Any] = {"name": self.name, "metadata": metadata}
        if self.done:
            body["done"] = True
            if self.error is not None:
                body["error"] = copy.deepcopy(self.error)
            elif self.response is not None:
                body["response"] = copy.deepcopy(self.response)
        return body


_EMPTY_POLICY_ETAG = policy_etag(0)


@dataclass
class _StoreData:
    resource: dict[str, Any]
    policy: dict[str, Any] = field(default_factory=lambda: {"etag": _EMPTY_POLICY_ETAG})
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    search: StoreIndex = field(default_factory=StoreIndex)

    def keep(self, record: InstanceRecord) -> None:
        self.instances[record.sop_instance_uid] = record
        self.search.add(record)


def _replace_policy(current: dict[str, Any], policy: dict[str, Any]) -> dict[str, Any]:
    """The policy that replaces ``current`` (IAM ``setIamPolicy`` semantics).

    An ``etag`` in ``policy`` must equal the current one (optimistic concurrency, as the IAM
    ``Policy.etag`` documentation describes); the stored policy gets the next etag (the same
    etags as Cloud Storage's bucket policies, :mod:`dicom_transfer_emulator.iam.policy`).

    Raises:
        StateError: ``ABORTED`` (409) when the etag is stale.
    """
    if stale_etag(policy.get("etag"), current.get("etag", "")):
        err = StateError("there were concurrent policy changes; re-read the policy")
        err.http_status, err.status = 409, "ABORTED"
        raise err
    stored = {k: copy.deepcopy(v) for k, v in policy.items() if k != "etag"}
    stored["etag"] = next_policy_etag(current.get("etag"))
    return stored


class HealthcareState:
    """Thread-safe model of datasets, stores, instances and operations."""

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        """Create the state, loading what a previous run persisted.

        Args:
            data_dir: the emulator's data directory, or ``None`` for memory only.
        """
        self._files = open_state_files(data_dir)
        self._lock = threading.RLock()
        self._datasets: dict[str, dict[str, Any]] = {}
        self._dataset_policies: dict[str, dict[str, Any]] = {}
        self._stores: dict[str, _StoreData] = {}
        self._operations: dict[str, OperationRecord] = {}
        self._logs: dict[str, list[dict[str, Any]]] = {}
        self._load()

    # --- persistence -------------------------------------------------------------------

    def _load(self) -> None:
        loaded = self._files.load()
        self._datasets = loaded.datasets
        self._dataset_policies = loaded.dataset_policies
        for name, stored in loaded.stores.items():
            data = _StoreData(resource=stored.resource, policy=stored.policy)
            for record in stored.records:
                data.keep(record)
            self._stores[name] = data
        for fields, logs in loaded.operations:
            op = OperationRecord(**fields)
            if not op.done:
                op.done = True
                op.end_time = op.end_time or op.create_time
                op.error = {
                    "code": RpcCode.ABORTED,
                    "message": "operation aborted: the emulator stopped while it ran",
                }
            self._operations[op.name] = op
            if logs is not None:
                self._logs[op.id] = logs

    def _save_datasets(self) -> None:
        self._files.save_datasets(self._datasets)

    def _save_dataset_policies(self) -> None:
        self._files.save_dataset_policies(self._dataset_policies)

    def _save_stores(self) -> None:
        docs = {n: {"resource": s.resource, "policy": s.policy} for n, s in self._stores.items()}
        self._files.save_stores(docs)

    def _save_operation(self, op: OperationRecord, *, with_logs: bool = False) -> None:
        logs = self._logs.get(op.id, []) if with_logs else None
        self._files.save_operation(op.id, asdict(op), logs)

    def close(self) -> None:
        """Close open index files (the state stays usable; they reopen on demand)."""
        with self._lock:
            self._files.close()

    def reset(self) -> None:
        """Forget everything (and delete what was persisted)."""
        with self._lock:
            self._datasets.clear()
            self._dataset_policies.clear()
            self._stores.clear()
            self._operations.clear()
            self._logs.clear()
            self._files.reset()

    # --- datasets ----------------------------------------------------------------------

    def create_dataset(self, name: str, resource: dict[str, Any]) -> dict[str, Any]:
        """Create a dataset.

        Args:
            name: ``projects/{p}/locations/{l}/datasets/{d}``.
            resource: the stored representation (``name``, ``timeZone``…).

        Returns:
            A copy of the stored resource.

        Raises:
            AlreadyExists: the dataset exists.
        """
        with self._lock:
            if name in self._datasets:
                raise AlreadyExists(f"dataset {name} already exists")
            self._datasets[name] = dict(resource, name=name)
            self._save_datasets()
            return copy.deepcopy(self._datasets[name])

    def get_dataset(self, name: str) -> dict[str, Any]:
        """The dataset resource.

        Raises:
            NotFound: no such dataset.
        """
        with self._lock:
            return copy.deepcopy(self._dataset(name))

    def patch_dataset(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply already-validated field changes to a dataset; returns the new resource."""
        with self._lock:
            self._dataset(name).update(changes)
            self._save_datasets()
            return copy.deepcopy(self._datasets[name])

    def list_datasets(self, parent: str) -> list[dict[str, Any]]:
        """Datasets under ``projects/{p}/locations/{l}``, sorted by name."""
        prefix = parent + "/datasets/"
        with self._lock:
            return [
                copy.deepcopy(d) for n, d in sorted(self._datasets.items()) if n.startswith(prefix)
            ]

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset with its stores, instances and operations.

        Raises:
            NotFound: no such dataset.
        """
        with self._lock:
            self._dataset(name)
            del self._datasets[name]
            if self._dataset_policies.pop(name, None) is not None:
                self._save_dataset_policies()
            for store in [s for s in self._stores if s.startswith(name + "/dicomStores/")]:
                self._drop_store(store)
            for op_name in [o for o in self._operations if o.startswith(name + "/operations/")]:
                op = self._operations.pop(op_name)
                self._logs.pop(op.id, None)
                self._files.forget_operation(op.id)
            self._save_datasets()
            self._save_stores()

    # --- DICOM stores ------------------------------------------------------------------

    def create_store(self, name: str, resource: dict[str, Any]) -> dict[str, Any]:
        """Create a DICOM store in an existing dataset.

        Raises:
            NotFound: the dataset does not exist.
            AlreadyExists: the store exists.
        """
        dataset = name.split("/dicomStores/", 1)[0]
        with self._lock:
            self._dataset(dataset)
            if name in self._stores:
                raise AlreadyExists(f"DICOM store {name} already exists")
            self._stores[name] = _StoreData(resource=dict(resource, name=name))
            self._save_stores()
            return copy.deepcopy(self._stores[name].resource)

    def _dataset(self, name: str) -> dict[str, Any]:
        data = self._datasets.get(name)
        if data is None:
            raise NotFound(f"dataset {name} not found")
        return data

    def _store(self, name: str) -> _StoreData:
        data = self._stores.get(name)
        if data is None:
            raise NotFound(f"DICOM store {name} not found")
        return data

    def get_store(self, name: str) -> dict[str, Any]:
        """The store resource.

        Raises:
            NotFound: no such store.
        """
        with self._lock:
            return copy.deepcopy(self._store(name).resource)

    def has_store(self, name: str) -> bool:
        """Whether the store exists."""
        with self._lock:
            return name in self._stores

    def list_stores(self, parent: str) -> list[dict[str, Any]]:
        """Stores of a dataset, sorted by name.

        Raises:
            NotFound: no such dataset.
        """
        prefix = parent + "/dicomStores/"
        with self._lock:
            self._dataset(parent)
            return [
                copy.deepcopy(s.resource)
                for n, s in sorted(self._stores.items())
                if n.startswith(prefix)
            ]

    def patch_store(self, name: str, changes: dict[str, Any], removed: list[str]) -> dict[str, Any]:
        """Set (``changes``) and clear (``removed``) already-validated fields of a store."""
        with self._lock:
            data = self._store(name)
            data.resource.update(copy.deepcopy(changes))
            for key in removed:
                data.resource.pop(key, None)
            self._save_stores()
            return copy.deepcopy(data.resource)

    def _drop_store(self, name: str) -> None:
        self._stores.pop(name, None)
        self._files.drop_store(name)

    def delete_store(self, name: str) -> None:
        """Delete a store and its instances.

        Raises:
            NotFound: no such store.
        """
        with self._lock:
            self._store(name)
            self._drop_store(name)
            self._save_stores()

    def get_store_policy(self, name: str) -> dict[str, Any]:
        """The store's IAM policy."""
        with self._lock:
            return copy.deepcopy(self._store(name).policy)

    def set_store_policy(self, name: str, policy: dict[str, Any]) -> dict[str, Any]:
        """Replace the store's IAM policy; returns it with a fresh etag.

        Raises:
            NotFound: no such store.
            StateError: ``ABORTED`` when the policy's etag is stale.
        """
        with self._lock:
            data = self._store(name)
            data.policy = _replace_policy(data.policy, policy)
            self._save_stores()
            return copy.deepcopy(data.policy)

    def get_dataset_policy(self, name: str) -> dict[str, Any]:
        """The dataset's IAM policy (``{"etag": …}`` until one is set).

        Raises:
            NotFound: no such dataset.
        """
        with self._lock:
            self._dataset(name)
            return copy.deepcopy(self._dataset_policies.get(name, {"etag": _EMPTY_POLICY_ETAG}))

    def set_dataset_policy(self, name: str, policy: dict[str, Any]) -> dict[str, Any]:
        """Replace the dataset's IAM policy; returns it with a fresh etag.

        Raises:
            NotFound: no such dataset.
            StateError: ``ABORTED`` when the policy's etag is stale.
        """
        with self._lock:
            self._dataset(name)
            current = self._dataset_policies.get(name, {"etag": _EMPTY_POLICY_ETAG})
            self._dataset_policies[name] = _replace_policy(current, policy)
            self._save_dataset_policies()
            return copy.deepcopy(self._dataset_policies[name])

    # --- instances ---------------------------------------------------------------------

    def _stored_bytes_are(self, store: str, sop_instance_uid: str, data: bytes) -> bool:
        """Whether the stored file of an instance is ``data`` (a stored file that cannot be
        read, e.g. removed from ``--data-dir`` by hand, counts as different: the new one is
        rejected and nothing is overwritten). Read only when a same-size duplicate arrives."""
        try:
            return self._files.read_instance(store, sop_instance_uid) == data
        except (OSError, KeyError):
            return False

    def add_instance(
        self,
        store: str,
        parsed: InstanceRecord,
        data: bytes,
        storage_class: str = "STANDARD",
        stored_at: str = "",
    ) -> AddResult:
        """Store one instance unless its SOP Instance UID is already present.

        An instance already stored is never overwritten; whether the new one is a duplicate
        (ignored) or rejected is the rule of :class:`AddResult`, decided here for import and
        STOW-RS alike.

        Args:
            store: the store name.
            parsed: the instance's record (:func:`~.parsing.parse_instance`).
            data: the original bytes.
            storage_class: the blob storage class requested by the import.
            stored_at: RFC 3339 time of storing (BigQuery JSON rows' ``LastUpdated``).

        Returns:
            ``ADDED``, or for a SOP Instance UID already stored ``DUPLICATE`` (same file),
            ``CHECKSUM_MISMATCH`` (same UIDs, other bytes) or ``CONFLICT`` (another study or
            series).

        Raises:
            NotFound: the store was deleted.
        """
        record = replace(parsed, size=len(data), storage_class=storage_class, stored_at=stored_at)
        with self._lock:
            target = self._store(store)
            existing = target.instances.get(record.sop_instance_uid)
            if existing is not None:
                if (existing.study_uid, existing.series_uid) != (
                    record.study_uid,
                    record.series_uid,
                ):
                    return AddResult.CONFLICT
                same_file = existing.size == len(data) and self._stored_bytes_are(
                    store, existing.sop_instance_uid, data
                )
                return AddResult.DUPLICATE if same_file else AddResult.CHECKSUM_MISMATCH
            target.keep(record)
            self._files.put_instance(store, record, data)
            return AddResult.ADDED

    def list_instances(self, store: str) -> list[InstanceRecord]:
        """The store's instances sorted by study, series, SOP Instance UID.

        Raises:
            NotFound: no such store.
        """
        with self._lock:
            records = list(self._store(store).instances.values())
        return sorted(records, key=lambda r: (r.study_uid, r.series_uid, r.sop_instance_uid))

    def find_instances(
        self, store: str, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> list[InstanceRecord]:
        """The instances of a study, a series or one instance, sorted by series and SOP UID.

        Args:
            store: the store name.
            study_uid: Study Instance UID.
            series_uid: Series Instance UID (``None``: the whole study).
            sop_uid: SOP Instance UID (``None``: the whole series or study).

        Returns:
            The records; empty when nothing matches.

        Raises:
            NotFound: no such store.
        """
        with self._lock:
            return self._store(store).search.find(study_uid, series_uid, sop_uid)

    def search_instances(self, store: str, request: SearchRequest) -> list[Hit]:
        """The studies, series or instances a QIDO-RS search returns (see :mod:`.search_index`).

        Args:
            store: the store name.
            request: the parsed search.

        Returns:
            The hits in order, after ``offset``, at most ``limit``.

        Raises:
            NotFound: no such store.
        """
        with self._lock:
            return self._store(store).search.select(request)

    def read_instance(self, store: str, sop_instance_uid: str) -> bytes:
        """The original bytes of a stored instance.

        Raises:
            NotFound: no such store or instance.
        """
        with self._lock:
            data = self._store(store)
            if sop_instance_uid not in data.instances:
                raise NotFound(f"instance {sop_instance_uid} not found in {store}")
        return self._files.read_instance(store, sop_instance_uid)

    def delete_instances(
        self, store: str, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> list[InstanceRecord]:
        """Delete the instances of a study, a series or one instance.

        The persisted index is rewritten without them (then their blobs are removed), so a
        restarted emulator does not bring them back.

        Args:
            store: the store name.
            study_uid: Study Instance UID.
            series_uid: Series Instance UID (``None``: the whole study).
            sop_uid: SOP Instance UID (``None``: the whole series or study).

        Returns:
            The deleted records.

        Raises:
            NotFound: no such store, or nothing matched.
        """

        with self._lock:
            target = self._store(store)
            gone = target.search.find(study_uid, series_uid, sop_uid)
            if not gone:
                path = f"/studies/{study_uid}"
                path += f"/series/{series_uid}" if series_uid else ""
                path += f"/instances/{sop_uid}" if sop_uid else ""
                raise NotFound(f"{path} not found in {store}")
            for rec in gone:
                del target.instances[rec.sop_instance_uid]
                target.search.remove(rec)
            self._files.delete_instances(store, gone, target.instances.values())
        return gone

    # --- operations --------------------------------------------------------------------

    def new_operation(
        self,
        dataset: str,
        *,
        api_method_name: str,
        api_version: str,
        create_time: str,
        logs_url: Callable[[str], str],
        kind: str = "",
        target: str = "",
        counted: bool = True,
    ) -> OperationRecord:
        """Create and record a new, not yet done, operation under a dataset.

        Args:
            dataset: the dataset name.
            api_method_name: e.g. ``google.cloud.healthcare.v1.dicom.DicomService.ImportDicomData``.
            api_version: ``v1`` or ``v1beta1``.
            create_time: RFC 3339 timestamp.
            logs_url: builds the logs URL from the new operation id.
            kind: free-form label (``import``, ``export``…).
            target: the resource the operation acts on.
            counted: whether the metadata carries a progress counter.

        Returns:
            A snapshot of the new operation.
        """
        with self._lock:
            while True:
                op_id = str(10**18 + secrets.randbelow(9 * 10**18))
                name = f"{dataset}/operations/{op_id}"
                if name not in self._operations:
                    break
            op = OperationRecord(
                name=name,
                api_method_name=api_method_name,
                api_version=api_version,
                create_time=create_time,
                logs_url=logs_url(op_id),
                kind=kind,
                target=target,
                counted=counted,
            )
            self._operations[name] = op
            self._logs[op_id] = []
            self._save_operation(op)
            return copy.deepcopy(op)

    def update_operation(
        self, name: str, change: Callable[[OperationRecord], None], *, persist: bool = False
    ) -> OperationRecord | None:
        """Apply ``change`` to an operation under the lock.

        Args:
            name: the operation name.
            change: mutates the record in place.
            persist: write the record (and its logs) to disk afterwards.

        Returns:
            A snapshot after the change, or ``None`` when the operation no longer exists
            (reset or dataset deleted) — running workers stop on ``None``.
        """
        with self._lock:
            op = self._operations.get(name)
            if op is None:
                return None
            change(op)
            if persist:
                self._save_operation(op, with_logs=op.done)
            return copy.deepcopy(op)

    def change_operation(self, name: str, change: Callable[[OperationRecord], None]) -> bool:
        """Like :meth:`update_operation` without a snapshot or persistence (progress updates).

        Returns:
            False when the operation no longer exists.
        """
        with self._lock:
            op = self._operations.get(name)
            if op is None:
                return False
            change(op)
            return True

    def add_log(self, op_id: str, entry: dict[str, Any]) -> None:
        """Append a per-file log entry to an operation's log."""
        with self._lock:
            logs = self._logs.get(op_id)
            if logs is not None:
                logs.append(entry)

    def get_logs(self, op_id: str) -> list[dict[str, Any]] | None:
        """The log entries of an operation, or ``None`` when unknown."""
        with self._lock:
            logs = self._logs.get(op_id)
            return None if logs is None else copy.deepcopy(logs)

    def get_operation(self, name: str) -> OperationRecord:
        """A snapshot of an operation.

        Raises:
            NotFound: no such operation.
        """
        with self._lock:
            op = self._operations.get(name)
            if op is None:
                raise NotFound(f"operation {name} not found")
            return copy.deepcopy(op)

    def list_operations(self, dataset: str) -> list[OperationRecord]:
        """Operations of a dataset, newest first (ties broken by name).

        Raises:
            NotFound: no such dataset.
        """
        prefix = dataset + "/operations/"
        with self._lock:
            self._dataset(dataset)
            ops = [copy.deepcopy(o) for n, o in self._operations.items() if n.startswith(prefix)]
        ops.sort(key=lambda o: o.name)
        ops.sort(key=lambda o: o.create_time, reverse=True)
        return ops
