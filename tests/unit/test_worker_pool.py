"""Widening the thread pool that serves provider calls (``worker_pool.py``).

The e2e tests prove the widening inside the SDK's real provider process with the real engine
(16 imports in about the time of one), on both ends of the SDK matrix of ``make test``; these
pin down its rules in milliseconds, and keep the verified SDK range, ``pyproject.toml`` and the
two lock files in step.
"""

from __future__ import annotations

import re
import sys
import threading
import tomllib
import types
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import grpc
import pytest
from dicom_transfer import worker_pool
from dicom_transfer.worker_pool import (
    DEFAULT_WORKERS,
    LOWEST_VERIFIED_SDK,
    VERIFIED_SDK_RANGE,
    WORKERS_ENV,
    host_structure_problem,
    in_provider_host,
    widen_worker_pool,
    worker_ceiling,
)
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

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


def _locked(lock: str, name: str) -> str:
    """The version ``requirements/<lock>`` pins ``name`` to."""
    text = (ROOT / "requirements" / lock).read_text()
    found = re.findall(rf"^{re.escape(name)}==(\S+)", text, flags=re.MULTILINE)
    assert len(found) == 1, f"{lock}: expected one {name}== line, found {found}"
    return found[0]


def test_the_verified_range_is_the_declared_range_and_both_matrix_ends_are_in_it() -> None:
    # Lowering pyproject's bound means proving the new lowest SDK (make lock; make test).
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pulumi,) = [
        Requirement(raw)
        for raw in pyproject["project"]["dependencies"]
        if Requirement(raw).name == "pulumi"
    ]
    assert pulumi.specifier == VERIFIED_SDK_RANGE
    assert str(VERIFIED_SDK_RANGE) == f"<4,>={LOWEST_VERIFIED_SDK}"
    assert _locked("lock-sdk-lowest.txt", "pulumi") == LOWEST_VERIFIED_SDK
    newest = _locked("lock.txt", "pulumi")
    assert newest in VERIFIED_SDK_RANGE and newest != LOWEST_VERIFIED_SDK


def test_the_installed_sdk_is_one_end_of_the_matrix_and_passes_the_checks() -> None:
    # Run in .venv and .venv-sdk-lowest by make test: each must hold its lock's SDK.
    assert version("pulumi") in {
        _locked("lock.txt", "pulumi"),
        _locked("lock-sdk-lowest.txt", "pulumi"),
    }
    worker_pool.widening_problem.cache_clear()
    assert worker_pool.widening_problem() is None
    assert worker_pool.widening_verified()


def test_an_sdk_outside_the_range_is_not_widened_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_pool, "VERIFIED_SDK_RANGE", SpecifierSet(">=99"))
    monkeypatch.setattr(worker_pool, "in_provider_host", lambda: True)
    worker_pool.widening_problem.cache_clear()
    try:
        problem = worker_pool.widening_problem()
        with ThreadPoolExecutor(max_workers=4) as executor:
            assert executor.submit(widen_worker_pool, 16).result() is False
            assert executor._max_workers == 4
    finally:
        worker_pool.widening_problem.cache_clear()
    assert problem == f"pulumi SDK {version('pulumi')} is outside the verified range >=99"


def test_the_installed_host_module_builds_its_server_on_a_thread_pool() -> None:
    # Compiled, not run (importing pulumi.dynamic.__main__ would start a provider).
    assert host_structure_problem() is None


def test_a_host_whose_main_changed_is_recognised() -> None:
    def main() -> None:  # the shape of a future host: no ThreadPoolExecutor
        print("serving")

    host = types.ModuleType("pulumi.dynamic.__main__")
    host.main = main  # type: ignore[attr-defined]
    assert host_structure_problem(host) == (
        "pulumi.dynamic.__main__.main() no longer builds its gRPC server on a "
        "ThreadPoolExecutor (it names no ThreadPoolExecutor, server)"
    )
    assert "has no main()" in (host_structure_problem(types.ModuleType("empty")) or "")


def test_a_running_host_of_the_expected_shape_is_widened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def main() -> None:  # the SDK's own shape (pulumi/dynamic/__main__.py)
        grpc.server(futures.ThreadPoolExecutor(max_workers=4))

    host = types.ModuleType("pulumi.dynamic.__main__")
    host.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", host)
    monkeypatch.setattr(worker_pool, "in_provider_host", lambda: True)
    with ThreadPoolExecutor(max_workers=4) as executor:
        assert executor.submit(widen_worker_pool, 16).result() is True
        assert executor._max_workers == 16


def test_a_host_whose_pool_cannot_be_found_warns_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def main() -> None:
        grpc.server(futures.ThreadPoolExecutor(max_workers=4))

    host = types.ModuleType("pulumi.dynamic.__main__")
    host.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", host)
    monkeypatch.setattr(worker_pool, "in_provider_host", lambda: True)
    monkeypatch.setattr(worker_pool, "_warned", threading.Event())
    assert widen_worker_pool() is False  # the main thread: no pool to widen
    assert widen_worker_pool() is False
    warning = capsys.readouterr().err
    assert warning.count("could not widen") == 1, warning
    assert "no worker of a concurrent.futures ThreadPoolExecutor" in warning
    assert "DICOM_TRANSFER_PROVIDER_SHARDS=4" in warning
