"""Provider output lines stay whole when many threads write at once (dicom_transfer.output)."""

from __future__ import annotations

import io
import os
import sys
import threading
import traceback
from collections.abc import Callable

from dicom_transfer.errors import OperationFailed
from dicom_transfer.healthcare.results import OperationResult
from dicom_transfer.output import line_writer, reports_message_first, write_line

WRITERS = 32
LINES_EACH = 200


def _drain(fd: int, sink: bytearray) -> None:
    while chunk := os.read(fd, 65536):
        sink.extend(chunk)


def test_concurrent_writers_on_a_pipe_never_garble_a_line() -> None:
    read_fd, write_fd = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=_drain, args=(read_fd, received))
    reader.start()
    # Configured as Python configures sys.stderr (line buffered, write-through), where
    # print()'s two writes reach the pipe separately.
    stream = io.TextIOWrapper(
        io.FileIO(write_fd, "w"), encoding="utf-8", line_buffering=True, write_through=True
    )
    start = threading.Barrier(WRITERS)
    # Long lines of varying length make a split visible: each carries its writer and index
    # and ends with a checksum-like tail that a merged line would not repeat.
    payload = "x" * 300

    def writer(number: int) -> None:
        emit = line_writer(f"dicom import writer-{number}", stream)
        start.wait()
        for index in range(LINES_EACH):
            emit(f"{index} {payload[: index % 300]} end-{number}-{index}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    stream.close()
    reader.join()
    os.close(read_fd)

    lines = received.decode("utf-8").split("\n")
    assert lines[-1] == ""  # the output ends with a newline
    lines = lines[:-1]
    assert len(lines) == WRITERS * LINES_EACH
    expected = {
        f"dicom import writer-{n}: {i} {payload[: i % 300]} end-{n}-{i}"
        for n in range(WRITERS)
        for i in range(LINES_EACH)
    }
    assert set(lines) == expected


def test_a_multi_line_message_becomes_one_line() -> None:
    stream = io.StringIO()
    write_line("first\nsecond\r\nthird", stream)
    assert stream.getvalue() == "first second third\n"


def test_a_stream_without_a_descriptor_gets_one_write_per_line() -> None:
    class Recording(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

    stream = Recording()
    write_line("dicom export quick-png: submitted", stream)
    assert stream.writes == ["dicom export quick-png: submitted\n"]


def _as_the_provider_host_reports(call: Callable[[], object]) -> str:
    """What pulumi/dynamic/__main__.py's ``_abort_with_traceback`` sends for a failed call."""
    try:
        call()
    except Exception:
        return traceback.format_exc()
    raise AssertionError("the call did not fail")


def test_a_failure_of_ours_is_reported_message_first() -> None:
    result = OperationResult("projects/p/locations/l/datasets/d/operations/1", True)
    failed = OperationFailed(result.name, 13, "disk on fire", result, "https://logs/1")

    @reports_message_first
    def create() -> None:
        try:
            raise ConnectionResetError("the HTTP library's own failure")
        except OSError as exc:
            raise failed from exc

    report = _as_the_provider_host_reports(create)

    lines = report.splitlines()
    assert lines[0] == f"dicom_transfer.errors.OperationFailed: {failed}"
    assert "the HTTP library's own failure" not in report  # the chain below is dropped
    assert lines[-1] == lines[0]  # the raised exception keeps its type and message


def test_other_errors_keep_their_whole_traceback() -> None:
    @reports_message_first
    def create() -> None:
        raise KeyError("a bug of ours")

    report = _as_the_provider_host_reports(create)
    assert report.startswith("Traceback (most recent call last):")
    assert "KeyError: 'a bug of ours'" in report


def test_the_first_line_is_the_whole_message_for_every_error_of_ours() -> None:
    from dicom_transfer import errors

    result = OperationResult("projects/p/locations/l/datasets/d/operations/1", True)
    samples: list[errors.DicomTransferError] = [
        errors.InvalidSpec("gcs_uri", "gs://b/a**b", "'**' only at the end"),
        errors.ApiError(400, "INVALID_ARGUMENT", "bad", "fix it"),
        errors.AuthenticationFailed("https://h/ (from the endpoint input)", "ADC", "no", "fix"),
        errors.CredentialsNotFound("https://h/ (default)", "ADC (none found)", "none", "fix"),
        errors.PermissionDenied(403, "PERMISSION_DENIED", "denied", "grant roles/x"),
        errors.NotFound(404, "NOT_FOUND", "gone"),
        errors.Transient(0, "UNAVAILABLE", "cannot reach", "start it", request_sent=False),
        errors.OperationFailed(result.name, 3, "2 failed", result, "https://logs", "hint"),
        errors.OperationTimedOut(result.name, 12.0),
        errors.JournalConflict("f" * 64, "/journal/f.json", "two candidates"),
        errors.OperationForgotten("f" * 64, "/journal/f.json", result.name, "2026-01-01T00:00:00Z"),
    ]
    for error in samples:

        @reports_message_first
        def create(error: errors.DicomTransferError = error) -> None:
            raise error

        first = _as_the_provider_host_reports(create).splitlines()[0]
        assert first == f"dicom_transfer.errors.{type(error).__name__}: {error}", first
