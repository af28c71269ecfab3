"""Where a call goes and with which credentials, following Google's client conventions.

Two ways to point a client elsewhere than Google's public endpoint, as in Google's own
libraries (python-storage, the Cloud SDK emulators):

* an **endpoint override** (the ``endpoint`` / ``storage_endpoint`` inputs, like
  ``client_options.api_endpoint``): a private (Private Service Connect), regional or VPC-SC
  endpoint of the real API. The caller's credentials are kept: Application Default
  Credentials, impersonating a service account when asked.
* an **emulator host** (``HEALTHCARE_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``): a local
  emulator, called with anonymous credentials (python-storage does the same for
  ``STORAGE_EMULATOR_HOST``).

An input endpoint wins over an emulator variable (the input is the more specific setting).

Failures to obtain or refresh credentials become
:class:`~dicom_transfer.errors.AuthenticationFailed`, naming the endpoint, where the credentials
came from and the fix; never a token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import google.auth
from google.auth import compute_engine, impersonated_credentials
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.exceptions import DefaultCredentialsError

from dicom_transfer.errors import AuthenticationFailed, CredentialsNotFound
from dicom_transfer.healthcare.variables import (
    HEALTHCARE_EMULATOR_ENV,
    STORAGE_EMULATOR_ENV,
    without_credentials,
)

__all__ = [
    "HEALTHCARE_EMULATOR_ENV",
    "STORAGE_EMULATOR_ENV",
    "Target",
    "authentication_failed",
    "load_credentials",
    "normalize_endpoint",
    "resolve_target",
]

ADC_FILE_ENV = "GOOGLE_APPLICATION_CREDENTIALS"

_FIX = (
    "Fix: run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS "
    "to a credentials file) on the machine running `pulumi up`, grant the identity access, "
    "or, for a local emulator, set {emulator_env} instead of an endpoint input"
)


def normalize_endpoint(value: str) -> str:
    """``host:port`` -> ``http://host:port/``; URLs keep their scheme; always a trailing ``/``.

    Args:
        value: An endpoint as given by a user or an environment variable.

    Returns:
        The endpoint URL ending in ``/``.
    """
    value = value.strip()
    if "://" not in value:
        value = f"http://{value}"
    return value if value.endswith("/") else f"{value}/"


_PUBLIC_ENDPOINTS = {
    HEALTHCARE_EMULATOR_ENV: ("endpoint", "https://healthcare.googleapis.com/"),
    STORAGE_EMULATOR_ENV: ("storage_endpoint", "https://storage.googleapis.com/"),
}
"""Per API (keyed by its emulator variable): its endpoint input and Google's public endpoint
(the ``rootUrl`` of the bundled ``healthcare`` and ``storage`` discovery documents)."""


@dataclass(frozen=True)
class Target:
    """One API's endpoint, whether it is an emulator, and where that came from.

    Attributes:
        endpoint: API root ending in ``/``; None = Google's public endpoint.
        emulator: True when declared through an ``*_EMULATOR_HOST`` variable (anonymous calls).
        variable: The API's emulator variable (``HEALTHCARE_EMULATOR_HOST`` or
            ``STORAGE_EMULATOR_HOST``): says which API this is.
    """

    endpoint: str | None = None
    emulator: bool = False
    variable: str = HEALTHCARE_EMULATOR_ENV

    @property
    def url(self) -> str:
        """The endpoint called: ``endpoint``, or Google's public one."""
        return self.endpoint or _PUBLIC_ENDPOINTS[self.variable][1]

    @property
    def shown_url(self) -> str:
        """:attr:`url` as messages show it: without any ``user:password@`` part."""
        return without_credentials(self.url)

    @property
    def origin(self) -> str:
        """Where the endpoint came from: the input, the emulator variable, or the default."""
        if self.endpoint is None:
            return "default"
        return (
            self.variable if self.emulator else f"the {_PUBLIC_ENDPOINTS[self.variable][0]} input"
        )

    def describe(self) -> str:
        """The endpoint as every message names it: ``URL (from ORIGIN)``, or for Google's
        public endpoint ``URL (default: no INPUT input, no VARIABLE)``."""
        if self.endpoint is None:
            endpoint_input = _PUBLIC_ENDPOINTS[self.variable][0]
            return f"{self.url} (default: no {endpoint_input} input, no {self.variable})"
        return f"{self.shown_url} (from {self.origin})"


def resolve_target(
    endpoint: str | None, emulator_env: str, environ: Mapping[str, str] | None = None
) -> Target:
    """The target of one API: the input endpoint, else the emulator variable, else Google's.

    Args:
        endpoint: The endpoint input (credentials kept), or None.
        emulator_env: Name of the emulator variable, e.g. ``HEALTHCARE_EMULATOR_HOST``.
        environ: Environment to read (default ``os.environ``).

    Returns:
        The resolved target.
    """
    if endpoint and endpoint.strip():
        return Target(normalize_endpoint(endpoint), False, emulator_env)
    env = os.environ if environ is None else environ
    emulator = (env.get(emulator_env) or "").strip()
    if emulator:
        return Target(normalize_endpoint(emulator), True, emulator_env)
    return Target(None, False, emulator_env)


def _adc_source(credentials: Credentials, environ: Mapping[str, str]) -> str:
    """Where ``google.auth.default`` found ``credentials`` (a path or the metadata server)."""
    explicit = environ.get(ADC_FILE_ENV)
    if explicit:
        return f"the ADC file {explicit} ({ADC_FILE_ENV})"
    if isinstance(credentials, compute_engine.Credentials):
        return "the metadata server (the attached service account)"
    try:  # google-auth's private helper: only a nicer message depends on it
        from google.auth import _cloud_sdk

        well_known: str = _cloud_sdk.get_application_default_credentials_path()  # type: ignore[no-untyped-call]
    except (ImportError, AttributeError, OSError):
        well_known = ""
    if well_known and os.path.exists(well_known):
        return f"the ADC file {well_known} (gcloud auth application-default login)"
    return f"Application Default Credentials ({type(credentials).__name__})"


def load_credentials(
    target: Target,
    scopes: Sequence[str],
    emulator_env: str,
    impersonate_service_account: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Credentials, str]:
    """Credentials for calls to ``target`` and a description of where they came from.

    Args:
        target: The endpoint; an emulator gets anonymous credentials.
        scopes: OAuth scopes to request.
        emulator_env: The emulator variable of this API, named in errors.
        impersonate_service_account: Service account email to impersonate with ADC, or None.
        environ: Environment to describe the source from (default ``os.environ``).

    Returns:
        ``(credentials, source)``; ``source`` names a file path or the metadata server, never
        a secret.

    Raises:
        CredentialsNotFound: No Application Default Credentials could be found.
    """
    if target.emulator:
        return AnonymousCredentials(), "anonymous credentials (emulator)"  # type: ignore[no-untyped-call]
    env = os.environ if environ is None else environ
    try:
        credentials, _project = google.auth.default(scopes=list(scopes))
    except DefaultCredentialsError as exc:
        raise CredentialsNotFound(
            endpoint=target.describe(),
            source="Application Default Credentials (none found)",
            reason=_reason(exc),
            hint=_FIX.format(emulator_env=emulator_env),
        ) from None
    source = _adc_source(credentials, env)
    if impersonate_service_account:
        credentials = impersonated_credentials.Credentials(  # type: ignore[no-untyped-call]
            source_credentials=credentials,
            target_principal=impersonate_service_account,
            target_scopes=list(scopes),
        )
        source = f"{source}, impersonating {impersonate_service_account}"
    return credentials, source


def _reason(error: BaseException) -> str:
    """The first line of an auth error, without the response payload google-auth appends."""
    first = error.args[0] if error.args else error
    text = str(first).strip().splitlines()[0] if str(first).strip() else type(error).__name__
    return text[:300].rstrip(". ")


def authentication_failed(
    target: Target,
    source: str,
    error: BaseException | str,
    emulator_env: str,
    http_status: int = 0,
) -> AuthenticationFailed:
    """The error for credentials that could not be refreshed or were rejected.

    Args:
        target: The endpoint that was called.
        source: Where the credentials came from (:func:`load_credentials`).
        error: What google-auth raised, or the server's message for an HTTP 401.
        emulator_env: The emulator variable of this API, named in the fix.
        http_status: 401 when the endpoint answered so; 0 (default) when it was not reached.

    Returns:
        The error to raise; its message holds no token.
    """
    reason = error if isinstance(error, str) else _reason(error)
    return AuthenticationFailed(
        endpoint=target.describe(),
        source=source,
        reason=reason,
        hint=_FIX.format(emulator_env=emulator_env),
        http_status=http_status,
    )
