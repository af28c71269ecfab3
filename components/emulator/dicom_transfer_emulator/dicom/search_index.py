"""A DICOM store's instances grouped by study and series, for searches and path lookups.

Each instance is kept as its :class:`~.dicom.records.InstanceRecord` (UIDs, and in ``match_json``
the few other attributes searches match on, converted once at import by :func:`match_json`)
plus the texts of its matchable attributes, decoded once when it is added. Instance bytes
stay where the store keeps them: selecting results reads none of them (:mod:`.healthcare.dicomweb`
then reads what the few selected results carry, :func:`result_json`, and keeps it).

:meth:`StoreIndex.select` follows the QIDO-RS rules of :mod:`.dicom.qido` — every filter matches
per instance; a study or series is represented by its matched instance with the lowest SOP
Instance UID; results are ordered by their UIDs, then ``offset`` and ``limit`` apply — but
walks studies in UID order and stops once it has ``offset + limit`` results, and only walks
the studies (series) a StudyInstanceUID (SeriesInstanceUID) filter names. The class is not
thread-safe: :class:`~.healthcare.state.HealthcareState` calls it under its lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence

from pydicom.dataset import Dataset

from dicom_transfer_emulator.dicom.dicom_json import dicom_json
from dicom_transfer_emulator.dicom.qido import (
    MATCH_TAGS,
    MODALITY,
    RESULT_TAGS,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    Hit,
    SearchRequest,
    element_texts,
)
from dicom_transfer_emulator.dicom.records import InstanceRecord

__all__ = ["StoreIndex", "match_json", "result_json"]

_UID_TAGS = (STUDY_UID, SERIES_UID, SOP_UID)
#: Matchable attributes kept in ``match_json``: the UIDs are the record's own fields.
_STORED_MATCH = tuple(sorted((int(tag, 16), tag) for tag in MATCH_TAGS if tag not in _UID_TAGS))
_RESULT = tuple(sorted((int(tag, 16), tag) for tag in RESULT_TAGS))
#: Dataset.to_json_dict's default: binary values above it would be bulk data (none indexed).
_BULK_DATA_THRESHOLD = 1024
_MODALITY_AT = MATCH_TAGS.index(MODALITY)
_Matcher = tuple[int, Callable[[Sequence[str]], bool]]


def match_json(ds: Dataset) -> str:
    """Compact DICOM JSON of the attributes searches match on, besides the three UIDs.

    Runs once per stored instance (hot path of import): a handful of conversions.

    Args:
        ds: the instance's dataset, as read from its bytes.

    Returns:
        The JSON text (``{}`` when none of the attributes is present).
    """
    return _subset_json(ds, _STORED_MATCH)


def result_json(ds: Dataset) -> str:
    """Compact DICOM JSON of a dataset's :data:`~.dicom.qido.RESULT_TAGS` (what a result carries).

    Args:
        ds: the instance's dataset (pixel data not needed).

    Returns:
        The JSON text.
    """
    return _subset_json(ds, _RESULT)


def _subset_json(ds: Dataset, tags: tuple[tuple[int, str], ...]) -> str:
    """Compact DICOM JSON of some of a dataset's attributes (:func:`~.dicom_json.dicom_json`: as the
    instance's full metadata converts them, so a search matches and answers what it would)."""
    elements = dicom_json(ds, (tag for tag, _key in tags), _BULK_DATA_THRESHOLD)
    return json.dumps(elements, separators=(",", ":"))


class _Entry:
    """An instance and the texts of its matchable attributes (in :data:`MATCH_TAGS` order)."""

    __slots__ = ("record", "texts")

    def __init__(self, record: InstanceRecord) -> None:
        self.record = record
        elements = json.loads(record.match_json) if record.match_json else {}
        uids = {
            STUDY_UID: record.study_uid,
            SERIES_UID: record.series_uid,
            SOP_UID: record.sop_instance_uid,
        }
        self.texts = tuple(
            (uids[tag],) if tag in uids else element_texts(elements.get(tag)) for tag in MATCH_TAGS
        )

    def matches(self, matchers: list[_Matcher]) -> bool:
        return all(test(self.texts[at]) for at, test in matchers)


_Series = dict[str, _Entry]  # SOP Instance UID -> entry
_Study = dict[str, _Series]  # Series Instance UID -> instances


class StoreIndex:
    """The instances of one store by Study, Series and SOP Instance UID."""

    def __init__(self) -> None:
        """Create an empty index."""
        self._studies: dict[str, _Study] = {}
        self._sorted: list[str] | None = None  # study UIDs in order, rebuilt after changes

    def add(self, record: InstanceRecord) -> None:
        """Add (or replace) an instance."""
        study = self._studies.get(record.study_uid)
        if study is None:
            study = self._studies[record.study_uid] = {}
            self._sorted = None
        study.setdefault(record.series_uid, {})[record.sop_instance_uid] = _Entry(record)

    def remove(self, record: InstanceRecord) -> None:
        """Remove an instance (nothing happens when it is not indexed)."""
        study = self._studies.get(record.study_uid, {})
        series = study.get(record.series_uid, {})
        series.pop(record.sop_instance_uid, None)
        if not series:
            study.pop(record.series_uid, None)
        if not study:
            self._studies.pop(record.study_uid, None)
            self._sorted = None

    def clear(self) -> None:
        """Forget every instance."""
        self._studies.clear()
        self._sorted = None

    def find(
        self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> list[InstanceRecord]:
        """The instances of a study, a series or one instance, by series then SOP UID.

        Args:
            study_uid: Study Instance UID.
            series_uid: Series Instance UID (``None``: the whole study).
            sop_uid: SOP Instance UID (``None``: the whole series or study).

        Returns:
            The records (empty when nothing matches).
        """
        study = self._studies.get(study_uid, {})
        found: list[InstanceRecord] = []
        for uid in sorted(study) if series_uid is None else [series_uid]:
            series = study.get(uid, {})
            for sop in sorted(series) if sop_uid is None else [sop_uid]:
                if sop in series:
                    found.append(series[sop].record)
        return found

    def select(self, request: SearchRequest) -> list[Hit]:
        """The studies, series or instances a search returns, in order, paged.

        Args:
            request: the parsed query (level, filters, ``offset``, ``limit``).

        Returns:
            At most ``limit`` hits after skipping ``offset`` (see the module docstring).
        """
        if request.limit == 0:
            return []
        matchers = [
            (MATCH_TAGS.index(f.tag), f.matcher(fuzzy=request.fuzzy)) for f in request.filters
        ]
        skip = request.offset
        hits: list[Hit] = []
        for study_uid in self._study_uids(request):
            study = self._studies[study_uid]
            summary: tuple[tuple[str, ...], int] | None = None
            for key, entry in self._groups(request, study_uid, study, matchers):
                if skip:
                    skip -= 1
                    continue
                summary = summary or _summary(study)
                hits.append(
                    Hit(
                        key=key,
                        record=entry.record,
                        modalities=summary[0],
                        study_series=len(study),
                        study_instances=summary[1],
                        series_instances=len(study[entry.record.series_uid]),
                    )
                )
                if len(hits) == request.limit:
                    return hits
        return hits

    def _study_uids(self, request: SearchRequest) -> list[str]:
        """Studies a search must walk, in UID order."""
        named = _named_uids(request, STUDY_UID)
        if named is not None:
            return sorted(uid for uid in named if uid in self._studies)
        if self._sorted is None:
            self._sorted = sorted(self._studies)
        return self._sorted

    def _groups(
        self, request: SearchRequest, study_uid: str, study: _Study, matchers: list[_Matcher]
    ) -> Iterator[tuple[tuple[str, ...], _Entry]]:
        """(key, representative) of a study's matching groups at the request's level."""
        if request.level == "study":
            best = _lowest(e for s in study.values() for e in s.values() if e.matches(matchers))
            if best is not None:
                yield (study_uid,), best
            return
        named = _named_uids(request, SERIES_UID)
        for series_uid in sorted(study if named is None else named & study.keys()):
            series = study[series_uid]
            if request.level == "series":
                best = _lowest(e for e in series.values() if e.matches(matchers))
                if best is not None:
                    yield (study_uid, series_uid), best
                continue
            for sop_uid in sorted(series):
                entry = series[sop_uid]
                if entry.matches(matchers):
                    yield (study_uid, series_uid, sop_uid), entry


def _named_uids(request: SearchRequest, tag: str) -> set[str] | None:
    """The UIDs every result must have in ``tag``, when UID filters name them (else None)."""
    named: set[str] | None = None
    for f in request.filters:
        if f.tag == tag and f.value:
            # The same list rule as qido.Filter.matcher (PS3.18 §8.3.4.1: "," or "\").
            uids = set(f.value.replace("\\", ",").split(","))
            named = uids if named is None else named & uids
    return named


def _lowest(entries: Iterable[_Entry]) -> _Entry | None:
    best: _Entry | None = None
    for entry in entries:
        if best is None or entry.record.sop_instance_uid < best.record.sop_instance_uid:
            best = entry
    return best


def _summary(study: _Study) -> tuple[tuple[str, ...], int]:
    """(Modality of every instance, sorted, without blanks; number of instances) of a study."""
    entries = [e for s in study.values() for e in s.values()]
    modalities = {e.texts[_MODALITY_AT][0] for e in entries if e.texts[_MODALITY_AT]}
    return tuple(sorted(modalities - {""})), len(entries)
