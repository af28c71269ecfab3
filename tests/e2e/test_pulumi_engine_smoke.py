"""The real Pulumi engine runs a Python program with a dynamic resource, fully offline.

This checks the project's CLI set-up rather than the DICOM resources: our language host
(``dicom_transfer_pulumi_host``), the plugin shims in ``tools/pulumi_host/plugins`` and the offline
environment, through the whole stack lifecycle.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.e2e.pulumi_cli import PulumiCli

E2E_DIR = Path(__file__).resolve().parent

PROGRAM = """\
import sys

import pulumi
from smoke_provider import Note

config = pulumi.Config()
note = Note("note", label=config.require("label"), journal=config.require("journal"))
pulumi.export("note_id", note.id)
pulumi.export("length", note.length)
pulumi.export("token", config.require_secret("token"))
pulumi.export("python", sys.executable)
if config.get_bool("fail"):
    raise ValueError("the smoke program was told to fail")
"""

pytestmark = pytest.mark.e2e


def _project(root: Path, pulumi_yaml: str, program_dir: Path | None = None) -> PulumiCli:
    project = root / "project"
    (program_dir or project).mkdir(parents=True, exist_ok=True)
    (project / "Pulumi.yaml").write_text(textwrap.dedent(pulumi_yaml))
    ((program_dir or project) / "__main__.py").write_text(PROGRAM)
    return PulumiCli(project_dir=project, state_dir=root / "state", python_path=[E2E_DIR])


def _journal(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    return [json.loads(line) for line in journal.read_text().splitlines()]


def _calls(journal: Path) -> list[str]:
    return [entry["method"] for entry in _journal(journal)]


def _dynamic_resources(state: dict[str, Any]) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = state["deployment"].get("resources") or []
    return [r for r in resources if r["type"] == "pulumi-python:dynamic:Resource"]


def test_stack_lifecycle_with_a_dynamic_resource(tmp_path: Path) -> None:
    cli = _project(tmp_path, "name: smoke\nruntime: python\n")
    journal = tmp_path / "journal.jsonl"
    cli.run("stack", "init", "local")
    cli.run("config", "set", "label", "hello")
    cli.run("config", "set", "journal", str(journal))
    cli.run("config", "set", "--secret", "token", "s3cr3t-t0ken")

    preview = cli.run("preview")
    assert "+ 2 to create" in preview.stdout
    assert _calls(journal) == [], "preview must not create anything"

    cli.run("up", "--yes")
    assert _calls(journal) == ["create"]
    outputs = cli.stack_outputs()
    assert {key: outputs[key] for key in ("note_id", "length", "token")} == {
        "note_id": "note-hello",
        "length": 5,
        "token": "s3cr3t-t0ken",
    }

    second = cli.run("up", "--yes", "--expect-no-changes")
    assert "2 unchanged" in second.stdout
    assert _calls(journal) == ["create"]

    cli.run("refresh", "--yes", "--expect-no-changes")
    calls = _calls(journal)
    assert calls[0] == "create"
    assert calls[1:] and set(calls[1:]) == {"read"}, calls

    state = cli.export()
    [note] = _dynamic_resources(state)
    assert note["id"] == "note-hello"
    assert note["outputs"]["label"] == "hello"
    assert "s3cr3t-t0ken" not in json.dumps(state), "secrets stay encrypted in the state"

    cli.run("destroy", "--yes")
    assert _calls(journal)[len(calls) :] == ["delete"]
    assert _dynamic_resources(cli.export()) == []


def test_a_failing_program_fails_the_update_with_its_traceback(tmp_path: Path) -> None:
    cli = _project(tmp_path, "name: smoke\nruntime: python\n")
    journal = tmp_path / "journal.jsonl"
    cli.run("stack", "init", "local")
    for key, value in {"label": "x", "journal": str(journal), "fail": "true"}.items():
        cli.run("config", "set", key, value)
    cli.run("config", "set", "--secret", "token", "t")

    result = cli.run("up", "--yes", check=False)

    assert result.returncode != 0
    assert "ValueError: the smoke program was told to fail" in result.stdout
    assert "__main__.py" in result.stdout
    assert "non-zero exit code" not in result.stdout + result.stderr, "reported once, no bail"


def test_virtualenv_and_main_options_of_pulumi_yaml_are_honoured(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "env").symlink_to(venv, target_is_directory=True)
    cli = _project(
        tmp_path,
        """\
        name: smoke
        runtime:
          name: python
          options:
            virtualenv: env
        main: src/
        """,
        program_dir=project_dir / "src",
    )
    cli.extra_env = {"VIRTUAL_ENV": "", "DICOM_TRANSFER_PYTHON": sys.executable}
    journal = tmp_path / "journal.jsonl"
    cli.run("stack", "init", "local")
    cli.run("config", "set", "label", "venv")
    cli.run("config", "set", "journal", str(journal))
    cli.run("config", "set", "--secret", "token", "t")

    cli.run("up", "--yes")

    expected_python = str(project_dir / "env" / "bin" / "python")
    outputs = cli.stack_outputs()
    assert outputs["note_id"] == "note-venv"
    assert outputs["python"] == expected_python, "program runs in Pulumi.yaml's virtualenv"
    [create] = _journal(journal)
    assert create["python"] == expected_python, "provider runs in Pulumi.yaml's virtualenv"
