"""Pulumi props to request specs and the wait policy, with every problem reported.

Props use the snake_case names of the resources' arguments. A value equal to
:data:`~dicom_transfer.specs.problems.UNKNOWN` (a not-yet-computed input seen by a dynamic
provider's ``check``/``diff``) is never reported as a problem; the ``*_from_props`` builders
refuse it because a request cannot be built from it. Pure: no I/O, no Pulumi import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from dicom_transfer.errors import InvalidSpec
from dicom_transfer.specs.gcs import GcsUri, check_gcs_uri, gcs_form
from dicom_transfer.specs.inputs import fields_of
from dicom_transfer.specs.mime_types import MIME_FORM, normalize_mime_type
from dicom_transfer.specs.problems import (
    Problems,
    absent,
    check_bool,
    check_choice,
    unset_string,
)
from dicom_transfer.specs.requests import (
    API_VERSIONS,
    CHANGE_DATA_CAPTURE_VERSIONS,
    FILTER_PATH_FORM,
    MAX_TABLE_URI_LENGTH,
    STORAGE_CLASSES,
    TABLE_FORM,
    TABLE_RE,
    WRITE_DISPOSITIONS,
    ApiVersion,
    BigQueryDestination,
    ExportSpec,
    GcsDestination,
    ImportSpec,
    check_store,
    parse_filter_path,
    table_id_ok,
)

__all__ = [
    "DEFAULT_PERMISSION_RETRY_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_FAILURES_UNLIMITED",
    "WaitPolicy",
    "connection_problems",
    "export_problems",
    "export_spec_from_props",
    "import_problems",
    "import_spec_from_props",
    "wait_policy_from_props",
]

MAX_FAILURES_UNLIMITED = "unlimited"
"""Props spelling of ``max_failures=None``: Pulumi drops top-level inputs whose value is None."""


_T = TypeVar("_T")


def _check_api_version(problems: Problems, value: object) -> ApiVersion:
    if absent(value):
        return "v1"
    if problems.skip_unknown("api_version", value):
        return "v1"
    if value not in API_VERSIONS:
        problems.add("api_version", value, "one of v1|v1beta1")
        return "v1"
    return value


def _check_import(problems: Problems, props: Mapping[str, Any]) -> ImportSpec | None:
    store = check_store(problems, "dicom_store", props.get("dicom_store"))
    gcs_uri = props.get("gcs_uri")
    uri: GcsUri | None = None
    if absent(gcs_uri):
        problems.add("gcs_uri", gcs_uri, gcs_form("pattern"))
    elif not problems.skip_unknown("gcs_uri", gcs_uri):
        uri = check_gcs_uri(problems, "gcs_uri", gcs_uri, "pattern")
    storage_class = check_choice(
        problems, "blob_storage_class", props.get("blob_storage_class"), STORAGE_CLASSES
    )
    api_version = _check_api_version(problems, props.get("api_version"))
    _check_wait(problems, props)
    _check_connection(problems, props)
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
    problems = Problems(strict=False)
    _check_import(problems, props)
    return problems.items


def _check_keys(
    problems: Problems, field: str, value: Mapping[str, Any], allowed: Iterable[str]
) -> None:
    allowed = tuple(allowed)
    for key in value:
        if key not in allowed:
            problems.add(f"{field}.{key}", value[key], f"only the keys {', '.join(allowed)}")


def _check_gcs_destination(problems: Problems, value: object) -> GcsDestination | None:
    field = "gcs_destination"
    if problems.skip_unknown(field, value):
        return None
    if not isinstance(value, Mapping):
        problems.add(field, value, "an object {uri_prefix, mime_type}")
        return None
    _check_keys(problems, field, value, _GCS_KEYS)
    prefix = value.get("uri_prefix")
    uri: GcsUri | None = None
    if absent(prefix):
        problems.add(f"{field}.uri_prefix", prefix, gcs_form("prefix"))
    elif not problems.skip_unknown(f"{field}.uri_prefix", prefix):
        uri = check_gcs_uri(problems, f"{field}.uri_prefix", prefix, "prefix")
    mime = value.get("mime_type")
    canonical: str | None = None
    # Unset ("" too) is defined by the discovery documents: "If unspecified, the instances
    # are exported in the original DICOM format" (as stored).
    if not unset_string(mime) and not problems.skip_unknown(f"{field}.mime_type", mime):
        canonical = normalize_mime_type(mime) if isinstance(mime, str) else None
        if canonical is None:
            problems.add(f"{field}.mime_type", mime, MIME_FORM)
    if uri is None:
        return None
    return GcsDestination(cast(str, prefix), canonical)


_GCS_KEYS = fields_of("gcs_destination")
_BIGQUERY_KEYS = fields_of("bigquery_destination")


def _check_table_uri(problems: Problems, field: str, table: object) -> bool:
    """``tableUri``, when given. Any project: cross-project exports are documented (below).

    Unset passes: the v1 discovery document marks ``tableUri`` "Optional" (v1beta1 does not
    mark it required either), so a request without one is the API's to answer.
    """
    if absent(table):
        return True
    if problems.skip_unknown(field, table):
        return False
    match = TABLE_RE.fullmatch(table) if isinstance(table, str) else None
    if (
        not isinstance(table, str)
        or len(table) > MAX_TABLE_URI_LENGTH
        or match is None
        or not table_id_ok(match.group("table"))
    ):
        problems.add(field, table, TABLE_FORM)
        return False
    # No same-project rule. The older dicomStores.export reference page says "You can only
    # export to a BigQuery dataset that's in the same project as the DICOM store", but the
    # current guide documents the other case (how-tos/dicom-export-bigquery, "Exporting DICOM
    # metadata to a different project") and the discovery documents' tableUri has no such
    # limit: a table in another project is left to the API and its IAM.
    return True


def _check_bigquery_destination(
    problems: Problems, value: object, api_version: ApiVersion
) -> BigQueryDestination | None:
    field = "bigquery_destination"
    if problems.skip_unknown(field, value):
        return None
    if not isinstance(value, Mapping):
        problems.add(field, value, "an object {" + ", ".join(_BIGQUERY_KEYS) + "}")
        return None
    _check_keys(problems, field, value, _BIGQUERY_KEYS)
    table = value.get("table_uri")
    if unset_string(table):
        table = None
    table_ok = _check_table_uri(problems, f"{field}.table_uri", table)
    disposition = check_choice(
        problems, f"{field}.write_disposition", value.get("write_disposition"), WRITE_DISPOSITIONS
    )
    force = check_bool(problems, f"{field}.force", value.get("force"))
    source = check_bool(
        problems, f"{field}.include_source_store", value.get("include_source_store")
    )
    flattened = check_bool(problems, f"{field}.schema_flattened", value.get("schema_flattened"))
    as_json = check_bool(problems, f"{field}.schema_json", value.get("schema_json"))
    cdc = check_bool(problems, f"{field}.change_data_capture", value.get("change_data_capture"))
    if flattened and as_json:
        # Source: issue 9; the discovery documents describe schemaFlattened ("one column for
        # each DICOM tag") and schemaJson ("all the DICOM tags as a JSON type in a single
        # column") as two layouts of the same table, which cannot both hold.
        problems.add(
            f"{field}.schema_flattened",
            flattened,
            "false or unset when schema_json is true (a table has one schema: flattened or JSON)",
        )
    if cdc and not as_json:
        # Source: changeDataCaptureConfig in the v1beta1 discovery document: "only supported
        # with the SchemaJSON option. The SchemaFlattened option is not compatible with CDC".
        problems.add(
            f"{field}.change_data_capture",
            cdc,
            "false or unset unless schema_json is true (change data capture is only supported "
            "with the JSON schema)",
        )
    if cdc and api_version not in CHANGE_DATA_CAPTURE_VERSIONS:
        # Source: changeDataCaptureConfig exists in the v1beta1 discovery document only.
        problems.add(
            "api_version",
            api_version,
            " or ".join(CHANGE_DATA_CAPTURE_VERSIONS)
            + " when bigquery_destination.change_data_capture is true "
            "(changeDataCaptureConfig exists only in the v1beta1 API)",
        )
    if not table_ok:
        return None
    return BigQueryDestination(
        cast("str | None", table), disposition, force, source, flattened, as_json, cdc
    )


def _check_filter_paths(problems: Problems, value: object) -> tuple[str, ...] | None:
    field = "filter_resource_paths"
    if problems.skip_unknown(field, value):
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        problems.add(field, value, f"a non-empty list of paths {FILTER_PATH_FORM}")
        return None
    ok = True
    for index, path in enumerate(value):
        item = f"{field}[{index}]"
        if problems.skip_unknown(item, path):
            ok = False
            continue
        try:
            if not isinstance(path, str):
                raise InvalidSpec(item, path, FILTER_PATH_FORM)
            parse_filter_path(path)
        except InvalidSpec:
            problems.add(item, path, FILTER_PATH_FORM)
            ok = False
    return tuple(cast(list[str], value)) if ok else None


def _check_export(problems: Problems, props: Mapping[str, Any]) -> ExportSpec | None:
    store = check_store(problems, "dicom_store", props.get("dicom_store"))
    api_version = _check_api_version(problems, props.get("api_version"))
    gcs_value = props.get("gcs_destination")
    bq_value = props.get("bigquery_destination")
    gcs = bq = None
    if absent(gcs_value) and absent(bq_value):
        problems.add(
            "gcs_destination",
            None,
            "exactly one of gcs_destination or bigquery_destination (neither was given)",
        )
    elif not absent(gcs_value) and not absent(bq_value):
        problems.add(
            "bigquery_destination",
            bq_value,
            "exactly one of gcs_destination or bigquery_destination (both were given)",
        )
    if not absent(gcs_value):
        gcs = _check_gcs_destination(problems, gcs_value)
    if not absent(bq_value):
        bq = _check_bigquery_destination(problems, bq_value, api_version)

    filter_gcs_uri = props.get("filter_gcs_uri")
    filter_paths_value = props.get("filter_resource_paths")
    staging = props.get("filter_staging_uri")
    if not absent(filter_gcs_uri) and not problems.skip_unknown("filter_gcs_uri", filter_gcs_uri):
        check_gcs_uri(problems, "filter_gcs_uri", filter_gcs_uri, "object")
    if not absent(staging) and not problems.skip_unknown("filter_staging_uri", staging):
        check_gcs_uri(problems, "filter_staging_uri", staging, "prefix")
    paths: tuple[str, ...] | None = None
    if not absent(filter_paths_value):
        paths = _check_filter_paths(problems, filter_paths_value)
        if not absent(filter_gcs_uri):
            problems.add(
                "filter_gcs_uri",
                filter_gcs_uri,
                "unset when filter_resource_paths is given (use one way to filter)",
            )
        if absent(staging):
            problems.add(
                "filter_staging_uri",
                staging,
                "gs://BUCKET[/DIRECTORY] where the filter file for filter_resource_paths is "
                "written (required with filter_resource_paths)",
            )
    _check_wait(problems, props)
    _check_connection(problems, props)
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
    problems = Problems(strict=False)
    _check_export(problems, props)
    return problems.items


# --- waiting -----------------------------------------------------------------------------------


DEFAULT_TIMEOUT_SECONDS = 3600.0
"""``timeout_seconds`` when unset: one hour for submit + wait."""
DEFAULT_PERMISSION_RETRY_SECONDS = 600.0
"""``permission_retry_seconds`` when unset: fresh IAM grants take 2-7 minutes to propagate."""


@dataclass(frozen=True)
class WaitPolicy:
    """How long and how tolerantly to wait; changing it never resubmits an operation.

    Attributes:
        timeout_seconds: Deadline for the whole create (submit + wait), > 0.
        max_failures: Failed instances tolerated; None tolerates any number.
        permission_retry_seconds: How long a PERMISSION_DENIED submit is retried while fresh
            IAM grants propagate (0 disables).
    """

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_failures: int | None = 0
    permission_retry_seconds: float = DEFAULT_PERMISSION_RETRY_SECONDS


def _check_number(
    problems: Problems,
    field: str,
    value: object,
    default: _T,
    allowed: str,
    convert: Callable[[float], _T | None],
) -> _T:
    if absent(value) or problems.skip_unknown(field, value):
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


# --- connection --------------------------------------------------------------------------------

_ENDPOINT_FORM = (
    "an http(s) URL of the API, e.g. https://healthcare-myendpoint.p.googleapis.com/ (for an "
    "emulator set HEALTHCARE_EMULATOR_HOST / STORAGE_EMULATOR_HOST instead)"
)
_SERVICE_ACCOUNT_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _check_connection(problems: Problems, props: Mapping[str, Any]) -> None:
    """Where and as whom to talk: checked so a typo fails the preview, not the credentials."""
    for field in ("endpoint", "storage_endpoint"):
        value = props.get(field)
        if unset_string(value) or problems.skip_unknown(field, value):
            continue
        try:
            parts = urlsplit(value) if isinstance(value, str) else None
        except ValueError:  # e.g. an unclosed IPv6 bracket
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.add(field, value, _ENDPOINT_FORM)
    field = "impersonate_service_account"
    account = props.get(field)
    if unset_string(account) or problems.skip_unknown(field, account):
        return
    if not isinstance(account, str) or not _SERVICE_ACCOUNT_RE.fullmatch(account):
        problems.add(
            field, account, "a service account email, e.g. name@project.iam.gserviceaccount.com"
        )


def connection_problems(props: Mapping[str, Any]) -> list[InvalidSpec]:
    """Every problem with the connection inputs (``endpoint``, ``storage_endpoint``,
    ``impersonate_service_account``) of ``props``; unknown values skipped.

    Args:
        props: Provider props or provider configuration (snake_case names; others ignored).

    Returns:
        The problems; empty when the connection inputs are valid or unset.
    """
    problems = Problems(strict=False)
    _check_connection(problems, props)
    return problems.items


def _check_wait(problems: Problems, props: Mapping[str, Any]) -> WaitPolicy:
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


_Built = TypeVar("_Built")


def _build(
    check: Callable[[Problems, Mapping[str, Any]], _Built | None], props: Mapping[str, Any]
) -> _Built:
    problems = Problems(strict=True)
    built = check(problems, props)
    problems.raise_first()
    assert built is not None, "a check without problems builds its value"
    return built


def import_spec_from_props(props: Mapping[str, Any]) -> ImportSpec:
    """Build the import request of a ``DicomImport``'s props.

    Args:
        props: Provider props (snake_case names; extra keys are ignored).

    Returns:
        The validated request.

    Raises:
        InvalidSpec: The first problem :func:`import_problems` would report, or an unknown value.
    """
    return _build(_check_import, props)


def export_spec_from_props(props: Mapping[str, Any]) -> ExportSpec:
    """Build the export request of a ``DicomExport``'s props.

    Args:
        props: Provider props (snake_case names; extra keys are ignored).

    Returns:
        The validated request.

    Raises:
        InvalidSpec: The first problem :func:`export_problems` would report, or an unknown value.
    """
    return _build(_check_export, props)


def wait_policy_from_props(props: Mapping[str, Any]) -> WaitPolicy:
    """Build the wait policy of a transfer's props; absent values take the defaults.

    Args:
        props: Provider props (``timeout_seconds``, ``max_failures``,
            ``permission_retry_seconds``; other keys are ignored).

    Returns:
        The policy.

    Raises:
        InvalidSpec: A value is out of range or unknown.
    """
    return _build(_check_wait, props)
