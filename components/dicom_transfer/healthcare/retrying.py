"""Retry policies for calls that failed transiently ("that call failed, repeat it").

Separate from polling (:mod:`dicom_transfer.healthcare.operations`), in the style of
google-api-core's ``retry`` package. Three rules:

* **Reads** (``operations.get``/``list``, ``dicomStores.get``, object metadata, idempotent
  uploads) retry every :class:`~dicom_transfer.errors.Transient` error: 429, 5xx, connection
  reset/refused, socket timeouts. Capped exponential backoff with jitter (1 s, 2 s, 4 s, ... up
  to 30 s, plus up to 1 s of jitter), at most 8 attempts and 120 s. A server's ``Retry-After``
  (``Transient.retry_after_s``) lengthens a sleep to what it asked, within the timeout.
* **Submits** (``dicomStores.import``/``export``) retry only errors after which the server
  provably created nothing: 429 and 503 responses (the request was rejected) and refused
  connections (``Transient.request_sent`` is False). A timeout or reset after the request was
  sent may have created an operation: that is left to the journal/resume path.
* **PERMISSION_DENIED on submit** (IAM still propagating after a fresh grant) retries with a
  slower backoff (5 s x1.5 up to 60 s) for a bounded window, then raises
  :class:`~dicom_transfer.errors.PermissionDenied` with a hint naming the role, the
  bucket/dataset and the Cloud Healthcare Service Agent (:mod:`dicom_transfer.roles`).

One :class:`RetryPolicy` type and one backoff formula serve all three.

Every function takes ``sleep`` and ``clock`` so tests run without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import tenacity

from dicom_transfer.errors import PermissionDenied, Transient

__all__ = [
    "PERMISSION_RETRY",
    "READ_RETRY",
    "SUBMIT_RETRY",
    "RetryPolicy",
    "call_with_retry",
    "is_retryable_read",
    "is_retryable_submit",
    "retry_permission_denied",
]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, bounded by attempts and a timeout.

    In google-api-core's ``Retry`` vocabulary (``initial``, ``multiplier``, ``maximum``,
    ``timeout``). The n-th sleep is ``min(initial_s * multiplier**(n-1) + uniform(0, jitter_s),
    maximum_s)``, cut to what is left of ``timeout_s``.

    Attributes:
        initial_s: First sleep, seconds.
        multiplier: Growth factor of the sleep.
        maximum_s: Cap of one sleep, seconds.
        jitter_s: Random extra seconds added to each sleep.
        max_attempts: Attempts in total (first call included); None = only the timeout bounds.
        timeout_s: No new attempt starts after this many seconds.
    """

    initial_s: float = 1.0
    multiplier: float = 2.0
    maximum_s: float = 30.0
    jitter_s: float = 1.0
    max_attempts: int | None = 8
    timeout_s: float = 120.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Sleep after failed attempt number ``attempt`` (1-based), before the timeout cut."""
        backoff = self.initial_s * self.multiplier ** (attempt - 1)
        return min(backoff + self.jitter_s * rand(), self.maximum_s)

    def longest_s(self) -> float:
        """The longest the retries of one call can sleep in all: every sleep at full jitter,
        within ``timeout_s`` (what a "retrying for up to N s" message promises)."""
        if self.max_attempts is None:
            return self.timeout_s
        sleeps = sum(self.delay(n, lambda: 1.0) for n in range(1, self.max_attempts))
        return min(sleeps, self.timeout_s)


READ_RETRY = RetryPolicy()
"""Idempotent calls: 1 s, 2 s, 4 s, ... up to 30 s, 8 attempts, 120 s."""
SUBMIT_RETRY = RetryPolicy(max_attempts=5, timeout_s=60.0)
"""Submits (only errors after which nothing was created are retried)."""
PERMISSION_RETRY = RetryPolicy(
    initial_s=5.0, multiplier=1.5, maximum_s=60.0, jitter_s=2.0, max_attempts=None
)
"""PERMISSION_DENIED while a fresh grant propagates (typically 2 minutes, sometimes 7+); the
timeout is the request's ``permission_retry_seconds``."""


def is_retryable_read(exc: BaseException) -> bool:
    """Transient errors of an idempotent call: all of them."""
    return isinstance(exc, Transient)


def is_retryable_submit(exc: BaseException) -> bool:
    """Transient errors of a submit: only those after which nothing was created."""
    return isinstance(exc, Transient) and not exc.request_sent


def call_with_retry(
    fn: Callable[[], T],
    *,
    retryable: Callable[[BaseException], bool] = is_retryable_read,
    policy: RetryPolicy = READ_RETRY,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Call ``fn``, repeating it after errors ``retryable`` accepts.

    Args:
        fn: The call.
        retryable: Which exceptions to retry.
        policy: Backoff and limits.
        sleep: Sleep function.
        clock: Monotonic clock for the timeout.
        rand: Uniform [0, 1) source for jitter.
        on_retry: Called with the error and the coming sleep before each retry.

    Returns:
        What ``fn`` returned.

    Raises:
        BaseException: The last error, once it is not retryable or the limits are reached.
    """
    start = clock()

    def stop(state: tenacity.RetryCallState) -> bool:
        out_of_attempts = policy.max_attempts is not None and (
            state.attempt_number >= policy.max_attempts
        )
        return out_of_attempts or clock() - start >= policy.timeout_s

    def wait(state: tenacity.RetryCallState) -> float:
        remaining = max(policy.timeout_s - (clock() - start), 0.0)
        delay = policy.delay(state.attempt_number, rand)
        error = state.outcome.exception() if state.outcome is not None else None
        asked = getattr(error, "retry_after_s", None)
        if isinstance(asked, (int, float)):
            delay = max(delay, float(asked))
        return min(delay, remaining)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            error = state.outcome.exception()
            if error is not None:
                on_retry(error, state.next_action.sleep)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(retryable),
        stop=stop,
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)


def retry_permission_denied(
    fn: Callable[[], T],
    *,
    window_s: float,
    hint: str,
    policy: RetryPolicy = PERMISSION_RETRY,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Call ``fn``, repeating it on PERMISSION_DENIED for up to ``window_s`` seconds.

    Args:
        fn: The submit (already wrapped in its transient-error retry).
        window_s: How long to keep trying (replaces ``policy.timeout_s``); 0 tries once.
        hint: Appended to the final error (see :func:`dicom_transfer.roles.permission_hint`).
        policy: Backoff.
        sleep: Sleep function.
        clock: Monotonic clock.
        rand: Uniform [0, 1) source for jitter.
        on_retry: Called with the error and the coming sleep before each retry.

    Returns:
        What ``fn`` returned.

    Raises:
        PermissionDenied: Still denied when the window closed; the message carries ``hint``.
    """
    start = clock()
    try:
        return call_with_retry(
            fn,
            retryable=lambda exc: isinstance(exc, PermissionDenied),
            policy=replace(policy, timeout_s=window_s),
            sleep=sleep,
            clock=clock,
            rand=rand,
            on_retry=on_retry,
        )
    except PermissionDenied as exc:
        elapsed = clock() - start
        raise PermissionDenied(
            exc.http_status,
            exc.status,
            f"{exc.message} (still denied after {elapsed:.0f} s of retries)",
            hint,
        ) from exc
