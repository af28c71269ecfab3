"""Retired and misspelled target variables are named, never silently ignored."""

from __future__ import annotations

import pytest
from dicom_transfer.healthcare.variables import (
    RETIRED,
    mixed_target_problem,
    target_variable_problems,
)


def test_the_retired_healthcare_endpoint_variable_names_its_replacement() -> None:
    [problem] = target_variable_problems(
        {"DICOM_TRANSFER_HEALTHCARE_ENDPOINT": "http://127.0.0.1:8080"}
    )
    assert problem.startswith(
        "DICOM_TRANSFER_HEALTHCARE_ENDPOINT='http://127.0.0.1:8080' is set but no longer read: "
        "calls go to Google's public endpoint instead. Set HEALTHCARE_EMULATOR_HOST for a local "
        "emulator"
    ), problem
    assert "`endpoint` input" in problem
    assert problem.endswith("then unset DICOM_TRANSFER_HEALTHCARE_ENDPOINT")


def test_a_retired_variable_fails_even_beside_its_replacement() -> None:
    [problem] = target_variable_problems(
        {
            "DICOM_TRANSFER_HEALTHCARE_ENDPOINT": "http://127.0.0.1:8080",
            "HEALTHCARE_EMULATOR_HOST": "127.0.0.1:9000",
        }
    )
    assert "calls go to HEALTHCARE_EMULATOR_HOST=127.0.0.1:9000 instead" in problem


def test_credentials_in_a_url_value_are_not_repeated() -> None:
    [problem] = target_variable_problems(
        {"DICOM_TRANSFER_HEALTHCARE_ENDPOINT": "https://user:s3cret@proxy.example:8443/x"}
    )
    assert "s3cret" not in problem and "user" not in problem
    assert "'https://proxy.example:8443/x'" in problem


@pytest.mark.parametrize(
    ("name", "intended"),
    [
        ("HEALTHCARE_EMULATOR_HOSTS", "HEALTHCARE_EMULATOR_HOST"),
        ("HEALTHCARE_EMULATOR", "HEALTHCARE_EMULATOR_HOST"),
        ("healthcare_emulator_host", "HEALTHCARE_EMULATOR_HOST"),
        ("HEALTHCAR_EMULATOR_HOST", "HEALTHCARE_EMULATOR_HOST"),
        ("STORAGE_EMULATOR_HOSTNAME", "STORAGE_EMULATOR_HOST"),
        ("DICOM_TRANSFER_JOURNAL_URI", "DICOM_TRANSFER_JOURNAL"),
        ("DICOM_TRANSFER_STATEDIR", "DICOM_TRANSFER_STATE_DIR"),
        # An unknown one of ours about an endpoint: the variable of the API it names.
        ("DICOM_TRANSFER_STORAGE_ENDPOINT", "STORAGE_EMULATOR_HOST"),
        ("DICOM_TRANSFER_GCS_EMULATOR", "STORAGE_EMULATOR_HOST"),
        ("DICOM_TRANSFER_HEALTHCARE_URL", "HEALTHCARE_EMULATOR_HOST"),
        ("DICOM_TRANSFER_JOURNAL_BUCKET", "DICOM_TRANSFER_JOURNAL"),
    ],
)
def test_a_misspelled_target_variable_names_the_right_one(name: str, intended: str | None) -> None:
    [problem] = target_variable_problems({name: "127.0.0.1:8080"})
    assert problem.startswith(f"{name}='127.0.0.1:8080' is not a variable dicom-transfer reads")
    if intended is not None:
        assert f"did you mean {intended} (" in problem


@pytest.mark.parametrize(
    "name",
    [
        "HEALTHCARE_EMULATOR_HOST",
        "STORAGE_EMULATOR_HOST",
        "DICOM_TRANSFER_JOURNAL",
        "DICOM_TRANSFER_STATE_DIR",
        "DICOM_TRANSFER_PROVIDER_SHARDS",
        "DICOM_TRANSFER_PROVIDER_WORKERS",
        "DICOM_TRANSFER_PULUMI_STATE",
        "DICOM_TRANSFER_CACHE",
        "DICOM_TRANSFER_PYTHON",
        "FIRESTORE_EMULATOR_HOST",
        "DATASTORE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
        "SPANNER_EMULATOR_HOST",
        "BIGTABLE_EMULATOR_HOST",
        "FIREBASE_STORAGE_EMULATOR_HOST",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_HEALTHCARE",
        "PATH",
    ],
)
def test_our_own_and_other_tools_variables_pass(name: str) -> None:
    assert target_variable_problems({name: "127.0.0.1:8080"}) == []


def test_an_empty_retired_variable_passes() -> None:
    assert target_variable_problems(dict.fromkeys(RETIRED, "")) == []


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        (
            {"HEALTHCARE_EMULATOR_HOST": "127.0.0.1:8080"},
            "HEALTHCARE_EMULATOR_HOST='127.0.0.1:8080' is set but STORAGE_EMULATOR_HOST is not: "
            "the filter file would be written to Google's Cloud Storage",
        ),
        (
            {"STORAGE_EMULATOR_HOST": "127.0.0.1:9023"},
            "STORAGE_EMULATOR_HOST='127.0.0.1:9023' is set but HEALTHCARE_EMULATOR_HOST is not: "
            "Google's Healthcare API would be asked to read the filter file from the emulator",
        ),
    ],
)
def test_an_export_staging_a_filter_between_an_emulator_and_google_is_refused(
    environ: dict[str, str], says: str
) -> None:
    problem = mixed_target_problem(stages_filter=True, endpoint_inputs=False, environ=environ)
    assert problem is not None and problem.startswith(says), problem


@pytest.mark.parametrize(
    ("stages_filter", "endpoint_inputs", "environ"),
    [
        (False, False, {"HEALTHCARE_EMULATOR_HOST": "127.0.0.1:8080"}),  # no Cloud Storage call
        (True, True, {"HEALTHCARE_EMULATOR_HOST": "127.0.0.1:8080"}),  # inputs say where
        (True, False, {"HEALTHCARE_EMULATOR_HOST": "h:1", "STORAGE_EMULATOR_HOST": "h:2"}),
        (True, False, {}),  # Google's endpoints for both
        (True, False, {"HEALTHCARE_EMULATOR_HOST": " ", "STORAGE_EMULATOR_HOST": ""}),
    ],
)
def test_consistent_targets_pass(
    stages_filter: bool, endpoint_inputs: bool, environ: dict[str, str]
) -> None:
    assert (
        mixed_target_problem(
            stages_filter=stages_filter, endpoint_inputs=endpoint_inputs, environ=environ
        )
        is None
    )
