"""Point Google's own clients at a running emulator: googleapiclient and the gcloud CLI."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import google.auth.credentials
from googleapiclient import discovery

__all__ = ["gcloud_environment", "healthcare_client"]

_NO_PROXY = "127.0.0.1,localhost"


def healthcare_client(healthcare_url: str, version: str = "v1") -> Any:
    """A Healthcare API client (bundled discovery document, anonymous) for ``healthcare_url``."""
    return discovery.build(
        "healthcare",
        version,
        credentials=google.auth.credentials.AnonymousCredentials(),  # type: ignore[no-untyped-call]
        static_discovery=True,
        client_options={"api_endpoint": healthcare_url.rstrip("/") + "/"},
        cache_discovery=False,
    )


def gcloud_environment(
    healthcare_url: str,
    storage_url: str,
    config_dir: Path,
    project: str,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment in which ``gcloud`` talks to the emulator only, without credentials.

    Args:
        healthcare_url: The emulator's Healthcare endpoint.
        storage_url: The emulator's Cloud Storage endpoint.
        config_dir: A private gcloud configuration directory (``CLOUDSDK_CONFIG``).
        project: The default project of gcloud commands.
        base: The environment to start from (default ``os.environ``); its ``CLOUDSDK_*``,
            ``GOOGLE_*`` and ``STORAGE_EMULATOR*`` variables are dropped.
    """
    env = {
        key: value
        for key, value in (os.environ if base is None else base).items()
        if not key.startswith(("CLOUDSDK_", "GOOGLE_", "STORAGE_EMULATOR"))
    }
    env.update(
        {
            "CLOUDSDK_CONFIG": str(config_dir),
            "CLOUDSDK_CORE_PROJECT": project,
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{storage_url.rstrip('/')}/storage/v1/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_HEALTHCARE": f"{healthcare_url.rstrip('/')}/",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            # One process, few threads, no composite uploads: what a small emulator serves best.
            "CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED": "false",
            "CLOUDSDK_STORAGE_PROCESS_COUNT": "1",
            "CLOUDSDK_STORAGE_THREAD_COUNT": "2",
            "NO_PROXY": _NO_PROXY,
            "no_proxy": _NO_PROXY,
        }
    )
    return env
