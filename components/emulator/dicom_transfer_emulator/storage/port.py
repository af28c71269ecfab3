"""Cloud Storage state of the emulator: buckets, objects and bucket IAM, in memory or on disk.

:class:`Storage` is the protocol both the Cloud Storage JSON API routes
(:mod:`.storage.json_api`) and the Healthcare side use: import reads objects with
:meth:`Storage.read_object`, export writes them with :meth:`Storage.write_object`, and
permission emulation asks :meth:`Storage.role_granted` whether a member holds a role on a
bucket. :func:`open_storage` picks the implementation once, at start-up:

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
    """What the emulator needs of Cloud Storage state (thread-safe implementations).

    Attributes:
        clock: Returns the current POSIX time.
        propagation_delay_s: Seconds before a new IAM grant counts in :meth:`role_granted`.
    """

    clock: Callable[[], float]
    propagation_delay_s: float

    @property
    def persistent(self) -> bool:
        """Whether state survives a restart."""
        ...

    def create_bucket(
        self,
        name: str,
        project: str,
        *,
        location: str = "US",
        storage_class: str = "STANDARD",
        labels: dict[str, str] | None = None,
    ) -> BucketMeta:
        """Create a bucket (InvalidArgument, BucketExists)."""
        ...

    def get_bucket(self, name: str) -> BucketMeta:
        """A bucket's metadata (BucketNotFound)."""
        ...

    def bucket_exists(self, name: str) -> bool:
        """Whether the bucket exists."""
        ...

    def list_buckets(self, project: str | None = None, prefix: str = "") -> list[BucketMeta]:
        """Buckets of ``project`` (all when None) starting with ``prefix``, by name."""
        ...

    def update_bucket(
        self,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        storage_class: str | None = None,
        if_metageneration_match: int | None = None,
    ) -> BucketMeta:
        """Change labels / storage class (BucketNotFound, PreconditionFailed)."""
        ...

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket (BucketNotFound, BucketNotEmpty)."""
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

    def read_object(self, bucket: str, name: str, generation: int | None = None) -> bytes:
        """An object's content (BucketNotFound, ObjectNotFound)."""
        ...

    def get_object_meta(
        self,
        bucket: str,
        name: str,
        generation: int | None = None,
        *,
        if_generation_match: int | None = None,
        if_generation_not_match: int | None = None,
        if_metageneration_match: int | None = None,
    ) -> ObjectMeta:
        """An object's metadata, with read preconditions (BucketNotFound, ObjectNotFound,
        PreconditionFailed, NotModified)."""
        ...

    def object_exists(self, bucket: str, name: str) -> bool:
        """Whether ``bucket/name`` exists."""
        ...

    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str | None = None
    ) -> tuple[list[ObjectMeta], list[str]]:
        """All objects under ``prefix`` and the rolled-up prefixes (BucketNotFound)."""
        ...

    def list_objects_page(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        max_results: int | None = None,
        page_token: str | None = None,
        start_offset: str | None = None,
        end_offset: str | None = None,
        match_glob: str | None = None,
        include_trailing_delimiter: bool = False,
    ) -> tuple[list[ObjectMeta], list[str], str | None]:
        """One page of ``objects.list`` (BucketNotFound, InvalidArgument)."""
        ...

    def update_object(
        self,
        bucket: str,
        name: str,
        *,
        if_generation_match: int | None = None,
        if_metageneration_match: int | None = None,
        **fields: Any,
    ) -> ObjectMeta:
        """Change metadata of the live generation (ObjectNotFound, PreconditionFailed)."""
        ...

    def copy_object(
        self,
        src_bucket: str,
        src_name: str,
        dst_bucket: str,
        dst_name: str,
        *,
        if_generation_match: int | None = None,
        **fields: Any,
    ) -> ObjectMeta:
        """Copy an object (BucketNotFound, ObjectNotFound, PreconditionFailed)."""
        ...

    def delete_object(
        self,
        bucket: str,
        name: str,
        *,
        if_generation_match: int | None = None,
        if_metageneration_match: int | None = None,
    ) -> None:
        """Delete an object (ObjectNotFound, PreconditionFailed)."""
        ...

    def get_iam_policy(self, bucket: str) -> dict[str, Any]:
        """The bucket's ``storage#policy`` (BucketNotFound)."""
        ...

    def set_iam_policy(self, bucket: str, policy: dict[str, Any]) -> dict[str, Any]:
        """Replace the bucket's policy (BucketNotFound, InvalidArgument, PreconditionFailed)."""
        ...

    def role_granted(self, bucket: str, member: str, role: str, now: float | None = None) -> bool:
        """Whether ``member`` holds ``role`` on ``bucket`` after propagation."""
        ...

    def reset(self) -> None:
        """Delete every bucket and object."""
        ...


def open_storage(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    propagation_delay_s: float = 0.0,
) -> Storage:
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
