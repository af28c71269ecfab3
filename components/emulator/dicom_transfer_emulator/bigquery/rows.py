"""Rows of a ``dicomStores.export`` to BigQuery, in the schema the request selects.

- Flattened (``schemaFlattened``, or neither schema set): one column per DICOM attribute,
  named by its keyword (``SchemaFlattened``: "one column for each DICOM tag. The column name
  will be the DICOM tag's textual representation"), plus ``SourceStore`` when
  ``includeSourceStore`` is set (emulator choice: the column's name is not documented for
  this schema).
- JSON (``schemaJson``): the columns the ``SchemaJSON`` description in the v1/v1beta1
  discovery documents lists — ``StudyInstanceUID``, ``SeriesInstanceUID``,
  ``SOPInstanceUID`` (STRING), ``SourceDicomStore`` (STRING, "only included if the
  include_source_store option is set to true"), ``Metadata`` (JSON: "All DICOM tags for the
  instance, stored in a single JSON object"), ``StructuredStorageSize`` (INTEGER),
  ``DroppedTags`` (repeated STRING), ``StorageClass`` (STRING), ``LastUpdated`` (TIMESTAMP),
  ``BlobStorageSize`` (INTEGER) and ``Type`` (STRING, e.g. INSERT; v1beta1: "omitted if
  ChangeDataCaptureConfig is enabled").

Emulator choices where the description gives no formula: ``Metadata`` is keyed by DICOM
keyword like the flattened row; ``StructuredStorageSize`` is the byte length of that JSON;
``BlobStorageSize`` is the stored instance's size; ``DroppedTags`` lists the attributes left
out of ``Metadata`` (binary values other than Pixel Data, values pydicom cannot convert);
``LastUpdated`` is when the instance was stored; ``Type`` is ``INSERT`` (an export writes
every selected instance once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from dicom_transfer_emulator.dicom.parsing import dataset_row, read_dataset
from dicom_transfer_emulator.dicom.records import InstanceRecord
from dicom_transfer_emulator.errors import invalid_argument

__all__ = ["JSON_COLUMNS", "RowShape", "export_row", "row_shape"]

#: Column order of the JSON schema, as documented.
JSON_COLUMNS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SourceDicomStore",
    "Metadata",
    "StructuredStorageSize",
    "DroppedTags",
    "StorageClass",
    "LastUpdated",
    "BlobStorageSize",
    "Type",
)


@dataclass(frozen=True)
class RowShape:
    """What a BigQuery export writes for each instance.

    Attributes:
        schema: ``"flattened"`` or ``"json"``.
        source_store: the store's name when ``includeSourceStore`` is set, else ``None``.
        change_data_capture: v1beta1 ``changeDataCaptureConfig`` set (JSON schema only).
    """

    schema: Literal["flattened", "json"]
    source_store: str | None
    change_data_capture: bool = False


def row_shape(destination: dict[str, Any], store: str) -> RowShape:
    """The row shape a ``bigqueryDestination`` asks for.

    Rules (``GoogleCloudHealthcareV1[beta1]DicomBigQueryDestination`` in the discovery
    documents): ``changeDataCaptureConfig`` (v1beta1 only; the request's field check
    refuses it in v1) "is only supported with the SchemaJSON option. The SchemaFlattened
    option is not compatible with CDC". ``schemaFlattened`` and ``schemaJson`` each select
    the table's whole schema; the documents do not say what setting both means, and the
    emulator refuses it (as a protobuf ``oneof`` would) rather than guess.

    Args:
        destination: the request's ``bigqueryDestination`` object.
        store: the source store's name (the ``includeSourceStore`` column's value).

    Returns:
        The shape of the rows.

    Raises:
        ApiException: 400 INVALID_ARGUMENT naming the offending field.
    """
    flattened = destination.get("schemaFlattened") is not None
    as_json = destination.get("schemaJson") is not None
    cdc = destination.get("changeDataCaptureConfig") is not None
    if flattened and as_json:
        raise invalid_argument(
            "bigqueryDestination.schemaFlattened and bigqueryDestination.schemaJson are both "
            "set; set at most one (unset: flattened)."
        )
    if cdc and not as_json:
        raise invalid_argument(
            "bigqueryDestination.changeDataCaptureConfig is only supported with "
            "bigqueryDestination.schemaJson; the flattened schema is not compatible with "
            "change data capture."
        )
    return RowShape(
        "json" if as_json else "flattened",
        store if destination.get("includeSourceStore") else None,
        change_data_capture=cdc,
    )


def export_row(data: bytes, record: InstanceRecord, shape: RowShape) -> dict[str, Any]:
    """The BigQuery row of one stored instance.

    Args:
        data: the instance's stored bytes.
        record: the store's record of it (UIDs, storage class, when stored).
        shape: the requested schema and options.

    Returns:
        The row, a JSON object.

    Raises:
        DicomParseError: the stored bytes are unreadable.
    """
    dataset = read_dataset(data, stop_before_pixels=True)
    if shape.schema == "flattened":
        row = dataset_row(dataset)
        if shape.source_store is not None:
            row["SourceStore"] = shape.source_store
        return row
    dropped: list[str] = []
    metadata = dataset_row(dataset, dropped)
    json_row: dict[str, Any] = {
        "StudyInstanceUID": record.study_uid,
        "SeriesInstanceUID": record.series_uid,
        "SOPInstanceUID": record.sop_instance_uid,
        "SourceDicomStore": shape.source_store,
        "Metadata": metadata,
        "StructuredStorageSize": len(json.dumps(metadata, separators=(",", ":")).encode()),
        "DroppedTags": dropped,
        "StorageClass": record.storage_class,
        "LastUpdated": record.stored_at or None,
        "BlobStorageSize": len(data),
        "Type": "INSERT",
    }
    if shape.source_store is None:
        del json_row["SourceDicomStore"]
    if shape.change_data_capture:
        del json_row["Type"]
    return json_row
