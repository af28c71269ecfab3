"""The Cloud Storage JSON API subset, served over a :class:`~.storage.port.Storage`.

Enough for ``google-cloud-storage`` (``STORAGE_EMULATOR_HOST``), googleapiclient's
``storage`` v1 and ``gcloud storage`` (``CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE``):

* buckets: insert, get, list (``project``, ``prefix``, paging), patch/update (labels,
  storageClass), delete; ``getIamPolicy``, ``setIamPolicy`` (etag checked, version 1/3),
  ``testIamPermissions`` (everything allowed: the emulator has no callers' identities);
* objects: upload (``uploadType=media``, ``multipart``, ``resumable`` with chunks and status
  queries) under ``/upload/storage/v1`` and ``/resumable/upload/storage/v1``; get metadata;
  download (``alt=media`` on the JSON path or ``/download/storage/v1``, ``Range`` requests,
  ``x-goog-hash``); list (``prefix``, ``delimiter``, ``maxResults``, ``pageToken``,
  ``startOffset``, ``endOffset``, ``matchGlob``, ``includeTrailingDelimiter``); patch/update
  metadata; delete; ``copyTo``, ``rewriteTo`` (always one round) and ``compose``;
  generation/metageneration preconditions.

Not emulated: ACLs (accepted, not stored), object versioning (only the live generation is
kept), notifications, HMAC keys, signed URLs, the XML API, ``fields`` partial responses
(complete resources are returned).
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from werkzeug.http import parse_content_range_header, parse_range_header

from dicom_transfer_emulator.errors import ApiException, invalid_argument, not_found
from dicom_transfer_emulator.server.http import Request, Response, Router
from dicom_transfer_emulator.server.multipart import (
    MultipartError,
    parse_related,
)
from dicom_transfer_emulator.server.routing import Handler
from dicom_transfer_emulator.storage.errors import (
    BucketExists,
    BucketNotEmpty,
    BucketNotFound,
    InvalidArgument,
    NotModified,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from dicom_transfer_emulator.storage.port import (
    BucketMeta,
    IndexedStorage,
    ObjectMeta,
    crc32c_base64,
    decode_page_token,
    encode_page_token,
    md5_base64,
    rfc3339,
)

_SINGLE_QUOTED_BOUNDARY = re.compile(r"boundary='([^']*)'", re.IGNORECASE)

BUCKET_FIELDS = frozenset(
    [
        "acl",
        "autoclass",
        "billing",
        "cors",
        "customPlacementConfig",
        "defaultEventBasedHold",
        "defaultObjectAcl",
        "encryption",
        "etag",
        "generation",
        "hardDeleteTime",
        "hierarchicalNamespace",
        "iamConfiguration",
        "id",
        "ipFilter",
        "kind",
        "labels",
        "lifecycle",
        "location",
        "locationType",
        "logging",
        "metageneration",
        "name",
        "objectRetention",
        "owner",
        "projectNumber",
        "retentionPolicy",
        "rpo",
        "satisfiesPZI",
        "satisfiesPZS",
        "selfLink",
        "softDeletePolicy",
        "softDeleteTime",
        "storageClass",
        "timeCreated",
        "updated",
        "versioning",
        "website",
    ]
)
OBJECT_FIELDS = frozenset(
    [
        "acl",
        "bucket",
        "cacheControl",
        "componentCount",
        "contentDisposition",
        "contentEncoding",
        "contentLanguage",
        "contentType",
        "contexts",
        "crc32c",
        "customTime",
        "customerEncryption",
        "etag",
        "eventBasedHold",
        "generation",
        "hardDeleteTime",
        "id",
        "kind",
        "kmsKeyName",
        "md5Hash",
        "mediaLink",
        "metadata",
        "metageneration",
        "name",
        "owner",
        "restoreToken",
        "retention",
        "retentionExpirationTime",
        "selfLink",
        "size",
        "softDeleteTime",
        "storageClass",
        "temporaryHold",
        "timeCreated",
        "timeDeleted",
        "timeFinalized",
        "timeStorageClassUpdated",
        "updated",
    ]
)
_STRING_OBJECT_FIELDS = {
    "contentType": "content_type",
    "contentEncoding": "content_encoding",
    "contentDisposition": "content_disposition",
    "contentLanguage": "content_language",
    "cacheControl": "cache_control",
    "storageClass": "storage_class",
}
_STORAGE_CLASSES = frozenset(
    {
        "STANDARD",
        "NEARLINE",
        "COLDLINE",
        "ARCHIVE",
        "MULTI_REGIONAL",
        "REGIONAL",
        "DURABLE_REDUCED_AVAILABILITY",
    }
)
_MAX_LIST_RESULTS = 1000


@dataclass
class _UploadSession:
    bucket: str
    name: str
    fields: dict[str, Any]
    preconditions: dict[str, int]
    expected_size: int | None
    data: bytearray = field(default_factory=bytearray)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _quote_name(name: str) -> str:
    return quote(name, safe="")


def bucket_json(meta: BucketMeta, base_url: str) -> dict[str, Any]:
    """Render a bucket as a ``storage#bucket`` resource."""
    body: dict[str, Any] = {
        "kind": "storage#bucket",
        "selfLink": f"{base_url}/storage/v1/b/{meta.name}",
        "id": meta.name,
        "name": meta.name,
        "projectNumber": meta.project_number,
        "generation": str(int(meta.time_created * 1_000_000)),
        "metageneration": str(meta.metageneration),
        "location": meta.location,
        "storageClass": meta.storage_class,
        "etag": base64.b64encode(f"CA{meta.metageneration}".encode()).decode("ascii"),
        "timeCreated": rfc3339(meta.time_created),
        "updated": rfc3339(meta.updated),
        "locationType": "multi-region" if meta.location in ("US", "EU", "ASIA") else "region",
        "rpo": "DEFAULT",
        "iamConfiguration": {
            "bucketPolicyOnly": {"enabled": True},
            "uniformBucketLevelAccess": {"enabled": True},
            "publicAccessPrevention": "inherited",
        },
    }
    if meta.labels:
        body["labels"] = dict(meta.labels)
    return body


def object_json(meta: ObjectMeta, base_url: str) -> dict[str, Any]:
    """Render an object as a ``storage#object`` resource (``size`` etc. as strings)."""
    quoted = _quote_name(meta.name)
    body: dict[str, Any] = {
        "kind": "storage#object",
        "id": f"{meta.bucket}/{meta.name}/{meta.generation}",
        "selfLink": f"{base_url}/storage/v1/b/{meta.bucket}/o/{quoted}",
        "mediaLink": (
            f"{base_url}/download/storage/v1/b/{meta.bucket}/o/{quoted}"
            f"?generation={meta.generation}&alt=media"
        ),
        "name": meta.name,
        "bucket": meta.bucket,
        "generation": str(meta.generation),
        "metageneration": str(meta.metageneration),
        "contentType": meta.content_type,
        "storageClass": meta.storage_class,
        "size": str(meta.size),
        "md5Hash": meta.md5_hash,
        "crc32c": meta.crc32c,
        "etag": meta.etag,
        "timeCreated": rfc3339(meta.time_created),
        "updated": rfc3339(meta.updated),
        "timeStorageClassUpdated": rfc3339(meta.time_created),
        "timeFinalized": rfc3339(meta.time_created),
    }
    if meta.metadata:
        body["metadata"] = dict(meta.metadata)
    for api_name, attr in _STRING_OBJECT_FIELDS.items():
        value = getattr(meta, attr)
        if value is not None and api_name not in body:
            body[api_name] = value
    return body


def _object_fields(resource: dict[str, Any], *, where: str = "object") -> dict[str, Any]:
    """Validate an object resource from a request body; return backend keyword fields."""
    unknown = sorted(set(resource) - OBJECT_FIELDS)
    if unknown:
        raise invalid_argument(
            f"Invalid JSON payload received. Unknown name {unknown[0]!r} in {where}."
        )
    fields: dict[str, Any] = {}
    for api_name, attr in _STRING_OBJECT_FIELDS.items():
        if api_name in resource and resource[api_name] is not None:
            value = resource[api_name]
            if not isinstance(value, str):
                raise invalid_argument(f"Invalid value for {api_name}: expected a string.")
            if api_name == "storageClass" and value.upper() not in _STORAGE_CLASSES:
                raise invalid_argument(f"Invalid storageClass {value!r}.")
            fields[attr] = value.upper() if api_name == "storageClass" else value
    if "metadata" in resource and resource["metadata"] is not None:
        metadata = resource["metadata"]
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and (isinstance(v, str) or v is None) for k, v in metadata.items()
        ):
            raise invalid_argument("Invalid value for metadata: expected a map of strings.")
        fields["metadata"] = {k: v for k, v in metadata.items() if v is not None}
    for name in ("name", "bucket", "md5Hash", "crc32c"):
        if name in resource and resource[name] is not None and not isinstance(resource[name], str):
            raise invalid_argument(f"Invalid value for {name}: expected a string.")
    return fields


def _preconditions(request: Request) -> dict[str, int]:
    names = {
        "ifGenerationMatch": "if_generation_match",
        "ifGenerationNotMatch": "if_generation_not_match",
        "ifMetagenerationMatch": "if_metageneration_match",
    }
    values: dict[str, int] = {}
    for query_name, kw in names.items():
        value = request.int_arg(query_name)
        if value is not None:
            values[kw] = value
    return values


def _parse_multipart(request: Request) -> tuple[dict[str, Any], bytes, str | None]:
    """Split a ``multipart/related`` upload into (metadata, media, media content type).

    Parsed by :func:`.server.multipart.parse_related` (the standard library's MIME parser):
    werkzeug's multipart decoder reads ``multipart/form-data`` only (it requires a
    ``Content-Disposition`` on every part, which upload parts do not have).
    """
    content_type = request.header("content-type", "") or ""
    if not content_type.lower().startswith("multipart/"):
        raise invalid_argument(
            "Multipart upload needs Content-Type multipart/related with a boundary, "
            f"got {content_type!r}."
        )
    # gcloud (apitools) single-quotes the boundary (boundary='==x=='), which is no RFC 9110
    # quoted-string: read it as one before any media-type parser sees it.
    content_type = _SINGLE_QUOTED_BOUNDARY.sub(r'boundary="\1"', content_type)
    try:
        parts = parse_related(content_type, request.body)
    except MultipartError as exc:
        raise invalid_argument(f"Malformed multipart body: {exc}") from None
    if len(parts) != 2:
        raise invalid_argument(
            f"Malformed multipart body: expected 2 parts (metadata, media), got {len(parts)}."
        )
    (_, metadata_bytes), (media_type, media) = parts
    metadata = Request("POST", "", {}, {}, metadata_bytes).json()
    return metadata, media, media_type.to_header()


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The half-open byte range ``[start, stop)`` a ``Range`` header asks for, or None
    (serve the whole object) when it is not one satisfiable-or-not ``bytes`` range.

    Parsed by :func:`werkzeug.http.parse_range_header`. A suffix longer than the object
    means the whole object (RFC 9110 §14.1.2); a start at or past the end is a 416.

    Raises:
        ApiException: 416 with ``Content-Range: bytes */SIZE`` when the start is past the end.
    """
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None
    start, stop = parsed.ranges[0]
    if start < 0:
        return max(size + start, 0), size
    if start >= size:
        raise ApiException(
            416,
            "Request range not satisfiable",
            "OUT_OF_RANGE",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, size if stop is None else min(stop, size)


class StorageApi:
    """Route handlers of the Cloud Storage JSON API, bound to one backend.

    Args:
        storage: The shared backend.
    """

    def __init__(self, storage: IndexedStorage) -> None:
        self.storage = storage
        self._uploads: dict[str, _UploadSession] = {}
        self._uploads_lock = threading.Lock()

    def reset(self) -> None:
        """Forget pending resumable uploads."""
        with self._uploads_lock:
            self._uploads.clear()

    def register_routes(self, router: Router) -> None:
        """Add every Cloud Storage route to ``router``, named by discovery method id."""
        b, o = "/storage/v1/b/<bucket>", "/o/<object:object>"
        routes: list[tuple[str, str, Handler, str]] = [
            ("GET", "/storage/v1/b", self.list_buckets, "buckets.list"),
            ("POST", "/storage/v1/b", self.insert_bucket, "buckets.insert"),
            ("GET", f"{b}/iam", self.get_iam_policy, "buckets.getIamPolicy"),
            ("PUT", f"{b}/iam", self.set_iam_policy, "buckets.setIamPolicy"),
            (
                "GET",
                f"{b}/iam/testPermissions",
                self.test_iam_permissions,
                "buckets.testIamPermissions",
            ),
            ("GET", b, self.get_bucket, "buckets.get"),
            ("PATCH", b, self.patch_bucket, "buckets.patch"),
            ("PUT", b, self.patch_bucket, "buckets.update"),
            ("DELETE", b, self.delete_bucket, "buckets.delete"),
            ("GET", f"{b}/o", self.list_objects, "objects.list"),
            ("POST", f"{b}/o", self.upload, "objects.insert"),
            (
                "POST",
                f"{b}{o}/copyTo/b/<dst_bucket>/o/<object:dst_object>",
                self.copy_object,
                "objects.copy",
            ),
            (
                "POST",
                f"{b}{o}/rewriteTo/b/<dst_bucket>/o/<object:dst_object>",
                self.rewrite_object,
                "objects.rewrite",
            ),
            ("POST", f"{b}{o}/compose", self.compose, "objects.compose"),
            ("GET", f"{b}{o}", self.get_object, "objects.get"),
            ("PATCH", f"{b}{o}", self.patch_object, "objects.patch"),
            ("PUT", f"{b}{o}", self.patch_object, "objects.update"),
            ("DELETE", f"{b}{o}", self.delete_object, "objects.delete"),
            # Media download and the upload protocols are the same methods on other paths.
            ("GET", f"/download{b}{o}", self.download, "objects.get"),
        ]
        for prefix in ("/upload", "/resumable/upload"):
            routes += [
                ("POST", f"{prefix}{b}/o", self.upload, "objects.insert"),
                ("PUT", f"{prefix}{b}/o", self.upload, "objects.insert"),
                ("DELETE", f"{prefix}{b}/o", self.cancel_upload, "objects.insert"),
            ]
        for method, rule, handler, name in routes:
            router.add(method, rule, _storage_errors(handler), api_method=f"storage.{name}")

    # -- buckets --------------------------------------------------------------------------

    def list_buckets(self, request: Request) -> Response:
        """``buckets.list``: ``project`` required; ``prefix``, ``maxResults``, ``pageToken``."""
        project = request.arg("project")
        if not project:
            raise invalid_argument("Required parameter: project")
        buckets = self.storage.list_buckets(project, request.arg("prefix") or "")
        start = request.arg("pageToken") or ""
        if start:
            start = decode_page_token(start)
        limit = request.int_arg("maxResults") or _MAX_LIST_RESULTS
        if limit < 1:
            raise invalid_argument("Invalid maxResults: must be at least 1.")
        remaining = [b for b in buckets if b.name >= start]
        page = remaining[:limit]
        body: dict[str, Any] = {
            "kind": "storage#buckets",
            "items": [bucket_json(m, request.base_url) for m in page],
        }
        if len(remaining) > limit:
            body["nextPageToken"] = encode_page_token(remaining[limit].name)
        return Response.json_response(body)

    def insert_bucket(self, request: Request) -> Response:
        """``buckets.insert``: body ``{"name", "location"?, "storageClass"?, "labels"?}``."""
        project = request.arg("project")
        if not project:
            raise invalid_argument("Required parameter: project")
        body = request.json()
        unknown = sorted(set(body) - BUCKET_FIELDS)
        if unknown:
            raise invalid_argument(f"Invalid JSON payload received. Unknown name {unknown[0]!r}.")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_argument("Required field: name (a string).")
        location = body.get("location") or "US"
        storage_class = body.get("storageClass") or "STANDARD"
        labels = _labels(body.get("labels"))
        if not isinstance(location, str) or not isinstance(storage_class, str):
            raise invalid_argument("location and storageClass must be strings.")
        if storage_class.upper() not in _STORAGE_CLASSES:
            raise invalid_argument(f"Invalid storageClass {storage_class!r}.")
        meta = self.storage.create_bucket(
            name, project, location=location, storage_class=storage_class, labels=labels
        )
        return Response.json_response(bucket_json(meta, request.base_url))

    def get_bucket(self, request: Request) -> Response:
        """``buckets.get``."""
        meta = self.storage.get_bucket(request.params["bucket"])
        return Response.json_response(bucket_json(meta, request.base_url))

    def patch_bucket(self, request: Request) -> Response:
        """``buckets.patch`` / ``buckets.update``: labels and storageClass are kept."""
        body = request.json()
        unknown = sorted(set(body) - BUCKET_FIELDS)
        if unknown:
            raise invalid_argument(f"Invalid JSON payload received. Unknown name {unknown[0]!r}.")
        storage_class = body.get("storageClass")
        if storage_class is not None and (
            not isinstance(storage_class, str) or storage_class.upper() not in _STORAGE_CLASSES
        ):
            raise invalid_argument(f"Invalid storageClass {storage_class!r}.")
        labels = None
        if "labels" in body:
            current = self.storage.get_bucket(request.params["bucket"]).labels
            patch = body["labels"]
            if patch is not None and not isinstance(patch, dict):
                raise invalid_argument("Invalid value for labels: expected a map of strings.")
            merged = dict(current) if request.method == "PATCH" else {}
            for key, value in (patch or {}).items():
                if value is None:
                    merged.pop(key, None)
                elif isinstance(value, str):
                    merged[key] = value
                else:
                    raise invalid_argument("Invalid value for labels: expected a map of strings.")
            labels = merged
        meta = self.storage.update_bucket(
            request.params["bucket"],
            labels=labels,
            storage_class=storage_class,
            if_metageneration_match=request.int_arg("ifMetagenerationMatch"),
        )
        return Response.json_response(bucket_json(meta, request.base_url))

    def delete_bucket(self, request: Request) -> Response:
        """``buckets.delete`` (409 unless empty)."""
        self.storage.delete_bucket(request.params["bucket"])
        return Response.empty()

    def get_iam_policy(self, request: Request) -> Response:
        """``buckets.getIamPolicy``."""
        version = request.int_arg("optionsRequestedPolicyVersion")
        if version is not None and version not in (1, 3):
            raise invalid_argument("optionsRequestedPolicyVersion must be 1 or 3.")
        return Response.json_response(self.storage.get_iam_policy(request.params["bucket"]))

    def set_iam_policy(self, request: Request) -> Response:
        """``buckets.setIamPolicy`` (412 on a stale etag)."""
        policy = self.storage.set_iam_policy(request.params["bucket"], request.json())
        return Response.json_response(policy)

    def test_iam_permissions(self, request: Request) -> Response:
        """``buckets.testIamPermissions``: the caller is anonymous, everything is allowed."""
        self.storage.get_bucket(request.params["bucket"])
        permissions = request.query.get("permissions", [])
        return Response.json_response(
            {"kind": "storage#testIamPermissionsResponse", "permissions": permissions}
        )

    # -- objects --------------------------------------------------------------------------

    def list_objects(self, request: Request) -> Response:
        """``objects.list``."""
        bucket = request.params["bucket"]
        max_results = request.int_arg("maxResults")
        if max_results is not None:
            if max_results < 1:
                raise invalid_argument("Invalid maxResults: must be at least 1.")
            max_results = min(max_results, _MAX_LIST_RESULTS)
        else:
            max_results = _MAX_LIST_RESULTS
        items, prefixes, token = self.storage.list_objects_page(
            bucket,
            prefix=request.arg("prefix") or "",
            delimiter=request.arg("delimiter") or None,
            max_results=max_results,
            page_token=request.arg("pageToken") or None,
            start_offset=request.arg("startOffset") or None,
            end_offset=request.arg("endOffset") or None,
            match_glob=request.arg("matchGlob") or None,
            include_trailing_delimiter=request.arg("includeTrailingDelimiter") == "true",
        )
        body: dict[str, Any] = {"kind": "storage#objects"}
        if items:
            body["items"] = [object_json(m, request.base_url) for m in items]
        if prefixes:
            body["prefixes"] = prefixes
        if token:
            body["nextPageToken"] = token
        return Response.json_response(body)

    def get_object(self, request: Request) -> Response:
        """``objects.get`` (metadata, or the data with ``alt=media``)."""
        if request.arg("alt") == "media":
            return self.download(request)
        meta = self._object_meta(request)
        return Response.json_response(object_json(meta, request.base_url))

    def download(self, request: Request) -> Response:
        """Download the data of an object (``alt=media``), honouring ``Range``."""
        meta = self._object_meta(request)
        data = self.storage.read_object(meta.bucket, meta.name, meta.generation)
        headers = {
            "x-goog-generation": str(meta.generation),
            "x-goog-metageneration": str(meta.metageneration),
            "x-goog-hash": f"crc32c={meta.crc32c},md5={meta.md5_hash}",
            "x-goog-stored-content-length": str(meta.size),
            "x-goog-stored-content-encoding": meta.content_encoding or "identity",
            "x-goog-storage-class": meta.storage_class,
            "ETag": f'"{meta.etag}"',
            "Accept-Ranges": "bytes",
        }
        if meta.content_disposition:
            headers["Content-Disposition"] = meta.content_disposition
        if meta.cache_control:
            headers["Cache-Control"] = meta.cache_control
        if meta.content_encoding:
            headers["Content-Encoding"] = meta.content_encoding
        status = 200
        range_header = request.header("range")
        if range_header and data:
            bounds = _byte_range(range_header, len(data))
            if bounds is not None:
                start, stop = bounds
                headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
                status = 206
                data = data[start:stop]
        return Response(status=status, body=data, headers=headers, content_type=meta.content_type)

    def patch_object(self, request: Request) -> Response:
        """``objects.patch`` / ``objects.update`` of metadata fields."""
        fields = _object_fields(request.json())
        if request.method == "PUT":
            fields.setdefault("metadata", {})
        elif "metadata" in fields:
            current = self.storage.get_object_meta(
                request.params["bucket"], request.params["object"]
            )
            merged = dict(current.metadata)
            raw = request.json().get("metadata") or {}
            for key, value in raw.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            fields["metadata"] = merged
        meta = self.storage.update_object(
            request.params["bucket"],
            request.params["object"],
            if_generation_match=request.int_arg("ifGenerationMatch"),
            if_metageneration_match=request.int_arg("ifMetagenerationMatch"),
            **fields,
        )
        return Response.json_response(object_json(meta, request.base_url))

    def delete_object(self, request: Request) -> Response:
        """``objects.delete``."""
        self.storage.delete_object(
            request.params["bucket"],
            request.params["object"],
            if_generation_match=request.int_arg("ifGenerationMatch"),
            if_metageneration_match=request.int_arg("ifMetagenerationMatch"),
        )
        return Response.empty()

    def copy_object(self, request: Request) -> Response:
        """``objects.copy``."""
        return Response.json_response(object_json(self._copy(request), request.base_url))

    def rewrite_object(self, request: Request) -> Response:
        """``objects.rewrite`` (finishes in one call)."""
        meta = self._copy(request)
        return Response.json_response(
            {
                "kind": "storage#rewriteResponse",
                "totalBytesRewritten": str(meta.size),
                "objectSize": str(meta.size),
                "done": True,
                "resource": object_json(meta, request.base_url),
            }
        )

    def _copy(self, request: Request) -> ObjectMeta:
        fields = _object_fields(request.json())
        return self.storage.copy_object(
            request.params["bucket"],
            request.params["object"],
            request.params["dst_bucket"],
            request.params["dst_object"],
            if_generation_match=request.int_arg("ifGenerationMatch"),
            **fields,
        )

    def compose(self, request: Request) -> Response:
        """``objects.compose``: concatenate ``sourceObjects`` into the destination."""
        body = request.json()
        unknown = sorted(set(body) - {"kind", "destination", "sourceObjects", "kmsKeyName"})
        if unknown:
            raise invalid_argument(f"Invalid JSON payload received. Unknown name {unknown[0]!r}.")
        sources = body.get("sourceObjects")
        if not isinstance(sources, list) or not 1 <= len(sources) <= 32:
            raise invalid_argument("sourceObjects: expected a list of 1 to 32 objects.")
        bucket = request.params["bucket"]
        chunks: list[bytes] = []
        for source in sources:
            if not isinstance(source, dict) or not isinstance(source.get("name"), str):
                raise invalid_argument("sourceObjects[].name: expected a string.")
            chunks.append(self.storage.read_object(bucket, source["name"]))
        destination = body.get("destination") or {}
        if not isinstance(destination, dict):
            raise invalid_argument("destination: expected an object.")
        fields = _object_fields(destination, where="destination")
        meta = self.storage.write_object(
            bucket,
            request.params["object"],
            b"".join(chunks),
            fields.pop("content_type", None),
            metadata=fields.pop("metadata", None),
            if_generation_match=request.int_arg("ifGenerationMatch"),
            **{k: v for k, v in fields.items() if k != "storage_class"},
        )
        return Response.json_response(object_json(meta, request.base_url))

    # -- uploads --------------------------------------------------------------------------

    def upload(self, request: Request) -> Response:
        """Upload entry point: ``uploadType`` media, multipart or resumable, and chunks of a
        resumable session (``upload_id``)."""
        upload_id = request.arg("upload_id")
        if upload_id is not None:
            return self._resumable_chunk(request, upload_id)
        upload_type = request.arg("uploadType")
        if upload_type == "media":
            return self._upload_media(request)
        if upload_type == "multipart":
            return self._upload_multipart(request)
        if upload_type == "resumable":
            return self._start_resumable(request)
        raise invalid_argument(
            f"Invalid uploadType {upload_type!r}: expected media, multipart or resumable."
        )

    def cancel_upload(self, request: Request) -> Response:
        """Cancel a resumable session (``DELETE …?upload_id=``): answers 499."""
        upload_id = request.arg("upload_id") or ""
        with self._uploads_lock:
            session = self._uploads.pop(upload_id, None)
        if session is None:
            raise not_found("No such upload session.")
        raise ApiException(499, "Upload cancelled.", "CANCELLED", reason="cancelled")

    def _upload_media(self, request: Request) -> Response:
        bucket = request.params["bucket"]
        name = request.arg("name")
        if not name:
            raise invalid_argument("Required parameter: name")
        self.storage.get_bucket(bucket)
        fields = {"content_type": request.header("content-type") or None}
        meta = self._write(bucket, name, request.body, fields, _preconditions(request))
        return Response.json_response(object_json(meta, request.base_url))

    def _upload_multipart(self, request: Request) -> Response:
        bucket = request.params["bucket"]
        self.storage.get_bucket(bucket)
        resource, data, media_type = _parse_multipart(request)
        fields = _object_fields(resource)
        name = resource.get("name") or request.arg("name")
        if not name:
            raise invalid_argument("Required field: name")
        _check_hashes(resource, data)
        fields.setdefault("content_type", media_type)
        meta = self._write(bucket, name, data, fields, _preconditions(request))
        return Response.json_response(object_json(meta, request.base_url))

    def _start_resumable(self, request: Request) -> Response:
        bucket = request.params["bucket"]
        self.storage.get_bucket(bucket)
        resource = request.json()
        fields = _object_fields(resource)
        name = resource.get("name") or request.arg("name")
        if not name:
            raise invalid_argument("Required field: name")
        fields.setdefault("content_type", request.header("x-upload-content-type") or None)
        expected: int | None = None
        length = request.header("x-upload-content-length")
        if length:
            if not length.strip().isdigit():
                raise invalid_argument("Invalid X-Upload-Content-Length.")
            expected = int(length)
        if resource.get("md5Hash") or resource.get("crc32c"):
            fields["_hashes"] = {k: resource[k] for k in ("md5Hash", "crc32c") if resource.get(k)}
        upload_id = secrets.token_urlsafe(24)
        session = _UploadSession(bucket, name, fields, _preconditions(request), expected)
        with self._uploads_lock:
            self._uploads[upload_id] = session
        path = request.path
        location = f"{request.base_url}{path}?uploadType=resumable&upload_id={upload_id}"
        return Response.json_response(
            {}, headers={"Location": location, "X-GUploader-UploadID": upload_id}
        )

    def _resumable_chunk(self, request: Request, upload_id: str) -> Response:
        with self._uploads_lock:
            session = self._uploads.get(upload_id)
        if session is None:
            raise not_found("No such upload session (it finished, was cancelled or never existed).")
        with session.lock:
            start, total = self._parse_content_range(request, session)
            data = request.body
            if start is not None:
                have = len(session.data)
                if start > have:
                    raise invalid_argument(
                        f"Chunk starts at byte {start} but only {have} bytes were received."
                    )
                data = data[have - start :]
            session.data.extend(data)
            if total is not None:
                session.expected_size = total
            if session.expected_size is not None and len(session.data) > session.expected_size:
                raise invalid_argument("Upload is larger than its declared total size.")
            if session.expected_size is None or len(session.data) < session.expected_size:
                headers = {"X-GUploader-UploadID": upload_id}
                if session.data:
                    headers["Range"] = f"bytes=0-{len(session.data) - 1}"
                return Response(status=308, headers=headers, content_type="text/plain")
            fields = dict(session.fields)
            hashes = fields.pop("_hashes", None)
            if hashes:
                _check_hashes(hashes, bytes(session.data))
            meta = self._write(
                session.bucket, session.name, bytes(session.data), fields, session.preconditions
            )
        with self._uploads_lock:
            self._uploads.pop(upload_id, None)
        return Response.json_response(object_json(meta, request.base_url))

    @staticmethod
    def _parse_content_range(
        request: Request, session: _UploadSession
    ) -> tuple[int | None, int | None]:
        """Return (first byte of this chunk or None, total size or None)."""
        header = request.header("content-range")
        if not header:
            # A single PUT with the whole content.
            return len(session.data), len(session.data) + len(request.body)
        parsed = parse_content_range_header(header.strip())
        valid = parsed is not None and parsed.units == "bytes"
        if parsed is not None and parsed.start is None:
            # "bytes */TOTAL" asks for the status (or finishes an upload); it has no body.
            valid = valid and not request.body
        elif parsed is not None and parsed.start is not None and parsed.stop is not None:
            valid = valid and parsed.stop - parsed.start == len(request.body)
        if not valid or parsed is None:
            raise invalid_argument(
                f"Invalid Content-Range header {header!r}: expected 'bytes FIRST-LAST/TOTAL', "
                "'bytes FIRST-LAST/*' or 'bytes */TOTAL'."
            )
        return parsed.start, parsed.length

    def _write(
        self,
        bucket: str,
        name: str,
        data: bytes,
        fields: dict[str, Any],
        preconditions: dict[str, int],
    ) -> ObjectMeta:
        fields = dict(fields)
        content_type = fields.pop("content_type", None)
        metadata = fields.pop("metadata", None)
        fields.pop("storage_class", None)
        return self.storage.write_object(
            bucket, name, data, content_type, metadata=metadata, **fields, **preconditions
        )

    def _object_meta(self, request: Request) -> ObjectMeta:
        return self.storage.get_object_meta(
            request.params["bucket"],
            request.params["object"],
            request.int_arg("generation"),
            **_preconditions(request),
        )


def http_error(exc: StorageError) -> ApiException:
    """The HTTP error Cloud Storage answers for a backend error (the one place they map).

    Statuses and reasons as the JSON API documents them (HTTP status and error codes):
    400 ``invalid``, 404 ``notFound``, 409 ``conflict``, 412 ``conditionNotMet``,
    304 ``notModified``.
    """
    match exc:
        case InvalidArgument():
            return ApiException(400, exc.message, "INVALID_ARGUMENT")
        case BucketNotFound() | ObjectNotFound():
            return ApiException(404, exc.message, "NOT_FOUND")
        case BucketExists():
            return ApiException(409, exc.message, "ALREADY_EXISTS", reason="conflict")
        case BucketNotEmpty():
            return ApiException(409, exc.message, "FAILED_PRECONDITION", reason="conflict")
        case PreconditionFailed():
            return ApiException(412, exc.message, "FAILED_PRECONDITION", reason="conditionNotMet")
        case NotModified():
            return ApiException(304, exc.message, "FAILED_PRECONDITION", reason="notModified")
    return ApiException(500, f"Unexpected storage error: {exc.message}")


def _storage_errors(handler: Handler) -> Handler:
    def wrapped(request: Request) -> Response:
        try:
            return handler(request)
        except StorageError as exc:
            raise http_error(exc) from None

    return wrapped


def _labels(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise invalid_argument("Invalid value for labels: expected a map of strings.")
    return dict(value)


def _check_hashes(resource: dict[str, Any], data: bytes) -> None:
    md5 = resource.get("md5Hash")
    if md5 and md5 != md5_base64(data):
        raise invalid_argument(
            "Provided MD5 hash does not match the calculated MD5 hash of the data."
        )
    crc = resource.get("crc32c")
    if crc and crc != crc32c_base64(data):
        raise invalid_argument("Provided CRC32C does not match the calculated CRC32C of the data.")


__all__ = ["StorageApi", "bucket_json", "http_error", "object_json"]
