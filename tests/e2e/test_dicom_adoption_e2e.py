"""Adopting top-level transfers into a ``DicomPipeline`` with per-step aliases, with the real
Pulumi CLI: the preview creates and deletes no transfer (an in-place update records each
transfer's new name), and ``up`` sends no new import or export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.e2e.dicom_stack import PLAN, DicomStack, SeededEmulator, dicom_stack

pytestmark = pytest.mark.e2e

DYNAMIC = "pulumi-python:dynamic:Resource"
TRANSFER_PATH = r"/dicomStores/[^/]+:(import|export)$"
PROGRAM = """\
import pulumi
from dicom_transfer import DicomExport, DicomImport, DicomPipeline, ExportStep, ImportStep

config = pulumi.Config()
store = config.require("store")
to_table = {"table_uri": config.require("table"), "write_disposition": "WRITE_EMPTY"}
if config.get("layout") == "pipeline":
    top_level = pulumi.ROOT_STACK_RESOURCE
    pipeline = DicomPipeline(
        "archive",
        project=config.require("project"),
        dicom_store=store,
        manage_grants=False,
        imports=[
            ImportStep(
                "load",
                gcs_uri=config.require("gcsUri"),
                opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="load", parent=top_level)]),
            )
        ],
        exports=[
            ExportStep(
                "to-bq",
                bigquery_destination=to_table,
                opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="to-bq", parent=top_level)]),
            )
        ],
    )
    load, to_bq = pipeline.imports["load"], pipeline.exports["to-bq"]
else:
    load = DicomImport("load", dicom_store=store, gcs_uri=config.require("gcsUri"))
    to_bq = DicomExport(
        "to-bq",
        dicom_store=store,
        bigquery_destination=to_table,
        opts=pulumi.ResourceOptions(depends_on=[load]),
    )
pulumi.export("operations", [load.operation_name, to_bq.operation_name])
"""


def preview_steps(stack: DicomStack) -> list[dict[str, Any]]:
    """The steps of ``pulumi preview --json``."""
    steps: list[dict[str, Any]] = json.loads(stack.cli.run("preview", "--json").stdout)["steps"]
    return steps


def test_top_level_transfers_adopted_into_a_pipeline_are_neither_recreated_nor_rerun(
    tmp_path: Path, emulator: SeededEmulator
) -> None:
    stack = dicom_stack(tmp_path / "stack", emulator, program=PROGRAM)
    stack.configure(table=f"bq://{PLAN.project}.dicom_meta.adopted", project=PLAN.project)
    stack.cli.run("up", "--yes")
    before = stack.cli.stack_outputs()["operations"]
    assert len(emulator.requests("POST", TRANSFER_PATH)) == 2
    emulator.clear_requests()

    stack.configure(layout="pipeline")
    steps = preview_steps(stack)
    human = stack.cli.run("preview", "--diff")

    transfers = {
        step["urn"].rsplit("::", 1)[1]: step["op"] for step in steps if DYNAMIC in step["urn"]
    }
    assert transfers == {"archive-load": "update", "archive-to-bq": "update"}, steps
    assert [s["op"] for s in steps if s["urn"].endswith("DicomPipeline::archive")] == ["create"]
    assert "resource_name" in human.stdout and "delete" not in human.stdout, human.stdout
    assert emulator.requests("POST", TRANSFER_PATH) == [], "a preview runs nothing"

    stack.cli.run("up", "--yes")

    assert emulator.requests("POST", TRANSFER_PATH) == [], "no new operation"
    assert stack.cli.stack_outputs()["operations"] == before
    names = {
        r["urn"].rsplit("::", 1)[1]: r["outputs"]["resource_name"] for r in stack.import_resources()
    }
    assert names == {"archive-load": "archive-load", "archive-to-bq": "archive-to-bq"}
    again = preview_steps(stack)
    assert {s["op"] for s in again} == {"same"}, again
