"""A scripted Healthcare API (no HTTP) and the fake time that drive ``run_transfer``.

``FakeApi`` stands in for ``HealthcareApi`` by duck typing: submits, ``operations.get`` answers
and the operations listing are scripted, and every call is recorded. ``run`` calls
``run_transfer`` with ``FakeTime``'s monotonic clock, wall clock and sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dicom_transfer.errors import NotFound
from dicom_transfer.healthcare.journal import Journal
from dicom_transfer.healthcare.transfer import run_transfer
from dicom_transfer.specs.props import WaitPolicy, import_spec_from_props
from dicom_transfer.specs.requests import TransferSpec

from support.clock import FakeClock

DATASET = "projects/my-project/locations/us/datasets/d"
STORE = f"{DATASET}/dicomStores/s"
OP = f"{DATASET}/operations/100"
FP = "cd" * 32
BODY = {"gcsSource": {"uri": "gs://raw-images/in/**.dcm"}}
IMPORT_SPEC = import_spec_from_props({"dicom_store": STORE, "gcs_uri": "gs://raw-images/in/**.dcm"})
IMPORT_METHOD = "google.cloud.healthcare.v1.dicom.DicomService.ImportDicomData"
EXPORT_METHOD = "google.cloud.healthcare.v1.dicom.DicomService.ExportDicomData"
SUBMITTED_AT = 1_714_557_600.0  # 2024-05-01T10:00:00Z


class FakeTime(FakeClock):
    """The shared fake clock (from 0 s), with the wall time of the transfer's submit."""

    def wall(self) -> float:
        return SUBMITTED_AT + self.now


def op(
    name: str = OP,
    *,
    done: bool = False,
    success: int = 0,
    failure: int = 0,
    error: dict[str, Any] | None = None,
    method: str = IMPORT_METHOD,
    created: str = "2024-05-01T10:00:01.5Z",
) -> dict[str, Any]:
    """An operation as ``operations.get`` answers it (counters as strings, as the API sends)."""
    result: dict[str, Any] = {
        "name": name,
        "metadata": {
            "apiMethodName": method,
            "createTime": created,
            "logsUrl": "https://logs/q",
            "counter": {"success": str(success), "failure": str(failure)},
        },
    }
    if done:
        result["done"] = True
    if error:
        result["error"] = error
    return result


class FakeApi:
    """Duck-typed HealthcareApi: scripted submits, operations and listings."""

    def __init__(
        self,
        *,
        submits: list[Any] | None = None,
        operations: dict[str, list[dict[str, Any]]] | None = None,
        listing: list[dict[str, Any]] | None = None,
    ) -> None:
        self.submit_script = list(submits or [])
        self.operations = operations or {}
        self.listing = listing or []
        self.submitted: list[tuple[str, dict[str, Any]]] = []
        self.gets: list[str] = []

    def _submit(self, store: str, body: dict[str, Any]) -> str:
        self.submitted.append((store, body))
        outcome = self.submit_script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)

    submit_import = _submit
    submit_export = _submit

    def get_operation(self, name: str) -> dict[str, Any]:
        self.gets.append(name)
        if name not in self.operations:
            raise NotFound(404, "NOT_FOUND", f"{name} not found")
        states = self.operations[name]
        return states.pop(0) if len(states) > 1 else states[0]

    def list_operations(self, dataset_name: str) -> Iterator[dict[str, Any]]:
        assert dataset_name == DATASET
        yield from self.listing


def run(
    api: Any,
    journal: Journal,
    fake: FakeTime,
    *,
    policy: WaitPolicy | None = None,
    spec: TransferSpec = IMPORT_SPEC,
) -> tuple[Any, list[str]]:
    """``run_transfer`` of ``spec`` on the fake time; returns its result and the lines it wrote."""
    lines: list[str] = []
    result = run_transfer(
        api,
        spec,
        FP,
        policy or WaitPolicy(),
        journal,
        lines.append,
        clock=fake.clock,
        wall_clock=fake.wall,
        sleep=fake.sleep,
    )
    return result, lines
