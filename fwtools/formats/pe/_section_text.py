"""Text helpers shared by the shim and UKI special-section decoders.

Kept apart from :mod:`.uki_sections` so that decoding a shim does not load the UKI decoders.
"""

from __future__ import annotations

from fwtools._base.record import Record
from fwtools.errors import ParseError


class KeyValue(Record):
    key: str
    value: str


def decode_text(data: bytes, base: int, structure: str) -> tuple[str, ParseError | None]:
    """UTF-8 text with trailing NULs removed; invalid bytes become backslash escapes."""
    raw = data.rstrip(b"\0")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        err = ParseError(
            f"invalid UTF-8 byte {raw[exc.start]:#04x}",
            structure=structure,
            offset=base + exc.start,
        )
        return raw.decode("utf-8", "backslashreplace"), err
