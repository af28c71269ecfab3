"""Clients for the Cloud Healthcare API and the Cloud Storage JSON API.

Both are google-api-python-client resources built from the bundled (static) discovery
documents, so building one needs no network. They are built lazily, one per thread (httplib2
is not thread-safe), and never pickled: :class:`ApiConfig`, :class:`HealthcareApi` and
:class:`StorageApi` pickle as plain configuration (``__getstate__`` drops the clients).

Endpoints and credentials follow Google's client conventions (:mod:`.credentials`): an
endpoint input (a private, regional or VPC-SC endpoint) keeps Application Default Credentials
and impersonation; ``HEALTHCARE_EMULATOR_HOST`` / ``STORAGE_EMULATOR_HOST`` declare emulators,
called anonymously. No credential or token ever appears in a message or a log record.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import google_auth_httplib2
import httplib2
from google.auth.credentials import Credentials
from google.auth.exceptions import GoogleAuthError
from googleapiclient import discovery
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from dicom_transfer.errors import (
    ApiError,
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    Transient,
)
from dicom_transfer.healthcare.credentials import (
    HEALTHCARE_EMULATOR_ENV,
    STORAGE_EMULATOR_ENV,
    Target,
    authentication_failed,
    load_credentials,
    resolve_target,
)
from dicom_transfer.healthcare.retrying import (
    READ_RETRY,
    SUBMIT_RETRY,
    RetryPolicy,
    call_with_retry,
    is_retryable_read,
    is_retryable_submit,
)

__all__ = [
    "HEALTHCARE_EMULATOR_ENV",
    "SCOPES",
    "STORAGE_EMULATOR_ENV",
    "ApiConfig",
    "HealthcareApi",
    "StorageApi",
    "api_error_from_exception",
    "validate_operation_name",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

# A name segment: what a URL path carries literally or percent-encoded (the client encodes
# spaces and non-ASCII); "/", "?", "#", "%" and control characters would change the URL. The
# rules of each ID are the specs' (:mod:`dicom_transfer.specs.requests`); this is the last guard.
_SEGMENT = r"[^/?#%\x00-\x1f\x7f]+"
_DATASET_NAME_RE = re.compile(rf"projects/{_SEGMENT}/locations/{_SEGMENT}/datasets/{_SEGMENT}")
_OPERATION_NAME_RE = re.compile(rf"{_DATASET_NAME_RE.pattern}/operations/{_SEGMENT}")
_STORE_NAME_RE = re.compile(rf"{_DATASET_NAME_RE.pattern}/dicomStores/{_SEGMENT}")


def _checked_name(name: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(name) or any(part in (".", "..") for part in name.split("/")):
        raise ValueError(f"not a valid {what} name: {name!r}")
    return name


def validate_operation_name(name: str) -> str:
    """Return ``name`` if it is ``projects/P/locations/L/datasets/D/operations/ID``.

    Guards names read back from state or the journal before they become URL paths.

    Raises:
        ValueError: Any other shape, a ``.``/``..`` segment, or URL-special characters.
    """
    return _checked_name(name, _OPERATION_NAME_RE, "operation")


@dataclass(frozen=True)
class ApiConfig:
    """Where and how to call the APIs (no credentials: those are looked up at call time).

    Attributes:
        endpoint: Healthcare API root, e.g. ``https://healthcare-x.p.googleapis.com/``;
            None = Google's.
        impersonate_service_account: Service account email to impersonate (not with emulators).
        storage_endpoint: Cloud Storage JSON API root; None = Google's.
        timeout_s: Socket timeout of each HTTP request.
        healthcare_emulator: ``endpoint`` is an emulator (``HEALTHCARE_EMULATOR_HOST``):
            anonymous calls.
        storage_emulator: ``storage_endpoint`` is an emulator (``STORAGE_EMULATOR_HOST``).
    """

    endpoint: str | None = None
    impersonate_service_account: str | None = None
    storage_endpoint: str | None = None
    timeout_s: float = 60.0
    healthcare_emulator: bool = False
    storage_emulator: bool = False

    @classmethod
    def from_env(
        cls,
        endpoint: str | None = None,
        impersonate_service_account: str | None = None,
        storage_endpoint: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ApiConfig:
        """Endpoint inputs first (credentials kept), then the ``*_EMULATOR_HOST`` variables.

        Args:
            endpoint: Healthcare endpoint override (``host:port`` gets ``http://``).
            impersonate_service_account: Service account to impersonate.
            storage_endpoint: Cloud Storage endpoint override.
            environ: Environment to read (default ``os.environ``).

        Returns:
            The configuration.
        """
        healthcare = resolve_target(endpoint, HEALTHCARE_EMULATOR_ENV, environ)
        storage = resolve_target(storage_endpoint, STORAGE_EMULATOR_ENV, environ)
        return cls(
            endpoint=healthcare.endpoint,
            impersonate_service_account=impersonate_service_account or None,
            storage_endpoint=storage.endpoint,
            healthcare_emulator=healthcare.emulator,
            storage_emulator=storage.emulator,
        )

    @property
    def healthcare(self) -> Target:
        """The Healthcare API's target."""
        return Target(self.endpoint, self.healthcare_emulator, HEALTHCARE_EMULATOR_ENV)

    @property
    def storage(self) -> Target:
        """The Cloud Storage JSON API's target."""
        return Target(self.storage_endpoint, self.storage_emulator, STORAGE_EMULATOR_ENV)

    def credentials(self, target: Target, emulator_env: str) -> tuple[Credentials, str]:
        """Credentials for calls to ``target`` and where they came from.

        Raises:
            AuthenticationFailed: No Application Default Credentials were found.
        """
        return load_credentials(target, SCOPES, emulator_env, self.impersonate_service_account)

    def authorized_http(self, target: Target, emulator_env: str) -> tuple[Any, str]:
        """A fresh ``AuthorizedHttp`` (one per thread: httplib2 is not thread-safe) and the
        credentials' source."""
        credentials, source = self.credentials(target, emulator_env)
        http = google_auth_httplib2.AuthorizedHttp(
            credentials, http=httplib2.Http(timeout=self.timeout_s)
        )
        return http, source


def _error_fields(exc: HttpError) -> tuple[str, str]:
    try:
        payload = json.loads(exc.content.decode("utf-8", "replace"))
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        if isinstance(error, dict):
            return str(error.get("status", "")), str(error.get("message", ""))
        return "", str(error)
    except (ValueError, AttributeError):
        text = exc.content.decode("utf-8", "replace") if isinstance(exc.content, bytes) else ""
        return "", text[:500]


_DEFAULT_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def retry_after_seconds(value: object, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date).

    Returns:
        The non-negative delay, or None when the header is absent or unreadable.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now(), 0.0)


def api_error_from_exception(exc: BaseException) -> ApiError | None:
    """Map an HTTP or connection error to the :mod:`dicom_transfer.errors` tree.

    ``Transient.request_sent`` is False only when the server provably did not act: a 429 or
    503 response (rejected) or a refused / unresolvable connection (never sent).

    Args:
        exc: What ``HttpRequest.execute`` raised.

    Returns:
        The mapped error, or None when ``exc`` is not an HTTP/connection error.
    """
    if isinstance(exc, HttpError):
        code = int(exc.resp.status)
        status, message = _error_fields(exc)
        status = status or _DEFAULT_STATUS.get(code, "UNKNOWN")
        message = message or (exc.resp.reason or "")
        if code == 403:
            return PermissionDenied(code, status, message)
        if code == 404:
            return NotFound(code, status, message)
        retry_after = retry_after_seconds(exc.resp.get("retry-after"))
        if code in (429, 503):
            return Transient(code, status, message, request_sent=False, retry_after_s=retry_after)
        if code >= 500 or code == 408:
            return Transient(code, status, message, request_sent=True, retry_after_s=retry_after)
        return ApiError(code, status, message)
    if isinstance(exc, (ConnectionRefusedError, httplib2.ServerNotFoundError, socket.gaierror)):
        return Transient(0, "UNAVAILABLE", f"connection failed: {exc}", request_sent=False)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return Transient(0, "DEADLINE_EXCEEDED", f"socket timeout: {exc}", request_sent=True)
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return Transient(0, "UNAVAILABLE", f"connection error: {exc!r}", request_sent=True)
    return None


class _ThreadLocalClients:
    """Lazily built per-thread clients; the pickled form holds only configuration.

    Subclasses set ``config`` and ``http_factory`` and define ``_target``, ``_emulator_env``
    and ``_build(http)``.
    """

    config: ApiConfig
    http_factory: Callable[[], Any] | None
    _emulator_env: str
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    progress: Callable[[str], None] | None = None
    """Receives one line when an endpoint cannot be reached and the call keeps retrying."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _target(self) -> Target:
        raise NotImplementedError

    def _build(self, http: Any) -> Any:
        raise NotImplementedError

    def _service(self) -> Any:
        service = getattr(self._local, "service", None)
        if service is None:
            if self.http_factory is not None:
                http, source = self.http_factory(), "the test's HTTP object"
            else:
                http, source = self.config.authorized_http(self._target(), self._emulator_env)
            service = self._build(http)
            self._local.service = service
            self._local.source = source
        return service

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _auth_error(self, error: BaseException | str, http_status: int) -> AuthenticationFailed:
        source = getattr(self._local, "source", "Application Default Credentials")
        return authentication_failed(self._target(), source, error, self._emulator_env, http_status)

    def _once(self, make_request: Callable[[Any], Any]) -> Any:
        try:
            return make_request(self._service()).execute(num_retries=0)
        except GoogleAuthError as exc:
            # Refreshing the token failed (bad ADC file, metadata server unreachable,
            # impersonation refused): say where, with what and how to fix it.
            raise self._auth_error(exc, 0) from None
        except Exception as exc:
            mapped = api_error_from_exception(exc)
            if mapped is None:
                raise
            if mapped.http_status == 401:
                raise self._auth_error(mapped.message or mapped.status, 401) from exc
            if isinstance(mapped, Transient) and mapped.http_status == 0:
                raise unreachable(self._target(), mapped) from exc
            raise answered_by(self._target(), mapped) from exc

    def _retrying(
        self,
        make_request: Callable[[Any], Any],
        retryable: Callable[[BaseException], bool],
        policy: RetryPolicy,
    ) -> Any:
        """``make_request`` with ``policy``'s retries, saying once that the endpoint is
        unreachable (with how long it keeps trying) and failing with the time it tried."""
        retried = False
        start = self.clock()

        def on_retry(error: BaseException, delay: float) -> None:
            nonlocal retried
            _log_retry(error, delay)
            if _is_unreachable(error) and not retried:
                retried = True
                if self.progress is not None:
                    message = getattr(error, "message", error)
                    self.progress(f"{message}; retrying for up to {policy.longest_s():.0f} s")

        try:
            return call_with_retry(
                lambda: self._once(make_request),
                retryable=retryable,
                policy=policy,
                sleep=self.sleep,
                clock=self.clock,
                on_retry=on_retry,
            )
        except Transient as exc:
            if not (retried and _is_unreachable(exc)):
                raise
            raise Transient(
                exc.http_status,
                exc.status,
                f"{exc.message} (still unreachable after {self.clock() - start:.0f} s of retries)",
                exc.hint,
                request_sent=exc.request_sent,
            ) from exc


class HealthcareApi(_ThreadLocalClients):
    """The Healthcare API calls dicom_transfer needs, with transient-error retries.

    Args:
        config: Endpoint and identity.
        api_version: ``v1`` or ``v1beta1``.
        http_factory: Builds the HTTP object for a thread's client (tests pass a
            ``googleapiclient.http.HttpMockSequence``); default: an ``AuthorizedHttp``.
        read_retry: Policy for idempotent calls.
        submit_retry: Policy for import/export submits (only provably-not-sent errors).
        sleep: Sleep used between retries.
        clock: Monotonic clock used for retry deadlines.
        progress: Receives one line when the endpoint cannot be reached and a call keeps
            retrying (``cannot reach URL (from ORIGIN): ...; retrying for up to N s``).
    """

    def __init__(
        self,
        config: ApiConfig,
        api_version: str = "v1",
        *,
        http_factory: Callable[[], Any] | None = None,
        read_retry: RetryPolicy = READ_RETRY,
        submit_retry: RetryPolicy = SUBMIT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        if api_version not in ("v1", "v1beta1"):
            raise ValueError(f"api_version: got {api_version!r}; expected v1|v1beta1")
        self.config = config
        self.api_version = api_version
        self.http_factory = http_factory
        self.read_retry = read_retry
        self.submit_retry = submit_retry
        self.sleep = sleep
        self.clock = clock
        self.progress = progress

    _emulator_env = HEALTHCARE_EMULATOR_ENV

    def _target(self) -> Target:
        return self.config.healthcare

    def _build(self, http: Any) -> Any:
        options = {"api_endpoint": self.config.endpoint} if self.config.endpoint else None
        return discovery.build(
            "healthcare",
            self.api_version,
            http=http,
            static_discovery=True,
            cache_discovery=False,
            client_options=options,
        )

    def _datasets(self, service: Any) -> Any:
        return service.projects().locations().datasets()

    def _read(self, make_request: Callable[[Any], Any]) -> Any:
        return self._retrying(make_request, is_retryable_read, self.read_retry)

    def _submit(self, make_request: Callable[[Any], Any]) -> str:
        operation = self._retrying(make_request, is_retryable_submit, self.submit_retry)
        name = operation.get("name") if isinstance(operation, dict) else None
        if not isinstance(name, str) or not name:
            raise ApiError(200, "UNKNOWN", f"submit answered without an operation: {operation}")
        return validate_operation_name(name)

    def submit_import(self, store_name: str, body: Mapping[str, Any]) -> str:
        """POST ``{store}:import``; returns the operation name."""
        _checked_name(store_name, _STORE_NAME_RE, "DICOM store")
        return self._submit(
            lambda s: self._datasets(s).dicomStores().import_(name=store_name, body=dict(body))
        )

    def submit_export(self, store_name: str, body: Mapping[str, Any]) -> str:
        """POST ``{store}:export``; returns the operation name."""
        _checked_name(store_name, _STORE_NAME_RE, "DICOM store")
        return self._submit(
            lambda s: self._datasets(s).dicomStores().export(name=store_name, body=dict(body))
        )

    def get_operation(self, name: str) -> dict[str, Any]:
        """GET an operation (raises :class:`NotFound` once the API forgot it)."""
        validate_operation_name(name)
        result: dict[str, Any] = self._read(lambda s: self._datasets(s).operations().get(name=name))
        return result

    def list_operations(self, dataset_name: str, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every operation of a dataset, following page tokens."""
        _checked_name(dataset_name, _DATASET_NAME_RE, "dataset")
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"name": dataset_name, "pageSize": page_size}
            if token:
                kwargs["pageToken"] = token

            def list_page(service: Any, kwargs: dict[str, Any] = kwargs) -> Any:
                return self._datasets(service).operations().list(**kwargs)

            page = self._read(list_page)
            yield from page.get("operations", []) or []
            token = page.get("nextPageToken") or None
            if not token:
                return


class StorageApi(_ThreadLocalClients):
    """The Cloud Storage JSON API calls dicom_transfer needs (filter-file staging).

    Args:
        config: Endpoint and identity (``storage_endpoint`` overrides Google's).
        http_factory: Builds a thread's HTTP object (tests); default ``AuthorizedHttp``.
        retry: Policy for every call (all are idempotent: conditional writes recognise their
            own earlier attempt, see :meth:`write`).
        sleep: Sleep used between retries.
        clock: Monotonic clock used for retry deadlines.
        progress: As :class:`HealthcareApi` takes it.
    """

    def __init__(
        self,
        config: ApiConfig,
        *,
        http_factory: Callable[[], Any] | None = None,
        retry: RetryPolicy = READ_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.http_factory = http_factory
        self.retry = retry
        self.sleep = sleep
        self.clock = clock
        self.progress = progress

    _emulator_env = STORAGE_EMULATOR_ENV

    def _target(self) -> Target:
        return self.config.storage

    def _build(self, http: Any) -> Any:
        endpoint = self.config.storage_endpoint
        document = json.loads(get_static_doc("storage", "v1"))
        if endpoint:
            # The media (upload) URL is derived from rootUrl and keeps its https scheme with
            # client_options.api_endpoint; rewriting rootUrl serves plain-http emulators too.
            document["rootUrl"] = endpoint
            document["baseUrl"] = f"{endpoint}storage/v1/"
        return discovery.build_from_document(document, http=http)

    def _call(self, make_request: Callable[[Any], Any]) -> Any:
        return self._retrying(make_request, is_retryable_read, self.retry)

    def exists(self, bucket: str, name: str) -> bool:
        """Whether object ``name`` exists in ``bucket``."""
        try:
            self._call(lambda s: s.objects().get(bucket=bucket, object=name))
        except NotFound:
            return False
        return True

    def write(
        self,
        bucket: str,
        object_name: str,
        data: bytes,
        content_type: str,
        *,
        only_if_absent: bool = False,
    ) -> bool:
        """Write ``object_name``, replacing it unless ``only_if_absent``.

        A conditional write (``ifGenerationMatch=0``) is repeated after transient errors like
        any other call, and httplib2 itself sends a request again when the connection drops
        while the answer is read. A 412 can therefore mean "our own earlier attempt created
        it": the object is read back and counts as ours when it holds exactly ``data``.
        Callers that must tell their write from another writer's make ``data`` unique (a
        journal record carries its submit time to the microsecond); for content-addressed
        objects either answer is right.

        Args:
            bucket: Bucket name.
            object_name: Object name.
            data: The object's bytes.
            content_type: Its ``Content-Type``.
            only_if_absent: Create only; never replace an existing object.

        Returns:
            True when this call wrote the object; False when ``only_if_absent`` and another
            writer's object is already there.

        Raises:
            ApiError: The write failed (after retries).
        """

        def insert(service: Any) -> Any:
            media = MediaIoBaseUpload(io.BytesIO(data), mimetype=content_type, resumable=False)
            condition = {"ifGenerationMatch": "0"} if only_if_absent else {}
            return service.objects().insert(
                bucket=bucket, name=object_name, media_body=media, **condition
            )

        try:
            self._call(insert)
        except ApiError as exc:
            if only_if_absent and exc.http_status == 412:
                return self.read(bucket, object_name) == data
            raise
        return True

    def read(self, bucket: str, object_name: str) -> bytes | None:
        """The bytes of ``object_name``, or None when it does not exist."""
        try:
            data = self._call(lambda s: s.objects().get_media(bucket=bucket, object=object_name))
        except NotFound:
            return None
        return data if isinstance(data, bytes) else str(data).encode()

    def delete(self, bucket: str, object_name: str) -> None:
        """Delete ``object_name``; an absent object is not an error."""
        try:
            self._call(lambda s: s.objects().delete(bucket=bucket, object=object_name))
        except NotFound:
            return

    def list_names(self, bucket: str, prefix: str) -> list[str]:
        """Names of the objects under ``prefix`` (every page)."""

        def list_page(token: str | None) -> Callable[[Any], Any]:
            extra = {"pageToken": token} if token else {}
            return lambda service: service.objects().list(
                bucket=bucket, prefix=prefix, fields="items(name),nextPageToken", **extra
            )

        names: list[str] = []
        token: str | None = None
        while True:
            page = self._call(list_page(token))
            names.extend(item["name"] for item in page.get("items", []))
            token = page.get("nextPageToken")
            if not token:
                return names


_UNREACHABLE = "cannot reach "


def unreachable(target: Target, error: Transient) -> Transient:
    """A connection error that names the endpoint, where it came from and what to check.

    Args:
        target: The endpoint that could not be reached.
        error: The mapped connection error (``http_status`` 0).

    Returns:
        The same error (status, ``request_sent``) with ``cannot reach URL (from ORIGIN)``
        leading its message and a hint naming the setting to check.
    """
    if target.emulator:
        hint = (
            f"Start the emulator at {target.shown_url} (dicom-transfer-emulator), or correct or "
            f"unset {target.variable}"
        )
    elif target.endpoint is not None:
        hint = f"Check the {target.origin} and this machine's network route to it"
    else:
        hint = (
            f"Check this machine's network and proxy settings; for a local emulator set "
            f"{target.variable}"
        )
    return Transient(
        error.http_status,
        error.status,
        f"{_UNREACHABLE}{target.describe()}: {error.message}",
        hint,
        request_sent=error.request_sent,
        retry_after_s=error.retry_after_s,
    )


def answered_by(target: Target, error: ApiError) -> ApiError:
    """A server's error that names the endpoint that answered and where it came from.

    Args:
        target: The endpoint called.
        error: The mapped error.

    Returns:
        An error of the same type and fields, its message ending in
        ``(answered by URL (from ORIGIN))``.
    """
    message = f"{error.message} (answered by {target.describe()})"
    if isinstance(error, Transient):
        return Transient(
            error.http_status,
            error.status,
            message,
            error.hint,
            request_sent=error.request_sent,
            retry_after_s=error.retry_after_s,
        )
    return type(error)(error.http_status, error.status, message, error.hint)


def _is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` is :func:`unreachable`'s: no server answered (``http_status`` 0)."""
    return (
        isinstance(error, Transient)
        and error.http_status == 0
        and error.message.startswith(_UNREACHABLE)
    )


def _log_retry(error: BaseException, delay: float) -> None:
    _log.info("transient error, retrying in %.1f s: %s", delay, error)
