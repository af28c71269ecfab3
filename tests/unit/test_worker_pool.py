"""Widening the thread pool that serves provider calls (``worker_pool.py``).

The e2e tests prove the widening inside the SDK's real provider process with the real engine
(16 imports in about the time of one); these pin down its rules in milliseconds.
"""

from __future__ import annotations

import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dicom_transfer import worker_pool
from dicom_transfer.worker_pool import (
    DEFAULT_WORKERS,
    VERIFIED_SDK_VERSIONS,
    WORKERS_ENV,
    in_provider_host,
    widen_worker_pool,
    worker_ceiling,
)

ROOT = Path(__file__).resolve().parents[2]


def _concurrent_calls(pool_size: int, calls: int, *, widen: bool) -> int:
    """How many of ``calls`` jobs ran at once in a pool of ``pool_size`` (1 s barrier)."""
    barrier = threading.Barrier(calls, timeout=1.0)
    met = 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal met
        if widen:
            assert widen_worker_pool(calls, force=True)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        with lock:
            met += 1

    with ThreadPoolExecutor(max_workers=pool_size) as executor:
        # The first call widens the pool before the others are submitted, as the provider's
        # first call (a check) does before the engine sends creates.
        executor.submit(lambda: widen_worker_pool(calls, force=True) if widen else None).result()
        for future in [executor.submit(call) for _ in range(calls)]:
            future.result()
    return met


def test_a_widened_pool_runs_every_call_at_once() -> None:
    assert _concurrent_calls(pool_size=4, calls=12, widen=True) == 12


def test_an_unwidened_pool_cannot_run_them_all_at_once() -> None:
    # The control: the barrier of 12 breaks when only 4 threads exist.
    assert _concurrent_calls(pool_size=4, calls=12, widen=False) == 0


def test_a_wider_pool_is_never_narrowed() -> None:
    with ThreadPoolExecutor(max_workers=8) as executor:
        assert executor.submit(widen_worker_pool, 5, force=True).result()
        assert executor._max_workers == 8


def test_nothing_happens_outside_a_pool_or_outside_the_provider_host() -> None:
    assert not in_provider_host()  # pytest's __main__
    assert widen_worker_pool(64, force=True) is False  # the main thread is no pool worker
    with ThreadPoolExecutor(max_workers=2) as executor:
        assert executor.submit(widen_worker_pool, 64).result() is False
        assert executor._max_workers == 2


@pytest.mark.parametrize(
    ("raw", "expected"), [("", DEFAULT_WORKERS), ("4", 4), ("16", 16), ("256", 256)]
)
def test_the_ceiling_comes_from_the_environment(raw: str, expected: int) -> None:
    assert worker_ceiling({WORKERS_ENV: raw} if raw else {}) == expected


@pytest.mark.parametrize("raw", ["3", "0", "257", "-8", "eight", "16.0"])
def test_a_malformed_ceiling_names_the_variable_and_the_allowed_form(raw: str) -> None:
    with pytest.raises(ValueError, match=rf"{WORKERS_ENV}: got '{raw}'; expected a whole number"):
        worker_ceiling({WORKERS_ENV: raw})


def test_the_pinned_sdk_is_the_verified_one() -> None:
    # Bumping the pin means re-running the e2e proof and naming the new version here.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [dep for dep in pyproject["project"]["dependencies"] if dep.startswith("pulumi==")]
    assert [pin.removeprefix("pulumi==") for pin in pins] == sorted(VERIFIED_SDK_VERSIONS)
    worker_pool.widening_verified.cache_clear()
    assert worker_pool.widening_verified()


def test_a_host_whose_pool_cannot_be_found_warns_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(worker_pool, "in_provider_host", lambda: True)
    monkeypatch.setattr(worker_pool, "_warned", threading.Event())
    assert widen_worker_pool() is False  # the main thread: no pool to widen
    assert widen_worker_pool() is False
    warning = capsys.readouterr().err
    assert warning.count("could not widen") == 1, warning
    assert "DICOM_TRANSFER_PROVIDER_SHARDS=4" in warning
