"""The README's reference tables of the transfers' inputs and outputs, from the input table.

``python -m dicom_transfer.specs.reference README.md`` rewrites the tables between the markers
``<!-- inputs:KIND -->`` and ``<!-- /inputs:KIND -->`` (KIND: ``import``, ``export``); a test
fails when the README differs from what this module generates. Pure but for that command.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from dicom_transfer.specs.inputs import (
    CONFIG_INPUTS,
    RESOURCE_NAME,
    Input,
    TransferKind,
    camel_case,
    inputs_of,
    outputs_of,
)

__all__ = ["render_readme", "table"]

_HEADER = (
    "| input (Python) | property (schema) | API field | default | change means |\n"
    "|---|---|---|---|---|\n"
)


_URL_PATH_INPUTS = ("dicom_store", "api_version")
"""Inputs that set no body field but the request's URL path."""


def _default(spec: Input, parent: Input | None) -> str:
    if spec.required:
        return "required" if parent is None else f"required in `{parent.name}`"
    if spec.default is None:
        return "unset"
    value = spec.default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _api(spec: Input) -> str:
    if spec.api_field:
        return f"`{spec.api_field}`"
    return "the URL path" if spec.name in _URL_PATH_INPUTS else "—"


def _change(spec: Input) -> str:
    return "replace (re-run)" if spec.change == "replace" else "update in place"


def _row(spec: Input, parent: Input | None = None) -> str:
    python = spec.name if parent is None else f"{parent.name}.{spec.name}"
    schema = ".".join(camel_case(part) for part in python.split("."))
    versions = "" if len(spec.api_versions) > 1 else f" ({', '.join(spec.api_versions)} only)"
    change = _change(parent or spec)
    return (
        f"| `{python}` — {spec.description}{versions} | `{schema}` | {_api(spec)} "
        f"| {_default(spec, parent)} | {change} |\n"
    )


def table(kind: TransferKind) -> str:
    """The Markdown table of every input of ``kind``, then its outputs (a list)."""
    rows = []
    for spec in inputs_of(kind):
        if spec.fields:
            rows += [_row(field, spec) for field in spec.fields]
        else:
            rows.append(_row(spec))
    rows += [_row(spec) for spec in CONFIG_INPUTS]
    outputs = ", ".join(f"`{spec.name}` (`{spec.camel_name}`)" for spec in outputs_of(kind))
    return (
        _HEADER
        + "".join(rows)
        + "\nThe last three rows are inputs of the Python resources; the native provider takes "
        "them as its configuration (`dicomtransfer:endpoint`, …). The Python resources also "
        f"record their name as `{RESOURCE_NAME.name}` (no one sets it; "
        f"{_change(RESOURCE_NAME)}: an aliased rename re-runs nothing).\n\n"
        f"Outputs: {outputs} — the operation name is also the resource ID — plus the inputs.\n"
    )


def render_readme(text: str) -> str:
    """``text`` with each marked table replaced by the generated one."""
    kinds: tuple[TransferKind, ...] = ("import", "export")
    for kind in kinds:
        pattern = re.compile(
            rf"(<!-- inputs:{kind} -->\n).*?(<!-- /inputs:{kind} -->)", flags=re.DOTALL
        )
        match = pattern.search(text)
        if match is not None:
            text = text[: match.end(1)] + table(kind) + text[match.start(2) :]
    return text


if __name__ == "__main__":
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    readme.write_text(render_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
