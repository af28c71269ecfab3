"""Where Cloud Storage state lives: :class:`MemoryStorage` (memory only) and
:class:`FileStorage` (``--data-dir``), both on :class:`~.storage.index.IndexedStorage`.

On disk every bucket lives under ``DATA_DIR/storage/buckets/NAME/``: ``bucket.json`` with its
IAM policy, ``objects/<sha256(name)>.json`` metadata and ``objects/<sha256(name)>-<generation>.bin``
data, written atomically. Metadata is indexed in memory at start-up; object data stays on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from dicom_transfer_emulator.files import TEMP_PREFIX, file_key, write_atomic
from dicom_transfer_emulator.storage.index import BucketState, IndexedStorage
from dicom_transfer_emulator.storage.model import ObjectMeta


class MemoryStorage(IndexedStorage):
    """Cloud Storage state in memory only (the emulator without ``--data-dir``)."""

    persistent = False

    def __init__(
        self, *, clock: Callable[[], float] = time.time, propagation_delay_s: float = 0.0
    ) -> None:
        """Create empty state (arguments as for :func:`open_storage`)."""
        super().__init__(clock=clock, propagation_delay_s=propagation_delay_s)
        # (bucket, name) -> (generation, data) of the live generation.
        self._data: dict[tuple[str, str], tuple[int, bytes]] = {}

    def _bucket_created(self, bucket: BucketState) -> None:
        pass

    def _bucket_changed(self, bucket: BucketState) -> None:
        pass

    def _bucket_deleted(self, name: str) -> None:
        pass

    def _stage_data(self, meta: ObjectMeta, data: bytes) -> None:
        pass  # kept at commit

    def _discard_data(self, meta: ObjectMeta) -> None:
        pass

    def _object_written(self, meta: ObjectMeta, data: bytes, replaced: ObjectMeta | None) -> None:
        self._data[(meta.bucket, meta.name)] = (meta.generation, bytes(data))

    def _object_meta_changed(self, meta: ObjectMeta) -> None:
        pass

    def _object_deleted(self, meta: ObjectMeta) -> None:
        self._data.pop((meta.bucket, meta.name), None)

    def _load_data(self, meta: ObjectMeta) -> bytes | None:
        with self._lock:
            entry = self._data.get((meta.bucket, meta.name))
        return entry[1] if entry is not None and entry[0] == meta.generation else None

    def _wipe(self) -> None:
        self._data.clear()


class FileStorage(IndexedStorage):
    """Cloud Storage state on disk under ``DATA_DIR/storage/buckets`` (``--data-dir``).

    Args:
        data_dir: Persistence directory (created if needed); existing state is loaded.
        clock: Returns the current POSIX time.
        propagation_delay_s: See :func:`open_storage`.
    """

    persistent = True

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        propagation_delay_s: float = 0.0,
    ) -> None:
        super().__init__(clock=clock, propagation_delay_s=propagation_delay_s)
        self._root = Path(data_dir) / "storage" / "buckets"
        self._root.mkdir(parents=True, exist_ok=True)
        self._load()

    def _objects_dir(self, bucket: str) -> Path:
        return self._root / bucket / "objects"

    def _meta_path(self, meta: ObjectMeta) -> Path:
        return self._objects_dir(meta.bucket) / f"{file_key(meta.name)}.json"

    def _data_path(self, meta: ObjectMeta) -> Path:
        key = file_key(meta.name)
        return self._objects_dir(meta.bucket) / f"{key}-{meta.generation}.bin"

    def _bucket_created(self, bucket: BucketState) -> None:
        self._objects_dir(bucket.meta.name).mkdir(parents=True, exist_ok=True)
        self._bucket_changed(bucket)

    def _bucket_changed(self, bucket: BucketState) -> None:
        path = self._root / bucket.meta.name / "bucket.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(bucket.to_json()).encode("utf-8"))

    def _bucket_deleted(self, name: str) -> None:
        shutil.rmtree(self._root / name, ignore_errors=True)

    def _stage_data(self, meta: ObjectMeta, data: bytes) -> None:
        write_atomic(self._data_path(meta), data)

    def _discard_data(self, meta: ObjectMeta) -> None:
        with contextlib.suppress(OSError):
            self._data_path(meta).unlink()

    def _object_written(self, meta: ObjectMeta, data: bytes, replaced: ObjectMeta | None) -> None:
        self._object_meta_changed(meta)
        if replaced is not None:
            self._discard_data(replaced)

    def _object_meta_changed(self, meta: ObjectMeta) -> None:
        write_atomic(self._meta_path(meta), json.dumps(asdict(meta)).encode("utf-8"))

    def _object_deleted(self, meta: ObjectMeta) -> None:
        with contextlib.suppress(OSError):
            self._meta_path(meta).unlink()
        self._discard_data(meta)

    def _load_data(self, meta: ObjectMeta) -> bytes | None:
        try:
            return self._data_path(meta).read_bytes()
        except FileNotFoundError:
            return None

    def _wipe(self) -> None:
        for child in self._root.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)

    def _load(self) -> None:
        for bucket_dir in sorted(self._root.iterdir()):
            bucket_file = bucket_dir / "bucket.json"
            if not bucket_file.is_file():
                continue
            try:
                bucket = BucketState.from_json(json.loads(bucket_file.read_bytes()))
            except (ValueError, KeyError, TypeError):
                continue  # a corrupt bucket file is skipped rather than crashing start-up
            self._buckets[bucket.meta.name] = bucket
            objects_dir = bucket_dir / "objects"
            objects_dir.mkdir(exist_ok=True)
            for meta_file in objects_dir.glob("*.json"):
                try:
                    meta = ObjectMeta(**json.loads(meta_file.read_bytes()))
                except (ValueError, KeyError, TypeError):
                    continue
                if not self._data_path(meta).is_file():
                    continue
                bucket.objects[meta.name] = meta
                self._last_generation = max(self._last_generation, meta.generation)
            for stray in objects_dir.glob(f"{TEMP_PREFIX}*"):
                with contextlib.suppress(OSError):
                    stray.unlink()


__all__ = ["FileStorage", "MemoryStorage"]
