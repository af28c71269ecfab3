"""A long-running ``Operation`` as dicom_transfer reads it: counters, times, errors.

Parsed from the JSON of ``operations.get``/``list`` or a submit (shape: the ``Operation`` and
``OperationMetadata`` schemas of the ``healthcare`` discovery documents). Imports nothing from
dicom_transfer, so that :mod:`dicom_transfer.errors` can carry a result without a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["OperationResult", "parse_operation"]

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


def epoch_seconds(rfc3339: str | None) -> float | None:
    """An operation timestamp (RFC 3339, ``Z`` or an offset, nanosecond fractions allowed, as
    the API writes ``createTime``/``endTime``) in epoch seconds; None if absent or unreadable.
    """
    if not rfc3339:
        return None
    try:
        return datetime.fromisoformat(rfc3339.strip()).timestamp()
    except ValueError:
        return None
