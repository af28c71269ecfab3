"""Endpoints and credentials: endpoint inputs keep ADC, ``*_EMULATOR_HOST`` means anonymous."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from dicom_transfer.errors import CredentialsNotFound, Transient
from dicom_transfer.healthcare.client import SCOPES, ApiConfig, unreachable
from dicom_transfer.healthcare.credentials import (
    HEALTHCARE_EMULATOR_ENV,
    STORAGE_EMULATOR_ENV,
    Target,
    load_credentials,
    normalize_endpoint,
    resolve_target,
)
from google.auth.credentials import AnonymousCredentials


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080/"),
        ("localhost:9023/", "http://localhost:9023/"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
        ("https://healthcare.example.com/", "https://healthcare.example.com/"),
    ],
)
def test_normalize_endpoint(given: str, expected: str) -> None:
    assert normalize_endpoint(given) == expected


def test_emulator_variables_declare_emulators() -> None:
    env = {HEALTHCARE_EMULATOR_ENV: "127.0.0.1:8080", STORAGE_EMULATOR_ENV: "http://127.0.0.1:9023"}
    config = ApiConfig.from_env(environ=env)
    assert config.healthcare == Target("http://127.0.0.1:8080/", emulator=True)
    assert config.storage == Target("http://127.0.0.1:9023/", True, STORAGE_EMULATOR_ENV)


def test_endpoint_inputs_win_and_are_not_emulators() -> None:
    env = {HEALTHCARE_EMULATOR_ENV: "127.0.0.1:8080", STORAGE_EMULATOR_ENV: "127.0.0.1:9023"}
    config = ApiConfig.from_env(
        endpoint="https://healthcare-myendpoint.p.googleapis.com",
        storage_endpoint="https://storage-myendpoint.p.googleapis.com/",
        environ=env,
    )
    assert config.healthcare == Target("https://healthcare-myendpoint.p.googleapis.com/", False)
    assert config.storage == Target(
        "https://storage-myendpoint.p.googleapis.com/", False, STORAGE_EMULATOR_ENV
    )


def test_nothing_set_means_google_with_adc() -> None:
    assert ApiConfig.from_env(environ={}) == ApiConfig()
    assert resolve_target(None, HEALTHCARE_EMULATOR_ENV, {}) == Target(None, emulator=False)
    assert resolve_target("  ", HEALTHCARE_EMULATOR_ENV, {}) == Target(None, emulator=False)


def test_emulators_get_anonymous_credentials_without_looking_for_adc(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An ADC file that would fail to load proves it was not consulted.
    broken = tmp_path / "adc.json"
    broken.write_text("{not json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(broken))
    credentials, source = load_credentials(
        Target("http://127.0.0.1:1/", emulator=True), SCOPES, HEALTHCARE_EMULATOR_ENV
    )
    assert isinstance(credentials, AnonymousCredentials)
    assert "emulator" in source


def authorized_user_file(path: Path, token_uri: str = "http://127.0.0.1:9/token") -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "client-id.apps.example",
                "client_secret": "not-a-real-secret",
                "refresh_token": "refresh-token-value",
                "token_uri": token_uri,
            }
        )
    )
    return path


def test_endpoint_override_keeps_adc_and_names_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    adc = authorized_user_file(tmp_path / "adc.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    target = Target("https://healthcare-myendpoint.p.googleapis.com/", emulator=False)
    credentials, source = load_credentials(target, SCOPES, HEALTHCARE_EMULATOR_ENV)
    assert type(credentials).__module__ == "google.oauth2.credentials"
    assert source == f"the ADC file {adc} (GOOGLE_APPLICATION_CREDENTIALS)"


def test_impersonation_wraps_adc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(authorized_user_file(tmp_path / "a")))
    credentials, source = load_credentials(
        Target("https://healthcare-myendpoint.p.googleapis.com/"),
        SCOPES,
        HEALTHCARE_EMULATOR_ENV,
        impersonate_service_account="deployer@p.iam.gserviceaccount.com",
    )
    assert type(credentials).__module__ == "google.auth.impersonated_credentials"
    assert credentials.service_account_email == "deployer@p.iam.gserviceaccount.com"
    assert source.endswith("impersonating deployer@p.iam.gserviceaccount.com")


def test_no_adc_fails_naming_the_endpoint_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(CredentialsNotFound) as raised:
        load_credentials(
            Target("https://healthcare-myendpoint.p.googleapis.com/"),
            SCOPES,
            HEALTHCARE_EMULATOR_ENV,
        )
    message = str(raised.value)
    assert message.startswith(
        "No credentials found for calls to https://healthcare-myendpoint.p.googleapis.com/ "
        "(from the endpoint input): "
    ), message
    assert "gcloud auth application-default login" in message
    assert HEALTHCARE_EMULATOR_ENV in message
    # No request was sent, so no server said 401.
    assert raised.value.http_status == 0
    assert "401" not in message
    again = pickle.loads(pickle.dumps(raised.value))
    assert str(again) == message and again.endpoint == raised.value.endpoint
    assert isinstance(again, CredentialsNotFound) and again.http_status == 0


@pytest.mark.parametrize(
    ("endpoint", "environ", "variable", "described"),
    [
        (
            None,
            {},
            HEALTHCARE_EMULATOR_ENV,
            "https://healthcare.googleapis.com/ (default: no endpoint input, no "
            "HEALTHCARE_EMULATOR_HOST)",
        ),
        (
            None,
            {},
            STORAGE_EMULATOR_ENV,
            "https://storage.googleapis.com/ (default: no storage_endpoint input, no "
            "STORAGE_EMULATOR_HOST)",
        ),
        (
            None,
            {HEALTHCARE_EMULATOR_ENV: "127.0.0.1:8080"},
            HEALTHCARE_EMULATOR_ENV,
            "http://127.0.0.1:8080/ (from HEALTHCARE_EMULATOR_HOST)",
        ),
        (
            "https://storage-x.p.googleapis.com",
            {STORAGE_EMULATOR_ENV: "127.0.0.1:9023"},
            STORAGE_EMULATOR_ENV,
            "https://storage-x.p.googleapis.com/ (from the storage_endpoint input)",
        ),
        (
            "https://healthcare-x.p.googleapis.com",
            {},
            HEALTHCARE_EMULATOR_ENV,
            "https://healthcare-x.p.googleapis.com/ (from the endpoint input)",
        ),
    ],
)
def test_a_target_names_its_url_and_where_it_came_from(
    endpoint: str | None, environ: dict[str, str], variable: str, described: str
) -> None:
    assert resolve_target(endpoint, variable, environ).describe() == described


@pytest.mark.parametrize("emulator", [False, True])
def test_an_endpoint_with_a_password_is_named_without_it(emulator: bool) -> None:
    # Every progress line and error names the endpoint: never its user:password part.
    target = Target("https://ops:s3cret@psc.example.com:8443/", emulator=emulator)
    assert target.describe().startswith("https://psc.example.com:8443/ (from ")
    transient = Transient(0, "UNAVAILABLE", "connection failed", request_sent=False)
    assert "s3cret" not in str(unreachable(target, transient))
    assert "ops" not in target.describe()
