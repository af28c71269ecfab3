"""Long-running operations: parse them, poll them until done, judge the outcome.

Polling only ("not done yet, ask again"). Retrying a failed ``operations.get`` call is a
separate policy (:mod:`dicom_transfer.healthcare.retrying`) applied inside the ``get`` callable.

Poll schedule (:class:`PollPolicy`): after a fresh submit the first GET waits ``initial_s`` (the
submit's answer already said "running"); a resumed operation is read at once. Without progress
counters the sleeps grow x1.5 from ``initial_s`` up to ``max_s``, each shortened by up to 10 %
jitter. When the operation reports ``pending`` and the counters move, the processing rate
predicts when it finishes: the waiter sleeps until the *earliest* plausible finish (the rate
rounded up by one instance) plus half the lag budget (max(1 s, 5 % of the operation's time)),
at most ``max_predicted_s`` at a time. Once the prediction has passed, or ``pending`` reached
0, it polls the tail at ``tail_fraction`` of the elapsed time (at least ``min_tail_s``),
growing x1.5. Completion is thus seen within a few percent of the duration with a handful of
GETs. A deadline bounds the wait; the last sleep is cut so that one final GET happens exactly
at the deadline.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dicom_transfer.errors import OperationFailed, OperationTimedOut

__all__ = [
    "PARTIAL_FAILURE_CODE",
    "OperationResult",
    "PollPolicy",
    "apply_failure_policy",
    "parse_operation",
    "wait_for_operation",
]

PARTIAL_FAILURE_CODE = 3
"""``google.rpc.Code.INVALID_ARGUMENT``: what a finished import/export with failed instances has."""

_MAX_SAMPLE_ERRORS = 5


@dataclass(frozen=True)
class OperationResult:
    """A parsed ``Operation`` (running or done).

    Attributes:
        name: Full operation name.
        done: Whether the operation finished.
        success_count: Instances processed successfully.
        failure_count: Instances that failed.
        pending_count: Instances not processed yet (0 when not reported).
        create_time: RFC 3339 creation time, if reported.
        end_time: RFC 3339 end time, if reported.
        logs_url: Cloud Logging URL with per-instance errors, if reported.
        api_method_name: e.g. ``google.cloud.healthcare.v1.dicom.DicomService.ImportDicomData``.
        error_code: ``google.rpc.Code`` of the operation's error; None when it has none.
        error_message: The operation's error message; None when it has no error.
        sample_errors: Up to five ``"resource: message"`` strings from the error details.
        cancel_requested: Whether a cancel was requested.
    """

    name: str
    done: bool
    success_count: int = 0
    failure_count: int = 0
    pending_count: int = 0
    create_time: str | None = None
    end_time: str | None = None
    logs_url: str | None = None
    api_method_name: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    sample_errors: tuple[str, ...] = ()
    cancel_requested: bool = False

    @property
    def processed_count(self) -> int:
        """success_count + failure_count."""
        return self.success_count + self.failure_count

    def progress_line(self, elapsed_s: float) -> str:
        """One line for humans: state, counters and elapsed time."""
        state = "done" if self.done else "running"
        return (
            f"{self.name}: {state}, success={self.success_count} failure={self.failure_count} "
            f"pending={self.pending_count}, {elapsed_s:.0f} s elapsed"
        )


def _count(value: object) -> int:
    # int64 counters arrive as JSON strings of digits; absent means zero.
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _sample_errors(error: Mapping[str, Any]) -> tuple[str, ...]:
    samples: list[str] = []
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        entries = detail.get("sampleErrors") if isinstance(detail, Mapping) else None
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, Mapping):
                continue
            inner = entry.get("error")
            inner = inner if isinstance(inner, Mapping) else {}
            resource = entry.get("resource", "?")
            code = inner.get("code", "?")
            samples.append(f"{resource}: {inner.get('message', '')} (code {code})")
            if len(samples) >= _MAX_SAMPLE_ERRORS:
                return tuple(samples)
    return tuple(samples)


def parse_operation(operation: Mapping[str, Any]) -> OperationResult:
    """Turn an ``Operation`` JSON object into an :class:`OperationResult`.

    Args:
        operation: The JSON returned by ``operations.get`` or a submit.

    Returns:
        The parsed result; absent counters are 0.
    """
    metadata = operation.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    counter = metadata.get("counter")
    counter = counter if isinstance(counter, Mapping) else {}
    error = operation.get("error")
    error_code: int | None = None
    error_message: str | None = None
    samples: tuple[str, ...] = ()
    if isinstance(error, Mapping):
        code = error.get("code", 2)
        error_code = code if isinstance(code, int) and not isinstance(code, bool) else 2
        error_message = str(error.get("message", ""))
        samples = _sample_errors(error)
    return OperationResult(
        name=str(operation.get("name", "")),
        done=operation.get("done") is True,
        success_count=_count(counter.get("success")),
        failure_count=_count(counter.get("failure")),
        pending_count=_count(counter.get("pending")),
        create_time=_opt_str(metadata.get("createTime")),
        end_time=_opt_str(metadata.get("endTime")),
        logs_url=_opt_str(metadata.get("logsUrl")),
        api_method_name=_opt_str(metadata.get("apiMethodName")),
        error_code=error_code,
        error_message=error_message,
        sample_errors=samples,
        cancel_requested=metadata.get("cancelRequested") is True,
    )


def apply_failure_policy(
    result: OperationResult, max_failures: int | None, permission_hint: str = ""
) -> OperationResult:
    """Decide whether a finished operation counts as a success.

    * An error with a code other than 3 (cancelled, internal, permission denied, ...) fails.
    * Code 3 means "some instances failed": tolerated when ``max_failures`` is None or
      ``failure_count <= max_failures`` -- but only if ``failure_count > 0``; a code 3 error
      with no failed instance is a request-level error and fails.
    * No error but ``failure_count > max_failures`` fails too (defensive; not expected).

    Args:
        result: A finished operation.
        max_failures: Failed instances tolerated; None tolerates any number.
        permission_hint: Appended to the message of a code 7 (PERMISSION_DENIED) failure.

    Returns:
        ``result`` when it counts as a success.

    Raises:
        OperationFailed: Otherwise.
    """
    too_many = max_failures is not None and result.failure_count > max_failures
    code = result.error_code
    if code is None and not too_many:
        return result
    if code == PARTIAL_FAILURE_CODE and result.failure_count > 0 and not too_many:
        return result
    message = result.error_message or f"{result.failure_count} instance(s) failed"
    if too_many:
        message = (
            f"{message} ({result.failure_count} failed instance(s), max_failures={max_failures})"
        )
    if code == 7 and permission_hint:
        message = f"{message}. {permission_hint}"
    raise OperationFailed(result.name, code or 0, message, result, result.logs_url)


@dataclass(frozen=True)
class PollPolicy:
    """When to ask again whether an operation is done.

    Attributes:
        initial_s: First sleep (also the wait before the first GET after a fresh submit).
        multiplier: Growth of the sleep after each poll.
        max_s: Cap of a backoff or tail sleep.
        max_predicted_s: Cap of a sleep until a predicted finish.
        jitter: Each backoff sleep is shortened by up to this fraction (random).
        lag_budget_s: Acceptable delay between the finish and noticing it ...
        lag_budget_fraction: ... or this fraction of the operation's time, whichever is
            larger; the waiter aims at half of it past the predicted earliest finish.
        tail_fraction: The tail poll interval as a fraction of the elapsed time.
        min_tail_s: Floor of the tail poll interval.
        progress_initial_s: First progress report after this many seconds.
        progress_multiplier: Growth of the interval between progress reports.
        progress_max_s: Cap of that interval.
    """

    initial_s: float = 1.0
    multiplier: float = 1.5
    max_s: float = 30.0
    max_predicted_s: float = 120.0
    jitter: float = 0.1
    lag_budget_s: float = 1.0
    lag_budget_fraction: float = 0.05
    tail_fraction: float = 0.02
    min_tail_s: float = 0.5
    progress_initial_s: float = 10.0
    progress_multiplier: float = 2.0
    progress_max_s: float = 120.0


class _CompletionEstimate:
    """Predicts the earliest finish from the pending counter and the processing rate."""

    def __init__(self, anchor: tuple[float, int] | None) -> None:
        self._anchor = anchor
        self._saw_pending = False

    def seconds_left(self, result: OperationResult, now: float) -> float | None:
        """Seconds until the earliest plausible finish; 0 when only finalising; None: unknown."""
        if result.pending_count <= 0:
            # Pending went from >0 to 0: only finalisation is left. Without ever seeing
            # pending (the API may not report it) there is nothing to predict.
            return 0.0 if self._saw_pending else None
        self._saw_pending = True
        if self._anchor is None:
            self._anchor = (now, result.processed_count)
            return None
        start, processed_then = self._anchor
        done_since = result.processed_count - processed_then
        if done_since <= 0 or now <= start:
            return None
        # One more instance than seen bounds the rate from above: the finish is no earlier.
        fastest_rate = (done_since + 1) / (now - start)
        earliest_finish = start + (done_since + result.pending_count) / fastest_rate
        return earliest_finish - now


class _Schedule:
    """The next sleep: exponential backoff, a predicted finish, or tail polling."""

    def __init__(self, policy: PollPolicy, rand: Callable[[], float]) -> None:
        self._policy = policy
        self._rand = rand
        self._backoff = policy.initial_s
        self._tail: float | None = None

    def next_sleep(self, predicted_s: float | None, elapsed_s: float) -> float:
        policy = self._policy
        if predicted_s is None:
            delay = self._backoff * (1.0 - policy.jitter * self._rand())
            self._backoff = min(self._backoff * policy.multiplier, policy.max_s)
            return delay
        if predicted_s > 0:
            self._tail = None
            # Half the lag budget past the earliest finish: seldom early, never late by more.
            budget = max(
                policy.lag_budget_s, policy.lag_budget_fraction * (elapsed_s + predicted_s)
            )
            return min(max(predicted_s + budget / 2, policy.min_tail_s), policy.max_predicted_s)
        if self._tail is None:
            self._tail = max(policy.min_tail_s, policy.tail_fraction * elapsed_s)
        else:
            self._tail = min(self._tail * policy.multiplier, policy.max_s)
        return self._tail


def wait_for_operation(
    get: Callable[[], Mapping[str, Any]],
    *,
    deadline_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[OperationResult, float], None] | None = None,
    policy: PollPolicy | None = None,
    rand: Callable[[], float] = random.random,
    operation_name: str = "",
    just_submitted: bool = False,
) -> OperationResult:
    """Poll ``get`` until the operation is done or ``deadline_s`` seconds have passed.

    Args:
        get: Returns the operation JSON (wrap transient-error retries inside it).
        deadline_s: Seconds to wait, counted from this call.
        clock: Monotonic clock (seconds).
        sleep: Sleep function (seconds).
        on_progress: Called with the latest result and the elapsed seconds at growing
            intervals (see :class:`PollPolicy`) and once more when the operation is done.
        policy: The poll schedule; defaults to :class:`PollPolicy()`.
        rand: Uniform [0, 1) source for jitter.
        operation_name: Name used in the timeout error before the first GET answered.
        just_submitted: The operation was submitted right now: nothing is processed yet, so
            the first GET waits ``policy.initial_s`` and the rate is measured from this call.

    Returns:
        The finished operation (success or not: judge it with :func:`apply_failure_policy`).

    Raises:
        OperationTimedOut: Still running at the deadline.
    """
    policy = policy or PollPolicy()
    start = clock()
    next_progress = start + policy.progress_initial_s
    progress_interval = policy.progress_initial_s
    estimate = _CompletionEstimate((start, 0) if just_submitted else None)
    schedule = _Schedule(policy, rand)
    name = operation_name
    if just_submitted:
        sleep(min(policy.initial_s, max(deadline_s, 0.0)))
    while True:
        result = parse_operation(get())
        name = result.name or name
        now = clock()
        elapsed = now - start
        if result.done:
            if on_progress is not None:
                on_progress(result, elapsed)
            return result
        remaining = deadline_s - elapsed
        if remaining <= 0:
            raise OperationTimedOut(name, elapsed)
        if on_progress is not None and now >= next_progress:
            on_progress(result, elapsed)
            progress_interval = min(
                progress_interval * policy.progress_multiplier, policy.progress_max_s
            )
            next_progress = now + progress_interval
        delay = schedule.next_sleep(estimate.seconds_left(result, now), elapsed)
        sleep(min(delay, remaining))
