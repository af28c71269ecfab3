"""IAM policies, one rule for both APIs: Cloud Storage buckets and Healthcare datasets and
DICOM stores take the same ``Policy`` message, checked by :func:`validate_policy`, and carry
the same kind of ``etag`` (:func:`policy_etag`, :func:`next_policy_etag`, :func:`stale_etag`)."""

from __future__ import annotations

import base64
import binascii
from typing import Any


class PolicyError(ValueError):
    """A ``Policy`` breaks IAM's rules (each API maps it to its 400 INVALID_ARGUMENT)."""


#: Member prefixes of IAM principals (``Binding.members`` in the discovery documents).
MEMBER_PREFIXES = (
    "user:",
    "serviceAccount:",
    "group:",
    "domain:",
    "projectOwner:",
    "projectEditor:",
    "projectViewer:",
    "principal://",
    "principalSet://",
    "deleted:",
)
MEMBER_LITERALS = ("allUsers", "allAuthenticatedUsers")


def validate_policy(policy: object) -> tuple[list[dict[str, Any]], int]:
    """Check an IAM ``Policy`` (the ``policy`` of a ``setIamPolicy`` request).

    Source: the ``Policy`` and ``Binding`` schemas of the Cloud Storage and Cloud Healthcare
    discovery documents (the same IAM messages): ``version`` 0, 1 or 3 (conditions need 3),
    roles ``roles/…`` (or custom ``projects/…``/``organizations/…`` roles), members
    ``user:``, ``serviceAccount:``, ``group:``, ``domain:``, … or ``allUsers``.

    Args:
        policy: The decoded JSON value.

    Returns:
        ``(bindings, version)``: the bindings without empty ones and with each member once,
        and the effective version (at least 1).

    Raises:
        PolicyError: naming the field, the value and the expected form.
    """
    if not isinstance(policy, dict):
        raise PolicyError("Invalid policy: expected an object.")
    allowed = {"bindings", "etag", "version", "kind", "resourceId", "auditConfigs"}
    unknown = sorted(set(policy) - allowed)
    if unknown:
        raise PolicyError(f"Invalid policy: unknown field(s) {', '.join(unknown)}.")
    version = policy.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version not in (0, 1, 3):
        raise PolicyError("Invalid policy version: expected 1 or 3.")
    etag = policy.get("etag")
    if etag is not None and not isinstance(etag, str):
        raise PolicyError("Invalid policy etag: expected a string.")
    raw_bindings = policy.get("bindings", [])
    if not isinstance(raw_bindings, list):
        raise PolicyError("Invalid policy bindings: expected a list.")
    bindings: list[dict[str, Any]] = []
    for index, binding in enumerate(raw_bindings):
        where = f"bindings[{index}]"
        if not isinstance(binding, dict):
            raise PolicyError(f"Invalid {where}: expected an object.")
        unknown = sorted(set(binding) - {"role", "members", "condition"})
        if unknown:
            raise PolicyError(f"Invalid {where}: unknown field(s) {', '.join(unknown)}.")
        role = binding.get("role")
        if not isinstance(role, str) or not role.startswith(
            ("roles/", "projects/", "organizations/")
        ):
            raise PolicyError(f"Invalid {where}.role: {role!r}; expected 'roles/...'.")
        members = binding.get("members", [])
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise PolicyError(f"Invalid {where}.members: expected a list of strings.")
        for member in members:
            if member not in MEMBER_LITERALS and not (
                member.startswith(MEMBER_PREFIXES) and len(member.split(":", 1)[-1]) > 0
            ):
                raise PolicyError(
                    f"Invalid {where}.members: {member!r}; expected e.g. 'user:EMAIL', "
                    "'serviceAccount:EMAIL', 'group:EMAIL', 'domain:DOMAIN' or 'allUsers'."
                )
        condition = binding.get("condition")
        if condition is not None:
            if not isinstance(condition, dict):
                raise PolicyError(f"Invalid {where}.condition: expected an object.")
            if version < 3:
                raise PolicyError("Policies with conditions must have version 3.")
        if not members:
            continue
        clean: dict[str, Any] = {"role": role, "members": list(dict.fromkeys(members))}
        if condition is not None:
            clean["condition"] = condition
        bindings.append(clean)
    return bindings, max(int(version), 1)


def policy_etag(counter: int) -> str:
    """The etag of a policy's ``counter``-th version: base64 of a protobuf varint field.

    Source: Cloud Storage's policy etags have this form (``CAE=`` for a bucket's first
    policy, bytes ``08 01``); the Healthcare API documents its etag only as opaque ``bytes``
    (``Policy.etag`` in the discovery documents: clients send it back, read-modify-write), so
    the emulator gives its policies the same form (its choice).
    """
    varint = bytearray()
    value = counter
    while True:
        byte = value & 0x7F
        value >>= 7
        varint.append(byte | (0x80 if value else 0))
        if not value:
            break
    return base64.b64encode(b"\x08" + bytes(varint)).decode("ascii")


def next_policy_etag(current: str | None) -> str:
    """The etag that follows ``current`` (one made by :func:`policy_etag`; any other value,
    such as the ``ACAB`` of state written by earlier emulator versions, counts as 0)."""
    counter = 0
    try:
        raw = base64.b64decode(current or "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if raw[:1] == b"\x08":
        for shift, byte in enumerate(raw[1:]):
            counter |= (byte & 0x7F) << (7 * shift)
    return policy_etag(counter + 1)


def stale_etag(sent: object, current: str) -> bool:
    """Whether a ``setIamPolicy`` request's ``policy.etag`` is set and is not ``current``.

    Source: ``Policy.etag`` in the discovery documents: "If no `etag` is provided in the call
    to `setIamPolicy`, then the existing policy is overwritten blindly"; ``""`` is proto3's
    unset string. Each API answers a stale etag its own way (Cloud Storage 412, Healthcare
    409 ABORTED).
    """
    return bool(sent) and sent != current


__all__ = [
    "MEMBER_LITERALS",
    "MEMBER_PREFIXES",
    "PolicyError",
    "next_policy_etag",
    "policy_etag",
    "stale_etag",
    "validate_policy",
]
