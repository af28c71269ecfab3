"""DICOM parsing for the emulated Healthcare API, and the metadata rows of BigQuery exports.

Import parses every object once with pydicom (:func:`parse_instance`) and keeps the original
bytes. Export renders those bytes elsewhere (:mod:`.rendering`, :mod:`.transcoding`); the
metadata of an instance becomes a row keyed by DICOM keyword (:func:`instance_row`).
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from dicom_transfer_emulator.dicom.records import InstanceRecord
from dicom_transfer_emulator.dicom.search_index import match_json

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_UNDEFINED_LENGTH = 0xFFFFFFFF
#: Value representations of binary values (PS3.5 §6.2), the ambiguous ones included: left
#: out of metadata rows, and bulk data in DICOMweb metadata when large.
BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "OB or OW", "US or OW"})
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})


class DicomParseError(ValueError):
    """An imported object is not a readable DICOM Part 10 instance."""


class RenderError(ValueError):
    """An instance cannot be rendered in the requested export format."""


class _EofCapture(logging.Handler):
    """Collects pydicom's "end of file" warnings for the current thread only.

    pydicom reports a premature end of file inside an undefined-length element as a warning
    and carries on; ``warnings.catch_warnings`` is process-global and therefore unusable
    from concurrent import threads, so we listen on pydicom's logger per thread instead.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        sink: list[str] | None = getattr(self._local, "sink", None)
        if sink is not None:
            message = record.getMessage()
            if "end of file" in message.lower() or "eof" in message.lower():
                sink.append(message)

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        sink: list[str] = []
        self._local.sink = sink
        try:
            yield sink
        finally:
            self._local.sink = None


_EOF_CAPTURE = _EofCapture()
logging.getLogger("pydicom").addHandler(_EOF_CAPTURE)


def read_dataset(data: bytes, *, stop_before_pixels: bool = False) -> FileDataset:
    """Read a DICOM Part 10 file, rejecting files without a preamble/file meta and truncation.

    Args:
        data: the file's bytes.
        stop_before_pixels: skip the pixel data (metadata-only reads).

    Returns:
        The dataset.

    Raises:
        DicomParseError: not Part 10, unreadable, or truncated.
    """
    with _EOF_CAPTURE.capture() as eof_messages:
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
        except InvalidDicomError as exc:
            reason = str(exc).split(" Use force=True", 1)[0]
            raise DicomParseError(f"not a DICOM Part 10 file: {reason}") from exc
        except Exception as exc:  # pydicom raises many types on garbage input
            raise DicomParseError(f"unreadable DICOM: {type(exc).__name__}: {exc}") from exc
    if eof_messages:
        raise DicomParseError(f"truncated DICOM file: {eof_messages[0]}")
    for tag, elem in ds._dict.items():
        if (
            isinstance(elem, RawDataElement)
            and isinstance(elem.value, bytes)
            and (elem.length != _UNDEFINED_LENGTH and len(elem.value) < elem.length)
        ):
            raise DicomParseError(
                f"truncated DICOM file: element {tag} declares {elem.length} bytes, "
                f"only {len(elem.value)} present"
            )
    return ds


_TAGS = {
    "StudyInstanceUID": BaseTag(0x0020000D),
    "SeriesInstanceUID": BaseTag(0x0020000E),
    "SOPInstanceUID": BaseTag(0x00080018),
    "SOPClassUID": BaseTag(0x00080016),
    "NumberOfFrames": BaseTag(0x00280008),
}


def _text(ds: Dataset, keyword: str) -> str:
    """An attribute's text without pydicom's per-element conversion (hot path of import)."""
    elem = ds._dict.get(_TAGS[keyword])
    if elem is None:
        return ""
    value = elem.value
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip(" \x00")
    return "" if value is None else str(value).strip(" \x00")


def _uid(ds: Dataset, keyword: str) -> str:
    text = _text(ds, keyword)
    if not text:
        raise DicomParseError(f"missing required attribute {keyword}")
    if len(text) > 64 or not _UID_RE.match(text):
        raise DicomParseError(f"invalid {keyword} {text!r}")
    return text


def parse_instance(data: bytes) -> InstanceRecord:
    """Parse one imported object.

    Args:
        data: the object's bytes.

    Returns:
        The record a store keeps of it (UIDs, transfer syntax, frames, size and the
        attributes searches use; the store sets ``storage_class`` and ``stored_at``).

    Raises:
        DicomParseError: the object is not a readable DICOM Part 10 instance with Study,
            Series and SOP Instance UIDs.
    """
    ds = read_dataset(data)
    study = _uid(ds, "StudyInstanceUID")
    series = _uid(ds, "SeriesInstanceUID")
    sop = _uid(ds, "SOPInstanceUID")
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if not syntax:
        raise DicomParseError("file meta information has no TransferSyntaxUID")
    sop_class = _text(ds, "SOPClassUID") or str(ds.file_meta.get("MediaStorageSOPClassUID", ""))
    try:
        frames = int(_text(ds, "NumberOfFrames") or 1)
    except ValueError:
        frames = 1
    return InstanceRecord(
        study,
        series,
        sop,
        sop_class.strip(),
        str(syntax),
        max(frames, 1),
        size=len(data),
        match_json=match_json(ds),
    )


# --- metadata rows (BigQuery export) ----------------------------------------------------


def _json_value(elem: Any, dropped: list[str] | None) -> Any:
    value = elem.value
    if elem.VR == "SQ":
        return [dataset_row(item, dropped) for item in value]
    if isinstance(value, MultiValue | list | tuple):
        return [_scalar(elem.VR, v) for v in value]
    return _scalar(elem.VR, value)


def _scalar(vr: str, value: Any) -> Any:
    if value is None:
        return None
    if vr in _NUMERIC_VRS:
        return value if isinstance(value, int | float) else str(value)
    return str(value)


def dataset_row(ds: Dataset, dropped: list[str] | None = None) -> dict[str, Any]:
    """Convert a dataset's attributes to a JSON row keyed by DICOM keyword.

    Binary values (pixel data, OB/OW/UN…) and attributes without a keyword are left out;
    sequences become lists of nested rows; numbers stay numbers, everything else is text.

    Args:
        ds: a dataset or sequence item.
        dropped: if given, receives the tag (8 hex digits, e.g. ``"00291010"``) of every
            attribute left out, except Pixel Data (which is the instance's blob, not
            metadata).

    Returns:
        The row.
    """
    row: dict[str, Any] = {}
    for elem in ds:
        keyword = elem.keyword
        if keyword and elem.VR not in BINARY_VRS:
            try:
                row[keyword] = _json_value(elem, dropped)
                continue
            except Exception:  # values pydicom cannot convert are left out, as binary ones are
                pass
        if dropped is not None and elem.tag != 0x7FE00010:
            dropped.append(f"{int(elem.tag):08X}")
    return row


def instance_row(data: bytes) -> dict[str, Any]:
    """The metadata row of one stored instance (BigQuery export).

    Args:
        data: the instance's stored bytes.

    Returns:
        The row (see :func:`dataset_row`).

    Raises:
        DicomParseError: the stored bytes are unreadable.
    """
    return dataset_row(read_dataset(data, stop_before_pixels=True))
