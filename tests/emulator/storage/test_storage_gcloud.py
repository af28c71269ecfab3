"""The installed gcloud CLI (``gcloud storage``) against the emulator's Cloud Storage API.

gcloud is pointed at the emulator with
``CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=http://127.0.0.1:PORT/storage/v1/`` and
``CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true`` (see ``gcloud_environment`` in conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from dicom_transfer_emulator.app import Emulator


def gcloud(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["gcloud", *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, f"gcloud {' '.join(args)} failed:\n{result.stderr}"
    return result


def test_gcloud_buckets_create_and_list(gcloud_env: dict[str, str], emulator: Emulator) -> None:
    gcloud(gcloud_env, "storage", "buckets", "create", "gs://gcloud-made", "--location=us-east1")
    assert emulator.storage.get_bucket("gcloud-made").location == "US-EAST1"
    listed = gcloud(gcloud_env, "storage", "ls")
    assert listed.stdout.split() == ["gs://gcloud-made/"]
    described = gcloud(gcloud_env, "storage", "buckets", "list", "--format=json")
    assert [b["name"] for b in json.loads(described.stdout)] == ["gcloud-made"]


def test_gcloud_cp_up_and_down_and_ls_prefix(
    gcloud_env: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    emulator.storage.create_bucket("gcloud-cp", "test-project")
    small = tmp_path / "small.dcm"
    small.write_bytes(b"DICM" * 100)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024 + 5))  # above gcloud's resumable threshold

    gcloud(gcloud_env, "storage", "cp", str(small), "gs://gcloud-cp/studies/1/small.dcm")
    gcloud(gcloud_env, "storage", "cp", str(big), "gs://gcloud-cp/studies/2/big.bin")
    gcloud(gcloud_env, "storage", "cp", str(small), "gs://gcloud-cp/other/x.dcm")
    assert emulator.storage.read_object("gcloud-cp", "studies/2/big.bin") == big.read_bytes()

    listed = gcloud(gcloud_env, "storage", "ls", "gs://gcloud-cp/studies/")
    assert listed.stdout.split() == ["gs://gcloud-cp/studies/1/", "gs://gcloud-cp/studies/2/"]
    recursive = gcloud(gcloud_env, "storage", "ls", "-r", "gs://gcloud-cp/studies/**")
    assert sorted(recursive.stdout.split()) == [
        "gs://gcloud-cp/studies/1/small.dcm",
        "gs://gcloud-cp/studies/2/big.bin",
    ]

    down = tmp_path / "down.bin"
    gcloud(gcloud_env, "storage", "cp", "gs://gcloud-cp/studies/2/big.bin", str(down))
    assert down.read_bytes() == big.read_bytes()

    gcloud(gcloud_env, "storage", "rm", "gs://gcloud-cp/other/x.dcm")
    assert not emulator.storage.object_exists("gcloud-cp", "other/x.dcm")


def test_gcloud_bucket_iam_binding(gcloud_env: dict[str, str], emulator: Emulator) -> None:
    emulator.storage.create_bucket("gcloud-iam", "test-project")
    member = "serviceAccount:service-42@gcp-sa-healthcare.iam.gserviceaccount.com"
    gcloud(
        gcloud_env,
        "storage",
        "buckets",
        "add-iam-policy-binding",
        "gs://gcloud-iam",
        f"--member={member}",
        "--role=roles/storage.objectViewer",
    )
    assert emulator.storage.role_granted("gcloud-iam", member, "roles/storage.objectViewer")
    policy = json.loads(
        gcloud(
            gcloud_env, "storage", "buckets", "get-iam-policy", "gs://gcloud-iam", "--format=json"
        ).stdout
    )
    viewers = [b for b in policy["bindings"] if b["role"] == "roles/storage.objectViewer"]
    assert viewers[0]["members"] == [member]


def test_gcloud_large_upload_is_resumable(
    gcloud_env: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    emulator.storage.create_bucket("gcloud-resumable", "test-project")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))
    gcloud(gcloud_env, "storage", "cp", str(big), "gs://gcloud-resumable/big.bin")
    uploads = emulator.requests.matching(path_regex=r"upload/storage/v1/b/gcloud-resumable/o$")
    assert any("uploadType=resumable" in r.query for r in uploads), uploads
    assert emulator.storage.read_object("gcloud-resumable", "big.bin") == big.read_bytes()
