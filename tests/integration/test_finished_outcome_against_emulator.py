"""S29 through the providers and the emulator over HTTP: a BigQuery ``WRITE_APPEND`` export
with one instance failing (the emulator's per-instance fault) fails the create; raising
``max_failures`` adopts that finished operation without a second ``:export``, with the local
journal and with the journal in Cloud Storage; changing ``triggers`` runs it once more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dicom_transfer import DicomExportProvider, OperationFailed
from dicom_transfer.healthcare.journal import JOURNAL_ENV
from dicom_transfer_emulator.app import Emulator
from support.integration import FAST, PROJECT, export_props, http_json, imported, operation_count

pytestmark = [
    pytest.mark.usefixtures("journal_dir"),
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning"),
]

TABLE = f"{PROJECT}.dicom_meta.s29"


def append_props(emulator: Emulator, store: str, **overrides: Any) -> dict[str, Any]:
    props = export_props(
        emulator,
        store,
        bigquery_destination={
            "table_uri": f"bq://{TABLE}",
            "write_disposition": "WRITE_APPEND",
            "schema_json": True,
        },
        **overrides,
    )
    del props["gcs_destination"]
    return props


def rows(emulator: Emulator) -> list[str]:
    table = http_json(f"{emulator.healthcare_url}/_emulator/bigquery/{TABLE}")
    return sorted(row["SOPInstanceUID"] for row in table["rows"])


def records(emulator: Emulator, journal_dir: Path, journal_kind: str) -> list[str]:
    """The journal's records: files of the local journal, objects of the shared one."""
    local = [p.name for p in journal_dir.glob("*.json")]
    if journal_kind == "local":
        return local
    assert local == [], "with DICOM_TRANSFER_JOURNAL the local journal stays unused"
    return [m.name for m in emulator.storage.list_objects("journal-bucket", "dicom/")[0]]


@pytest.mark.parametrize("journal_kind", ["local", "gs"])
def test_raising_max_failures_adopts_the_failed_export_and_triggers_run_it_again(
    emulator: Emulator,
    store: str,
    journal_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    journal_kind: str,
) -> None:
    instances = sorted(imported(emulator, store), key=lambda i: i.sop)
    bad = instances[0].sop
    good = sorted(i.sop for i in instances[1:])
    if journal_kind == "gs":
        emulator.storage.create_bucket("journal-bucket", PROJECT)
        monkeypatch.setenv(JOURNAL_ENV, "gs://journal-bucket/dicom")
    emulator.faults.fail_instances(uid=bad, operation="export", message="corrupt pixel data")
    provider = DicomExportProvider(FAST)

    with pytest.raises(OperationFailed) as caught:
        provider.create(append_props(emulator, store, max_failures=0))
    message = str(caught.value)
    assert caught.value.logs_url and caught.value.logs_url in message
    assert "change the resource's `triggers`" in message
    assert f"successful row(s) are already in bq://{TABLE}" in message
    assert operation_count(emulator, "export") == 1
    assert rows(emulator) == good
    assert len(records(emulator, journal_dir, journal_kind)) == 1, "the outcome is kept"

    adopted = provider.create(append_props(emulator, store, max_failures=1))
    assert adopted.outs is not None
    assert (adopted.outs["success_count"], adopted.outs["failure_count"]) == (len(good), 1)
    assert adopted.id == caught.value.operation_name
    assert operation_count(emulator, "export") == 1, "no second :export"
    assert rows(emulator) == good, "one row per good instance"
    assert records(emulator, journal_dir, journal_kind) == [], "accepted: record removed"

    again = provider.create(append_props(emulator, store, max_failures=1, triggers=["rerun"]))
    assert again.id != adopted.id
    assert operation_count(emulator, "export") == 2, "exactly one new operation"
    assert rows(emulator) == sorted(good * 2)
