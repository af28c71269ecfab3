"""Request fingerprints: the identity under which the journal finds an interrupted submit."""

from __future__ import annotations

import hashlib
import json

from dicom_transfer.specs.requests import TransferSpec

__all__ = ["request_fingerprint"]


def request_fingerprint(spec: TransferSpec, triggers: object, resource_name: str) -> str:
    """Identity of an import or export request, used to find an interrupted submit again.

    Covers what changes the request (kind, store, body -- an inline export filter through its
    content-addressed staged URI --, API version), the triggers and the resource name; not the
    wait policy, so changing how long to wait resumes the same operation.

    Args:
        spec: The request.
        triggers: The resource's ``triggers`` input (any JSON value).
        resource_name: The resource's name.

    Returns:
        A sha256 hex digest of canonical JSON (sorted keys, no spaces).
    """
    document = {
        "kind": spec.kind,
        "store": spec.store.name,
        "api_version": spec.api_version,
        "body": spec.request_body(),
        "triggers": triggers,
        "resource_name": resource_name,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
