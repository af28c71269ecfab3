"""A tiny dynamic provider for the engine smoke test.

It lives in an importable module (on ``PYTHONPATH`` of the CLI) so that dill pickles the provider
by reference, as our real providers are. Every call appends one JSON line to the file named by the
``journal`` input, so the test can see which provider methods the engine invoked.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider


def _record(journal: str, method: str, label: str) -> None:
    with open(journal, "a", encoding="utf-8") as handle:
        handle.write(
            json.dumps(
                {"method": method, "label": label, "python": sys.executable, "at": time.time()}
            )
            + "\n"
        )


class NoteProvider(ResourceProvider):
    """Creates nothing remotely; echoes its inputs and records each call."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        _record(props["journal"], "create", props["label"])
        outs = {**props, "length": len(props["label"])}
        return CreateResult(id_=f"note-{props['label']}", outs=outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        _record(props["journal"], "read", props["label"])
        return ReadResult(id_=id_, outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in ("label", "journal") if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=changed)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _record(props["journal"], "delete", props["label"])


class Note(Resource):
    """One note; ``length`` is computed by the provider."""

    label: pulumi.Output[str]
    length: pulumi.Output[int]

    def __init__(self, name: str, label: str, journal: str) -> None:
        super().__init__(NoteProvider(), name, {"label": label, "journal": journal, "length": None})
