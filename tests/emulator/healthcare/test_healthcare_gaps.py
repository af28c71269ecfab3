"""What real clients hit beyond DICOM stores: nested update masks (gcloud ``update``),
dataset IAM, and 501 UNIMPLEMENTED for methods the real API has and the emulator lacks."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import googleapiclient
import pytest
from dicom_transfer_emulator.app import Emulator
from dicom_transfer_emulator.healthcare.not_emulated import NOT_EMULATED
from googleapiclient.errors import HttpError
from support.healthcare import PARENT, client, datasets, make_store

LOCATION = ["--location=us-central1"]
DATASET = [*LOCATION, "--dataset=ds"]
DISCOVERY = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
TOPIC = "projects/test-project/topics/dicom-changes"
HttpCall = Callable[..., Any]


def gcloud(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["gcloud", *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def gcloud_json(env: dict[str, str], *args: str) -> Any:
    result = gcloud(env, *args, "--format=json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_gcloud_update_sends_nested_masks(emulator: Emulator, gcloud_env: dict[str, str]) -> None:
    make_store(client(emulator), "ds", "st")
    updated = gcloud_json(
        gcloud_env,
        "healthcare",
        "dicom-stores",
        "update",
        "st",
        *DATASET,
        f"--pubsub-topic={TOPIC}",
    )
    assert updated["notificationConfig"] == {"pubsubTopic": TOPIC}
    masks = [
        r.query
        for r in emulator.requests.matching("PATCH", r"/dicomStores/st$")
        if "updateMask" in r.query
    ]
    assert any("notificationConfig.pubsubTopic" in q for q in masks), masks

    updated = gcloud_json(
        gcloud_env, "healthcare", "dicom-stores", "update", "st", *DATASET, "--send-for-bulk-import"
    )
    assert updated["notificationConfig"] == {"pubsubTopic": TOPIC, "sendForBulkImport": True}
    described = gcloud_json(gcloud_env, "healthcare", "dicom-stores", "describe", "st", *DATASET)
    assert described["notificationConfig"] == updated["notificationConfig"]


def test_nested_mask_clears_a_sub_field_and_rejects_unknown_paths(
    emulator: Emulator, http: HttpCall
) -> None:
    hc = client(emulator)
    store = make_store(hc)
    stores = datasets(hc).dicomStores()
    body = {"notificationConfig": {"pubsubTopic": TOPIC, "sendForBulkImport": True}}
    stores.patch(name=store, updateMask="notificationConfig", body=body).execute()
    cleared = stores.patch(
        name=store, updateMask="notificationConfig.sendForBulkImport", body={}
    ).execute()
    assert cleared["notificationConfig"] == {"pubsubTopic": TOPIC}

    bad = http(
        emulator.healthcare_url,
        "PATCH",
        f"/v1/{store}?updateMask=notificationConfig.colour",
        {"notificationConfig": {}},
    )
    assert bad.status == 400
    message = bad.json()["error"]["message"]
    assert "notificationConfig.colour" in message and "notificationConfig.pubsubTopic" in message


def test_dataset_iam_with_gcloud(emulator: Emulator, gcloud_env: dict[str, str]) -> None:
    datasets(client(emulator)).create(parent=PARENT, datasetId="ds", body={}).execute()
    empty = gcloud_json(gcloud_env, "healthcare", "datasets", "get-iam-policy", "ds", *LOCATION)
    assert "bindings" not in empty and empty["etag"]
    member = "user:reader@example.com"
    added = gcloud_json(
        gcloud_env,
        "healthcare",
        "datasets",
        "add-iam-policy-binding",
        "ds",
        *LOCATION,
        f"--member={member}",
        "--role=roles/healthcare.datasetViewer",
    )
    assert {"members": [member], "role": "roles/healthcare.datasetViewer"} in added["bindings"]
    again = gcloud_json(gcloud_env, "healthcare", "datasets", "get-iam-policy", "ds", *LOCATION)
    assert again["bindings"] == added["bindings"] and again["etag"] == added["etag"]


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_dataset_iam_with_the_python_client(
    emulator: Emulator, http: HttpCall, version: str
) -> None:
    hc = client(emulator, version)
    store = make_store(hc)
    dataset = store.split("/dicomStores/", 1)[0]
    ds = datasets(hc)
    policy = ds.getIamPolicy(resource=dataset).execute()
    binding = {"role": "roles/healthcare.datasetAdmin", "members": ["group:ops@example.com"]}
    stored = ds.setIamPolicy(
        resource=dataset, body={"policy": {"bindings": [binding], "etag": policy["etag"]}}
    ).execute()
    assert stored["bindings"] == [binding] and stored["etag"] != policy["etag"]
    stale = http(
        emulator.healthcare_url,
        "POST",
        f"/{version}/{dataset}:setIamPolicy",
        {"policy": {"bindings": [], "etag": policy["etag"]}},
    )
    assert (stale.status, stale.json()["error"]["status"]) == (409, "ABORTED")
    asked = ["healthcare.datasets.get", "healthcare.dicomStores.list"]
    granted = ds.testIamPermissions(resource=dataset, body={"permissions": asked}).execute()
    assert granted == {"permissions": asked}
    on_store = ds.dicomStores().testIamPermissions(
        resource=store, body={"permissions": ["healthcare.dicomStores.dicomWebRead"]}
    )
    assert on_store.execute() == {"permissions": ["healthcare.dicomStores.dicomWebRead"]}
    wildcard = http(
        emulator.healthcare_url,
        "POST",
        f"/{version}/{dataset}:testIamPermissions",
        {"permissions": ["healthcare.*"]},
    )
    assert wildcard.status == 400 and "healthcare.*" in wildcard.json()["error"]["message"]


def _discovery_methods() -> list[tuple[str, str, str, str]]:
    """``(version, HTTP method, flatPath, id)`` of every method of the bundled documents."""
    methods = []
    for version in ("v1", "v1beta1"):
        doc = json.loads((DISCOVERY / f"healthcare.{version}.json").read_text())
        pending = [doc]
        while pending:
            resource = pending.pop()
            pending.extend(resource.get("resources", {}).values())
            for method in resource.get("methods", {}).values():
                methods.append((version, method["httpMethod"], method["flatPath"], method["id"]))
    return methods


def test_every_real_method_is_served_or_answers_501_naming_it(
    emulator: Emulator, http: HttpCall
) -> None:
    methods = _discovery_methods()
    assert len(methods) > 250  # both documents were read
    unimplemented = []
    for version, http_method, flat_path, method_id in methods:
        # IDs that name nothing: a served method answers 404 for the resource, never the
        # router's "Not Found: METHOD path" nor 405.
        path = "/" + re.sub(r"\{[^}]+\}", "missing-1", flat_path)
        body = {} if http_method in ("POST", "PATCH", "PUT") else None
        result = http(emulator.healthcare_url, http_method, path, body)
        where = f"{method_id} ({http_method} {path})"
        assert result.status != 405, where
        error = result.json().get("error", {}) if result.body.startswith(b"{") else {}
        assert not str(error.get("message", "")).startswith("Not Found:"), where
        if result.status == 501:
            assert error["status"] == "UNIMPLEMENTED", where
            assert method_id in error["message"], where
            unimplemented.append((version, http_method, method_id))
    table = {(v, e.http_method, e.method_id) for e in NOT_EMULATED for v in e.versions}
    assert set(unimplemented) == table  # every table row is a real method, and answers 501
    served = {m[3] for m in methods} - {m for _, _, m in table}
    assert "healthcare.projects.locations.datasets.dicomStores.searchForStudies" in served
    assert "healthcare.projects.locations.datasets.deidentify" not in served


def test_a_google_client_reports_a_not_emulated_method(emulator: Emulator, http: HttpCall) -> None:
    # googleapiclient does not retry a 501 (gcloud retries it for about 32 s).
    hc = client(emulator)
    datasets(hc).create(parent=PARENT, datasetId="ds", body={}).execute()
    with pytest.raises(HttpError) as raised:
        datasets(hc).deidentify(
            sourceDataset=f"{PARENT}/datasets/ds",
            body={"destinationDataset": f"{PARENT}/datasets/ds-deid"},
        ).execute()
    assert raised.value.resp.status == 501
    error = json.loads(raised.value.content)["error"]
    assert error["status"] == "UNIMPLEMENTED"
    assert "healthcare.projects.locations.datasets.deidentify" in error["message"], error
    unknown = http(emulator.healthcare_url, "GET", f"/v1/{PARENT}/datasets/ds/nothingHere")
    assert unknown.status == 404
