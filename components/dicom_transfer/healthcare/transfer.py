"""Submit an import/export at most once, resume it after an interruption, wait for it.

:func:`run_transfer` is what a provider's ``create`` calls (dynamic and native alike):

1. **Journal first.** If the journal has a record for the request's fingerprint:
   * with a finished operation as its outcome (an earlier create failed on it after data
     moved): judge that outcome again under the current ``max_failures`` and submit nothing
     -- a finished operation is its request's outcome; ``triggers`` is how a user asks for a
     new run;
   * with an operation name: resume waiting on that operation; if the API no longer knows it
     (forgotten after it finished, or a reset endpoint), raise
     :class:`~dicom_transfer.errors.OperationForgotten` and submit nothing: it may have moved
     data, and the record stays until the user changes ``triggers`` or deletes it;
   * without one ("submitting": the previous run died between sending and the answer): list the
     dataset's operations and adopt the one with the same ``apiMethodName`` created within the
     submit window, if exactly one matches (and no other journal record owns it); otherwise
     raise :class:`~dicom_transfer.errors.JournalConflict`, which says how to clear the record.
2. **Submit.** Claim a "submitting" record, submit (transient retries only for errors that
   provably created nothing; PERMISSION_DENIED retried for ``permission_retry_seconds``),
   record the operation name. A submit that failed without creating anything drops the record;
   an ambiguous one (timeout, reset, 5xx after sending) keeps it and tries to adopt at once.
3. **Wait** until done or the deadline (``timeout_seconds`` for the whole call), then judge
   (:func:`~dicom_transfer.healthcare.operations.apply_failure_policy`). A success, or a
   failure that moved nothing (``success_count`` 0), removes the record; a failure after data
   moved keeps the finished operation in it as the request's outcome (step 1) and the error
   says so, how to run again (``triggers``) and, for a ``WRITE_APPEND`` BigQuery export, that
   the successful rows are already in the table. On timeout the record stays, so the next run
   resumes.

:func:`judge_finished` is step 3 alone, for a finished operation a front end kept in its own
state (the native provider's partial state, judged again by its ``update``): the journal ends
as a create's judgement would leave it.

:func:`stage_filter_file` writes an inline filter list to its content-addressed object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dicom_transfer.errors import (
    ApiError,
    JournalConflict,
    NotFound,
    OperationFailed,
    OperationForgotten,
    OperationTimedOut,
    PermissionDenied,
    Transient,
)
from dicom_transfer.healthcare.client import HealthcareApi, StorageApi
from dicom_transfer.healthcare.journal import JournalRecord, JournalStore
from dicom_transfer.healthcare.operations import (
    PollPolicy,
    apply_failure_policy,
    wait_for_operation,
)
from dicom_transfer.healthcare.results import OperationResult, epoch_seconds, parse_operation
from dicom_transfer.healthcare.retrying import (
    PERMISSION_RETRY,
    RetryPolicy,
    retry_permission_denied,
)
from dicom_transfer.roles import FILTER_STAGING_ROLE, permission_hint
from dicom_transfer.specs.gcs import parse_gcs_uri
from dicom_transfer.specs.props import WaitPolicy
from dicom_transfer.specs.requests import (
    ExportSpec,
    TransferSpec,
    filter_file_content,
    staged_filter_uri,
)

__all__ = [
    "ADOPT_CLOCK_SKEW_S",
    "ADOPT_WINDOW_S",
    "Progress",
    "find_interrupted_operation",
    "judge_finished",
    "run_transfer",
    "stage_filter_file",
]

Progress = Callable[[str], None]
"""Receives one human-readable line (the providers print it to stderr)."""

ADOPT_CLOCK_SKEW_S = 120.0
"""An adoptable operation may look created this long before the local submit time."""
ADOPT_WINDOW_S = 900.0
"""... and up to this long after it (covers submit retries and permission retries)."""

_METHOD_SUFFIX = {
    "import": "DicomService.ImportDicomData",
    "export": "DicomService.ExportDicomData",
}


def find_interrupted_operation(
    operations: Iterable[Mapping[str, Any]],
    record: JournalRecord,
    *,
    exclude: Iterable[str] = (),
) -> list[OperationResult]:
    """Operations that an interrupted submit (``record``) may have created.

    Same ``apiMethodName`` (import vs export) and a ``createTime`` within
    ``[submitted_at - ADOPT_CLOCK_SKEW_S, submitted_at + ADOPT_WINDOW_S]``; names in
    ``exclude`` (owned by other journal records) are skipped.

    Returns:
        The candidates (adopt only if there is exactly one).
    """
    suffix = _METHOD_SUFFIX.get(record.kind)
    if suffix is None:
        return []
    excluded = set(exclude)
    low = record.submitted_at - ADOPT_CLOCK_SKEW_S
    high = record.submitted_at + ADOPT_WINDOW_S
    found = []
    for operation in operations:
        result = parse_operation(operation)
        created = epoch_seconds(result.create_time)
        if (
            result.name
            and result.name not in excluded
            and (result.api_method_name or "").endswith(suffix)
            and created is not None
            and low <= created <= high
        ):
            found.append(result)
    return found


class _Run:
    """One run_transfer call: its clocks, deadline and messages."""

    def __init__(
        self,
        api: HealthcareApi,
        spec: TransferSpec,
        fingerprint: str,
        policy: WaitPolicy,
        journal: JournalStore,
        progress: Progress | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_policy: PollPolicy | None = None,
        permission_retry: RetryPolicy = PERMISSION_RETRY,
    ) -> None:
        self.api = api
        self.spec = spec
        self.kind = spec.kind
        self.store_name = spec.store.name
        self.fingerprint = fingerprint
        self.policy = policy
        self.journal = journal
        self.progress = progress
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep
        self.poll_policy = poll_policy
        self.permission_retry = permission_retry
        self.start = clock()

    def say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def remaining(self) -> float:
        return self.policy.timeout_seconds - (self.clock() - self.start)

    @property
    def journal_path(self) -> str:
        return str(self.journal.path_for(self.fingerprint))

    def dataset_name(self) -> str:
        return self.spec.store.dataset_name

    # --- resume ------------------------------------------------------------------------------

    def operation_from_journal(self, record: JournalRecord | None) -> str | None:
        """The operation to wait on from ``record`` (the fingerprint's), or None: submit."""
        if record is None:
            return None
        if record.operation_name is not None:
            try:
                self.api.get_operation(record.operation_name)
            except NotFound:
                raise OperationForgotten(
                    self.fingerprint,
                    self.journal_path,
                    record.operation_name,
                    record.submitted_at_iso,
                ) from None
            self.say(f"resuming {record.operation_name} (from journal {self.journal_path})")
            return record.operation_name
        return self.adopt(record, after_interrupted_run=True)

    def adopt(self, record: JournalRecord, *, after_interrupted_run: bool) -> str | None:
        if record.kind != self.kind or record.store != self.store_name:
            # The fingerprint covers kind and store, so this is a record that could not be
            # read (cut short, or not written by us): it may stand for a running operation or
            # an outcome that moved data, so submitting is not provably safe.
            raise JournalConflict(
                self.fingerprint,
                self.journal_path,
                f"its journal record cannot be read as an {self.kind} of {self.store_name} "
                "(it may stand for an operation that already ran)",
            )
        owned = {
            r.operation_name
            for r in self.journal.records()
            if r.operation_name and r.fingerprint != self.fingerprint
        }
        candidates = find_interrupted_operation(
            self.api.list_operations(self.dataset_name()), record, exclude=owned
        )
        if len(candidates) == 1:
            name = candidates[0].name
            self.journal.put(record.with_operation(name))
            when = "an earlier run" if after_interrupted_run else "this run"
            self.say(
                f"adopted {name}: the submit of {when} was interrupted before its answer "
                f"(matched by method and create time around {record.submitted_at_iso})"
            )
            return name
        age_s = self.wall_clock() - record.submitted_at
        if not candidates and after_interrupted_run and age_s > ADOPT_CLOCK_SKEW_S:
            # An operation exists as soon as its submit is answered, so one that is still not
            # listed this long after the interrupted submit was never created.
            self.say(
                f"the submit interrupted at {record.submitted_at_iso} created no {self.kind} "
                f"operation (none listed after {age_s:.0f} s); submitting again"
            )
            self.journal.remove(self.fingerprint)
            return None
        if candidates:
            detail = (
                f"{len(candidates)} {self.kind} operations of {self.dataset_name()} were created "
                f"around {record.submitted_at_iso} (" + ", ".join(c.name for c in candidates) + ")"
            )
        else:
            detail = (
                f"no {self.kind} operation of {self.dataset_name()} created around "
                f"{record.submitted_at_iso} was found"
            )
        raise JournalConflict(self.fingerprint, self.journal_path, detail)

    # --- submit ------------------------------------------------------------------------------

    def submit_once(self) -> str:
        call = self.api.submit_import if self.kind == "import" else self.api.submit_export
        body = self.spec.request_body()

        def on_permission_retry(_error: BaseException, delay: float) -> None:
            self.say(
                f"PERMISSION_DENIED on submit (a fresh IAM grant may still be propagating); "
                f"retrying in {delay:.0f} s"
            )

        return retry_permission_denied(
            lambda: call(self.store_name, body),
            window_s=max(min(self.policy.permission_retry_seconds, self.remaining()), 0.0),
            hint=permission_hint(self.spec),
            policy=self.permission_retry,
            sleep=self.sleep,
            clock=self.clock,
            on_retry=on_permission_retry,
        )

    def submit(self) -> str:
        record = self.journal.new_record(
            self.fingerprint, self.kind, self.store_name, now=self.wall_clock()
        )
        if not self.journal.claim(record):
            # Another record appeared since we looked: resume through it instead.
            name = self.operation_from_journal(self.journal.get(self.fingerprint))
            if name is not None:
                return name
            if not self.journal.claim(record):
                raise JournalConflict(
                    self.fingerprint,
                    self.journal_path,
                    "another run claimed the same request while this one was looking at the "
                    "journal (two `pulumi up` of one stack at once?)",
                )
        try:
            name = self.submit_once()
        except Transient as exc:
            if not exc.request_sent:
                self.journal.remove(self.fingerprint)
                raise
            self.say(f"submit outcome unknown ({exc}); looking for an operation it created")
            try:
                adopted = self.adopt(record, after_interrupted_run=False)
            except JournalConflict as conflict:
                raise Transient(
                    exc.http_status,
                    exc.status,
                    exc.message,
                    f"The submit may or may not have created an operation. {conflict}",
                    request_sent=True,
                ) from exc
            assert adopted is not None  # only an interrupted earlier run may give up
            return adopted
        except (ApiError, ValueError):
            # The server refused (4xx, or permission still denied): nothing was created.
            self.journal.remove(self.fingerprint)
            raise
        self.journal.put(record.with_operation(name))
        self.say(f"submitted {name}")
        return name

    # --- wait --------------------------------------------------------------------------------

    def wait(self, name: str, *, just_submitted: bool) -> OperationResult:
        def report(result: OperationResult, _elapsed: float) -> None:
            self.say(result.progress_line(self.clock() - self.start))

        remaining = self.remaining()
        if remaining <= 0:
            raise OperationTimedOut(name, self.clock() - self.start)
        try:
            result = wait_for_operation(
                lambda: self.api.get_operation(name),
                timeout_s=remaining,
                clock=self.clock,
                sleep=self.sleep,
                on_progress=report,
                policy=self.poll_policy,
                operation_name=name,
                just_submitted=just_submitted,
                wall_clock=self.wall_clock,
            )
        except OperationTimedOut as exc:
            raise OperationTimedOut(exc.operation_name or name, self.clock() - self.start) from None
        return self.judge(result)

    # --- judge -------------------------------------------------------------------------------

    def judge(self, result: OperationResult) -> OperationResult:
        """Accept a finished operation or fail; keep it as the outcome if it moved data."""
        try:
            accepted = apply_failure_policy(
                result, self.policy.max_failures, permission_hint(self.spec)
            )
        except OperationFailed as failed:
            if result.success_count == 0:
                # Nothing moved: submitting the request again is harmless.
                self.journal.remove(self.fingerprint)
                raise
            self.keep_outcome(result)
            raise failed.with_hint(self.outcome_hint(result)) from None
        self.journal.remove(self.fingerprint)
        return accepted

    def judge_outcome(self, outcome: OperationResult) -> OperationResult:
        """Judge the request's recorded outcome again under the current inputs; no API call."""
        limit = self.policy.max_failures
        self.say(
            f"{outcome.name} already finished as this request's outcome (journal "
            f"{self.journal_path}: success={outcome.success_count} "
            f"failure={outcome.failure_count}); judging it again with max_failures={limit}, "
            "submitting nothing"
        )
        accepted = self.judge(outcome)
        self.say(f"accepted {outcome.name} with max_failures={limit}")
        return accepted

    def keep_outcome(self, result: OperationResult) -> None:
        """Record ``result`` as the request's outcome (step 3 of the module docstring)."""
        record = self.journal.get(self.fingerprint) or self.journal.new_record(
            self.fingerprint, self.kind, self.store_name, now=self.wall_clock()
        )
        if record.outcome != result:
            self.journal.put(record.with_outcome(result))

    def outcome_hint(self, result: OperationResult) -> str:
        """What a failure after data moved means for the next run, and how to run again."""
        moved = "imported" if self.kind == "import" else "exported"
        if _some_limit_accepts(result):
            # The failure's message already names both fixes (max_failures=N, None).
            again = "judges it again under max_failures as then set and submits nothing"
        else:  # an error of the operation itself: no max_failures accepts it
            again = "reports this failure again and submits nothing"
        hint = (
            f"{result.success_count} instance(s) were already {moved}, so this operation "
            f"stays the request's outcome (journal {self.journal_path}): the next `pulumi up` "
            f"of the same request {again}. To run the "
            f"{self.kind} again on purpose, change the resource's `triggers`"
        )
        table = _appended_table(self.spec)
        if table is not None:
            hint += (
                f". The {result.success_count} successful row(s) are already in {table} "
                "(WRITE_APPEND): running the export again appends them a second time"
            )
        return hint


def _some_limit_accepts(result: OperationResult) -> bool:
    """Whether raising ``max_failures`` can accept ``result`` (failed instances, not an error
    of the operation itself such as code 13 INTERNAL)."""
    try:
        apply_failure_policy(result, None)
    except OperationFailed:
        return False
    return True


def _appended_table(spec: TransferSpec) -> str | None:
    """The BigQuery table an export appends to (``WRITE_APPEND``), else None."""
    destination = spec.bigquery_destination if isinstance(spec, ExportSpec) else None
    if destination is None or destination.write_disposition != "WRITE_APPEND":
        return None
    return destination.table_uri or "the destination table"


def run_transfer(
    api: HealthcareApi,
    spec: TransferSpec,
    fingerprint: str,
    policy: WaitPolicy,
    journal: JournalStore,
    progress: Progress | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    poll_policy: PollPolicy | None = None,
    permission_retry: RetryPolicy = PERMISSION_RETRY,
) -> OperationResult:
    """Submit (at most once) or resume an import/export, and wait for it.

    Args:
        api: Healthcare API client.
        spec: The request (an export's inline filter must be staged already, see
            :func:`stage_filter_file`).
        fingerprint: Identity of the request (``specs.fingerprint.request_fingerprint``).
        policy: Deadline (whole call), failure tolerance, permission retry window.
        journal: Where in-flight operations are recorded.
        progress: Receives one-line progress messages.
        clock: Monotonic clock.
        wall_clock: Epoch-seconds clock (journal timestamps vs. operation create times).
        sleep: Sleep function.
        poll_policy: Poll schedule (default :class:`PollPolicy`).
        permission_retry: Backoff while PERMISSION_DENIED (its timeout is replaced by
            ``policy.permission_retry_seconds``).

    Returns:
        The finished operation, accepted by the failure policy: the one submitted or resumed
        now, or the request's recorded outcome (judged again, nothing submitted).

    Raises:
        OperationFailed: Finished with an error the policy does not tolerate (``result`` is
            the operation; when it moved data the journal keeps it as the request's outcome
            and ``hint`` says so).
        OperationTimedOut: Still running at the deadline (the journal keeps it for resuming).
        JournalConflict: An interrupted submit cannot be matched to exactly one operation.
        OperationForgotten: The journal names this request's operation and the API no longer
            knows it (nothing submitted; the record is kept).
        PermissionDenied: Still denied after the permission window.
        ApiError: Other API errors (after retries).
    """
    run = _Run(
        api,
        spec,
        fingerprint,
        policy,
        journal,
        progress,
        clock=clock,
        wall_clock=wall_clock,
        sleep=sleep,
        poll_policy=poll_policy,
        permission_retry=permission_retry,
    )
    record = journal.get(fingerprint)
    if record is not None and record.outcome is not None:
        return run.judge_outcome(record.outcome)
    resumed = run.operation_from_journal(record)
    if resumed is not None:
        return run.wait(resumed, just_submitted=False)
    return run.wait(run.submit(), just_submitted=True)


def judge_finished(
    api: HealthcareApi,
    spec: TransferSpec,
    fingerprint: str,
    policy: WaitPolicy,
    journal: JournalStore,
    result: OperationResult,
    progress: Progress | None = None,
    *,
    wall_clock: Callable[[], float] = time.time,
) -> OperationResult:
    """Judge a finished operation of the request again, as its outcome; submit nothing.

    What a front end that keeps a failed create's operation in its own state does on the next
    run (the native provider's partial state, judged again by its update): step 3's rule, so
    that the journal agrees with that state. Accepted: the request's journal record goes. Still
    failing after data moved: the journal keeps ``result`` as the request's outcome (a later
    create of the same request judges it and submits nothing) and the error says so. A journal
    record of another operation of this request (one a create is resuming) is left alone.

    Args:
        api: Healthcare API client (not called).
        spec: The request.
        fingerprint: Its identity in the journal.
        policy: The failure tolerance (``max_failures``) to judge by.
        journal: Where the request's outcome is recorded.
        result: The finished operation.
        progress: Receives one-line progress messages.
        wall_clock: Epoch-seconds clock (a new record's timestamp).

    Returns:
        ``result``, accepted by the failure policy.

    Raises:
        OperationFailed: The policy does not tolerate it (as :func:`run_transfer` raises it).
    """
    record = journal.get(fingerprint)
    if record is not None and record.operation_name != result.name:
        return apply_failure_policy(result, policy.max_failures, permission_hint(spec))
    run = _Run(api, spec, fingerprint, policy, journal, progress, wall_clock=wall_clock)
    return run.judge(result)


def stage_filter_file(storage: StorageApi, spec: ExportSpec) -> str:
    """Upload ``spec.filter_resource_paths`` as a filter file; return its ``gs://`` URI.

    The object is ``{filter_staging_uri}/{sha256 of the content}.txt`` (one path per line,
    ``\\n``), so identical lists share one object and the upload is skipped when it exists.

    Args:
        storage: Cloud Storage client.
        spec: An export spec with ``filter_resource_paths``.

    Returns:
        The filter file's URI (``spec.filter_uri``, which the request body names).

    Raises:
        ValueError: The spec has no inline filter paths.
        PermissionDenied: The caller cannot write to the staging bucket.
    """
    uri = staged_filter_uri(spec)
    location = parse_gcs_uri(uri, "filter_staging_uri", kind="object")
    # Look before writing: a caller who may read but not create objects (the file staged by
    # an earlier run or another stack) reuses it instead of failing on the conditional write.
    if storage.exists(location.bucket, location.path):
        return uri
    content = filter_file_content(spec.filter_resource_paths or ())
    try:
        storage.write(location.bucket, location.path, content, "text/plain", only_if_absent=True)
    except PermissionDenied as exc:
        raise PermissionDenied(
            exc.http_status,
            exc.status,
            exc.message,
            f"the credentials running Pulumi need {FILTER_STAGING_ROLE} on bucket "
            f"{location.bucket} to stage the filter file {uri}",
        ) from exc
    return uri
