"""Seed an emulator (or a real project) with a DICOM store, buckets and real DICOM files.

Uses only the public APIs (Healthcare REST through googleapiclient, Cloud Storage JSON API
through google-cloud-storage), so the same seeding works against the emulator and against
Google Cloud. The corpus is pydicom's bundled test files: real DICOM written by other tools.

``dicom-transfer-emulator seed`` (:func:`main`) seeds a running emulator with
:data:`DEMO_PLAN` (or other names) and prints the names and the environment to use.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import google.auth.credentials
import pydicom
from google.cloud import storage
from googleapiclient.errors import HttpError

from .clients import healthcare_client

__all__ = ["DEMO_PLAN", "CorpusFile", "SeedPlan", "corpus_files", "main", "seed"]


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


DEMO_PLAN = SeedPlan(
    project="demo-project",
    location="us-central1",
    dataset="imaging",
    store="archive",
    source_bucket="demo-dicom-source",
    source_prefix="corpus",
    export_bucket="demo-dicom-export",
)
"""The names ``make demo``, the README and ``examples/emulator-quickstart`` use."""


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicom-transfer-emulator seed",
        description=(
            "Create a Healthcare dataset, a DICOM store and two buckets in a running emulator "
            "and upload pydicom's sample DICOM files; print the names and the environment "
            "that points dicom-transfer (and pulumi up) at the emulator. Running it again "
            "keeps what exists and uploads the files again."
        ),
    )
    parser.add_argument(
        "--healthcare",
        default="http://127.0.0.1:8080",
        metavar="URL",
        help="the emulator's Healthcare API (default http://127.0.0.1:8080, its default port)",
    )
    parser.add_argument(
        "--storage",
        default="http://127.0.0.1:9023",
        metavar="URL",
        help="the emulator's Cloud Storage API (default http://127.0.0.1:9023)",
    )
    for field in fields(SeedPlan):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            default=getattr(DEMO_PLAN, field.name),
            help=f"default {getattr(DEMO_PLAN, field.name)}",
        )
    return parser


def report(plan: SeedPlan, files: Sequence[CorpusFile], healthcare: str, storage: str) -> str:
    """What ``seed`` prints: the names created, the studies uploaded, the environment.

    Args:
        plan: The names seeded.
        files: The uploaded corpus.
        healthcare: The Healthcare API URL seeded.
        storage: The Cloud Storage URL seeded.

    Returns:
        Lines for a terminal; the ``export`` lines can be pasted into a shell.
    """
    studies: dict[str, int] = {}
    for file in files:
        studies[file.study_uid] = studies.get(file.study_uid, 0) + 1
    prefix = plan.source_prefix.rstrip("/")
    lines = [
        f"Seeded {healthcare} (Healthcare API) and {storage} (Cloud Storage):",
        f"  DICOM store    {plan.store_name}",
        f"  source files   gs://{plan.source_bucket}/{prefix}/ ({len(files)} DICOM files;"
        f" import them with gcs_uri gs://{plan.source_bucket}/{prefix}/**.dcm)",
        f"  export bucket  gs://{plan.export_bucket}",
        f"  studies        {len(studies)} (UID, instances):",
        *(f"    {uid}  {count}" for uid, count in sorted(studies.items())),
        "Environment for dicom-transfer (pulumi up, scripts):",
        f"export HEALTHCARE_EMULATOR_HOST={healthcare.rstrip('/')}",
        f"export STORAGE_EMULATOR_HOST={storage.rstrip('/')}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``dicom-transfer-emulator seed``: seed a running emulator and say what to use.

    Args:
        argv: Arguments after ``seed``.

    Returns:
        0 when seeded; 1 when the emulator could not be reached.
    """
    args = _parser().parse_args(argv)
    plan = SeedPlan(**{field.name: getattr(args, field.name) for field in fields(SeedPlan)})
    try:
        files = seed(plan, healthcare_url=args.healthcare, storage_url=args.storage)
    except (OSError, HttpError) as error:
        print(
            f"dicom-transfer-emulator seed: cannot seed {args.healthcare} / {args.storage}: "
            f"{error}. Is the emulator running (dicom-transfer-emulator)?",
            file=sys.stderr,
        )
        return 1
    print(report(plan, files, args.healthcare, args.storage), flush=True)
    return 0
