"""Bounds-checked little-endian reads over a byte buffer, with absolute offsets in errors."""

from __future__ import annotations

import struct
from typing import Any, Final

from fwtools.errors import TruncatedError

_U8: Final = struct.Struct("<B")
_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")


class Reader:
    """A window onto ``data[start:end]`` whose reads take and report absolute offsets.

    ``base`` is added to every offset in error messages, for buffers that are themselves a
    slice of a larger file (a section's contents, say).
    """

    __slots__ = ("base", "data", "end", "start")

    def __init__(
        self, data: bytes | memoryview, start: int = 0, end: int | None = None, base: int = 0
    ) -> None:
        self.data = data
        self.start = start
        self.end = len(data) if end is None else min(end, len(data))
        self.base = base

    def __len__(self) -> int:
        return self.end - self.start

    def need(self, offset: int, size: int, structure: str) -> None:
        """Raise :class:`TruncatedError` unless ``size`` bytes exist at ``offset``."""
        if offset < self.start or size < 0 or offset + size > self.end:
            have = max(0, self.end - offset)
            raise TruncatedError(
                f"needs {size} bytes, only {have} available",
                structure=structure,
                offset=self.base + offset,
            )

    def bytes(self, offset: int, size: int, structure: str) -> bytes:
        self.need(offset, size, structure)
        return bytes(self.data[offset : offset + size])

    def u8(self, offset: int, structure: str) -> int:
        self.need(offset, 1, structure)
        return int(_U8.unpack_from(self.data, offset)[0])

    def u16(self, offset: int, structure: str) -> int:
        self.need(offset, 2, structure)
        return int(_U16.unpack_from(self.data, offset)[0])

    def u32(self, offset: int, structure: str) -> int:
        self.need(offset, 4, structure)
        return int(_U32.unpack_from(self.data, offset)[0])

    def u64(self, offset: int, structure: str) -> int:
        self.need(offset, 8, structure)
        return int(_U64.unpack_from(self.data, offset)[0])

    def unpack(self, layout: struct.Struct, offset: int, structure: str) -> tuple[Any, ...]:
        self.need(offset, layout.size, structure)
        return tuple(layout.unpack_from(self.data, offset))
