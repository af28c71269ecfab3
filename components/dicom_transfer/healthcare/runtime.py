"""What a provider call needs to carry out a transfer, built in one place.

A :class:`TransferRuntime` builds the API clients and the journal and runs
:func:`~dicom_transfer.healthcare.transfer.run_transfer` with its schedules and clocks. The
dynamic providers take one in their constructor (the default one talks to Google with the
production schedules); tests pass one with short schedules, a fake clock or a scripted
transport, and the real factories still run.

The API layer (googleapiclient, google-auth, httplib2) is imported when a client is first
built: a preview's ``check`` and ``diff`` never need it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dicom_transfer.healthcare.journal import Journal, JournalStore, journal_uri
from dicom_transfer.healthcare.operations import PollPolicy
from dicom_transfer.healthcare.retrying import (
    PERMISSION_RETRY,
    READ_RETRY,
    SUBMIT_RETRY,
    RetryPolicy,
)
from dicom_transfer.specs.props import WaitPolicy
from dicom_transfer.specs.requests import ExportSpec, TransferSpec

if TYPE_CHECKING:
    from dicom_transfer.healthcare.client import ApiConfig, HealthcareApi, StorageApi
    from dicom_transfer.healthcare.results import OperationResult
    from dicom_transfer.healthcare.transfer import Progress

__all__ = ["TransferRuntime", "nothing_moved_warning"]


def nothing_moved_warning(spec: TransferSpec, result: OperationResult) -> str:
    """The warning line for a finished transfer that processed no instance, saying why.

    An import counts every file it reads (a file identical to a stored instance is a
    success the store ignores), so 0 means ``gcs_uri`` matched no object; an export counts
    every instance it writes, so 0 means the filter matched nothing, or the store is empty.

    Args:
        spec: The request.
        result: Its finished operation (success and failure counts 0).

    Returns:
        One line starting with ``WARNING``.
    """
    head = f"WARNING: {result.name} succeeded but moved 0 instances"
    if not isinstance(spec, ExportSpec):
        return f"{head}: gcs_uri {spec.gcs_uri} matched no object (check its path and wildcard)"
    check = "(check their study/series/instance UIDs)"
    if spec.filter_resource_paths is not None:
        paths = f"the {len(spec.filter_resource_paths)} path(s) in filter_resource_paths"
    elif spec.filter_gcs_uri is not None:
        paths = f"the paths in the filter file {spec.filter_gcs_uri}"
    else:
        return f"{head}: {spec.store.name} holds no instance (import into it first)"
    return f"{head}: {paths} match no instance of {spec.store.name} {check}"


@dataclass(frozen=True)
class TransferRuntime:
    """Factories and schedules for one provider's API calls.

    Attributes:
        read_retry: Retry of idempotent calls (Healthcare reads, every Cloud Storage call).
        submit_retry: Retry of import/export submits.
        permission_retry: Backoff while a submit is PERMISSION_DENIED.
        poll_policy: When to ask again whether an operation is done.
        http_factory: Builds each thread's HTTP object; None = ``AuthorizedHttp`` with
            Application Default Credentials (tests pass a scripted transport).
        clock: Monotonic clock (seconds).
        wall_clock: Epoch-seconds clock (journal timestamps vs. operation create times).
        sleep: Sleep function (seconds).
    """

    read_retry: RetryPolicy = READ_RETRY
    submit_retry: RetryPolicy = SUBMIT_RETRY
    permission_retry: RetryPolicy = PERMISSION_RETRY
    poll_policy: PollPolicy = field(default_factory=PollPolicy)
    http_factory: Callable[[], Any] | None = None
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def healthcare(
        self, config: ApiConfig, api_version: str = "v1", progress: Progress | None = None
    ) -> HealthcareApi:
        """A Healthcare API client for ``config``; ``progress`` hears of an unreachable endpoint."""
        from dicom_transfer.healthcare.client import HealthcareApi

        return HealthcareApi(
            config,
            api_version,
            http_factory=self.http_factory,
            read_retry=self.read_retry,
            submit_retry=self.submit_retry,
            sleep=self.sleep,
            clock=self.clock,
            progress=progress,
        )

    def storage(self, config: ApiConfig, progress: Progress | None = None) -> StorageApi:
        """A Cloud Storage client for ``config``; ``progress`` hears of an unreachable endpoint."""
        from dicom_transfer.healthcare.client import StorageApi

        return StorageApi(
            config,
            http_factory=self.http_factory,
            retry=self.read_retry,
            sleep=self.sleep,
            clock=self.clock,
            progress=progress,
        )

    def journal(self, config: ApiConfig, storage: StorageApi | None = None) -> JournalStore:
        """The shared journal if ``DICOM_TRANSFER_JOURNAL`` is set, else the local one.

        Args:
            config: Endpoints and identity.
            storage: The Cloud Storage client to keep a shared journal with (default: a new
                one from :meth:`storage`).

        Raises:
            InvalidSpec: ``DICOM_TRANSFER_JOURNAL`` is not ``gs://BUCKET[/PREFIX]``.
        """
        location = journal_uri()
        if location is None:
            return Journal.default()
        from dicom_transfer.healthcare.gcs_journal import GcsJournal

        return GcsJournal(storage if storage is not None else self.storage(config), location)

    def judge(
        self,
        config: ApiConfig,
        spec: TransferSpec,
        fingerprint: str,
        policy: WaitPolicy,
        result: OperationResult,
        progress: Progress | None = None,
    ) -> OperationResult:
        """Judge the request's finished operation ``result`` again under ``policy``.

        Returns and raises as :func:`~dicom_transfer.healthcare.transfer.judge_finished`
        (which keeps the request's journal record in step with the judgement).
        """
        from dicom_transfer.healthcare.transfer import judge_finished

        storage = self.storage(config, progress)
        return judge_finished(
            self.healthcare(config, spec.api_version, progress),
            spec,
            fingerprint,
            policy,
            self.journal(config, storage),
            result,
            progress,
            wall_clock=self.wall_clock,
        )

    def run(
        self,
        config: ApiConfig,
        spec: TransferSpec,
        fingerprint: str,
        policy: WaitPolicy,
        progress: Progress | None = None,
    ) -> OperationResult:
        """Stage an export's inline filter file, then submit (at most once) or resume, and wait.

        Args:
            config: Endpoints and identity.
            spec: The request.
            fingerprint: Its identity in the journal.
            policy: Timeout, failure tolerance, permission retry window.
            progress: Receives one-line progress messages.

        Returns:
            The finished operation, accepted by the failure policy. One that processed no
            instance is a success too; ``progress`` then hears a warning saying why.

        Raises:
            DicomTransferError: As :func:`~dicom_transfer.healthcare.transfer.run_transfer`
                and :func:`~dicom_transfer.healthcare.transfer.stage_filter_file` raise.
        """
        from dicom_transfer.healthcare.transfer import run_transfer, stage_filter_file

        stages_filter = isinstance(spec, ExportSpec) and spec.filter_resource_paths is not None
        if progress is not None:
            # Said before any call: where the calls go is never a surprise (no silent retarget).
            targets = f"Healthcare API at {config.healthcare.describe()}"
            if stages_filter or journal_uri() is not None:
                targets += f"; Cloud Storage at {config.storage.describe()}"
            progress(targets)
        # One Cloud Storage client (built lazily) for the filter file and a shared journal.
        storage = self.storage(config, progress)
        if isinstance(spec, ExportSpec) and stages_filter:
            stage_filter_file(storage, spec)
        result = run_transfer(
            self.healthcare(config, spec.api_version, progress),
            spec,
            fingerprint,
            policy,
            self.journal(config, storage),
            progress,
            clock=self.clock,
            wall_clock=self.wall_clock,
            sleep=self.sleep,
            poll_policy=self.poll_policy,
            permission_retry=self.permission_retry,
        )
        if progress is not None and result.processed_count == 0:
            progress(nothing_moved_warning(spec, result))
        return result
