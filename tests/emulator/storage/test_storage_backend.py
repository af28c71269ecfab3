"""The storage backends directly (memory and files): persistence, IAM propagation,
validation, checksums, domain errors."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import google_crc32c
import pytest
from dicom_transfer_emulator.storage import port as storage_module
from dicom_transfer_emulator.storage.errors import (
    BucketNotFound,
    InvalidArgument,
    ObjectNotFound,
    StorageError,
)
from dicom_transfer_emulator.storage.port import (
    FileStorage,
    IndexedStorage,
    MemoryStorage,
    open_storage,
)
from support.clock import FakeClock

AGENT = "serviceAccount:service-1@gcp-sa-healthcare.iam.gserviceaccount.com"


@pytest.fixture(params=["memory", "disk"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> IndexedStorage:
    data_dir = tmp_path / "data" if request.param == "disk" else None
    return open_storage(data_dir, clock=FakeClock(1_700_000_000.0))


def test_objects_crud(backend: IndexedStorage) -> None:
    backend.create_bucket("bkt", "proj-1")
    meta = backend.write_object("bkt", "a/b.dcm", b"data", "application/dicom")
    assert (meta.size, meta.content_type) == (4, "application/dicom")
    assert backend.read_object("bkt", "a/b.dcm") == b"data"
    second = backend.write_object("bkt", "a/b.dcm", b"data2")
    assert second.generation > meta.generation
    assert backend.read_object("bkt", "a/b.dcm") == b"data2"
    with pytest.raises(ObjectNotFound):
        backend.read_object("bkt", "a/b.dcm", generation=meta.generation)
    items, prefixes = backend.list_objects("bkt", prefix="a/")
    assert [i.name for i in items] == ["a/b.dcm"] and prefixes == []
    backend.delete_object("bkt", "a/b.dcm")
    assert not backend.object_exists("bkt", "a/b.dcm")
    backend.delete_bucket("bkt")
    assert not backend.bucket_exists("bkt")


def test_missing_bucket_and_object_are_404(backend: IndexedStorage) -> None:
    for call in (
        lambda: backend.get_bucket("nope"),
        lambda: backend.write_object("nope", "x", b""),
        lambda: backend.list_objects("nope"),
        lambda: backend.get_iam_policy("nope"),
    ):
        with pytest.raises(BucketNotFound) as excinfo:
            call()
        assert excinfo.value.message == "The specified bucket does not exist."
    backend.create_bucket("here", "proj-1")
    with pytest.raises(ObjectNotFound) as excinfo:
        backend.get_object_meta("here", "missing")
    assert excinfo.value.message == "No such object: here/missing"


@pytest.mark.parametrize(
    "name", ["ab", "-abc", "abc-", "ABC", "a b c", "192.168.1.1", "goog-bucket", "x" * 64]
)
def test_bucket_name_rules(backend: IndexedStorage, name: str) -> None:
    with pytest.raises(InvalidArgument, match="Invalid bucket name"):
        backend.create_bucket(name, "proj-1")


@pytest.mark.parametrize("name", ["", ".", "..", "a\nb", "a\rb", "x" * 1025])
def test_object_name_rules(backend: IndexedStorage, name: str) -> None:
    backend.create_bucket("names", "proj-1")
    with pytest.raises(InvalidArgument):
        backend.write_object("names", name, b"")


def test_object_names_with_dots_and_slashes_stay_inside_the_bucket(tmp_path: Path) -> None:
    backend = open_storage(tmp_path, clock=FakeClock(1_700_000_000.0))
    backend.create_bucket("safe", "proj-1")
    backend.write_object("safe", "../../escape", b"1")
    backend.write_object("safe", "/abs/path", b"2")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.is_relative_to(tmp_path / "storage" / "buckets") for p in files)
    assert backend.read_object("safe", "../../escape") == b"1"


def test_state_survives_restart(tmp_path: Path) -> None:
    first = open_storage(tmp_path, clock=FakeClock(1_700_000_000.0))
    first.create_bucket("keep", "proj-1", labels={"a": "b"})
    first.write_object("keep", "x/y.dcm", b"payload", "application/dicom", metadata={"k": "v"})
    first.write_object("keep", "x/y.dcm", b"payload-2", "application/dicom")
    policy = first.get_iam_policy("keep")
    policy["bindings"].append({"role": "roles/storage.objectViewer", "members": [AGENT]})
    first.set_iam_policy("keep", policy)

    second = open_storage(tmp_path, clock=FakeClock(1_700_000_000.0))
    assert second.get_bucket("keep").labels == {"a": "b"}
    assert second.read_object("keep", "x/y.dcm") == b"payload-2"
    meta = second.get_object_meta("keep", "x/y.dcm")
    assert meta.content_type == "application/dicom"
    assert second.get_iam_policy("keep")["etag"] == first.get_iam_policy("keep")["etag"]
    assert second.role_granted("keep", AGENT, "roles/storage.objectViewer")
    newer = second.write_object("keep", "x/y.dcm", b"3")
    assert newer.generation > meta.generation
    # Only the live generation's data file is kept.
    assert len(list((tmp_path / "storage" / "buckets" / "keep" / "objects").glob("*.bin"))) == 1


def test_reset_forgets_everything(tmp_path: Path) -> None:
    backend = open_storage(tmp_path, clock=FakeClock(1_700_000_000.0))
    backend.create_bucket("gone", "proj-1")
    backend.write_object("gone", "o", b"1")
    backend.reset()
    assert backend.list_buckets() == []
    assert open_storage(tmp_path).list_buckets() == []


def test_role_granted_honours_propagation_delay() -> None:
    clock = FakeClock(1_700_000_000.0)
    backend = open_storage(clock=clock, propagation_delay_s=120)
    backend.create_bucket("iam", "proj-1")
    policy = backend.get_iam_policy("iam")
    policy["bindings"].append({"role": "roles/storage.objectAdmin", "members": [AGENT]})
    backend.set_iam_policy("iam", policy)
    assert not backend.role_granted("iam", AGENT, "roles/storage.objectViewer")
    clock.now += 119
    assert not backend.role_granted("iam", AGENT, "roles/storage.objectAdmin")
    # An unrelated policy change does not restart the clock of an existing grant.
    policy = backend.get_iam_policy("iam")
    policy["bindings"].append({"role": "roles/storage.objectViewer", "members": ["allUsers"]})
    backend.set_iam_policy("iam", policy)
    clock.now += 1
    assert backend.role_granted("iam", AGENT, "roles/storage.objectAdmin")
    assert backend.role_granted("iam", AGENT, "roles/storage.objectViewer")
    assert not backend.role_granted("iam", AGENT, "roles/storage.admin")
    assert (
        backend.role_granted("iam", AGENT, "roles/storage.objectAdmin", now=clock.now - 5) is False
    )
    assert not backend.role_granted("missing-bucket", AGENT, "roles/storage.objectViewer")


def test_revoked_grant_stops_counting() -> None:
    backend = open_storage(clock=FakeClock(1_700_000_000.0))
    backend.create_bucket("rev", "proj-1")
    policy = backend.get_iam_policy("rev")
    backend.set_iam_policy(
        "rev", {**policy, "bindings": [{"role": "roles/storage.objectViewer", "members": [AGENT]}]}
    )
    assert backend.role_granted("rev", AGENT, "roles/storage.objectViewer")
    backend.set_iam_policy("rev", {"bindings": []})
    assert not backend.role_granted("rev", AGENT, "roles/storage.objectViewer")


def test_conditional_bindings_need_version_3_and_do_not_grant() -> None:
    backend = open_storage(clock=FakeClock(1_700_000_000.0))
    backend.create_bucket("cond", "proj-1")
    binding = {
        "role": "roles/storage.objectViewer",
        "members": [AGENT],
        "condition": {"title": "t", "expression": "true"},
    }
    with pytest.raises(InvalidArgument, match="version 3"):
        backend.set_iam_policy("cond", {"bindings": [binding], "version": 1})
    stored = backend.set_iam_policy("cond", {"bindings": [binding], "version": 3})
    assert stored["version"] == 3
    assert not backend.role_granted("cond", AGENT, "roles/storage.objectViewer")


def test_crc32c_is_google_crc32c_in_cloud_storage_form() -> None:
    data = os.urandom(4099)
    expected = base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()
    assert storage_module.crc32c_base64(data) == expected
    assert storage_module.crc32c_value(b"123456789") == 0xE3069283  # the standard check value


def test_concurrent_writers_leave_one_consistent_winner(tmp_path: Path) -> None:
    import threading

    backend = open_storage(tmp_path)
    backend.create_bucket("race", "proj-1")
    payloads = [bytes([i]) * 1000 for i in range(20)]
    threads = [
        threading.Thread(target=backend.write_object, args=("race", "same", p)) for p in payloads
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = backend.read_object("race", "same")
    assert data in payloads
    assert backend.get_object_meta("race", "same").md5_hash == storage_module.md5_base64(data)
    assert len(list((tmp_path / "storage" / "buckets" / "race" / "objects").glob("*.bin"))) == 1


def test_open_storage_picks_the_implementation_once(tmp_path: Path) -> None:
    memory = open_storage()
    disk = open_storage(tmp_path)
    assert isinstance(memory, MemoryStorage) and not memory.persistent
    assert isinstance(disk, FileStorage) and disk.persistent
    memory.create_bucket("only-here", "proj-1")
    memory.write_object("only-here", "o", b"x")
    assert not any(tmp_path.rglob("*.bin"))


def test_preconditions_are_domain_errors(backend: IndexedStorage) -> None:
    from dicom_transfer_emulator.storage.errors import NotModified, PreconditionFailed

    backend.create_bucket("pre", "proj-1")
    first = backend.write_object("pre", "o", b"1", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        backend.write_object("pre", "o", b"2", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        backend.delete_object("pre", "o", if_metageneration_match=first.metageneration + 1)
    with pytest.raises(NotModified):
        backend.get_object_meta("pre", "o", if_generation_not_match=first.generation)
    with pytest.raises(PreconditionFailed):
        backend.get_object_meta("pre", "o", if_generation_match=first.generation + 1)
    assert backend.read_object("pre", "o") == b"1"
    assert issubclass(PreconditionFailed, StorageError)
