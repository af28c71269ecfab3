"""Retry policies for calls that failed transiently ("that call failed, repeat it").

Separate from polling (:mod:`dicom_transfer.healthcare.operations`), in the style of
google-api-core's ``retry`` package. Three rules:

* **Reads** (``operations.get``/``list``, ``dicomStores.get``, object metadata, idempotent
  uploads) retry every :class:`~dicom_transfer.errors.Transient` error: 429, 5xx, connection
  reset/refused, socket timeouts. Capped exponential backoff with jitter (1 s, 2 s, 4 s, ... up
  to 30 s, plus up to 1 s of jitter), at most 8 attempts and 120 s. A server's ``Retry-After``
  (``Transient.retry_after_s``) lengthens a sleep to what it asked, within the deadline.
* **Submits** (``dicomStores.import``/``export``) retry only errors after which the server
  provably created nothing: 429 and 503 responses (the request was rejected) and refused
  connections (``Transient.request_sent`` is False). A timeout or reset after the request was
  sent may have created an operation: that is left to the journal/resume path.
* **PERMISSION_DENIED on submit** (IAM still propagating after a fresh grant) retries with a
  slower backoff (5 s x1.5 up to 60 s) for a bounded window, then raises
  :class:`~dicom_transfer.errors.PermissionDenied` naming the role, the bucket/dataset and the
  Cloud Healthcare Service Agent.

Every function takes ``sleep`` and ``clock`` so tests run without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from dicom_transfer.errors import PermissionDenied, Transient

__all__ = [
    "PERMISSION_RETRY",
    "READ_RETRY",
    "SUBMIT_RETRY",
    "PermissionRetryPolicy",
    "RetryPolicy",
    "call_with_retry",
    "is_retryable_read",
    "is_retryable_submit",
    "permission_hint",
    "retry_permission_denied",
]

T = TypeVar("T")

SERVICE_AGENT_FORM = "service-PROJECT_NUMBER@gcp-sa-healthcare.iam.gserviceaccount.com"


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter for transient errors.

    The n-th sleep is ``min(initial_s * exp_base**(n-1) + uniform(0, jitter_s), max_s)``.

    Attributes:
        initial_s: First sleep.
        exp_base: Growth factor.
        max_s: Cap of one sleep.
        jitter_s: Random extra seconds added to each sleep.
        max_attempts: Attempts in total (first call included).
        deadline_s: No new attempt starts after this many seconds.
    """

    initial_s: float = 1.0
    exp_base: float = 2.0
    max_s: float = 30.0
    jitter_s: float = 1.0
    max_attempts: int = 8
    deadline_s: float = 120.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Sleep after failed attempt number ``attempt`` (1-based)."""
        backoff = self.initial_s * self.exp_base ** (attempt - 1)
        return min(backoff + self.jitter_s * rand(), self.max_s)


READ_RETRY = RetryPolicy()
SUBMIT_RETRY = RetryPolicy(max_attempts=5, deadline_s=60.0)


@dataclass(frozen=True)
class PermissionRetryPolicy:
    """Backoff while a fresh IAM grant propagates (typically 2 minutes, sometimes 7+).

    Attributes:
        initial_s: First sleep.
        multiplier: Growth factor.
        max_s: Cap of one sleep.
        jitter_s: Random extra seconds added to each sleep.
    """

    initial_s: float = 5.0
    multiplier: float = 1.5
    max_s: float = 60.0
    jitter_s: float = 2.0


PERMISSION_RETRY = PermissionRetryPolicy()


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
        clock: Monotonic clock for the deadline.
        rand: Uniform [0, 1) source for jitter.
        on_retry: Called with the error and the coming sleep before each retry.

    Returns:
        What ``fn`` returned.

    Raises:
        BaseException: The last error, once it is not retryable or the limits are reached.
    """
    start = clock()

    def stop(state: tenacity.RetryCallState) -> bool:
        return state.attempt_number >= policy.max_attempts or clock() - start >= policy.deadline_s

    def wait(state: tenacity.RetryCallState) -> float:
        remaining = max(policy.deadline_s - (clock() - start), 0.0)
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


def _bucket_of(uri: object) -> str | None:
    if isinstance(uri, str) and uri.startswith("gs://"):
        return uri[len("gs://") :].partition("/")[0] or None
    return None


def permission_hint(kind: str, store_name: str, body: Mapping[str, Any]) -> str:
    """Which grant is most likely missing for this request.

    Args:
        kind: ``import`` or ``export``.
        store_name: The DICOM store's resource name.
        body: The request body.

    Returns:
        A sentence naming roles, buckets/datasets and the service agent.
    """
    project = store_name.split("/")[1] if store_name.startswith("projects/") else "PROJECT"
    agent = f"{SERVICE_AGENT_FORM} (the Cloud Healthcare Service Agent of project {project})"
    grants: list[str] = []
    source = body.get("gcsSource")
    if isinstance(source, Mapping) and (bucket := _bucket_of(source.get("uri"))):
        grants.append(f"roles/storage.objectViewer on bucket {bucket} (import source)")
    destination = body.get("gcsDestination")
    if isinstance(destination, Mapping) and (bucket := _bucket_of(destination.get("uriPrefix"))):
        grants.append(
            f"roles/storage.objectAdmin on bucket {bucket} (export destination; "
            "objectCreator cannot overwrite)"
        )
    bigquery = body.get("bigqueryDestination")
    if isinstance(bigquery, Mapping):
        table = str(bigquery.get("tableUri", ""))
        dataset = ".".join(table.removeprefix("bq://").split(".")[:-1]) or "the BigQuery dataset"
        grants.append(
            f"roles/bigquery.dataEditor on BigQuery dataset {dataset} and roles/bigquery.jobUser "
            f"on project {project}"
        )
    filter_config = body.get("filterConfig")
    if isinstance(filter_config, Mapping) and (
        bucket := _bucket_of(filter_config.get("resourcePathsGcsUri"))
    ):
        grants.append(f"roles/storage.objectViewer on bucket {bucket} (filter file)")
    needed = "; ".join(grants) if grants else "access to the request's buckets"
    return (
        f"Likely missing: {needed}, granted to {agent}. The caller also needs "
        f"healthcare.dicomStores.{kind} on {store_name}. Fresh grants can take 2-7 minutes "
        "to propagate: raise permission_retry_seconds to wait longer (ServiceAgentGrants "
        "makes the service-agent grants)"
    )


def retry_permission_denied(
    fn: Callable[[], T],
    *,
    window_s: float,
    hint: str,
    policy: PermissionRetryPolicy = PERMISSION_RETRY,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Call ``fn``, repeating it on PERMISSION_DENIED for up to ``window_s`` seconds.

    Args:
        fn: The submit (already wrapped in its transient-error retry).
        window_s: How long to keep trying; 0 tries once.
        hint: Appended to the final error (see :func:`permission_hint`).
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

    def stop(_state: tenacity.RetryCallState) -> bool:
        return clock() - start >= window_s

    def wait(state: tenacity.RetryCallState) -> float:
        backoff = policy.initial_s * policy.multiplier ** (state.attempt_number - 1)
        delay = min(backoff + policy.jitter_s * rand(), policy.max_s)
        return max(min(delay, window_s - (clock() - start)), 0.0)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            error = state.outcome.exception()
            if error is not None:
                on_retry(error, state.next_action.sleep)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(PermissionDenied),
        stop=stop,
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except PermissionDenied as exc:
        elapsed = clock() - start
        raise PermissionDenied(
            exc.http_status,
            exc.status,
            f"{exc.message} (still denied after {elapsed:.0f} s of retries)",
            hint,
        ) from exc
