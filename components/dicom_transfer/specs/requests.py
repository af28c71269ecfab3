"""Validated ``dicomStores.import`` / ``dicomStores.export`` requests and their JSON bodies.

Bodies follow ``ImportDicomDataRequest`` / ``ExportDicomDataRequest`` of the discovery
documents of ``healthcare`` v1 and v1beta1 bundled with google-api-python-client; every leaf
field of both versions can be set (``tests/unit/test_api_contract.py`` walks them). Each rule
below names its source. Building a request from Pulumi props is
:mod:`dicom_transfer.specs.props`; the export MIME types are :mod:`.mime_types`. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from dicom_transfer.errors import InvalidSpec
from dicom_transfer.specs.gcs import GcsUri, parse_gcs_uri
from dicom_transfer.specs.mime_types import (
    MIME_FORM,
    export_file_extension_of,
    normalize_mime_type,
)
from dicom_transfer.specs.problems import Problems, unset_string

__all__ = [
    "API_VERSIONS",
    "BIGQUERY_DATASET_FORM",
    "BIGQUERY_DATASET_RE",
    "CHANGE_DATA_CAPTURE_VERSIONS",
    "MAX_TABLE_URI_LENGTH",
    "MAX_UID_LENGTH",
    "STORAGE_CLASSES",
    "WRITE_DISPOSITIONS",
    "ApiVersion",
    "BigQueryDestination",
    "DicomStorePath",
    "ExportSpec",
    "GcsDestination",
    "ImportSpec",
    "TransferSpec",
    "export_file_extension",
    "filter_file_content",
    "parse_filter_path",
    "staged_filter_uri",
    "table_id_ok",
]

ApiVersion = Literal["v1", "v1beta1"]
API_VERSIONS: tuple[ApiVersion, ...] = ("v1", "v1beta1")
STORAGE_CLASSES: tuple[str, ...] = (
    "BLOB_STORAGE_CLASS_UNSPECIFIED",
    "STANDARD",
    "NEARLINE",
    "COLDLINE",
    "ARCHIVE",
)
"""``BlobStorageSettings.blobStorageClass`` enum (discovery, v1 and v1beta1)."""
WRITE_DISPOSITIONS: tuple[str, ...] = (
    "WRITE_DISPOSITION_UNSPECIFIED",
    "WRITE_EMPTY",
    "WRITE_TRUNCATE",
    "WRITE_APPEND",
)
"""``DicomBigQueryDestination.writeDisposition`` enum (discovery, v1 and v1beta1)."""
CHANGE_DATA_CAPTURE_VERSIONS: tuple[ApiVersion, ...] = ("v1beta1",)
"""Versions whose ``DicomBigQueryDestination`` has ``changeDataCaptureConfig`` (discovery)."""
MAX_TABLE_URI_LENGTH = 2000
"""``tableUri``: "up to 2000 characters long" (discovery)."""
MAX_TABLE_ID_BYTES = 1024
"""BigQuery table IDs: up to 1,024 UTF-8 bytes (https://cloud.google.com/bigquery/docs/tables)."""
MAX_UID_LENGTH = 64
"""DICOM UIDs: at most 64 characters (DICOM PS3.5 §9.1)."""


# --- allowed forms, in words (they appear in error messages) ---------------------------------

_PROJECT_ID_FORM = (
    "a project ID (6-30 characters: lowercase letters, digits, hyphens; starts with a letter, "
    "does not end with a hyphen) or a domain-scoped ID like 'example.com:my-project'"
)
_PROJECT_FORM = f"{_PROJECT_ID_FORM}, or a project number"
_STORE_FORM = (
    "projects/PROJECT/locations/LOCATION/datasets/DATASET/dicomStores/STORE, where PROJECT is "
    f"{_PROJECT_FORM}; LOCATION is lowercase letters, digits and hyphens (e.g. us-central1); "
    "DATASET is 1-256 letters, digits, '_', '-' and '.' (any script); STORE is 1-256 "
    "characters other than / : ? # % and control characters; neither is '.' or '..'"
)
_UID_FORM = (
    f"a DICOM UID: digits separated by single dots, at most {MAX_UID_LENGTH} characters "
    "(e.g. 1.2.840.113619.2.55)"
)
FILTER_PATH_FORM = (
    "/studies/{StudyInstanceUID}[/series/{SeriesInstanceUID}[/instances/{SOPInstanceUID}]] "
    f"where each UID is {_UID_FORM}"
)
_DATASET_FORM = "1-1024 letters, digits and underscores"
BIGQUERY_DATASET_FORM = (
    f"DATASET or PROJECT.DATASET, PROJECT {_PROJECT_ID_FORM}, DATASET {_DATASET_FORM}"
)
TABLE_FORM = (
    f"bq://PROJECT.DATASET.TABLE (at most {MAX_TABLE_URI_LENGTH} characters; PROJECT "
    f"{_PROJECT_ID_FORM}; DATASET {_DATASET_FORM}; "
    f"TABLE 1-{MAX_TABLE_ID_BYTES} UTF-8 bytes of Unicode letters, marks, numbers, connectors "
    "(such as '_'), dashes and spaces)"
)

_PROJECT_ID = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
_DOMAIN_SCOPE = r"(?:[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?:)?"
_PROJECT_RE = re.compile(rf"{_DOMAIN_SCOPE}{_PROJECT_ID}|[0-9]{{1,20}}")
_LOCATION_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
_UID_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")
# Dataset IDs: https://cloud.google.com/bigquery/docs/datasets#dataset-naming; table IDs are
# checked by :func:`table_id_ok` (Unicode categories, not expressible in ``re``).
_DATASET_ID = r"[A-Za-z0-9_]{1,1024}"
TABLE_RE = re.compile(
    rf"bq://(?P<project>{_DOMAIN_SCOPE}{_PROJECT_ID})\.(?P<dataset>{_DATASET_ID})\.(?P<table>[^.]+)"
)
BIGQUERY_DATASET_RE = re.compile(
    rf"(?:(?P<project>{_DOMAIN_SCOPE}{_PROJECT_ID})\.)?(?P<dataset>{_DATASET_ID})"
)
"""A BigQuery dataset as :class:`~dicom_transfer.ServiceAgentGrants` takes it."""
_TABLE_ID_CATEGORIES = ("L", "M", "N", "Pc", "Pd", "Zs")
_FILTER_PATH_RE = re.compile(
    r"/studies/(?P<study>[^/]*)(?:/series/(?P<series>[^/]*)(?:/instances/(?P<instance>[^/]*))?)?"
)


# --- DICOM store -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DicomStorePath:
    """A DICOM store's resource name, split into its validated segments."""

    project: str
    location: str
    dataset: str
    store: str

    @property
    def name(self) -> str:
        """``projects/P/locations/L/datasets/D/dicomStores/S``."""
        return f"{self.dataset_name}/dicomStores/{self.store}"

    @property
    def dataset_name(self) -> str:
        """``projects/P/locations/L/datasets/D`` (where the store's operations live)."""
        return f"projects/{self.project}/locations/{self.location}/datasets/{self.dataset}"

    @classmethod
    def parse(cls, value: object, field: str = "dicom_store") -> DicomStorePath:
        """Parse a store name (also pulumi-gcp's ``gcp.healthcare.DicomStore`` id, same form).

        Args:
            value: ``projects/P/locations/L/datasets/D/dicomStores/S``.
            field: Property path used in error messages.

        Returns:
            The parsed store path.

        Raises:
            InvalidSpec: Wrong shape or a segment with characters the API does not allow.
        """
        problems = Problems(strict=True)
        parsed = check_store(problems, field, value)
        problems.raise_first()
        assert parsed is not None
        return parsed


def check_store(problems: Problems, field: str, value: object) -> DicomStorePath | None:
    if problems.skip_unknown(field, value):
        return None
    if not isinstance(value, str):
        problems.add(field, value, _STORE_FORM)
        return None
    parts = value.split("/")
    if (
        len(parts) != 8
        or parts[0] != "projects"
        or parts[2] != "locations"
        or parts[4] != "datasets"
        or parts[6] != "dicomStores"
    ):
        problems.add(field, value, _STORE_FORM)
        return None
    project, location, dataset, store = parts[1], parts[3], parts[5], parts[7]
    bad = []
    if not _PROJECT_RE.fullmatch(project):
        bad.append(f"project {project!r}")
    if not _LOCATION_RE.fullmatch(location):
        bad.append(f"location {location!r}")
    if not _dataset_id_ok(dataset):
        bad.append(f"dataset {dataset!r}")
    if not _store_id_ok(store):
        bad.append(f"store {store!r}")
    if bad:
        problems.add(field, value, f"{_STORE_FORM} (invalid: {', '.join(bad)})")
        return None
    return DicomStorePath(project, location, dataset, store)


def _dataset_id_ok(dataset: str) -> bool:
    # Source: datasets.create ``datasetId`` in the discovery documents: "must match the
    # following regex: [\p{L}\p{N}_\-\.]{1,256}"; '.' and '..' would step out of the path.
    return (
        0 < len(dataset) <= 256
        and dataset not in (".", "..")
        and all(ch in "_-." or unicodedata.category(ch)[0] in "LN" for ch in dataset)
    )


# Characters a store ID cannot carry through the ``{+name}`` path of the API's URL: "/"
# separates segments, ":" starts the custom verb (``…:import``), "?" and "#" end the path, "%"
# would be read as an escape.
_STORE_ID_UNSENDABLE = frozenset("/:?#%")


def _store_id_ok(store: str) -> bool:
    # Source: dicomStores.create ``dicomStoreId`` in the discovery documents: "Any string value
    # up to 256 characters in length"; we refuse only what no URL path could carry.
    return (
        0 < len(store) <= 256
        and store not in (".", "..")
        and not any(ch in _STORE_ID_UNSENDABLE or unicodedata.category(ch) == "Cc" for ch in store)
    )


def export_file_extension(mime_type: str | None) -> str:
    """File extension the API uses for exported files of ``mime_type``.

    Args:
        mime_type: A supported MIME type, or None or ``""`` (proto3's unset string):
            instances exported as stored, ``.dcm``.

    Returns:
        ``.dcm``, ``.jpg``, ``.png`` or ``""`` (octet-stream).

    Raises:
        InvalidSpec: Unsupported MIME type.
    """
    if mime_type is None or unset_string(mime_type):  # None spelled out for mypy
        return export_file_extension_of(None)
    canonical = normalize_mime_type(mime_type)
    if canonical is None:
        raise InvalidSpec("gcs_destination.mime_type", mime_type, MIME_FORM)
    return export_file_extension_of(canonical)


def table_id_ok(table: str) -> bool:
    """Whether ``table`` is a valid BigQuery table ID.

    Source: https://cloud.google.com/bigquery/docs/tables#table_naming -- up to 1,024 UTF-8
    bytes of Unicode letters (L), marks (M), numbers (N), connectors (Pc), dashes (Pd) and
    spaces (Zs).

    Args:
        table: The ``TABLE`` part of ``bq://PROJECT.DATASET.TABLE``.

    Returns:
        True when the ID follows the naming rules.
    """
    return 0 < len(table.encode("utf-8")) <= MAX_TABLE_ID_BYTES and all(
        unicodedata.category(ch).startswith(_TABLE_ID_CATEGORIES) for ch in table
    )


def _check_uid(uid: str | None) -> bool:
    return uid is not None and len(uid) <= MAX_UID_LENGTH and bool(_UID_RE.fullmatch(uid))


def parse_filter_path(path: str) -> tuple[str, str | None, str | None]:
    """Split a filter resource path into its UIDs.

    Args:
        path: ``/studies/S[/series/E[/instances/I]]``.

    Returns:
        ``(study_uid, series_uid or None, instance_uid or None)``.

    Raises:
        InvalidSpec: Not a valid resource path.
    """
    match = _FILTER_PATH_RE.fullmatch(path)
    if not match:
        raise InvalidSpec("filter_resource_paths", path, FILTER_PATH_FORM)
    study, series, instance = match.group("study", "series", "instance")
    if not _check_uid(study) or any(
        uid is not None and not _check_uid(uid) for uid in (series, instance)
    ):
        raise InvalidSpec("filter_resource_paths", path, FILTER_PATH_FORM)
    return study, series, instance


# --- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportSpec:
    """A validated ``dicomStores.import`` request."""

    kind: ClassVar[Literal["import"]] = "import"
    store: DicomStorePath
    gcs_uri: str
    blob_storage_class: str | None = None
    api_version: ApiVersion = "v1"

    def request_body(self) -> dict[str, Any]:
        """The ``ImportDicomDataRequest`` JSON body."""
        body: dict[str, Any] = {"gcsSource": {"uri": self.gcs_uri}}
        if self.blob_storage_class is not None:
            body["blobStorageSettings"] = {"blobStorageClass": self.blob_storage_class}
        return body

    @property
    def source(self) -> GcsUri:
        """The parsed source URI (its path may hold wildcards)."""
        return parse_gcs_uri(self.gcs_uri, "gcs_uri", kind="pattern")


# --- export ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GcsDestination:
    """Export to Cloud Storage: ``{uri_prefix}/{study}/{series}/{instance}[/{frame}].{ext}``."""

    uri_prefix: str
    mime_type: str | None = None

    def body(self) -> dict[str, Any]:
        """The ``gcsDestination`` JSON object."""
        out: dict[str, Any] = {"uriPrefix": self.uri_prefix}
        if self.mime_type is not None:
            out["mimeType"] = self.mime_type
        return out


@dataclass(frozen=True)
class BigQueryDestination:
    """Export DICOM metadata to a BigQuery table (``DicomBigQueryDestination``).

    Attributes:
        table_uri: ``bq://PROJECT.DATASET.TABLE`` (``tableUri``); None: not sent (the v1
            discovery document marks it optional; the API answers such a request).
        write_disposition: One of :data:`WRITE_DISPOSITIONS` (``writeDisposition``).
        force: ``force``; the API ignores it when ``write_disposition`` is set.
        include_source_store: ``includeSourceStore``.
        schema_flattened: Send ``schemaFlattened: {}``: one column per DICOM tag.
        schema_json: Send ``schemaJson: {}``: all tags in one JSON column.
        change_data_capture: Send ``changeDataCaptureConfig: {}`` (v1beta1, JSON schema only).
    """

    table_uri: str | None = None
    write_disposition: str | None = None
    force: bool | None = None
    include_source_store: bool | None = None
    schema_flattened: bool | None = None
    schema_json: bool | None = None
    change_data_capture: bool | None = None

    @property
    def project(self) -> str | None:
        """The table's project; None without a table."""
        return self._part("project")

    @property
    def dataset(self) -> str | None:
        """The table's dataset ID; None without a table."""
        return self._part("dataset")

    def _part(self, group: str) -> str | None:
        if self.table_uri is None:
            return None
        match = TABLE_RE.fullmatch(self.table_uri)
        assert match is not None, "validated when the spec was built"
        return match.group(group)

    def body(self) -> dict[str, Any]:
        """The ``bigqueryDestination`` JSON object."""
        out: dict[str, Any] = {}
        if self.table_uri is not None:
            out["tableUri"] = self.table_uri
        if self.write_disposition is not None:
            out["writeDisposition"] = self.write_disposition
        if self.force is not None:
            out["force"] = self.force
        if self.include_source_store is not None:
            out["includeSourceStore"] = self.include_source_store
        # SchemaFlattened, SchemaJSON and DicomChangeDataCaptureConfig are messages without
        # fields: their presence is the setting, so false sends nothing.
        if self.schema_flattened:
            out["schemaFlattened"] = {}
        if self.schema_json:
            out["schemaJson"] = {}
        if self.change_data_capture:
            out["changeDataCaptureConfig"] = {}
        return out


@dataclass(frozen=True)
class ExportSpec:
    """A validated ``dicomStores.export`` request (exactly one destination)."""

    kind: ClassVar[Literal["export"]] = "export"
    store: DicomStorePath
    gcs_destination: GcsDestination | None = None
    bigquery_destination: BigQueryDestination | None = None
    filter_gcs_uri: str | None = None
    filter_resource_paths: tuple[str, ...] | None = None
    filter_staging_uri: str | None = None
    api_version: ApiVersion = "v1"

    @property
    def filter_uri(self) -> str | None:
        """The filter file the export reads: ``filter_gcs_uri``, or for
        ``filter_resource_paths`` the staged file (:func:`staged_filter_uri`, written by
        ``healthcare.transfer.stage_filter_file`` before the submit); None without a filter."""
        if self.filter_resource_paths is not None:
            return staged_filter_uri(self)
        return self.filter_gcs_uri

    def request_body(self) -> dict[str, Any]:
        """The ``ExportDicomDataRequest`` JSON body."""
        body: dict[str, Any] = {}
        if self.gcs_destination is not None:
            body["gcsDestination"] = self.gcs_destination.body()
        if self.bigquery_destination is not None:
            body["bigqueryDestination"] = self.bigquery_destination.body()
        if self.filter_uri is not None:
            body["filterConfig"] = {"resourcePathsGcsUri": self.filter_uri}
        return body


def filter_file_content(paths: Iterable[str]) -> bytes:
    """The filter file for ``paths``: one path per line, ``\\n``-terminated, UTF-8."""
    return "".join(f"{path}\n" for path in paths).encode("utf-8")


def staged_filter_uri(spec: ExportSpec) -> str:
    """Where the filter file of ``spec.filter_resource_paths`` is staged (content-addressed).

    Returns:
        ``{filter_staging_uri}/{sha256 of the file}.txt``.

    Raises:
        ValueError: The spec has no inline filter paths.
    """
    if spec.filter_resource_paths is None or spec.filter_staging_uri is None:
        raise ValueError("the export spec has no filter_resource_paths to stage")
    digest = hashlib.sha256(filter_file_content(spec.filter_resource_paths)).hexdigest()
    return f"{spec.filter_staging_uri.rstrip('/')}/{digest}.txt"


TransferSpec = ImportSpec | ExportSpec
"""What one transfer resource asks the API to do."""
