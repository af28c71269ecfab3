"""Raw Cloud Storage JSON API exchanges: resource shapes, uploads, errors."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from dicom_transfer_emulator.app import Emulator

HttpCall = Callable[..., Any]

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _make_bucket(http: HttpCall, emulator: Emulator, name: str) -> None:
    result = http(emulator.storage_url, "POST", "/storage/v1/b?project=p-1", {"name": name})
    assert result.status == 200, result


def test_bucket_resource_shape(http: HttpCall, emulator: Emulator) -> None:
    created = http(emulator.storage_url, "POST", "/storage/v1/b?project=my-proj", {"name": "shape"})
    assert created.status == 200
    body = created.json()
    assert body["kind"] == "storage#bucket"
    assert body["id"] == body["name"] == "shape"
    assert body["selfLink"].endswith("/storage/v1/b/shape")
    assert body["projectNumber"].isdigit()
    assert body["metageneration"] == "1"
    assert RFC3339.match(body["timeCreated"]) and RFC3339.match(body["updated"])
    listed = http(emulator.storage_url, "GET", "/storage/v1/b?project=my-proj").json()
    assert listed["kind"] == "storage#buckets"
    assert [b["name"] for b in listed["items"]] == ["shape"]
    assert http(emulator.storage_url, "GET", "/storage/v1/b?project=other").json()["items"] == []


def test_media_upload_object_shape_and_download(http: HttpCall, emulator: Emulator) -> None:
    _make_bucket(http, emulator, "media")
    data = b"\x00\x01binary\xff"
    up = http(
        emulator.storage_url,
        "POST",
        "/upload/storage/v1/b/media/o?uploadType=media&name=a%2Fb%20c.bin",
        data,
        {"Content-Type": "application/dicom"},
    )
    assert up.status == 200, up
    obj = up.json()
    assert obj["kind"] == "storage#object"
    assert obj["name"] == "a/b c.bin"
    assert obj["bucket"] == "media"
    assert obj["size"] == str(len(data))
    assert obj["contentType"] == "application/dicom"
    assert obj["md5Hash"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert obj["generation"].isdigit() and obj["metageneration"] == "1"
    assert obj["id"] == f"media/a/b c.bin/{obj['generation']}"
    assert obj["selfLink"].endswith("/storage/v1/b/media/o/a%2Fb%20c.bin")
    assert RFC3339.match(obj["updated"])

    media = urlsplit(obj["mediaLink"])
    down = http(emulator.storage_url, "GET", f"{media.path}?{media.query}")
    assert down.status == 200
    assert down.body == data
    assert down.headers["content-type"] == "application/dicom"
    assert f"md5={obj['md5Hash']}" in down.headers["x-goog-hash"]
    assert f"crc32c={obj['crc32c']}" in down.headers["x-goog-hash"]
    via_json = http(emulator.storage_url, "GET", "/storage/v1/b/media/o/a%2Fb%20c.bin?alt=media")
    assert via_json.body == data


def test_resumable_upload_with_status_query(http: HttpCall, emulator: Emulator) -> None:
    _make_bucket(http, emulator, "resum")
    start = http(
        emulator.storage_url,
        "POST",
        "/upload/storage/v1/b/resum/o?uploadType=resumable",
        {"name": "r.bin", "contentType": "application/octet-stream"},
    )
    assert start.status == 200
    location = urlsplit(start.headers["location"])
    target = f"{location.path}?{location.query}"
    first = http(emulator.storage_url, "PUT", target, b"abcd", {"Content-Range": "bytes 0-3/*"})
    assert first.status == 308
    assert first.headers["range"] == "bytes=0-3"
    status = http(emulator.storage_url, "PUT", target, b"", {"Content-Range": "bytes */*"})
    assert status.status == 308 and status.headers["range"] == "bytes=0-3"
    # A retransmitted overlap is tolerated, as in the real service.
    last = http(emulator.storage_url, "PUT", target, b"cdef", {"Content-Range": "bytes 2-5/6"})
    assert last.status == 200, last
    assert last.json()["size"] == "6"
    assert emulator.storage.read_object("resum", "r.bin") == b"abcdef"
    gone = http(emulator.storage_url, "PUT", target, b"", {"Content-Range": "bytes */6"})
    assert gone.status == 404


def test_list_counts_prefixes_in_max_results(http: HttpCall, emulator: Emulator) -> None:
    _make_bucket(http, emulator, "pages")
    for name in ["a/1", "a/2", "b/1", "c", "d"]:
        emulator.storage.write_object("pages", name, b"x")
    seen_items: list[str] = []
    seen_prefixes: list[str] = []
    token = ""
    pages = 0
    while True:
        query = "delimiter=%2F&maxResults=2" + (f"&pageToken={token}" if token else "")
        page = http(emulator.storage_url, "GET", f"/storage/v1/b/pages/o?{query}").json()
        pages += 1
        assert len(page.get("items", [])) + len(page.get("prefixes", [])) <= 2
        seen_items += [i["name"] for i in page.get("items", [])]
        seen_prefixes += page.get("prefixes", [])
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert (seen_items, seen_prefixes, pages) == (["c", "d"], ["a/", "b/"], 2)


def test_compose(http: HttpCall, emulator: Emulator) -> None:
    _make_bucket(http, emulator, "comp")
    emulator.storage.write_object("comp", "p1", b"abc")
    emulator.storage.write_object("comp", "p2", b"def")
    result = http(
        emulator.storage_url,
        "POST",
        "/storage/v1/b/comp/o/whole/compose",
        {"sourceObjects": [{"name": "p1"}, {"name": "p2"}], "destination": {}},
    )
    assert result.status == 200, result
    assert emulator.storage.read_object("comp", "whole") == b"abcdef"


def test_error_shape(http: HttpCall, emulator: Emulator) -> None:
    result = http(emulator.storage_url, "GET", "/storage/v1/b/nope/o/x")
    assert result.status == 404
    error = result.json()["error"]
    assert error["code"] == 404
    assert error["status"] == "NOT_FOUND"
    assert error["message"] == "The specified bucket does not exist."
    assert error["errors"][0]["reason"] == "notFound"
    _make_bucket(http, emulator, "errs")
    missing = http(emulator.storage_url, "GET", "/storage/v1/b/errs/o/none").json()["error"]
    assert missing["message"] == "No such object: errs/none"


def test_bad_requests_are_4xx(http: HttpCall, emulator: Emulator) -> None:
    _make_bucket(http, emulator, "bad")
    url = emulator.storage_url
    cases = [
        ("POST", "/storage/v1/b", {"name": "no-project"}),
        ("POST", "/storage/v1/b?project=p", {"name": 7}),
        ("POST", "/storage/v1/b?project=p", {"name": "ok-name", "bogus": 1}),
        ("POST", "/storage/v1/b?project=p", {"name": "ok-name", "labels": ["x"]}),
        ("GET", "/storage/v1/b/bad/o?maxResults=abc", None),
        ("GET", "/storage/v1/b/bad/o?maxResults=0", None),
        ("GET", "/storage/v1/b/bad/o?pageToken=%%%", None),
        ("GET", "/storage/v1/b/bad/o?matchGlob=%5Babc", None),
        ("POST", "/upload/storage/v1/b/bad/o?uploadType=sideways&name=x", b"x"),
        ("POST", "/upload/storage/v1/b/bad/o?uploadType=media", b"no name"),
        ("POST", "/upload/storage/v1/b/bad/o?uploadType=multipart", b"not multipart"),
        ("PUT", "/upload/storage/v1/b/bad/o?uploadType=resumable&upload_id=nope", b"x"),
        ("PUT", "/storage/v1/b/bad/iam", {"bindings": [{"role": "owner", "members": ["x"]}]}),
        ("PUT", "/storage/v1/b/bad/iam", {"bindings": "all"}),
        ("PUT", "/storage/v1/b/bad/iam", {"bindings": [], "version": "3"}),
        ("PUT", "/storage/v1/b/bad/iam", {"etag": "CAk=", "bindings": []}),
        ("PATCH", "/storage/v1/b/bad/o/x", {"contentType": 1}),
        ("GET", "/storage/v1/b/bad%2Fx/o", None),
        ("DELETE", "/storage/v1/b/bad", None),
    ]
    emulator.storage.write_object("bad", "keep", b"1")
    for method, path, body in cases:
        result = http(url, method, path, body)
        assert 400 <= result.status < 500, (method, path, result)
        assert result.json()["error"]["code"] == result.status


def test_multipart_with_crlf_and_hash_check(http: HttpCall, emulator: Emulator) -> None:
    _make_bucket(http, emulator, "multi")
    data = b"\r\n--not-the-boundary\r\npayload\r\n"
    good = base64.b64encode(hashlib.md5(data).digest()).decode()

    def body(md5: str) -> bytes:
        meta = f'{{"name": "m.bin", "md5Hash": "{md5}"}}'.encode()
        return (
            b"--XyZ\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            + meta
            + b"\r\n--XyZ\r\nContent-Type: application/dicom\r\n\r\n"
            + data
            + b"\r\n--XyZ--\r\n"
        )

    headers = {"Content-Type": 'multipart/related; boundary="XyZ"'}
    path = "/upload/storage/v1/b/multi/o?uploadType=multipart"
    wrong = http(emulator.storage_url, "POST", path, body("AAAAAAAAAAAAAAAAAAAAAA=="), headers)
    assert wrong.status == 400
    ok = http(emulator.storage_url, "POST", path, body(good), headers)
    assert ok.status == 200, ok
    assert ok.json()["contentType"] == "application/dicom"
    assert emulator.storage.read_object("multi", "m.bin") == data


def test_multipart_with_single_quoted_boundary_and_lf(http: HttpCall, emulator: Emulator) -> None:
    """gcloud (apitools) single-quotes the boundary and ends lines with LF only."""
    _make_bucket(http, emulator, "quoted")
    body = (
        b"--==b==\nContent-Type: application/json\nMIME-Version: 1.0\n\n"
        b'{"name": "q.txt", "contentType": "text/plain"}\n'
        b"--==b==\nContent-Type: text/plain\nMIME-Version: 1.0\n"
        b"Content-Transfer-Encoding: binary\n\nhello\n\n--==b==--\n"
    )
    headers = {"Content-Type": "multipart/related; boundary='==b=='"}
    path = "/upload/storage/v1/b/quoted/o?uploadType=multipart"
    result = http(emulator.storage_url, "POST", path, body, headers)
    assert result.status == 200, result
    assert result.json()["contentType"] == "text/plain"
    assert emulator.storage.read_object("quoted", "q.txt") == b"hello\n"
