"""Cloud Storage names, ``gs://`` URIs and the import source's wildcards.

Rules: bucket and object naming from https://cloud.google.com/storage/docs/buckets#naming and
https://cloud.google.com/storage/docs/objects#naming (only its requirements: characters that
page merely advises against, such as ``#``, ``[``, ``*`` or control characters, are legal
object names and are left to the API); where the wildcards ``*``, ``?`` and ``**`` may stand
from the ``ImportDicomDataRequest.gcsSource.uri`` description in the ``healthcare`` discovery
documents (matching objects against them is the API's job). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from dicom_transfer.specs.problems import Problems

__all__ = [
    "GcsUri",
    "UriKind",
    "check_gcs_uri",
    "gcs_form",
    "parse_gcs_uri",
]

UriKind = Literal["pattern", "object", "prefix"]

_BUCKET_FORM = (
    "a Cloud Storage bucket name: 3-63 characters (up to 222 with dots, 63 per dot-separated "
    "part) from a-z 0-9 - _ ., starting and ending with a letter or digit, not an IP address, "
    "not starting with 'goog' and not containing 'google'"
)
_OBJECT_FORM = (
    "an object path of at most 1024 UTF-8 bytes, without carriage return or line feed, not "
    "'.' or '..' and not starting with '.well-known/acme-challenge/'"
)
_WILDCARD_FORM = (
    "wildcards '*' (any characters within one path segment), '?' (exactly one character) "
    "and '**' (any characters including '/'), where '**' may appear once, only at the end of "
    "the path, optionally followed by an extension such as '**.dcm', with no other wildcard in "
    "the path"
)
_BUCKET_CHARS_RE = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_IPV4_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_GOOGLE_LOOKALIKE_RE = re.compile(r"g[o0][o0]g[l1]e")
_EXTENSION_AFTER_DOUBLE_STAR_RE = re.compile(r"(?:\.[^/*?]+)?")


@dataclass(frozen=True)
class GcsUri:
    """A parsed ``gs://bucket/path`` URI (``path`` has no leading slash, may be empty)."""

    bucket: str
    path: str

    @property
    def uri(self) -> str:
        """The URI as a string."""
        return f"gs://{self.bucket}/{self.path}" if self.path else f"gs://{self.bucket}"


def _bucket_problem(bucket: str) -> bool:
    if not 3 <= len(bucket) <= 222 or not _BUCKET_CHARS_RE.fullmatch(bucket):
        return True
    parts = bucket.split(".")
    if len(parts) == 1 and len(bucket) > 63:
        return True
    if any(not part or len(part) > 63 for part in parts):
        return True
    if _IPV4_RE.fullmatch(bucket) or bucket.startswith("goog"):
        return True
    return bool(_GOOGLE_LOOKALIKE_RE.search(bucket))


def _object_path_problem(path: str) -> bool:
    if len(path.encode("utf-8")) > 1024 or "\r" in path or "\n" in path:
        return True
    return path in (".", "..") or (path + "/").startswith(".well-known/acme-challenge/")


def _wildcard_problem(path: str) -> bool:
    if "**" not in path:
        return False
    head, _, tail = path.partition("**")
    if "*" in head or "?" in head:
        return True
    return not _EXTENSION_AFTER_DOUBLE_STAR_RE.fullmatch(tail)


def parse_gcs_uri(
    value: str,
    field: str,
    *,
    kind: UriKind,
) -> GcsUri:
    """Parse and validate a ``gs://`` URI.

    Args:
        value: The URI.
        field: Property path used in error messages.
        kind: ``pattern`` (import source: non-empty path, wildcards allowed), ``object`` (one
            object: non-empty path, no trailing slash) or ``prefix`` (a directory: path
            optional). In ``object`` and ``prefix`` URIs ``*`` and ``?`` are plain characters
            (legal in object names).

    Returns:
        The parsed URI.

    Raises:
        InvalidSpec: The URI does not have the allowed form.
    """
    problems = Problems(strict=True)
    parsed = check_gcs_uri(problems, field, value, kind)
    problems.raise_first()
    assert parsed is not None
    return parsed


def gcs_form(kind: UriKind) -> str:
    """The allowed form of a ``kind`` URI, in words (for error messages)."""
    if kind == "pattern":
        return f"gs://BUCKET/PATH with {_BUCKET_FORM}, PATH {_OBJECT_FORM}, and {_WILDCARD_FORM}"
    if kind == "object":
        return (
            f"gs://BUCKET/OBJECT naming one object (no trailing '/'), with "
            f"{_BUCKET_FORM} and OBJECT {_OBJECT_FORM}"
        )
    return f"gs://BUCKET[/DIRECTORY], with {_BUCKET_FORM} and DIRECTORY {_OBJECT_FORM}"


def check_gcs_uri(problems: Problems, field: str, value: object, kind: UriKind) -> GcsUri | None:
    """Parse ``value`` as a ``kind`` URI (see :func:`parse_gcs_uri`); None after a problem."""
    form = gcs_form(kind)
    if not isinstance(value, str) or not value.startswith("gs://"):
        problems.add(field, value, form)
        return None
    bucket, _, path = value[len("gs://") :].partition("/")
    if _bucket_problem(bucket):
        problems.add(field, value, form)
        return None
    if kind in ("pattern", "object") and not path:
        problems.add(field, value, form + " (the object path is missing)")
        return None
    if kind == "object" and path.endswith("/"):
        problems.add(field, value, form)
        return None
    # A prefix is the start of object names ``{prefix}/{study}/...``, never a whole name.
    check_path = path.rstrip("/") + "/x" if kind == "prefix" and path.strip("/") else path
    if check_path and _object_path_problem(check_path):
        problems.add(field, value, form)
        return None
    if kind == "pattern" and _wildcard_problem(path):
        problems.add(field, value, _WILDCARD_FORM)
        return None
    return GcsUri(bucket, path)
