"""The Pulumi package schema of ``dicomtransfer``, generated from the input table.

``python -m dicom_transfer.native.schema`` prints it; the committed ``schema.json`` at the
repository root is that output (a test fails when it is stale). Resources are
``dicomtransfer:index:DicomImport`` and ``dicomtransfer:index:DicomExport`` with the camelCase
names of :mod:`dicom_transfer.specs.inputs`; the provider's configuration is its connection
inputs. Pure: no I/O but reading the installed package's version.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

from dicom_transfer.specs.inputs import (
    CONFIG_INPUTS,
    INPUTS,
    Input,
    Output,
    TransferKind,
    inputs_of,
    outputs_of,
)

__all__ = ["PACKAGE", "RESOURCE_TOKENS", "package_version", "render_schema", "schema"]

PACKAGE = "dicomtransfer"
"""The package name: plugin ``pulumi-resource-dicomtransfer``, tokens ``dicomtransfer:...``."""
RESOURCE_TOKENS: dict[TransferKind, str] = {
    "import": f"{PACKAGE}:index:DicomImport",
    "export": f"{PACKAGE}:index:DicomExport",
}
"""The type token of each resource."""
GO_IMPORT_BASE = "github.com/dicom-transfer/dicom-transfer/sdk/go/dicomtransfer"
"""Where the generated Go SDK lives (``sdk/go`` of this repository)."""

_DESCRIPTIONS: dict[TransferKind, str] = {
    "import": "Imports DICOM files from Cloud Storage into a DICOM store (`dicomStores.import`): "
    "one long-running operation, submitted once and waited for; its counters are outputs. "
    "A change of the request replaces it (re-runs the import); delete never removes data.",
    "export": "Exports a DICOM store to Cloud Storage or BigQuery (`dicomStores.export`): one "
    "long-running operation, submitted once and waited for; its counters are outputs. A "
    "change of the request replaces it (re-runs the export); delete never removes data.",
}


def package_version() -> str:
    """The installed ``dicom-transfer`` distribution's version (the plugin's version)."""
    return version("dicom-transfer")


def _type(spec: Input | Output) -> dict[str, Any]:
    if isinstance(spec, Input) and spec.name == "max_failures":
        # A whole number, or "unlimited" (the spelling of "any number" that survives Pulumi
        # dropping null inputs).
        return {"oneOf": [{"type": "integer"}, {"type": "string"}]}
    if spec.type == "any":
        return {"$ref": "pulumi.json#/Any"}
    if spec.type == "string[]":
        return {"type": "array", "items": {"type": "string"}}
    if spec.type == "object":
        assert isinstance(spec, Input) and spec.object_name is not None
        return {"$ref": f"#/types/{PACKAGE}:index:{spec.object_name}"}
    return {"type": spec.type}


def _property(spec: Input | Output) -> dict[str, Any]:
    prop = {**_type(spec), "description": spec.description}
    if isinstance(spec, Input):
        if spec.default is not None and "oneOf" not in prop:
            prop["default"] = spec.default
        if spec.change == "replace" and spec.type != "object":
            prop["willReplaceOnChanges"] = True
    return prop


def _object_types() -> dict[str, Any]:
    types: dict[str, Any] = {}
    for spec in INPUTS:
        if spec.type != "object":
            continue
        types[f"{PACKAGE}:index:{spec.object_name}"] = {
            "type": "object",
            "description": spec.description,
            "properties": {field.camel_name: _property(field) for field in spec.fields},
            "required": [field.camel_name for field in spec.fields if field.required],
        }
    return types


def _resource(kind: TransferKind) -> dict[str, Any]:
    inputs = inputs_of(kind)
    outputs = outputs_of(kind)
    input_properties = {spec.camel_name: _property(spec) for spec in inputs}
    required_inputs = [spec.camel_name for spec in inputs if spec.required]
    always = ("operation_name", "success_count", "failure_count")
    return {
        "description": _DESCRIPTIONS[kind],
        "inputProperties": input_properties,
        "requiredInputs": required_inputs,
        "properties": {
            **input_properties,
            **{spec.camel_name: _property(spec) for spec in outputs},
        },
        "required": required_inputs + [spec.camel_name for spec in outputs if spec.name in always],
    }


def schema() -> dict[str, Any]:
    """The package schema (Pulumi's package schema format) as a JSON-able dict."""
    config = {spec.camel_name: _property(spec) for spec in CONFIG_INPUTS}
    respect = {"respectSchemaVersion": True}
    return {
        "name": PACKAGE,
        "displayName": "DICOM transfer",
        "version": package_version(),
        "description": "Cloud Healthcare API DICOM imports and exports as resources: one "
        "long-running operation each, submitted once, resumed after interruptions.",
        "keywords": ["pulumi", "dicom", "healthcare", "gcp", "category/cloud"],
        "license": "Apache-2.0",
        "publisher": "dicom-transfer",
        "config": {"variables": config},
        "provider": {
            "description": "Where and as whom the transfers talk to the APIs. Unset: Google's "
            "endpoints with Application Default Credentials, or the emulators named by "
            "`HEALTHCARE_EMULATOR_HOST` / `STORAGE_EMULATOR_HOST`.",
            "inputProperties": config,
            "properties": config,
        },
        "types": _object_types(),
        "resources": {token: _resource(kind) for kind, token in RESOURCE_TOKENS.items()},
        "language": {
            "nodejs": {"packageName": "@dicom-transfer/dicomtransfer", **respect},
            "python": {"packageName": "pulumi_dicomtransfer", **respect},
            "go": {
                "importBasePath": GO_IMPORT_BASE,
                "generateResourceContainerTypes": True,
                **respect,
            },
            "csharp": {"rootNamespace": "DicomTransfer", **respect},
            "java": {"basePackage": "com.dicomtransfer", **respect},
        },
    }


def render_schema() -> str:
    """The schema as the committed ``schema.json`` holds it (2-space indent, final newline)."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render_schema(), end="")
