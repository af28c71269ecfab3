"""The journal of in-flight operations in Cloud Storage, shared by every machine that runs a stack.

The local journal (:mod:`dicom_transfer.healthcare.journal`) only helps a retry on the same
machine. A ``pulumi up`` killed on one CI runner and re-run on another would submit the same
import or export again (for a BigQuery ``WRITE_APPEND`` export: the rows twice). With
``DICOM_TRANSFER_JOURNAL=gs://BUCKET[/PREFIX]`` the records are objects
``PREFIX/<fingerprint>.json`` in that bucket instead:

* the "submitting" record is created with ``ifGenerationMatch=0``, so of two runs only one
  claims a fingerprint (the same guarantee the local journal gets from ``os.link``);
* later writes replace the object; removal deletes it.

The identity that runs ``pulumi up`` needs ``roles/storage.objectAdmin`` on that bucket (not
the Healthcare service agent). Records hold the fingerprint, kind, store, submit time and
operation name; no credential.
"""

from __future__ import annotations

from collections.abc import Iterator

from dicom_transfer.healthcare.client import StorageApi
from dicom_transfer.healthcare.journal import (
    JOURNAL_ENV,
    JournalRecord,
    _NewRecords,
    check_fingerprint,
    is_fingerprint,
    journal_uri,
)
from dicom_transfer.specs.gcs import GcsUri

__all__ = ["JOURNAL_ENV", "GcsJournal", "journal_uri"]

_SUFFIX = ".json"


class GcsJournal(_NewRecords):
    """Journal records as objects under a Cloud Storage prefix.

    Args:
        storage: Cloud Storage client (retries transient errors itself).
        location: ``gs://BUCKET[/PREFIX]``, already validated.
    """

    def __init__(self, storage: StorageApi, location: GcsUri) -> None:
        self.storage = storage
        self.bucket = location.bucket
        prefix = location.path.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""

    def _object(self, fingerprint: str) -> str:
        return f"{self.prefix}{check_fingerprint(fingerprint)}{_SUFFIX}"

    def path_for(self, fingerprint: str) -> str:
        """``gs://`` URI of ``fingerprint``'s record."""
        return f"gs://{self.bucket}/{self._object(fingerprint)}"

    def get(self, fingerprint: str) -> JournalRecord | None:
        """The record of ``fingerprint``, or None."""
        data = self.storage.read(self.bucket, self._object(fingerprint))
        if data is None:
            return None
        return JournalRecord.from_json(data.decode("utf-8", errors="replace"), fingerprint)

    def put(self, record: JournalRecord) -> None:
        """Write (or overwrite) ``record``."""
        self.storage.write(
            self.bucket, self._object(record.fingerprint), record.to_json().encode(), _JSON
        )

    def claim(self, record: JournalRecord) -> bool:
        """Create ``record`` only if no record exists for its fingerprint (atomic in GCS)."""
        return self.storage.write(
            self.bucket,
            self._object(record.fingerprint),
            record.to_json().encode(),
            _JSON,
            only_if_absent=True,
        )

    def remove(self, fingerprint: str) -> None:
        """Delete the record of ``fingerprint`` (no error when absent)."""
        self.storage.delete(self.bucket, self._object(fingerprint))

    def records(self) -> Iterator[JournalRecord]:
        """Every record under the prefix."""
        for name in sorted(self.storage.list_names(self.bucket, self.prefix)):
            stem = name[len(self.prefix) :]
            if "/" in stem or not stem.endswith(_SUFFIX):
                continue
            fingerprint = stem[: -len(_SUFFIX)]
            if not is_fingerprint(fingerprint):
                continue
            record = self.get(fingerprint)
            if record is not None:
                yield record

    def __repr__(self) -> str:
        return f"GcsJournal('gs://{self.bucket}/{self.prefix}')"


_JSON = "application/json"
