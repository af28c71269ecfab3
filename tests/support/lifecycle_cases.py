"""Lifecycle cases shared by the two front ends (dynamic and native providers).

Each case is written once in snake_case props; the dynamic adapter gets them as they are, the
native adapter as the schema's camelCase property values. Both must answer the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dicom_transfer.native.schema import RESOURCE_TOKENS
from dicom_transfer.specs.inputs import TransferKind
from dicom_transfer.specs.problems import UNKNOWN

from support.scripted_http import LOGS, OPERATION, STORE

_T = TypeVar("_T")


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Runs ``coroutine`` on a loop of its own, leaving the thread's current loop alone.

    ``asyncio.run`` clears the current loop when it ends, which breaks later tests whose
    Pulumi SDK (3.231) asks for the current loop.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


IMPORT: dict[str, Any] = {
    "dicom_store": STORE,
    "gcs_uri": "gs://raw-dicom/incoming/**.dcm",
    "api_version": "v1",
    "timeout_seconds": 600.0,
    "max_failures": 0.0,
}
EXPORT: dict[str, Any] = {
    "dicom_store": STORE,
    "gcs_destination": {"uri_prefix": "gs://out-dicom/copy", "mime_type": "image/png"},
    "filter_resource_paths": ["/studies/1.2.3", "/studies/4.5/series/6.7"],
    "filter_staging_uri": "gs://out-dicom/filters",
    "api_version": "v1",
    "timeout_seconds": 600.0,
}
DEFAULTS: dict[TransferKind, dict[str, Any]] = {"import": IMPORT, "export": EXPORT}

# The inputs as the engine hands them to the dynamic providers: the resource's name and the
# endpoints too (nothing listens on port 9; the scripted transport answers every request).
ENDPOINT = "http://127.0.0.1:9/"
IMPORT_PROPS: dict[str, Any] = {**IMPORT, "resource_name": "load", "endpoint": ENDPOINT}
EXPORT_PROPS: dict[str, Any] = {
    **EXPORT,
    "resource_name": "copy",
    "endpoint": ENDPOINT,
    "storage_endpoint": ENDPOINT,
}


def urn(kind: TransferKind, name: str = "t") -> str:
    """The URN the engine gives the native provider for the resource ``name`` of ``kind``."""
    return f"urn:pulumi:local::dicom::{RESOURCE_TOKENS[kind]}::{name}"


def recorded(props: dict[str, Any]) -> dict[str, Any]:
    """The state of a created transfer with ``props``."""
    return {
        **props,
        "operation_name": OPERATION,
        "success_count": 7.0,
        "failure_count": 0.0,
        "create_time": "t0",
        "end_time": "t1",
        "logs_url": LOGS,
    }


@dataclass(frozen=True)
class Case:
    """Inputs of one kind: its defaults updated by ``change``."""

    id: str
    kind: TransferKind
    change: dict[str, Any]

    @property
    def props(self) -> dict[str, Any]:
        return {**DEFAULTS[self.kind], **self.change}


@dataclass(frozen=True)
class CheckCase(Case):
    """Inputs and the fields check must name."""

    failing: set[str] = field(default_factory=set)


CHECK_CASES = (
    CheckCase("valid import", "import", {}, set()),
    CheckCase("valid export", "export", {}, set()),
    CheckCase(
        "bad fields named",
        "import",
        {"dicom_store": "projects/p/../x", "gcs_uri": "gs://b/**/x/*.dcm", "timeout_seconds": -1},
        {"dicom_store", "gcs_uri", "timeout_seconds"},
    ),
    CheckCase("unknown passes", "import", {"dicom_store": UNKNOWN, "gcs_uri": UNKNOWN}, set()),
    # A nested problem names its top-level input (the engine prints that input's value; a
    # path would print {<nil>}); the reason names the path (checked in the front-end tests).
    CheckCase(
        "nested field: its input named",
        "export",
        {"gcs_destination": {"uri_prefix": "s3://x", "mime_type": "image/png"}},
        {"gcs_destination"},
    ),
    CheckCase(
        "list item: its input named",
        "export",
        {"filter_resource_paths": ["/studies/1.2.3", "/series/x"]},
        {"filter_resource_paths"},
    ),
)


@dataclass(frozen=True)
class DiffCase(Case):
    """A change of a created transfer's inputs (``props``) and what diff must say of it."""

    replaces: list[str] = field(default_factory=list)
    changed: bool = True
    old_change: dict[str, Any] = field(default_factory=dict)

    @property
    def olds(self) -> dict[str, Any]:
        return recorded({**DEFAULTS[self.kind], **self.old_change})


DIFF_CASES = (
    DiffCase("no change", "import", {}, [], changed=False),
    DiffCase("source replaces", "import", {"gcs_uri": "gs://raw-dicom/other/*.dcm"}, ["gcs_uri"]),
    DiffCase("triggers replace", "import", {"triggers": ["rerun-1"]}, ["triggers"]),
    DiffCase("unknown replaces", "import", {"gcs_uri": UNKNOWN}, ["gcs_uri"]),
    DiffCase("timeout updates", "import", {"timeout_seconds": 7200.0}, []),
    DiffCase("tolerance updates", "import", {"max_failures": 5.0}, []),
    DiffCase(
        "same request spelled otherwise",
        "export",
        {"gcs_destination": {"uri_prefix": "gs://out-dicom/copy", "mime_type": "IMAGE/PNG"}},
        [],
        changed=False,
    ),
    DiffCase(
        "filter list replaces",
        "export",
        {"filter_resource_paths": ["/studies/1.2.3"]},
        ["filter_resource_paths"],
    ),
)
