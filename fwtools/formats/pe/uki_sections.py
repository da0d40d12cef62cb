"""Decoders for the special sections of systemd-boot, systemd-stub and Unified Kernel Images.

References:
    systemd ``src/boot/efi`` (``sdmagic``): ``.sdmagic`` is "#### LoaderInfo: <component>
        <version> ####".
    UAPI Group "Unified Kernel Image" specification and systemd ``src/fundamental/uki.h``:
        the UKI sections (.linux .osrel .cmdline .initrd .ucode .splash .dtb .uname .sbat
        .pcrsig .pcrpkey .profile .dtbauto .hwids .efifw); ``.pcrsig`` is a NUL-terminated
        JSON object {bank: [{pcrs, pkfp, pol, sig}]}; ``.pcrpkey`` a PEM public key whose
        DER SHA-256 is the ``pkfp``; ``.profile`` uses os-release syntax (ID=, TITLE=).
    os-release(5): KEY=VALUE lines with shell-style quoting; ``#`` comments.
    Devicetree Specification v0.4 chapter 5 (flattened devicetree header and structure
        block tokens) for ``.dtb``/``.dtbauto``.
    Microsoft BITMAPFILEHEADER/BITMAPINFOHEADER (wingdi.h) for ``.splash``.

The decoders follow the conventions of :mod:`fwtools.formats.pe.special`, which loads this
module the first time a binary has one of these sections. What only some sections need (the
kernel header parsers for ``.linux``, json and base64 for ``.pcrsig``/``.pcrpkey``) is
imported by the decoder that needs it: systemd-boot and systemd-stub carry ``.sdmagic`` and
``.osrel`` but no kernel.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from fwtools._base.reader import Reader
from fwtools._base.record import Record
from fwtools.errors import ParseError
from fwtools.formats.pe._section_text import KeyValue as KeyValue
from fwtools.formats.pe._section_text import decode_text
from fwtools.formats.pe.special import PartialDecode

if TYPE_CHECKING:
    from fwtools.formats.pe.kernel import KernelInfo

# -- layouts ----------------------------------------------------------------------------

# .sdmagic: "#### LoaderInfo: systemd-boot 257.13-1~deb13u1 ####"
SDMAGIC: Final = re.compile(r"#### LoaderInfo: (\S+) (.*?) ####")

# .splash: BITMAPFILEHEADER ("BM", file size, 2 x reserved, pixel data offset) followed by
# the DIB header size; BITMAPINFOHEADER width, height, planes, bit count, compression;
# BITMAPCOREHEADER (12 bytes) has 16-bit width and height.
BMP_MAGIC: Final = b"BM"
BMP_FILE_HEADER: Final = struct.Struct("<2sIHHII")
BMP_INFO_HEADER: Final = struct.Struct("<iiHHI")
BMP_CORE_HEADER: Final = struct.Struct("<HHHH")
BMP_PIXEL_OFFSET_FIELD: Final = 10
BMP_DIB_SIZE_FIELD: Final = 14
BMP_CORE_HEADER_SIZE: Final = 12
BMP_INFO_HEADER_MIN: Final = 40
PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"

# .dtb (Devicetree Specification 5.2): big-endian header fields.
FDT_HEADER: Final = struct.Struct(">10I")
FDT_MAGIC: Final = 0xD00DFEED
FDT_BEGIN_NODE: Final = 1
FDT_END_NODE: Final = 2
FDT_PROP: Final = 3
FDT_NOP: Final = 4
FDT_END: Final = 9
FDT_PROP_HEADER: Final = struct.Struct(">II")  # len, nameoff
FDT_TOKEN: Final = struct.Struct(">I")
FDT_TOTALSIZE_FIELD: Final = 4
FDT_PROP_NAMEOFF_FIELD: Final = 4
FDT_ALIGN: Final = 4
FDT_MAX_ROOT_PROPERTIES: Final = 4096


def _fdt_align(offset: int) -> int:
    return (offset + FDT_ALIGN - 1) & ~(FDT_ALIGN - 1)


# Payload magics of .initrd/.ucode sections besides compressions: cpio archives.
CPIO_MAGICS: Final[tuple[tuple[bytes, str], ...]] = (
    (b"070701", "cpio-newc"),
    (b"070702", "cpio-crc"),
    (b"070707", "cpio-odc"),
)

PEM_BLOCK: Final = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)

ENV_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# -- decoded forms ----------------------------------------------------------------------


class KeyValues(Record):
    """os-release-style assignments (``.osrel``, ``.profile``), in file order."""

    entries: tuple[KeyValue, ...]
    warnings: tuple[str, ...] = ()

    def get(self, key: str) -> str | None:
        for entry in self.entries:
            if entry.key == key:
                return entry.value
        return None


class Text(Record):
    """A text section (``.uname``, ``.cmdline``) with trailing NULs removed."""

    text: str


class SdMagic(Record):
    """systemd's ``.sdmagic`` marker."""

    text: str
    component: str | None
    """"systemd-boot", "systemd-stub", "systemd-addon", ..."""
    version: str | None


class PayloadFormat(Record):
    """What an ``.initrd``/``.ucode``/``.efifw`` payload is, by magic."""

    format: str | None
    """"cpio-newc", "cpio-crc", "cpio-odc", a compression ("gzip", "zstd", ...), or None."""


class SplashImage(Record):
    format: str
    """"bmp", or "png"/"unknown" (which systemd-stub cannot show)."""
    width: int | None = None
    height: int | None = None
    """Absolute value; BMP stores a negative height for top-down images."""
    top_down: bool = False
    bits_per_pixel: int | None = None
    compression: int | None = None
    """BMP biCompression (0 = BI_RGB)."""


class DeviceTree(Record):
    totalsize: int
    version: int
    last_comp_version: int
    boot_cpuid_phys: int
    model: str | None
    compatible: tuple[str, ...]


class PcrSignatureEntry(Record):
    pcrs: tuple[int, ...]
    pkfp: str
    """SHA-256 of the DER public key (compare with the ``.pcrpkey`` fingerprint)."""
    pol: str
    """The expected policy hash."""
    sig_size: int
    """Length of the base64-decoded signature (0 when it is not valid base64)."""


class PcrSignatureBank(Record):
    bank: str
    entries: tuple[PcrSignatureEntry, ...]


class PcrSignature(Record):
    banks: tuple[PcrSignatureBank, ...]


class PublicKeyPem(Record):
    label: str
    """The PEM label, normally "PUBLIC KEY"."""
    der_size: int
    fingerprint_sha256: str
    """SHA-256 of the DER, as used in ``.pcrsig``'s ``pkfp``."""


# -- os-release syntax ------------------------------------------------------------------


def _shell_unquote(value: str) -> str:
    """Undo os-release(5) quoting: one pair of quotes, backslash escapes in double quotes."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r'\\([\\"$`])', r"\1", value[1:-1])
    return value


def parse_key_values(data: bytes, *, base: int = 0, structure: str = ".osrel") -> KeyValues:
    """Parse os-release-style text; malformed lines are skipped and named in ``warnings``."""
    text, err = decode_text(data, base, structure)
    entries: list[KeyValue] = []
    warnings: list[str] = [str(err)] if err else []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not ENV_KEY.fullmatch(key):
            warnings.append(f"{structure} line {number}: not a KEY=VALUE assignment")
            continue
        entries.append(KeyValue(key, _shell_unquote(value)))
    return KeyValues(tuple(entries), tuple(warnings))


# -- decoders ---------------------------------------------------------------------------


def decode_sdmagic(data: bytes, base: int) -> SdMagic:
    text, err = decode_text(data, base, ".sdmagic")
    match = SDMAGIC.search(text)
    decoded = SdMagic(text, match.group(1) if match else None, match.group(2) if match else None)
    if err is not None:
        raise PartialDecode(decoded, err)
    if match is None:
        raise PartialDecode(
            decoded,
            ParseError(
                "not a '#### LoaderInfo: <component> <version> ####' marker",
                structure=".sdmagic",
                offset=base,
            ),
        )
    return decoded


def _decode_key_values(structure: str) -> Callable[[bytes, int], KeyValues]:
    def decode(data: bytes, base: int) -> KeyValues:
        return parse_key_values(data, base=base, structure=structure)

    return decode


def _decode_plain_text(structure: str) -> Callable[[bytes, int], Text]:
    def decode(data: bytes, base: int) -> Text:
        text, err = decode_text(data, base, structure)
        if err is not None:
            raise PartialDecode(Text(text), err)
        return Text(text)

    return decode


decode_osrel: Final = _decode_key_values(".osrel")
decode_profile: Final = _decode_key_values(".profile")
decode_uname: Final = _decode_plain_text(".uname")
decode_cmdline: Final = _decode_plain_text(".cmdline")


def decode_linux(data: bytes, base: int) -> KernelInfo:
    from fwtools.formats.pe.kernel import KernelInfo, kernel_info, pe_machine, sniff_kernel

    info = kernel_info(data)
    if info is not None:
        return info
    fmt = sniff_kernel(data)
    return KernelInfo(fmt.kind, fmt.is_pe, pe_machine(data), None, None, None)


def sniff_payload(data: bytes) -> str | None:
    """ "cpio-newc"/"cpio-crc"/"cpio-odc", a compression name, "elf", or None."""
    from fwtools.formats.pe.bzimage import sniff_compression

    for magic, name in CPIO_MAGICS:
        if data.startswith(magic):
            return name
    compression = sniff_compression(data)
    return "elf" if compression == "none" else compression


def decode_payload(data: bytes, base: int) -> PayloadFormat:
    return PayloadFormat(sniff_payload(data))


def decode_splash(data: bytes, base: int) -> SplashImage:
    if data.startswith(PNG_MAGIC):
        raise PartialDecode(
            SplashImage("png"),
            ParseError("PNG splash: systemd-stub shows only BMP", structure=".splash", offset=base),
        )
    if not data.startswith(BMP_MAGIC):
        raise PartialDecode(
            SplashImage("unknown"),
            ParseError("not a BMP image", structure=".splash", offset=base),
        )
    reader = Reader(data, base=base)
    _magic, _file_size, _r1, _r2, pixels, dib_size = reader.unpack(
        BMP_FILE_HEADER, 0, ".splash BITMAPFILEHEADER"
    )
    dib = BMP_FILE_HEADER.size
    if dib_size == BMP_CORE_HEADER_SIZE:
        width, height, _planes, bpp = reader.unpack(
            BMP_CORE_HEADER, dib, ".splash BITMAPCOREHEADER"
        )
        return SplashImage("bmp", width, height, False, bpp, 0)
    if dib_size < BMP_INFO_HEADER_MIN:
        raise ParseError(
            f"DIB header size {dib_size} is not a known BMP header",
            structure=".splash DIB header",
            offset=base + BMP_DIB_SIZE_FIELD,
        )
    width, height, _planes, bpp, compression = reader.unpack(
        BMP_INFO_HEADER, dib, ".splash BITMAPINFOHEADER"
    )
    image = SplashImage("bmp", width, abs(height), height < 0, bpp, compression)
    if pixels > len(data):
        raise PartialDecode(
            image,
            ParseError(
                f"pixel data offset {pixels:#x} is past the end of the image ({len(data):#x})",
                structure=".splash BITMAPFILEHEADER",
                offset=base + BMP_PIXEL_OFFSET_FIELD,
            ),
        )
    return image


def _fdt_string(data: bytes, start: int, end: int) -> str:
    stop = data.find(b"\0", start, end)
    return data[start : stop if stop >= 0 else end].decode("utf-8", "backslashreplace")


def decode_dtb(data: bytes, base: int) -> DeviceTree:
    reader = Reader(data, base=base)
    (
        magic,
        totalsize,
        off_struct,
        off_strings,
        _off_rsvmap,
        version,
        last_comp,
        cpuid,
        size_strings,
        size_struct,
    ) = reader.unpack(FDT_HEADER, 0, "FDT header")
    if magic != FDT_MAGIC:
        raise ParseError(
            f"FDT magic is {magic:#010x}, not {FDT_MAGIC:#010x}",
            structure="FDT header",
            offset=base,
        )
    if totalsize > len(data):
        raise ParseError(
            f"totalsize {totalsize:#x} exceeds the section ({len(data):#x} bytes)",
            structure="FDT header totalsize",
            offset=base + FDT_TOTALSIZE_FIELD,
        )
    struct_end = min(off_struct + size_struct, totalsize) if size_struct else totalsize
    strings_end = min(off_strings + size_strings, totalsize) if size_strings else totalsize
    body = Reader(data, off_struct, struct_end, base=base)
    pos = off_struct
    (token,) = body.unpack(FDT_TOKEN, pos, "FDT structure")
    while token == FDT_NOP:
        pos += FDT_TOKEN.size
        (token,) = body.unpack(FDT_TOKEN, pos, "FDT structure")
    if token != FDT_BEGIN_NODE:
        raise ParseError(
            f"structure block starts with token {token}, not FDT_BEGIN_NODE",
            structure="FDT structure",
            offset=base + pos,
        )
    name_end = data.find(b"\0", pos + FDT_TOKEN.size, struct_end)
    if name_end < 0:
        raise ParseError(
            "root node name is not terminated", structure="FDT structure", offset=base + pos
        )
    pos = _fdt_align(name_end + 1)
    model: str | None = None
    compatible: tuple[str, ...] = ()
    for _ in range(FDT_MAX_ROOT_PROPERTIES):
        (token,) = body.unpack(FDT_TOKEN, pos, "FDT structure")
        pos += FDT_TOKEN.size
        if token == FDT_NOP:
            continue
        if token != FDT_PROP:
            break  # a child node, the root's end, or FDT_END: the root properties are done
        length, nameoff = body.unpack(FDT_PROP_HEADER, pos, "FDT property")
        value = body.bytes(pos + FDT_PROP_HEADER.size, length, "FDT property value")
        if off_strings + nameoff >= strings_end:
            raise ParseError(
                f"property name offset {nameoff:#x} is outside the strings block",
                structure="FDT property",
                offset=base + pos + FDT_PROP_NAMEOFF_FIELD,
            )
        name = _fdt_string(data, off_strings + nameoff, strings_end)
        if name == "compatible":
            compatible = tuple(
                s.decode("utf-8", "backslashreplace") for s in value.split(b"\0") if s
            )
        elif name == "model":
            model = value.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
        pos = _fdt_align(pos + FDT_PROP_HEADER.size + length)
    return DeviceTree(totalsize, version, last_comp, cpuid, model, compatible)


def decode_pcrsig(data: bytes, base: int) -> PcrSignature:
    import base64
    import json

    text, err = decode_text(data, base, ".pcrsig")
    if err is not None:
        raise err
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"invalid JSON: {exc.msg}",
            structure=".pcrsig",
            offset=base + len(text[: exc.pos].encode()),
        ) from None
    except (ValueError, RecursionError) as exc:
        # Numbers beyond int()'s digit limit, or nesting beyond the recursion limit.
        raise ParseError(
            f"unusable JSON: {exc.__class__.__name__}", structure=".pcrsig", offset=base
        ) from None
    if not isinstance(doc, dict):
        raise ParseError("not a JSON object", structure=".pcrsig", offset=base)
    banks: list[PcrSignatureBank] = []
    for bank, items in doc.items():
        if not isinstance(items, list):
            raise ParseError(f"bank {bank!r} is not a list", structure=".pcrsig", offset=base)
        entries: list[PcrSignatureEntry] = []
        for item in items:
            if not isinstance(item, dict):
                raise ParseError(
                    f"bank {bank!r} has a non-object entry", structure=".pcrsig", offset=base
                )
            pcrs = item.get("pcrs", [])
            sig = item.get("sig", "")
            try:
                sig_size = len(base64.b64decode(sig, validate=True)) if isinstance(sig, str) else 0
            except ValueError:  # binascii.Error, or non-ASCII characters
                sig_size = 0
            entries.append(
                PcrSignatureEntry(
                    tuple(p for p in pcrs if isinstance(p, int)) if isinstance(pcrs, list) else (),
                    str(item.get("pkfp", "")),
                    str(item.get("pol", "")),
                    sig_size,
                )
            )
        banks.append(PcrSignatureBank(str(bank), tuple(entries)))
    return PcrSignature(tuple(banks))


def decode_pcrpkey(data: bytes, base: int) -> PublicKeyPem:
    import base64

    text, err = decode_text(data, base, ".pcrpkey")
    if err is not None:
        raise err
    match = PEM_BLOCK.search(text)
    if match is None:
        raise ParseError("no PEM block", structure=".pcrpkey", offset=base)
    try:
        der = base64.b64decode("".join(match.group(2).split()), validate=True)
    except ValueError:  # binascii.Error, or non-ASCII characters
        raise ParseError(
            "PEM body is not valid base64",
            structure=".pcrpkey",
            offset=base + len(text[: match.start(2)].encode()),
        ) from None
    return PublicKeyPem(match.group(1), len(der), hashlib.sha256(der).hexdigest())
