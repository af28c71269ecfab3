"""Per-step resource options of DicomPipeline under Pulumi mocks: what a step's ``opts`` say
reaches its transfer (aliases, protect, retain_on_delete, ignore_changes), merged with the
pipeline's parent and ordering."""

from __future__ import annotations

import pulumi
import pytest
from dicom_transfer import DicomPipeline, ExportStep, ImportStep
from support.pulumi_mocks import run_under_mocks

STORE = "projects/demo-project/locations/us-central1/datasets/imaging/dicomStores/archive"
TABLE = "bq://demo-project.meta.instances"


def _adopting_pipeline() -> None:
    top_level = pulumi.ROOT_STACK_RESOURCE
    DicomPipeline(
        "archive",
        project="demo-project",
        dicom_store=STORE,
        manage_grants=False,
        imports=[
            ImportStep(
                "load",
                gcs_uri="gs://raw/incoming/**.dcm",
                opts=pulumi.ResourceOptions(
                    aliases=[pulumi.Alias(name="load", parent=top_level)],
                    protect=True,
                    ignore_changes=["timeout_seconds"],
                ),
            )
        ],
        exports=[
            ExportStep(
                "to-bq",
                bigquery_destination={"table_uri": TABLE, "write_disposition": "WRITE_APPEND"},
                opts=pulumi.ResourceOptions(
                    aliases=[pulumi.Alias(name="to-bq", parent=top_level)],
                    retain_on_delete=True,
                ),
            )
        ],
    )


def test_step_options_reach_the_transfers_with_the_pipeline_as_parent() -> None:
    stack = run_under_mocks(_adopting_pipeline)
    component = stack.named("archive")
    load = stack.named("archive-load")
    to_bq = stack.named("archive-to-bq")

    assert load.parent == component.urn and to_bq.parent == component.urn
    assert load.urn in to_bq.dependencies, "imports still run before exports"
    assert (load.request.protect, load.request.retainOnDelete) == (True, False)
    assert list(load.request.ignoreChanges) == ["timeout_seconds"]
    assert (to_bq.request.protect, to_bq.request.retainOnDelete) == (False, True)
    for transfer, old_name in ((load, "load"), (to_bq, "to-bq")):
        [alias] = transfer.request.aliases
        assert (alias.spec.name, alias.spec.noParent) == (old_name, True), alias
    assert load.inputs["resource_name"] == "archive-load"


def test_steps_without_options_keep_the_defaults() -> None:
    def program() -> None:
        DicomPipeline(
            "env",
            project="demo-project",
            dicom_store=STORE,
            manage_grants=False,
            imports=[ImportStep("load", gcs_uri="gs://raw/incoming/**.dcm")],
        )

    load = run_under_mocks(program).named("env-load")
    assert (load.request.protect, list(load.request.aliases)) == (False, [])
    assert "opts" not in load.inputs and "name" not in load.inputs


def test_a_step_with_its_own_parent_is_refused_naming_the_field() -> None:
    def program() -> None:
        other = pulumi.ComponentResource("test:index:Other", "other")
        DicomPipeline(
            "env",
            project="demo-project",
            dicom_store=STORE,
            manage_grants=False,
            exports=[
                ExportStep(
                    "copy",
                    gcs_destination={"uri_prefix": "gs://out/copy"},
                    opts=pulumi.ResourceOptions(parent=other),
                )
            ],
        )

    with pytest.raises(ValueError, match=r"exports\[0\]\.opts\.parent: .*aliases="):
        run_under_mocks(program)
