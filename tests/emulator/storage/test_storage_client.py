"""The emulator's Cloud Storage JSON API driven by the google-cloud-storage client."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from typing import Any

import google_crc32c
import pytest
from dicom_transfer_emulator.app import Emulator
from google.api_core import exceptions as gexc
from google.cloud import storage


@pytest.fixture
def client(storage_client: Any) -> storage.Client:
    assert isinstance(storage_client, storage.Client)
    return storage_client


def test_bucket_lifecycle(client: storage.Client) -> None:
    bucket = client.create_bucket("life-bucket", location="europe-west4")
    assert bucket.location == "EUROPE-WEST4"
    assert bucket.time_created is not None

    fetched = client.get_bucket("life-bucket")
    assert fetched.name == "life-bucket"
    assert fetched.storage_class == "STANDARD"
    assert [b.name for b in client.list_buckets()] == ["life-bucket"]

    with pytest.raises(gexc.Conflict):
        client.create_bucket("life-bucket")

    fetched.delete()
    with pytest.raises(gexc.NotFound):
        client.get_bucket("life-bucket")
    assert list(client.list_buckets()) == []


def test_delete_non_empty_bucket_is_conflict(client: storage.Client) -> None:
    bucket = client.create_bucket("full-bucket")
    bucket.blob("x").upload_from_string(b"x")
    with pytest.raises(gexc.Conflict):
        bucket.delete()


def test_invalid_bucket_name_is_400(client: storage.Client) -> None:
    with pytest.raises(gexc.BadRequest):
        client.create_bucket("bad_Name.x")


def test_small_upload_round_trip_and_metadata(client: storage.Client) -> None:
    bucket = client.create_bucket("small-bucket")
    data = b"hello DICOM world"
    blob = bucket.blob("dir/hello world.txt")
    blob.metadata = {"origin": "test"}
    blob.upload_from_string(data, content_type="text/plain")

    meta = bucket.get_blob("dir/hello world.txt")
    assert meta is not None
    assert meta.size == len(data)
    assert meta.content_type == "text/plain"
    assert meta.metadata == {"origin": "test"}
    assert meta.md5_hash == base64.b64encode(hashlib.md5(data).digest()).decode()
    expected_crc = base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()
    assert meta.crc32c == expected_crc
    assert meta.generation and meta.generation > 0
    assert meta.updated is not None
    assert meta.download_as_bytes() == data


def test_few_megabyte_upload_uses_resumable_and_round_trips(
    client: storage.Client, emulator: Emulator
) -> None:
    bucket = client.create_bucket("big-bucket")
    data = os.urandom(9 * 1024 * 1024 + 123)  # above the client's 8 MiB multipart limit
    bucket.blob("big/file.bin").upload_from_string(data)

    assert emulator.requests.count("POST", r"^/upload/storage/v1/b/big-bucket/o$") == 1
    assert any("uploadType=resumable" in r.query for r in emulator.requests)
    assert bucket.blob("big/file.bin").download_as_bytes() == data
    assert emulator.storage.read_object("big-bucket", "big/file.bin") == data


def test_chunked_resumable_upload(client: storage.Client, emulator: Emulator) -> None:
    bucket = client.create_bucket("chunk-bucket")
    data = os.urandom(3 * 256 * 1024 + 17)
    blob = bucket.blob("chunked.bin", chunk_size=256 * 1024)
    blob.upload_from_file(io.BytesIO(data))  # unknown size: resumable, one PUT per chunk
    puts = emulator.requests.matching("PUT", r"^/upload/storage/v1/b/chunk-bucket/o$")
    assert len(puts) == 4
    assert [r.status for r in puts] == [308, 308, 308, 200]
    assert bucket.blob("chunked.bin").download_as_bytes() == data


def test_range_download(client: storage.Client) -> None:
    bucket = client.create_bucket("range-bucket")
    bucket.blob("r").upload_from_string(b"0123456789")
    assert bucket.blob("r").download_as_bytes(start=2, end=5) == b"2345"


def test_list_with_prefix_delimiter_and_pages(client: storage.Client) -> None:
    bucket = client.create_bucket("list-bucket")
    names = [f"studies/s{i}/file{j}.dcm" for i in range(3) for j in range(4)]
    names += ["studies/top.txt", "other/x.dcm", "root.dcm"]
    for name in names:
        bucket.blob(name).upload_from_string(name.encode())

    under = [b.name for b in client.list_blobs("list-bucket", prefix="studies/s1/")]
    assert under == [f"studies/s1/file{j}.dcm" for j in range(4)]

    paged = client.list_blobs("list-bucket", prefix="studies/", page_size=5)
    seen = [b.name for b in paged]
    assert seen == sorted(n for n in names if n.startswith("studies/"))

    rolled = client.list_blobs("list-bucket", prefix="studies/", delimiter="/")
    items = [b.name for b in rolled]
    assert items == ["studies/top.txt"]
    assert rolled.prefixes == {"studies/s0/", "studies/s1/", "studies/s2/"}

    top = client.list_blobs("list-bucket", delimiter="/", page_size=2)
    assert [b.name for b in top] == ["root.dcm"]
    assert top.prefixes == {"other/", "studies/"}

    globbed = [b.name for b in client.list_blobs("list-bucket", match_glob="**/file1.dcm")]
    assert globbed == [f"studies/s{i}/file1.dcm" for i in range(3)]


def test_delete_and_missing_object(client: storage.Client) -> None:
    bucket = client.create_bucket("del-bucket")
    blob = bucket.blob("gone.txt")
    blob.upload_from_string(b"bye")
    blob.delete()
    assert bucket.get_blob("gone.txt") is None
    with pytest.raises(gexc.NotFound):
        bucket.blob("gone.txt").download_as_bytes()
    with pytest.raises(gexc.NotFound):
        bucket.blob("gone.txt").delete()


def test_generation_preconditions(client: storage.Client) -> None:
    bucket = client.create_bucket("gen-bucket")
    blob = bucket.blob("once")
    blob.upload_from_string(b"v1", if_generation_match=0)
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("once").upload_from_string(b"v2", if_generation_match=0)
    first = bucket.get_blob("once")
    assert first is not None and first.generation is not None
    bucket.blob("once").upload_from_string(b"v2", if_generation_match=first.generation)
    second = bucket.get_blob("once")
    assert second is not None and second.generation is not None
    assert second.generation > first.generation


def test_copy_and_rewrite(client: storage.Client) -> None:
    src = client.create_bucket("src-bucket")
    dst = client.create_bucket("dst-bucket")
    blob = src.blob("a/b.dcm")
    blob.upload_from_string(b"payload", content_type="application/dicom")
    copied = src.copy_blob(blob, dst, "copies/b.dcm")
    assert copied.name == "copies/b.dcm"
    assert dst.blob("copies/b.dcm").download_as_bytes() == b"payload"

    target = dst.blob("rewritten.dcm")
    token, done, total = target.rewrite(src.blob("a/b.dcm"))
    assert token is None and done == total == 7
    fetched = dst.get_blob("rewritten.dcm")
    assert fetched is not None and fetched.content_type == "application/dicom"


def test_patch_object_metadata(client: storage.Client) -> None:
    bucket = client.create_bucket("patch-bucket")
    blob = bucket.blob("m")
    blob.upload_from_string(b"x")
    blob.metadata = {"k": "v"}
    blob.content_type = "application/dicom"
    blob.patch()
    fetched = bucket.get_blob("m")
    assert fetched is not None
    assert fetched.metadata == {"k": "v"}
    assert fetched.content_type == "application/dicom"
    assert fetched.metageneration == 2


def test_bucket_iam_get_set(client: storage.Client, emulator: Emulator) -> None:
    bucket = client.create_bucket("iam-bucket")
    member = "serviceAccount:service-123@gcp-sa-healthcare.iam.gserviceaccount.com"
    policy = bucket.get_iam_policy(requested_policy_version=3)
    assert policy.etag
    assert {b["role"] for b in policy.bindings} >= {"roles/storage.legacyBucketOwner"}
    assert not emulator.storage.role_granted("iam-bucket", member, "roles/storage.objectViewer")

    policy.bindings.append({"role": "roles/storage.objectAdmin", "members": {member}})
    updated = bucket.set_iam_policy(policy)
    assert updated.etag != policy.etag
    again = bucket.get_iam_policy(requested_policy_version=3)
    admins = [b for b in again.bindings if b["role"] == "roles/storage.objectAdmin"]
    assert admins and member in admins[0]["members"]
    # objectAdmin implies objectViewer; the Healthcare side reads this directly.
    assert emulator.storage.role_granted("iam-bucket", member, "roles/storage.objectViewer")
    assert not emulator.storage.role_granted("iam-bucket", member, "roles/storage.admin")

    # A write based on a stale etag is refused.
    with pytest.raises(gexc.PreconditionFailed):
        bucket.set_iam_policy(policy)


def test_bucket_labels_patch(client: storage.Client) -> None:
    bucket = client.create_bucket("label-bucket")
    bucket.labels = {"team": "imaging"}
    bucket.patch()
    assert client.get_bucket("label-bucket").labels == {"team": "imaging"}
