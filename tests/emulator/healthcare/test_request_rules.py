"""The emulator's own reading of request URIs, import wildcards and filter files (no HTTP)."""

from __future__ import annotations

import pytest
from dicom_transfer_emulator.errors import ApiException
from dicom_transfer_emulator.healthcare.filter_paths import parse_filter_file, parse_filter_path
from dicom_transfer_emulator.healthcare.gcs_uris import compile_import_pattern, parse_gcs_uri

NAMES = ["a/x1.dcm", "a/x22.dcm", "a/.dcm", "a/b/x3.dcm", "a/b/c/z.dcm", "a/y.txt", "ab/x1.dcm"]


@pytest.mark.parametrize(
    ("object_id", "prefix", "selected"),
    [
        ("a/x?.dcm", "a/x", {"a/x1.dcm"}),
        ("a/*.dcm", "a/", {"a/x1.dcm", "a/x22.dcm", "a/.dcm"}),
        ("a/**", "a/", {n for n in NAMES if n.startswith("a/")}),
        ("a/**.dcm", "a/", {"a/x1.dcm", "a/x22.dcm", "a/.dcm", "a/b/x3.dcm", "a/b/c/z.dcm"}),
        ("a?x1.dcm", "a", {"a/x1.dcm"}),  # "?" is "1 character": "/" too
        ("a/x22.dcm", "a/x22.dcm", {"a/x22.dcm"}),
    ],
)
def test_import_wildcards(object_id: str, prefix: str, selected: set[str]) -> None:
    pattern = compile_import_pattern(object_id, "gcsSource.uri", f"gs://b/{object_id}")

    assert pattern.literal_prefix == prefix
    assert {n for n in NAMES if pattern.matches(n)} == selected


@pytest.mark.parametrize("object_id", ["**/x.dcm", "*/**.dcm", "a/**.dcm/b", "a/**?", "a/***"])
def test_misplaced_double_star_is_invalid(object_id: str) -> None:
    with pytest.raises(ApiException) as exc:
        compile_import_pattern(object_id, "gcsSource.uri", f"gs://bkt/{object_id}")

    assert exc.value.code == 400 and exc.value.status == "INVALID_ARGUMENT"
    assert "'gcsSource.uri'" in exc.value.message and object_id in exc.value.message


@pytest.mark.parametrize(
    ("uri", "kind", "expected"),
    [
        ("gs://bkt/dir/**.dcm", "pattern", ("bkt", "dir/**.dcm")),
        ("gs://bkt/list.txt", "object", ("bkt", "list.txt")),
        ("gs://bkt", "prefix", ("bkt", "")),
        ("gs://bkt/", "prefix", ("bkt", "")),
        ("gs://bkt/out/dir", "prefix", ("bkt", "out/dir")),
        # No wildcards in a directory: "*" and "?" are plain object-name characters there.
        ("gs://bkt/out/*?", "prefix", ("bkt", "out/*?")),
    ],
)
def test_gcs_uris(uri: str, kind: str, expected: tuple[str, str]) -> None:
    location = parse_gcs_uri(uri, "field", kind=kind)  # type: ignore[arg-type]

    assert (location.bucket, location.path) == expected


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("s3://bkt/x", "pattern"),
        ("gs://bkt", "pattern"),
        ("gs://bkt/", "object"),
        ("gs://bkt/dir/", "object"),
        ("gs://Bad_Bucket!/x", "object"),
        ("gs://bkt/a\nb", "object"),
    ],
)
def test_malformed_gcs_uris_name_the_field(uri: str, kind: str) -> None:
    with pytest.raises(ApiException) as exc:
        parse_gcs_uri(uri, "filterConfig.resourcePathsGcsUri", kind=kind)  # type: ignore[arg-type]

    assert exc.value.code == 400
    assert "'filterConfig.resourcePathsGcsUri'" in exc.value.message
    assert "gs://" in exc.value.message.split("Allowed form:")[1]


def test_filter_paths() -> None:
    assert parse_filter_path("/studies/1.2") == ("1.2",)
    assert parse_filter_path("/studies/1.2/series/3") == ("1.2", "3")
    assert parse_filter_path("/studies/1/series/2/instances/3.4") == ("1", "2", "3.4")
    text = "/studies/1.2\r\n\n  /studies/1.2/series/3  \n/studies/1.2\n"
    assert parse_filter_file(text) == {("1.2",), ("1.2", "3")}


@pytest.mark.parametrize(
    "line",
    [
        "studies/1.2",
        "/studies/1.2/",
        "/studies/1.2/instances/3",
        "/series/1.2",
        "/studies/1..2",
        "/studies/abc",
        "/studies/" + "1" * 65,
    ],
)
def test_malformed_filter_lines(line: str) -> None:
    with pytest.raises(ValueError, match=r"line 2: .* is not of the form /studies/\{studyUID\}"):
        parse_filter_file("/studies/1\n" + line + "\n")
