"""Provider output lines, each written whole.

The engine shows a dynamic provider's stderr lines as info messages. ``print(text,
file=sys.stderr)`` is two writes (the text, then ``"\\n"``), so transfers running in the
provider's worker threads interleave them and the engine shows two transfers' lines merged
into one. :func:`write_line` makes one line one ``os.write`` call of ``line + "\\n"`` on the
file descriptor, under a lock: concurrent writers' lines come out whole and in some order.

Multi-line text (a message with newlines) is folded into one line first: the engine shows
each stderr line as its own message, and a line is the unit that must stay whole.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

__all__ = ["line_writer", "write_line"]

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
