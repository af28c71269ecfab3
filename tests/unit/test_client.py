"""Client construction: endpoints, credentials, static discovery, per-thread clients, pickling."""

from __future__ import annotations

import json
import pickle
import threading
from datetime import UTC, datetime
from typing import Any

import httplib2
import pytest
from dicom_transfer.errors import (
    ApiError,
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    Transient,
)
from dicom_transfer.healthcare.client import (
    ApiConfig,
    HealthcareApi,
    StorageApi,
    api_error_from_exception,
    retry_after_seconds,
    validate_operation_name,
)
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpMockSequence

DATASET = "projects/my-project/locations/us/datasets/d"
STORE = f"{DATASET}/dicomStores/s"
OP = f"{DATASET}/operations/7"


class Recorder(HttpMockSequence):  # type: ignore[misc]
    def __init__(self, iterable: list[tuple[dict[str, str], Any]]) -> None:
        super().__init__(iterable)
        self.requests: list[tuple[str, str, Any, dict[str, str]]] = []

    def request(
        self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any
    ) -> Any:
        self.requests.append((method, uri, body, dict(headers or {})))
        return super().request(uri, method, body, headers, **kw)


def ok(body: dict[str, Any]) -> tuple[dict[str, str], str]:
    return ({"status": "200"}, json.dumps(body))


# --- configuration -------------------------------------------------------------------------------


# --- Healthcare client ---------------------------------------------------------------------------


def test_requests_go_to_the_endpoint_with_the_version() -> None:
    http = Recorder([ok({"name": OP}), ok({"name": OP, "done": True})])
    api = HealthcareApi(
        ApiConfig(endpoint="http://127.0.0.1:8080/"), "v1beta1", http_factory=lambda: http
    )
    assert api.submit_export(STORE, {"gcsDestination": {"uriPrefix": "gs://b"}}) == OP
    assert api.get_operation(OP)["done"] is True
    (method, uri, body, headers), (method2, uri2, _, _) = http.requests
    assert method == "POST"
    assert uri.startswith(f"http://127.0.0.1:8080/v1beta1/{STORE}:export")
    assert json.loads(body) == {"gcsDestination": {"uriPrefix": "gs://b"}}
    assert method2 == "GET" and uri2.startswith(f"http://127.0.0.1:8080/v1beta1/{OP}?")
    assert "authorization" not in {k.lower() for k in headers}


def test_list_operations_follows_pages() -> None:
    http = Recorder(
        [
            ok({"operations": [{"name": f"{DATASET}/operations/1"}], "nextPageToken": "t2"}),
            ok({"operations": [{"name": f"{DATASET}/operations/2"}]}),
        ]
    )
    api = HealthcareApi(ApiConfig(endpoint="http://h:1/"), http_factory=lambda: http)
    names = [op["name"] for op in api.list_operations(DATASET)]
    assert names == [f"{DATASET}/operations/1", f"{DATASET}/operations/2"]
    assert "pageToken=t2" in http.requests[1][1]


@pytest.mark.parametrize(
    "name",
    [
        f"{DATASET}/operations/../../x",
        f"{DATASET}/operations/1?alt=media",
        f"{DATASET}/operations/a%2Fb",
        "projects/p/operations/1",
        f"{DATASET}/operations/",
    ],
)
def test_operation_names_are_checked_before_use(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid operation name"):
        validate_operation_name(name)


def test_store_name_checked_before_submit() -> None:
    api = HealthcareApi(ApiConfig(endpoint="http://h:1/"), http_factory=lambda: Recorder([]))
    with pytest.raises(ValueError, match="DICOM store"):
        api.submit_import(f"{DATASET}/dicomStores/..", {})


def test_bad_api_version() -> None:
    with pytest.raises(ValueError, match=r"v1\|v1beta1"):
        HealthcareApi(ApiConfig(), "v2")


def test_one_client_per_thread_built_lazily() -> None:
    built: list[int] = []

    def factory() -> Any:
        built.append(threading.get_ident())
        return Recorder([ok({"name": OP})] * 3)

    api = HealthcareApi(ApiConfig(endpoint="http://h:1/"), http_factory=factory)
    assert built == []
    api.get_operation(OP)
    api.get_operation(OP)
    assert len(built) == 1
    thread = threading.Thread(target=api.get_operation, args=(OP,))
    thread.start()
    thread.join()
    assert len(built) == 2 and built[0] != built[1]


def test_pickles_small_without_client() -> None:
    api = HealthcareApi(ApiConfig(endpoint="http://127.0.0.1:8080/", healthcare_emulator=True))
    api._service()  # build the (anonymous, emulator) client for this thread
    payload = pickle.dumps(api)
    assert len(payload) < 2000
    for forbidden in (b"httplib2", b"googleapiclient", b"Credentials", b"token"):
        assert forbidden not in payload
    copy = pickle.loads(payload)
    assert copy.config == api.config and copy.api_version == "v1"
    assert getattr(copy._local, "service", None) is None
    config_payload = pickle.dumps(ApiConfig(endpoint="http://h:1/"))
    assert len(config_payload) < 500


def test_storage_pickles_without_client() -> None:
    storage = StorageApi(
        ApiConfig(storage_endpoint="http://127.0.0.1:9023/", storage_emulator=True)
    )
    storage._service()
    payload = pickle.dumps(storage)
    assert b"httplib2" not in payload and len(payload) < 2000


# --- Storage client ------------------------------------------------------------------------------


def test_storage_conditional_write_and_exists_use_the_emulator_endpoint() -> None:
    http = Recorder(
        [
            ({"status": "404"}, json.dumps({"error": {"code": 404, "message": "No such object"}})),
            ok({"name": "filters/abc.txt", "bucket": "stage"}),
            ok({"name": "filters/abc.txt"}),
        ]
    )
    storage = StorageApi(
        ApiConfig(storage_endpoint="http://127.0.0.1:9023/"), http_factory=lambda: http
    )
    assert storage.exists("stage", "filters/abc.txt") is False
    assert storage.write(
        "stage", "filters/abc.txt", b"/studies/1.2\n", "text/plain", only_if_absent=True
    )
    assert storage.exists("stage", "filters/abc.txt") is True
    (_, get_uri, _, _), (method, upload_uri, body, headers), _ = http.requests
    assert get_uri.startswith("http://127.0.0.1:9023/storage/v1/b/stage/o/filters%2Fabc.txt")
    assert method == "POST"
    assert upload_uri.startswith("http://127.0.0.1:9023/upload/storage/v1/b/stage/o?")
    assert "ifGenerationMatch=0" in upload_uri and "uploadType=media" in upload_uri
    assert body == b"/studies/1.2\n" and headers["content-type"] == "text/plain"


PRECONDITION_FAILED = ({"status": "412"}, json.dumps({"error": {"code": 412, "message": "x"}}))


def test_storage_conditional_write_finds_another_writers_object() -> None:
    http = Recorder([PRECONDITION_FAILED, ({"status": "200"}, "theirs")])
    storage = StorageApi(ApiConfig(storage_endpoint="http://h:1/"), http_factory=lambda: http)
    assert storage.write("stage", "f.txt", b"ours", "text/plain", only_if_absent=True) is False
    assert "alt=media" in http.requests[1][1]


def test_storage_conditional_write_recognises_its_own_earlier_attempt() -> None:
    # The first attempt created the object but its answer was lost; the repeat gets 412.
    http = Recorder([PRECONDITION_FAILED, ({"status": "200"}, "ours")])
    storage = StorageApi(ApiConfig(storage_endpoint="http://h:1/"), http_factory=lambda: http)
    assert storage.write("stage", "f.txt", b"ours", "text/plain", only_if_absent=True) is True


def test_storage_unconditional_write_raises_on_412() -> None:
    http = Recorder([PRECONDITION_FAILED])
    storage = StorageApi(ApiConfig(storage_endpoint="http://h:1/"), http_factory=lambda: http)
    with pytest.raises(ApiError, match="412"):
        storage.write("stage", "f.txt", b"ours", "text/plain")


def test_storage_default_endpoint_is_google() -> None:
    http = Recorder([ok({"name": "x"})])
    storage = StorageApi(ApiConfig(), http_factory=lambda: http)
    storage.exists("b", "o")
    assert http.requests[0][1].startswith("https://storage.googleapis.com/storage/v1/b/b/o/o")


# --- error mapping -------------------------------------------------------------------------------


def http_error(code: int, payload: Any) -> HttpError:
    response = httplib2.Response({"status": str(code)})
    response.reason = "Reason"
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return HttpError(response, content, uri="http://h/v1/x")


@pytest.mark.parametrize(
    ("exc", "kind", "request_sent"),
    [
        (
            http_error(403, {"error": {"status": "PERMISSION_DENIED", "message": "no"}}),
            PermissionDenied,
            None,
        ),
        (http_error(404, {"error": {"message": "gone"}}), NotFound, None),
        (http_error(429, {"error": {"message": "slow down"}}), Transient, False),
        (http_error(503, b"<html>unavailable</html>"), Transient, False),
        (http_error(500, {"error": {"message": "oops"}}), Transient, True),
        (http_error(504, {"error": {"message": "late"}}), Transient, True),
        (http_error(400, {"error": {"message": "bad"}}), ApiError, None),
        (ConnectionRefusedError("refused"), Transient, False),
        (httplib2.ServerNotFoundError("dns"), Transient, False),
        (ConnectionResetError("reset"), Transient, True),
        (TimeoutError("timed out"), Transient, True),
        (TimeoutError("timed out"), Transient, True),
    ],
)
def test_error_mapping(exc: BaseException, kind: type[ApiError], request_sent: bool | None) -> None:
    mapped = api_error_from_exception(exc)
    assert type(mapped) is kind
    if request_sent is not None:
        assert isinstance(mapped, Transient) and mapped.request_sent is request_sent


def test_error_mapping_reads_google_error_shape() -> None:
    mapped = api_error_from_exception(
        http_error(
            403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "denied x"}}
        )
    )
    assert mapped is not None
    assert (mapped.http_status, mapped.status, mapped.message) == (
        403,
        "PERMISSION_DENIED",
        "denied x",
    )
    assert api_error_from_exception(ValueError("not http")) is None


def test_errors_pickle() -> None:
    error = Transient(429, "RESOURCE_EXHAUSTED", "m", "hint", request_sent=False, retry_after_s=7.0)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, Transient) and copy.request_sent is False and str(copy) == str(error)
    assert copy.retry_after_s == 7.0
    denied = pickle.loads(pickle.dumps(PermissionDenied(403, "PERMISSION_DENIED", "m", "grant x")))
    assert denied.hint == "grant x"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("12", 12.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # an HTTP date, 30 s after "now"
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
        ("soon", None),
        ("-5", None),
        ("1.5", None),  # delay-seconds is a whole number (RFC 9110)
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header: Any, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds(header, now=lambda: now) == expected


def test_a_throttled_response_carries_its_retry_after() -> None:
    response = httplib2.Response({"status": "429", "retry-after": "9"})
    error = HttpError(response, b'{"error": {"message": "slow down"}}', uri="http://h/v1/x")
    mapped = api_error_from_exception(error)
    assert isinstance(mapped, Transient) and mapped.retry_after_s == 9.0
    assert api_error_from_exception(http_error(503, b"x")).retry_after_s is None  # type: ignore[union-attr]


# --- unreachable endpoints and 401 -----------------------------------------------------------


class Refusing:
    """An HTTP object whose every request is refused, as by a port nobody listens on."""

    def __init__(self) -> None:
        self.attempts = 0

    def request(self, *_args: Any, **_kwargs: Any) -> Any:
        self.attempts += 1
        raise ConnectionRefusedError(111, "Connection refused")


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_an_unreachable_emulator_says_so_once_while_retrying_and_fails_naming_it() -> None:
    http, time_ = Refusing(), FakeTime()
    lines: list[str] = []
    config = ApiConfig.from_env(environ={"HEALTHCARE_EMULATOR_HOST": "127.0.0.1:1"})
    api = HealthcareApi(
        config,
        http_factory=lambda: http,
        sleep=time_.sleep,
        clock=time_.clock,
        progress=lines.append,
    )
    with pytest.raises(Transient) as raised:
        api.get_operation(OP)

    target = "http://127.0.0.1:1/ (from HEALTHCARE_EMULATOR_HOST)"
    assert http.attempts > 1
    assert lines == [
        f"cannot reach {target}: connection failed: [Errno 111] Connection refused; "
        "retrying for up to 96 s"
    ]
    message = str(raised.value)
    assert message.startswith(f"UNAVAILABLE: cannot reach {target}: connection failed"), message
    assert f"still unreachable after {time_.now:.0f} s of retries" in message
    assert "Start the emulator at http://127.0.0.1:1/" in message
    assert "HTTP" not in message  # no server answered


def test_a_server_answering_cannot_reach_is_not_called_unreachable() -> None:
    # A 503 whose message happens to start like ours: a server answered, so no
    # "retrying for up to" line and no "still unreachable" in the failure.
    busy = ({"status": "503"}, json.dumps({"error": {"message": "cannot reach the backend"}}))
    http, time_ = Recorder([busy] * 20), FakeTime()
    lines: list[str] = []
    api = HealthcareApi(
        ApiConfig(endpoint="http://127.0.0.1:8080/"),
        http_factory=lambda: http,
        sleep=time_.sleep,
        clock=time_.clock,
        progress=lines.append,
    )
    with pytest.raises(Transient) as raised:
        api.get_operation(OP)
    assert len(http.requests) > 1 and lines == []
    assert "still unreachable" not in str(raised.value)
    assert str(raised.value).startswith("HTTP 503 UNAVAILABLE: cannot reach the backend (answered")


def test_an_unreachable_endpoint_input_is_named_as_the_input() -> None:
    config = ApiConfig.from_env(endpoint="https://healthcare-x.p.googleapis.com", environ={})
    time_ = FakeTime()
    api = HealthcareApi(config, http_factory=Refusing, sleep=time_.sleep, clock=time_.clock)
    with pytest.raises(Transient) as raised:
        api.submit_import(STORE, {"gcsSource": {"uri": "gs://b/x"}})
    assert "cannot reach https://healthcare-x.p.googleapis.com/ (from the endpoint input)" in str(
        raised.value
    )
    assert raised.value.request_sent is False  # refused: the submit created nothing


def test_http_401_is_reported_only_when_the_server_answered_it() -> None:
    http = Recorder([({"status": "401"}, json.dumps({"error": {"message": "token expired"}}))])
    api = HealthcareApi(ApiConfig(endpoint="http://127.0.0.1:8080/"), http_factory=lambda: http)
    with pytest.raises(AuthenticationFailed) as raised:
        api.get_operation(OP)
    assert raised.value.http_status == 401
    assert str(raised.value).startswith("HTTP 401 UNAUTHENTICATED: calling http://127.0.0.1:8080/")


def test_a_server_error_names_the_endpoint_that_answered() -> None:
    http = Recorder([({"status": "404"}, json.dumps({"error": {"message": "no such store"}}))])
    api = HealthcareApi(ApiConfig.from_env(environ={}), http_factory=lambda: http)
    with pytest.raises(NotFound) as raised:
        api.get_operation(OP)
    assert str(raised.value) == (
        "HTTP 404 NOT_FOUND: no such store (answered by https://healthcare.googleapis.com/ "
        "(default: no endpoint input, no HEALTHCARE_EMULATOR_HOST))"
    )
