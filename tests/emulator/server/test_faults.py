"""Fault injection: the text syntax, the Python API, the admin endpoint, real clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from http.client import HTTPConnection, RemoteDisconnected
from typing import Any
from urllib.parse import urlsplit

import pytest
from dicom_transfer_emulator.app import Emulator, run_emulator
from dicom_transfer_emulator.errors import ApiException
from dicom_transfer_emulator.faults import Faults
from dicom_transfer_emulator.server.faults import parse_fault_spec
from google.cloud import storage

HttpCall = Callable[..., Any]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("POST:.*:import=503x2", ("POST", ".*:import", "status", 503, 0.0, 2)),
        ("get:/operations/=delay0.5sx*", ("GET", "/operations/", "delay", None, 0.5, None)),
        ("*:^/storage/v1/b$=reset", ("*", "^/storage/v1/b$", "reset", None, 0.0, 1)),
        ("POST:/o$=reset-afterx2", ("POST", "/o$", "reset-after", None, 0.0, 2)),
        ("PUT:a=b=429x10", ("PUT", "a=b", "status", 429, 0.0, 10)),
        ("POST:x=503:try: later", ("POST", "x", "status", 503, 0.0, 1)),
        ("POST:x=503x2:a=b", ("POST", "x", "status", 503, 0.0, 2)),
    ],
)
def test_parse_fault_spec(spec: str, expected: tuple[Any, ...]) -> None:
    rule = parse_fault_spec(spec)
    assert (rule.method, rule.path_regex, rule.kind, rule.status, rule.delay_s, rule.times) == (
        expected
    )
    assert parse_fault_spec(rule.spec).spec == rule.spec  # a rule's spec is its own text


def test_a_status_fault_carries_its_message_in_the_spec() -> None:
    rule = parse_fault_spec("POST:x=503x2:a=b: c")
    assert (rule.message, rule.spec) == ("a=b: c", "POST:x=503x2:a=b: c")
    with pytest.raises(ApiException):
        parse_fault_spec("POST:x=resetx2:why")  # only a status fault has a message


@pytest.mark.parametrize(
    "spec",
    [
        "nope",
        "POST:=503",
        ":x=503",
        "POST:x=600",
        "POST:x=200",
        "POST:x=delay",
        "POST:x=delay-1s",
        "POST:(=503",
        "PO ST:x=503",
        "POST:x=503x0",
        "POST:x=503xx",
        "operation-seconds=fast",
        "fail-operation=abc",
        "fail-operation=42:too big",
    ],
)
def test_invalid_fault_specs_are_rejected(spec: str) -> None:
    with pytest.raises(ApiException) as excinfo:
        Faults().add_spec(spec)
    assert excinfo.value.code == 400


def test_rules_are_consumed_in_order() -> None:
    faults = Faults()
    faults.fail_requests("POST", r":import$", status=503, times=2)
    faults.fail_requests("*", r":import$", status=429, times=1)
    faults.delay_requests("*", r"/v1/", seconds=0.25, times=3)
    decisions = [faults.decide("POST", "/v1/projects/p/x:import") for _ in range(5)]
    statuses = [d.status if d else None for d in decisions]
    assert statuses == [503, 503, 429, None, None]
    assert [d.delay_s if d else 0 for d in decisions] == [0.25, 0.25, 0.25, 0, 0]
    assert faults.decide("GET", "/other") is None
    assert faults.rules() == []


def test_operation_knobs() -> None:
    faults = Faults().operations
    faults.add_spec("operation-seconds=2.5")
    faults.add_spec("instance-seconds=0.01")
    faults.add_spec("fail-operation=13:disk on fire")
    faults.fail_next_operation(7)
    assert (faults.operation_seconds, faults.instance_seconds) == (2.5, 0.01)
    first = faults.take_operation_failure()
    second = faults.take_operation_failure()
    assert first is not None and (first.code, first.message) == (13, "disk on fire")
    assert second is not None and second.code == 7 and "PERMISSION_DENIED" in second.message
    assert faults.take_operation_failure() is None
    faults.reset()
    assert (faults.operation_seconds, faults.instance_seconds) == (0.0, 0.0)


def test_status_fault_over_http(emulator: Emulator, http: HttpCall) -> None:
    emulator.faults.fail_requests("GET", r"^/storage/v1/b$", status=503, times=2)
    url = emulator.storage_url
    results = [http(url, "GET", "/storage/v1/b?project=p-1") for _ in range(3)]
    assert [r.status for r in results] == [503, 503, 200]
    error = results[0].json()["error"]
    assert (error["code"], error["status"]) == (503, "UNAVAILABLE")
    assert [r.fault for r in emulator.requests] == ["503", "503", None]


def test_429_on_healthcare_port_before_routing(emulator: Emulator, http: HttpCall) -> None:
    emulator.faults.add_spec("POST:.*:import=429")
    path = "/v1/projects/p/locations/l/datasets/d/dicomStores/s:import"
    first = http(emulator.healthcare_url, "POST", path, {"gcsSource": {"uri": "gs://b/x"}})
    assert first.status == 429
    assert first.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert emulator.requests.count("POST", r":import$") == 1


def test_delay_fault(emulator: Emulator, http: HttpCall) -> None:
    emulator.faults.delay_requests("GET", r"^/storage/v1/b$", seconds=0.3, times=1)
    started = time.monotonic()
    assert http(emulator.storage_url, "GET", "/storage/v1/b?project=p-1").status == 200
    assert time.monotonic() - started >= 0.3


def test_reset_fault_drops_the_connection(emulator: Emulator) -> None:
    emulator.faults.reset_connections("GET", r"^/storage/v1/b$", times=1)
    parts = urlsplit(emulator.storage_url)
    conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", "/storage/v1/b?project=p-1")
        with pytest.raises((ConnectionResetError, RemoteDisconnected)):
            conn.getresponse().read()
    finally:
        conn.close()
    assert [r.status for r in emulator.requests] == [0]


def test_reset_after_fault_performs_the_request_then_drops_the_connection(
    emulator: Emulator,
) -> None:
    emulator.faults.add_spec("POST:^/storage/v1/b$=reset-after")
    parts = urlsplit(emulator.storage_url)
    conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        body = '{"name": "made-anyway"}'
        conn.request(
            "POST", "/storage/v1/b?project=p-1", body, {"Content-Type": "application/json"}
        )
        with pytest.raises((ConnectionResetError, RemoteDisconnected)):
            conn.getresponse().read()
    finally:
        conn.close()
    assert [r.status for r in emulator.requests] == [0]
    assert [b.name for b in emulator.storage.list_buckets("p-1")] == ["made-anyway"]


def test_admin_paths_are_never_faulted(emulator: Emulator, http: HttpCall) -> None:
    emulator.faults.add_spec("*:.*=503x*")
    assert http(emulator.healthcare_url, "GET", "/_emulator/health").status == 200
    assert http(emulator.storage_url, "GET", "/storage/v1/b?project=p").status == 503


def test_admin_endpoint(emulator: Emulator, http: HttpCall) -> None:
    url = emulator.healthcare_url
    specs = [
        "POST:.*:export=503x3",
        "GET:/operations/=delay0.1sx*",
        "operation-seconds=1.5",
        "instance-seconds=0.2",
        "fail-operation=3:bad data",
    ]
    added = http(url, "POST", "/_emulator/faults", {"spec": specs})
    assert added.status == 200, added
    listed = http(url, "GET", "/_emulator/faults").json()["faults"]
    assert [f["spec"] for f in listed] == [
        "POST:.*:export=503x3",
        "GET:/operations/=delay0.1sx*",
        "operation-seconds=1.5",
        "instance-seconds=0.2",
        "fail-operation=3:bad data",
    ]
    assert emulator.faults.operations.operation_seconds == 1.5

    first_id = listed[0]["id"]
    assert http(url, "DELETE", f"/_emulator/faults/{first_id}").status == 200
    assert len(emulator.faults.rules()) == 1
    failure_id = listed[4]["id"]
    assert http(url, "DELETE", f"/_emulator/faults/{failure_id}").status == 200
    assert emulator.faults.operations.pending_operation_failures() == []
    cleared = http(url, "DELETE", "/_emulator/faults").json()
    assert cleared["faults"] == []


def test_what_get_lists_post_accepts(emulator: Emulator, http: HttpCall) -> None:
    url = emulator.healthcare_url
    specs = [
        "t-1@POST:.*:import=429x2:slow down",
        "storage.objects.get=reset-afterx*",
        "*:^/storage/v1/b$=resetx1",
        "operation-seconds=2",
        "fail-operation=13:disk on fire",
        "fail-instance=export:path:*CT_small*:5:gone",
    ]
    http(url, "POST", "/_emulator/faults", {"spec": specs})
    emulator.faults.decide("POST", "/v1/x:import", scope="t-1")  # one hit: 1 remaining
    listed = http(url, "GET", "/_emulator/faults").json()

    emulator.faults.reset()
    reposted = http(url, "POST", "/_emulator/faults", listed)
    relisted = http(url, "GET", "/_emulator/faults").json()

    assert reposted.status == 200, reposted
    assert listed["faults"][0]["spec"] == "t-1@POST:.*:import=429x1:slow down"
    assert [f["spec"] for f in relisted["faults"]] == [f["spec"] for f in listed["faults"]]
    assert len(relisted["faults"]) == len(specs)


def test_invalid_admin_body_changes_nothing(emulator: Emulator, http: HttpCall) -> None:
    bad = http(
        emulator.healthcare_url,
        "POST",
        "/_emulator/faults",
        {"spec": ["GET:x=503", "operation-seconds=3", "GET:y=nonsense"]},
    )
    assert bad.status == 400
    assert "GET:y=nonsense" in bad.json()["error"]["message"]
    assert emulator.faults.rules() == [] and emulator.faults.operations.operation_seconds == 0


def test_google_client_retries_through_503(emulator: Emulator, storage_client: Any) -> None:
    assert isinstance(storage_client, storage.Client)
    bucket = storage_client.create_bucket("flaky")
    emulator.faults.fail_requests("POST", r"^/upload/storage/v1/b/flaky/o$", 503, times=2)
    bucket.blob("x").upload_from_string(b"survived", if_generation_match=0)
    uploads = emulator.requests.matching("POST", r"^/upload/")
    assert [r.status for r in uploads] == [503, 503, 200]
    assert emulator.storage.read_object("flaky", "x") == b"survived"


def test_startup_faults_survive_reset() -> None:
    with run_emulator(faults=["GET:^/storage/v1/b$=503x*"]) as emu:
        emu.faults.fail_requests("POST", "x")
        emu.reset()
        rules = emu.faults.rules()
        assert [(r.method, r.path_regex, r.times) for r in rules] == [
            ("GET", "^/storage/v1/b$", None)
        ]
