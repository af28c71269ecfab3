"""Healthcare state survives an emulator restart with a data directory; reset clears it."""

from __future__ import annotations

import json
from pathlib import Path

from dicom_transfer_emulator.app import run_emulator
from dicom_transfer_emulator.healthcare.state import HealthcareState
from support.healthcare import (
    PARENT,
    client,
    counters,
    datasets,
    fresh_copy,
    make_store,
    run_export,
    run_import,
)


def test_restart_keeps_datasets_stores_instances_operations(tmp_path: Path) -> None:
    with run_emulator(data_dir=tmp_path) as emu:
        hc = client(emu)
        store = make_store(hc)
        emu.storage.create_bucket("src", "test-project")
        data = fresh_copy("CT_small.dcm")
        emu.storage.write_object("src", "a.dcm", data)
        emu.storage.write_object("src", "b.txt", b"nope")
        op = run_import(hc, store, "gs://src/*")
        run_export(hc, store, {"bigqueryDestination": {"tableUri": "bq://test-project.d.t"}})
        sop = emu.healthcare.state.list_instances(store)[0].sop_instance_uid
    with run_emulator(data_dir=tmp_path) as emu:
        hc = client(emu)
        assert datasets(hc).get(name=f"{PARENT}/datasets/ds").execute()["name"].endswith("/ds")
        assert datasets(hc).dicomStores().get(name=store).execute()["name"] == store
        again = datasets(hc).operations().get(name=op["name"]).execute()
        assert again == op
        service = emu.healthcare
        assert service.state.read_instance(store, sop) == data
        assert service.state.get_logs(op["name"].rsplit("/", 1)[1])
        assert len(service.read_table("test-project.d.t")) == 1
        # Duplicates are still detected after the restart.
        assert counters(run_import(hc, store, "gs://src/a.dcm")) == (1, 0, 0)
        assert len(service.state.list_instances(store)) == 1
        emu.reset()
        assert service.state.list_datasets(PARENT) == []
        assert service.tables.list_tables() == []
    with run_emulator(data_dir=tmp_path) as emu:
        assert emu.healthcare.state.list_datasets(PARENT) == []


def test_running_operation_is_aborted_on_reload(tmp_path: Path) -> None:
    state = HealthcareState(tmp_path)
    dataset = f"{PARENT}/datasets/d"
    state.create_dataset(dataset, {})
    op = state.new_operation(
        dataset,
        api_method_name="m",
        api_version="v1",
        create_time="2024-01-01T00:00:00.000Z",
        logs_url=lambda op_id: f"http://x/{op_id}",
    )
    state.close()
    reloaded = HealthcareState(tmp_path).get_operation(op.name).to_json()
    assert reloaded["done"] is True and reloaded["error"]["code"] == 10
    files = sorted(p.name for p in (tmp_path / "healthcare" / "operations").iterdir())
    assert files == [f"{op.id}.json"]
    assert json.loads((tmp_path / "healthcare" / "datasets.json").read_text())[dataset]


def test_a_data_dir_written_with_the_short_store_hash_still_loads(tmp_path: Path) -> None:
    with run_emulator(data_dir=tmp_path) as emu:
        store = make_store(client(emu))
        data = fresh_copy("CT_small.dcm")
        emu.storage.create_bucket("src", "test-project")
        emu.storage.write_object("src", "a.dcm", data)
        run_import(client(emu), store, "gs://src/a.dcm")
        sop = emu.healthcare.state.list_instances(store)[0].sop_instance_uid
    [folder] = (tmp_path / "healthcare" / "stores").iterdir()
    folder.rename(folder.with_name(folder.name[:24]))  # the layout before files.file_key

    with run_emulator(data_dir=tmp_path) as emu:
        assert emu.healthcare.state.read_instance(store, sop) == data
