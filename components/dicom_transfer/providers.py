"""Pulumi dynamic providers for DICOM import and export.

The providers are pickled by reference (this module is installed), hold no client and no
credential, and build their API clients lazily inside the provider process. What they need to
talk to the APIs comes from a :class:`~dicom_transfer.healthcare.runtime.TransferRuntime`
given to the constructor (the default one when none is given, which is what Pulumi pickles).

Lifecycle:
    check   validates every input (bad input fails at ``pulumi preview``; unknowns pass).
    diff    request-affecting inputs and ``triggers`` replace; waiting/connection inputs
            and the resource's name (an aliased rename) update in place.
    create  submits exactly once (or resumes an interrupted submit), waits, returns counters.
    read    re-reads the operation; an expired operation keeps the recorded outputs.
    update  records the new waiting/connection inputs; nothing is resubmitted.
    delete  never removes medical data; it says so.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
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

from dicom_transfer.errors import DicomTransferError, InvalidSpec, NotFound
from dicom_transfer.healthcare.journal import journal_uri
from dicom_transfer.healthcare.results import OperationResult, parse_operation
from dicom_transfer.healthcare.variables import mixed_target_problem, target_variable_problems
from dicom_transfer.output import line_writer, reports_message_first, write_line
from dicom_transfer.specs.fingerprint import request_fingerprint
from dicom_transfer.specs.problems import UNKNOWN, unset_string
from dicom_transfer.specs.props import (
    export_problems,
    export_spec_from_props,
    import_problems,
    import_spec_from_props,
    wait_policy_from_props,
)
from dicom_transfer.specs.requests import ExportSpec, TransferSpec
from dicom_transfer.worker_pool import widen_worker_pool

if TYPE_CHECKING:
    from dicom_transfer.healthcare.client import ApiConfig
    from dicom_transfer.healthcare.runtime import TransferRuntime

__all__ = ["OPERATION_OUTPUTS", "DicomExportProvider", "DicomImportProvider", "operation_outputs"]

WAIT_KEYS = ("timeout_seconds", "max_failures", "permission_retry_seconds")
"""Inputs that only affect waiting: an in-place update, never a resubmit."""
ENDPOINT_KEYS = ("endpoint", "storage_endpoint")
"""Inputs that say where calls go."""
CONNECTION_KEYS = (*ENDPOINT_KEYS, "impersonate_service_account")
"""Inputs that say where and as whom to talk, not what to do: an in-place update."""
NAME_KEYS = ("resource_name",)
"""The resource's name: after a rename with an alias (or an adoption into a pipeline) the
state records the new name in place. It is part of the journal's fingerprint only at create
time (two identical transfers of one stack are two requests); diff compares the requests
under one name, so a rename alone never re-runs a transfer."""
UPDATE_KEYS = WAIT_KEYS + CONNECTION_KEYS + NAME_KEYS
"""Every input that changes in place."""
OPERATION_OUTPUTS = (
    "operation_name",
    "success_count",
    "failure_count",
    "create_time",
    "end_time",
    "logs_url",
)
"""The outputs every transfer resource has (the resources declare them from this tuple)."""


@functools.cache
def _default_runtime() -> TransferRuntime:
    # Imported on first use: check and diff, all that a preview asks of the provider process
    # for every resource, need none of the runtime's modules (tenacity, the journal, ...).
    from dicom_transfer.healthcare.runtime import TransferRuntime

    return TransferRuntime()


def operation_outputs(result: OperationResult) -> dict[str, Any]:
    """The operation's outputs (:data:`OPERATION_OUTPUTS`) as plain JSON-able values."""
    values = (
        result.name,
        result.success_count,
        result.failure_count,
        result.create_time,
        result.end_time,
        result.logs_url,
    )
    return dict(zip(OPERATION_OUTPUTS, values, strict=True))


def _api_config(props: Mapping[str, Any]) -> ApiConfig:
    # The API layer (googleapiclient, google-auth, httplib2) is imported on first use: check
    # and diff, all that a preview asks of every provider process, never need it.
    from dicom_transfer.healthcare.client import ApiConfig

    return ApiConfig.from_env(
        endpoint=props.get("endpoint") or None,
        storage_endpoint=props.get("storage_endpoint") or None,
        impersonate_service_account=props.get("impersonate_service_account") or None,
    )


def _failures(problems: Sequence[InvalidSpec]) -> list[CheckFailure]:
    return [CheckFailure(problem.field, str(problem)) for problem in problems]


class _TransferProvider(ResourceProvider):
    """What import and export share: every lifecycle step but validation.

    Args:
        runtime: API clients, journal and schedules; None = the default (production) one.
    """

    kind: ClassVar[str]
    request_keys: ClassVar[tuple[str, ...]]

    def __init__(self, runtime: TransferRuntime | None = None) -> None:
        # Only a runtime given on purpose is kept: the pickled provider (the engine diffs
        # it on every run) stays an empty instance of the installed class.
        if runtime is not None:
            self._runtime = runtime

    @property
    def runtime(self) -> TransferRuntime:
        """The runtime given to the constructor, or the default one."""
        runtime: TransferRuntime | None = self.__dict__.get("_runtime")
        return runtime if runtime is not None else _default_runtime()

    def _problems(self, props: Mapping[str, Any]) -> list[InvalidSpec]:
        raise NotImplementedError

    def _spec(self, props: Mapping[str, Any]) -> TransferSpec:
        raise NotImplementedError

    @reports_message_first
    def create(self, props: dict[str, Any]) -> CreateResult:
        """Submits the transfer once (or resumes it) and waits for its counters.

        An export with ``filter_resource_paths`` first stages its filter file; the
        ``filter_uri`` output names the file the export read.
        """
        widen_worker_pool()
        spec = self._spec(props)
        name = str(props.get("resource_name", ""))
        result = self.runtime.run(
            _api_config(props),
            spec,
            request_fingerprint(spec, props.get("triggers"), name),
            wait_policy_from_props(props),
            line_writer(f"dicom {self.kind} {name}"),
        )
        outs = {**props, **operation_outputs(result)}
        if isinstance(spec, ExportSpec):
            outs["filter_uri"] = spec.filter_uri
        return CreateResult(result.name, outs)

    @reports_message_first
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validates every input; unknown (not yet computed) values pass through."""
        widen_worker_pool()  # the first call of a run; creates follow
        journal_uri()  # a malformed DICOM_TRANSFER_JOURNAL fails the preview
        # A retired or misspelled target variable would send calls elsewhere without a word.
        retargeting = [CheckFailure("", problem) for problem in target_variable_problems()]
        mixed = mixed_target_problem(
            stages_filter=self.kind == "export" and news.get("filter_resource_paths") is not None,
            endpoint_inputs=any(not unset_string(news.get(key)) for key in ENDPOINT_KEYS),
        )
        if mixed is not None:
            retargeting.append(CheckFailure("filter_resource_paths", mixed))
        return CheckResult(news, _failures(self._problems(news)) + retargeting)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Replaces on request changes; updates in place on waiting/connection changes.

        A request input spelled differently but sending the same request (``IMAGE/PNG`` for
        ``image/png``, ``""`` for unset) changes nothing: re-running a transfer is costly.
        """
        replaces = [key for key in self.request_keys if _changed(olds, news, key)]
        if replaces and self._same_request(olds, news):
            replaces = []
        updates = [key for key in UPDATE_KEYS if _changed(olds, news, key)]
        return DiffResult(
            changes=bool(replaces or updates),
            replaces=replaces,
            delete_before_replace=False,
        )

    def _same_request(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
        """Whether both input sets are valid, known and send the very same request."""
        if any(news.get(key) == UNKNOWN for key in self.request_keys):
            return False
        name = str(news.get("resource_name", ""))
        try:
            before = request_fingerprint(self._spec(olds), olds.get("triggers"), name)
            after = request_fingerprint(self._spec(news), news.get("triggers"), name)
        except (InvalidSpec, ValueError, TypeError):
            return False
        return before == after

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Keeps the operation's outputs and records the new waiting/connection inputs and
        the new name."""
        outs = dict(olds)
        for key in UPDATE_KEYS:
            if key in news:
                outs[key] = news[key]
            else:
                outs.pop(key, None)
        return UpdateResult(outs)

    @reports_message_first
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Re-reads the operation; keeps the recorded outputs once the API forgot it.

        Raises:
            DicomTransferError: A retired or misspelled target variable is set (``pulumi
                refresh`` runs no ``check``, so read refuses before calling anywhere).
        """
        retargeting = target_variable_problems()
        if retargeting:
            raise DicomTransferError(". ".join(retargeting))
        label = f"dicom {self.kind} {props.get('resource_name', id_)}"
        api = self.runtime.healthcare(
            _api_config(props), props.get("api_version") or "v1", line_writer(label)
        )
        try:
            operation = api.get_operation(id_)
        except NotFound:
            # Operation records expire about 30 days after they finish; what they said then
            # is still what happened.
            return ReadResult(id_, props)
        return ReadResult(id_, {**props, **operation_outputs(parse_operation(operation))})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Forgets the transfer; calls no API and deletes nothing it moved.

        The message says only what delete did: whether the data is still where the transfer
        put it is not known here (the store, bucket or table may have been removed since).
        """
        moved = "imported" if self.kind == "import" else "exported"
        write_line(
            f"dicom {self.kind} {props.get('resource_name', id_)}: removed from the stack "
            f"only; delete made no API call and deleted none of the data it {moved} (delete "
            f"never removes medical data). Operation: {id_}"
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

    def _spec(self, props: Mapping[str, Any]) -> TransferSpec:
        return import_spec_from_props(props)


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

    def _spec(self, props: Mapping[str, Any]) -> TransferSpec:
        return export_spec_from_props(props)
