"""A ``DicomImport`` stack through its lifecycle with the real Pulumi CLI against the emulator.

Expected counters come from the corpus the seeding uploaded (one well-formed file per SOP
instance), never from the emulator's own bookkeeping; what the emulator did is read from its
request log.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from support.e2e.dicom_stack import PASSPHRASE, DicomStack

pytestmark = pytest.mark.e2e


def _corpus_counters(stack: DicomStack) -> dict[str, int]:
    uids = {file.sop_instance_uid for file in stack.emulator.corpus}
    assert len(uids) == len(stack.emulator.corpus) > 0, "the corpus has one file per instance"
    return {"success": len(uids), "failure": 0}


def _counters(output: dict[str, Any]) -> dict[str, int]:
    return {"success": output["success"], "failure": output["failure"]}


def test_preview_runs_nothing_and_up_reports_the_corpus_counters_once(stack: DicomStack) -> None:
    preview = stack.cli.run("preview")
    assert re.search(r"\+ +pulumi-python:dynamic:Resource import-0 create", preview.stdout)
    assert "+ 2 to create" in preview.stdout  # the stack and the import
    assert stack.emulator.requests() == [], "preview must not call the APIs"

    up = stack.cli.run("up", "--yes")
    assert "+ 2 created" in up.stdout
    [output] = stack.imports()
    assert _counters(output) == _corpus_counters(stack)
    assert stack.emulator.import_posts() == 1
    [operation] = stack.emulator.import_operations()
    assert output["operation"] == operation["name"]
    assert output["createTime"] == operation["metadata"]["createTime"]
    assert output["endTime"] == operation["metadata"]["endTime"]

    again = stack.cli.run("up", "--yes", "--expect-no-changes")
    assert "2 unchanged" in again.stdout
    assert stack.emulator.import_posts() == 1, "an unchanged stack submits nothing"
    assert stack.imports() == [output]


def test_request_changes_replace_and_timeout_changes_update_in_place(stack: DicomStack) -> None:
    stack.cli.run("up", "--yes")
    [first] = stack.imports()
    expected = _corpus_counters(stack)

    # The same files through another pattern: a different request, so a new operation.
    assert all(file.path.name.endswith(".dcm") for file in stack.emulator.corpus)
    stack.configure(gcsUri=stack.emulator.source_uri.removesuffix("**") + "*.dcm")
    by_uri = stack.cli.run("up", "--yes")
    assert "1 replaced" in by_uri.stdout
    assert "deleted none of the data it imported" in by_uri.stdout, (
        "the old import is only forgotten"
    )
    [second] = stack.imports()
    assert second["operation"] != first["operation"]
    assert _counters(second) == expected, "instances already stored count as imported"
    assert stack.emulator.import_posts() == 2

    stack.configure(trigger="rerun-1")
    by_trigger = stack.cli.run("up", "--yes")
    assert "1 replaced" in by_trigger.stdout
    [third] = stack.imports()
    assert third["operation"] not in (first["operation"], second["operation"])
    assert _counters(third) == expected
    assert stack.emulator.import_posts() == 3

    stack.configure(timeoutSeconds=900)
    by_timeout = stack.cli.run("up", "--yes")
    assert re.search(r"~ +pulumi-python:dynamic:Resource import-0 update", by_timeout.stdout)
    assert "1 updated" in by_timeout.stdout
    assert "replaced" not in by_timeout.stdout
    assert stack.imports() == [third], "an in-place update keeps the operation and counters"
    assert stack.emulator.import_posts() == 3, "an in-place update submits nothing"
    [resource] = stack.import_resources()
    assert resource["id"] == third["operation"]
    assert resource["outputs"]["timeout_seconds"] == 900


def test_refresh_has_no_drift_and_destroy_keeps_the_imported_instances(
    stack: DicomStack,
) -> None:
    stack.cli.run("up", "--yes")
    [output] = stack.imports()
    stack.emulator.clear_requests()

    refresh = stack.cli.run("refresh", "--yes", "--expect-no-changes")
    assert "2 unchanged" in refresh.stdout
    reads = stack.emulator.requests("GET", re.escape(output["operation"]) + "$")
    assert reads, "refresh re-reads the operation"
    assert stack.emulator.requests("POST") == [], "refresh changes nothing remotely"
    assert stack.imports() == [output]

    destroy = stack.cli.run("destroy", "--yes")
    assert "deleted none of the data it imported" in destroy.stdout
    assert stack.import_resources() == []
    deletes = stack.emulator.requests("DELETE")
    assert deletes == [], f"destroy must not delete anything remotely: {deletes}"

    expected = {file.sop_instance_uid for file in stack.emulator.corpus}
    assert stack.emulator.stored_instance_uids() == expected


FORBIDDEN = ("access_token", "refresh_token", "private_key", "client_secret", "Bearer", "ya29.")


def _pickled_providers(state: dict[str, Any]) -> list[bytes]:
    """The dynamic providers of a ``--show-secrets`` export (dill pickles, base64 in state)."""
    found = []
    for resource in state["deployment"].get("resources") or []:
        for properties in (resource.get("inputs") or {}, resource.get("outputs") or {}):
            value = properties.get("__provider")
            if isinstance(value, dict):  # a secret: {"<sig>": ..., "plaintext": "<JSON>"}
                value = json.loads(value["plaintext"])
            if isinstance(value, str):
                found.append(base64.b64decode(value))
    return found


def test_stack_export_holds_no_credential(stack: DicomStack, tmp_path: Path) -> None:
    # Credentials in the environment of the CLI (an ADC file, a gcloud token): the providers
    # talk to the emulator anonymously and must not carry any of them into the state.
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "e2e-client.apps.googleusercontent.com",
                "client_secret": "e2e-client-secret-7b1d",
                "refresh_token": "1//e2e-refresh-token-3c4f",
            }
        )
    )
    stack.cli.extra_env = {
        **stack.cli.extra_env,
        "GOOGLE_APPLICATION_CREDENTIALS": str(adc),
        "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.e2e-access-token-9a8b",
    }
    stack.cli.run("up", "--yes")
    assert stack.imports()[0]["success"] == _corpus_counters(stack)["success"]

    text = stack.cli.run("stack", "export").stdout
    revealed = json.loads(stack.cli.run("stack", "export", "--show-secrets").stdout)
    providers = _pickled_providers(revealed)
    assert len(providers) == 2, "the import's pickled provider is in its inputs and outputs"
    assert all(b"DicomImportProvider" in pickled for pickled in providers)
    secrets = (
        *FORBIDDEN,
        PASSPHRASE,
        "e2e-client-secret-7b1d",
        "1//e2e-refresh-token-3c4f",
        "e2e-access-token-9a8b",
    )
    for secret in secrets:
        assert secret not in text, f"{secret!r} is in `pulumi stack export`"
        assert secret not in json.dumps(revealed), f"{secret!r} is in a --show-secrets export"
        for pickled in providers:
            assert secret.encode() not in pickled, f"{secret!r} is in a pickled provider"
