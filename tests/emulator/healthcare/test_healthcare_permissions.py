"""Permission emulation: the service agent's bucket roles, with IAM propagation delay."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from dicom_transfer_emulator.app import Emulator, run_emulator
from dicom_transfer_emulator.healthcare.names import (
    project_number,
    service_agent_email,
    service_agent_member,
)
from googleapiclient.errors import HttpError
from support.clock import FakeClock
from support.healthcare import (
    client,
    counters,
    datasets,
    fresh_copy,
    make_store,
    run_export,
    run_import,
)

DELAY = 120.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def checked(clock: FakeClock) -> Iterator[Emulator]:
    with run_emulator(permission_checks=True, propagation_delay_s=DELAY, clock=clock) as emu:
        yield emu


def grant(emu: Emulator, bucket: str, role: str) -> None:
    policy = emu.storage.get_iam_policy(bucket)
    policy["bindings"] = [
        *policy.get("bindings", []),
        {"role": role, "members": [service_agent_member("test-project")]},
    ]
    emu.storage.set_iam_policy(bucket, policy)


def denied(call: object) -> dict[str, object]:
    with pytest.raises(HttpError) as exc:
        call.execute()  # type: ignore[attr-defined]
    assert exc.value.resp.status == 403
    error: dict[str, object] = json.loads(exc.value.content)["error"]
    assert error["code"] == 403 and error["status"] == "PERMISSION_DENIED"
    assert service_agent_email("test-project") in str(error["message"])
    return error


def test_service_agent_identity_is_deterministic() -> None:
    number = project_number("test-project")
    assert number == project_number("test-project") and len(number) == 12 and number.isdigit()
    assert project_number("other-project") != number
    assert project_number("123456789012") == "123456789012"
    assert service_agent_email("test-project") == (
        f"service-{number}@gcp-sa-healthcare.iam.gserviceaccount.com"
    )


def test_import_needs_object_viewer_after_propagation(checked: Emulator, clock: FakeClock) -> None:
    hc = client(checked)
    store = make_store(hc)
    checked.storage.create_bucket("src", "test-project")
    checked.storage.write_object("src", "a.dcm", fresh_copy("CT_small.dcm"))
    stores = datasets(hc).dicomStores()
    body = {"gcsSource": {"uri": "gs://src/*.dcm"}}
    error = denied(stores.import_(name=store, body=body))
    assert "storage.objects.list" in str(error["message"])
    grant(checked, "src", "roles/storage.objectViewer")
    clock.now += DELAY - 1
    denied(stores.import_(name=store, body=body))  # not propagated yet
    clock.now += 2
    op = run_import(hc, store, "gs://src/*.dcm")
    assert counters(op) == (1, 0, 0)
    ops = datasets(hc).operations().list(name=store.split("/dicomStores/")[0]).execute()
    assert len(ops["operations"]) == 2  # dataset creation + the one accepted import


def test_export_needs_object_admin_and_filter_viewer(checked: Emulator, clock: FakeClock) -> None:
    hc = client(checked)
    store = make_store(hc)
    for bucket in ("src", "out", "filters"):
        checked.storage.create_bucket(bucket, "test-project")
    checked.storage.write_object("src", "a.dcm", fresh_copy("CT_small.dcm"))
    checked.storage.write_object("filters", "f.txt", b"")
    grant(checked, "src", "roles/storage.objectViewer")
    grant(checked, "out", "roles/storage.objectCreator")  # not enough: export overwrites
    clock.now += DELAY + 1
    run_import(hc, store, "gs://src/a.dcm")
    stores = datasets(hc).dicomStores()
    gcs = {"gcsDestination": {"uriPrefix": "gs://out/x"}}
    error = denied(stores.export(name=store, body=gcs))
    # objectCreator has storage.objects.create; what it lacks is delete (to overwrite).
    assert "storage.objects.delete" in str(error["message"])
    assert "storage.objects.create" not in str(error["message"])
    grant(checked, "out", "roles/storage.admin")  # stronger than objectAdmin
    denied(stores.export(name=store, body=gcs))
    clock.now += DELAY + 1
    assert counters(run_export(hc, store, gcs)) == (1, 0, 0)
    filtered = {**gcs, "filterConfig": {"resourcePathsGcsUri": "gs://filters/f.txt"}}
    error = denied(stores.export(name=store, body=filtered))
    assert "gs://filters" in str(error["message"])
    grant(checked, "filters", "roles/storage.objectViewer")
    clock.now += DELAY + 1
    assert counters(run_export(hc, store, filtered)) == (0, 0, 0)


def test_checks_can_be_switched_off(checked: Emulator) -> None:
    hc = client(checked)
    store = make_store(hc)
    checked.storage.create_bucket("src", "test-project")
    checked.storage.write_object("src", "a.dcm", fresh_copy("CT_small.dcm"))
    checked.permission_checks = False
    assert counters(run_import(hc, store, "gs://src/a.dcm")) == (1, 0, 0)
