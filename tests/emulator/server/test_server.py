"""The HTTP layer: malformed input never crashes or hangs it, 200 concurrent clients, admin."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest
from dicom_transfer_emulator.app import Emulator, run_emulator

HttpCall = Callable[..., Any]


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def raw_exchange(port: int, data: bytes, *, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """Send raw bytes, read until the server closes; return (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            response = b"".join(chunks)
            head, sep, body = response.partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(body) if body else {}


def _assert_google_error(status: int, body: dict[str, Any]) -> None:
    assert 400 <= status < 500, (status, body)
    error = body["error"]
    assert error["code"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert error["status"].isupper()


MALFORMED = [
    pytest.param(b"HELLO\r\n\r\n", id="garbage-request-line"),
    pytest.param(b"GET /storage/v1/b HTTP/2.0\r\n\r\n", id="http2-version"),
    pytest.param(b"GET /storage/v1/b FOO/1.1\r\n\r\n", id="bad-protocol"),
    pytest.param(b"BREW /storage/v1/b HTTP/1.1\r\nConnection: close\r\n\r\n", id="unknown-method"),
    pytest.param(b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n", id="unknown-path"),
    pytest.param(b"GET /storage/v1/b/../b HTTP/1.1\r\nConnection: close\r\n\r\n", id="dotdot"),
    pytest.param(
        b"GET /storage/v1/b/%2e%2E/o HTTP/1.1\r\nConnection: close\r\n\r\n", id="enc-dotdot"
    ),
    pytest.param(b"GET /storage/v1/b/a%2Fb HTTP/1.1\r\nConnection: close\r\n\r\n", id="enc-slash"),
    pytest.param(
        b"GET /storage/v1/b/a%5Cb/o HTTP/1.1\r\nConnection: close\r\n\r\n", id="enc-bslash"
    ),
    pytest.param(b"GET /storage/v1/b/%ff%fe HTTP/1.1\r\nConnection: close\r\n\r\n", id="bad-utf8"),
    pytest.param(b"GET /storage/v1/b/x%00y HTTP/1.1\r\nConnection: close\r\n\r\n", id="nul"),
    pytest.param(
        b"GET /storage/v1/b?project=%ff HTTP/1.1\r\nConnection: close\r\n\r\n", id="bad-query"
    ),
    pytest.param(b"GET http://evil.example/x HTTP/1.1\r\nConnection: close\r\n\r\n", id="absolute"),
    pytest.param(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", id="huge-request-line"),
    pytest.param(
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n",
        id="too-many-headers",
    ),
    pytest.param(
        b"POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: abc\r\n\r\n", id="bad-length"
    ),
    pytest.param(
        b"POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: -5\r\n\r\n", id="negative-length"
    ),
    pytest.param(
        b"POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n",
        id="huge-body",
    ),
    pytest.param(
        b"POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: 1000000000000\r\n"
        b"Expect: 100-continue\r\n\r\n",
        id="huge-body-expect-continue",
    ),
    pytest.param(
        b"POST /storage/v1/b?project=p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        id="bad-chunk",
    ),
    pytest.param(
        b"POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: 9\r\nConnection: close\r\n"
        b"\r\n{not json",
        id="malformed-json",
    ),
    pytest.param(
        b"POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: 6\r\nConnection: close\r\n"
        b"\r\n[1, 2]",
        id="json-not-object",
    ),
    pytest.param(
        b"POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: 4\r\nConnection: close\r\n"
        b"\r\n\xff\xfe\xfd\xfc",
        id="json-bad-utf8",
    ),
    pytest.param(
        b"POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: 200000\r\n"
        b"Connection: close\r\n\r\n" + b"[" * 200000,
        id="json-nested-too-deep",
    ),
    pytest.param(
        b"PUT /storage/v1/b/x/iam HTTP/1.1\r\nContent-Length: 30\r\nConnection: close\r\n"
        b'\r\n{"bindings": [{"role": null}]}',
        id="wrong-type-in-nested-field",
    ),
]


@pytest.mark.parametrize("payload", MALFORMED)
def test_malformed_requests_get_google_4xx(emulator: Emulator, payload: bytes) -> None:
    status, body = raw_exchange(_port(emulator.storage_url), payload)
    _assert_google_error(status, body)
    assert http_ok(emulator)


def test_huge_body_is_413_without_reading_it(emulator: Emulator) -> None:
    started = time.monotonic()
    status, body = raw_exchange(
        _port(emulator.storage_url),
        b"POST /upload/storage/v1/b/x/o?uploadType=media&name=n HTTP/1.1\r\n"
        b"Content-Length: 999999999999\r\n\r\npartial",
    )
    assert status == 413
    assert body["error"]["code"] == 413
    assert time.monotonic() - started < 5


def test_body_limit_is_configurable() -> None:
    with run_emulator(max_body_bytes=1024) as small:
        small.storage.create_bucket("lim", "p-1")
        url = small.storage_url
        ok = _post(url, "/upload/storage/v1/b/lim/o?uploadType=media&name=a", b"x" * 1024)
        big = _post(url, "/upload/storage/v1/b/lim/o?uploadType=media&name=b", b"x" * 1025)
    assert (ok, big) == (200, 413)


def _post(url: str, path: str, body: bytes) -> int:
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("POST", path, body=body)
        response = conn.getresponse()
        response.read()
        return response.status
    except (ConnectionError, OSError):
        return -1
    finally:
        conn.close()


def test_truncated_body_does_not_hang_or_break_server(emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", _port(emulator.storage_url)), timeout=10) as sock:
        sock.sendall(b'POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"name"')
        sock.shutdown(socket.SHUT_WR)
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 400")
    assert http_ok(emulator)


def test_chunked_request_body_is_decoded(emulator: Emulator) -> None:
    body = b'{"name": "chunked-bucket"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, reply = raw_exchange(
        _port(emulator.storage_url),
        b"POST /storage/v1/b?project=p-1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunked,
    )
    assert status == 200, reply
    assert reply["name"] == "chunked-bucket"


def test_malformed_input_on_healthcare_port(emulator: Emulator, http: HttpCall) -> None:
    url = emulator.healthcare_url
    cases: list[tuple[str, str, Any]] = [
        ("POST", "/_emulator/faults", b"{oops"),
        ("POST", "/_emulator/faults", b"[]"),
        ("POST", "/_emulator/faults", {"spec": 5}),
        ("POST", "/_emulator/faults", {"unknownField": 1}),
        ("POST", "/_emulator/faults", {"spec": "POST:x=999"}),
        ("POST", "/_emulator/faults", {"faults": [{"spec": "POST:(=503"}]}),
        ("POST", "/_emulator/faults", {"faults": [{"spec": "GET:x=503", "kind": "status"}]}),
        ("POST", "/_emulator/faults", {"spec": "operation-seconds=slow"}),
        ("POST", "/_emulator/faults", {"spec": "fail-operation=99"}),
        ("POST", "/_emulator/faults", {"rules": [{"path": "x", "status": 503}]}),
        ("DELETE", "/_emulator/faults/12345", None),
        ("GET", "/_emulator/requests?path=(", None),
        ("GET", "/v1/projects/p/../../etc/passwd", None),
        ("GET", "/v1/projects/p%2Fq/locations/l/datasets", None),
    ]
    for method, path, body in cases:
        result = http(url, method, path, body)
        assert 400 <= result.status < 500, (method, path, result)
        assert result.json()["error"]["code"] == result.status
    assert http(url, "GET", "/_emulator/faults").json()["faults"] == []


def test_idle_connections_do_not_block_others(emulator: Emulator) -> None:
    idle = [
        socket.create_connection(("127.0.0.1", _port(emulator.storage_url)), timeout=5)
        for _ in range(10)
    ]
    try:
        idle[0].sendall(b"POST /storage/v1/b?project=p HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
        assert http_ok(emulator)
    finally:
        for sock in idle:
            sock.close()


def http_ok(emulator: Emulator) -> bool:
    parts = urlsplit(emulator.healthcare_url)
    conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", "/_emulator/health")
        response = conn.getresponse()
        return response.status == 200 and json.loads(response.read()) == emulator.endpoints()
    finally:
        conn.close()


def test_two_hundred_concurrent_clients(emulator: Emulator) -> None:
    emulator.storage.create_bucket("busy", "p-1")
    clients = 200
    connected = threading.Barrier(clients, timeout=60)
    parts = urlsplit(emulator.storage_url)

    def client(index: int) -> tuple[int, int]:
        conn = HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        try:
            conn.connect()
            connected.wait()  # all 200 connections are open at the same time
            body = f"object {index}".encode()
            conn.request(
                "POST",
                f"/upload/storage/v1/b/busy/o?uploadType=media&name=obj-{index:03d}",
                body=body,
            )
            upload = conn.getresponse()
            upload.read()
            conn.request("GET", f"/storage/v1/b/busy/o/obj-{index:03d}?alt=media")
            download = conn.getresponse()
            ok = download.read() == body
            return upload.status, download.status if ok else -1
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(client, range(clients)))
    assert results == [(200, 200)] * clients
    items, _ = emulator.storage.list_objects("busy")
    assert len(items) == clients


def test_head_request(emulator: Emulator) -> None:
    emulator.storage.create_bucket("heady", "p-1")
    parts = urlsplit(emulator.storage_url)
    conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("HEAD", "/storage/v1/b/heady")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b""
    finally:
        conn.close()


def test_request_log_and_admin_endpoints(emulator: Emulator, http: HttpCall) -> None:
    http(emulator.storage_url, "POST", "/storage/v1/b?project=p-1", {"name": "logged"})
    http(emulator.storage_url, "GET", "/storage/v1/b/logged")
    http(emulator.healthcare_url, "GET", "/_emulator/health")  # admin: not logged
    records = emulator.requests.records()
    assert [(r.api, r.method, r.path, r.status) for r in records] == [
        ("storage", "POST", "/storage/v1/b", 200),
        ("storage", "GET", "/storage/v1/b/logged", 200),
    ]
    assert records[0].query == "project=p-1"
    listed = http(emulator.healthcare_url, "GET", "/_emulator/requests?method=GET").json()
    assert [r["path"] for r in listed["requests"]] == ["/storage/v1/b/logged"]
    assert http(emulator.healthcare_url, "DELETE", "/_emulator/requests").status == 200
    assert len(emulator.requests) == 0

    assert http(emulator.healthcare_url, "POST", "/_emulator/reset").status == 200
    assert not emulator.storage.bucket_exists("logged")


def test_request_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    stream = io.StringIO()
    with run_emulator(log_stream=stream) as emu:
        assert http_ok(emu)
        _post(emu.storage_url, "/storage/v1/b", b"")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert '"GET /_emulator/health" 200' in lines[0]
    assert lines[1].startswith("127.0.0.1 storage ")
    assert '"POST /storage/v1/b" 400' in lines[1]
