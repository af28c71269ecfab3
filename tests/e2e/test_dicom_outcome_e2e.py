"""S29 with the real Pulumi CLI: a finished operation is its request's outcome.

The corpus is imported (``DicomImport``), then exported by a BigQuery ``WRITE_APPEND``
export with ``schema_json``; the emulator's per-instance fault (``fail-instance=export:uid:…``)
fails one instance. The first ``up`` fails; raising
``max_failures`` to 1 makes the second ``up`` adopt that operation (no new ``:export``, one
row per good instance); changing ``triggers`` runs the export exactly once more.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.e2e.dicom_stack import PLAN, DicomStack, SeededEmulator, dicom_stack

pytestmark = pytest.mark.e2e

TABLE = f"{PLAN.project}.dicom_meta.s29"
EXPORT_PATH = r"/dicomStores/[^/]+:export$"
PROGRAM = """\
import pulumi
from dicom_transfer import DicomExport, DicomImport

config = pulumi.Config()
trigger = config.get("trigger")
load = DicomImport("load", dicom_store=config.require("store"), gcs_uri=config.require("gcsUri"))
export = DicomExport(
    "to-bq",
    dicom_store=config.require("store"),
    bigquery_destination={
        "table_uri": config.require("table"),
        "write_disposition": "WRITE_APPEND",
        "schema_json": True,
    },
    max_failures=config.get_int("maxFailures") or 0,
    timeout_seconds=120.0,
    triggers={"run": trigger} if trigger else None,
    opts=pulumi.ResourceOptions(depends_on=[load]),
)
pulumi.export(
    "export",
    {"operation": export.operation_name, "success": export.success_count,
     "failure": export.failure_count},
)
"""


def table_rows(emulator: SeededEmulator) -> list[str]:
    """SOP Instance UIDs of the table's rows (one per exported instance and run)."""
    table = emulator.healthcare("GET", f"/_emulator/bigquery/{TABLE}")
    return sorted(row["SOPInstanceUID"] for row in table["rows"])


def export_posts(emulator: SeededEmulator) -> list[dict[str, object]]:
    return emulator.requests("POST", EXPORT_PATH)


def test_s29_raised_max_failures_adopts_the_failed_export_and_triggers_run_it_again(
    tmp_path: Path, emulator: SeededEmulator
) -> None:
    stack: DicomStack = dicom_stack(tmp_path / "stack", emulator, program=PROGRAM)
    stack.configure(table=f"bq://{TABLE}")
    bad = emulator.corpus[0].sop_instance_uid
    good = sorted({f.sop_instance_uid for f in emulator.corpus} - {bad})
    emulator.add_faults(spec=f"fail-instance=export:uid:{bad}:13:corrupt pixel data (e2e)")

    first = stack.cli.run("up", "--yes", check=False)

    assert first.returncode != 0, first.stdout
    assert len(export_posts(emulator)) == 1
    assert "change the resource's `triggers`" in first.stdout, first.stdout
    assert f"successful row(s) are already in bq://{TABLE} (WRITE_APPEND)" in first.stdout
    assert table_rows(emulator) == good
    assert len(list(stack.journal_dir.glob("*.json"))) == 1, "the outcome is kept"

    stack.configure(maxFailures=1)
    second = stack.cli.run("up", "--yes")

    assert len(export_posts(emulator)) == 1, "the second `up` submits nothing"
    assert "already finished as this request's outcome" in second.stdout, second.stdout
    assert table_rows(emulator) == good, "one row per good instance"
    adopted = stack.cli.stack_outputs()["export"]
    assert (adopted["success"], adopted["failure"]) == (len(good), 1)
    assert list(stack.journal_dir.glob("*.json")) == []

    stack.configure(trigger="again")
    stack.cli.run("up", "--yes")

    assert len(export_posts(emulator)) == 2, "exactly one new operation"
    rerun = stack.cli.stack_outputs()["export"]
    assert rerun["operation"] != adopted["operation"]
    assert table_rows(emulator) == sorted(good * 2), "WRITE_APPEND: the rerun appended"
