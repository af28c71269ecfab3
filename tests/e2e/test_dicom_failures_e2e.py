"""Bad input and failed operations, as the real Pulumi CLI reports them."""

from __future__ import annotations

import re

import pytest
from support.e2e.dicom_stack import PLAN, DicomStack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("gcsUri", f"gs://{PLAN.source_bucket}/a**b", "gcs_uri"),
        (
            "store",
            PLAN.store_name.replace("/dicomStores/archive", "/dicomStores/bad:store?"),
            "dicom_store",
        ),
    ],
    ids=["gcs_uri", "dicom_store"],
)
def test_invalid_input_fails_preview_before_any_request(
    stack: DicomStack, key: str, value: str, field: str
) -> None:
    stack.configure(**{key: value})

    preview = stack.cli.run("preview", check=False)

    assert preview.returncode != 0
    message = f"{field}: got {value!r}; expected "
    assert message in preview.stdout, preview.stdout
    # The failed resource; engines from about v3.27x also count the stack that failed with it.
    assert re.search(r"^ +[12] errored$", preview.stdout, flags=re.MULTILINE), preview.stdout
    assert stack.emulator.requests() == [], "nothing may reach the APIs before input is valid"
    up = stack.cli.run("up", "--yes", check=False)
    assert up.returncode != 0
    assert message in up.stdout
    assert stack.emulator.requests() == []
    assert stack.import_resources() == []


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("DICOM_TRANSFER_PROVIDER_WORKERS", "2", "a whole number from 4"),  # provider process
        ("DICOM_TRANSFER_PROVIDER_SHARDS", "lots", "a whole number from 1 to 64"),  # program
        ("DICOM_TRANSFER_JOURNAL", "s3://bucket/journal", "gs://BUCKET[/DIRECTORY]"),
    ],
)
def test_a_malformed_setting_fails_preview_naming_it(
    stack: DicomStack, variable: str, value: str, allowed: str
) -> None:
    stack.cli.extra_env = {**stack.cli.extra_env, variable: value}

    preview = stack.cli.run("preview", check=False)

    assert preview.returncode != 0
    output = preview.stdout + preview.stderr
    assert f"{variable}: got {value!r}; expected {allowed}" in output, output
    assert stack.emulator.requests() == []


def _upload_non_dicom(stack: DicomStack, count: int) -> str:
    for index in range(count):
        stack.emulator.upload(f"junk/note-{index}.txt", b"not DICOM\n" * 20, "text/plain")
    return f"gs://{PLAN.source_bucket}/junk/**"


@pytest.mark.parametrize("cause", ["injected-error", "non-dicom-files"])
def test_a_failed_operation_fails_up_with_its_name_and_logs_url(
    stack: DicomStack, cause: str
) -> None:
    expected: tuple[str, ...]
    if cause == "injected-error":
        stack.emulator.add_faults(spec="fail-operation=13:disk on fire (e2e)")
        expected = ("failed (code 13): disk on fire (e2e)", "success=0 failure=0")
    else:
        stack.configure(gcsUri=_upload_non_dicom(stack, 2), maxFailures=0)
        expected = ("failed (code 3)", "success=0 failure=2", "failed to parse DICOM")

    up = stack.cli.run("up", "--yes", check=False)

    assert up.returncode != 0
    [operation] = stack.emulator.import_operations()
    assert operation["done"] and "error" in operation
    # What the CLI reports for the resource: the SDK's provider host sends str(exception)
    # (pulumi <= 3.252) or, later, the traceback that ends with it.
    diagnostics = up.stdout.partition("\nDiagnostics:\n")[2].partition("\nResources:\n")[0]
    reported = diagnostics.partition("pulumi-python:dynamic:Resource (import-0):")[2]
    assert f"operation {operation['name']} failed" in reported, up.stdout
    assert f"logs: {operation['metadata']['logsUrl']}" in reported
    for text in expected:
        assert text in reported
    assert stack.emulator.import_posts() == 1
    assert stack.import_resources() == [], "a failed import is not recorded as created"

    # A failed operation is over: the next `up` submits the request again instead of resuming.
    again = stack.cli.run("up", "--yes", check=False)
    assert stack.emulator.import_posts() == 2
    if cause == "injected-error":
        assert again.returncode == 0, again.stdout
        [output] = stack.imports()
        assert output["operation"] != operation["name"]
        assert output["success"] == len(stack.emulator.corpus)
    else:
        assert again.returncode != 0
        assert "success=0 failure=2" in again.stdout
