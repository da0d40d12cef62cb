#!/usr/bin/env python3
"""Build the Authenticode edge-case fixtures in testdata/authenticode/.

Real signed binaries (the Debian corpus) cover the common case; these cover what they lack:
odd layouts that change which bytes are hashed, several signatures, nested signatures,
SHA-1 and ECDSA signatures, chains through an intermediate in the PKCS#7 bag, and broken
certificate tables. Each file is small (a few KiB) and described in MANIFEST.json.

Unsigned images are built field by field with ``struct`` (no toolchain), so they depend only
on this script. Signatures are made by the real tools the tests compare against: ``sbsign``
(Debian sbsigntool) and ``osslsigncode`` (for SHA-1, nesting and ECDSA). Both put a
signingTime into the signature, so a signed file is kept as long as it still signs the bytes
it is made from (``--resign`` re-signs everything); the tests never depend on the exact bytes
of a signature. Test keys live in keys/ and are reused (``--new-keys`` makes new ones, and
re-signs); they are committed on purpose and protect nothing.

Files (see MANIFEST.json for the one-line description of each):

- PKI: ``ca.pem`` (root, CA:TRUE) issues ``signer.pem`` (RSA-2048, codeSigning),
  ``ec-signer.pem`` (EC P-256) and ``intermediate.pem`` (CA:TRUE), which issues
  ``chain-signer.pem``; ``other-ca.pem`` is an unrelated self-signed root.
- ``tiny.efi``: minimal PE32+ x86-64 EFI application: .text, .data, .bss (no raw data),
  .reloc; contiguous layout, length a multiple of 8.
- ``tiny-unaligned.efi``: tiny.efi plus 5 bytes of trailing data (length not 8-aligned:
  sbverify/osslsigncode hash 3 bytes of zero padding, pesign and edk2 do not).
- ``tiny-gaps.efi``: raw data out of section-table order, a 0x200-byte hole between
  sections (not hashed) and 0x40 bytes of trailing data after the last section.
- ``signed.efi``, ``signed-ec.efi``, ``signed-sha1.efi``, ``chain.efi``, ``gaps-signed.efi``,
  ``unaligned-signed.efi``: single signatures of the above.
- ``two-sigs.efi``: signed.efi with a second (ECDSA) WIN_CERTIFICATE appended by sbsign.
- ``nested.efi``: signed.efi with a SHA-1 signature nested in the first signature's
  unauthenticated attribute 1.3.6.1.4.1.311.2.4.1 (``osslsigncode -nest``).
- ``trailing-after-cert.efi``: signed.efi with 24 bytes appended after the certificate table.
- ``garbage-entry.efi``: a PKCS_SIGNED_DATA WIN_CERTIFICATE holding random bytes, followed by
  signed.efi's good signature.
- ``bad-dwlength-small.efi``, ``bad-dwlength-big.efi``: signed.efi with dwLength 4, and with
  dwLength running past the table.
- ``unpadded-table.efi``: signed.efi whose table size omits the last entry's alignment
  padding (edk2 rejects it, sbverify does not).

Run: ``.venv/bin/python testdata/make_authenticode_fixtures.py [--resign] [--new-keys]``.
Needs sbsign, sbverify, osslsigncode and the venv's cryptography.
"""

from __future__ import annotations

import argparse
import functools
import random
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

from _fixture_tools import (
    CHECKSUM_FIELD,
    COFF_HEADER,
    DATA_DIRECTORIES_FIELD,
    DATA_DIRECTORY,
    FILE_ALIGNMENT,
    IMAGE_DIRECTORY_ENTRY_BASERELOC,
    IMAGE_DIRECTORY_ENTRY_SECURITY,
    PE_SIGNATURE,
    SCN_CNT_CODE,
    SCN_CNT_INITIALIZED_DATA,
    SCN_CNT_UNINITIALIZED_DATA,
    SCN_MEM_DISCARDABLE,
    SCN_MEM_EXECUTE,
    SCN_MEM_READ,
    SCN_MEM_WRITE,
    SECTION_ALIGNMENT,
    FixtureDir,
    PrivateKey,
    align,
    coff_header,
    dos_header,
    issue_cert,
    load_or_make_key,
    optional_header64,
    patched,
    require_tools,
    run,
    sbsign,
    section_header,
    set_checksum,
    win_certificate,
)

HERE: Final = Path(__file__).resolve().parent
OUT: Final = HERE / "authenticode"
KEYS: Final = OUT / "keys"
FIXTURES: Final = FixtureDir(OUT)

# --- PE/COFF ------------------------------------------------------------------------------

E_LFANEW: Final = 0x80
OPTIONAL_HEADER: Final = E_LFANEW + len(PE_SIGNATURE) + COFF_HEADER.size
CHECKSUM: Final = OPTIONAL_HEADER + CHECKSUM_FIELD
SECURITY_ENTRY: Final = (
    OPTIONAL_HEADER + DATA_DIRECTORIES_FIELD + IMAGE_DIRECTORY_ENTRY_SECURITY * DATA_DIRECTORY.size
)


class Section:
    def __init__(
        self, name: str, va: int, vsize: int, data: bytes, flags: int, raw_offset: int = 0
    ) -> None:
        self.name, self.va, self.vsize, self.data, self.flags = name, va, vsize, data, flags
        self.raw_offset = raw_offset


def build_pe(sections: list[Section], size_of_headers: int, fill: dict[int, bytes]) -> bytearray:
    """A PE32+ image; sections' raw_offset must already be set (0 for no raw data).

    ``fill`` puts extra bytes at file offsets (holes and trailing data).
    """
    end = size_of_headers
    for s in sections:
        if s.data:
            end = max(end, s.raw_offset + align(len(s.data), FILE_ALIGNMENT))
    for off, blob in fill.items():
        end = max(end, off + len(blob))
    img = bytearray(end)
    img[:E_LFANEW] = dos_header(E_LFANEW)
    text = next(s for s in sections if s.flags & SCN_CNT_CODE)
    reloc = next((s for s in sections if s.name == ".reloc"), None)
    headers = PE_SIGNATURE + coff_header(len(sections)) + optional_header64(
        entry=text.va,
        base_of_code=text.va,
        image_base=0x10000000,
        image_size=max(align(s.va + s.vsize, SECTION_ALIGNMENT) for s in sections),
        headers_size=size_of_headers,
        code_size=sum(
            align(len(s.data), FILE_ALIGNMENT) for s in sections if s.flags & SCN_CNT_CODE
        ),
        initialized_data_size=sum(
            align(len(s.data), FILE_ALIGNMENT)
            for s in sections
            if s.flags & SCN_CNT_INITIALIZED_DATA
        ),
        uninitialized_data_size=sum(
            s.vsize for s in sections if s.flags & SCN_CNT_UNINITIALIZED_DATA
        ),
        directories={IMAGE_DIRECTORY_ENTRY_BASERELOC: (reloc.va, reloc.vsize)} if reloc else {},
    )
    for s in sections:
        raw_size = align(len(s.data), FILE_ALIGNMENT) if s.data else 0
        raw_pointer = s.raw_offset if s.data else 0
        headers += section_header(s.name.encode(), s.vsize, s.va, raw_size, raw_pointer, s.flags)
        if s.data:
            img[s.raw_offset : s.raw_offset + len(s.data)] = s.data
    assert E_LFANEW + len(headers) <= size_of_headers
    img[E_LFANEW : E_LFANEW + len(headers)] = headers
    for off, blob in fill.items():
        img[off : off + len(blob)] = blob
    set_checksum(img)
    return img


def _sections() -> list[Section]:
    code = bytes.fromhex("31c0c3")  # xor eax, eax; ret  -> EFI_SUCCESS
    data = b"fwtools authenticode fixture\0".ljust(64, b"\0")
    # One relocation block for the .data page holding only ABSOLUTE (padding) entries.
    reloc = struct.pack("<IIHH", 0x2000, 12, 0, 0)
    r, w, x = SCN_MEM_READ, SCN_MEM_WRITE, SCN_MEM_EXECUTE
    return [
        Section(".text", 0x1000, len(code), code, SCN_CNT_CODE | x | r),
        Section(".data", 0x2000, len(data), data, SCN_CNT_INITIALIZED_DATA | r | w),
        Section(".bss", 0x3000, 0x100, b"", SCN_CNT_UNINITIALIZED_DATA | r | w),
        Section(
            ".reloc", 0x4000, len(reloc), reloc, SCN_CNT_INITIALIZED_DATA | r | SCN_MEM_DISCARDABLE
        ),
    ]


def tiny() -> bytearray:
    secs = _sections()
    pos = 0x400
    for s in secs:
        if s.data:
            s.raw_offset = pos
            pos += align(len(s.data), FILE_ALIGNMENT)
    return build_pe(secs, 0x400, {})


def tiny_gaps() -> bytearray:
    text, data, bss, reloc = _sections()
    # File order .text, .reloc, (hole), .data while the table (and VA) order is .text,
    # .data, .bss, .reloc: hashing must sort by PointerToRawData, and the hole is skipped.
    text.raw_offset, reloc.raw_offset, data.raw_offset = 0x400, 0x600, 0xA00
    hole = bytes([0x5A]) * 0x200  # 0x800-0xA00: in no section, never hashed
    trailer = b"TRAILING DATA AFTER THE LAST SECTION, HASHED BY RULE 3 ".ljust(0x40, b".")
    return build_pe([text, data, bss, reloc], 0x400, {0x800: hole, 0xC00: trailer})


# --- PKI ----------------------------------------------------------------------------------


def make_pki(new: bool) -> None:
    KEYS.mkdir(parents=True, exist_ok=True)

    def key(name: str, kind: str = "rsa") -> PrivateKey:
        return load_or_make_key(KEYS / f"{name}.key", kind=kind, new=new)

    # With KeyUsage (and, for signers, the codeSigning EKU) as Authenticode PKIs have them.
    issue = functools.partial(issue_cert, usage=True)
    ca_key = key("ca")
    ca = issue("fwtools authenticode test CA", 0x2001, ca_key, None, ca_key, ca=True)
    out = {"ca": ca}
    out["signer"] = issue("fwtools test signer", 0x2002, key("signer"), ca, ca_key, ca=False)
    out["ec-signer"] = issue(
        "fwtools test EC signer", 0x2003, key("ec-signer", "ec"), ca, ca_key, ca=False
    )
    int_key = key("intermediate")
    inter = issue("fwtools test intermediate CA", 0x2004, int_key, ca, ca_key, ca=True)
    out["intermediate"] = inter
    out["chain-signer"] = issue(
        "fwtools test chain signer", 0x2005, key("chain-signer"), inter, int_key, ca=False
    )
    other_key = key("other-ca")
    out["other-ca"] = issue("fwtools unrelated CA", 0x2006, other_key, None, other_key, ca=True)
    for name, cert in out.items():
        FIXTURES.write_cert(name, cert)


# --- signing with the real tools ------------------------------------------------------------


def sign_with(signer: str, *extra: str | Path) -> Callable[[Path, Path], None]:
    """sbsign by ``signer`` (a key and certificate made by make_pki)."""

    def sign(src: Path, dst: Path) -> None:
        key, cert = KEYS / f"{signer}.key", OUT / f"{signer}.pem"
        sbsign(src, dst, key=key, cert=cert, extra=extra)

    return sign


def osslsign_with(signer: str, *extra: str) -> Callable[[Path, Path], None]:
    """osslsigncode by ``signer``, for what sbsign cannot do (SHA-1, nesting)."""

    def sign(src: Path, dst: Path) -> None:
        dst.unlink(missing_ok=True)
        run("osslsigncode", "sign", "-certs", OUT / f"{signer}.pem", "-key",
            KEYS / f"{signer}.key", *extra, "-in", src, "-out", dst)  # fmt: skip

    return sign


def security_dir(img: bytes | bytearray) -> tuple[int, int]:
    start, size = struct.unpack_from("<II", img, SECURITY_ENTRY)
    return int(start), int(size)


def set_security_dir(img: bytearray, start: int, size: int) -> None:
    struct.pack_into("<II", img, SECURITY_ENTRY, start, size)
    set_checksum(img)


# --- the fixtures --------------------------------------------------------------------------


def covered_bytes(img: bytes) -> bytes:
    """What a signature of ``img`` vouches for: the file before the certificate table,
    padded to 8 bytes as sbsign pads it, with CheckSum and the SECURITY entry zeroed."""
    start, size = security_dir(img)
    body = bytearray(img[:start] if size else img)
    body += bytes(-len(body) % 8)
    body[CHECKSUM : CHECKSUM + 4] = bytes(4)
    body[SECURITY_ENTRY : SECURITY_ENTRY + DATA_DIRECTORY.size] = bytes(DATA_DIRECTORY.size)
    return bytes(body)


def signed_fixture(
    name: str, base: Path, sign: Callable[[Path, Path], None], what: str, *, keep: bool
) -> tuple[Path, bool]:
    """Sign ``base`` into ``name``, or keep the committed file when it is a signature of
    the same bytes (signing tools add a signingTime, so re-signing would churn the files).
    Returns the path and whether the old file was kept."""
    dst = OUT / name
    if (
        keep
        and dst.exists()
        and covered_bytes(dst.read_bytes()) == covered_bytes(base.read_bytes())
    ):
        return FIXTURES.record(name, what), True
    with tempfile.TemporaryDirectory() as tmpdir:
        out = Path(tmpdir) / name
        sign(base, out)
        FIXTURES.write(name, out.read_bytes(), what)
    return dst, False


def build(new_keys: bool, resign: bool) -> None:
    require_tools("sbsign", "sbverify", "osslsigncode", install="sbsigntool osslsigncode")
    OUT.mkdir(parents=True, exist_ok=True)
    make_pki(new_keys)
    write = FIXTURES.write
    base = write("tiny.efi", tiny(), "unsigned minimal PE32+ EFI application, contiguous")
    unaligned_img = tiny() + b"\x01\x02\x03\x04\x05"
    set_checksum(unaligned_img)
    unaligned = write(
        "tiny-unaligned.efi",
        unaligned_img,
        "tiny.efi + 5 trailing bytes: length not 8-aligned, hashed with 3 zero bytes of "
        "padding by sbverify/osslsigncode, without by pesign/edk2",
    )
    gaps = write(
        "tiny-gaps.efi",
        tiny_gaps(),
        "raw data out of table order, a 0x200-byte hole (0x800-0xa00, not hashed), 0x40 "
        "trailing bytes at 0xc00 (hashed from SUM_OF_BYTES_HASHED=0xa00)",
    )

    keep = not (resign or new_keys)
    signed, signed_kept = signed_fixture(
        "signed.efi", base, sign_with("signer"),
        "tiny.efi signed by signer (sbsign, SHA-256)", keep=keep,
    )  # fmt: skip
    singles: list[tuple[str, Path, Callable[[Path, Path], None], str]] = [
        ("signed-ec.efi", base, sign_with("ec-signer"),
         "tiny.efi signed by ec-signer (ECDSA P-256, sbsign)"),
        ("signed-sha1.efi", base, osslsign_with("signer", "-h", "sha1"),
         "tiny.efi signed by signer with a SHA-1 digest (osslsigncode)"),
        ("chain.efi", base, sign_with("chain-signer", "--addcert", OUT / "intermediate.pem"),
         "tiny.efi signed by chain-signer, intermediate CA in the PKCS#7 bag"),
        ("gaps-signed.efi", gaps, sign_with("signer"), "tiny-gaps.efi signed"),
        ("unaligned-signed.efi", unaligned, sign_with("signer"),
         "tiny-unaligned.efi signed: sbsign pads it to 8 bytes before the table"),
    ]  # fmt: skip
    # These add to signed.efi's signature, so they are remade whenever it is.
    additions: list[tuple[str, Path, Callable[[Path, Path], None], str]] = [
        ("two-sigs.efi", signed, sign_with("ec-signer"),
         "signed.efi + a second WIN_CERTIFICATE by ec-signer (sbsign appends)"),
        ("nested.efi", signed, osslsign_with("ec-signer", "-nest", "-h", "sha1"),
         "signed.efi + a SHA-1 ec-signer signature nested in signature 0 (osslsigncode -nest)"),
    ]  # fmt: skip
    for name, src, sign, what in singles:
        signed_fixture(name, src, sign, what, keep=keep)
    for name, src, sign, what in additions:
        signed_fixture(name, src, sign, what, keep=keep and signed_kept)

    signed_bytes = bytearray((OUT / "signed.efi").read_bytes())
    start, size = security_dir(signed_bytes)
    assert start + size == len(signed_bytes), "sbsign puts the table at the end"
    write("trailing-after-cert.efi", signed_bytes + b"APPENDED AFTER THE CERT TABLE!!!"[:24],
          "signed.efi + 24 bytes after the certificate table: the Authenticode digest now "
          "covers 24 table bytes, so the signature no longer matches")  # fmt: skip

    entry = bytes(signed_bytes[start : start + size])
    rng = random.Random(20250101)
    garbage = win_certificate(bytes(rng.randrange(256) for _ in range(40)))
    img = bytearray(signed_bytes[:start]) + garbage + entry
    set_security_dir(img, start, len(garbage) + len(entry))
    write("garbage-entry.efi", img,
          "WIN_CERTIFICATE[0] is PKCS_SIGNED_DATA holding 40 random bytes, [1] is signed.efi's "
          "good signature")  # fmt: skip

    small = patched(signed_bytes, start, "<I", 4)
    set_checksum(small)
    write("bad-dwlength-small.efi", small, "signed.efi with dwLength 4 (< 8-byte header)")
    big = patched(signed_bytes, start, "<I", size + 0x100)
    set_checksum(big)
    write("bad-dwlength-big.efi", big, "signed.efi with dwLength 0x100 past the table end")

    (length,) = struct.unpack_from("<I", signed_bytes, start)
    body = bytes(signed_bytes[start + 8 : start + length])
    if length % 8 == 0:
        body += bytes(4)  # zeros after the DER (ignored by parsers) to end off a boundary
    table = win_certificate(body)
    unpadded = bytearray(signed_bytes[:start]) + table
    set_security_dir(unpadded, start, len(table))
    write("unpadded-table.efi", unpadded,
          "signed.efi with the table size (and file) cut to dwLength, dropping the final "
          "alignment padding: edk2 rejects it, sbverify accepts")  # fmt: skip

    FIXTURES.write_manifest()
    # Sanity: the real verifier accepts what should verify.
    ca = OUT / "ca.pem"
    for name in ("signed.efi", "signed-ec.efi", "chain.efi", "gaps-signed.efi", "two-sigs.efi"):
        run("sbverify", "--cert", ca, OUT / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-keys", action="store_true", help="generate new test keys")
    parser.add_argument("--resign", action="store_true", help="re-sign every signed fixture")
    args = parser.parse_args()
    build(args.new_keys, args.resign)
    print(f"wrote {len(FIXTURES)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
