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
import filecmp
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from _fixture_tools import (
    DLLCHAR_DYNAMIC_BASE,
    DLLCHAR_NX_COMPAT,
    IMAGE_DIRECTORY_ENTRY_BASERELOC,
    IMAGE_FILE_MACHINE_AMD64,
    IMAGE_SUBSYSTEM_EFI_APPLICATION,
    PE_SIGNATURE,
    SCN_CNT_CODE,
    SCN_CNT_INITIALIZED_DATA,
    SCN_MEM_DISCARDABLE,
    SCN_MEM_EXECUTE,
    SCN_MEM_READ,
    SCN_MEM_WRITE,
    PrivateKey,
    align,
    certificate_builder,
    coff_header,
    headers_length,
    load_or_make_key,
    optional_header64,
    require_tools,
    run,
    sbsign_reproducibly,
    section_header,
    set_checksum,
    succeeds,
    write_cert,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

HERE: Final = Path(__file__).resolve().parent
SAMPLE: Final = HERE / "sample"

SBAT_CSV: Final = (
    b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
    b"fwtools-sample,1,fwtools,fwtools-sample,0.1,https://example.invalid\n"
)

# --- a tiny linker ---------------------------------------------------------------------

IMAGE_REL_BASED_ABSOLUTE: Final = 0
IMAGE_REL_BASED_DIR64: Final = 10
BASE_RELOC_BLOCK: Final = struct.Struct("<II")

# Non-zero so the DIR64 fixup holds a visibly absolute address; firmware relocates anyway.
IMAGE_BASE: Final = 0x10000000

DOS_HEADER: Final = struct.Struct("<2s13H4HHH10HI")  # IMAGE_DOS_HEADER, 64 bytes
# The classic MS-DOS stub: prints the message and exits. e_lfanew follows it at 0x80.
DOS_STUB: Final = (
    bytes.fromhex("0e1fba0e00b409cd21b8014ccd21")
    + b"This program cannot be run in DOS mode.\r\r\n$"
).ljust(0x40, b"\0")
E_LFANEW: Final = DOS_HEADER.size + len(DOS_STUB)


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


def link(
    sections: list[Section],
    *,
    entry: str,
    section_alignment: int,
    file_alignment: int,
    dll_characteristics: int,
    reloc: str | None,
) -> Image:
    headers_len = headers_length(E_LFANEW, len(sections))
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
        table += section_header(
            s.name.encode(), len(body), rvas[s.name], raw_size, offset, s.characteristics
        )
        raw += body.ljust(raw_size, b"\0")
        offset += raw_size
        if s.characteristics & SCN_CNT_CODE:
            size_of_code += raw_size
        if s.characteristics & SCN_CNT_INITIALIZED_DATA:
            size_of_init += raw_size

    dirs: dict[int, tuple[int, int]] = {}
    if reloc is not None:
        dirs[IMAGE_DIRECTORY_ENTRY_BASERELOC] = (
            rvas[reloc], len(bodies[[s.name for s in sections].index(reloc)])
        )
    code_sections = [s.name for s in sections if s.characteristics & SCN_CNT_CODE]

    dos = DOS_HEADER.pack(
        b"MZ", 0x90, 3, 0, 4, 0, 0xFFFF, 0, 0xB8, 0, 0, 0, 0x40, 0,
        0, 0, 0, 0, 0, 0, *([0] * 10), E_LFANEW,
    )
    opt = optional_header64(
        entry=rvas[entry],
        base_of_code=rvas[code_sections[0]],
        image_base=IMAGE_BASE,
        image_size=size_of_image,
        headers_size=size_of_headers,
        code_size=size_of_code,
        initialized_data_size=size_of_init,
        section_alignment=section_alignment,
        file_alignment=file_alignment,
        dll_characteristics=dll_characteristics,
        linker_version=(0, 0),
        stack_and_heap=(0x100000, 0x1000, 0x100000, 0x1000),
        directories=dirs,
    )
    headers = dos + DOS_STUB + PE_SIGNATURE + coff_header(len(sections)) + opt + table
    assert len(headers) == headers_len
    image = bytearray(headers.ljust(size_of_headers, b"\0") + raw)
    set_checksum(image)
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

# The committed keys are in OpenSSL's traditional "RSA PRIVATE KEY" form; --new-keys keeps it.
KEY_FORMAT: Final = serialization.PrivateFormat.TraditionalOpenSSL


def make_certs(ca_key: PrivateKey, db_key: PrivateKey) -> tuple[x509.Certificate, x509.Certificate]:
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        certificate_builder(
            "fwtools test CA", 0x1001, ca_key.public_key(), ca=True, path_length=0, usage=True
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    db = (
        certificate_builder(
            "fwtools test db signer",
            0x1002,
            db_key.public_key(),
            issuer=ca.subject,
            ca=False,
            usage=True,
        )
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


# --- build, validate -----------------------------------------------------------------------


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
        dump = run("objdump", "-x", path)
        assert "file format pei-x86-64" in dump, f"objdump does not take {fname}"
    signed = out / "hello-nx.signed.efi"
    for anchor in ("test-db.pem", "test-ca.pem"):
        ok = run("sbverify", "--cert", out / anchor, signed)
        assert "Signature verification OK" in ok, ok
    listing = run("sbverify", "--list", signed)
    assert "fwtools test db signer" in listing, listing
    # The unsigned image must not verify, or the check above proves nothing.
    assert not verifies(out / "hello-nx.efi", out), "sbverify accepted an unsigned image"


def build(out: Path, keys_from: Path, *, new_keys: bool) -> None:
    require_tools("sbsign", "sbverify", "sbattach", "objdump", install="sbsigntool binutils")
    out.mkdir(parents=True, exist_ok=True)
    (out / "keys").mkdir(exist_ok=True)
    (out / "hello-nx.efi").write_bytes(build_hello_nx())
    (out / "legacy-wx.efi").write_bytes(build_legacy_wx())

    keys = keys_from / "keys"
    ca_key = load_or_make_key(keys / "test-ca.key", new=new_keys, private_format=KEY_FORMAT)
    db_key = load_or_make_key(keys / "test-db.key", new=new_keys, private_format=KEY_FORMAT)
    if keys_from != out:
        for k in ("test-ca.key", "test-db.key"):
            shutil.copyfile(keys / k, out / "keys" / k)
    ca, db = make_certs(ca_key, db_key)
    write_cert(ca, out / "test-ca")
    write_cert(db, out / "test-db")

    signed = out / "hello-nx.signed.efi"
    if new_keys:
        signed.unlink(missing_ok=True)
    sbsign_reproducibly(out / "hello-nx.efi", signed, key=out / "keys" / "test-db.key",
                        cert=out / "test-db.pem",
                        previous=None if new_keys else keys_from / "hello-nx.signed.efi")
    validate(out)


def verifies(image: Path, out: Path) -> bool:
    """Whether sbverify accepts ``image`` with out's db certificate."""
    return succeeds("sbverify", "--cert", out / "test-db.pem", image)


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
