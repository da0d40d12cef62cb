#!/usr/bin/env python3
"""Build the PI firmware image fixtures in testdata/pi/ from the PI specification, with struct.

Independent of fwtools on purpose (an oracle for fwtools.formats.pi): volumes, FFS files and
sections are written from PI 1.8 volume 3 (edk2 MdePkg/Include/Pi/PiFirmwareVolume.h,
PiFirmwareFile.h); LZMA sections as BaseTools' LzmaCompress writes them (the .lzma header
with the real uncompressed size); EFI and Tiano streams with edk2's own compressors as
uefi-firmware-parser ships them (PyPI ``uefi_firmware``, the test extra:
``efi_compressor.EfiCompress``/``TianoCompress``); the PE images are testdata/sample/'s.

Well-formed:

- ``tiny.fd`` (64 KiB flash, two volumes): a 48 KiB FFS2 volume named ``TINY_GUID`` (extended
  header in a leading pad file, as GenFv puts it) holding
  ``HelloNx`` (DRIVER: PE32 hello-nx.efi, UI, VERSION "1.0", DXE_DEPEX TRUE END),
  ``LegacyWx`` (APPLICATION: legacy-wx.efi, the W+X image),
  ``TinyTe`` (PEIM: a 2-section AArch64 TE image whose .data is W+X),
  a FREEFORM file with a RAW section, a RAW file, a deleted DRIVER (state DELETED: not listed),
  ``StdCompressed`` (DRIVER whose sections are in an EFI standard COMPRESSION section),
  ``TianoDriver`` (DRIVER whose sections are in a Tiano GUID-defined section),
  a FREEFORM file with a Brotli GUID-defined section (garbage: not decoded),
  an FV_IMAGE file: LZMA GUID-defined section -> RAW + FIRMWARE_VOLUME_IMAGE -> inner FFS2
  volume ``INNER_GUID`` with ``InnerDriver`` (DRIVER: CRC32 GUID-defined section around PE32
  hello-nx.efi and a COMPRESSION type 0 section around its UI);
  an FV_IMAGE file with an LZMA+x86 (``D42AE6BD``) section -> FV with ``BcjDriver``
  (legacy-wx.efi, its bytes BCJ-converted before compression);
  then a 16 KiB FFS3 volume with ``LargeHeader`` (a DRIVER written with the large-file
  header, EFI_FFS_FILE_HEADER2).

- ``plain.fd`` (8 KiB): tiny.fd's inner volume in an FV_IMAGE section without compression,
  inside a DISPOSABLE section, beside the TE PEIM (a fuzzing seed whose nested structures
  mutations reach directly).

Hostile (each must fail with a ParseError naming the offset, never allocate their claims):

- ``truncated.fd``: tiny.fd cut at 40 KiB (inside the first volume);
- ``lzma-huge-declared.fd``: an LZMA section declaring 1 TiB of output;
- ``lzma-bomb.fd``: an LZMA section whose 300 MiB of zeros compress to ~45 KiB;
- ``nested-bomb.fd``: 14 volumes, each inside an LZMA section of the one before;
- ``huge-file-size.fd``: an FFS file claiming 16 MiB - 1 in a 4 KiB volume;
- ``huge-section-size.fd``: a section with ExtendedSize 0xFFFFFFF0;
- ``huge-fvlength.fd``: a volume header (valid checksum) with FvLength 2^62.

``--check`` rebuilds everything in memory and compares (the LZMA streams depend on liblzma's
version; a mismatch there is reported as such).
"""

from __future__ import annotations

import argparse
import lzma
import struct
import sys
import uuid
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "pi"
SAMPLE = HERE / "sample"

FFS2 = uuid.UUID("8c8ce578-8a3d-4f1c-9935-896185c32dd3")
FFS3 = uuid.UUID("5473c07a-3dcb-4dca-bd6f-1e9689e7349a")
LZMA = uuid.UUID("ee4e5898-3914-4259-9d6e-dc7bd79403cf")
LZMA_F86 = uuid.UUID("d42ae6bd-1352-4bfb-909a-ca72a6eae889")
CRC32 = uuid.UUID("fc1bcdb0-7d31-49aa-936a-a4600d9dd083")
PAD = uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff")

TINY_GUID = uuid.UUID("11111111-2222-3333-4444-555555555555")
INNER_GUID = uuid.UUID("66666666-7777-8888-9999-aaaaaaaaaaaa")
BCJ_FV_GUID = uuid.UUID("0bc10bc1-0bc1-0bc1-0bc1-0bc10bc10bc1")
HELLO = uuid.UUID("a0000000-0000-0000-0000-000000000001")
LEGACY = uuid.UUID("a0000000-0000-0000-0000-000000000002")
TINY_TE = uuid.UUID("a0000000-0000-0000-0000-000000000003")
FREEFORM = uuid.UUID("a0000000-0000-0000-0000-000000000004")
RAWFILE = uuid.UUID("a0000000-0000-0000-0000-000000000005")
DELETED = uuid.UUID("a0000000-0000-0000-0000-000000000006")
STDCOMP = uuid.UUID("a0000000-0000-0000-0000-000000000007")
FVFILE = uuid.UUID("a0000000-0000-0000-0000-000000000008")
INNER = uuid.UUID("a0000000-0000-0000-0000-000000000009")
BCJFILE = uuid.UUID("a0000000-0000-0000-0000-00000000000a")
BCJ = uuid.UUID("a0000000-0000-0000-0000-00000000000b")
LARGE = uuid.UUID("a0000000-0000-0000-0000-00000000000c")
TIANO_FILE = uuid.UUID("a0000000-0000-0000-0000-00000000000d")
BROTLI_FILE = uuid.UUID("a0000000-0000-0000-0000-00000000000e")
TIANO = uuid.UUID("a31280ad-481e-41b6-95e8-127f4c984779")
BROTLI = uuid.UUID("3d532050-5cda-4fd0-879e-0f7f630d5afb")

# EFI_FV_FILETYPE_*, EFI_SECTION_*
RAW_FILE, FREEFORM_FILE, PEIM, DRIVER, APPLICATION, FV_IMAGE, PAD_FILE = (
    0x01, 0x02, 0x06, 0x07, 0x09, 0x0B, 0xF0)
S_COMPRESSION, S_GUID_DEFINED, S_DISPOSABLE, S_PE32, S_TE = 0x01, 0x02, 0x03, 0x10, 0x12
S_DXE_DEPEX, S_VERSION, S_UI, S_FV, S_RAW = 0x13, 0x14, 0x15, 0x17, 0x19
ATTRIBUTES = 0x0004FEFF  # OvmfPkg's FV attributes (ERASE_POLARITY set)
STATE_VALID = 0xF8  # ~EFI_FILE_DATA_VALID|HEADER_VALID|HEADER_CONSTRUCTION, polarity 1
STATE_DELETED = 0xE8  # ... and EFI_FILE_DELETED


def align(value: int, n: int) -> int:
    return (value + n - 1) & ~(n - 1)


def section(kind: int, body: bytes, *, extended: bool = False) -> bytes:
    """EFI_COMMON_SECTION_HEADER (or HEADER2 with ExtendedSize) + body."""
    if extended:
        return struct.pack("<3sBI", b"\xff\xff\xff", kind, 8 + len(body)) + body
    return (4 + len(body)).to_bytes(3, "little") + bytes([kind]) + body


def sections(*items: bytes) -> bytes:
    out = b""
    for s in items:
        out += s + b"\0" * (align(len(s), 4) - len(s))
    return out


def ui(name: str) -> bytes:
    return section(S_UI, name.encode("utf-16-le") + b"\0\0")


def version(text: str, build: int = 0) -> bytes:
    return section(S_VERSION, struct.pack("<H", build) + text.encode("utf-16-le") + b"\0\0")


def guided(guid: uuid.UUID, payload: bytes, attributes: int = 1, extra: bytes = b"") -> bytes:
    """EFI_GUID_DEFINED_SECTION: GUID, DataOffset, Attributes (+ extra header), data."""
    data_offset = 4 + 20 + len(extra)
    return section(S_GUID_DEFINED, guid.bytes_le + struct.pack("<HH", data_offset, attributes)
                   + extra + payload)


def lzma_payload(data: bytes) -> bytes:
    """LzmaCompress's output: props, dictionary, real size, stream (liblzma adds an end
    marker edk2 would not write; a decoder that knows the size stops before it)."""
    stream = lzma.compress(data, format=lzma.FORMAT_ALONE, preset=6)
    return stream[:5] + struct.pack("<Q", len(data)) + stream[13:]


def lzma_x86_payload(data: bytes) -> bytes:
    dict_size = 1 << 16
    raw = lzma.compress(data, format=lzma.FORMAT_RAW, filters=[
        {"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA1, "dict_size": dict_size}])
    return bytes([0x5D]) + struct.pack("<IQ", dict_size, len(data)) + raw


def ffs(name: uuid.UUID, kind: int, body: bytes, *, state: int = STATE_VALID,
        large: bool = False) -> bytes:
    """EFI_FFS_FILE_HEADER(2) with a valid header checksum, File = 0xAA."""
    attributes = 0x01 if large else 0x00
    header_size = 32 if large else 24
    size = header_size + len(body)
    size3 = b"\0\0\0" if large else size.to_bytes(3, "little")
    header = bytearray(name.bytes_le + bytes([0, 0xAA, kind, attributes]) + size3 + bytes([state]))
    if large:
        header += struct.pack("<Q", size)
    header[16] = (-(sum(header) - 0xAA - state)) & 0xFF
    return bytes(header) + body


def fv(files: list[bytes], length: int, *, fs: uuid.UUID = FFS2,
       name: uuid.UUID | None = None) -> bytes:
    """EFI_FIRMWARE_VOLUME_HEADER + block map (4 KiB blocks) + files, erased to 0xFF."""
    header = bytearray(16) + fs.bytes_le + struct.pack("<Q4sIHHHBB", length, b"_FVH", ATTRIBUTES,
                                                      0x48, 0, 0, 0, 2)
    header += struct.pack("<IIII", length // 0x1000, 0x1000, 0, 0)
    body = bytearray()
    if name is not None:
        # GenFv: the extended header in the body of a pad file right after the header
        ext = name.bytes_le + struct.pack("<I", 20)
        pad = ffs(PAD, PAD_FILE, ext)
        struct.pack_into("<H", header, 0x34, 0x48 + 24)  # ExtHeaderOffset
        body += pad
    for f in files:
        body += b"\xff" * (align(0x48 + len(body), 8) - 0x48 - len(body))
        body += f
    if 0x48 + len(body) > length:
        raise SystemExit(f"volume of {length:#x} bytes cannot hold {0x48 + len(body):#x}")
    checksum = (-sum(struct.unpack_from("<36H", header))) & 0xFFFF
    struct.pack_into("<H", header, 0x32, checksum)
    return bytes(header) + bytes(body) + b"\xff" * (length - 0x48 - len(body))


def te_image() -> bytes:
    """EFI_TE_IMAGE_HEADER (AArch64, 2 sections: .text r-x, .data rwx) + section data."""
    sec = struct.Struct("<8sIIIIIIHHI")
    stripped = 0x100
    header = struct.pack("<2sHBBHIIQIIII", b"VZ", 0xAA64, 2, 11, stripped, 0x1000, 0x1000, 0,
                         0, 0, 0, 0)
    text = sec.pack(b".text", 0x20, 0x1000, 0x20, 40 + 2 * 40 - 40 + stripped, 0, 0, 0, 0,
                    0x60000020)
    data = sec.pack(b".data", 0x20, 0x2000, 0x20, 0, 0, 0, 0, 0, 0xE0000040)
    return header + text + data + b"\x1f\x20\x03\xd5" * 8 + b"\0" * 32


def efi_compress(data: bytes, *, tiano: bool = False) -> bytes:
    """EfiCompress / TianoCompress (edk2 BaseTools' C code, as uefi_firmware builds it)."""
    from uefi_firmware import efi_compressor

    compress = efi_compressor.TianoCompress if tiano else efi_compressor.EfiCompress
    return bytes(compress(data, len(data)))


def bcj_encode(data: bytes) -> bytes:
    """x86 BCJ encoding of ``data`` (what LzmaF86Compress does before LZMA), by liblzma."""
    raw = lzma.compress(data, format=lzma.FORMAT_RAW, filters=[
        {"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA1}])
    return lzma.decompress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1}])


def tiny() -> bytes:
    hello = (SAMPLE / "hello-nx.efi").read_bytes()
    legacy = (SAMPLE / "legacy-wx.efi").read_bytes()
    inner_driver = ffs(INNER, DRIVER, sections(
        guided(CRC32, section(S_PE32, hello), attributes=2,
               extra=struct.pack("<I", zlib.crc32(section(S_PE32, hello)))),
        section(S_COMPRESSION, struct.pack("<IB", len(ui("InnerDriver")), 0) + ui("InnerDriver")),
    ))
    inner_fv = fv([inner_driver], 0x2000, name=INNER_GUID)
    lzma_body = sections(section(S_RAW, b"\0" * 8), section(S_FV, inner_fv))
    bcj_fv = fv([ffs(BCJ, DRIVER, sections(section(S_PE32, legacy), ui("BcjDriver")))], 0x1000,
                name=BCJ_FV_GUID)
    bcj_body = sections(section(S_FV, bcj_fv))
    std = sections(section(S_PE32, hello), ui("StdCompressed"))
    tiano = sections(section(S_PE32, hello), ui("TianoDriver"))
    files = [
        ffs(HELLO, DRIVER, sections(section(S_DXE_DEPEX, b"\x06\x08"), section(S_PE32, hello),
                                    ui("HelloNx"), version("1.0"))),
        ffs(LEGACY, APPLICATION, sections(section(S_PE32, legacy), ui("LegacyWx"))),
        ffs(TINY_TE, PEIM, sections(section(S_TE, te_image()), ui("TinyTe"))),
        ffs(FREEFORM, FREEFORM_FILE, sections(section(S_RAW, b"freeform raw data"))),
        ffs(RAWFILE, RAW_FILE, b"raw file body, no sections"),
        ffs(DELETED, DRIVER, sections(section(S_PE32, hello), ui("Deleted")), state=STATE_DELETED),
        ffs(STDCOMP, DRIVER, sections(section(S_COMPRESSION, struct.pack("<IB", len(std), 1)
                                              + efi_compress(std)))),
        ffs(TIANO_FILE, DRIVER, sections(guided(TIANO, efi_compress(tiano, tiano=True)))),
        ffs(BROTLI_FILE, FREEFORM_FILE, sections(guided(BROTLI, b"\x12\x34" * 16))),
        ffs(FVFILE, FV_IMAGE, sections(guided(LZMA, lzma_payload(lzma_body)))),
        ffs(BCJFILE, FV_IMAGE, sections(guided(LZMA_F86, lzma_x86_payload(bcj_encode(bcj_body))))),
    ]
    large = ffs(LARGE, DRIVER, sections(section(S_PE32, hello, extended=True), ui("LargeHeader")),
                large=True)
    return fv(files, 0xC000, name=TINY_GUID) + fv([large], 0x4000, fs=FFS3)


def plain() -> bytes:
    hello = (SAMPLE / "hello-nx.efi").read_bytes()
    inner_driver = ffs(INNER, DRIVER, sections(
        guided(CRC32, section(S_PE32, hello), attributes=2,
               extra=struct.pack("<I", zlib.crc32(section(S_PE32, hello)))),
        section(S_COMPRESSION, struct.pack("<IB", len(ui("InnerDriver")), 0) + ui("InnerDriver")),
    ))
    inner_fv = fv([inner_driver], 0x1000, name=INNER_GUID)
    return fv([ffs(TINY_TE, PEIM, sections(section(S_TE, te_image()), ui("TinyTe"))),
               ffs(FVFILE, FV_IMAGE, sections(section(S_DISPOSABLE, section(S_FV, inner_fv))))],
              0x2000, name=TINY_GUID)


def one_file_fv(body: bytes, length: int = 0x1000) -> bytes:
    return fv([ffs(HELLO, DRIVER, body)], length)


def nested_bomb(levels: int = 14) -> bytes:
    volume = fv([ffs(HELLO, DRIVER, sections(ui("Bottom")))], 0x1000)
    for _ in range(levels):
        inner = sections(section(S_FV, volume))
        volume = fv([ffs(FVFILE, FV_IMAGE, sections(guided(LZMA, lzma_payload(inner))))],
                    align(0x100 + len(lzma_payload(inner)), 0x1000))
    return volume


def huge_fvlength() -> bytes:
    volume = bytearray(fv([], 0x1000))
    struct.pack_into("<Q", volume, 0x20, 1 << 62)
    struct.pack_into("<H", volume, 0x32, 0)
    struct.pack_into("<H", volume, 0x32, (-sum(struct.unpack_from("<36H", volume))) & 0xFFFF)
    return bytes(volume)


def build() -> dict[str, bytes]:
    t = tiny()
    huge_lzma = lzma_payload(b"\0" * 16)
    huge_lzma = huge_lzma[:5] + struct.pack("<Q", 1 << 40) + huge_lzma[13:]
    bomb = lzma.compress(b"\0" * (300 << 20), format=lzma.FORMAT_ALONE)
    bomb = bomb[:5] + struct.pack("<Q", 300 << 20) + bomb[13:]
    huge_file = bytearray(one_file_fv(sections(ui("x"))))
    huge_file[0x48 + 20 : 0x48 + 23] = b"\xff\xff\xff"
    huge_file[0x48 + 16] = 0
    huge_file[0x48 + 16] = (-(sum(huge_file[0x48 : 0x48 + 24]) - 0xAA - STATE_VALID)) & 0xFF
    return {
        "tiny.fd": t,
        "plain.fd": plain(),
        "truncated.fd": t[: 40 << 10],
        "lzma-huge-declared.fd": one_file_fv(sections(guided(LZMA, huge_lzma))),
        "lzma-bomb.fd": one_file_fv(sections(guided(LZMA, bomb)), align(0x100 + len(bomb),
                                                                        0x1000)),
        "nested-bomb.fd": nested_bomb(),
        "huge-file-size.fd": bytes(huge_file),
        "huge-section-size.fd": one_file_fv(
            struct.pack("<3sBI", b"\xff\xff\xff", S_RAW, 0xFFFFFFF0) + b"\0" * 8),
        "huge-fvlength.fd": huge_fvlength(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="rebuild in memory and compare")
    args = ap.parse_args()
    built = build()
    if args.check:
        bad = [n for n, data in built.items() if (OUT / n).read_bytes() != data]
        for n in bad:
            print(f"{n}: differs from a rebuild (another liblzma version?)", file=sys.stderr)
        return 1 if bad else 0
    OUT.mkdir(exist_ok=True)
    for n, data in built.items():
        (OUT / n).write_bytes(data)
        print(f"{n}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
