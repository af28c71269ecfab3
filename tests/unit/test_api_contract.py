"""The library against the API's own contract: the bundled ``healthcare`` discovery documents.

For ``ImportDicomDataRequest`` and ``ExportDicomDataRequest`` of v1 and v1beta1, every leaf
field (a scalar, or a ``$ref`` to an object schema without properties such as ``SchemaJSON``)
must be settable from an input of ours with the field's standard name; every documented value
of it (enum values; the MIME types listed in ``gcsDestination.mimeType``'s description) must
be accepted and reach the request body; values the API does not document must be rejected.
The library's own tables (MIME types, enums) are regenerated from the documents here, so a
newer google-api-python-client with a changed API fails these tests instead of drifting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from dicom_transfer.specs.mime_types import (
    DICOMWEB_DEFAULT_MIME_TYPES,
    DOCUMENTED_MIME_TYPES,
    EXPORT_MIME_TYPES,
    EXTENSIONS,
)
from dicom_transfer.specs.props import (
    export_problems,
    export_spec_from_props,
    import_problems,
    import_spec_from_props,
)
from dicom_transfer.specs.requests import STORAGE_CLASSES, WRITE_DISPOSITIONS
from googleapiclient.discovery_cache import get_static_doc

VERSIONS = ("v1", "v1beta1")
STORE = "projects/my-project/locations/us-central1/datasets/ds-1/dicomStores/store_1"
REQUESTS = {"import": "ImportDicomDataRequest", "export": "ExportDicomDataRequest"}


def discovery(version: str) -> dict[str, Any]:
    text = get_static_doc("healthcare", version)
    assert text is not None, f"google-api-python-client bundles no healthcare {version} document"
    doc: dict[str, Any] = json.loads(text)
    return doc


@dataclass(frozen=True)
class Leaf:
    """One leaf field of a request: its camelCase path and its discovery schema."""

    path: tuple[str, ...]
    schema: dict[str, Any]
    empty_message: bool

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def leaves(doc: dict[str, Any], schema_name: str, prefix: tuple[str, ...] = ()) -> Iterator[Leaf]:
    """Every leaf under ``schema_name``, depth first."""
    for name, prop in doc["schemas"][schema_name].get("properties", {}).items():
        path = (*prefix, name)
        target = prop.get("items", prop)
        ref = target.get("$ref")
        if ref is not None and doc["schemas"][ref].get("properties"):
            yield from leaves(doc, ref, path)
        else:
            yield Leaf(path, prop, empty_message=ref is not None)


# --- our inputs for each leaf ------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """How a leaf is set from our inputs.

    Attributes:
        path: Input path: a top-level prop, or ``destination.key`` inside a nested dict.
        sample: A valid value (for leaves without an enum or documented list).
        expected: What the body holds for ``sample`` (default: ``sample``).
        with_props: Other inputs the leaf needs (merged into the nested dict or the props).
    """

    path: str
    sample: Any = None
    expected: Any = None
    with_props: dict[str, Any] = field(default_factory=dict)


# The top-level flattenings (``gcsSource.uri`` -> ``gcs_uri``) and the names of the empty
# messages (``changeDataCaptureConfig`` -> ``change_data_capture``) are our choice; inside
# ``gcs_destination`` / ``bigquery_destination`` the key is the API field in snake_case
# (checked by test_nested_inputs_use_the_standard_field_names).
INPUTS: dict[str, dict[str, Input]] = {
    "import": {
        "gcsSource.uri": Input("gcs_uri", "gs://raw-bucket/in/**.dcm"),
        "blobStorageSettings.blobStorageClass": Input("blob_storage_class"),
    },
    "export": {
        "gcsDestination.uriPrefix": Input("gcs_destination.uri_prefix", "gs://out-bucket/x"),
        "gcsDestination.mimeType": Input("gcs_destination.mime_type"),
        "bigqueryDestination.tableUri": Input(
            "bigquery_destination.table_uri", "bq://my-project.ds.t"
        ),
        "bigqueryDestination.force": Input("bigquery_destination.force", True),
        "bigqueryDestination.includeSourceStore": Input(
            "bigquery_destination.include_source_store", True
        ),
        "bigqueryDestination.writeDisposition": Input("bigquery_destination.write_disposition"),
        "bigqueryDestination.schemaFlattened": Input(
            "bigquery_destination.schema_flattened", True, {}
        ),
        "bigqueryDestination.schemaJson": Input("bigquery_destination.schema_json", True, {}),
        "bigqueryDestination.changeDataCaptureConfig": Input(
            "bigquery_destination.change_data_capture",
            True,
            {},
            with_props={"schema_json": True},
        ),
        "filterConfig.resourcePathsGcsUri": Input(
            "filter_gcs_uri", "gs://filters-bucket/filter.txt"
        ),
    },
}
BASE_DESTINATIONS = {
    "gcs_destination": {"uri_prefix": "gs://out-bucket/x"},
    "bigquery_destination": {"table_uri": "bq://my-project.ds.t"},
}


def props_setting(kind: str, version: str, entry: Input, value: Any) -> dict[str, Any]:
    """Valid props of ``kind`` in which ``entry`` is set to ``value``."""
    props: dict[str, Any] = {"dicom_store": STORE, "api_version": version}
    if kind == "import":
        props["gcs_uri"] = "gs://raw-bucket/in/**.dcm"
    head, _, key = entry.path.partition(".")
    if not key:
        if kind == "export":
            props["gcs_destination"] = dict(BASE_DESTINATIONS["gcs_destination"])
        props[head] = value
        props.update(entry.with_props)
        return props
    props[head] = {**BASE_DESTINATIONS[head], **entry.with_props, key: value}
    return props


def body_of(kind: str, props: dict[str, Any]) -> dict[str, Any]:
    """Our validation, then our body builder."""
    problems = import_problems(props) if kind == "import" else export_problems(props)
    assert problems == [], f"{props}: {problems}"
    spec = import_spec_from_props(props) if kind == "import" else export_spec_from_props(props)
    return spec.request_body()


def unknown_fields(doc: dict[str, Any], schema_name: str, body: dict[str, Any]) -> list[str]:
    """Body keys the discovery schema does not have (nested objects included)."""
    properties = doc["schemas"][schema_name].get("properties", {})
    out = []
    for key, value in body.items():
        if key not in properties:
            out.append(key)
        elif isinstance(value, dict):
            ref = properties[key]["$ref"]
            out += [f"{key}.{inner}" for inner in unknown_fields(doc, ref, value)]
    return out


def problems_of(kind: str, props: dict[str, Any]) -> list[Any]:
    return import_problems(props) if kind == "import" else export_problems(props)


def at(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = body
    for name in path:
        assert isinstance(node, dict) and name in node, f"{'.'.join(path)} missing in {body}"
        node = node[name]
    return node


def all_leaves(version: str) -> list[tuple[str, Leaf]]:
    doc = discovery(version)
    return [(kind, leaf) for kind, ref in REQUESTS.items() for leaf in leaves(doc, ref)]


def leaf_cases() -> list[Any]:
    return [
        pytest.param(version, kind, leaf, id=f"{version}-{kind}-{leaf.dotted}")
        for version in VERSIONS
        for kind, leaf in all_leaves(version)
    ]


# --- the mime list of the discovery documents --------------------------------------------------


def documented_mime_types(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(value, description, extension)`` parsed from ``gcsDestination.mimeType``'s text."""
    [schema] = [s for name, s in doc["schemas"].items() if name.endswith("DicomGcsDestination")]
    text = schema["properties"]["mimeType"]["description"]
    listed = text.split("the following are supported: ", 1)[1]
    listed, extensions_text = listed.split(" The following extensions are used for output files:")
    extensions_text = extensions_text.split(" If unspecified", 1)[0]
    extensions = {
        media: "" if ext == "no extension" else ext
        for media, ext in re.findall(r"- (\S+) -> (\.\w+|no extension)", extensions_text)
    }
    out = []
    for item in listed.split(" - "):
        value, _, description = item.strip().removeprefix("- ").partition(" (")
        description = description[:-1] if description.endswith(")") else description
        out.append((value, description, extensions[value.partition(";")[0]]))
    return out


UNDOCUMENTED_MIME_TYPES = (
    "application/dicom; transfer-syntax=",  # older scraped pages, where "*" had been lost
    "application/octet-stream; transfer-syntax=",
    "application/dicom; transfer-syntax=1.2.3.4",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50",
    "image/jpeg; transfer-syntax=*",
    "image/png; transfer-syntax=*",
    "image/gif",
    "video/mp4",
    "application/dicom+json",
)


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_every_leaf_has_an_input(version: str) -> None:
    missing = [
        f"{kind}: {leaf.dotted}"
        for kind, leaf in all_leaves(version)
        if leaf.dotted not in INPUTS[kind]
    ]
    assert missing == [], f"API fields of healthcare {version} that no input of ours sets"


@pytest.mark.parametrize(("version", "kind", "leaf"), leaf_cases())
def test_leaf_is_settable_with_every_documented_value(version: str, kind: str, leaf: Leaf) -> None:
    entry = INPUTS[kind].get(leaf.dotted)
    if entry is None:
        pytest.fail(f"healthcare {version} {REQUESTS[kind]}.{leaf.dotted} has no input of ours")
    if "enum" in leaf.schema:
        values = [(value, value) for value in leaf.schema["enum"]]
    elif leaf.dotted == "gcsDestination.mimeType":
        values = [(value, value) for value, _, _ in documented_mime_types(discovery(version))]
    elif leaf.empty_message:
        values = [(True, {})]
    else:
        assert leaf.schema.get("type") in ("string", "boolean"), leaf.schema
        values = [(entry.sample, entry.sample if entry.expected is None else entry.expected)]
        if leaf.schema["type"] == "boolean":
            values.append((False, False))
    assert values
    doc = discovery(version)
    for given, sent in values:
        body = body_of(kind, props_setting(kind, version, entry, given))
        assert at(body, leaf.path) == sent, (given, body)
        assert unknown_fields(doc, REQUESTS[kind], body) == [], body
    if leaf.empty_message:
        # A message without fields is the setting itself: false sends nothing.
        body = body_of(kind, props_setting(kind, version, entry, False))
        parent = at(body, leaf.path[:-1])
        assert leaf.path[-1] not in parent


@pytest.mark.parametrize(("version", "kind", "leaf"), leaf_cases())
def test_undocumented_values_are_rejected_naming_the_input(
    version: str, kind: str, leaf: Leaf
) -> None:
    entry = INPUTS[kind][leaf.dotted]
    if "enum" in leaf.schema:
        bad: list[Any] = ["NOT_" + leaf.schema["enum"][-1], leaf.schema["enum"][-1].lower()]
    elif leaf.dotted == "gcsDestination.mimeType":
        bad = list(UNDOCUMENTED_MIME_TYPES)
    elif leaf.empty_message or leaf.schema.get("type") == "boolean":
        bad = ["yes", 1]
    else:
        bad = ["not-a-uri", 42]
    for value in bad:
        problems = problems_of(kind, props_setting(kind, version, entry, value))
        assert entry.path in [p.field for p in problems], (value, problems)


@pytest.mark.parametrize("version", VERSIONS)
def test_nested_inputs_use_the_standard_field_names(version: str) -> None:
    for kind, leaf in all_leaves(version):
        entry = INPUTS[kind][leaf.dotted]
        head, _, key = entry.path.partition(".")
        if not key or (leaf.empty_message and leaf.path[-1].endswith("Config")):
            continue
        assert key == re.sub(r"(?<!^)(?=[A-Z])", "_", leaf.path[-1]).lower(), entry.path
        assert head == re.sub(r"(?<!^)(?=[A-Z])", "_", leaf.path[0]).lower(), entry.path


def test_our_inputs_exist_in_the_api_or_are_refused_where_they_do_not() -> None:
    """An input whose API field a version lacks is rejected at preview for that version."""
    for version in VERSIONS:
        api_fields = {leaf.dotted for _, leaf in all_leaves(version)}
        for kind, entries in INPUTS.items():
            for dotted, entry in entries.items():
                if dotted in api_fields:
                    continue
                problems = problems_of(kind, props_setting(kind, version, entry, entry.sample))
                assert problems, f"{entry.path} accepted on {version}, which has no {dotted}"
                assert "api_version" in [p.field for p in problems]


@pytest.mark.parametrize("version", VERSIONS)
def test_mime_table_is_the_documented_list(version: str) -> None:
    ours = [(e.mime_type, e.description, e.extension) for e in DOCUMENTED_MIME_TYPES]
    assert ours == documented_mime_types(discovery(version))


def test_every_accepted_mime_type_is_documented() -> None:
    """The 24 of the discovery text plus the DICOMweb forms without ``transfer-syntax``
    (gcloud's ``--mime-type=application/dicom`` example; the conformance statement's
    defaults), and nothing else."""
    bare = {entry.mime_type for entry in DICOMWEB_DEFAULT_MIME_TYPES}
    assert bare == {"application/dicom", "application/octet-stream", "image/jpeg"}
    assert set(EXPORT_MIME_TYPES) == {e.mime_type for e in DOCUMENTED_MIME_TYPES} | bare
    assert all(entry.source == "DICOMWEB" for entry in DICOMWEB_DEFAULT_MIME_TYPES)
    assert set(EXTENSIONS) == {m.partition(";")[0] for m in EXPORT_MIME_TYPES}
    for mime in bare:
        body = body_of(
            "export",
            props_setting("export", "v1", INPUTS["export"]["gcsDestination.mimeType"], mime),
        )
        assert body["gcsDestination"]["mimeType"] == mime


@pytest.mark.parametrize("version", VERSIONS)
def test_enum_tables_are_the_discovery_enums(version: str) -> None:
    enums = {leaf.dotted: leaf.schema.get("enum", ()) for _, leaf in all_leaves(version)}
    assert tuple(enums["blobStorageSettings.blobStorageClass"]) == STORAGE_CLASSES
    assert tuple(enums["bigqueryDestination.writeDisposition"]) == WRITE_DISPOSITIONS


def test_the_walk_reaches_the_empty_messages() -> None:
    v1 = {leaf.dotted for _, leaf in all_leaves("v1")}
    v1beta1 = {leaf.dotted for _, leaf in all_leaves("v1beta1")}
    assert {"bigqueryDestination.schemaJson", "bigqueryDestination.schemaFlattened"} <= v1
    assert v1beta1 - v1 == {"bigqueryDestination.changeDataCaptureConfig"}
