"""Specs: validation matrix, request bodies vs. the discovery schemas, wildcards, fingerprints."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dicom_transfer.errors import InvalidSpec
from dicom_transfer.roles import permission_hint
from dicom_transfer.specs.fingerprint import request_fingerprint
from dicom_transfer.specs.gcs import parse_gcs_uri
from dicom_transfer.specs.mime_types import EXPORT_MIME_TYPES, normalize_mime_type
from dicom_transfer.specs.problems import UNKNOWN, is_unknown
from dicom_transfer.specs.props import (
    WaitPolicy,
    export_problems,
    export_spec_from_props,
    import_problems,
    import_spec_from_props,
    wait_policy_from_props,
)
from dicom_transfer.specs.requests import (
    DicomStorePath,
    ExportSpec,
    export_file_extension,
    filter_file_content,
    parse_filter_path,
    staged_filter_uri,
)
from googleapiclient.discovery_cache import get_static_doc

STORE = "projects/my-project/locations/us-central1/datasets/ds-1/dicomStores/store_1"


def import_props(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"dicom_store": STORE, "gcs_uri": "gs://raw-bucket/in/**.dcm"}
    props.update(overrides)
    return {k: v for k, v in props.items() if v is not _DROP}


def export_props(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "dicom_store": STORE,
        "gcs_destination": {"uri_prefix": "gs://out-bucket/export"},
    }
    props.update(overrides)
    return {k: v for k, v in props.items() if v is not _DROP}


_DROP = object()
LONG_UID = "1." + "2" * 63  # 65 characters


# (kind, props, field, fragment of the allowed form)
BAD_INPUTS: list[tuple[str, dict[str, Any], str, str]] = [
    # store names and IDs
    ("import", import_props(dicom_store="my-store"), "dicom_store", "projects/PROJECT"),
    ("import", import_props(dicom_store=STORE + "/extra"), "dicom_store", "dicomStores/STORE"),
    (
        "import",
        import_props(dicom_store=STORE.replace("store_1", "..")),
        "dicom_store",
        "invalid: store '..'",
    ),
    (
        "import",
        import_props(dicom_store=STORE.replace("store_1", "a?b")),
        "dicom_store",
        "invalid: store",
    ),
    (
        "import",
        import_props(dicom_store=STORE.replace("ds-1", "d s")),
        "dicom_store",
        "invalid: dataset",
    ),
    (
        "import",
        import_props(dicom_store=STORE.replace("my-project", "MyProject")),
        "dicom_store",
        "invalid: project",
    ),
    (
        "import",
        import_props(dicom_store=STORE.replace("us-central1", "US_1")),
        "dicom_store",
        "invalid: location",
    ),
    (
        "import",
        import_props(dicom_store=STORE.replace("store_1", "a%2F..")),
        "dicom_store",
        "other than / : ? # %",
    ),
    ("import", import_props(dicom_store=42), "dicom_store", "projects/PROJECT"),
    ("import", import_props(dicom_store=None), "dicom_store", "projects/PROJECT"),
    # gs:// URIs and wildcards
    ("import", import_props(gcs_uri=None), "gcs_uri", "gs://BUCKET/PATH"),
    ("import", import_props(gcs_uri="s3://raw-bucket/x.dcm"), "gcs_uri", "gs://BUCKET/PATH"),
    ("import", import_props(gcs_uri="gs://Raw_Bucket/x.dcm"), "gcs_uri", "bucket name"),
    ("import", import_props(gcs_uri="gs://ab/x.dcm"), "gcs_uri", "3-63 characters"),
    ("import", import_props(gcs_uri="gs://goog-bucket/x.dcm"), "gcs_uri", "'goog'"),
    ("import", import_props(gcs_uri="gs://my-google-data/x.dcm"), "gcs_uri", "'google'"),
    ("import", import_props(gcs_uri="gs://192.168.1.1/x.dcm"), "gcs_uri", "not an IP address"),
    ("import", import_props(gcs_uri="gs://raw-bucket"), "gcs_uri", "object path is missing"),
    ("import", import_props(gcs_uri="gs://raw-bucket/.."), "gcs_uri", "not '.' or '..'"),
    ("import", import_props(gcs_uri="gs://raw-bucket/a\nb.dcm"), "gcs_uri", "line feed"),
    ("import", import_props(gcs_uri="gs://raw-bucket/a\rb.dcm"), "gcs_uri", "carriage return"),
    ("import", import_props(gcs_uri="gs://raw-bucket/**/x.dcm"), "gcs_uri", "only at the end"),
    ("import", import_props(gcs_uri="gs://raw-bucket/a*/**.dcm"), "gcs_uri", "no other wildcard"),
    ("import", import_props(gcs_uri="gs://raw-bucket/a/**?.dcm"), "gcs_uri", "only at the end"),
    ("import", import_props(gcs_uri="gs://raw-bucket/a/***"), "gcs_uri", "may appear once"),
    (
        "import",
        import_props(gcs_uri="gs://raw-bucket/.well-known/acme-challenge/x"),
        "gcs_uri",
        "acme-challenge",
    ),
    # storage classes, api versions
    (
        "import",
        import_props(blob_storage_class="HOT"),
        "blob_storage_class",
        "STANDARD|NEARLINE|COLDLINE|ARCHIVE",
    ),
    (
        "import",
        import_props(blob_storage_class="standard"),
        "blob_storage_class",
        "STANDARD|NEARLINE",
    ),
    ("import", import_props(api_version="v2"), "api_version", "v1|v1beta1"),
    # wait policy
    ("import", import_props(timeout_seconds=0), "timeout_seconds", "> 0"),
    ("import", import_props(timeout_seconds=-5.5), "timeout_seconds", "> 0"),
    ("import", import_props(timeout_seconds="60"), "timeout_seconds", "number of seconds"),
    ("import", import_props(timeout_seconds=float("inf")), "timeout_seconds", "> 0"),
    ("import", import_props(max_failures=-1), "max_failures", "whole number >= 0"),
    ("import", import_props(max_failures=1.5), "max_failures", "whole number >= 0"),
    ("import", import_props(max_failures=True), "max_failures", "whole number >= 0"),
    (
        "import",
        import_props(permission_retry_seconds=-1),
        "permission_retry_seconds",
        ">= 0",
    ),
    # destinations
    ("export", export_props(gcs_destination=_DROP), "gcs_destination", "exactly one of"),
    (
        "export",
        export_props(bigquery_destination={"table_uri": "bq://my-project.ds.t"}),
        "bigquery_destination",
        "exactly one of",
    ),
    ("export", export_props(gcs_destination="gs://out/x"), "gcs_destination", "an object"),
    (
        "export",
        export_props(gcs_destination={"uriPrefix": "gs://out-bucket/x"}),
        "gcs_destination.uriPrefix",
        "only the keys uri_prefix, mime_type",
    ),
    (
        "export",
        export_props(gcs_destination={"uri_prefix": "gs://out-bucket/x\ny"}),
        "gcs_destination.uri_prefix",
        "line feed",
    ),
    (
        "export",
        export_props(gcs_destination={"uri_prefix": "https://out-bucket/x"}),
        "gcs_destination.uri_prefix",
        "gs://BUCKET[/DIRECTORY]",
    ),
    # MIME types / transfer syntaxes
    (
        "export",
        export_props(
            gcs_destination={
                "uri_prefix": "gs://out-bucket",
                "mime_type": "application/dicom; transfer-syntax=",
            }
        ),
        "gcs_destination.mime_type",
        "'application/dicom; transfer-syntax=*'",
    ),
    (
        "export",
        export_props(
            gcs_destination={
                "uri_prefix": "gs://out-bucket",
                "mime_type": "image/png; transfer-syntax=1.2.840.10008.1.2.1",
            }
        ),
        "gcs_destination.mime_type",
        "; image/png (",
    ),
    (
        "export",
        export_props(
            gcs_destination={
                "uri_prefix": "gs://out-bucket",
                "mime_type": "application/dicom; transfer-syntax=1.2.3.4",
            }
        ),
        "gcs_destination.mime_type",
        "application/dicom with transfer-syntax 1.2.840.10008.1.2, ",
    ),
    (
        "export",
        export_props(gcs_destination={"uri_prefix": "gs://out-bucket", "mime_type": "text/plain"}),
        "gcs_destination.mime_type",
        "unset: as stored",
    ),
    # BigQuery
    (
        "export",
        export_props(gcs_destination=_DROP, bigquery_destination={"table_uri": "my-project.ds.t"}),
        "bigquery_destination.table_uri",
        "bq://PROJECT.DATASET.TABLE",
    ),
    (
        "export",
        export_props(
            gcs_destination=_DROP, bigquery_destination={"table_uri": "bq://my-project.ds"}
        ),
        "bigquery_destination.table_uri",
        "bq://PROJECT.DATASET.TABLE",
    ),
    (
        "export",
        export_props(
            gcs_destination=_DROP,
            bigquery_destination={"table_uri": "bq://my-project.ds." + "t" * 2000},
        ),
        "bigquery_destination.table_uri",
        "at most 2000 characters",
    ),
    (
        "export",
        export_props(
            gcs_destination=_DROP,
            bigquery_destination={"table_uri": "bq://my-project.ds.t", "write_disposition": "X"},
        ),
        "bigquery_destination.write_disposition",
        "WRITE_EMPTY|WRITE_TRUNCATE|WRITE_APPEND",
    ),
    (
        "export",
        export_props(
            gcs_destination=_DROP,
            bigquery_destination={"table_uri": "bq://my-project.ds.t", "force": "yes"},
        ),
        "bigquery_destination.force",
        "true or false",
    ),
    (
        "export",
        export_props(
            gcs_destination=_DROP,
            bigquery_destination={"table_uri": "bq://my-project.ds.t", "schema_flattened": 1},
        ),
        "bigquery_destination.schema_flattened",
        "true or false",
    ),
    # filters
    (
        "export",
        export_props(filter_gcs_uri="gs://filters-bucket/"),
        "filter_gcs_uri",
        "gs://BUCKET/OBJECT",
    ),
    (
        "export",
        export_props(filter_gcs_uri="gs://filters-bucket/."),
        "filter_gcs_uri",
        "not '.' or '..'",
    ),
    (
        "export",
        export_props(filter_resource_paths=["/studies/1.2.3"]),
        "filter_staging_uri",
        "required with filter_resource_paths",
    ),
    (
        "export",
        export_props(
            filter_resource_paths=["/studies/1.2.3"],
            filter_staging_uri="gs://stage-bucket/f",
            filter_gcs_uri="gs://filters-bucket/f.txt",
        ),
        "filter_gcs_uri",
        "unset when filter_resource_paths is given",
    ),
    (
        "export",
        export_props(filter_resource_paths=[], filter_staging_uri="gs://stage-bucket"),
        "filter_resource_paths",
        "non-empty list",
    ),
    (
        "export",
        export_props(filter_resource_paths="/studies/1.2", filter_staging_uri="gs://stage-bucket"),
        "filter_resource_paths",
        "non-empty list",
    ),
    (
        "export",
        export_props(filter_resource_paths=["studies/1.2"], filter_staging_uri="gs://stage-bucket"),
        "filter_resource_paths[0]",
        "/studies/{StudyInstanceUID}",
    ),
    (
        "export",
        export_props(
            filter_resource_paths=["/studies/1.2", "/studies/1.a"],
            filter_staging_uri="gs://stage-bucket",
        ),
        "filter_resource_paths[1]",
        "digits separated by single dots",
    ),
    (
        "export",
        export_props(
            filter_resource_paths=[f"/studies/{LONG_UID}"], filter_staging_uri="gs://stage-bucket"
        ),
        "filter_resource_paths[0]",
        "at most 64 characters",
    ),
    (
        "export",
        export_props(
            filter_resource_paths=["/studies/1.2/instances/3.4"],
            filter_staging_uri="gs://stage-bucket",
        ),
        "filter_resource_paths[0]",
        "[/series/{SeriesInstanceUID}",
    ),
    (
        "export",
        export_props(
            filter_resource_paths=["/studies/1..2"], filter_staging_uri="gs://stage-bucket"
        ),
        "filter_resource_paths[0]",
        "single dots",
    ),
    (
        "export",
        export_props(
            filter_resource_paths=["/studies/1.2/series/3.4/instances/5.6/frames/1"],
            filter_staging_uri="gs://stage-bucket",
        ),
        "filter_resource_paths[0]",
        "[/instances/{SOPInstanceUID}]",
    ),
    (
        "export",
        export_props(filter_resource_paths=["/studies/1.2"], filter_staging_uri="gs://Stage"),
        "filter_staging_uri",
        "bucket name",
    ),
]


def _problems(kind: str, props: dict[str, Any]) -> list[InvalidSpec]:
    return import_problems(props) if kind == "import" else export_problems(props)


@pytest.mark.parametrize(
    ("kind", "props", "field", "allowed"),
    BAD_INPUTS,
    ids=[f"{i:02d}-{case[2]}" for i, case in enumerate(BAD_INPUTS)],
)
def test_bad_input_names_field_value_and_allowed_form(
    kind: str, props: dict[str, Any], field: str, allowed: str
) -> None:
    problems = _problems(kind, props)
    matching = [p for p in problems if p.field == field]
    assert matching, f"no problem for {field}: {problems}"
    message = str(matching[0])
    assert message.startswith(f"{field}: got ")
    assert "expected" in message
    assert allowed in message
    assert allowed in matching[0].allowed
    with pytest.raises(InvalidSpec):
        (import_spec_from_props if kind == "import" else export_spec_from_props)(props)


def test_at_least_thirty_distinct_bad_inputs() -> None:
    distinct = {json.dumps(case[1], sort_keys=True, default=str) for case in BAD_INPUTS}
    assert len(distinct) >= 30


def test_message_shape_and_value() -> None:
    problem = import_problems(import_props(blob_storage_class="HOT"))[0]
    assert str(problem) == (
        "blob_storage_class: got 'HOT'; expected one of "
        "BLOB_STORAGE_CLASS_UNSPECIFIED|STANDARD|NEARLINE|COLDLINE|ARCHIVE"
    )
    assert problem.value == "HOT"


def test_all_problems_are_reported() -> None:
    problems = import_problems(
        {
            "dicom_store": "nope",
            "gcs_uri": "gs://x",
            "blob_storage_class": "HOT",
            "api_version": "v3",
            "timeout_seconds": 0,
            "max_failures": -2,
        }
    )
    assert [p.field for p in problems] == [
        "dicom_store",
        "gcs_uri",
        "blob_storage_class",
        "api_version",
        "timeout_seconds",
        "max_failures",
    ]


def test_long_values_are_shortened_in_messages() -> None:
    problem = InvalidSpec("f", "x" * 5000, "short")
    assert len(str(problem)) < 400
    assert problem.value == "x" * 5000


def test_valid_inputs_have_no_problems() -> None:
    assert import_problems(import_props()) == []
    assert export_problems(export_props()) == []
    assert (
        export_problems(
            export_props(
                gcs_destination=_DROP,
                bigquery_destination={
                    "table_uri": "bq://my-project.ds_1.table-1",
                    "write_disposition": "WRITE_APPEND",
                    "force": False,
                    "include_source_store": True,
                    "schema_flattened": True,
                },
                filter_resource_paths=[
                    "/studies/1.2.840.1",
                    "/studies/1.2/series/3.4",
                    "/studies/1.2/series/3.4/instances/5.6",
                ],
                filter_staging_uri="gs://stage-bucket/filters/",
            )
        )
        == []
    )


@pytest.mark.parametrize(
    "uri",
    [
        "gs://raw-bucket/file.dcm",
        "gs://raw-bucket/dir/*.dcm",
        "gs://raw-bucket/dir/Example?.dcm",
        "gs://raw-bucket/**",
        "gs://raw-bucket/dir/**.dcm",
        "gs://raw-bucket/a*/b*/c?.dcm",
        "gs://raw.bucket.example.com/x/**.tar.gz",
        "gs://raw_bucket-1/x",
    ],
)
def test_valid_import_uris(uri: str) -> None:
    assert import_problems(import_props(gcs_uri=uri)) == []


def test_domain_scoped_and_numbered_projects() -> None:
    scoped = "projects/example.com:my-project/locations/us/datasets/d/dicomStores/s"
    assert DicomStorePath.parse(scoped).project == "example.com:my-project"
    numbered = DicomStorePath.parse("projects/123456789/locations/us/datasets/d/dicomStores/s")
    assert numbered.dataset_name == "projects/123456789/locations/us/datasets/d"
    assert (
        export_problems(
            {
                "dicom_store": scoped,
                "bigquery_destination": {"table_uri": "bq://example.com:my-project.ds.t"},
            }
        )
        == []
    )


def test_store_path_parts() -> None:
    store = DicomStorePath.parse(STORE)
    assert store.name == STORE
    assert store.dataset_name == "projects/my-project/locations/us-central1/datasets/ds-1"
    with pytest.raises(InvalidSpec, match="dicom_store"):
        DicomStorePath.parse("projects/p/locations/l/datasets/d/fhirStores/s")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint", "not a url"),
        ("endpoint", "healthcare.googleapis.com"),
        ("endpoint", "http://[::1"),
        ("storage_endpoint", "ftp://storage.example.com/"),
        ("impersonate_service_account", "x y"),
        ("impersonate_service_account", "deployer"),
    ],
)
def test_a_connection_typo_fails_the_preview(field: str, value: str) -> None:
    # Otherwise it would surface at create as an authentication failure.
    problems = import_problems(import_props(**{field: value}))
    assert [p.field for p in problems] == [field]


def test_connection_inputs_that_work_pass() -> None:
    props = import_props(
        endpoint="https://healthcare-myendpoint.p.googleapis.com/",
        storage_endpoint="http://127.0.0.1:9023",
        impersonate_service_account="deployer@my-project.iam.gserviceaccount.com",
    )
    assert import_problems(props) == []


@pytest.mark.parametrize(
    ("dataset", "store"),
    [
        # datasets.create: datasetId "must match [\p{L}\p{N}_\-\.]{1,256}".
        ("donn\u00e9es", "s"),
        ("ds\uff11", "s"),
        # dicomStores.create: dicomStoreId is "Any string value up to 256 characters".
        ("d", "\u30b9\u30c8\u30a2"),
        ("d", "my store"),
        ("d", "x" * 256),
    ],
)
def test_ids_the_api_documents_are_accepted(dataset: str, store: str) -> None:
    name = f"projects/my-project/locations/us-central1/datasets/{dataset}/dicomStores/{store}"
    assert DicomStorePath.parse(name).store == store


@pytest.mark.parametrize(
    ("dataset", "store"),
    [
        ("d s", "s"),  # a space is not in the dataset regex
        ("d", "a:b"),  # would read as a custom verb
        ("d", "a?b"),
        ("d", "a#b"),
        ("d", "a%2Fb"),
        ("d", "a\nb"),
        ("d", ".."),
        ("..", "s"),
        ("d", "x" * 257),
    ],
)
def test_ids_a_url_path_cannot_carry_are_refused(dataset: str, store: str) -> None:
    name = f"projects/my-project/locations/us-central1/datasets/{dataset}/dicomStores/{store}"
    with pytest.raises(InvalidSpec, match="dicom_store"):
        DicomStorePath.parse(name)


# --- unknowns ------------------------------------------------------------------------------------


def test_unknown_sentinel_matches_pulumi() -> None:
    from pulumi.runtime import rpc

    assert rpc.UNKNOWN == UNKNOWN
    assert is_unknown(UNKNOWN)
    assert not is_unknown("gs://x/y")


def test_unknown_values_pass_through_problems() -> None:
    assert (
        import_problems(
            {
                "dicom_store": UNKNOWN,
                "gcs_uri": UNKNOWN,
                "blob_storage_class": UNKNOWN,
                "api_version": UNKNOWN,
                "timeout_seconds": UNKNOWN,
                "max_failures": UNKNOWN,
            }
        )
        == []
    )
    assert export_problems({"dicom_store": UNKNOWN, "gcs_destination": UNKNOWN}) == []
    assert (
        export_problems(
            {
                "dicom_store": STORE,
                "bigquery_destination": {"table_uri": UNKNOWN, "write_disposition": UNKNOWN},
                "filter_resource_paths": ["/studies/1.2", UNKNOWN],
                "filter_staging_uri": UNKNOWN,
            }
        )
        == []
    )
    assert (
        export_problems(
            {
                "dicom_store": STORE,
                "gcs_destination": {"uri_prefix": UNKNOWN, "mime_type": UNKNOWN},
                "filter_resource_paths": UNKNOWN,
                "filter_staging_uri": "gs://stage-bucket",
            }
        )
        == []
    )


def test_unknown_values_still_report_known_problems() -> None:
    problems = import_problems({"dicom_store": UNKNOWN, "gcs_uri": "gs://raw-bucket/**/x"})
    assert [p.field for p in problems] == ["gcs_uri"]


def test_from_props_refuses_unknown_values() -> None:
    with pytest.raises(InvalidSpec, match="not computed yet"):
        import_spec_from_props(import_props(gcs_uri=UNKNOWN))


# --- request bodies ------------------------------------------------------------------------------


def _schema_errors(doc: dict[str, Any], ref: str, value: Any, path: str) -> list[str]:
    schema = doc["schemas"][ref]
    return _check_value(doc, schema, value, path)


def _check_value(doc: dict[str, Any], schema: dict[str, Any], value: Any, path: str) -> list[str]:
    if "$ref" in schema:
        return _schema_errors(doc, schema["$ref"], value, path)
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: expected object"]
        props = schema.get("properties", {})
        errors = []
        for key, item in value.items():
            if key not in props:
                errors.append(f"{path}.{key}: not in schema")
            else:
                errors += _check_value(doc, props[key], item, f"{path}.{key}")
        return errors
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected string"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{path}: {value!r} not in enum"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected boolean"]
    return [f"{path}: unhandled schema type {kind}"]


def _request_ref(doc: dict[str, Any], method: str) -> str:
    methods = doc["resources"]["projects"]["resources"]["locations"]["resources"]["datasets"][
        "resources"
    ]["dicomStores"]["methods"]
    return str(methods[method]["request"]["$ref"])


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_request_bodies_match_discovery_schemas(version: str) -> None:
    doc = json.loads(get_static_doc("healthcare", version))
    imports = [
        import_spec_from_props(import_props(api_version=version)),
        import_spec_from_props(import_props(api_version=version, blob_storage_class="ARCHIVE")),
    ]
    for spec in imports:
        body = spec.request_body()
        assert _schema_errors(doc, _request_ref(doc, "import"), body, "body") == []
    exports = [
        export_spec_from_props(export_props(api_version=version)),
        export_spec_from_props(
            export_props(
                api_version=version,
                gcs_destination={
                    "uri_prefix": "gs://out-bucket/x",
                    "mime_type": "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50",
                },
                filter_gcs_uri="gs://filters-bucket/filter.txt",
            )
        ),
        export_spec_from_props(
            export_props(
                api_version=version,
                gcs_destination=_DROP,
                bigquery_destination={
                    "table_uri": "bq://my-project.ds.t",
                    "write_disposition": "WRITE_TRUNCATE",
                    "force": True,
                    "include_source_store": True,
                    "schema_flattened": True,
                },
                filter_resource_paths=["/studies/1.2"],
                filter_staging_uri="gs://stage-bucket/f",
            )
        ),
    ]
    for export in exports:
        body = export.request_body()
        assert _schema_errors(doc, _request_ref(doc, "export"), body, "body") == []
    assert _schema_errors(doc, "ImportDicomDataRequest", {"gcsSource": {"url": "x"}}, "b") == [
        "b.gcsSource.url: not in schema"
    ]


def test_import_body() -> None:
    spec = import_spec_from_props(import_props(blob_storage_class="COLDLINE"))
    assert spec.request_body() == {
        "gcsSource": {"uri": "gs://raw-bucket/in/**.dcm"},
        "blobStorageSettings": {"blobStorageClass": "COLDLINE"},
    }
    assert spec.source.bucket == "raw-bucket"
    assert import_spec_from_props(import_props()).request_body() == {
        "gcsSource": {"uri": "gs://raw-bucket/in/**.dcm"}
    }


def test_export_body_with_inline_filter() -> None:
    spec = export_spec_from_props(
        export_props(
            gcs_destination={
                "uri_prefix": "gs://out-bucket/x",
                "mime_type": "application/dicom;transfer-syntax=1.2.840.10008.1.2.1",
            },
            filter_resource_paths=["/studies/1.2", "/studies/1.3/series/4"],
            filter_staging_uri="gs://stage-bucket/filters/",
        )
    )
    staged = staged_filter_uri(spec)
    assert staged.startswith("gs://stage-bucket/filters/") and staged.endswith(".txt")
    assert "//" not in staged.removeprefix("gs://")
    assert spec.request_body() == {
        "gcsDestination": {
            "uriPrefix": "gs://out-bucket/x",
            "mimeType": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
        },
        "filterConfig": {"resourcePathsGcsUri": staged},
    }
    assert spec.filter_uri == staged
    assert filter_file_content(spec.filter_resource_paths or ()) == (
        b"/studies/1.2\n/studies/1.3/series/4\n"
    )


def test_bigquery_body() -> None:
    spec = export_spec_from_props(
        export_props(
            gcs_destination=_DROP,
            bigquery_destination={"table_uri": "bq://my-project.ds.t", "force": False},
        )
    )
    assert spec.request_body() == {
        "bigqueryDestination": {"tableUri": "bq://my-project.ds.t", "force": False}
    }
    assert spec.bigquery_destination is not None
    assert spec.bigquery_destination.project == "my-project"


def test_bigquery_destination_without_a_table_is_left_to_the_api() -> None:
    # The v1 discovery document marks tableUri "Optional": not ours to reject at preview.
    spec = export_spec_from_props(
        export_props(
            gcs_destination=_DROP, bigquery_destination={"write_disposition": "WRITE_APPEND"}
        )
    )
    assert spec.request_body() == {"bigqueryDestination": {"writeDisposition": "WRITE_APPEND"}}
    empty = export_spec_from_props(
        export_props(gcs_destination=_DROP, bigquery_destination={"table_uri": ""})
    )
    assert empty.request_body() == {"bigqueryDestination": {}}
    assert spec.bigquery_destination is not None
    assert spec.bigquery_destination.project is None
    hint = permission_hint(spec)  # no dataset to name: only the store permission
    assert "bigquery" not in hint and "healthcare.dicomStores.export" in hint


def test_an_empty_mime_type_is_unset() -> None:
    # "" is proto3's unset string; the API documents unset as "the original DICOM format".
    spec = export_spec_from_props(
        export_props(gcs_destination={"uri_prefix": "gs://out-bucket/x", "mime_type": ""})
    )
    assert spec.request_body() == {"gcsDestination": {"uriPrefix": "gs://out-bucket/x"}}


# --- MIME types, wildcards, filter paths ---------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("IMAGE/PNG", "image/png"),
        (
            "Application/DICOM ; Transfer-Syntax = 1.2.840.10008.1.2",
            "application/dicom; transfer-syntax=1.2.840.10008.1.2",
        ),
        ('application/dicom;transfer-syntax="*"', "application/dicom; transfer-syntax=*"),
        (
            'application/octet-stream; TRANSFER-SYNTAX="1.2.840.10008.1.2.1"',
            "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1",
        ),
        ("application/dicom", "application/dicom"),
        (" image/jpeg ", "image/jpeg"),
    ],
)
def test_mime_spelling_follows_media_type_syntax(given: str, sent: str) -> None:
    """RFC 9110 §8.3.1: case-insensitive names, optional whitespace, quoted values."""
    assert normalize_mime_type(given) == sent
    spec = export_spec_from_props(
        export_props(gcs_destination={"uri_prefix": "gs://out-bucket", "mime_type": given})
    )
    assert spec.request_body()["gcsDestination"]["mimeType"] == sent


@pytest.mark.parametrize(
    "given",
    [
        "application/dicom; transfer-syntax=",
        'application/dicom; transfer-syntax=""',
        "application/dicom; transfer-syntax=1.2.840.10008.1.2; transfer-syntax=*",
        "application/dicom; transfer-syntax=*; charset=utf-8",
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50.",
        "image/png; transfer-syntax=1.2.840.10008.1.2.1",
        "image/jpeg; transfer-syntax=*",
        "application/dicom transfer-syntax=*",
        "video/mp4",
    ],
)
def test_undocumented_mime_spellings_are_rejected(given: str) -> None:
    assert normalize_mime_type(given) is None
    with pytest.raises(InvalidSpec, match=r"gcs_destination\.mime_type"):
        export_file_extension(given)


def test_mime_extensions() -> None:
    assert export_file_extension(None) == ".dcm"
    assert export_file_extension("") == ".dcm"  # proto3's unset string
    assert export_file_extension("application/dicom; transfer-syntax=*") == ".dcm"
    assert export_file_extension("image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50") == ".jpg"
    assert export_file_extension("image/jpeg") == ".jpg"
    assert export_file_extension("image/png") == ".png"
    assert export_file_extension("application/octet-stream; transfer-syntax=*") == ""
    assert {entry.extension for entry in EXPORT_MIME_TYPES.values()} == {".dcm", ".jpg", ".png", ""}


@pytest.mark.parametrize(
    ("kind", "props"),
    [
        # Characters the Cloud Storage naming page only advises against are legal names.
        ("import", import_props(gcs_uri="gs://raw-bucket/a[0-9]#1.dcm")),
        ("import", import_props(gcs_uri="gs://raw-bucket/a/../b.dcm")),
        ("export", export_props(gcs_destination={"uri_prefix": "gs://out-bucket/x/*"})),
        ("export", export_props(gcs_destination={"uri_prefix": "gs://out-bucket/./x"})),
        ("export", export_props(filter_gcs_uri="gs://filters-bucket/f*.txt")),
        # BigQuery table IDs: Unicode letters, marks, numbers, connectors, dashes, spaces.
        (
            "export",
            export_props(
                gcs_destination=_DROP,
                bigquery_destination={"table_uri": "bq://my-project.ds.Tabl\u00e9 2026-01"},
            ),
        ),
        # A table in another project than the store's: documented (how-tos/dicom-export-bigquery,
        # "Exporting DICOM metadata to a different project"); the older reference page's
        # same-project sentence is not a rule of the API.
        (
            "export",
            export_props(
                gcs_destination=_DROP, bigquery_destination={"table_uri": "bq://other-project.ds.t"}
            ),
        ),
    ],
)
def test_what_the_api_allows_is_not_rejected(kind: str, props: dict[str, Any]) -> None:
    assert _problems(kind, props) == []


@pytest.mark.parametrize(
    "table", ["bq://my-project.ds.t@x", "bq://my-project.ds.t.u", "bq://my-project.ds-1.t"]
)
def test_bigquery_naming_rules(table: str) -> None:
    problems = export_problems(
        export_props(gcs_destination=_DROP, bigquery_destination={"table_uri": table})
    )
    assert [p.field for p in problems] == ["bigquery_destination.table_uri"]


def _bq(api_version: str = "v1", **destination: Any) -> dict[str, Any]:
    return export_props(
        gcs_destination=_DROP,
        api_version=api_version,
        bigquery_destination={"table_uri": "bq://my-project.ds.t", **destination},
    )


def test_schema_json_and_flattened_are_exclusive() -> None:
    [problem] = export_problems(_bq(schema_json=True, schema_flattened=True))
    assert problem.field == "bigquery_destination.schema_flattened"
    assert "schema_json" in problem.allowed
    assert export_problems(_bq(schema_json=True, schema_flattened=False)) == []
    assert export_spec_from_props(_bq(schema_json=True)).request_body()["bigqueryDestination"] == {
        "tableUri": "bq://my-project.ds.t",
        "schemaJson": {},
    }


def test_change_data_capture_needs_v1beta1_and_the_json_schema() -> None:
    [on_v1] = export_problems(_bq(schema_json=True, change_data_capture=True))
    assert (on_v1.field, on_v1.value) == ("api_version", "v1")
    assert "v1beta1" in on_v1.allowed
    [without_json] = export_problems(_bq("v1beta1", change_data_capture=True))
    assert without_json.field == "bigquery_destination.change_data_capture"
    assert "schema_json" in without_json.allowed
    flattened = export_problems(_bq("v1beta1", schema_flattened=True, change_data_capture=True))
    assert [p.field for p in flattened] == ["bigquery_destination.change_data_capture"]
    body = export_spec_from_props(
        _bq("v1beta1", schema_json=True, change_data_capture=True)
    ).request_body()
    assert body["bigqueryDestination"]["changeDataCaptureConfig"] == {}
    assert export_problems(_bq(schema_json=True, change_data_capture=False)) == []


def test_parse_gcs_uri_kinds() -> None:
    assert parse_gcs_uri("gs://out-bucket", "f", kind="prefix").path == ""
    assert parse_gcs_uri("gs://out-bucket/a/b", "f", kind="object").uri == "gs://out-bucket/a/b"
    with pytest.raises(InvalidSpec, match=r"^f: "):
        parse_gcs_uri("gs://out-bucket", "f", kind="object")


def test_parse_filter_path() -> None:
    assert parse_filter_path("/studies/1.2") == ("1.2", None, None)
    assert parse_filter_path("/studies/1.2/series/3/instances/4.5") == ("1.2", "3", "4.5")
    with pytest.raises(InvalidSpec):
        parse_filter_path("/studies/1.2/")


# --- wait policy ---------------------------------------------------------------------------------


def test_wait_policy_defaults_and_numbers() -> None:
    assert wait_policy_from_props({}) == WaitPolicy(3600.0, 0, 600.0)
    policy = wait_policy_from_props(
        {"timeout_seconds": 90, "max_failures": 5.0, "permission_retry_seconds": 0}
    )
    assert policy == WaitPolicy(90.0, 5, 0.0)
    assert isinstance(policy.max_failures, int)


@pytest.mark.parametrize("value", [None, "unlimited"])
def test_wait_policy_tolerate_all(value: object) -> None:
    assert wait_policy_from_props({"max_failures": value}).max_failures is None


# --- fingerprints --------------------------------------------------------------------------------


def test_fingerprints_change_with_request_not_with_waiting() -> None:
    base = import_spec_from_props(import_props())
    fp = request_fingerprint(base, ["a"], "load")
    assert fp == request_fingerprint(
        import_spec_from_props(import_props(timeout_seconds=5)), ["a"], "load"
    )
    assert len(fp) == 64
    assert fp != request_fingerprint(base, ["b"], "load")
    assert fp != request_fingerprint(base, ["a"], "other")
    changed = import_spec_from_props(import_props(gcs_uri="gs://raw-bucket/x/**"))
    assert fp != request_fingerprint(changed, ["a"], "load")


def test_export_fingerprint_covers_inline_filter() -> None:
    def spec(paths: list[str]) -> ExportSpec:
        return export_spec_from_props(
            export_props(filter_resource_paths=paths, filter_staging_uri="gs://stage-bucket")
        )

    one = request_fingerprint(spec(["/studies/1.2"]), None, "x")
    assert one == request_fingerprint(spec(["/studies/1.2"]), None, "x")
    assert one != request_fingerprint(spec(["/studies/1.3"]), None, "x")
