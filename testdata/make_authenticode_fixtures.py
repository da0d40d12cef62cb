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
import datetime as dt
import hashlib
import json
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE: Final = Path(__file__).resolve().parent
OUT: Final = HERE / "authenticode"
KEYS: Final = OUT / "keys"
MAX_FIXTURE: Final = 64 * 1024

# --- PE/COFF (Microsoft PE Format specification) ----------------------------------------

MACHINE_AMD64: Final = 0x8664
# EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE | DEBUG_STRIPPED
CHARACTERISTICS: Final = 0x0002 | 0x0020 | 0x0200
PE32PLUS: Final = 0x20B
SUBSYSTEM_EFI_APPLICATION: Final = 10
DLLCHARS: Final = 0x0100 | 0x0040  # NX_COMPAT | DYNAMIC_BASE
SCN_CODE: Final = 0x00000020
SCN_IDATA: Final = 0x00000040
SCN_UDATA: Final = 0x00000080
SCN_DISCARDABLE: Final = 0x02000000
SCN_X: Final = 0x20000000
SCN_R: Final = 0x40000000
SCN_W: Final = 0x80000000
E_LFANEW: Final = 0x80
FILE_ALIGN: Final = 0x200
SECTION_ALIGN: Final = 0x1000
OPT_HEADER_SIZE: Final = 112 + 16 * 8
DIR_SECURITY: Final = 4
DIR_BASERELOC: Final = 5
WIN_CERT_REVISION_2: Final = 0x0200
WIN_CERT_TYPE_PKCS: Final = 0x0002


class Section:
    def __init__(
        self, name: str, va: int, vsize: int, data: bytes, flags: int, raw_offset: int = 0
    ) -> None:
        self.name, self.va, self.vsize, self.data, self.flags = name, va, vsize, data, flags
        self.raw_offset = raw_offset


def _align(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def build_pe(sections: list[Section], size_of_headers: int, fill: dict[int, bytes]) -> bytearray:
    """A PE32+ image; sections' raw_offset must already be set (0 for no raw data).

    ``fill`` puts extra bytes at file offsets (holes and trailing data).
    """
    end = size_of_headers
    for s in sections:
        if s.data:
            end = max(end, s.raw_offset + _align(len(s.data), FILE_ALIGN))
    for off, blob in fill.items():
        end = max(end, off + len(blob))
    img = bytearray(end)
    img[0:2] = b"MZ"
    struct.pack_into("<I", img, 0x3C, E_LFANEW)
    struct.pack_into("<4s", img, E_LFANEW, b"PE\0\0")
    struct.pack_into(
        "<HHIIIHH", img, E_LFANEW + 4,
        MACHINE_AMD64, len(sections), 0, 0, 0, OPT_HEADER_SIZE, CHARACTERISTICS,
    )  # fmt: skip
    code = sum(_align(len(s.data), FILE_ALIGN) for s in sections if s.flags & SCN_CODE)
    idata = sum(_align(len(s.data), FILE_ALIGN) for s in sections if s.flags & SCN_IDATA)
    udata = sum(s.vsize for s in sections if s.flags & SCN_UDATA)
    image_size = max(_align(s.va + s.vsize, SECTION_ALIGN) for s in sections)
    text = next(s for s in sections if s.flags & SCN_CODE)
    opt = E_LFANEW + 24
    struct.pack_into(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII", img, opt,
        PE32PLUS, 2, 40, code, idata, udata, text.va, text.va,
        0x10000000, SECTION_ALIGN, FILE_ALIGN, 0, 0, 0, 0, 0, 0, 0,
        image_size, size_of_headers, 0, SUBSYSTEM_EFI_APPLICATION, DLLCHARS,
        0x10000, 0x10000, 0x10000, 0x10000, 0, 16,
    )  # fmt: skip
    reloc = next((s for s in sections if s.name == ".reloc"), None)
    if reloc is not None:
        struct.pack_into("<II", img, opt + 112 + DIR_BASERELOC * 8, reloc.va, reloc.vsize)
    table = opt + OPT_HEADER_SIZE
    for i, s in enumerate(sections):
        raw_size = _align(len(s.data), FILE_ALIGN) if s.data else 0
        struct.pack_into(
            "<8sIIIIIIHHI", img, table + 40 * i,
            s.name.encode(), s.vsize, s.va, raw_size, s.raw_offset if s.data else 0,
            0, 0, 0, 0, s.flags,
        )  # fmt: skip
        if s.data:
            img[s.raw_offset : s.raw_offset + len(s.data)] = s.data
    assert table + 40 * len(sections) <= size_of_headers
    for off, blob in fill.items():
        img[off : off + len(blob)] = blob
    set_checksum(img)
    return img


def set_checksum(img: bytearray) -> None:
    """The PE CheckSum, as the Windows loader computes it (the field itself taken as 0)."""
    off = E_LFANEW + 24 + 64
    struct.pack_into("<I", img, off, 0)
    data = bytes(img) + (b"\0" if len(img) % 2 else b"")
    total = 0
    for (word,) in struct.iter_unpack("<H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    struct.pack_into("<I", img, off, (total + len(img)) & 0xFFFFFFFF)


def _sections() -> list[Section]:
    code = bytes.fromhex("31c0c3")  # xor eax, eax; ret  -> EFI_SUCCESS
    data = b"fwtools authenticode fixture\0".ljust(64, b"\0")
    # One relocation block for the .data page holding only ABSOLUTE (padding) entries.
    reloc = struct.pack("<IIHH", 0x2000, 12, 0, 0)
    return [
        Section(".text", 0x1000, len(code), code, SCN_CODE | SCN_X | SCN_R),
        Section(".data", 0x2000, len(data), data, SCN_IDATA | SCN_R | SCN_W),
        Section(".bss", 0x3000, 0x100, b"", SCN_UDATA | SCN_R | SCN_W),
        Section(".reloc", 0x4000, len(reloc), reloc, SCN_IDATA | SCN_R | SCN_DISCARDABLE),
    ]


def tiny() -> bytearray:
    secs = _sections()
    pos = 0x400
    for s in secs:
        if s.data:
            s.raw_offset = pos
            pos += _align(len(s.data), FILE_ALIGN)
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

NOT_BEFORE: Final = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NOT_AFTER: Final = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)


def _key(name: str, kind: str, new: bool) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    path = KEYS / f"{name}.key"
    if path.exists() and not new:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return key
    key = (
        rsa.generate_private_key(65537, 2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def _cert(
    cn: str,
    serial: int,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fwtools test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(new: bool) -> dict[str, Path]:
    KEYS.mkdir(parents=True, exist_ok=True)
    ca_key = _key("ca", "rsa", new)
    ca = _cert("fwtools authenticode test CA", 0x2001, ca_key, None, ca_key, ca=True)
    out = {"ca": ca}
    signer_key = _key("signer", "rsa", new)
    out["signer"] = _cert("fwtools test signer", 0x2002, signer_key, ca, ca_key, ca=False)
    ec_key = _key("ec-signer", "ec", new)
    out["ec-signer"] = _cert("fwtools test EC signer", 0x2003, ec_key, ca, ca_key, ca=False)
    int_key = _key("intermediate", "rsa", new)
    inter = _cert("fwtools test intermediate CA", 0x2004, int_key, ca, ca_key, ca=True)
    out["intermediate"] = inter
    chain_key = _key("chain-signer", "rsa", new)
    out["chain-signer"] = _cert(
        "fwtools test chain signer", 0x2005, chain_key, inter, int_key, ca=False
    )
    other_key = _key("other-ca", "rsa", new)
    out["other-ca"] = _cert("fwtools unrelated CA", 0x2006, other_key, None, other_key, ca=True)
    paths = {}
    for name, cert in out.items():
        pem = OUT / f"{name}.pem"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (OUT / f"{name}.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
        paths[name] = pem
    return paths


# --- signing with the real tools ------------------------------------------------------------


def run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)


def sbsign(src: Path, dst: Path, name: str, *extra: str | Path) -> None:
    run("sbsign", "--key", KEYS / f"{name}.key", "--cert", OUT / f"{name}.pem",
        *extra, "--output", dst, src)  # fmt: skip


def osslsign(src: Path, dst: Path, name: str, *extra: str) -> None:
    dst.unlink(missing_ok=True)
    run("osslsigncode", "sign", "-certs", OUT / f"{name}.pem", "-key", KEYS / f"{name}.key",
        *extra, "-in", src, "-out", dst)  # fmt: skip


def security_dir(img: bytes | bytearray) -> tuple[int, int]:
    start, size = struct.unpack_from("<II", img, E_LFANEW + 24 + 112 + DIR_SECURITY * 8)
    return int(start), int(size)


def set_security_dir(img: bytearray, start: int, size: int) -> None:
    struct.pack_into("<II", img, E_LFANEW + 24 + 112 + DIR_SECURITY * 8, start, size)
    set_checksum(img)


# --- the fixtures --------------------------------------------------------------------------

MANIFEST: dict[str, str] = {}


def covered_bytes(img: bytes) -> bytes:
    """What a signature of ``img`` vouches for: the file before the certificate table,
    padded to 8 bytes as sbsign pads it, with CheckSum and the SECURITY entry zeroed."""
    start, size = security_dir(img)
    body = bytearray(img[:start] if size else img)
    body += bytes(-len(body) % 8)
    checksum = E_LFANEW + 24 + 64
    entry = E_LFANEW + 24 + 112 + DIR_SECURITY * 8
    body[checksum : checksum + 4] = bytes(4)
    body[entry : entry + 8] = bytes(8)
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
        MANIFEST[name] = what
        return dst, True
    with tempfile.TemporaryDirectory() as tmpdir:
        out = Path(tmpdir) / name
        sign(base, out)
        write(name, out.read_bytes(), what)
    return dst, False


def write(name: str, data: bytes | bytearray, what: str) -> Path:
    assert len(data) < MAX_FIXTURE, f"{name} is {len(data)} bytes"
    path = OUT / name
    path.write_bytes(bytes(data))
    MANIFEST[name] = what
    return path


def build(new_keys: bool, resign: bool) -> None:
    for tool in ("sbsign", "sbverify", "osslsigncode"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt-get install sbsigntool osslsigncode)")
    OUT.mkdir(parents=True, exist_ok=True)
    make_pki(new_keys)
    for name in ("ca", "signer", "ec-signer", "intermediate", "chain-signer", "other-ca"):
        MANIFEST[f"{name}.pem"] = f"test certificate {name} (PEM; .der alongside)"
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
        "signed.efi", base, lambda s, d: sbsign(s, d, "signer"),
        "tiny.efi signed by signer (sbsign, SHA-256)", keep=keep,
    )  # fmt: skip
    signed_fixture(
        "signed-ec.efi", base, lambda s, d: sbsign(s, d, "ec-signer"),
        "tiny.efi signed by ec-signer (ECDSA P-256, sbsign)", keep=keep,
    )  # fmt: skip
    signed_fixture(
        "signed-sha1.efi", base, lambda s, d: osslsign(s, d, "signer", "-h", "sha1"),
        "tiny.efi signed by signer with a SHA-1 digest (osslsigncode)", keep=keep,
    )  # fmt: skip
    signed_fixture(
        "chain.efi", base,
        lambda s, d: sbsign(s, d, "chain-signer", "--addcert", OUT / "intermediate.pem"),
        "tiny.efi signed by chain-signer, intermediate CA in the PKCS#7 bag", keep=keep,
    )  # fmt: skip
    signed_fixture(
        "gaps-signed.efi", gaps, lambda s, d: sbsign(s, d, "signer"),
        "tiny-gaps.efi signed", keep=keep,
    )  # fmt: skip
    signed_fixture(
        "unaligned-signed.efi", unaligned, lambda s, d: sbsign(s, d, "signer"),
        "tiny-unaligned.efi signed: sbsign pads it to 8 bytes before the table", keep=keep,
    )  # fmt: skip
    # These add to signed.efi's signature, so they are remade whenever it is.
    signed_fixture(
        "two-sigs.efi", signed, lambda s, d: sbsign(s, d, "ec-signer"),
        "signed.efi + a second WIN_CERTIFICATE by ec-signer (sbsign appends)",
        keep=keep and signed_kept,
    )  # fmt: skip
    signed_fixture(
        "nested.efi", signed,
        lambda s, d: osslsign(s, d, "ec-signer", "-nest", "-h", "sha1"),
        "signed.efi + a SHA-1 ec-signer signature nested in signature 0 (osslsigncode -nest)",
        keep=keep and signed_kept,
    )  # fmt: skip

    signed_bytes = bytearray((OUT / "signed.efi").read_bytes())
    start, size = security_dir(signed_bytes)
    assert start + size == len(signed_bytes), "sbsign puts the table at the end"
    write("trailing-after-cert.efi", signed_bytes + b"APPENDED AFTER THE CERT TABLE!!!"[:24],
          "signed.efi + 24 bytes after the certificate table: the Authenticode digest now "
          "covers 24 table bytes, so the signature no longer matches")  # fmt: skip

    entry = bytes(signed_bytes[start : start + size])
    rng = random.Random(20250101)
    junk = bytes(rng.randrange(256) for _ in range(40))
    garbage = struct.pack("<IHH", 8 + len(junk), WIN_CERT_REVISION_2, WIN_CERT_TYPE_PKCS) + junk
    img = bytearray(signed_bytes[:start]) + garbage + entry
    set_security_dir(img, start, len(garbage) + len(entry))
    write("garbage-entry.efi", img,
          "WIN_CERTIFICATE[0] is PKCS_SIGNED_DATA holding 40 random bytes, [1] is signed.efi's "
          "good signature")  # fmt: skip

    small = bytearray(signed_bytes)
    struct.pack_into("<I", small, start, 4)
    set_checksum(small)
    write("bad-dwlength-small.efi", small, "signed.efi with dwLength 4 (< 8-byte header)")
    big = bytearray(signed_bytes)
    struct.pack_into("<I", big, start, size + 0x100)
    set_checksum(big)
    write("bad-dwlength-big.efi", big, "signed.efi with dwLength 0x100 past the table end")

    (length,) = struct.unpack_from("<I", signed_bytes, start)
    body = bytes(signed_bytes[start + 8 : start + length])
    if length % 8 == 0:
        body += bytes(4)  # zeros after the DER (ignored by parsers) to end off a boundary
    head = struct.pack("<IHH", 8 + len(body), WIN_CERT_REVISION_2, WIN_CERT_TYPE_PKCS)
    unpadded = bytearray(signed_bytes[:start]) + head + body
    set_security_dir(unpadded, start, len(head) + len(body))
    write("unpadded-table.efi", unpadded,
          "signed.efi with the table size (and file) cut to dwLength, dropping the final "
          "alignment padding: edk2 rejects it, sbverify accepts")  # fmt: skip

    manifest = {
        name: {"sha256": hashlib.sha256((OUT / name).read_bytes()).hexdigest(), "what": what}
        for name, what in sorted(MANIFEST.items())
    }
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
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
    print(f"wrote {len(MANIFEST)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
