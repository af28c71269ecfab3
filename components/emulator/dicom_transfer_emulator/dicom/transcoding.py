"""Transcoding stored DICOM instances into the transfer syntax an export asks for.

The targets are the ``application/dicom; transfer-syntax=…`` values of
:data:`.dicom.export_formats.DOCUMENTED_MIME_TYPES`. What the emulator can write, and with what:

- Implicit VR Little Endian (1.2.840.10008.1.2), Explicit VR Little Endian (…1.2.1) and
  Deflated Explicit VR Little Endian (…1.2.1.99): pydicom's writer;
- RLE Lossless (…1.2.5): pydicom's own RLE encoder;
- JPEG-LS Lossless / Near-Lossless (…4.80/…4.81): pydicom with the ``pyjpegls`` plugin
  (near-lossless with a maximum error of :data:`JPEG_LS_NEAR_LOSSLESS_ERROR`);
- JPEG 2000 Lossless / JPEG 2000 (…4.90/…4.91): pydicom with ``pylibjpeg-openjpeg``
  (lossy at a compression ratio of :data:`JPEG_2000_COMPRESSION_RATIO`);
- JPEG Baseline (…4.50): Pillow, for 8-bit unsigned monochrome or RGB pixel data.

Everything else (JPEG Extended, JPEG Lossless, JPEG XL, High-Throughput JPEG 2000, Deflated
Image Frame Compression) has no encoder here: such an instance fails on its own with a
:class:`~.dicom.parsing.RenderError`, logged like any instance the real service cannot transcode,
unless it is already stored in the requested syntax (then its bytes are exported as they
are). Decoding, for that or for other export formats, is pydicom's with the plugins above
and Pillow; it fails (again one instance alone) for 12-bit JPEG Extended, JPEG Lossless, and
the syntaxes pydicom 3.0 does not know: :data:`NEWER_ENCAPSULATED_SYNTAXES` (their frames are
still exported as stored for ``transfer-syntax=*``) and any other UID. :func:`is_compressed`,
:func:`is_encapsulated` and :func:`check_decodable` are the one place that knows which is which.
Instances without pixel data are re-encoded without compression work. Transcoding keeps
the SOP Instance UID (the exported object's name carries it); lossy targets set Lossy Image
Compression (0028,2110) and its method (DICOM PS3.3 C.7.6.1.1.5).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import FileDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from dicom_transfer_emulator.dicom.export_formats import ANY_SYNTAX
from dicom_transfer_emulator.dicom.parsing import DicomParseError, RenderError, read_dataset

__all__ = [
    "JPEG_2000_COMPRESSION_RATIO",
    "JPEG_LS_NEAR_LOSSLESS_ERROR",
    "NEWER_ENCAPSULATED_SYNTAXES",
    "WRITABLE_SYNTAXES",
    "cannot_decode",
    "check_decodable",
    "is_compressed",
    "is_encapsulated",
    "make_native",
    "syntax_name",
    "syntax_of",
    "transcode",
]

#: Emulator choice: the API does not document its lossy settings.
JPEG_LS_NEAR_LOSSLESS_ERROR = 2
JPEG_2000_COMPRESSION_RATIO = 10.0
JPEG_BASELINE_QUALITY = 90

_NATIVE = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
)
#: pydicom ``Dataset.compress`` keyword arguments per target.
_PYDICOM_ENCODED: dict[str, dict[str, Any]] = {
    RLELossless: {},
    JPEGLSLossless: {},
    JPEGLSNearLossless: {"jls_error": JPEG_LS_NEAR_LOSSLESS_ERROR},
    JPEG2000Lossless: {},
    JPEG2000: {"j2k_cr": [JPEG_2000_COMPRESSION_RATIO]},
}
#: DICOM PS3.3 C.7.6.1.1.5.1 Lossy Image Compression Method of each lossy target.
_LOSSY_METHOD = {
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGLSNearLossless: "ISO_14495_1",
    JPEG2000: "ISO_15444_1",
}
#: Transfer syntaxes the emulator can write.
WRITABLE_SYNTAXES = frozenset({*_NATIVE, *_PYDICOM_ENCODED, JPEGBaseline8Bit})
_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


#: Transfer syntaxes of DICOM PS3.6 Table A-1 newer than pydicom 3.0, whose ``UID`` raises
#: ``ValueError("UID is not a transfer syntax.")`` for them: JPEG XL (Supplement 232) and
#: Deflated Image Frame Compression (Supplement 244). Both encapsulate compressed frames
#: (DICOM PS3.5 Annex A.4); the emulator stores and exports them as they are, never decoded.
NEWER_ENCAPSULATED_SYNTAXES: dict[str, str] = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression",
}


def syntax_of(ds: FileDataset) -> UID:
    """The transfer syntax UID of a dataset read from a Part 10 file."""
    return UID(str(ds.file_meta.get("TransferSyntaxUID", "")))


def syntax_name(syntax: UID) -> str:
    """A transfer syntax's name (pydicom's, or the DICOM name of a newer one; else the UID)."""
    return NEWER_ENCAPSULATED_SYNTAXES.get(syntax, syntax.name)


def _require_known(syntax: UID) -> None:
    if syntax not in NEWER_ENCAPSULATED_SYNTAXES and not syntax.is_transfer_syntax:
        raise RenderError(
            f"transfer syntax {syntax} is unknown to the emulator: it cannot decode (or split "
            "into frames) pixel data stored in it"
        )


def is_compressed(syntax: UID) -> bool:
    """Whether pixel data in ``syntax`` is compressed (``UID.is_compressed``).

    Raises:
        RenderError: a UID neither pydicom nor :data:`NEWER_ENCAPSULATED_SYNTAXES` knows.
    """
    _require_known(syntax)
    return syntax in NEWER_ENCAPSULATED_SYNTAXES or bool(syntax.is_compressed)


def is_encapsulated(syntax: UID) -> bool:
    """Whether pixel data in ``syntax`` is encapsulated (``UID.is_encapsulated``).

    Raises:
        RenderError: a UID neither pydicom nor :data:`NEWER_ENCAPSULATED_SYNTAXES` knows.
    """
    _require_known(syntax)
    return syntax in NEWER_ENCAPSULATED_SYNTAXES or bool(syntax.is_encapsulated)


def cannot_decode(syntax: UID, reason: str) -> RenderError:
    """The error of pixel data the emulator cannot decode, naming its transfer syntax."""
    return RenderError(
        f"cannot decode pixel data in transfer syntax {syntax} ({syntax_name(syntax)}): {reason}"
    )


def check_decodable(syntax: UID) -> None:
    """Refuse the transfer syntaxes the emulator knows it cannot decode before trying.

    Raises:
        RenderError: an unknown UID, or one of :data:`NEWER_ENCAPSULATED_SYNTAXES`.
    """
    _require_known(syntax)
    if syntax in NEWER_ENCAPSULATED_SYNTAXES:
        raise cannot_decode(syntax, "the emulator (pydicom 3.0) has no decoder for it")


def one_line(exc: Exception) -> str:
    """The whole message of ``exc`` on one line (a log entry's message).

    pydicom ends "... using any of the available plugins:" and lists each plugin's reason on
    its own line; the reasons are the useful part, so every line is kept.
    """
    return " ".join(str(exc).split())


def _decompress(ds: FileDataset) -> None:
    syntax = syntax_of(ds)
    check_decodable(syntax)
    try:
        ds.decompress(generate_instance_uid=False)
    except Exception as exc:
        raise cannot_decode(syntax, one_line(exc)) from exc


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


def make_native(ds: FileDataset) -> None:
    """Turn a dataset's pixel data into little endian native (uncompressed) form, in place.

    Raises:
        RenderError: no decoder here for its compressed pixel data (or an unknown transfer
            syntax), or unconvertible big endian pixel data.
    """
    source = syntax_of(ds)
    if is_compressed(source):
        _decompress(ds)
    elif source == ExplicitVRBigEndian:
        _big_to_little(ds)


def _write(ds: FileDataset, target: str) -> bytes:
    ds.file_meta.TransferSyntaxUID = UID(target)
    out = io.BytesIO()
    try:
        pydicom.dcmwrite(out, ds, enforce_file_format=True)
    except Exception as exc:
        raise RenderError(f"cannot write transfer syntax {target}: {exc}") from exc
    return out.getvalue()


def _jpeg_baseline(ds: FileDataset) -> None:
    from PIL import Image

    bits = int(ds.get("BitsAllocated", 0) or 0)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    signed = int(ds.get("PixelRepresentation", 0) or 0)
    modes = {("MONOCHROME1", 1): "L", ("MONOCHROME2", 1): "L", ("RGB", 3): "RGB"}
    mode = modes.get((photometric, samples))
    if bits != 8 or signed or mode is None:
        raise RenderError(
            "JPEG Baseline (1.2.840.10008.1.2.4.50) holds 8-bit unsigned MONOCHROME1, "
            f"MONOCHROME2 or RGB samples; this instance has BitsAllocated={bits}, "
            f"PixelRepresentation={signed}, PhotometricInterpretation={photometric}"
        )
    arr = ds.pixel_array
    frames = list(arr) if int(ds.get("NumberOfFrames", 1) or 1) > 1 else [arr]
    encoded = []
    for frame in frames:
        out = io.BytesIO()
        # 4:4:4 sampling keeps the colour planes whole, which YBR_FULL declares.
        Image.fromarray(frame, mode=mode).save(
            out, format="JPEG", quality=JPEG_BASELINE_QUALITY, subsampling=0
        )
        encoded.append(out.getvalue())
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    if mode == "RGB":
        # DICOM PS3.5 8.2.1: JPEG lossy colour data is YCbCr, declared as YBR_FULL.
        ds.PhotometricInterpretation = "YBR_FULL"
        ds.PlanarConfiguration = 0


def _encode(ds: FileDataset, target: UID) -> None:
    if target == JPEGBaseline8Bit:
        _jpeg_baseline(ds)
        return
    try:
        ds.compress(target, generate_instance_uid=False, **_PYDICOM_ENCODED[target])
    except Exception as exc:
        raise RenderError(
            f"cannot encode pixel data as {target} ({target.name}): {one_line(exc)}"
        ) from exc


def transcode(data: bytes, target: str) -> bytes:
    """Re-encode one stored instance in a transfer syntax.

    Args:
        data: the instance's stored Part 10 bytes.
        target: a transfer syntax UID, or :data:`~.dicom.export_formats.ANY_SYNTAX` for "as
            stored".

    Returns:
        The Part 10 bytes in ``target`` (``data`` itself when already in it).

    Raises:
        RenderError: no encoder here for ``target``, no decoder for the stored pixel data,
            or pixel data the encoder cannot take (e.g. 16-bit for JPEG Baseline).
    """
    if target == ANY_SYNTAX:
        return data
    try:
        ds = read_dataset(data)
    except DicomParseError as exc:
        raise RenderError(str(exc)) from exc
    source, wanted = syntax_of(ds), UID(target)
    if source == wanted:
        return data
    if wanted not in WRITABLE_SYNTAXES:
        raise RenderError(
            f"transcoding from {source} ({syntax_name(source)}) to {wanted} ({wanted.name}) is not "
            "supported by the emulator: it has no encoder for that transfer syntax"
        )
    if "PixelData" in ds:
        make_native(ds)
        if wanted not in _NATIVE:
            _encode(ds, wanted)
            if wanted in _LOSSY_METHOD:
                ds.LossyImageCompression = "01"
                ds.LossyImageCompressionMethod = _LOSSY_METHOD[wanted]
    elif source == ExplicitVRBigEndian:
        _big_to_little(ds)
    return _write(ds, wanted)
