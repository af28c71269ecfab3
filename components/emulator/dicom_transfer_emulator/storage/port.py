"""Cloud Storage state of the emulator: buckets, objects and bucket IAM, in memory or on disk.

:class:`Storage` is the narrow port the Healthcare side uses: import lists and reads objects
with :meth:`Storage.read_object`, export writes them with :meth:`Storage.write_object`, and
permission emulation asks :meth:`Storage.role_granted` whether a member holds a role on a
bucket. The Cloud Storage JSON API routes (:mod:`.json_api`) use the whole backend.
:func:`open_storage` picks the implementation once, at start-up:

* :class:`MemoryStorage` (no ``--data-dir``): everything in memory;
* :class:`FileStorage` (``--data-dir``): every bucket under ``DATA_DIR/storage/buckets/NAME/``
  (``bucket.json`` with its IAM policy, ``objects/<sha256(name)>.json`` metadata and
  ``objects/<sha256(name)>-<generation>.bin`` data, written atomically). Metadata is indexed
  in memory at start-up; object data stays on disk.

Both (:mod:`.storage.backends`) share :class:`~.storage.index.IndexedStorage`, which holds
the metadata index and applies Cloud Storage's rules (:mod:`.storage.model`) once; they
differ only in where object data and metadata go. Errors are :mod:`.storage.errors` domain
errors (``BucketNotFound``, ``ObjectNotFound``, ``PreconditionFailed``…), never HTTP ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from dicom_transfer_emulator.storage.backends import FileStorage, MemoryStorage
from dicom_transfer_emulator.storage.index import IndexedStorage
from dicom_transfer_emulator.storage.model import (
    ROLE_IMPLIED_BY,
    WRITABLE_OBJECT_FIELDS,
    BucketMeta,
    ObjectMeta,
    crc32c_base64,
    crc32c_value,
    decode_page_token,
    encode_page_token,
    fake_project_number,
    glob_to_regex,
    md5_base64,
    rfc3339,
)


class Storage(Protocol):
    """What the Healthcare side needs of Cloud Storage (the port; thread-safe).

    Import lists and reads objects, export writes them, and permission emulation asks
    :meth:`role_granted`. Both backends (:class:`MemoryStorage`, :class:`FileStorage`) are
    one; the Cloud Storage JSON API works on their shared core,
    :class:`~.index.IndexedStorage`, which documents every method.
    """

    def bucket_exists(self, name: str) -> bool:
        """Whether the bucket exists."""
        ...

    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str | None = None
    ) -> tuple[list[ObjectMeta], list[str]]:
        """All objects under ``prefix`` and the rolled-up prefixes (BucketNotFound)."""
        ...

    def read_object(self, bucket: str, name: str, generation: int | None = None) -> bytes:
        """An object's content (BucketNotFound, ObjectNotFound)."""
        ...

    def write_object(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str | None = None,
        *,
        metadata: dict[str, str] | None = None,
        if_generation_match: int | None = None,
        if_generation_not_match: int | None = None,
        if_metageneration_match: int | None = None,
        **fields: Any,
    ) -> ObjectMeta:
        """Create or overwrite an object (BucketNotFound, InvalidArgument,
        PreconditionFailed)."""
        ...

    def role_granted(self, bucket: str, member: str, role: str, now: float | None = None) -> bool:
        """Whether ``member`` holds ``role`` on ``bucket`` after propagation."""
        ...


def open_storage(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    propagation_delay_s: float = 0.0,
) -> IndexedStorage:
    """Open the Cloud Storage state: on disk under ``data_dir``, else in memory.

    Args:
        data_dir: Persistence directory (``--data-dir``); None keeps everything in memory.
        clock: Returns the current POSIX time; injected by tests.
        propagation_delay_s: Seconds after which a new IAM grant takes effect in
            ``role_granted`` (real IAM takes about 2 minutes, sometimes 7 or more).

    Returns:
        A :class:`FileStorage` or a :class:`MemoryStorage`.
    """
    if data_dir is None:
        return MemoryStorage(clock=clock, propagation_delay_s=propagation_delay_s)
    return FileStorage(data_dir, clock=clock, propagation_delay_s=propagation_delay_s)


__all__ = [
    "ROLE_IMPLIED_BY",
    "WRITABLE_OBJECT_FIELDS",
    "BucketMeta",
    "FileStorage",
    "IndexedStorage",
    "MemoryStorage",
    "ObjectMeta",
    "Storage",
    "crc32c_base64",
    "crc32c_value",
    "decode_page_token",
    "encode_page_token",
    "fake_project_number",
    "glob_to_regex",
    "md5_base64",
    "open_storage",
    "rfc3339",
]
