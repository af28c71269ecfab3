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
  dataset IAM is not emulated. ``PROJECT_NUMBER`` is :func:`.names.project_number` — the same fake
  number the storage side reports for buckets.
- A missing source/destination bucket, an import pattern matching nothing, or an unreadable
  filter file end the *operation* with ``NOT_FOUND`` (5); a malformed filter line with
  ``INVALID_ARGUMENT`` (3); ``WRITE_EMPTY`` into a non-empty table with
  ``FAILED_PRECONDITION`` (9).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dicom_transfer_emulator.bigquery.tables import open_tables, parse_table_id
from dicom_transfer_emulator.errors import ApiException, invalid_argument, not_found
from dicom_transfer_emulator.healthcare import not_emulated
from dicom_transfer_emulator.healthcare.dicomweb import DicomWeb
from dicom_transfer_emulator.healthcare.iam import IamRoutes, parse_set_policy
from dicom_transfer_emulator.healthcare.names import (
    check_id,
    check_project,
    dataset_name,
    location_name,
    project_number,
    service_agent_email,
    service_agent_member,
    store_name,
)
from dicom_transfer_emulator.healthcare.operation_faults import OperationFaults
from dicom_transfer_emulator.healthcare.paging import page_response
from dicom_transfer_emulator.healthcare.request_bodies import (
    DATASET_SCHEMA,
    EXPORT_SCHEMAS,
    IMPORT_SCHEMA,
    STORE_FIELDS,
    STORE_SCHEMA,
    STORE_UPDATABLE,
    BucketRole,
    check_fields,
    check_one_notification_form,
    export_request,
    import_request,
)
from dicom_transfer_emulator.healthcare.state import HealthcareState, OperationRecord, StateError
from dicom_transfer_emulator.healthcare.transfers import GcsExportRequest, TransferRunner
from dicom_transfer_emulator.healthcare.update_mask import apply_update_mask, mask_paths
from dicom_transfer_emulator.server.http import Request, Response, Router
from dicom_transfer_emulator.server.routing import Route
from dicom_transfer_emulator.storage.port import Storage, rfc3339

__all__ = ["HealthcareService"]

# werkzeug rules (see routing.py); ``id`` variables stop at ``:`` so custom verbs route apart.
_V = "/<any(v1, v1beta1):version>"
_LOC = _V + "/projects/<project>/locations/<location>"
_DS = _LOC + "/datasets/<id:dataset>"
_ST = _DS + "/dicomStores/<id:store>"
_OP = _DS + "/operations/<id:operation>"
#: Discovery ids of the served methods are this prefix plus the names in the route tables.
API_METHOD_PREFIX = "healthcare.projects.locations."


def _state_errors(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    def wrapped(request: Request) -> Response:
        try:
            return handler(request)
        except StateError as exc:
            raise ApiException(exc.http_status, exc.message, exc.status) from None

    return wrapped


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

    # -- names and operations ------------------------------------------------------------

    @staticmethod
    def _dataset(request: Request) -> str:
        return dataset_name(request.params)

    @staticmethod
    def _store_name(request: Request) -> str:
        return store_name(request.params)

    def _logs_url(self, op_id: str) -> str:
        return f"{self.healthcare_url}/_emulator/logs/{op_id}"

    def _new_operation(
        self,
        request: Request,
        parent: str,
        service_method: str,
        *,
        kind: str,
        target: str,
        response: dict[str, Any] | None = None,
    ) -> OperationRecord:
        """Record an Operation under the dataset ``parent``.

        Args:
            request: the request (its API version names the method and the response type).
            parent: the dataset's name.
            service_method: e.g. ``dicom.DicomService.ImportDicomData``, after
                ``google.cloud.healthcare.{version}.``.
            kind: ``import``, ``export``, ``create-dataset`` or ``dicomweb-delete``.
            target: the resource the operation acts on.
            response: for a method answered at once, the operation's ``response`` (it is
                recorded done with it, without a progress counter); None for a transfer,
                which the runner finishes.
        """
        version = request.params["version"]
        now = rfc3339(self.clock())
        op = self.state.new_operation(
            parent,
            api_method_name=f"google.cloud.healthcare.{version}.{service_method}",
            api_version=version,
            create_time=now,
            logs_url=self._logs_url,
            kind=kind,
            target=target,
            counted=response is None,
        )
        if response is None:
            return op

        def finish(record: OperationRecord) -> None:
            record.done = True
            record.end_time = now
            record.response = response

        done = self.state.update_operation(op.name, finish, persist=True)
        assert done is not None
        return done

    def _done_operation(self, request: Request, dataset: str, method: str) -> dict[str, Any]:
        """Record a DICOMweb delete as an Operation that is already done (see .dicomweb)."""
        return self._new_operation(
            request,
            dataset,
            f"dicomweb.DicomWebService.{method}",
            kind="dicomweb-delete",
            target=request.path,
            response={"@type": "type.googleapis.com/google.protobuf.Empty"},
        ).to_json()

    # -- datasets ------------------------------------------------------------------------

    def create_dataset(self, request: Request) -> Response:
        """``datasets.create``: answers an already-done Operation."""
        parent = location_name(request.params)
        dataset_id = request.arg("datasetId")
        if not dataset_id:
            raise invalid_argument("datasetId is required.")
        check_id("dataset", dataset_id)
        body = request.json()
        check_fields(body, DATASET_SCHEMA)
        name = f"{parent}/datasets/{dataset_id}"
        created = self.state.create_dataset(
            name, {"name": name, "timeZone": body.get("timeZone") or "UTC"}
        )
        version = request.params["version"]
        done = self._new_operation(
            request,
            name,
            "dataset.DatasetService.CreateDataset",
            kind="create-dataset",
            target=name,
            response={
                "@type": f"type.googleapis.com/google.cloud.healthcare.{version}.Dataset",
                **created,
            },
        )
        return Response.json_response(done.to_json())

    def list_datasets(self, request: Request) -> Response:
        """``datasets.list``."""
        datasets = self.state.list_datasets(location_name(request.params))
        return page_response(request, "datasets", datasets)

    def get_dataset(self, request: Request) -> Response:
        """``datasets.get``."""
        return Response.json_response(self.state.get_dataset(self._dataset(request)))

    def patch_dataset(self, request: Request) -> Response:
        """``datasets.patch`` (``updateMask=timeZone``)."""
        name = self._dataset(request)
        body = request.json()
        check_fields(body, DATASET_SCHEMA)
        for path in mask_paths(request.arg("updateMask")):
            if path != "timeZone":
                raise invalid_argument(f"updateMask path {path!r} cannot be updated.")
        changes = {"timeZone": body.get("timeZone") or "UTC"}
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
        check_id("DICOM store", store_id)
        body = request.json()
        check_fields(body, STORE_SCHEMA)
        resource = {k: v for k, v in body.items() if k in STORE_FIELDS and v is not None}
        check_one_notification_form(resource)
        created = self.state.create_store(f"{dataset}/dicomStores/{store_id}", resource)
        return Response.json_response(created)

    def list_stores(self, request: Request) -> Response:
        """``dicomStores.list``."""
        return page_response(request, "dicomStores", self.state.list_stores(self._dataset(request)))

    def get_store(self, request: Request) -> Response:
        """``dicomStores.get``."""
        return Response.json_response(self.state.get_store(self._store_name(request)))

    def patch_store(self, request: Request) -> Response:
        """``dicomStores.patch``: fields named in ``updateMask`` are set or cleared."""
        name = self._store_name(request)
        body = request.json()
        check_fields(body, STORE_SCHEMA)
        changes, removed = apply_update_mask(
            self.state.get_store(name), body, mask_paths(request.arg("updateMask")), STORE_UPDATABLE
        )
        after = {**self.state.get_store(name), **changes}
        check_one_notification_form({k: v for k, v in after.items() if k not in removed})
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

    # -- import / export -----------------------------------------------------------------

    def _require_roles(self, project: str, roles: list[BucketRole]) -> None:
        """403 PERMISSION_DENIED unless the project's service agent holds each role (when
        :attr:`permission_checks` is on)."""
        if not self.permission_checks:
            return
        for need in roles:
            if self.storage.role_granted(need.bucket, service_agent_member(project), need.role):
                continue
            raise ApiException(
                403,
                f"{service_agent_email(project)} does not have {need.permission} access to the "
                f"Google Cloud Storage bucket {need.bucket}. Permission '{need.permission}' "
                f"denied on resource (or it may not exist). Grant {need.role} on "
                f"gs://{need.bucket} to the Cloud Healthcare Service Agent.",
                "PERMISSION_DENIED",
            )

    def _new_transfer(self, request: Request, store: str, method: str, kind: str) -> Any:
        return self._new_operation(
            request,
            store.split("/dicomStores/", 1)[0],
            f"dicom.DicomService.{method}",
            kind=kind,
            target=store,
        )

    def import_dicom(self, request: Request) -> Response:
        """``dicomStores.import``: validates, checks IAM, starts the background import."""
        store = self._store_name(request)
        body = request.json()
        check_fields(body, IMPORT_SCHEMA)
        self.state.get_store(store)
        transfer, roles = import_request(body, store)
        self._require_roles(request.params["project"], roles)
        op = self._new_transfer(request, store, "ImportDicomData", "import")
        self.runner.start_import(op, transfer)
        return Response.json_response(op.to_json())

    def export_dicom(self, request: Request) -> Response:
        """``dicomStores.export`` to Cloud Storage or BigQuery."""
        store = self._store_name(request)
        body = request.json()
        check_fields(body, EXPORT_SCHEMAS[request.params["version"]])
        self.state.get_store(store)
        transfer, roles = export_request(body, store)
        self._require_roles(request.params["project"], roles)
        op = self._new_transfer(request, store, "ExportDicomData", "export")
        if isinstance(transfer, GcsExportRequest):
            self.runner.start_gcs_export(op, transfer)
        else:
            self.runner.start_bigquery_export(op, transfer)
        return Response.json_response(op.to_json())

    # -- operations ----------------------------------------------------------------------

    def get_operation(self, request: Request) -> Response:
        """``operations.get``."""
        name = f"{self._dataset(request)}/operations/{request.params['operation']}"
        return Response.json_response(self.state.get_operation(name).to_json())

    def list_operations(self, request: Request) -> Response:
        """``operations.list``, newest first, paged with ``pageSize``/``pageToken``."""
        ops = [op.to_json() for op in self.state.list_operations(self._dataset(request))]
        return page_response(request, "operations", ops)

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
        project = check_project(request.params["project"])
        return Response.json_response(
            {
                "projectId": project,
                "projectNumber": project_number(project),
                "email": service_agent_email(project),
                "member": service_agent_member(project),
            }
        )
