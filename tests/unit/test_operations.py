"""Operation parsing, the poll schedule (fake clock), deadline, progress and failure policy."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from dicom_transfer.errors import OperationFailed, OperationTimedOut
from dicom_transfer.healthcare.operations import (
    PollPolicy,
    apply_failure_policy,
    wait_for_operation,
)
from dicom_transfer.healthcare.results import OperationResult, parse_operation
from support.clock import FakeClock

NAME = "projects/p/locations/l/datasets/d/operations/42"
IMPORT_METHOD = "google.cloud.healthcare.v1.dicom.DicomService.ImportDicomData"


def operation(
    *,
    done: bool = False,
    success: str | None = None,
    failure: str | None = None,
    pending: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    counter = {
        k: v for k, v in (("success", success), ("failure", failure), ("pending", pending)) if v
    }
    op: dict[str, Any] = {
        "name": NAME,
        "metadata": {
            "@type": "type.googleapis.com/google.cloud.healthcare.v1.OperationMetadata",
            "apiMethodName": IMPORT_METHOD,
            "createTime": "2024-05-01T10:00:00.123456789Z",
            "logsUrl": "https://console.cloud.google.com/logs/query/x",
            "counter": counter,
        },
    }
    if done:
        op["done"] = True
        op["metadata"]["endTime"] = "2024-05-01T10:05:00Z"
        if error is None:
            op["response"] = {"@type": "..."}
    if error is not None:
        op["error"] = error
    return op


def test_parse_operation_counters_are_digit_strings_absent_is_zero() -> None:
    result = parse_operation(operation(success="12", failure="3"))
    assert (result.success_count, result.failure_count, result.pending_count) == (12, 3, 0)
    assert result.name == NAME and not result.done
    assert result.api_method_name == IMPORT_METHOD
    assert result.create_time == "2024-05-01T10:00:00.123456789Z"
    assert result.logs_url == "https://console.cloud.google.com/logs/query/x"
    assert result.error_code is None and result.end_time is None
    empty = parse_operation({"name": NAME})
    assert (empty.success_count, empty.failure_count, empty.pending_count) == (0, 0, 0)
    assert (
        parse_operation({"name": NAME, "metadata": {"counter": {"success": 7}}}).success_count == 7
    )


def test_parse_operation_error_and_sample_errors() -> None:
    error = {
        "code": 3,
        "message": "some files failed, see logs",
        "details": [
            {
                "@type": "type.googleapis.com/google.cloud.healthcare.v1.ImportErrors",
                "sampleErrors": [
                    {"resource": "gs://b/x.txt", "error": {"code": 3, "message": "not DICOM"}}
                ],
            }
        ],
    }
    result = parse_operation(operation(done=True, success="9", failure="1", error=error))
    assert result.done and result.error_code == 3
    assert result.error_message == "some files failed, see logs"
    assert result.sample_errors == ("gs://b/x.txt: not DICOM (code 3)",)
    assert result.end_time == "2024-05-01T10:05:00Z"


def run_wait(
    responses: list[dict[str, Any]] | Callable[[FakeClock], dict[str, Any]],
    *,
    timeout_s: float = 3600.0,
    policy: PollPolicy | None = None,
    progress: list[tuple[OperationResult, float]] | None = None,
    just_submitted: bool = False,
) -> tuple[OperationResult, FakeClock, int]:
    fake = FakeClock()
    calls = 0

    def get() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if callable(responses):
            return responses(fake)
        return responses[min(calls - 1, len(responses) - 1)]

    result = wait_for_operation(
        get,
        timeout_s=timeout_s,
        clock=fake.clock,
        sleep=fake.sleep,
        on_progress=(lambda r, e: progress.append((r, e))) if progress is not None else None,
        policy=policy,
        rand=lambda: 0.0,
        just_submitted=just_submitted,
    )
    return result, fake, calls


def test_sleeps_without_counters_grow_with_the_age() -> None:
    """1 s, then 1 + 0.2 x (age - 1): a x1.2 backoff on the age, capped at 90 s."""
    responses = [operation()] * 40 + [operation(done=True, success="5")]
    result, fake, calls = run_wait(responses)
    assert result.done and result.success_count == 5
    assert calls == 41
    expected, age = [], 0.0
    for _ in range(40):
        expected.append(min(1.0 + 0.2 * max(age - 1.0, 0.0), 90.0))
        age += expected[-1]
    assert fake.sleeps == pytest.approx(expected)
    assert fake.sleeps[:4] == pytest.approx([1.0, 1.0, 1.2, 1.44])
    assert max(fake.sleeps) == 90.0


def test_a_single_file_counter_is_no_moving_counter() -> None:
    """``pending: 1`` until the end (one file) is polled like an absent counter."""
    pending = [operation(pending="1")] * 12 + [operation(done=True, success="1")]
    absent = [operation()] * 12 + [operation(done=True, success="1")]
    _, with_pending, _ = run_wait(pending, just_submitted=True)
    _, without, _ = run_wait(absent, just_submitted=True)
    assert with_pending.sleeps == pytest.approx(without.sleeps)


def test_jitter_only_shortens_sleeps() -> None:
    fake = FakeClock()
    responses = iter([operation()] * 5 + [operation(done=True)])
    wait_for_operation(
        lambda: next(responses),
        timeout_s=100,
        clock=fake.clock,
        sleep=fake.sleep,
        rand=lambda: 0.999,
    )
    age = 0.0
    for got in fake.sleeps:
        nominal = 1.0 + 0.2 * max(age - 1.0, 0.0)
        assert nominal * 0.9 <= got < nominal
        age += got


def test_done_on_first_get_does_not_sleep() -> None:
    result, fake, calls = run_wait([operation(done=True, success="1")])
    assert calls == 1 and fake.sleeps == [] and result.done


def test_deadline_raises_with_name_and_resume_hint() -> None:
    with pytest.raises(OperationTimedOut) as info:
        run_wait([operation()], timeout_s=10.0)
    error = info.value
    assert error.operation_name == NAME
    assert error.elapsed_s == pytest.approx(10.0)
    assert "pulumi up" in str(error) and NAME in str(error)


def test_last_sleep_is_cut_to_the_deadline() -> None:
    fake_holder: list[FakeClock] = []

    def responses(fake: FakeClock) -> dict[str, Any]:
        fake_holder.append(fake)
        return operation()

    with pytest.raises(OperationTimedOut):
        run_wait(responses, timeout_s=4.0)
    fake = fake_holder[0]
    # 1 + 1 + 1.2 = 3.2, then 1.44 would overshoot: cut to 0.8 so the final GET is at 4.0.
    assert fake.sleeps == pytest.approx([1.0, 1.0, 1.2, 0.8])


def test_progress_reports_at_growing_intervals_and_at_the_end() -> None:
    progress: list[tuple[OperationResult, float]] = []
    total = 600.0

    def responses(fake: FakeClock) -> dict[str, Any]:
        elapsed = fake.now - 1000.0
        if elapsed >= total:
            return operation(done=True, success="600")
        return operation(success=str(int(elapsed)))

    result, _fake, _calls = run_wait(responses, progress=progress)
    assert result.done
    times = [elapsed for _, elapsed in progress]
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]
    assert times[0] >= 10.0
    assert all(later >= earlier for earlier, later in itertools.pairwise(gaps))
    assert progress[-1][0].done
    assert len(progress) <= 10
    assert progress[0][0].success_count > 0


def linear_operation(total: int, duration_s: float) -> Callable[[FakeClock], dict[str, Any]]:
    """An operation that processes ``total`` instances evenly over ``duration_s`` seconds."""

    def responses(fake: FakeClock) -> dict[str, Any]:
        elapsed = fake.now - 1000.0
        if elapsed >= duration_s:
            return operation(done=True, success=str(total))
        processed = int(total * elapsed / duration_s)
        return operation(success=str(processed), pending=str(total - processed))

    return responses


def test_counter_rate_predicts_completion() -> None:
    """An operation processing 10 instances/s with 1000 instances: done at t=100 s."""
    result, fake, calls = run_wait(linear_operation(1000, 100.0))
    finished_seen_at = fake.now - 1000.0
    lag = finished_seen_at - 100.0
    assert result.done
    assert 0 <= lag <= 0.05 * 100.0, f"lag {lag:.1f}s, sleeps {fake.sleeps}"
    assert calls <= 6, fake.sleeps

    # Without counters the same operation is seen later (plain backoff).
    plain, plain_fake, _ = run_wait(
        lambda f: operation(done=True) if f.now - 1000.0 >= 100.0 else operation()
    )
    assert plain.done and plain_fake.now - 1000.0 - 100.0 > lag


@pytest.mark.parametrize("duration_s", [5.0, 20.0, 60.0, 300.0])
@pytest.mark.parametrize("total", [34, 1000])
def test_fresh_submit_sees_completion_soon_with_few_gets(duration_s: float, total: int) -> None:
    """gcloud's poller needs 3, 6 and 9 GETs for 5, 20 and 60 s; the prediction needs fewer."""
    result, fake, calls = run_wait(linear_operation(total, duration_s), just_submitted=True)
    lag = fake.now - 1000.0 - duration_s
    assert result.done
    assert 0 <= lag <= max(1.0, 0.05 * duration_s), (lag, fake.sleeps)
    assert calls <= {5.0: 3, 20.0: 6, 60.0: 9, 300.0: 12}[duration_s], fake.sleeps
    assert fake.sleeps[0] == 1.0, "the submit answered 'running': no GET at t=0"


def test_prediction_never_sleeps_past_the_finish_plus_margin() -> None:
    """Sparse progress (1 instance seen after 1 s of a 20 s, 34-instance run) must not lead to
    a sleep that overshoots: the rate is rounded up before predicting."""
    result, fake, _ = run_wait(linear_operation(34, 20.0), just_submitted=True)
    assert result.done
    position = 0.0
    for sleep in fake.sleeps[:-1]:
        position += sleep
        assert position < 20.0, fake.sleeps


def test_resumed_operation_is_read_at_once() -> None:
    result, fake, calls = run_wait([operation(done=True, success="3")], just_submitted=False)
    assert result.done and calls == 1 and fake.sleeps == []


def test_stalled_tail_polls_at_growing_intervals() -> None:
    """Pending stays at 0 for a long finalisation: the tail backs off instead of hammering."""

    def responses(fake: FakeClock) -> dict[str, Any]:
        elapsed = fake.now - 1000.0
        if elapsed < 10:
            return operation(success=str(int(elapsed)), pending=str(10 - int(elapsed)))
        if elapsed < 70:
            return operation(success="10")
        return operation(done=True, success="10")

    result, fake, calls = run_wait(responses, just_submitted=True)
    assert result.done
    assert calls <= 15, fake.sleeps
    tail = [s for s in fake.sleeps if s >= 0.5][-4:]
    assert all(b >= a for a, b in itertools.pairwise(tail)), fake.sleeps


def test_pending_dropping_to_zero_polls_quickly() -> None:
    def responses(fake: FakeClock) -> dict[str, Any]:
        elapsed = fake.now - 1000.0
        if elapsed < 50:
            return operation(success=str(int(elapsed)), pending=str(50 - int(elapsed)))
        if elapsed < 53:
            return operation(success="50", pending=None)
        return operation(done=True, success="50")

    result, fake, _ = run_wait(responses, policy=PollPolicy(max_s=30.0))
    assert result.done
    assert fake.now - 1000.0 - 53.0 <= 0.05 * 53.0, fake.sleeps


# --- no moving counter vs gcloud (a model of its waiter, no real sleeping) ----------------------

# gcloud's waiter (googlecloudsdk.api_lib.util.waiter.WaitFor): 1 s, then 2 s growing x1.4 up
# to 180 s. Its jitter (0-1 s added to each sleep) is left out: that makes the model poll
# sooner and more often than the real gcloud, i.e. the comparison favours gcloud.
GCLOUD_FIRST_S, GCLOUD_SLEEP_S, GCLOUD_GROWTH, GCLOUD_CAP_S = 1.0, 2.0, 1.4, 180.0

# Durations from 5 s to 1 h, evenly spaced on a log scale (every phase of both schedules).
DURATIONS = [5.0 * (3600.0 / 5.0) ** (i / 600) for i in range(601)]


def gcloud_lag_and_gets(duration_s: float) -> tuple[float, int]:
    """Seconds from the finish to gcloud's GET that sees it, and its GETs."""
    at, gets, sleep = GCLOUD_FIRST_S, 1, GCLOUD_SLEEP_S
    while at < duration_s:
        at += min(sleep, GCLOUD_CAP_S)
        sleep *= GCLOUD_GROWTH
        gets += 1
    return at - duration_s, gets


def flat_lag_and_gets(duration_s: float, *, pending: str | None = "1") -> tuple[float, int]:
    """Ours, fresh submit, an operation whose counter does not move before it is done."""

    def responses(fake: FakeClock) -> dict[str, Any]:
        if fake.now - 1000.0 >= duration_s:
            return operation(done=True, success="1")
        return operation(pending=pending)

    result, fake, calls = run_wait(responses, just_submitted=True, timeout_s=86400.0)
    assert result.done
    return fake.now - 1000.0 - duration_s, calls


def test_flat_lag_is_bounded_by_a_fifth_of_the_age_half_of_gclouds_bound() -> None:
    """Our lag <= 1 + 0.2 (D - 1) s (at most 90 s); gcloud's reaches 2 + 0.4 (D - 1) s."""
    ours_worst = gcloud_worst = 0.0
    for duration in DURATIONS:
        bound = min(1.0 + 0.2 * (duration - 1.0), 90.0)
        gcloud_bound = min(GCLOUD_SLEEP_S + 0.4 * (duration - GCLOUD_FIRST_S), GCLOUD_CAP_S)
        assert bound <= gcloud_bound / 2 + 1e-9
        for pending in ("1", None):
            lag, _ = flat_lag_and_gets(duration, pending=pending)
            assert 0.0 <= lag <= bound + 1e-9, (duration, pending, lag)
            ours_worst = max(ours_worst, lag / bound)
        gcloud_worst = max(gcloud_worst, gcloud_lag_and_gets(duration)[0] / gcloud_bound)
    # Both bounds are reached (a finish just after a poll): halving the bound halves the
    # worst case, not a figure neither waiter ever shows.
    assert ours_worst > 0.95 and gcloud_worst > 0.95, (ours_worst, gcloud_worst)


@pytest.mark.parametrize(
    ("low", "high"), [(5.0, 20.0), (20.0, 100.0), (100.0, 450.0), (450.0, 3600.0)]
)
def test_flat_mean_lag_is_about_half_of_gclouds_for_under_twice_its_gets(
    low: float, high: float
) -> None:
    """Averaged over durations (log-uniform within each range) the lag is about half of
    gcloud's; the GETs are at most twice gcloud's at every duration (the unavoidable price,
    see the module docstring) and about 1.6-1.85 times on average."""
    ours_lag = gcloud_lag = 0.0
    ours_gets = gcloud_gets = 0
    durations = [d for d in DURATIONS if low <= d <= high]
    for duration in durations:
        lag, gets = flat_lag_and_gets(duration)
        their_lag, their_gets = gcloud_lag_and_gets(duration)
        assert gets <= 2 * their_gets, (duration, gets, their_gets)
        ours_lag += lag / duration
        gcloud_lag += their_lag / duration
        ours_gets += gets
        gcloud_gets += their_gets
    assert ours_lag <= 0.55 * gcloud_lag, (ours_lag / gcloud_lag, low, high)
    assert ours_gets <= 1.9 * gcloud_gets, (ours_gets / gcloud_gets, low, high)


def _age_only_lag_and_gets(
    duration_s: float, first_s: float, fraction: float, cap_s: float
) -> tuple[float, int]:
    """A waiter of the family ``PollPolicy`` uses without counters: first GET at ``first_s``,
    then sleeps of ``first_s + fraction * (age - first_s)``, at most ``cap_s``."""
    at, gets = first_s, 1
    while at < duration_s:
        at += min(first_s + fraction * (at - first_s), cap_s)
        gets += 1
    return at - duration_s, gets


def test_issue_9_flat_target_is_out_of_reach_of_any_age_only_schedule() -> None:
    """Issue 9's p1_flat target (lag at most half of gcloud's with no more GETs than gcloud)
    against every schedule of the family, averaged over durations of 5 s to 1 h: none meets
    both. With gcloud's GETs the best lag is ~0.89 of gcloud's; half its lag costs ~1.7 times
    its GETs. This is the evidence behind the README's "not met": a model, so the library
    cannot make it fail, except through PollPolicy's own point, checked last (should the
    grid ever meet the target, the waiter should take that schedule)."""
    durations = DURATIONS[::4]
    gcloud = [gcloud_lag_and_gets(d) for d in durations]
    gcloud_lag = sum(lag / d for (lag, _), d in zip(gcloud, durations, strict=True))
    gcloud_gets = sum(gets for _, gets in gcloud)
    frontier: list[tuple[float, float]] = []  # (lag, GETs) relative to gcloud's
    for first_s in (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0):
        for fraction in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6):
            for cap_s in (45.0, 90.0, 180.0, 360.0, 3600.0):
                runs = [_age_only_lag_and_gets(d, first_s, fraction, cap_s) for d in durations]
                lag = sum(lag / d for (lag, _), d in zip(runs, durations, strict=True))
                frontier.append((lag / gcloud_lag, sum(g for _, g in runs) / gcloud_gets))
    assert not [point for point in frontier if point[0] <= 0.5 and point[1] <= 1.0]
    # The grid is wide enough to reach both halves of the target separately.
    assert min(lag for lag, gets in frontier if gets <= 1.0) < 0.95
    assert min(gets for lag, gets in frontier if lag <= 0.5) < 1.8
    # Ours (the PollPolicy defaults) sits on that frontier: about half the lag, < 1.9x GETs.
    policy = PollPolicy()
    ours = [
        _age_only_lag_and_gets(d, policy.initial_s, policy.flat_fraction, policy.flat_max_s)
        for d in durations
    ]
    ours_lag = sum(lag / d for (lag, _), d in zip(ours, durations, strict=True)) / gcloud_lag
    ours_gets = sum(gets for _, gets in ours) / gcloud_gets
    assert ours_lag <= 0.55 and ours_gets <= 1.9, (ours_lag, ours_gets)


def wall_clock_run(created_ago_s: float) -> FakeClock:
    """A resumed operation created ``created_ago_s`` before the call; one GET, then done."""
    fake = FakeClock()
    created = 1_800_000_000.0
    responses = iter([operation(), operation(done=True)])

    def get() -> dict[str, Any]:
        op = next(responses)
        op["metadata"]["createTime"] = "2027-01-15T08:00:00.123456789Z"  # 1_800_000_000.12
        return op

    wait_for_operation(
        get,
        timeout_s=3600.0,
        clock=fake.clock,
        sleep=fake.sleep,
        rand=lambda: 0.0,
        wall_clock=lambda: created + created_ago_s + (fake.now - 1000.0),
    )
    return fake


def test_resumed_operation_sleeps_as_its_create_time_calls_for() -> None:
    """An operation created 100 s ago is 100 s old: the first sleep is 1 + 0.2 x 99 s."""
    assert wall_clock_run(100.0).sleeps == pytest.approx([20.8], abs=0.05)
    assert wall_clock_run(10_000.0).sleeps == pytest.approx([90.0])


def test_create_time_in_the_future_counts_from_the_call() -> None:
    """A server clock ahead of ours must not make the operation younger than the wait."""
    assert wall_clock_run(-30.0).sleeps == pytest.approx([1.0])


def test_without_a_wall_clock_create_time_is_not_used() -> None:
    # The operations here were created in 2024; the age still counts from the call.
    _, fake, _ = run_wait([operation(), operation(done=True)])
    assert fake.sleeps == pytest.approx([1.0])


# --- failure policy ------------------------------------------------------------------------------


def finished(
    failure: int, code: int | None, success: int = 10, message: str | None = "m"
) -> OperationResult:
    return OperationResult(
        name=NAME,
        done=True,
        success_count=success,
        failure_count=failure,
        logs_url="https://logs/x",
        error_code=code,
        error_message=message if code is not None else None,
    )


@pytest.mark.parametrize(
    ("failure", "code", "max_failures", "ok"),
    [
        (0, None, 0, True),
        (0, None, None, True),
        (1, 3, 0, False),
        (1, 3, 1, True),
        (2, 3, 1, False),
        (500, 3, None, True),
        (0, 3, 0, False),  # code 3 with no failed instance: a request-level error
        (0, 3, None, False),
        (0, 1, None, False),  # cancelled
        (0, 13, None, False),  # internal
        (3, 7, None, False),  # permission denied
        (2, None, 1, False),  # no error but too many failures (defensive)
    ],
)
def test_failure_policy(failure: int, code: int | None, max_failures: int | None, ok: bool) -> None:
    result = finished(failure, code)
    if ok:
        assert apply_failure_policy(result, max_failures) is result
        return
    with pytest.raises(OperationFailed) as info:
        apply_failure_policy(result, max_failures)
    error = info.value
    assert error.operation_name == NAME
    assert error.code == (code or 0)
    assert error.logs_url == "https://logs/x"
    text = str(error)
    assert NAME in text and "https://logs/x" in text
    assert f"failure={failure}" in text and "success=10" in text


def test_permission_failure_carries_hint() -> None:
    with pytest.raises(OperationFailed, match=r"roles/storage\.objectViewer"):
        apply_failure_policy(finished(0, 7), None, "grant roles/storage.objectViewer on b")


def test_operation_failed_pickles() -> None:
    import pickle

    with pytest.raises(OperationFailed) as info:
        apply_failure_policy(finished(2, 3), 0)
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value) and copy.result == info.value.result
