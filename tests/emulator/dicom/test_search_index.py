"""The per-store search index: what it keeps per instance and how it selects search results.

The selection is checked against a brute-force reference written here from the QIDO-RS rules
(match every instance, group, lowest SOP Instance UID represents, sort, page) over random
stores and queries; what the index keeps is checked against each file's full DICOM JSON.
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import replace
from pathlib import Path

import pydicom
from dicom_transfer_emulator.dicom.parsing import DicomParseError, parse_instance, read_dataset
from dicom_transfer_emulator.dicom.qido import (
    MATCH_TAGS,
    RESULT_TAGS,
    Hit,
    Level,
    SearchRequest,
    element_texts,
    parse_search,
)
from dicom_transfer_emulator.dicom.records import InstanceRecord
from dicom_transfer_emulator.dicom.search_index import StoreIndex, match_json, result_json
from dicom_transfer_emulator.healthcare.state import HealthcareState
from support.healthcare import fresh_copy

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _readable_files() -> list[Path]:
    found = []
    for path in sorted(TEST_FILES.rglob("*")):
        if not path.is_file():
            continue
        try:
            read_dataset(path.read_bytes())  # what import and STOW-RS accept
        except DicomParseError:
            continue
        found.append(path)
    return found


def test_kept_attributes_are_those_of_the_full_metadata() -> None:
    files = _readable_files()
    assert len(files) > 100, "pydicom's test files are missing"
    matched = set(MATCH_TAGS) - {"0020000D", "0020000E", "00080018"}  # UIDs: the record's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the test files' odd values
        for path in files:
            data = path.read_bytes()
            full = json.loads(
                json.dumps(
                    read_dataset(data, stop_before_pixels=True).to_json_dict(
                        suppress_invalid_tags=True
                    )
                )
            )
            # As import computes it (whole file read) and as searches do (no pixel data).
            got = json.loads(match_json(read_dataset(data)))
            assert got == {t: v for t, v in full.items() if t in matched}, path.name
            got = json.loads(result_json(read_dataset(data, stop_before_pixels=True)))
            assert got == {t: v for t, v in full.items() if t in RESULT_TAGS}, path.name


# --- selection vs a brute-force reference ------------------------------------------------

_NAMES = ["Doe^John", "DOE^Jane", "Smith^Anna", "Müller^Hans", ""]
_DATES = ["20200105", "20210610", "20220101", ""]
_MODALITIES = ["CT", "MR", "US", ""]
#: Attributes of the random queries a level does not search (qido.SEARCHABLE).
_NOT_SEARCHABLE: dict[str, set[str]] = {
    "study": {"Modality", "SeriesInstanceUID", "SOPInstanceUID"},
    "series": {"SOPInstanceUID"},
    "instance": set(),
}


def _element(vr: str, value: str) -> dict[str, object]:
    if not value:
        return {"vr": vr}
    return {"vr": vr, "Value": [{"Alphabetic": value} if vr == "PN" else value]}


def _records(rng: random.Random) -> list[InstanceRecord]:
    records = []
    for study in range(rng.randint(1, 9)):
        study_uid = f"1.2.{rng.randint(1, 40)}.{study}"
        name, date = rng.choice(_NAMES), rng.choice(_DATES)
        for series in range(rng.randint(1, 3)):
            series_uid = f"{study_uid}.{rng.randint(1, 9)}{series}"
            modality = rng.choice(_MODALITIES)
            for _ in range(rng.randint(1, 4)):
                sop_uid = f"1.3.{rng.randint(1, 10**6)}"
                elements = {
                    # Instances of one study may disagree (matching is per instance).
                    "00100010": _element("PN", rng.choice([name, name, rng.choice(_NAMES)])),
                    "00080020": _element("DA", date),
                    "00080060": _element("CS", modality),
                    "00100020": _element("LO", f"P{study % 3}"),
                }
                records.append(
                    InstanceRecord(
                        study_uid,
                        series_uid,
                        sop_uid,
                        "1.2.840.10008.5.1.4.1.1.2",
                        "1.2",
                        1,
                        10,
                        match_json=json.dumps(elements),
                    )
                )
    return records


def _reference(request: SearchRequest, records: list[InstanceRecord]) -> list[Hit]:
    def texts(record: InstanceRecord, tag: str) -> tuple[str, ...]:
        uids = {
            "0020000D": record.study_uid,
            "0020000E": record.series_uid,
            "00080018": record.sop_instance_uid,
        }
        if tag in uids:
            return (uids[tag],)
        return element_texts(json.loads(record.match_json).get(tag))

    matchers = [(f.tag, f.matcher(fuzzy=request.fuzzy)) for f in request.filters]
    matched = [r for r in records if all(test(texts(r, tag)) for tag, test in matchers)]
    size = {"study": 1, "series": 2, "instance": 3}[request.level]
    groups: dict[tuple[str, ...], InstanceRecord] = {}
    for record in matched:
        key = (record.study_uid, record.series_uid, record.sop_instance_uid)[:size]
        if key not in groups or record.sop_instance_uid < groups[key].sop_instance_uid:
            groups[key] = record
    hits = []
    for key in sorted(groups)[request.offset : request.offset + request.limit]:
        record = groups[key]
        study = [r for r in records if r.study_uid == record.study_uid]
        modalities = {texts(r, "00080060")[:1] for r in study} - {(), ("",)}
        hits.append(
            Hit(
                key=key,
                record=record,
                modalities=tuple(sorted(m[0] for m in modalities)),
                study_series=len({r.series_uid for r in study}),
                study_instances=len(study),
                series_instances=sum(1 for r in study if r.series_uid == record.series_uid),
            )
        )
    return hits


def _query(rng: random.Random, records: list[InstanceRecord]) -> dict[str, list[str]]:
    some = rng.choice(records)
    choices: dict[str, list[str]] = {
        "PatientName": ["doe*", "D?E^J*n", "jan", "smith^anna", "*", ""],
        "StudyDate": ["20210101-20221231", "-20201231", "20200105", ""],
        "PatientID": ["P1", "P*", "P2"],
        "StudyInstanceUID": [some.study_uid, f"{some.study_uid},{rng.choice(records).study_uid}"],
        "Modality": ["CT", "MR", ""],
        "SeriesInstanceUID": [some.series_uid, f"{some.series_uid}\\1.9.9"],
        "SOPInstanceUID": [some.sop_instance_uid],
    }
    query = {key: [rng.choice(values)] for key, values in choices.items() if rng.random() < 0.25}
    if rng.random() < 0.3:
        query["fuzzymatching"] = ["true"]
    if rng.random() < 0.5:
        query["limit"] = [str(rng.randint(0, 6))]
    if rng.random() < 0.5:
        query["offset"] = [str(rng.randint(0, 5))]
    return query


def test_select_follows_the_reference_rules() -> None:
    rng = random.Random(20240510)
    searched = 0
    for _ in range(60):
        records = _records(rng)
        index = StoreIndex()
        for record in records:
            index.add(record)
        for _ in range(40):
            level: Level = rng.choice(["study", "series", "instance"])
            query = _query(rng, records)
            searchable = {k: v for k, v in query.items() if k not in _NOT_SEARCHABLE[level]}
            request = parse_search(searchable, level)
            assert index.select(request) == _reference(request, records), (level, searchable)
            searched += 1
        # Removing instances keeps the groups consistent (DICOMweb delete).
        for record in rng.sample(records, len(records) // 2):
            index.remove(record)
            records.remove(record)
        request = parse_search({}, "series")
        assert index.select(request) == _reference(request, records)
    assert searched == 2400


def test_find_lists_a_study_series_or_instance_in_uid_order() -> None:
    records = _records(random.Random(5))
    index = StoreIndex()
    for record in records:
        index.add(record)
    some = records[len(records) // 2]
    in_study = sorted(
        (r for r in records if r.study_uid == some.study_uid),
        key=lambda r: (r.series_uid, r.sop_instance_uid),
    )
    assert index.find(some.study_uid) == in_study
    assert index.find(some.study_uid, some.series_uid) == [
        r for r in in_study if r.series_uid == some.series_uid
    ]
    assert index.find(some.study_uid, some.series_uid, some.sop_instance_uid) == [some]
    assert index.find(some.study_uid, "9.9") == [] and index.find("9.9") == []


def test_results_carry_every_matchable_attribute() -> None:
    assert set(MATCH_TAGS) <= RESULT_TAGS


# --- persistence ------------------------------------------------------------------------


def test_records_persisted_without_search_attributes_are_rebuilt_on_load(tmp_path: Path) -> None:
    dataset = "projects/p-roject/locations/l/datasets/d"
    store = f"{dataset}/dicomStores/s"
    state = HealthcareState(tmp_path)
    state.create_dataset(dataset, {})
    state.create_store(store, {})
    data = fresh_copy("CT_small.dcm", PatientName="Legacy^Record")
    parsed = parse_instance(data)
    state.add_instance(store, parsed, data)
    state.close()
    # An index line written before records had match_json.
    (index_file,) = (tmp_path / "healthcare" / "stores").glob("*/index.jsonl")
    line = json.loads(index_file.read_text())
    assert line.pop("match_json") == parsed.match_json
    index_file.write_text(json.dumps(line) + "\n")

    reloaded = HealthcareState(tmp_path)
    (record,) = reloaded.list_instances(store)
    assert record.match_json == parsed.match_json
    found = reloaded.search_instances(store, parse_search({"PatientName": ["legacy*"]}, "study"))
    assert [hit.record for hit in found] == [record]
    assert replace(record, match_json="") == InstanceRecord(**line)
