"""The one table of the transfers' inputs and outputs.

Every input of ``DicomImport`` and ``DicomExport`` is declared here once: its snake_case name
(the Python resources' keyword and the dynamic provider's prop), the API field it sets, its
type, a description, its default, whether changing it replaces the transfer (re-runs it) or
updates it in place, and the API versions that have it. From this table come the providers'
key lists (:func:`request_keys`, :data:`UPDATE_KEYS`, which holds :data:`RESOURCE_NAME` too),
the native provider's schema (``dicom_transfer.native.schema``; properties are the camelCase
names) and the README's reference tables; tests hold the Python signatures (resources,
pipeline steps) against it.

Pure: no I/O, no Pulumi import.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CONFIG_INPUTS",
    "INPUTS",
    "OUTPUTS",
    "RESOURCE_NAME",
    "UPDATE_KEYS",
    "Input",
    "Output",
    "TransferKind",
    "camel_case",
    "fields_of",
    "inputs_of",
    "outputs_of",
    "request_keys",
]

TransferKind = Literal["import", "export"]
Change = Literal["replace", "update"]
InputType = Literal["string", "number", "integer", "boolean", "any", "string[]", "object"]
BOTH: tuple[TransferKind, ...] = ("import", "export")
ALL_VERSIONS = ("v1", "v1beta1")


def camel_case(name: str) -> str:
    """``gcs_destination`` -> ``gcsDestination`` (Pulumi's schema convention)."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class Input:
    """One input of a transfer resource (or one field of an object input).

    Attributes:
        name: snake_case name (Python keyword, dynamic provider prop).
        type: Value type; ``object`` inputs list their ``fields``.
        description: What it means, in one or two sentences (Markdown).
        api_field: The request field it sets (dotted, in the API's names), or None when it sets
            none (the URL path, the provider's own behaviour).
        default: Its value when unset, or None (unset: the API's or the provider's default).
        required: Whether it must be given.
        change: ``replace`` (re-runs the transfer) or ``update`` (in place, nothing resubmitted).
        kinds: The resources that take it.
        api_versions: The API versions whose request has it.
        fields: The fields of an ``object`` input.
        object_name: The schema type name of an ``object`` input.
    """

    name: str
    type: InputType
    description: str
    api_field: str | None = None
    default: object = None
    required: bool = False
    change: Change = "replace"
    kinds: tuple[TransferKind, ...] = BOTH
    api_versions: tuple[str, ...] = ALL_VERSIONS
    fields: tuple[Input, ...] = ()
    object_name: str | None = None

    @property
    def camel_name(self) -> str:
        """The schema's (camelCase) property name."""
        return camel_case(self.name)


@dataclass(frozen=True)
class Output:
    """One output of a transfer resource (besides its inputs).

    Attributes:
        name: snake_case name.
        type: Value type.
        description: What it holds.
        kinds: The resources that have it.
    """

    name: str
    type: InputType
    description: str
    kinds: tuple[TransferKind, ...] = BOTH

    @property
    def camel_name(self) -> str:
        """The schema's (camelCase) property name."""
        return camel_case(self.name)


_GCS_DESTINATION = (
    Input(
        "uri_prefix",
        "string",
        "`gs://BUCKET[/DIR]`; files land at `{uri_prefix}/{study}/{series}/{instance}[/{frame}]"
        ".{ext}` (the service adds the `/` after `uri_prefix` only when it has none).",
        api_field="gcsDestination.uriPrefix",
        required=True,
    ),
    Input(
        "mime_type",
        "string",
        "A documented MIME type, e.g. `application/dicom; transfer-syntax=*` (no transcoding) "
        'or `image/png`; unset (or `""`) exports as stored.',
        api_field="gcsDestination.mimeType",
    ),
)

_BIGQUERY_DESTINATION = (
    Input(
        "table_uri",
        "string",
        "`bq://PROJECT.DATASET.TABLE`; PROJECT may differ from the store's (the service agent "
        "then needs its roles there); optional in the API's v1 document, so an unset one is "
        "left to the API.",
        api_field="bigqueryDestination.tableUri",
    ),
    Input(
        "write_disposition",
        "string",
        "`WRITE_EMPTY`, `WRITE_TRUNCATE`, `WRITE_APPEND` or `WRITE_DISPOSITION_UNSPECIFIED` "
        '("the same as WRITE_EMPTY", says the API; as proto3\'s zero value it also reads as '
        "unset, so `force` may still apply).",
        api_field="bigqueryDestination.writeDisposition",
    ),
    Input(
        "force",
        "boolean",
        "Deprecated: false = WRITE_EMPTY, true = WRITE_TRUNCATE; ignored when "
        "`write_disposition` is set.",
        api_field="bigqueryDestination.force",
    ),
    Input(
        "include_source_store",
        "boolean",
        "Add a column naming the source store.",
        api_field="bigqueryDestination.includeSourceStore",
    ),
    Input(
        "schema_flattened",
        "boolean",
        "One column per DICOM tag; not with `schema_json`.",
        api_field="bigqueryDestination.schemaFlattened",
    ),
    Input(
        "schema_json",
        "boolean",
        "All DICOM tags in one JSON column; not with `schema_flattened`.",
        api_field="bigqueryDestination.schemaJson",
    ),
    Input(
        "change_data_capture",
        "boolean",
        "Keep only the latest version of each instance; with `schema_json`.",
        api_field="bigqueryDestination.changeDataCaptureConfig",
        api_versions=("v1beta1",),
    ),
)

INPUTS: tuple[Input, ...] = (
    Input(
        "dicom_store",
        "string",
        "`projects/P/locations/L/datasets/D/dicomStores/S` (a pulumi-gcp `DicomStore.id` works "
        "too).",
        required=True,
    ),
    Input(
        "gcs_uri",
        "string",
        "`gs://BUCKET/OBJECT`; `*` (no `/`), `?` (one character), `**` (anything, once, at the "
        "end, may be followed by an extension such as `**.dcm`, no other wildcard beside it).",
        api_field="gcsSource.uri",
        required=True,
        kinds=("import",),
    ),
    Input(
        "blob_storage_class",
        "string",
        "`STANDARD`, `NEARLINE`, `COLDLINE`, `ARCHIVE` or `BLOB_STORAGE_CLASS_UNSPECIFIED` "
        "(the store's default).",
        api_field="blobStorageSettings.blobStorageClass",
        kinds=("import",),
    ),
    Input(
        "gcs_destination",
        "object",
        "Export to Cloud Storage; give exactly one destination.",
        api_field="gcsDestination",
        kinds=("export",),
        fields=_GCS_DESTINATION,
        object_name="GcsDestination",
    ),
    Input(
        "bigquery_destination",
        "object",
        "Export the DICOM metadata to BigQuery; give exactly one destination.",
        api_field="bigqueryDestination",
        kinds=("export",),
        fields=_BIGQUERY_DESTINATION,
        object_name="BigQueryDestination",
    ),
    Input(
        "filter_gcs_uri",
        "string",
        "`gs://` URI of an existing filter file (one `/studies/UID[/series/UID[/instances/UID]]` "
        "per line).",
        api_field="filterConfig.resourcePathsGcsUri",
        kinds=("export",),
    ),
    Input(
        "filter_resource_paths",
        "string[]",
        "Inline `/studies/UID[/series/UID[/instances/UID]]` paths; the provider writes them to "
        "`{filter_staging_uri}/{sha256}.txt` (skipped when it exists) and passes that URI.",
        api_field="filterConfig.resourcePathsGcsUri",
        kinds=("export",),
    ),
    Input(
        "filter_staging_uri",
        "string",
        "`gs://BUCKET[/DIR]` where the inline filter file is written (required with "
        "`filter_resource_paths`).",
        kinds=("export",),
    ),
    Input("api_version", "string", "`v1` or `v1beta1`.", default="v1"),
    Input("triggers", "any", "Any values; changing them re-runs the transfer."),
    Input(
        "timeout_seconds",
        "number",
        "Deadline for submit + wait in seconds, enforced by the provider (a native resource's "
        "`customTimeouts.create` also bounds it: the shorter wins).",
        default=3600.0,
        change="update",
    ),
    Input(
        "max_failures",
        "integer",
        "Failed files/instances tolerated before the resource fails; `None` (Python) or "
        '`"unlimited"` tolerates any number.',
        default=0,
        change="update",
    ),
    Input(
        "permission_retry_seconds",
        "number",
        "How long PERMISSION_DENIED is retried after fresh grants (0 disables).",
        default=600.0,
        change="update",
    ),
)
"""The resource inputs, in the order of the resources' signatures."""

CONFIG_INPUTS: tuple[Input, ...] = (
    Input(
        "endpoint",
        "string",
        "An `http(s)://` URL of another Healthcare API endpoint of the real API (Private "
        "Service Connect, regional, VPC-SC); credentials are kept. For an emulator set "
        "`HEALTHCARE_EMULATOR_HOST` instead.",
        change="update",
    ),
    Input(
        "storage_endpoint",
        "string",
        "The Cloud Storage endpoint, likewise (emulator: `STORAGE_EMULATOR_HOST`).",
        change="update",
    ),
    Input(
        "impersonate_service_account",
        "string",
        "A service account email, impersonated with Application Default Credentials.",
        change="update",
    ),
)
"""Where and as whom to talk: inputs of the dynamic resources, the native provider's config."""

RESOURCE_NAME = Input(
    "resource_name",
    "string",
    "The Python resource's name, recorded in its state: after a rename with an alias (or an "
    "adoption into a `DicomPipeline`) the state records the new name in place. Part of the "
    "journal's fingerprint only at create time (two identical transfers of one stack are two "
    "requests); diff compares the requests under one name, so a rename alone never re-runs "
    "a transfer.",
    change="update",
)
"""A prop of the dynamic resources that no user sets (the resource's name). Not a schema
property: a native resource's name is its URN's, which the engine renames with aliases."""

OUTPUTS: tuple[Output, ...] = (
    Output("operation_name", "string", "Full name of the long-running operation (the ID)."),
    Output(
        "success_count",
        "integer",
        "Instances imported or exported (on import, a file identical to an instance the store "
        "already had counts too).",
    ),
    Output("failure_count", "integer", "Files or instances that could not be transferred."),
    Output("create_time", "string", "RFC 3339 time the operation started."),
    Output("end_time", "string", "RFC 3339 time the operation finished."),
    Output("logs_url", "string", "Cloud Logging URL of the per-file errors."),
    Output(
        "filter_uri",
        "string",
        "The filter file the export read (the staged one for inline paths).",
        kinds=("export",),
    ),
)
"""Outputs besides the inputs."""


def inputs_of(kind: TransferKind) -> tuple[Input, ...]:
    """The resource inputs of an import or export, in signature order (no connection)."""
    return tuple(spec for spec in INPUTS if kind in spec.kinds)


def fields_of(name: str) -> tuple[str, ...]:
    """The field names of the object input ``name`` (e.g. ``gcs_destination``)."""
    [spec] = [spec for spec in INPUTS if spec.name == name]
    return tuple(field.name for field in spec.fields)


def outputs_of(kind: TransferKind) -> tuple[Output, ...]:
    """The outputs of an import or export besides its inputs."""
    return tuple(spec for spec in OUTPUTS if kind in spec.kinds)


def request_keys(kind: TransferKind) -> tuple[str, ...]:
    """The inputs whose change replaces (re-runs) an import or export."""
    return tuple(spec.name for spec in inputs_of(kind) if spec.change == "replace")


def _update_keys() -> Iterator[str]:
    for spec in (*INPUTS, *CONFIG_INPUTS, RESOURCE_NAME):
        if spec.change == "update":
            yield spec.name


UPDATE_KEYS: tuple[str, ...] = tuple(_update_keys())
"""Inputs that update in place (waiting, connection, the resource's name): never a resubmit."""
