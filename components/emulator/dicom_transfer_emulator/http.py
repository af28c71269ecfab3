"""A small HTTP layer for the emulator: router, request/response types, threaded server.

The server is :class:`http.server.ThreadingHTTPServer` (one thread per connection, HTTP/1.1
keep-alive). Every request goes through the same pipeline:

1. the request line and path are checked (path tricks such as ``..`` segments are a 400);
2. the body is read, up to ``max_body_bytes`` (a larger ``Content-Length`` is a 413 sent
   before any of the body is read; chunked bodies are decoded);
3. the fault injector (:mod:`.faults`) may delay the request, answer it with an error or
   reset the connection, before or after performing it (admin paths under ``/_emulator/``
   are never faulted);
4. the :class:`Router` picks the handler; :class:`~.errors.ApiException` becomes Google's
   JSON error body, any other exception a 500 (and a traceback in the log);
5. one line is logged and a :class:`RequestRecord` appended to the :class:`RequestLog`.

Routes match the *raw* (still percent-encoded) path with :meth:`re.Pattern.fullmatch`, so a
route decides whether an encoded slash (``%2F``) may appear in a segment; named groups are
decoded into :attr:`Request.params`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import parse_qs, unquote

from .errors import ApiException, error_body, invalid_argument
from .faults import FaultInjector

#: Default request body limit (uploads of a few MB fit comfortably; resumable chunks too).
DEFAULT_MAX_BODY_BYTES = 128 * 1024 * 1024

#: Paths under this prefix are emulator administration: never faulted, not in the request log.
ADMIN_PREFIX = "/_emulator/"

_ENCODED_SLASH = re.compile(r"%(2f|5c)", re.IGNORECASE)
_MAX_QUERY_FIELDS = 200


@dataclass
class Request:
    """An HTTP request as seen by a route handler.

    Attributes:
        method: Upper-case HTTP method.
        path: Raw path (percent-encoded, without the query string).
        query: Decoded query parameters (``parse_qs`` form: name -> list of values).
        headers: Request headers with lower-case names.
        body: The request body (already de-chunked).
        params: Named groups of the route pattern, percent-decoded.
        base_url: ``scheme://host:port`` the client used (from ``Host``), for absolute links.
        api: Name of the server that received it (``"healthcare"`` or ``"storage"``).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    api: str = ""

    def arg(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of query parameter ``name``, or ``default``."""
        values = self.query.get(name)
        return values[0] if values else default

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        """Return query parameter ``name`` as an int.

        Raises:
            ApiException: 400 when the value is not an integer.
        """
        value = self.arg(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise invalid_argument(
                f"Invalid value for {name}: {value!r} is not an integer."
            ) from None

    def header(self, name: str, default: str | None = None) -> str | None:
        """Return header ``name`` (case-insensitive), or ``default``."""
        return self.headers.get(name.lower(), default)

    def json(self) -> dict[str, Any]:
        """Parse the body as a JSON object.

        An empty body is an empty object.

        Returns:
            The decoded object.

        Raises:
            ApiException: 400 when the body is not valid UTF-8 JSON or not an object.
        """
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise invalid_argument(f"Invalid JSON payload received. {exc}") from None
        except RecursionError:
            raise invalid_argument("Invalid JSON payload received. Nested too deeply.") from None
        if not isinstance(value, dict):
            raise invalid_argument(
                f"Invalid JSON payload received. Expected an object, got {type(value).__name__}."
            )
        return value


@dataclass
class Response:
    """An HTTP response produced by a handler.

    Use :meth:`json_response` / :meth:`empty` to build the common kinds.

    Attributes:
        status: HTTP status code.
        body: Response body bytes.
        headers: Response headers (``Content-Length`` is added by the server).
        content_type: ``Content-Type`` header value.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=UTF-8"

    @classmethod
    def json_response(
        cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        """Return a JSON response with ``obj`` serialised as the body."""
        body = json.dumps(obj, indent=1).encode("utf-8") + b"\n"
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        """Return a response without a body (default 204 No Content)."""
        return cls(status=status, body=b"", headers=dict(headers or {}), content_type="")

    @classmethod
    def error(cls, exc: ApiException) -> Response:
        """Return the Google-shaped error response for ``exc``."""
        return cls.json_response(exc.body(), status=exc.code, headers=exc.headers)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    allow_encoded_slash: bool


class Router:
    """Maps (method, raw path regex) to handlers.

    Routes are tried in the order they were added; the first whose pattern fullmatches the
    raw path and whose method matches wins. A path that matches only under other methods
    gets 405, a path no route knows gets 404, both in Google's error shape.
    """

    def __init__(self) -> None:
        """Create an empty router."""
        self._routes: list[_Route] = []
        self._lock = threading.Lock()

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        allow_encoded_slash: bool = False,
    ) -> None:
        """Register a route.

        Args:
            method: HTTP method (``"GET"``…) or ``"*"`` for any.
            pattern: Regex fullmatched against the raw, percent-encoded path. Named groups
                are decoded into :attr:`Request.params`. Use ``[^/]+`` for one segment.
            handler: Called with the :class:`Request`; returns a :class:`Response` or raises
                :class:`~.errors.ApiException`.
            allow_encoded_slash: Let groups contain ``%2F``/``%5C`` (Cloud Storage object
                names); otherwise such a group is a 400 (IDs never contain slashes).
        """
        route = _Route(method.upper(), re.compile(pattern), handler, allow_encoded_slash)
        with self._lock:
            self._routes.append(route)

    def dispatch(self, request: Request) -> Response:
        """Route ``request`` to its handler and return the handler's response.

        Raises:
            ApiException: 404/405 when no route matches, 400 for bad path parameters, or
                whatever the handler raised.
        """
        with self._lock:
            routes = list(self._routes)
        path_matched = False
        for route in routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            path_matched = True
            if route.method not in ("*", request.method) and not (
                route.method == "GET" and request.method == "HEAD"
            ):
                continue
            request.params = _decode_params(match.groupdict(), route.allow_encoded_slash)
            return route.handler(request)
        if path_matched:
            raise ApiException(405, f"Method {request.method} is not allowed on {request.path}.")
        raise ApiException(404, f"Not Found: {request.method} {request.path}")


def _decode_params(groups: dict[str, str | None], allow_encoded_slash: bool) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, raw in groups.items():
        if raw is None:
            continue
        if not allow_encoded_slash and _ENCODED_SLASH.search(raw):
            raise invalid_argument(f"Invalid {name}: encoded slashes are not allowed in IDs.")
        try:
            value = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise invalid_argument(f"Invalid {name}: not valid UTF-8.") from None
        if value in (".", "..") or "\x00" in value:
            raise invalid_argument(f"Invalid {name}: {value!r}.")
        params[name] = value
    return params


@dataclass(frozen=True)
class RequestRecord:
    """One served request, as kept in the :class:`RequestLog`.

    Attributes:
        api: ``"healthcare"`` or ``"storage"``.
        method: HTTP method.
        path: Raw path without the query string.
        query: Raw query string (may be empty).
        status: Status code answered (0 when the connection was reset).
        duration_s: Time spent serving it.
        time: Wall-clock time (``time.time()``) when it arrived.
        fault: Description of the injected fault, if one applied.
    """

    api: str
    method: str
    path: str
    query: str
    status: int
    duration_s: float
    time: float
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the record as a JSON-able dict (camelCase keys)."""
        return {
            "api": self.api,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "durationMs": round(self.duration_s * 1000, 3),
            "time": self.time,
            "fault": self.fault,
        }


class RequestLog:
    """Thread-safe, bounded log of the requests both servers served.

    Tests use it to count what a client sent, e.g. how many imports were submitted::

        emu.requests.count("POST", r".*:import$")
    """

    def __init__(self, max_records: int = 100_000) -> None:
        """Create an empty log keeping at most ``max_records`` (oldest dropped first)."""
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        """Add a record."""
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """Return a snapshot of all records, oldest first."""
        with self._lock:
            return list(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        """Forget all records."""
        with self._lock:
            self._records.clear()

    def matching(
        self, method: str | None = None, path_regex: str | None = None, api: str | None = None
    ) -> list[RequestRecord]:
        """Return the records whose method equals ``method`` and path matches ``path_regex``.

        Args:
            method: HTTP method, or None for any.
            path_regex: Regex searched (``re.search``) in the raw path, or None for any.
            api: ``"healthcare"``/``"storage"``, or None for both.
        """
        pattern = re.compile(path_regex) if path_regex is not None else None
        return [
            r
            for r in self.records()
            if (method is None or r.method == method.upper())
            and (pattern is None or pattern.search(r.path))
            and (api is None or r.api == api)
        ]

    def count(
        self, method: str | None = None, path_regex: str | None = None, api: str | None = None
    ) -> int:
        """Return how many records :meth:`matching` would return."""
        return len(self.matching(method, path_regex, api))


class _Handler(BaseHTTPRequestHandler):
    """Per-connection request handler; all state lives on the server."""

    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "dicom-transfer-emulator"
    sys_version = ""
    # Idle keep-alive connections and stalled bodies give up after this many seconds.
    timeout = 60
    # Headers and body go out in separate writes; with Nagle's algorithm the body would wait
    # for the client's delayed ACK (~40 ms per request on a keep-alive connection).
    disable_nagle_algorithm = True

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            super().handle()

    def handle_one_request(self) -> None:
        # Our own copy of the stdlib loop so that every method reaches the router (no 501).
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._serve()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def handle_expect_100(self) -> bool:
        length = self.headers.get("Content-Length")
        too_large = (
            length is not None
            and length.strip().isdigit()
            and int(length) > self.server.max_body_bytes
        )
        if too_large:
            self._send_body_too_large()
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Protocol-level errors from the stdlib parser; never answer those with a 5xx.
        if code >= 500:
            code = 400
        if not getattr(self, "request_version", "").startswith("HTTP/1."):
            # The stdlib omits the status line and headers for "HTTP/0.9" (unparsable) requests.
            self.request_version = "HTTP/1.0"
        text = message or self.responses.get(code, ("Bad request",))[0]
        self.close_connection = True
        self._write(Response.error(ApiException(code, text)))
        self._log(code, 0.0, None)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send_body_too_large(self) -> None:
        self.close_connection = True
        limit = self.server.max_body_bytes
        exc = ApiException(413, f"Request body too large: the limit is {limit} bytes.")
        self._write(Response.error(exc))
        self._log(413, 0.0, None)

    def _serve(self) -> None:
        started = time.monotonic()
        arrived = time.time()
        raw_path, _, query_string = self.path.partition("?")
        fault_note: str | None = None
        reset_after = False
        try:
            body = self._read_body()
            if body is None:
                return
            request = self._build_request(raw_path, query_string, body)
            is_admin = raw_path.startswith(ADMIN_PREFIX)
            faults = self.server.faults
            if faults is not None and not is_admin:
                decision = faults.decide(self.command, raw_path)
                if decision is not None:
                    fault_note = decision.describe()
                    reset_after = decision.reset_after
                    if decision.delay_s > 0:
                        time.sleep(decision.delay_s)
                    if decision.reset:
                        self._reset_connection()
                        self._record(raw_path, query_string, 0, started, arrived, fault_note)
                        return
                    if decision.status is not None:
                        raise ApiException(
                            decision.status,
                            decision.message,
                            headers={"Retry-After": "0"} if decision.status == 429 else None,
                        )
            response = self.server.router.dispatch(request)
        except ApiException as exc:
            response = Response.error(exc)
        except Exception:
            self.server.log_line(traceback.format_exc().rstrip())
            response = Response.error(ApiException(500, "Internal error in the emulator."))
        if reset_after:
            # The request took effect; the client only sees its connection drop.
            self._reset_connection()
            self._record(raw_path, query_string, 0, started, arrived, fault_note)
            return
        # Recorded before the response is sent, so a client that has its answer can already
        # count its request in the log.
        self._record(raw_path, query_string, response.status, started, arrived, fault_note)
        self._write(response)

    def _record(
        self,
        raw_path: str,
        query: str,
        status: int,
        started: float,
        arrived: float,
        fault: str | None,
    ) -> None:
        duration = time.monotonic() - started
        self._log(status, duration, fault)
        if self.server.request_log is not None and not raw_path.startswith(ADMIN_PREFIX):
            self.server.request_log.append(
                RequestRecord(
                    self.server.api, self.command, raw_path, query, status, duration, arrived, fault
                )
            )

    def _log(self, status: int, duration: float, fault: str | None) -> None:
        note = f" fault={fault}" if fault else ""
        command = getattr(self, "command", None) or "-"
        path = getattr(self, "path", None) or "-"
        self.server.log_line(
            f'{self.client_address[0]} {self.server.api} "{command} {path}" '
            f"{status} {duration * 1000:.1f}ms{note}"
        )

    def _build_request(self, raw_path: str, query_string: str, body: bytes) -> Request:
        if not raw_path.startswith("/"):
            raise invalid_argument("Invalid request path: it must start with '/'.")
        for segment in raw_path.split("/"):
            try:
                decoded = unquote(segment, errors="strict")
            except UnicodeDecodeError:
                raise invalid_argument("Invalid request path: not valid UTF-8.") from None
            if decoded in (".", "..") or "\x00" in decoded:
                raise invalid_argument("Invalid request path: '.' and '..' segments are refused.")
        try:
            query = parse_qs(
                query_string,
                keep_blank_values=True,
                errors="strict",
                max_num_fields=_MAX_QUERY_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise invalid_argument("Invalid query string.") from None
        headers = {name.lower(): value for name, value in self.headers.items()}
        host = headers.get("host") or f"{self.server.host}:{self.server.port}"
        return Request(
            method=self.command,
            path=raw_path,
            query=query,
            headers=headers,
            body=body,
            base_url=f"http://{host}",
            api=self.server.api,
        )

    def _read_body(self) -> bytes | None:
        """Read the body; on a framing problem answer the error and return None."""
        limit = self.server.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        length_text = length_header.strip()
        if not length_text.isdigit():
            self.close_connection = True
            raise invalid_argument(f"Invalid Content-Length: {length_header!r}.")
        length = int(length_text)
        if length > limit:
            self._send_body_too_large()
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            raise invalid_argument("Request body shorter than its Content-Length.")
        return body

    def _read_chunked(self, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                self.close_connection = True
                raise invalid_argument("Invalid chunked transfer encoding.") from None
            if size < 0:
                self.close_connection = True
                raise invalid_argument("Invalid chunked transfer encoding.")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                self._send_body_too_large()
                return None
            data = self.rfile.read(size)
            if len(data) < size:
                self.close_connection = True
                raise invalid_argument("Truncated chunked body.")
            chunks.append(data)
            self.rfile.readline(1024)

    def _reset_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _write(self, response: Response) -> None:
        bodiless = response.status in (204, 304) or 100 <= response.status < 200
        self.send_response(response.status)
        if response.content_type and not bodiless:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if not bodiless:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and not bodiless:
            self.wfile.write(response.body)


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server for one of the emulator's APIs.

    Attributes:
        router: Routes requests to handlers.
        api: Name used in logs and request records (``"healthcare"`` / ``"storage"``).
        faults: Fault injector consulted for every non-admin request (None disables faults).
        request_log: Where served requests are recorded (None disables recording).
        max_body_bytes: Largest accepted request body.
        log_stream: Where one line per request goes (None: no logging).
    """

    daemon_threads = True
    allow_reuse_address = True
    # 200 clients may connect at once; the default listen backlog (5) would drop them.
    request_queue_size = 1024

    def __init__(
        self,
        host: str,
        port: int,
        router: Router,
        *,
        api: str,
        faults: FaultInjector | None = None,
        request_log: RequestLog | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        log_stream: IO[str] | None = None,
    ) -> None:
        """Bind the server (port 0 picks a free port); call :meth:`start` to serve.

        Args:
            host: Address to bind (``127.0.0.1`` by default in the emulator).
            port: Port, 0 for any free one.
            router: Routes of this server.
            api: Name used in logs and request records.
            faults: Fault injector, or None.
            request_log: Request log, or None.
            max_body_bytes: Largest accepted request body (larger is a 413).
            log_stream: Stream for the per-request log lines, or None.
        """
        self.router = router
        self.api = api
        self.faults = faults
        self.request_log = request_log
        self.max_body_bytes = max_body_bytes
        self.log_stream = log_stream
        self._log_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    @property
    def host(self) -> str:
        """The bound host address."""
        return str(self.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked)."""
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of this server (IPv6 hosts in brackets)."""
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def log_line(self, line: str) -> None:
        """Write one line to the log stream (if any), atomically with respect to threads."""
        stream = self.log_stream
        if stream is None:
            return
        with self._log_lock, contextlib.suppress(ValueError, OSError):
            stream.write(line + "\n")
            stream.flush()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        self.log_line(f"error serving {client_address}: {traceback.format_exc().rstrip()}")

    def start(self) -> None:
        """Serve in a background daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"emulator-{self.api}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server_close()


__all__ = [
    "ADMIN_PREFIX",
    "DEFAULT_MAX_BODY_BYTES",
    "EmulatorHTTPServer",
    "Handler",
    "Request",
    "RequestLog",
    "RequestRecord",
    "Response",
    "Router",
    "error_body",
]
