"""Cloud Storage's rules, independent of where state is kept: names, hashes, timestamps,
object and bucket metadata, generation preconditions, IAM policies and role implication,
listing helpers (page tokens, ``matchGlob``).

Sources: Cloud Storage documentation (bucket and object naming, ``matchGlob``, request
preconditions, IAM roles for Cloud Storage); formats as the JSON API returns them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import google_crc32c

from dicom_transfer_emulator.storage.errors import InvalidArgument, NotModified, PreconditionFailed

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


def validate_bucket_name(name: str) -> None:
    """Check a bucket name against Cloud Storage's naming rules.

    Raises:
        InvalidArgument: "Invalid bucket name" naming the rule it breaks.
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
        raise InvalidArgument(f"Invalid bucket name: {name!r}; expected {problem}.")


def validate_object_name(name: str) -> None:
    """Check an object name against Cloud Storage's naming rules.

    Raises:
        InvalidArgument: when it is empty, longer than 1024 bytes, ``.``/``..`` or contains
            carriage returns, line feeds or NUL.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgument("Object name is required.")
    if len(name.encode("utf-8", "surrogatepass")) > 1024:
        raise InvalidArgument("Invalid object name: longer than 1024 bytes.")
    if name in (".", "..") or any(c in name for c in "\r\n\x00"):
        raise InvalidArgument(f"Invalid object name: {name!r}.")
    with contextlib.suppress(UnicodeEncodeError):
        name.encode("utf-8")
        return
    raise InvalidArgument("Invalid object name: not valid UTF-8.")


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


_PAGE_TOKEN = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def encode_page_token(name: str) -> str:
    """Return the opaque page token that resumes a listing at ``name``."""
    return base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii")


def decode_page_token(token: str) -> str:
    """Return the name a page token resumes at.

    Raises:
        InvalidArgument: for a token this emulator did not issue.
    """
    try:
        if not _PAGE_TOKEN.match(token):
            raise ValueError(token)
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raise InvalidArgument("Invalid pageToken.") from None


def fake_project_number(project: str) -> str:
    """Return a stable 12-digit fake project number for ``project``."""
    digest = hashlib.sha256(project.encode("utf-8")).digest()
    return str(100_000_000_000 + int.from_bytes(digest[:8], "big") % 900_000_000_000)


def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Compile a Cloud Storage ``matchGlob`` (``**``, ``*``, ``?``, ``[…]``, ``{a,b}``).

    Raises:
        InvalidArgument: for an unbalanced ``[`` or ``{``.
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
                raise InvalidArgument(f"Invalid matchGlob {glob!r}: unbalanced '['.")
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
        raise InvalidArgument(f"Invalid matchGlob {glob!r}: unbalanced '{{'.")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise InvalidArgument(f"Invalid matchGlob {glob!r}: {exc}") from None


def check_preconditions(
    live: ObjectMeta | None,
    *,
    if_generation_match: int | None = None,
    if_generation_not_match: int | None = None,
    if_metageneration_match: int | None = None,
    reading: bool = False,
) -> None:
    """Check Cloud Storage request preconditions against the live object.

    ``if_generation_match=0`` means "only if no live object exists".

    Args:
        live: The live object, None when there is none.
        if_generation_match: Required live generation.
        if_generation_not_match: Generation the live one must not be.
        if_metageneration_match: Required live metageneration.
        reading: The request reads the object (then a failed ``if_generation_not_match``
            is "not modified" rather than a failure).

    Raises:
        NotModified: when reading and ``if_generation_not_match`` names the live generation.
        PreconditionFailed: when any other precondition does not hold.
    """
    current = live.generation if live is not None else 0
    if reading and if_generation_not_match is not None and if_generation_not_match == current:
        raise NotModified("Not modified.")
    failed = (
        (if_generation_match is not None and if_generation_match != current)
        or (if_generation_not_match is not None and if_generation_not_match == current)
        or (
            if_metageneration_match is not None
            and (live is None or live.metageneration != if_metageneration_match)
        )
    )
    if failed:
        raise PreconditionFailed("At least one of the pre-conditions you specified did not hold.")


__all__ = [
    "ROLE_IMPLIED_BY",
    "WRITABLE_OBJECT_FIELDS",
    "BucketMeta",
    "ObjectMeta",
    "check_preconditions",
    "crc32c_base64",
    "crc32c_value",
    "decode_page_token",
    "encode_page_token",
    "fake_project_number",
    "glob_to_regex",
    "md5_base64",
    "rfc3339",
    "validate_bucket_name",
    "validate_object_name",
]
