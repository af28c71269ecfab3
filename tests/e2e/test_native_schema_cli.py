"""The plugin's schema through the real CLI: `pulumi package get-schema`, `pulumi schema check`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from support.e2e.pulumi_cli import REPO, PulumiCli

pytestmark = pytest.mark.e2e


def test_the_plugin_serves_the_committed_schema_and_it_passes_schema_check(
    tmp_path: Path,
) -> None:
    plugin = shutil.which("pulumi-resource-dicomtransfer", path=str(Path(sys.executable).parent))
    assert plugin, "pulumi-resource-dicomtransfer is not installed in this virtualenv (make setup)"
    cli = PulumiCli(project_dir=tmp_path, state_dir=tmp_path / "state")
    served = cli.run("package", "get-schema", plugin).stdout
    committed = json.loads((REPO / "schema.json").read_text(encoding="utf-8"))
    schema = json.loads(served)  # the CLI's normalised form (empty lists dropped)
    for key in ("name", "version", "resources", "config", "language"):
        assert schema[key] == committed[key], key
    assert set(schema["types"]) == set(committed["types"])
    check = cli.run("schema", "check", str(REPO / "schema.json"))
    assert "error" not in (check.stdout + check.stderr).lower()
