"""``multipart/related`` bodies (RFC 2387) and ``Accept`` media ranges, as DICOMweb uses them.

Parsing goes through the standard library's MIME parser (:mod:`email`), which handles
boundaries, part headers and preambles; building writes the simple layout PS3.18 §8.6.1.2
shows (one ``Content-Type`` header per part, CRLF line ends, a random boundary).
"""

from __future__ import annotations

import email.parser
import email.policy
import secrets
from dataclasses import dataclass, field

from werkzeug.http import dump_options_header, parse_list_header, parse_options_header


class MultipartError(ValueError):
    """A request body is not the multipart message its ``Content-Type`` announces."""


@dataclass(frozen=True)
class MediaType:
    """One media type with its parameters (names lower-case, values unquoted).

    Attributes:
        type: ``type/subtype`` in lower case, e.g. ``multipart/related``.
        params: e.g. ``{"type": "application/dicom", "transfer-syntax": "*"}``.
    """

    type: str
    params: dict[str, str] = field(default_factory=dict)

    def param(self, name: str, default: str | None = None) -> str | None:
        """A parameter's value, or ``default``."""
        return self.params.get(name, default)

    def to_header(self) -> str:
        """The media type as a header value, e.g. ``text/plain; charset=utf-8`` (values
        that are not RFC 9110 tokens are quoted, by werkzeug's ``dump_options_header``)."""
        return dump_options_header(self.type, self.params)


def parse_media_type(text: str) -> MediaType:
    """Parse ``type/subtype; name=value; …`` (RFC 9110 §8.3.1) with werkzeug's
    :func:`~werkzeug.http.parse_options_header` (quoting, case of names)."""
    value, params = parse_options_header(text)
    return MediaType(value.strip().lower(), {k.lower(): v for k, v in params.items()})


def parse_accept(header: str | None) -> list[MediaType]:
    """The media ranges of an ``Accept`` header, most preferred first (``q`` weights).

    Args:
        header: the header value; None or empty means ``*/*``.
    """
    items = parse_list_header(header or "")
    if not items:
        return [MediaType("*/*")]
    # werkzeug's parse_accept_header would also reorder by specificity; the emulator keeps
    # the client's order among equal weights, so only the splitting is werkzeug's.
    ranges = [parse_media_type(item) for item in items]

    def weight(media: MediaType) -> float:
        try:
            return float(media.param("q", "1") or 1)
        except ValueError:
            return 0.0

    return sorted((m for m in ranges if weight(m) > 0), key=weight, reverse=True)


def parse_related(content_type: str, body: bytes) -> list[tuple[MediaType, bytes]]:
    """Split a ``multipart/related`` body into its parts.

    Args:
        content_type: the request's ``Content-Type`` (with the ``boundary`` parameter).
        body: the request body.

    Returns:
        ``(part media type, part bytes)`` in order; a part without ``Content-Type`` gets
        the message's ``type`` parameter (RFC 2387 §3.1).

    Raises:
        MultipartError: no boundary, or no part found.
    """
    media = parse_media_type(content_type)
    if not media.param("boundary"):
        raise MultipartError(f"Content-Type {content_type!r} has no boundary parameter.")
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise MultipartError("The body is not a multipart message.")
    root_type = media.param("type", "application/octet-stream") or "application/octet-stream"
    parts: list[tuple[MediaType, bytes]] = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            raise MultipartError("A part of the multipart body could not be read.")
        part_type = part.get("Content-Type")
        parts.append((parse_media_type(str(part_type) if part_type else root_type), payload))
    if not parts:
        raise MultipartError(
            f"No part delimited by boundary {media.param('boundary')!r} in the body."
        )
    return parts


def build_related(parts: list[tuple[str, bytes]], root_type: str) -> tuple[str, bytes]:
    """Build a ``multipart/related`` body.

    Args:
        parts: ``(Content-Type, bytes)`` of each part.
        root_type: the message's ``type`` parameter (e.g. ``application/dicom``).

    Returns:
        ``(Content-Type header value, body)``.
    """
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for part_type, data in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode("latin-1"))
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode("latin-1"))
    return f'multipart/related; type="{root_type}"; boundary={boundary}', b"".join(chunks)


__all__ = [
    "MediaType",
    "MultipartError",
    "build_related",
    "parse_accept",
    "parse_media_type",
    "parse_related",
]
