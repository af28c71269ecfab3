"""On-disk journal of each request's operation, so a create never submits a request twice.

One JSON file per request fingerprint in the journal directory:
``$DICOM_TRANSFER_STATE_DIR`` or ``${XDG_STATE_HOME:-~/.local/state}/dicom-transfer/journal``.

Lifecycle of a record (see :func:`dicom_transfer.healthcare.transfer.run_transfer`):

1. written *before* the submit with ``operation_name=None`` ("submitting": if the process dies
   between sending and the response, the next run knows a submit may have happened);
2. rewritten with the operation name as soon as the API answers;
3. once the operation finished: removed when the create succeeded or the operation moved
   nothing (``success_count`` 0: submitting again is harmless); rewritten with the finished
   operation as its ``outcome`` when the create failed after data moved -- a finished
   operation is its request's outcome, so a later create of the same request judges that
   outcome again instead of submitting (the user changes ``triggers`` to run again);
4. removed when the submit provably created nothing; kept when the deadline passed, so the
   next run resumes the same operation; kept, too, when the API no longer knows the operation
   it names (:class:`~dicom_transfer.errors.OperationForgotten`: it may have moved data, so
   nothing is submitted until the user changes ``triggers`` or deletes the record).

Writes are atomic (temporary file in the same directory, then ``os.replace``); the "submitting"
record is created exclusively (``os.link``), so two processes or threads cannot both claim the
same fingerprint. A file that cannot be parsed counts as an unnamed record (fail safe).

This journal lives on the machine that runs ``pulumi up``. Runs that may resume on another
machine (CI runners) share one in Cloud Storage instead: ``DICOM_TRANSFER_JOURNAL=gs://...``
(:mod:`dicom_transfer.healthcare.gcs_journal`). Both implement :class:`JournalStore`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from dicom_transfer.healthcare.results import OperationResult
from dicom_transfer.specs.gcs import GcsUri, parse_gcs_uri

__all__ = [
    "JOURNAL_ENV",
    "STATE_DIR_ENV",
    "Journal",
    "JournalRecord",
    "JournalStore",
    "default_journal_dir",
    "journal_uri",
]

STATE_DIR_ENV = "DICOM_TRANSFER_STATE_DIR"
JOURNAL_ENV = "DICOM_TRANSFER_JOURNAL"
"""``gs://BUCKET[/PREFIX]``: keep the records in Cloud Storage (shared by machines)."""
_FINGERPRINT_RE = re.compile(r"[0-9a-f]{16,128}")


def default_journal_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The journal directory.

    ``$DICOM_TRANSFER_STATE_DIR``, else
    ``${XDG_STATE_HOME:-~/.local/state}/dicom-transfer/journal``.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    state_home = env.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(state_home) / "dicom-transfer" / "journal"


def journal_uri(environ: Mapping[str, str] | None = None) -> GcsUri | None:
    """The shared journal's location, if ``DICOM_TRANSFER_JOURNAL`` names one.

    Raises:
        InvalidSpec: The variable is set but is not ``gs://BUCKET[/PREFIX]``.
    """
    raw = (os.environ if environ is None else environ).get(JOURNAL_ENV, "")
    if not raw:
        return None
    return parse_gcs_uri(raw, JOURNAL_ENV, kind="prefix")


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class JournalRecord:
    """One request's operation: being submitted, running, or finished as its outcome.

    Attributes:
        fingerprint: sha256 of the request (see ``specs.fingerprint.request_fingerprint``).
        kind: ``import`` or ``export``.
        store: The DICOM store's resource name.
        submitted_at: Wall-clock time (epoch seconds) just before the first submit attempt.
        operation_name: The operation, or None while submitting (unknown outcome).
        outcome: The finished operation when it is the request's outcome (a create failed
            on it after data moved); None while in flight.
    """

    fingerprint: str
    kind: str
    store: str
    submitted_at: float
    operation_name: str | None = None
    outcome: OperationResult | None = None

    @property
    def submitted_at_iso(self) -> str:
        """``submitted_at`` as RFC 3339 UTC."""
        return _iso(self.submitted_at)

    def with_operation(self, name: str) -> JournalRecord:
        """The same record with an operation name."""
        return replace(self, operation_name=name)

    def with_outcome(self, result: OperationResult) -> JournalRecord:
        """The same record holding the finished operation ``result`` as its outcome."""
        return replace(self, operation_name=result.name or self.operation_name, outcome=result)

    def to_json(self) -> str:
        """Serialized form (with a human-readable time).

        The outcome is the parsed operation: names, counters, times, the error's code and
        message, the logs URL; never a credential.
        """
        data: dict[str, Any] = asdict(self)
        data["submitted_at_iso"] = self.submitted_at_iso
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, fingerprint: str) -> JournalRecord:
        """Parse a journal file; anything unreadable becomes an unnamed record."""
        try:
            data = json.loads(text)
            name = data.get("operation_name")
            return cls(
                fingerprint=fingerprint,
                kind=str(data["kind"]),
                store=str(data["store"]),
                submitted_at=float(data["submitted_at"]),
                operation_name=name if isinstance(name, str) and name else None,
                outcome=_outcome(data.get("outcome")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(fingerprint, "unknown", "unknown", 0.0, None)


def _outcome(data: object) -> OperationResult | None:
    """The recorded outcome; None when absent or unreadable (the record then names its
    operation only, and the next run reads that operation again: still no submit)."""
    if not isinstance(data, dict):
        return None
    try:
        outcome = OperationResult(**{**data, "sample_errors": tuple(data["sample_errors"])})
    except (TypeError, KeyError):
        return None
    return outcome if outcome.done and outcome.name else None


class JournalStore(Protocol):
    """Where in-flight records live: a local directory or a Cloud Storage prefix."""

    def path_for(self, fingerprint: str) -> Path | str:
        """Where ``fingerprint``'s record is kept (for messages)."""
        ...

    def get(self, fingerprint: str) -> JournalRecord | None:
        """The record of ``fingerprint``, or None."""
        ...

    def put(self, record: JournalRecord) -> None:
        """Write (or overwrite) ``record``."""
        ...

    def claim(self, record: JournalRecord) -> bool:
        """Write ``record`` only if none exists for its fingerprint; False if one does."""
        ...

    def remove(self, fingerprint: str) -> None:
        """Delete the record of ``fingerprint`` (no error when absent)."""
        ...

    def records(self) -> Iterator[JournalRecord]:
        """Every record."""
        ...

    def new_record(
        self, fingerprint: str, kind: str, store: str, now: float | None = None
    ) -> JournalRecord:
        """A "submitting" record stamped with the current wall-clock time."""
        ...


def check_fingerprint(fingerprint: str) -> str:
    """``fingerprint`` if it is lowercase hex (it becomes a file or object name).

    Raises:
        ValueError: It is not.
    """
    if not _FINGERPRINT_RE.fullmatch(fingerprint):
        raise ValueError(f"not a fingerprint (lowercase hex): {fingerprint!r}")
    return fingerprint


def is_fingerprint(name: str) -> bool:
    """Whether ``name`` has the form of a fingerprint."""
    return _FINGERPRINT_RE.fullmatch(name) is not None


class _NewRecords:
    """What every journal store shares: how a "submitting" record starts."""

    def new_record(
        self, fingerprint: str, kind: str, store: str, now: float | None = None
    ) -> JournalRecord:
        """A "submitting" record stamped with the current wall-clock time."""
        return JournalRecord(fingerprint, kind, store, time.time() if now is None else now)


class Journal(_NewRecords):
    """The journal directory. Cheap to create; pickles as its path.

    Args:
        directory: Where records live; default :func:`default_journal_dir`.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_journal_dir()

    @classmethod
    def default(cls) -> Journal:
        """The journal in the default directory (environment read now)."""
        return cls(default_journal_dir())

    def path_for(self, fingerprint: str) -> Path:
        """File of ``fingerprint``'s record."""
        return self.directory / f"{check_fingerprint(fingerprint)}.json"

    def get(self, fingerprint: str) -> JournalRecord | None:
        """The record of ``fingerprint``, or None."""
        try:
            text = self.path_for(fingerprint).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return JournalRecord.from_json(text, fingerprint)

    def _temp_file(self, record: JournalRecord) -> str:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(
            dir=self.directory, prefix=f".{record.fingerprint[:16]}.", suffix=".tmp"
        )
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(record.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        return temp

    def put(self, record: JournalRecord) -> None:
        """Write (or overwrite) ``record`` atomically."""
        target = self.path_for(record.fingerprint)
        temp = self._temp_file(record)
        try:
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def claim(self, record: JournalRecord) -> bool:
        """Write ``record`` only if no record exists for its fingerprint (atomic).

        Returns:
            True when written; False when another record already exists.
        """
        target = self.path_for(record.fingerprint)
        temp = self._temp_file(record)
        try:
            try:
                os.link(temp, target)
            except FileExistsError:
                return False
            except OSError:
                # Filesystems without hard links: check-then-replace (a narrow race).
                if target.exists():
                    return False
                os.replace(temp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        return True

    def remove(self, fingerprint: str) -> None:
        """Delete the record of ``fingerprint`` (no error when absent)."""
        with contextlib.suppress(FileNotFoundError):
            self.path_for(fingerprint).unlink()

    def records(self) -> Iterator[JournalRecord]:
        """Every record in the journal."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.json")):
            fingerprint = path.stem
            if not _FINGERPRINT_RE.fullmatch(fingerprint):
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
            yield JournalRecord.from_json(text, fingerprint)

    def __repr__(self) -> str:
        return f"Journal({str(self.directory)!r})"
