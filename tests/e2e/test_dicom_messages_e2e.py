"""What `pulumi up` shows for a failed transfer: the complete message first, little else."""

from __future__ import annotations

import pytest
from support.e2e.dicom_stack import DicomStack

pytestmark = pytest.mark.e2e

RESOURCE_ROW = "pulumi-python:dynamic:Resource (import-0):"


def diagnostics(stdout: str) -> str:
    """The `Diagnostics:` section of an `up` (up to the `Resources:` summary)."""
    return stdout.partition("\nDiagnostics:\n")[2].partition("\nResources:\n")[0]


def failed_resource_lines(stdout: str) -> list[str]:
    """Every line the CLI printed about the failed resource, in the Diagnostics section."""
    section = diagnostics(stdout).partition(RESOURCE_ROW)[2]
    lines = []
    for line in section.splitlines():
        if line and not line.startswith("    ") and not line.startswith("\t"):
            break  # the next resource's heading
        if line.strip():
            lines.append(line)
    return lines


def test_a_failed_import_says_everything_in_its_first_line(stack: DicomStack) -> None:
    stack.emulator.add_faults(spec="fail-operation=13:disk on fire (e2e)")

    up = stack.cli.run("up", "--yes", check=False)

    assert up.returncode != 0
    [operation] = stack.emulator.import_operations()
    lines = failed_resource_lines(up.stdout)
    print(f"lines printed for the failed resource: {len(lines)}", *lines, sep="\n")
    first = lines[0]
    for part in (
        f"operation {operation['name']} failed (code 13): disk on fire (e2e)",
        "counters: success=0 failure=0",
        f"logs: {operation['metadata']['logsUrl']}",
    ):
        assert part in first, lines
    assert "Traceback" not in first
    # The resource's row in the progress display shows the same first line.
    assert f"import-0 **creating failed** {first.strip()}" in up.stdout
    # Measured with pulumi 3.272 on Python 3.11: 22 lines before (message last), 13 now
    # (message, the SDK host's three frames, the message again); see the README.
    assert len(lines) <= 13, lines


def test_a_retired_endpoint_variable_fails_preview_naming_its_replacement(
    stack: DicomStack,
) -> None:
    url = stack.emulator.healthcare_url
    stack.cli.extra_env = {**stack.cli.extra_env, "DICOM_TRANSFER_HEALTHCARE_ENDPOINT": url}

    preview = stack.cli.run("preview", check=False)

    assert preview.returncode != 0
    output = preview.stdout + preview.stderr
    assert f"DICOM_TRANSFER_HEALTHCARE_ENDPOINT={url!r} is set but no longer read" in output
    assert "Set HEALTHCARE_EMULATOR_HOST for a local emulator" in output, output
    assert "Traceback" not in output  # a check failure, not a crash
    assert stack.emulator.requests() == []


def test_a_retired_endpoint_variable_fails_refresh_before_any_call(stack: DicomStack) -> None:
    # `pulumi refresh` runs no check: the providers' read refuses instead of reading Google's
    # endpoint (here HEALTHCARE_EMULATOR_HOST is set too; without it calls would go there).
    stack.cli.run("up", "--yes")
    stack.emulator.clear_requests()
    url = stack.emulator.healthcare_url
    stack.cli.extra_env = {**stack.cli.extra_env, "DICOM_TRANSFER_HEALTHCARE_ENDPOINT": url}

    refresh = stack.cli.run("refresh", "--yes", check=False)

    assert refresh.returncode != 0
    output = refresh.stdout + refresh.stderr
    assert f"DICOM_TRANSFER_HEALTHCARE_ENDPOINT={url!r} is set but no longer read" in output
    assert stack.emulator.requests() == []
