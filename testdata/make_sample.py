#!/usr/bin/env python3
"""Build the synthetic EFI sample images in testdata/sample/ (see testdata/README.md).

The images are written byte by byte with ``struct`` so every header field is chosen, not
inherited from a toolchain: a README demo needs one image that passes the signing rules and
one that fails them, and the edge-case tests need to know exactly what is in each.

- ``hello-nx.efi``: x86-64 EFI application, 4 KiB SectionAlignment, NX_COMPAT, ``.text`` RX,
  ``.data`` RW, ``.sbat`` R (valid SBAT CSV), ``.reloc`` R (one DIR64 fixup).
- ``legacy-wx.efi``: 512-byte SectionAlignment, no NX_COMPAT, one RWX section, ``.reloc``.
- ``hello-nx.signed.efi``: ``hello-nx.efi`` signed with ``sbsign`` by the test db key.
- ``test-ca.{pem,der}``, ``test-db.{pem,der}``, ``keys/test-{ca,db}.key``: the test PKI.

Deterministic: the unsigned images depend on nothing but this script. Keys are generated
once (RSA key generation cannot be seeded) and then reused from keys/; certificates have fixed
serials and validity, and RSA PKCS#1 v1.5 signatures are deterministic, so they come out
identical. sbsign puts a signingTime into the signature, so the signed image is kept as long as
it still verifies with the db certificate and, stripped of its signature, equals hello-nx.efi;
rerunning the script therefore rewrites identical bytes. ``--new-keys`` regenerates the keys
(and so the certificates and the signature); ``--check`` rebuilds into a temporary directory and
fails if anything differs from the committed files.

Needs: cryptography (a fwtools dependency), sbsign/sbverify (Debian sbsigntool), objdump
(binutils) and pefile for validation.
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE: Final = Path(__file__).resolve().parent
SAMPLE: Final = HERE / "sample"

SBAT_CSV: Final = (
    b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
    b"fwtools-sample,1,fwtools,fwtools-sample,0.1,https://example.invalid\n"
)

# --- PE/COFF constants (Microsoft PE Format specification) --------------------------------

IMAGE_FILE_MACHINE_AMD64: Final = 0x8664
IMAGE_FILE_EXECUTABLE_IMAGE: Final = 0x0002
IMAGE_FILE_LARGE_ADDRESS_AWARE: Final = 0x0020
IMAGE_FILE_DEBUG_STRIPPED: Final = 0x0200
PE32PLUS_MAGIC: Final = 0x20B
IMAGE_SUBSYSTEM_EFI_APPLICATION: Final = 10
DLLCHAR_DYNAMIC_BASE: Final = 0x0040
DLLCHAR_NX_COMPAT: Final = 0x0100

SCN_CNT_CODE: Final = 0x00000020
SCN_CNT_INITIALIZED_DATA: Final = 0x00000040
SCN_MEM_DISCARDABLE: Final = 0x02000000
SCN_MEM_EXECUTE: Final = 0x20000000
SCN_MEM_READ: Final = 0x40000000
SCN_MEM_WRITE: Final = 0x80000000

IMAGE_DIRECTORY_ENTRY_BASERELOC: Final = 5
NUMBER_OF_RVA_AND_SIZES: Final = 16
IMAGE_REL_BASED_ABSOLUTE: Final = 0
IMAGE_REL_BASED_DIR64: Final = 10

# Non-zero so the DIR64 fixup holds a visibly absolute address; firmware relocates anyway.
IMAGE_BASE: Final = 0x10000000

DOS_HEADER: Final = struct.Struct("<2s13H4HHH10HI")  # IMAGE_DOS_HEADER, 64 bytes
COFF_HEADER: Final = struct.Struct("<HHIIIHH")  # IMAGE_FILE_HEADER, 20 bytes
# IMAGE_OPTIONAL_HEADER64 up to NumberOfRvaAndSizes, 112 bytes.
OPTIONAL_HEADER64: Final = struct.Struct("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII")
DATA_DIRECTORY: Final = struct.Struct("<II")
SECTION_HEADER: Final = struct.Struct("<8sIIIIIIHHI")  # IMAGE_SECTION_HEADER, 40 bytes
BASE_RELOC_BLOCK: Final = struct.Struct("<II")

# The classic MS-DOS stub: prints the message and exits. e_lfanew follows it at 0x80.
DOS_STUB: Final = (
    bytes.fromhex("0e1fba0e00b409cd21b8014ccd21")
    + b"This program cannot be run in DOS mode.\r\r\n$"
).ljust(0x40, b"\0")
E_LFANEW: Final = DOS_HEADER.size + len(DOS_STUB)
CHECKSUM_OFFSET: Final = E_LFANEW + 4 + COFF_HEADER.size + 64

# --- a tiny linker ---------------------------------------------------------------------


def align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


@dataclass(frozen=True)
class Section:
    name: str
    characteristics: int
    # Builds the raw bytes given every section's RVA, because code and relocations refer to
    # addresses in other sections. Must return the same length for any RVAs.
    build: Callable[[dict[str, int]], bytes]


@dataclass(frozen=True)
class Image:
    data: bytes
    rvas: dict[str, int]


def pe_checksum(data: bytes, checksum_offset: int) -> int:
    """The PE CheckSum (imagehlp CheckSumMappedFile): 16-bit one's-complement-style sum of
    the file with the CheckSum field taken as zero, folded to 16 bits, plus the file length.
    """
    buf = bytearray(data)
    buf[checksum_offset : checksum_offset + 4] = b"\0\0\0\0"
    if len(buf) % 2:
        buf.append(0)
    total = 0
    for (word,) in struct.iter_unpack("<H", buf):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return (total & 0xFFFF) + len(data)


def link(
    sections: list[Section],
    *,
    entry: str,
    section_alignment: int,
    file_alignment: int,
    dll_characteristics: int,
    reloc: str | None,
) -> Image:
    headers_len = E_LFANEW + 4 + COFF_HEADER.size + OPTIONAL_HEADER64.size
    headers_len += NUMBER_OF_RVA_AND_SIZES * DATA_DIRECTORY.size
    headers_len += len(sections) * SECTION_HEADER.size
    size_of_headers = align(headers_len, file_alignment)

    # Pass 1 sizes each section (with placeholder RVAs), pass 2 builds it at its real RVA.
    sizes = [len(s.build(dict.fromkeys((t.name for t in sections), 0))) for s in sections]
    rvas: dict[str, int] = {}
    rva = align(size_of_headers, section_alignment)
    for s, size in zip(sections, sizes, strict=True):
        rvas[s.name] = rva
        rva += align(size, section_alignment)
    size_of_image = rva
    bodies = [s.build(rvas) for s in sections]
    for s, body, size in zip(sections, bodies, sizes, strict=True):
        assert len(body) == size, f"{s.name} changed size between passes"

    table = bytearray()
    raw = bytearray()
    offset = size_of_headers
    size_of_code = size_of_init = 0
    for s, body in zip(sections, bodies, strict=True):
        raw_size = align(len(body), file_alignment)
        table += SECTION_HEADER.pack(
            s.name.encode().ljust(8, b"\0"), len(body), rvas[s.name], raw_size, offset,
            0, 0, 0, 0, s.characteristics,
        )
        raw += body.ljust(raw_size, b"\0")
        offset += raw_size
        if s.characteristics & SCN_CNT_CODE:
            size_of_code += raw_size
        if s.characteristics & SCN_CNT_INITIALIZED_DATA:
            size_of_init += raw_size

    dirs = [(0, 0)] * NUMBER_OF_RVA_AND_SIZES
    if reloc is not None:
        dirs[IMAGE_DIRECTORY_ENTRY_BASERELOC] = (
            rvas[reloc], len(bodies[[s.name for s in sections].index(reloc)])
        )
    code_sections = [s.name for s in sections if s.characteristics & SCN_CNT_CODE]

    dos = DOS_HEADER.pack(
        b"MZ", 0x90, 3, 0, 4, 0, 0xFFFF, 0, 0xB8, 0, 0, 0, 0x40, 0,
        0, 0, 0, 0, 0, 0, *([0] * 10), E_LFANEW,
    )
    coff = COFF_HEADER.pack(
        IMAGE_FILE_MACHINE_AMD64, len(sections), 0, 0, 0,
        OPTIONAL_HEADER64.size + NUMBER_OF_RVA_AND_SIZES * DATA_DIRECTORY.size,
        IMAGE_FILE_EXECUTABLE_IMAGE | IMAGE_FILE_LARGE_ADDRESS_AWARE | IMAGE_FILE_DEBUG_STRIPPED,
    )
    opt = OPTIONAL_HEADER64.pack(
        PE32PLUS_MAGIC, 0, 0, size_of_code, size_of_init, 0,
        rvas[entry], rvas[code_sections[0]], IMAGE_BASE,
        section_alignment, file_alignment,
        0, 0, 0, 0, 0, 0, 0,  # OS / image / subsystem versions, Win32VersionValue
        size_of_image, size_of_headers, 0,  # CheckSum is filled in below
        IMAGE_SUBSYSTEM_EFI_APPLICATION, dll_characteristics,
        0x100000, 0x1000, 0x100000, 0x1000, 0, NUMBER_OF_RVA_AND_SIZES,
    )
    headers = dos + DOS_STUB + b"PE\0\0" + coff + opt
    headers += b"".join(DATA_DIRECTORY.pack(*d) for d in dirs) + table
    assert len(headers) == headers_len
    image = bytearray(headers.ljust(size_of_headers, b"\0") + raw)
    struct.pack_into("<I", image, CHECKSUM_OFFSET, pe_checksum(bytes(image), CHECKSUM_OFFSET))
    return Image(bytes(image), rvas)


def reloc_block(page_rva: int, dir64_offsets: list[int]) -> bytes:
    """One IMAGE_BASE_RELOCATION block; padded with an ABSOLUTE entry to 32-bit size."""
    entries = [IMAGE_REL_BASED_DIR64 << 12 | off for off in dir64_offsets]
    if len(entries) % 2:
        entries.append(IMAGE_REL_BASED_ABSOLUTE << 12)
    body = b"".join(struct.pack("<H", e) for e in entries)
    return BASE_RELOC_BLOCK.pack(page_rva, BASE_RELOC_BLOCK.size + len(body)) + body


# --- the program ---------------------------------------------------------------------------
# efi_main(ImageHandle, SystemTable): SystemTable->ConOut->OutputString(ConOut, msg);
# return EFI_SUCCESS. The message pointer is loaded from memory rather than with a
# RIP-relative LEA, so the image genuinely needs its DIR64 relocation.


def efi_main(code_rva: int, msg_ptr_rva: int) -> bytes:
    code = bytearray()
    code += bytes.fromhex("4883ec28")  # sub rsp, 0x28 (shadow space + alignment)
    code += bytes.fromhex("488b4a40")  # mov rcx, [rdx+0x40] ; SystemTable->ConOut
    disp = msg_ptr_rva - (code_rva + len(code) + 7)
    code += bytes.fromhex("488b15") + struct.pack("<i", disp)  # mov rdx, [rip+msg_ptr]
    code += bytes.fromhex("ff5108")  # call [rcx+8] ; ConOut->OutputString
    code += bytes.fromhex("31c0")  # xor eax, eax ; EFI_SUCCESS
    code += bytes.fromhex("4883c428")  # add rsp, 0x28
    code += bytes.fromhex("c3")  # ret
    return bytes(code)


def message(text: str) -> bytes:
    return (text + "\r\n\0").encode("utf-16-le")


def build_hello_nx() -> bytes:
    msg = message("Hello from fwtools: NX_COMPAT, 4 KiB aligned, W^X sections")

    def text(r: dict[str, int]) -> bytes:
        return efi_main(r[".text"], r[".data"])

    def data(r: dict[str, int]) -> bytes:
        # msg_ptr (absolute, relocated at load time) followed by the UCS-2 string.
        return struct.pack("<Q", IMAGE_BASE + r[".data"] + 8) + msg

    def reloc(r: dict[str, int]) -> bytes:
        return reloc_block(r[".data"], [0])

    return link(
        [
            Section(".text", SCN_CNT_CODE | SCN_MEM_EXECUTE | SCN_MEM_READ, text),
            Section(".data", SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ | SCN_MEM_WRITE, data),
            Section(".sbat", SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ, lambda r: SBAT_CSV),
            Section(
                ".reloc",
                SCN_CNT_INITIALIZED_DATA | SCN_MEM_DISCARDABLE | SCN_MEM_READ,
                reloc,
            ),
        ],
        entry=".text",
        section_alignment=0x1000,
        file_alignment=0x200,
        dll_characteristics=DLLCHAR_NX_COMPAT | DLLCHAR_DYNAMIC_BASE,
        reloc=".reloc",
    ).data


def build_legacy_wx() -> bytes:
    # Code, the message pointer and the message share one RWX section, as in old gnu-efi
    # builds linked with a single output section; 512-byte alignment (== FileAlignment, as
    # the PE spec requires below the page size) means no page holds only code.
    msg = message("Hello from fwtools: legacy image, one RWX section")
    code_len = len(efi_main(0, 0))
    ptr_off = align(code_len, 8)

    def text(r: dict[str, int]) -> bytes:
        base = r[".text"]
        body = efi_main(base, base + ptr_off).ljust(ptr_off, b"\xcc")
        return body + struct.pack("<Q", IMAGE_BASE + base + ptr_off + 8) + msg

    def reloc(r: dict[str, int]) -> bytes:
        # Pages are 4 KiB regardless of SectionAlignment.
        target = r[".text"] + ptr_off
        page = target & ~0xFFF
        return reloc_block(page, [target - page])

    return link(
        [
            Section(
                ".text",
                SCN_CNT_CODE | SCN_CNT_INITIALIZED_DATA
                | SCN_MEM_EXECUTE | SCN_MEM_READ | SCN_MEM_WRITE,
                text,
            ),
            Section(
                ".reloc",
                SCN_CNT_INITIALIZED_DATA | SCN_MEM_DISCARDABLE | SCN_MEM_READ,
                reloc,
            ),
        ],
        entry=".text",
        section_alignment=0x200,
        file_alignment=0x200,
        dll_characteristics=0,
        reloc=".reloc",
    ).data


# --- the test PKI ----------------------------------------------------------------------

NOT_BEFORE: Final = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NOT_AFTER: Final = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)


def load_or_make_key(path: Path, new: bool) -> rsa.RSAPrivateKey:
    if path.is_file() and not new:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey), path
        return key
    # RSA-2048: the size UEFI's db certificates are required to support.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return key


def name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fwtools test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_certs(
    ca_key: rsa.RSAPrivateKey, db_key: rsa.RSAPrivateKey
) -> tuple[x509.Certificate, x509.Certificate]:
    ca_name = name("fwtools test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(0x1001)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    db = (
        x509.CertificateBuilder()
        .subject_name(name("fwtools test db signer"))
        .issuer_name(ca_name)
        .public_key(db_key.public_key())
        .serial_number(0x1002)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(db_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca, db


def write_cert(cert: x509.Certificate, stem: Path) -> None:
    stem.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    stem.with_suffix(".der").write_bytes(cert.public_bytes(serialization.Encoding.DER))


# --- build, validate -----------------------------------------------------------------------


def run(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        sys.exit(f"make_sample: {cmd[0]} not found (apt-get install sbsigntool binutils)")
    if proc.returncode != 0:
        sys.exit(f"make_sample: {' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def validate(out: Path) -> None:
    import pefile  # only needed here; keeps --help fast and pefile out of the build path

    for fname in ("hello-nx.efi", "legacy-wx.efi", "hello-nx.signed.efi"):
        path = out / fname
        assert path.stat().st_size < 16 * 1024, f"{fname} is not small"
        pe = pefile.PE(str(path))
        try:
            # pefile's zero-byte heuristic fires on any tiny image (alignment padding is
            # zeros); its W+X warning is the very point of legacy-wx.efi.
            warnings = [w for w in pe.get_warnings() if not w.startswith("Byte 0x00 makes up")]
            wx = [w for w in warnings if "IMAGE_SCN_MEM_WRITE and IMAGE_SCN_MEM_EXECUTE" in w]
            assert len(wx) == (fname == "legacy-wx.efi"), f"{fname}: W+X warnings {wx}"
            assert warnings == wx, f"{fname}: pefile warns {warnings}"
            assert pe.verify_checksum(), f"{fname}: bad CheckSum"
            assert pe.FILE_HEADER.Machine == IMAGE_FILE_MACHINE_AMD64
            assert pe.OPTIONAL_HEADER.Subsystem == IMAGE_SUBSYSTEM_EFI_APPLICATION
            relocs = [e for b in pe.DIRECTORY_ENTRY_BASERELOC for e in b.entries if e.type]
            assert [e.type for e in relocs] == [IMAGE_REL_BASED_DIR64], fname
        finally:
            pe.close()
        dump = run(["objdump", "-x", str(path)])
        assert "file format pei-x86-64" in dump, f"objdump does not take {fname}"
    signed = str(out / "hello-nx.signed.efi")
    for anchor in ("test-db.pem", "test-ca.pem"):
        ok = run(["sbverify", "--cert", str(out / anchor), signed])
        assert "Signature verification OK" in ok, ok
    listing = run(["sbverify", "--list", signed])
    assert "fwtools test db signer" in listing, listing
    # The unsigned image must not verify, or the check above proves nothing.
    proc = subprocess.run(
        ["sbverify", "--cert", str(out / "test-db.pem"), str(out / "hello-nx.efi")],
        capture_output=True, check=False,
    )
    assert proc.returncode != 0, "sbverify accepted an unsigned image"


def build(out: Path, keys_from: Path, *, new_keys: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "keys").mkdir(exist_ok=True)
    (out / "hello-nx.efi").write_bytes(build_hello_nx())
    (out / "legacy-wx.efi").write_bytes(build_legacy_wx())

    ca_key = load_or_make_key(keys_from / "keys" / "test-ca.key", new_keys)
    db_key = load_or_make_key(keys_from / "keys" / "test-db.key", new_keys)
    if keys_from != out:
        for k in ("test-ca.key", "test-db.key"):
            shutil.copyfile(keys_from / "keys" / k, out / "keys" / k)
    ca, db = make_certs(ca_key, db_key)
    write_cert(ca, out / "test-ca")
    write_cert(db, out / "test-db")

    signed = out / "hello-nx.signed.efi"
    previous = keys_from / "hello-nx.signed.efi"
    if not new_keys and previous.is_file() and same_signed_image(previous, out):
        # sbsign stamps a signingTime into the PKCS#7, so re-signing would change the file
        # on every run; keep the committed signature while it still fits image and key.
        if previous != signed:
            shutil.copyfile(previous, signed)
    else:
        signed.unlink(missing_ok=True)
        run([
            "sbsign", "--key", str(out / "keys" / "test-db.key"),
            "--cert", str(out / "test-db.pem"), "--output", str(signed), str(out / "hello-nx.efi"),
        ])
    validate(out)


def same_signed_image(signed: Path, out: Path) -> bool:
    """True if ``signed`` is out/hello-nx.efi plus a signature that verifies with out's db
    certificate: stripping the signature (sbattach --remove) must give the image back.
    """
    proc = subprocess.run(
        ["sbverify", "--cert", str(out / "test-db.pem"), str(signed)],
        capture_output=True, check=False,
    )
    if proc.returncode != 0:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / "stripped.efi"
        shutil.copyfile(signed, stripped)
        run(["sbattach", "--remove", str(stripped)])
        return stripped.read_bytes() == (out / "hello-nx.efi").read_bytes()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--new-keys", action="store_true", help="generate new test keys")
    ap.add_argument(
        "--check", action="store_true",
        help="rebuild into a temporary directory and compare with testdata/sample/",
    )
    args = ap.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp), SAMPLE, new_keys=False)
            names = sorted(
                str(p.relative_to(tmp)) for p in Path(tmp).rglob("*") if p.is_file()
            )
            _, mismatch, errors = filecmp.cmpfiles(tmp, SAMPLE, names, shallow=False)
            if mismatch or errors:
                print(f"make_sample: differs from testdata/sample: {mismatch + errors}")
                return 1
        print(f"make_sample: testdata/sample is up to date ({len(names)} files)")
        return 0
    build(SAMPLE, SAMPLE, new_keys=args.new_keys)
    for p in sorted(SAMPLE.rglob("*")):
        if p.is_file():
            print(f"{p.stat().st_size:6d}  {p.relative_to(HERE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
