"""Rendering stored instances as the files of an export to Cloud Storage.

One exported object per instance, or one per frame for ``application/octet-stream``,
``image/jpeg`` and ``image/png`` of multi-frame instances (frames numbered from 1), as the
``GcsDestination.mimeType`` description says ("…/{instance_id}[/{frame_number}].{extension}";
"The frame_number component exists only for multi-frame instances"):

- ``application/dicom; transfer-syntax=…``: :func:`.dicom.transcoding.transcode`;
- ``application/octet-stream; transfer-syntax=*``: the PixelData as stored (each frame of
  encapsulated pixel data as it is); ``…=1.2.840.10008.1.2.1``: uncompressed little endian;
- ``image/jpeg`` / ``image/png``: an 8-bit rendering (modality LUT, VOI LUT or min/max
  window, MONOCHROME1 inverted) encoded by Pillow.

An instance that cannot be rendered raises :class:`~.dicom.parsing.RenderError` naming the reason;
no file is written for it.
"""

from __future__ import annotations

import io
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileDataset
from pydicom.encaps import generate_frames

from dicom_transfer_emulator.dicom.export_formats import ANY_SYNTAX, ExportFormat
from dicom_transfer_emulator.dicom.parsing import DicomParseError, RenderError, read_dataset
from dicom_transfer_emulator.dicom.transcoding import (
    cannot_decode,
    check_decodable,
    is_encapsulated,
    make_native,
    one_line,
    syntax_of,
    transcode,
)

__all__ = ["RenderedFile", "render_instance"]


@dataclass(frozen=True)
class RenderedFile:
    """One exported object: ``frame`` is ``None`` unless the instance is split per frame."""

    frame: int | None
    data: bytes
    content_type: str


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
        return [
            RenderedFile(None, transcode(data, fmt.transfer_syntax or ANY_SYNTAX), fmt.mime_type)
        ]
    try:
        ds = read_dataset(data)
    except DicomParseError as exc:
        raise RenderError(str(exc)) from exc
    if "PixelData" not in ds:
        raise RenderError(f"instance has no pixel data; cannot export it as {fmt.mime_type}")
    if fmt.mime_type == "application/octet-stream":
        frames = _octet_frames(ds, uncompressed=fmt.transfer_syntax != ANY_SYNTAX)
    else:
        frames = [_encode_image(img, fmt.mime_type) for img in _rendered_frames(ds)]
    if len(frames) == 1:
        return [RenderedFile(None, frames[0], fmt.mime_type)]
    return [RenderedFile(i, frame, fmt.mime_type) for i, frame in enumerate(frames, start=1)]


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
    if uncompressed:
        make_native(ds)
        return _split_native(ds, bytes(ds.PixelData))
    if is_encapsulated(syntax_of(ds)):
        return [bytes(f) for f in generate_frames(ds.PixelData, number_of_frames=_frame_count(ds))]
    return _split_native(ds, bytes(ds.PixelData))


def _rendered_frames(ds: FileDataset) -> list[np.ndarray[Any, Any]]:
    syntax = syntax_of(ds)
    check_decodable(syntax)
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise cannot_decode(syntax, one_line(exc)) from exc
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
