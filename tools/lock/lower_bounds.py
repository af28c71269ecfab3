"""Print the library's dependency lower bounds as exact pins (``name==X``), one a line.

``tools/lock/lock.sh`` compiles ``lock-sdk-lowest.txt`` under these constraints, so the
lowest leg of the SDK matrix (``make test``) installs exactly the lower bound of every
``[project].dependencies`` range of ``pyproject.toml``: the ranges' single source.

Raises:
    SystemExit: A dependency has no ``>=`` lower bound (a range must have one to be proven).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def lower_bounds(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """``{distribution name: lower bound}`` of the library's ``[project].dependencies``."""
    bounds: dict[str, str] = {}
    for raw in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        requirement = Requirement(raw)
        lows = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if len(lows) != 1:
            sys.exit(f"pyproject.toml: dependency {raw!r} needs exactly one '>=' lower bound")
        bounds[requirement.name] = lows[0]
    return bounds


if __name__ == "__main__":
    for name, version in lower_bounds().items():
        print(f"{name}=={version}")
