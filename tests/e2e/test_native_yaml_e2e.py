"""The native provider from a YAML program (``examples/yaml``), real CLI against the emulator."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from support.e2e.dicom_stack import PLAN, SeededEmulator, wait_until
from support.e2e.native_stack import EXPORT_TYPE, IMPORT_TYPE, NativeStack, native_stack

pytestmark = pytest.mark.e2e

EXPORT_PATH = r"/dicomStores/[^/]+:export$"
IMPORT_PATH = r"/dicomStores/[^/]+:import$"
TABLE = f"{PLAN.project}.meta.instances"

ONE_IMPORT = """\
name: dicom-native-e2e
runtime: yaml
config:
  dicomStore:
    type: string
  sourceUri:
    type: string
  maxFailures:
    type: integer
    default: 0
resources:
  load:
    type: dicomtransfer:index:DicomImport
    properties:
      dicomStore: ${dicomStore}
      gcsUri: ${sourceUri}
      maxFailures: ${maxFailures}
    options:
      customTimeouts:
        create: 2s
outputs:
  imported: ${load.successCount}
"""


@pytest.fixture
def example(tmp_path: Path, emulator: SeededEmulator) -> NativeStack:
    """examples/yaml, configured for the seeded emulator."""
    stack = native_stack(tmp_path / "yaml", emulator)
    stack.configure(
        dicomStore=emulator.store_name,
        sourceUri=emulator.source_uri,
        exportPrefix=f"gs://{PLAN.export_bucket}/png",
        tableUri=f"bq://{TABLE}",
        timeoutSeconds=120,
    )
    return stack


def _posts(emulator: SeededEmulator, path: str) -> int:
    return len(emulator.requests("POST", path))


def test_preview_with_a_bad_gcs_uri_fails_naming_the_property_without_an_api_call(
    example: NativeStack,
) -> None:
    example.configure(sourceUri="http://not-a-bucket/x.dcm")
    preview = example.cli.run("preview", check=False)
    output = preview.stdout + preview.stderr
    assert preview.returncode != 0
    assert "gcsUri: got 'http://not-a-bucket/x.dcm'; expected gs://" in output, output
    assert "Traceback" not in output
    assert example.emulator.requests() == []


def test_preview_with_a_bad_nested_property_names_its_input_and_prints_its_value(
    example: NativeStack,
) -> None:
    # The engine prints the failing value by looking the failure's property up in the inputs:
    # the provider names the top-level input (a nested path printed "{<nil>}").
    example.configure(exportPrefix="s3://not-gcs/png")
    preview = example.cli.run("preview", check=False)
    output = preview.stdout + preview.stderr
    assert preview.returncode != 0
    assert "property gcsDestination value" in output, output
    assert "s3://not-gcs/png" in output.split("property gcsDestination value", 1)[1], output
    assert "gcsDestination.uriPrefix: got 's3://not-gcs/png'" in output, output
    assert "{<nil>}" not in output and "Traceback" not in output
    assert example.emulator.requests() == []


def test_a_retired_endpoint_variable_fails_preview_naming_its_replacement(
    example: NativeStack,
) -> None:
    # The lifecycle's check: the native provider refuses it as the dynamic one does.
    url = example.emulator.healthcare_url
    example.cli.extra_env = {**example.cli.extra_env, "DICOM_TRANSFER_HEALTHCARE_ENDPOINT": url}
    preview = example.cli.run("preview", check=False)
    output = preview.stdout + preview.stderr
    assert preview.returncode != 0
    assert f"DICOM_TRANSFER_HEALTHCARE_ENDPOINT={url!r} is set but no longer read" in output
    assert "Set HEALTHCARE_EMULATOR_HOST for a local emulator" in output, output
    assert "Traceback" not in output
    assert example.emulator.requests() == []


def test_up_noop_update_replace_refresh_destroy(example: NativeStack, tmp_path: Path) -> None:
    emulator = example.emulator
    events = tmp_path / "events.jsonl"
    example.cli.run("up", "--yes", "--event-log", str(events))
    outputs = example.cli.stack_outputs()
    instances = len(emulator.corpus)
    assert outputs["imported"] == instances
    assert outputs["importFailures"] == 0
    assert outputs["pngExported"] > 0
    assert outputs["pngExported"] + outputs["pngFailures"] == instances  # no pixel data: no PNG
    assert outputs["bigqueryExported"] == instances
    assert (_posts(emulator, IMPORT_PATH), _posts(emulator, EXPORT_PATH)) == (1, 2)
    # Progress on the row: ephemeral diagnostics carrying the transfer's URN.
    [load] = example.resources(IMPORT_TYPE)
    ephemeral = [
        event["diagnosticEvent"]
        for event in example.events(events)
        if event.get("diagnosticEvent", {}).get("ephemeral")
    ]
    assert any(event.get("urn") == load["urn"] for event in ephemeral), ephemeral
    assert load["id"] == outputs["importOperation"]

    # No change: nothing runs again.
    noop = example.cli.run("up", "--yes")
    assert "unchanged" in noop.stdout
    assert (_posts(emulator, IMPORT_PATH), _posts(emulator, EXPORT_PATH)) == (1, 2)

    # timeoutSeconds: an in-place update, no new operation.
    example.configure(timeoutSeconds=300)
    update = example.cli.run("up", "--yes")
    assert "updated" in update.stdout, update.stdout
    assert (_posts(emulator, IMPORT_PATH), _posts(emulator, EXPORT_PATH)) == (1, 2)
    assert example.resources(IMPORT_TYPE)[0]["outputs"]["timeoutSeconds"] == 300

    # A request change replaces: the import runs again (the exports depend on nothing of it).
    # Another request (same files): `corpus**` instead of `corpus/**`.
    example.configure(sourceUri=emulator.source_uri.replace("/**", "**"))
    replace = example.cli.run("up", "--yes")
    assert "replaced" in replace.stdout, replace.stdout
    assert _posts(emulator, IMPORT_PATH) == 2

    refresh = example.cli.run("refresh", "--yes")
    assert "Traceback" not in refresh.stdout + refresh.stderr

    stored = emulator.stored_instance_uids()
    destroy = example.cli.run("destroy", "--yes")
    assert "deleted none of the data it imported" in destroy.stdout, destroy.stdout
    assert emulator.stored_instance_uids() == stored
    assert example.resources(IMPORT_TYPE) == example.resources(EXPORT_TYPE) == []


def test_import_adopts_an_operation_started_directly(
    tmp_path: Path, emulator: SeededEmulator
) -> None:
    started = emulator.healthcare(
        "POST", f"/v1/{emulator.store_name}:import", {"gcsSource": {"uri": emulator.source_uri}}
    )
    finished = emulator.wait_for_operation(started["name"])
    stack = native_stack(tmp_path / "adopt", emulator, program=ONE_IMPORT)
    stack.configure(dicomStore=emulator.store_name, sourceUri=emulator.source_uri)
    posts = _posts(emulator, IMPORT_PATH)

    result = stack.cli.run("import", IMPORT_TYPE, "load", started["name"], "--yes")
    assert "Traceback" not in result.stdout + result.stderr
    [adopted] = stack.resources(IMPORT_TYPE)
    assert adopted["id"] == started["name"]
    assert adopted["outputs"]["successCount"] == int(finished["metadata"]["counter"]["success"])
    assert _posts(emulator, IMPORT_PATH) == posts, "import submits nothing"


def test_custom_timeout_fails_in_about_two_seconds_and_the_next_up_resumes(
    tmp_path: Path, emulator: SeededEmulator
) -> None:
    emulator.add_faults(spec="operation-seconds=30")
    stack = native_stack(tmp_path / "timeout", emulator, program=ONE_IMPORT)
    stack.configure(dicomStore=emulator.store_name, sourceUri=emulator.source_uri)

    start = time.monotonic()
    up = stack.cli.run("up", "--yes", check=False)
    elapsed = time.monotonic() - start
    output = up.stdout + up.stderr
    assert up.returncode != 0
    [operation] = emulator.import_operations()
    assert operation["name"] in output and "pulumi up" in output, output
    assert "customTimeouts.create" in output and "Traceback" not in output
    assert elapsed < 25, f"up took {elapsed:.0f} s; the create timeout is 2 s"

    # Long enough to finish: the next up resumes the same operation, no new submit.
    emulator.wait_for_operation(operation["name"], timeout_s=60)
    stack.cli.run("up", "--yes")
    assert stack.cli.stack_outputs()["imported"] == len(emulator.corpus)
    assert _posts(emulator, IMPORT_PATH) == 1
    assert stack.resources(IMPORT_TYPE)[0]["id"] == operation["name"]


def test_a_failed_create_is_kept_and_the_next_up_rejudges_it_without_a_submit(
    tmp_path: Path, emulator: SeededEmulator
) -> None:
    for index in range(2):
        emulator.upload(f"junk/note-{index}.txt", b"not DICOM\n" * 20, "text/plain")
    stack = native_stack(tmp_path / "failed", emulator, program=ONE_IMPORT)
    stack.configure(dicomStore=emulator.store_name, sourceUri=f"gs://{PLAN.source_bucket}/junk/**")

    up = stack.cli.run("up", "--yes", check=False)
    assert up.returncode != 0
    assert "failure=2" in up.stdout and "Traceback" not in up.stdout + up.stderr, up.stdout
    [operation] = emulator.import_operations()
    [kept] = stack.resources(IMPORT_TYPE)
    assert kept["id"] == operation["name"]
    assert kept["outputs"]["failureCount"] == 2

    stack.configure(maxFailures=2)
    stack.cli.run("up", "--yes")
    assert _posts(emulator, IMPORT_PATH) == 1, "the finished operation is judged again, not rerun"
    [judged] = stack.resources(IMPORT_TYPE)
    assert judged["id"] == operation["name"] and not judged.get("initErrors")


def test_the_import_option_adopts_an_operation_with_the_programs_inputs(
    tmp_path: Path, emulator: SeededEmulator
) -> None:
    started = emulator.healthcare(
        "POST", f"/v1/{emulator.store_name}:import", {"gcsSource": {"uri": emulator.source_uri}}
    )
    emulator.wait_for_operation(started["name"])
    program = ONE_IMPORT.replace(
        "    options:\n", f"    options:\n      import: {started['name']}\n"
    )
    stack = native_stack(tmp_path / "adopt-option", emulator, program=program)
    stack.configure(dicomStore=emulator.store_name, sourceUri=emulator.source_uri)

    stack.cli.run("up", "--yes")
    [adopted] = stack.resources(IMPORT_TYPE)
    assert adopted["id"] == started["name"]
    assert stack.cli.stack_outputs()["imported"] == len(emulator.corpus)
    assert _posts(emulator, IMPORT_PATH) == 1, "adopting submits nothing"
    noop = stack.cli.run("up", "--yes")
    assert _posts(emulator, IMPORT_PATH) == 1 and "Traceback" not in noop.stdout


def test_ctrl_c_stops_the_wait_and_the_next_up_resumes_the_running_operation(
    tmp_path: Path, emulator: SeededEmulator
) -> None:
    emulator.add_faults(spec="operation-seconds=30")
    program = ONE_IMPORT.replace("    options:\n      customTimeouts:\n        create: 2s\n", "")
    stack = native_stack(tmp_path / "cancel", emulator, program=program)
    stack.configure(dicomStore=emulator.store_name, sourceUri=emulator.source_uri)
    log = tmp_path / "up.log"
    process = stack.cli.start("up", "--yes", output=log)
    wait_until(lambda: _posts(emulator, IMPORT_PATH) == 1, 60, "the submit")

    # A terminal's Ctrl-C: the CLI's process group; the engine asks the provider to cancel.
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=120) != 0
    output = log.read_text()
    [operation] = emulator.import_operations()
    assert not operation.get("done"), "the wait stopped while the operation still ran"
    assert "cancelled while waiting" in output and "Traceback" not in output, output

    emulator.wait_for_operation(operation["name"], timeout_s=120)
    stack.cli.run("up", "--yes")
    assert _posts(emulator, IMPORT_PATH) == 1, "resumed, not submitted again"
    assert stack.resources(IMPORT_TYPE)[0]["id"] == operation["name"]
