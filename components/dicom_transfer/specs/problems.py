"""Collecting every problem with a set of inputs, and Pulumi's not-yet-computed values.

A dynamic provider's ``check`` reports every bad input at once (:class:`Problems` in lenient
mode skips unknown values); ``create`` builds a request and stops at the first problem (strict
mode also refuses unknown values, since no request can be built from them).
"""

from __future__ import annotations

from collections.abc import Sequence

from dicom_transfer.errors import InvalidSpec

__all__ = [
    "UNKNOWN",
    "Problems",
    "absent",
    "check_bool",
    "check_choice",
    "is_unknown",
    "unset_string",
]

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
"""``pulumi.runtime.rpc.UNKNOWN``: a not-yet-computed input seen by a dynamic provider."""


def is_unknown(value: object) -> bool:
    """Whether ``value`` is a not-yet-computed Pulumi input.

    Args:
        value: Any property value.

    Returns:
        True for the ``UNKNOWN`` sentinel string and for ``pulumi.output.Unknown`` objects.
    """
    if isinstance(value, str):
        return value == UNKNOWN
    return type(value).__name__ == "Unknown" and type(value).__module__.startswith("pulumi")


class Problems:
    """Collects every problem; ``strict`` mode also refuses unknown values.

    Args:
        strict: Refuse unknown values too (building a request) instead of skipping them
            (``check``).
    """

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.items: list[InvalidSpec] = []

    def add(self, field: str, value: object, allowed: str) -> None:
        """Record that ``field`` got ``value`` where ``allowed`` (in words) was expected."""
        self.items.append(InvalidSpec(field, value, allowed))

    def skip_unknown(self, field: str, value: object) -> bool:
        """True when ``value`` is unknown (then, in strict mode, also records a problem)."""
        if not is_unknown(value):
            return False
        if self.strict:
            self.add(field, value, "a known value (this input is not computed yet)")
        return True

    def raise_first(self) -> None:
        """Raise the first problem recorded, if any.

        Raises:
            InvalidSpec: The first problem.
        """
        if self.items:
            raise self.items[0]


def absent(value: object) -> bool:
    """Whether an optional input was left out (Pulumi sends a missing input as None)."""
    return value is None


def unset_string(value: object) -> bool:
    """Whether an optional string input is unset: left out, or ``""`` (proto3's unset string,
    which the API reads as the field's default)."""
    return value is None or value == ""


def check_choice(
    problems: Problems, field: str, value: object, choices: Sequence[str]
) -> str | None:
    """``value`` if it is one of ``choices``; None when absent, unknown or not allowed."""
    if absent(value) or problems.skip_unknown(field, value):
        return None
    if not isinstance(value, str) or value not in choices:
        problems.add(field, value, "one of " + "|".join(choices))
        return None
    return value


def check_bool(problems: Problems, field: str, value: object) -> bool | None:
    """``value`` if it is a bool; None when absent, unknown or not a bool."""
    if absent(value) or problems.skip_unknown(field, value):
        return None
    if not isinstance(value, bool):
        problems.add(field, value, "true or false")
        return None
    return value
