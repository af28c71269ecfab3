"""Exceptions raised by dicom_transfer.

Every error says what happened and what the user can do about it::

    DicomTransferError
      InvalidSpec            (field, value, allowed form)
      ApiError               (http_status, status, message)
        AuthenticationFailed a server's 401 / UNAUTHENTICATED, or credentials that could not
                             be refreshed (endpoint, source); "HTTP 401" only from a server
          CredentialsNotFound  no credentials were found: nothing was sent
        PermissionDenied     403 / PERMISSION_DENIED (hint names the likely missing role)
        NotFound             404 / NOT_FOUND
        Transient            429, 5xx, connection reset/refused, socket timeout
      OperationFailed        (operation name, code, message, counters, sample errors, logs URL,
                              what to do next; ``result`` is the finished operation)
      OperationTimedOut      (operation name, elapsed seconds, how to resume)
      JournalConflict        (fingerprint, journal file, how to clear it)

All exceptions pickle and unpickle with their attributes (``__reduce__``), because Pulumi's
dynamic provider machinery and multiprocessing-based test helpers may move them between
processes. No message ever contains credentials or access tokens.
"""

from __future__ import annotations

from typing import Any

from dicom_transfer.healthcare.results import OperationResult

__all__ = [
    "ApiError",
    "AuthenticationFailed",
    "CredentialsNotFound",
    "DicomTransferError",
    "InvalidSpec",
    "JournalConflict",
    "NotFound",
    "OperationFailed",
    "OperationTimedOut",
    "PermissionDenied",
    "Transient",
]

_MAX_VALUE_REPR = 200


def _short_repr(value: object) -> str:
    text = repr(value)
    if len(text) > _MAX_VALUE_REPR:
        return f"{text[:_MAX_VALUE_REPR]}... ({len(text)} characters)"
    return text


class DicomTransferError(Exception):
    """Base class of every error raised by dicom_transfer."""


class InvalidSpec(DicomTransferError, ValueError):
    """An input does not have the form the API accepts.

    Attributes:
        field: Property path of the offending input, e.g. ``gcs_destination.mime_type`` or
            ``filter_resource_paths[3]``.
        value: The value given.
        allowed: The allowed form, in words.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: got {_short_repr(value)}; expected {allowed}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.value, self.allowed))


class ApiError(DicomTransferError):
    """The Healthcare or Cloud Storage API answered with an error (or could not be reached).

    Attributes:
        http_status: HTTP status code; 0 when no response was received (connection error).
        status: Canonical status string, e.g. ``PERMISSION_DENIED``, ``UNAVAILABLE``.
        message: The server's message (or a description of the connection error).
        hint: What the user can do about it; empty when there is nothing specific to say.
    """

    def __init__(self, http_status: int, status: str, message: str, hint: str = "") -> None:
        self.http_status = http_status
        self.status = status
        self.message = message
        self.hint = hint
        text = f"HTTP {http_status} {status}: {message}" if http_status else f"{status}: {message}"
        if hint:
            text = f"{text}. {hint}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.http_status, self.status, self.message, self.hint))


class AuthenticationFailed(ApiError):
    """Credentials could not be refreshed, or the endpoint rejected them (HTTP 401).

    Attributes:
        endpoint: The endpoint called, and where it came from (``URL (from ORIGIN)``).
        source: Where the credentials came from: an ADC file path, the metadata server,
            impersonation; never a secret.
        reason: What google-auth or the server said (first line, no token).
        http_status: 401 when the endpoint answered so; 0 when no answer came from it
            (refreshing the token failed before the request).
    """

    def __init__(
        self, endpoint: str, source: str, reason: str, hint: str = "", http_status: int = 401
    ) -> None:
        self.endpoint = endpoint
        self.source = source
        self.reason = reason
        super().__init__(
            http_status,
            "UNAUTHENTICATED",
            f"calling {endpoint} with credentials from {source} failed: {reason}",
            hint,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.endpoint, self.source, self.reason, self.hint, self.http_status)
        return (type(self), args)


class CredentialsNotFound(AuthenticationFailed):
    """No credentials were found (no ADC file, no metadata server): no request was sent."""

    def __init__(
        self, endpoint: str, source: str, reason: str, hint: str = "", http_status: int = 0
    ) -> None:
        super().__init__(endpoint, source, reason, hint, http_status)
        text = f"No credentials found for calls to {endpoint}: {reason}"
        self.args = (f"{text}. {hint}" if hint else text,)


class PermissionDenied(ApiError):
    """HTTP 403: the caller or the Cloud Healthcare Service Agent lacks a permission."""


class NotFound(ApiError):
    """HTTP 404: the store, operation, bucket or object does not exist."""


class Transient(ApiError):
    """A failure worth retrying: 429, 5xx, connection reset/refused, socket timeout.

    Attributes:
        request_sent: False when the request provably never reached the server (connection
            refused) or the server rejected it before acting (429, 503); True when it may
            have been acted upon (timeout or reset after sending, other 5xx). Only errors with
            ``request_sent`` False make a submit safe to repeat.
        retry_after_s: The server's ``Retry-After`` (seconds), when it sent one: the retry
            waits at least that long (within the policy's cap and deadline).
    """

    def __init__(
        self,
        http_status: int,
        status: str,
        message: str,
        hint: str = "",
        *,
        request_sent: bool = True,
        retry_after_s: float | None = None,
    ) -> None:
        self.request_sent = request_sent
        self.retry_after_s = retry_after_s
        super().__init__(http_status, status, message, hint)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _make_transient,
            (
                self.http_status,
                self.status,
                self.message,
                self.hint,
                self.request_sent,
                self.retry_after_s,
            ),
        )


def _make_transient(
    http_status: int,
    status: str,
    message: str,
    hint: str,
    request_sent: bool,
    retry_after_s: float | None = None,
) -> Transient:
    return Transient(
        http_status, status, message, hint, request_sent=request_sent, retry_after_s=retry_after_s
    )


class OperationFailed(DicomTransferError):
    """A long-running operation finished with an error the failure policy does not tolerate.

    Attributes:
        operation_name: Full operation name (``projects/.../operations/ID``).
        code: ``google.rpc.Code`` of the operation error (3 = some instances failed,
            1 = cancelled, 13 = internal, ...); 0 when the operation itself succeeded but
            ``failure_count`` exceeded ``max_failures``.
        message: The operation's error message.
        result: The parsed operation (counters, times, sample errors): a front end that can
            keep partial state (the native provider) returns it as the resource's outputs.
        logs_url: Cloud Logging URL with the per-instance errors, or None.
        hint: What the user can do next (e.g. that the operation stays the request's outcome
            and how to run the transfer again); empty when there is nothing specific to say.
    """

    def __init__(
        self,
        operation_name: str,
        code: int,
        message: str,
        result: OperationResult,
        logs_url: str | None,
        hint: str = "",
    ) -> None:
        self.operation_name = operation_name
        self.code = code
        self.message = message
        self.result = result
        self.logs_url = logs_url
        self.hint = hint
        parts = [
            f"operation {operation_name} failed (code {code}): {message}",
            f"counters: success={result.success_count} failure={result.failure_count}"
            f" pending={result.pending_count}",
        ]
        if result.sample_errors:
            parts.append("sample errors: " + "; ".join(result.sample_errors))
        parts.append(f"logs: {logs_url}" if logs_url else "logs: (no logs URL reported)")
        if hint:
            parts.append(hint)
        super().__init__(". ".join(parts))

    def with_hint(self, hint: str) -> OperationFailed:
        """The same failure with ``hint`` (what to do next) in its message."""
        return type(self)(
            self.operation_name, self.code, self.message, self.result, self.logs_url, hint
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.operation_name, self.code, self.message, self.result, self.logs_url, self.hint),
        )


class OperationTimedOut(DicomTransferError):
    """The provider's own deadline passed while the operation was still running.

    The operation keeps running on the server; the journal keeps its name so that the next
    create resumes waiting on it instead of submitting a second one.

    Attributes:
        operation_name: Full operation name.
        elapsed_s: Seconds waited before giving up.
        resume_hint: How to resume.
    """

    def __init__(self, operation_name: str, elapsed_s: float, resume_hint: str = "") -> None:
        self.operation_name = operation_name
        self.elapsed_s = elapsed_s
        self.resume_hint = resume_hint or (
            "the operation keeps running on the server; re-run `pulumi up`: "
            f"the next create resumes {operation_name} (raise timeout_seconds to wait longer)"
        )
        super().__init__(
            f"operation {operation_name} still running after {elapsed_s:.0f} s; {self.resume_hint}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.operation_name, self.elapsed_s, self.resume_hint))


class JournalConflict(DicomTransferError):
    """A journal record names no operation (a submit was interrupted, or the record cannot be
    read) and the operation it stands for cannot be identified safely.

    Attributes:
        fingerprint: Fingerprint of the request.
        path: Journal file that records the interrupted submit.
        detail: What was found (no or several candidate operations).
    """

    def __init__(self, fingerprint: str, path: str, detail: str) -> None:
        self.fingerprint = fingerprint
        self.path = path
        self.detail = detail
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"an earlier run of this request left a journal record without its operation's "
            f"name (a submit interrupted before its answer, or a record that cannot be read), "
            f"and {self.detail}. To avoid starting a duplicate operation nothing was "
            f"submitted. Check the dataset's operations (gcloud healthcare operations list), "
            f"then delete the journal entry {self.path} to submit again"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.fingerprint, self.path, self.detail))


class OperationForgotten(JournalConflict):
    """The journal names this request's operation, but the API no longer knows it.

    The request was submitted (the journal records the operation's name only after the API
    answered), so the operation may have moved data before it was forgotten: Cloud Healthcare
    keeps an operation for a limited time after it finishes (the reference pages put it at
    about 30 days), and a reset emulator or another endpoint knows none. Submitting again
    could duplicate data (a ``WRITE_APPEND`` BigQuery export appends every row again), so
    nothing is submitted (one request, one operation).

    Attributes:
        fingerprint: Fingerprint of the request.
        path: Journal file that names the operation.
        operation_name: The operation the API answered 404 for.
        submitted_at: When the request was submitted (RFC 3339).
    """

    def __init__(self, fingerprint: str, path: str, operation_name: str, submitted_at: str) -> None:
        self.operation_name = operation_name
        self.submitted_at = submitted_at
        detail = f"{operation_name} (submitted {submitted_at}) is no longer known to the API"
        super().__init__(fingerprint, path, detail)

    def _message(self) -> str:
        return (
            f"this request was submitted at {self.submitted_at} as {self.operation_name}, which "
            "the API no longer knows (operations are forgotten some time after they finish; or "
            "the endpoint was reset or changed). It may already have moved data, so nothing was "
            "submitted. To run the transfer again, change `triggers`; if you know it never ran, "
            f"delete the journal entry {self.path}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.fingerprint, self.path, self.operation_name, self.submitted_at),
        )
