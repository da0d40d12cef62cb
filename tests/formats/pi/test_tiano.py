"""formats/pi/tiano: the EFI/Tiano decompressor against edk2's own compressors (as
uefi_firmware ships them), and under hypothesis: any input decodes or raises TianoError."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from corpus.params import unavailable
from hypothesis import given, settings
from hypothesis import strategies as st

from fwtools.formats.pi.tiano import TianoError, decompress, sizes


def _compressor() -> Any:
    try:
        from uefi_firmware import efi_compressor
    except ImportError:
        unavailable("uefi_firmware (the test extra) provides edk2's EFI/Tiano compressors")
    return efi_compressor


@pytest.mark.parametrize("tiano", [False, True])
@settings(max_examples=60, deadline=None, database=None)
@given(data=st.one_of(st.binary(min_size=1, max_size=3000),
                      st.lists(st.sampled_from([b"abc", b"\0" * 7, b"MZ\x90\0", b"x"]),
                               min_size=1, max_size=400).map(b"".join)))
def test_round_trip_with_edk2s_compressor(tiano: bool, data: bytes) -> None:
    c = _compressor()
    stream = (c.TianoCompress if tiano else c.EfiCompress)(data, len(data))
    assert sizes(stream) == (len(stream) - 8, len(data))
    assert decompress(stream, tiano=tiano) == data


@settings(max_examples=300, deadline=None, database=None)
@given(body=st.binary(max_size=600), orig=st.integers(0, 1 << 16), tiano=st.booleans())
def test_any_stream_decodes_or_raises_tiano_error(body: bytes, orig: int, tiano: bool) -> None:
    stream = struct.pack("<II", len(body), orig) + body
    try:
        out = decompress(stream, tiano=tiano)
    except TianoError:
        return
    assert len(out) == orig


def test_header_errors() -> None:
    with pytest.raises(TianoError, match="8-byte header"):
        decompress(b"\1\0\0", tiano=False)
    with pytest.raises(TianoError, match="CompSize 0x100 runs past"):
        decompress(struct.pack("<II", 0x100, 10) + b"\0" * 4, tiano=False)
    assert decompress(struct.pack("<II", 0, 0), tiano=True) == b""
    with pytest.raises(TianoError, match="ends before the output is complete"):
        decompress(struct.pack("<II", 0, 1 << 20), tiano=False)
