"""The emulator's faults as one language: text specs, for the command line, the admin API
and Python.

Every fault is written in one text syntax: request faults (HTTP errors, delays, connection
resets) as :mod:`dicom_transfer_emulator.server.faults` describes, operation faults (timing,
failing the next operation or single instances) as
:mod:`dicom_transfer_emulator.healthcare.operation_faults` does. :class:`Faults` holds both
stores (the servers consult the first, the Healthcare operation runner the second) and sends
each spec to its owner.

Admin API (Healthcare port)::

    POST   /_emulator/faults   {"spec": "SPEC" | ["SPEC", …], "scope": "ID"}
                               or {"faults": [{"spec": "SPEC"}, …]} (what GET answers)
    GET    /_emulator/faults   {"faults": [{"id": 3, "spec": "t1@POST:.*:import=503x2",
                                            "hits": 0}, {"id": null,
                                            "spec": "operation-seconds=2"}, …]}
    DELETE /_emulator/faults[?scope=ID]     all faults, or the request faults of one scope
    DELETE /_emulator/faults/{id}           one fault

``scope`` applies to the request faults of a body whose spec names none (``SCOPE@``). A
listed spec carries the rule's remaining count, so posting ``GET``'s answer back (``id`` and
``hits`` are output only and ignored) sets up the same faults again.
"""

from __future__ import annotations

import itertools
from typing import Any

from dicom_transfer_emulator.errors import invalid_argument
from dicom_transfer_emulator.healthcare.operation_faults import OperationFaults, is_operation_spec
from dicom_transfer_emulator.server.faults import RequestFaults, parse_fault_spec

#: Fields of one item of ``{"faults": [...]}``: ``spec``, and the output-only ones of GET.
_ITEM_FIELDS = frozenset({"spec", "id", "hits"})


class Faults:
    """Request faults (:attr:`requests`) and operation faults (:attr:`operations`), one id
    space, one text syntax.

    The Python API of both stores is available here too (``emu.faults.fail_requests(…)``,
    ``emu.faults.set_operation_timing(…)``, ``emu.faults.fail_instances(…)``…).
    """

    def __init__(self) -> None:
        ids = itertools.count(1)
        self.requests = RequestFaults(ids)
        self.operations = OperationFaults(ids)
        # The stores' own Python API, reachable from the emulator's ``faults``.
        self.fail_requests = self.requests.fail_requests
        self.delay_requests = self.requests.delay_requests
        self.reset_connections = self.requests.reset_connections
        self.rules = self.requests.rules
        self.decide = self.requests.decide
        self.remove_scope = self.requests.remove_scope
        self.set_operation_timing = self.operations.set_operation_timing
        self.fail_next_operation = self.operations.fail_next_operation
        self.fail_instances = self.operations.fail_instances
        self.instance_failure = self.operations.instance_failure
        self.instance_failures = self.operations.instance_failures
        self.take_operation_failure = self.operations.take_operation_failure

    @staticmethod
    def validate_spec(spec: str, scope: str | None = None) -> None:
        """Raise ApiException 400 naming the problem when ``spec`` is not a fault."""
        if is_operation_spec(spec):
            OperationFaults.validate_spec(spec)
        else:
            parse_fault_spec(spec, scope)

    def add_spec(self, spec: str, scope: str | None = None) -> int | None:
        """Apply one fault written in the text syntax; return its id (None for timing).

        Args:
            spec: A request fault or an operation fault (see the module docstring).
            scope: Scope of a request fault without ``SCOPE@`` (operation faults are never
                scoped).

        Raises:
            ApiException: 400 when the text is malformed.
        """
        if is_operation_spec(spec):
            return self.operations.add_spec(spec)
        return self.requests.add_spec(spec, scope).rule_id

    def remove(self, fault_id: int) -> bool:
        """Remove fault ``fault_id`` (either kind); return whether it existed."""
        return self.requests.remove(fault_id) or self.operations.remove(fault_id)

    def reset(self) -> None:
        """Remove every fault and restore instant operations."""
        self.requests.reset()
        self.operations.reset()

    def to_json(self) -> dict[str, Any]:
        """Every active fault as ``{"faults": [{"id", "spec", "hits"?}, …]}`` (GET's answer)."""
        listed: list[dict[str, Any]] = [
            {"id": rule.rule_id, "spec": rule.spec, "hits": rule.hits}
            for rule in self.requests.rules()
        ]
        listed += [{"id": fault_id, "spec": spec} for fault_id, spec in self.operations.listing()]
        return {"faults": listed}

    def apply_json(self, body: object) -> None:
        """Apply a ``POST /_emulator/faults`` body: all of it, or nothing when a part is bad.

        Accepted: ``{"spec": str | [str], "scope": str}``, and ``{"faults": [{"spec": str,
        "id", "hits"}]}`` (GET's answer; ``id`` and ``hits`` are output only).

        Raises:
            ApiException: 400 naming the first invalid field or spec.
        """
        if not isinstance(body, dict):
            raise invalid_argument("Expected a JSON object with spec, scope or faults.")
        known = {"spec", "scope", "faults"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise invalid_argument(
                f"Unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}."
            )
        specs = body.get("spec", [])
        if isinstance(specs, str):
            specs = [specs]
        if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
            raise invalid_argument(f"spec: expected a string or a list of strings, got {specs!r}.")
        items = body.get("faults", [])
        if not isinstance(items, list):
            raise invalid_argument(f"faults: expected a list of {{'spec': …}}, got {items!r}.")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("spec"), str):
                raise invalid_argument(f"faults: expected {{'spec': str}}, got {item!r}.")
            extra = sorted(set(item) - _ITEM_FIELDS)
            if extra:
                raise invalid_argument(
                    f"faults: unknown field(s) {', '.join(extra)}; expected spec (id and hits "
                    "are output only)."
                )
            specs.append(item["spec"])
        scope = body.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise invalid_argument(f"scope: expected a string, got {scope!r}.")
        for spec in specs:  # validate everything before changing anything
            self.validate_spec(spec, scope)
        for spec in specs:
            self.add_spec(spec, scope)


__all__ = ["Faults"]
