"""The native provider ``dicomtransfer``: the SDK's provider interface over the lifecycle.

A thin adapter: every rule is :class:`~dicom_transfer.lifecycle.TransferLifecycle`'s. This
module turns requests of ``pulumi.provider.experimental`` (camelCase ``PropertyValue`` maps)
into snake_case props and back, runs the blocking calls on its own thread pool, shows progress
on the resource's row, and turns failures into :class:`ProviderFailure` (one clean message) or
:class:`InitializationFailure` (a finished operation kept as partial state), which
:mod:`dicom_transfer.native.server` reports to the engine.

What it adds to the lifecycle, because only a native provider can:
    timeouts  ``customTimeouts.create`` arrives as the request's ``timeout``; the shorter of it
              and ``timeoutSeconds`` bounds submit + wait.
    import    ``pulumi import dicomtransfer:index:DicomImport NAME OPERATION`` reads the
              operation (Read with no state); the request inputs come from the program.
    cancel    running waits stop at their next sleep; their operations keep running and the
              next ``up`` resumes them (the journal keeps them).
    partial   a create that failed on a finished operation returns it as partial state, so
              the next ``up`` judges it again (an update) instead of submitting again.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.provider.experimental.provider import (
    CheckFailure,
    CheckRequest,
    CheckResponse,
    ConfigureRequest,
    ConfigureResponse,
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    DiffRequest,
    DiffResponse,
    GetSchemaRequest,
    GetSchemaResponse,
    PropertyDiff,
    PropertyDiffKind,
    Provider,
    ReadRequest,
    ReadResponse,
    UpdateRequest,
    UpdateResponse,
)

from dicom_transfer.errors import DicomTransferError, OperationTimedOut
from dicom_transfer.healthcare.results import OperationResult
from dicom_transfer.lifecycle import Problem, TransferLifecycle
from dicom_transfer.native.engine_log import EngineLog
from dicom_transfer.native.schema import RESOURCE_TOKENS, render_schema
from dicom_transfer.native.values import camel_text, from_props, to_props
from dicom_transfer.specs.inputs import CONFIG_INPUTS, TransferKind, camel_case, outputs_of
from dicom_transfer.specs.problems import UNKNOWN
from dicom_transfer.specs.props import connection_problems

if TYPE_CHECKING:
    from dicom_transfer.healthcare.runtime import TransferRuntime

__all__ = [
    "TRANSFER_WORKERS",
    "DicomTransferProvider",
    "InitializationFailure",
    "ProviderFailure",
    "TransferCancelled",
]

TRANSFER_WORKERS = 64
"""Transfers one provider process waits for at once (each holds a thread while it waits);
the engine's ``--parallel`` still bounds how many it asks for."""
_SPARE_WORKERS = 4
"""Threads beyond the waiting transfers, for reads and refreshes next to them."""

_KINDS: dict[str, TransferKind] = {token: kind for kind, token in RESOURCE_TOKENS.items()}
_T = TypeVar("_T")


class ProviderFailure(Exception):
    """A failure to report as one message, without a traceback."""


class InitializationFailure(ProviderFailure):
    """A create that failed on a finished operation: the resource exists with these outputs.

    Attributes:
        resource_id: The operation name.
        properties: The state to record (inputs and the operation's outputs).
        inputs: The create's inputs.
    """

    def __init__(
        self,
        message: str,
        resource_id: str,
        properties: dict[str, PropertyValue],
        inputs: dict[str, PropertyValue],
    ) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.properties = properties
        self.inputs = inputs


class TransferCancelled(DicomTransferError):
    """The engine cancelled the run while a transfer waited (its operation keeps running)."""

    def __init__(self) -> None:
        super().__init__(
            "cancelled while waiting; the operation keeps running on the server and the next "
            "`pulumi up` resumes it without submitting it again"
        )


def _message(kind: TransferKind, name: str, error: Exception) -> str:
    return camel_text(f"dicom {kind} {name}: {error}")


class DicomTransferProvider(Provider):
    """``DicomImport`` and ``DicomExport`` as native resources.

    Args:
        engine_address: The engine's gRPC address (progress and messages go there); None
            writes them to stderr.
        runtime: API clients, journal and schedules; None = the production one, whose sleeps
            end early when the engine cancels.
    """

    def __init__(
        self, engine_address: str | None = None, runtime: TransferRuntime | None = None
    ) -> None:
        self._log = EngineLog(engine_address)
        self._given_runtime = runtime
        self._cancelled = threading.Event()
        self._config: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=TRANSFER_WORKERS + _SPARE_WORKERS, thread_name_prefix="dicom-transfer"
        )

    @functools.cached_property
    def _runtime(self) -> TransferRuntime:
        if self._given_runtime is not None:
            return self._given_runtime
        # Imported on first create/read: a preview (check, diff) needs none of it.
        from dicom_transfer.healthcare.runtime import TransferRuntime

        return TransferRuntime(sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        if self._cancelled.wait(seconds):
            raise TransferCancelled()

    def _lifecycle(self, resource_type: str) -> TransferLifecycle:
        # A child resource's URN type is qualified by its parents' ("parent$type").
        kind = _KINDS.get(resource_type.rsplit("$", 1)[-1])
        if kind is None:
            raise ProviderFailure(
                f"unknown resource type {resource_type!r}; this provider serves "
                + " and ".join(RESOURCE_TOKENS.values())
            )
        return TransferLifecycle(kind, lambda: self._runtime)

    async def _in_pool(self, call: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _with_config(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {**props, **self._config}

    # --- schema and configuration -----------------------------------------------------------

    async def get_schema(self, request: GetSchemaRequest) -> GetSchemaResponse:
        """The package schema (``schema.json``)."""
        return GetSchemaResponse(render_schema())

    async def check_config(self, request: CheckRequest) -> CheckResponse:
        """Checks ``endpoint``, ``storageEndpoint`` and ``impersonateServiceAccount``."""
        invalid = connection_problems(to_props(request.new_inputs))
        problems = [Problem(p.field, str(p)) for p in invalid]
        return CheckResponse(
            inputs=request.new_inputs,
            failures=check_failures(problems),
        )

    async def configure(self, request: ConfigureRequest) -> ConfigureResponse:
        """Records the connection; the environment's rules (emulator hosts, ADC) apply."""
        props = to_props(request.args)
        self._config = {
            spec.name: props[spec.name]
            for spec in CONFIG_INPUTS
            if props.get(spec.name) not in (None, "", UNKNOWN)
        }
        return ConfigureResponse(accept_secrets=True, supports_preview=True)

    # --- check and diff (preview) -----------------------------------------------------------

    async def check(self, request: CheckRequest) -> CheckResponse:
        """Every bad input, naming its camelCase property; unknown values pass."""
        lifecycle = self._lifecycle(request.type)
        try:
            problems = lifecycle.check(to_props(request.new_inputs))
        except DicomTransferError as error:
            raise ProviderFailure(_message(lifecycle.kind, request.name, error)) from error
        return CheckResponse(
            inputs=request.new_inputs,
            failures=check_failures(problems),
        )

    async def diff(self, request: DiffRequest) -> DiffResponse:
        """Replaces on request changes, updates in place otherwise (a detailed diff)."""
        olds = to_props(request.old_state)
        news = to_props(request.new_inputs)
        change = self._lifecycle(request.type).diff(olds, news, request.name)
        detailed: dict[str, PropertyDiff] = {}
        for keys, replace in ((change.replaces, True), (change.updates, False)):
            for key in keys:
                detailed[camel_case(key)] = PropertyDiff(_diff_kind(olds, news, key, replace), True)
        return DiffResponse(
            changes=change.changed,
            replaces=[camel_case(key) for key in change.replaces],
            diffs=list(detailed),
            detailed_diff=detailed,
            delete_before_replace=False,
        )

    # --- create, read, update, delete -------------------------------------------------------

    async def create(self, request: CreateRequest) -> CreateResponse:
        """Submits once (or resumes), waits within the engine's timeout, judges the result."""
        lifecycle = self._lifecycle(request.type)
        kind, name = lifecycle.kind, request.name
        if request.preview:
            unknown = {spec.name: UNKNOWN for spec in outputs_of(kind)}
            return CreateResponse("", {**request.properties, **from_props(unknown)})
        props = to_props(request.properties)
        progress = self._log.progress(request.urn)
        progress(f"dicom {kind} {name}: submitting (or resuming) the {kind}")
        create = functools.partial(
            lifecycle.create,
            self._with_config(props),
            name,
            progress,
            engine_timeout_seconds=request.timeout or None,
        )
        try:
            outs = await self._in_pool(create)
        except DicomTransferError as error:
            message = _message(kind, name, error)
            if isinstance(error, OperationTimedOut) and request.timeout:
                message += f" (customTimeouts.create: {request.timeout:g} s)"
            result = getattr(error, "result", None)
            if isinstance(result, OperationResult):
                state = from_props({**props, **lifecycle.outputs(lifecycle.spec(props), result)})
                raise InitializationFailure(
                    message, result.name, state, dict(request.properties)
                ) from error
            raise ProviderFailure(message) from error
        await self._log.info(request.urn, _summary(kind, name, outs))
        return CreateResponse(outs["operation_name"], {**request.properties, **from_props(outs)})

    async def read(self, request: ReadRequest) -> ReadResponse:
        """Re-reads the operation (also for ``pulumi import``: no state yet)."""
        lifecycle = self._lifecycle(request.type)
        props = to_props(request.properties)
        read = functools.partial(
            lifecycle.read,
            request.resource_id,
            self._with_config(props),
            self._log.progress(request.urn),
        )
        try:
            outs = await self._in_pool(read)
        except DicomTransferError as error:
            raise ProviderFailure(_message(lifecycle.kind, request.name, error)) from error
        state = dict(request.properties)
        if outs is not None:
            state.update(from_props(outs))
        return ReadResponse(request.resource_id, state, dict(request.inputs))

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        """Records the new inputs and judges the recorded operation again; submits nothing."""
        lifecycle = self._lifecycle(request.type)
        outs = lifecycle.update(to_props(request.olds), to_props(request.news))
        if not request.preview:
            rejudge = functools.partial(
                lifecycle.rejudge,
                request.resource_id,
                self._with_config(outs),
                request.name,
                self._log.progress(request.urn),
            )
            try:
                judged = await self._in_pool(rejudge)
            except DicomTransferError as error:
                raise ProviderFailure(_message(lifecycle.kind, request.name, error)) from error
            if judged is not None:
                outs.update(judged)
        return UpdateResponse(from_props(outs))

    async def delete(self, request: DeleteRequest) -> None:
        """Removes the transfer from the stack only, and says so; deletes no data."""
        lifecycle = self._lifecycle(request.type)
        await self._log.info(request.urn, lifecycle.delete(request.resource_id, request.name))

    async def cancel(self) -> None:
        """Stops the running waits at their next sleep; their operations keep running."""
        self._cancelled.set()


def _diff_kind(
    olds: Mapping[str, Any], news: Mapping[str, Any], key: str, replace: bool
) -> PropertyDiffKind:
    if key not in olds:
        return PropertyDiffKind.ADD_REPLACE if replace else PropertyDiffKind.ADD
    if key not in news:
        return PropertyDiffKind.DELETE_REPLACE if replace else PropertyDiffKind.DELETE
    return PropertyDiffKind.UPDATE_REPLACE if replace else PropertyDiffKind.UPDATE


def _summary(kind: TransferKind, name: str, outs: Mapping[str, Any]) -> str:
    moved = "imported" if kind == "import" else "exported"
    return (
        f"dicom {kind} {name}: {outs['success_count']} instance(s) {moved}, "
        f"{outs['failure_count']} failed (operation {outs['operation_name']})"
    )


def check_failures(problems: list[Problem]) -> list[CheckFailure]:
    """Check failures naming the camelCase top-level property of each problem
    (:attr:`~dicom_transfer.lifecycle.Problem.input`; the reason names the nested path)."""
    return [CheckFailure(camel_text(p.input), camel_text(p.reason)) for p in problems]
