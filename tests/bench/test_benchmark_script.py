"""Smoke test of ``benchmarks/run.py``: it runs and reports every documented figure.

A quick run (50 files, one 3 s operation; 4 imports of 2 s on both ends of the SDK matrix, 6
previewed resources and 200 instances at scale) against a real emulator process, the real
``gcloud`` and the real Pulumi CLI (offline); the figures are checked for shape and
plausibility only -- never for speed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "run.py"


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _quick_json(*sections: str) -> dict[str, Any]:
    """The figures of a quick ``--json`` run of ``sections`` (it must succeed)."""
    result = _run("--quick", "--json", "--only", ",".join(sections))
    assert result.returncode == 0, result.stderr[-3000:]
    figures: dict[str, Any] = json.loads(result.stdout)
    assert set(figures) == {"meta", *sections}
    return figures


def test_quick_json_run_reports_import_and_p1_figures() -> None:
    assert shutil.which("gcloud"), "the gcloud CLI is required for section p1"
    result = _run("--quick", "--json", "--only", "import,p1")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert set(figures) == {"meta", "import", "p1"}
    assert figures["meta"]["quick"] is True

    imported = figures["import"]
    for key in ("instances", "emulator_per_s", "bare_per_s", "ratio", "emulator_peak_rss_mb"):
        assert _positive(imported[key]), (key, imported)
    assert imported["instances"] == 50
    assert math.isclose(
        imported["ratio"], imported["emulator_per_s"] / imported["bare_per_s"], rel_tol=0.01
    )

    (entry,) = figures["p1"]
    assert entry["duration_s"] == 3
    for waiter in ("ours", "gcloud"):
        lag, gets = entry[waiter]["lag_s"], entry[waiter]["gets"]
        # The waiter returned after the operation ended, having asked at least once.
        assert math.isfinite(lag) and lag >= 0, (waiter, entry)
        assert isinstance(gets, int) and gets >= 1, (waiter, entry)


def test_quick_json_run_reports_p4_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run("--quick", "--json", "--only", "p4")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert set(figures) == {"meta", "p4"}

    p4 = figures["p4"]
    for key in ("instances", "import_ratio", "rss_mb", "qido_median_ms", "bq_export_s"):
        assert _positive(p4[key]), (key, p4)
    # 200 instances = 10 studies of 20; every one imported, searched and exported.
    assert (p4["instances"], p4["studies"], p4["bq_rows"]) == (200, 10, 200)
    assert math.isclose(p4["import_ratio"], p4["import_per_s"] / p4["bare_per_s"], rel_tol=0.01)
    assert p4["qido_searches"] == 21 and set(p4["qido_kind_median_ms"]) == {
        "by_patient_id",
        "first_page",
        "date_range_all_fields",
    }
    assert p4["qido_median_ms"] <= p4["qido_max_ms"], p4
    # Peaks only grow: before the import <= after it <= after the searches <= overall.
    assert p4["rss_after_import_mb"] <= p4["rss_after_qido_mb"] <= p4["rss_mb"] < 2000, p4

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import run  # benchmarks/run.py

    table = run.render_p4(p4)
    assert any("QIDO study search" in line for line in table), table


@pytest.mark.e2e
def test_quick_json_run_reports_engine_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    figures = _quick_json("p2", "p3")

    p2 = figures["p2"]
    for key in ("ratio", "single_s", "many_s", "operation_s", "sdk_pool_ratio", "sharded_ratio"):
        assert _positive(p2[key]), (key, p2)
    assert (p2["transfers"], p2["operation_s"], p2["rounds"]) == (4, 2, 1)
    # Both ends of the SDK matrix ran (make setup-lowest), the newest first.
    locked = {
        lock: re.search(r"^pulumi==(\S+)", (REPO / "requirements" / lock).read_text(), re.M)
        for lock in ("lock.txt", "lock-sdk-lowest.txt")
    }
    assert [leg["sdk"] for leg in p2["sdk_matrix"]] == [
        match.group(1) for match in locked.values() if match
    ], p2["sdk_matrix"]
    for leg in p2["sdk_matrix"]:
        assert leg["single_s"] >= p2["operation_s"] and leg["many_s"] >= p2["operation_s"], leg
        assert math.isclose(leg["ratio"], leg["many_s"] / leg["single_s"], rel_tol=0.01), leg
    assert p2["ratio"] == max(leg["ratio"] for leg in p2["sdk_matrix"])
    newest = p2["sdk_matrix"][0]
    assert (p2["single_s"], p2["many_s"]) == (newest["single_s"], newest["many_s"])
    # Every run waited for its operations.
    for key in ("sdk_pool_s", "sharded_s"):
        assert p2[key] >= p2["operation_s"], (key, p2)
    assert "engine_default_s" not in p2, "4 imports fit in any default --parallel (4 x CPUs)"

    p3 = figures["p3"]
    for key in ("ratio", "transfers_s", "noop_s", "rss_mb", "noop_rss_mb", "provider_cpu_s"):
        assert _positive(p3[key]), (key, p3)
    assert (p3["transfers"], p3["runs"]) == (6, 1)
    assert math.isclose(p3["ratio"], p3["transfers_s"] / p3["noop_s"], rel_tol=0.01)
    # One widened provider process serves the transfers, as one serves the no-op resources.
    assert (p3["provider_processes"], p3["noop_provider_processes"]) == (1, 1)
    assert _positive(p3["sharded_ratio"]) and _positive(p3["noop_sharded_ratio"]), p3
    assert 10 < p3["rss_mb"] < 2000, p3
    assert _positive(p3["steady"]["ratio"]), p3
    assert p3["emulator_requests"] == 0, "check and diff need no API call"

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import run  # benchmarks/run.py

    table = run.render_p2(p2)
    legs = [line.split()[1] for line in table[1:5]]
    assert legs == [leg["sdk"] + ":" for leg in p2["sdk_matrix"] for _ in (1, 2)], table
    assert "SDK's pool" in table[-2] and "shard processes" in table[-1], table
    assert any(line.strip().startswith("unchanged stacks") for line in run.render_p3(p3))


@pytest.mark.e2e
def test_quick_json_run_reports_native_provider_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    figures = _quick_json("p2_native", "p3_native")

    p2 = figures["p2_native"]
    assert (p2["transfers"], p2["operation_s"], p2["rounds"]) == (4, 2, 1)
    assert p2["single_s"] >= p2["operation_s"] and p2["many_s"] >= p2["operation_s"], p2
    assert math.isclose(p2["ratio"], p2["many_s"] / p2["single_s"], rel_tol=0.01)
    p3 = figures["p3_native"]
    assert (p3["resources"], p3["runs"]) == (6, 1)
    assert _positive(p3["native_s"]) and _positive(p3["dynamic_s"]), p3
    assert math.isclose(p3["ratio"], p3["native_s"] / p3["dynamic_s"], rel_tol=0.01)
    assert 10 < p3["rss_mb"] < 2000, p3
    assert p3["emulator_requests"] == 0, "check and diff need no API call"

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import run  # benchmarks/run.py

    assert "ratio" in run.render_p2_native(p2)[-1]
    assert "peak RSS" in run.render_p3_native(p3)[-1]


def test_a_section_without_figures_says_so_instead_of_inventing_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import run  # benchmarks/run.py

    placeholder = run.Section("placeholder", lambda _options: None, run.render_figures)
    monkeypatch.setitem(run.SECTIONS, "placeholder", placeholder)
    assert run.main(["--json", "--only", "placeholder"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["placeholder"] == {"measured": False, "note": "not measured in this run"}

    assert run.main(["--only", "placeholder"]) == 0
    assert "placeholder\n  not measured in this run" in capsys.readouterr().out.replace(
        "  [0 s]", ""
    )


def test_unknown_section_is_a_usage_error() -> None:
    result = _run("--only", "import,nope")
    assert result.returncode == 2
    assert "nope" in result.stderr
