"""A scripted HTTP transport and clock for driving the providers without a server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from googleapiclient.http import HttpMockSequence

STORE = "projects/demo-project/locations/us-central1/datasets/imaging/dicomStores/archive"
DATASET = "projects/demo-project/locations/us-central1/datasets/imaging"
OPERATION = f"{DATASET}/operations/1234567890"
LOGS = "https://console.cloud.google.com/logs/query?project=demo-project"


def reply(status: int, body: Any) -> tuple[dict[str, str], str]:
    """One scripted HTTP response."""
    return {"status": str(status)}, json.dumps(body)


def error(status: int, code: str, message: str) -> tuple[dict[str, str], str]:
    """A Google-shaped error response."""
    return reply(status, {"error": {"code": status, "message": message, "status": code}})


def operation(
    done: bool,
    success: int = 0,
    failure: int = 0,
    pending: int = 0,
    error_code: int | None = None,
    name: str = OPERATION,
) -> dict[str, Any]:
    """An operation resource as the Healthcare API returns it (counters as strings)."""
    counter = {
        k: str(v)
        for k, v in (("success", success), ("failure", failure), ("pending", pending))
        if v
    }
    body: dict[str, Any] = {
        "name": name,
        "metadata": {
            "@type": "type.googleapis.com/google.cloud.healthcare.v1.OperationMetadata",
            "apiMethodName": "google.cloud.healthcare.v1.dicom.DicomService.ImportDicomData",
            "createTime": "2026-11-24T10:00:00Z",
            "logsUrl": LOGS,
            "counter": counter,
        },
    }
    if done:
        body["done"] = True
        body["metadata"]["endTime"] = "2026-11-24T10:05:00Z"
        if error_code is not None:
            body["error"] = {"code": error_code, "message": f"errors logged, see {LOGS}"}
        else:
            body["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
    return body


class ScriptedHttp(HttpMockSequence):  # type: ignore[misc]
    """HttpMockSequence that fails loudly when the script runs out."""

    def request(self, uri: str, method: str = "GET", body: Any = None, **kwargs: Any) -> Any:
        if not self._iterable:
            raise AssertionError(f"unscripted request: {method} {uri}")
        return super().request(uri, method=method, body=body, **kwargs)

    def calls(self, method: str | None = None, contains: str = "") -> list[tuple[str, str]]:
        """(method, uri) of the requests made, optionally filtered."""
        return [
            (m, uri)
            for uri, m, _body, _headers in self.request_sequence
            if (method is None or m == method) and contains in uri
        ]

    def bodies(self, contains: str) -> list[dict[str, Any]]:
        """JSON bodies of the requests whose URI contains ``contains``."""
        return [
            json.loads(body)
            for uri, _m, body, _h in self.request_sequence
            if contains in uri and body
        ]


Install = Callable[[list[tuple[dict[str, str], str]]], ScriptedHttp]
