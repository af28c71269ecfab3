"""The installed gcloud CLI against the emulated Healthcare API (no credentials, no network)."""

from __future__ import annotations

import io
import json
import subprocess
from typing import Any

import pydicom
from dicom_transfer_emulator.app import Emulator
from support.healthcare import corpus_bytes, fresh_copy

LOCATION = ["--location=us-central1"]
DATASET = [*LOCATION, "--dataset=ds"]
STORE = "projects/test-project/locations/us-central1/datasets/ds/dicomStores/st"


def gcloud(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["gcloud", *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def gcloud_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(gcloud(env, *args, "--format=json").stdout)


def test_gcloud_healthcare_workflow(emulator: Emulator, gcloud_env: dict[str, str]) -> None:
    env = gcloud_env
    emulator.storage.create_bucket("gc-src", "test-project")
    emulator.storage.create_bucket("gc-out", "test-project")
    sources = {
        f"in/{i}.dcm": fresh_copy(n)
        for i, n in enumerate(["CT_small.dcm", "MR_small.dcm", "rtdose.dcm"])
    }
    for name, data in sources.items():
        emulator.storage.write_object("gc-src", name, data)

    created = gcloud(env, "healthcare", "datasets", "create", "ds", *LOCATION)
    assert "Created dataset [ds]" in created.stderr
    gcloud(env, "healthcare", "dicom-stores", "create", "st", *DATASET)
    described = gcloud_json(env, "healthcare", "dicom-stores", "describe", "st", *DATASET)
    assert described["name"] == STORE

    imported = gcloud(
        env,
        "healthcare",
        "dicom-stores",
        "import",
        "gcs",
        "st",
        *DATASET,
        "--gcs-uri=gs://gc-src/in/**.dcm",
    )
    assert STORE in imported.stdout  # gcloud prints the store, not the counters
    service = emulator.healthcare
    stored = {r.sop_instance_uid for r in service.state.list_instances(STORE)}
    assert stored == {str(pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID) for d in sources.values()}

    ops = gcloud_json(env, "healthcare", "operations", "list", *DATASET)
    imports = [o for o in ops if o["metadata"]["apiMethodName"].endswith("ImportDicomData")]
    assert len(imports) == 1 and imports[0]["done"] is True
    op_id = imports[0]["name"].rsplit("/", 1)[1]
    described_op = gcloud_json(env, "healthcare", "operations", "describe", op_id, *DATASET)
    assert described_op["metadata"]["counter"] == {"success": "3"}
    assert described_op["response"]["@type"].endswith("ImportDicomDataResponse")

    emulator.storage.write_object("gc-src", "bad/x.dcm", b"not dicom at all")
    emulator.storage.write_object("gc-src", "bad/y.dcm", corpus_bytes("CT_small.dcm"))
    failed = gcloud(
        env,
        "healthcare",
        "dicom-stores",
        "import",
        "gcs",
        "st",
        *DATASET,
        "--gcs-uri=gs://gc-src/bad/*",
        ok=False,
    )
    assert failed.returncode != 0
    assert "/_emulator/logs/" in failed.stderr
    # The readable file of the failed import was stored all the same.
    stored.add(str(pydicom.dcmread(io.BytesIO(corpus_bytes("CT_small.dcm"))).SOPInstanceUID))
    assert {r.sop_instance_uid for r in service.state.list_instances(STORE)} == stored

    gcloud(
        env,
        "healthcare",
        "dicom-stores",
        "export",
        "gcs",
        "st",
        *DATASET,
        "--gcs-uri-prefix=gs://gc-out/png/",
        "--mime-type=image/png",
    )
    pngs, _ = emulator.storage.list_objects("gc-out", prefix="png/")
    assert len(pngs) == 3 + 15  # CT_small twice, MR_small, and rtdose's 15 frames
    assert all(m.name.endswith(".png") and "//" not in m.name for m in pngs)

    record = service.state.list_instances(STORE)[0]
    emulator.storage.write_object("gc-src", "filter.txt", f"{record.path}\r\n".encode())
    gcloud(
        env,
        "beta",
        "healthcare",
        "dicom-stores",
        "export",
        "gcs",
        "st",
        *DATASET,
        "--gcs-uri-prefix=gs://gc-out/filtered",
        "--filter-config-gcs-uri=gs://gc-src/filter.txt",
    )
    filtered, _ = emulator.storage.list_objects("gc-out", prefix="filtered/")
    expected = f"{record.study_uid}/{record.series_uid}/{record.sop_instance_uid}.dcm"
    assert [m.name for m in filtered] == [f"filtered/{expected}"]

    def export_bq(disposition: str, *, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return gcloud(
            env,
            "healthcare",
            "dicom-stores",
            "export",
            "bq",
            "st",
            *DATASET,
            "--bq-table=bq://test-project.gc_meta.instances",
            f"--write-disposition={disposition}",
            ok=ok,
        )

    export_bq("write-empty")
    rows = service.read_table("test-project.gc_meta.instances")
    assert {r["SOPInstanceUID"] for r in rows} == stored
    again = export_bq("write-empty", ok=False)
    assert again.returncode != 0 and "WRITE_EMPTY" in again.stderr
    export_bq("write-append")
    assert len(service.read_table("test-project.gc_meta.instances")) == 2 * len(stored)

    ops = gcloud_json(env, "healthcare", "operations", "list", *DATASET)
    assert len(ops) == 1 + 2 + 2 + 3  # dataset, 2 imports, 2 gcs exports, 3 bq exports
