"""Seed an emulator (or a real project) with a DICOM store, buckets and real DICOM files.

Uses only the public APIs (Healthcare REST through googleapiclient, Cloud Storage JSON API
through google-cloud-storage), so the same seeding works against the emulator and against
Google Cloud. The corpus is pydicom's bundled test files: real DICOM written by other tools.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import google.auth.credentials
import pydicom
from google.cloud import storage
from googleapiclient.errors import HttpError

from dicom_transfer_emulator.testing.clients import healthcare_client

__all__ = ["CorpusFile", "SeedPlan", "corpus_files", "seed"]


@dataclass(frozen=True)
class CorpusFile:
    """One well-formed DICOM file of the corpus and its identifying UIDs."""

    path: Path
    study_uid: str
    series_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class SeedPlan:
    """What to create: ``projects/{project}/locations/{location}/datasets/{dataset}/…``."""

    project: str
    location: str
    dataset: str
    store: str
    source_bucket: str
    source_prefix: str
    export_bucket: str

    @property
    def store_name(self) -> str:
        """The DICOM store's full resource name."""
        return (
            f"projects/{self.project}/locations/{self.location}/datasets/{self.dataset}"
            f"/dicomStores/{self.store}"
        )


def corpus_files() -> list[CorpusFile]:
    """pydicom's bundled files that are complete DICOM Part 10 files, one per SOP instance.

    Files without file meta, truncated files and repeats of an instance (pydicom ships the
    same image in several encodings) are left out, so that importing the corpus into an
    empty store succeeds for every file.
    """
    data_dir = Path(pydicom.__file__).parent / "data" / "test_files"
    chosen: dict[str, CorpusFile] = {}
    for path in sorted(data_dir.glob("*.dcm")):
        file = _well_formed(path)
        if file is not None and file.sop_instance_uid not in chosen:
            chosen[file.sop_instance_uid] = file
    return list(chosen.values())


def _well_formed(path: Path) -> CorpusFile | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the odd files it still reads
            dataset = pydicom.dcmread(path)
        dataset.PixelData if "PixelData" in dataset else None  # noqa: B018 - reads to the end
        uids = (dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)
        meta_uid = dataset.file_meta.MediaStorageSOPInstanceUID
    except Exception:
        return None
    if not all(str(uid) for uid in uids) or str(meta_uid) != str(uids[2]):
        return None
    return CorpusFile(path, str(uids[0]), str(uids[1]), str(uids[2]))


def seed(plan: SeedPlan, *, healthcare_url: str, storage_url: str) -> list[CorpusFile]:
    """Creates the dataset, store and buckets if missing and uploads the corpus.

    Args:
        plan: Names to create.
        healthcare_url: Healthcare API endpoint (e.g. the emulator's ``http://127.0.0.1:PORT``).
        storage_url: Cloud Storage endpoint.

    Returns:
        The uploaded corpus files.
    """
    credentials = google.auth.credentials.AnonymousCredentials()  # type: ignore[no-untyped-call]
    api = healthcare_client(healthcare_url)
    datasets = api.projects().locations().datasets()
    parent = f"projects/{plan.project}/locations/{plan.location}"
    _ignore_conflict(
        lambda: datasets.create(parent=parent, datasetId=plan.dataset, body={}).execute()
    )
    _ignore_conflict(
        lambda: (
            datasets.dicomStores()
            .create(parent=f"{parent}/datasets/{plan.dataset}", dicomStoreId=plan.store, body={})
            .execute()
        )
    )

    client = storage.Client(
        project=plan.project,
        credentials=credentials,
        client_options={"api_endpoint": storage_url},
    )
    for bucket in (plan.source_bucket, plan.export_bucket):
        if client.lookup_bucket(bucket) is None:
            client.create_bucket(bucket)
    source = client.bucket(plan.source_bucket)
    files = corpus_files()
    for file in files:
        blob = source.blob(f"{plan.source_prefix.rstrip('/')}/{file.path.name}")
        blob.upload_from_filename(str(file.path), content_type="application/dicom")
    return files


def _ignore_conflict(call: Callable[[], object]) -> None:
    """Runs a create call; an existing resource (409) is what we wanted anyway."""
    try:
        call()
    except HttpError as error:
        if error.resp.status != 409:
            raise
