"""Run Pulumi programs under ``pulumi.runtime.set_mocks`` and record what they register."""

from __future__ import annotations

import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

SERVICE_AGENT = "service-123456789012@gcp-sa-healthcare.iam.gserviceaccount.com"


@dataclass
class Registered:
    """One resource registration as the engine would have seen it."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str
    dependencies: list[str]
    provider: str
    request: Any = None
    """The raw ``RegisterResourceRequest`` (resource options: ``protect``, ``aliases``, …)."""


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Gives each resource plausible outputs (the agent's email, an operation name)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            state.update(email=SERVICE_AGENT, member=f"serviceAccount:{SERVICE_AGENT}")
        if args.typ == "gcp:storage/bucket:Bucket":
            state.setdefault("name", args.name)
            state["url"] = f"gs://{state['name']}"
        if args.typ == "gcp:healthcare/dataset:Dataset":
            state.setdefault("name", args.name)
            state["id"] = (
                f"projects/demo-project/locations/{state['location']}/datasets/{state['name']}"
            )
        if args.typ == "gcp:healthcare/dicomStore:DicomStore":
            state.setdefault("name", args.name)
            state["id"] = f"{state['dataset']}/dicomStores/{state['name']}"
        if args.typ == "pulumi-python:dynamic:Resource":
            state.update(
                operation_name=f"projects/p/locations/l/datasets/d/operations/{args.name}",
                success_count=3,
                failure_count=0,
            )
        return str(state.get("id", f"{args.name}-id")), state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


@dataclass
class Stack:
    """What a program registered."""

    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"{name}: {len(matches)} registrations"
        return matches[0]


class _RecordingMonitor(MockMonitor):
    def __init__(self, mocks: RecordingMocks, stack: Stack) -> None:
        super().__init__(mocks)
        self._stack = stack

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
            self._stack.resources.append(
                Registered(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    inputs=inputs,
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                    request=request,
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.endswith("::" + self._stack_name()):
            self._stack.outputs = pulumi.runtime.rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)

    @staticmethod
    def _stack_name() -> str:
        return f"{pulumi.get_project()}-{pulumi.get_stack()}"


def run_under_mocks(
    program: Callable[[], Any] | Path,
    *,
    project: str = "test-project",
    config: Mapping[str, Any] | None = None,
) -> Stack:
    """Runs ``program`` (a callable or a ``__main__.py`` path) and returns its registrations."""
    stack = Stack()
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(
        mocks,
        project=project,
        stack="test",
        preview=False,
        monitor=_RecordingMonitor(mocks, stack),
    )
    pulumi.runtime.set_all_config(
        {
            key: value if isinstance(value, str) else _json(value)
            for key, value in (config or {}).items()
        }
    )

    @pulumi.runtime.test
    def body() -> None:
        if isinstance(program, Path):
            runpy.run_path(str(program), run_name="__main__")
        else:
            program()

    body()
    return stack


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
