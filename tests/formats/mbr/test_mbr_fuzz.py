"""Hypothesis: any 512 bytes parse, and injection keeps bytes 440..511 when 0x55AA is there."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fwtools.formats.mbr import BOOT_CODE_KINDS, build_boot_code, inject, parse_sector

CODE = build_boot_code()


@given(st.binary(min_size=512, max_size=600))
def test_any_sector_parses(data: bytes) -> None:
    mbr = parse_sector(data)
    assert mbr.boot_code_kind in BOOT_CODE_KINDS
    assert mbr.scheme in ("none", "gpt", "hybrid", "mbr")
    assert len(mbr.partitions) == 4
    mbr.to_json()
    after = inject(data, CODE)
    assert len(after) == 512 and after[:440] == CODE and after[510:] == b"\x55\xaa"
    if mbr.has_boot_signature:
        assert after[440:] == data[440:512]


@given(st.binary(min_size=440, max_size=440))
def test_sector_with_signature(code: bytes) -> None:
    data = code + bytes(70) + b"\x55\xaa"
    assert inject(data, CODE)[440:] == data[440:]
