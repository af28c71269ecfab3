"""IAM methods of the emulated Healthcare API beyond the DICOM store's own policy.

Served::

    GET|POST {v}/…/datasets/D:getIamPolicy         POST {v}/…/datasets/D:setIamPolicy
    POST     {v}/…/datasets/D:testIamPermissions    POST {v}/…/dicomStores/S:testIamPermissions

Policies are stored, never enforced: the emulator has no callers' identities, so
``testIamPermissions`` answers every permission asked (the caller "has" them all). Shapes
and rules come from the discovery documents' ``Policy``, ``SetIamPolicyRequest`` and
``TestIamPermissionsRequest`` schemas ("Permissions with wildcards (such as `*` or
`storage.*`) are not allowed").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dicom_transfer_emulator.errors import invalid_argument
from dicom_transfer_emulator.healthcare.state import HealthcareState
from dicom_transfer_emulator.iam.policy import PolicyError, validate_policy
from dicom_transfer_emulator.server.http import Request, Response
from dicom_transfer_emulator.server.routing import Route

#: ``service.resource.verb`` (IAM permission names); wildcards are refused.
_PERMISSION_RE = re.compile(r"[a-z][a-zA-Z0-9]*(\.[a-zA-Z][a-zA-Z0-9]*){2,}")
_SET_POLICY_FIELDS = frozenset({"policy", "updateMask"})


def parse_set_policy(body: dict[str, Any]) -> dict[str, Any]:
    """The ``policy`` of a ``setIamPolicy`` request body, validated.

    Raises:
        ApiException: 400 naming the field when the body or a binding is malformed.
    """
    unknown = sorted(set(body) - _SET_POLICY_FIELDS)
    if unknown:
        raise invalid_argument(
            f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
        )
    policy = body.get("policy")
    if not isinstance(policy, dict):
        raise invalid_argument("policy is required.")
    try:
        validate_policy(policy)  # the one IAM rule, shared with Cloud Storage buckets
    except PolicyError as exc:
        raise invalid_argument(str(exc)) from None
    return policy


def granted_permissions(body: dict[str, Any]) -> dict[str, Any]:
    """The ``TestIamPermissionsResponse`` for a request body: every permission asked.

    Raises:
        ApiException: 400 when ``permissions`` is not a list of permission names.
    """
    permissions = body.get("permissions")
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise invalid_argument("permissions must be a list of strings.")
    for permission in permissions:
        if not _PERMISSION_RE.fullmatch(permission):
            raise invalid_argument(
                f"Invalid permission {permission!r} in permissions: expected a name such as "
                "healthcare.dicomStores.get; wildcards are not allowed."
            )
    return {"permissions": permissions} if permissions else {}


class IamRoutes:
    """Dataset IAM policy and ``testIamPermissions`` routes.

    Args:
        state: the Healthcare state (dataset policies).
        dataset_name: validated dataset name of a request.
        store_name: validated DICOM store name of a request.
    """

    def __init__(
        self,
        state: HealthcareState,
        *,
        dataset_name: Callable[[Request], str],
        store_name: Callable[[Request], str],
    ) -> None:
        self.state = state
        self._dataset_name = dataset_name
        self._store_name = store_name

    def routes(self, dataset_rule: str, store_rule: str) -> list[Route]:
        """The routes for the dataset and store werkzeug rules (names as in dicomweb)."""
        ds, st = "datasets.", "datasets.dicomStores."
        return [
            ("GET", dataset_rule + ":getIamPolicy", self.get_dataset_policy, ds + "getIamPolicy"),
            ("POST", dataset_rule + ":getIamPolicy", self.get_dataset_policy, ds + "getIamPolicy"),
            ("POST", dataset_rule + ":setIamPolicy", self.set_dataset_policy, ds + "setIamPolicy"),
            (
                "POST",
                dataset_rule + ":testIamPermissions",
                self.test_dataset_permissions,
                ds + "testIamPermissions",
            ),
            (
                "POST",
                store_rule + ":testIamPermissions",
                self.test_store_permissions,
                st + "testIamPermissions",
            ),
        ]

    def get_dataset_policy(self, request: Request) -> Response:
        """``datasets.getIamPolicy``."""
        return Response.json_response(self.state.get_dataset_policy(self._dataset_name(request)))

    def set_dataset_policy(self, request: Request) -> Response:
        """``datasets.setIamPolicy`` (a stale ``etag`` is 409 ABORTED)."""
        name = self._dataset_name(request)
        policy = parse_set_policy(request.json())
        return Response.json_response(self.state.set_dataset_policy(name, policy))

    def test_dataset_permissions(self, request: Request) -> Response:
        """``datasets.testIamPermissions``."""
        self.state.get_dataset(self._dataset_name(request))
        return Response.json_response(granted_permissions(request.json()))

    def test_store_permissions(self, request: Request) -> Response:
        """``dicomStores.testIamPermissions``."""
        self.state.get_store(self._store_name(request))
        return Response.json_response(granted_permissions(request.json()))


__all__ = ["IamRoutes", "granted_permissions", "parse_set_policy"]
