"""How our language host starts Node.js and Go programs (``dicom_transfer_pulumi_host`` runtimes).

The ``pulumi up`` of a program in each language is proven by tests/e2e/test_language_hosts_e2e.py;
these tests pin what the engine's ``Run`` request becomes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dicom_transfer_pulumi_host.go_runtime import GoRuntime
from dicom_transfer_pulumi_host.nodejs_runtime import NodejsRuntime
from dicom_transfer_pulumi_host.runtimes import LaunchError
from google.protobuf import struct_pb2  # type: ignore[import-untyped]
from pulumi.runtime.proto import language_pb2


def run_request(
    program_dir: Path, options: dict[str, object] | None = None
) -> language_pb2.RunRequest:
    info = language_pb2.ProgramInfo(
        root_directory=str(program_dir),
        program_directory=str(program_dir),
        entry_point=".",
    )
    if options is not None:
        info.options.CopyFrom(struct_pb2.Struct())
        info.options.update(options)
    return language_pb2.RunRequest(
        project="proj",
        stack="local",
        monitor_address="127.0.0.1:1",
        parallel=8,
        dryRun=True,
        config={"proj:k": "v"},
        configSecretKeys=["proj:k"],
        info=info,
    )


def test_nodejs_runs_the_projects_own_runner_with_the_engines_facts(tmp_path: Path) -> None:
    runner = tmp_path / "node_modules" / "@pulumi" / "pulumi" / "cmd" / "run"
    runner.mkdir(parents=True)
    (runner / "index.js").write_text("")
    program = tmp_path / "app"
    program.mkdir()

    launch = NodejsRuntime().launch(run_request(program), "127.0.0.1:2", {"PATH": "/usr/bin:/bin"})

    assert launch.argv[1] == str(runner)
    flags = launch.argv[2:]
    assert flags[flags.index("--monitor") + 1] == "127.0.0.1:1"
    assert flags[flags.index("--engine") + 1] == "127.0.0.1:2"
    assert flags[flags.index("--stack") + 1] == "local"
    assert flags[flags.index("--pwd") + 1] == str(program)
    assert "--dry-run" in flags
    assert flags[-1] == str(program / ".")
    assert json.loads(launch.env["PULUMI_CONFIG"]) == {"proj:k": "v"}
    assert json.loads(launch.env["PULUMI_CONFIG_SECRET_KEYS"]) == ["proj:k"]
    assert launch.env["PULUMI_NODEJS_TYPESCRIPT"] == "true"


def test_nodejs_typescript_option_off(tmp_path: Path) -> None:
    runner = tmp_path / "node_modules" / "@pulumi" / "pulumi" / "cmd" / "run"
    runner.mkdir(parents=True)
    (runner / "index.js").write_text("")

    launch = NodejsRuntime().launch(
        run_request(tmp_path, {"typescript": False}), "e", {"PATH": "/usr/bin:/bin"}
    )

    assert launch.env["PULUMI_NODEJS_TYPESCRIPT"] == "false"


def test_nodejs_without_node_modules_says_to_install_them(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r"no node_modules/@pulumi/pulumi in .*`npm ci` in"):
        NodejsRuntime().launch(run_request(tmp_path), "e", {"PATH": "/usr/bin:/bin"})


def test_go_passes_the_engines_facts_as_the_go_sdk_reads_them(tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "program"
    binary.parent.mkdir()
    binary.write_text("")

    launch = GoRuntime().launch(
        run_request(tmp_path, {"binary": "bin/program"}), "127.0.0.1:2", {"PATH": "/bin"}
    )

    assert launch.argv == [str(binary)]
    assert launch.scratch is None
    assert {name: launch.env[name] for name in launch.env if name.startswith("PULUMI_")} == {
        "PULUMI_MONITOR": "127.0.0.1:1",
        "PULUMI_ENGINE": "127.0.0.1:2",
        "PULUMI_PROJECT": "proj",
        "PULUMI_STACK": "local",
        "PULUMI_ORGANIZATION": "organization",
        "PULUMI_ROOT_DIRECTORY": str(tmp_path),
        "PULUMI_PARALLEL": "8",
        "PULUMI_DRY_RUN": "true",
        "PULUMI_CONFIG": '{"proj:k": "v"}',
        "PULUMI_CONFIG_SECRET_KEYS": '["proj:k"]',
    }


def test_go_missing_binary_names_it(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r"`binary` runtime option names .*bin/none"):
        GoRuntime().launch(run_request(tmp_path, {"binary": "bin/none"}), "e", {"PATH": "/bin"})


def test_go_without_go_on_path_says_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="`go` is not on PATH"):
        GoRuntime().launch(run_request(tmp_path), "e", {"PATH": str(tmp_path)})
