"""Pulumi dynamic providers for DICOM import and export.

The providers are pickled by reference (this module is installed), hold no client and no
credential, and build their API clients lazily inside the provider process.

Lifecycle:
    check   validates every input (bad input fails at ``pulumi preview``; unknowns pass).
    diff    request-affecting inputs and ``triggers`` replace; waiting/connection inputs
            update in place.
    create  submits exactly once (or resumes an interrupted submit), waits, returns counters.
    read    re-reads the operation; an expired operation keeps the recorded outputs.
    update  records the new waiting/connection inputs; nothing is resubmitted.
    delete  never removes medical data; it says so.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from dicom_transfer.errors import InvalidSpec, NotFound
from dicom_transfer.healthcare.journal import Journal, journal_uri
from dicom_transfer.healthcare.operations import OperationResult, parse_operation
from dicom_transfer.specs import (
    UNKNOWN,
    ExportSpec,
    ImportSpec,
    WaitPolicy,
    export_fingerprint,
    export_problems,
    import_fingerprint,
    import_problems,
)
from dicom_transfer.worker_pool import widen_worker_pool

if TYPE_CHECKING:
    from dicom_transfer.healthcare.client import ApiConfig, HealthcareApi, StorageApi
    from dicom_transfer.healthcare.journal import JournalStore

__all__ = ["DicomExportProvider", "DicomImportProvider"]

WAIT_KEYS = ("timeout_seconds", "max_failures", "permission_retry_seconds")
"""Inputs that only affect waiting: an in-place update, never a resubmit."""
CONNECTION_KEYS = ("endpoint", "storage_endpoint", "impersonate_service_account")
"""Inputs that say where and as whom to talk, not what to do: an in-place update."""
OPERATION_OUTPUTS = (
    "operation_name",
    "success_count",
    "failure_count",
    "create_time",
    "end_time",
    "logs_url",
)


def operation_outputs(result: OperationResult) -> dict[str, Any]:
    """The operation's outputs as plain JSON-able values."""
    return {
        "operation_name": result.name,
        "success_count": result.success_count,
        "failure_count": result.failure_count,
        "create_time": result.create_time,
        "end_time": result.end_time,
        "logs_url": result.logs_url,
    }


# The API layer (googleapiclient, google-auth, httplib2) is imported on first use: check and
# diff, all that a preview asks of every provider process, never need it.


def _api_config(props: Mapping[str, Any]) -> ApiConfig:
    from dicom_transfer.healthcare.client import ApiConfig

    return ApiConfig.from_env(
        endpoint=props.get("endpoint") or None,
        storage_endpoint=props.get("storage_endpoint") or None,
        impersonate_service_account=props.get("impersonate_service_account") or None,
    )


def healthcare_api(config: ApiConfig, api_version: str = "v1") -> HealthcareApi:
    """The Healthcare API client of one call (tests replace this)."""
    from dicom_transfer.healthcare.client import HealthcareApi

    return HealthcareApi(config, api_version)


def storage_api(config: ApiConfig) -> StorageApi:
    """The Cloud Storage client of one call (tests replace this)."""
    from dicom_transfer.healthcare.client import StorageApi

    return StorageApi(config)


def run_transfer(*args: Any, **kwargs: Any) -> OperationResult:
    """:func:`dicom_transfer.healthcare.transfer.run_transfer` (tests replace this)."""
    from dicom_transfer.healthcare.transfer import run_transfer as run

    return run(*args, **kwargs)


def journal_for(config: ApiConfig) -> JournalStore:
    """The shared Cloud Storage journal if ``DICOM_TRANSFER_JOURNAL`` is set, else the local one."""
    location = journal_uri()
    if location is None:
        return Journal.default()
    from dicom_transfer.healthcare.gcs_journal import GcsJournal

    return GcsJournal(storage_api(config), location)


def _stderr_progress(label: str) -> Callable[[str], None]:
    """A progress sink: the engine shows a dynamic provider's stderr lines as info messages."""

    def emit(line: str) -> None:
        print(f"{label}: {line}", file=sys.stderr, flush=True)

    return emit


def _failures(problems: Sequence[InvalidSpec]) -> list[CheckFailure]:
    return [CheckFailure(problem.field, str(problem)) for problem in problems]


class _TransferProvider(ResourceProvider):
    """What import and export share: diff rules, read, update and delete."""

    kind: ClassVar[str]
    request_keys: ClassVar[tuple[str, ...]]

    def _problems(self, props: Mapping[str, Any]) -> list[InvalidSpec]:
        raise NotImplementedError

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validates every input; unknown (not yet computed) values pass through."""
        widen_worker_pool()  # the first call of a run; creates follow
        journal_uri()  # a malformed DICOM_TRANSFER_JOURNAL fails the preview
        return CheckResult(news, _failures(self._problems(news)))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Replaces on request changes; updates in place on waiting/connection changes."""
        replaces = [key for key in self.request_keys if _changed(olds, news, key)]
        updates = [key for key in WAIT_KEYS + CONNECTION_KEYS if _changed(olds, news, key)]
        return DiffResult(
            changes=bool(replaces or updates),
            replaces=replaces,
            delete_before_replace=False,
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Keeps the operation's outputs and records the new waiting/connection inputs."""
        outs = dict(olds)
        for key in WAIT_KEYS + CONNECTION_KEYS:
            if key in news:
                outs[key] = news[key]
            else:
                outs.pop(key, None)
        return UpdateResult(outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Re-reads the operation; keeps the recorded outputs once the API forgot it."""
        api = healthcare_api(_api_config(props), props.get("api_version") or "v1")
        try:
            operation = api.get_operation(id_)
        except NotFound:
            # Operation records expire about 30 days after they finish; what they said then
            # is still what happened.
            return ReadResult(id_, props)
        return ReadResult(id_, {**props, **operation_outputs(parse_operation(operation))})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Forgets the transfer; the data it moved stays where it is."""
        print(
            f"dicom {self.kind} {props.get('resource_name', id_)}: forgotten; "
            f"the data it {'imported' if self.kind == 'import' else 'exported'} was kept "
            f"(delete never removes medical data). Operation: {id_}",
            file=sys.stderr,
            flush=True,
        )


def _changed(olds: Mapping[str, Any], news: Mapping[str, Any], key: str) -> bool:
    new = news.get(key)
    return new == UNKNOWN or olds.get(key) != new


class DicomImportProvider(_TransferProvider):
    """Dynamic provider behind :class:`dicom_transfer.DicomImport`."""

    kind = "import"
    request_keys = ("dicom_store", "gcs_uri", "blob_storage_class", "api_version", "triggers")

    def _problems(self, props: Mapping[str, Any]) -> list[InvalidSpec]:
        return import_problems(props)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Submits the import once (or resumes it) and waits for its counters."""
        widen_worker_pool()
        spec = ImportSpec.from_props(props)
        policy = WaitPolicy.from_props(props)
        name = str(props.get("resource_name", ""))
        config = _api_config(props)
        api = healthcare_api(config, spec.api_version)
        result = run_transfer(
            api,
            kind="import",
            store_name=spec.store.name,
            body=spec.request_body(),
            fingerprint=import_fingerprint(spec, props.get("triggers"), name),
            policy=policy,
            journal=journal_for(config),
            progress=_stderr_progress(f"dicom import {name}"),
        )
        return CreateResult(result.name, {**props, **operation_outputs(result)})


class DicomExportProvider(_TransferProvider):
    """Dynamic provider behind :class:`dicom_transfer.DicomExport`."""

    kind = "export"
    request_keys = (
        "dicom_store",
        "gcs_destination",
        "bigquery_destination",
        "filter_gcs_uri",
        "filter_resource_paths",
        "filter_staging_uri",
        "api_version",
        "triggers",
    )

    def _problems(self, props: Mapping[str, Any]) -> list[InvalidSpec]:
        return export_problems(props)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Stages the inline filter (if any), submits the export once and waits."""
        widen_worker_pool()
        spec = ExportSpec.from_props(props)
        policy = WaitPolicy.from_props(props)
        name = str(props.get("resource_name", ""))
        config = _api_config(props)
        filter_uri = spec.filter_gcs_uri
        if spec.filter_resource_paths is not None:
            from dicom_transfer.healthcare.transfer import stage_filter_file

            filter_uri = stage_filter_file(storage_api(config), spec)
        api = healthcare_api(config, spec.api_version)
        result = run_transfer(
            api,
            kind="export",
            store_name=spec.store.name,
            body=spec.request_body(filter_uri),
            fingerprint=export_fingerprint(spec, props.get("triggers"), name),
            policy=policy,
            journal=journal_for(config),
            progress=_stderr_progress(f"dicom export {name}"),
        )
        outs = {**props, **operation_outputs(result), "filter_uri": filter_uri}
        return CreateResult(result.name, outs)
