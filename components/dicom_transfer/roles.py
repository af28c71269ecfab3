"""The IAM roles each DICOM transfer job needs, and on what: one source for the grants
(:mod:`dicom_transfer.access`) and for the hints of PERMISSION_DENIED errors.

Source: the Cloud Healthcare API's DICOM import/export guide
(https://cloud.google.com/healthcare-api/docs/how-tos/dicom-import-export, "Setting Cloud
Storage permissions" and "Exporting DICOM metadata to BigQuery") as summed up in
``shared/reference/README.md``: the Cloud Healthcare Service Agent reads import sources and
filter files (objectViewer), writes export objects (objectAdmin: export overwrites, which
objectCreator cannot), and writes BigQuery tables (dataEditor on the dataset, jobUser on the
table's project; for a table in another project than the store's, both in that project: guide
https://cloud.google.com/healthcare-api/docs/how-tos/dicom-export-bigquery, "Exporting DICOM
metadata to a different project"). The identity running ``pulumi up`` needs
``healthcare.dicomStores.import``/``export`` on the store, objectCreator where it stages an
inline filter file and objectAdmin on a shared journal bucket. Pure: no I/O, no Pulumi import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dicom_transfer.specs.gcs import UriKind, parse_gcs_uri
from dicom_transfer.specs.requests import ExportSpec, TransferSpec

__all__ = [
    "BIGQUERY_DATASET_ROLE",
    "BIGQUERY_PROJECT_ROLE",
    "EXPORT_BUCKET_ROLE",
    "FILTER_BUCKET_ROLE",
    "FILTER_STAGING_ROLE",
    "IMPORT_BUCKET_ROLE",
    "SERVICE_AGENT_FORM",
    "Grant",
    "permission_hint",
    "service_agent_grants",
]

SERVICE_AGENT_FORM = "service-PROJECT_NUMBER@gcp-sa-healthcare.iam.gserviceaccount.com"
"""The Cloud Healthcare Service Agent of a project: who reads and writes a transfer's data."""

IMPORT_BUCKET_ROLE = "roles/storage.objectViewer"
"""Service agent, on an import source's bucket."""
FILTER_BUCKET_ROLE = "roles/storage.objectViewer"
"""Service agent, on the bucket of an export's filter file."""
EXPORT_BUCKET_ROLE = "roles/storage.objectAdmin"
"""Service agent, on a Cloud Storage export's bucket (objectCreator cannot overwrite)."""
BIGQUERY_DATASET_ROLE = "roles/bigquery.dataEditor"
"""Service agent, on a BigQuery export's dataset."""
BIGQUERY_PROJECT_ROLE = "roles/bigquery.jobUser"
"""Service agent, on the project of a BigQuery export's table."""
FILTER_STAGING_ROLE = "roles/storage.objectCreator"
"""The identity running Pulumi, on the bucket an inline filter file is staged in."""


@dataclass(frozen=True)
class Grant:
    """One role the service agent needs for a request.

    Attributes:
        role: e.g. ``roles/storage.objectViewer``.
        scope: What ``target`` is.
        target: Bucket name, BigQuery dataset (``PROJECT.DATASET``) or project ID.
        purpose: Why, in a few words (``import source``).
    """

    role: str
    scope: Literal["bucket", "BigQuery dataset", "project"]
    target: str
    purpose: str

    def describe(self) -> str:
        """``ROLE on SCOPE TARGET (PURPOSE)``."""
        return f"{self.role} on {self.scope} {self.target} ({self.purpose})"


def _bucket(uri: str, field: str, kind: UriKind) -> str:
    return parse_gcs_uri(uri, field, kind=kind).bucket


def service_agent_grants(spec: TransferSpec) -> list[Grant]:
    """The roles the Cloud Healthcare Service Agent needs to carry out ``spec``.

    Args:
        spec: A validated import or export request.

    Returns:
        The grants, source or destination first, then the filter file's.
    """
    if not isinstance(spec, ExportSpec):
        return [Grant(IMPORT_BUCKET_ROLE, "bucket", spec.source.bucket, "import source")]
    grants: list[Grant] = []
    if spec.gcs_destination is not None:
        bucket = _bucket(spec.gcs_destination.uri_prefix, "gcs_destination.uri_prefix", "prefix")
        purpose = "export destination; objectCreator cannot overwrite"
        grants.append(Grant(EXPORT_BUCKET_ROLE, "bucket", bucket, purpose))
    table = spec.bigquery_destination
    if table is not None and table.project is not None:
        dataset = f"{table.project}.{table.dataset}"
        grants.append(Grant(BIGQUERY_DATASET_ROLE, "BigQuery dataset", dataset, "export table"))
        grants.append(Grant(BIGQUERY_PROJECT_ROLE, "project", table.project, "export jobs"))
    if spec.filter_uri is not None:
        bucket = _bucket(spec.filter_uri, "filter_gcs_uri", "object")
        grants.append(Grant(FILTER_BUCKET_ROLE, "bucket", bucket, "filter file"))
    return grants


def permission_hint(spec: TransferSpec) -> str:
    """Which grant is most likely missing when ``spec`` meets PERMISSION_DENIED.

    Args:
        spec: The request that was denied.

    Returns:
        A sentence naming roles, buckets/datasets, the service agent and the caller's permission.
    """
    project = spec.store.project
    agent = f"{SERVICE_AGENT_FORM} (the Cloud Healthcare Service Agent of project {project})"
    needed = "; ".join(grant.describe() for grant in service_agent_grants(spec))
    return (
        f"Likely missing: {needed}, granted to {agent}. The caller also needs "
        f"healthcare.dicomStores.{spec.kind} on {spec.store.name}. Fresh grants can take 2-7 "
        "minutes to propagate: raise permission_retry_seconds to wait longer "
        "(ServiceAgentGrants makes the service-agent grants)"
    )
