"""The emulator's HTTP layer: a WSGI application per API, served by werkzeug's request handler.

Each API (Healthcare, Cloud Storage) is a WSGI application, :class:`ApiApplication`, that
takes every request through the same pipeline:

1. the raw path is checked (``..`` segments, NUL, invalid UTF-8, absolute URIs are a 400)
   and the query string parsed;
2. the body is read through :class:`werkzeug.wrappers.Request` (``Content-Length`` or
   chunked, de-chunked by werkzeug), up to ``max_body_bytes`` (more is a 413);
3. the :class:`~.server.routing.Router` finds the route and its API method name;
4. the fault injector (:mod:`.server.faults`) may delay the request, answer it with an error or
   reset the connection, before or after performing it; it sees the HTTP method, the raw
   path, the API method name and the ``x-emulator-fault-scope`` header (admin paths under
   ``/_emulator/`` are never faulted);
5. the handler runs; :class:`~.errors.ApiException` becomes Google's JSON error body, any
   other exception a 500 (and a traceback in the log);
6. one line is logged and a :class:`~.server.request_log.RequestRecord` appended to the log.

The server is werkzeug's :class:`~werkzeug.serving.ThreadedWSGIServer` (one thread per
connection) with its :class:`~werkzeug.serving.WSGIRequestHandler` (WSGI environ, chunked
request bodies, every HTTP method reaches the application). One method of that handler is
replaced, ``run_wsgi``, because werkzeug's development server closes every connection after
one response and then waits 10 ms for stray body bytes: clients such as
``google-cloud-storage`` keep connections alive, and 200 concurrent clients would pay a new
TCP connection plus 10 ms per request. Ours writes the response with ``Content-Length`` and
keeps the connection open unless the body could not be read completely. It also performs
the fault injector's connection resets (``SO_LINGER`` 0, so ``close()`` sends a TCP RST),
which no WSGI application can do by itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request as WsgiRequest

from dicom_transfer_emulator.errors import ApiException, error_body, invalid_argument
from dicom_transfer_emulator.server.faults import FAULT_SCOPE_HEADER, RequestFaults
from dicom_transfer_emulator.server.request_log import RequestLog, RequestRecord
from dicom_transfer_emulator.server.routing import Handler, RouteMatch, Router

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: Default request body limit (uploads of a few MB fit comfortably; resumable chunks too).
DEFAULT_MAX_BODY_BYTES = 128 * 1024 * 1024

#: Paths under this prefix are emulator administration: never faulted, not in the request log.
ADMIN_PREFIX = "/_emulator/"

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
        params: Path variables of the matched route, percent-decoded.
        base_url: ``scheme://host:port`` the client used (from ``Host``), for absolute links.
        api: Name of the server that received it (``"healthcare"`` or ``"storage"``).
        api_method: Discovery ``id`` of the matched API method (``""`` before routing).
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    api: str = ""
    api_method: str = ""

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
        content_type: ``Content-Type`` header value (empty: none).
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


class ResetConnection(ConnectionError):
    """Raised by :class:`ApiApplication` to make the server reset (TCP RST) the connection.

    A subclass of :class:`ConnectionError`, so another WSGI server treats it as a dropped
    connection.
    """


class _UnreadBody(ApiException):
    """The body could not be read to its end: answer, then close the connection."""


class ApiApplication:
    """The WSGI application of one API: the request pipeline of the module docstring.

    Args:
        router: Routes of this API.
        api: Name used in logs and request records (``"healthcare"`` / ``"storage"``).
        faults: Fault injector consulted for every non-admin request (None disables faults).
        request_log: Where served requests are recorded (None disables recording).
        max_body_bytes: Largest accepted request body, in bytes (larger is a 413).
        log_line: Writes one line of the per-request log.
    """

    def __init__(
        self,
        router: Router,
        *,
        api: str,
        faults: RequestFaults | None,
        request_log: RequestLog | None,
        max_body_bytes: int,
        log_line: Callable[[str], None],
    ) -> None:
        self.router = router
        self.api = api
        self.faults = faults
        self.request_log = request_log
        self.max_body_bytes = max_body_bytes
        self.log_line = log_line

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request (WSGI).

        Raises:
            ResetConnection: when a fault resets the connection instead of answering.
        """
        response, close = self._serve(environ)
        bodiless = response.status in (204, 304) or 100 <= response.status < 200
        headers = list(response.headers.items())
        if response.content_type and not bodiless:
            headers.append(("Content-Type", response.content_type))
        if not bodiless:
            headers.append(("Content-Length", str(len(response.body))))
        if close:
            headers.append(("Connection", "close"))
        phrase = HTTP_STATUS_CODES.get(response.status, "Unknown")
        start_response(f"{response.status} {phrase}", headers)
        # Plain WSGI rather than werkzeug's Response: it would cost a third of a small
        # request's time, and Google's error bodies need none of its conditional handling.
        if bodiless or environ["REQUEST_METHOD"] == "HEAD":
            return []
        return [response.body]

    def _serve(self, environ: WSGIEnvironment) -> tuple[Response, bool]:
        started = time.monotonic()
        arrived = time.time()
        method = str(environ["REQUEST_METHOD"]).upper()
        raw_uri = str(environ.get("RAW_URI") or quote(str(environ.get("PATH_INFO", "/"))))
        raw_path, _, query_string = raw_uri.partition("?")
        wsgi_request = WsgiRequest(environ)
        wsgi_request.max_content_length = self.max_body_bytes
        scope = wsgi_request.headers.get(FAULT_SCOPE_HEADER)
        note = _Note(raw_uri, raw_path, query_string, method, started, arrived, scope)
        note.client = str(environ.get("REMOTE_ADDR") or "-")
        close = False
        reset_after = False
        try:
            request = self._build_request(wsgi_request, method, raw_path, query_string)
            route: RouteMatch | None = None
            unrouted: ApiException | None = None
            try:
                route = self.router.match(method, raw_path)
                note.api_method = request.api_method = route.api_method
            except ApiException as exc:
                unrouted = exc
            if self.faults is not None and not raw_path.startswith(ADMIN_PREFIX):
                decision = self.faults.decide(
                    method, raw_path, api_method=note.api_method, scope=scope
                )
                if decision is not None:
                    note.fault = decision.describe()
                    reset_after = decision.reset_after
                    if decision.delay_s > 0:
                        time.sleep(decision.delay_s)
                    if decision.reset:
                        self._record(note, 0)
                        raise ResetConnection(note.fault)
                    if decision.status is not None:
                        raise ApiException(
                            decision.status,
                            decision.message,
                            headers={"Retry-After": "0"} if decision.status == 429 else None,
                        )
            if route is None:
                assert unrouted is not None
                raise unrouted
            request.params = route.params
            response = route.handler(request)
        except ResetConnection:
            raise
        except _UnreadBody as exc:
            response, close = Response.error(exc), True
        except ApiException as exc:
            response = Response.error(exc)
        except Exception:
            self.log_line(traceback.format_exc().rstrip())
            response = Response.error(ApiException(500, "Internal error in the emulator."))
        if reset_after:
            # The request took effect; the client only sees its connection drop.
            self._record(note, 0)
            raise ResetConnection(note.fault)
        # Recorded before the response is sent, so a client that has its answer can already
        # count its request in the log.
        self._record(note, response.status)
        return response, close

    def _build_request(
        self, wsgi_request: WsgiRequest, method: str, raw_path: str, query_string: str
    ) -> Request:
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
        headers = {name.lower(): value for name, value in wsgi_request.headers.items()}
        host = headers.get("host") or f"{wsgi_request.environ['SERVER_NAME']}:" + str(
            wsgi_request.environ["SERVER_PORT"]
        )
        return Request(
            method=method,
            path=raw_path,
            query=query,
            headers=headers,
            body=self._read_body(wsgi_request),
            base_url=f"http://{host}",
            api=self.api,
        )

    def _read_body(self, wsgi_request: WsgiRequest) -> bytes:
        length = wsgi_request.headers.get("Content-Length")
        chunked = "chunked" in wsgi_request.headers.get("Transfer-Encoding", "").lower()
        if length is not None and not chunked and not length.strip().isdigit():
            raise _UnreadBody(400, f"Invalid Content-Length: {length!r}.")
        try:
            return wsgi_request.get_data()
        except RequestEntityTooLarge:
            limit = self.max_body_bytes
            raise _UnreadBody(413, f"Request body too large: the limit is {limit} bytes.") from None
        except (BadRequest, OSError, ValueError):
            # werkzeug's ClientDisconnected (a BadRequest) for a body shorter than its
            # Content-Length; OSError/ValueError from its de-chunker for a malformed chunk.
            raise _UnreadBody(
                400, "Request body shorter than its Content-Length or badly chunked."
            ) from None

    def _record(self, note: _Note, status: int) -> None:
        duration = time.monotonic() - note.started
        fault = f" fault={note.fault}" if note.fault else ""
        self.log_line(
            f'{note.client} {self.api} "{note.method} {note.raw_uri}" '
            f"{status} {duration * 1000:.1f}ms{fault}"
        )
        if self.request_log is not None and not note.raw_path.startswith(ADMIN_PREFIX):
            self.request_log.append(
                RequestRecord(
                    self.api,
                    note.method,
                    note.raw_path,
                    note.query,
                    status,
                    duration,
                    note.arrived,
                    note.fault,
                    note.api_method,
                    note.scope,
                )
            )


@dataclass
class _Note:
    raw_uri: str
    raw_path: str
    query: str
    method: str
    started: float
    arrived: float
    scope: str | None
    api_method: str | None = None
    fault: str | None = None
    client: str = "-"


class _Handler(WSGIRequestHandler):
    """Per-connection handler: werkzeug's, with keep-alive responses and connection resets."""

    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections and stalled bodies give up after this many seconds.
    timeout = 60
    # Headers and body go out in separate writes; with Nagle's algorithm the body would wait
    # for the client's delayed ACK (~40 ms per request on a keep-alive connection).
    disable_nagle_algorithm = True
    # Buffered writes: status line, headers and body leave in one send at the final flush.
    wbufsize = 64 * 1024

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return "dicom-transfer-emulator"

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            super().handle()

    def handle_expect_100(self) -> bool:
        length = self.headers.get("Content-Length")
        too_large = (
            length is not None
            and length.strip().isdigit()
            and int(length) > self.server.max_body_bytes
        )
        if too_large:
            # Answer before the client sends the body it announced.
            limit = self.server.max_body_bytes
            self.close_connection = True
            exc = ApiException(413, f"Request body too large: the limit is {limit} bytes.")
            self._write(
                exc.code, [("Content-Type", "application/json; charset=UTF-8")], _error_bytes(exc)
            )
            self.server.log_line(
                f'{self.client_address[0]} {self.server.api} "{self.command} {self.path}" 413 0.0ms'
            )
            return False
        accepted = super().handle_expect_100()
        self.wfile.flush()  # the interim "100 Continue" must not wait in the write buffer
        return accepted

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Protocol-level errors from the stdlib parser; never answer those with a 5xx.
        if code >= 500:
            code = 400
        if not getattr(self, "request_version", "").startswith("HTTP/1."):
            # The stdlib omits the status line and headers for "HTTP/0.9" (unparsable) requests.
            self.request_version = "HTTP/1.0"
        text = message or self.responses.get(code, ("Bad request",))[0]
        self.close_connection = True
        exc = ApiException(code, text)
        self._write(code, [("Content-Type", "application/json; charset=UTF-8")], _error_bytes(exc))
        command = getattr(self, "command", None) or "-"
        path = getattr(self, "path", None) or "-"
        self.server.log_line(
            f'{self.client_address[0]} {self.server.api} "{command} {path}" {code} 0.0ms'
        )

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the application logs one line per request

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def run_wsgi(self) -> None:
        environ = self.make_environ()
        environ["REMOTE_ADDR"] = self.client_address[0]
        self.environ = environ
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            started[:] = [status, headers]
            return self.wfile.write

        try:
            chunks = self.server.app(environ, start_response)
            try:
                body = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except ResetConnection:
            self._reset()
            return
        code = int(started[0].split(None, 1)[0])
        self._write(code, started[1], body)

    def _write(self, code: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(code)
        has_length = False
        for name, value in headers:
            # send_header closes the connection on "Connection: close" (stdlib behaviour).
            self.send_header(name, value)
            has_length = has_length or name.lower() == "content-length"
        bodiless = code in (204, 304) or 100 <= code < 200
        if not has_length and not bodiless:
            if getattr(self, "command", "") == "HEAD":
                # Without a length a HEAD answer cannot say where its (empty) body ends.
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(body)))
        if self.close_connection and not any(n.lower() == "connection" for n, _ in headers):
            self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", "") != "HEAD" and not bodiless:
            self.wfile.write(body)
        self.wfile.flush()

    def _reset(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


def _error_bytes(exc: ApiException) -> bytes:
    return (
        json.dumps(error_body(exc.code, exc.message, exc.status, exc.reason), indent=1).encode(
            "utf-8"
        )
        + b"\n"
    )


class EmulatorHTTPServer(ThreadedWSGIServer):
    """Threaded HTTP server for one of the emulator's APIs (werkzeug's WSGI server).

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
    # 200 clients may connect at once; werkzeug's default listen backlog (128) would drop some.
    request_queue_size = 1024

    def __init__(
        self,
        host: str,
        port: int,
        router: Router,
        *,
        api: str,
        faults: RequestFaults | None = None,
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
        application = ApiApplication(
            router,
            api=api,
            faults=faults,
            request_log=request_log,
            max_body_bytes=max_body_bytes,
            log_line=self.log_line,
        )
        # Bound here rather than by werkzeug, which answers a port in use with sys.exit(1).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(self.request_queue_size)
            super().__init__(host, port, application, handler=_Handler, fd=listener.fileno())
        finally:
            listener.close()  # werkzeug serves a duplicate of it
        self.host: str = str(self.server_address[0])
        self.port: int = int(self.server_address[1])

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

    def log(self, type: str, message: str, *args: Any) -> None:
        pass  # werkzeug's own start-up and error lines; ours go through log_line

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
    "ApiApplication",
    "EmulatorHTTPServer",
    "Handler",
    "Request",
    "RequestLog",
    "RequestRecord",
    "ResetConnection",
    "Response",
    "Router",
    "error_body",
]
