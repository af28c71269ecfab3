"""Faults selected by API method name and scoped to one test, on a shared emulator."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import googleapiclient
import pytest
from dicom_transfer_emulator.app import Emulator
from dicom_transfer_emulator.errors import ApiException
from dicom_transfer_emulator.faults import Faults
from dicom_transfer_emulator.server.faults import FAULT_SCOPE_HEADER, parse_fault_spec
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

HttpCall = Callable[..., Any]
INSERT = "storage.objects.insert"
IMPORT = "healthcare.projects.locations.datasets.dicomStores.import"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("storage.objects.insert=503x2", ("*", "", INSERT, None, 503, 2)),
        (f"t-1@{IMPORT}=429", ("*", "", IMPORT, "t-1", 429, 1)),
        ("t.2@POST:.*:import=503x*", ("POST", ".*:import", None, "t.2", 503, None)),
        ("GET:/a@b=500", ("GET", "/a@b", None, None, 500, 1)),
    ],
)
def test_parse_method_name_and_scope(spec: str, expected: tuple[Any, ...]) -> None:
    rule = parse_fault_spec(spec)
    got = (rule.method, rule.path_regex, rule.api_method, rule.scope, rule.status, rule.times)
    assert got == expected


@pytest.mark.parametrize(
    "spec",
    ["storage=503", "Storage.objects.insert=503", "bad scope@storage.objects.get=503", "@x.y=503"],
)
def test_invalid_method_names_and_scopes_are_rejected(spec: str) -> None:
    with pytest.raises(ApiException) as excinfo:
        Faults().add_spec(spec)
    assert excinfo.value.code == 400


def test_rules_match_method_name_and_scope() -> None:
    faults = Faults()
    faults.fail_requests(api_method=INSERT, status=503, times=None, scope="mine")
    path = "/upload/storage/v1/b/b/o"
    assert faults.decide("POST", path, api_method=INSERT) is None
    assert faults.decide("POST", path, api_method=INSERT, scope="theirs") is None
    assert faults.decide("GET", path, api_method="storage.objects.get", scope="mine") is None
    decision = faults.decide("POST", path, api_method=INSERT, scope="mine")
    assert decision is not None and decision.status == 503
    assert faults.remove_scope("mine") == 1
    assert faults.decide("POST", path, api_method=INSERT, scope="mine") is None


def test_method_name_covers_every_upload_protocol(emulator: Emulator, http: HttpCall) -> None:
    emulator.storage.create_bucket("named", "p-1")
    emulator.faults.add_spec(f"{INSERT}=503x*")
    url = emulator.storage_url
    media = http(url, "POST", "/upload/storage/v1/b/named/o?uploadType=media&name=a", b"1")
    resumable = http(url, "POST", "/upload/storage/v1/b/named/o?uploadType=resumable", {})
    listing = http(url, "GET", "/storage/v1/b/named/o")
    assert (media.status, resumable.status, listing.status) == (503, 503, 200)
    assert [r.api_method for r in emulator.requests] == [INSERT, INSERT, "storage.objects.list"]


def test_scoped_fault_on_the_healthcare_port(emulator: Emulator, http: HttpCall) -> None:
    path = "/v1/projects/proj-1/locations/l/datasets/d/dicomStores/s:import"
    body = {"gcsSource": {"uri": "gs://b/x"}}
    added = http(
        emulator.healthcare_url,
        "POST",
        "/_emulator/faults",
        {"spec": f"{IMPORT}=429x*", "scope": "hc-1"},
    ).json()
    assert [f["spec"] for f in added["faults"]] == [f"hc-1@{IMPORT}=429x*"]
    scoped = http(emulator.healthcare_url, "POST", path, body, {FAULT_SCOPE_HEADER: "hc-1"})
    plain = http(emulator.healthcare_url, "POST", path, body)
    assert scoped.status == 429
    assert plain.status == 404  # routed and served: the dataset does not exist
    cleared = http(emulator.healthcare_url, "DELETE", "/_emulator/faults?scope=hc-1").json()
    assert cleared["faults"] == []


def test_delete_by_scope_leaves_other_tests_faults(emulator: Emulator, http: HttpCall) -> None:
    emulator.faults.fail_requests("GET", "^/storage/v1/b$", scope="a")
    emulator.faults.fail_requests("GET", "^/storage/v1/b$", scope="b")
    emulator.faults.fail_requests("GET", "^/storage/v1/b$")
    http(emulator.healthcare_url, "DELETE", "/_emulator/faults?scope=a")
    assert sorted(str(r.scope) for r in emulator.faults.rules()) == ["None", "b"]


def test_scoped_faults_do_not_touch_a_concurrent_test(emulator: Emulator, http: HttpCall) -> None:
    """Two "tests" share the emulator at the same time; only the scoped one sees faults."""
    emulator.storage.create_bucket("shared", "p-1")
    emulator.faults.fail_requests(api_method=INSERT, status=503, times=None, scope="test-a")
    emulator.faults.reset_connections(api_method="storage.objects.get", times=None, scope="test-a")
    rounds = 15
    in_step = threading.Barrier(2, timeout=30)
    results: dict[str, list[tuple[int, int]]] = {"test-a": [], "test-b": []}

    def run(scope: str) -> None:
        headers = {FAULT_SCOPE_HEADER: scope}
        url = emulator.storage_url
        for index in range(rounds):
            in_step.wait()  # both upload, then both download, round after round
            name = f"{scope}-{index}"
            upload = http(
                url,
                "POST",
                f"/upload/storage/v1/b/shared/o?uploadType=media&name={name}",
                name.encode(),
                headers,
            )
            try:
                download = http(
                    url, "GET", f"/storage/v1/b/shared/o/{name}?alt=media", None, headers
                )
                got = download.status if download.body == name.encode() else -download.status
            except ConnectionError:
                got = 0
            results[scope].append((upload.status, got))

    threads = [threading.Thread(target=run, args=(scope,)) for scope in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results["test-a"] == [(503, 0)] * rounds
    assert results["test-b"] == [(200, 200)] * rounds
    items, _ = emulator.storage.list_objects("shared")
    assert [i.name for i in items] == sorted(f"test-b-{i}" for i in range(rounds))
    faulted = {(r.fault_scope, r.api_method, r.fault) for r in emulator.requests}
    assert faulted == {
        ("test-a", INSERT, "503"),
        ("test-a", "storage.objects.get", "reset"),
        ("test-b", INSERT, None),
        ("test-b", "storage.objects.get", None),
    }


def test_real_client_sends_its_scope(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.storage_url)

    def client(scope: str) -> storage.Client:
        return storage.Client(
            project="p-1",
            credentials=AnonymousCredentials(),
            extra_headers={FAULT_SCOPE_HEADER: scope},
        )

    emulator.storage.create_bucket("clients", "p-1")
    # 403 is not retried by the client, so the fault shows at once.
    emulator.faults.fail_requests(api_method=INSERT, status=403, times=None, scope="client-a")
    with pytest.raises(api_exceptions.Forbidden):
        client("client-a").bucket("clients").blob("a").upload_from_string(b"a")
    client("client-b").bucket("clients").blob("b").upload_from_string(b"b")
    assert [i.name for i in emulator.storage.list_objects("clients")[0]] == ["b"]


def _discovery_ids(name: str) -> set[str]:
    documents = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
    found: set[str] = set()

    def walk(resource: dict[str, Any]) -> None:
        found.update(m["id"] for m in resource.get("methods", {}).values())
        for child in resource.get("resources", {}).values():
            walk(child)

    walk(json.loads((documents / name).read_text("utf-8")))
    return found


def test_every_route_is_named_by_a_real_discovery_id(emulator: Emulator) -> None:
    real = (
        _discovery_ids("storage.v1.json")
        | _discovery_ids("healthcare.v1.json")
        | _discovery_ids("healthcare.v1beta1.json")
    )
    names = emulator.storage_router.api_methods() | emulator.healthcare_router.api_methods()
    served = {n for n in names if not n.startswith("emulator.")}
    assert served and served <= real, sorted(served - real)
    assert {INSERT, IMPORT, "storage.objects.get"} <= served
