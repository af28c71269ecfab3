"""Names, corpus and helpers shared by the integration tests (providers against the emulator).

Expected outcomes are computed here with plain pydicom from the bytes the tests upload,
independently of the emulator's own DICOM parsing.
"""

from __future__ import annotations

import io
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

import pydicom
from dicom_transfer import DicomImportProvider
from dicom_transfer.healthcare.operations import PollPolicy
from dicom_transfer.healthcare.retrying import RetryPolicy
from dicom_transfer.healthcare.runtime import TransferRuntime
from dicom_transfer_emulator.app import Emulator
from dicom_transfer_emulator.testing.clients import healthcare_client as emulator_healthcare_client

from support.healthcare import corpus_bytes

PROJECT = "demo-project"
LOCATION = "us-central1"
DATASET_NAME = f"projects/{PROJECT}/locations/{LOCATION}/datasets/imaging"
STORE = f"{DATASET_NAME}/dicomStores/archive"
SOURCE_BUCKET = "raw-dicom"
EXPORT_BUCKET = "out-dicom"

FAST = TransferRuntime(
    read_retry=RetryPolicy(initial_s=0.02, maximum_s=0.1, jitter_s=0.0, timeout_s=10.0),
    submit_retry=RetryPolicy(
        initial_s=0.02, maximum_s=0.1, jitter_s=0.0, max_attempts=5, timeout_s=10.0
    ),
    permission_retry=RetryPolicy(
        initial_s=0.25, multiplier=1.5, maximum_s=0.5, jitter_s=0.0, max_attempts=None
    ),
    poll_policy=PollPolicy(
        initial_s=0.02,
        multiplier=1.5,
        max_s=0.1,
        jitter=0.0,
        min_tail_s=0.02,
        progress_initial_s=0.2,
    ),
)
"""The production factories with schedules of tens of milliseconds (real HTTP and clocks)."""

# Real DICOM written by other tools, one SOP instance each: explicit/implicit VR little
# endian, big endian, deflated, JPEG 2000, RLE, multi-frame, RT plan, structured report.
CORPUS = (
    "CT_small.dcm",
    "MR_small.dcm",
    "ExplVR_BigEnd.dcm",
    "rtplan.dcm",
    "rtdose.dcm",
    "image_dfl.dcm",
    "693_J2KI.dcm",
    "SC_rgb_rle_2frame.dcm",
    "test-SR.dcm",
)


@dataclass(frozen=True)
class Instance:
    """The identity of one DICOM instance, read with pydicom."""

    study: str
    series: str
    sop: str

    @property
    def path(self) -> str:
        """``/studies/…/series/…/instances/…`` (a filter-file line)."""
        return f"/studies/{self.study}/series/{self.series}/instances/{self.sop}"

    @property
    def object_suffix(self) -> str:
        """``{study}/{series}/{instance}`` (an exported object's name after the prefix)."""
        return f"{self.study}/{self.series}/{self.sop}"


def read_instance(data: bytes) -> Instance | None:
    """The instance a DICOM Part 10 file holds, or None when pydicom cannot read it fully."""
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        if "PixelData" in dataset:
            _ = dataset.PixelData
        uids = (dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)
    except Exception:
        return None
    study, series, sop = (str(uid).strip() for uid in uids)
    if not (study and series and sop):
        return None
    return Instance(study, series, sop)


@dataclass(frozen=True)
class ExpectedImport:
    """What importing a set of files into an empty store must report."""

    success: int
    failure: int
    instances: frozenset[Instance]


def expected_distinct_import(files: dict[str, bytes]) -> ExpectedImport:
    """Counters for importing ``files`` (distinct SOP instances or unreadable) into an empty
    store, computed with pydicom alone."""
    instances = [read_instance(data) for data in files.values()]
    readable = [i for i in instances if i is not None]
    assert len({i.sop for i in readable}) == len(readable), "corpus must hold distinct SOPs"
    return ExpectedImport(len(readable), len(instances) - len(readable), frozenset(readable))


def truncated(name: str, keep: int = 300) -> bytes:
    """The first ``keep`` bytes of a corpus file (cut inside its data set)."""
    data = corpus_bytes(name)[:keep]
    assert read_instance(data) is None, f"pydicom still reads {name} cut at {keep} bytes"
    return data


def healthcare_client(emu: Emulator) -> Any:
    """googleapiclient Healthcare v1 (bundled discovery document) for the emulator."""
    return emulator_healthcare_client(emu.healthcare_url)


def create_store(emu: Emulator) -> str:
    """Create the dataset and the DICOM store over HTTP; return the store's name."""
    datasets = healthcare_client(emu).projects().locations().datasets()
    parent, dataset_id = DATASET_NAME.rsplit("/datasets/", 1)
    datasets.create(parent=parent, datasetId=dataset_id, body={}).execute()
    store_id = STORE.rsplit("/", 1)[1]
    datasets.dicomStores().create(parent=DATASET_NAME, dicomStoreId=store_id, body={}).execute()
    return STORE


def upload(emu: Emulator, files: dict[str, bytes], bucket: str = SOURCE_BUCKET) -> None:
    """Put ``files`` (object name -> bytes) into ``bucket`` (created if missing)."""
    if not any(b.name == bucket for b in emu.storage.list_buckets(PROJECT)):
        emu.storage.create_bucket(bucket, PROJECT)
    for name, data in files.items():
        emu.storage.write_object(bucket, name, data, "application/dicom")


def corpus_files(prefix: str = "incoming") -> dict[str, bytes]:
    """The corpus as object names under ``prefix`` -> bytes."""
    return {f"{prefix}/{name}": corpus_bytes(name) for name in CORPUS}


def operation_count(emu: Emulator, kind: str) -> int:
    """How many ``dicomStores.{kind}`` submits the emulator answered with 200."""
    return sum(
        1 for r in emu.requests.matching("POST", rf"/dicomStores/[^/]+:{kind}$") if r.status == 200
    )


def get_operation(emu: Emulator, name: str) -> dict[str, Any]:
    """``operations.get`` over HTTP."""
    datasets = healthcare_client(emu).projects().locations().datasets()
    result: dict[str, Any] = datasets.operations().get(name=name).execute()
    return result


def list_operations(emu: Emulator) -> list[dict[str, Any]]:
    """The import/export operations of the test dataset (``operations.list`` over HTTP;
    the dataset's own create operation is left out)."""
    datasets = healthcare_client(emu).projects().locations().datasets()
    answer = datasets.operations().list(name=DATASET_NAME).execute()
    return [
        op
        for op in answer.get("operations", [])
        if ".dicom.DicomService." in op.get("metadata", {}).get("apiMethodName", "")
    ]


def claim_and_submit_import(
    emu: Emulator, store: str, props: dict[str, Any], journal: Any
) -> tuple[str, str]:
    """What a run killed right after its submit left: a claimed record and a running import.

    Returns:
        The request's fingerprint and the operation's name.
    """
    from dicom_transfer.specs.fingerprint import request_fingerprint
    from dicom_transfer.specs.props import import_spec_from_props

    spec = import_spec_from_props(props)
    fingerprint = request_fingerprint(spec, None, str(props["resource_name"]))
    assert journal.claim(journal.new_record(fingerprint, "import", store))
    datasets = healthcare_client(emu).projects().locations().datasets()
    operation = datasets.dicomStores().import_(name=store, body=spec.request_body()).execute()
    return fingerprint, str(operation["name"])


SOURCE_URI = f"gs://{SOURCE_BUCKET}/incoming/**.dcm"


def _props(
    resource_name: str, store: str, overrides: dict[str, Any], **inputs: Any
) -> dict[str, Any]:
    """Inputs as the engine hands them to the provider (snake_case): the tests' defaults,
    ``inputs`` of the transfer's kind, then ``overrides``."""
    return {
        "resource_name": resource_name,
        "dicom_store": store,
        **inputs,
        "api_version": "v1",
        "timeout_seconds": 30.0,
        "max_failures": 0,
        "permission_retry_seconds": 5.0,
        **overrides,
    }


def import_props(emu: Emulator, store: str, **overrides: Any) -> dict[str, Any]:
    """Import inputs (the uploaded corpus under :data:`SOURCE_URI`)."""
    return _props("load", store, overrides, gcs_uri=SOURCE_URI)


def export_props(emu: Emulator, store: str, **overrides: Any) -> dict[str, Any]:
    """Export inputs (Cloud Storage destination unless overridden)."""
    return _props(
        "copy", store, overrides, gcs_destination={"uri_prefix": f"gs://{EXPORT_BUCKET}/copy"}
    )


def stored_instances(emu: Emulator, store: str) -> set[Instance]:
    """What the emulator's store holds."""
    return {
        Instance(r.study_uid, r.series_uid, r.sop_instance_uid)
        for r in emu.healthcare.state.list_instances(store)
    }


def http_json(url: str) -> Any:
    """GET a URL of the emulator and decode its JSON."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def imported(emu: Emulator, store: str) -> set[Instance]:
    """Import the corpus through the provider; return the instances pydicom sees in it."""
    files = corpus_files()
    upload(emu, files)
    DicomImportProvider(FAST).create(import_props(emu, store))
    expected = expected_distinct_import(files).instances
    assert stored_instances(emu, store) == expected
    return set(expected)
