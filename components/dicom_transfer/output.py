"""Provider output lines, each written whole.

The engine shows a dynamic provider's stderr lines as info messages. ``print(text,
file=sys.stderr)`` is two writes (the text, then ``"\\n"``), so transfers running in the
provider's worker threads interleave them and the engine shows two transfers' lines merged
into one. :func:`write_line` makes one line one ``os.write`` call of ``line + "\\n"`` on the
file descriptor, under a lock: concurrent writers' lines come out whole and in some order.

Multi-line text (a message with newlines) is folded into one line first: the engine shows
each stderr line as its own message, and a line is the unit that must stay whole.

:func:`message_first` orders what the SDK's provider host reports for a failed call. The host
(``pulumi/dynamic/__main__.py``, ``_abort_with_traceback``) sends ``traceback.format_exc()`` as
the gRPC error, and the CLI shows its first line on the resource's row: "Traceback (most recent
call last):", with the message 20 or more lines further down. Python prints an exception's
``__cause__`` before the exception itself, and an exception that was never raised has no
frames to print: so a failure of ours gets a frameless copy of itself as its cause, and the
report starts with its complete message.
"""

from __future__ import annotations

import copy
import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import ParamSpec, TextIO, TypeVar

from dicom_transfer.errors import DicomTransferError

__all__ = ["line_writer", "message_first", "reports_message_first", "write_line"]

P = ParamSpec("P")
R = TypeVar("R")

_LOCK = threading.Lock()


def _descriptor(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test or a wrapper
        return None


def write_line(text: str, stream: TextIO | None = None) -> None:
    """Write ``text`` and a newline to ``stream`` as one write, safe across threads.

    Args:
        text: One line; newlines inside it are replaced by spaces (one message, one line).
        stream: Where to write; default ``sys.stderr`` (looked up at call time). A stream
            with a file descriptor gets one ``os.write`` of the whole line (repeated for
            what a short write left); others one ``write`` call and a flush, under the lock.
    """
    target = sys.stderr if stream is None else stream
    line = " ".join(text.splitlines()) + "\n"
    with _LOCK:
        fd = _descriptor(target)
        if fd is None:
            target.write(line)
            target.flush()
            return
        target.flush()  # whatever an earlier print left buffered goes first
        data = line.encode(getattr(target, "encoding", None) or "utf-8", "replace")
        while data:
            written = os.write(fd, data)
            data = data[written:]


def line_writer(label: str, stream: TextIO | None = None) -> Callable[[str], None]:
    """A progress sink writing ``"{label}: {line}"`` lines with :func:`write_line`.

    Args:
        label: Names the resource, e.g. ``dicom import load``.
        stream: As :func:`write_line` takes it (default ``sys.stderr``).

    Returns:
        A function taking one line of text.
    """

    def emit(line: str) -> None:
        write_line(f"{label}: {line}", stream)

    return emit


def message_first(error: DicomTransferError) -> DicomTransferError:
    """``error``, set up so that a formatted traceback starts with its complete message.

    Its cause becomes a copy of itself that was never raised (so it has no traceback, and
    Python prints it first, as one line: ``dicom_transfer.errors.TYPE: MESSAGE``); what it
    was raised from (HTTP library errors) and its frames below the caller are dropped. Its
    type, attributes and message are unchanged.

    Args:
        error: A failure of ours, being handled.

    Returns:
        The same exception object, to raise.
    """
    summary = copy.copy(error)  # rebuilt from __reduce__: no traceback, no cause
    error.__cause__ = summary
    error.__suppress_context__ = True
    return error.with_traceback(None)


def reports_message_first(method: Callable[P, R]) -> Callable[P, R]:
    """Decorates a provider method: a failure of ours leaves it through :func:`message_first`."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DicomTransferError as error:
            raise message_first(error)  # noqa: B904 - the cause is set on purpose

    return wrapper
