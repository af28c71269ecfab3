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
GETs. A timeout bounds the wait; the last sleep is cut so that one final GET happens exactly
when it ends.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dicom_transfer.errors import OperationFailed, OperationTimedOut
from dicom_transfer.healthcare.results import OperationResult, parse_operation

__all__ = [
    "PARTIAL_FAILURE_CODE",
    "PollPolicy",
    "apply_failure_policy",
    "wait_for_operation",
]

PARTIAL_FAILURE_CODE = 3
"""``google.rpc.Code.INVALID_ARGUMENT``: what a finished import/export with failed instances has."""


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
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[OperationResult, float], None] | None = None,
    policy: PollPolicy | None = None,
    rand: Callable[[], float] = random.random,
    operation_name: str = "",
    just_submitted: bool = False,
) -> OperationResult:
    """Poll ``get`` until the operation is done or ``timeout_s`` seconds have passed.

    Args:
        get: Returns the operation JSON (wrap transient-error retries inside it).
        timeout_s: Seconds to wait, counted from this call.
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
        OperationTimedOut: Still running when the timeout ended.
    """
    policy = policy or PollPolicy()
    start = clock()
    next_progress = start + policy.progress_initial_s
    progress_interval = policy.progress_initial_s
    estimate = _CompletionEstimate((start, 0) if just_submitted else None)
    schedule = _Schedule(policy, rand)
    name = operation_name
    if just_submitted:
        sleep(min(policy.initial_s, max(timeout_s, 0.0)))
    while True:
        result = parse_operation(get())
        name = result.name or name
        now = clock()
        elapsed = now - start
        if result.done:
            if on_progress is not None:
                on_progress(result, elapsed)
            return result
        remaining = timeout_s - elapsed
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
