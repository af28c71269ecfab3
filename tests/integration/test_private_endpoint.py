"""A private (Private Service Connect) endpoint keeps the caller's credentials.

A local stand-in plays three Google services at once: the OAuth token endpoint named by the ADC
file (``token_uri``), the IAM Credentials ``generateAccessToken`` method (impersonation), and the
Healthcare API at the endpoint given as the ``endpoint`` input. The import provider runs its
production path (ADC loaded by google-auth from the file, googleapiclient over HTTP).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import google.auth.iam
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dicom_transfer import AuthenticationFailed, DicomImportProvider

STORE = "projects/my-project/locations/us-central1/datasets/d/dicomStores/s"
OPERATION = "projects/my-project/locations/us-central1/datasets/d/operations/42"
ADC_TOKEN = "adc-access-token-1"
IMPERSONATED_TOKEN = "impersonated-access-token-2"
SERVICE_ACCOUNT = "deployer@p.iam.gserviceaccount.com"


@dataclass
class StandIn:
    """What the stand-in saw, and whether its token endpoint refuses the refresh token."""

    url: str = ""
    refuse_refresh: bool = False
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    """(method, path, Authorization header) of every request."""

    def authorization_of(self, suffix: str) -> list[str]:
        return [auth for _m, path, auth in self.seen if path.split("?")[0].endswith(suffix)]


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            return

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            state.seen.append((self.command, self.path, self.headers.get("Authorization", "")))

        def do_POST(self) -> None:
            self._record()
            if self.path == "/token":
                if state.refuse_refresh:
                    self._answer(400, {"error": "invalid_grant", "error_description": "Bad"})
                else:
                    self._answer(
                        200,
                        {"access_token": ADC_TOKEN, "expires_in": 3600, "token_type": "Bearer"},
                    )
            elif self.path.endswith(":generateAccessToken"):
                if self.headers.get("Authorization") != f"Bearer {ADC_TOKEN}":
                    self._answer(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
                else:
                    self._answer(
                        200,
                        {"accessToken": IMPERSONATED_TOKEN, "expireTime": "2099-01-01T00:00:00Z"},
                    )
            elif self.path.split("?")[0] == f"/v1/{STORE}:import":
                self._answer(200, {"name": OPERATION})
            else:
                self._answer(404, {"error": {"code": 404, "status": "NOT_FOUND"}})

        def do_GET(self) -> None:
            self._record()
            if self.path.startswith(f"/v1/{OPERATION}"):
                self._answer(
                    200,
                    {
                        "name": OPERATION,
                        "done": True,
                        "metadata": {
                            "apiMethodName": "google.cloud.healthcare.v1.dicom.DicomService."
                            "ImportDicomData",
                            "createTime": "2026-11-30T10:00:00Z",
                            "endTime": "2026-11-30T10:00:01Z",
                            "counter": {"success": "3"},
                        },
                        "response": {},
                    },
                )
            else:
                self._answer(404, {"error": {"code": 404, "status": "NOT_FOUND"}})

    return Handler


@pytest.fixture
def stand_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal_dir: Path
) -> Iterator[StandIn]:
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    # A service-account key file: google-auth honours its token_uri (it ignores the one of
    # authorized_user files), so the OAuth exchange reaches the stand-in.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    adc = tmp_path / "application_default_credentials.json"
    adc.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "my-project",
                "private_key_id": "key-1",
                "private_key": pem,
                "client_email": "runner@my-project.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{state.url}token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    for name in ("HEALTHCARE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "DICOM_TRANSFER_JOURNAL"):
        monkeypatch.delenv(name, raising=False)
    # google-auth has no per-call IAM endpoint for ADC-based impersonation; point its
    # generateAccessToken URL at the stand-in (the real one is iamcredentials.googleapis.com).
    monkeypatch.setattr(
        google.auth.iam,
        "_IAM_ENDPOINT",
        f"{state.url}v1/projects/-/serviceAccounts/{{}}:generateAccessToken",
    )
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def import_props(stand_in: StandIn, **extra: Any) -> dict[str, Any]:
    provider = DicomImportProvider()
    checked = provider.check(
        {},
        {
            "resource_name": "load",
            "dicom_store": STORE,
            "gcs_uri": "gs://raw/incoming/**.dcm",
            "endpoint": stand_in.url,
            "timeout_seconds": 30,
            **extra,
        },
    )
    assert not checked.failures, checked.failures
    return dict(checked.inputs)


def test_import_through_a_private_endpoint_carries_the_adc_token(stand_in: StandIn) -> None:
    result = DicomImportProvider().create(import_props(stand_in))

    assert result.id == OPERATION
    assert result.outs["success_count"] == 3
    assert stand_in.authorization_of(f"{STORE}:import") == [f"Bearer {ADC_TOKEN}"]
    assert set(stand_in.authorization_of(OPERATION)) == {f"Bearer {ADC_TOKEN}"}
    assert stand_in.authorization_of(":generateAccessToken") == []


def test_impersonation_is_used_when_set(stand_in: StandIn) -> None:
    props = import_props(stand_in, impersonate_service_account=SERVICE_ACCOUNT)
    DicomImportProvider().create(props)

    impersonation = [
        path for _method, path, _auth in stand_in.seen if path.endswith(":generateAccessToken")
    ]
    assert impersonation == [
        f"/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken"
    ]
    assert stand_in.authorization_of(f"{STORE}:import") == [f"Bearer {IMPERSONATED_TOKEN}"]


def test_an_auth_failure_names_the_endpoint_and_the_source_without_a_token(
    stand_in: StandIn,
) -> None:
    stand_in.refuse_refresh = True
    with pytest.raises(AuthenticationFailed) as raised:
        DicomImportProvider().create(import_props(stand_in))

    message = str(raised.value)
    assert stand_in.url in message
    assert (
        "GOOGLE_APPLICATION_CREDENTIALS" in message
        and "application_default_credentials.json" in message
    )
    assert "gcloud auth application-default login" in message
    for secret in ("PRIVATE KEY", "assertion", ADC_TOKEN):
        assert secret not in message
    # The import was never sent without credentials.
    assert stand_in.authorization_of(f"{STORE}:import") == []
