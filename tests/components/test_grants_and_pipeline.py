"""ServiceAgentGrants and DicomPipeline under Pulumi mocks: resources, roles, parents, order."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from dicom_transfer import (
    DicomExport,
    DicomImport,
    DicomPipeline,
    ExportStep,
    ImportStep,
    ServiceAgentGrants,
)
from dicom_transfer.errors import InvalidSpec
from dicom_transfer.pipeline import bigquery_dataset_of
from support.pulumi_mocks import SERVICE_AGENT, Stack, run_under_mocks

DYNAMIC = "pulumi-python:dynamic:Resource"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
DATASET_MEMBER = "gcp:bigquery/datasetIamMember:DatasetIamMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
IDENTITY = "gcp:projects/serviceIdentity:ServiceIdentity"
STORE = "projects/demo-project/locations/us-central1/datasets/imaging/dicomStores/archive"
AGENT_MEMBER = f"serviceAccount:{SERVICE_AGENT}"


def _roles(stack: Stack) -> set[tuple[str, str, str]]:
    """(type, target, role) of every IAM member, all granted to the service agent."""
    found = set()
    for r in stack.resources:
        if r.type in (BUCKET_MEMBER, DATASET_MEMBER, PROJECT_MEMBER):
            assert r.inputs["member"] == AGENT_MEMBER, r.name
            target = r.inputs.get("bucket") or r.inputs.get("datasetId") or r.inputs["project"]
            found.add((r.type, target, r.inputs["role"]))
    return found


def test_grants_give_each_bucket_exactly_the_role_its_job_needs() -> None:
    def program() -> None:
        ServiceAgentGrants(
            "agent",
            project="demo-project",
            import_buckets=["raw"],
            export_buckets=["out"],
            filter_buckets=["filters"],
            bigquery_datasets=["meta"],
        )

    stack = run_under_mocks(program)
    identity = stack.named("agent-agent")
    assert identity.type == IDENTITY
    assert identity.inputs == {"project": "demo-project", "service": "healthcare.googleapis.com"}
    assert _roles(stack) == {
        (BUCKET_MEMBER, "raw", "roles/storage.objectViewer"),
        (BUCKET_MEMBER, "out", "roles/storage.objectAdmin"),
        (BUCKET_MEMBER, "filters", "roles/storage.objectViewer"),
        (DATASET_MEMBER, "meta", "roles/bigquery.dataEditor"),
        (PROJECT_MEMBER, "demo-project", "roles/bigquery.jobUser"),
    }
    component = stack.named("agent")
    assert component.type == "dicom-transfer:index:ServiceAgentGrants"
    for r in stack.resources:
        if r is not component:
            assert r.parent == component.urn, f"{r.name} is not parented to the component"


def test_grants_without_bigquery_grant_no_bigquery_roles() -> None:
    stack = run_under_mocks(
        lambda: ServiceAgentGrants("agent", project="demo-project", import_buckets=["raw"])
    )
    assert _roles(stack) == {(BUCKET_MEMBER, "raw", "roles/storage.objectViewer")}


def _pipeline(manage_grants: bool = True) -> None:
    DicomPipeline(
        "env",
        project="demo-project",
        dicom_store=STORE,
        imports=[ImportStep("load", gcs_uri="gs://raw/incoming/**.dcm")],
        exports=[
            ExportStep(
                "copy",
                gcs_destination={"uri_prefix": "gs://out/copy", "mime_type": "image/png"},
                filter_resource_paths=["/studies/1.2.3"],
                filter_staging_uri="gs://scratch/filters",
            ),
            ExportStep(
                "meta",
                bigquery_destination={
                    "table_uri": "bq://demo-project.meta.instances",
                    "write_disposition": "WRITE_APPEND",
                },
            ),
        ],
        manage_grants=manage_grants,
    )


def test_pipeline_grants_what_its_steps_touch() -> None:
    stack = run_under_mocks(_pipeline)
    assert _roles(stack) == {
        (BUCKET_MEMBER, "raw", "roles/storage.objectViewer"),
        (BUCKET_MEMBER, "out", "roles/storage.objectAdmin"),
        (BUCKET_MEMBER, "scratch", "roles/storage.objectViewer"),
        (DATASET_MEMBER, "meta", "roles/bigquery.dataEditor"),
        (PROJECT_MEMBER, "demo-project", "roles/bigquery.jobUser"),
    }


def test_pipeline_orders_grants_then_imports_then_exports() -> None:
    stack = run_under_mocks(_pipeline)
    component = stack.named("env")
    grants = stack.named("env-grants")
    members = [
        r.urn for r in stack.resources if r.type in (BUCKET_MEMBER, DATASET_MEMBER, PROJECT_MEMBER)
    ]
    load = stack.named("env-load")
    copy = stack.named("env-copy")
    meta = stack.named("env-meta")
    assert {load.type, copy.type, meta.type} == {DYNAMIC}
    for transfer in (load, copy, meta):
        assert transfer.parent == component.urn
        assert set(members) <= set(transfer.dependencies), (
            f"{transfer.name} may run before its grants"
        )
    assert grants.parent == component.urn
    for export in (copy, meta):
        assert load.urn in export.dependencies, f"{export.name} may run before the import"
    assert copy.urn not in load.dependencies


def test_pipeline_passes_step_inputs_to_the_transfers() -> None:
    stack = run_under_mocks(_pipeline)
    load = stack.named("env-load").inputs
    assert load["dicom_store"] == STORE
    assert load["gcs_uri"] == "gs://raw/incoming/**.dcm"
    assert load["max_failures"] == 0
    copy = stack.named("env-copy").inputs
    assert copy["gcs_destination"] == {"uri_prefix": "gs://out/copy", "mime_type": "image/png"}
    assert copy["filter_resource_paths"] == ["/studies/1.2.3"]
    assert "__provider" in copy


def test_pipeline_without_grants_declares_no_iam() -> None:
    stack = run_under_mocks(lambda: _pipeline(manage_grants=False))
    assert _roles(stack) == set()
    assert not stack.of_type(IDENTITY)
    assert len(stack.of_type(DYNAMIC)) == 3


def test_pipeline_refuses_repeated_step_names() -> None:
    def program() -> None:
        DicomPipeline(
            "env",
            project="demo-project",
            dicom_store=STORE,
            imports=[ImportStep("x", gcs_uri="gs://raw/a/*.dcm")],
            exports=[ExportStep("x", gcs_destination={"uri_prefix": "gs://out/x"})],
        )

    with pytest.raises(ValueError, match="step names repeat"):
        run_under_mocks(program)


def test_max_failures_none_means_tolerate_all() -> None:
    seen: dict[str, Any] = {}

    def program() -> None:
        DicomImport("lenient", dicom_store=STORE, gcs_uri="gs://raw/*.dcm", max_failures=None)
        DicomExport("strict", dicom_store=STORE, gcs_destination={"uri_prefix": "gs://out/x"})

    stack = run_under_mocks(program)
    seen["lenient"] = stack.named("lenient").inputs["max_failures"]
    seen["strict"] = stack.named("strict").inputs["max_failures"]
    assert seen == {"lenient": "unlimited", "strict": 0}


PROVIDER = "pulumi:providers:pulumi-python"


def _transfers_per_shard(count: int) -> dict[str, int]:
    """How many of ``count`` transfers each shard provider serves, with four shards."""

    def program() -> None:
        for index in range(count):
            DicomImport(f"load-{index}", dicom_store=STORE, gcs_uri=f"gs://raw/{index}/*.dcm")

    stack = run_under_mocks(program)
    shards = {r.urn: r.name for r in stack.of_type(PROVIDER)}
    per_shard: dict[str, int] = dict.fromkeys(shards.values(), 0)
    for transfer in stack.of_type(DYNAMIC):
        per_shard[shards[transfer.provider.rsplit("::", 1)[0]]] += 1
    return per_shard


@pytest.mark.parametrize(
    ("transfers", "expected"),
    [
        (3, [3]),  # a small stack starts one provider process
        (9, [4, 4, 1]),
        (16, [4, 4, 4, 4]),  # 16 calls at once
        (18, [6, 4, 4, 4]),  # then around again
    ],
)
def test_transfers_fill_shard_provider_processes_four_at_a_time(
    transfers: int, expected: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DICOM_TRANSFER_PROVIDER_SHARDS", "4")
    per_shard = _transfers_per_shard(transfers)
    assert per_shard == {f"dicom-transfer-shard-{i}": n for i, n in enumerate(expected)}


def test_the_default_is_one_provider_process_with_a_widened_pool() -> None:
    # The installed SDK's provider process is widened (worker_pool.py): no shard providers.
    stack = run_under_mocks(
        lambda: [
            DicomImport(f"load-{i}", dicom_store=STORE, gcs_uri=f"gs://raw/{i}/*.dcm")
            for i in range(16)
        ]
    )
    assert stack.of_type(PROVIDER) == []
    assert {transfer.provider for transfer in stack.of_type(DYNAMIC)} == {""}


def test_an_unverified_sdk_falls_back_to_four_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    from dicom_transfer import worker_pool
    from packaging.specifiers import SpecifierSet

    monkeypatch.setattr(worker_pool, "VERIFIED_SDK_RANGE", SpecifierSet(">=99"))
    worker_pool.widening_problem.cache_clear()
    try:
        per_shard = _transfers_per_shard(16)
    finally:
        worker_pool.widening_problem.cache_clear()
    assert per_shard == {f"dicom-transfer-shard-{i}": 4 for i in range(4)}


def test_an_explicit_provider_is_kept_and_one_shard_means_no_sharding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pulumi

    monkeypatch.setenv("DICOM_TRANSFER_PROVIDER_SHARDS", "4")

    def program() -> None:
        mine = pulumi.ProviderResource("pulumi-python", "mine", {})
        DicomImport(
            "a",
            dicom_store=STORE,
            gcs_uri="gs://raw/a/*.dcm",
            opts=pulumi.ResourceOptions(provider=mine),
        )

    stack = run_under_mocks(program)
    assert [r.name for r in stack.of_type(PROVIDER)] == ["mine"]
    assert stack.named("a").provider.rsplit("::", 1)[0] == stack.named("mine").urn

    monkeypatch.setenv("DICOM_TRANSFER_PROVIDER_SHARDS", "1")
    stack = run_under_mocks(lambda: DicomImport("b", dicom_store=STORE, gcs_uri="gs://raw/b/*.dcm"))
    assert stack.of_type(PROVIDER) == []
    assert stack.named("b").provider == ""


@pytest.mark.parametrize(
    ("table_uri", "dataset"),
    [
        ("bq://my-project.imaging_meta.instances", "imaging_meta"),
        # A domain-scoped project holds a dot of its own (the table URI rule allows it).
        (
            "bq://example.com:my-project.imaging_meta.instances",
            "example.com:my-project.imaging_meta",
        ),
        # Another project than the store's is named (its grants go there).
        ("bq://analytics-prj.imaging_meta.instances", "analytics-prj.imaging_meta"),
    ],
)
def test_pipeline_grants_on_the_table_uri_dataset(table_uri: str, dataset: str) -> None:
    assert bigquery_dataset_of(table_uri, "my-project") == dataset


def test_cross_project_datasets_get_both_roles_in_their_project() -> None:
    # Guide "Exporting DICOM metadata to a different project": dataEditor and jobUser in the
    # table's project, granted to the store project's service agent; one jobUser per project.
    def program() -> None:
        ServiceAgentGrants(
            "agent",
            project="demo-project",
            bigquery_datasets=["meta", "analytics-prj.a", "analytics-prj.b", "demo-project.c"],
        )

    stack = run_under_mocks(program)
    assert _roles(stack) == {
        (DATASET_MEMBER, "meta", "roles/bigquery.dataEditor"),
        (DATASET_MEMBER, "a", "roles/bigquery.dataEditor"),
        (DATASET_MEMBER, "b", "roles/bigquery.dataEditor"),
        (DATASET_MEMBER, "c", "roles/bigquery.dataEditor"),
        (PROJECT_MEMBER, "demo-project", "roles/bigquery.jobUser"),
        (PROJECT_MEMBER, "analytics-prj", "roles/bigquery.jobUser"),
    }
    projects = {r.inputs["datasetId"]: r.inputs["project"] for r in stack.of_type(DATASET_MEMBER)}
    assert projects == {
        "meta": "demo-project",
        "a": "analytics-prj",
        "b": "analytics-prj",
        "c": "demo-project",
    }
    # The store's own project keeps its member's name (no replacement for existing stacks).
    assert stack.named("agent-bq-jobuser").inputs["project"] == "demo-project"
    assert stack.named("agent-bq-jobuser-analytics-prj").inputs["project"] == "analytics-prj"


def test_a_dataset_known_only_at_deploy_time_is_granted_where_it_resolves() -> None:
    def program() -> None:
        ServiceAgentGrants(
            "agent",
            project="demo-project",
            bigquery_datasets=[pulumi.Output.from_input("analytics-prj.late")],
        )

    stack = run_under_mocks(program)
    assert _roles(stack) == {
        (DATASET_MEMBER, "late", "roles/bigquery.dataEditor"),
        # Documented: an Output cannot name a resource, so jobUser stays on ``project``.
        (PROJECT_MEMBER, "demo-project", "roles/bigquery.jobUser"),
    }
    assert stack.of_type(DATASET_MEMBER)[0].inputs["project"] == "analytics-prj"


def test_pipeline_names_a_malformed_table_uri() -> None:
    with pytest.raises(InvalidSpec, match=r"bigquery_destination\.table_uri"):
        bigquery_dataset_of("bq://only.two", "my-project")


def test_pipeline_export_without_a_table_grants_no_dataset() -> None:
    # tableUri is optional in the API (left to it); there is no dataset to grant on.
    def program() -> None:
        DicomPipeline(
            "env",
            project="demo-project",
            dicom_store=STORE,
            exports=[ExportStep("meta", bigquery_destination={"write_disposition": "WRITE_EMPTY"})],
        )

    stack = run_under_mocks(program)
    assert _roles(stack) == set()
    assert len(stack.of_type(DYNAMIC)) == 1


def test_one_binding_is_declared_by_one_member() -> None:
    # The store project's dataset written both ways, and a repeat: one member each.
    def program() -> None:
        ServiceAgentGrants(
            "agent",
            project="demo-project",
            bigquery_datasets=["meta", "demo-project.meta", "analytics-prj.a", "analytics-prj.a"],
        )

    stack = run_under_mocks(program)
    names = sorted(r.name for r in stack.of_type(DATASET_MEMBER))
    assert names == ["agent-bq-analytics-prj.a", "agent-bq-meta"]
    assert sorted(r.name for r in stack.of_type(PROJECT_MEMBER)) == [
        "agent-bq-jobuser",
        "agent-bq-jobuser-analytics-prj",
    ]


def test_pipeline_with_project_as_output_keeps_literal_tables_literal() -> None:
    # The store's project comes from the literal dicom_store: same names as with a literal
    # project, and a table in another project gets its job-user grant there.
    def program() -> None:
        DicomPipeline(
            "env",
            project=pulumi.Output.from_input("demo-project"),
            dicom_store=STORE,
            exports=[
                ExportStep("a", bigquery_destination={"table_uri": "bq://demo-project.meta.t"}),
                ExportStep("b", bigquery_destination={"table_uri": "bq://demo-project.meta.u"}),
                ExportStep("c", bigquery_destination={"table_uri": "bq://analytics-prj.x.t"}),
            ],
        )

    stack = run_under_mocks(program)
    assert sorted(r.name for r in stack.of_type(DATASET_MEMBER)) == [
        "env-grants-bq-analytics-prj.x",
        "env-grants-bq-meta",
    ]
    assert _roles(stack) == {
        (DATASET_MEMBER, "meta", "roles/bigquery.dataEditor"),
        (DATASET_MEMBER, "x", "roles/bigquery.dataEditor"),
        (PROJECT_MEMBER, "demo-project", "roles/bigquery.jobUser"),
        (PROJECT_MEMBER, "analytics-prj", "roles/bigquery.jobUser"),
    }


def test_pipeline_reads_each_uri_as_its_kind() -> None:
    # An export directory may hold '*' (written literally); only an import source is a pattern.
    def program() -> None:
        DicomPipeline(
            "env",
            project="demo-project",
            dicom_store=STORE,
            imports=[ImportStep("load", gcs_uri="gs://raw/in/**.dcm")],
            exports=[ExportStep("out", gcs_destination={"uri_prefix": "gs://out/a**/b"})],
        )

    stack = run_under_mocks(program)
    assert _roles(stack) == {
        (BUCKET_MEMBER, "raw", "roles/storage.objectViewer"),
        (BUCKET_MEMBER, "out", "roles/storage.objectAdmin"),
    }


def test_a_bucket_holding_sources_and_filters_gets_one_viewer_member() -> None:
    # Same role, same bucket from two lists (and a repeat): one member for the binding.
    stack = run_under_mocks(
        lambda: ServiceAgentGrants(
            "agent", project="demo-project", import_buckets=["raw", "raw"], filter_buckets=["raw"]
        )
    )
    members = stack.of_type(BUCKET_MEMBER)
    assert [(r.name, r.inputs["role"]) for r in members] == [
        ("agent-import-raw", "roles/storage.objectViewer")
    ]


@pytest.mark.parametrize(
    ("keywords", "field"),
    [
        ({"import_buckets": ["gs://raw"]}, "import_buckets"),
        ({"export_buckets": ["out/dir"]}, "export_buckets"),
        ({"bigquery_datasets": ["other-prj.ds.tbl"]}, "bigquery_datasets"),
        ({"bigquery_datasets": ["bq://other-prj.ds"]}, "bigquery_datasets"),
    ],
)
def test_grants_refuse_what_is_not_a_bucket_or_dataset(
    keywords: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidSpec, match=field):
        run_under_mocks(lambda: ServiceAgentGrants("agent", project="demo-project", **keywords))


def test_grants_whose_names_would_clash_are_refused() -> None:
    # Dataset "1" and the second entry (an Output, named by its position) would both be bq-1.
    with pytest.raises(ValueError, match="share a name"):
        run_under_mocks(
            lambda: ServiceAgentGrants(
                "agent",
                project="demo-project",
                bigquery_datasets=["1", pulumi.Output.from_input("x")],
            )
        )


def test_pipeline_names_the_input_of_a_bad_uri_and_a_project_mismatch() -> None:
    def pipeline(**keywords: Any) -> None:
        DicomPipeline("env", dicom_store=STORE, **keywords)

    with pytest.raises(InvalidSpec, match=r"gcs_destination\.uri_prefix"):
        run_under_mocks(
            lambda: pipeline(
                project="demo-project",
                exports=[ExportStep("a", gcs_destination={"uri_prefix": "gs://Bad_Bucket/x"})],
            )
        )
    with pytest.raises(InvalidSpec, match="filter_staging_uri"):
        run_under_mocks(
            lambda: pipeline(
                project="demo-project",
                exports=[
                    ExportStep(
                        "a",
                        gcs_destination={"uri_prefix": "gs://out/x"},
                        filter_resource_paths=["/studies/1.2"],
                        filter_staging_uri="s3://out/f",
                    )
                ],
            )
        )
    with pytest.raises(InvalidSpec, match="project"):
        run_under_mocks(lambda: pipeline(project="other-prj"))
    # A project number and an ID may name the same project: not refused.
    run_under_mocks(lambda: pipeline(project="123456789012"))


def test_pipeline_treats_an_empty_table_uri_as_unset() -> None:
    stack = run_under_mocks(
        lambda: DicomPipeline(
            "env",
            project="demo-project",
            dicom_store=STORE,
            exports=[ExportStep("a", bigquery_destination={"table_uri": "", "schema_json": True})],
        )
    )
    assert _roles(stack) == set()
