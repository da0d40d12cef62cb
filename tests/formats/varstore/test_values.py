"""varstore/values.py: typed values from command-line text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fwtools.errors import FwIOError, UsageError
from fwtools.formats.varstore.values import VALUE_KINDS, encode_value


@pytest.mark.parametrize(("kind", "text", "data"), [
    ("bool", "yes", b"\x01"), ("bool", "OFF", b"\x00"), ("bool", "1", b"\x01"),
    ("uint8", "255", b"\xff"), ("uint16", "0x1234", b"\x34\x12"),
    ("uint32", "5", b"\x05\x00\x00\x00"), ("uint64", "1", b"\x01" + bytes(7)),
    ("string", "en-US", b"en-US"), ("ucs2", "ab", b"a\x00b\x00\x00\x00"),
    ("hex", "00ff", b"\x00\xff"),
])
def test_encodings(kind: str, text: str, data: bytes) -> None:
    assert encode_value(kind, text) == data


@pytest.mark.parametrize(("kind", "text"), [
    ("bool", "maybe"), ("uint8", "256"), ("uint16", "-1"), ("uint32", "x"),
    ("string", "h\u00e9"), ("hex", "0g"), ("hex", "abc"),
])
def test_invalid_values_name_the_option(kind: str, text: str) -> None:
    with pytest.raises(UsageError, match=re.escape(f"--{kind} {text!r}")):
        encode_value(kind, text)


def test_file_and_unknown_kind(tmp_path: Path) -> None:
    raw = tmp_path / "data.bin"
    raw.write_bytes(b"\x00\x01")
    assert encode_value("file", str(raw)) == b"\x00\x01"
    with pytest.raises(FwIOError, match=r"missing\.bin"):
        encode_value("file", str(tmp_path / "missing.bin"))
    with pytest.raises(UsageError, match="unknown value kind"):
        encode_value("float", "1.5")
    assert "file" in VALUE_KINDS
