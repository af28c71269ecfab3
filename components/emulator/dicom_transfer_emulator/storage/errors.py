"""Domain errors of the Cloud Storage backend (no HTTP in here).

The backend (:mod:`.storage`) raises these; the Cloud Storage JSON API maps them to HTTP
statuses and Google's error body in one place (:func:`.storage_api.http_error`), and the
Healthcare side turns them into per-file operation errors. Messages are those real Cloud
Storage sends ("No such object: b/o", "The specified bucket does not exist.", …).
"""

from __future__ import annotations


class StorageError(Exception):
    """A Cloud Storage request cannot be done; ``message`` says why.

    Attributes:
        message: Human-readable reason, safe to show to the client.
    """

    def __init__(self, message: str) -> None:
        """Create the error with ``message``."""
        super().__init__(message)
        self.message = message


class InvalidArgument(StorageError):
    """A name, field, policy, page token or glob breaks Cloud Storage's rules."""


class BucketNotFound(StorageError):
    """The bucket does not exist."""

    def __init__(self, bucket: str) -> None:
        """Create the error for ``bucket`` (Cloud Storage's message does not name it)."""
        super().__init__("The specified bucket does not exist.")
        self.bucket = bucket


class ObjectNotFound(StorageError):
    """The object (or the generation asked for) does not exist."""

    def __init__(self, bucket: str, name: str) -> None:
        """Create the error for ``bucket/name``."""
        super().__init__(f"No such object: {bucket}/{name}")
        self.bucket = bucket
        self.name = name


class BucketExists(StorageError):
    """A bucket with that name exists already."""


class BucketNotEmpty(StorageError):
    """A bucket to delete still holds objects."""


class PreconditionFailed(StorageError):
    """An ``ifGenerationMatch``-style precondition, or a policy etag, did not hold."""


class NotModified(StorageError):
    """A read's ``ifGenerationNotMatch`` names the live generation (HTTP 304)."""


__all__ = [
    "BucketExists",
    "BucketNotEmpty",
    "BucketNotFound",
    "InvalidArgument",
    "NotModified",
    "ObjectNotFound",
    "PreconditionFailed",
    "StorageError",
]
