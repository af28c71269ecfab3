"""examples/emulator-quickstart with the README's commands: seed the emulator, `pulumi up`."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from dicom_transfer_emulator.testing.launch import EmulatorProcess
from dicom_transfer_emulator.testing.seed import corpus_files
from support.e2e.pulumi_cli import REPO, PulumiCli

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "examples" / "emulator-quickstart"
SEED = Path(sys.executable).parent / "dicom-transfer-emulator"


def _exported_environment(seed_output: str) -> dict[str, str]:
    """The ``export NAME=VALUE`` lines `seed` printed, as the README has a shell use them."""
    pairs = [line.removeprefix("export ") for line in seed_output.splitlines()]
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair and " " not in pair)


def test_the_quickstart_example_imports_and_exports_against_a_seeded_emulator(
    tmp_path: Path,
) -> None:
    config_before = (EXAMPLE / "Pulumi.local.yaml").read_bytes()
    with (tmp_path / "emulator.log").open("w") as log, EmulatorProcess(log=log) as emulator:
        seeded = subprocess.run(
            [
                str(SEED),
                "seed",
                "--healthcare",
                emulator.healthcare_url,
                "--storage",
                emulator.storage_url,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert seeded.returncode == 0, seeded.stderr
        environment = _exported_environment(seeded.stdout)
        assert set(environment) == {"HEALTHCARE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"}
        cli = PulumiCli(
            project_dir=EXAMPLE,
            state_dir=tmp_path / "state",
            extra_env={**environment, "DICOM_TRANSFER_STATE_DIR": str(tmp_path / "journal")},
        )

        cli.run("stack", "select", "--create", "local")
        up = cli.run("up", "--yes")

        outputs = cli.stack_outputs()
        assert outputs["imported"] == len(corpus_files()), up.stdout
        assert outputs["exported"] == 2, up.stdout  # the two studies hold one instance each
        query = urllib.parse.urlencode({"prefix": "png/"})
        url = f"{emulator.storage_url}/storage/v1/b/demo-dicom-export/o?{query}"
        with urllib.request.urlopen(url, timeout=30) as response:
            names = [item["name"] for item in json.load(response).get("items", [])]
        assert len(names) == 2 and all(name.endswith(".png") for name in names), names
        assert "WARNING" not in up.stdout, up.stdout

        again = cli.run("preview", "--expect-no-changes")
        assert again.returncode == 0
    assert (EXAMPLE / "Pulumi.local.yaml").read_bytes() == config_before
