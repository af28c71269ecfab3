"""The offline environment of the Pulumi CLI (``dicom_transfer_pulumi_host.environment``)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from dicom_transfer_pulumi_host.environment import (
    DEFAULT_PARALLEL,
    DEFAULT_PASSPHRASE,
    offline_environment,
    render,
)


def environment(tmp_path: Path, **base: str) -> dict[str, str]:
    return offline_environment(
        cli_dir=tmp_path / "cli",
        state_dir=tmp_path / "state",
        python=Path("/usr/bin/python3"),
        plugins_dir=tmp_path / "plugins",
        base={"PATH": "/usr/bin:/bin", **base},
    )


def test_file_backend_no_downloads_and_cli_first_on_path(tmp_path: Path) -> None:
    env = environment(tmp_path)
    assert env["PULUMI_BACKEND_URL"] == (tmp_path / "state" / "backend").as_uri()
    assert env["PULUMI_HOME"] == str(tmp_path / "state" / "home")
    assert env["PULUMI_SKIP_UPDATE_CHECK"] == "true"
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert env["PATH"].split(":") == [
        str(tmp_path / "cli"),
        str(tmp_path / "plugins"),
        "/usr/bin",
        "/bin",
    ]


def test_defaults_yield_to_what_the_user_set(tmp_path: Path) -> None:
    defaults = environment(tmp_path)
    assert defaults["PULUMI_CONFIG_PASSPHRASE"] == DEFAULT_PASSPHRASE
    assert int(defaults["PULUMI_PARALLEL"]) == DEFAULT_PARALLEL >= 16

    mine = environment(tmp_path, PULUMI_CONFIG_PASSPHRASE_FILE="/secret/file", PULUMI_PARALLEL="3")
    assert "PULUMI_CONFIG_PASSPHRASE" not in mine, "the user's passphrase file wins"
    assert "PULUMI_PARALLEL" not in mine, "the user's parallelism wins"


def test_render_shell_and_json_round_trip(tmp_path: Path) -> None:
    variables = {"A": "plain", "B": "with space and 'quote'"}
    assert json.loads(render(variables, "json")) == variables
    shell = render(variables, "shell")
    printed = subprocess.run(
        ["bash", "-c", f'{shell}\nprintf \'%s\\n\' "$A" "$B"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed.splitlines() == ["plain", "with space and 'quote'"]
    assert shell.startswith("export A=") and shlex.quote(variables["B"]) in shell
