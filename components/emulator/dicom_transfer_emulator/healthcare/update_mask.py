"""``updateMask`` of PATCH requests (``google.protobuf.FieldMask``), nested paths included.

A mask path names a field of the resource, or a field inside a message field with dots
(``notificationConfig.pubsubTopic``, what ``gcloud healthcare dicom-stores update
--pubsub-topic`` sends). The field in the request body replaces the stored one; a field
named in the mask but absent from the body is cleared (FieldMask semantics, see the
``updateMask`` description in the discovery documents and google.protobuf.FieldMask).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dicom_transfer_emulator.errors import invalid_argument

#: Updatable fields: top-level name -> sub-fields a nested path may name (empty: none).
Updatable = Mapping[str, frozenset[str]]


def mask_paths(text: str | None) -> list[str]:
    """The comma-separated paths of an ``updateMask`` query value.

    Raises:
        ApiException: 400 when the mask is missing or empty.
    """
    paths = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not paths:
        raise invalid_argument("updateMask is required.")
    return paths


def apply_update_mask(
    current: Mapping[str, Any], body: Mapping[str, Any], paths: list[str], updatable: Updatable
) -> tuple[dict[str, Any], list[str]]:
    """Compute the new top-level values a masked update produces.

    Args:
        current: the stored resource.
        body: the request body (the resource with the new values).
        paths: the mask's paths.
        updatable: fields that may be updated, with the sub-fields of message fields.

    Returns:
        ``(changes, removed)``: top-level fields to set, top-level fields to clear.

    Raises:
        ApiException: 400 naming the path when the mask names a field that cannot be
            updated, with the allowed paths.
    """
    allowed = sorted(
        [*updatable, *(f"{top}.{sub}" for top, subs in updatable.items() for sub in subs)]
    )
    result = {k: copy.deepcopy(v) for k, v in current.items() if k in updatable}
    for path in paths:
        top, _, sub = path.partition(".")
        if top not in updatable or (sub and sub not in updatable[top]):
            raise invalid_argument(
                f"updateMask path {path!r} cannot be updated; allowed: " + ", ".join(allowed)
            )
        if not sub:
            if top in body and body[top] is not None:
                result[top] = copy.deepcopy(body[top])
            else:
                result.pop(top, None)
            continue
        given = body.get(top)
        if given is not None and not isinstance(given, dict):
            raise invalid_argument(f"Invalid value at '{top}': expected an object.")
        message = dict(result.get(top) or {})
        if given is not None and given.get(sub) is not None:
            message[sub] = copy.deepcopy(given[sub])
        else:
            message.pop(sub, None)
        if message:
            result[top] = message
        else:
            result.pop(top, None)
    touched = {p.partition(".")[0] for p in paths}
    changes = {k: v for k, v in result.items() if k in touched}
    removed = sorted(k for k in touched if k not in result)
    return changes, removed


__all__ = ["Updatable", "apply_update_mask", "mask_paths"]
