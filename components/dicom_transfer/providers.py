"""Pulumi dynamic providers for DICOM import and export: thin adapters over the lifecycle.

The providers are pickled by reference (this module is installed), hold no client and no
credential, and build their API clients lazily inside the provider process. What they need to
talk to the APIs comes from a :class:`~dicom_transfer.healthcare.runtime.TransferRuntime`
given to the constructor (the default one when none is given, which is what Pulumi pickles).

Every rule (check, diff, create, read, update, delete) is :mod:`dicom_transfer.lifecycle`'s;
this module only turns its plain values into ``pulumi.dynamic`` results. The resource's name
travels as the ``resource_name`` prop (an aliased rename updates it in place); progress and
delete's message go to stderr as whole lines (:mod:`dicom_transfer.output`), which the engine
shows as info messages; a failure's report starts with its complete message.
"""

from __future__ import annotations

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

from dicom_transfer.lifecycle import OPERATION_OUTPUTS, TransferLifecycle, operation_outputs
from dicom_transfer.output import line_writer, reports_message_first, write_line
from dicom_transfer.specs.inputs import TransferKind
from dicom_transfer.worker_pool import widen_worker_pool

if TYPE_CHECKING:
    from dicom_transfer.healthcare.runtime import TransferRuntime

__all__ = ["OPERATION_OUTPUTS", "DicomExportProvider", "DicomImportProvider", "operation_outputs"]


def _name(props: dict[str, Any], default: str = "") -> str:
    return str(props.get("resource_name", default))


class _TransferProvider(ResourceProvider):
    """The dynamic provider of one kind of transfer.

    Args:
        runtime: API clients, journal and schedules; None = the default (production) one.
    """

    kind: ClassVar[TransferKind]

    def __init__(self, runtime: TransferRuntime | None = None) -> None:
        # Only a runtime given on purpose is kept: the pickled provider (the engine diffs
        # it on every run) stays an empty instance of the installed class.
        if runtime is not None:
            self._runtime = runtime

    @property
    def lifecycle(self) -> TransferLifecycle:
        """The lifecycle this provider adapts (with the runtime given to the constructor)."""
        return TransferLifecycle(self.kind, self.__dict__.get("_runtime"))

    @reports_message_first
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validates every input; unknown (not yet computed) values pass through."""
        widen_worker_pool()  # the first call of a run; creates follow
        problems = self.lifecycle.check(news)
        return CheckResult(news, [CheckFailure(p.input, p.reason) for p in problems])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Replaces on request changes; updates in place on waiting/connection changes."""
        change = self.lifecycle.diff(olds, news, _name(news))
        return DiffResult(
            changes=change.changed,
            replaces=list(change.replaces),
            delete_before_replace=False,
        )

    @reports_message_first
    def create(self, props: dict[str, Any]) -> CreateResult:
        """Submits the transfer once (or resumes it) and waits for its counters."""
        widen_worker_pool()
        name = _name(props)
        outs = self.lifecycle.create(props, name, line_writer(f"dicom {self.kind} {name}"))
        return CreateResult(outs["operation_name"], {**props, **outs})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Keeps the operation's outputs; records the new waiting/connection inputs and name."""
        return UpdateResult(self.lifecycle.update(olds, news))

    @reports_message_first
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Re-reads the operation; keeps the recorded outputs once the API forgot it.

        Refuses a retired or misspelled target variable before any call (``pulumi refresh``
        runs no check).
        """
        label = f"dicom {self.kind} {_name(props, id_)}"
        outs = self.lifecycle.read(id_, props, line_writer(label))
        return ReadResult(id_, props if outs is None else {**props, **outs})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Forgets the transfer; calls no API and deletes nothing it moved."""
        write_line(self.lifecycle.delete(id_, _name(props, id_)))


class DicomImportProvider(_TransferProvider):
    """Dynamic provider behind :class:`dicom_transfer.DicomImport`."""

    kind = "import"


class DicomExportProvider(_TransferProvider):
    """Dynamic provider behind :class:`dicom_transfer.DicomExport`."""

    kind = "export"
