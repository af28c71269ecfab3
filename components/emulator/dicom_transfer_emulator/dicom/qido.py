"""QIDO-RS search rules (DICOMweb Search transaction) over DICOM JSON instance metadata.

Pure functions, no HTTP: :func:`parse_search` turns the query string into a
:class:`SearchRequest` (or raises :class:`QidoError` naming the parameter); each
:class:`Filter` gives a matcher over an attribute's values; :func:`result_row` builds one
DICOM JSON result from a :class:`Hit` (a study, series or instance that matched, chosen by
:mod:`.dicom.search_index`). A result needs only its representative's :data:`RESULT_TAGS` unless
``includefield`` asks for more (:func:`needs_full_metadata`).

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

from dicom_transfer_emulator.dicom.records import InstanceRecord

Level = Literal["study", "series", "instance"]
Element = dict[str, Any]
Instance = Mapping[str, Element]  # DICOM JSON: "GGGGEEEE" -> {"vr", "Value"}

STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"
MODALITY = "00080060"
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

    def matcher(self, *, fuzzy: bool) -> Callable[[Sequence[str]], bool]:
        """A test of whether an instance's values satisfy this key (PS3.4 §C.2.2.2).

        Built once per search and applied to every instance, so the query value is parsed
        (UID list, range, wildcard pattern) only once.

        Args:
            fuzzy: ``fuzzymatching=true`` was asked (applies to person names only).

        Returns:
            A function of the attribute's values as text (:func:`element_texts`; empty when
            the attribute is absent) that tells whether they match.
        """
        if self.value == "":
            return lambda values: True  # universal matching, PS3.4 §C.2.2.2.3
        if self.vr == "UI":
            # List of UID matching, PS3.4 §C.2.2.2.2; PS3.18 §8.3.4.1 allows "," or "\".
            wanted = frozenset(re.split(r"[,\\]", self.value))
            return lambda values: any(v in wanted for v in values)
        if self.vr in ("DA", "TM", "DT") and "-" in self.value:
            low, _, high = self.value.partition("-")  # range matching, PS3.4 §C.2.2.2.5
            return lambda values: any(
                (not low or v >= low) and (not high or v[: len(high)] <= high) for v in values
            )
        if self.vr == "PN" and fuzzy:
            # Google's conformance statement: fuzzy matching of names matches each query
            # word against the start of any word of the name, ignoring case.
            words = [w for w in re.split(r"[\s^=]+", self.value.lower()) if w]
            return lambda values: any(
                all(any(n.startswith(w) for n in re.split(r"[\s^=]+", v.lower())) for w in words)
                for v in values
            )
        # PS3.4 §C.2.2.2.1: person names may match regardless of case; other text exactly.
        pattern = _wildcard(self.value, ignore_case=self.vr == "PN")
        return lambda values: any(pattern.fullmatch(v) is not None for v in values)


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


@dataclass(frozen=True)
class Hit:
    """One search result before it is rendered: a matched study, series or instance.

    Attributes:
        key: its UIDs: ``(study,)``, ``(study, series)`` or ``(study, series, instance)``.
        record: the representative instance: the lowest SOP Instance UID among the matched
            instances of the study or series (stable across calls).
        modalities: Modality of every instance of the study, sorted, without blanks.
        study_series: number of series in the study.
        study_instances: number of instances in the study.
        series_instances: number of instances in the series of ``record``.
    """

    key: tuple[str, ...]
    record: InstanceRecord
    modalities: tuple[str, ...]
    study_series: int
    study_instances: int
    series_instances: int


def _text(value: Any) -> str:
    if isinstance(value, dict):  # PN: {"Alphabetic": "Doe^John", …}
        return str(value.get("Alphabetic", ""))
    return str(value)


def element_texts(element: Element | None) -> tuple[str, ...]:
    """The values of a DICOM JSON element as text, as matching compares them.

    Args:
        element: the element, or None when the attribute is absent.

    Returns:
        One text per value (a person name's Alphabetic group); empty when there is none.
    """
    return tuple(_text(v) for v in (element or {}).get("Value", []))


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


#: Tags of the attributes a search can match on (every level's searchable ones).
MATCH_TAGS: tuple[str, ...] = tuple(attribute_tag(k, k) for k in SEARCHABLE["instance"])

#: Tags of everything a result carries unless ``includefield`` names more
#: (:func:`wanted_tags`), including every matchable attribute.
RESULT_TAGS: frozenset[str] = frozenset(
    set().union(*(_tags(DEFAULT_ATTRIBUTES[lv]) for lv in DEFAULT_ATTRIBUTES))
    | set(MATCH_TAGS)
    | {_SPECIFIC_CHARACTER_SET}
)


def wanted_tags(request: SearchRequest) -> frozenset[str]:
    """Tags each result of ``request`` carries (besides every other one for ``includefield=all``).

    Series results outside a study carry the study's attributes, instance results outside a
    series the series' (and the study's outside a study): PS3.18 §10.6.3.3.1.
    """
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
    return frozenset(wanted)


def needs_full_metadata(request: SearchRequest) -> bool:
    """Whether results need attributes beyond :data:`RESULT_TAGS` (``includefield``)."""
    return request.include is None or not request.include <= RESULT_TAGS


def result_row(
    request: SearchRequest,
    hit: Hit,
    metadata: Instance,
    retrieve_url: Callable[..., str],
) -> dict[str, Element]:
    """The DICOM JSON result of one hit.

    Args:
        request: the parsed query.
        hit: the matched study, series or instance.
        metadata: DICOM JSON of the hit's representative instance: at least its
            :data:`RESULT_TAGS`, all of it when :func:`needs_full_metadata`.
        retrieve_url: builds the RetrieveURL from ``(study[, series[, instance]])`` UIDs.

    Returns:
        The result, attributes sorted by tag.
    """
    wanted = wanted_tags(request)
    # includefield=all: every attribute of the representative instance (PS3.18 leaves
    # "all available attributes" to the origin server).
    if request.include is None:
        row = dict(metadata)
    else:
        row = {t: metadata[t] for t in wanted if t in metadata}
    row.update(_computed(hit, wanted, retrieve_url))
    return dict(sorted(row.items()))


def _computed(
    hit: Hit, wanted: frozenset[str], retrieve_url: Callable[..., str]
) -> dict[str, Element]:
    """Attributes the store computes (PS3.18 Tables 10.6.3-3 to -5), for one result."""
    out: dict[str, Element] = {}
    if _INSTANCE_AVAILABILITY in wanted:
        out[_INSTANCE_AVAILABILITY] = {"vr": "CS", "Value": ["ONLINE"]}
    if _RETRIEVE_URL in wanted:
        out[_RETRIEVE_URL] = {"vr": "UR", "Value": [retrieve_url(*hit.key)]}
    if len(hit.key) == 1:
        if _MODALITIES_IN_STUDY in wanted and hit.modalities:
            out[_MODALITIES_IN_STUDY] = {"vr": "CS", "Value": list(hit.modalities)}
        if _STUDY_SERIES in wanted:
            out[_STUDY_SERIES] = {"vr": "IS", "Value": [hit.study_series]}
        if _STUDY_INSTANCES in wanted:
            out[_STUDY_INSTANCES] = {"vr": "IS", "Value": [hit.study_instances]}
    if len(hit.key) == 2 and _SERIES_INSTANCES in wanted:
        out[_SERIES_INSTANCES] = {"vr": "IS", "Value": [hit.series_instances]}
    return out


__all__ = [
    "DEFAULT_ATTRIBUTES",
    "DEFAULT_LIMIT",
    "MATCH_TAGS",
    "MAX_LIMIT",
    "RESULT_TAGS",
    "SEARCHABLE",
    "Filter",
    "Hit",
    "Level",
    "QidoError",
    "SearchRequest",
    "attribute_tag",
    "element_texts",
    "needs_full_metadata",
    "parse_search",
    "result_row",
    "wanted_tags",
]
