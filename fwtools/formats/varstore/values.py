"""Typed variable values from text: what ``fw-vars set --uint32 5`` stores.

Integers are little-endian and ``bool`` is one byte (UEFI 2.10 §2.3.1, BOOLEAN and UINTn);
``ucs2`` is a CHAR16 string with its terminating NUL; ``string`` is ASCII without a
terminator; ``hex`` and ``file`` are raw bytes.
"""

from __future__ import annotations

import struct
from typing import Final, Literal

from fwtools.errors import UsageError

ValueKind = Literal["bool", "uint8", "uint16", "uint32", "uint64", "string", "ucs2", "hex",
                    "file"]
VALUE_KINDS: Final[tuple[ValueKind, ...]] = (
    "bool", "uint8", "uint16", "uint32", "uint64", "string", "ucs2", "hex", "file",
)
_INTEGERS: Final[dict[str, struct.Struct]] = {
    "uint8": struct.Struct("<B"),
    "uint16": struct.Struct("<H"),
    "uint32": struct.Struct("<I"),
    "uint64": struct.Struct("<Q"),
}
_TRUE: Final = ("1", "true", "on", "yes")
_FALSE: Final = ("0", "false", "off", "no")


def encode_value(kind: str, text: str) -> bytes:
    """The variable data for ``text`` read as ``kind`` (one of :data:`VALUE_KINDS`; for
    ``file``, ``text`` is the file to take the bytes from).

    Raises :class:`~fwtools.errors.UsageError` naming the option (``--uint8 '256' is not a
    valid value``) and :class:`~fwtools.errors.FwIOError` for an unreadable file.
    """
    if kind == "file":
        from fwtools._base.fileio import read_file

        return read_file(text)
    try:
        if kind == "bool":
            word = text.lower()
            if word not in _TRUE + _FALSE:
                raise ValueError(text)
            return b"\x01" if word in _TRUE else b"\x00"
        if kind in _INTEGERS:
            return _INTEGERS[kind].pack(int(text, 0))
        if kind == "string":
            return text.encode("ascii")
        if kind == "ucs2":
            return (text + "\0").encode("utf-16-le")
        if kind == "hex":
            return bytes.fromhex(text)
    except (ValueError, struct.error, UnicodeEncodeError):
        raise UsageError(f"--{kind} {text!r} is not a valid value") from None
    raise UsageError(f"unknown value kind {kind!r} (known: {', '.join(VALUE_KINDS)})")


__all__ = ["VALUE_KINDS", "ValueKind", "encode_value"]
