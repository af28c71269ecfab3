"""The generated Node.js SDK from TypeScript: type checks, and examples/typescript against the
emulator through the native provider (real CLI, our Node.js language host).

Needs ``make sdk-deps`` (the SDK built with tsc and the example's node_modules).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.e2e.dicom_stack import PLAN, SeededEmulator
from support.e2e.language_projects import (
    TYPESCRIPT_EXAMPLE,
    copy_project,
    example_stack,
    require_node_modules,
    run,
    transfer_posts,
)
from support.e2e.native_stack import EXPORT_TYPE, IMPORT_TYPE

pytestmark = pytest.mark.e2e


def _tsc(project: Path) -> tuple[int, str]:
    result = run([str(require_node_modules() / ".bin" / "tsc"), "--noEmit", "-p", "."], project)
    return result.returncode, result.stdout + result.stderr


def test_the_example_type_checks() -> None:
    code, output = _tsc(TYPESCRIPT_EXAMPLE)
    assert code == 0, output


def test_a_misspelled_property_fails_the_type_check(tmp_path: Path) -> None:
    project = copy_project(TYPESCRIPT_EXAMPLE, tmp_path / "typo", node_modules=True)
    program = project / "index.ts"
    program.write_text(program.read_text().replace("gcsUri:", "gcsUrl:", 1))

    code, output = _tsc(project)

    assert code != 0
    assert "'gcsUrl' does not exist in type 'DicomImportArgs'" in output, output


def test_up_noop_refresh_destroy(tmp_path: Path, emulator: SeededEmulator) -> None:
    config = {
        "dicomStore": emulator.store_name,
        "gcsUri": emulator.source_uri,
        "pngUriPrefix": f"gs://{PLAN.export_bucket}/ts-png",
        "bigqueryTableUri": f"bq://{PLAN.project}.meta.ts_instances",
    }
    stack = example_stack(TYPESCRIPT_EXAMPLE, tmp_path / "ts", emulator, config, node_modules=True)
    instances = len(emulator.corpus)

    stack.cli.run("up", "--yes")
    outputs = stack.cli.stack_outputs()
    assert transfer_posts(emulator) == (1, 2)
    assert outputs["imported"]["success"] == instances
    assert outputs["imported"]["failure"] == 0
    assert outputs["pngExport"]["success"] > 0
    assert outputs["pngExport"]["success"] + outputs["pngExport"]["failure"] == instances
    assert outputs["bigqueryExport"] == {
        "operation": outputs["bigqueryExport"]["operation"],
        "success": instances,
        "failure": 0,
    }
    [load] = stack.resources(IMPORT_TYPE)
    assert load["id"] == outputs["imported"]["operation"]
    assert {e["id"] for e in stack.resources(EXPORT_TYPE)} == {
        outputs["pngExport"]["operation"],
        outputs["bigqueryExport"]["operation"],
    }

    assert "unchanged" in stack.cli.run("up", "--yes").stdout
    stack.cli.run("refresh", "--yes")
    assert stack.cli.stack_outputs() == outputs
    assert transfer_posts(emulator) == (1, 2)

    stack.cli.run("destroy", "--yes")
    assert stack.cli.stack_outputs() == {}
    assert not stack.resources(IMPORT_TYPE)
    assert transfer_posts(emulator) == (1, 2)
