"""The emulator's reading of an export filter file (``filterConfig.resourcePathsGcsUri``).

Written from the description of ``DicomFilterConfig.resourcePathsGcsUri`` in the
``healthcare`` v1/v1beta1 discovery documents, independently of the ``dicom_transfer``
library: "The filter configuration file must contain a list of resource paths separated by
newline characters (\\n or \\r\\n). Each resource path must be in the format
``/studies/{studyUID}[/series/{seriesUID}[/instances/{instanceUID}]]``".

UIDs are checked against DICOM PS3.5 §9.1 (digits and dots, at most 64 characters), since
the paths name DICOM UIDs. Emulator choices the documentation leaves open: blank lines and
whitespace around a path are ignored (files often end with a newline).
"""

from __future__ import annotations

import re

__all__ = ["FILTER_PATH_FORM", "FilterKey", "parse_filter_file", "parse_filter_path"]

#: The documented form of one line.
FILTER_PATH_FORM = "/studies/{studyUID}[/series/{seriesUID}[/instances/{instanceUID}]]"

#: (study,) | (study, series) | (study, series, instance)
FilterKey = tuple[str, ...]

# DICOM PS3.5 §9.1: a UID is digit components separated by "." and at most 64 characters.
_UID = r"[0-9]+(?:\.[0-9]+)*"
_PATH = re.compile(rf"/studies/({_UID})(?:/series/({_UID})(?:/instances/({_UID}))?)?")
_MAX_UID_LENGTH = 64


def parse_filter_path(line: str) -> FilterKey:
    """Parse one resource path of a filter file.

    Args:
        line: e.g. ``"/studies/1.2/series/1.2.3"`` (no line terminator).

    Returns:
        The UIDs it names, outermost first: one, two or three of them.

    Raises:
        ValueError: the line is not of the form :data:`FILTER_PATH_FORM` with valid UIDs;
            the message names the line and the allowed form.
    """
    match = _PATH.fullmatch(line)
    if match is None or any(len(u) > _MAX_UID_LENGTH for u in match.groups() if u):
        raise ValueError(f"{line!r} is not of the form {FILTER_PATH_FORM}")
    return tuple(u for u in match.groups() if u is not None)


def parse_filter_file(text: str) -> set[FilterKey]:
    """Parse a whole filter file.

    Args:
        text: the file's text; lines end with ``\\n`` or ``\\r\\n``.

    Returns:
        The distinct resource keys it lists.

    Raises:
        ValueError: a line is malformed; the message starts with ``line N:``.
    """
    keys: set[FilterKey] = set()
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r").strip()
        if not line:
            continue
        try:
            keys.add(parse_filter_path(line))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return keys
