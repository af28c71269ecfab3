"""The record a DICOM store keeps of each stored instance (in memory and in its index file)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InstanceRecord"]


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One stored DICOM instance; its bytes are a file (or a blob in memory) of their own.

    Slots, because a store keeps one record per instance in memory (10,000 and more).
    """

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    number_of_frames: int
    size: int
    storage_class: str = "STANDARD"
    #: RFC 3339 time it was stored ("" in records persisted before this field existed).
    stored_at: str = ""
    #: Compact DICOM JSON of the attributes searches match on besides the UIDs
    #: (:func:`~.search_index.match_json`; "" in records persisted before this field
    #: existed: the store rebuilds it from the bytes on load).
    match_json: str = ""

    @property
    def path(self) -> str:
        """DICOMweb-style resource path, as used in filter files."""
        return (
            f"/studies/{self.study_uid}/series/{self.series_uid}/instances/{self.sop_instance_uid}"
        )
