"""Fault injection: make the emulator misbehave on purpose, the way Google's services do.

Two kinds of faults exist.

**Request faults** act on the next N HTTP requests a rule selects: answer them with an
error status (429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, or any 4xx/5xx, in Google's JSON error
shape), delay them, reset the TCP connection instead of answering, or perform them and then
reset the connection instead of sending the answer (the request took effect but the client
saw a dropped connection). A rule selects requests

* by HTTP method and path: paths are the raw request paths (no query string), matched with
  :func:`re.search`; and/or
* by **API method name**: the discovery document ``id`` of the method the request routes to,
  e.g. ``storage.objects.insert`` (uploads, whichever upload protocol),
  ``storage.objects.get`` (metadata and downloads),
  ``healthcare.projects.locations.datasets.dicomStores.import``,
  ``healthcare.projects.locations.datasets.operations.get``.

**Scopes** let tests share one emulator, even concurrently: a rule registered with a scope
ID applies only to requests carrying the header ``x-emulator-fault-scope: ID`` (the role
storage-testbench's ``x-retry-test-id`` plays); rules without a scope apply to every request.
A test picks a unique ID, registers its faults under it and sends the header from its
clients; other tests never see those faults, and ``DELETE /_emulator/faults?scope=ID`` (or
:meth:`FaultInjector.remove_scope`) forgets them without touching anyone else's. Scope IDs
are 1-128 characters of ``A-Z a-z 0-9 _ . -``.

Admin paths (``/_emulator/…``) are never faulted. Several delay rules add up; the first
matching status/reset rule wins.

**Operation faults** are read by the Healthcare side's operation runner through
:class:`FaultInjector` (``ctx.faults``): how long an operation takes (seconds per operation
plus seconds per instance) and "fail the next operation with this google.rpc code and
message".

**Instance faults** fail the import or the export of single instances, every time until
removed: an instance whose SOP Instance UID equals the fault's UID, or whose path matches its
glob (:func:`fnmatch.fnmatchcase`, ``*`` also crosses ``/``; an import's path is the source
object's name in its bucket, e.g. ``dir/CT_small.dcm``, an export's the instance's DICOMweb path
``/studies/S/series/R/instances/I``), counts as a failure of its operation with an ERROR
log entry (the google.rpc code and message) at the operation's ``logsUrl``; the other
instances succeed and the operation ends with ``error`` code 3 naming the failed count, as
Google's service reports per-instance errors ("Troubleshooting DICOM import/export": the
operation's error points at Cloud Logging, one entry per failed instance).

Python API::

    emu.faults.fail_requests("POST", r":import$", status=503, times=2)
    emu.faults.delay_requests("GET", r"/operations/", seconds=0.5)
    emu.faults.reset_connections("*", r"^/storage/v1/b$", times=1)
    emu.faults.reset_connections("POST", r"/b/journal/o$", after=True)
    emu.faults.fail_requests(api_method="storage.objects.insert", status=503, scope="test-42")
    emu.faults.remove_scope("test-42")
    emu.faults.set_operation_timing(operation_seconds=2.0, instance_seconds=0.01)
    emu.faults.fail_next_operation(13, "internal error")
    emu.faults.fail_instances(uid="1.2.3.4", operation="export", code=13, message="disk")
    emu.faults.fail_instances(path="*/CT_small.dcm")

Command line (``--fault``, repeatable) and admin endpoint (``POST /_emulator/faults``
with ``{"spec": "..."}``) use one text syntax, parsed by :func:`parse_fault_spec`::

    [SCOPE@]METHOD:PATH_REGEX=ACTION[xCOUNT]
    [SCOPE@]API_METHOD=ACTION[xCOUNT]
        SCOPE       only requests with header x-emulator-fault-scope: SCOPE (default: all)
        METHOD      GET, POST, … or * (any)
        API_METHOD  a discovery method id, e.g. storage.objects.insert
        ACTION      an HTTP status 400-599 (e.g. 503, 429) | delay<SECONDS>s | reset
                    | reset-after (perform the request, then reset instead of answering)
        COUNT       how many matching requests it applies to (default 1); * = all of them
    examples: POST:.*:import=503x2    GET:/operations/=delay0.5sx*    *:^/storage/v1/b$=reset
              POST:/b/journal/o$=reset-after    storage.objects.insert=503x2
              test-7@healthcare.projects.locations.datasets.dicomStores.import=429

    operation-seconds=SECONDS            every operation takes at least this long
    instance-seconds=SECONDS             plus this long per instance processed
    fail-operation=CODE[:MESSAGE]        the next operation fails with google.rpc CODE
    fail-instance=[OPERATION:]uid:UID[:CODE[:MESSAGE]]
    fail-instance=[OPERATION:]path:GLOB[:CODE[:MESSAGE]]
        every matching instance fails (until removed) with google.rpc CODE (default 13)
        OPERATION   import or export (default: both)
        UID         a SOP Instance UID (digits and dots)
        GLOB        fnmatch pattern without ':' on the instance's path (see above)
    examples: fail-instance=uid:1.2.826.0.1.3680043.8.498.1    fail-instance=path:*CT_small*
              fail-instance=export:uid:1.2.3.4:13:disk on fire
"""

from __future__ import annotations

import fnmatch
import itertools
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .errors import RPC_CODE_NAMES, invalid_argument

#: Request header naming the fault scope a request belongs to (see the module docstring).
FAULT_SCOPE_HEADER = "x-emulator-fault-scope"

_SCOPE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# DICOM PS3.5 §9.1: a UID is digits and dots, at most 64 characters.
_UID = re.compile(r"[0-9.]{1,64}")
#: The operations an instance fault can select (None in :class:`InstanceFailure`: both).
INSTANCE_OPERATIONS = ("import", "export")
_OPERATION_KEYS = ("operation-seconds", "instance-seconds", "fail-operation", "fail-instance")
# Discovery method ids: dotted camelCase words, e.g. storage.objects.insert.
_API_METHOD = re.compile(r"[a-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+")

DEFAULT_MESSAGES: dict[int, str] = {
    429: "Quota exceeded: too many requests (injected by the emulator).",
    500: "Internal error encountered (injected by the emulator).",
    503: "The service is currently unavailable (injected by the emulator).",
    504: "Deadline exceeded (injected by the emulator).",
}

_SPEC = re.compile(
    r"^(?P<action>\d{3}|delay(?P<delay>\d+(?:\.\d+)?)s|reset-after|reset)(?:x(?P<count>\d+|\*))?$"
)


@dataclass
class FaultRule:
    """One request-fault rule.

    Attributes:
        method: HTTP method it applies to, or ``"*"``.
        path_regex: Regex searched in the raw request path (``""`` matches every path).
        status: Error status to answer with (None when the rule only delays or resets).
        delay_s: Seconds to wait before answering.
        reset: Reset the connection instead of answering.
        reset_after: Perform the request, then reset the connection instead of answering.
        times: How many more requests it applies to; None = unlimited.
        message: ``error.message`` for status faults (a default per status otherwise).
        rule_id: Identifier (for removal through the admin endpoint).
        hits: How many requests it has applied to so far.
        api_method: Discovery method id the request must route to, or None for any.
        scope: Fault scope the request must carry (``x-emulator-fault-scope``), or None for
            every request.
    """

    method: str = "*"
    path_regex: str = ""
    status: int | None = None
    delay_s: float = 0.0
    reset: bool = False
    reset_after: bool = False
    times: int | None = 1
    message: str | None = None
    rule_id: int = 0
    hits: int = 0
    api_method: str | None = None
    scope: str | None = None
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the rule and compile its regex.

        Raises:
            ApiException: 400 when the rule is malformed.
        """
        self.method = self.method.upper()
        try:
            self._pattern = re.compile(self.path_regex)
        except re.error as exc:
            raise invalid_argument(f"Invalid fault path regex {self.path_regex!r}: {exc}") from None
        if self.status is not None and not 400 <= self.status <= 599:
            raise invalid_argument(f"Invalid fault status {self.status}: expected 400-599.")
        if self.delay_s < 0:
            raise invalid_argument("Invalid fault delay: must be >= 0.")
        if self.times is not None and self.times < 1:
            raise invalid_argument("Invalid fault count: must be >= 1.")
        if sum((self.status is not None, self.reset, self.reset_after)) > 1:
            raise invalid_argument("A fault has one of a status, reset or reset-after.")
        if self.status is None and not (self.reset or self.reset_after) and self.delay_s == 0:
            raise invalid_argument("A fault needs a status, a delay, reset or reset-after.")
        if self.api_method is not None and not _API_METHOD.fullmatch(self.api_method):
            raise invalid_argument(
                f"Invalid fault API method {self.api_method!r}: expected a discovery method "
                "id such as storage.objects.insert."
            )
        if self.scope is not None and not _SCOPE.fullmatch(self.scope):
            raise invalid_argument(
                f"Invalid fault scope {self.scope!r}: expected 1-128 of A-Z a-z 0-9 _ . -"
            )

    @property
    def kind(self) -> str:
        """``"status"``, ``"reset"``, ``"reset-after"`` or ``"delay"``."""
        if self.reset_after:
            return "reset-after"
        if self.reset:
            return "reset"
        return "status" if self.status is not None else "delay"

    def matches(
        self,
        method: str,
        path: str,
        api_method: str | None = None,
        scope: str | None = None,
    ) -> bool:
        """Whether the rule applies to a request (ignoring the remaining count).

        Args:
            method: HTTP method of the request.
            path: Raw request path (no query string).
            api_method: Discovery method id the request routed to (None: no route).
            scope: The request's ``x-emulator-fault-scope`` header (None: absent).
        """
        return (
            self.method in ("*", method.upper())
            and (self.scope is None or self.scope == scope)
            and (self.api_method is None or self.api_method == api_method)
            and self._pattern.search(path) is not None
        )

    def to_json(self) -> dict[str, Any]:
        """Return the rule as a JSON-able dict."""
        return {
            "id": self.rule_id,
            "method": self.method,
            "path": self.path_regex,
            "apiMethod": self.api_method,
            "scope": self.scope,
            "kind": self.kind,
            "status": self.status,
            "delaySeconds": self.delay_s,
            "reset": self.reset,
            "resetAfter": self.reset_after,
            "remaining": self.times,
            "message": self.message,
            "hits": self.hits,
        }


@dataclass(frozen=True)
class FaultDecision:
    """What the HTTP layer must do with one request.

    Attributes:
        delay_s: Seconds to sleep first.
        status: Error status to answer with, or None.
        reset: Reset the connection (after the delay) instead of answering.
        message: Error message for ``status``.
        rule_ids: Rules that applied.
        reset_after: Perform the request, then reset the connection instead of answering.
    """

    delay_s: float
    status: int | None
    reset: bool
    message: str
    rule_ids: tuple[int, ...]
    reset_after: bool = False

    def describe(self) -> str:
        """Short text for logs, e.g. ``"503"``, ``"delay0.5s"``, ``"reset"``, ``"reset-after"``."""
        parts = []
        if self.delay_s:
            parts.append(f"delay{self.delay_s:g}s")
        if self.reset:
            parts.append("reset")
        elif self.reset_after:
            parts.append("reset-after")
        elif self.status is not None:
            parts.append(str(self.status))
        return "+".join(parts)


@dataclass(frozen=True)
class OperationFailure:
    """A queued "fail the next operation" fault.

    Attributes:
        code: google.rpc code for ``operation.error.code`` (e.g. 13 INTERNAL).
        message: ``operation.error.message``.
    """

    code: int
    message: str

    def to_json(self) -> dict[str, Any]:
        """Return ``{"code", "message"}``."""
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
        fault_id: Identifier (shared numbering with request rules, for removal).
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

    def to_json(self) -> dict[str, Any]:
        """Return ``{"id", "operation", "uid", "path", "code", "message"}``."""
        return {
            "id": self.fault_id,
            "operation": self.operation,
            "uid": self.uid,
            "path": self.path,
            "code": self.code,
            "message": self.message,
        }


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
    return _instance_failure(operation, parts[0], parts[1], int(code_text or 13), message)


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


def parse_fault_spec(spec: str, scope: str | None = None) -> FaultRule:
    """Parse ``[SCOPE@]METHOD:PATH_REGEX=ACTION[xCOUNT]`` or ``[SCOPE@]API_METHOD=ACTION…``.

    Args:
        spec: E.g. ``"POST:.*:import=503x2"``, ``"GET:/operations/=delay0.5sx*"``,
            ``"*:^/storage/v1/b$=reset"``, ``"POST:^/upload/=reset-after"``,
            ``"storage.objects.insert=503"``, ``"t1@storage.objects.get=reset"``.
        scope: Scope for a spec without ``SCOPE@`` (None: every request).

    Returns:
        The rule (not yet added to an injector).

    Raises:
        ApiException: 400 naming the problem when the text is malformed.
    """
    scoped = re.match(r"([A-Za-z0-9_.-]+)@(.*)", spec, re.DOTALL)
    text = spec
    if scoped is not None:
        scope, text = scoped.group(1), scoped.group(2)
    selector, eq, action_text = text.rpartition("=")
    api_method: str | None = None
    if eq and ":" not in selector and _API_METHOD.fullmatch(selector):
        method, path_regex, api_method = "*", "", selector
    else:
        method, sep, rest = text.partition(":")
        path_regex, eq, action_text = rest.rpartition("=")
        if not sep or not eq or not method or not path_regex:
            raise invalid_argument(
                f"Invalid fault {spec!r}: expected [SCOPE@]METHOD:PATH_REGEX=ACTION[xCOUNT] "
                "or [SCOPE@]API_METHOD=ACTION[xCOUNT], e.g. POST:.*:import=503x2 or "
                "storage.objects.insert=503"
            )
        if method != "*" and not re.fullmatch(r"[A-Za-z]+", method):
            raise invalid_argument(f"Invalid fault {spec!r}: method must be a word or '*'.")
    match = _SPEC.match(action_text.strip())
    if match is None:
        raise invalid_argument(
            f"Invalid fault {spec!r}: action must be a status (e.g. 503), delay<SECONDS>s, "
            "reset or reset-after, optionally followed by x<COUNT> or x*."
        )
    count_text = match.group("count")
    times = None if count_text == "*" else int(count_text or "1")
    action = match.group("action")
    selects: dict[str, Any] = {"times": times, "api_method": api_method, "scope": scope}
    if action == "reset":
        return FaultRule(method, path_regex, reset=True, **selects)
    if action == "reset-after":
        return FaultRule(method, path_regex, reset_after=True, **selects)
    if match.group("delay") is not None:
        return FaultRule(method, path_regex, delay_s=float(match.group("delay")), **selects)
    return FaultRule(method, path_regex, status=int(action), **selects)


class FaultInjector:
    """Thread-safe store of request and operation faults, shared by both servers.

    The HTTP layer calls :meth:`decide` for every request; the Healthcare operation runner
    reads :attr:`operation_seconds`, :attr:`instance_seconds`, calls
    :meth:`take_operation_failure` when an operation starts and :meth:`instance_failure` for
    each instance it processes.
    """

    def __init__(self) -> None:
        """Create an injector without faults."""
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._operation_seconds = 0.0
        self._instance_seconds = 0.0
        self._operation_failures: deque[OperationFailure] = deque()
        self._instance_failures: list[InstanceFailure] = []

    # -- request faults -------------------------------------------------------------------

    def add_rule(self, rule: FaultRule) -> FaultRule:
        """Activate ``rule`` (assigning its ``rule_id``) and return it."""
        with self._lock:
            rule.rule_id = next(self._ids)
            self._rules.append(rule)
        return rule

    def fail_requests(
        self,
        method: str = "*",
        path_regex: str = "",
        status: int = 503,
        times: int | None = 1,
        message: str | None = None,
        *,
        api_method: str | None = None,
        scope: str | None = None,
    ) -> FaultRule:
        """Answer the next ``times`` matching requests with ``status`` in Google's error shape.

        Args:
            method: HTTP method or ``"*"``.
            path_regex: Regex searched in the raw request path (``""``: any path).
            status: 400-599; 429 and 503 are the usual transient ones.
            times: Number of requests; None = until removed.
            message: ``error.message``; a default per status when omitted.
            api_method: Only requests routed to this discovery method id.
            scope: Only requests with header ``x-emulator-fault-scope: scope``.

        Returns:
            The active rule.

        Raises:
            ApiException: 400 for an invalid status, regex, method id or scope.
        """
        return self.add_rule(
            FaultRule(
                method,
                path_regex,
                status=status,
                times=times,
                message=message,
                api_method=api_method,
                scope=scope,
            )
        )

    def delay_requests(
        self,
        method: str = "*",
        path_regex: str = "",
        seconds: float = 0.0,
        times: int | None = None,
        *,
        api_method: str | None = None,
        scope: str | None = None,
    ) -> FaultRule:
        """Delay matching requests by ``seconds`` (all of them unless ``times`` is given).

        Selection (``method``, ``path_regex``, ``api_method``, ``scope``) as in
        :meth:`fail_requests`.
        """
        return self.add_rule(
            FaultRule(
                method, path_regex, delay_s=seconds, times=times, api_method=api_method, scope=scope
            )
        )

    def reset_connections(
        self,
        method: str = "*",
        path_regex: str = "",
        times: int | None = 1,
        *,
        after: bool = False,
        api_method: str | None = None,
        scope: str | None = None,
    ) -> FaultRule:
        """Reset (TCP RST) the connection of the next ``times`` matching requests.

        Args:
            method: HTTP method or ``"*"``.
            path_regex: Regex searched in the raw request path (``""``: any path).
            times: Number of requests; None = until removed.
            after: Perform each request first (its effect stays), then reset instead of
                sending the answer; False resets before anything is done.
            api_method: Only requests routed to this discovery method id.
            scope: Only requests with header ``x-emulator-fault-scope: scope``.

        Returns:
            The active rule.
        """
        rule = FaultRule(
            method,
            path_regex,
            reset=not after,
            reset_after=after,
            times=times,
            api_method=api_method,
            scope=scope,
        )
        return self.add_rule(rule)

    def add_spec(self, spec: str, scope: str | None = None) -> FaultRule | None:
        """Apply one fault in the text syntax of the module docstring.

        Args:
            spec: A request fault (``[SCOPE@]METHOD:PATH_REGEX=ACTION[xCOUNT]`` or
                ``[SCOPE@]API_METHOD=ACTION[xCOUNT]``) or one of ``operation-seconds=S``,
                ``instance-seconds=S``, ``fail-operation=CODE[:MSG]``,
                ``fail-instance=…`` (never scoped: the operation runner serves every client).
            scope: Scope of a request fault without ``SCOPE@``.

        Returns:
            The rule for request faults, None for operation faults.

        Raises:
            ApiException: 400 when the text is malformed.
        """
        key, _, value = spec.partition("=")
        key = key.strip()
        if key in ("operation-seconds", "instance-seconds"):
            try:
                seconds = float(value)
            except ValueError:
                raise invalid_argument(f"Invalid fault {spec!r}: seconds expected.") from None
            if key == "operation-seconds":
                self.set_operation_timing(operation_seconds=seconds)
            else:
                self.set_operation_timing(instance_seconds=seconds)
            return None
        if key == "fail-operation":
            code_text, _, message = value.partition(":")
            if not code_text.strip().isdigit():
                raise invalid_argument(
                    f"Invalid fault {spec!r}: expected fail-operation=CODE[:MSG]."
                )
            self.fail_next_operation(int(code_text), message or None)
            return None
        if key == "fail-instance":
            self._add_instance_failure(parse_instance_failure(value))
            return None
        return self.add_rule(parse_fault_spec(spec, scope))

    def rules(self) -> list[FaultRule]:
        """Return the active request-fault rules (a snapshot)."""
        with self._lock:
            return list(self._rules)

    def remove(self, rule_id: int) -> bool:
        """Deactivate request rule or instance fault ``rule_id``; return whether it existed."""
        with self._lock:
            before = len(self._rules) + len(self._instance_failures)
            self._rules = [r for r in self._rules if r.rule_id != rule_id]
            self._instance_failures = [f for f in self._instance_failures if f.fault_id != rule_id]
            return len(self._rules) + len(self._instance_failures) != before

    def remove_scope(self, scope: str) -> int:
        """Deactivate every request-fault rule of ``scope``; return how many there were."""
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.scope != scope]
            return before - len(self._rules)

    def decide(
        self,
        method: str,
        path: str,
        *,
        api_method: str | None = None,
        scope: str | None = None,
    ) -> FaultDecision | None:
        """Consume the rules matching a request and say what to do with it.

        Args:
            method: HTTP method of the request.
            path: Raw request path (no query string).
            api_method: Discovery method id the path routed to (None: no route matched).
            scope: The request's ``x-emulator-fault-scope`` header (None: absent).

        Returns:
            None when no rule applies, else the combined decision.
        """
        with self._lock:
            delay = 0.0
            status: int | None = None
            reset = reset_after = False
            message = ""
            applied: list[int] = []
            for rule in self._rules:
                if not rule.matches(method, path, api_method, scope):
                    continue
                is_terminal = rule.status is not None or rule.reset or rule.reset_after
                if is_terminal and (status is not None or reset or reset_after):
                    continue
                applied.append(rule.rule_id)
                rule.hits += 1
                if rule.times is not None:
                    rule.times -= 1
                delay += rule.delay_s
                if rule.reset:
                    reset = True
                elif rule.reset_after:
                    reset_after = True
                elif rule.status is not None:
                    status = rule.status
                    message = rule.message or DEFAULT_MESSAGES.get(
                        rule.status, f"Injected error {rule.status} (emulator fault)."
                    )
            self._rules = [r for r in self._rules if r.times is None or r.times > 0]
        if not applied:
            return None
        return FaultDecision(delay, status, reset, message, tuple(applied), reset_after)

    # -- operation faults -----------------------------------------------------------------

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

    def fail_next_operation(self, code: int, message: str | None = None) -> OperationFailure:
        """Queue a failure: the next operation started ends with ``error`` = (code, message).

        Call it N times to fail the next N operations.

        Args:
            code: google.rpc code 1-16 (e.g. 13 INTERNAL, 7 PERMISSION_DENIED).
            message: Error message; a default naming the code when omitted.

        Raises:
            ApiException: 400 for a code outside 1-16.
        """
        _check_rpc_code(code)
        failure = OperationFailure(
            code, message or f"{RPC_CODE_NAMES[code]}: operation failed (injected by the emulator)."
        )
        with self._lock:
            self._operation_failures.append(failure)
        return failure

    def take_operation_failure(self) -> OperationFailure | None:
        """Pop the next queued operation failure (the operation runner calls this once per
        operation it starts); None when none is queued."""
        with self._lock:
            return self._operation_failures.popleft() if self._operation_failures else None

    def pending_operation_failures(self) -> list[OperationFailure]:
        """Return the queued operation failures (a snapshot)."""
        with self._lock:
            return list(self._operation_failures)

    def fail_instances(
        self,
        *,
        uid: str | None = None,
        path: str | None = None,
        operation: str | None = None,
        code: int = 13,
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
            added = InstanceFailure(
                failure.operation,
                failure.uid,
                failure.path,
                failure.code,
                failure.message,
                next(self._ids),
            )
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

    # -- whole state ----------------------------------------------------------------------

    def reset(self) -> None:
        """Remove every fault and restore instant operations."""
        with self._lock:
            self._rules.clear()
            self._operation_failures.clear()
            self._instance_failures.clear()
            self._operation_seconds = 0.0
            self._instance_seconds = 0.0

    def to_json(self) -> dict[str, Any]:
        """Return the whole fault state (what ``GET /_emulator/faults`` answers)."""
        with self._lock:
            return {
                "rules": [r.to_json() for r in self._rules],
                "operationSeconds": self._operation_seconds,
                "instanceSeconds": self._instance_seconds,
                "operationFailures": [f.to_json() for f in self._operation_failures],
                "instanceFailures": [f.to_json() for f in self._instance_failures],
            }

    def apply_json(self, body: dict[str, Any]) -> None:
        """Apply an admin request body (``POST /_emulator/faults``).

        Accepted keys (all optional): ``spec`` (string or list of strings, text syntax),
        ``rules`` (list of ``{"method", "path", "apiMethod", "scope",
        "status"|"delaySeconds"|"reset", "times", "message"}``; ``times`` null = unlimited),
        ``scope`` (scope of every request fault in the body that names none),
        ``operationSeconds``, ``instanceSeconds``, ``failNextOperation`` (``{"code",
        "message"}`` or a list of them). Instance faults come as ``spec``
        (``fail-instance=…``).

        Raises:
            ApiException: 400 naming the first invalid field.
        """
        known = {
            "spec",
            "rules",
            "scope",
            "operationSeconds",
            "instanceSeconds",
            "failNextOperation",
        }
        unknown = sorted(set(body) - known)
        if unknown:
            raise invalid_argument(
                f"Unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}."
            )
        specs = body.get("spec", [])
        if isinstance(specs, str):
            specs = [specs]
        if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
            raise invalid_argument("spec: expected a string or a list of strings.")
        scope = body.get("scope")
        if scope is not None and (not isinstance(scope, str) or not _SCOPE.fullmatch(scope)):
            raise invalid_argument(
                f"scope: {scope!r} is not a scope ID; expected 1-128 of A-Z a-z 0-9 _ . -"
            )
        rules = [_rule_from_json(r, scope) for r in _as_list(body.get("rules", []), "rules")]
        timing = {
            name: _number(body[key], key)
            for key, name in (
                ("operationSeconds", "operation_seconds"),
                ("instanceSeconds", "instance_seconds"),
            )
            if key in body
        }
        failures = body.get("failNextOperation", [])
        if isinstance(failures, dict):
            failures = [failures]
        parsed_failures: list[tuple[int, str | None]] = []
        for item in _as_list(failures, "failNextOperation"):
            if not isinstance(item, dict) or not isinstance(item.get("code"), int):
                raise invalid_argument('failNextOperation: expected {"code": int, "message"}.')
            message = item.get("message")
            if message is not None and not isinstance(message, str):
                raise invalid_argument("failNextOperation.message: expected a string.")
            parsed_failures.append((item["code"], message))
        parsed_specs = [s for s in specs]
        # Validate everything before changing anything.
        for spec in parsed_specs:
            key, _, value = spec.partition("=")
            if key.strip() == "fail-instance":
                parse_instance_failure(value)
            elif key.strip() not in _OPERATION_KEYS:
                parse_fault_spec(spec, scope)
        for code, _ in parsed_failures:
            _check_rpc_code(code)
        for spec in parsed_specs:
            self.add_spec(spec, scope)
        for rule in rules:
            self.add_rule(rule)
        if timing:
            self.set_operation_timing(**timing)
        for code, message in parsed_failures:
            self.fail_next_operation(code, message)


def _as_list(value: object, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_argument(f"{name}: expected a list.")
    return value


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise invalid_argument(f"{name}: expected a number >= 0.")
    return float(value)


def _rule_from_json(item: object, default_scope: str | None) -> FaultRule:
    if not isinstance(item, dict):
        raise invalid_argument("rules: each rule must be an object.")
    allowed = {
        "method",
        "path",
        "apiMethod",
        "scope",
        "status",
        "delaySeconds",
        "reset",
        "times",
        "message",
    }
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise invalid_argument(f"rules: unknown field(s) {', '.join(unknown)}.")
    method = item.get("method", "*")
    path = item.get("path", "")
    api_method = item.get("apiMethod")
    scope = item.get("scope", default_scope)
    status = item.get("status")
    delay = item.get("delaySeconds", 0)
    reset = item.get("reset", False)
    times = item.get("times", 1)
    message = item.get("message")
    if not isinstance(method, str) or not isinstance(path, str):
        raise invalid_argument("rules: method and path must be strings.")
    if "path" not in item and api_method is None:
        raise invalid_argument("rules: each rule needs a path, an apiMethod or both.")
    for name, value in (("apiMethod", api_method), ("scope", scope)):
        if value is not None and not isinstance(value, str):
            raise invalid_argument(f"rules.{name}: expected a string.")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise invalid_argument("rules.status: expected an integer.")
    if not isinstance(reset, bool):
        raise invalid_argument("rules.reset: expected a boolean.")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int)):
        raise invalid_argument("rules.times: expected an integer or null.")
    if message is not None and not isinstance(message, str):
        raise invalid_argument("rules.message: expected a string.")
    return FaultRule(
        method,
        path,
        status=status,
        delay_s=_number(delay, "rules.delaySeconds"),
        reset=reset,
        times=times,
        message=message,
        api_method=api_method,
        scope=scope,
    )


__all__ = [
    "FAULT_SCOPE_HEADER",
    "FaultDecision",
    "FaultInjector",
    "FaultRule",
    "InstanceFailure",
    "OperationFailure",
    "parse_fault_spec",
    "parse_instance_failure",
]
