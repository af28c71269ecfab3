"""Property values of the native provider: camelCase ``PropertyValue`` maps <-> snake_case props.

The lifecycle works on the snake_case props of :mod:`dicom_transfer.specs.inputs`; the engine
speaks the schema's camelCase names in ``PropertyValue`` maps. Object inputs
(``gcsDestination``, ``bigqueryDestination``) have their field names converted too; ``triggers``
and unknown keys pass as they are. A not-yet-computed value becomes the unknown sentinel
string the lifecycle skips (the SDK's ``Computed`` cannot be marshalled back, pulumi 3.272).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pulumi.provider.experimental.property_value import Computed, PropertyValue

from dicom_transfer.specs.inputs import CONFIG_INPUTS, INPUTS, OUTPUTS, camel_case
from dicom_transfer.specs.problems import UNKNOWN

__all__ = ["camel_text", "from_props", "to_props"]

_OBJECTS = {spec.name: spec for spec in INPUTS if spec.fields}
_SNAKE = {camel_case(spec.name): spec.name for spec in INPUTS + CONFIG_INPUTS + OUTPUTS}
_FIELD_SNAKE = {
    name: {field.camel_name: field.name for field in spec.fields} for name, spec in _OBJECTS.items()
}
_NAMES = sorted(
    {spec.name for spec in INPUTS + CONFIG_INPUTS + OUTPUTS}
    | {field.name for spec in _OBJECTS.values() for field in spec.fields},
    key=len,
    reverse=True,
)
_NAME_RE = re.compile(r"\b(" + "|".join(re.escape(name) for name in _NAMES if "_" in name) + r")\b")


def _plain(value: PropertyValue) -> Any:
    inner = value.value
    if isinstance(inner, Computed):
        return UNKNOWN
    if isinstance(inner, tuple):
        return [_plain(item) for item in inner]
    if isinstance(inner, Mapping):
        return {key: _plain(item) for key, item in inner.items()}
    return inner


def to_props(values: Mapping[str, PropertyValue]) -> dict[str, Any]:
    """snake_case props of a camelCase ``PropertyValue`` map (unknowns as the sentinel)."""
    props: dict[str, Any] = {}
    for key, value in values.items():
        name = _SNAKE.get(key, key)
        plain = _plain(value)
        if name in _FIELD_SNAKE and isinstance(plain, dict):
            fields = _FIELD_SNAKE[name]
            plain = {fields.get(field, field): item for field, item in plain.items()}
        props[name] = plain
    return props


def _value(plain: Any) -> PropertyValue:
    if isinstance(plain, bool) or plain is None or isinstance(plain, str):
        return PropertyValue(plain)
    if isinstance(plain, (int, float)):
        return PropertyValue(float(plain))  # the protocol's numbers are doubles
    if isinstance(plain, Mapping):
        return PropertyValue({str(key): _value(item) for key, item in plain.items()})
    if isinstance(plain, (list, tuple)):
        return PropertyValue([_value(item) for item in plain])
    raise TypeError(f"no property value for {type(plain).__name__}")


def from_props(props: Mapping[str, Any]) -> dict[str, PropertyValue]:
    """The camelCase ``PropertyValue`` map of snake_case props (inverse of :func:`to_props`)."""
    values: dict[str, PropertyValue] = {}
    for name, plain in props.items():
        item = plain
        if name in _OBJECTS and isinstance(plain, Mapping):
            item = {camel_case(field): value for field, value in plain.items()}
        values[camel_case(name) if name in _NAMES else name] = _value(item)
    return values


def camel_text(text: str) -> str:
    """``text`` with every input/output name of the table in the schema's camelCase.

    For problems and messages: ``gcs_destination.uri_prefix`` -> ``gcsDestination.uriPrefix``,
    ``filter_resource_paths[3]`` -> ``filterResourcePaths[3]``.
    """
    return _NAME_RE.sub(lambda match: camel_case(match.group(1)), text)
