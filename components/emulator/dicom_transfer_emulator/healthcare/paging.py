"""``pageSize``/``pageToken`` paging of the Healthcare API's list methods.

Source: ``pageSize`` of ``datasets.list`` and ``dicomStores.list`` in the discovery
documents: "The maximum number of items to return. If not specified, 100 is used. May not be
larger than 1000." ``operations.list`` says only "The standard list page size"; the emulator
applies the same default and cap to it (its choice). The token is opaque to clients; the
emulator's is the base64 of the offset.
"""

from __future__ import annotations

import base64
from typing import Any

from dicom_transfer_emulator.errors import invalid_argument
from dicom_transfer_emulator.server.http import Request, Response

__all__ = ["page_response"]

_DEFAULT_PAGE_SIZE = 100
_MAX_PAGE_SIZE = 1000


def page_response(request: Request, key: str, items: list[Any]) -> Response:
    """One page of ``items`` as ``{key: [...], "nextPageToken": …}`` (token only if more).

    Raises:
        ApiException: 400 INVALID_ARGUMENT for a negative ``pageSize`` or a token this
            emulator did not issue.
    """
    size = request.int_arg("pageSize", _DEFAULT_PAGE_SIZE) or _DEFAULT_PAGE_SIZE
    if size < 0:
        raise invalid_argument("pageSize must not be negative.")
    size = min(size, _MAX_PAGE_SIZE)
    token = request.arg("pageToken") or ""
    offset = 0
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
        except (ValueError, UnicodeError):
            raise invalid_argument(f"Invalid pageToken {token!r}.") from None
    body: dict[str, Any] = {key: items[offset : offset + size]}
    if offset + size < len(items):
        body["nextPageToken"] = base64.urlsafe_b64encode(f"o:{offset + size}".encode()).decode()
    return Response.json_response(body)
