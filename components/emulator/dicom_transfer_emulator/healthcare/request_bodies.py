"""Request bodies of the emulated Healthcare API: accepted fields, and the import/export rules.

Field tables follow the discovery documents bundled with google-api-python-client (``dict`` =
nested message, ``{}`` one without fields, ``object`` = any JSON object, ``list``, ``bool``,
``str``). Unknown names are refused as the API's JSON parsing does (400 INVALID_ARGUMENT,
'Invalid JSON payload received. Unknown name "x" at …'). An import or export body becomes a
validated request for :mod:`.transfers` plus the bucket roles its service agent needs; the
route (``.api``) checks those roles and starts the operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dicom_transfer_emulator.bigquery.rows import row_shape
from dicom_transfer_emulator.bigquery.tables import effective_disposition, parse_table_uri
from dicom_transfer_emulator.dicom.export_formats import ExportFormat, export_format, unsupported
from dicom_transfer_emulator.errors import invalid_argument
from dicom_transfer_emulator.healthcare.gcs_uris import compile_import_pattern, parse_gcs_uri
from dicom_transfer_emulator.healthcare.transfers import (
    BigQueryExportRequest,
    FilterSource,
    GcsExportRequest,
    ImportRequest,
)

__all__ = [
    "DATASET_SCHEMA",
    "EXPORT_SCHEMAS",
    "IMPORT_SCHEMA",
    "STORE_FIELDS",
    "STORE_SCHEMA",
    "STORE_UPDATABLE",
    "BucketRole",
    "check_fields",
    "check_one_notification_form",
    "export_request",
    "gcs_destination_format",
    "import_request",
]

DATASET_SCHEMA: dict[str, Any] = {"name": str, "timeZone": str, "encryptionSpec": object}
STORE_FIELDS = ("labels", "notificationConfig", "notificationConfigs", "streamConfigs")
#: Nested update-mask paths (sub-fields of ``NotificationConfig`` in the discovery documents).
STORE_UPDATABLE: dict[str, frozenset[str]] = {f: frozenset() for f in STORE_FIELDS} | {
    "notificationConfig": frozenset({"pubsubTopic", "sendForBulkImport"})
}
STORE_SCHEMA: dict[str, Any] = {
    "name": str,
    "labels": object,
    "notificationConfig": object,
    "notificationConfigs": list,
    "streamConfigs": list,
}
IMPORT_SCHEMA: dict[str, Any] = {
    "gcsSource": {"uri": str},
    "blobStorageSettings": {"blobStorageClass": str},
}
_V1_BIGQUERY_DESTINATION: dict[str, Any] = {
    "tableUri": str,
    "writeDisposition": str,
    "force": bool,
    "includeSourceStore": bool,
    # SchemaFlattened and SchemaJSON have no properties in the discovery documents.
    "schemaFlattened": {},
    "schemaJson": {},
}
#: Per API version: ``changeDataCaptureConfig`` (a message without properties) is in the
#: v1beta1 discovery document's DicomBigQueryDestination only.
EXPORT_SCHEMAS: dict[str, dict[str, Any]] = {
    version: {
        "gcsDestination": {"uriPrefix": str, "mimeType": str},
        "bigqueryDestination": destination,
        "filterConfig": {"resourcePathsGcsUri": str},
    }
    for version, destination in (
        ("v1", _V1_BIGQUERY_DESTINATION),
        ("v1beta1", {**_V1_BIGQUERY_DESTINATION, "changeDataCaptureConfig": {}}),
    )
}
#: ``BlobStorageSettings.blobStorageClass`` enum of the discovery documents.
_BLOB_STORAGE_CLASSES = (
    "BLOB_STORAGE_CLASS_UNSPECIFIED",
    "STANDARD",
    "NEARLINE",
    "COLDLINE",
    "ARCHIVE",
)


@dataclass(frozen=True)
class BucketRole:
    """A role the store's Cloud Healthcare Service Agent needs on a bucket.

    Attributes:
        bucket: the bucket name.
        role: e.g. ``roles/storage.objectViewer``.
        permission: the permission the real service reports missing, e.g.
            ``storage.objects.list``.
    """

    bucket: str
    role: str
    permission: str


def check_fields(value: Any, schema: dict[str, Any], where: str = "") -> None:
    """Refuse unknown fields and values of the wrong JSON type (400 INVALID_ARGUMENT).

    Args:
        value: the JSON body (or a nested object of it).
        schema: the accepted fields (see the module docstring).
        where: the dotted path of ``value`` in the body, ``""`` for the body itself.
    """
    if not isinstance(value, dict):
        raise invalid_argument(
            f"Invalid JSON payload received. Expected an object at '{where or 'body'}'."
        )
    for key, item in value.items():
        if item is None:  # JSON null means "unset", as in Google's JSON mapping
            continue
        expected = schema.get(key)
        field = f"{where}.{key}" if where else key
        if expected is None:
            at = f" at '{where}'" if where else ""
            raise invalid_argument(
                f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.'
            )
        if isinstance(expected, dict):
            check_fields(item, expected, field)
        elif expected is object:
            if not isinstance(item, dict):
                raise invalid_argument(f"Invalid value at '{field}': expected an object.")
        elif expected is list:
            if not isinstance(item, list):
                raise invalid_argument(f"Invalid value at '{field}': expected a list.")
        elif expected is bool:
            if not isinstance(item, bool):
                raise invalid_argument(f"Invalid value at '{field}' (TYPE_BOOL), {item!r}")
        elif not isinstance(item, str):
            raise invalid_argument(f"Invalid value at '{field}' (TYPE_STRING), {item!r}")


def check_one_notification_form(store: dict[str, Any]) -> None:
    """A DICOM store has ``notificationConfig`` or ``notificationConfigs``, never both.

    Source: the real API refuses a create or patch leaving both set with 400
    INVALID_ARGUMENT (observed, issue 17); the discovery documents describe the singular
    (Pub/Sub topic for new instances) and the list (notifications on store changes) as two
    ways of configuring the same notifications.

    Raises:
        ApiException: 400 naming both fields and what to do.
    """
    if store.get("notificationConfig") and store.get("notificationConfigs"):
        raise invalid_argument(
            "Invalid DICOM store: notificationConfig and notificationConfigs are both set; "
            "set only one of them (clear the other with updateMask)."
        )


def import_request(body: Any, store: str) -> tuple[ImportRequest, list[BucketRole]]:
    """A ``dicomStores.import`` body as a validated request and the roles it needs.

    Args:
        body: the request's JSON body (``ImportDicomDataRequest``), its fields already checked
            with :func:`check_fields` and :data:`IMPORT_SCHEMA` (the route does that before
            it looks the store up, as the API parses the body first).
        store: the store's resource name.

    Raises:
        ApiException: 400 INVALID_ARGUMENT naming the field.
    """
    uri = (body.get("gcsSource") or {}).get("uri")
    if not uri:
        raise invalid_argument("gcsSource.uri is required.")
    source = parse_gcs_uri(uri, "gcsSource.uri", kind="pattern")
    pattern = compile_import_pattern(source.path, "gcsSource.uri", uri)
    storage_class = (body.get("blobStorageSettings") or {}).get("blobStorageClass") or "STANDARD"
    if storage_class not in _BLOB_STORAGE_CLASSES:
        raise invalid_argument(
            f"Invalid blobStorageSettings.blobStorageClass {storage_class!r}; expected one of "
            + ", ".join(_BLOB_STORAGE_CLASSES)
        )
    if storage_class == "BLOB_STORAGE_CLASS_UNSPECIFIED":
        storage_class = "STANDARD"
    request = ImportRequest(
        store=store,
        source_uri=uri,
        bucket=source.bucket,
        prefix=pattern.literal_prefix,
        matches=pattern.matches,
        storage_class=storage_class,
    )
    return request, [
        BucketRole(source.bucket, "roles/storage.objectViewer", "storage.objects.list")
    ]


def export_request(
    body: Any, store: str
) -> tuple[GcsExportRequest | BigQueryExportRequest, list[BucketRole]]:
    """A ``dicomStores.export`` body as a validated request and the roles it needs.

    Args:
        body: the request's JSON body (``ExportDicomDataRequest``), its fields already checked
            with :func:`check_fields` and :data:`EXPORT_SCHEMAS` of its API version.
        store: the store's resource name.

    Raises:
        ApiException: 400 INVALID_ARGUMENT naming the field.
    """
    gcs = body.get("gcsDestination")
    bigquery = body.get("bigqueryDestination")
    if (gcs is None) == (bigquery is None):
        raise invalid_argument("Exactly one of gcsDestination and bigqueryDestination must be set.")
    roles: list[BucketRole] = []
    filter_source: FilterSource | None = None
    filter_uri = (body.get("filterConfig") or {}).get("resourcePathsGcsUri")
    if filter_uri:
        parsed = parse_gcs_uri(filter_uri, "filterConfig.resourcePathsGcsUri", kind="object")
        filter_source = FilterSource(filter_uri, parsed.bucket, parsed.path)
    if gcs is not None:
        prefix_uri = gcs.get("uriPrefix")
        if not prefix_uri:
            raise invalid_argument("gcsDestination.uriPrefix is required.")
        dest = parse_gcs_uri(prefix_uri, "gcsDestination.uriPrefix", kind="prefix")
        prefix = dest.path.rstrip("/")
        # Export overwrites existing objects, which takes storage.objects.delete: the
        # permission objectCreator lacks (it has storage.objects.create) and objectAdmin has.
        roles.append(BucketRole(dest.bucket, "roles/storage.objectAdmin", "storage.objects.delete"))
        request: GcsExportRequest | BigQueryExportRequest = GcsExportRequest(
            store=store,
            bucket=dest.bucket,
            prefix=f"{prefix}/" if prefix else "",
            fmt=gcs_destination_format(gcs.get("mimeType")),
            filter=filter_source,
        )
    else:
        table_uri = bigquery.get("tableUri")
        if not table_uri:
            raise invalid_argument("bigqueryDestination.tableUri is required.")
        try:
            table = parse_table_uri(table_uri)
            disposition = effective_disposition(
                bigquery.get("writeDisposition"), bigquery.get("force")
            )
        except ValueError as exc:
            raise invalid_argument(f"bigqueryDestination: {exc}") from None
        # Any project: the guide documents exports to another project's table
        # (how-tos/dicom-export-bigquery, "Exporting DICOM metadata to a different project");
        # the older reference page's same-project sentence predates it. BigQuery IAM is not
        # emulated, so no grant in that project is checked.
        request = BigQueryExportRequest(
            store=store,
            table=table,
            disposition=disposition,
            shape=row_shape(bigquery, store),
            filter=filter_source,
        )
    if filter_source is not None:
        roles.append(
            BucketRole(filter_source.bucket, "roles/storage.objectViewer", "storage.objects.get")
        )
    return request, roles


def gcs_destination_format(value: str | None) -> ExportFormat:
    """A ``gcsDestination.mimeType``, split into its media type and parameters here and
    judged by :func:`~dicom_transfer_emulator.dicom.export_formats.export_format`.

    Media types and parameter names are case-insensitive and spaces around ``;`` and ``=``
    are ignored (MIME syntax, RFC 2045 §5.1). The split is this module's, not werkzeug's
    ``parse_options_header`` (which the DICOMweb routes use for HTTP headers): werkzeug drops a
    parameter it cannot parse without a word, so ``transfer-syntax=`` (an empty value, as
    older reference pages printed ``transfer-syntax=*``) would silently mean the default
    syntax instead of being refused.

    Args:
        value: e.g. ``"application/dicom; transfer-syntax=1.2.840.10008.1.2"``; ``None`` or
            empty means the stored form.

    Raises:
        ApiException: 400 INVALID_ARGUMENT naming ``gcsDestination.mimeType`` and listing
            the supported values.
    """
    try:
        if value is None or not value.strip():
            return export_format(None)
        media, *pairs = (part.strip() for part in value.split(";"))
        if not media:  # parameters without a media type
            raise unsupported(value)
        params: dict[str, str] = {}
        for pair in pairs:
            name, sep, raw = (item.strip() for item in pair.partition("="))
            if not sep or not raw or name.lower() in params:
                raise unsupported(value)
            params[name.lower()] = raw.strip('"')
        return export_format(media.lower(), params, spelled=value)
    except ValueError as exc:
        raise invalid_argument(f"gcsDestination.mimeType: {exc}") from None
