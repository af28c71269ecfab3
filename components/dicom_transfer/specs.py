"""Typed, validated descriptions of DICOM import and export requests.

Pure: no I/O, no Pulumi import. Shared by the dynamic providers (``check`` validates with
:func:`import_problems` / :func:`export_problems`; ``create`` builds specs with ``from_props``),
the component, and the emulator (request parsing and :func:`compile_gcs_wildcard`).

Props use the snake_case names of the resources' arguments. A value equal to
:data:`UNKNOWN` (``pulumi.runtime.rpc.UNKNOWN``, what a not-yet-computed input looks like inside
a dynamic provider's ``check``/``diff``) is never reported as a problem; ``from_props`` refuses it
because a request cannot be built from it.

Request bodies follow the discovery documents of ``healthcare`` v1 and v1beta1 (the fields used
here exist, with the same shape, in both versions).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from dicom_transfer.errors import InvalidSpec

__all__ = [
    "API_VERSIONS",
    "EXPORT_MIME_TYPES",
    "MAX_FAILURES_UNLIMITED",
    "MAX_TABLE_URI_LENGTH",
    "MAX_UID_LENGTH",
    "STORAGE_CLASSES",
    "UNKNOWN",
    "WRITE_DISPOSITIONS",
    "ApiVersion",
    "BigQueryDestination",
    "DicomStorePath",
    "ExportSpec",
    "GcsDestination",
    "GcsUri",
    "ImportSpec",
    "WaitPolicy",
    "compile_gcs_wildcard",
    "export_file_extension",
    "export_fingerprint",
    "export_problems",
    "filter_file_content",
    "import_fingerprint",
    "import_problems",
    "is_unknown",
    "normalize_mime_type",
    "parse_filter_path",
    "parse_gcs_uri",
    "staged_filter_uri",
    "wait_policy_problems",
]

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""``pulumi.runtime.rpc.UNKNOWN``: a not-yet-computed input seen by a dynamic provider."""

ApiVersion = Literal["v1", "v1beta1"]
API_VERSIONS: tuple[ApiVersion, ...] = ("v1", "v1beta1")
STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
WRITE_DISPOSITIONS = ("WRITE_EMPTY", "WRITE_TRUNCATE", "WRITE_APPEND")
MAX_TABLE_URI_LENGTH = 2000
MAX_UID_LENGTH = 64
MAX_FAILURES_UNLIMITED = "unlimited"
"""Props spelling of ``max_failures=None``: Pulumi drops top-level inputs whose value is None."""

EXPORT_MIME_TYPES: dict[str, str] = {
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.1": ".dcm",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50": ".dcm",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90": ".dcm",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.91": ".dcm",
    "application/dicom; transfer-syntax=": ".dcm",
    "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1": "",
    "application/octet-stream; transfer-syntax=": "",
    "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50": ".jpg",
    "image/png": ".png",
}
"""Export MIME types the API supports (canonical spelling) and the file extension of each."""

# --- allowed forms, in words (they appear in error messages) ---------------------------------

_PROJECT_FORM = (
    "a project ID (6-30 characters: lowercase letters, digits, hyphens; starts with a letter, "
    "does not end with a hyphen), a domain-scoped ID like 'example.com:my-project', "
    "or a project number"
)
_STORE_FORM = (
    "projects/PROJECT/locations/LOCATION/datasets/DATASET/dicomStores/STORE, where PROJECT is "
    f"{_PROJECT_FORM}; LOCATION is lowercase letters, digits and hyphens (e.g. us-central1); "
    "DATASET and STORE are 1-256 characters from A-Z a-z 0-9 _ . - (not '.' or '..')"
)
_BUCKET_FORM = (
    "a Cloud Storage bucket name: 3-63 characters (up to 222 with dots, 63 per dot-separated "
    "part) from a-z 0-9 - _ ., starting and ending with a letter or digit, not an IP address, "
    "not starting with 'goog' and not containing 'google'"
)
_OBJECT_FORM = (
    "an object path of at most 1024 UTF-8 bytes without control characters, '#', '[' or ']' "
    "and without '.' or '..' segments"
)
_WILDCARD_FORM = (
    "wildcards '*' (any characters within one path segment), '?' (exactly one character) "
    "and '**' (any characters including '/'), where '**' may appear once, only at the end of "
    "the path, optionally followed by an extension such as '**.dcm', with no other wildcard in "
    "the path"
)
_UID_FORM = (
    f"a DICOM UID: digits separated by single dots, at most {MAX_UID_LENGTH} characters "
    "(e.g. 1.2.840.113619.2.55)"
)
_FILTER_PATH_FORM = (
    "/studies/{StudyInstanceUID}[/series/{SeriesInstanceUID}[/instances/{SOPInstanceUID}]] "
    f"where each UID is {_UID_FORM}"
)
_MIME_FORM = "one of " + ", ".join(repr(m) for m in EXPORT_MIME_TYPES) + " (or unset: as stored)"
_TABLE_FORM = (
    f"bq://PROJECT.DATASET.TABLE (at most {MAX_TABLE_URI_LENGTH} characters; DATASET letters, "
    "digits and underscores; TABLE letters, digits, underscores and hyphens) in the DICOM "
    "store's project"
)

_PROJECT_ID = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
_DOMAIN_SCOPE = r"(?:[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?:)?"
_PROJECT_RE = re.compile(rf"{_DOMAIN_SCOPE}{_PROJECT_ID}|[0-9]{{1,20}}")
_LOCATION_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
_RESOURCE_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_BUCKET_CHARS_RE = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_IPV4_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_GOOGLE_LOOKALIKE_RE = re.compile(r"g[o0][o0]g[l1]e")
_UID_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_TABLE_RE = re.compile(
    rf"bq://(?P<project>{_DOMAIN_SCOPE}{_PROJECT_ID})"
    r"\.(?P<dataset>[A-Za-z0-9_]{1,1024})\.(?P<table>[\w-]{1,1024})",
)
_EXTENSION_AFTER_DOUBLE_STAR_RE = re.compile(r"(?:\.[^/*?]+)?")
_FILTER_PATH_RE = re.compile(
    r"/studies/(?P<study>[^/]*)(?:/series/(?P<series>[^/]*)(?:/instances/(?P<instance>[^/]*))?)?"
)

_T = TypeVar("_T")


def is_unknown(value: object) -> bool:
    """Whether ``value`` is a not-yet-computed Pulumi input.

    Args:
        value: Any property value.

    Returns:
        True for the ``UNKNOWN`` sentinel string and for ``pulumi.output.Unknown`` objects.
    """
    if isinstance(value, str):
        return value == UNKNOWN
    return type(value).__name__ == "Unknown" and type(value).__module__.startswith("pulumi")


def _contains_unknown(value: object) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_unknown(v) for v in value)
    return False


class _Problems:
    """Collects every problem; ``strict`` mode also refuses unknown values."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.items: list[InvalidSpec] = []

    def add(self, field: str, value: object, allowed: str) -> None:
        self.items.append(InvalidSpec(field, value, allowed))

    def skip_unknown(self, field: str, value: object) -> bool:
        """True when ``value`` is unknown (then, in strict mode, also records a problem)."""
        if not is_unknown(value):
            return False
        if self.strict:
            self.add(field, value, "a known value (this input is not computed yet)")
        return True

    def raise_first(self) -> None:
        if self.items:
            raise self.items[0]


# --- Cloud Storage URIs and wildcards ----------------------------------------------------------


@dataclass(frozen=True)
class GcsUri:
    """A parsed ``gs://bucket/path`` URI (``path`` has no leading slash, may be empty)."""

    bucket: str
    path: str

    @property
    def uri(self) -> str:
        """The URI as a string."""
        return f"gs://{self.bucket}/{self.path}" if self.path else f"gs://{self.bucket}"


def _bucket_problem(bucket: str) -> bool:
    if not 3 <= len(bucket) <= 222 or not _BUCKET_CHARS_RE.fullmatch(bucket):
        return True
    parts = bucket.split(".")
    if len(parts) == 1 and len(bucket) > 63:
        return True
    if any(not part or len(part) > 63 for part in parts):
        return True
    if _IPV4_RE.fullmatch(bucket) or bucket.startswith("goog"):
        return True
    return bool(_GOOGLE_LOOKALIKE_RE.search(bucket))


def _object_path_problem(path: str) -> bool:
    if len(path.encode("utf-8")) > 1024:
        return True
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path) or any(c in path for c in "#[]"):
        return True
    return any(segment in (".", "..") for segment in path.split("/"))


def _wildcard_problem(path: str) -> bool:
    if "**" not in path:
        return False
    head, _, tail = path.partition("**")
    if "*" in head or "?" in head:
        return True
    return not _EXTENSION_AFTER_DOUBLE_STAR_RE.fullmatch(tail)


def parse_gcs_uri(
    value: str,
    field: str,
    *,
    kind: Literal["pattern", "object", "prefix"],
) -> GcsUri:
    """Parse and validate a ``gs://`` URI.

    Args:
        value: The URI.
        field: Property path used in error messages.
        kind: ``pattern`` (import source: non-empty path, wildcards allowed), ``object`` (one
            object: non-empty path, no wildcard, no trailing slash) or ``prefix`` (a
            directory: path optional, no wildcard).

    Returns:
        The parsed URI.

    Raises:
        InvalidSpec: The URI does not have the allowed form.
    """
    problems = _Problems(strict=True)
    parsed = _check_gcs_uri(problems, field, value, kind)
    problems.raise_first()
    assert parsed is not None
    return parsed


def _gcs_form(kind: str) -> str:
    if kind == "pattern":
        return f"gs://BUCKET/PATH with {_BUCKET_FORM}, PATH {_OBJECT_FORM}, and {_WILDCARD_FORM}"
    if kind == "object":
        return (
            f"gs://BUCKET/OBJECT naming one object (no wildcards, no trailing '/'), with "
            f"{_BUCKET_FORM} and OBJECT {_OBJECT_FORM}"
        )
    return (
        f"gs://BUCKET[/DIRECTORY] (no wildcards), with {_BUCKET_FORM} and DIRECTORY {_OBJECT_FORM}"
    )


def _check_gcs_uri(problems: _Problems, field: str, value: object, kind: str) -> GcsUri | None:
    form = _gcs_form(kind)
    if not isinstance(value, str) or not value.startswith("gs://"):
        problems.add(field, value, form)
        return None
    bucket, _, path = value[len("gs://") :].partition("/")
    if _bucket_problem(bucket):
        problems.add(field, value, form)
        return None
    if kind in ("pattern", "object") and not path:
        problems.add(field, value, form + " (the object path is missing)")
        return None
    if kind == "object" and path.endswith("/"):
        problems.add(field, value, form)
        return None
    check_path = path.rstrip("/") if kind == "prefix" else path
    if check_path and _object_path_problem(check_path):
        problems.add(field, value, form)
        return None
    if kind != "pattern" and ("*" in path or "?" in path):
        problems.add(field, value, form)
        return None
    if kind == "pattern" and _wildcard_problem(path):
        problems.add(field, value, _WILDCARD_FORM)
        return None
    return GcsUri(bucket, path)


def compile_gcs_wildcard(uri_path: str) -> re.Pattern[str]:
    """Compile the object-path part of an import URI into a regular expression.

    ``*`` matches any characters except ``/``, ``?`` one character except ``/``, ``**`` any
    characters including ``/``; everything else matches itself. Use ``pattern.fullmatch(name)``.

    Args:
        uri_path: The path after ``gs://BUCKET/`` (e.g. ``dir/**.dcm``), or a whole
            ``gs://`` URI (then the bucket part is dropped).

    Returns:
        The compiled pattern.

    Raises:
        InvalidSpec: The wildcards break the rules (``**`` not at the end, or with another
            wildcard in the path).
    """
    if uri_path.startswith("gs://"):
        uri_path = uri_path[len("gs://") :].partition("/")[2]
    if _wildcard_problem(uri_path):
        raise InvalidSpec("gcs_uri", uri_path, _WILDCARD_FORM)
    out: list[str] = []
    i = 0
    while i < len(uri_path):
        ch = uri_path[i]
        if uri_path.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


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
        problems = _Problems(strict=True)
        parsed = _check_store(problems, field, value)
        problems.raise_first()
        assert parsed is not None
        return parsed


def _check_store(problems: _Problems, field: str, value: object) -> DicomStorePath | None:
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
    for label, rid in (("dataset", dataset), ("store", store)):
        if not _RESOURCE_ID_RE.fullmatch(rid) or rid in (".", ".."):
            bad.append(f"{label} {rid!r}")
    if bad:
        problems.add(field, value, f"{_STORE_FORM} (invalid: {', '.join(bad)})")
        return None
    return DicomStorePath(project, location, dataset, store)


# --- small value checks ------------------------------------------------------------------------


def _absent(value: object) -> bool:
    return value is None


def _check_choice(
    problems: _Problems, field: str, value: object, choices: Sequence[str]
) -> str | None:
    if _absent(value) or problems.skip_unknown(field, value):
        return None
    if not isinstance(value, str) or value not in choices:
        problems.add(field, value, "one of " + "|".join(choices))
        return None
    return value


def _check_bool(problems: _Problems, field: str, value: object) -> bool | None:
    if _absent(value) or problems.skip_unknown(field, value):
        return None
    if not isinstance(value, bool):
        problems.add(field, value, "true or false")
        return None
    return value


def _check_api_version(problems: _Problems, value: object) -> ApiVersion:
    if _absent(value):
        return "v1"
    if problems.skip_unknown("api_version", value):
        return "v1"
    if value not in API_VERSIONS:
        problems.add("api_version", value, "one of v1|v1beta1")
        return "v1"
    return value


def normalize_mime_type(value: str) -> str | None:
    """Canonical spelling of a supported export MIME type, or None if unsupported.

    Case of the media type and parameter name and spaces around ``;`` and ``=`` are
    normalised (``application/dicom;transfer-syntax=1.2.840.10008.1.2.1`` is accepted).

    Args:
        value: The MIME type as given.

    Returns:
        A key of :data:`EXPORT_MIME_TYPES`, or None.
    """
    media, *params = (part.strip() for part in value.split(";"))
    media = media.lower()
    if len(params) > 1:
        return None
    if params:
        name, sep, syntax = params[0].partition("=")
        if not sep or name.strip().lower() != "transfer-syntax":
            return None
        canonical = f"{media}; transfer-syntax={syntax.strip()}"
    else:
        canonical = media
    return canonical if canonical in EXPORT_MIME_TYPES else None


def export_file_extension(mime_type: str | None) -> str:
    """File extension the API uses for exported files of ``mime_type``.

    Args:
        mime_type: A supported MIME type, or None (instances exported as stored: ``.dcm``).

    Returns:
        ``.dcm``, ``.jpg``, ``.png`` or ``""`` (octet-stream).

    Raises:
        InvalidSpec: Unsupported MIME type.
    """
    if mime_type is None:
        return ".dcm"
    canonical = normalize_mime_type(mime_type)
    if canonical is None:
        raise InvalidSpec("gcs_destination.mime_type", mime_type, _MIME_FORM)
    return EXPORT_MIME_TYPES[canonical]


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
        raise InvalidSpec("filter_resource_paths", path, _FILTER_PATH_FORM)
    study, series, instance = match.group("study", "series", "instance")
    if not _check_uid(study) or any(
        uid is not None and not _check_uid(uid) for uid in (series, instance)
    ):
        raise InvalidSpec("filter_resource_paths", path, _FILTER_PATH_FORM)
    return study, series, instance


# --- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportSpec:
    """A validated ``dicomStores.import`` request."""

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

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> ImportSpec:
        """Build from provider props.

        Raises:
            InvalidSpec: The first problem :func:`import_problems` would report, or an
                unknown value.
        """
        problems = _Problems(strict=True)
        spec = _check_import(problems, props)
        problems.raise_first()
        assert spec is not None
        return spec


def _check_import(problems: _Problems, props: Mapping[str, Any]) -> ImportSpec | None:
    store = _check_store(problems, "dicom_store", props.get("dicom_store"))
    gcs_uri = props.get("gcs_uri")
    uri: GcsUri | None = None
    if _absent(gcs_uri):
        problems.add("gcs_uri", gcs_uri, _gcs_form("pattern"))
    elif not problems.skip_unknown("gcs_uri", gcs_uri):
        uri = _check_gcs_uri(problems, "gcs_uri", gcs_uri, "pattern")
    storage_class = _check_choice(
        problems, "blob_storage_class", props.get("blob_storage_class"), STORAGE_CLASSES
    )
    api_version = _check_api_version(problems, props.get("api_version"))
    _check_wait(problems, props)
    if store is None or uri is None or problems.items:
        return None
    return ImportSpec(store, cast(str, gcs_uri), storage_class, api_version)


def import_problems(props: Mapping[str, Any]) -> list[InvalidSpec]:
    """Every problem with import props (including the wait policy); unknown values skipped.

    Args:
        props: Provider props (snake_case names; extra keys are ignored).

    Returns:
        The problems, in field order; empty when the props are valid.
    """
    problems = _Problems(strict=False)
    _check_import(problems, props)
    return problems.items


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
    """Export DICOM metadata to a BigQuery table."""

    table_uri: str
    write_disposition: str | None = None
    force: bool | None = None
    include_source_store: bool | None = None
    schema_flattened: bool | None = None

    @property
    def project(self) -> str:
        """The table's project."""
        match = _TABLE_RE.fullmatch(self.table_uri)
        assert match is not None
        return match.group("project")

    def body(self) -> dict[str, Any]:
        """The ``bigqueryDestination`` JSON object."""
        out: dict[str, Any] = {"tableUri": self.table_uri}
        if self.write_disposition is not None:
            out["writeDisposition"] = self.write_disposition
        if self.force is not None:
            out["force"] = self.force
        if self.include_source_store is not None:
            out["includeSourceStore"] = self.include_source_store
        if self.schema_flattened:
            out["schemaFlattened"] = {}
        return out


@dataclass(frozen=True)
class ExportSpec:
    """A validated ``dicomStores.export`` request (exactly one destination)."""

    store: DicomStorePath
    gcs_destination: GcsDestination | None = None
    bigquery_destination: BigQueryDestination | None = None
    filter_gcs_uri: str | None = None
    filter_resource_paths: tuple[str, ...] | None = None
    filter_staging_uri: str | None = None
    api_version: ApiVersion = "v1"

    def request_body(self, filter_uri: str | None = None) -> dict[str, Any]:
        """The ``ExportDicomDataRequest`` JSON body.

        Args:
            filter_uri: URI of the filter file to pass; defaults to ``filter_gcs_uri`` or, with
                ``filter_resource_paths``, to :func:`staged_filter_uri` (the file must have been
                uploaded there, see ``healthcare.transfer.stage_filter_file``).

        Returns:
            The JSON body.
        """
        body: dict[str, Any] = {}
        if self.gcs_destination is not None:
            body["gcsDestination"] = self.gcs_destination.body()
        if self.bigquery_destination is not None:
            body["bigqueryDestination"] = self.bigquery_destination.body()
        if filter_uri is None:
            filter_uri = self.filter_gcs_uri
        if filter_uri is None and self.filter_resource_paths is not None:
            filter_uri = staged_filter_uri(self)
        if filter_uri is not None:
            body["filterConfig"] = {"resourcePathsGcsUri": filter_uri}
        return body

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> ExportSpec:
        """Build from provider props.

        Raises:
            InvalidSpec: The first problem :func:`export_problems` would report, or an
                unknown value.
        """
        problems = _Problems(strict=True)
        spec = _check_export(problems, props)
        problems.raise_first()
        assert spec is not None
        return spec


def _check_keys(
    problems: _Problems, field: str, value: Mapping[str, Any], allowed: Iterable[str]
) -> None:
    allowed = tuple(allowed)
    for key in value:
        if key not in allowed:
            problems.add(f"{field}.{key}", value[key], f"only the keys {', '.join(allowed)}")


def _check_gcs_destination(problems: _Problems, value: object) -> GcsDestination | None:
    field = "gcs_destination"
    if problems.skip_unknown(field, value):
        return None
    if not isinstance(value, Mapping):
        problems.add(field, value, "an object {uri_prefix, mime_type}")
        return None
    _check_keys(problems, field, value, ("uri_prefix", "mime_type"))
    prefix = value.get("uri_prefix")
    uri: GcsUri | None = None
    if _absent(prefix):
        problems.add(f"{field}.uri_prefix", prefix, _gcs_form("prefix"))
    elif not problems.skip_unknown(f"{field}.uri_prefix", prefix):
        uri = _check_gcs_uri(problems, f"{field}.uri_prefix", prefix, "prefix")
    mime = value.get("mime_type")
    canonical: str | None = None
    if not _absent(mime) and not problems.skip_unknown(f"{field}.mime_type", mime):
        canonical = normalize_mime_type(mime) if isinstance(mime, str) else None
        if canonical is None:
            problems.add(f"{field}.mime_type", mime, _MIME_FORM)
    if uri is None:
        return None
    return GcsDestination(cast(str, prefix), canonical)


def _check_bigquery_destination(
    problems: _Problems, value: object, store: DicomStorePath | None
) -> BigQueryDestination | None:
    field = "bigquery_destination"
    if problems.skip_unknown(field, value):
        return None
    if not isinstance(value, Mapping):
        problems.add(field, value, "an object {table_uri, write_disposition, force, ...}")
        return None
    keys = ("table_uri", "write_disposition", "force", "include_source_store", "schema_flattened")
    _check_keys(problems, field, value, keys)
    table_field = f"{field}.table_uri"
    table = value.get("table_uri")
    table_ok = False
    if _absent(table):
        problems.add(table_field, table, _TABLE_FORM)
    elif not problems.skip_unknown(table_field, table):
        match = _TABLE_RE.fullmatch(table) if isinstance(table, str) else None
        if not isinstance(table, str) or len(table) > MAX_TABLE_URI_LENGTH or match is None:
            problems.add(table_field, table, _TABLE_FORM)
        elif (
            store is not None
            and not store.project.isdigit()
            and match.group("project") != store.project
        ):
            problems.add(
                table_field,
                table,
                f"a table in the DICOM store's project {store.project!r} "
                f"(bq://{store.project}.DATASET.TABLE): the API only exports to BigQuery "
                "datasets in the store's project",
            )
        else:
            table_ok = True
    disposition = _check_choice(
        problems, f"{field}.write_disposition", value.get("write_disposition"), WRITE_DISPOSITIONS
    )
    force = _check_bool(problems, f"{field}.force", value.get("force"))
    source = _check_bool(
        problems, f"{field}.include_source_store", value.get("include_source_store")
    )
    flattened = _check_bool(problems, f"{field}.schema_flattened", value.get("schema_flattened"))
    if not table_ok:
        return None
    return BigQueryDestination(cast(str, table), disposition, force, source, flattened)


def _check_filter_paths(problems: _Problems, value: object) -> tuple[str, ...] | None:
    field = "filter_resource_paths"
    if problems.skip_unknown(field, value):
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        problems.add(field, value, f"a non-empty list of paths {_FILTER_PATH_FORM}")
        return None
    ok = True
    for index, path in enumerate(value):
        item = f"{field}[{index}]"
        if problems.skip_unknown(item, path):
            ok = False
            continue
        try:
            if not isinstance(path, str):
                raise InvalidSpec(item, path, _FILTER_PATH_FORM)
            parse_filter_path(path)
        except InvalidSpec:
            problems.add(item, path, _FILTER_PATH_FORM)
            ok = False
    return tuple(cast(list[str], value)) if ok else None


def _check_export(problems: _Problems, props: Mapping[str, Any]) -> ExportSpec | None:
    store = _check_store(problems, "dicom_store", props.get("dicom_store"))
    gcs_value = props.get("gcs_destination")
    bq_value = props.get("bigquery_destination")
    gcs = bq = None
    if _absent(gcs_value) and _absent(bq_value):
        problems.add(
            "gcs_destination",
            None,
            "exactly one of gcs_destination or bigquery_destination (neither was given)",
        )
    elif not _absent(gcs_value) and not _absent(bq_value):
        problems.add(
            "bigquery_destination",
            bq_value,
            "exactly one of gcs_destination or bigquery_destination (both were given)",
        )
    if not _absent(gcs_value):
        gcs = _check_gcs_destination(problems, gcs_value)
    if not _absent(bq_value):
        bq = _check_bigquery_destination(problems, bq_value, store)

    filter_gcs_uri = props.get("filter_gcs_uri")
    filter_paths_value = props.get("filter_resource_paths")
    staging = props.get("filter_staging_uri")
    if not _absent(filter_gcs_uri) and not problems.skip_unknown("filter_gcs_uri", filter_gcs_uri):
        _check_gcs_uri(problems, "filter_gcs_uri", filter_gcs_uri, "object")
    if not _absent(staging) and not problems.skip_unknown("filter_staging_uri", staging):
        _check_gcs_uri(problems, "filter_staging_uri", staging, "prefix")
    paths: tuple[str, ...] | None = None
    if not _absent(filter_paths_value):
        paths = _check_filter_paths(problems, filter_paths_value)
        if not _absent(filter_gcs_uri):
            problems.add(
                "filter_gcs_uri",
                filter_gcs_uri,
                "unset when filter_resource_paths is given (use one way to filter)",
            )
        if _absent(staging):
            problems.add(
                "filter_staging_uri",
                staging,
                "gs://BUCKET[/DIRECTORY] where the filter file for filter_resource_paths is "
                "written (required with filter_resource_paths)",
            )
    api_version = _check_api_version(problems, props.get("api_version"))
    _check_wait(problems, props)
    if store is None or problems.items or (gcs is None and bq is None):
        return None
    return ExportSpec(
        store=store,
        gcs_destination=gcs,
        bigquery_destination=bq,
        filter_gcs_uri=cast("str | None", filter_gcs_uri),
        filter_resource_paths=paths,
        filter_staging_uri=cast("str | None", staging) if paths is not None else None,
        api_version=api_version,
    )


def export_problems(props: Mapping[str, Any]) -> list[InvalidSpec]:
    """Every problem with export props (including the wait policy); unknown values skipped.

    Args:
        props: Provider props (snake_case names; extra keys are ignored).

    Returns:
        The problems, in field order; empty when the props are valid.
    """
    problems = _Problems(strict=False)
    _check_export(problems, props)
    return problems.items


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


# --- waiting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitPolicy:
    """How long and how tolerantly to wait; changing it never resubmits an operation.

    Attributes:
        timeout_seconds: Deadline for the whole create (submit + wait), > 0.
        max_failures: Failed instances tolerated; None tolerates any number.
        permission_retry_seconds: How long a PERMISSION_DENIED submit is retried while fresh
            IAM grants propagate (0 disables).
    """

    timeout_seconds: float = 3600.0
    max_failures: int | None = 0
    permission_retry_seconds: float = 600.0

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> WaitPolicy:
        """Build from provider props; absent values take the defaults.

        Raises:
            InvalidSpec: A value is out of range or unknown.
        """
        problems = _Problems(strict=True)
        policy = _check_wait(problems, props)
        problems.raise_first()
        return policy


def _check_number(
    problems: _Problems,
    field: str,
    value: object,
    default: _T,
    allowed: str,
    convert: Callable[[float], _T | None],
) -> _T:
    if _absent(value) or problems.skip_unknown(field, value):
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.add(field, value, allowed)
        return default
    converted = convert(float(value))
    if converted is None:
        problems.add(field, value, allowed)
        return default
    return converted


def _positive(value: float) -> float | None:
    return value if value > 0 else None


def _non_negative(value: float) -> float | None:
    return value if value >= 0 else None


def _count(value: float) -> int | None:
    # Pulumi sends numbers as doubles: 5 arrives as 5.0.
    return int(value) if value >= 0 and value.is_integer() else None


def _check_wait(problems: _Problems, props: Mapping[str, Any]) -> WaitPolicy:
    timeout = _check_number(
        problems,
        "timeout_seconds",
        props.get("timeout_seconds"),
        WaitPolicy.timeout_seconds,
        "a number of seconds > 0",
        _positive,
    )
    raw_max_failures = props.get("max_failures", WaitPolicy.max_failures)
    max_failures: int | None = None
    if raw_max_failures is not None and raw_max_failures != MAX_FAILURES_UNLIMITED:
        max_failures = _check_number(
            problems,
            "max_failures",
            raw_max_failures,
            WaitPolicy.max_failures,
            f"a whole number >= 0, or null / {MAX_FAILURES_UNLIMITED!r} to tolerate any number "
            "of failed instances",
            _count,
        )
    permission = _check_number(
        problems,
        "permission_retry_seconds",
        props.get("permission_retry_seconds"),
        WaitPolicy.permission_retry_seconds,
        "a number of seconds >= 0",
        _non_negative,
    )
    return WaitPolicy(timeout, max_failures, permission)


def wait_policy_problems(props: Mapping[str, Any]) -> list[InvalidSpec]:
    """Problems with ``timeout_seconds``, ``max_failures`` and ``permission_retry_seconds``."""
    problems = _Problems(strict=False)
    _check_wait(problems, props)
    return problems.items


# --- fingerprints ------------------------------------------------------------------------------


def _fingerprint(document: Mapping[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def import_fingerprint(spec: ImportSpec, triggers: object, resource_name: str) -> str:
    """Identity of an import request, used to find an interrupted submit again.

    Covers what changes the request (store, body, API version), the triggers and the
    resource name; not the wait policy.

    Returns:
        A sha256 hex digest of canonical JSON.
    """
    return _fingerprint(
        {
            "kind": "import",
            "store": spec.store.name,
            "api_version": spec.api_version,
            "body": spec.request_body(),
            "triggers": triggers,
            "resource_name": resource_name,
        }
    )


def export_fingerprint(spec: ExportSpec, triggers: object, resource_name: str) -> str:
    """Identity of an export request (the inline filter counts through its staged URI).

    Returns:
        A sha256 hex digest of canonical JSON.
    """
    return _fingerprint(
        {
            "kind": "export",
            "store": spec.store.name,
            "api_version": spec.api_version,
            "body": spec.request_body(),
            "triggers": triggers,
            "resource_name": resource_name,
        }
    )
