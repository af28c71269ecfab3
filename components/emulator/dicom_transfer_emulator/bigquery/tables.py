"""Emulated BigQuery tables: the destination of ``dicomStores.export`` to BigQuery.

Tables are addressed as ``project.dataset.table`` (the ``bq://`` URI without its scheme) and
hold JSON rows. With a data directory each table is a JSON-lines file
``{data_dir}/bigquery/{project}/{dataset}/{table}.jsonl``; otherwise they live in memory.
On disk, written rows are streamed to a spool file next to the table and moved into it at
the end, so an export of 10,000 instances never holds its rows in memory and a failed one
leaves the table as it was.
BigQuery datasets are not modelled: writing to a table creates it (the real API needs the
BigQuery dataset to exist already).

Read a table from tests with :meth:`BigQueryTables.read_rows` or over HTTP at
``GET /_emulator/bigquery/{project}.{dataset}.{table}`` on the Healthcare port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_TABLE_URI_LENGTH = 2000
WRITE_DISPOSITIONS = ("WRITE_EMPTY", "WRITE_TRUNCATE", "WRITE_APPEND")

_PROJECT_RE = re.compile(r"^(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET_RE = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
#: BigQuery "Table naming" (cloud.google.com/bigquery/docs/tables#table_naming): "Table
#: names can contain up to 1,024 UTF-8 bytes and can contain Unicode characters in category
#: L (letter), M (mark), N (number), Pc (connector, including underscore), Pd (dash), Zs
#: (space)".
MAX_TABLE_NAME_BYTES = 1024
_TABLE_NAME_CATEGORIES = ("L", "M", "N", "Pc", "Pd", "Zs")


class TableNotEmpty(Exception):
    """``WRITE_EMPTY`` was requested for a table that already has rows."""


@dataclass(frozen=True)
class TableRef:
    """A BigQuery table: ``project.dataset.table``."""

    project: str
    dataset: str
    table: str

    @property
    def id(self) -> str:
        """``project.dataset.table``."""
        return f"{self.project}.{self.dataset}.{self.table}"

    @property
    def uri(self) -> str:
        """``bq://project.dataset.table``."""
        return f"bq://{self.id}"


def is_valid_table_name(name: str) -> bool:
    """Whether ``name`` follows BigQuery's table naming rule (see :data:`MAX_TABLE_NAME_BYTES`):
    at least one character, at most 1,024 UTF-8 bytes, each character in one of the Unicode
    general categories L, M, N, Pc, Pd or Zs."""
    # Categories first: a lone surrogate (Cs) is refused before it could fail to encode.
    allowed = all(unicodedata.category(c).startswith(_TABLE_NAME_CATEGORIES) for c in name)
    return allowed and 0 < len(name.encode("utf-8")) <= MAX_TABLE_NAME_BYTES


def parse_table_id(value: str) -> TableRef:
    """Parse ``project.dataset.table`` (a domain-scoped project may contain dots before ':').

    Args:
        value: the table id.

    Returns:
        The table reference.

    Raises:
        ValueError: the id is malformed.
    """
    head, sep, table = value.rpartition(".")
    project, sep2, dataset = head.rpartition(".")
    if not (sep and sep2) or not _PROJECT_RE.match(project):
        raise ValueError(f"{value!r} is not of the form projectId.bqDatasetId.tableId")
    if not _DATASET_RE.match(dataset):
        raise ValueError(f"invalid BigQuery dataset id {dataset!r} in {value!r}")
    if not is_valid_table_name(table):
        raise ValueError(f"invalid BigQuery table id {table!r} in {value!r}")
    return TableRef(project, dataset, table)


def parse_table_uri(uri: str) -> TableRef:
    """Validate a ``bigqueryDestination.tableUri``.

    Args:
        uri: ``bq://projectId.bqDatasetId.tableId``, at most 2000 characters.

    Returns:
        The table reference.

    Raises:
        ValueError: the URI is malformed or too long.
    """
    if len(uri) > MAX_TABLE_URI_LENGTH:
        raise ValueError(f"tableUri is {len(uri)} characters long; at most 2000 are allowed")
    if not uri.startswith("bq://"):
        raise ValueError(f"tableUri {uri!r} must be of the form bq://projectId.bqDatasetId.tableId")
    return parse_table_id(uri[len("bq://") :])


def effective_disposition(write_disposition: str | None, force: bool | None) -> str:
    """The write disposition an export uses.

    ``force`` is deprecated and ignored when ``writeDisposition`` is set; ``force=false`` is
    ``WRITE_EMPTY`` and ``force=true`` is ``WRITE_TRUNCATE``. Unset both: ``WRITE_EMPTY``.

    Args:
        write_disposition: the request's ``writeDisposition`` (may be unset/UNSPECIFIED).
        force: the request's ``force``.

    Returns:
        One of :data:`WRITE_DISPOSITIONS`.

    Raises:
        ValueError: unknown disposition.
    """
    if write_disposition and write_disposition != "WRITE_DISPOSITION_UNSPECIFIED":
        if write_disposition not in WRITE_DISPOSITIONS:
            raise ValueError(
                f"writeDisposition {write_disposition!r} is not one of "
                + ", ".join(WRITE_DISPOSITIONS)
            )
        return write_disposition
    return "WRITE_TRUNCATE" if force else "WRITE_EMPTY"


#: Rows as ``write_rows`` takes them: JSON-serialisable dicts, consumed once.
Rows = Iterable[dict[str, Any]]


class BigQueryTables:
    """Thread-safe store of emulated BigQuery tables: the rules, on two kinds of storage.

    The public methods parse table ids, check the write disposition and hold the lock; where
    rows live is the job of :class:`MemoryTables` (no ``--data-dir``) and :class:`FileTables`
    (JSON lines on disk), the same pattern as Cloud Storage's backends.
    :func:`open_tables` picks one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    # -- storage hooks (called under the lock, except _write) -----------------------------

    def _has_rows(self, ref: TableRef) -> bool:
        raise NotImplementedError

    def _write(self, ref: TableRef, rows: Rows, disposition: str, upsert_key: str | None) -> int:
        """Write with the disposition's semantics; takes the lock itself (a file write spools
        the rows before it)."""
        raise NotImplementedError

    def _read(self, ref: TableRef) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _exists(self, ref: TableRef) -> bool:
        raise NotImplementedError

    def _table_ids(self) -> list[str]:
        raise NotImplementedError

    def _drop_all(self) -> None:
        raise NotImplementedError

    def _check_empty(self, ref: TableRef, disposition: str) -> None:
        """``WRITE_EMPTY`` into a table with rows fails (call under the lock)."""
        if disposition == "WRITE_EMPTY" and self._has_rows(ref):
            raise TableNotEmpty(f"table {ref.id} already contains data")

    # -- public API -----------------------------------------------------------------------

    def has_rows(self, table: TableRef | str) -> bool:
        """Whether the table exists and holds at least one row."""
        ref = parse_table_id(table) if isinstance(table, str) else table
        with self._lock:
            return self._has_rows(ref)

    def write_rows(
        self,
        table: TableRef | str,
        rows: Iterable[dict[str, Any]],
        disposition: str,
        *,
        upsert_key: str | None = None,
    ) -> int:
        """Write rows with BigQuery's write-disposition semantics.

        Args:
            table: the table (reference or ``project.dataset.table``).
            rows: JSON-serialisable rows, consumed once, before the table is touched (an
                exception while producing them leaves the table as it was).
            disposition: ``WRITE_EMPTY`` (fail when the table has rows), ``WRITE_TRUNCATE``
                (replace) or ``WRITE_APPEND``.
            upsert_key: a column; a written row replaces the table's rows with the same value
                in it (BigQuery change data capture keeps "only the latest version" of each).

        Returns:
            The number of rows written.

        Raises:
            TableNotEmpty: ``WRITE_EMPTY`` and the table already has rows.
            ValueError: unknown disposition or malformed table id.
        """
        ref = parse_table_id(table) if isinstance(table, str) else table
        if disposition not in WRITE_DISPOSITIONS:
            raise ValueError(f"unknown write disposition {disposition!r}")
        return self._write(ref, rows, disposition, upsert_key)

    def read_rows(self, table: TableRef | str) -> list[dict[str, Any]]:
        """All rows of a table in write order.

        Args:
            table: the table (reference or ``project.dataset.table``).

        Returns:
            The rows; an empty list when the table does not exist.
        """
        ref = parse_table_id(table) if isinstance(table, str) else table
        with self._lock:
            return self._read(ref)

    def exists(self, table: TableRef | str) -> bool:
        """Whether the table has been written (possibly with zero rows)."""
        ref = parse_table_id(table) if isinstance(table, str) else table
        with self._lock:
            return self._exists(ref)

    def list_tables(self) -> list[str]:
        """Ids (``project.dataset.table``) of all tables, sorted."""
        with self._lock:
            return sorted(self._table_ids())

    def reset(self) -> None:
        """Drop every table."""
        with self._lock:
            self._drop_all()


class MemoryTables(BigQueryTables):
    """Tables in memory (rows copied through JSON, as a real table would store them)."""

    def __init__(self) -> None:
        super().__init__()
        self._tables: dict[str, list[dict[str, Any]]] = {}

    def _has_rows(self, ref: TableRef) -> bool:
        return bool(self._tables.get(ref.id))

    def _write(self, ref: TableRef, rows: Rows, disposition: str, upsert_key: str | None) -> int:
        batch = [json.loads(json.dumps(r)) for r in rows]
        with self._lock:
            self._check_empty(ref, disposition)
            existing = [] if disposition == "WRITE_TRUNCATE" else self._tables.get(ref.id, [])
            if upsert_key is not None:
                keys = {row.get(upsert_key) for row in batch}
                existing = [r for r in existing if r.get(upsert_key) not in keys]
            self._tables[ref.id] = [*existing, *batch]
            return len(batch)

    def _read(self, ref: TableRef) -> list[dict[str, Any]]:
        return [dict(r) for r in self._tables.get(ref.id, [])]

    def _exists(self, ref: TableRef) -> bool:
        return ref.id in self._tables

    def _table_ids(self) -> list[str]:
        return list(self._tables)

    def _drop_all(self) -> None:
        self._tables.clear()


class FileTables(BigQueryTables):
    """Tables as JSON lines under ``DATA_DIR/bigquery/PROJECT/DATASET/TABLE.jsonl``.

    A write spools its rows to a file beside the table first (10,000 rows stream without being
    held in memory), then replaces, appends to or merges into the table under the lock.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        super().__init__()
        self._root = Path(data_dir) / "bigquery"

    def _path(self, ref: TableRef) -> Path:
        return self._root / ref.project / ref.dataset / f"{ref.table}.jsonl"

    def _has_rows(self, ref: TableRef) -> bool:
        path = self._path(ref)
        if not path.exists():
            return False
        with path.open("rb") as fh:
            return any(line.strip() for line in fh)

    def _write(self, ref: TableRef, rows: Rows, disposition: str, upsert_key: str | None) -> int:
        path = self._path(ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        spool = path.with_name(f"{path.name}.{threading.get_ident()}.spool")
        try:
            count, keys = 0, set()
            with spool.open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, sort_keys=True) + "\n")
                    count += 1
                    if upsert_key is not None:
                        keys.add(row.get(upsert_key))
            with self._lock:
                self._check_empty(ref, disposition)
                if upsert_key is not None and disposition != "WRITE_TRUNCATE":
                    self._merge(path, spool, upsert_key, keys)
                elif disposition == "WRITE_TRUNCATE":
                    os.replace(spool, path)
                else:
                    with path.open("ab") as out, spool.open("rb") as new_rows:
                        shutil.copyfileobj(new_rows, out)
            return count
        finally:
            spool.unlink(missing_ok=True)

    def _merge(self, path: Path, spool: Path, upsert_key: str, keys: set[Any]) -> None:
        """Replace the table with its rows whose ``upsert_key`` is not in ``keys``, then the
        spooled rows (change data capture keeps the latest version of each row)."""
        merged = path.with_name(spool.name + ".merged")
        try:
            with merged.open("w", encoding="utf-8") as out:
                for row in self._iter_rows(path):
                    if row.get(upsert_key) not in keys:
                        out.write(json.dumps(row, sort_keys=True) + "\n")
                with spool.open(encoding="utf-8") as new_rows:
                    shutil.copyfileobj(new_rows, out)
            os.replace(merged, path)
        finally:
            merged.unlink(missing_ok=True)

    @staticmethod
    def _iter_rows(path: Path) -> Iterator[dict[str, Any]]:
        if not path.exists():
            return
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    def _read(self, ref: TableRef) -> list[dict[str, Any]]:
        return list(self._iter_rows(self._path(ref)))

    def _exists(self, ref: TableRef) -> bool:
        return self._path(ref).exists()

    def _table_ids(self) -> list[str]:
        if not self._root.exists():
            return []
        return [
            f"{p.parent.parent.name}.{p.parent.name}.{p.stem}"
            for p in self._root.glob("*/*/*.jsonl")
        ]

    def _drop_all(self) -> None:
        if self._root.exists():
            shutil.rmtree(self._root)


def open_tables(data_dir: str | os.PathLike[str] | None = None) -> BigQueryTables:
    """The emulated BigQuery tables: on disk under ``data_dir``, else in memory."""
    return MemoryTables() if data_dir is None else FileTables(data_dir)
