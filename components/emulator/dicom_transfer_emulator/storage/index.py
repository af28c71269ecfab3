"""The shared core of both Cloud Storage backends: the metadata index, locking, and Cloud
Storage's rules (:mod:`.storage.model`) applied once. :class:`IndexedStorage` implements the
:class:`~.storage.port.Storage` protocol except where state lives, which its subclasses
(:mod:`.storage.backends`) decide through the hooks at the end of the class.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dicom_transfer_emulator.iam.policy import (
    PolicyError,
    policy_etag,
    stale_etag,
    validate_policy,
)
from dicom_transfer_emulator.storage.errors import (
    BucketExists,
    BucketNotEmpty,
    BucketNotFound,
    InvalidArgument,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from dicom_transfer_emulator.storage.model import (
    ROLE_IMPLIED_BY,
    WRITABLE_OBJECT_FIELDS,
    BucketMeta,
    ObjectMeta,
    check_preconditions,
    crc32c_base64,
    decode_page_token,
    encode_page_token,
    fake_project_number,
    glob_to_regex,
    md5_base64,
    validate_bucket_name,
    validate_object_name,
)


@dataclass
class BucketState:
    """A bucket: metadata, IAM policy, grant times and the index of its live objects."""

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
    def from_json(cls, data: dict[str, Any]) -> BucketState:
        return cls(
            meta=BucketMeta(**data["meta"]),
            policy=data["policy"],
            policy_counter=int(data["policyCounter"]),
            grant_times={str(k): float(v) for k, v in data["grantTimes"].items()},
        )


class IndexedStorage:
    """Metadata index, locking and Cloud Storage's rules; subclasses keep the data.

    Args:
        clock: Returns the current POSIX time.
        propagation_delay_s: Seconds before a new IAM grant counts in :meth:`role_granted`.

    Subclasses implement the ``_`` hooks at the end: where object data lives and whether
    metadata is persisted.
    """

    persistent = False

    def __init__(
        self, *, clock: Callable[[], float] = time.time, propagation_delay_s: float = 0.0
    ) -> None:
        self.clock = clock
        self.propagation_delay_s = propagation_delay_s
        self._lock = threading.RLock()
        self._buckets: dict[str, BucketState] = {}
        self._last_generation = 0

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
        """Create a bucket whose policy grants the project's owners, editors and viewers
        the legacy bucket roles (as Cloud Storage does).

        Raises:
            InvalidArgument: for a name breaking the naming rules.
            BucketExists: when it exists.
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
                raise BucketExists(
                    "Your previous request to create the named bucket succeeded and you "
                    "already own it."
                )
            bucket = BucketState(meta, policy, 1, grant_times)
            self._buckets[name] = bucket
            self._bucket_created(bucket)
            return replace(meta)

    def get_bucket(self, name: str) -> BucketMeta:
        """Return a bucket's metadata.

        Raises:
            BucketNotFound: when it does not exist.
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
            BucketNotFound: when missing.
            PreconditionFailed: when the metageneration does not match.
        """
        with self._lock:
            bucket = self._bucket(name)
            if if_metageneration_match is not None and (
                bucket.meta.metageneration != if_metageneration_match
            ):
                raise PreconditionFailed(
                    "At least one of the pre-conditions you specified did not hold."
                )
            if labels is not None:
                bucket.meta.labels = dict(labels)
            if storage_class is not None:
                bucket.meta.storage_class = storage_class.upper()
            bucket.meta.metageneration += 1
            bucket.meta.updated = self.clock()
            self._bucket_changed(bucket)
            return replace(bucket.meta)

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket.

        Raises:
            BucketNotFound: when missing.
            BucketNotEmpty: when it still holds objects.
        """
        with self._lock:
            bucket = self._bucket(name)
            if bucket.objects:
                raise BucketNotEmpty("The bucket you tried to delete is not empty.")
            del self._buckets[name]
            self._bucket_deleted(name)

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
            BucketNotFound: for a missing bucket.
            InvalidArgument: for a bad name or field.
            PreconditionFailed: when a precondition fails.
        """
        validate_object_name(name)
        unknown = set(fields) - set(WRITABLE_OBJECT_FIELDS)
        if unknown:
            raise InvalidArgument(f"Unknown object field(s): {', '.join(sorted(unknown))}.")
        preconditions: dict[str, Any] = {
            "if_generation_match": if_generation_match,
            "if_generation_not_match": if_generation_not_match,
            "if_metageneration_match": if_metageneration_match,
        }
        md5 = md5_base64(data)
        crc = crc32c_base64(data)
        with self._lock:
            target = self._bucket(bucket)
            check_preconditions(target.objects.get(name), **preconditions)
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
        # Data is staged outside the lock (it can be large); the commit below re-checks the
        # preconditions so concurrent writers still get one consistent winner.
        self._stage_data(meta, data)
        with self._lock:
            try:
                target = self._bucket(bucket)
                live = target.objects.get(name)
                check_preconditions(live, **preconditions)
            except StorageError:
                self._discard_data(meta)
                raise
            target.objects[name] = meta
            self._object_written(meta, data, live)
            return replace(meta, metadata=dict(meta.metadata))

    def read_object(self, bucket: str, name: str, generation: int | None = None) -> bytes:
        """Return an object's content.

        Args:
            bucket: Bucket name.
            name: Object name.
            generation: Required generation (only the live one is kept), or None.

        Raises:
            BucketNotFound: for a missing bucket.
            ObjectNotFound: when the object or generation does not exist.
        """
        for _ in range(5):
            meta = self.get_object_meta(bucket, name, generation)
            data = self._load_data(meta)
            if data is not None:
                return data
            # Overwritten or deleted between the metadata and the data: look again.
        raise ObjectNotFound(bucket, name)

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
        """Return an object's metadata, checking read preconditions.

        Raises:
            BucketNotFound: for a missing bucket.
            ObjectNotFound: when the object or generation does not exist.
            PreconditionFailed: when ``if_generation_match``/``if_metageneration_match``
                fail.
            NotModified: when ``if_generation_not_match`` is the live generation.
        """
        with self._lock:
            _, meta = self._live_object(
                bucket,
                name,
                generation=generation,
                if_generation_match=if_generation_match,
                if_generation_not_match=if_generation_not_match,
                if_metageneration_match=if_metageneration_match,
                reading=True,
            )
            return replace(meta, metadata=dict(meta.metadata))

    def _live_object(
        self, bucket: str, name: str, *, generation: int | None = None, **preconditions: Any
    ) -> tuple[BucketState, ObjectMeta]:
        """The bucket and the live object's metadata, its preconditions checked (with the lock
        held; BucketNotFound, ObjectNotFound, PreconditionFailed, NotModified)."""
        target = self._bucket(bucket)
        meta = target.objects.get(name)
        if meta is None or (generation is not None and meta.generation != generation):
            raise ObjectNotFound(bucket, name)
        check_preconditions(meta, **preconditions)
        return target, meta

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
            BucketNotFound: when the bucket does not exist.
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
            BucketNotFound: for a missing bucket.
            InvalidArgument: for a bad page token, glob or ``max_results``.
        """
        start = start_offset or ""
        if page_token:
            start = max(start, decode_page_token(page_token))
        if max_results is not None and max_results < 1:
            raise InvalidArgument("Invalid maxResults: must be at least 1.")
        glob = glob_to_regex(match_glob) if match_glob else None
        with self._lock:
            objects = self._bucket(bucket).objects
            names = sorted(n for n in objects if n.startswith(prefix))
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
            InvalidArgument: for unknown fields.
            BucketNotFound: for a missing bucket.
            ObjectNotFound: when the object does not exist.
            PreconditionFailed: on failed preconditions.
        """
        unknown = set(fields) - set(WRITABLE_OBJECT_FIELDS)
        if unknown:
            raise InvalidArgument(f"Unknown object field(s): {', '.join(sorted(unknown))}.")
        with self._lock:
            target, meta = self._live_object(
                bucket,
                name,
                if_generation_match=if_generation_match,
                if_metageneration_match=if_metageneration_match,
            )
            updated = replace(meta, metadata=dict(meta.metadata))
            for key, value in fields.items():
                setattr(updated, key, value)
            updated.metageneration += 1
            updated.updated = self.clock()
            target.objects[name] = updated
            self._object_meta_changed(updated)
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
            BucketNotFound: for a missing source or destination bucket.
            ObjectNotFound: for a missing source object.
            PreconditionFailed: on a failed precondition on the destination.
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
            BucketNotFound: for a missing bucket.
            ObjectNotFound: when the object does not exist.
            PreconditionFailed: on failed preconditions.
        """
        with self._lock:
            target, meta = self._live_object(
                bucket,
                name,
                if_generation_match=if_generation_match,
                if_metageneration_match=if_metageneration_match,
            )
            del target.objects[name]
            self._object_deleted(meta)

    # -- IAM ------------------------------------------------------------------------------

    def get_iam_policy(self, bucket: str) -> dict[str, Any]:
        """Return the bucket's IAM policy as ``storage#policy`` JSON (``version``, ``etag``,
        ``bindings``, ``resourceId``).

        Raises:
            BucketNotFound: when the bucket does not exist.
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
            BucketNotFound: for a missing bucket.
            InvalidArgument: for a malformed policy.
            PreconditionFailed: when the etag is stale.
        """
        try:
            bindings, version = validate_policy(policy)
        except PolicyError as exc:
            raise InvalidArgument(str(exc)) from None
        with self._lock:
            target = self._bucket(bucket)
            etag = policy.get("etag")
            if stale_etag(etag, policy_etag(target.policy_counter)):
                raise PreconditionFailed(
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
            self._bucket_changed(target)
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
        """Delete every bucket and object."""
        with self._lock:
            self._buckets.clear()
            self._wipe()

    # -- internals ------------------------------------------------------------------------

    def _bucket(self, name: str) -> BucketState:
        bucket = self._buckets.get(name)
        if bucket is None:
            raise BucketNotFound(name)
        return bucket

    def _next_generation(self) -> int:
        generation = max(int(self.clock() * 1_000_000), self._last_generation + 1)
        self._last_generation = generation
        return generation

    @staticmethod
    def _policy_json(bucket: BucketState) -> dict[str, Any]:
        return {
            "kind": "storage#policy",
            "resourceId": f"projects/_/buckets/{bucket.meta.name}",
            "version": bucket.policy["version"],
            "etag": policy_etag(bucket.policy_counter),
            "bindings": json.loads(json.dumps(bucket.policy["bindings"])),
        }

    # -- where state lives (hooks; those named "_object_*"/"_bucket_*" run under the lock) -

    def _bucket_created(self, bucket: BucketState) -> None:
        raise NotImplementedError

    def _bucket_changed(self, bucket: BucketState) -> None:
        raise NotImplementedError

    def _bucket_deleted(self, name: str) -> None:
        raise NotImplementedError

    def _stage_data(self, meta: ObjectMeta, data: bytes) -> None:
        """Store a new generation's data before it is committed (outside the lock)."""
        raise NotImplementedError

    def _discard_data(self, meta: ObjectMeta) -> None:
        """Forget staged data whose commit failed."""
        raise NotImplementedError

    def _object_written(self, meta: ObjectMeta, data: bytes, replaced: ObjectMeta | None) -> None:
        raise NotImplementedError

    def _object_meta_changed(self, meta: ObjectMeta) -> None:
        raise NotImplementedError

    def _object_deleted(self, meta: ObjectMeta) -> None:
        raise NotImplementedError

    def _load_data(self, meta: ObjectMeta) -> bytes | None:
        """The data of generation ``meta.generation``, None when it is gone."""
        raise NotImplementedError

    def _wipe(self) -> None:
        raise NotImplementedError


__all__ = ["BucketState", "IndexedStorage"]
