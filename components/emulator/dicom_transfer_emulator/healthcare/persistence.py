"""Where the Healthcare state lives: :class:`MemoryStateFiles` (no ``--data-dir``) or
:class:`StateFiles` (``DATA_DIR/healthcare/``), behind one small protocol, as Cloud Storage's
backends and BigQuery's tables are.

:class:`~.state.HealthcareState` keeps the model (datasets, stores, instance records and their
search index, operations) in memory and tells its :class:`StatePersistence` what changed;
the persistence keeps instance bytes and, on disk, everything needed after a restart::

    datasets.json  dataset_policies.json  stores.json      (resources and policies)
    stores/<file_key(store)>/index.jsonl                   (one InstanceRecord a line)
    stores/<file_key(store)>/<SOP Instance UID>.dcm        (the bytes as imported)
    operations/<id>.json  operations/<id>.logs.json

JSON files are written atomically (:mod:`dicom_transfer_emulator.files`); an instance's
bytes are written before its index line, so a crash never indexes missing bytes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

from dicom_transfer_emulator.dicom.parsing import DicomParseError, read_dataset
from dicom_transfer_emulator.dicom.records import InstanceRecord
from dicom_transfer_emulator.dicom.search_index import match_json
from dicom_transfer_emulator.files import file_key, write_atomic, write_json


@dataclass
class LoadedStore:
    """A persisted DICOM store: its resource, IAM policy and instance records."""

    resource: dict[str, Any]
    policy: dict[str, Any]
    records: list[InstanceRecord] = field(default_factory=list)


@dataclass
class LoadedState:
    """What a previous run persisted (empty for memory or a new data directory)."""

    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    stores: dict[str, LoadedStore] = field(default_factory=dict)
    #: ``OperationRecord`` fields of each persisted operation, and its log entries.
    operations: list[tuple[dict[str, Any], list[dict[str, Any]] | None]] = field(
        default_factory=list
    )


class StatePersistence(Protocol):
    """What the Healthcare state asks of where it lives (called under the state's lock,
    except :meth:`read_instance`)."""

    def load(self) -> LoadedState:
        """What was persisted before."""
        ...

    def save_datasets(self, datasets: dict[str, dict[str, Any]]) -> None:
        """Keep every dataset resource."""
        ...

    def save_dataset_policies(self, policies: dict[str, dict[str, Any]]) -> None:
        """Keep every dataset IAM policy."""
        ...

    def save_stores(self, stores: dict[str, dict[str, Any]]) -> None:
        """Keep every store as ``{"resource", "policy"}``."""
        ...

    def save_operation(
        self, op_id: str, fields: dict[str, Any], logs: list[dict[str, Any]] | None
    ) -> None:
        """Keep an operation (and its log entries when given)."""
        ...

    def forget_operation(self, op_id: str) -> None:
        """Drop an operation and its logs."""
        ...

    def put_instance(self, store: str, record: InstanceRecord, data: bytes) -> None:
        """Keep a new instance's bytes and record."""
        ...

    def read_instance(self, store: str, sop_instance_uid: str) -> bytes:
        """An instance's bytes (OSError/KeyError when gone)."""
        ...

    def delete_instances(
        self, store: str, gone: list[InstanceRecord], kept: Iterable[InstanceRecord]
    ) -> None:
        """Drop instances; ``kept`` are the store's remaining records."""
        ...

    def drop_store(self, store: str) -> None:
        """Drop a store's instances."""
        ...

    def close(self) -> None:
        """Release open files (they reopen on demand)."""
        ...

    def reset(self) -> None:
        """Drop everything."""
        ...


class MemoryStateFiles:
    """Nothing survives the process: instance bytes in a dict, the rest only in the model."""

    def __init__(self) -> None:
        self._blobs: dict[str, dict[str, bytes]] = {}

    def load(self) -> LoadedState:
        return LoadedState()

    def save_datasets(self, datasets: dict[str, dict[str, Any]]) -> None:
        pass

    def save_dataset_policies(self, policies: dict[str, dict[str, Any]]) -> None:
        pass

    def save_stores(self, stores: dict[str, dict[str, Any]]) -> None:
        pass

    def save_operation(
        self, op_id: str, fields: dict[str, Any], logs: list[dict[str, Any]] | None
    ) -> None:
        pass

    def forget_operation(self, op_id: str) -> None:
        pass

    def put_instance(self, store: str, record: InstanceRecord, data: bytes) -> None:
        self._blobs.setdefault(store, {})[record.sop_instance_uid] = data

    def read_instance(self, store: str, sop_instance_uid: str) -> bytes:
        return self._blobs[store][sop_instance_uid]

    def delete_instances(
        self, store: str, gone: list[InstanceRecord], kept: Iterable[InstanceRecord]
    ) -> None:
        blobs = self._blobs.get(store, {})
        for record in gone:
            blobs.pop(record.sop_instance_uid, None)

    def drop_store(self, store: str) -> None:
        self._blobs.pop(store, None)

    def close(self) -> None:
        pass

    def reset(self) -> None:
        self._blobs.clear()


class StateFiles:
    """The Healthcare state under ``DATA_DIR/healthcare/`` (layout in the module docstring)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self._root = Path(data_dir) / "healthcare"
        self._indexes: dict[str, IO[str]] = {}

    def _folder(self, store: str) -> Path:
        return self._root / "stores" / file_key(store)

    def _operation(self, op_id: str, suffix: str) -> Path:
        return self._root / "operations" / f"{op_id}{suffix}"

    def load(self) -> LoadedState:
        loaded = LoadedState()
        if not self._root.exists():
            return loaded
        loaded.datasets = _read_json(self._root / "datasets.json", {})
        loaded.dataset_policies = _read_json(self._root / "dataset_policies.json", {})
        for name, doc in _read_json(self._root / "stores.json", {}).items():
            folder = self._folder(name)
            legacy = folder.with_name(folder.name[:24])  # before the one file-name hash
            if not folder.exists() and legacy.exists():
                legacy.rename(folder)
            store = LoadedStore(doc["resource"], doc["policy"])
            index = folder / "index.jsonl"
            if index.exists():
                with index.open(encoding="utf-8") as fh:
                    for line in fh:
                        if line.strip():
                            rec = InstanceRecord(**json.loads(line))
                            store.records.append(
                                rec if rec.match_json else _with_search(rec, folder)
                            )
            loaded.stores[name] = store
        operations = self._root / "operations"
        if operations.exists():
            for path in operations.glob("*.json"):
                if path.name.endswith(".logs.json"):
                    continue
                fields = json.loads(path.read_text(encoding="utf-8"))
                logs = path.with_name(path.name.removesuffix(".json") + ".logs.json")
                loaded.operations.append((fields, _read_json(logs, None)))
        return loaded

    def save_datasets(self, datasets: dict[str, dict[str, Any]]) -> None:
        write_json(self._root / "datasets.json", datasets)

    def save_dataset_policies(self, policies: dict[str, dict[str, Any]]) -> None:
        write_json(self._root / "dataset_policies.json", policies)

    def save_stores(self, stores: dict[str, dict[str, Any]]) -> None:
        write_json(self._root / "stores.json", stores)

    def save_operation(
        self, op_id: str, fields: dict[str, Any], logs: list[dict[str, Any]] | None
    ) -> None:
        write_json(self._operation(op_id, ".json"), fields)
        if logs is not None:
            write_json(self._operation(op_id, ".logs.json"), logs)

    def forget_operation(self, op_id: str) -> None:
        for suffix in (".json", ".logs.json"):
            self._operation(op_id, suffix).unlink(missing_ok=True)

    def put_instance(self, store: str, record: InstanceRecord, data: bytes) -> None:
        folder = self._folder(store)
        index = self._indexes.get(store)
        if index is None:
            folder.mkdir(parents=True, exist_ok=True)
            index = self._indexes[store] = (folder / "index.jsonl").open("a", encoding="utf-8")
        (folder / f"{record.sop_instance_uid}.dcm").write_bytes(data)
        # Bytes first, then their index line: a crash never indexes a missing file.
        index.write(json.dumps(asdict(record)) + "\n")
        index.flush()

    def read_instance(self, store: str, sop_instance_uid: str) -> bytes:
        return (self._folder(store) / f"{sop_instance_uid}.dcm").read_bytes()

    def delete_instances(
        self, store: str, gone: list[InstanceRecord], kept: Iterable[InstanceRecord]
    ) -> None:
        folder = self._folder(store)
        self._close_index(store)
        lines = "".join(json.dumps(asdict(r)) + "\n" for r in kept)
        write_atomic(folder / "index.jsonl", lines.encode("utf-8"))
        for record in gone:
            (folder / f"{record.sop_instance_uid}.dcm").unlink(missing_ok=True)

    def drop_store(self, store: str) -> None:
        self._close_index(store)
        shutil.rmtree(self._folder(store), ignore_errors=True)

    def _close_index(self, store: str) -> None:
        index = self._indexes.pop(store, None)
        if index is not None:
            index.close()

    def close(self) -> None:
        for store in list(self._indexes):
            self._close_index(store)

    def reset(self) -> None:
        self.close()
        if self._root.exists():
            shutil.rmtree(self._root)


def open_state_files(data_dir: str | os.PathLike[str] | None) -> StatePersistence:
    """Where the Healthcare state lives: on disk under ``data_dir``, else in memory."""
    return MemoryStateFiles() if data_dir is None else StateFiles(data_dir)


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def _with_search(record: InstanceRecord, folder: Path) -> InstanceRecord:
    """A record persisted before ``match_json`` existed, with it rebuilt from its bytes.

    An unreadable or missing file leaves it empty: the instance then matches only searches
    without filters on other attributes than its UIDs (the emulator cannot say more).
    """
    try:
        data = (folder / f"{record.sop_instance_uid}.dcm").read_bytes()
        rebuilt = match_json(read_dataset(data, stop_before_pixels=True))
    except (OSError, DicomParseError):
        return record
    return replace(record, match_json=rebuilt)


__all__ = [
    "LoadedState",
    "LoadedStore",
    "MemoryStateFiles",
    "StateFiles",
    "StatePersistence",
    "open_state_files",
]
