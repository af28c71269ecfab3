"""tools/pulumi_host/pulumi-env.sh run for one's own stack: its state stays with that stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.e2e.pulumi_cli import REPO

pytestmark = pytest.mark.e2e

SCRIPT = REPO / "tools" / "pulumi_host" / "pulumi-env.sh"


def test_the_state_of_a_stack_run_elsewhere_is_kept_in_its_own_directory(
    tmp_path: Path,
) -> None:
    project = tmp_path / "my-stack"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DICOM_TRANSFER_PULUMI_STATE"}
    env["DICOM_TRANSFER_PYTHON"] = sys.executable

    result = subprocess.run(
        [str(SCRIPT), "--format", "json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,  # builds the CLI when no cached one exists, as make setup would
    )

    assert result.returncode == 0, result.stderr
    variables = json.loads(result.stdout)
    state = project / ".pulumi-state"
    assert variables["PULUMI_BACKEND_URL"] == (state / "backend").as_uri()
    assert variables["PULUMI_HOME"] == str(state / "home")
    assert (state / "backend").is_dir()
    assert not str(state).startswith(str(REPO))  # not the checkout's, which make clean deletes
