"""``DicomImport`` and ``DicomExport``: DICOM transfers as Pulumi resources.

Each resource is one long-running operation: ``pulumi up`` submits it and waits for it,
and its counters become outputs. Changing what the request asks for re-runs it (replace);
changing only how long or how tolerantly to wait does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypedDict

import pulumi
from pulumi.dynamic import Resource

from dicom_transfer.providers import OPERATION_OUTPUTS, DicomExportProvider, DicomImportProvider
from dicom_transfer.sharding import provider_options
from dicom_transfer.specs.props import (
    DEFAULT_PERMISSION_RETRY_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_FAILURES_UNLIMITED,
)

__all__ = [
    "BigQueryDestinationArgs",
    "DicomExport",
    "DicomExportArgs",
    "DicomImport",
    "DicomImportArgs",
    "GcsDestinationArgs",
]


class GcsDestinationArgs(TypedDict, total=False):
    """Export to Cloud Storage (``ExportDicomDataRequest.gcsDestination``)."""

    uri_prefix: pulumi.Input[str]
    """``uriPrefix``: ``gs://BUCKET[/DIR]``; files land at ``{prefix}/{study}/{series}/{instance}``
    (``/{frame}`` for frames) with the MIME type's extension."""
    mime_type: pulumi.Input[str]
    """``mimeType``: a documented value, e.g. ``application/dicom; transfer-syntax=*`` (no
    transcoding) or ``image/png``; unset = as stored."""


class BigQueryDestinationArgs(TypedDict, total=False):
    """Export DICOM metadata to BigQuery (``ExportDicomDataRequest.bigqueryDestination``)."""

    table_uri: pulumi.Input[str]
    """``tableUri``: ``bq://PROJECT.DATASET.TABLE``; another project than the store's is
    allowed (its Cloud Healthcare Service Agent then needs roles in that project)."""
    write_disposition: pulumi.Input[str]
    """``writeDisposition``: WRITE_EMPTY, WRITE_TRUNCATE, WRITE_APPEND or
    WRITE_DISPOSITION_UNSPECIFIED (the API: "the same as WRITE_EMPTY"; as proto3's zero value
    it also reads as unset, so ``force`` may still apply)."""
    force: pulumi.Input[bool]
    """``force`` (deprecated): false = WRITE_EMPTY, true = WRITE_TRUNCATE; ignored with
    write_disposition."""
    include_source_store: pulumi.Input[bool]
    """``includeSourceStore``: add a column naming the source store."""
    schema_flattened: pulumi.Input[bool]
    """``schemaFlattened``: one column per DICOM tag; not with schema_json."""
    schema_json: pulumi.Input[bool]
    """``schemaJson``: all DICOM tags in one JSON column; not with schema_flattened."""
    change_data_capture: pulumi.Input[bool]
    """``changeDataCaptureConfig`` (v1beta1 only, with schema_json): keep only the latest
    version of each instance."""


Triggers = pulumi.Input[Sequence[Any]] | pulumi.Input[Mapping[str, Any]] | None


@dataclass(kw_only=True)
class _TransferArgs:
    """What every transfer takes besides the store and the connection: how long and how
    tolerantly to wait, and what re-runs it."""

    timeout_seconds: pulumi.Input[float] = DEFAULT_TIMEOUT_SECONDS
    """Deadline for submit + wait, enforced by the provider."""
    max_failures: pulumi.Input[int] | None = 0
    """Failed files/instances tolerated before the resource fails; None = any."""
    permission_retry_seconds: pulumi.Input[float] = DEFAULT_PERMISSION_RETRY_SECONDS
    """How long PERMISSION_DENIED is retried after fresh grants."""
    triggers: Triggers = None
    """Any values; changing them re-runs the transfer."""

    not_inputs: ClassVar[frozenset[str]] = frozenset()
    """Fields of a subclass that are no input of the resource (a pipeline step's ``name``)."""

    def inputs(self) -> dict[str, Any]:
        """The arguments by input name (keyword arguments of the resource)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.not_inputs
        }


@dataclass(kw_only=True)
class DicomImportArgs(_TransferArgs):
    """The arguments of one :class:`DicomImport` besides the store and the connection
    (shared with ``pipeline.ImportStep``)."""

    gcs_uri: pulumi.Input[str]
    """``gs://BUCKET/PATH`` with ``*``, ``?`` or a trailing ``**`` wildcard."""
    blob_storage_class: pulumi.Input[str] | None = None
    """``blobStorageSettings.blobStorageClass``: STANDARD, NEARLINE, COLDLINE, ARCHIVE or
    BLOB_STORAGE_CLASS_UNSPECIFIED (the store's default)."""


@dataclass(kw_only=True)
class DicomExportArgs(_TransferArgs):
    """The arguments of one :class:`DicomExport` besides the store and the connection
    (shared with ``pipeline.ExportStep``); give exactly one destination."""

    gcs_destination: pulumi.Input[GcsDestinationArgs] | None = None
    """``{"uri_prefix", "mime_type"}``."""
    bigquery_destination: pulumi.Input[BigQueryDestinationArgs] | None = None
    """``{"table_uri", "write_disposition", "schema_json", ...}`` (see
    :class:`BigQueryDestinationArgs`)."""
    filter_gcs_uri: pulumi.Input[str] | None = None
    """``gs://`` URI of an existing filter file."""
    filter_resource_paths: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Inline ``/studies/…[/series/…[/instances/…]]`` paths, written by the provider to a
    content-addressed file under ``filter_staging_uri``."""
    filter_staging_uri: pulumi.Input[str] | None = None
    """``gs://BUCKET[/DIR]`` for the inline filter file."""


def _max_failures_prop(value: pulumi.Input[int] | None) -> pulumi.Input[Any]:
    # Pulumi drops top-level inputs whose value is None, so "tolerate all" needs a spelling.
    if value is None:
        return MAX_FAILURES_UNLIMITED
    if isinstance(value, int):
        return value
    return _later(value).apply(
        lambda resolved: MAX_FAILURES_UNLIMITED if resolved is None else resolved
    )


def _later(value: pulumi.Input[int]) -> pulumi.Output[int]:
    return pulumi.Output.from_input(value)


def _props(
    resource_name: str,
    args: _TransferArgs,
    *,
    dicom_store: pulumi.Input[str],
    api_version: pulumi.Input[str],
    endpoint: pulumi.Input[str] | None,
    storage_endpoint: pulumi.Input[str] | None,
    impersonate_service_account: pulumi.Input[str] | None,
) -> dict[str, Any]:
    return {
        **args.inputs(),
        "resource_name": resource_name,
        "dicom_store": dicom_store,
        "api_version": api_version,
        "max_failures": _max_failures_prop(args.max_failures),
        "endpoint": endpoint,
        "storage_endpoint": storage_endpoint,
        "impersonate_service_account": impersonate_service_account,
        # Outputs: declared here so that the engine exposes them.
        **dict.fromkeys(OPERATION_OUTPUTS),
    }


class DicomImport(Resource):
    """Imports DICOM files from Cloud Storage into a DICOM store (``dicomStores.import``).

    Outputs:
        operation_name: Full name of the long-running operation (also the resource ID).
        success_count: Instances imported (a file identical to an instance the store already had
            counts here too; one with other bytes under the same UIDs is a failure).
        failure_count: Files that could not be imported.
        create_time / end_time: RFC 3339 times of the operation.
        logs_url: Cloud Logging URL of the per-file errors.
    """

    operation_name: pulumi.Output[str]
    success_count: pulumi.Output[int]
    failure_count: pulumi.Output[int]
    create_time: pulumi.Output[str]
    end_time: pulumi.Output[str]
    logs_url: pulumi.Output[str]
    dicom_store: pulumi.Output[str]
    gcs_uri: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        dicom_store: pulumi.Input[str],
        gcs_uri: pulumi.Input[str],
        blob_storage_class: pulumi.Input[str] | None = None,
        api_version: pulumi.Input[str] = "v1",
        timeout_seconds: pulumi.Input[float] = DEFAULT_TIMEOUT_SECONDS,
        max_failures: pulumi.Input[int] | None = 0,
        permission_retry_seconds: pulumi.Input[float] = DEFAULT_PERMISSION_RETRY_SECONDS,
        triggers: Triggers = None,
        endpoint: pulumi.Input[str] | None = None,
        storage_endpoint: pulumi.Input[str] | None = None,
        impersonate_service_account: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Declares an import.

        Args:
            resource_name: The resource's name.
            dicom_store: ``projects/P/locations/L/datasets/D/dicomStores/S`` (a pulumi-gcp
                ``DicomStore.id`` works too).
            gcs_uri: ``gs://BUCKET/PATH`` with ``*``, ``?`` or a trailing ``**`` wildcard.
            blob_storage_class: ``blobStorageSettings.blobStorageClass``: STANDARD, NEARLINE,
                COLDLINE, ARCHIVE or BLOB_STORAGE_CLASS_UNSPECIFIED.
            api_version: ``v1`` or ``v1beta1``.
            timeout_seconds: Deadline for submit + wait, enforced by the provider.
            max_failures: Failed files tolerated before the resource fails; None = any.
            permission_retry_seconds: How long PERMISSION_DENIED is retried after fresh grants.
            triggers: Any values; changing them re-runs the import.
            endpoint: Healthcare API endpoint of the real API (private, regional, VPC-SC);
                credentials (ADC, impersonation) are kept. An emulator is declared with
                ``HEALTHCARE_EMULATOR_HOST`` instead (anonymous credentials).
            storage_endpoint: Cloud Storage endpoint, likewise (emulator:
                ``STORAGE_EMULATOR_HOST``).
            impersonate_service_account: Service account to impersonate with ADC.
            opts: Resource options.
        """
        args = DicomImportArgs(
            gcs_uri=gcs_uri,
            blob_storage_class=blob_storage_class,
            timeout_seconds=timeout_seconds,
            max_failures=max_failures,
            permission_retry_seconds=permission_retry_seconds,
            triggers=triggers,
        )
        props = _props(
            resource_name,
            args,
            dicom_store=dicom_store,
            api_version=api_version,
            endpoint=endpoint,
            storage_endpoint=storage_endpoint,
            impersonate_service_account=impersonate_service_account,
        )
        super().__init__(DicomImportProvider(), resource_name, props, provider_options(opts))


class DicomExport(Resource):
    """Exports a DICOM store to Cloud Storage or BigQuery (``dicomStores.export``).

    Outputs:
        operation_name: Full name of the long-running operation (also the resource ID).
        success_count / failure_count: Instances exported / not exported.
        create_time / end_time: RFC 3339 times of the operation.
        logs_url: Cloud Logging URL of the per-instance errors.
        filter_uri: The filter file the export used (the staged one for inline paths).
    """

    operation_name: pulumi.Output[str]
    success_count: pulumi.Output[int]
    failure_count: pulumi.Output[int]
    create_time: pulumi.Output[str]
    end_time: pulumi.Output[str]
    logs_url: pulumi.Output[str]
    filter_uri: pulumi.Output[str | None]
    dicom_store: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        dicom_store: pulumi.Input[str],
        gcs_destination: pulumi.Input[GcsDestinationArgs] | None = None,
        bigquery_destination: pulumi.Input[BigQueryDestinationArgs] | None = None,
        filter_gcs_uri: pulumi.Input[str] | None = None,
        filter_resource_paths: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        filter_staging_uri: pulumi.Input[str] | None = None,
        api_version: pulumi.Input[str] = "v1",
        timeout_seconds: pulumi.Input[float] = DEFAULT_TIMEOUT_SECONDS,
        max_failures: pulumi.Input[int] | None = 0,
        permission_retry_seconds: pulumi.Input[float] = DEFAULT_PERMISSION_RETRY_SECONDS,
        triggers: Triggers = None,
        endpoint: pulumi.Input[str] | None = None,
        storage_endpoint: pulumi.Input[str] | None = None,
        impersonate_service_account: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Declares an export; give exactly one of the two destinations.

        Args:
            resource_name: The resource's name.
            dicom_store: The source DICOM store's full name.
            gcs_destination: ``{"uri_prefix", "mime_type"}``.
            bigquery_destination: ``{"table_uri", "write_disposition", "schema_json", ...}``
                (see :class:`BigQueryDestinationArgs`).
            filter_gcs_uri: ``gs://`` URI of an existing filter file.
            filter_resource_paths: Inline ``/studies/…[/series/…[/instances/…]]`` paths; the
                provider writes them to a content-addressed file under ``filter_staging_uri``.
            filter_staging_uri: ``gs://BUCKET[/DIR]`` for the inline filter file.
            api_version: ``v1`` or ``v1beta1``.
            timeout_seconds: Deadline for submit + wait, enforced by the provider.
            max_failures: Failed instances tolerated before the resource fails; None = any.
            permission_retry_seconds: How long PERMISSION_DENIED is retried after fresh grants.
            triggers: Any values; changing them re-runs the export.
            endpoint: Healthcare API endpoint of the real API (private, regional, VPC-SC);
                credentials (ADC, impersonation) are kept. An emulator is declared with
                ``HEALTHCARE_EMULATOR_HOST`` instead (anonymous credentials).
            storage_endpoint: Cloud Storage endpoint, likewise (emulator:
                ``STORAGE_EMULATOR_HOST``); used for filter staging.
            impersonate_service_account: Service account to impersonate with ADC.
            opts: Resource options.
        """
        args = DicomExportArgs(
            gcs_destination=gcs_destination,
            bigquery_destination=bigquery_destination,
            filter_gcs_uri=filter_gcs_uri,
            filter_resource_paths=filter_resource_paths,
            filter_staging_uri=filter_staging_uri,
            timeout_seconds=timeout_seconds,
            max_failures=max_failures,
            permission_retry_seconds=permission_retry_seconds,
            triggers=triggers,
        )
        props = _props(
            resource_name,
            args,
            dicom_store=dicom_store,
            api_version=api_version,
            endpoint=endpoint,
            storage_endpoint=storage_endpoint,
            impersonate_service_account=impersonate_service_account,
        )
        props["filter_uri"] = None  # output
        super().__init__(DicomExportProvider(), resource_name, props, provider_options(opts))
