"""Resource names and IDs of the emulated Healthcare API, and the Healthcare service agent.

A request's path variables become resource names here, each checked before it names any
state: dataset and DICOM store IDs by the rules of the discovery documents bundled with
google-api-python-client; project IDs by Resource Manager's rules (the documents' path
pattern is only ``projects/[^/]+``); locations by the form of Google Cloud region names
(lower-case letters, digits and ``-``), the emulator's choice, as the documents give none.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from dicom_transfer_emulator.errors import invalid_argument
from dicom_transfer_emulator.storage.port import fake_project_number

__all__ = [
    "check_id",
    "check_project",
    "dataset_name",
    "location_name",
    "project_number",
    "service_agent_email",
    "service_agent_member",
    "store_name",
]

#: A project ID (6-30 characters, optionally ``domain:`` scoped) or a project number
#: (Resource Manager's project ID rules).
_PROJECT_RE = re.compile(
    r"(?:[a-z][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20}"
)
_LOCATION_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")


def check_project(project: str) -> str:
    """``project`` unchanged, or 400 INVALID_ARGUMENT naming it."""
    if not _PROJECT_RE.fullmatch(project):
        raise invalid_argument(f"Invalid project ID {project!r}.")
    return project


def check_id(kind: str, value: str) -> str:
    """A dataset or DICOM store ID, by the discovery documents' create parameters.

    ``datasetId`` "must match the following regex: ``[\\p{L}\\p{N}_\\-\\.]{1,256}``";
    ``dicomStoreId`` is "Any string value up to 256 characters in length" (a ``/`` would
    split the resource name, so the emulator refuses it; ``:`` and other reserved
    characters must reach it percent-encoded). Neither may be ``.`` or ``..``.

    Args:
        kind: ``"dataset"`` or ``"DICOM store"`` (named in the error).
        value: the ID.

    Raises:
        ApiException: 400 INVALID_ARGUMENT naming the kind, the value and the allowed form.
    """
    if kind == "dataset":
        ok = all(ch in "_-." or unicodedata.category(ch)[0] in "LN" for ch in value)
        form = "1-256 Unicode letters and numbers, '_', '-' and '.'"
    else:
        ok = "/" not in value
        form = "1-256 characters other than '/'"
    if not ok or not 0 < len(value) <= 256 or value in (".", ".."):
        raise invalid_argument(f"Invalid {kind} ID {value!r}: expected {form} (not '.' or '..').")
    return value


def location_name(params: Mapping[str, str]) -> str:
    """``projects/P/locations/L`` of a request's path variables (400 when malformed)."""
    project = check_project(params["project"])
    if not _LOCATION_RE.fullmatch(params["location"]):
        raise invalid_argument(f"Invalid location {params['location']!r}.")
    return f"projects/{project}/locations/{params['location']}"


def dataset_name(params: Mapping[str, str]) -> str:
    """``projects/P/locations/L/datasets/D`` of a request's path variables."""
    return f"{location_name(params)}/datasets/{check_id('dataset', params['dataset'])}"


def store_name(params: Mapping[str, str]) -> str:
    """``…/datasets/D/dicomStores/S`` of a request's path variables."""
    return f"{dataset_name(params)}/dicomStores/{check_id('DICOM store', params['store'])}"


def project_number(project: str) -> str:
    """The emulator's fake, deterministic project number of a project id (12 digits).

    Derived from the SHA-256 of the id (the storage side uses the same rule for
    ``projectNumber`` of buckets); a project given as a number is its own number.
    """
    return project if project.isdigit() else fake_project_number(project)


def service_agent_email(project: str) -> str:
    """``service-{PROJECT_NUMBER}@gcp-sa-healthcare.iam.gserviceaccount.com`` of a project."""
    return f"service-{project_number(project)}@gcp-sa-healthcare.iam.gserviceaccount.com"


def service_agent_member(project: str) -> str:
    """The IAM member (``serviceAccount:…``) of a project's Healthcare service agent."""
    return f"serviceAccount:{service_agent_email(project)}"
