"""The log of served requests, kept in memory for tests and ``GET /_emulator/requests``."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """One served request, as kept in the :class:`RequestLog`.

    Attributes:
        api: ``"healthcare"`` or ``"storage"``.
        method: HTTP method.
        path: Raw path without the query string.
        query: Raw query string (may be empty).
        status: Status code answered (0 when the connection was reset).
        duration_s: Time spent serving it.
        time: Wall-clock time (``time.time()``) when it arrived.
        fault: Description of the injected fault, if one applied.
        api_method: Discovery ``id`` of the API method the path routed to (e.g.
            ``storage.objects.insert``), None when no route matched.
        fault_scope: The request's ``x-emulator-fault-scope`` header, if any.
    """

    api: str
    method: str
    path: str
    query: str
    status: int
    duration_s: float
    time: float
    fault: str | None = None
    api_method: str | None = None
    fault_scope: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the record as a JSON-able dict (camelCase keys)."""
        return {
            "api": self.api,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "durationMs": round(self.duration_s * 1000, 3),
            "time": self.time,
            "fault": self.fault,
            "apiMethod": self.api_method,
            "faultScope": self.fault_scope,
        }


class RequestLog:
    """Thread-safe, bounded log of the requests both servers served.

    Tests use it to count what a client sent, e.g. how many imports were submitted::

        emu.requests.count("POST", r".*:import$")
    """

    def __init__(self, max_records: int = 100_000) -> None:
        """Create an empty log keeping at most ``max_records`` (oldest dropped first)."""
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        """Add a record."""
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """Return a snapshot of all records, oldest first."""
        with self._lock:
            return list(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        """Forget all records."""
        with self._lock:
            self._records.clear()

    def matching(
        self, method: str | None = None, path_regex: str | None = None, api: str | None = None
    ) -> list[RequestRecord]:
        """Return the records whose method equals ``method`` and path matches ``path_regex``.

        Args:
            method: HTTP method, or None for any.
            path_regex: Regex searched (``re.search``) in the raw path, or None for any.
            api: ``"healthcare"``/``"storage"``, or None for both.
        """
        pattern = re.compile(path_regex) if path_regex is not None else None
        return [
            r
            for r in self.records()
            if (method is None or r.method == method.upper())
            and (pattern is None or pattern.search(r.path))
            and (api is None or r.api == api)
        ]

    def count(
        self, method: str | None = None, path_regex: str | None = None, api: str | None = None
    ) -> int:
        """Return how many records :meth:`matching` would return."""
        return len(self.matching(method, path_regex, api))


__all__ = ["RequestLog", "RequestRecord"]
