"""The lock files agree with the declared ranges (``pyproject.toml``) and with the CLI build.

``make lock`` (``tools/lock/lock.sh``) writes them; these checks catch a range changed without
re-locking, a lowest leg that is not the lower bounds, and a CLI pin the install script
cannot read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"


def _pins(lock: str) -> dict[str, str]:
    """``{name: version}`` of the ``name==version`` lines of ``requirements/<lock>``."""
    text = (REQUIREMENTS / lock).read_text()
    return dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, flags=re.MULTILINE))


def _library_requirements() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(raw) for raw in pyproject["project"]["dependencies"]]


def test_the_lower_bounds_file_is_derived_from_pyproject() -> None:
    derived = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "lock" / "lower_bounds.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert derived == (REQUIREMENTS / "lower-bounds.txt").read_text(), "run `make lock`"


@pytest.mark.parametrize("lock", ["lock.txt", "lock-sdk-lowest.txt"])
def test_every_locked_library_dependency_is_inside_its_declared_range(lock: str) -> None:
    pins = _pins(lock)
    for requirement in _library_requirements():
        assert requirement.name in pins, f"{lock} lacks {requirement.name}: run `make lock`"
        assert pins[requirement.name] in requirement.specifier, (lock, str(requirement))


def test_the_lowest_leg_pins_every_library_dependency_at_its_lower_bound() -> None:
    pins = _pins("lock-sdk-lowest.txt")
    for requirement in _library_requirements():
        (low,) = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        assert pins[requirement.name] == low, str(requirement)


def test_the_install_script_builds_the_locked_cli_and_it_can_run_the_locked_sdk(
    tmp_path: Path,
) -> None:
    found = re.findall(
        r"^# pulumi-cli==(\S+)$", (REQUIREMENTS / "lock.txt").read_text(), flags=re.MULTILINE
    )
    assert len(found) == 1, "requirements/lock.txt needs one '# pulumi-cli==X.Y.Z' line"
    cli = found[0]
    # The engine runs programs of older SDKs, not necessarily of newer ones.
    assert Version(cli) >= Version(_pins("lock.txt")["pulumi"])
    # A CLI "built earlier" into a private cache: the script must pick the locked version's.
    bin_dir = tmp_path / f"pulumi-v{cli}" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "pulumi").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "pulumi").chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key != "PULUMI_VERSION"} | {
        "DICOM_TRANSFER_CACHE": str(tmp_path),
        "DICOM_TRANSFER_FORCE_BUILD": "1",
    }
    result = subprocess.run(
        [str(ROOT / "tools" / "pulumi_host" / "install-pulumi-cli.sh")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(bin_dir)
