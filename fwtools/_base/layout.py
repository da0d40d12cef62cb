"""Binary structures declared once: fields in file order, the struct and offsets derived.

The qcow2 way (``formats/qcow2/layout.py``), lifted so every format uses it: a layout module
lists each structure's fields with their ``struct`` codes and a comment citing the spec;
parsers and writers take the compiled ``struct.Struct``, the field offsets and the size from
the :class:`Layout` instead of spelling out ``+ 16``. Building a layout costs a few
microseconds, so module-level declarations stay cheap at import.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Final

Fields = tuple[tuple[str, str], ...]

LITTLE: Final = "<"
BIG: Final = ">"


class Layout:
    """One fixed-size structure.

    ``fields`` are ``(name, struct code)`` pairs in file order (``"I"``, ``"16s"``, ``"2x"``
    for padding, which has no name: use ``""``). ``offset(name)`` is the field's offset from
    the structure's start, ``size`` its total size.
    """

    __slots__ = ("_names", "_offsets", "_sizes", "fields", "name", "size", "struct")

    def __init__(self, name: str, fields: Fields, *, byte_order: str = LITTLE) -> None:
        self.name = name
        self.fields = fields
        self.struct = struct.Struct(byte_order + "".join(code for _, code in fields))
        self.size: int = self.struct.size
        offsets: dict[str, int] = {}
        sizes: dict[str, int] = {}
        pos = 0
        for field, code in fields:
            width = struct.calcsize(byte_order + code)
            if field:
                offsets[field] = pos
                sizes[field] = width
            pos += width
        self._offsets = offsets
        self._sizes = sizes
        # Names of the values struct.unpack returns (padding yields none).
        self._names = tuple(f for f, code in fields if f and not code.endswith("x"))

    def __repr__(self) -> str:
        return f"Layout({self.name!r}, {self.size} bytes)"

    def offset(self, field: str) -> int:
        """Offset of ``field`` from the start of the structure."""
        return self._offsets[field]

    def field_size(self, field: str) -> int:
        return self._sizes[field]

    def end(self, field: str) -> int:
        """Offset just past ``field``."""
        return self._offsets[field] + self._sizes[field]

    @property
    def offsets(self) -> Mapping[str, int]:
        return self._offsets

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def unpack_from(self, data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Any, ...]:
        """The values in field order (the caller checks that ``size`` bytes are there)."""
        return self.struct.unpack_from(data, offset)

    def unpack_dict(self, data: bytes | bytearray | memoryview, offset: int = 0) -> dict[str, Any]:
        """The values keyed by field name."""
        return dict(zip(self._names, self.struct.unpack_from(data, offset), strict=True))

    def pack(self, *values: Any) -> bytes:
        return self.struct.pack(*values)

    def pack_dict(self, values: Mapping[str, Any]) -> bytes:
        """Pack named values; a missing field is an error (no silent zeros)."""
        return self.struct.pack(*(values[n] for n in self._names))

    def extend(self, name: str, fields: Fields, *, byte_order: str = LITTLE) -> Layout:
        """A longer structure that starts with this one (qcow2 v3 after v2, PE32+ ...)."""
        return Layout(name, self.fields + fields, byte_order=byte_order)
