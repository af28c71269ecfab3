"""The providers as ``pulumi.dynamic`` serializes them into the ``__provider`` input.

The payload must name the installed class (``dicom_transfer.providers``) by reference -- so
the provider process imports the real code instead of unpickling a copy captured by value --
and must carry no state: no client, credential, socket or lock, not even after a create ran.
"""

from __future__ import annotations

import base64
import pickletools
import subprocess
import sys
from typing import Any

import dill
import pytest
from dicom_transfer import DicomExportProvider, DicomImportProvider
from dicom_transfer_emulator.app import Emulator
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from support.integration import EXPORT_BUCKET, PROJECT, SOURCE_BUCKET, corpus_files, upload

MAX_PAYLOAD_BYTES = 2048
FORBIDDEN = (
    b"googleapiclient",
    b"httplib2",
    b"google.auth",
    b"Credentials",
    b"socket",
    b"threading",
    b"_local",
    b"HealthcareApi",
    b"StorageApi",
    b"Journal",
    b"token",
)
PROVIDERS = [DicomImportProvider, DicomExportProvider]


def payload(provider: ResourceProvider) -> bytes:
    """The pickle bytes behind the base64 ``__provider`` string."""
    return base64.b64decode(serialize_provider(provider))


def global_references(data: bytes) -> set[tuple[str, str]]:
    """``(module, name)`` of every global the pickle refers to."""
    strings: list[str] = []
    found = set()
    for opcode, arg, _pos in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(str(arg))
        elif opcode.name == "STACK_GLOBAL":
            found.add((strings[-2], strings[-1]))
        elif opcode.name in ("GLOBAL", "INST"):
            module, name = str(arg).split(" ", 1)
            found.add((module, name))
    return found


def assert_stateless_payload(data: bytes, cls: type[ResourceProvider]) -> None:
    assert len(data) < MAX_PAYLOAD_BYTES
    assert global_references(data) == {("dicom_transfer.providers", cls.__name__)}
    for word in FORBIDDEN:
        assert word not in data, f"{word!r} in the pickled provider"
    restored = dill.loads(data)
    assert type(restored) is cls  # by reference: the very class, not a copy made by dill
    assert vars(restored) == {}


@pytest.mark.parametrize("cls", PROVIDERS)
def test_payload_is_small_and_refers_to_the_installed_class(
    cls: type[ResourceProvider],
) -> None:
    assert_stateless_payload(payload(cls()), cls)


@pytest.mark.parametrize("cls", PROVIDERS)
def test_payload_is_deterministic(cls: type[ResourceProvider]) -> None:
    # The engine diffs the __provider input: a payload that changed between runs would
    # show every resource as changed.
    assert serialize_provider(cls()) == serialize_provider(cls())


@pytest.mark.usefixtures("journal_dir")
def test_payload_holds_nothing_after_create_and_read_ran(emulator: Emulator, store: str) -> None:
    upload(emulator, corpus_files())
    emulator.storage.create_bucket(EXPORT_BUCKET, PROJECT)
    common: dict[str, Any] = {
        "dicom_store": store,
        "api_version": "v1",
        "timeout_seconds": 30.0,
    }
    importer = DicomImportProvider()
    exporter = DicomExportProvider()
    fresh = (serialize_provider(DicomImportProvider()), serialize_provider(DicomExportProvider()))

    created = importer.create(
        {**common, "resource_name": "load", "gcs_uri": f"gs://{SOURCE_BUCKET}/incoming/*.dcm"}
    )
    assert created.outs is not None
    importer.read(created.id, created.outs)
    exported = exporter.create(
        {
            **common,
            "resource_name": "copy",
            "gcs_destination": {"uri_prefix": f"gs://{EXPORT_BUCKET}/copy"},
            "filter_resource_paths": ["/studies/1.2.3"],
            "filter_staging_uri": f"gs://{EXPORT_BUCKET}/filters",
        }
    )
    assert exported.outs is not None

    assert (serialize_provider(importer), serialize_provider(exporter)) == fresh
    assert_stateless_payload(payload(importer), DicomImportProvider)
    assert_stateless_payload(payload(exporter), DicomExportProvider)


def test_payload_loads_in_a_fresh_interpreter() -> None:
    encoded = [serialize_provider(cls()) for cls in PROVIDERS]
    script = (
        "import base64, sys, dill\n"
        "for arg in sys.argv[1:]:\n"
        "    provider = dill.loads(base64.b64decode(arg))\n"
        "    cls = type(provider)\n"
        "    print(cls.__module__, cls.__qualname__, sys.modules[cls.__module__].__file__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *encoded],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [line[:2] for line in lines] == [
        ["dicom_transfer.providers", "DicomImportProvider"],
        ["dicom_transfer.providers", "DicomExportProvider"],
    ]
    assert all(line[2].endswith("dicom_transfer/providers.py") for line in lines)
