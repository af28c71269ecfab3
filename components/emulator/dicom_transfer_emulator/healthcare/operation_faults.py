"""Operation faults: make the emulated Healthcare operations slow or fail, on purpose.

The Healthcare side's operation runner (:mod:`.transfers`) reads them; request faults (HTTP
errors, delays, resets) belong to the server (:mod:`dicom_transfer_emulator.server.faults`).
Both are written in one text syntax (``--fault``, ``POST /_emulator/faults``); the operation
faults are::

    operation-seconds=SECONDS            every operation takes at least this long
    instance-seconds=SECONDS             plus this long per instance processed
    fail-operation=CODE[:MESSAGE]        the next operation fails with google.rpc CODE
    fail-instance=[OPERATION:]uid:UID[:CODE[:MESSAGE]]
    fail-instance=[OPERATION:]path:GLOB[:CODE[:MESSAGE]]
        every matching instance fails (until removed) with google.rpc CODE (default 13)
        OPERATION   import or export (default: both)
        UID         a SOP Instance UID (digits and dots)
        GLOB        fnmatch pattern without ':' on the instance's path (see below)
    examples: fail-instance=uid:1.2.826.0.1.3680043.8.498.1    fail-instance=path:*CT_small*
              fail-instance=export:uid:1.2.3.4:13:disk on fire

Operation faults are never scoped: the operation runner serves every client.

**Instance faults** fail the import or the export of single instances, every time until
removed: an instance whose SOP Instance UID equals the fault's UID, or whose path matches its
glob (:func:`fnmatch.fnmatchcase`, ``*`` also crosses ``/``; an import's path is the source
object's name in its bucket, e.g. ``dir/CT_small.dcm``, an export's the instance's DICOMweb path
``/studies/S/series/R/instances/I``), counts as a failure of its operation with an ERROR
log entry (the google.rpc code and message) at the operation's ``logsUrl``; the other
instances succeed and the operation ends with ``error`` code 3 naming the failed count, as
Google's service reports per-instance errors ("Troubleshooting DICOM import/export": the
operation's error points at Cloud Logging, one entry per failed instance).
"""

from __future__ import annotations

import fnmatch
import itertools
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from dicom_transfer_emulator.errors import RPC_CODE_NAMES, RpcCode, invalid_argument

# DICOM PS3.5 §9.1: a UID is digits and dots, at most 64 characters.
_UID = re.compile(r"[0-9.]{1,64}")
#: The operations an instance fault can select (None in :class:`InstanceFailure`: both).
INSTANCE_OPERATIONS = ("import", "export")
#: The keys (text before ``=``) of the operation faults' specs.
OPERATION_KEYS = ("operation-seconds", "instance-seconds", "fail-operation", "fail-instance")
#: The default code of an injected failure.
_INTERNAL = RpcCode.INTERNAL


@dataclass(frozen=True)
class OperationFailure:
    """A queued "fail the next operation" fault.

    Attributes:
        code: google.rpc code for ``operation.error.code`` (e.g. 13 INTERNAL).
        message: ``operation.error.message``.
        fault_id: Identifier (shared numbering with every fault, for removal).
    """

    code: int
    message: str
    fault_id: int = 0

    @property
    def spec(self) -> str:
        """The fault in the text syntax: ``fail-operation=CODE:MESSAGE``."""
        return f"fail-operation={self.code}:{self.message}"

    def to_json(self) -> dict[str, Any]:
        """The operation's ``error`` (google.rpc.Status): ``{"code", "message"}``."""
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class InstanceFailure:
    """A per-instance fault: every matching instance fails, until the fault is removed.

    Attributes:
        operation: ``"import"``, ``"export"`` or None (both).
        uid: SOP Instance UID an instance must have (None when ``path`` selects).
        path: fnmatch glob on the instance's path (None when ``uid`` selects): an import's
            source object name, an export's ``/studies/S/series/R/instances/I``.
        code: google.rpc code of the instance's log entry (1-16).
        message: The log entry's message.
        fault_id: Identifier (shared numbering with every fault, for removal).
    """

    operation: str | None
    uid: str | None
    path: str | None
    code: int
    message: str
    fault_id: int = 0

    def matches(self, operation: str, path: str, uid: str | None) -> bool:
        """Whether the fault fails this instance.

        Args:
            operation: ``"import"`` or ``"export"``.
            path: The instance's path (see the class docstring).
            uid: Its SOP Instance UID (None when not known, e.g. unreadable data).
        """
        if self.operation not in (None, operation):
            return False
        if self.uid is not None:
            return uid == self.uid
        return self.path is not None and fnmatch.fnmatchcase(path, self.path)

    @property
    def spec(self) -> str:
        """The fault in the text syntax (``fail-instance=…``, code and message included)."""
        operation = f"{self.operation}:" if self.operation else ""
        selector = f"uid:{self.uid}" if self.uid is not None else f"path:{self.path}"
        return f"fail-instance={operation}{selector}:{self.code}:{self.message}"


def parse_instance_failure(value: str) -> InstanceFailure:
    """Parse the value of ``fail-instance=[OPERATION:]uid|path:PATTERN[:CODE[:MESSAGE]]``.

    Args:
        value: E.g. ``"uid:1.2.3.4"``, ``"export:path:*/instances/1.2.3:13:disk on fire"``.

    Returns:
        The fault (not yet added to an injector; ``fault_id`` 0).

    Raises:
        ApiException: 400 naming the problem and the expected form.
    """
    form = (
        "expected fail-instance=[import:|export:]uid:UID[:CODE[:MESSAGE]] or "
        "fail-instance=[import:|export:]path:GLOB[:CODE[:MESSAGE]], e.g. "
        "fail-instance=export:uid:1.2.3.4:13:disk on fire"
    )
    parts = value.split(":")
    operation = parts.pop(0) if parts and parts[0] in INSTANCE_OPERATIONS else None
    if len(parts) < 2 or parts[0] not in ("uid", "path") or not parts[1]:
        raise invalid_argument(f"Invalid fault fail-instance={value!r}: {form}.")
    code_text = parts[2] if len(parts) > 2 else ""
    if code_text and not code_text.isdigit():
        raise invalid_argument(
            f"Invalid fault fail-instance={value!r}: CODE {code_text!r}; {form}."
        )
    message = ":".join(parts[3:]) or None
    return _instance_failure(operation, parts[0], parts[1], int(code_text or _INTERNAL), message)


def _instance_failure(
    operation: str | None, selector: str, pattern: str, code: int, message: str | None
) -> InstanceFailure:
    """Validate and build an instance fault (``selector`` is ``"uid"`` or ``"path"``)."""
    if operation not in (None, *INSTANCE_OPERATIONS):
        raise invalid_argument(
            f"Invalid instance fault operation {operation!r}: expected import, export or none."
        )
    if selector == "uid" and not _UID.fullmatch(pattern):
        raise invalid_argument(
            f"Invalid instance fault UID {pattern!r}: expected a DICOM UID (digits and dots, "
            "at most 64 characters)."
        )
    _check_rpc_code(code)
    noun = operation or "import/export"
    return InstanceFailure(
        operation,
        pattern if selector == "uid" else None,
        pattern if selector == "path" else None,
        code,
        message or f"{RPC_CODE_NAMES[code]}: instance {noun} failed (injected by the emulator)",
    )


def _check_rpc_code(code: int) -> None:
    if code not in RPC_CODE_NAMES or code == 0:
        raise invalid_argument(f"Invalid error code {code}: expected a google.rpc code 1-16.")


def _operation_failure(code: int, message: str | None) -> OperationFailure:
    _check_rpc_code(code)
    return OperationFailure(
        code, message or f"{RPC_CODE_NAMES[code]}: operation failed (injected by the emulator)."
    )


def _seconds(spec: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise invalid_argument(f"Invalid fault {spec!r}: seconds expected.") from None
    if seconds < 0:
        raise invalid_argument(f"Invalid fault {spec!r}: seconds must be >= 0.")
    return seconds


@dataclass(frozen=True)
class _Parsed:
    """One parsed operation-fault spec: a timing change, an operation or an instance fault."""

    timing: dict[str, float]
    operation: OperationFailure | None = None
    instance: InstanceFailure | None = None


def _parse(spec: str) -> _Parsed:
    key, _, value = spec.partition("=")
    key = key.strip()
    if key in ("operation-seconds", "instance-seconds"):
        return _Parsed({key.replace("-", "_"): _seconds(spec, value)})
    if key == "fail-operation":
        code_text, _, message = value.partition(":")
        if not code_text.strip().isdigit():
            raise invalid_argument(f"Invalid fault {spec!r}: expected fail-operation=CODE[:MSG].")
        return _Parsed({}, operation=_operation_failure(int(code_text), message or None))
    if key == "fail-instance":
        return _Parsed({}, instance=parse_instance_failure(value))
    raise invalid_argument(f"Invalid fault {spec!r}: expected one of {', '.join(OPERATION_KEYS)}.")


def is_operation_spec(spec: str) -> bool:
    """Whether ``spec`` is an operation fault (its key is one of :data:`OPERATION_KEYS`)."""
    return spec.partition("=")[0].strip() in OPERATION_KEYS


class OperationFaults:
    """Thread-safe store of operation faults, read by the Healthcare operation runner.

    The runner reads :attr:`operation_seconds` and :attr:`instance_seconds`, calls
    :meth:`take_operation_failure` when an operation starts and :meth:`instance_failure` for
    each instance it processes.

    Args:
        ids: Source of fault identifiers (shared with the request faults, so that one
            ``DELETE /_emulator/faults/{id}`` names one fault); a private counter by default.
    """

    def __init__(self, ids: Iterator[int] | None = None) -> None:
        self._lock = threading.Lock()
        self._ids = ids if ids is not None else itertools.count(1)
        self._operation_seconds = 0.0
        self._instance_seconds = 0.0
        self._operation_failures: deque[OperationFailure] = deque()
        self._instance_failures: list[InstanceFailure] = []

    # -- text syntax ----------------------------------------------------------------------

    @staticmethod
    def validate_spec(spec: str) -> None:
        """Raise ApiException 400 when ``spec`` is not a valid operation fault."""
        _parse(spec)

    def add_spec(self, spec: str) -> int | None:
        """Apply one operation fault in the text syntax of the module docstring.

        Returns:
            The new fault's id (``fail-operation``, ``fail-instance``); None for timing.

        Raises:
            ApiException: 400 when the text is malformed.
        """
        parsed = _parse(spec)
        if parsed.timing:
            self.set_operation_timing(**parsed.timing)
            return None
        if parsed.operation is not None:
            return self._queue_operation_failure(parsed.operation).fault_id
        assert parsed.instance is not None
        return self._add_instance_failure(parsed.instance).fault_id

    def listing(self) -> list[tuple[int | None, str]]:
        """Every active operation fault as ``(id, spec)`` (timing first, id None)."""
        with self._lock:
            timing: list[tuple[int | None, str]] = [
                (None, f"{key}={value:g}")
                for key, value in (
                    ("operation-seconds", self._operation_seconds),
                    ("instance-seconds", self._instance_seconds),
                )
                if value
            ]
            return [
                *timing,
                *((f.fault_id, f.spec) for f in self._operation_failures),
                *((f.fault_id, f.spec) for f in self._instance_failures),
            ]

    # -- timing ---------------------------------------------------------------------------

    @property
    def operation_seconds(self) -> float:
        """Minimum duration of every long-running operation, in seconds."""
        with self._lock:
            return self._operation_seconds

    @property
    def instance_seconds(self) -> float:
        """Extra duration per instance processed by an operation, in seconds."""
        with self._lock:
            return self._instance_seconds

    def set_operation_timing(
        self, operation_seconds: float | None = None, instance_seconds: float | None = None
    ) -> None:
        """Set how long operations take (arguments left None are unchanged).

        Raises:
            ApiException: 400 for negative values.
        """
        for value in (operation_seconds, instance_seconds):
            if value is not None and value < 0:
                raise invalid_argument("Operation timing must be >= 0 seconds.")
        with self._lock:
            if operation_seconds is not None:
                self._operation_seconds = float(operation_seconds)
            if instance_seconds is not None:
                self._instance_seconds = float(instance_seconds)

    # -- failing operations ---------------------------------------------------------------

    def fail_next_operation(self, code: int, message: str | None = None) -> OperationFailure:
        """Queue a failure: the next operation started ends with ``error`` = (code, message).

        Call it N times to fail the next N operations.

        Args:
            code: google.rpc code 1-16 (e.g. 13 INTERNAL, 7 PERMISSION_DENIED).
            message: Error message; a default naming the code when omitted.

        Raises:
            ApiException: 400 for a code outside 1-16.
        """
        return self._queue_operation_failure(_operation_failure(code, message))

    def _queue_operation_failure(self, failure: OperationFailure) -> OperationFailure:
        with self._lock:
            queued = replace(failure, fault_id=next(self._ids))
            self._operation_failures.append(queued)
        return queued

    def take_operation_failure(self) -> OperationFailure | None:
        """Pop the next queued operation failure (the operation runner calls this once per
        operation it starts); None when none is queued."""
        with self._lock:
            return self._operation_failures.popleft() if self._operation_failures else None

    def pending_operation_failures(self) -> list[OperationFailure]:
        """Return the queued operation failures (a snapshot)."""
        with self._lock:
            return list(self._operation_failures)

    # -- failing instances ----------------------------------------------------------------

    def fail_instances(
        self,
        *,
        uid: str | None = None,
        path: str | None = None,
        operation: str | None = None,
        code: int = _INTERNAL,
        message: str | None = None,
    ) -> InstanceFailure:
        """Fail the import or export of every matching instance until removed.

        Give exactly one of ``uid`` and ``path``.

        Args:
            uid: A SOP Instance UID.
            path: fnmatch glob on an import's source object name or an export's
                ``/studies/S/series/R/instances/I``.
            operation: ``"import"``, ``"export"`` or None (both).
            code: google.rpc code of the instance's log entry (1-16; default 13 INTERNAL).
            message: The log entry's message; a default naming the code when omitted.

        Returns:
            The active fault (its ``fault_id`` removes it: :meth:`remove`).

        Raises:
            ApiException: 400 for a malformed selector, operation or code.
        """
        if (uid is None) == (path is None):
            raise invalid_argument("fail_instances: give exactly one of uid and path.")
        selector, pattern = ("uid", uid) if uid is not None else ("path", path or "")
        return self._add_instance_failure(
            _instance_failure(operation, selector, pattern, code, message)
        )

    def _add_instance_failure(self, failure: InstanceFailure) -> InstanceFailure:
        with self._lock:
            added = replace(failure, fault_id=next(self._ids))
            self._instance_failures.append(added)
        return added

    def instance_failure(
        self, operation: str, path: str, uid: str | None = None
    ) -> InstanceFailure | None:
        """The first instance fault that fails this instance, or None.

        Args:
            operation: ``"import"`` or ``"export"``.
            path: An import's source object name, an export's
                ``/studies/S/series/R/instances/I``.
            uid: The instance's SOP Instance UID (None when not known).
        """
        with self._lock:
            return next(
                (f for f in self._instance_failures if f.matches(operation, path, uid)), None
            )

    def instance_failures(self) -> list[InstanceFailure]:
        """Return the active instance faults (a snapshot)."""
        with self._lock:
            return list(self._instance_failures)

    # -- removal --------------------------------------------------------------------------

    def remove(self, fault_id: int) -> bool:
        """Remove queued operation failure or instance fault ``fault_id``; whether it existed."""
        with self._lock:
            before = len(self._operation_failures) + len(self._instance_failures)
            self._operation_failures = deque(
                f for f in self._operation_failures if f.fault_id != fault_id
            )
            self._instance_failures = [f for f in self._instance_failures if f.fault_id != fault_id]
            return len(self._operation_failures) + len(self._instance_failures) != before

    def reset(self) -> None:
        """Remove every operation fault and restore instant operations."""
        with self._lock:
            self._operation_failures.clear()
            self._instance_failures.clear()
            self._operation_seconds = 0.0
            self._instance_seconds = 0.0


__all__ = [
    "INSTANCE_OPERATIONS",
    "OPERATION_KEYS",
    "InstanceFailure",
    "OperationFailure",
    "OperationFaults",
    "is_operation_spec",
    "parse_instance_failure",
]
