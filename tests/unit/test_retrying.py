"""Retry rules: reads vs. submits, permission propagation window (injected sleep/clock)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dicom_transfer.errors import ApiError, PermissionDenied, Transient
from dicom_transfer.healthcare.client import ApiConfig, HealthcareApi
from dicom_transfer.healthcare.retrying import (
    READ_RETRY,
    RetryPolicy,
    call_with_retry,
    is_retryable_read,
    is_retryable_submit,
    retry_permission_denied,
)
from dicom_transfer.roles import permission_hint
from dicom_transfer.specs.props import export_spec_from_props, import_spec_from_props
from googleapiclient.http import HttpMockSequence

STORE = "projects/my-project/locations/us/datasets/d/dicomStores/s"
OP = "projects/my-project/locations/us/datasets/d/operations/7"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def error_response(code: int, status: str, message: str = "m") -> tuple[dict[str, str], str]:
    body = json.dumps({"error": {"code": code, "status": status, "message": message}})
    return ({"status": str(code)}, body)


def ok(body: dict[str, Any]) -> tuple[dict[str, str], str]:
    return ({"status": "200"}, json.dumps(body))


class Recorder(HttpMockSequence):  # type: ignore[misc]
    """HttpMockSequence that remembers the requests it answered."""

    def __init__(self, iterable: list[tuple[dict[str, str], str]]) -> None:
        super().__init__(iterable)
        self.requests: list[tuple[str, str, Any]] = []

    def request(self, uri: str, method: str = "GET", body: Any = None, **kwargs: Any) -> Any:
        self.requests.append((method, uri, body))
        return super().request(uri, method, body, **kwargs)


def api_with(
    responses: list[tuple[dict[str, str], str]], fake: FakeTime
) -> tuple[HealthcareApi, Recorder]:
    http = Recorder(responses)
    api = HealthcareApi(
        ApiConfig(endpoint="http://127.0.0.1:1/"),
        "v1",
        http_factory=lambda: http,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    return api, http


# --- classification ------------------------------------------------------------------------------


def test_classification() -> None:
    assert is_retryable_read(Transient(500, "INTERNAL", "x"))
    assert not is_retryable_read(PermissionDenied(403, "PERMISSION_DENIED", "x"))
    assert is_retryable_submit(Transient(429, "RESOURCE_EXHAUSTED", "x", request_sent=False))
    assert not is_retryable_submit(Transient(500, "INTERNAL", "x", request_sent=True))
    assert not is_retryable_submit(ApiError(400, "INVALID_ARGUMENT", "x"))


def test_call_with_retry_backoff_is_capped_with_jitter() -> None:
    fake = FakeTime()
    attempts = 0

    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 8:
            raise Transient(503, "UNAVAILABLE", "busy", request_sent=False)
        return "ok"

    policy = RetryPolicy(
        initial_s=1, multiplier=2, maximum_s=10, jitter_s=1, max_attempts=8, timeout_s=1e9
    )
    assert (
        call_with_retry(flaky, policy=policy, sleep=fake.sleep, clock=fake.clock, rand=lambda: 0.5)
        == "ok"
    )
    assert fake.sleeps == [1.5, 2.5, 4.5, 8.5, 10, 10, 10]


def test_call_with_retry_gives_up_after_attempts_and_deadline() -> None:
    fake = FakeTime()
    error = Transient(500, "INTERNAL", "boom")

    def failing() -> None:
        raise error

    with pytest.raises(Transient) as info:
        call_with_retry(
            failing, policy=RetryPolicy(max_attempts=3), sleep=fake.sleep, clock=fake.clock
        )
    assert info.value is error and len(fake.sleeps) == 2

    fake = FakeTime()
    with pytest.raises(Transient):
        call_with_retry(
            failing,
            policy=RetryPolicy(max_attempts=100, timeout_s=20, maximum_s=5),
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert fake.now <= 20.0 + 1e-9


# --- through the client (HttpMockSequence) --------------------------------------------------------


@pytest.mark.parametrize("status", [(429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE")])
def test_submit_retried_after_429_and_503(status: tuple[int, str]) -> None:
    fake = FakeTime()
    api, http = api_with([error_response(*status), error_response(*status), ok({"name": OP})], fake)
    assert api.submit_import(STORE, {"gcsSource": {"uri": "gs://b/x"}}) == OP
    assert [m for m, _, _ in http.requests] == ["POST"] * 3
    assert len(fake.sleeps) == 2


def test_submit_waits_as_long_as_retry_after_asks() -> None:
    fake = FakeTime()
    throttled = ({"status": "429", "retry-after": "20"}, error_response(429, "X")[1])
    api, http = api_with([throttled, ok({"name": OP})], fake)
    assert api.submit_import(STORE, {"gcsSource": {"uri": "gs://b/x"}}) == OP
    assert len(http.requests) == 2
    assert fake.sleeps == [20.0]  # not the 1-2 s of the first backoff step


def test_retry_after_never_shortens_the_backoff_nor_passes_the_deadline() -> None:
    fake = FakeTime()

    def throttled(after: float) -> Any:
        def call() -> None:
            raise Transient(429, "RESOURCE_EXHAUSTED", "m", request_sent=False, retry_after_s=after)

        return call

    policy = RetryPolicy(initial_s=4, jitter_s=0, max_attempts=2, timeout_s=100)
    with pytest.raises(Transient):
        call_with_retry(throttled(0.0), policy=policy, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [4.0]

    fake = FakeTime()
    with pytest.raises(Transient):
        call_with_retry(throttled(500.0), policy=policy, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [100.0]


@pytest.mark.parametrize("code", [500, 502, 504])
def test_submit_not_retried_after_other_5xx(code: int) -> None:
    fake = FakeTime()
    api, http = api_with([error_response(code, "INTERNAL"), ok({"name": OP})], fake)
    with pytest.raises(Transient) as info:
        api.submit_export(STORE, {"gcsDestination": {"uriPrefix": "gs://b"}})
    assert info.value.request_sent
    assert len(http.requests) == 1


def test_submit_not_retried_after_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTime()
    api, http = api_with([ok({"name": OP})], fake)

    def reset(*_args: Any, **_kwargs: Any) -> Any:
        http.requests.append(("POST", "reset", None))
        raise ConnectionResetError("peer reset")

    monkeypatch.setattr(http, "request", reset)
    with pytest.raises(Transient) as info:
        api.submit_import(STORE, {"gcsSource": {"uri": "gs://b/x"}})
    assert info.value.request_sent and len(http.requests) == 1


def test_submit_retried_after_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTime()
    api, http = api_with([ok({"name": OP})], fake)
    original = http.request
    calls = 0

    def refuse_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("refused")
        return original(*args, **kwargs)

    monkeypatch.setattr(http, "request", refuse_once)
    assert api.submit_import(STORE, {"gcsSource": {"uri": "gs://b/x"}}) == OP
    assert calls == 2


def test_reads_retry_5xx_and_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTime()
    api, http = api_with(
        [error_response(500, "INTERNAL"), error_response(502, "UNAVAILABLE"), ok({"name": OP})],
        fake,
    )
    assert api.get_operation(OP) == {"name": OP}
    assert len(http.requests) == 3 and all(m == "GET" for m, _, _ in http.requests)


def test_reads_do_not_retry_404_or_403() -> None:
    fake = FakeTime()
    api, _ = api_with([error_response(404, "NOT_FOUND", "gone")], fake)
    from dicom_transfer.errors import NotFound

    with pytest.raises(NotFound, match="gone"):
        api.get_operation(OP)
    api, _ = api_with([error_response(403, "PERMISSION_DENIED")], fake)
    with pytest.raises(PermissionDenied):
        api.get_operation(OP)
    assert fake.sleeps == []


# --- permission propagation ---------------------------------------------------------------------


def test_permission_denied_then_success() -> None:
    fake = FakeTime()
    api, http = api_with(
        [
            error_response(403, "PERMISSION_DENIED", "storage.objects.list denied"),
            error_response(403, "PERMISSION_DENIED", "storage.objects.list denied"),
            ok({"name": OP}),
        ],
        fake,
    )
    retried: list[float] = []
    name = retry_permission_denied(
        lambda: api.submit_import(STORE, {"gcsSource": {"uri": "gs://raw/x"}}),
        window_s=600,
        hint="h",
        sleep=fake.sleep,
        clock=fake.clock,
        rand=lambda: 0.0,
        on_retry=lambda _e, d: retried.append(d),
    )
    assert name == OP and len(http.requests) == 3
    assert fake.sleeps == [5.0, 7.5] == retried


def test_permission_window_exhausted_names_role_bucket_and_agent() -> None:
    fake = FakeTime()
    attempts = 0

    def denied() -> str:
        nonlocal attempts
        attempts += 1
        raise PermissionDenied(403, "PERMISSION_DENIED", "denied")

    spec = import_spec_from_props({"dicom_store": STORE, "gcs_uri": "gs://raw-images/in/**.dcm"})
    with pytest.raises(PermissionDenied) as info:
        retry_permission_denied(
            denied,
            window_s=120,
            hint=permission_hint(spec),
            policy=RetryPolicy(
                initial_s=5, multiplier=1.5, maximum_s=60, jitter_s=0, max_attempts=None
            ),
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert fake.now == pytest.approx(120.0)
    assert attempts == 1 + len(fake.sleeps)
    text = str(info.value)
    assert "roles/storage.objectViewer on bucket raw-images" in text
    assert "service-PROJECT_NUMBER@gcp-sa-healthcare.iam.gserviceaccount.com" in text
    assert "permission_retry_seconds" in text and "still denied after 120 s" in text


def test_zero_window_tries_once() -> None:
    fake = FakeTime()
    calls = 0

    def denied() -> str:
        nonlocal calls
        calls += 1
        raise PermissionDenied(403, "PERMISSION_DENIED", "denied")

    with pytest.raises(PermissionDenied):
        retry_permission_denied(denied, window_s=0, hint="h", sleep=fake.sleep, clock=fake.clock)
    assert calls == 1 and fake.sleeps == []


def test_permission_hints_per_destination() -> None:
    gcs = permission_hint(
        export_spec_from_props(
            {"dicom_store": STORE, "gcs_destination": {"uri_prefix": "gs://out/x"}}
        )
    )
    assert "roles/storage.objectAdmin on bucket out" in gcs
    assert "healthcare.dicomStores.export" in gcs
    bq = permission_hint(
        export_spec_from_props(
            {
                "dicom_store": STORE,
                "bigquery_destination": {"table_uri": "bq://my-project.ds.t"},
                "filter_gcs_uri": "gs://filters/f.txt",
            }
        )
    )
    assert "roles/bigquery.dataEditor on BigQuery dataset my-project.ds" in bq
    assert "roles/bigquery.jobUser on project my-project" in bq
    assert "roles/storage.objectViewer on bucket filters (filter file)" in bq


def test_permission_hint_for_a_table_in_another_project() -> None:
    # Guide "Exporting DICOM metadata to a different project": the store project's service
    # agent needs dataEditor and jobUser in the table's project.
    hint = permission_hint(
        export_spec_from_props(
            {"dicom_store": STORE, "bigquery_destination": {"table_uri": "bq://analytics-prj.ds.t"}}
        )
    )
    assert "roles/bigquery.dataEditor on BigQuery dataset analytics-prj.ds" in hint
    assert "roles/bigquery.jobUser on project analytics-prj" in hint
    assert "roles/bigquery.jobUser on project my-project" not in hint
    assert "Cloud Healthcare Service Agent of project my-project" in hint


def test_longest_s_is_the_sum_of_the_sleeps_at_full_jitter_within_the_timeout() -> None:
    # 1+1, 2+1, 4+1, 8+1, 16+1, then the 30 s cap twice: 7 sleeps between 8 attempts.
    assert READ_RETRY.longest_s() == 96.0
    assert RetryPolicy(max_attempts=3, timeout_s=2.5).longest_s() == 2.5
    assert RetryPolicy(max_attempts=None, timeout_s=42.0).longest_s() == 42.0
