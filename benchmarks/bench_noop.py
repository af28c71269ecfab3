"""A dynamic resource that does nothing: the baseline of section ``p3``.

It lives in an importable module (the benchmarks put this directory on ``PYTHONPATH``) so
that its provider is pickled by reference, as ``dicom_transfer``'s providers are.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider


class NoOpProvider(ResourceProvider):
    """Accepts any inputs, creates nothing, never sees a change."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Echoes the inputs."""
        return CreateResult(id_="noop", outs=props)

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        """Nothing to change."""
        return DiffResult(changes=False)


class NoOp(Resource):
    """One no-op resource holding ``props`` as its inputs."""

    def __init__(
        self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(NoOpProvider(), name, props, opts)
