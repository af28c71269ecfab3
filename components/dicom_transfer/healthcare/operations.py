"""Long-running operations: parse them, poll them until done, judge the outcome.

Polling only ("not done yet, ask again"). Retrying a failed ``operations.get`` call is a
separate policy (:mod:`dicom_transfer.healthcare.retrying`) applied inside the ``get`` callable.

Poll schedule (:class:`PollPolicy`). After a fresh submit the first GET waits ``initial_s``
(the submit's answer already said "running"); a resumed operation is read at once. Sleeps are
measured on the operation's *age*: from ``metadata.createTime`` when the caller passes a wall
clock (so a resumed operation continues where its age puts it, not from the start), else from
the call.

* **Moving counters.** When the operation reports ``pending`` and the counters move, the
  processing rate predicts when it finishes: the waiter sleeps until the *earliest* plausible
  finish (the rate rounded up by one instance) plus half the lag budget (max(1 s, 5 % of the
  operation's time)), at most ``max_predicted_s`` at a time. Once the prediction has passed,
  or ``pending`` reached 0, it polls the tail at ``tail_fraction`` of the age (at least
  ``min_tail_s``), growing x1.5 up to ``max_s``. Completion is seen within a few percent of the
  duration with a handful of GETs.
* **No moving counter** (one file: its counter moves only when it is finished; or an API that
  omits ``pending``). Nothing predicts the finish, so the only lever is how the sleeps grow.
  Each sleep is ``initial_s + flat_fraction * (age - initial_s)``, at most ``flat_max_s``,
  shortened by up to ``jitter``: a x(1 + ``flat_fraction``) backoff from ``initial_s``, kept
  on the age. The finish is seen at most one sleep late: 1 s + 20 % of the time past the
  first second, at most 90 s.

Why 0.2 and 90 s. gcloud's waiter (``googlecloudsdk.api_lib.util.waiter.WaitFor`` defaults:
``pre_start_sleep_ms=1000``, ``sleep_ms=2000``, ``exponential_sleep_multiplier=1.4``,
``wait_ceiling_ms=180000``, ``jitter_ms=1000``) sleeps 1 s, then 2 s growing x1.4 up to 180 s,
each sleep lengthened by up to 1 s: its sleep at age ``t`` is ``2 + 0.4 (t - 1)`` s. Ours is half
of that at every age and its cap is half of gcloud's, so the longest possible lag at any age is
half of gcloud's, and so is the lag averaged over durations (for one given duration either
waiter may be lucky and poll just after the finish). The price is GETs, and no schedule avoids
it: without a moving counter a waiter knows nothing but the age, and for a backoff growing
x(1 + f) the lag is about ``f`` of the duration while the GETs number about ``ln(duration) /
ln(1 + f)``. Half the lag means two polls per gcloud interval: about ln 1.4 / ln 1.2 = 1.85
times gcloud's GETs (twice as many once both are capped). Matching gcloud's GETs instead
(``flat_fraction=0.4``, ``flat_max_s=180``) gives gcloud's lag. We chose the lag: one
operation's GETs are a few per minute, far below any quota, while the lag is a user waiting.

A timeout bounds the wait; the last sleep is cut so that one final GET happens exactly when it
ends.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dicom_transfer.errors import OperationFailed, OperationTimedOut
from dicom_transfer.healthcare.results import OperationResult, epoch_seconds, parse_operation

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
            f"{message} ({result.failure_count} failed instance(s), max_failures={max_failures}). "
            f"To accept this outcome set max_failures={result.failure_count} (or more), or "
            "max_failures=None to accept any number of failed instances"
        )
    if code == 7 and permission_hint:
        message = f"{message}. {permission_hint}"
    raise OperationFailed(result.name, code or 0, message, result, result.logs_url)


@dataclass(frozen=True)
class PollPolicy:
    """When to ask again whether an operation is done.

    Attributes:
        initial_s: The wait before the first GET after a fresh submit, and the first sleep
            without moving counters.
        flat_fraction: Without moving counters each sleep is ``initial_s + flat_fraction *
            (age - initial_s)`` (see the module docstring for why 0.2) ...
        flat_max_s: ... and at most this long.
        multiplier: Growth of the tail sleep after a predicted finish.
        max_s: Cap of that tail sleep.
        max_predicted_s: Cap of a sleep until a predicted finish.
        jitter: Each sleep without moving counters is shortened by up to this fraction
            (random), so that operations submitted together do not poll together.
        lag_budget_s: Acceptable delay between the finish and noticing it ...
        lag_budget_fraction: ... or this fraction of the operation's time, whichever is
            larger; the waiter aims at half of it past the predicted earliest finish.
        tail_fraction: The tail poll interval as a fraction of the age.
        min_tail_s: Floor of the tail poll interval.
        progress_initial_s: First progress report after this many seconds.
        progress_multiplier: Growth of the interval between progress reports.
        progress_max_s: Cap of that interval.
    """

    initial_s: float = 1.0
    flat_fraction: float = 0.2
    flat_max_s: float = 90.0
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
    """The next sleep: growing with the age, until a predicted finish, or tail polling."""

    def __init__(self, policy: PollPolicy, rand: Callable[[], float]) -> None:
        self._policy = policy
        self._rand = rand
        self._tail: float | None = None

    def next_sleep(self, predicted_s: float | None, age_s: float) -> float:
        """Seconds to sleep; ``predicted_s`` from :class:`_CompletionEstimate`."""
        policy = self._policy
        if predicted_s is None:
            # A fraction of the age, not of the previous sleep: a resumed operation starts at
            # the sleep its age calls for, and slow GETs do not stretch the schedule.
            nominal = policy.initial_s + policy.flat_fraction * max(age_s - policy.initial_s, 0.0)
            return min(nominal, policy.flat_max_s) * (1.0 - policy.jitter * self._rand())
        if predicted_s > 0:
            self._tail = None
            # Half the lag budget past the earliest finish: seldom early, never late by more.
            budget = max(policy.lag_budget_s, policy.lag_budget_fraction * (age_s + predicted_s))
            return min(max(predicted_s + budget / 2, policy.min_tail_s), policy.max_predicted_s)
        if self._tail is None:
            self._tail = max(policy.min_tail_s, policy.tail_fraction * age_s)
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
    wall_clock: Callable[[], float] | None = None,
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
        wall_clock: Epoch-seconds clock. When given, the schedule measures the operation's
            age from its ``metadata.createTime`` (the age at the first GET, carried on with
            ``clock``); a clock skew that makes the operation look younger than this call is
            ignored, one that makes it look older lengthens sleeps by ``flat_fraction`` of
            the skew. None: the age is counted from this call.

    Returns:
        The finished operation (success or not: judge it with :func:`apply_failure_policy`).

    Raises:
        OperationTimedOut: Still running when the timeout ended.
    """
    policy = policy or PollPolicy()
    start = clock()
    born = start  # on ``clock``: when the operation was created, as far as we know
    aged = wall_clock is None
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
        if not aged and wall_clock is not None:
            aged = True
            created = epoch_seconds(result.create_time)
            if created is not None:
                born = min(born, now - (wall_clock() - created))
        remaining = timeout_s - elapsed
        if remaining <= 0:
            raise OperationTimedOut(name, elapsed)
        if on_progress is not None and now >= next_progress:
            on_progress(result, elapsed)
            progress_interval = min(
                progress_interval * policy.progress_multiplier, policy.progress_max_s
            )
            next_progress = now + progress_interval
        delay = schedule.next_sleep(estimate.seconds_left(result, now), now - born)
        sleep(min(delay, remaining))
