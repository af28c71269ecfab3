"""One lifecycle of a transfer resource, for every front end.

check, diff, create, read, update and delete of an import or export, on plain snake_case props
(the names of :mod:`dicom_transfer.specs.inputs`) and plain results: no Pulumi front-end type
appears here. The dynamic providers (:mod:`dicom_transfer.providers`) and the native provider
(:mod:`dicom_transfer.native.provider`) are thin adapters over :class:`TransferLifecycle`.

Rules:
    check   validates every input (bad input fails at preview; unknowns pass) and refuses a
            retired or misspelled target variable, naming the one to set (and a filter file
            staged across an emulator boundary).
    diff    request-affecting inputs and ``triggers`` replace; waiting/connection inputs update
            in place; another spelling of the same request changes nothing.
    create  submits exactly once (or resumes an interrupted submit), waits, judges.
    read    re-reads the operation; an expired operation keeps the recorded outputs; a
            retired or misspelled target variable fails it before any call.
    update  records the new waiting/connection inputs and the resource's name; nothing is
            resubmitted.
    delete  never removes medical data; it says so.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dicom_transfer.errors import DicomTransferError, InvalidSpec, NotFound
from dicom_transfer.healthcare.journal import journal_uri
from dicom_transfer.healthcare.results import OperationResult, parse_operation
from dicom_transfer.healthcare.variables import mixed_target_problem, target_variable_problems
from dicom_transfer.specs.fingerprint import request_fingerprint
from dicom_transfer.specs.inputs import OUTPUTS, UPDATE_KEYS, TransferKind, request_keys
from dicom_transfer.specs.problems import UNKNOWN, unset_string
from dicom_transfer.specs.props import (
    export_problems,
    export_spec_from_props,
    import_problems,
    import_spec_from_props,
    wait_policy_from_props,
)
from dicom_transfer.specs.requests import ExportSpec, TransferSpec

if TYPE_CHECKING:
    from dicom_transfer.healthcare.client import ApiConfig
    from dicom_transfer.healthcare.runtime import TransferRuntime

__all__ = [
    "OPERATION_OUTPUTS",
    "Change",
    "Problem",
    "TransferLifecycle",
    "default_runtime",
    "operation_outputs",
]

OPERATION_OUTPUTS: tuple[str, ...] = tuple(
    spec.name for spec in OUTPUTS if spec.kinds == ("import", "export")
)
"""The outputs every transfer resource has (``operation_name``, the counters, times, logs)."""

Progress = Callable[[str], None]

ENDPOINT_KEYS = ("endpoint", "storage_endpoint")
"""Inputs that say where calls go."""

ADOPTED_MARK = "dicom_store"
"""A required input every created transfer records; a state without it was adopted (read from
an operation name by ``pulumi import``), whose request inputs come from the program."""

_API_METHODS: dict[TransferKind, str] = {"import": "ImportDicomData", "export": "ExportDicomData"}
"""The last part of ``metadata.apiMethodName`` of each kind's operation (e.g.
``google.cloud.healthcare.v1.dicom.DicomService.ImportDicomData``, as the API reports it)."""


@functools.cache
def default_runtime() -> TransferRuntime:
    """The production runtime, built on first use.

    Imported late: check and diff, all that a preview asks for every resource, need none of
    the runtime's modules (tenacity, the journal, ...).
    """
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


def api_config(props: Mapping[str, Any]) -> ApiConfig:
    """Endpoints and identity of ``props`` (connection inputs) with the environment's rules."""
    # The API layer (googleapiclient, google-auth, httplib2) is imported on first use: check
    # and diff never need it.
    from dicom_transfer.healthcare.client import ApiConfig

    return ApiConfig.from_env(
        endpoint=props.get("endpoint") or None,
        storage_endpoint=props.get("storage_endpoint") or None,
        impersonate_service_account=props.get("impersonate_service_account") or None,
    )


@dataclass(frozen=True)
class Problem:
    """One reason check refuses the inputs.

    Attributes:
        field: The snake_case property path (empty for a setting of the machine, such as an
            environment variable).
        reason: The message: what was given, what is allowed, what to do (it names
            ``field``, nested path included).
    """

    field: str
    reason: str

    @property
    def input(self) -> str:
        """The top-level input of ``field`` (``gcs_destination`` for
        ``gcs_destination.mime_type``, ``filter_resource_paths`` for its ``[1]``): what a
        check failure names, because the engine prints the failing value by looking this key
        up in the inputs (a nested path would print as ``{<nil>}``, as if nothing were set)."""
        return re.split(r"[.\[]", self.field, maxsplit=1)[0]


@dataclass(frozen=True)
class Change:
    """What a diff found.

    Attributes:
        replaces: Inputs whose change re-runs the transfer (a new resource).
        updates: Inputs updated in place (nothing resubmitted).
    """

    replaces: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether anything changed."""
        return bool(self.replaces or self.updates)


def _changed(olds: Mapping[str, Any], news: Mapping[str, Any], key: str) -> bool:
    new = news.get(key)
    return new == UNKNOWN or olds.get(key) != new


class TransferLifecycle:
    """Every lifecycle step of an import or an export.

    Args:
        kind: ``import`` or ``export``.
        runtime: API clients, journal and schedules, or a function building them on first
            use (check and diff never need them); None = :func:`default_runtime`.
    """

    def __init__(
        self,
        kind: TransferKind,
        runtime: TransferRuntime | Callable[[], TransferRuntime] | None = None,
    ) -> None:
        self.kind: TransferKind = kind
        self.request_keys = request_keys(kind)
        self._runtime = runtime

    @property
    def runtime(self) -> TransferRuntime:
        """The runtime given to the constructor (built now if a function), or the default."""
        if self._runtime is None:
            return default_runtime()
        if callable(self._runtime):
            return self._runtime()
        return self._runtime

    def spec(self, props: Mapping[str, Any]) -> TransferSpec:
        """The validated request of ``props``.

        Raises:
            InvalidSpec: The first problem, or an unknown value.
        """
        if self.kind == "import":
            return import_spec_from_props(props)
        return export_spec_from_props(props)

    def check(self, props: Mapping[str, Any]) -> list[Problem]:
        """Every problem with ``props`` (unknown values pass), and with the machine's settings
        that would send calls elsewhere without a word (retired or misspelled target
        variables; a filter file staged across an emulator boundary).

        Returns:
            The problems; empty when ``props`` are valid.

        Raises:
            InvalidSpec: ``DICOM_TRANSFER_JOURNAL`` is malformed.
        """
        journal_uri()  # a malformed DICOM_TRANSFER_JOURNAL fails the preview
        invalid = import_problems(props) if self.kind == "import" else export_problems(props)
        problems = [Problem(p.field, str(p)) for p in invalid]
        problems += [Problem("", problem) for problem in target_variable_problems()]
        mixed = mixed_target_problem(
            stages_filter=self.kind == "export" and props.get("filter_resource_paths") is not None,
            endpoint_inputs=any(not unset_string(props.get(key)) for key in ENDPOINT_KEYS),
        )
        if mixed is not None:
            problems.append(Problem("filter_resource_paths", mixed))
        return problems

    def diff(self, olds: Mapping[str, Any], news: Mapping[str, Any], resource_name: str) -> Change:
        """Replaces on request changes; updates in place on waiting/connection changes.

        A request input spelled differently but sending the same request (``IMAGE/PNG`` for
        ``image/png``, ``""`` for unset) changes nothing: re-running a transfer is costly. An
        unknown request input is a replace (it may change the request).
        """
        changed = tuple(key for key in self.request_keys if _changed(olds, news, key))
        if changed and self.same_request(olds, news, resource_name):
            changed = ()
        updates = tuple(key for key in UPDATE_KEYS if _changed(olds, news, key))
        if ADOPTED_MARK not in olds:
            # Adopted with `pulumi import`: the operation does not carry its request, so the
            # program's request inputs are taken as they are (recorded by an update).
            return Change((), tuple(key for key in changed if key in news) + updates)
        return Change(changed, updates)

    def same_request(
        self, olds: Mapping[str, Any], news: Mapping[str, Any], resource_name: str
    ) -> bool:
        """Whether both input sets are valid, known and send the very same request."""
        if any(news.get(key) == UNKNOWN for key in self.request_keys):
            return False
        try:
            before = self.fingerprint(olds, resource_name)
            after = self.fingerprint(news, resource_name)
        except (InvalidSpec, ValueError, TypeError):
            return False
        return before == after

    def fingerprint(self, props: Mapping[str, Any], resource_name: str) -> str:
        """The request's identity in the journal (request, triggers, resource name)."""
        return request_fingerprint(self.spec(props), props.get("triggers"), resource_name)

    def create(
        self,
        props: Mapping[str, Any],
        resource_name: str,
        progress: Progress | None = None,
        *,
        engine_timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Submits the transfer once (or resumes it), waits, and judges the finished operation.

        An export with ``filter_resource_paths`` first stages its filter file; the
        ``filter_uri`` output names the file the export read.

        Args:
            props: The inputs (snake_case, connection inputs included).
            resource_name: The resource's name (part of the request's journal identity).
            progress: Receives one-line progress messages.
            engine_timeout_seconds: The engine's create timeout (``customTimeouts.create``),
                if any: the shorter of it and ``timeout_seconds`` bounds submit + wait.

        Returns:
            The outputs: :data:`OPERATION_OUTPUTS` (and ``filter_uri`` for an export).

        Raises:
            DicomTransferError: Bad input, an API error, a failed operation (its ``result``
                holds the finished operation) or the deadline (the operation keeps running;
                the next create resumes it).
        """
        spec = self.spec(props)
        policy = wait_policy_from_props(props)
        if engine_timeout_seconds is not None and engine_timeout_seconds > 0:
            policy = dataclasses.replace(
                policy, timeout_seconds=min(policy.timeout_seconds, engine_timeout_seconds)
            )
        result = self.runtime.run(
            api_config(props),
            spec,
            request_fingerprint(spec, props.get("triggers"), resource_name),
            policy,
            progress,
        )
        return self.outputs(spec, result)

    def outputs(self, spec: TransferSpec, result: OperationResult) -> dict[str, Any]:
        """The outputs of a finished operation of ``spec``."""
        outs = operation_outputs(result)
        if isinstance(spec, ExportSpec):
            outs["filter_uri"] = spec.filter_uri
        return outs

    def read(
        self, operation_name: str, props: Mapping[str, Any], progress: Progress | None = None
    ) -> dict[str, Any] | None:
        """Re-reads the operation.

        Args:
            operation_name: The resource's ID.
            props: The recorded inputs (connection and ``api_version`` are used).
            progress: Hears of an unreachable endpoint while the read is retried.

        Returns:
            The operation's outputs (:data:`OPERATION_OUTPUTS`), or None once the API forgot
            it (operation records expire about 30 days after they finish; what they said then
            is still what happened, so the caller keeps the recorded outputs).

        Raises:
            DicomTransferError: A retired or misspelled target variable is set (``pulumi
                refresh`` runs no check, so read refuses before calling anywhere).
            InvalidSpec: The operation is not one of this kind (an export read as an import).
            ApiError: An API error other than NOT_FOUND.
        """
        retargeting = target_variable_problems()
        if retargeting:
            raise DicomTransferError(". ".join(retargeting))
        api = self.runtime.healthcare(api_config(props), props.get("api_version") or "v1", progress)
        try:
            operation = api.get_operation(operation_name)
        except NotFound:
            return None
        method = str(operation.get("metadata", {}).get("apiMethodName", ""))
        if method and not method.endswith(_API_METHODS[self.kind]):
            raise InvalidSpec(
                "id",
                operation_name,
                f"the name of a DICOM {self.kind} operation (this one is {method})",
            )
        return operation_outputs(parse_operation(operation))

    def update(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        """Keeps the operation's outputs and records the new inputs.

        Only waiting/connection inputs differ in an ordinary update (request changes replace);
        an adopted (imported) transfer also records the request inputs its program gives.
        """
        outs = dict(olds)
        for key in self.request_keys + UPDATE_KEYS:
            if key in news:
                outs[key] = news[key]
            else:
                outs.pop(key, None)
        return outs

    def rejudge(
        self,
        operation_name: str,
        props: Mapping[str, Any],
        resource_name: str,
        progress: Progress | None = None,
    ) -> dict[str, Any] | None:
        """Judges the recorded operation again under ``props``' failure tolerance.

        What a front end does with a transfer whose create failed on a finished operation
        and was kept (the operation is its request's outcome: it is judged again, never
        submitted again). The journal follows the same rule as create's
        (:func:`~dicom_transfer.healthcare.transfer.judge_finished`): accepted, the request's
        record goes; still failing after data moved, the record keeps the operation as the
        request's outcome, so a later create of the same request submits nothing either.

        Args:
            operation_name: The resource's ID.
            props: The inputs to judge by (``max_failures``; the request and connection).
            resource_name: The resource's name (part of the request's journal identity).
            progress: Receives one-line progress messages.

        Returns:
            The operation's outputs when it now counts as a success; None when the API forgot
            it (the recorded outcome stands).

        Raises:
            OperationFailed: It still does not count as a success (``result`` holds it).
        """
        spec = self.spec(props)
        config = api_config(props)
        api = self.runtime.healthcare(config, spec.api_version, progress)
        try:
            operation = api.get_operation(operation_name)
        except NotFound:
            return None
        accepted = self.runtime.judge(
            config,
            spec,
            request_fingerprint(spec, props.get("triggers"), resource_name),
            wait_policy_from_props(props),
            parse_operation(operation),
            progress,
        )
        return operation_outputs(accepted)

    def delete(self, operation_name: str, resource_name: str) -> str:
        """Forgets the transfer; calls no API and deletes nothing it moved.

        Returns:
            The line to show the user. It says only what delete did: whether the data is still
            where the transfer put it is not known here (the store, bucket or table may have
            been removed since).
        """
        moved = "imported" if self.kind == "import" else "exported"
        return (
            f"dicom {self.kind} {resource_name}: removed from the stack only; delete made no "
            f"API call and deleted none of the data it {moved} (delete never removes medical "
            f"data). Operation: {operation_name}"
        )
