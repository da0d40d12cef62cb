"""Scanning large byte regions for the first byte that is not a fill value, at C speed (no
per-byte Python loop, no copy of the region): erased free space, zero trailers, blank
templates."""

from __future__ import annotations

from typing import Final

CHUNK: Final = 1 << 16
FILL: Final = {0x00: bytes(CHUNK), 0xFF: b"\xff" * CHUNK}


def first_not(data: bytes, start: int, end: int, byte: int) -> int | None:
    """The first offset in [start, end) whose byte is not ``byte`` (0x00 or 0xFF), or None."""
    fill = FILL[byte]
    pos = start
    while pos < end:
        size = min(CHUNK, end - pos)
        if not data.startswith(fill[:size] if size < CHUNK else fill, pos):
            chunk = data[pos : pos + size]
            return pos + size - len(chunk.lstrip(bytes((byte,))))
        pos += size
    return None


def count_not(data: bytes, start: int, end: int, byte: int) -> int:
    """How many bytes in [start, end) are not ``byte``."""
    return (end - start) - data.count(bytes((byte,)), start, end)
