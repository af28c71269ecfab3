"""Routes of the emulated Cloud Healthcare API (``/v1/…`` and ``/v1beta1/…``).

Served (paths, methods and shapes of the discovery documents bundled with
google-api-python-client)::

    POST/GET          {v}/projects/P/locations/L/datasets[?datasetId=D]   create (Operation)/list
    GET/PATCH/DELETE  {v}/projects/P/locations/L/datasets/D
    POST/GET          …/datasets/D/dicomStores[?dicomStoreId=S]                create / list
    GET/PATCH/DELETE  …/datasets/D/dicomStores/S
    GET  …/dicomStores/S:getIamPolicy     POST …/dicomStores/S:setIamPolicy
    POST …/dicomStores/S:import           POST …/dicomStores/S:export        (→ Operation)
    GET  …/datasets/D/operations[?pageSize&pageToken]
    GET  …/datasets/D/operations/O        POST …/operations/O:cancel
    …/dicomStores/S/dicomWeb/…            DICOMweb (STOW, QIDO, WADO, delete): see .dicomweb
    …/datasets/D:{get,set}IamPolicy, :testIamPermissions (datasets and stores): see .iam
    any other method of the real API      501 UNIMPLEMENTED naming it: see .not_emulated

Emulator extras on the same port::

    GET /_emulator/logs/{operation_id}          per-file log entries (an operation's logsUrl)
    GET /_emulator/bigquery                     {"tables": [...]}
    GET /_emulator/bigquery/{project.dataset.table}   {"table", "rows"}
    GET /_emulator/service-agent/{project}      {"projectNumber", "email", "member"}

Decisions (the real API's behaviour where known, else the choice documented here):

- ``dicomStores.patch`` accepts nested ``updateMask`` paths (``notificationConfig.pubsubTopic``,
  as ``gcloud healthcare dicom-stores update --pubsub-topic`` sends): see .update_mask.
- ``datasets.create`` returns an Operation that is already done, with the Dataset as
  ``response``; ``dicomStores.create`` answers the store directly.
- Import/export run in background threads (:mod:`.transfers`); see there how units count.
- Permission emulation (``HealthcareService.permission_checks``): the store's project's Cloud
  Healthcare Service Agent, ``service-{PROJECT_NUMBER}@gcp-sa-healthcare.iam.gserviceaccount.com``,
  must hold ``roles/storage.objectViewer`` (or stronger) on an import's source bucket and on a
  filter file's bucket, and ``roles/storage.objectAdmin`` (or ``roles/storage.admin``) on an
  export's destination bucket, counting grants only after the propagation delay. The real
  service reports a missing grant when it reads the bucket; the emulator fails the
  *submit* call with 403 PERMISSION_DENIED so the submitter sees it at once. BigQuery
  dataset IAM is not emulated. ``PROJECT_NUMBER`` is :func:`project_number` — the same fake
  number the storage side reports for buckets.
- A missing source/destination bucket, an import pattern matching nothing, or an unreadable
  filter file end the *operation* with ``NOT_FOUND`` (5); a malformed filter line with
  ``INVALID_ARGUMENT`` (3); ``WRITE_EMPTY`` into a non-empty table with
  ``FAILED_PRECONDITION`` (9).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dicom_transfer_emulator.bigquery.rows import row_shape
from dicom_transfer_emulator.bigquery.tables import (
    effective_disposition,
    open_tables,
    parse_table_id,
    parse_table_uri,
)
from dicom_transfer_emulator.dicom.export_formats import parse_export_format
from dicom_transfer_emulator.errors import ApiException, invalid_argument, not_found
from dicom_transfer_emulator.healthcare import not_emulated
from dicom_transfer_emulator.healthcare.dicomweb import DicomWeb
from dicom_transfer_emulator.healthcare.gcs_uris import compile_import_pattern, parse_gcs_uri
from dicom_transfer_emulator.healthcare.iam import IamRoutes, parse_set_policy
from dicom_transfer_emulator.healthcare.operation_faults import OperationFaults
from dicom_transfer_emulator.healthcare.state import HealthcareState, StateError
from dicom_transfer_emulator.healthcare.transfers import (
    BigQueryExportRequest,
    FilterSource,
    GcsExportRequest,
    ImportRequest,
    TransferRunner,
)
from dicom_transfer_emulator.healthcare.update_mask import apply_update_mask, mask_paths
from dicom_transfer_emulator.server.http import Request, Response, Router
from dicom_transfer_emulator.server.routing import Route
from dicom_transfer_emulator.storage.port import Storage, fake_project_number, rfc3339

__all__ = [
    "HealthcareService",
    "project_number",
    "service_agent_email",
    "service_agent_member",
]

_PROJECT_RE = re.compile(
    r"(?:[a-z][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20}"
)
_LOCATION_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
_BLOB_STORAGE_CLASSES = (
    "BLOB_STORAGE_CLASS_UNSPECIFIED",
    "STANDARD",
    "NEARLINE",
    "COLDLINE",
    "ARCHIVE",
)
_STORE_FIELDS = ("labels", "notificationConfig", "notificationConfigs", "streamConfigs")
#: Nested update-mask paths (sub-fields of ``NotificationConfig`` in the discovery documents).
_STORE_UPDATABLE: dict[str, frozenset[str]] = {f: frozenset() for f in _STORE_FIELDS} | {
    "notificationConfig": frozenset({"pubsubTopic", "sendForBulkImport"})
}
_STORE_SCHEMA: dict[str, Any] = {
    "name": str,
    "labels": object,
    "notificationConfig": object,
    "notificationConfigs": list,
    "streamConfigs": list,
}
_DEFAULT_PAGE_SIZE = 100
_MAX_PAGE_SIZE = 1000

# werkzeug rules (see routing.py); ``id`` variables stop at ``:`` so custom verbs route apart.
_V = "/<any(v1, v1beta1):version>"
_LOC = _V + "/projects/<project>/locations/<location>"
_DS = _LOC + "/datasets/<id:dataset>"
_ST = _DS + "/dicomStores/<id:store>"
_OP = _DS + "/operations/<id:operation>"
#: Discovery ids of the served methods are this prefix plus the names in the route tables.
API_METHOD_PREFIX = "healthcare.projects.locations."

#: Accepted request fields (``dict`` = nested message, ``{}`` one without fields, ``object`` =
#: any JSON object). Unknown names are refused as the API's JSON parsing does (400
#: INVALID_ARGUMENT, 'Invalid JSON payload received. Unknown name "x" at …').
_IMPORT_SCHEMA: dict[str, Any] = {
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
_EXPORT_SCHEMAS: dict[str, dict[str, Any]] = {
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


def project_number(project: str) -> str:
    """The emulator's fake, deterministic project number of a project id (12 digits).

    Derived from the SHA-256 of the id (the storage side uses the same rule for
    ``projectNumber`` of buckets); a project given as a number is its own number.
    """
    return project if project.isdigit() else fake_project_number(project)


def service_agent_email(project: str) -> str:
    """``service-{PROJECT_NUMBER}@gcp-sa-healthcare.iam.gserviceaccount.com`` of a project."""
    return f"service-{project_number(project)}@gcp-sa-healthcare.iam.gserviceaccount.com"


def service_agent_member(project: str) -> str:
    """The IAM member (``serviceAccount:…``) of a project's Healthcare service agent."""
    return f"serviceAccount:{service_agent_email(project)}"


def _state_errors(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    def wrapped(request: Request) -> Response:
        try:
            return handler(request)
        except StateError as exc:
            raise ApiException(exc.http_status, exc.message, exc.status) from None

    return wrapped


def _check_fields(value: Any, schema: dict[str, Any], where: str) -> None:
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
            _check_fields(item, expected, field)
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


def _check_one_notification_form(store: dict[str, Any]) -> None:
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


def _page(request: Request, items: list[Any]) -> tuple[list[Any], str | None]:
    size = request.int_arg("pageSize", _DEFAULT_PAGE_SIZE) or _DEFAULT_PAGE_SIZE
    if size < 0:
        raise invalid_argument("pageSize must not be negative.")
    size = min(size, _MAX_PAGE_SIZE)
    token = request.arg("pageToken") or ""
    offset = 0
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
        except (ValueError, UnicodeError):
            raise invalid_argument(f"Invalid pageToken {token!r}.") from None
    page = items[offset : offset + size]
    following = offset + size
    next_token = (
        base64.urlsafe_b64encode(f"o:{following}".encode()).decode()
        if following < len(items)
        else None
    )
    return page, next_token


class HealthcareService:
    """The Healthcare side of the emulator: state, BigQuery tables, operation runner."""

    def __init__(
        self,
        *,
        storage: Storage,
        faults: OperationFaults,
        clock: Callable[[], float],
        data_dir: Path | None,
        healthcare_url: str,
        permission_checks: bool = False,
    ) -> None:
        """Create the service (loads persisted state from ``data_dir``).

        Args:
            storage: The Cloud Storage backend import reads and export writes (and whose
                bucket IAM the permission emulation asks).
            faults: The operation faults the operation runner reads.
            clock: Wall clock (POSIX seconds) for timestamps.
            data_dir: The emulator's data directory (state under ``healthcare/`` and
                ``bigquery/``), or None for memory only.
            healthcare_url: ``http://host:port`` this API is served on (for ``logsUrl``).
            permission_checks: Whether import/export check bucket IAM (see
                :attr:`permission_checks`).
        """
        self.storage = storage
        self.clock = clock
        self.healthcare_url = healthcare_url
        #: When True, import/export check the service agent's bucket IAM on ``storage``
        #: (mutable: tests flip it; the emulator's ``reset()`` restores its start value).
        self.permission_checks = permission_checks
        self.state = HealthcareState(data_dir)
        self.tables = open_tables(data_dir)
        self.runner = TransferRunner(self.state, self.tables, storage, faults, clock)
        self.dicomweb = DicomWeb(
            self.state,
            store_name=self._store_name,
            new_done_operation=self._done_operation,
            server_url=lambda: self.healthcare_url,
        )
        self.iam = IamRoutes(self.state, dataset_name=self._dataset, store_name=self._store_name)

    # -- lifecycle -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget datasets, stores, instances, operations and BigQuery tables."""
        self.runner.stop_all()
        self.state.reset()
        self.tables.reset()

    def shutdown(self) -> None:
        """Stop running operations (they are recorded as aborted on the next start)."""
        self.runner.stop_all()
        self.state.close()

    # -- Python API ----------------------------------------------------------------------

    @staticmethod
    def service_agent_email(project: str) -> str:
        """See :func:`service_agent_email`."""
        return service_agent_email(project)

    def read_table(self, table: str) -> list[dict[str, Any]]:
        """Rows of an emulated BigQuery table (``project.dataset.table`` or ``bq://…``)."""
        return self.tables.read_rows(parse_table_id(table.removeprefix("bq://")))

    # -- routes --------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        """Add every route to ``router``."""
        routes: list[Route] = [
            ("POST", _LOC + "/datasets", self.create_dataset, "datasets.create"),
            ("GET", _LOC + "/datasets", self.list_datasets, "datasets.list"),
            ("GET", _DS, self.get_dataset, "datasets.get"),
            ("PATCH", _DS, self.patch_dataset, "datasets.patch"),
            ("DELETE", _DS, self.delete_dataset, "datasets.delete"),
            ("POST", _DS + "/dicomStores", self.create_store, "datasets.dicomStores.create"),
            ("GET", _DS + "/dicomStores", self.list_stores, "datasets.dicomStores.list"),
            ("GET", _ST, self.get_store, "datasets.dicomStores.get"),
            ("PATCH", _ST, self.patch_store, "datasets.dicomStores.patch"),
            ("DELETE", _ST, self.delete_store, "datasets.dicomStores.delete"),
            (
                "GET",
                _ST + ":getIamPolicy",
                self.get_store_policy,
                "datasets.dicomStores.getIamPolicy",
            ),
            (
                "POST",
                _ST + ":getIamPolicy",
                self.get_store_policy,
                "datasets.dicomStores.getIamPolicy",
            ),
            (
                "POST",
                _ST + ":setIamPolicy",
                self.set_store_policy,
                "datasets.dicomStores.setIamPolicy",
            ),
            ("POST", _ST + ":import", self.import_dicom, "datasets.dicomStores.import"),
            ("POST", _ST + ":export", self.export_dicom, "datasets.dicomStores.export"),
            ("GET", _DS + "/operations", self.list_operations, "datasets.operations.list"),
            ("GET", _OP, self.get_operation, "datasets.operations.get"),
            ("POST", _OP + ":cancel", self.cancel_operation, "datasets.operations.cancel"),
            *self.dicomweb.routes(_ST),
            *self.iam.routes(_DS, _ST),
            *not_emulated.routes(),  # the served routes above are not in its table
        ]
        for method, rule, handler, name in routes:
            router.add(method, rule, _state_errors(handler), api_method=API_METHOD_PREFIX + name)
        admin: list[Route] = [
            ("GET", "/_emulator/logs/<operation>", self.operation_logs, "logs.get"),
            ("GET", "/_emulator/bigquery", self.list_tables, "bigquery.list"),
            ("GET", "/_emulator/bigquery/<table>", self.get_table, "bigquery.get"),
            ("GET", "/_emulator/service-agent/<project>", self.service_agent, "serviceAgent.get"),
        ]
        for method, rule, handler, name in admin:
            router.add(method, rule, _state_errors(handler), api_method=f"emulator.{name}")

    # -- names ---------------------------------------------------------------------------

    @staticmethod
    def _location(request: Request) -> str:
        p = request.params
        if not _PROJECT_RE.fullmatch(p["project"]):
            raise invalid_argument(f"Invalid project ID {p['project']!r}.")
        if not _LOCATION_RE.fullmatch(p["location"]):
            raise invalid_argument(f"Invalid location {p['location']!r}.")
        return f"projects/{p['project']}/locations/{p['location']}"

    @staticmethod
    def _check_id(kind: str, value: str) -> str:
        """A dataset or DICOM store ID, by the discovery documents' create parameters.

        ``datasetId`` "must match the following regex: ``[\\p{L}\\p{N}_\\-\\.]{1,256}``";
        ``dicomStoreId`` is "Any string value up to 256 characters in length" (a ``/`` would
        split the resource name, so the emulator refuses it; ``:`` and other reserved
        characters must reach it percent-encoded). Neither may be ``.`` or ``..``.
        """
        if kind == "dataset":
            ok = all(ch in "_-." or unicodedata.category(ch)[0] in "LN" for ch in value)
            form = "1-256 Unicode letters and numbers, '_', '-' and '.'"
        else:
            ok = "/" not in value
            form = "1-256 characters other than '/'"
        if not ok or not 0 < len(value) <= 256 or value in (".", ".."):
            raise invalid_argument(
                f"Invalid {kind} ID {value!r}: expected {form} (not '.' or '..')."
            )
        return value

    def _dataset(self, request: Request) -> str:
        dataset = self._check_id("dataset", request.params["dataset"])
        return f"{self._location(request)}/datasets/{dataset}"

    def _store_name(self, request: Request) -> str:
        store = self._check_id("DICOM store", request.params["store"])
        return f"{self._dataset(request)}/dicomStores/{store}"

    def _now(self) -> str:
        return rfc3339(self.clock())

    def _logs_url(self, op_id: str) -> str:
        return f"{self.healthcare_url}/_emulator/logs/{op_id}"

    # -- datasets ------------------------------------------------------------------------

    def create_dataset(self, request: Request) -> Response:
        """``datasets.create``: answers an already-done Operation."""
        parent = self._location(request)
        dataset_id = request.arg("datasetId")
        if not dataset_id:
            raise invalid_argument("datasetId is required.")
        self._check_id("dataset", dataset_id)
        body = request.json()
        _check_fields(body, {"name": str, "timeZone": str, "encryptionSpec": object}, "")
        name = f"{parent}/datasets/{dataset_id}"
        resource = {"name": name, "timeZone": body.get("timeZone") or "UTC"}
        created = self.state.create_dataset(name, resource)
        version = request.params["version"]
        now = self._now()
        op = self.state.new_operation(
            name,
            api_method_name=f"google.cloud.healthcare.{version}.dataset.DatasetService.CreateDataset",
            api_version=version,
            create_time=now,
            logs_url=self._logs_url,
            kind="create-dataset",
            target=name,
            counted=False,
        )

        def finish(record: Any) -> None:
            record.done = True
            record.end_time = now
            record.response = {
                "@type": f"type.googleapis.com/google.cloud.healthcare.{version}.Dataset",
                **created,
            }

        done = self.state.update_operation(op.name, finish, persist=True)
        assert done is not None
        return Response.json_response(done.to_json())

    def list_datasets(self, request: Request) -> Response:
        """``datasets.list``."""
        page, token = _page(request, self.state.list_datasets(self._location(request)))
        body: dict[str, Any] = {"datasets": page}
        if token:
            body["nextPageToken"] = token
        return Response.json_response(body)

    def get_dataset(self, request: Request) -> Response:
        """``datasets.get``."""
        return Response.json_response(self.state.get_dataset(self._dataset(request)))

    def patch_dataset(self, request: Request) -> Response:
        """``datasets.patch`` (``updateMask=timeZone``)."""
        name = self._dataset(request)
        body = request.json()
        _check_fields(body, {"name": str, "timeZone": str, "encryptionSpec": object}, "")
        mask = [m.strip() for m in (request.arg("updateMask") or "").split(",") if m.strip()]
        if not mask:
            raise invalid_argument("updateMask is required.")
        changes: dict[str, Any] = {}
        for path in mask:
            if path != "timeZone":
                raise invalid_argument(f"updateMask path {path!r} cannot be updated.")
            changes["timeZone"] = body.get("timeZone") or "UTC"
        return Response.json_response(self.state.patch_dataset(name, changes))

    def delete_dataset(self, request: Request) -> Response:
        """``datasets.delete`` (stores, instances and operations go with it)."""
        self.state.delete_dataset(self._dataset(request))
        return Response.json_response({})

    # -- DICOM stores --------------------------------------------------------------------

    def create_store(self, request: Request) -> Response:
        """``dicomStores.create``."""
        dataset = self._dataset(request)
        store_id = request.arg("dicomStoreId")
        if not store_id:
            raise invalid_argument("dicomStoreId is required.")
        self._check_id("DICOM store", store_id)
        body = request.json()
        _check_fields(body, _STORE_SCHEMA, "")
        resource = {k: v for k, v in body.items() if k in _STORE_FIELDS and v is not None}
        _check_one_notification_form(resource)
        created = self.state.create_store(f"{dataset}/dicomStores/{store_id}", resource)
        return Response.json_response(created)

    def list_stores(self, request: Request) -> Response:
        """``dicomStores.list``."""
        page, token = _page(request, self.state.list_stores(self._dataset(request)))
        body: dict[str, Any] = {"dicomStores": page}
        if token:
            body["nextPageToken"] = token
        return Response.json_response(body)

    def get_store(self, request: Request) -> Response:
        """``dicomStores.get``."""
        return Response.json_response(self.state.get_store(self._store_name(request)))

    def patch_store(self, request: Request) -> Response:
        """``dicomStores.patch``: fields named in ``updateMask`` are set or cleared."""
        name = self._store_name(request)
        body = request.json()
        _check_fields(body, _STORE_SCHEMA, "")
        changes, removed = apply_update_mask(
            self.state.get_store(name),
            body,
            mask_paths(request.arg("updateMask")),
            _STORE_UPDATABLE,
        )
        after = {**self.state.get_store(name), **changes}
        _check_one_notification_form({k: v for k, v in after.items() if k not in removed})
        return Response.json_response(self.state.patch_store(name, changes, removed))

    def delete_store(self, request: Request) -> Response:
        """``dicomStores.delete`` (its instances go with it)."""
        self.state.delete_store(self._store_name(request))
        return Response.json_response({})

    def get_store_policy(self, request: Request) -> Response:
        """``dicomStores.getIamPolicy``."""
        return Response.json_response(self.state.get_store_policy(self._store_name(request)))

    def set_store_policy(self, request: Request) -> Response:
        """``dicomStores.setIamPolicy``."""
        name = self._store_name(request)
        policy = parse_set_policy(request.json())
        return Response.json_response(self.state.set_store_policy(name, policy))

    def _done_operation(self, request: Request, dataset: str, method: str) -> dict[str, Any]:
        """Record a DICOMweb delete as an Operation that is already done (see .dicomweb)."""
        version = request.params["version"]
        now = self._now()
        op = self.state.new_operation(
            dataset,
            api_method_name=f"google.cloud.healthcare.{version}.dicomweb.DicomWebService.{method}",
            api_version=version,
            create_time=now,
            logs_url=self._logs_url,
            kind="dicomweb-delete",
            target=request.path,
            counted=False,
        )

        def finish(record: Any) -> None:
            record.done = True
            record.end_time = now
            record.response = {"@type": "type.googleapis.com/google.protobuf.Empty"}

        done = self.state.update_operation(op.name, finish, persist=True)
        assert done is not None
        return done.to_json()

    # -- permission emulation ------------------------------------------------------------

    def _require_role(self, project: str, bucket: str, role: str, permission: str) -> None:
        if not self.permission_checks:
            return
        if self.storage.role_granted(bucket, service_agent_member(project), role):
            return
        raise ApiException(
            403,
            f"{service_agent_email(project)} does not have {permission} access to the Google "
            f"Cloud Storage bucket {bucket}. Permission '{permission}' denied on resource (or it "
            f"may not exist). Grant {role} on gs://{bucket} to the Cloud Healthcare Service "
            "Agent.",
            "PERMISSION_DENIED",
        )

    # -- import / export -----------------------------------------------------------------

    def _new_transfer(self, request: Request, store: str, method: str, kind: str) -> Any:
        version = request.params["version"]
        return self.state.new_operation(
            store.split("/dicomStores/", 1)[0],
            api_method_name=f"google.cloud.healthcare.{version}.dicom.DicomService.{method}",
            api_version=version,
            create_time=self._now(),
            logs_url=self._logs_url,
            kind=kind,
            target=store,
        )

    def import_dicom(self, request: Request) -> Response:
        """``dicomStores.import``: validates, checks IAM, starts the background import."""
        store = self._store_name(request)
        body = request.json()
        _check_fields(body, _IMPORT_SCHEMA, "")
        self.state.get_store(store)
        uri = (body.get("gcsSource") or {}).get("uri")
        if not uri:
            raise invalid_argument("gcsSource.uri is required.")
        source = parse_gcs_uri(uri, "gcsSource.uri", kind="pattern")
        pattern = compile_import_pattern(source.path, "gcsSource.uri", uri)
        settings = body.get("blobStorageSettings") or {}
        storage_class = settings.get("blobStorageClass") or "STANDARD"
        if storage_class not in _BLOB_STORAGE_CLASSES:
            raise invalid_argument(
                f"Invalid blobStorageSettings.blobStorageClass {storage_class!r}; expected one of "
                + ", ".join(_BLOB_STORAGE_CLASSES)
            )
        if storage_class == "BLOB_STORAGE_CLASS_UNSPECIFIED":
            storage_class = "STANDARD"
        project = request.params["project"]
        self._require_role(
            project, source.bucket, "roles/storage.objectViewer", "storage.objects.list"
        )
        op = self._new_transfer(request, store, "ImportDicomData", "import")
        self.runner.start_import(
            op,
            ImportRequest(
                store=store,
                source_uri=uri,
                bucket=source.bucket,
                prefix=pattern.literal_prefix,
                matches=pattern.matches,
                storage_class=storage_class,
            ),
        )
        return Response.json_response(op.to_json())

    def export_dicom(self, request: Request) -> Response:
        """``dicomStores.export`` to Cloud Storage or BigQuery."""
        store = self._store_name(request)
        body = request.json()
        _check_fields(body, _EXPORT_SCHEMAS[request.params["version"]], "")
        self.state.get_store(store)
        project = request.params["project"]
        gcs = body.get("gcsDestination")
        bigquery = body.get("bigqueryDestination")
        if (gcs is None) == (bigquery is None):
            raise invalid_argument(
                "Exactly one of gcsDestination and bigqueryDestination must be set."
            )
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
            try:
                fmt = parse_export_format(gcs.get("mimeType"))
            except ValueError as exc:
                raise invalid_argument(f"gcsDestination.mimeType: {exc}") from None
            prefix = dest.path.rstrip("/")
            # Export overwrites existing objects, which takes storage.objects.delete: the
            # permission objectCreator lacks (it has storage.objects.create) and objectAdmin has.
            self._require_role(
                project, dest.bucket, "roles/storage.objectAdmin", "storage.objects.delete"
            )
            if filter_source is not None:
                self._require_role(
                    project,
                    filter_source.bucket,
                    "roles/storage.objectViewer",
                    "storage.objects.get",
                )
            op = self._new_transfer(request, store, "ExportDicomData", "export")
            self.runner.start_gcs_export(
                op,
                GcsExportRequest(
                    store=store,
                    bucket=dest.bucket,
                    prefix=f"{prefix}/" if prefix else "",
                    fmt=fmt,
                    filter=filter_source,
                ),
            )
            return Response.json_response(op.to_json())
        assert isinstance(bigquery, dict)
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
        shape = row_shape(bigquery, store)
        # Any project: the guide documents exports to another project's table
        # (how-tos/dicom-export-bigquery, "Exporting DICOM metadata to a different project");
        # the older reference page's same-project sentence predates it. BigQuery IAM is not
        # emulated, so no grant in that project is checked.
        if filter_source is not None:
            self._require_role(
                project, filter_source.bucket, "roles/storage.objectViewer", "storage.objects.get"
            )
        op = self._new_transfer(request, store, "ExportDicomData", "export")
        self.runner.start_bigquery_export(
            op,
            BigQueryExportRequest(
                store=store,
                table=table,
                disposition=disposition,
                shape=shape,
                filter=filter_source,
            ),
        )
        return Response.json_response(op.to_json())

    # -- operations ----------------------------------------------------------------------

    def get_operation(self, request: Request) -> Response:
        """``operations.get``."""
        name = f"{self._dataset(request)}/operations/{request.params['operation']}"
        return Response.json_response(self.state.get_operation(name).to_json())

    def list_operations(self, request: Request) -> Response:
        """``operations.list``, newest first, paged with ``pageSize``/``pageToken``."""
        ops = [op.to_json() for op in self.state.list_operations(self._dataset(request))]
        page, token = _page(request, ops)
        body: dict[str, Any] = {"operations": page}
        if token:
            body["nextPageToken"] = token
        return Response.json_response(body)

    def cancel_operation(self, request: Request) -> Response:
        """``operations.cancel``: best effort; a running import/export stops at the next
        instance and ends with ``error.code`` 1 and ``metadata.cancelRequested``."""
        name = f"{self._dataset(request)}/operations/{request.params['operation']}"
        request.json()
        op = self.state.get_operation(name)
        if not op.done:

            def mark(record: Any) -> None:
                if not record.done:
                    record.cancel_requested = True

            self.state.update_operation(name, mark, persist=True)
            self.runner.cancel(name)
        return Response.json_response({})

    # -- emulator extras -----------------------------------------------------------------

    def operation_logs(self, request: Request) -> Response:
        """Per-file log entries of an operation (what its ``logsUrl`` shows)."""
        op_id = request.params["operation"]
        entries = self.state.get_logs(op_id)
        if entries is None:
            raise not_found(f"No logs for operation {op_id}.")
        return Response.json_response({"operationId": op_id, "entries": entries})

    def list_tables(self, _request: Request) -> Response:
        """Ids of the emulated BigQuery tables."""
        return Response.json_response({"tables": self.tables.list_tables()})

    def get_table(self, request: Request) -> Response:
        """Rows of one emulated BigQuery table."""
        try:
            ref = parse_table_id(request.params["table"])
        except ValueError as exc:
            raise invalid_argument(str(exc)) from None
        if not self.tables.exists(ref):
            raise not_found(f"Not found: Table {ref.id}")
        return Response.json_response({"table": ref.id, "rows": self.tables.read_rows(ref)})

    def service_agent(self, request: Request) -> Response:
        """The fake project number and service agent of a project."""
        project = request.params["project"]
        if not _PROJECT_RE.fullmatch(project):
            raise invalid_argument(f"Invalid project ID {project!r}.")
        return Response.json_response(
            {
                "projectId": project,
                "projectNumber": project_number(project),
                "email": service_agent_email(project),
                "member": service_agent_member(project),
            }
        )
