"""The attribute certificate table: real tables, broken ones, and random bytes."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest
from corpus import Corpus, EfiBinary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwtools.errors import ParseError, SignatureFormatError
from fwtools.formats.pe import wincert_layout
from fwtools.formats.pe.image import PeImage
from fwtools.formats.pe.wincert import (
    WinCertificate,
    certificate_entries,
    scan_certificate_entries,
)

FIXTURES = Path(__file__).resolve().parents[3] / "testdata" / "authenticode"
# tiny.efi: e_lfanew 0x80, PE32+; the SECURITY data directory entry is at opt + 112 + 4*8.
SECURITY_ENTRY = 0x80 + 24 + 112 + 4 * 8


def test_corpus_tables_are_tiled_by_aligned_entries(corpus_efi_binary: EfiBinary) -> None:
    img = PeImage.open(corpus_efi_binary.path)
    entries = certificate_entries(img)
    table = img.certificate_table
    if table is None:
        assert entries == []
        return
    start, size = table
    assert entries, "a signed image has at least one entry"
    assert entries[0].offset == start
    for a, b in itertools.pairwise(entries):
        assert b.offset == a.aligned_end
    assert entries[-1].aligned_end == start + size
    for e in entries:
        assert e.revision == wincert_layout.WIN_CERT_REVISION_2_0
        assert e.type_name == "PKCS_SIGNED_DATA"
        assert e.content[:1] == b"\x30"  # a DER SEQUENCE
        assert len(e.content) == e.length - 8


def test_corpus_shim_carries_two_signatures(corpus: Corpus) -> None:
    # Debian's shim-signed ships Microsoft's 2011 and 2023 UEFI CA signatures as two
    # WIN_CERTIFICATE entries (not one nested signature).
    for suite in ("bookworm", "trixie"):
        for arch in ("amd64", "arm64"):
            img = PeImage.open(corpus.shim(suite, arch))
            assert len(certificate_entries(img)) == 2


def test_two_entries() -> None:
    img = PeImage.open(FIXTURES / "two-sigs.efi")
    first, second = certificate_entries(img)
    assert (first.index, second.index) == (0, 1)
    assert second.offset == first.aligned_end
    assert first.offset % 8 == 0 and second.offset % 8 == 0
    assert isinstance(first, WinCertificate)


def test_dwlength_smaller_than_the_header() -> None:
    img = PeImage.open(FIXTURES / "bad-dwlength-small.efi")
    start = (img.certificate_table or (0, 0))[0]
    with pytest.raises(SignatureFormatError) as exc:
        certificate_entries(img)
    assert exc.value.structure == "WIN_CERTIFICATE[0]"
    assert exc.value.offset == start
    assert "dwLength 4" in str(exc.value)
    assert exc.value.path is not None and exc.value.path.endswith("bad-dwlength-small.efi")
    entries, error = scan_certificate_entries(img)
    assert entries == [] and error is not None and error.offset == start


def test_dwlength_past_the_table() -> None:
    img = PeImage.open(FIXTURES / "bad-dwlength-big.efi")
    start, size = img.certificate_table or (0, 0)
    with pytest.raises(SignatureFormatError) as exc:
        certificate_entries(img)
    assert exc.value.offset == start
    assert f"{start + size:#x}" in str(exc.value)


def test_error_after_a_good_entry_keeps_the_good_one() -> None:
    data = bytearray((FIXTURES / "signed.efi").read_bytes())
    start, size = struct.unpack_from("<II", data, SECURITY_ENTRY)
    # Append a second entry whose header claims 0x1000 bytes, and grow the table over it.
    data += struct.pack("<IHH", 0x1000, 0x200, 2) + bytes(8)
    struct.pack_into("<I", data, SECURITY_ENTRY + 4, size + 16)
    img = PeImage(bytes(data))
    entries, error = scan_certificate_entries(img)
    assert len(entries) == 1 and entries[0].offset == start
    assert error is not None
    assert error.structure == "WIN_CERTIFICATE[1]" and error.offset == start + size


def test_leftover_bytes_too_short_for_a_header() -> None:
    data = bytearray((FIXTURES / "signed.efi").read_bytes())
    start, size = struct.unpack_from("<II", data, SECURITY_ENTRY)
    data += bytes(4)
    struct.pack_into("<I", data, SECURITY_ENTRY + 4, size + 4)
    with pytest.raises(SignatureFormatError) as exc:
        certificate_entries(PeImage(bytes(data)))
    assert exc.value.structure == "WIN_CERTIFICATE[1]"
    assert exc.value.offset == start + size


def test_unpadded_last_entry_is_readable() -> None:
    img = PeImage.open(FIXTURES / "unpadded-table.efi")
    start, size = img.certificate_table or (0, 0)
    (entry,) = certificate_entries(img)
    assert entry.end == start + size
    assert entry.aligned_end > start + size  # edk2 would reject this table; see trust tests


def test_garbage_entry_is_still_an_entry() -> None:
    img = PeImage.open(FIXTURES / "garbage-entry.efi")
    garbage, good = certificate_entries(img)
    assert garbage.length == 48 and garbage.type_name == "PKCS_SIGNED_DATA"
    assert good.offset == garbage.aligned_end


def test_unknown_type_name() -> None:
    e = WinCertificate(0, 0, 8, 0x200, 0x1234, b"")
    assert e.type_name == "0x1234"
    assert WinCertificate(0, 0, 8, 0x100, 0x0EF1, b"").type_name == "EFI_GUID"


def test_unsigned_image_has_no_entries() -> None:
    assert certificate_entries(PeImage.open(FIXTURES / "tiny.efi")) == []


_TINY = (FIXTURES / "tiny.efi").read_bytes()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=st.binary(min_size=0, max_size=200),
    size_delta=st.integers(min_value=-16, max_value=16),
    headers=st.lists(
        st.tuples(st.integers(0, 0x200), st.sampled_from([0x100, 0x200]), st.integers(0, 3)),
        max_size=4,
    ),
)
def test_random_tables_parse_or_raise_parse_errors(
    table: bytes, size_delta: int, headers: list[tuple[int, int, int]]
) -> None:
    # Plausible headers (so the walk gets somewhere) followed by random bytes.
    blob = b"".join(struct.pack("<IHH", n, r, t) for n, r, t in headers) + table
    data = bytearray(_TINY) + blob
    size = max(0, len(blob) + size_delta)
    struct.pack_into("<II", data, SECURITY_ENTRY, len(_TINY), size)
    try:
        img = PeImage(bytes(data))
    except ParseError:
        return  # the table runs past the file: PeImage refuses it
    try:
        entries = certificate_entries(img)
    except SignatureFormatError as exc:
        assert exc.offset is not None and len(_TINY) <= exc.offset < len(data)
        return
    for e in entries:
        assert e.length >= 8 and e.end <= len(_TINY) + size
