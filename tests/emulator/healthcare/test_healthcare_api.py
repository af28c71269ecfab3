"""Datasets, DICOM stores, operations and errors through googleapiclient (static discovery)."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from dicom_transfer_emulator.app import Emulator
from googleapiclient.errors import HttpError
from support.healthcare import (
    PARENT,
    client,
    counters,
    datasets,
    fresh_copy,
    make_store,
    run_import,
    wait_done,
)


def error_of(exc: HttpError) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.content)["error"]
    assert set(body) >= {"code", "message", "status"}
    assert body["code"] == exc.resp.status
    return body


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_dataset_lifecycle(emulator: Emulator, version: str) -> None:
    ds = datasets(client(emulator, version))
    op = ds.create(parent=PARENT, datasetId="ds1", body={"timeZone": "Europe/Rome"}).execute()
    assert op["name"].startswith(f"{PARENT}/datasets/ds1/operations/")
    assert op["done"] is True
    dataset_type = f"type.googleapis.com/google.cloud.healthcare.{version}.Dataset"
    assert op["response"]["@type"] == dataset_type
    assert op["response"]["name"] == f"{PARENT}/datasets/ds1"
    assert op["metadata"]["apiMethodName"].endswith("DatasetService.CreateDataset")
    assert ds.operations().get(name=op["name"]).execute()["done"] is True
    got = ds.get(name=f"{PARENT}/datasets/ds1").execute()
    assert got == {"name": f"{PARENT}/datasets/ds1", "timeZone": "Europe/Rome"}
    ds.create(parent=PARENT, datasetId="ds2", body={}).execute()
    listed = ds.list(parent=PARENT).execute()["datasets"]
    assert [d["name"].rsplit("/", 1)[1] for d in listed] == ["ds1", "ds2"]
    first = ds.list(parent=PARENT, pageSize=1).execute()
    second = ds.list(parent=PARENT, pageSize=1, pageToken=first["nextPageToken"]).execute()
    assert [first["datasets"][0]["name"], second["datasets"][0]["name"]] == [
        d["name"] for d in listed
    ]
    assert "nextPageToken" not in second
    patched = ds.patch(
        name=f"{PARENT}/datasets/ds2", updateMask="timeZone", body={"timeZone": "UTC"}
    ).execute()
    assert patched["timeZone"] == "UTC"
    with pytest.raises(HttpError) as exc:
        ds.create(parent=PARENT, datasetId="ds1", body={}).execute()
    assert error_of(exc.value)["status"] == "ALREADY_EXISTS"
    assert ds.delete(name=f"{PARENT}/datasets/ds1").execute() == {}
    with pytest.raises(HttpError) as exc:
        ds.get(name=f"{PARENT}/datasets/ds1").execute()
    assert error_of(exc.value)["status"] == "NOT_FOUND"


def test_dicom_store_lifecycle_and_iam(emulator: Emulator) -> None:
    hc = client(emulator)
    ds = datasets(hc)
    ds.create(parent=PARENT, datasetId="ds", body={}).execute()
    stores = ds.dicomStores()
    parent = f"{PARENT}/datasets/ds"
    created = stores.create(
        parent=parent, dicomStoreId="s1", body={"labels": {"team": "imaging"}}
    ).execute()
    assert created == {"name": f"{parent}/dicomStores/s1", "labels": {"team": "imaging"}}
    stores.create(parent=parent, dicomStoreId="s2", body={}).execute()
    assert [s["name"][-2:] for s in stores.list(parent=parent).execute()["dicomStores"]] == [
        "s1",
        "s2",
    ]
    patched = stores.patch(
        name=f"{parent}/dicomStores/s1", updateMask="labels", body={"labels": {"a": "b"}}
    ).execute()
    assert patched["labels"] == {"a": "b"}
    cleared = stores.patch(name=f"{parent}/dicomStores/s1", updateMask="labels", body={}).execute()
    assert "labels" not in cleared
    with pytest.raises(HttpError) as exc:
        stores.patch(name=f"{parent}/dicomStores/s1", updateMask="name", body={}).execute()
    assert exc.value.resp.status == 400

    policy = stores.getIamPolicy(resource=f"{parent}/dicomStores/s1").execute()
    assert "etag" in policy
    binding = {"role": "roles/healthcare.dicomViewer", "members": ["user:a@example.com"]}
    stored = stores.setIamPolicy(
        resource=f"{parent}/dicomStores/s1",
        body={"policy": {"bindings": [binding], "etag": policy["etag"]}},
    ).execute()
    assert stored["bindings"] == [binding]
    assert stores.getIamPolicy(resource=f"{parent}/dicomStores/s1").execute() == stored
    with pytest.raises(HttpError) as exc:  # stale etag
        stores.setIamPolicy(
            resource=f"{parent}/dicomStores/s1",
            body={"policy": {"bindings": [], "etag": policy["etag"]}},
        ).execute()
    assert exc.value.resp.status == 409

    with pytest.raises(HttpError) as exc:
        stores.create(parent=parent, dicomStoreId="s1", body={}).execute()
    assert error_of(exc.value)["status"] == "ALREADY_EXISTS"
    with pytest.raises(HttpError) as exc:
        stores.create(parent=f"{PARENT}/datasets/nope", dicomStoreId="s", body={}).execute()
    assert error_of(exc.value)["status"] == "NOT_FOUND"
    assert stores.delete(name=f"{parent}/dicomStores/s1").execute() == {}
    with pytest.raises(HttpError) as exc:
        stores.get(name=f"{parent}/dicomStores/s1").execute()
    assert error_of(exc.value)["status"] == "NOT_FOUND"


def raw_request(
    emu: Emulator, method: str, path: str, body: bytes | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(emu.healthcare_url + path, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"/v1/{PARENT}/datasets?datasetId=bad%20id", b"{}"),
        ("POST", f"/v1/{PARENT}/datasets?datasetId=..", b"{}"),
        ("POST", f"/v1/{PARENT}/datasets", b"{}"),
        ("POST", f"/v1/{PARENT}/datasets?datasetId=ok", b"{not json"),
        ("POST", f"/v1/{PARENT}/datasets?datasetId=ok", b'{"unknownField": 1}'),
        ("GET", "/v1/projects/Bad_Project/locations/us-central1/datasets", None),
        ("GET", f"/v1/{PARENT}/datasets/a%2Fb", None),
        ("GET", f"/v1/{PARENT}/datasets/x/dicomStores/a%2F..", None),
    ],
)
def test_invalid_requests_get_400_in_google_shape(
    emulator: Emulator, method: str, path: str, body: bytes | None
) -> None:
    status, payload = raw_request(emulator, method, path, body)
    assert status == 400
    assert payload["error"]["code"] == 400
    assert payload["error"]["status"] == "INVALID_ARGUMENT"
    assert payload["error"]["message"]


def test_import_request_validation(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    stores = datasets(hc).dicomStores()
    bad_bodies: list[dict[str, Any]] = [
        {},
        {"gcsSource": {"uri": "s3://bucket/x.dcm"}},
        {"gcsSource": {"uri": "gs://bucket/**/x.dcm"}},
        {"gcsSource": {"uri": "gs://bucket/*/**.dcm"}},
        {"gcsSource": {"uri": "gs://bucket/a/**.dcm/b"}},
        {"gcsSource": {"uri": 5}},
        {"gcsSource": {"uri": "gs://bucket/x.dcm", "extra": True}},
        {
            "gcsSource": {"uri": "gs://bucket/x.dcm"},
            "blobStorageSettings": {"blobStorageClass": "HOT"},
        },
    ]
    for body in bad_bodies:
        with pytest.raises(HttpError) as exc:
            stores.import_(name=store, body=body).execute()
        assert error_of(exc.value)["status"] == "INVALID_ARGUMENT", body
    with pytest.raises(HttpError) as exc:
        stores.import_(name=store + "x", body={"gcsSource": {"uri": "gs://b/x"}}).execute()
    assert error_of(exc.value)["status"] == "NOT_FOUND"
    assert emulator.requests.count("POST", r":import$") == len(bad_bodies) + 1


def test_operations_list_paging_and_get(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    emulator.storage.write_object("src", "a.dcm", fresh_copy("CT_small.dcm"))
    names = {run_import(hc, store, "gs://src/a.dcm")["name"] for _ in range(3)}
    ops = datasets(hc).operations()
    dataset = store.split("/dicomStores/")[0]
    seen: list[str] = []
    token = None
    while True:
        page = ops.list(name=dataset, pageSize=2, pageToken=token).execute()
        seen += [o["name"] for o in page["operations"]]
        assert len(page["operations"]) <= 2
        token = page.get("nextPageToken")
        if not token:
            break
    assert names <= set(seen)
    assert len(seen) == len(set(seen)) == 4  # 3 imports + the dataset creation
    with pytest.raises(HttpError) as exc:
        ops.get(name=f"{dataset}/operations/123").execute()
    assert error_of(exc.value)["status"] == "NOT_FOUND"


def test_counters_advance_during_a_slow_operation_and_cancel(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    for i in range(10):
        emulator.storage.write_object("src", f"in/{i}.dcm", fresh_copy("CT_small.dcm"))
    emulator.faults.set_operation_timing(operation_seconds=5.0)
    op = (
        datasets(hc)
        .dicomStores()
        .import_(name=store, body={"gcsSource": {"uri": "gs://src/in/*.dcm"}})
        .execute()
    )
    assert "done" not in op
    snapshots: list[tuple[int, int, int]] = []

    def watch(current: dict[str, Any]) -> None:
        snapshots.append(counters(current))
        if counters(current)[0] >= 3 and not current.get("done"):
            datasets(hc).operations().cancel(name=current["name"], body={}).execute()

    done = wait_done(hc, op, timeout=20, on_poll=watch)
    running = [s for s in snapshots if s[2] > 0]
    assert running, snapshots
    assert len({s[0] for s in running}) >= 2, "success counter must advance while running"
    assert all(s[0] + s[2] == 10 for s in running)
    assert done["error"]["code"] == 1
    assert done["metadata"]["cancelRequested"] is True
    success, failure, _ = counters(done)
    assert 3 <= success < 10 and failure == 0
    stored = emulator.healthcare.state.list_instances(store)
    assert len(stored) == success


def test_fail_next_operation_fault(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    emulator.storage.write_object("src", "a.dcm", fresh_copy("CT_small.dcm"))
    emulator.faults.fail_next_operation(13, "backend exploded")
    failed = run_import(hc, store, "gs://src/a.dcm")
    assert failed["error"] == {"code": 13, "message": "backend exploded"}
    assert emulator.healthcare.state.list_instances(store) == []
    ok = run_import(hc, store, "gs://src/a.dcm")
    assert "error" not in ok and counters(ok) == (1, 0, 0)


def test_logs_endpoint_and_emulator_extras(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    emulator.storage.write_object("src", "bad.dcm", b"not dicom")
    op = run_import(hc, store, "gs://src/bad.dcm")
    status, logs = raw_request(emulator, "GET", urlsplit(op["metadata"]["logsUrl"]).path)
    assert status == 200
    assert logs["entries"][0]["resource"] == "gs://src/bad.dcm"
    assert logs["entries"][0]["severity"] == "ERROR"
    status, agent = raw_request(emulator, "GET", "/_emulator/service-agent/test-project")
    assert agent["email"] == emulator.healthcare.service_agent_email("test-project")
    number = agent["projectNumber"]
    assert agent["email"] == f"service-{number}@gcp-sa-healthcare.iam.gserviceaccount.com"
    assert emulator.storage.create_bucket("nnn", "test-project").project_number == number
    status, _ = raw_request(emulator, "GET", "/_emulator/logs/999")
    assert status == 404


def test_instance_timing_reset_and_null_fields(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    for i in range(4):
        emulator.storage.write_object("src", f"{i}.dcm", fresh_copy("CT_small.dcm"))
    emulator.faults.set_operation_timing(instance_seconds=0.1)
    op = run_import(hc, store, "gs://src/*.dcm", blobStorageSettings=None)
    created, ended = op["metadata"]["createTime"], op["metadata"]["endTime"]
    assert counters(op) == (4, 0, 0)
    elapsed = datetime.fromisoformat(ended) - datetime.fromisoformat(created)
    assert elapsed.total_seconds() >= 0.39  # 4 instances x 0.1 s (timestamps in ms)
    # A reset while an operation runs stops its worker and forgets it.
    emulator.faults.set_operation_timing(operation_seconds=30)
    datasets(hc).dicomStores().import_(
        name=store, body={"gcsSource": {"uri": "gs://src/*.dcm"}}
    ).execute()
    service = emulator.healthcare
    assert service.runner.running() == 1
    emulator.reset()
    deadline = time.monotonic() + 5
    while service.runner.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.runner.running() == 0
    assert service.state.list_datasets(PARENT) == []


def test_concurrent_imports_into_one_store(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    emulator.storage.create_bucket("src", "test-project")
    for i in range(20):
        emulator.storage.write_object("src", f"{i:02d}.dcm", fresh_copy("MR_small.dcm"))
    stores = datasets(hc).dicomStores()
    body = {"gcsSource": {"uri": "gs://src/*.dcm"}}
    submitted = [stores.import_(name=store, body=body).execute() for _ in range(3)]
    done = [wait_done(client(emulator), op) for op in submitted]
    assert all(counters(op) == (20, 0, 0) for op in done)  # duplicates count as success
    assert len(emulator.healthcare.state.list_instances(store)) == 20


def test_a_store_with_both_notification_forms_is_400(emulator: Emulator) -> None:
    hc = client(emulator)
    datasets(hc).create(parent=PARENT, datasetId="ds", body={}).execute()
    stores = datasets(hc).dicomStores()
    parent = f"{PARENT}/datasets/ds"
    single = {"pubsubTopic": "projects/p/topics/t"}
    listed = [{"pubsubTopic": "projects/p/topics/u"}]

    with pytest.raises(HttpError) as both:
        stores.create(
            parent=parent,
            dicomStoreId="both",
            body={"notificationConfig": single, "notificationConfigs": listed},
        ).execute()
    stores.create(parent=parent, dicomStoreId="s", body={"notificationConfig": single}).execute()
    with pytest.raises(HttpError) as added:
        stores.patch(
            name=f"{parent}/dicomStores/s",
            updateMask="notificationConfigs",
            body={"notificationConfigs": listed},
        ).execute()
    swapped = stores.patch(
        name=f"{parent}/dicomStores/s",
        updateMask="notificationConfig,notificationConfigs",
        body={"notificationConfigs": listed},
    ).execute()

    for exc in (both, added):
        error = error_of(exc.value)
        assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
        assert "notificationConfig and notificationConfigs" in error["message"]
    assert "notificationConfig" not in swapped and swapped["notificationConfigs"] == listed
    assert [s["name"][-1:] for s in stores.list(parent=parent).execute()["dicomStores"]] == ["s"]


def test_dataset_and_store_policies_follow_the_bucket_iam_rules(emulator: Emulator) -> None:
    hc = client(emulator)
    datasets(hc).create(parent=PARENT, datasetId="ds", body={}).execute()
    store = make_store(hc, dataset="ds2")
    bare_member = {"bindings": [{"role": "roles/healthcare.dicomViewer", "members": ["bob"]}]}

    with pytest.raises(HttpError) as on_dataset:
        datasets(hc).setIamPolicy(
            resource=f"{PARENT}/datasets/ds", body={"policy": bare_member}
        ).execute()
    with pytest.raises(HttpError) as on_store:
        datasets(hc).dicomStores().setIamPolicy(
            resource=store, body={"policy": bare_member}
        ).execute()

    for exc in (on_dataset, on_store):
        error = error_of(exc.value)
        assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
        assert "'bob'" in error["message"] and "user:EMAIL" in error["message"]


@pytest.mark.parametrize("method", ["import_", "export"])
def test_a_malformed_body_is_refused_before_the_store_is_looked_up(
    emulator: Emulator, method: str
) -> None:
    # The API parses the JSON body before it resolves the resource: an unknown field is a 400
    # even when the store does not exist; a well-formed body to that store is a 404.
    hc = client(emulator)
    missing = make_store(hc) + "-missing"
    stores = datasets(hc).dicomStores()
    call = getattr(stores, method)
    with pytest.raises(HttpError) as malformed:
        call(name=missing, body={"nope": 1}).execute()
    assert error_of(malformed.value)["status"] == "INVALID_ARGUMENT"
    assert 'Unknown name "nope"' in error_of(malformed.value)["message"]
    body = (
        {"gcsSource": {"uri": "gs://bkt/x/**"}}
        if method == "import_"
        else {"gcsDestination": {"uriPrefix": "gs://bkt/out"}}
    )
    with pytest.raises(HttpError) as well_formed:
        call(name=missing, body=body).execute()
    assert error_of(well_formed.value)["status"] == "NOT_FOUND"
