"""``DicomPipeline``: grants, imports and exports of one DICOM store in one block.

Order is wired for the user: the service agent's grants before any transfer, and every
import before every export of the same store (an export should see what was imported).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi

from dicom_transfer.access import ServiceAgentGrants
from dicom_transfer.errors import InvalidSpec
from dicom_transfer.resources import DicomExport, DicomExportArgs, DicomImport, DicomImportArgs
from dicom_transfer.specs.gcs import UriKind, parse_gcs_uri
from dicom_transfer.specs.problems import unset_string
from dicom_transfer.specs.requests import TABLE_FORM, TABLE_RE, DicomStorePath

__all__ = ["DicomPipeline", "ExportStep", "ImportStep", "step_options"]


_STEP_FIELDS = frozenset({"name", "opts"})
"""Fields of a step that are no input of its transfer."""


@dataclass
class ImportStep(DicomImportArgs):
    """One import of the pipeline; its resource is named ``{pipeline}-{name}``.

    The other fields are :class:`~dicom_transfer.resources.DicomImportArgs` (keywords).
    """

    not_inputs: ClassVar[frozenset[str]] = _STEP_FIELDS
    name: str
    """Short name of the step."""
    opts: pulumi.ResourceOptions | None = field(default=None, kw_only=True)
    """Resource options of the step's transfer (see :func:`step_options`)."""


@dataclass
class ExportStep(DicomExportArgs):
    """One export of the pipeline; its resource is named ``{pipeline}-{name}``.

    The other fields are :class:`~dicom_transfer.resources.DicomExportArgs` (keywords).
    """

    not_inputs: ClassVar[frozenset[str]] = _STEP_FIELDS
    name: str
    """Short name of the step."""
    opts: pulumi.ResourceOptions | None = field(default=None, kw_only=True)
    """Resource options of the step's transfer (see :func:`step_options`)."""


def step_options(
    step: ImportStep | ExportStep,
    field_path: str,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> pulumi.ResourceOptions:
    """The options of a step's transfer: the step's own ``opts`` plus the pipeline's.

    A step's ``opts`` carry what belongs to one transfer: ``aliases`` (adopt a transfer that
    was declared at the top level or under another name, e.g. ``[pulumi.Alias(name="load",
    parent=pulumi.ROOT_STACK_RESOURCE)]`` for a top-level ``DicomImport("load")``: Pulumi's
    resource aliases), ``protect``, ``retain_on_delete``, ``ignore_changes``,
    ``replace_on_changes`` and the rest. The pipeline sets ``parent`` to itself and adds its
    ``depends_on`` to the step's (``pulumi.ResourceOptions.merge``: lists are joined).

    Args:
        step: The step.
        field_path: Where the step was given, for messages (``imports[0]``).
        parent: The pipeline.
        depends_on: What every transfer of the pipeline waits for.

    Raises:
        ValueError: The step's ``opts`` set ``parent`` (a step's transfer is the pipeline's
            child; use ``aliases`` to adopt a transfer parented elsewhere).
    """
    own = step.opts or pulumi.ResourceOptions()
    if own.parent is not None:
        raise ValueError(
            f"{field_path}.opts.parent: got {own.parent!r}; expected none: the transfer of "
            f"step {step.name!r} is the pipeline's child. To adopt a transfer declared with "
            "another parent, give aliases=[pulumi.Alias(name=OLD_NAME, parent=OLD_PARENT)]"
        )
    pipeline = pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on))
    return pulumi.ResourceOptions.merge(own, pipeline)


@dataclass
class _Buckets:
    """Bucket names (or Outputs of them) by the role they need, de-duplicated when literal."""

    imports: list[pulumi.Input[str]] = field(default_factory=list)
    exports: list[pulumi.Input[str]] = field(default_factory=list)
    filters: list[pulumi.Input[str]] = field(default_factory=list)
    datasets: list[pulumi.Input[str]] = field(default_factory=list)

    @staticmethod
    def add(target: list[pulumi.Input[str]], value: pulumi.Input[str]) -> None:
        if isinstance(value, str) and value in target:
            return
        target.append(value)


def _later(value: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.from_input(value)


def bucket_of(uri: pulumi.Input[str], field: str, kind: UriKind) -> pulumi.Input[str]:
    """The bucket of the ``gs://`` URI of input ``field`` (later when the URI is an Output).

    Raises:
        InvalidSpec: A malformed literal URI, naming ``field``.
    """
    if isinstance(uri, str):
        return parse_gcs_uri(uri, field, kind=kind).bucket
    return _later(uri).apply(lambda resolved: parse_gcs_uri(resolved, field, kind=kind).bucket)


def bigquery_dataset_of(
    table_uri: pulumi.Input[str | None], store_project: str | None
) -> pulumi.Input[str]:
    """The dataset of ``bq://PROJECT.DATASET.TABLE`` as :class:`ServiceAgentGrants` takes it.

    ``DATASET`` when the table is in ``store_project`` (the store's project, when known as a
    string), else ``PROJECT.DATASET``. A literal URI is parsed now (a malformed one raises
    here); an Output one when it resolves.

    Raises:
        InvalidSpec: A malformed literal ``table_uri``.
    """
    if isinstance(table_uri, str):
        return _dataset(table_uri, store_project)
    later: pulumi.Output[str | None] = pulumi.Output.from_input(table_uri)
    return later.apply(lambda resolved: _dataset(resolved, store_project))


def _dataset(table_uri: str | None, store_project: str | None) -> str:
    if not table_uri:  # only reachable through a destination given as an Output
        raise InvalidSpec(
            "bigquery_destination.table_uri",
            None,
            "a table URI when the destination is an Output and manage_grants is on (the "
            "dataset grant needs it); or manage_grants=False",
        )
    # The table URI rule of the specs: a domain-scoped project (example.com:p) has dots too.
    match = TABLE_RE.fullmatch(table_uri)
    if match is None:
        raise InvalidSpec("bigquery_destination.table_uri", table_uri, TABLE_FORM)
    if match.group("project") == store_project:
        return match.group("dataset")
    return f"{match.group('project')}.{match.group('dataset')}"


def _store_project(project: pulumi.Input[str], dicom_store: pulumi.Input[str]) -> str | None:
    """The store's project as a string: ``project``, else from a literal ``dicom_store``.

    Raises:
        InvalidSpec: Both are literal project IDs and differ (the grants would go to another
            project's service agent than the one the store uses).
    """
    in_store = DicomStorePath.parse(dicom_store).project if isinstance(dicom_store, str) else None
    if isinstance(project, str):
        # A project number and its ID name the same project: only two IDs can disagree.
        ids = in_store is not None and not in_store.isdigit() and not project.isdigit()
        if ids and in_store != project:
            raise InvalidSpec(
                "project", project, f"the DICOM store's project {in_store!r} (from dicom_store)"
            )
        return project
    return in_store


def _field(destination: pulumi.Input[Any] | None, key: str) -> pulumi.Input[str] | None:
    """``destination[key]``; an Output when the destination itself is one."""
    if destination is None:
        return None
    if isinstance(destination, Mapping):
        value: pulumi.Input[str] | None = destination.get(key)
        return value
    return pulumi.Output.from_input(destination).apply(lambda resolved: resolved.get(key))


def _buckets_needed(
    imports: Sequence[ImportStep], exports: Sequence[ExportStep], store_project: str | None
) -> _Buckets:
    buckets = _Buckets()
    for step in imports:
        buckets.add(buckets.imports, bucket_of(step.gcs_uri, "gcs_uri", "pattern"))
    for export in exports:
        prefix = _field(export.gcs_destination, "uri_prefix")
        if prefix is not None:
            buckets.add(buckets.exports, bucket_of(prefix, "gcs_destination.uri_prefix", "prefix"))
        table = _field(export.bigquery_destination, "table_uri")
        if not unset_string(table):  # as DicomExport reads it
            buckets.add(buckets.datasets, bigquery_dataset_of(table, store_project))
        if export.filter_gcs_uri is not None:
            buckets.add(
                buckets.filters, bucket_of(export.filter_gcs_uri, "filter_gcs_uri", "object")
            )
        if export.filter_staging_uri is not None:
            buckets.add(
                buckets.filters,
                bucket_of(export.filter_staging_uri, "filter_staging_uri", "prefix"),
            )
    return buckets


def _declared_dependencies(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    depends_on = opts.depends_on if opts is not None else None
    if depends_on is None:
        return []
    if isinstance(depends_on, pulumi.Resource):
        return [depends_on]
    if isinstance(depends_on, Sequence):
        return [dep for dep in depends_on if isinstance(dep, pulumi.Resource)]
    return []


class DicomPipeline(pulumi.ComponentResource):
    """Grants, imports and exports for one DICOM store, ordered for you.

    Attributes:
        grants: The :class:`ServiceAgentGrants`, or None with ``manage_grants=False``.
        imports: The :class:`DicomImport` resources by step name.
        exports: The :class:`DicomExport` resources by step name.
    """

    grants: ServiceAgentGrants | None
    imports: dict[str, DicomImport]
    exports: dict[str, DicomExport]

    def __init__(
        self,
        resource_name: str,
        *,
        project: pulumi.Input[str],
        dicom_store: pulumi.Input[str],
        imports: Sequence[ImportStep] = (),
        exports: Sequence[ExportStep] = (),
        manage_grants: bool = True,
        api_version: pulumi.Input[str] = "v1",
        endpoint: pulumi.Input[str] | None = None,
        storage_endpoint: pulumi.Input[str] | None = None,
        impersonate_service_account: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Declares the pipeline.

        Args:
            resource_name: The component's name; children are ``{name}-{step}``.
            project: The DICOM store's project ID.
            dicom_store: The store's full name (or a pulumi-gcp ``DicomStore.id``).
            imports: Import steps, run before any export (each with its own resource
                options in ``opts``, see :func:`step_options`).
            exports: Export steps, likewise.
            manage_grants: Grant the service agent what the steps need (pulumi-gcp). Turn
                off when the grants are managed elsewhere (or offline, against the emulator).
            api_version: ``v1`` or ``v1beta1`` for every transfer.
            endpoint: Healthcare API endpoint for every transfer (credentials are kept; see
                :class:`DicomImport`).
            storage_endpoint: Cloud Storage endpoint for every transfer, likewise.
            impersonate_service_account: Service account every transfer impersonates.
            opts: Options for the component.

        Raises:
            ValueError: Step names repeat, or a step's ``opts`` set ``parent``.
            InvalidSpec: A malformed literal URI or table of a step (naming the input).
        """
        super().__init__("dicom-transfer:index:DicomPipeline", resource_name, None, opts)
        names = [step.name for step in imports] + [step.name for step in exports]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"DicomPipeline {resource_name}: step names repeat: {duplicates}")

        self.grants = None
        # A component's depends_on does not reach the children it creates; pass it down so
        # transfers also wait for what the user said the pipeline waits for (its buckets).
        after: list[pulumi.Resource] = _declared_dependencies(opts)
        if manage_grants:
            needed = _buckets_needed(imports, exports, _store_project(project, dicom_store))
            self.grants = ServiceAgentGrants(
                f"{resource_name}-grants",
                project=project,
                import_buckets=needed.imports,
                export_buckets=needed.exports,
                filter_buckets=needed.filters,
                bigquery_datasets=needed.datasets,
                opts=pulumi.ResourceOptions(parent=self),
            )
            after = [*after, self.grants, *self.grants.members]

        common: Mapping[str, Any] = {
            "dicom_store": dicom_store,
            "api_version": api_version,
            "endpoint": endpoint,
            "storage_endpoint": storage_endpoint,
            "impersonate_service_account": impersonate_service_account,
        }
        self.imports = {
            step.name: DicomImport(
                f"{resource_name}-{step.name}",
                **step.inputs(),
                opts=step_options(step, f"imports[{index}]", self, after),
                **common,
            )
            for index, step in enumerate(imports)
        }
        export_after = [*after, *self.imports.values()]
        self.exports = {
            step.name: DicomExport(
                f"{resource_name}-{step.name}",
                **step.inputs(),
                opts=step_options(step, f"exports[{index}]", self, export_after),
                **common,
            )
            for index, step in enumerate(exports)
        }
        self.register_outputs(
            {
                "imports": {name: r.operation_name for name, r in self.imports.items()},
                "exports": {name: r.operation_name for name, r in self.exports.items()},
            }
        )
