"""Errors of the emulator, rendered in Google's JSON error shape.

Every 4xx/5xx the emulator sends has the body Google APIs use::

    {"error": {"code": 404, "message": "...", "status": "NOT_FOUND",
               "errors": [{"message": "...", "domain": "global", "reason": "notFound"}]}}

Handlers raise :class:`ApiException`; the HTTP layer turns it into a response with
:func:`error_body`. The storage backend raises it too, so the Healthcare side sees the same
404/412 it would get from the real Cloud Storage.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

#: Canonical status name for each HTTP status the emulator sends.
HTTP_STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    411: "LENGTH_REQUIRED",
    412: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: Cloud Storage style ``errors[].reason`` for each HTTP status.
HTTP_REASONS: dict[int, str] = {
    400: "invalid",
    401: "required",
    403: "forbidden",
    404: "notFound",
    405: "methodNotAllowed",
    409: "conflict",
    411: "lengthRequired",
    412: "conditionNotMet",
    413: "uploadTooLarge",
    416: "requestedRangeNotSatisfiable",
    429: "rateLimitExceeded",
    500: "backendError",
    501: "notImplemented",
    503: "backendError",
    504: "deadlineExceeded",
}


class RpcCode(IntEnum):
    """google.rpc.Code, the codes of long-running operation errors and log entries.

    Source: google/rpc/code.proto (the ``Status.code`` of the discovery documents).
    """

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


#: google.rpc.Code numbers and names (used in long-running operation errors).
RPC_CODE_NAMES: dict[int, str] = {code.value: code.name for code in RpcCode}


def status_name(code: int) -> str:
    """Return the canonical status name (``"NOT_FOUND"``…) for an HTTP status code.

    Args:
        code: HTTP status code.

    Returns:
        The Google canonical status name; ``"UNKNOWN"`` for codes without one.
    """
    if code in HTTP_STATUS_NAMES:
        return HTTP_STATUS_NAMES[code]
    if 400 <= code < 500:
        return "FAILED_PRECONDITION"
    if code >= 500:
        return "INTERNAL"
    return "UNKNOWN"


def error_body(
    code: int, message: str, status: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    """Build Google's JSON error body.

    Args:
        code: HTTP status code (also ``error.code``).
        message: Human-readable message.
        status: Canonical status name; derived from ``code`` when omitted.
        reason: ``errors[0].reason``; derived from ``code`` when omitted.

    Returns:
        ``{"error": {"code", "message", "status", "errors": [{"message", "domain", "reason"}]}}``.
    """
    return {
        "error": {
            "code": code,
            "message": message,
            "status": status or status_name(code),
            "errors": [
                {
                    "message": message,
                    "domain": "global",
                    "reason": reason or HTTP_REASONS.get(code, "unknown"),
                }
            ],
        }
    }


class ApiException(Exception):
    """An error answered to the client as an HTTP error in Google's shape.

    Attributes:
        code: HTTP status code, e.g. 404.
        message: Message placed in ``error.message``.
        status: Canonical status name, e.g. ``"NOT_FOUND"``.
        reason: Cloud Storage style ``errors[0].reason``, e.g. ``"notFound"``.
        headers: Extra response headers (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        code: int,
        message: str,
        status: str | None = None,
        *,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Create the exception.

        Args:
            code: HTTP status code.
            message: Message for ``error.message``.
            status: Canonical status name; derived from ``code`` when omitted.
            reason: ``errors[0].reason``; derived from ``code`` when omitted.
            headers: Extra response headers.
        """
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or status_name(code)
        self.reason = reason or HTTP_REASONS.get(code, "unknown")
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """Return the JSON error body for this exception."""
        return error_body(self.code, self.message, self.status, self.reason)

    def __repr__(self) -> str:
        return f"ApiException({self.code}, {self.message!r}, {self.status!r})"


def invalid_argument(message: str) -> ApiException:
    """Return a 400 INVALID_ARGUMENT exception."""
    return ApiException(400, message, "INVALID_ARGUMENT")


def not_found(message: str) -> ApiException:
    """Return a 404 NOT_FOUND exception."""
    return ApiException(404, message, "NOT_FOUND")


def already_exists(message: str) -> ApiException:
    """Return a 409 ALREADY_EXISTS exception."""
    return ApiException(409, message, "ALREADY_EXISTS")


def permission_denied(message: str) -> ApiException:
    """Return a 403 PERMISSION_DENIED exception."""
    return ApiException(403, message, "PERMISSION_DENIED")


def precondition_failed(message: str) -> ApiException:
    """Return a 412 FAILED_PRECONDITION exception (Cloud Storage ``conditionNotMet``)."""
    return ApiException(412, message, "FAILED_PRECONDITION", reason="conditionNotMet")
