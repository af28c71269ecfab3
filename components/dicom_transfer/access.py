"""IAM grants that let the Cloud Healthcare Service Agent read and write the transfer's data.

The agent (``service-{PROJECT_NUMBER}@gcp-sa-healthcare.iam.gserviceaccount.com``) may not
exist until first needed, so the component asks pulumi-gcp's ``projects.ServiceIdentity`` for
it, then adds non-authoritative IAM members: it never removes anybody else's access.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from dicom_transfer.errors import InvalidSpec
from dicom_transfer.roles import (
    BIGQUERY_DATASET_ROLE,
    BIGQUERY_PROJECT_ROLE,
    EXPORT_BUCKET_ROLE,
    FILTER_BUCKET_ROLE,
    IMPORT_BUCKET_ROLE,
)
from dicom_transfer.specs.gcs import parse_gcs_uri
from dicom_transfer.specs.requests import BIGQUERY_DATASET_FORM, BIGQUERY_DATASET_RE

HEALTHCARE_SERVICE = "healthcare.googleapis.com"

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class _Grant:
    """One IAM member to add: on which kind of target, which role, named after what."""

    kind: str
    role: str
    target: pulumi.Input[str]
    label: str
    project: pulumi.Input[str] | None = None


def _check_bucket(bucket: pulumi.Input[str], field: str) -> None:
    """A literal bucket name must be one (not ``gs://…``); Outputs are the provider's."""
    if isinstance(bucket, str):
        parse_gcs_uri(f"gs://{bucket}", field, kind="prefix")
        if "/" in bucket:
            raise InvalidSpec(field, bucket, "a bucket name (no gs:// and no path)")


def _normalized_datasets(
    entries: Sequence[pulumi.Input[str]], project: pulumi.Input[str]
) -> list[pulumi.Input[str]]:
    """``entries`` with ``PROJECT.DATASET`` of ``project`` itself written ``DATASET``, and
    literal repeats dropped, so that one binding is never declared by two IAM members.

    Raises:
        InvalidSpec: A literal entry that is not ``DATASET`` or ``PROJECT.DATASET``.
    """
    out: list[pulumi.Input[str]] = []
    for entry in entries:
        if isinstance(entry, str):
            if BIGQUERY_DATASET_RE.fullmatch(entry) is None:
                raise InvalidSpec("bigquery_datasets", entry, BIGQUERY_DATASET_FORM)
            head, _, dataset = entry.rpartition(".")
            if head == project:
                entry = dataset
            if entry in out:
                continue
        out.append(entry)
    return out


def _split_dataset(
    entry: pulumi.Input[str], project: pulumi.Input[str]
) -> tuple[pulumi.Input[str], pulumi.Input[str]]:
    """(project, dataset ID) of ``DATASET`` (in ``project``) or ``PROJECT.DATASET``.

    Dataset IDs hold no dot (letters, digits, underscores), so the last dot splits (a
    domain-scoped ``example.com:p.DATASET`` too).
    """
    if isinstance(entry, str):
        head, _, dataset = entry.rpartition(".")
        return (head or project), dataset
    resolved = pulumi.Output.all(entry, project)
    return (
        resolved.apply(lambda pair: pair[0].rpartition(".")[0] or pair[1]),
        resolved.apply(lambda pair: pair[0].rpartition(".")[2]),
    )


def _labels(targets: Sequence[pulumi.Input[str]], prefix: str) -> list[str]:
    """Stable child-name suffixes: the literal name when known, else the position.

    A literal bucket name keeps its grant's name when the list is reordered; an Output has no
    value at construction time, so its position is the only stable handle.
    """
    labels = []
    for position, target in enumerate(targets):
        if isinstance(target, str):
            labels.append(f"{prefix}-{_NAME_UNSAFE.sub('-', target)}")
        else:
            labels.append(f"{prefix}-{position}")
    return labels


class ServiceAgentGrants(pulumi.ComponentResource):
    """Grants the Cloud Healthcare Service Agent exactly the roles DICOM transfers need
    (:mod:`dicom_transfer.roles`):

    - ``roles/storage.objectViewer`` on every import-source bucket and filter-file bucket;
    - ``roles/storage.objectAdmin`` on every Cloud Storage export bucket (objectCreator cannot
      overwrite, and export overwrites);
    - ``roles/bigquery.dataEditor`` on every BigQuery export dataset and
      ``roles/bigquery.jobUser`` on each dataset's project (``project``, or the project named in
      ``PROJECT.DATASET``: cross-project exports need both roles in the table's project).

    Make transfers ``depends_on`` this component (or its ``members``) so that the grants exist
    before the operation is submitted. IAM still takes minutes to propagate; the transfer
    resources retry PERMISSION_DENIED for a bounded window for that reason.

    Attributes:
        agent_email: The service agent's email address.
        agent_member: ``serviceAccount:{agent_email}``.
        members: The IAM member resources, for ``depends_on``.
    """

    agent_email: pulumi.Output[str]
    agent_member: pulumi.Output[str]
    members: list[pulumi.CustomResource]

    def __init__(
        self,
        resource_name: str,
        *,
        project: pulumi.Input[str],
        import_buckets: Sequence[pulumi.Input[str]] = (),
        export_buckets: Sequence[pulumi.Input[str]] = (),
        filter_buckets: Sequence[pulumi.Input[str]] = (),
        bigquery_datasets: Sequence[pulumi.Input[str]] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Declares the agent identity and its IAM members.

        Args:
            resource_name: The component's name; children are named ``{name}-{role}``.
            project: The project ID of the DICOM store.
            import_buckets: Bucket names the agent must read objects from.
            export_buckets: Bucket names the agent must write (and overwrite) objects in.
            filter_buckets: Bucket names holding export filter files.
            bigquery_datasets: BigQuery datasets the agent exports to: ``DATASET`` (in
                ``project``) or ``PROJECT.DATASET`` (another project; a domain-scoped
                ``example.com:p.DATASET`` too); ``project``'s own datasets may be written
                either way, and repeats count once. The job-user grant goes to each project
                once. Two limits, as an Output has no value when resources are declared: a
                dataset given as an Output gets its dataset grant in the project it resolves
                to but its job-user grant on ``project`` (grant ``roles/bigquery.jobUser``
                in another project yourself then); and with ``project`` an Output, write its
                own datasets as ``DATASET``, or its job-user binding is declared twice.
                Likewise a literal and an Output resolving to the same bucket or dataset are
                two members of one binding: give each target one way.
            opts: Options for the component.

        Raises:
            InvalidSpec: A literal bucket that is not a bucket name (``gs://…``, a path) or a
                literal dataset that is not ``DATASET`` / ``PROJECT.DATASET``.
            ValueError: Two grants would share a child name (see the message).
        """
        super().__init__("dicom-transfer:index:ServiceAgentGrants", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        identity = gcp.projects.ServiceIdentity(
            f"{resource_name}-agent", project=project, service=HEALTHCARE_SERVICE, opts=child
        )
        self.agent_email = identity.email
        self.agent_member = identity.email.apply(lambda email: f"serviceAccount:{email}")

        grants: list[_Grant] = []
        granted: set[tuple[str, str]] = set()  # (role, literal bucket): one member per binding
        for kind, role, targets in (
            ("import", IMPORT_BUCKET_ROLE, import_buckets),
            ("export", EXPORT_BUCKET_ROLE, export_buckets),
            ("filter", FILTER_BUCKET_ROLE, filter_buckets),
        ):
            for label, bucket in zip(_labels(targets, kind), targets, strict=True):
                _check_bucket(bucket, f"{kind}_buckets")
                if isinstance(bucket, str):
                    if (role, bucket) in granted:
                        continue  # e.g. an import source's bucket that also holds filter files
                    granted.add((role, bucket))
                grants.append(_Grant("bucket", role, bucket, label))
        datasets = _normalized_datasets(bigquery_datasets, project)
        job_projects: dict[str, pulumi.Input[str]] = {}  # child-name suffix -> project
        for label, entry in zip(_labels(datasets, "bq"), datasets, strict=True):
            dataset_project, dataset = _split_dataset(entry, project)
            grants.append(_Grant("dataset", BIGQUERY_DATASET_ROLE, dataset, label, dataset_project))
            # Another project is named only by a literal PROJECT.DATASET; an Output entry's
            # job-user grant stays on ``project`` (an Output cannot name a resource).
            other = isinstance(entry, str) and "." in entry
            key = f"-{_NAME_UNSAFE.sub('-', str(dataset_project))}" if other else ""
            job_projects.setdefault(key, dataset_project if other else project)

        labels = [grant.label for grant in grants]
        clashing = sorted({label for label in labels if labels.count(label) > 1})
        if clashing:
            # A literal named like an Output's position ("bq-1" for dataset "1" and the
            # second entry): two resources would share a URN.
            raise ValueError(
                f"ServiceAgentGrants {resource_name}: grants {clashing} would share a name; "
                "give those buckets or datasets as literal strings, or in another order"
            )
        self.members = [self._member(resource_name, grant, project, child) for grant in grants]
        for suffix, job_project in job_projects.items():
            self.members.append(
                gcp.projects.IAMMember(
                    f"{resource_name}-bq-jobuser{suffix}",
                    project=job_project,
                    role=BIGQUERY_PROJECT_ROLE,
                    member=self.agent_member,
                    opts=child,
                )
            )
        self.register_outputs({"agent_email": self.agent_email, "agent_member": self.agent_member})

    def _member(
        self,
        resource_name: str,
        grant: _Grant,
        project: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
    ) -> pulumi.CustomResource:
        """Declares one non-authoritative IAM member for ``grant``."""
        name = f"{resource_name}-{grant.label}"
        if grant.kind == "dataset":
            return gcp.bigquery.DatasetIamMember(
                name,
                project=grant.project if grant.project is not None else project,
                dataset_id=grant.target,
                role=grant.role,
                member=self.agent_member,
                opts=opts,
            )
        return gcp.storage.BucketIAMMember(
            name, bucket=grant.target, role=grant.role, member=self.agent_member, opts=opts
        )
