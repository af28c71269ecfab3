"""DICOM JSON (PS3.18 Annex F) of stored instances, safe to build from concurrent threads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset

__all__ = ["dicom_json"]


def dicom_json(
    ds: Dataset, tags: Iterable[int] | None = None, bulk_data_threshold: int = 1024
) -> dict[str, Any]:
    """DICOM JSON (PS3.18 Annex F) of a dataset, or of some of its attributes, element by element.

    Like :meth:`pydicom.dataset.Dataset.to_json_dict` with ``suppress_invalid_tags=True``
    (an element that cannot be converted is left out), but without pydicom's
    ``config.strict_reading()``, which that method enters: pydicom's reading mode is
    process-global, so a strict section in one request thread turns another thread's
    harmless reading warning (e.g. "Expected explicit VR, but found implicit VR" while
    importing) into an error. Values pydicom only warns about are kept.

    Args:
        ds: the dataset.
        tags: the tags to convert (those absent are skipped); None converts every element.
        bulk_data_threshold: binary values longer than this are left to a bulk data handler
            (none here), as ``to_json_dict``'s default.

    Returns:
        ``{"GGGGEEEE": {"vr": …, "Value": …}, …}`` in tag order.
    """
    present = ds._dict  # the dataset's own map: a membership test without tag conversion
    wanted = sorted(present) if tags is None else sorted(tag for tag in tags if tag in present)
    elements: dict[str, Any] = {}
    for tag in wanted:
        try:
            elements[f"{int(tag):08X}"] = ds[tag].to_json_dict(None, bulk_data_threshold)
        except Exception:
            continue
    return elements
