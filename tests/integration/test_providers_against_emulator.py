"""DicomImportProvider / DicomExportProvider over real HTTP against the in-process emulator.

The providers run their production path (googleapiclient over HTTP, the journal on disk,
real clocks); only the poll and retry schedules are shortened (``support.integration.FAST``).
Expected counters and exported objects are computed with pydicom from the uploaded bytes.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pydicom
import pytest
from dicom_transfer import (
    DicomExportProvider,
    DicomImportProvider,
    OperationFailed,
    OperationTimedOut,
    PermissionDenied,
)
from dicom_transfer.healthcare.journal import Journal
from dicom_transfer.specs.requests import filter_file_content
from dicom_transfer_emulator.app import Emulator
from dicom_transfer_emulator.healthcare.names import service_agent_member
from support.integration import (
    EXPORT_BUCKET,
    FAST,
    PROJECT,
    SOURCE_BUCKET,
    SOURCE_URI,
    Instance,
    claim_and_submit_import,
    corpus_files,
    expected_distinct_import,
    export_props,
    get_operation,
    healthcare_client,
    http_json,
    import_props,
    imported,
    list_operations,
    operation_count,
    read_instance,
    stored_instances,
    truncated,
    upload,
)

pytestmark = [
    pytest.mark.usefixtures("journal_dir"),
    # One corpus file has a UID with a leading-zero component; pydicom warns when reading it.
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning"),
]


def journal_files(journal_dir: Path) -> list[Path]:
    """Journal records on disk (one JSON file per in-flight request)."""
    return sorted(journal_dir.glob("*.json")) if journal_dir.exists() else []


# --- import ----------------------------------------------------------------------------------


def test_import_reports_exact_counters(emulator: Emulator, store: str, journal_dir: Path) -> None:
    files = corpus_files()
    upload(emulator, files)
    expected = expected_distinct_import(files)
    assert expected.failure == 0

    result = DicomImportProvider(FAST).create(import_props(emulator, store))

    outs = result.outs
    assert outs is not None
    assert result.id == outs["operation_name"]
    assert result.id.startswith(f"{store.split('/dicomStores/')[0]}/operations/")
    assert (outs["success_count"], outs["failure_count"]) == (expected.success, 0)
    assert outs["create_time"] and outs["end_time"]
    assert outs["logs_url"].startswith(emulator.healthcare_url)
    assert outs["gcs_uri"] == SOURCE_URI
    assert stored_instances(emulator, store) == expected.instances
    assert operation_count(emulator, "import") == 1
    assert journal_files(journal_dir) == []


@pytest.mark.parametrize(
    ("max_failures", "tolerated"),
    [(0, False), (1, False), (2, True), ("unlimited", True)],
)
def test_partial_failure_against_max_failures(
    emulator: Emulator, store: str, max_failures: int | str, tolerated: bool
) -> None:
    files = {
        **corpus_files(),
        "incoming/notes.dcm": b"this is not a DICOM file\n",
        "incoming/cut.dcm": truncated("CT_small.dcm"),
    }
    upload(emulator, files)
    expected = expected_distinct_import(files)
    assert expected.failure == 2
    props = import_props(emulator, store, max_failures=max_failures)

    if tolerated:
        outs = DicomImportProvider(FAST).create(props).outs
        assert outs is not None
        assert (outs["success_count"], outs["failure_count"]) == (expected.success, 2)
        logs_url = outs["logs_url"]
    else:
        with pytest.raises(OperationFailed) as caught:
            DicomImportProvider(FAST).create(props)
        error = caught.value
        message = str(error)
        assert error.operation_name in message
        assert f"success={expected.success} failure=2" in message
        assert error.logs_url and error.logs_url.startswith(emulator.healthcare_url)
        assert error.logs_url in message
        assert f"max_failures={max_failures}" in message
        logs_url = error.logs_url

    assert stored_instances(emulator, store) == expected.instances
    logs = json.dumps(http_json(logs_url))
    assert "incoming/notes.dcm" in logs
    assert "incoming/cut.dcm" in logs
    assert operation_count(emulator, "import") == 1


def test_failed_operation_raises_with_code_and_message(
    emulator: Emulator, store: str, journal_dir: Path
) -> None:
    upload(emulator, corpus_files())
    emulator.faults.fail_next_operation(13, "the archive caught fire")

    with pytest.raises(OperationFailed) as caught:
        DicomImportProvider(FAST).create(import_props(emulator, store, max_failures="unlimited"))

    error = caught.value
    assert error.code == 13
    assert "the archive caught fire" in str(error)
    assert error.operation_name in str(error)
    assert stored_instances(emulator, store) == set()
    assert journal_files(journal_dir) == []  # finished (failed): nothing left to resume


def test_503_on_poll_and_429_on_submit_create_exactly_one_operation(
    emulator: Emulator, store: str
) -> None:
    files = corpus_files()
    upload(emulator, files)
    emulator.faults.fail_requests("POST", r":import$", status=429, times=2)
    emulator.faults.fail_requests("GET", r"/operations/", status=503, times=3)

    outs = DicomImportProvider(FAST).create(import_props(emulator, store)).outs

    assert outs is not None
    assert outs["success_count"] == expected_distinct_import(files).success
    submits = emulator.requests.matching("POST", r"/dicomStores/[^/]+:import$")
    assert [r.status for r in submits] == [429, 429, 200]
    assert operation_count(emulator, "import") == 1
    assert len(list_operations(emulator)) == 1
    polls = [r.status for r in emulator.requests.matching("GET", r"/operations/")]
    assert polls.count(503) == 3
    assert polls[-1] == 200


def test_permission_denied_until_the_grant_propagates(emulator: Emulator, store: str) -> None:
    files = corpus_files()
    upload(emulator, files)
    emulator.permission_checks = True
    emulator.propagation_delay_s = 2.0
    agent = service_agent_member(PROJECT)
    emulator.storage.set_iam_policy(
        SOURCE_BUCKET,
        {"bindings": [{"role": "roles/storage.objectViewer", "members": [agent]}]},
    )
    granted_at = time.monotonic()

    outs = (
        DicomImportProvider(FAST)
        .create(import_props(emulator, store, permission_retry_seconds=10.0))
        .outs
    )

    assert time.monotonic() - granted_at >= 2.0
    assert outs is not None
    assert outs["success_count"] == expected_distinct_import(files).success
    statuses = [r.status for r in emulator.requests.matching("POST", r":import$")]
    assert statuses[-1] == 200
    assert set(statuses[:-1]) == {403}
    assert len(statuses) >= 2
    assert operation_count(emulator, "import") == 1


def test_permission_denied_after_the_window_names_the_missing_grant(
    emulator: Emulator, store: str, journal_dir: Path
) -> None:
    upload(emulator, corpus_files())
    emulator.permission_checks = True

    with pytest.raises(PermissionDenied) as caught:
        DicomImportProvider(FAST).create(
            import_props(emulator, store, permission_retry_seconds=0.6)
        )

    message = str(caught.value)
    assert "roles/storage.objectViewer" in message
    assert f"bucket {SOURCE_BUCKET}" in message
    assert "gcp-sa-healthcare" in message
    assert operation_count(emulator, "import") == 0
    assert len(emulator.requests.matching("POST", r":import$")) >= 2
    assert journal_files(journal_dir) == []


def test_deadline_names_the_running_operation(
    emulator: Emulator, store: str, journal_dir: Path
) -> None:
    upload(emulator, corpus_files())
    emulator.faults.set_operation_timing(operation_seconds=5.0)

    started = time.monotonic()
    with pytest.raises(OperationTimedOut) as caught:
        DicomImportProvider(FAST).create(import_props(emulator, store, timeout_seconds=0.5))

    assert time.monotonic() - started < 3.0
    name = caught.value.operation_name
    assert name in str(caught.value)
    assert "resumes" in str(caught.value)
    assert [op["name"] for op in list_operations(emulator)] == [name]
    assert not get_operation(emulator, name).get("done")
    assert len(journal_files(journal_dir)) == 1  # kept for the next create to resume


def test_resume_after_an_interrupted_create(
    emulator: Emulator, store: str, journal_dir: Path
) -> None:
    files = corpus_files()
    upload(emulator, files)
    emulator.faults.set_operation_timing(operation_seconds=1.5)
    props = import_props(emulator, store)

    with pytest.raises(OperationTimedOut) as caught:
        DicomImportProvider(FAST).create({**props, "timeout_seconds": 0.3})
    first = caught.value.operation_name
    record = json.loads(journal_files(journal_dir)[0].read_text())
    assert record["operation_name"] == first

    result = DicomImportProvider(FAST).create({**props, "timeout_seconds": 20.0})

    assert result.id == first
    assert result.outs is not None
    assert result.outs["success_count"] == expected_distinct_import(files).success
    assert operation_count(emulator, "import") == 1
    assert len(list_operations(emulator)) == 1
    assert journal_files(journal_dir) == []


# --- export ----------------------------------------------------------------------------------


def _selected(instances: set[Instance], paths: list[str]) -> set[Instance]:
    """The instances a filter list selects (study, series or instance level)."""
    chosen = set()
    for instance in instances:
        for path in paths:
            parts = path.strip("/").split("/")
            keys = dict(zip(parts[::2], parts[1::2], strict=True))
            if (
                keys["studies"] == instance.study
                and keys.get("series", instance.series) == instance.series
                and keys.get("instances", instance.sop) == instance.sop
            ):
                chosen.add(instance)
    return chosen


def test_export_to_cloud_storage_with_an_inline_filter(emulator: Emulator, store: str) -> None:
    instances = sorted(imported(emulator, store), key=lambda i: i.sop)
    study_only, series_only, instance_only = instances[0], instances[1], instances[2]
    paths = [
        f"/studies/{study_only.study}",
        f"/studies/{series_only.study}/series/{series_only.series}",
        instance_only.path,
    ]
    expected = _selected(set(instances), paths)
    assert len(expected) < len(instances)
    emulator.storage.create_bucket(EXPORT_BUCKET, PROJECT)
    props = export_props(
        emulator,
        store,
        filter_resource_paths=paths,
        filter_staging_uri=f"gs://{EXPORT_BUCKET}/filters",
    )

    result = DicomExportProvider(FAST).create(props)

    outs = result.outs
    assert outs is not None
    assert (outs["success_count"], outs["failure_count"]) == (len(expected), 0)
    objects, _ = emulator.storage.list_objects(EXPORT_BUCKET, "copy/")
    assert {o.name for o in objects} == {f"copy/{i.object_suffix}.dcm" for i in expected}
    for instance in expected:
        data = emulator.storage.read_object(EXPORT_BUCKET, f"copy/{instance.object_suffix}.dcm")
        assert read_instance(data) == instance
    staged = outs["filter_uri"]
    assert staged.startswith(f"gs://{EXPORT_BUCKET}/filters/") and staged.endswith(".txt")
    staged_name = staged.removeprefix(f"gs://{EXPORT_BUCKET}/")
    content = emulator.storage.read_object(EXPORT_BUCKET, staged_name)
    assert content == filter_file_content(paths)
    assert content.decode().split() == paths
    assert operation_count(emulator, "export") == 1


@pytest.mark.parametrize(
    "table",
    [
        f"{PROJECT}.dicom_meta.instances",
        # Another project than the store's: documented, accepted by both sides.
        "analytics-project.dicom_meta.instances",
    ],
)
def test_export_to_bigquery_writes_rows(emulator: Emulator, store: str, table: str) -> None:
    instances = imported(emulator, store)
    props = export_props(
        emulator,
        store,
        gcs_destination=None,
        bigquery_destination={"table_uri": f"bq://{table}", "write_disposition": "WRITE_EMPTY"},
    )
    del props["gcs_destination"]

    outs = DicomExportProvider(FAST).create(props).outs

    assert outs is not None
    assert (outs["success_count"], outs["failure_count"]) == (len(instances), 0)
    rows = http_json(f"{emulator.healthcare_url}/_emulator/bigquery/{table}")["rows"]
    assert sorted(row["SOPInstanceUID"] for row in rows) == sorted(i.sop for i in instances)
    assert {row["StudyInstanceUID"] for row in rows} == {i.study for i in instances}


# --- read / update / delete ------------------------------------------------------------------


def test_read_refreshes_a_finished_operation(emulator: Emulator, store: str) -> None:
    upload(emulator, corpus_files())
    provider = DicomImportProvider(FAST)
    created = provider.create(import_props(emulator, store))
    outs = created.outs
    assert outs is not None
    stale = {**outs, "success_count": 0, "end_time": None}

    read = provider.read(created.id, stale)

    assert read.id == created.id
    assert read.outs == outs


def test_read_keeps_recorded_outputs_once_the_operation_is_forgotten(
    emulator: Emulator, store: str
) -> None:
    upload(emulator, corpus_files())
    provider = DicomImportProvider(FAST)
    created = provider.create(import_props(emulator, store))
    assert created.outs is not None
    emulator.reset()  # the API no longer knows the operation (404)

    read = provider.read(created.id, dict(created.outs))

    assert read.id == created.id
    assert read.outs == created.outs


def test_update_resubmits_nothing(emulator: Emulator, store: str) -> None:
    upload(emulator, corpus_files())
    provider = DicomImportProvider(FAST)
    created = provider.create(import_props(emulator, store))
    assert created.outs is not None
    before = len(emulator.requests)
    news = import_props(emulator, store, timeout_seconds=7200.0, max_failures=5)

    diff = provider.diff(created.id, created.outs, news)
    outs = provider.update(created.id, created.outs, news).outs

    assert diff.changes is True
    assert diff.replaces == []
    assert outs is not None
    assert (outs["timeout_seconds"], outs["max_failures"]) == (7200.0, 5)
    assert outs["operation_name"] == created.id
    assert len(emulator.requests) == before
    assert operation_count(emulator, "import") == 1


def test_delete_keeps_the_instances(
    emulator: Emulator, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    instances = imported(emulator, store)
    [operation] = list_operations(emulator)
    outs = {**import_props(emulator, store), "operation_name": operation["name"]}
    before = len(emulator.requests)

    DicomImportProvider(FAST).delete(operation["name"], outs)

    assert stored_instances(emulator, store) == instances
    objects, _ = emulator.storage.list_objects(SOURCE_BUCKET, "incoming/")
    assert len(objects) == len(corpus_files())
    assert len(emulator.requests) == before
    assert "deleted none of the data it imported" in capsys.readouterr().err


def test_exported_files_are_the_stored_instances(emulator: Emulator, store: str) -> None:
    """Export without a filter: every instance lands once, bytes readable by pydicom."""
    instances = imported(emulator, store)
    emulator.storage.create_bucket(EXPORT_BUCKET, PROJECT)

    outs = DicomExportProvider(FAST).create(export_props(emulator, store)).outs

    assert outs is not None
    assert outs["success_count"] == len(instances)
    assert outs["filter_uri"] is None
    objects, _ = emulator.storage.list_objects(EXPORT_BUCKET, "copy/")
    found = set()
    for meta in objects:
        dataset = pydicom.dcmread(
            io.BytesIO(emulator.storage.read_object(EXPORT_BUCKET, meta.name))
        )
        found.add(
            Instance(dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)
        )
    assert found == instances


def test_adopts_the_operation_of_a_submit_interrupted_before_its_answer(
    emulator: Emulator, store: str, journal_dir: Path
) -> None:
    """An earlier run wrote its "submitting" record, the API created the operation, and the
    run died before reading the answer: the next create adopts that operation."""
    files = corpus_files()
    upload(emulator, files)
    props = import_props(emulator, store)
    _, lost = claim_and_submit_import(emulator, store, props, Journal(journal_dir))

    result = DicomImportProvider(FAST).create(props)

    assert result.id == lost
    assert result.outs is not None
    assert result.outs["success_count"] == expected_distinct_import(files).success
    assert operation_count(emulator, "import") == 1
    assert journal_files(journal_dir) == []


def test_import_into_a_store_with_ids_the_api_documents(emulator: Emulator) -> None:
    # datasetId allows any script's letters and numbers; dicomStoreId "any string" (here one
    # with a space): both go through the client's URL and the emulator's routing intact.
    datasets = healthcare_client(emulator).projects().locations().datasets()
    parent = f"projects/{PROJECT}/locations/us-central1"
    datasets.create(parent=parent, datasetId="donn\u00e9es", body={}).execute()
    dataset = f"{parent}/datasets/donn\u00e9es"
    datasets.dicomStores().create(parent=dataset, dicomStoreId="my store", body={}).execute()
    store = f"{dataset}/dicomStores/my store"
    files = dict(list(corpus_files().items())[:3])
    upload(emulator, files)

    outs = DicomImportProvider(FAST).create(import_props(emulator, store)).outs

    assert outs is not None
    assert (outs["success_count"], outs["failure_count"]) == (
        expected_distinct_import(files).success,
        0,
    )
    assert outs["operation_name"].startswith(f"{dataset}/operations/")


def test_import_v1beta1_with_a_blob_storage_class(emulator: Emulator, store: str) -> None:
    files = corpus_files()
    upload(emulator, files)
    props = import_props(emulator, store, api_version="v1beta1", blob_storage_class="COLDLINE")

    result = DicomImportProvider(FAST).create(props)

    assert result.outs is not None
    assert result.outs["success_count"] == expected_distinct_import(files).success
    [submit] = emulator.requests.matching("POST", r":import$")
    assert submit.path.startswith("/v1beta1/")
    classes = {r.storage_class for r in emulator.healthcare.state.list_instances(store)}
    assert classes == {"COLDLINE"}
    read = DicomImportProvider(FAST).read(result.id, result.outs)
    assert read.outs == result.outs


def test_export_transcoded_to_explicit_vr_little_endian_with_a_filter_file(
    emulator: Emulator, store: str
) -> None:
    instances = imported(emulator, store)
    uncompressed = {i for i in instances if i.sop in _uncompressed_sops(corpus_files())}
    emulator.storage.create_bucket(EXPORT_BUCKET, PROJECT)
    emulator.storage.write_object(
        EXPORT_BUCKET,
        "lists/chosen.txt",
        filter_file_content([i.path for i in uncompressed]),
        "text/plain",
    )
    mime = "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    props = export_props(
        emulator,
        store,
        gcs_destination={"uri_prefix": f"gs://{EXPORT_BUCKET}/evle", "mime_type": mime},
        filter_gcs_uri=f"gs://{EXPORT_BUCKET}/lists/chosen.txt",
    )

    outs = DicomExportProvider(FAST).create(props).outs

    assert outs is not None
    assert (outs["success_count"], outs["failure_count"]) == (len(uncompressed), 0)
    assert outs["filter_uri"] == f"gs://{EXPORT_BUCKET}/lists/chosen.txt"
    objects, _ = emulator.storage.list_objects(EXPORT_BUCKET, "evle/")
    assert {o.name for o in objects} == {f"evle/{i.object_suffix}.dcm" for i in uncompressed}
    for meta in objects:
        data = emulator.storage.read_object(EXPORT_BUCKET, meta.name)
        dataset = pydicom.dcmread(io.BytesIO(data))
        assert dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def _uncompressed_sops(files: dict[str, bytes]) -> set[str]:
    """SOP Instance UIDs of the files whose transfer syntax is not compressed."""
    sops = set()
    for data in files.values():
        dataset = pydicom.dcmread(io.BytesIO(data))
        if not dataset.file_meta.TransferSyntaxUID.is_compressed:
            sops.add(str(dataset.SOPInstanceUID))
    return sops
