"""DICOMweb on the emulator, driven by dicomweb-client (a client nobody here wrote)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from dicom_transfer_emulator.app import Emulator, run_emulator
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.uid import generate_uid
from support.healthcare import (
    CORPUS_DIR,
    client,
    counters,
    datasets,
    fresh_copy,
    make_store,
    run_export,
    run_import,
)

PATIENT_NAME = "00100010"
STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"


def web_client(emu: Emulator, store: str, version: str = "v1") -> DICOMwebClient:
    return DICOMwebClient(f"{emu.healthcare_url}/{version}/{store}/dicomWeb")


def dataset(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(CORPUS_DIR / name)


def values(result: dict[str, Any], tag: str) -> list[Any]:
    return list(result.get(tag, {}).get("Value", []))


def uids(results: list[dict[str, Any]], tag: str) -> list[str]:
    return sorted(values(r, tag)[0] for r in results)


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_round_trip_store_search_retrieve_metadata_rendered_delete(
    emulator: Emulator, version: str
) -> None:
    store = make_store(client(emulator, version))
    web = web_client(emulator, store, version)
    ct, mr, rgb = (dataset(n) for n in ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm"))

    stored = web.store_instances([ct, mr, rgb])
    referenced = [item.ReferencedSOPInstanceUID for item in stored.ReferencedSOPSequence]
    assert sorted(referenced) == sorted(d.SOPInstanceUID for d in (ct, mr, rgb))
    assert "FailedSOPSequence" not in stored

    studies = web.search_for_studies()
    assert uids(studies, STUDY_UID) == sorted({d.StudyInstanceUID for d in (ct, mr, rgb)})
    ct_study = next(s for s in studies if values(s, STUDY_UID) == [ct.StudyInstanceUID])
    assert values(ct_study, PATIENT_NAME) == [{"Alphabetic": str(ct.PatientName)}]
    assert values(ct_study, "00201208") == [1]  # NumberOfStudyRelatedInstances
    assert values(ct_study, "00080061") == ["CT"]  # ModalitiesInStudy

    series = web.search_for_series(ct.StudyInstanceUID)
    assert uids(series, SERIES_UID) == [ct.SeriesInstanceUID]
    instances = web.search_for_instances(ct.StudyInstanceUID, ct.SeriesInstanceUID)
    assert uids(instances, SOP_UID) == [ct.SOPInstanceUID]

    # Default Accept: explicit VR little endian, same pixels as the original.
    study = web.retrieve_study(ct.StudyInstanceUID)
    assert [d.SOPInstanceUID for d in study] == [ct.SOPInstanceUID]
    assert study[0].file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (study[0].pixel_array == ct.pixel_array).all()
    as_stored = web.retrieve_instance(
        rgb.StudyInstanceUID,
        rgb.SeriesInstanceUID,
        rgb.SOPInstanceUID,
        media_types=(("application/dicom", "*"),),
    )
    assert as_stored.file_meta.TransferSyntaxUID == rgb.file_meta.TransferSyntaxUID
    assert (as_stored.pixel_array == rgb.pixel_array).all()

    metadata = web.retrieve_study_metadata(mr.StudyInstanceUID)
    assert len(metadata) == 1
    assert values(metadata[0], SOP_UID) == [mr.SOPInstanceUID]
    assert values(metadata[0], PATIENT_NAME) == [{"Alphabetic": str(mr.PatientName)}]
    assert "7FE00010" not in metadata[0]  # bulk data is left out

    jpeg = web.retrieve_instance_rendered(
        ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID
    )
    with Image.open(io.BytesIO(jpeg)) as image:
        assert (image.format, image.size) == ("JPEG", (ct.Columns, ct.Rows))
    png = web.retrieve_instance_rendered(
        rgb.StudyInstanceUID, rgb.SeriesInstanceUID, rgb.SOPInstanceUID, media_types=("image/png",)
    )
    with Image.open(io.BytesIO(png)) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (rgb.Columns, rgb.Rows), "RGB")

    frames = web.retrieve_instance_frames(
        rgb.StudyInstanceUID, rgb.SeriesInstanceUID, rgb.SOPInstanceUID, frame_numbers=[2, 1]
    )
    pixels = rgb.pixel_array  # (frames, rows, columns, samples)
    assert frames == [pixels[1].tobytes(), pixels[0].tobytes()]

    web.delete_study(ct.StudyInstanceUID)
    assert uids(web.search_for_studies(), STUDY_UID) == sorted(
        {mr.StudyInstanceUID, rgb.StudyInstanceUID}
    )
    with pytest.raises(requests.HTTPError) as missing:
        web.retrieve_study(ct.StudyInstanceUID)
    assert missing.value.response.status_code == 404


def test_qido_matching_rules(emulator: Emulator) -> None:
    store = make_store(client(emulator))
    base = f"{emulator.healthcare_url}/v1/{store}/dicomWeb"
    study_uids = [generate_uid() for _ in range(3)]
    people = [("Doe^John", "20200105"), ("DOE^Jane", "20210610"), ("Smith^Anna", "20220101")]
    for uid, (name, date) in zip(study_uids, people, strict=True):
        body = fresh_copy("CT_small.dcm", StudyInstanceUID=uid, PatientName=name, StudyDate=date)
        assert requests.post(
            base + "/studies", data=body, headers={"Content-Type": "application/dicom"}
        ).ok

    def studies(**params: str) -> list[dict[str, Any]]:
        response = requests.get(base + "/studies", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/dicom+json"
        result: list[dict[str, Any]] = response.json()
        return result

    assert uids(studies(StudyInstanceUID=f"{study_uids[0]},{study_uids[2]}"), STUDY_UID) == sorted(
        [study_uids[0], study_uids[2]]
    )
    assert uids(studies(PatientName="doe*"), STUDY_UID) == sorted(study_uids[:2])
    assert uids(studies(PatientName="D?E^J*n"), STUDY_UID) == [study_uids[0]]
    assert uids(studies(PatientName="jan", fuzzymatching="true"), STUDY_UID) == [study_uids[1]]
    assert uids(studies(StudyDate="20210101-20221231"), STUDY_UID) == sorted(study_uids[1:])
    assert uids(studies(StudyDate="-20201231"), STUDY_UID) == [study_uids[0]]
    assert uids(studies(**{"00100010": "Smith^Anna"}), STUDY_UID) == [study_uids[2]]

    page = studies(limit="2", offset="1")
    assert uids(page, STUDY_UID) == sorted(study_uids)[1:3]

    default = studies(StudyInstanceUID=study_uids[0])[0]
    assert "00080070" not in default  # Manufacturer is not a default study attribute
    assert values(default, "00081190")[0].endswith(f"/dicomWeb/studies/{study_uids[0]}")
    included = studies(StudyInstanceUID=study_uids[0], includefield="Manufacturer,00181030")[0]
    assert values(included, "00080070") == [dataset("CT_small.dcm").Manufacturer]
    everything = studies(StudyInstanceUID=study_uids[0], includefield="all")[0]
    assert "00080070" in everything and "00180050" in everything

    series_everywhere = requests.get(base + "/series", params={"Modality": "CT"}).json()
    assert len(series_everywhere) == 3
    assert all(PATIENT_NAME in s for s in series_everywhere)  # study attributes included

    bad = requests.get(base + "/studies", params={"Manufacturer": "GE"})
    assert bad.status_code == 400
    assert "Manufacturer" in bad.json()["error"]["message"]
    assert "StudyDate" in bad.json()["error"]["message"]  # lists the searchable ones
    bad_date = requests.get(base + "/studies", params={"StudyDate": "2020-01-01"})
    assert bad_date.status_code == 400 and "YYYYMMDD" in bad_date.json()["error"]["message"]


def _store_with_ct(emu: Emulator) -> tuple[str, DICOMwebClient, pydicom.Dataset]:
    """A new store holding CT_small.dcm (stored by STOW-RS): the store, a client, the data set."""
    store = make_store(client(emu))
    web = web_client(emu, store)
    ct = dataset("CT_small.dcm")
    web.store_instances([ct])
    return store, web, ct


def _stow_statuses(emu: Emulator) -> list[int]:
    """HTTP statuses of the STOW-RS requests so far (dicomweb-client hides 200 from 202)."""
    return [r.status for r in emu.requests.matching("POST", r"/dicomWeb/studies(/[^/]+)?$")]


def test_stow_of_an_identical_instance_again_is_stored(emulator: Emulator) -> None:
    store = make_store(client(emulator))
    web = web_client(emulator, store)
    ct = dataset("CT_small.dcm")
    first = web.store_instances([ct])
    again = web.store_instances([ct])  # the same file again: no error

    assert _stow_statuses(emulator) == [200, 200]
    assert "FailedSOPSequence" not in again
    assert [(i.ReferencedSOPInstanceUID, i.RetrieveURL) for i in again.ReferencedSOPSequence] == [
        (i.ReferencedSOPInstanceUID, i.RetrieveURL) for i in first.ReferencedSOPSequence
    ]
    assert "WarningReason" not in again.ReferencedSOPSequence[0]
    assert uids(web.search_for_instances(ct.StudyInstanceUID), SOP_UID) == [ct.SOPInstanceUID]


def test_stow_of_other_content_under_stored_uids_is_409_and_keeps_the_stored_file(
    emulator: Emulator,
) -> None:
    _, web, ct = _store_with_ct(emulator)
    changed = dataset("CT_small.dcm")
    changed.PatientName = "Other^Name"  # same Study/Series/SOP Instance UIDs, other bytes

    with pytest.raises(requests.HTTPError) as conflict:
        web.store_instances([changed])
    assert conflict.value.response.status_code == 409
    assert conflict.value.response.headers["Content-Type"] == "application/dicom+json"
    result = pydicom.Dataset.from_json(conflict.value.response.json())
    assert [(f.ReferencedSOPInstanceUID, f.FailureReason) for f in result.FailedSOPSequence] == [
        (ct.SOPInstanceUID, 0x0111)
    ]
    assert "ReferencedSOPSequence" not in result
    kept = web.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    assert kept.PatientName == ct.PatientName


def test_stow_mixing_new_identical_and_conflicting_instances(emulator: Emulator) -> None:
    _, web, ct = _store_with_ct(emulator)
    new = pydicom.dcmread(io.BytesIO(fresh_copy("CT_small.dcm")))
    changed = dataset("CT_small.dcm")
    changed.PatientName = "Other^Name"

    # A new instance and an identical copy: all stored, 200 (PS3.18 §10.5.3.1).
    both = web.store_instances([new, ct])
    assert sorted(i.ReferencedSOPInstanceUID for i in both.ReferencedSOPSequence) == sorted(
        [new.SOPInstanceUID, ct.SOPInstanceUID]
    )
    # Another new one and a conflicting copy: some stored, some failed, 202.
    newer = pydicom.dcmread(io.BytesIO(fresh_copy("CT_small.dcm")))
    mixed = web.store_instances([newer, changed])
    assert _stow_statuses(emulator) == [200, 200, 202]
    assert [i.ReferencedSOPInstanceUID for i in mixed.ReferencedSOPSequence] == [
        newer.SOPInstanceUID
    ]
    assert [(i.ReferencedSOPInstanceUID, i.FailureReason) for i in mixed.FailedSOPSequence] == [
        (ct.SOPInstanceUID, 0x0111)
    ]
    assert uids(web.search_for_instances(ct.StudyInstanceUID), SOP_UID) == sorted(
        [ct.SOPInstanceUID, new.SOPInstanceUID, newer.SOPInstanceUID]
    )


def test_import_and_stow_apply_the_same_duplicate_rule(emulator: Emulator) -> None:
    hc = client(emulator)
    store = make_store(hc)
    base = f"{emulator.healthcare_url}/v1/{store}/dicomWeb/studies"
    dicom = {"Content-Type": "application/dicom"}
    emulator.storage.create_bucket("src", "test-project")
    imported, stowed = fresh_copy("MR_small.dcm"), fresh_copy("CT_small.dcm")
    emulator.storage.write_object("src", "imported.dcm", imported)
    assert counters(run_import(hc, store, "gs://src/imported.dcm")) == (1, 0, 0)
    assert requests.post(base, data=stowed, headers=dicom).status_code == 200

    # What import stored, STOW-RS takes again as it is and refuses changed.
    assert requests.post(base, data=imported, headers=dicom).status_code == 200
    other = _reencoded(imported)
    assert requests.post(base, data=other, headers=dicom).status_code == 409
    # What STOW-RS stored, import takes again as it is and refuses changed.
    emulator.storage.write_object("src", "stowed/same.dcm", stowed)
    emulator.storage.write_object("src", "stowed/other.dcm", _reencoded(stowed))
    op = run_import(hc, store, "gs://src/stowed/*")
    assert counters(op) == (1, 1, 0)
    logs = emulator.healthcare.state.get_logs(op["name"].rsplit("/", 1)[1])
    assert logs is not None
    assert {(e["resource"], e["severity"]) for e in logs} == {
        ("gs://src/stowed/other.dcm", "ERROR"),
        ("gs://src/stowed/same.dcm", "INFO"),
    }
    state = emulator.healthcare.state
    files = {state.read_instance(store, r.sop_instance_uid) for r in state.list_instances(store)}
    assert files == {imported, stowed}


def _reencoded(data: bytes) -> bytes:
    """The same data set (same UIDs) in the other uncompressed little endian syntax."""
    ds = pydicom.dcmread(io.BytesIO(data))
    implicit, explicit = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
    syntax = ds.file_meta.TransferSyntaxUID
    ds.file_meta.TransferSyntaxUID = explicit if syntax == implicit else implicit
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    assert out.getvalue() != data
    return out.getvalue()


def test_stow_refuses_instances_outside_the_study_of_the_path(emulator: Emulator) -> None:
    store = make_store(client(emulator))
    ct = dataset("CT_small.dcm")
    other = pydicom.dcmread(io.BytesIO(fresh_copy("MR_small.dcm")))
    same_study = pydicom.dcmread(io.BytesIO(fresh_copy("CT_small.dcm")))
    url = f"{emulator.healthcare_url}/v1/{store}/dicomWeb/studies/{ct.StudyInstanceUID}"
    content_type, body = _multipart([other, same_study])
    response = requests.post(url, data=body, headers={"Content-Type": content_type})
    assert response.status_code == 202
    result = pydicom.Dataset.from_json(response.json())
    assert [i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence] == [
        same_study.SOPInstanceUID
    ]
    assert [(i.ReferencedSOPInstanceUID, i.FailureReason) for i in result.FailedSOPSequence] == [
        (other.SOPInstanceUID, 0xC000)
    ]


def _multipart(items: list[pydicom.Dataset]) -> tuple[str, bytes]:
    boundary = "b0undary"
    chunks = []
    for ds in items:
        out = io.BytesIO()
        ds.save_as(out)
        chunks.append(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + out.getvalue()
            + b"\r\n"
        )
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return f'multipart/related; type="application/dicom"; boundary={boundary}', body


def test_delete_series_answers_a_done_operation_and_instance_delete_is_empty(
    emulator: Emulator,
) -> None:
    hc = client(emulator)
    store = make_store(hc)
    web = web_client(emulator, store)
    first = pydicom.dcmread(io.BytesIO(fresh_copy("CT_small.dcm")))
    second = pydicom.dcmread(io.BytesIO(fresh_copy("CT_small.dcm")))
    web.store_instances([first, second])
    studies = datasets(hc).dicomStores().studies()
    studies.series().instances().delete(
        parent=store,
        dicomWebPath=f"studies/{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}"
        f"/instances/{first.SOPInstanceUID}",
    ).execute()
    remaining = web.search_for_instances(first.StudyInstanceUID)
    assert uids(remaining, SOP_UID) == [second.SOPInstanceUID]
    op = (
        studies.series()
        .delete(
            parent=store,
            dicomWebPath=f"studies/{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}",
        )
        .execute()
    )
    assert op["done"] is True and "error" not in op
    assert op["metadata"]["apiMethodName"].endswith("DicomWebService.DeleteSeries")
    assert web.search_for_studies() == []


def test_imported_instances_are_searchable_and_dicomweb_ones_are_exported(
    emulator: Emulator,
) -> None:
    hc = client(emulator)
    store = make_store(hc)
    web = web_client(emulator, store)
    emulator.storage.create_bucket("src", "test-project")
    emulator.storage.create_bucket("out", "test-project")
    imported = dataset("MR_small.dcm")
    emulator.storage.write_object("src", "in/mr.dcm", (CORPUS_DIR / "MR_small.dcm").read_bytes())
    assert "error" not in run_import(hc, store, "gs://src/in/*.dcm")

    found = web.search_for_instances(search_filters={"SOPInstanceUID": imported.SOPInstanceUID})
    assert uids(found, SOP_UID) == [imported.SOPInstanceUID]
    assert web.retrieve_instance(
        imported.StudyInstanceUID, imported.SeriesInstanceUID, imported.SOPInstanceUID
    ).PatientName == str(imported.PatientName)

    stowed = dataset("CT_small.dcm")
    web.store_instances([stowed])
    done = run_export(hc, store, {"gcsDestination": {"uriPrefix": "gs://out/x"}})
    assert "error" not in done, done
    names = {o.name for o in emulator.storage.list_objects("out")[0]}
    assert any(n.endswith(f"{stowed.SOPInstanceUID}.dcm") for n in names), names
    assert any(n.endswith(f"{imported.SOPInstanceUID}.dcm") for n in names), names


def test_dicomweb_instances_survive_a_restart(tmp_path: Path) -> None:
    ct, mr = dataset("CT_small.dcm"), dataset("MR_small.dcm")
    with run_emulator(data_dir=tmp_path) as emu:
        store = make_store(client(emu))
        web = web_client(emu, store)
        web.store_instances([ct, mr])
        web.delete_study(mr.StudyInstanceUID)
    with run_emulator(data_dir=tmp_path) as emu:
        web = web_client(emu, store)
        assert uids(web.search_for_studies(), STUDY_UID) == [ct.StudyInstanceUID]
        # What searches match on came back too, without a new STOW.
        by_name = web.search_for_studies(search_filters={"PatientName": str(ct.PatientName)})
        assert uids(by_name, STUDY_UID) == [ct.StudyInstanceUID]
        again = web.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
        assert (again.pixel_array == ct.pixel_array).all()


def test_not_acceptable_and_unsupported_media_types_name_the_alternatives(
    emulator: Emulator,
) -> None:
    store, _, ct = _store_with_ct(emulator)
    base = f"{emulator.healthcare_url}/v1/{store}/dicomWeb/studies/{ct.StudyInstanceUID}"
    refused = requests.get(base, headers={"Accept": "application/pdf"})
    assert refused.status_code == 406
    assert "transfer-syntax" in refused.json()["error"]["message"]
    wrong_type = requests.post(
        f"{emulator.healthcare_url}/v1/{store}/dicomWeb/studies",
        data=json.dumps({}),
        headers={"Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
    assert "application/dicom" in wrong_type.json()["error"]["message"]


def test_a_search_without_matches_is_204_no_content(emulator: Emulator) -> None:
    store = make_store(client(emulator))
    base = f"{emulator.healthcare_url}/v1/{store}/dicomWeb"
    web_client(emulator, store).store_instances([dataset("CT_small.dcm")])

    none = requests.get(f"{base}/studies?PatientID=nobody", timeout=30)
    some = requests.get(f"{base}/studies", timeout=30)

    assert (none.status_code, none.content) == (204, b"")
    assert some.status_code == 200 and len(some.json()) == 1


def test_retrieval_transcodes_to_jpeg_2000_as_the_docstring_says(emulator: Emulator) -> None:
    store = make_store(client(emulator))
    ct = dataset("CT_small.dcm")
    web = web_client(emulator, store)
    web.store_instances([ct])
    jpeg_2000_lossless = "1.2.840.10008.1.2.4.90"

    served = web.retrieve_instance(
        ct.StudyInstanceUID,
        ct.SeriesInstanceUID,
        ct.SOPInstanceUID,
        media_types=(("application/dicom", jpeg_2000_lossless),),
    )

    assert served.file_meta.TransferSyntaxUID == jpeg_2000_lossless
    assert np.array_equal(served.pixel_array, ct.pixel_array)  # lossless
