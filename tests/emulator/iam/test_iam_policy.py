"""One IAM policy rule and one etag for Cloud Storage buckets and Healthcare stores."""

from __future__ import annotations

import pytest
from dicom_transfer_emulator.healthcare.state import HealthcareState, StateError
from dicom_transfer_emulator.iam.policy import (
    PolicyError,
    next_policy_etag,
    policy_etag,
    stale_etag,
    validate_policy,
)
from dicom_transfer_emulator.storage.backends import MemoryStorage
from dicom_transfer_emulator.storage.errors import PreconditionFailed

STORE = "projects/p/locations/l/datasets/d/dicomStores/s"
BINDING = {"role": "roles/healthcare.dicomViewer", "members": ["user:a@example.com"]}


@pytest.mark.parametrize("counter", [0, 1, 127, 128, 300, 2**40])
def test_etags_count_up_as_protobuf_varints(counter: int) -> None:
    assert next_policy_etag(policy_etag(counter)) == policy_etag(counter + 1)


def test_an_etag_the_emulator_did_not_make_counts_as_zero() -> None:
    # "ACAB" is what earlier versions stored for an empty Healthcare policy.
    assert next_policy_etag("ACAB") == next_policy_etag(None) == policy_etag(1) == "CAE="


def test_an_empty_etag_is_unset_and_any_other_stale_one_is_refused() -> None:
    assert not stale_etag(None, "CAE=") and not stale_etag("", "CAE=")
    assert not stale_etag("CAE=", "CAE=") and stale_etag("CAI=", "CAE=")


def test_both_apis_use_the_same_etags_and_the_same_stale_rule() -> None:
    storage = MemoryStorage()
    storage.create_bucket("bkt", "p")
    bucket_etag = storage.get_iam_policy("bkt")["etag"]
    updated = storage.set_iam_policy("bkt", {"bindings": [BINDING], "etag": bucket_etag})
    assert updated["etag"] == next_policy_etag(bucket_etag)
    with pytest.raises(PreconditionFailed):
        storage.set_iam_policy("bkt", {"bindings": [], "etag": bucket_etag})

    state = HealthcareState()
    state.create_dataset("projects/p/locations/l/datasets/d", {})
    state.create_store(STORE, {})
    store_etag = state.get_store_policy(STORE)["etag"]
    assert store_etag == policy_etag(0)
    stored = state.set_store_policy(STORE, {"bindings": [BINDING], "etag": store_etag})
    assert stored["etag"] == next_policy_etag(store_etag)
    with pytest.raises(StateError) as stale:
        state.set_store_policy(STORE, {"bindings": [], "etag": store_etag})
    assert stale.value.status == "ABORTED"


@pytest.mark.parametrize("member", ["a@example.com", "user:", "robot:a@example.com", "allusers"])
def test_members_without_a_known_prefix_are_refused_for_every_resource(member: str) -> None:
    with pytest.raises(PolicyError, match="members"):
        validate_policy({"bindings": [{"role": "roles/viewer", "members": [member]}]})
