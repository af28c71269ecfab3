"""The dicom-transfer environment: storage, DICOM store, grants, an import and exports.

Everything comes from stack config (schema in Pulumi.yaml). With ``createInfrastructure``
the buckets, Healthcare dataset, DICOM store and BigQuery dataset are created with pulumi-gcp;
without it the names refer to existing ones (what the offline ``local`` stack does).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from dicom_transfer import DicomPipeline, ExportStep, GcsDestinationArgs, ImportStep


@dataclass(frozen=True)
class EnvironmentConfig:
    """Stack config, typed."""

    project: str
    location: str
    dataset_id: str
    dicom_store_id: str
    create_infrastructure: bool
    manage_grants: bool
    source_bucket: str
    import_path: str
    export_bucket: str
    export_prefix: str
    export_mime_type: str
    export_filter_paths: list[str]
    filter_staging_prefix: str
    bigquery_dataset: str
    bigquery_table: str
    bigquery_write_disposition: str
    max_failures: int
    timeout_seconds: int

    @classmethod
    def load(cls) -> EnvironmentConfig:
        """Reads the stack config (defaults come from Pulumi.yaml)."""
        config = pulumi.Config()
        return cls(
            project=config.require("gcpProject"),
            location=config.get("location") or "us-central1",
            dataset_id=config.get("datasetId") or "imaging",
            dicom_store_id=config.get("dicomStoreId") or "archive",
            create_infrastructure=_bool(config.get_bool("createInfrastructure"), True),
            manage_grants=_bool(config.get_bool("manageGrants"), True),
            source_bucket=config.require("sourceBucket"),
            import_path=config.get("importPath") or "**.dcm",
            export_bucket=config.require("exportBucket"),
            export_prefix=config.get("exportPrefix") or "export",
            export_mime_type=config.get("exportMimeType") or "",
            export_filter_paths=list(config.get_object("exportFilterPaths") or []),
            filter_staging_prefix=config.get("filterStagingPrefix") or "filters",
            bigquery_dataset=config.get("bigqueryDataset") or "",
            bigquery_table=config.get("bigqueryTable") or "dicom_metadata",
            bigquery_write_disposition=config.get("bigqueryWriteDisposition") or "WRITE_TRUNCATE",
            max_failures=_int(config.get_int("maxFailures"), 0),
            timeout_seconds=_int(config.get_int("timeoutSeconds"), 3600),
        )


def _bool(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def _int(value: int | None, default: int) -> int:
    return default if value is None else value


def provision_store(cfg: EnvironmentConfig) -> tuple[pulumi.Input[str], list[pulumi.Resource]]:
    """The DICOM store's name, and the resources transfers must wait for.

    Creates the buckets, datasets and store when asked to; else names the existing ones.
    """
    store_name = (
        f"projects/{cfg.project}/locations/{cfg.location}/datasets/{cfg.dataset_id}"
        f"/dicomStores/{cfg.dicom_store_id}"
    )
    if not cfg.create_infrastructure:
        return store_name, []

    import pulumi_gcp as gcp  # only needed (and its plugin only used) when creating

    source = gcp.storage.Bucket(
        "source",
        name=cfg.source_bucket,
        project=cfg.project,
        location=cfg.location.upper(),
        uniform_bucket_level_access=True,
    )
    export = gcp.storage.Bucket(
        "export",
        name=cfg.export_bucket,
        project=cfg.project,
        location=cfg.location.upper(),
        uniform_bucket_level_access=True,
    )
    dataset = gcp.healthcare.Dataset(
        "dataset", name=cfg.dataset_id, location=cfg.location, project=cfg.project
    )
    store = gcp.healthcare.DicomStore("store", name=cfg.dicom_store_id, dataset=dataset.id)
    created: list[pulumi.Resource] = [source, export, store]
    if cfg.bigquery_dataset:
        created.append(
            gcp.bigquery.Dataset(
                "metadata",
                dataset_id=cfg.bigquery_dataset,
                project=cfg.project,
                location=cfg.location,
            )
        )
    return store.id, created


def _gcs_destination(cfg: EnvironmentConfig) -> GcsDestinationArgs:
    destination: GcsDestinationArgs = {
        "uri_prefix": f"gs://{cfg.export_bucket}/{cfg.export_prefix}"
    }
    if cfg.export_mime_type:
        destination["mime_type"] = cfg.export_mime_type
    return destination


def main() -> None:
    """Declares the environment and exports the transfers' counters."""
    cfg = EnvironmentConfig.load()
    store, created = provision_store(cfg)
    exports = [
        ExportStep(
            name="export-gcs",
            gcs_destination=_gcs_destination(cfg),
            filter_resource_paths=cfg.export_filter_paths or None,
            filter_staging_uri=(
                f"gs://{cfg.export_bucket}/{cfg.filter_staging_prefix}"
                if cfg.export_filter_paths
                else None
            ),
            max_failures=cfg.max_failures,
            timeout_seconds=cfg.timeout_seconds,
        )
    ]
    if cfg.bigquery_dataset:
        exports.append(
            ExportStep(
                name="export-bq",
                bigquery_destination={
                    "table_uri": f"bq://{cfg.project}.{cfg.bigquery_dataset}.{cfg.bigquery_table}",
                    "write_disposition": cfg.bigquery_write_disposition,
                },
                max_failures=cfg.max_failures,
                timeout_seconds=cfg.timeout_seconds,
            )
        )
    pipeline = DicomPipeline(
        "env",
        project=cfg.project,
        dicom_store=store,
        imports=[
            ImportStep(
                name="import",
                gcs_uri=f"gs://{cfg.source_bucket}/{cfg.import_path}",
                max_failures=cfg.max_failures,
                timeout_seconds=cfg.timeout_seconds,
            )
        ],
        exports=exports,
        manage_grants=cfg.manage_grants,
        opts=pulumi.ResourceOptions(depends_on=created),
    )
    pulumi.export("dicomStore", store)
    for name, transfer in {**pipeline.imports, **pipeline.exports}.items():
        pulumi.export(
            name,
            {
                "operation": transfer.operation_name,
                "success": transfer.success_count,
                "failure": transfer.failure_count,
                "logsUrl": transfer.logs_url,
            },
        )


main()
