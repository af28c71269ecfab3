"""The import contracts of ``.importlinter`` hold (checked by import-linter's ``lint-imports``).

The contracts keep the three distributions apart (library, emulator, Pulumi host), the
library's Healthcare layer below Pulumi, the lifecycle and specs free of any Pulumi front end,
the emulator's sub-packages in layers and its domain code free of HTTP. A second test proves
the check can fail: the same tool, on a copy of the configuration with two contracts known to
be broken, reports them.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"
CONTRACTS = (
    "emulator-stands-alone",
    "library-stands-alone",
    "pulumi-host-stands-alone",
    "healthcare-below-pulumi",
    "emulator-layers",
    "emulator-domain-without-http",
    "lifecycle-without-front-ends",
)


def lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    """Run the venv's ``lint-imports`` on ``config`` from the repository root."""
    tool = Path(sys.executable).with_name("lint-imports")
    if not tool.exists():
        pytest.fail(f"{tool} is missing: install the test extra (pip install -e '.[test]')")
    return subprocess.run(
        [str(tool), "--no-cache", "--no-logo", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_import_contract_is_kept() -> None:
    result = lint_imports(CONFIG)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout, result.stdout


def test_the_configuration_holds_the_expected_contracts() -> None:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)

    found = {s.removeprefix("importlinter:contract:") for s in parser.sections()} - {"importlinter"}

    assert found == set(CONTRACTS)


def test_a_broken_contract_fails_the_check(tmp_path: Path) -> None:
    # Both are false on purpose: providers drive Pulumi, and the emulator's API routes use
    # its own URI rules. The check must report them, else a passing run proves nothing.
    broken = CONFIG.read_text(encoding="utf-8") + (
        "\n[importlinter:contract:providers-without-pulumi]\n"
        "name = (deliberately broken) providers do not import pulumi\n"
        "type = forbidden\n"
        "source_modules =\n    dicom_transfer.providers\n"
        "forbidden_modules =\n    pulumi\n"
        "\n[importlinter:contract:api-without-uri-rules]\n"
        "name = (deliberately broken) emulator routes do not import its URI rules\n"
        "type = forbidden\n"
        "source_modules =\n    dicom_transfer_emulator.healthcare.api\n"
        "forbidden_modules =\n    dicom_transfer_emulator.healthcare.gcs_uris\n"
    )
    config = tmp_path / "broken.importlinter"
    config.write_text(broken, encoding="utf-8")

    result = lint_imports(config)

    assert result.returncode != 0, result.stdout
    assert f"Contracts: {len(CONTRACTS)} kept, 2 broken." in result.stdout, result.stdout
    assert "dicom_transfer.providers -> pulumi" in result.stdout, result.stdout
