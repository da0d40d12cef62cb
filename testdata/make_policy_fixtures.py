#!/usr/bin/env python3
"""Make testdata/policy/: tiny synthetic PE32+ images, each breaking (or keeping) one fw-check
rule, plus SbatLevel payloads. Written field by field with struct (no compiler), from the PE
specification, independent of fwtools.

``good.efi`` passes every rule of every shipped profile except ``signed`` (and
``good-signed.efi``, signed with sbsign by testdata/sample's test db key, passes that too);
each ``bad-*.efi`` differs from it in one deliberate way, named by the rule it breaks.

Usage: .venv/bin/python testdata/make_policy_fixtures.py  (needs sbsign)
"""

from __future__ import annotations

import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from _fixture_tools import (
    COFF_HEADER,
    DATA_DIRECTORIES_FIELD,
    DATA_DIRECTORY,
    DLLCHAR_DYNAMIC_BASE,
    DLLCHAR_NX_COMPAT,
    IMAGE_DIRECTORY_ENTRY_BASERELOC,
    IMAGE_DIRECTORY_ENTRY_SECURITY,
    IMAGE_FILE_MACHINE_AMD64,
    IMAGE_SUBSYSTEM_EFI_APPLICATION,
    PE_SIGNATURE,
    SCN_CNT_CODE,
    SCN_CNT_INITIALIZED_DATA,
    SCN_MEM_DISCARDABLE,
    SCN_MEM_EXECUTE,
    SCN_MEM_READ,
    SCN_MEM_WRITE,
    FixtureDir,
    align,
    coff_header,
    dos_header,
    headers_length,
    optional_header64,
    patched,
    require_tools,
    sbsign_reproducibly,
    section_header,
    set_checksum,
)

HERE: Final = Path(__file__).resolve().parent
OUT: Final = HERE / "policy"
SAMPLE: Final = HERE / "sample"
E_LFANEW: Final = 0x40
OPT_OFFSET: Final = E_LFANEW + len(PE_SIGNATURE) + COFF_HEADER.size
SECURITY_ENTRY: Final = (
    OPT_OFFSET + DATA_DIRECTORIES_FIELD + IMAGE_DIRECTORY_ENTRY_SECURITY * DATA_DIRECTORY.size
)
MACHINE_AARCH64: Final = 0xAA64

CODE: Final = SCN_CNT_CODE | SCN_MEM_EXECUTE | SCN_MEM_READ
DATA: Final = SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ | SCN_MEM_WRITE
RODATA: Final = SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ
RELOC: Final = RODATA | SCN_MEM_DISCARDABLE

SBAT_GOOD: Final = (
    b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
    b"grub,5,Free Software Foundation,grub,2.12,https://www.gnu.org/software/grub/\n"
    b"grub.fwtools,1,fwtools,grub,2.12-1,https://example.invalid/\n"
)
SBAT_OLD_GRUB: Final = SBAT_GOOD.replace(b"grub,5,", b"grub,3,")
SBAT_NO_VENDOR: Final = b"\n".join(SBAT_GOOD.split(b"\n")[:2]) + b"\n"
SBAT_MALFORMED: Final = SBAT_GOOD + b"broken,1,only-three\n"
# One relocation block: page 0x1000, one DIR64 entry and an ABSOLUTE pad.
RELOC_BLOCK: Final = struct.pack("<IIHH", 0x1000, 12, 0xA << 12 | 0x10, 0)


@dataclass
class Sect:
    name: str
    va: int
    vsize: int
    data: bytes
    flags: int


def standard(sbat: bytes | None = SBAT_GOOD) -> list[Sect]:
    text = b"\x31\xc0\xc3".ljust(0x20, b"\xcc")  # xor eax, eax; ret
    out = [Sect(".text", 0x1000, len(text), text, CODE),
           Sect(".data", 0x2000, 0x40, bytes(0x40), DATA)]
    if sbat is not None:
        out.append(Sect(".sbat", 0x3000, len(sbat), sbat, RODATA))
    out.append(Sect(".reloc", 0x4000, len(RELOC_BLOCK), RELOC_BLOCK, RELOC))
    return out


def build(
    sections: list[Sect],
    *,
    section_alignment: int = 0x1000,
    file_alignment: int = 0x200,
    dll: int = DLLCHAR_NX_COMPAT | DLLCHAR_DYNAMIC_BASE,
    subsystem: int = IMAGE_SUBSYSTEM_EFI_APPLICATION,
    machine: int = IMAGE_FILE_MACHINE_AMD64,
    image_base: int = 0,
    entry: int | None = None,
    size_of_image: int | None = None,
    reloc: bool = True,
) -> bytes:
    """A PE32+ image with ``sections`` (VAs as given), raw data packed after the headers."""
    headers_len = headers_length(E_LFANEW, len(sections))
    size_of_headers = align(headers_len, file_alignment)
    raw = bytearray()
    table = bytearray()
    offset = size_of_headers
    for s in sections:
        raw_size = align(len(s.data), file_alignment)
        table += section_header(s.name.encode(), s.vsize, s.va, raw_size, offset, s.flags)
        raw += s.data.ljust(raw_size, b"\0")
        offset += raw_size
    code = [s for s in sections if s.flags & SCN_CNT_CODE]
    rel = next((s for s in sections if s.name == ".reloc"), None)
    dirs = {IMAGE_DIRECTORY_ENTRY_BASERELOC: (rel.va, rel.vsize)} if rel and reloc else {}
    end = max(s.va + s.vsize for s in sections)
    opt = optional_header64(
        entry=code[0].va if entry is None else entry,
        base_of_code=code[0].va if code else 0,
        image_base=image_base,
        image_size=align(end, section_alignment) if size_of_image is None else size_of_image,
        headers_size=size_of_headers,
        code_size=sum(align(len(s.data), file_alignment) for s in code),
        initialized_data_size=sum(align(len(s.data), file_alignment) for s in sections
                                  if s.flags & SCN_CNT_INITIALIZED_DATA),
        section_alignment=section_alignment,
        file_alignment=file_alignment,
        dll_characteristics=dll,
        directories=dirs,
        subsystem=subsystem,
    )
    headers = (dos_header(E_LFANEW) + PE_SIGNATURE + coff_header(len(sections), machine=machine)
               + opt + table)  # fmt: skip
    assert len(headers) == headers_len
    image = bytearray(headers.ljust(size_of_headers, b"\0") + raw)
    set_checksum(image)
    return bytes(image)


def corrupt_signature(signed: bytes) -> bytes:
    """Flip the last byte of the PKCS#7 blob: sbsign's SignerInfo ends with the signature."""
    table, _ = DATA_DIRECTORY.unpack_from(signed, SECURITY_ENTRY)
    (length,) = struct.unpack_from("<I", signed, table)
    pos = table + length - 1
    return bytes(patched(signed, pos, "<B", signed[pos] ^ 0x55))


def main() -> int:
    require_tools("sbsign", "sbverify", "sbattach", install="apt-get install sbsigntool")
    # The committed signed image is kept while it still signs the same image (see
    # sbsign_reproducibly); read it before the directory is rebuilt.
    kept = tempfile.TemporaryDirectory()
    previous = Path(kept.name, "good-signed.efi")
    if (OUT / "good-signed.efi").is_file():
        shutil.copyfile(OUT / "good-signed.efi", previous)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    fx = FixtureDir(OUT)
    sects = standard()

    def put(name: str, data: bytes, what: str) -> None:
        fx.write(name, data, what)

    good = build(sects)
    put("good.efi", good, "passes every rule of every shipped profile except 'signed'")
    put("bad-nx-compat.efi", build(sects, dll=DLLCHAR_DYNAMIC_BASE), "NX_COMPAT not set")
    small = [Sect(s.name, 0x200 * (i + 1), s.vsize, s.data, s.flags)
             for i, s in enumerate(sects)]
    small[-1] = Sect(".reloc", small[-1].va, small[-1].vsize,
                     struct.pack("<IIHH", 0, 12, 0xA << 12 | 0x400, 0), RELOC)
    put("bad-section-alignment.efi", build(small, section_alignment=0x200),
        "SectionAlignment 0x200 (also: headers share the page with .text at 0x200)")
    wx = [Sect(s.name, s.va, s.vsize, s.data, s.flags | SCN_MEM_WRITE if s.name == ".text"
               else s.flags) for s in sects]
    put("bad-wx-section.efi", build(wx), ".text is RWX")
    mixed = [Sect(s.name, s.va, s.vsize, s.data,
                  s.flags | SCN_CNT_INITIALIZED_DATA if s.name == ".text" else s.flags)
             for s in sects]
    put("bad-code-data-mixed.efi", build(mixed), ".text flagged code and initialized data")
    unaligned = [Sect(s.name, 0x2800 if s.name == ".data" else s.va, s.vsize, s.data, s.flags)
                 for s in sects]
    put("bad-section-page-aligned.efi", build(unaligned), ".data at RVA 0x2800")
    put("bad-image-base.efi", build(sects, image_base=0x10000000), "ImageBase 0x10000000")
    put("bad-subsystem.efi", build(sects, subsystem=3), "subsystem 3 (Windows console)")
    put("good-driver.efi", build(sects, subsystem=11), "a boot-service driver (subsystem 11)")
    put("bad-runtime-aa64.efi", build(sects, subsystem=12, machine=MACHINE_AARCH64),
        "AArch64 runtime driver with 4 KiB SectionAlignment (64 KiB required)")
    put("good-runtime-aa64.efi",
        build([Sect(s.name, s.va * 0x10, s.vsize, s.data, s.flags) for s in sects[:-1]]
              + [Sect(".reloc", 0x40000, len(RELOC_BLOCK),
                      struct.pack("<IIHH", 0x10000, 12, 0xA << 12 | 0x10, 0), RELOC)],
              subsystem=12, machine=MACHINE_AARCH64, section_alignment=0x10000),
        "AArch64 runtime driver with 64 KiB SectionAlignment")
    put("bad-relocations.efi", build(sects, reloc=False), "no BASERELOC directory entry")
    put("bad-sections-in-image.efi", build(sects, size_of_image=0x3000),
        "SizeOfImage 0x3000 cuts off .sbat and .reloc")
    overlap = [Sect(s.name, s.va, 0x1800 if s.name == ".text" else s.vsize, s.data, s.flags)
               for s in sects]
    put("bad-sections-overlap.efi", build(overlap), ".text VirtualSize 0x1800 runs into .data")
    put("bad-headers-not-executable.efi",
        build([Sect(".text", 0x400, sects[0].vsize, sects[0].data, CODE), *sects[1:]]),
        ".text at RVA 0x400, inside the headers' page")
    put("bad-entry-point.efi", build(sects, entry=0x2000), "entry point in .data (RW-)")
    anomaly = bytearray(good)
    # NumberOfRvaAndSizes, the last field before the data directories.
    struct.pack_into("<I", anomaly, OPT_OFFSET + DATA_DIRECTORIES_FIELD - 4, 17)
    set_checksum(anomaly)
    put("bad-pe-anomaly.efi", bytes(anomaly), "NumberOfRvaAndSizes 17 with room for 16")
    put("bad-sbat-present.efi", build(standard(None)), "no .sbat section")
    put("bad-sbat-well-formed.efi", build(standard(SBAT_MALFORMED)),
        ".sbat with a three-field row")
    put("bad-sbat-vendor-row.efi", build(standard(SBAT_NO_VENDOR)),
        ".sbat with grub,5 but no grub.<vendor> row")
    put("old-grub.efi", build(standard(SBAT_OLD_GRUB)),
        ".sbat with grub,3 and grub.fwtools,1: revoked by any level with grub >= 4")

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "good.efi")
        src.write_bytes(good)
        dst = OUT / "good-signed.efi"
        sbsign_reproducibly(src, dst, key=SAMPLE / "keys" / "test-db.key",
                            cert=SAMPLE / "test-db.pem", previous=previous)
        fx.record("good-signed.efi", "good.efi signed by sample/test-db.pem (sbsign)")
    kept.cleanup()
    signed = dst.read_bytes()
    data_off = 0x400 + 0x10  # headers 0x200, .text 0x200, then .data
    put("bad-digest-mismatch.efi", bytes(patched(signed, data_off, "<B", 0x42)),
        "good-signed.efi with one byte of .data changed after signing")
    put("bad-signature-invalid.efi", corrupt_signature(signed),
        "good-signed.efi with the last byte of the RSA signature flipped")

    put("sbatlevel-grub4.txt", b"sbat,1,2024040900\nshim,4\ngrub,4\ngrub.peimage,2\n",
        "SbatLevel payload 2024040900 (revokes grub,3)")
    put("sbatlevel-original.txt", b"sbat,1,2021030218\n", "the original, empty SbatLevel")
    put("waivers.toml", (
        b'[[waiver]]\npath = "*/bad-nx-compat.efi"\nrule = "nx-compat"\n'
        b'reason = "vendor binary, NX fix scheduled"\nexpires = 2030-01-01\n\n'
        b'[[waiver]]\npath = "*/bad-wx-section.efi"\nrule = "wx-section"\n'
        b'reason = "old waiver"\nexpires = 2020-01-01\n'), "one live and one expired waiver")
    put("extends.toml", (
        b'name = "my-distro"\nextends = "uefi-ca"\n\n[rules.nx-compat]\nseverity = "warning"\n'
        b'rationale = "shim NX exception"\n\n[rules.sbat-present]\nseverity = "error"\n'),
        "a user profile extending uefi-ca")
    fx.write_manifest()
    print(f"wrote {len(fx)} fixtures to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
