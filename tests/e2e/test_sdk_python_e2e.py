"""The generated Python SDK (``pulumi_dicomtransfer``, sdk/python) runs ``pulumi up`` and
``destroy`` against the emulator through the native provider, on the ``pulumi`` SDK of the
virtualenv running the test: both ends of the supported range in ``make test`` (TEST_LOWEST).

The SDK is an editable install of both virtualenvs (requirements/dev.in).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from support.e2e.dicom_stack import PLAN, SeededEmulator
from support.e2e.language_projects import transfer_posts
from support.e2e.native_stack import EXPORT_TYPE, IMPORT_TYPE, native_stack

pytestmark = pytest.mark.e2e

PROGRAM = """\
from importlib import metadata

import pulumi
import pulumi_dicomtransfer as dicomtransfer

config = pulumi.Config()
load = dicomtransfer.DicomImport(
    "load", dicom_store=config.require("dicomStore"), gcs_uri=config.require("gcsUri")
)
export = dicomtransfer.DicomExport(
    "export",
    dicom_store=load.dicom_store,
    gcs_destination=dicomtransfer.GcsDestinationArgs(uri_prefix=config.require("exportUriPrefix")),
)
pulumi.export("imported", {"operation": load.operation_name, "success": load.success_count})
pulumi.export("exported", {"operation": export.operation_name, "success": export.success_count})
pulumi.export("pulumiSdk", metadata.version("pulumi"))
"""


def test_up_and_destroy_with_the_generated_sdk(tmp_path: Path, emulator: SeededEmulator) -> None:
    stack = native_stack(
        tmp_path / "python",
        emulator,
        program="name: dicom-sdk-py\nruntime: python\n",
        main_py=PROGRAM,
    )
    stack.configure(
        dicomStore=emulator.store_name,
        gcsUri=emulator.source_uri,
        exportUriPrefix=f"gs://{PLAN.export_bucket}/py-sdk",
    )

    stack.cli.run("up", "--yes")
    outputs = stack.cli.stack_outputs()
    [load] = stack.resources(IMPORT_TYPE)
    [export] = stack.resources(EXPORT_TYPE)
    instances = len(emulator.corpus)
    assert outputs == {
        "imported": {"operation": load["id"], "success": instances},
        "exported": {"operation": export["id"], "success": instances},
        "pulumiSdk": metadata.version("pulumi"),  # the program ran on this leg's SDK
    }
    assert transfer_posts(emulator) == (1, 1)
    assert not stack.resources("pulumi-python:dynamic:Resource")

    stack.cli.run("destroy", "--yes")
    assert stack.cli.stack_outputs() == {}
    assert transfer_posts(emulator) == (1, 1)
