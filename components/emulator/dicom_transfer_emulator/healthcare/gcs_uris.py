"""The emulator's reading of the Cloud Storage URIs in import/export requests.

These rules are written from the API's documentation, independently of the ``dicom_transfer``
library, so that the emulator can disagree with the library (and a test against the emulator
then shows where the library is wrong). Sources, next to each rule below:

- ``[GcsSource]``: the description of ``GoogleCloudHealthcareV1DicomGcsSource.uri`` in the
  ``healthcare`` v1/v1beta1 discovery documents bundled with google-api-python-client, and
  the guide "Importing and exporting DICOM data using Cloud Storage"
  (``../shared/reference/002_…txt``, section on wildcards).
- ``[GcsDestination]``: ``GoogleCloudHealthcareV1DicomGcsDestination.uriPrefix``, same
  documents.
- ``[DicomFilterConfig]``: ``DicomFilterConfig.resourcePathsGcsUri``, same documents.
- ``[naming]``: Cloud Storage's bucket and object naming rules, as the emulator's storage
  side enforces them (:func:`.storage.model.validate_bucket_name`, ``validate_object_name``).

Every violation is a 400 INVALID_ARGUMENT :class:`~.errors.ApiException` naming the request
field, the value and the allowed form, as the real API answers a malformed request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from dicom_transfer_emulator.errors import ApiException, invalid_argument
from dicom_transfer_emulator.storage.errors import InvalidArgument
from dicom_transfer_emulator.storage.model import validate_bucket_name, validate_object_name

__all__ = ["GcsLocation", "ImportPattern", "compile_import_pattern", "parse_gcs_uri"]

#: What a URI names: one object, an import pattern, or an export directory.
UriKind = Literal["object", "pattern", "prefix"]

_FORMS: dict[UriKind, str] = {
    # [GcsSource] "The URI must be in the following format: gs://{bucket_id}/{object_id}".
    "pattern": "gs://{bucket_id}/{object_id}, wildcards *, ** and ? allowed in object_id",
    # [DicomFilterConfig] "must be in the format gs://bucket/path/to/object".
    "object": "gs://{bucket}/{path/to/object}",
    # [GcsDestination] "in the format gs://{bucket-id}/{path/to/destination/dir}".
    "prefix": "gs://{bucket-id}/{path/to/destination/dir}",
}


@dataclass(frozen=True)
class GcsLocation:
    """A parsed ``gs://`` URI.

    Attributes:
        bucket: the bucket name.
        path: everything after ``gs://{bucket}/``: an object name, an import pattern, or an
            export directory (``""`` for the bucket's root, prefixes only).
    """

    bucket: str
    path: str


@dataclass(frozen=True)
class ImportPattern:
    """A compiled ``gcsSource.uri`` object pattern.

    Attributes:
        literal_prefix: the text before the first wildcard: every match starts with it, so
            listing the bucket with this prefix finds every candidate.
        regex: matches (``fullmatch``) the object names the pattern selects.
    """

    literal_prefix: str
    regex: re.Pattern[str]

    def matches(self, name: str) -> bool:
        """Whether the object ``name`` is selected by the pattern."""
        return self.regex.fullmatch(name) is not None


def _invalid(field: str, value: str, kind: UriKind, why: str) -> ApiException:
    return invalid_argument(
        f"Invalid value at '{field}' ({value!r}): {why}. Allowed form: {_FORMS[kind]}."
    )


def parse_gcs_uri(value: str, field: str, *, kind: UriKind) -> GcsLocation:
    """Split a request's ``gs://`` URI into bucket and path.

    Args:
        value: the URI as sent, e.g. ``"gs://bucket/dir/**.dcm"``.
        field: the request field it came from, named in errors (``"gcsSource.uri"``).
        kind: ``"pattern"`` (import source: object id required, wildcards checked by
            :func:`compile_import_pattern`), ``"object"`` (filter file: object name
            required) or ``"prefix"`` (export directory: may be empty, i.e. the bucket root;
            [GcsDestination] "If there is no trailing slash, the service appends one"; ``*``
            and ``?`` are plain characters).

    Returns:
        The bucket and the path after ``gs://{bucket}/``.

    Raises:
        ApiException: 400 INVALID_ARGUMENT naming ``field``: not ``gs://``, a malformed
            bucket name, or a missing or malformed object name where one is required.
    """
    if not value.startswith("gs://"):
        raise _invalid(field, value, kind, "not a gs:// URI")
    bucket, _, path = value[len("gs://") :].partition("/")
    try:
        validate_bucket_name(bucket)
    except InvalidArgument as exc:
        raise _invalid(field, value, kind, exc.message.rstrip(".")) from None
    if kind != "prefix" and not path:
        raise _invalid(field, value, kind, "no object name after the bucket")
    # [GcsDestination] documents no character limit on the directory, and "*" or "?" are
    # legal in object names ([naming]: only advised against): a directory holding them is
    # written literally, not refused.
    if kind == "object" and path.endswith("/"):
        raise _invalid(field, value, kind, "names a directory, not an object")
    if kind != "prefix":
        try:
            validate_object_name(path)
        except InvalidArgument as exc:
            raise _invalid(field, value, kind, exc.message.rstrip(".")) from None
    return GcsLocation(bucket, path)


def compile_import_pattern(object_id: str, field: str, uri: str) -> ImportPattern:
    """Compile the wildcards of a ``gcsSource.uri`` object id.

    Rules, all from [GcsSource]:

    - ``*`` matches 0 or more non-separator characters (not ``/``);
    - ``?`` matches 1 character (the documentation does not exclude ``/``, so neither do we);
    - ``**`` matches 0 or more characters including separators; it "must be used at the end
      of a path and with no other wildcards in the path", optionally followed by a file
      extension ("such as .dcm"): ``dir/**.dcm`` selects every ``.dcm`` object under
      ``dir/``. An extension here is ``.`` and then characters other than ``/``, ``*``,
      ``?``;
    - "All other URI formats are invalid."

    Args:
        object_id: the part after ``gs://{bucket}/``.
        field: the request field, named in errors.
        uri: the whole URI, quoted in errors.

    Returns:
        The compiled pattern.

    Raises:
        ApiException: 400 INVALID_ARGUMENT naming ``field`` when ``**`` is not at the end
            (or before an extension) or is combined with another wildcard.
    """
    head, double, tail = object_id.partition("**")
    if double:
        if "*" in head or "?" in head or (tail and not re.fullmatch(r"\.[^/*?]+", tail)):
            raise _invalid(
                field,
                uri,
                "pattern",
                "'**' must end the path, optionally followed by a file extension such as "
                "'.dcm', with no other wildcard in the path",
            )
        return ImportPattern(head, re.compile(re.escape(head) + ".*" + re.escape(tail), re.S))
    parts = []
    for char in object_id:
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    literal = re.split(r"[*?]", object_id, maxsplit=1)[0]
    return ImportPattern(literal, re.compile("".join(parts), re.S))
