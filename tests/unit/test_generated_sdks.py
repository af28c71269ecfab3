"""The committed SDKs (sdk/nodejs, sdk/python, sdk/go) are exactly what ``make sdks`` generates.

Generation needs tools/sdkgen built (tools/sdkgen/build.sh: Go and the Go module proxy the first
time, then the cached binary); the test fails with the build's message when it cannot be had.
"""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LANGUAGES = ("nodejs", "python", "go")


def _generated(relative: Path) -> bool:
    """Whether a file belongs to the generator (not a build file sdkgen keeps, see ``kept`` in
    tools/sdkgen/main.go, nor Python's bytecode)."""
    return not any(
        part in {"package-lock.json", "node_modules", "bin", "__pycache__"}
        or part.endswith(".egg-info")
        for part in relative.parts
    )


def _sdkgen() -> Path:
    build = subprocess.run(
        [str(REPO / "tools" / "sdkgen" / "build.sh")], capture_output=True, text=True, check=False
    )
    if build.returncode != 0:
        pytest.fail(f"tools/sdkgen/build.sh failed:\n{build.stderr}", pytrace=False)
    return Path(build.stdout.strip())


def _files(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and _generated(path.relative_to(root))
    }


def test_committed_sdks_match_a_fresh_generation(tmp_path: Path) -> None:
    generation = subprocess.run(
        [
            str(_sdkgen()),
            "-schema",
            str(REPO / "schema.json"),
            "-out",
            str(tmp_path),
            "-readmes",
            str(REPO / "tools" / "sdkgen" / "readme"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert generation.returncode == 0, generation.stderr

    stale = []
    for language in LANGUAGES:
        fresh, committed = tmp_path / language, REPO / "sdk" / language
        fresh_files, committed_files = _files(fresh), _files(committed)
        stale += [f"sdk/{language}/{name} (missing)" for name in fresh_files - committed_files]
        stale += [
            f"sdk/{language}/{name} (not generated)" for name in committed_files - fresh_files
        ]
        stale += [
            f"sdk/{language}/{name} (differs)"
            for name in sorted(fresh_files & committed_files)
            if not filecmp.cmp(fresh / name, committed / name, shallow=False)
        ]
    assert not stale, "the SDKs are stale; run `make sdks` and commit:\n" + "\n".join(stale)
