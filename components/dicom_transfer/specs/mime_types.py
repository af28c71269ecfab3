"""The ``gcsDestination.mimeType`` values of ``dicomStores.export``, and how to spell them.

Sources, next to each entry below:

- ``DISCOVERY``: the description of ``GoogleCloudHealthcareV1DicomGcsDestination.mimeType``
  (v1) and ``GoogleCloudHealthcareV1beta1DicomGcsDestination.mimeType`` (v1beta1) in the
  discovery documents bundled with google-api-python-client (the same text in both; revisions
  20261013 / 20260924). It lists 24 values, the file extension of each media type
  ("application/dicom -> .dcm - image/jpeg -> .jpg - image/png -> .png -
  application/octet-stream -> no extension") and "If unspecified, the instances are exported
  in the original DICOM format they were uploaded in". ``tests/unit/test_api_contract.py``
  regenerates :data:`DOCUMENTED_MIME_TYPES` from both documents and fails on any difference.
- ``DICOMWEB``: the same description says "Supported MIME types are consistent with supported
  formats in DICOMweb", and ``gcloud healthcare dicom-stores export gcs --help`` (Cloud SDK
  528) spells its example ``--mime-type=application/dicom`` and refers to the DICOM
  conformance statement (https://cloud.google.com/healthcare-api/docs/dicom, Retrieve
  transaction). There, and in DICOM PS3.18 §8.7.3, a media type without ``transfer-syntax``
  means the default syntax: Explicit VR Little Endian for ``application/dicom`` and
  ``application/octet-stream``; ``image/jpeg`` is a rendered type, always JPEG baseline.

Nothing else is accepted: in particular not ``transfer-syntax=`` with an empty value, which
older scraped reference pages showed where the ``*`` had been lost.

Spelling follows media-type syntax (RFC 9110 §8.3.1): type, subtype and parameter name are
case-insensitive, whitespace around ``;`` is optional, a parameter value may be quoted. The
request carries the documented spelling. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DICOMWEB_DEFAULT_MIME_TYPES",
    "DOCUMENTED_MIME_TYPES",
    "EXPORT_MIME_TYPES",
    "EXTENSIONS",
    "MIME_FORM",
    "ExportMimeType",
    "export_file_extension_of",
    "normalize_mime_type",
]

Source = Literal["DISCOVERY", "DICOMWEB"]

EXTENSIONS: dict[str, str] = {
    "application/dicom": ".dcm",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "application/octet-stream": "",
}
"""File extension of the exported files of each media type (source: ``DISCOVERY``)."""


@dataclass(frozen=True)
class ExportMimeType:
    """One accepted ``mimeType`` value.

    Attributes:
        mime_type: The documented spelling, sent in the request.
        description: What the source says the value means.
        source: ``DISCOVERY`` or ``DICOMWEB`` (see the module docstring).
    """

    mime_type: str
    description: str
    source: Source

    @property
    def extension(self) -> str:
        """``.dcm``, ``.jpg``, ``.png`` or ``""`` (octet-stream), from :data:`EXTENSIONS`."""
        return EXTENSIONS[self.mime_type.partition(";")[0]]


def _documented(mime_type: str, description: str) -> ExportMimeType:
    return ExportMimeType(mime_type, description, "DISCOVERY")


_TS = "application/dicom; transfer-syntax="

DOCUMENTED_MIME_TYPES: tuple[ExportMimeType, ...] = (
    _documented(_TS + "1.2.840.10008.1.2", "DICOM Implicit VR Little Endian"),
    _documented(_TS + "1.2.840.10008.1.2.1", "DICOM Explicit VR Little Endian"),
    _documented(_TS + "1.2.840.10008.1.2.1.99", "DICOM Deflated Explicit VR Little Endian"),
    _documented(_TS + "1.2.840.10008.1.2.4.50", "DICOM with embedded JPEG Baseline"),
    _documented(_TS + "1.2.840.10008.1.2.4.51", "DICOM with embedded JPEG Extended"),
    _documented(_TS + "1.2.840.10008.1.2.4.57", "DICOM with embedded JPEG Lossless"),
    _documented(
        _TS + "1.2.840.10008.1.2.4.70", "DICOM with embedded JPEG Lossless First-Order Prediction"
    ),
    _documented(_TS + "1.2.840.10008.1.2.4.80", "DICOM with embedded JPEG-LS Lossless"),
    _documented(
        _TS + "1.2.840.10008.1.2.4.81", "DICOM with embedded JPEG-LS Lossy (Near-Lossless)"
    ),
    _documented(_TS + "1.2.840.10008.1.2.4.90", "DICOM with embedded JPEG 2000 Lossless Only"),
    _documented(_TS + "1.2.840.10008.1.2.4.91", "DICOM with embedded JPEG 2000"),
    _documented(_TS + "1.2.840.10008.1.2.4.110", "DICOM with embedded JPEG XL Lossless"),
    _documented(_TS + "1.2.840.10008.1.2.4.111", "DICOM with embedded JPEG XL JPEG Recompression"),
    _documented(_TS + "1.2.840.10008.1.2.4.112", "DICOM with embedded JPEG XL"),
    _documented(
        _TS + "1.2.840.10008.1.2.4.201",
        "DICOM with embedded High-Throughput JPEG 2000 Lossless",
    ),
    _documented(
        _TS + "1.2.840.10008.1.2.4.202",
        "DICOM with embedded High-Throughput JPEG 2000 with RPCL Options Lossless",
    ),
    _documented(_TS + "1.2.840.10008.1.2.4.203", "DICOM with embedded High-Throughput JPEG 2000"),
    _documented(_TS + "1.2.840.10008.1.2.5", "DICOM with embedded RLE Lossless"),
    _documented(
        _TS + "1.2.840.10008.1.2.8.1", "DICOM with embedded Deflated Image Frame Compression"
    ),
    _documented(_TS + "*", "DICOM with no transcoding"),
    _documented(
        "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1",
        "raw uncompressed PixelData",
    ),
    _documented(
        "application/octet-stream; transfer-syntax=*",
        "raw PixelData in whatever format it was uploaded in",
    ),
    _documented("image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50", "Consumer JPEG"),
    _documented("image/png", ""),
)
"""The 24 values of the discovery documents, in their order and spelling (``DISCOVERY``)."""

DICOMWEB_DEFAULT_MIME_TYPES: tuple[ExportMimeType, ...] = (
    ExportMimeType(
        "application/dicom",
        "DICOM in the default transfer syntax, Explicit VR Little Endian (gcloud's example)",
        "DICOMWEB",
    ),
    ExportMimeType(
        "application/octet-stream",
        "raw PixelData in the default transfer syntax, Explicit VR Little Endian",
        "DICOMWEB",
    ),
    ExportMimeType("image/jpeg", "Consumer JPEG (rendered; JPEG baseline)", "DICOMWEB"),
)
"""Media types without ``transfer-syntax``, meaning the DICOMweb default (``DICOMWEB``)."""

EXPORT_MIME_TYPES: dict[str, ExportMimeType] = {
    entry.mime_type: entry for entry in DOCUMENTED_MIME_TYPES + DICOMWEB_DEFAULT_MIME_TYPES
}
"""Every accepted value, by its documented spelling."""


def _form() -> str:
    syntaxes: dict[str, list[str]] = {}
    for mime in EXPORT_MIME_TYPES:
        media, _, syntax = mime.partition("; transfer-syntax=")
        syntaxes.setdefault(media, []).append(syntax or "(none)")
    parts = [
        f"{media} with transfer-syntax " + ", ".join(values) if values != ["(none)"] else media
        for media, values in syntaxes.items()
    ]
    return (
        "a documented export MIME type: "
        + "; ".join(parts)
        + " (e.g. 'application/dicom; transfer-syntax=*'; transfer-syntax '(none)' means the "
        "parameter left out; or unset: as stored)"
    )


MIME_FORM = _form()
"""The accepted values, in words (for error messages)."""

# RFC 9110 §5.6.2 token and §5.6.4 quoted-string; OWS around ";" and "=" is tolerated since
# users copy values from documents that space them differently.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_MEDIA_RE = re.compile(rf"\s*(?P<type>{_TOKEN})/(?P<subtype>{_TOKEN})\s*")
_PARAM_RE = re.compile(rf"\s*(?P<name>{_TOKEN})\s*=\s*(?P<value>{_TOKEN}|{_QUOTED})\s*")
_QUOTED_PAIR_RE = re.compile(r"\\(.)")


def _parse(value: str) -> tuple[str, dict[str, str]] | None:
    media, *params = value.split(";")
    match = _MEDIA_RE.fullmatch(media)
    if match is None:
        return None
    parsed: dict[str, str] = {}
    for param in params:
        pmatch = _PARAM_RE.fullmatch(param)
        if pmatch is None:
            return None
        name = pmatch["name"].lower()
        if name in parsed:
            return None
        raw = pmatch["value"]
        parsed[name] = _QUOTED_PAIR_RE.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw
    return f"{match['type']}/{match['subtype']}".lower(), parsed


def normalize_mime_type(value: str) -> str | None:
    """The documented spelling of an accepted export MIME type, or None if not accepted.

    ``Application/DICOM;Transfer-Syntax="1.2.840.10008.1.2"`` gives
    ``application/dicom; transfer-syntax=1.2.840.10008.1.2``. Semicolons inside a quoted
    value are not supported (no accepted value contains one).

    Args:
        value: The MIME type as given.

    Returns:
        A key of :data:`EXPORT_MIME_TYPES`, or None.
    """
    parsed = _parse(value)
    if parsed is None:
        return None
    media, params = parsed
    if set(params) - {"transfer-syntax"}:
        return None
    canonical = (
        f"{media}; transfer-syntax={params['transfer-syntax']}"
        if "transfer-syntax" in params
        else media
    )
    return canonical if canonical in EXPORT_MIME_TYPES else None


def export_file_extension_of(canonical: str | None) -> str:
    """File extension of the files exported as ``canonical`` (None: as stored, ``.dcm``).

    Args:
        canonical: A key of :data:`EXPORT_MIME_TYPES`, or None.

    Returns:
        ``.dcm``, ``.jpg``, ``.png`` or ``""``.

    Raises:
        KeyError: ``canonical`` is not a key of :data:`EXPORT_MIME_TYPES`.
    """
    if canonical is None:
        return EXTENSIONS["application/dicom"]
    return EXPORT_MIME_TYPES[canonical].extension
