#!/usr/bin/env python3
"""Write the small synthetic PE fixtures under testdata/uki/ (deterministic output).

Usage: python testdata/make_uki.py [OUTDIR]      (default: testdata/uki next to this file)

Everything here is built from scratch, independently of fwtools' parsers, so the fixtures
can serve as an oracle for them:

uki.efi
    A Unified Kernel Image in the shape ukify produces: a tiny x86-64 "stub" (.text that
    returns EFI_UNSUPPORTED, .sbat, .sdmagic) followed by .osrel, .cmdline, .uname, .linux
    (fake-bzimage.efi), .initrd (a cpio newc archive), .splash (a 2x2 BMP), .dtb, .pcrpkey,
    .pcrsig and two profiles (.profile, .profile + .cmdline) as in the UKI specification's
    multi-profile example.
fake-bzimage.efi
    A 6 KiB x86 "bzImage": PE/COFF header with the EFI stub layout of arch/x86/boot/header.S,
    boot protocol 2.15 setup header (Documentation/arch/x86/boot.rst) with a kernel_version
    string, a gzip payload (a bare ELF header) and a kernel_info block.
shim-like.efi
    What shim carries: .sbat, .sbatlevel (shim's sbat_var.S layout), .data.ident and a
    .vendor_cert built with VENDOR_DB_FILE (an EFI_SIGNATURE_LIST db holding a self-signed
    Ed25519 certificate and a SHA-256 hash) plus a one-entry vendor dbx. The names longer
    than 8 bytes go through the COFF string table ("/4" names), as GNU ld writes them.
MANIFEST.json
    The SHA-256 of every section payload, keyed by file and section name: the oracle the
    tests compare fwtools' special-section digests with.

Certificates use Ed25519 from a fixed seed and fixed dates, so re-running the script gives
byte-identical files (tests/formats/pe/test_special.py checks this). Needs `cryptography`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import sys
from pathlib import Path

# The shared helpers sit next to this script; put them on the path also when the tests load
# it by file name.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fixture_tools import (
    FILE_ALIGNMENT,
    PE_SIGNATURE,
    SCN_CNT_CODE,
    SCN_CNT_INITIALIZED_DATA,
    SCN_MEM_EXECUTE,
    SCN_MEM_READ,
    SCN_MEM_WRITE,
    SECTION_ALIGNMENT,
    align,
    coff_header,
    dos_header,
    headers_length,
    optional_header64,
    section_header,
)

# -- a minimal PE32+ writer (Microsoft PE/COFF specification) ---------------------------

RX = SCN_CNT_CODE | SCN_MEM_READ | SCN_MEM_EXECUTE
RO = SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ
RW = SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ | SCN_MEM_WRITE
E_LFANEW = 0x40
LINUX_PE_MAGIC = 0x818223CD

# movabs rax, 0x8000000000000003 (EFI_UNSUPPORTED); ret
STUB_CODE = bytes.fromhex("48b80300000000000080c3")


def build_pe(
    sections: list[tuple[str, bytes, int]],
    *,
    entry_section: int = 0,
) -> bytes:
    """Lay out ``sections`` (name, data, characteristics) after the headers, in order."""
    nsec = len(sections)
    size_of_headers = align(headers_length(E_LFANEW, nsec), FILE_ALIGNMENT)
    strtab = bytearray()
    raw = size_of_headers
    rva = align(size_of_headers, SECTION_ALIGNMENT)
    table = bytearray()
    body = bytearray()
    size_code = size_idata = 0
    entry_rva = 0
    for index, (name, data, chars) in enumerate(sections):
        encoded = name.encode()
        if len(encoded) > 8:
            # GNU ld's long section names: "/N", N the offset in the COFF string table
            # (which starts with its own u32 size).
            field = f"/{4 + len(strtab)}".encode()
            strtab += encoded + b"\0"
        else:
            field = encoded
        raw_size = align(len(data), FILE_ALIGNMENT)
        table += section_header(field, len(data), rva, raw_size, raw, chars)
        body += data.ljust(raw_size, b"\0")
        if chars & SCN_CNT_CODE:
            size_code += raw_size
        else:
            size_idata += raw_size
        if index == entry_section:
            entry_rva = rva
        raw += raw_size
        rva += align(max(len(data), 1), SECTION_ALIGNMENT)
    symtab = raw if strtab else 0
    opt = optional_header64(
        entry=entry_rva,
        base_of_code=align(size_of_headers, SECTION_ALIGNMENT),
        image_base=0,
        image_size=rva,
        headers_size=size_of_headers,
        code_size=size_code,
        initialized_data_size=size_idata,
        stack_and_heap=(0x10000, 0x10000, 0x10000, 0),
    )
    head = (dos_header(E_LFANEW) + PE_SIGNATURE + coff_header(nsec, symbol_table=symtab)
            + opt + table)  # fmt: skip
    out = head.ljust(size_of_headers, b"\0") + bytes(body)
    if strtab:
        out += struct.pack("<I", 4 + len(strtab)) + bytes(strtab)
    return out


# -- payloads ---------------------------------------------------------------------------

KERNEL_RELEASE = "6.1.0-fwtools-test"
KERNEL_VERSION = f"{KERNEL_RELEASE} (fwtools@testdata) #1 SMP PREEMPT_DYNAMIC"
# Setup header fields (boot.rst): offset -> (struct format, value)
SETUP_SECTS = 3
PM_OFFSET = (SETUP_SECTS + 1) * 512
KERNEL_VERSION_STRING_AT = 0x400
PAYLOAD_REL = 0x100
KERNEL_INFO_REL = 0x40


def fake_bzimage() -> bytes:
    """A bzImage-shaped EFI-stub PE: setup sectors, setup header, gzip payload."""
    elf = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HH", 2, 62) + bytes(44)
    payload = gzip.compress(elf, mtime=0)
    kinfo = struct.pack("<4sIII", b"LToP", 16, 16, 0x80000009)
    pm = bytearray(b"\xf4" * PAYLOAD_REL)  # hlt
    pm[KERNEL_INFO_REL : KERNEL_INFO_REL + len(kinfo)] = kinfo
    pm += payload
    pm += struct.pack("<I", len(elf))  # the decompressed size follows, as in real kernels
    setup = bytearray(PM_OFFSET - FILE_ALIGNMENT)  # file 0x200 .. PM_OFFSET
    version = KERNEL_VERSION.encode() + b"\0"
    rel = KERNEL_VERSION_STRING_AT - FILE_ALIGNMENT
    setup[rel : rel + len(version)] = version
    image = bytearray(
        build_pe([(".setup", bytes(setup), RO), (".text", bytes(pm), RX)], entry_section=1)
    )
    assert len(image) >= PM_OFFSET and image[PM_OFFSET : PM_OFFSET + 4] == pm[:4]
    fields = {
        0x1F1: ("B", SETUP_SECTS),
        0x1F4: ("I", align(len(pm), 16) // 16),  # syssize in paragraphs
        0x1FE: ("H", 0xAA55),
        0x200: ("2s", b"\xeb\x6a"),  # jmp to 0x26c: the end of a 2.15 header
        0x202: ("4s", b"HdrS"),
        0x206: ("H", 0x020F),
        0x20E: ("H", KERNEL_VERSION_STRING_AT - 0x200),
        0x211: ("B", 0x01),  # LOADED_HIGH
        0x214: ("I", 0x100000),
        0x22C: ("I", 0x7FFFFFFF),
        0x230: ("I", 0x200000),
        0x234: ("B", 1),
        0x235: ("B", 21),
        0x236: ("H", 0x7F),
        0x238: ("I", 2047),
        0x248: ("I", PAYLOAD_REL),
        0x24C: ("I", len(payload)),
        0x258: ("Q", 0x1000000),
        0x260: ("I", 0x1000000),
        0x264: ("I", 0x190),
        0x268: ("I", KERNEL_INFO_REL),
        0x38: ("I", LINUX_PE_MAGIC),
    }
    for offset, (fmt, value) in fields.items():
        struct.pack_into("<" + fmt, image, offset, value)
    return bytes(image)


def cpio_newc(files: dict[str, bytes]) -> bytes:
    """A cpio "newc" archive (070701 headers, 4-byte aligned), as initramfs uses."""
    out = io.BytesIO()
    entries = [*files.items(), ("TRAILER!!!", None)]
    for ino, (name, data) in enumerate(entries, 1):
        content = data or b""
        mode = 0o100755 if data is not None else 0
        nlink = 1 if data is not None else 0
        name_bytes = name.encode() + b"\0"
        fields = [
            ino if data is not None else 0,
            mode,
            0,
            0,
            nlink,
            0,
            len(content),
            0,
            0,
            0,
            0,
            len(name_bytes),
            0,
        ]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.write(name_bytes)
        out.write(b"\0" * (-out.tell() % 4))
        out.write(content)
        out.write(b"\0" * (-out.tell() % 4))
    return out.getvalue()


SPLASH_WIDTH = 2
SPLASH_HEIGHT = 2


def bmp() -> bytes:
    """A 2x2 24-bit BITMAPINFOHEADER bitmap (bottom-up, rows padded to 4 bytes)."""
    row = b"\x00\x00\xff\xff\xff\xff" + b"\0\0"  # red, white, padding
    pixels = row * SPLASH_HEIGHT
    info = struct.pack(
        "<IiiHHIIiiII", 40, SPLASH_WIDTH, SPLASH_HEIGHT, 1, 24, 0, len(pixels), 2835, 2835, 0, 0
    )
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


DTB_MODEL = "fwtools test board"
DTB_COMPATIBLE = ("fwtools,test-board", "fwtools,test")


def dtb() -> bytes:
    """A flattened devicetree (spec v0.4 ch. 5) with root model and compatible."""
    strings = b"model\0compatible\0#address-cells\0"
    struct_block = bytearray()

    def token(value: int) -> None:
        struct_block.extend(struct.pack(">I", value))

    def prop(nameoff: int, value: bytes) -> None:
        token(3)
        struct_block.extend(struct.pack(">II", len(value), nameoff))
        struct_block.extend(value + b"\0" * (-len(value) % 4))

    token(1)
    struct_block.extend(b"\0\0\0\0")  # root node name "" padded
    prop(0, DTB_MODEL.encode() + b"\0")
    prop(6, b"".join(c.encode() + b"\0" for c in DTB_COMPATIBLE))
    prop(17, struct.pack(">I", 2))
    token(1)
    struct_block.extend(b"chosen\0\0")
    token(2)
    token(2)
    token(9)
    rsvmap = bytes(16)
    off_rsvmap = 40
    off_struct = off_rsvmap + len(rsvmap)
    off_strings = off_struct + len(struct_block)
    total = off_strings + len(strings)
    header = struct.pack(
        ">10I",
        0xD00DFEED,
        total,
        off_struct,
        off_strings,
        off_rsvmap,
        17,
        16,
        0,
        len(strings),
        len(struct_block),
    )
    return header + rsvmap + bytes(struct_block) + strings


# -- keys and certificates (deterministic) ----------------------------------------------


def ed25519_material() -> tuple[bytes, bytes, bytes]:
    """(PEM public key, DER self-signed certificate, signature of the PCR policy)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.x509.oid import NameOID

    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fwtools testdata").digest())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fwtools test vendor CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x5EC0DE)
        .not_valid_before(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2054, 1, 1, tzinfo=datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None)
    )
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, cert.public_bytes(serialization.Encoding.DER), key.sign(PCR_POLICY)


PCR_POLICY = hashlib.sha256(b"fwtools expected PCR 11").digest()
EFI_CERT_X509 = bytes.fromhex("a159c0a5e494a74a87b5ab155c2bf072")  # a5c059a1-94e4-... le
EFI_CERT_SHA256 = bytes.fromhex("2616c4c14c509240aca941f936934328")  # c1c41626-504c-... le
VENDOR_OWNER = bytes(range(16))


def esl(sig_type: bytes, entries: list[bytes]) -> bytes:
    """One EFI_SIGNATURE_LIST with the given signature bodies (all the same size)."""
    size = 16 + len(entries[0])
    body = b"".join(VENDOR_OWNER + e for e in entries)
    return sig_type + struct.pack("<III", 28 + len(body), 0, size) + body


# -- the fixtures -----------------------------------------------------------------------

SBAT_STUB = (
    "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
    "systemd-stub,1,The systemd Developers,systemd,999,https://systemd.io/\n"
    "systemd-stub.fwtools,1,fwtools,systemd,999-test,https://example.invalid/fwtools\n"
)
SBAT_SHIM = (
    "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
    "shim,4,UEFI shim,shim,1,https://github.com/rhboot/shim\n"
    "shim.fwtools,1,fwtools,shim,16.1,https://example.invalid/fwtools\n"
)
SBATLEVEL_AUTOMATIC = "sbat,1,2024040900\nshim,4\ngrub,4\ngrub.peimage,2\n"
SBATLEVEL_LATEST = "sbat,1,2025051000\nshim,4\ngrub,5\ngrub.proxmox,2\n"
IDENT = (
    "UEFI SHIM\n$Version: 16.1 $\n$BuildMachine: fwtools-testdata $\n"
    "$Commit: 0123456789abcdef0123456789abcdef01234567 $\n"
)
OSREL = (
    'NAME="fwtools test OS"\nID=fwtools\nVERSION_ID="1.0"\n'
    "# a comment\n"
    'PRETTY_NAME="fwtools \\"test\\" OS 1.0"\n'
)
CMDLINE = "console=ttyS0 root=/dev/vda2 ro quiet"
PROFILES = (
    ('ID=default\nTITLE="Default boot"\n', None),
    ('ID=debug\nTITLE="Debug shell"\n', CMDLINE + " systemd.debug_shell=1"),
)


def sbatlevel() -> bytes:
    """shim's sbat_var.S: u32 0, u32 automatic, u32 latest (relative to offset 4), strings."""
    automatic = SBATLEVEL_AUTOMATIC.encode() + b"\0"
    latest = SBATLEVEL_LATEST.encode() + b"\0"
    return struct.pack("<III", 0, 8, 8 + len(automatic)) + automatic + latest


def vendor_cert(cert_der: bytes) -> bytes:
    """shim's cert.S cert_table with a VENDOR_DB_FILE db and a VENDOR_DBX_FILE dbx."""
    db = esl(EFI_CERT_X509, [cert_der]) + esl(
        EFI_CERT_SHA256, [hashlib.sha256(b"fwtools trusted image").digest()]
    )
    dbx = esl(EFI_CERT_SHA256, [hashlib.sha256(b"fwtools revoked image").digest()])
    table = struct.pack("<IIII", len(db), len(dbx), 16, 16 + len(db))
    return table + db + dbx


def uki_sections(pcrpkey: bytes, pcr_sig: bytes) -> list[tuple[str, bytes, int]]:
    import base64

    der = b"".join(
        base64.b64decode(line) for line in pcrpkey.decode().splitlines() if "-----" not in line
    )
    pcrsig = (
        json.dumps(
            {
                "sha256": [
                    {
                        "pcrs": [11],
                        "pkfp": hashlib.sha256(der).hexdigest(),
                        "pol": PCR_POLICY.hex(),
                        "sig": base64.b64encode(pcr_sig).decode(),
                    }
                ]
            },
            indent=4,
        ).encode()
        + b"\0"
    )
    sections: list[tuple[str, bytes, int]] = [
        (".text", STUB_CODE, RX),
        (".sbat", SBAT_STUB.encode(), RO),
        (".sdmagic", b"#### LoaderInfo: systemd-stub 999-fwtools ####\0", RO),
        (".osrel", OSREL.encode(), RO),
        (".cmdline", CMDLINE.encode() + b"\0", RO),
        (".uname", KERNEL_RELEASE.encode(), RO),
        (".initrd", cpio_newc({"init": b"#!/bin/sh\necho fwtools\n"}), RO),
        (".splash", bmp(), RO),
        (".dtb", dtb(), RO),
        (".pcrpkey", pcrpkey, RO),
        (".pcrsig", pcrsig, RO),
        (".linux", fake_bzimage(), RO),
    ]
    for profile, cmdline in PROFILES:
        sections.append((".profile", profile.encode(), RO))
        if cmdline is not None:
            sections.append((".cmdline", cmdline.encode(), RO))
    return sections


def shim_sections(cert_der: bytes) -> list[tuple[str, bytes, int]]:
    return [
        (".text", STUB_CODE, RX),
        (".data.ident", IDENT.encode(), RO),
        (".sbatlevel", sbatlevel(), RO),
        (".data", bytes(64), RW),
        (".vendor_cert", vendor_cert(cert_der), RO),
        (".sbat", SBAT_SHIM.encode(), RO),
    ]


def build() -> dict[str, bytes]:
    """Build every fixture in memory: {file name: bytes} (MANIFEST.json included)."""
    pcrpkey, cert_der, pcr_sig = ed25519_material()
    images = {
        "uki.efi": uki_sections(pcrpkey, pcr_sig),
        "shim-like.efi": shim_sections(cert_der),
    }
    files: dict[str, bytes] = {"fake-bzimage.efi": fake_bzimage()}
    manifest: dict[str, list[dict[str, object]]] = {}
    for name, sections in images.items():
        files[name] = build_pe(sections)
        manifest[name] = [
            {"name": s, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for s, d, _ in sections
        ]
    manifest["shim-like.efi.vendor_cert"] = [
        {
            "name": "vendor certificate DER",
            "size": len(cert_der),
            "sha256": hashlib.sha256(cert_der).hexdigest(),
        },
    ]
    files["MANIFEST.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return files


def main(argv: list[str]) -> int:
    outdir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "uki"
    outdir.mkdir(parents=True, exist_ok=True)
    for name, data in build().items():
        (outdir / name).write_bytes(data)
        print(f"{outdir / name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
