"""Cloud Storage state of the emulator: buckets, objects and bucket IAM, in memory or on disk.

:class:`StorageBackend` is shared in-process by the Cloud Storage JSON API routes
(:mod:`.storage_api`) and the Healthcare side: import reads objects with
:meth:`StorageBackend.read_object`, export writes them with
:meth:`StorageBackend.write_object`, and permission emulation asks
:meth:`StorageBackend.role_granted` whether a member holds a role on a bucket.

Errors are :class:`~.errors.ApiException` with the status and message real Cloud Storage
uses (404 "No such object: b/o", 409 bucket exists / not empty, 412 precondition failed…).

Persistence: with ``data_dir`` every bucket lives under ``DATA_DIR/storage/buckets/NAME/``
(``bucket.json`` with its IAM policy, ``objects/<sha256(name)>.json`` metadata and
``objects/<sha256(name)>-<generation>.bin`` data, written atomically). Metadata is indexed in
memory at start-up; object data stays on disk. Without ``data_dir`` everything is in memory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import google_crc32c

from .errors import ApiException, already_exists, invalid_argument, not_found, precondition_failed

#: Roles that satisfy a requested role on a bucket (a role is satisfied by itself too).
ROLE_IMPLIED_BY: dict[str, frozenset[str]] = {
    "roles/storage.objectViewer": frozenset(
        {"roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin"}
    ),
    "roles/storage.objectCreator": frozenset(
        {"roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin"}
    ),
    "roles/storage.objectUser": frozenset({"roles/storage.objectAdmin", "roles/storage.admin"}),
    "roles/storage.objectAdmin": frozenset({"roles/storage.admin"}),
    "roles/storage.legacyBucketReader": frozenset(
        {"roles/storage.legacyBucketWriter", "roles/storage.legacyBucketOwner"}
    ),
}

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_IP_LIKE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_MEMBER_PREFIXES = (
    "user:",
    "serviceAccount:",
    "group:",
    "domain:",
    "projectOwner:",
    "projectEditor:",
    "projectViewer:",
    "principal://",
    "principalSet://",
    "deleted:",
)
_MEMBER_LITERALS = ("allUsers", "allAuthenticatedUsers")


def rfc3339(timestamp: float) -> str:
    """Format a POSIX timestamp the way Cloud Storage does (``2024-05-01T12:00:00.123Z``)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def md5_base64(data: bytes) -> str:
    """Return the base64 MD5 of ``data`` (Cloud Storage ``md5Hash``)."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def crc32c_value(data: bytes) -> int:
    """Return the CRC32C (Castagnoli) checksum of ``data`` as an unsigned int."""
    return int(google_crc32c.value(data))


def crc32c_base64(data: bytes) -> str:
    """Return the base64 big-endian CRC32C of ``data`` (Cloud Storage ``crc32c``)."""
    return base64.b64encode(crc32c_value(data).to_bytes(4, "big")).decode("ascii")


def _policy_etag(counter: int) -> str:
    # Real etags are base64 protobuf varints ("CAE=" for 1); mimic that form.
    varint = bytearray()
    value = counter
    while True:
        byte = value & 0x7F
        value >>= 7
        varint.append(byte | (0x80 if value else 0))
        if not value:
            break
    return base64.b64encode(b"\x08" + bytes(varint)).decode("ascii")


def validate_bucket_name(name: str) -> None:
    """Check a bucket name against Cloud Storage's naming rules.

    Raises:
        ApiException: 400 "Invalid bucket name" when it breaks them.
    """
    problem = None
    if not isinstance(name, str) or not _BUCKET_NAME.match(name):
        problem = (
            "3-63 characters of a-z, 0-9, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )
    elif len(name) > 63 and "." not in name:
        problem = "at most 63 characters (222 with dots)"
    elif any(len(part) > 63 or not part for part in name.split(".")):
        problem = "dot-separated components of 1-63 characters"
    elif _IP_LIKE.match(name):
        problem = "not an IP address"
    elif name.startswith("goog") or "google" in name:
        problem = "not starting with 'goog' nor containing 'google'"
    if problem:
        raise invalid_argument(f"Invalid bucket name: {name!r}; expected {problem}.")


def validate_object_name(name: str) -> None:
    """Check an object name against Cloud Storage's naming rules.

    Raises:
        ApiException: 400 when it is empty, longer than 1024 bytes, ``.``/``..`` or contains
            carriage returns, line feeds or NUL.
    """
    if not isinstance(name, str) or not name:
        raise invalid_argument("Object name is required.")
    if len(name.encode("utf-8", "surrogatepass")) > 1024:
        raise invalid_argument("Invalid object name: longer than 1024 bytes.")
    if name in (".", "..") or any(c in name for c in "\r\n\x00"):
        raise invalid_argument(f"Invalid object name: {name!r}.")
    with contextlib.suppress(UnicodeEncodeError):
        name.encode("utf-8")
        return
    raise invalid_argument("Invalid object name: not valid UTF-8.")


@dataclass
class BucketMeta:
    """Metadata of one bucket.

    Attributes:
        name: Bucket name.
        project: Project ID given at creation.
        project_number: A stable fake project number derived from ``project``.
        location: Location (``US`` by default).
        storage_class: Default storage class.
        labels: Bucket labels.
        time_created: POSIX time of creation.
        updated: POSIX time of the last metadata change.
        metageneration: Incremented on every metadata change.
    """

    name: str
    project: str
    project_number: str
    location: str = "US"
    storage_class: str = "STANDARD"
    labels: dict[str, str] = field(default_factory=dict)
    time_created: float = 0.0
    updated: float = 0.0
    metageneration: int = 1


@dataclass
class ObjectMeta:
    """Metadata of one object (its live generation).

    Attributes:
        bucket: Bucket name.
        name: Object name.
        size: Size in bytes.
        content_type: MIME type.
        md5_hash: Base64 MD5 of the data.
        crc32c: Base64 big-endian CRC32C of the data.
        generation: Generation number (microseconds, strictly increasing per backend).
        metageneration: Incremented on every metadata change of this generation.
        time_created: POSIX time this generation was written.
        updated: POSIX time of the last change.
        storage_class: Storage class.
        metadata: Custom metadata (``x-goog-meta-*``).
        content_encoding: ``Content-Encoding`` or None.
        content_disposition: ``Content-Disposition`` or None.
        content_language: ``Content-Language`` or None.
        cache_control: ``Cache-Control`` or None.
    """

    bucket: str
    name: str
    size: int
    content_type: str
    md5_hash: str
    crc32c: str
    generation: int
    metageneration: int = 1
    time_created: float = 0.0
    updated: float = 0.0
    storage_class: str = "STANDARD"
    metadata: dict[str, str] = field(default_factory=dict)
    content_encoding: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None
    cache_control: str | None = None

    @property
    def etag(self) -> str:
        """An etag that changes with generation and metageneration."""
        raw = f"{self.generation}/{self.metageneration}".encode()
        return base64.b64encode(hashlib.sha1(raw).digest()[:8]).decode("ascii")


#: Fields of :class:`ObjectMeta` that callers may set when writing or patching an object.
WRITABLE_OBJECT_FIELDS = (
    "content_type",
    "metadata",
    "content_encoding",
    "content_disposition",
    "content_language",
    "cache_control",
    "storage_class",
)


@dataclass
class _Bucket:
    meta: BucketMeta
    policy: dict[str, Any]
    policy_counter: int
    # "role\nmember" -> POSIX time the member was first granted the role (for propagation).
    grant_times: dict[str, float]
    objects: dict[str, ObjectMeta] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": asdict(self.meta),
            "policy": self.policy,
            "policyCounter": self.policy_counter,
            "grantTimes": self.grant_times,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Bucket:
        return cls(
            meta=BucketMeta(**data["meta"]),
            policy=data["policy"],
            policy_counter=int(data["policyCounter"]),
            grant_times={str(k): float(v) for k, v in data["grantTimes"].items()},
        )


def _object_key(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_PAGE_TOKEN = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def encode_page_token(name: str) -> str:
    """Return the opaque page token that resumes a listing at ``name``."""
    return base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii")


def decode_page_token(token: str) -> str:
    """Return the name a page token resumes at.

    Raises:
        ApiException: 400 for a token this emulator did not issue.
    """
    try:
        if not _PAGE_TOKEN.match(token):
            raise ValueError(token)
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raise invalid_argument("Invalid pageToken.") from None


def fake_project_number(project: str) -> str:
    """Return a stable 12-digit fake project number for ``project``."""
    digest = hashlib.sha256(project.encode("utf-8")).digest()
    return str(100_000_000_000 + int.from_bytes(digest[:8], "big") % 900_000_000_000)


def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Compile a Cloud Storage ``matchGlob`` (``**``, ``*``, ``?``, ``[…]``, ``{a,b}``).

    Raises:
        ApiException: 400 for an unbalanced ``[`` or ``{``.
    """
    out: list[str] = []
    i = 0
    in_braces = False
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 1)
            if end < 0:
                raise invalid_argument(f"Invalid matchGlob {glob!r}: unbalanced '['.")
            body = glob[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        elif c == "{" and not in_braces:
            in_braces = True
            out.append("(?:")
        elif c == "}" and in_braces:
            in_braces = False
            out.append(")")
        elif c == "," and in_braces:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if in_braces:
        raise invalid_argument(f"Invalid matchGlob {glob!r}: unbalanced '{{'.")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise invalid_argument(f"Invalid matchGlob {glob!r}: {exc}") from None


class StorageBackend:
    """Buckets, objects and bucket IAM policies; thread-safe; memory or filesystem backed.

    Args:
        data_dir: Directory for persistence (created if needed); None keeps everything in
            memory.
        clock: Returns the current POSIX time; injected by tests.
        propagation_delay_s: Seconds after which a new IAM grant takes effect in
            :meth:`role_granted` (real IAM takes about 2 minutes, sometimes 7 or more).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        propagation_delay_s: float = 0.0,
    ) -> None:
        self.clock = clock
        self.propagation_delay_s = propagation_delay_s
        self._lock = threading.RLock()
        self._buckets: dict[str, _Bucket] = {}
        self._data: dict[tuple[str, str], bytes] = {}
        self._last_generation = 0
        self._root = Path(data_dir) / "storage" / "buckets" if data_dir is not None else None
        if self._root is not None:
            self._root.mkdir(parents=True, exist_ok=True)
            self._load()

    @property
    def persistent(self) -> bool:
        """Whether state is kept on disk."""
        return self._root is not None

    # -- buckets --------------------------------------------------------------------------

    def create_bucket(
        self,
        name: str,
        project: str,
        *,
        location: str = "US",
        storage_class: str = "STANDARD",
        labels: dict[str, str] | None = None,
    ) -> BucketMeta:
        """Create a bucket.

        Args:
            name: Bucket name (Cloud Storage naming rules).
            project: Owning project ID.
            location: Location, upper-cased.
            storage_class: Default storage class.
            labels: Labels.

        Returns:
            The new bucket's metadata.

        Raises:
            ApiException: 400 for an invalid name, 409 when it exists.
        """
        validate_bucket_name(name)
        now = self.clock()
        meta = BucketMeta(
            name=name,
            project=project,
            project_number=fake_project_number(project),
            location=location.upper(),
            storage_class=storage_class.upper(),
            labels=dict(labels or {}),
            time_created=now,
            updated=now,
        )
        bindings = [
            {
                "role": "roles/storage.legacyBucketOwner",
                "members": [f"projectEditor:{project}", f"projectOwner:{project}"],
            },
            {"role": "roles/storage.legacyBucketReader", "members": [f"projectViewer:{project}"]},
        ]
        policy = {"version": 1, "bindings": bindings}
        grant_times = {f"{b['role']}\n{m}": now for b in bindings for m in b["members"]}
        with self._lock:
            if name in self._buckets:
                raise already_exists(
                    "Your previous request to create the named bucket succeeded and you "
                    "already own it."
                )
            bucket = _Bucket(meta, policy, 1, grant_times)
            self._buckets[name] = bucket
            if self._root is not None:
                (self._root / name / "objects").mkdir(parents=True, exist_ok=True)
                self._save_bucket(bucket)
            return replace(meta)

    def get_bucket(self, name: str) -> BucketMeta:
        """Return a bucket's metadata.

        Raises:
            ApiException: 404 when it does not exist.
        """
        with self._lock:
            return replace(self._bucket(name).meta)

    def bucket_exists(self, name: str) -> bool:
        """Whether bucket ``name`` exists."""
        with self._lock:
            return name in self._buckets

    def list_buckets(self, project: str | None = None, prefix: str = "") -> list[BucketMeta]:
        """Return the buckets of ``project`` (all when None) whose name starts with ``prefix``,
        sorted by name."""
        with self._lock:
            return [
                replace(b.meta)
                for name, b in sorted(self._buckets.items())
                if (project is None or b.meta.project == project) and name.startswith(prefix)
            ]

    def update_bucket(
        self,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        storage_class: str | None = None,
        if_metageneration_match: int | None = None,
    ) -> BucketMeta:
        """Change a bucket's labels and/or default storage class.

        Raises:
            ApiException: 404 when missing, 412 when the metageneration does not match.
        """
        with self._lock:
            bucket = self._bucket(name)
            if if_metageneration_match is not None and (
                bucket.meta.metageneration != if_metageneration_match
            ):
                raise precondition_failed(
                    "At least one of the pre-conditions you specified did not hold."
                )
            if labels is not None:
                bucket.meta.labels = dict(labels)
            if storage_class is not None:
                bucket.meta.storage_class = storage_class.upper()
            bucket.meta.metageneration += 1
            bucket.meta.updated = self.clock()
            self._save_bucket(bucket)
            return replace(bucket.meta)

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket.

        Raises:
            ApiException: 404 when missing, 409 when it still holds objects.
        """
        with self._lock:
            bucket = self._bucket(name)
            if bucket.objects:
                raise ApiException(
                    409,
                    "The bucket you tried to delete is not empty.",
                    "FAILED_PRECONDITION",
                    reason="conflict",
                )
            del self._buckets[name]
            if self._root is not None:
                shutil.rmtree(self._root / name, ignore_errors=True)

    # -- objects --------------------------------------------------------------------------

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
        """Write (create or overwrite) an object; overwriting makes a new generation.

        Args:
            bucket: Bucket name.
            name: Object name.
            data: The whole content.
            content_type: MIME type (``application/octet-stream`` when None).
            metadata: Custom metadata.
            if_generation_match: Precondition; 0 means "only if the object does not exist".
            if_generation_not_match: Precondition on the live generation.
            if_metageneration_match: Precondition on the live metageneration.
            **fields: Other :data:`WRITABLE_OBJECT_FIELDS` (``cache_control``…).

        Returns:
            The new object's metadata.

        Raises:
            ApiException: 404 for a missing bucket, 400 for a bad name or field, 412 when a
                precondition fails.
        """
        validate_object_name(name)
        unknown = set(fields) - set(WRITABLE_OBJECT_FIELDS)
        if unknown:
            raise invalid_argument(f"Unknown object field(s): {', '.join(sorted(unknown))}.")
        md5 = md5_base64(data)
        crc = crc32c_base64(data)
        with self._lock:
            target = self._bucket(bucket)
            live = target.objects.get(name)
            self._check_preconditions(
                live, if_generation_match, if_generation_not_match, if_metageneration_match
            )
            generation = self._next_generation()
            now = self.clock()
            meta = ObjectMeta(
                bucket=bucket,
                name=name,
                size=len(data),
                content_type=content_type or "application/octet-stream",
                md5_hash=md5,
                crc32c=crc,
                generation=generation,
                time_created=now,
                updated=now,
                storage_class=target.meta.storage_class,
                metadata=dict(metadata or {}),
            )
            for key, value in fields.items():
                setattr(meta, key, value)
        # Data is written outside the lock (it can be large); the metadata commit below
        # re-checks the preconditions so concurrent writers still get a consistent winner.
        if self._root is not None:
            _write_atomic(self._data_path(bucket, name, generation), data)
        with self._lock:
            try:
                target = self._bucket(bucket)
                live = target.objects.get(name)
                self._check_preconditions(
                    live, if_generation_match, if_generation_not_match, if_metageneration_match
                )
            except ApiException:
                if self._root is not None:
                    with contextlib.suppress(OSError):
                        self._data_path(bucket, name, generation).unlink()
                raise
            target.objects[name] = meta
            if self._root is None:
                self._data[(bucket, name)] = bytes(data)
            else:
                self._save_object_meta(meta)
                if live is not None:
                    with contextlib.suppress(OSError):
                        self._data_path(bucket, name, live.generation).unlink()
            return replace(meta, metadata=dict(meta.metadata))

    def read_object(self, bucket: str, name: str, generation: int | None = None) -> bytes:
        """Return an object's content.

        Args:
            bucket: Bucket name.
            name: Object name.
            generation: Required generation (only the live one is kept), or None.

        Raises:
            ApiException: 404 when the bucket/object/generation does not exist.
        """
        for _ in range(5):
            meta = self.get_object_meta(bucket, name, generation)
            if self._root is None:
                with self._lock:
                    data = self._data.get((bucket, name))
                    current = (
                        self._buckets[bucket].objects.get(name) if bucket in self._buckets else None
                    )
                    if (
                        data is not None
                        and current is not None
                        and current.generation == meta.generation
                    ):
                        return data
                continue
            try:
                return self._data_path(bucket, name, meta.generation).read_bytes()
            except FileNotFoundError:
                continue  # overwritten or deleted meanwhile; look again
        raise not_found(f"No such object: {bucket}/{name}")

    def get_object_meta(self, bucket: str, name: str, generation: int | None = None) -> ObjectMeta:
        """Return an object's metadata.

        Raises:
            ApiException: 404 when the bucket/object/generation does not exist.
        """
        with self._lock:
            meta = self._bucket(bucket).objects.get(name)
            if meta is None or (generation is not None and meta.generation != generation):
                raise not_found(f"No such object: {bucket}/{name}")
            return replace(meta, metadata=dict(meta.metadata))

    def object_exists(self, bucket: str, name: str) -> bool:
        """Whether ``bucket/name`` exists (False also when the bucket does not)."""
        with self._lock:
            b = self._buckets.get(bucket)
            return b is not None and name in b.objects

    def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str | None = None
    ) -> tuple[list[ObjectMeta], list[str]]:
        """List all objects under ``prefix`` (no paging).

        Args:
            bucket: Bucket name.
            prefix: Only names starting with it.
            delimiter: When set, names with ``delimiter`` after the prefix are rolled up into
                prefixes (``"dir/"``) instead of being returned.

        Returns:
            ``(objects sorted by name, prefixes sorted)``.

        Raises:
            ApiException: 404 when the bucket does not exist.
        """
        items, prefixes, _ = self.list_objects_page(bucket, prefix=prefix, delimiter=delimiter)
        return items, prefixes

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
        """List one page of objects, the way ``objects.list`` does.

        ``max_results`` counts objects and prefixes together.

        Returns:
            ``(objects, prefixes, next_page_token or None)``.

        Raises:
            ApiException: 404 for a missing bucket, 400 for a bad page token or glob.
        """
        start = start_offset or ""
        if page_token:
            start = max(start, decode_page_token(page_token))
        if max_results is not None and max_results < 1:
            raise invalid_argument("Invalid maxResults: must be at least 1.")
        glob = glob_to_regex(match_glob) if match_glob else None
        with self._lock:
            names = sorted(n for n in self._bucket(bucket).objects if n.startswith(prefix))
            objects = self._buckets[bucket].objects
            items: list[ObjectMeta] = []
            prefixes: list[str] = []
            seen_prefixes: set[str] = set()
            for name in names:
                if name < start or (end_offset and name >= end_offset):
                    continue
                if glob is not None and not glob.fullmatch(name):
                    continue
                rolled: str | None = None
                if delimiter:
                    cut = name.find(delimiter, len(prefix))
                    if cut >= 0:
                        rolled = name[: cut + len(delimiter)]
                if rolled is not None and rolled in seen_prefixes:
                    continue
                if max_results is not None and len(items) + len(prefixes) >= max_results:
                    return items, prefixes, encode_page_token(name)
                if rolled is not None:
                    seen_prefixes.add(rolled)
                    prefixes.append(rolled)
                    if include_trailing_delimiter and rolled == name:
                        items.append(replace(objects[name]))
                else:
                    items.append(replace(objects[name], metadata=dict(objects[name].metadata)))
            return items, prefixes, None

    def update_object(
        self,
        bucket: str,
        name: str,
        *,
        if_generation_match: int | None = None,
        if_metageneration_match: int | None = None,
        **fields: Any,
    ) -> ObjectMeta:
        """Change metadata fields (:data:`WRITABLE_OBJECT_FIELDS`) of the live generation.

        Raises:
            ApiException: 404 when missing, 412 on failed preconditions, 400 on bad fields.
        """
        unknown = set(fields) - set(WRITABLE_OBJECT_FIELDS)
        if unknown:
            raise invalid_argument(f"Unknown object field(s): {', '.join(sorted(unknown))}.")
        with self._lock:
            target = self._bucket(bucket)
            meta = target.objects.get(name)
            if meta is None:
                raise not_found(f"No such object: {bucket}/{name}")
            self._check_preconditions(meta, if_generation_match, None, if_metageneration_match)
            updated = replace(meta, metadata=dict(meta.metadata))
            for key, value in fields.items():
                setattr(updated, key, value)
            updated.metageneration += 1
            updated.updated = self.clock()
            target.objects[name] = updated
            if self._root is not None:
                self._save_object_meta(updated)
            return replace(updated, metadata=dict(updated.metadata))

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
        """Copy an object (``copyTo``/``rewriteTo``); ``fields`` override the source metadata.

        Raises:
            ApiException: 404 for a missing source or destination bucket, 412 on a failed
                precondition.
        """
        source = self.get_object_meta(src_bucket, src_name)
        data = self.read_object(src_bucket, src_name)
        values: dict[str, Any] = {key: getattr(source, key) for key in WRITABLE_OBJECT_FIELDS}
        values.update(fields)
        content_type = values.pop("content_type")
        metadata = values.pop("metadata")
        values.pop("storage_class", None)
        return self.write_object(
            dst_bucket,
            dst_name,
            data,
            content_type,
            metadata=metadata,
            if_generation_match=if_generation_match,
            **values,
        )

    def delete_object(
        self,
        bucket: str,
        name: str,
        *,
        if_generation_match: int | None = None,
        if_metageneration_match: int | None = None,
    ) -> None:
        """Delete an object.

        Raises:
            ApiException: 404 when missing, 412 on failed preconditions.
        """
        with self._lock:
            target = self._bucket(bucket)
            meta = target.objects.get(name)
            if meta is None:
                raise not_found(f"No such object: {bucket}/{name}")
            self._check_preconditions(meta, if_generation_match, None, if_metageneration_match)
            del target.objects[name]
            self._data.pop((bucket, name), None)
            if self._root is not None:
                key = _object_key(name)
                with contextlib.suppress(OSError):
                    (self._root / bucket / "objects" / f"{key}.json").unlink()
                with contextlib.suppress(OSError):
                    self._data_path(bucket, name, meta.generation).unlink()

    # -- IAM ------------------------------------------------------------------------------

    def get_iam_policy(self, bucket: str) -> dict[str, Any]:
        """Return the bucket's IAM policy as ``storage#policy`` JSON (``version``, ``etag``,
        ``bindings``, ``resourceId``).

        Raises:
            ApiException: 404 when the bucket does not exist.
        """
        with self._lock:
            return self._policy_json(self._bucket(bucket))

    def set_iam_policy(self, bucket: str, policy: dict[str, Any]) -> dict[str, Any]:
        """Replace the bucket's IAM policy.

        Args:
            bucket: Bucket name.
            policy: ``{"bindings": [{"role", "members", "condition"?}], "etag"?, "version"?}``.
                When ``etag`` is given it must equal the current one (read-modify-write).

        Returns:
            The stored policy with its new etag.

        Raises:
            ApiException: 404 for a missing bucket, 400 for a malformed policy, 412 when the
                etag is stale.
        """
        bindings, version = _validate_policy(policy)
        with self._lock:
            target = self._bucket(bucket)
            etag = policy.get("etag")
            if etag is not None and etag != _policy_etag(target.policy_counter):
                raise precondition_failed(
                    "The etag of the policy does not match the current policy: "
                    "read it again, apply your change and retry."
                )
            now = self.clock()
            granted = {
                f"{b['role']}\n{m}" for b in bindings if "condition" not in b for m in b["members"]
            }
            target.grant_times = {key: target.grant_times.get(key, now) for key in sorted(granted)}
            target.policy = {"version": version, "bindings": bindings}
            target.policy_counter += 1
            self._save_bucket(target)
            return self._policy_json(target)

    def role_granted(self, bucket: str, member: str, role: str, now: float | None = None) -> bool:
        """Whether ``member`` holds ``role`` (or a role implying it) on ``bucket``, counting a
        grant only ``propagation_delay_s`` seconds after it was first made.

        Conditional bindings are ignored. ``allUsers`` / ``allAuthenticatedUsers`` grant to
        everyone.

        Args:
            bucket: Bucket name.
            member: Full IAM member, e.g.
                ``"serviceAccount:service-123@gcp-sa-healthcare.iam.gserviceaccount.com"``.
            role: Role needed, e.g. ``"roles/storage.objectViewer"``; stronger roles count
                (see :data:`ROLE_IMPLIED_BY`).
            now: Current POSIX time; the backend clock when None.

        Returns:
            False also when the bucket does not exist.
        """
        moment = self.clock() if now is None else now
        roles = {role} | set(ROLE_IMPLIED_BY.get(role, ()))
        with self._lock:
            target = self._buckets.get(bucket)
            if target is None:
                return False
            for candidate in roles:
                for who in (member, "allUsers", "allAuthenticatedUsers"):
                    since = target.grant_times.get(f"{candidate}\n{who}")
                    if since is not None and moment - since >= self.propagation_delay_s:
                        return True
        return False

    # -- whole state ----------------------------------------------------------------------

    def reset(self) -> None:
        """Delete every bucket and object (on disk too)."""
        with self._lock:
            self._buckets.clear()
            self._data.clear()
            if self._root is not None:
                for child in self._root.iterdir():
                    if child.is_dir():
                        shutil.rmtree(child, ignore_errors=True)

    # -- internals ------------------------------------------------------------------------

    def _bucket(self, name: str) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            raise not_found("The specified bucket does not exist.")
        return bucket

    def _next_generation(self) -> int:
        generation = max(int(self.clock() * 1_000_000), self._last_generation + 1)
        self._last_generation = generation
        return generation

    @staticmethod
    def _check_preconditions(
        live: ObjectMeta | None,
        if_generation_match: int | None,
        if_generation_not_match: int | None,
        if_metageneration_match: int | None,
    ) -> None:
        current = live.generation if live is not None else 0
        failed = (
            (if_generation_match is not None and if_generation_match != current)
            or (if_generation_not_match is not None and if_generation_not_match == current)
            or (
                if_metageneration_match is not None
                and (live is None or live.metageneration != if_metageneration_match)
            )
        )
        if failed:
            raise precondition_failed(
                "At least one of the pre-conditions you specified did not hold."
            )

    def _policy_json(self, bucket: _Bucket) -> dict[str, Any]:
        return {
            "kind": "storage#policy",
            "resourceId": f"projects/_/buckets/{bucket.meta.name}",
            "version": bucket.policy["version"],
            "etag": _policy_etag(bucket.policy_counter),
            "bindings": json.loads(json.dumps(bucket.policy["bindings"])),
        }

    def _data_path(self, bucket: str, name: str, generation: int) -> Path:
        assert self._root is not None
        return self._root / bucket / "objects" / f"{_object_key(name)}-{generation}.bin"

    def _save_bucket(self, bucket: _Bucket) -> None:
        if self._root is None:
            return
        path = self._root / bucket.meta.name / "bucket.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(bucket.to_json()).encode("utf-8"))

    def _save_object_meta(self, meta: ObjectMeta) -> None:
        assert self._root is not None
        path = self._root / meta.bucket / "objects" / f"{_object_key(meta.name)}.json"
        _write_atomic(path, json.dumps(asdict(meta)).encode("utf-8"))

    def _load(self) -> None:
        assert self._root is not None
        for bucket_dir in sorted(self._root.iterdir()):
            bucket_file = bucket_dir / "bucket.json"
            if not bucket_file.is_file():
                continue
            try:
                bucket = _Bucket.from_json(json.loads(bucket_file.read_bytes()))
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
                if not self._data_path(meta.bucket, meta.name, meta.generation).is_file():
                    continue
                bucket.objects[meta.name] = meta
                self._last_generation = max(self._last_generation, meta.generation)
            for stray in objects_dir.glob(".tmp-*"):
                with contextlib.suppress(OSError):
                    stray.unlink()


def _validate_policy(policy: object) -> tuple[list[dict[str, Any]], int]:
    if not isinstance(policy, dict):
        raise invalid_argument("Invalid policy: expected an object.")
    allowed = {"bindings", "etag", "version", "kind", "resourceId", "auditConfigs"}
    unknown = sorted(set(policy) - allowed)
    if unknown:
        raise invalid_argument(f"Invalid policy: unknown field(s) {', '.join(unknown)}.")
    version = policy.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version not in (0, 1, 3):
        raise invalid_argument("Invalid policy version: expected 1 or 3.")
    etag = policy.get("etag")
    if etag is not None and not isinstance(etag, str):
        raise invalid_argument("Invalid policy etag: expected a string.")
    raw_bindings = policy.get("bindings", [])
    if not isinstance(raw_bindings, list):
        raise invalid_argument("Invalid policy bindings: expected a list.")
    bindings: list[dict[str, Any]] = []
    for index, binding in enumerate(raw_bindings):
        where = f"bindings[{index}]"
        if not isinstance(binding, dict):
            raise invalid_argument(f"Invalid {where}: expected an object.")
        unknown = sorted(set(binding) - {"role", "members", "condition"})
        if unknown:
            raise invalid_argument(f"Invalid {where}: unknown field(s) {', '.join(unknown)}.")
        role = binding.get("role")
        if not isinstance(role, str) or not role.startswith(
            ("roles/", "projects/", "organizations/")
        ):
            raise invalid_argument(f"Invalid {where}.role: {role!r}; expected 'roles/...'.")
        members = binding.get("members", [])
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise invalid_argument(f"Invalid {where}.members: expected a list of strings.")
        for member in members:
            if member not in _MEMBER_LITERALS and not (
                member.startswith(_MEMBER_PREFIXES) and len(member.split(":", 1)[-1]) > 0
            ):
                raise invalid_argument(
                    f"Invalid {where}.members: {member!r}; expected e.g. 'user:EMAIL', "
                    "'serviceAccount:EMAIL', 'group:EMAIL', 'domain:DOMAIN' or 'allUsers'."
                )
        condition = binding.get("condition")
        if condition is not None:
            if not isinstance(condition, dict):
                raise invalid_argument(f"Invalid {where}.condition: expected an object.")
            if version < 3:
                raise invalid_argument("Policies with conditions must have version 3.")
        if not members:
            continue
        clean: dict[str, Any] = {"role": role, "members": _dedupe(members)}
        if condition is not None:
            clean["condition"] = condition
        bindings.append(clean)
    return bindings, max(int(version), 1)


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


__all__ = [
    "ROLE_IMPLIED_BY",
    "WRITABLE_OBJECT_FIELDS",
    "BucketMeta",
    "ObjectMeta",
    "StorageBackend",
    "crc32c_base64",
    "decode_page_token",
    "encode_page_token",
    "fake_project_number",
    "glob_to_regex",
    "md5_base64",
    "rfc3339",
    "validate_bucket_name",
    "validate_object_name",
]
