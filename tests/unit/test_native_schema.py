"""The native provider's schema: generated from the input table, committed, never stale."""

from __future__ import annotations

import json
from pathlib import Path

from dicom_transfer.native.schema import RESOURCE_TOKENS, package_version, render_schema, schema
from dicom_transfer.specs.inputs import CONFIG_INPUTS, camel_case, inputs_of, outputs_of

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_is_the_generated_one() -> None:
    committed = (ROOT / "schema.json").read_text(encoding="utf-8")
    assert committed == render_schema(), (
        "schema.json is stale: run `.venv/bin/python -m dicom_transfer.native.schema > schema.json`"
    )


def test_schema_has_every_input_and_output_of_the_table_in_camel_case() -> None:
    document = schema()
    assert document["version"] == package_version()
    for kind, token in RESOURCE_TOKENS.items():
        resource = document["resources"][token]
        names = [spec.camel_name for spec in inputs_of(kind)]
        assert list(resource["inputProperties"]) == names
        assert set(resource["properties"]) == set(names) | {
            spec.camel_name for spec in outputs_of(kind)
        }
    assert list(document["config"]["variables"]) == [spec.camel_name for spec in CONFIG_INPUTS]
    gcs = document["types"]["dicomtransfer:index:GcsDestination"]
    assert list(gcs["properties"]) == ["uriPrefix", "mimeType"]
    assert gcs["required"] == ["uriPrefix"]
    for language in ("nodejs", "python", "go", "csharp", "java"):
        assert document["language"][language]["respectSchemaVersion"] is True


def test_camel_case_follows_pulumi_convention() -> None:
    assert camel_case("gcs_destination") == "gcsDestination"
    assert camel_case("impersonate_service_account") == "impersonateServiceAccount"
    assert camel_case("triggers") == "triggers"
    assert json.loads(render_schema())["name"] == "dicomtransfer"
