"""EFI GUIDs: the mixed-endian on-disk form (first three fields little-endian)."""

from __future__ import annotations

import uuid

from fwtools.errors import ParseError

GUID_SIZE = 16


def guid_from_bytes(data: bytes | memoryview, offset: int = 0) -> uuid.UUID:
    """Decode the 16-byte EFI_GUID at ``offset``."""
    raw = bytes(data[offset : offset + GUID_SIZE])
    if len(raw) != GUID_SIZE:
        raise ParseError("truncated GUID", structure="EFI_GUID", offset=offset)
    return uuid.UUID(bytes_le=raw)


def guid_to_bytes(guid: uuid.UUID) -> bytes:
    """Encode ``guid`` in EFI byte order."""
    return guid.bytes_le


def parse_guid(text: str) -> uuid.UUID:
    """Parse the canonical text form; raises :class:`ParseError` with the bad text."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise ParseError(f"not a GUID: {text!r}", structure="GUID") from None
