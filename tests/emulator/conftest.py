"""Fixtures for the emulator tests.

* ``emulator`` (from ``tests/conftest.py``): the in-process emulator, reset
  before every test, so tests see empty state, no faults and an empty request log.
* ``storage_client``: a ``google.cloud.storage.Client`` pointed at it (anonymous).
* ``http``: a tiny raw HTTP client (see :func:`http_call`).
* ``gcloud_env``: environment for running the ``gcloud`` CLI against it (isolated config
  directory, no credentials, endpoint overrides for Cloud Storage and Healthcare).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from dicom_transfer_emulator.app import Emulator
from dicom_transfer_emulator.testing.clients import gcloud_environment

PROJECT = "test-project"


@pytest.fixture
def storage_client(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> object:
    """A google-cloud-storage client talking to the emulator with anonymous credentials."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.storage_url)
    return storage.Client(project=PROJECT, credentials=AnonymousCredentials())


@pytest.fixture(scope="session")
def gcloud_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gcloud configuration directory private to this test session."""
    return tmp_path_factory.mktemp("gcloud-config")


@pytest.fixture
def gcloud_env(emulator: Emulator, gcloud_config_dir: Path) -> dict[str, str]:
    """Environment for ``subprocess.run(["gcloud", ...], env=gcloud_env)`` against the
    emulator. Fails (never skips) when gcloud is not installed."""
    assert shutil.which("gcloud"), "the gcloud CLI is required for these tests"
    return gcloud_environment(
        emulator.healthcare_url, emulator.storage_url, gcloud_config_dir, PROJECT
    )


class HttpResult:
    """Status, headers (lower-case names) and body of one raw HTTP exchange."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"HttpResult({self.status}, {self.body[:200]!r})"


def http_call(
    base_url: str,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> HttpResult:
    """Send one request with http.client (no retries, path sent verbatim).

    Args:
        base_url: ``http://host:port``.
        method: HTTP method.
        path: Raw path and query, sent as is.
        body: Bytes, or a dict sent as JSON.
        headers: Extra headers.
        timeout: Socket timeout.
    """
    parts = urlsplit(base_url)
    conn = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    all_headers = dict(headers or {})
    if isinstance(body, dict):
        all_headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        payload = response.read()
        result_headers = {k.lower(): v for k, v in response.getheaders()}
        return HttpResult(response.status, result_headers, payload)
    finally:
        conn.close()


HttpCall = Callable[..., HttpResult]


@pytest.fixture
def http() -> HttpCall:
    """The :func:`http_call` helper, for tests that want it as a fixture."""
    return http_call
