"""The generated Go SDK: it and examples/go build, and the example runs ``pulumi up`` and
``destroy`` against the emulator through the native provider (real CLI, our Go language host).

Needs Go; ``make sdk-deps`` fills the module and build caches first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.e2e.dicom_stack import PLAN, SeededEmulator
from support.e2e.language_projects import (
    GO_EXAMPLE,
    example_stack,
    require_tool,
    run,
    transfer_posts,
)
from support.e2e.native_stack import EXPORT_TYPE, IMPORT_TYPE

pytestmark = pytest.mark.e2e

SDK_MODULE = "github.com/dicom-transfer/dicom-transfer/sdk/go"


def test_the_sdk_and_the_example_build_and_vet() -> None:
    # The SDK module has no go.sum of its own: it is built as a user builds it, through the
    # example's module and its replace (go.sum included).
    vet = run([require_tool("go"), "vet", ".", f"{SDK_MODULE}/..."], GO_EXAMPLE)
    assert vet.returncode == 0, f"go vet in {GO_EXAMPLE}:\n{vet.stdout}{vet.stderr}"


def test_up_and_destroy(tmp_path: Path, emulator: SeededEmulator) -> None:
    config = {
        "dicomStore": emulator.store_name,
        "gcsUri": emulator.source_uri,
        "exportUriPrefix": f"gs://{PLAN.export_bucket}/go",
    }
    stack = example_stack(GO_EXAMPLE, tmp_path / "go", emulator, config)
    instances = len(emulator.corpus)

    stack.cli.run("up", "--yes")
    outputs = stack.cli.stack_outputs()
    assert transfer_posts(emulator) == (1, 1)
    [load] = stack.resources(IMPORT_TYPE)
    [export] = stack.resources(EXPORT_TYPE)
    assert outputs == {
        "imported": {"operation": load["id"], "success": instances, "failure": 0},
        "exported": {"operation": export["id"], "success": instances, "failure": 0},
    }

    stack.cli.run("destroy", "--yes")
    assert stack.cli.stack_outputs() == {}
    assert not stack.resources(IMPORT_TYPE)
    assert transfer_posts(emulator) == (1, 1)
