"""Test helpers live in ``tests/support`` and are imported by name, never by path accident.

pytest's default import mode (``prepend``) puts the directory of each test module first on
``sys.path`` when the tiers are not packages, as here; a helper module left beside the tests
then imports by its bare name from that directory only, and so does another test module. The
``importlib`` mode, which leaves ``sys.path`` alone, imports neither: there test modules
cannot import each other, nor utility modules kept in the test directories. Source: pytest
documentation, "pytest import mechanisms and sys.path/PYTHONPATH", Import modes. ``tests/``
itself is on ``sys.path`` through the ``pythonpath`` option (pyproject.toml), so ``support.…``
resolves from any test in either mode.

So a tier's directory holds only ``test_*.py``, ``conftest.py`` and the fixtures listed in
``FIXTURES``, and no module under ``tests/`` imports a test module or a ``conftest``.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SUPPORT = "support"
FIXTURES = {
    "e2e/smoke_provider.py": (
        "not imported by any test: the program that test_pulumi_engine_smoke.py writes imports"
        " it, in the process the Pulumi CLI starts with tests/e2e on PYTHONPATH"
    ),
}


def stray_modules(tests: Path, fixtures: set[str]) -> list[str]:
    """Python files under ``tests`` that are neither tests, ``conftest.py``, support nor fixtures.

    Args:
        tests: The ``tests`` directory.
        fixtures: Paths relative to ``tests`` allowed to stay where they are.

    Returns:
        Their paths relative to ``tests``, sorted.
    """
    return sorted(
        relative
        for path in tests.rglob("*.py")
        if (relative := path.relative_to(tests).as_posix()).split("/")[0] != SUPPORT
        and not path.name.startswith("test_")
        and path.name != "conftest.py"
        and relative not in fixtures
    )


def imports_of_test_modules(tests: Path) -> list[str]:
    """``path: module`` for every import of a ``test_*`` module or a ``conftest`` under ``tests``.

    Args:
        tests: The ``tests`` directory.

    Returns:
        The offending imports, sorted.
    """
    found = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top.startswith("test_") or top == "conftest":
                    found.append(f"{path.relative_to(tests).as_posix()}: {name}")
    return sorted(found)


def test_helpers_live_in_the_support_package() -> None:
    assert stray_modules(TESTS, set(FIXTURES)) == [], "move helpers into tests/support"


def test_the_listed_fixtures_exist() -> None:
    assert [name for name in FIXTURES if not (TESTS / name).is_file()] == []


def test_no_module_imports_a_test_module() -> None:
    assert imports_of_test_modules(TESTS) == [], "move what tests share into tests/support"


def test_a_helper_or_a_test_import_beside_the_tests_is_found(tmp_path: Path) -> None:
    for name, text in {
        "conftest.py": "",
        "unit/test_a.py": "from support.clock import FakeClock\nimport test_b\n",
        "unit/test_b.py": "from conftest import emulator\n",
        "unit/helpers.py": "",
        "e2e/smoke.py": "",
        "support/__init__.py": "",
        "support/e2e/stack.py": "from test_a import X\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    assert stray_modules(tmp_path, {"e2e/smoke.py"}) == ["unit/helpers.py"]
    assert imports_of_test_modules(tmp_path) == [
        "support/e2e/stack.py: test_a",
        "unit/test_a.py: test_b",
        "unit/test_b.py: conftest",
    ]
