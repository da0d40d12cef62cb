"""Turn library objects into plain JSON values: dataclasses and records, bytes (hex), UUIDs,
enums."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from typing import Any

from fwtools._base.record import Record


def to_jsonable(value: Any) -> Any:
    """Recursively convert ``value``; bytes become lowercase hex strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, Record):
        return {f: to_jsonable(getattr(value, f)) for f in value._fields if not f.startswith("_")}
    if hasattr(type(value), "__dataclass_fields__"):  # a dataclass instance
        import dataclasses

        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return str(value)
