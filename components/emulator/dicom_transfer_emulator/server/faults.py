"""Request faults: make the emulator's HTTP servers misbehave on purpose, as Google's do.

A request fault acts on the next N HTTP requests a rule selects: answer them with an error
status (429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, or any 4xx/5xx, in Google's JSON error
shape), delay them, reset the TCP connection instead of answering, or perform them and then
reset the connection instead of sending the answer (the request took effect but the client
saw a dropped connection). A rule selects requests

* by HTTP method and path: paths are the raw request paths (no query string), matched with
  :func:`re.search`; or
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
:meth:`RequestFaults.remove_scope`) forgets them without touching anyone else's. Scope IDs
are 1-128 characters of ``A-Z a-z 0-9 _ . -``.

Admin paths (``/_emulator/…``) are never faulted. Several delay rules add up; the first
matching status/reset rule wins.

Operation faults (timing, failing operations or single instances) belong to the Healthcare
side: :mod:`dicom_transfer_emulator.healthcare.operation_faults`. Both kinds share one text
syntax, the only way rules are written (``--fault``, ``POST /_emulator/faults``, and what
``GET /_emulator/faults`` lists); a request fault is::

    [SCOPE@]METHOD:PATH_REGEX=ACTION[xCOUNT][:MESSAGE]
    [SCOPE@]API_METHOD=ACTION[xCOUNT][:MESSAGE]
        SCOPE       only requests with header x-emulator-fault-scope: SCOPE (default: all)
        METHOD      GET, POST, … or * (any)
        API_METHOD  a discovery method id, e.g. storage.objects.insert
        ACTION      an HTTP status 400-599 (e.g. 503, 429) | delay<SECONDS>s | reset
                    | reset-after (perform the request, then reset instead of answering)
        COUNT       how many matching requests it applies to (default 1); * = all of them
        MESSAGE     error.message of a status fault (default: one per status)
    examples: POST:.*:import=503x2    GET:/operations/=delay0.5sx*    *:^/storage/v1/b$=reset
              POST:/b/journal/o$=reset-after    storage.objects.insert=503x2:try later
              test-7@healthcare.projects.locations.datasets.dicomStores.import=429

Python API (the same rules, built without text)::

    emu.faults.fail_requests("POST", r":import$", status=503, times=2)
    emu.faults.delay_requests("GET", r"/operations/", seconds=0.5)
    emu.faults.reset_connections("*", r"^/storage/v1/b$", times=1)
    emu.faults.reset_connections("POST", r"/b/journal/o$", after=True)
    emu.faults.fail_requests(api_method="storage.objects.insert", status=503, scope="test-42")
    emu.faults.remove_scope("test-42")
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from dicom_transfer_emulator.errors import invalid_argument

#: Request header naming the fault scope a request belongs to (see the module docstring).
FAULT_SCOPE_HEADER = "x-emulator-fault-scope"

_SCOPE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# Discovery method ids: dotted camelCase words, e.g. storage.objects.insert.
_API_METHOD = re.compile(r"[a-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+")

DEFAULT_MESSAGES: dict[int, str] = {
    429: "Quota exceeded: too many requests (injected by the emulator).",
    500: "Internal error encountered (injected by the emulator).",
    503: "The service is currently unavailable (injected by the emulator).",
    504: "Deadline exceeded (injected by the emulator).",
}

_ACTION = re.compile(
    r"(?P<action>\d{3}|delay(?P<delay>\d+(?:\.\d+)?)s|reset-after|reset)"
    r"(?:x(?P<count>\d+|\*))?(?::(?P<message>.*))?",
    re.DOTALL,
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
        if self.api_method is not None and (self.method != "*" or self.path_regex):
            raise invalid_argument(
                f"Invalid fault: it selects by API method ({self.api_method}) or by HTTP method "
                f"and path ({self.method}:{self.path_regex}), not both."
            )
        if self.api_method is None and not self.path_regex:
            raise invalid_argument("Invalid fault: it needs a path regex or an API method.")
        if self.message is not None and self.status is None:
            raise invalid_argument(
                f"Invalid fault message {self.message!r}: only a status fault has one."
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

    @property
    def spec(self) -> str:
        """The rule in the text syntax, with its remaining count (what ``add_spec`` accepts).

        E.g. ``"t1@POST:.*:import=503x2:try later"``, ``"storage.objects.get=delay0.5sx*"``.
        """
        scope = f"{self.scope}@" if self.scope else ""
        selector = self.api_method or f"{self.method}:{self.path_regex}"
        if self.status is not None:
            action = str(self.status)
        elif self.reset or self.reset_after:
            action = self.kind
        else:
            action = f"delay{self.delay_s:g}s"
        count = "*" if self.times is None else str(self.times)
        message = f":{self.message}" if self.message is not None else ""
        return f"{scope}{selector}={action}x{count}{message}"


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


def parse_fault_spec(spec: str, scope: str | None = None) -> FaultRule:
    """Parse ``[SCOPE@]METHOD:PATH_REGEX=ACTION[xCOUNT][:MESSAGE]`` or
    ``[SCOPE@]API_METHOD=ACTION[xCOUNT][:MESSAGE]`` (the module docstring's syntax).

    The action starts after the last ``=`` whose remainder is an action, so a path regex or a
    message may contain ``=`` and ``:``.

    Args:
        spec: E.g. ``"POST:.*:import=503x2"``, ``"GET:/operations/=delay0.5sx*"``,
            ``"*:^/storage/v1/b$=reset"``, ``"POST:^/upload/=reset-after"``,
            ``"storage.objects.insert=503:try later"``, ``"t1@storage.objects.get=reset"``.
        scope: Scope for a spec without ``SCOPE@`` (None: every request).

    Returns:
        The rule (not yet added to a store).

    Raises:
        ApiException: 400 naming the problem when the text is malformed.
    """
    form = (
        "expected [SCOPE@]METHOD:PATH_REGEX=ACTION[xCOUNT][:MESSAGE] or "
        "[SCOPE@]API_METHOD=ACTION[xCOUNT][:MESSAGE], e.g. POST:.*:import=503x2 or "
        "storage.objects.insert=503"
    )
    scoped = re.match(r"([A-Za-z0-9_.-]+)@(.*)", spec, re.DOTALL)
    text = spec
    if scoped is not None:
        scope, text = scoped.group(1), scoped.group(2)
    cut = len(text)
    while (cut := text.rfind("=", 0, cut)) >= 0:
        action = _ACTION.fullmatch(text, cut + 1)
        if action is not None:
            break
    else:
        raise invalid_argument(
            f"Invalid fault {spec!r}: {form}; ACTION is a status (e.g. 503), "
            "delay<SECONDS>s, reset or reset-after, optionally followed by x<COUNT> or x*."
        )
    selector = text[:cut]
    api_method: str | None = None
    method, path_regex = "*", ""
    if ":" not in selector and _API_METHOD.fullmatch(selector):
        api_method = selector
    else:
        method, sep, path_regex = selector.partition(":")
        if not sep or not method or not path_regex:
            raise invalid_argument(f"Invalid fault {spec!r}: {form}.")
        if method != "*" and not re.fullmatch(r"[A-Za-z]+", method):
            raise invalid_argument(f"Invalid fault {spec!r}: method must be a word or '*'.")
    count_text = action.group("count")
    kind = action.group("action")
    delay = action.group("delay")
    return FaultRule(
        method,
        path_regex,
        status=int(kind) if kind.isdigit() else None,
        delay_s=float(delay) if delay is not None else 0.0,
        reset=kind == "reset",
        reset_after=kind == "reset-after",
        times=None if count_text == "*" else int(count_text or "1"),
        message=action.group("message"),
        api_method=api_method,
        scope=scope,
    )


class RequestFaults:
    """Thread-safe store of request-fault rules, consulted by the HTTP layer per request.

    Args:
        ids: Source of rule identifiers (shared with the operation faults, so that one
            ``DELETE /_emulator/faults/{id}`` names one fault); a private counter by default.
    """

    def __init__(self, ids: Iterator[int] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = ids if ids is not None else itertools.count(1)

    def add_rule(self, rule: FaultRule) -> FaultRule:
        """Activate ``rule`` (assigning its ``rule_id``) and return it."""
        with self._lock:
            rule.rule_id = next(self._ids)
            self._rules.append(rule)
        return rule

    def add_spec(self, spec: str, scope: str | None = None) -> FaultRule:
        """Activate the rule ``spec`` describes (:func:`parse_fault_spec`) and return it."""
        return self.add_rule(parse_fault_spec(spec, scope))

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
            path_regex: Regex searched in the raw request path.
            status: 400-599; 429 and 503 are the usual transient ones.
            times: Number of requests; None = until removed.
            message: ``error.message``; a default per status when omitted.
            api_method: Only requests routed to this discovery method id (instead of
                ``method`` and ``path_regex``).
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
            path_regex: Regex searched in the raw request path.
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

    def rules(self) -> list[FaultRule]:
        """Return the active rules (a snapshot)."""
        with self._lock:
            return list(self._rules)

    def remove(self, rule_id: int) -> bool:
        """Deactivate rule ``rule_id``; return whether it existed."""
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.rule_id != rule_id]
            return len(self._rules) != before

    def remove_scope(self, scope: str) -> int:
        """Deactivate every rule of ``scope``; return how many there were."""
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.scope != scope]
            return before - len(self._rules)

    def reset(self) -> None:
        """Deactivate every rule."""
        with self._lock:
            self._rules.clear()

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


__all__ = [
    "FAULT_SCOPE_HEADER",
    "FaultDecision",
    "FaultRule",
    "RequestFaults",
    "parse_fault_spec",
]
