"""Per-instance faults (``fail-instance=…``): the matching instance fails with a log entry at
the operation's ``logsUrl``, the others succeed, as Google's service reports them."""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Callable
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydicom
import pytest
from dicom_transfer_emulator.app import Emulator
from dicom_transfer_emulator.errors import ApiException
from dicom_transfer_emulator.faults import FaultInjector, parse_instance_failure
from dicom_transfer_emulator.healthcare_api import healthcare_service
from healthcare_support import client, counters, fresh_copy, make_store, run_export, run_import
from test_server_cli import cli

HttpCall = Callable[..., Any]
NAMES = ("CT_small.dcm", "MR_small.dcm", "rtdose.dcm")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("uid:1.2.3.4", (None, "1.2.3.4", None, 13)),
        ("path:*CT_small*", (None, None, "*CT_small*", 13)),
        ("export:uid:1.2.3:9", ("export", "1.2.3", None, 9)),
        ("import:path:dir/*.dcm:5:gone: really", ("import", None, "dir/*.dcm", 5)),
    ],
)
def test_parse_instance_failure(value: str, expected: tuple[Any, ...]) -> None:
    fault = parse_instance_failure(value)
    assert (fault.operation, fault.uid, fault.path, fault.code) == expected
    if value.endswith("really"):
        assert fault.message == "gone: really"
    else:
        assert "injected by the emulator" in fault.message


@pytest.mark.parametrize(
    "spec",
    [
        "fail-instance=",
        "fail-instance=uid",
        "fail-instance=uid:",
        "fail-instance=sop:1.2.3",
        "fail-instance=uid:1.2.x",  # not a DICOM UID
        "fail-instance=uid:1.2.3:abc",
        "fail-instance=uid:1.2.3:0",
        "fail-instance=uid:1.2.3:17",
        "fail-instance=copy:uid:1.2.3",
    ],
)
def test_invalid_instance_faults_are_rejected(spec: str) -> None:
    faults = FaultInjector()
    with pytest.raises(ApiException) as excinfo:
        faults.add_spec(spec)
    assert excinfo.value.code == 400
    assert faults.instance_failures() == []


def test_python_api_selects_by_operation_uid_and_path() -> None:
    faults = FaultInjector()
    by_uid = faults.fail_instances(uid="1.2.3", operation="export", code=9, message="nope")
    by_path = faults.fail_instances(path="*/instances/4.5.6")
    assert faults.instance_failure("export", "/studies/1/series/2/instances/1.2.3", "1.2.3") == (
        by_uid
    )
    assert faults.instance_failure("import", "a.dcm", "1.2.3") is None  # export only
    assert faults.instance_failure("import", "/x/instances/4.5.6", None) == by_path
    assert faults.instance_failure("export", "/x/instances/4.5.7", "4.5.7") is None
    with pytest.raises(ApiException):
        faults.fail_instances(uid="1.2.3", path="*")
    with pytest.raises(ApiException):
        faults.fail_instances(uid="1.2.3", operation="copy")
    assert faults.remove(by_uid.fault_id)
    assert faults.instance_failures() == [by_path]
    faults.reset()
    assert faults.instance_failures() == []


def load(emulator: Emulator) -> tuple[Any, str, dict[str, str]]:
    """A store holding fresh copies of NAMES; returns (client, store, name -> SOP UID)."""
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    uids = {}
    for name in NAMES:
        data = fresh_copy(name)
        uids[name] = str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID)
        emulator.storage.write_object("src", name, data)
    return hc, store, uids


def error_entries(emulator: Emulator, op: dict[str, Any]) -> list[dict[str, Any]]:
    logs = healthcare_service(emulator).state.get_logs(op["name"].rsplit("/", 1)[1]) or []
    return [entry for entry in logs if entry["severity"] == "ERROR"]


def test_bigquery_export_fails_the_matching_instance_only(emulator: Emulator) -> None:
    hc, store, uids = load(emulator)
    assert counters(run_import(hc, store, "gs://src/*.dcm")) == (3, 0, 0)
    bad = uids["MR_small.dcm"]
    emulator.faults.add_spec(f"fail-instance=export:uid:{bad}:13:disk on fire")
    table = "bq://test-project.dicom_meta.instances"
    body = {"bigqueryDestination": {"tableUri": table, "writeDisposition": "WRITE_APPEND"}}
    op = run_export(hc, store, body)
    assert counters(op) == (2, 1, 0)
    assert op["error"]["code"] == 3 and op["metadata"]["logsUrl"] in op["error"]["message"]
    [entry] = error_entries(emulator, op)
    assert entry["resource"].endswith(f"/instances/{bad}")
    assert (entry["code"], entry["message"]) == (13, "disk on fire")
    rows = healthcare_service(emulator).read_table(table)
    assert sorted(r["SOPInstanceUID"] for r in rows) == sorted(
        uid for name, uid in uids.items() if uid != bad
    )
    # The fault stays until removed: the next export fails the same instance again.
    assert counters(run_export(hc, store, body)) == (2, 1, 0)


def test_import_fails_a_path_match_and_stores_the_others(emulator: Emulator) -> None:
    hc, store, uids = load(emulator)
    emulator.faults.add_spec("fail-instance=import:path:CT_*")
    emulator.faults.add_spec(f"fail-instance=export:uid:{uids['rtdose.dcm']}")  # not imports
    op = run_import(hc, store, "gs://src/*.dcm")
    assert counters(op) == (2, 1, 0)
    [entry] = error_entries(emulator, op)
    assert entry["resource"] == "gs://src/CT_small.dcm" and entry["code"] == 13
    stored = {r.sop_instance_uid for r in healthcare_service(emulator).state.list_instances(store)}
    assert stored == {uids["MR_small.dcm"], uids["rtdose.dcm"]}


def test_gcs_export_fails_a_path_match_and_writes_the_others(emulator: Emulator) -> None:
    hc, store, uids = load(emulator)
    assert counters(run_import(hc, store, "gs://src/*.dcm")) == (3, 0, 0)
    emulator.storage.create_bucket("out", "test-project")
    emulator.faults.fail_instances(path=f"*/instances/{uids['CT_small.dcm']}", code=5)
    op = run_export(hc, store, {"gcsDestination": {"uriPrefix": "gs://out/x"}})
    assert counters(op) == (2, 1, 0)
    [entry] = error_entries(emulator, op)
    assert entry["code"] == 5 and "NOT_FOUND" in entry["message"]
    written, _ = emulator.storage.list_objects("out")
    exported = {m.name.removesuffix(".dcm").rsplit("/", 1)[1] for m in written}
    assert exported == {uids["MR_small.dcm"], uids["rtdose.dcm"]}


def test_admin_endpoint_adds_lists_and_removes(emulator: Emulator, http: HttpCall) -> None:
    url = emulator.healthcare_url
    added = http(url, "POST", "/_emulator/faults", {"spec": "fail-instance=uid:1.2.3:9:stop"})
    assert added.status == 200, added
    [listed] = added.json()["instanceFailures"]
    assert listed == {
        "id": listed["id"],
        "operation": None,
        "uid": "1.2.3",
        "path": None,
        "code": 9,
        "message": "stop",
    }
    bad = http(url, "POST", "/_emulator/faults", {"spec": ["GET:x=503", "fail-instance=uid:x"]})
    assert bad.status == 400 and emulator.faults.rules() == []  # nothing of it applied
    assert http(url, "DELETE", f"/_emulator/faults/{listed['id']}").status == 200
    assert emulator.faults.instance_failures() == []


def test_fault_flag_on_the_command_line(tmp_path: Path) -> None:
    spec = "fail-instance=export:path:*CT_small*:13:broken"
    with cli(tmp_path, "--fault", spec, "--quiet") as (proc, endpoints):
        parts = urlsplit(endpoints["healthcare"])
        conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            conn.request("GET", "/_emulator/faults")
            state = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        assert [(f["operation"], f["path"], f["message"]) for f in state["instanceFailures"]] == [
            ("export", "*CT_small*", "broken")
        ]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
