"""The ``gcsDestination.mimeType`` values the emulator accepts, and what each one means.

Source: the description of ``GoogleCloudHealthcareV1DicomGcsDestination.mimeType`` (v1) and
``GoogleCloudHealthcareV1beta1DicomGcsDestination.mimeType`` (v1beta1) in the discovery
documents bundled with google-api-python-client (identical text in both). That text lists
24 values; :data:`DOCUMENTED_MIME_TYPES` is that list, in its order
(``tests/emulator/healthcare/test_export_formats.py`` regenerates it from the documents and fails on
any difference). It also says:

- "If unspecified, the instances are exported in the original DICOM format they were
  uploaded in" — an unset or empty ``mimeType`` is ``application/dicom; transfer-syntax=*``;
- "Supported MIME types are consistent with supported formats in DICOMweb" — so the
  DICOMweb forms without a ``transfer-syntax`` parameter are accepted too, with the defaults
  of the Cloud Healthcare API DICOM conformance statement
  (https://cloud.google.com/healthcare-api/docs/dicom, Retrieve transaction: Explicit VR
  Little Endian is the "(default)" for ``application/dicom`` and for frames as
  ``application/octet-stream``; rendered ``image/jpeg`` is consumer JPEG):
  :data:`DICOMWEB_DEFAULTS`.

Anything else — including ``transfer-syntax=`` with an empty value, which older reference
pages showed where the ``*`` was lost — is not documented and is answered with 400
INVALID_ARGUMENT naming ``gcsDestination.mimeType``.

File extensions, same source: "application/dicom -> .dcm - image/jpeg -> .jpg - image/png ->
.png - application/octet-stream -> no extension".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANY_SYNTAX",
    "DICOMWEB_DEFAULTS",
    "DOCUMENTED_MIME_TYPES",
    "ExportFormat",
    "parse_export_format",
]

#: ``transfer-syntax=*``: no transcoding.
ANY_SYNTAX = "*"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"

#: The documented values, in the discovery documents' order and spelling.
DOCUMENTED_MIME_TYPES: tuple[str, ...] = (
    "application/dicom; transfer-syntax=1.2.840.10008.1.2",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.1.99",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.51",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.57",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.70",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.81",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.91",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.110",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.111",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.112",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.201",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.202",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.203",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.5",
    "application/dicom; transfer-syntax=1.2.840.10008.1.2.8.1",
    "application/dicom; transfer-syntax=*",
    "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1",
    "application/octet-stream; transfer-syntax=*",
    "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50",
    "image/png",
)

#: DICOMweb forms without a transfer syntax, and the syntax each one means.
DICOMWEB_DEFAULTS: dict[str, str] = {
    "application/dicom": EXPLICIT_VR_LITTLE_ENDIAN,
    "application/octet-stream": EXPLICIT_VR_LITTLE_ENDIAN,
    "image/jpeg": JPEG_BASELINE,
}

_EXTENSIONS = {
    "application/dicom": ".dcm",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "application/octet-stream": "",
}


@dataclass(frozen=True)
class ExportFormat:
    """A validated ``gcsDestination.mimeType``.

    Attributes:
        mime_type: ``application/dicom``, ``application/octet-stream``, ``image/jpeg`` or
            ``image/png``.
        transfer_syntax: the transfer syntax UID to write, :data:`ANY_SYNTAX` for "as
            stored", or ``None`` for ``image/png`` (which has none).
        extension: file extension including the dot, ``""`` for octet-stream.
    """

    mime_type: str
    transfer_syntax: str | None
    extension: str

    @property
    def per_frame(self) -> bool:
        """Whether multi-frame instances are written as one file per frame."""
        return self.mime_type != "application/dicom"


def _split(media: str, params: list[str], value: str) -> tuple[str, str | None]:
    syntax: str | None = None
    for param in params:
        key, sep, raw = param.partition("=")
        if not sep or key.strip().lower() != "transfer-syntax" or syntax is not None:
            raise _unsupported(value)
        syntax = raw.strip().strip('"')
    return media, syntax


def _unsupported(value: str) -> ValueError:
    return ValueError(
        f"unsupported mimeType {value!r}; supported: {', '.join(DOCUMENTED_MIME_TYPES)} "
        f"(or {', '.join(DICOMWEB_DEFAULTS)} without transfer-syntax, or unset for the "
        "stored form)"
    )


def parse_export_format(value: str | None) -> ExportFormat:
    """Validate a ``gcsDestination.mimeType`` value.

    Media types and the parameter name are case-insensitive and spaces around ``;`` and
    ``=`` are ignored (MIME syntax, RFC 2045 §5.1); UIDs are compared exactly.

    Args:
        value: e.g. ``"application/dicom; transfer-syntax=1.2.840.10008.1.2"``; ``None`` or
            empty means the stored form (``application/dicom; transfer-syntax=*``).

    Returns:
        The parsed format.

    Raises:
        ValueError: not a documented value nor a DICOMweb default form; the message lists
            the supported values.
    """
    if value is None or not value.strip():
        return ExportFormat("application/dicom", ANY_SYNTAX, ".dcm")
    media, *params = (p.strip() for p in value.split(";"))
    media, syntax = _split(media.lower(), params, value)
    if syntax is None:
        if media == "image/png":
            return ExportFormat(media, None, ".png")
        if media in DICOMWEB_DEFAULTS:
            return ExportFormat(media, DICOMWEB_DEFAULTS[media], _EXTENSIONS[media])
        raise _unsupported(value)
    if f"{media}; transfer-syntax={syntax}" not in DOCUMENTED_MIME_TYPES:
        raise _unsupported(value)
    return ExportFormat(media, syntax, _EXTENSIONS[media])
