"""DICOM parsing and export rendering for the emulated Healthcare API.

Import parses every object once with pydicom (:func:`parse_instance`) and keeps the original
bytes; export renders those bytes in the requested MIME type (:func:`render_instance`):

- unset, ``application/dicom`` or ``application/dicom; transfer-syntax=``: the original
  bytes, ``.dcm``;
- ``application/dicom; transfer-syntax=1.2.840.10008.1.2.1``: explicit VR little endian
  (decompressed, byte-swapped from big endian), ``.dcm``;
- ``application/dicom; transfer-syntax=1.2.840.10008.1.2.4.{50,90,91}``: the original bytes
  when already in that syntax, otherwise a per-instance failure (no encoder here);
- ``application/octet-stream[; transfer-syntax=]``: raw PixelData as stored, no extension;
- ``application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1``: uncompressed little
  endian pixel data;
- ``image/jpeg[; transfer-syntax=1.2.840.10008.1.2.4.50]``: 8-bit rendering, ``.jpg``;
- ``image/png``: 8-bit rendering, ``.png``.

Multi-frame instances (``NumberOfFrames`` > 1) rendered as octet-stream, JPEG or PNG produce one
file per frame (frames numbered from 1). An instance that cannot be rendered in the requested
form raises :class:`RenderError` with a message naming the reason; no file is produced for it.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_UNDEFINED_LENGTH = 0xFFFFFFFF
_NATIVE_SYNTAXES = frozenset(
    {
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
    }
)
_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "OB or OW", "US or OW"})
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})


class DicomParseError(ValueError):
    """An imported object is not a readable DICOM Part 10 instance."""


class RenderError(ValueError):
    """An instance cannot be rendered in the requested export format."""


@dataclass(frozen=True)
class ParsedInstance:
    """What the store needs to know about one imported instance."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    number_of_frames: int


@dataclass(frozen=True)
class ExportFormat:
    """A validated ``gcsDestination.mimeType``.

    Attributes:
        mime_type: ``application/dicom``, ``application/octet-stream``, ``image/jpeg`` or
            ``image/png``.
        transfer_syntax: the requested transfer syntax UID, or ``None`` for "as stored"
            (DICOM/octet-stream) or the format's default (images).
        extension: file extension including the dot, ``""`` for octet-stream.
    """

    mime_type: str
    transfer_syntax: str | None
    extension: str

    @property
    def per_frame(self) -> bool:
        """Whether multi-frame instances are written as one file per frame."""
        return self.mime_type != "application/dicom"


@dataclass(frozen=True)
class RenderedFile:
    """One exported object: ``frame`` is ``None`` unless the instance is split per frame."""

    frame: int | None
    data: bytes
    content_type: str


_SUPPORTED: dict[tuple[str, str | None], str] = {
    ("application/dicom", None): ".dcm",
    ("application/dicom", EXPLICIT_VR_LITTLE_ENDIAN): ".dcm",
    ("application/dicom", JPEG_BASELINE): ".dcm",
    ("application/dicom", JPEG_2000_LOSSLESS): ".dcm",
    ("application/dicom", JPEG_2000): ".dcm",
    ("application/octet-stream", None): "",
    ("application/octet-stream", EXPLICIT_VR_LITTLE_ENDIAN): "",
    ("image/jpeg", None): ".jpg",
    ("image/jpeg", JPEG_BASELINE): ".jpg",
    ("image/png", None): ".png",
}


def parse_export_format(value: str | None) -> ExportFormat:
    """Validate a ``gcsDestination.mimeType`` value.

    Args:
        value: e.g. ``"application/dicom; transfer-syntax=1.2.840.10008.1.2.1"``; empty or
            ``None`` means the original DICOM bytes.

    Returns:
        The parsed format.

    Raises:
        ValueError: the MIME type or transfer syntax is not one the API supports.
    """
    if value is None or not value.strip():
        return ExportFormat("application/dicom", None, ".dcm")
    parts = [p.strip() for p in value.split(";")]
    mime = parts[0].lower()
    syntax: str | None = None
    for param in parts[1:]:
        if not param:
            continue
        key, sep, raw = param.partition("=")
        if not sep or key.strip().lower() != "transfer-syntax":
            raise ValueError(f"unsupported MIME type parameter {param!r} in {value!r}")
        raw = raw.strip().strip('"')
        syntax = None if raw in ("", "*") else raw
    extension = _SUPPORTED.get((mime, syntax))
    if extension is None:
        allowed = ", ".join(
            m if ts is None else f"{m}; transfer-syntax={ts}" for m, ts in _SUPPORTED
        )
        raise ValueError(f"unsupported mimeType {value!r}; supported: {allowed}")
    return ExportFormat(mime, syntax, extension)


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


def parse_instance(data: bytes) -> ParsedInstance:
    """Parse one imported object.

    Args:
        data: the object's bytes.

    Returns:
        The instance's identifying attributes.

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
    return ParsedInstance(study, series, sop, sop_class.strip(), str(syntax), max(frames, 1))


# --- export rendering -------------------------------------------------------------------


def render_instance(data: bytes, fmt: ExportFormat) -> list[RenderedFile]:
    """Render one stored instance in an export format.

    Args:
        data: the instance's stored (original) bytes.
        fmt: the requested format.

    Returns:
        One file, or one per frame for per-frame formats of multi-frame instances.

    Raises:
        RenderError: the instance cannot be rendered as requested (no pixel data, no decoder
            for its transfer syntax, unsupported transcoding).
    """
    if fmt.mime_type == "application/dicom":
        return [RenderedFile(None, _render_dicom(data, fmt.transfer_syntax), fmt.mime_type)]
    try:
        ds = read_dataset(data)
    except DicomParseError as exc:
        raise RenderError(str(exc)) from exc
    if "PixelData" not in ds:
        raise RenderError(f"instance has no pixel data; cannot export it as {fmt.mime_type}")
    if fmt.mime_type == "application/octet-stream":
        frames = _octet_frames(ds, uncompressed=fmt.transfer_syntax is not None)
    else:
        frames = [_encode_image(img, fmt.mime_type) for img in _rendered_frames(ds)]
    if len(frames) == 1:
        return [RenderedFile(None, frames[0], fmt.mime_type)]
    return [RenderedFile(i, frame, fmt.mime_type) for i, frame in enumerate(frames, start=1)]


def _syntax_of(ds: FileDataset) -> UID:
    return UID(str(ds.file_meta.get("TransferSyntaxUID", "")))


def _render_dicom(data: bytes, target: str | None) -> bytes:
    if target is None:
        return data
    try:
        ds = read_dataset(data)
    except DicomParseError as exc:
        raise RenderError(str(exc)) from exc
    source = _syntax_of(ds)
    if source == target:
        return data
    if target != EXPLICIT_VR_LITTLE_ENDIAN:
        raise RenderError(
            f"transcoding from {source} ({source.name}) to {target} ({UID(target).name}) "
            "is not supported by the emulator"
        )
    return _to_explicit_little_endian(ds)


def _decompress(ds: FileDataset) -> None:
    syntax = _syntax_of(ds)
    try:
        ds.decompress()
    except Exception as exc:
        raise RenderError(
            f"cannot decode pixel data in transfer syntax {syntax} ({syntax.name}): "
            f"{str(exc).splitlines()[0]}"
        ) from exc


def _swap(value: bytes, width: int) -> bytes:
    usable = len(value) - len(value) % width
    swapped = np.frombuffer(value[:usable], dtype=f">u{width}").astype(f"<u{width}").tobytes()
    return swapped + value[usable:]


def _big_to_little(ds: FileDataset) -> None:
    """Byte-swap binary values of a dataset read as big endian (pydicom keeps them raw)."""
    for elem in ds.iterall():
        if not isinstance(elem.value, bytes):
            continue
        if elem.tag == 0x7FE00010:
            bits = int(ds.get("BitsAllocated", 0) or 0)
            if elem.VR == "OB" or bits == 8:
                width = 1 if elem.VR == "OB" else 2
            elif bits in (16, 32, 64):
                width = bits // 8
            else:
                raise RenderError(f"cannot convert big endian pixel data with BitsAllocated={bits}")
        else:
            width = _SWAP_WIDTH.get(elem.VR, 1)
        if width > 1:
            elem.value = _swap(elem.value, width)


def _to_explicit_little_endian(ds: FileDataset) -> bytes:
    source = _syntax_of(ds)
    if source.is_compressed:
        _decompress(ds)
    elif source == ExplicitVRBigEndian:
        _big_to_little(ds)
    elif source not in _NATIVE_SYNTAXES:
        raise RenderError(f"unsupported source transfer syntax {source}")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    try:
        pydicom.dcmwrite(out, ds, enforce_file_format=True)
    except Exception as exc:
        raise RenderError(f"cannot write explicit VR little endian: {exc}") from exc
    return out.getvalue()


def _frame_count(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _split_native(ds: Dataset, pixel_data: bytes) -> list[bytes]:
    frames = _frame_count(ds)
    if frames == 1:
        return [pixel_data]
    bits = int(ds.get("BitsAllocated", 8) or 8)
    pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
    if (pixels * bits) % 8:
        raise RenderError(f"frames of {bits}-bit pixel data are not byte aligned")
    size = pixels * bits // 8
    if len(pixel_data) < size * frames:
        raise RenderError(
            f"pixel data holds {len(pixel_data)} bytes, {frames} frames need {size * frames}"
        )
    return [pixel_data[i * size : (i + 1) * size] for i in range(frames)]


def _octet_frames(ds: FileDataset, *, uncompressed: bool) -> list[bytes]:
    syntax = _syntax_of(ds)
    if uncompressed:
        if syntax.is_compressed:
            _decompress(ds)
        elif syntax == ExplicitVRBigEndian:
            _big_to_little(ds)
        return _split_native(ds, bytes(ds.PixelData))
    if syntax.is_encapsulated:
        return [bytes(f) for f in generate_frames(ds.PixelData, number_of_frames=_frame_count(ds))]
    return _split_native(ds, bytes(ds.PixelData))


def _rendered_frames(ds: FileDataset) -> list[np.ndarray[Any, Any]]:
    syntax = _syntax_of(ds)
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise RenderError(
            f"cannot decode pixel data in transfer syntax {syntax} ({syntax.name}): "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    frames = [arr] if _frame_count(ds) == 1 else list(arr)
    return [_to_8bit(ds, frame) for frame in frames]


def _to_8bit(ds: Dataset, frame: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut

    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    data: np.ndarray[Any, Any]
    if photometric == "PALETTE COLOR":
        try:
            data = apply_color_lut(frame, ds).astype(np.float64)
        except Exception as exc:
            raise RenderError(f"cannot apply the palette color lookup table: {exc}") from exc
    elif frame.ndim == 2:
        data = apply_modality_lut(frame, ds)
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            with suppress(Exception):  # an unusable VOI LUT: fall back to min/max scaling
                data = apply_voi_lut(data, ds)
        data = data.astype(np.float64)
    else:
        data = frame.astype(np.float64)
    low, high = float(data.min()), float(data.max())
    if frame.ndim == 3 and int(ds.get("BitsStored", 8) or 8) <= 8:
        low, high = 0.0, 255.0
    scaled = np.zeros(data.shape) if high <= low else (data - low) * (255.0 / (high - low))
    out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


def _encode_image(frame: np.ndarray[Any, Any], mime_type: str) -> bytes:
    from PIL import Image

    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim == 2:
        image = Image.fromarray(frame, mode="L")
    elif frame.ndim == 3 and frame.shape[-1] == 3:
        image = Image.fromarray(frame, mode="RGB")
    else:
        raise RenderError(f"cannot render pixel array of shape {frame.shape} as an image")
    out = io.BytesIO()
    if mime_type == "image/jpeg":
        image.save(out, format="JPEG", quality=90)
    else:
        image.save(out, format="PNG")
    return out.getvalue()


# --- metadata rows (BigQuery export) ----------------------------------------------------


def _json_value(elem: Any) -> Any:
    value = elem.value
    if elem.VR == "SQ":
        return [dataset_row(item) for item in value]
    if isinstance(value, MultiValue | list | tuple):
        return [_scalar(elem.VR, v) for v in value]
    return _scalar(elem.VR, value)


def _scalar(vr: str, value: Any) -> Any:
    if value is None:
        return None
    if vr in _NUMERIC_VRS:
        return value if isinstance(value, int | float) else str(value)
    return str(value)


def dataset_row(ds: Dataset) -> dict[str, Any]:
    """Convert a dataset's attributes to a JSON row keyed by DICOM keyword.

    Binary values (pixel data, OB/OW/UN…) and attributes without a keyword are left out;
    sequences become lists of nested rows; numbers stay numbers, everything else is text.

    Args:
        ds: a dataset or sequence item.

    Returns:
        The row.
    """
    row: dict[str, Any] = {}
    for elem in ds:
        keyword = elem.keyword
        if not keyword or elem.VR in _BINARY_VRS:
            continue
        try:
            row[keyword] = _json_value(elem)
        except Exception:  # values pydicom cannot convert are left out, as binary ones are
            continue
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
