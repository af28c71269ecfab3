"""How the emulator writes state files under ``--data-dir``: one atomic writer, one file-name
hash, shared by Cloud Storage, the Healthcare state and BigQuery.

A file is written to a temporary name in its directory and renamed over the target
(:func:`os.replace`, atomic on POSIX), so a crash leaves the old or the new content, never a
mix. Names that may hold ``/``, ``..`` or be long (object names, resource names) become
files through :func:`file_key`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: Prefix of the temporary files of :func:`write_atomic` (left over only by a crash).
TEMP_PREFIX = ".tmp-"


def file_key(name: str) -> str:
    """The file-name stem of ``name``: the hex SHA-256 of its UTF-8 bytes (64 characters)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (creating its directory).

    Raises:
        OSError: the directory or file cannot be written (the target is left unchanged).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON (sorted keys) to ``path`` atomically."""
    write_atomic(path, json.dumps(value, sort_keys=True).encode("utf-8"))


__all__ = ["TEMP_PREFIX", "file_key", "write_atomic", "write_json"]
