"""Our Node.js and Go language hosts run programs under the real Pulumi CLI, offline.

Programs without resources (tests/e2e/programs/hello-*): a stack output from config and one from
the engine (the stack name) prove that the host passed the engine's facts and configuration.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.e2e.language_projects import PROGRAMS, copy_project, go_module_copy
from support.e2e.pulumi_cli import PulumiCli

pytestmark = pytest.mark.e2e


def _up_and_destroy(cli: PulumiCli) -> None:
    cli.run("stack", "init", "local")
    cli.run("config", "set", "name", "world")
    preview = cli.run("preview")
    assert "+ 1 to create" in preview.stdout, preview.stdout  # the stack itself
    cli.run("up", "--yes")
    assert cli.stack_outputs() == {"greeting": "hello world", "stack": "local"}
    assert "unchanged" in cli.run("up", "--yes").stdout
    cli.run("destroy", "--yes")
    assert cli.stack_outputs() == {}


def test_nodejs_typescript_program(tmp_path: Path) -> None:
    project = copy_project(PROGRAMS / "hello-nodejs", tmp_path / "hello", node_modules=True)
    _up_and_destroy(PulumiCli(project_dir=project, state_dir=tmp_path / "state"))


def test_nodejs_program_without_dependencies_says_to_install_them(tmp_path: Path) -> None:
    project = copy_project(PROGRAMS / "hello-nodejs", tmp_path / "hello")
    cli = PulumiCli(project_dir=project, state_dir=tmp_path / "state")
    cli.run("stack", "init", "local")
    result = cli.run("preview", check=False)
    assert result.returncode != 0
    assert "no node_modules/@pulumi/pulumi" in result.stdout + result.stderr
    assert "`npm ci` in" in result.stdout + result.stderr


def test_go_program(tmp_path: Path) -> None:
    project = go_module_copy(PROGRAMS / "hello-go", tmp_path / "hello")
    _up_and_destroy(PulumiCli(project_dir=project, state_dir=tmp_path / "state"))
