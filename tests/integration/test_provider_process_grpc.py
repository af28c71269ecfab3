"""The real dynamic-provider process, driven over gRPC the way the Pulumi engine drives it.

``python -m pulumi.dynamic`` is what the engine starts for ``pulumi-python:dynamic:Resource``
(through the ``pulumi-resource-pulumi-python`` shim). It prints its port, then serves the
ResourceProvider service; every request carries the base64 dill payload of the provider
under ``__provider``, built here exactly as ``pulumi.dynamic.Resource`` builds it. The
process finds the emulator through the environment (``HEALTHCARE_EMULATOR_HOST``,
``STORAGE_EMULATOR_HOST``), not through inputs, and keeps its journal under its own
``DICOM_TRANSFER_STATE_DIR``. Its default poll and retry schedules are used (no patching
crosses a process boundary), so each create takes about a second.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from dicom_transfer import DicomExportProvider, DicomImportProvider
from dicom_transfer_emulator.app import Emulator
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc
from support.integration import (
    EXPORT_BUCKET,
    PROJECT,
    SOURCE_BUCKET,
    Instance,
    corpus_files,
    expected_distinct_import,
    operation_count,
    read_instance,
    upload,
)

IMPORT_TYPE = "pulumi-python:dynamic:Resource"
PROVIDER_KEY = "__provider"
START_TIMEOUT_S = 60.0
RPC_TIMEOUT_S = 60.0


def urn(name: str) -> str:
    """The URN the engine would give a dynamic resource of this stack."""
    return f"urn:pulumi:test::dicom::{IMPORT_TYPE}::{name}"


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    """Properties as the engine sends them (``pulumi.runtime.rpc`` encoding)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Decoded properties of a response."""
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True))


def with_provider(provider: ResourceProvider, props: dict[str, Any]) -> dict[str, Any]:
    """``props`` plus ``__provider`` exactly as ``pulumi.dynamic.Resource`` adds it."""
    return {**props, PROVIDER_KEY: serialize_provider(provider)}


@dataclass
class ProviderProcess:
    """A running ``python -m pulumi.dynamic`` and a stub talking to it."""

    process: subprocess.Popen[bytes]
    stub: provider_pb2_grpc.ResourceProviderStub
    stderr_path: Path
    journal_dir: Path

    def journal_files(self) -> list[Path]:
        """Journal records the process left (none once its transfers finished)."""
        return sorted(self.journal_dir.glob("*.json")) if self.journal_dir.exists() else []

    def stderr(self) -> str:
        """What the process printed to stderr so far (the engine shows it as info lines)."""
        return self.stderr_path.read_text()


@pytest.fixture(scope="module")
def provider_process(
    emulator_session: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderProcess]:
    """The provider process (one per module), pointed at the session's emulator."""
    workdir = tmp_path_factory.mktemp("provider-process")
    stderr_path = workdir / "stderr.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DICOM_TRANSFER_", "STORAGE_EMULATOR", "GOOGLE_"))
    }
    env.update(
        {
            "HEALTHCARE_EMULATOR_HOST": emulator_session.healthcare_url,
            "STORAGE_EMULATOR_HOST": emulator_session.storage_url,
            "DICOM_TRANSFER_STATE_DIR": str(workdir / "journal"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "pulumi.dynamic"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=workdir,
        )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(START_TIMEOUT_S)
        line = process.stdout.readline() if ready else b""
        assert line.strip().isdigit(), (
            f"no port from the provider process: {line!r}; stderr: {stderr_path.read_text()}"
        )
        channel = grpc.insecure_channel(f"127.0.0.1:{int(line)}")
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_S)
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        stub.Configure(
            provider_pb2.ConfigureRequest(args=to_struct({}), acceptSecrets=False),
            timeout=RPC_TIMEOUT_S,
        )
        yield ProviderProcess(process, stub, stderr_path, workdir / "journal")
        channel.close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # the server's clean stop (KeyboardInterrupt)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def rpc_provider(provider_process: ProviderProcess, emulator: Emulator) -> ProviderProcess:
    """The provider process, with the emulator reset for this test."""
    assert provider_process.process.poll() is None, provider_process.stderr()
    return provider_process


def check(
    stub: provider_pb2_grpc.ResourceProviderStub,
    name: str,
    news: dict[str, Any],
    olds: dict[str, Any] | None = None,
) -> provider_pb2.CheckResponse:
    request = provider_pb2.CheckRequest(
        urn=urn(name), olds=to_struct(olds or {}), news=to_struct(news), name=name, type=IMPORT_TYPE
    )
    response: provider_pb2.CheckResponse = stub.Check(request, timeout=RPC_TIMEOUT_S)
    return response


def diff(
    stub: provider_pb2_grpc.ResourceProviderStub,
    name: str,
    id_: str,
    olds: dict[str, Any],
    news: dict[str, Any],
) -> provider_pb2.DiffResponse:
    request = provider_pb2.DiffRequest(
        id=id_,
        urn=urn(name),
        olds=to_struct(olds),
        news=to_struct(news),
        name=name,
        type=IMPORT_TYPE,
    )
    response: provider_pb2.DiffResponse = stub.Diff(request, timeout=RPC_TIMEOUT_S)
    return response


def create(
    stub: provider_pb2_grpc.ResourceProviderStub, name: str, props: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    request = provider_pb2.CreateRequest(
        urn=urn(name), properties=to_struct(props), timeout=300, name=name, type=IMPORT_TYPE
    )
    response = stub.Create(request, timeout=RPC_TIMEOUT_S)
    return response.id, from_struct(response.properties)


def read(
    stub: provider_pb2_grpc.ResourceProviderStub,
    name: str,
    id_: str,
    props: dict[str, Any],
    inputs: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    request = provider_pb2.ReadRequest(
        id=id_,
        urn=urn(name),
        properties=to_struct(props),
        inputs=to_struct(inputs),
        name=name,
        type=IMPORT_TYPE,
    )
    response = stub.Read(request, timeout=RPC_TIMEOUT_S)
    return response.id, from_struct(response.properties)


def update(
    stub: provider_pb2_grpc.ResourceProviderStub,
    name: str,
    id_: str,
    olds: dict[str, Any],
    news: dict[str, Any],
) -> dict[str, Any]:
    request = provider_pb2.UpdateRequest(
        id=id_,
        urn=urn(name),
        olds=to_struct(olds),
        news=to_struct(news),
        timeout=300,
        name=name,
        type=IMPORT_TYPE,
    )
    return from_struct(stub.Update(request, timeout=RPC_TIMEOUT_S).properties)


def delete(
    stub: provider_pb2_grpc.ResourceProviderStub, name: str, id_: str, props: dict[str, Any]
) -> None:
    request = provider_pb2.DeleteRequest(
        id=id_, urn=urn(name), properties=to_struct(props), name=name, type=IMPORT_TYPE
    )
    stub.Delete(request, timeout=RPC_TIMEOUT_S)


def import_inputs(store: str, **overrides: Any) -> dict[str, Any]:
    """What ``DicomImport`` registers (None values dropped, as the engine drops them)."""
    props: dict[str, Any] = {
        "resource_name": "load",
        "dicom_store": store,
        "gcs_uri": f"gs://{SOURCE_BUCKET}/incoming/**.dcm",
        "api_version": "v1",
        "timeout_seconds": 60.0,
        "max_failures": 0,
        "permission_retry_seconds": 600.0,
        **overrides,
    }
    return with_provider(DicomImportProvider(), props)


def export_inputs(store: str, **overrides: Any) -> dict[str, Any]:
    """What ``DicomExport`` registers for a Cloud Storage export with an inline filter."""
    props: dict[str, Any] = {
        "resource_name": "copy",
        "dicom_store": store,
        "gcs_destination": {"uri_prefix": f"gs://{EXPORT_BUCKET}/copy"},
        "filter_staging_uri": f"gs://{EXPORT_BUCKET}/filters",
        "api_version": "v1",
        "timeout_seconds": 60.0,
        "max_failures": 0,
        "permission_retry_seconds": 600.0,
        **overrides,
    }
    return with_provider(DicomExportProvider(), props)


def stored(emu: Emulator, store: str) -> set[Instance]:
    return {
        Instance(r.study_uid, r.series_uid, r.sop_instance_uid)
        for r in emu.healthcare.state.list_instances(store)
    }


# --- check -----------------------------------------------------------------------------------


def test_check_names_each_bad_field(rpc_provider: ProviderProcess, store: str) -> None:
    bad_import = import_inputs(
        store, dicom_store="projects/p/../x", gcs_uri="gs://b/**/x/*.dcm", timeout_seconds=-1.0
    )
    bad_export = export_inputs(
        store,
        gcs_destination={"uri_prefix": f"gs://{EXPORT_BUCKET}/copy", "mime_type": "text/html"},
        filter_resource_paths=["/studies/1.2.3", "/patients/4"],
    )

    import_failures = check(rpc_provider.stub, "load", bad_import).failures
    export_failures = check(rpc_provider.stub, "copy", bad_export).failures

    assert {f.property for f in import_failures} == {"dicom_store", "gcs_uri", "timeout_seconds"}
    assert all(f.reason for f in import_failures)
    reasons = {f.property: f.reason for f in import_failures}
    assert "projects/p/../x" in reasons["dicom_store"]
    assert {f.property for f in export_failures} == {"gcs_destination", "filter_resource_paths"}
    reasons = {f.property: f.reason for f in export_failures}
    assert reasons["gcs_destination"].startswith("gcs_destination.mime_type: ")
    assert reasons["filter_resource_paths"].startswith("filter_resource_paths[1]: ")


def test_check_accepts_good_and_unknown_inputs(rpc_provider: ProviderProcess, store: str) -> None:
    good = import_inputs(store)
    preview = import_inputs(store, dicom_store=rpc.UNKNOWN)

    response = check(rpc_provider.stub, "load", good)
    unknown = check(rpc_provider.stub, "load", preview)

    assert list(response.failures) == []
    assert from_struct(response.inputs) == good
    assert list(unknown.failures) == []


# --- import: check, create, diff, read, update, delete ----------------------------------------


def test_import_lifecycle(rpc_provider: ProviderProcess, emulator: Emulator, store: str) -> None:
    stub = rpc_provider.stub
    files = corpus_files()
    upload(emulator, files)
    expected = expected_distinct_import(files)
    inputs = from_struct(check(stub, "load", import_inputs(store)).inputs)

    id_, outs = create(stub, "load", inputs)

    assert id_ == outs["operation_name"]
    assert id_.startswith(store.split("/dicomStores/")[0] + "/operations/")
    assert (outs["success_count"], outs["failure_count"]) == (expected.success, 0)
    assert outs["logs_url"].startswith(emulator.healthcare_url)
    assert outs[PROVIDER_KEY] == inputs[PROVIDER_KEY]
    assert stored(emulator, store) == expected.instances
    assert operation_count(emulator, "import") == 1

    assert diff(stub, "load", id_, outs, inputs).changes == provider_pb2.DiffResponse.DIFF_NONE
    wait_change = diff(stub, "load", id_, outs, {**inputs, "timeout_seconds": 7200.0})
    assert wait_change.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(wait_change.replaces) == []
    source_change = diff(stub, "load", id_, outs, {**inputs, "gcs_uri": "gs://raw-dicom/x/*.dcm"})
    assert list(source_change.replaces) == ["gcs_uri"]
    preview_change = diff(stub, "load", id_, outs, {**inputs, "gcs_uri": rpc.UNKNOWN})
    assert list(preview_change.replaces) == ["gcs_uri"]

    read_id, refreshed = read(stub, "load", id_, {**outs, "success_count": 0}, inputs)
    assert read_id == id_
    assert refreshed == outs

    updated = update(stub, "load", id_, outs, {**inputs, "timeout_seconds": 7200.0})
    assert updated["timeout_seconds"] == 7200.0
    assert updated["operation_name"] == id_
    assert updated["success_count"] == expected.success

    delete(stub, "load", id_, updated)
    assert stored(emulator, store) == expected.instances
    assert operation_count(emulator, "import") == 1
    log = rpc_provider.stderr()
    assert f"submitted {id_}" in log
    assert "deleted none of the data it imported" in log
    assert rpc_provider.journal_files() == []


def test_a_failed_create_reports_through_grpc(
    rpc_provider: ProviderProcess, emulator: Emulator, store: str
) -> None:
    upload(emulator, {"incoming/notes.dcm": b"not DICOM at all"})

    with pytest.raises(grpc.RpcError) as caught:
        create(rpc_provider.stub, "load", import_inputs(store))

    error = caught.value
    assert isinstance(error, grpc.Call)
    details = error.details() or ""
    assert "/operations/" in details
    assert "success=0 failure=1" in details
    assert f"logs: {emulator.healthcare_url}/_emulator/logs/" in details
    assert operation_count(emulator, "import") == 1


# --- export ----------------------------------------------------------------------------------


def test_export_lifecycle(rpc_provider: ProviderProcess, emulator: Emulator, store: str) -> None:
    stub = rpc_provider.stub
    files = corpus_files()
    upload(emulator, files)
    emulator.storage.create_bucket(EXPORT_BUCKET, PROJECT)
    create(stub, "load", import_inputs(store))
    instances = sorted(expected_distinct_import(files).instances, key=lambda i: i.sop)
    chosen = instances[:2]
    paths = [i.path for i in chosen]
    inputs = from_struct(
        check(stub, "copy", export_inputs(store, filter_resource_paths=paths)).inputs
    )

    id_, outs = create(stub, "copy", inputs)

    assert id_ == outs["operation_name"]
    assert (outs["success_count"], outs["failure_count"]) == (2, 0)
    objects, _ = emulator.storage.list_objects(EXPORT_BUCKET, "copy/")
    assert {o.name for o in objects} == {f"copy/{i.object_suffix}.dcm" for i in chosen}
    for instance in chosen:
        data = emulator.storage.read_object(EXPORT_BUCKET, f"copy/{instance.object_suffix}.dcm")
        assert read_instance(data) == instance
    filter_name = outs["filter_uri"].removeprefix(f"gs://{EXPORT_BUCKET}/")
    assert emulator.storage.read_object(EXPORT_BUCKET, filter_name).decode().split() == paths

    changed = diff(stub, "copy", id_, outs, {**inputs, "filter_resource_paths": paths[:1]})
    assert list(changed.replaces) == ["filter_resource_paths"]
    read_id, refreshed = read(stub, "copy", id_, outs, inputs)
    assert (read_id, refreshed) == (id_, outs)
    updated = update(stub, "copy", id_, outs, {**inputs, "max_failures": 3})
    assert (updated["max_failures"], updated["filter_uri"]) == (3, outs["filter_uri"])

    delete(stub, "copy", id_, updated)
    assert len(emulator.storage.list_objects(EXPORT_BUCKET, "copy/")[0]) == 2
    assert len(stored(emulator, store)) == len(instances)
    assert operation_count(emulator, "export") == 1


def test_concurrent_creates_share_one_process(
    rpc_provider: ProviderProcess, emulator: Emulator, store: str
) -> None:
    """The process serves up to four calls at once (one thread each): three imports that
    overlap in time all finish, each with its own operation and exact counters."""
    files = corpus_files()
    groups: dict[str, dict[str, bytes]] = {}
    for index, (name, data) in enumerate(sorted(files.items())):
        part = f"part{index % 3}"
        groups.setdefault(part, {})[name.replace("incoming/", f"{part}/")] = data
    for group in groups.values():
        upload(emulator, group)
    emulator.faults.set_operation_timing(operation_seconds=1.5)
    requests = {
        part: import_inputs(store, resource_name=part, gcs_uri=f"gs://{SOURCE_BUCKET}/{part}/*.dcm")
        for part in groups
    }

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        futures = {
            part: pool.submit(create, rpc_provider.stub, part, props)
            for part, props in requests.items()
        }
        results = {part: future.result() for part, future in futures.items()}
    elapsed = time.monotonic() - started

    assert elapsed < 3 * 1.5  # they ran side by side, not one after the other
    assert len({id_ for id_, _outs in results.values()}) == 3
    for part, (_id, outs) in results.items():
        assert outs["success_count"] == expected_distinct_import(groups[part]).success
        assert outs["failure_count"] == 0
    assert stored(emulator, store) == expected_distinct_import(files).instances
    assert operation_count(emulator, "import") == 3
    assert rpc_provider.journal_files() == []
