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

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "ANY_SYNTAX",
    "DICOMWEB_DEFAULTS",
    "DOCUMENTED_MIME_TYPES",
    "ExportFormat",
    "export_format",
    "unsupported",
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


def unsupported(value: str) -> ValueError:
    """The error for a ``mimeType`` that is not supported, listing what is."""
    return ValueError(
        f"unsupported mimeType {value!r}; supported: {', '.join(DOCUMENTED_MIME_TYPES)} "
        f"(or {', '.join(DICOMWEB_DEFAULTS)} without transfer-syntax, or unset for the "
        "stored form)"
    )


def export_format(
    media_type: str | None, params: Mapping[str, str] | None = None, *, spelled: str = ""
) -> ExportFormat:
    """Validate a ``gcsDestination.mimeType`` (or a DICOMweb media type), already split.

    The caller splits the text: ``gcsDestination.mimeType`` in
    :func:`dicom_transfer_emulator.healthcare.request_bodies.gcs_destination_format`, DICOMweb
    ``Accept`` headers in the server's media-type parser; this module only knows which values
    the API documents. UIDs are compared exactly.

    Args:
        media_type: ``type/subtype`` in lower case, e.g. ``"application/dicom"``; ``None`` or
            ``""`` means the stored form (``application/dicom; transfer-syntax=*``).
        params: the parameters, names in lower case, e.g.
            ``{"transfer-syntax": "1.2.840.10008.1.2"}``; only ``transfer-syntax`` is allowed.
        spelled: the value as the request spelled it, for the error message.

    Returns:
        The parsed format.

    Raises:
        ValueError: not a documented value nor a DICOMweb default form; the message lists
            the supported values.
    """
    if not media_type:
        return ExportFormat("application/dicom", ANY_SYNTAX, ".dcm")
    params = dict(params or {})
    syntax = params.pop("transfer-syntax", None)
    if params:
        raise unsupported(spelled or media_type)
    if syntax is None:
        if media_type == "image/png":
            return ExportFormat(media_type, None, ".png")
        if media_type in DICOMWEB_DEFAULTS:
            return ExportFormat(media_type, DICOMWEB_DEFAULTS[media_type], _EXTENSIONS[media_type])
        raise unsupported(spelled or media_type)
    if f"{media_type}; transfer-syntax={syntax}" not in DOCUMENTED_MIME_TYPES:
        raise unsupported(spelled or media_type)
    return ExportFormat(media_type, syntax, _EXTENSIONS[media_type])
