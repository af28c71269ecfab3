"""Smoke test of section ``p1_flat`` of ``benchmarks/run.py``: one-file imports, ours vs gcloud.

A quick run (one 3 s operation) against a real emulator process and the real ``gcloud``; the
figures are checked for shape, consistency and the premise of the section (the counter did
not move while pending) -- never for speed.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "run.py"


def test_quick_json_run_reports_p1_flat_figures() -> None:
    assert shutil.which("gcloud"), "the gcloud CLI is required for section p1_flat"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", "--only", "p1_flat"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert set(figures) == {"meta", "p1_flat"}
    (entry,) = figures["p1_flat"]
    assert (entry["duration_s"], entry["instances"], entry["repeat"]) == (3, 1, 1)
    for waiter in ("ours", "gcloud"):
        lag, gets = entry[waiter]["lag_s"], entry[waiter]["gets"]
        assert math.isfinite(lag) and lag >= 0, (waiter, entry)
        assert isinstance(gets, int) and gets >= 1, (waiter, entry)
        assert len(entry[waiter]["polls_s"][0]) == gets, (waiter, entry)
        # One file: sampled while running, its counter stayed at 0 processed.
        assert entry[waiter]["counter_moved"] is False, (waiter, entry)
    assert entry["target"] == {
        "lag_s": pytest.approx(entry["gcloud"]["lag_s"] / 2, abs=0.001),
        "gets": entry["gcloud"]["gets"],
    }
    assert entry["met"] == {
        "lag": entry["ours"]["lag_s"] <= entry["target"]["lag_s"],
        "gets": entry["ours"]["gets"] <= entry["gcloud"]["gets"],
    }


def test_table_of_p1_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import run  # benchmarks/run.py

    waiter = {"lag_s": 1.5, "gets": 4, "counter_moved": False}
    entry = {
        "duration_s": 10.0,
        "ours": {**waiter, "lag_s": 0.5, "gets": 7},
        "gcloud": waiter,
        "target": {"lag_s": 0.75, "gets": 4},
        "met": {"lag": True, "gets": False},
        "repeat": 1,
    }
    table = run.render_p1_flat([entry])
    assert table[-1].split() == [
        "10",
        "s",
        "0.50",
        "s",
        "7",
        "1.50",
        "s",
        "4",
        "0.75",
        "s",
        "yes,",
        "no",
        "no,",
        "no",
    ]
    assert run.parse_args(["--flat-durations", "5,7"])[1].flat_durations == (5.0, 7.0)
    assert run.parse_args(["--quick"])[1].flat_durations == (3.0,)
