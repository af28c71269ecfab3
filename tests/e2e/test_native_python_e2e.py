"""A Python program on the native provider (not the dynamic resources), real CLI + emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.e2e.dicom_stack import PLAN, SeededEmulator
from support.e2e.native_stack import EXPORT_TYPE, IMPORT_TYPE, native_stack

pytestmark = pytest.mark.e2e

PROGRAM = """\
import pulumi

config = pulumi.Config()
outputs = dict.fromkeys(["operationName", "successCount", "failureCount"])
load = pulumi.CustomResource(
    "dicomtransfer:index:DicomImport",
    "load",
    {"dicomStore": config.require("store"), "gcsUri": config.require("source"), **outputs},
)
copy = pulumi.CustomResource(
    "dicomtransfer:index:DicomExport",
    "copy",
    {
        "dicomStore": config.require("store"),
        "gcsDestination": {"uriPrefix": config.require("prefix")},
        **outputs,
    },
    opts=pulumi.ResourceOptions(depends_on=[load]),
)
pulumi.export("imported", load.successCount)
pulumi.export("exported", copy.successCount)
"""


def test_a_python_program_imports_and_exports_through_the_provider(
    tmp_path: Path, emulator: SeededEmulator
) -> None:
    stack = native_stack(
        tmp_path / "python",
        emulator,
        program="name: dicom-native-py\nruntime: python\n",
        main_py=PROGRAM,
    )
    stack.configure(
        store=emulator.store_name,
        source=emulator.source_uri,
        prefix=f"gs://{PLAN.export_bucket}/py",
    )
    stack.cli.run("up", "--yes")
    outputs = stack.cli.stack_outputs()
    assert outputs == {"imported": len(emulator.corpus), "exported": len(emulator.corpus)}
    [load] = stack.resources(IMPORT_TYPE)
    [copy] = stack.resources(EXPORT_TYPE)
    assert load["id"].startswith(emulator.dataset_name + "/operations/")
    assert copy["outputs"]["gcsDestination"]["uriPrefix"] == f"gs://{PLAN.export_bucket}/py"
    assert not stack.resources("pulumi-python:dynamic:Resource")
    stack.cli.run("destroy", "--yes")
