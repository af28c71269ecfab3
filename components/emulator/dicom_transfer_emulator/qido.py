"""QIDO-RS search rules (DICOMweb Search transaction) over DICOM JSON instance metadata.

Pure functions, no HTTP: :func:`parse_search` turns the query string into a
:class:`SearchRequest` (or raises :class:`QidoError` naming the parameter), :func:`search`
applies it to the metadata of a store's instances and returns the DICOM JSON results.

Sources of the rules (each repeated next to the code that follows it):

- Google's DICOM conformance statement, "Search transaction"
  (https://cloud.google.com/healthcare-api/docs/dicom): the searchable attributes per level,
  ``limit``/``offset`` bounds, ``fuzzymatching`` on person names, ``includefield``.
- DICOM PS3.18 §8.3.4 (query parameters: attribute ids as keyword or tag, UID list matching,
  ``includefield``, ``limit``, ``offset``, ``fuzzymatching``) and §10.6.3.3 (the attributes
  each result carries by default, Tables 10.6.3-3 to -5).
- DICOM PS3.4 §C.2.2.2 (attribute matching: universal, single value, list of UID, wild
  card, range).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

Level = Literal["study", "series", "instance"]
Element = dict[str, Any]
Instance = Mapping[str, Element]  # DICOM JSON: "GGGGEEEE" -> {"vr", "Value"}

STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"
_MODALITY = "00080060"
_SPECIFIC_CHARACTER_SET = "00080005"
_RETRIEVE_URL = "00081190"
_INSTANCE_AVAILABILITY = "00080056"
_MODALITIES_IN_STUDY = "00080061"
_STUDY_SERIES = "00201206"
_STUDY_INSTANCES = "00201208"
_SERIES_INSTANCES = "00201209"

#: Searchable attributes per level — Google's conformance statement, "Search parameters":
#: study level; series level adds SeriesInstanceUID and Modality; instance level adds
#: SOPInstanceUID. Other attributes are a 400 (the real API rejects them too).
_STUDY_SEARCH = (
    "StudyInstanceUID",
    "PatientName",
    "PatientID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDate",
)
SEARCHABLE: dict[Level, tuple[str, ...]] = {
    "study": _STUDY_SEARCH,
    "series": (*_STUDY_SEARCH, "SeriesInstanceUID", "Modality"),
    "instance": (*_STUDY_SEARCH, "SeriesInstanceUID", "Modality", "SOPInstanceUID"),
}

#: Attributes each result carries by default — PS3.18 §10.6.3.3.1, Tables 10.6.3-3 (study),
#: 10.6.3-4 (series) and 10.6.3-5 (instance). Series results outside a study also carry the
#: study's, instance results outside a series the series' (same section).
DEFAULT_ATTRIBUTES: dict[Level, tuple[str, ...]] = {
    "study": (
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "InstanceAvailability",
        "ModalitiesInStudy",
        "ReferringPhysicianName",
        "TimezoneOffsetFromUTC",
        "RetrieveURL",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    "series": (
        "Modality",
        "TimezoneOffsetFromUTC",
        "SeriesDescription",
        "RetrieveURL",
        "SeriesInstanceUID",
        "SeriesNumber",
        "NumberOfSeriesRelatedInstances",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "RequestAttributesSequence",
    ),
    "instance": (
        "SOPClassUID",
        "SOPInstanceUID",
        "InstanceAvailability",
        "TimezoneOffsetFromUTC",
        "RetrieveURL",
        "InstanceNumber",
        "Rows",
        "Columns",
        "BitsAllocated",
        "NumberOfFrames",
    ),
}

#: ``limit`` default and maximum per level — Google's conformance statement, "Search
#: transaction": larger limits are lowered to the maximum.
DEFAULT_LIMIT = 100
MAX_LIMIT: dict[Level, int] = {"study": 5000, "series": 5000, "instance": 50000}

_RESERVED = frozenset({"includefield", "limit", "offset", "fuzzymatching"})
_TAG_RE = re.compile(r"[0-9A-Fa-f]{8}")
_DATE_RE = re.compile(r"\d{8}")
_TIME_RE = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")


class QidoError(ValueError):
    """A search parameter is malformed or not supported (the API answers 400)."""


@dataclass(frozen=True)
class Filter:
    """One ``{attributeID}={value}`` matching key.

    Attributes:
        tag: the attribute's tag as 8 upper-case hex digits.
        keyword: its DICOM keyword.
        vr: its value representation.
        value: the query value as given.
    """

    tag: str
    keyword: str
    vr: str
    value: str

    def matches(self, element: Element | None, *, fuzzy: bool) -> bool:
        """Whether an instance's element satisfies this key (PS3.4 §C.2.2.2).

        Args:
            element: the instance's DICOM JSON element, or None when absent.
            fuzzy: ``fuzzymatching=true`` was asked (applies to person names only).
        """
        if self.value == "":
            return True  # universal matching, PS3.4 §C.2.2.2.3
        values = [_text(v) for v in (element or {}).get("Value", [])]
        if not values:
            return False
        if self.vr == "UI":
            # List of UID matching, PS3.4 §C.2.2.2.2; PS3.18 §8.3.4.1 allows "," or "\".
            wanted = set(re.split(r"[,\\]", self.value))
            return any(v in wanted for v in values)
        if self.vr in ("DA", "TM", "DT") and "-" in self.value:
            low, _, high = self.value.partition("-")  # range matching, PS3.4 §C.2.2.2.5
            return any(
                (not low or v >= low) and (not high or v[: len(high)] <= high) for v in values
            )
        if self.vr == "PN" and fuzzy:
            # Google's conformance statement: fuzzy matching of names matches each query
            # word against the start of any word of the name, ignoring case.
            words = [w for w in re.split(r"[\s^=]+", self.value.lower()) if w]
            return any(
                all(any(n.startswith(w) for n in re.split(r"[\s^=]+", v.lower())) for w in words)
                for v in values
            )
        # PS3.4 §C.2.2.2.1: person names may match regardless of case; other text exactly.
        pattern = _wildcard(self.value, ignore_case=self.vr == "PN")
        return any(pattern.fullmatch(v) is not None for v in values)


@dataclass(frozen=True)
class SearchRequest:
    """A parsed QIDO-RS query.

    Attributes:
        level: what is searched for.
        filters: matching keys (all must match).
        include: extra attributes to return (tags), or None for ``includefield=all``.
        limit: most results returned.
        offset: results skipped first.
        fuzzy: ``fuzzymatching=true``.
        scope: keywords of the UIDs fixed by the path (``StudyInstanceUID``…).
    """

    level: Level
    filters: tuple[Filter, ...]
    include: frozenset[str] | None
    limit: int
    offset: int
    fuzzy: bool
    scope: frozenset[str] = frozenset()


def _text(value: Any) -> str:
    if isinstance(value, dict):  # PN: {"Alphabetic": "Doe^John", …}
        return str(value.get("Alphabetic", ""))
    return str(value)


def _wildcard(value: str, *, ignore_case: bool) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` one character (PS3.4 §C.2.2.2.4)."""
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
    return re.compile(pattern, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def attribute_tag(attribute_id: str, parameter: str) -> str:
    """The tag (8 upper-case hex digits) of a keyword or tag (PS3.18 §8.3.4.1).

    Raises:
        QidoError: neither a known keyword nor 8 hex digits.
    """
    if _TAG_RE.fullmatch(attribute_id):
        return attribute_id.upper()
    tag = tag_for_keyword(attribute_id)
    if tag is None:
        raise QidoError(
            f"{parameter}: unknown attribute {attribute_id!r}; expected a DICOM keyword "
            "(e.g. PatientName) or a tag as 8 hex digits (e.g. 00100010)."
        )
    return f"{tag:08X}"


def _int_param(name: str, text: str) -> int:
    if not text.isdigit():
        raise QidoError(f"{name}={text!r}: expected a non-negative integer.")
    return int(text)


def _check_value(keyword: str, vr: str, value: str) -> None:
    if vr == "DA" and value:
        for part in value.split("-") if "-" in value else [value]:
            if part and not _DATE_RE.fullmatch(part):
                raise QidoError(
                    f"{keyword}={value!r}: expected a date YYYYMMDD or a range "
                    "YYYYMMDD-YYYYMMDD (either end may be omitted)."
                )
    if vr == "TM" and value:
        for part in value.split("-") if "-" in value else [value]:
            if part and not _TIME_RE.fullmatch(part):
                raise QidoError(f"{keyword}={value!r}: expected a time HHMMSS or a range.")


def parse_search(
    query: Mapping[str, Sequence[str]],
    level: Level,
    scope: Mapping[str, str] | None = None,
) -> SearchRequest:
    """Parse a QIDO-RS query string.

    Args:
        query: decoded query parameters (name -> values).
        level: ``study``, ``series`` or ``instance``.
        scope: UIDs fixed by the path (``{"StudyInstanceUID": …}``), added as filters.

    Returns:
        The search request.

    Raises:
        QidoError: a parameter names an unknown or non-searchable attribute, a bad limit,
            offset or date; the message names the parameter and the allowed form.
    """
    filters: list[Filter] = []
    include: set[str] | None = set()
    limit = DEFAULT_LIMIT
    offset = 0
    fuzzy = False
    for name, values in query.items():
        if name in _RESERVED:
            for raw in values:
                if name == "includefield":
                    for item in (i.strip() for i in raw.split(",")):
                        if item == "all":
                            include = None
                        elif item and include is not None:
                            include.add(attribute_tag(item, "includefield"))
                elif name == "limit":
                    limit = min(_int_param("limit", raw), MAX_LIMIT[level])
                elif name == "offset":
                    offset = _int_param("offset", raw)
                elif raw.lower() not in ("true", "false"):
                    raise QidoError(f"fuzzymatching={raw!r}: expected true or false.")
                else:
                    fuzzy = raw.lower() == "true"
            continue
        tag = attribute_tag(name, name)
        keyword = keyword_for_tag(int(tag, 16)) or tag
        if keyword not in SEARCHABLE[level]:
            raise QidoError(
                f"{name}: not a searchable attribute at {level} level; searchable: "
                + ", ".join(SEARCHABLE[level])
            )
        vr = dictionary_VR(int(tag, 16))
        for value in values:
            _check_value(keyword, vr, value)
            filters.append(Filter(tag, keyword, vr, value))
    for keyword, uid in (scope or {}).items():
        tag = attribute_tag(keyword, keyword)
        filters.append(Filter(tag, keyword, "UI", uid))
    return SearchRequest(
        level,
        tuple(filters),
        None if include is None else frozenset(include),
        limit,
        offset,
        fuzzy,
        frozenset(scope or {}),
    )


def _tags(keywords: Iterable[str]) -> set[str]:
    return {attribute_tag(k, k) for k in keywords}


def _first(instance: Instance, tag: str) -> str:
    values = instance.get(tag, {}).get("Value", [])
    return _text(values[0]) if values else ""


def search(
    request: SearchRequest,
    instances: Iterable[Instance],
    retrieve_url: Callable[..., str],
) -> list[dict[str, Element]]:
    """Run a search over a store's instances.

    Args:
        request: the parsed query.
        instances: DICOM JSON metadata of every instance of the store.
        retrieve_url: builds the RetrieveURL from ``(study[, series[, instance]])`` UIDs.

    Returns:
        DICOM JSON results, sorted by UID, after ``offset``, at most ``limit``.
    """
    every = list(instances)
    matched = [
        i
        for i in every
        if all(f.matches(i.get(f.tag), fuzzy=request.fuzzy) for f in request.filters)
    ]
    # Series results outside a study carry the study's attributes, instance results outside
    # a series the series' (and the study's outside a study): PS3.18 §10.6.3.3.1.
    levels: list[Level] = [request.level]
    if request.level == "instance" and "SeriesInstanceUID" not in request.scope:
        levels.append("series")
    if request.level != "study" and "StudyInstanceUID" not in request.scope:
        levels.append("study")
    wanted = set().union(*(_tags(DEFAULT_ATTRIBUTES[lv]) for lv in levels))
    wanted |= {STUDY_UID, _SPECIFIC_CHARACTER_SET} | {f.tag for f in request.filters}
    if request.level != "study":
        wanted.add(SERIES_UID)
    if request.include is not None:
        wanted |= request.include

    keys = {"study": (STUDY_UID,), "series": (STUDY_UID, SERIES_UID)}.get(
        request.level, (STUDY_UID, SERIES_UID, SOP_UID)
    )
    groups: dict[tuple[str, ...], Instance] = {}
    for inst in matched:
        key = tuple(_first(inst, t) for t in keys)
        # The lowest SOP Instance UID represents a study or series: stable across calls.
        if key not in groups or _first(inst, SOP_UID) < _first(groups[key], SOP_UID):
            groups[key] = inst
    by_study: dict[str, list[Instance]] = {}
    for inst in every:
        by_study.setdefault(_first(inst, STUDY_UID), []).append(inst)

    results: list[dict[str, Element]] = []
    for key in sorted(groups)[request.offset : request.offset + request.limit]:
        inst = groups[key]
        # includefield=all: every attribute of the representative instance (PS3.18 leaves
        # "all available attributes" to the origin server).
        row = dict(inst) if request.include is None else {t: inst[t] for t in wanted if t in inst}
        row.update(_computed(key, by_study[key[0]], wanted, retrieve_url))
        results.append(dict(sorted(row.items())))
    return results


def _computed(
    key: tuple[str, ...],
    study: list[Instance],
    wanted: set[str],
    retrieve_url: Callable[..., str],
) -> dict[str, Element]:
    """Attributes the store computes (PS3.18 Tables 10.6.3-3 to -5), for one result."""
    out: dict[str, Element] = {}
    if _INSTANCE_AVAILABILITY in wanted:
        out[_INSTANCE_AVAILABILITY] = {"vr": "CS", "Value": ["ONLINE"]}
    if _RETRIEVE_URL in wanted:
        out[_RETRIEVE_URL] = {"vr": "UR", "Value": [retrieve_url(*key)]}
    if len(key) == 1:
        modalities = sorted({_first(i, _MODALITY) for i in study} - {""})
        series = {_first(i, SERIES_UID) for i in study}
        if _MODALITIES_IN_STUDY in wanted and modalities:
            out[_MODALITIES_IN_STUDY] = {"vr": "CS", "Value": modalities}
        if _STUDY_SERIES in wanted:
            out[_STUDY_SERIES] = {"vr": "IS", "Value": [len(series)]}
        if _STUDY_INSTANCES in wanted:
            out[_STUDY_INSTANCES] = {"vr": "IS", "Value": [len(study)]}
    if len(key) == 2 and _SERIES_INSTANCES in wanted:
        count = sum(1 for i in study if _first(i, SERIES_UID) == key[1])
        out[_SERIES_INSTANCES] = {"vr": "IS", "Value": [count]}
    return out


__all__ = [
    "DEFAULT_ATTRIBUTES",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "SEARCHABLE",
    "Filter",
    "Level",
    "QidoError",
    "SearchRequest",
    "attribute_tag",
    "parse_search",
    "search",
]
