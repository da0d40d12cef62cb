"""Authenticode digests against the tools that compute them: sbverify, pesign, osslsigncode.

Oracles:
- sbverify prints the image's SHA-256 ("expecting: ...") when a detached signature does not
  match; a signature made for another image gives it for any file.
- ``pesign -h [-d sha1]`` prints the digest without the 8-byte padding of unsigned images.
- ``osslsigncode extract-data -h ALG`` writes the SpcIndirectDataContent it would sign,
  digest included (with padding).
"""

from __future__ import annotations

import hashlib
import re
import struct
import subprocess
from pathlib import Path

import pytest
from corpus import Corpus, EfiBinary
from corpus.params import need_tool

from fwtools.errors import PeFormatError, UsageError
from fwtools.formats.pe.authenticode import (
    authenticode_digests,
    authenticode_layout,
    authenticode_ranges,
)
from fwtools.formats.pe.image import PeImage

FIXTURES = Path(__file__).resolve().parents[3] / "testdata" / "authenticode"


@pytest.fixture(scope="module")
def detached_sig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A detached signature of an image no test hashes (tiny.efi with .text changed): with
    it, sbverify reports the digest of whatever image it is given."""
    need_tool("sbsign")
    tmp = tmp_path_factory.mktemp("detached")
    other = tmp / "other.efi"
    other.write_bytes(flipped((FIXTURES / "tiny.efi").read_bytes(), 0x401))
    out = tmp / "other.p7"
    subprocess.run(
        ["sbsign", "--key", FIXTURES / "keys/signer.key", "--cert", FIXTURES / "signer.pem",
         "--detached", "--output", out, other],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def sbverify_sha256(path: Path, detached: Path) -> str:
    proc = subprocess.run(
        ["sbverify", "--cert", FIXTURES / "signer.pem", "--detached", detached, path],
        capture_output=True, text=True,
    )  # fmt: skip
    m = re.search(r"expecting: ([0-9a-f]{64})", proc.stderr)
    assert m, f"sbverify printed no digest for {path}: {proc.stderr}"
    return m.group(1)


def pesign_digest(path: Path, algorithm: str) -> str:
    need_tool("pesign")
    proc = subprocess.run(
        ["pesign", "-h", "-d", algorithm, "-i", str(path)], capture_output=True, text=True
    )
    m = re.search(r"hash: ([0-9a-f]+)", proc.stdout)
    assert m, f"pesign failed on {path}: {proc.stderr}"
    return m.group(1)


def osslsigncode_digest(path: Path, algorithm: str, tmp_path: Path) -> str | None:
    need_tool("osslsigncode")
    out = tmp_path / f"data-{algorithm}.der"
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        ["osslsigncode", "extract-data", "-h", algorithm, "-in", str(path), "-out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        return None
    dump = subprocess.run(
        ["openssl", "asn1parse", "-inform", "DER", "-in", str(out)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    # The digest is the last OCTET STRING of the SpcIndirectDataContent.
    digests: list[str] = re.findall(r"HEX DUMP\]:([0-9A-F]+)", dump)
    return digests[-1].lower()


# -- the whole corpus ----------------------------------------------------------------------


def test_corpus_digests_match_sbverify_pesign_osslsigncode(
    corpus_efi_binary: EfiBinary, detached_sig: Path, tmp_path: Path
) -> None:
    need_tool("sbverify")
    path = corpus_efi_binary.path
    img = PeImage.open(path)
    padded = authenticode_digests(img, ("sha256", "sha1"))
    unpadded = authenticode_digests(img, ("sha256", "sha1"), pad=False)

    assert padded["sha256"].hex() == sbverify_sha256(path, detached_sig)
    assert unpadded["sha256"].hex() == pesign_digest(path, "sha256")
    assert unpadded["sha1"].hex() == pesign_digest(path, "sha1")
    for algorithm in ("sha256", "sha1"):
        assert padded[algorithm].hex() == osslsigncode_digest(path, algorithm, tmp_path)

    lay = authenticode_layout(img)
    if img.certificate_table is not None:
        assert lay.padding == 0 and padded == unpadded
    else:
        # Only unsigned images of unaligned length differ (sbsign would pad them).
        assert lay.padding == (-len(img.data)) % 8
        assert (padded == unpadded) == (lay.padding == 0)


def test_corpus_signed_digest_is_the_hashed_digest(corpus: Corpus) -> None:
    # A Microsoft-signed shim carries the SHA-256 Authenticode digest in its signatures; the
    # digest of the reproducible shim-unsigned build (padded like sbsign pads) equals it.
    shim_signed = PeImage.open(corpus.shim("bookworm", "amd64"))
    shim_unsigned = PeImage.open(corpus.shim("bookworm", "amd64", signed=False))
    signed = authenticode_digests(shim_signed, ["sha256"])["sha256"]
    assert authenticode_digests(shim_unsigned, ["sha256"])["sha256"] == signed
    assert authenticode_digests(shim_unsigned, ["sha256"], pad=False)["sha256"] != signed
    assert signed.hex() in shim_signed.data.hex()  # in the SpcIndirectDataContent


# -- fixtures with layouts the corpus lacks ------------------------------------------------

FIXTURE_IMAGES = sorted(p.name for p in FIXTURES.glob("*.efi"))
# Section file order differs from table order in the last header: pesign 0.112 sorts only
# the first NumberOfSections - 1 headers (documented in fwtools.formats.pe.authenticode).
PESIGN_ORDER_BUG = {"tiny-gaps.efi", "gaps-signed.efi"}
# osslsigncode hashes linearly: holes between sections and data after the table differ.
OSSLSIGNCODE_LINEAR = {"tiny-gaps.efi", "gaps-signed.efi", "trailing-after-cert.efi"}


@pytest.mark.parametrize("name", FIXTURE_IMAGES)
def test_fixture_digests_match_tools(name: str, detached_sig: Path, tmp_path: Path) -> None:
    need_tool("sbverify")
    path = FIXTURES / name
    img = PeImage.open(path)
    padded = authenticode_digests(img)
    unpadded = authenticode_digests(img, pad=False)
    assert padded["sha256"].hex() == sbverify_sha256(path, detached_sig)
    if name in PESIGN_ORDER_BUG:
        assert unpadded["sha256"].hex() != pesign_digest(path, "sha256")
    else:
        assert unpadded["sha256"].hex() == pesign_digest(path, "sha256")
        assert unpadded["sha1"].hex() == pesign_digest(path, "sha1")
    if name not in OSSLSIGNCODE_LINEAR and not name.startswith("bad-dwlength"):
        assert padded["sha256"].hex() == osslsigncode_digest(path, "sha256", tmp_path)


def test_ranges_of_a_contiguous_image() -> None:
    img = PeImage.open(FIXTURES / "tiny.efi")
    ck, sec = img.checksum_offset, img.security_entry_offset
    assert sec is not None
    # Headers minus CheckSum and the SECURITY entry, then .text .data .reloc; .bss has no
    # raw data and is skipped; nothing trails the last section.
    assert authenticode_ranges(img) == [
        (0, ck), (ck + 4, sec), (sec + 8, 0x400), (0x400, 0x600), (0x600, 0x800),
        (0x800, 0xA00),
    ]  # fmt: skip
    lay = authenticode_layout(img)
    assert lay.padding == 0 and lay.anomalies == ()
    assert lay.hashed_size == len(img.data) - 12
    data = img.data
    expect = hashlib.sha256(b"".join(data[a:b] for a, b in lay.ranges)).digest()
    assert authenticode_digests(img, ["sha256"])["sha256"] == expect


def test_ranges_with_hole_out_of_order_sections_and_trailing_data() -> None:
    img = PeImage.open(FIXTURES / "tiny-gaps.efi")
    ranges = authenticode_ranges(img)
    # Sorted by PointerToRawData: .text 0x400, .reloc 0x600, .data 0xa00; the hole
    # 0x800-0xa00 is never hashed; the trailing range starts at SUM_OF_BYTES_HASHED =
    # 0x400 + 3 * 0x200 = 0xa00, so .data is hashed twice and the trailer once.
    assert ranges[3:] == [(0x400, 0x600), (0x600, 0x800), (0xA00, 0xC00), (0xA00, 0xC40)]
    notes = " ".join(authenticode_layout(img).anomalies)
    assert "0x800-0xa00" in notes and "not hashed" in notes
    assert "from 0xa00" in notes


def flipped(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :]


@pytest.mark.parametrize(
    ("offset", "changes"),
    [
        (0x900, False),  # in the hole between sections
        (0xC20, True),  # trailing data after the last section
        (0x450, True),  # .text
        (0x80 + 24 + 64, False),  # the CheckSum field (e_lfanew + PE sig/COFF + 64)
    ],
)
def test_which_bytes_count(offset: int, changes: bool) -> None:
    data = (FIXTURES / "tiny-gaps.efi").read_bytes()
    assert PeImage(data).checksum_offset == 0x80 + 24 + 64
    before = authenticode_digests(PeImage(data))
    after = authenticode_digests(PeImage(flipped(data, offset)))
    assert (before != after) == changes


def test_unaligned_unsigned_image_is_padded_like_sbsign() -> None:
    img = PeImage.open(FIXTURES / "tiny-unaligned.efi")
    assert len(img.data) % 8 == 5
    lay = authenticode_layout(img)
    assert lay.padding == 3
    assert lay.ranges[-1][1] == len(img.data)
    padded = authenticode_digests(img)["sha256"]
    # sbsign padded the file to 8 bytes and signed that digest.
    signed = PeImage.open(FIXTURES / "unaligned-signed.efi")
    assert authenticode_digests(signed)["sha256"] == padded
    assert padded.hex() in signed.data.hex()
    unpadded = authenticode_digests(img, pad=False)["sha256"]
    assert unpadded == hashlib.sha256(b"".join(img.data[a:b] for a, b in lay.ranges)).digest()
    assert unpadded != padded


def test_data_after_the_certificate_table_shifts_the_hash_into_it() -> None:
    img = PeImage.open(FIXTURES / "trailing-after-cert.efi")
    start, size = img.certificate_table or (0, 0)
    assert start + size == len(img.data) - 24
    assert authenticode_ranges(img)[-1] == (0xA00, start + 24)
    assert any("follow the certificate table" in n for n in authenticode_layout(img).anomalies)
    original = PeImage.open(FIXTURES / "signed.efi")
    assert authenticode_digests(img) != authenticode_digests(original)


def test_all_algorithms_in_one_pass() -> None:
    img = PeImage.open(FIXTURES / "gaps-signed.efi")
    ranges = authenticode_ranges(img)
    blob = b"".join(img.data[a:b] for a, b in ranges)
    digests = authenticode_digests(img, ("SHA256", "sha1", "sha384", "sha512", "md5"))
    assert set(digests) == {"sha256", "sha1", "sha384", "sha512", "md5"}
    for name, value in digests.items():
        assert value == hashlib.new(name, blob).digest()


def test_unknown_algorithm_is_a_usage_error() -> None:
    img = PeImage.open(FIXTURES / "tiny.efi")
    with pytest.raises(UsageError, match="unsupported digest algorithm"):
        authenticode_digests(img, ["sha256", "no-such-hash"])


def test_size_of_headers_before_the_security_entry_is_rejected() -> None:
    data = bytearray((FIXTURES / "tiny.efi").read_bytes())
    opt = 0x80 + 24
    struct.pack_into("<I", data, opt + 60, 0x100)  # SizeOfHeaders inside the data directory
    img = PeImage(bytes(data))
    with pytest.raises(PeFormatError) as exc:
        authenticode_ranges(img)
    assert exc.value.offset == opt + 60
    assert exc.value.structure == "optional header SizeOfHeaders"


def test_no_security_directory_entry() -> None:
    # NumberOfRvaAndSizes 4: no SECURITY entry; edk2 hashes from CheckSum to SizeOfHeaders.
    data = bytearray((FIXTURES / "tiny.efi").read_bytes())
    opt = 0x80 + 24
    struct.pack_into("<I", data, opt + 108, 4)
    img = PeImage(bytes(data))
    assert img.security_entry_offset is None
    ck = img.checksum_offset
    assert authenticode_ranges(img)[:2] == [(0, ck), (ck + 4, 0x400)]
