"""Decoders for the special PE sections of shim, systemd-boot/-stub and Unified Kernel Images.

References:
    shim ``SBAT.md``, ``sbat.c``, ``csv.c``: the ``.sbat`` section (see
        :mod:`fwtools.formats.sbat`).
    shim ``sbat_var.S``: ``.sbatlevel`` is ``.4byte 0`` (format version for external
        parsers), then ``sbat_var_payload_header`` = two ``.4byte`` offsets, relative to that
        header (section + 4), of the NUL-terminated "automatic" (called "previous" before
        shim 15.8) and "latest" SbatLevel strings.
    shim ``cert.S`` and ``shim.c`` (``cert_table``): ``.vendor_cert`` starts with
        ``{u32 vendor_cert_size; u32 vendor_dbx_size; u32 vendor_cert_offset;
        u32 vendor_dbx_offset}``, offsets relative to the table (the section start). The
        cert half is one DER certificate (``VENDOR_CERT_FILE``) or an EFI_SIGNATURE_LIST
        database (``VENDOR_DB_FILE``); the dbx half is always signature lists.
    shim ``Makefile``/``shim.c``: ``.data.ident`` holds ``"UEFI SHIM\\n$Version: V $\\n
        $BuildMachine: M $\\n$Commit: C $\\n"`` (RCS-style keywords).
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

Every decoder works on the section's payload (raw data cut to VirtualSize) and reports
offsets relative to the file. A decoding problem is recorded on that section and never
stops the others; where a lenient decode is still possible, ``decoded`` is kept alongside
the ``error``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from fwtools._base.reader import Reader
from fwtools.errors import ParseError
from fwtools.formats.efi.siglist import SignatureList, parse_signature_lists
from fwtools.formats.pe.bzimage import sniff_compression
from fwtools.formats.pe.image import PeImage, Section
from fwtools.formats.pe.kernel import KernelInfo, kernel_info, pe_machine, sniff_kernel
from fwtools.formats.sbat.sbat import Sbat, SbatLevel, parse_sbat, parse_sbat_level

# -- layouts ----------------------------------------------------------------------------

# .sbatlevel (shim sbat_var.S): u32 format version, then the payload header.
SBATLEVEL_VERSION: Final = struct.Struct("<I")
SBATLEVEL_PAYLOAD_HEADER: Final = struct.Struct("<II")  # automatic, latest
SBATLEVEL_PAYLOAD_HEADER_OFFSET: Final = SBATLEVEL_VERSION.size
SBATLEVEL_AUTOMATIC_FIELD: Final = SBATLEVEL_PAYLOAD_HEADER_OFFSET
SBATLEVEL_LATEST_FIELD: Final = SBATLEVEL_PAYLOAD_HEADER_OFFSET + 4
SBATLEVEL_FORMAT_VERSION: Final = 0

# .vendor_cert (shim cert.S): vendor_cert_size, vendor_dbx_size, vendor_cert_offset,
# vendor_dbx_offset.
CERT_TABLE: Final = struct.Struct("<IIII")
CERT_TABLE_FIELDS: Final = (
    "vendor_cert_size",
    "vendor_dbx_size",
    "vendor_cert_offset",
    "vendor_dbx_offset",
)
# A DER certificate as shim accepts it (verify_x509): SEQUENCE with a two-byte length.
DER_SEQUENCE_LONG2: Final = b"\x30\x82"
DER_HEADER_SIZE: Final = 4

# .data.ident: RCS-style "$Keyword: value $".
IDENT_KEYWORD: Final = re.compile(r"\$([A-Za-z][A-Za-z0-9_ ]*):\s?(.*?)\s?\$")

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

# -- section names and kinds ------------------------------------------------------------

KIND_SBAT: Final = "sbat"
KIND_SBATLEVEL: Final = "sbatlevel"
KIND_IDENT: Final = "ident"
KIND_VENDOR_CERT: Final = "vendor_cert"
KIND_SDMAGIC: Final = "sdmagic"
KIND_OSREL: Final = "osrel"
KIND_UNAME: Final = "uname"
KIND_CMDLINE: Final = "cmdline"
KIND_UKI: Final = "uki"

SECTION_KINDS: Final[dict[str, str]] = {
    ".sbat": KIND_SBAT,
    ".sbatlevel": KIND_SBATLEVEL,
    ".data.ident": KIND_IDENT,
    ".vendor_cert": KIND_VENDOR_CERT,
    ".sdmagic": KIND_SDMAGIC,
    ".osrel": KIND_OSREL,
    ".uname": KIND_UNAME,
    ".cmdline": KIND_CMDLINE,
    # The remaining UKI resources (uki.h unified_sections, UKI spec).
    ".linux": KIND_UKI,
    ".initrd": KIND_UKI,
    ".ucode": KIND_UKI,
    ".splash": KIND_UKI,
    ".dtb": KIND_UKI,
    ".dtbauto": KIND_UKI,
    ".pcrsig": KIND_UKI,
    ".pcrpkey": KIND_UKI,
    ".profile": KIND_UKI,
    ".hwids": KIND_UKI,
    ".efifw": KIND_UKI,
}


# -- decoded forms ----------------------------------------------------------------------


@dataclass(frozen=True)
class SpecialSection:
    """One special section: where it is, its digest, and what it says."""

    name: str
    kind: str
    """"sbat", "sbatlevel", "ident", "vendor_cert", "sdmagic", "osrel", "uname",
    "cmdline" or "uki" (the other UKI resources)."""
    offset: int
    """File offset of the section data."""
    size: int
    """Payload size (raw data cut to VirtualSize)."""
    sha256: str
    """Hex SHA-256 of the payload."""
    decoded: object | None
    """A frozen dataclass of plain values, or None when there is nothing to decode."""
    error: str | None
    """What was wrong with the section (its other fields stay valid)."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str


@dataclass(frozen=True)
class KeyValues:
    """os-release-style assignments (``.osrel``, ``.profile``), in file order."""

    entries: tuple[KeyValue, ...]
    warnings: tuple[str, ...] = ()

    def get(self, key: str) -> str | None:
        for entry in self.entries:
            if entry.key == key:
                return entry.value
        return None


@dataclass(frozen=True)
class Text:
    """A text section (``.uname``, ``.cmdline``) with trailing NULs removed."""

    text: str


@dataclass(frozen=True)
class ShimSbatLevel:
    """shim's built-in SbatLevel candidates (``.sbatlevel``)."""

    format_version: int
    automatic_offset: int
    """As stored: relative to the payload header at section + 4."""
    latest_offset: int
    automatic: SbatLevel
    """The level shim applies by default with Secure Boot on ("previous" before 15.8)."""
    latest: SbatLevel
    """The level applied with ``SbatPolicy`` = latest."""
    automatic_text: str
    latest_text: str

    @property
    def previous(self) -> SbatLevel:
        """shim before 15.8 called the automatic level "previous"."""
        return self.automatic


@dataclass(frozen=True)
class ShimIdent:
    """shim's ``.data.ident`` build identification."""

    text: str
    title: str
    version: str | None
    commit: str | None
    build_machine: str | None
    fields: tuple[KeyValue, ...]


@dataclass(frozen=True)
class VendorCert:
    """shim's built-in trust: the vendor certificate (or db) and the vendor dbx."""

    vendor_cert_size: int
    vendor_dbx_size: int
    vendor_cert_offset: int
    vendor_dbx_offset: int
    cert_format: str
    """"x509" (VENDOR_CERT_FILE), "esl" (VENDOR_DB_FILE, signature lists) or "none"."""
    certificates: tuple[bytes, ...]
    """DER certificates: the one vendor cert, or the X.509 entries of the vendor db."""
    db_lists: tuple[SignatureList, ...]
    dbx_lists: tuple[SignatureList, ...]


@dataclass(frozen=True)
class SdMagic:
    """systemd's ``.sdmagic`` marker."""

    text: str
    component: str | None
    """"systemd-boot", "systemd-stub", "systemd-addon", ..."""
    version: str | None


@dataclass(frozen=True)
class PayloadFormat:
    """What an ``.initrd``/``.ucode``/``.efifw`` payload is, by magic."""

    format: str | None
    """"cpio-newc", "cpio-crc", "cpio-odc", a compression ("gzip", "zstd", ...), or None."""


@dataclass(frozen=True)
class SplashImage:
    format: str
    """"bmp", or "png"/"unknown" (which systemd-stub cannot show)."""
    width: int | None = None
    height: int | None = None
    """Absolute value; BMP stores a negative height for top-down images."""
    top_down: bool = False
    bits_per_pixel: int | None = None
    compression: int | None = None
    """BMP biCompression (0 = BI_RGB)."""


@dataclass(frozen=True)
class DeviceTree:
    totalsize: int
    version: int
    last_comp_version: int
    boot_cpuid_phys: int
    model: str | None
    compatible: tuple[str, ...]


@dataclass(frozen=True)
class PcrSignatureEntry:
    pcrs: tuple[int, ...]
    pkfp: str
    """SHA-256 of the DER public key (compare with the ``.pcrpkey`` fingerprint)."""
    pol: str
    """The expected policy hash."""
    sig_size: int
    """Length of the base64-decoded signature (0 when it is not valid base64)."""


@dataclass(frozen=True)
class PcrSignatureBank:
    bank: str
    entries: tuple[PcrSignatureEntry, ...]


@dataclass(frozen=True)
class PcrSignature:
    banks: tuple[PcrSignatureBank, ...]


@dataclass(frozen=True)
class PublicKeyPem:
    label: str
    """The PEM label, normally "PUBLIC KEY"."""
    der_size: int
    fingerprint_sha256: str
    """SHA-256 of the DER, as used in ``.pcrsig``'s ``pkfp``."""


# -- helpers ----------------------------------------------------------------------------


class _Partial(Exception):
    """A decoder's way to return a result together with a problem."""

    def __init__(self, decoded: object, error: ParseError) -> None:
        super().__init__(str(error))
        self.decoded = decoded
        self.error = error


def _decode_text(data: bytes, base: int, structure: str) -> tuple[str, ParseError | None]:
    """UTF-8 text with trailing NULs removed; invalid bytes become backslash escapes."""
    raw = data.rstrip(b"\0")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        err = ParseError(
            f"invalid UTF-8 byte {raw[exc.start]:#04x}",
            structure=structure,
            offset=base + exc.start,
        )
        return raw.decode("utf-8", "backslashreplace"), err


def _shell_unquote(value: str) -> str:
    """Undo os-release(5) quoting: one pair of quotes, backslash escapes in double quotes."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r'\\([\\"$`])', r"\1", value[1:-1])
    return value


ENV_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_key_values(data: bytes, *, base: int = 0, structure: str = ".osrel") -> KeyValues:
    """Parse os-release-style text; malformed lines are skipped and named in ``warnings``."""
    text, err = _decode_text(data, base, structure)
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


def embedded_pe(img: PeImage, section: Section) -> bytes | None:
    """The section's payload when it is itself a PE image (a UKI's ``.linux``), else None."""
    data = img.section_data(section)
    return data if pe_machine(data) is not None else None


# -- decoders ---------------------------------------------------------------------------


def decode_sbat(data: bytes, base: int) -> Sbat:
    try:
        return parse_sbat(data, base=base)
    except ParseError as exc:
        raise _Partial(parse_sbat(data, base=base, strict=False), exc) from None


def _sbatlevel_string(
    reader: Reader, data: bytes, rel: int, field_offset: int, what: str
) -> tuple[str, SbatLevel, ParseError | None]:
    start = SBATLEVEL_PAYLOAD_HEADER_OFFSET + rel
    if start >= len(data):
        raise ParseError(
            f"{what} offset {rel:#x} points past the end of the section ({len(data):#x} bytes)",
            structure=f".sbatlevel {what} offset",
            offset=reader.base + field_offset,
        )
    end = data.find(b"\0", start)
    if end < 0:
        raise ParseError(
            f"{what} SbatLevel string is not NUL-terminated",
            structure=f".sbatlevel {what}",
            offset=reader.base + start,
        )
    raw = data[start:end]
    text = raw.decode("utf-8", "backslashreplace")
    try:
        return text, parse_sbat_level(raw, base=reader.base + start), None
    except ParseError as exc:
        return text, parse_sbat_level(raw, base=reader.base + start, strict=False), exc


def decode_sbatlevel(data: bytes, base: int) -> ShimSbatLevel:
    reader = Reader(data, base=base)
    (version,) = reader.unpack(SBATLEVEL_VERSION, 0, ".sbatlevel format version")
    if version != SBATLEVEL_FORMAT_VERSION:
        raise ParseError(
            f"unknown .sbatlevel format version {version}",
            structure=".sbatlevel format version",
            offset=base,
        )
    automatic_off, latest_off = reader.unpack(
        SBATLEVEL_PAYLOAD_HEADER, SBATLEVEL_PAYLOAD_HEADER_OFFSET, ".sbatlevel payload header"
    )
    auto_text, automatic, err1 = _sbatlevel_string(
        reader, data, automatic_off, SBATLEVEL_AUTOMATIC_FIELD, "automatic"
    )
    latest_text, latest, err2 = _sbatlevel_string(
        reader, data, latest_off, SBATLEVEL_LATEST_FIELD, "latest"
    )
    decoded = ShimSbatLevel(
        version, automatic_off, latest_off, automatic, latest, auto_text, latest_text
    )
    err = err1 or err2
    if err is not None:
        raise _Partial(decoded, err)
    return decoded


def decode_ident(data: bytes, base: int) -> ShimIdent:
    text, err = _decode_text(data, base, ".data.ident")
    fields = tuple(KeyValue(m.group(1), m.group(2)) for m in IDENT_KEYWORD.finditer(text))
    values = {f.key: f.value for f in fields}
    title = text.split("\n", 1)[0].strip() if "$" not in text.split("\n", 1)[0] else ""
    decoded = ShimIdent(
        text=text,
        title=title,
        version=values.get("Version"),
        commit=values.get("Commit"),
        build_machine=values.get("BuildMachine"),
        fields=fields,
    )
    if err is not None:
        raise _Partial(decoded, err)
    return decoded


def _region(reader: Reader, size: int, offset: int, size_field: int, what: str) -> tuple[int, int]:
    """Check that ``offset``/``size`` from the cert table lie inside the section.

    The error names the offset field when the region starts outside the section, the size
    field when only its end does.
    """
    if offset + size > len(reader):
        field = size_field + 2 if offset > len(reader) else size_field
        raise ParseError(
            f"{what} {offset:#x}+{size:#x} lies outside the section ({len(reader):#x} bytes)",
            structure=f".vendor_cert {CERT_TABLE_FIELDS[field]}",
            offset=reader.base + field * 4,
        )
    return offset, offset + size


def decode_vendor_cert(data: bytes, base: int) -> VendorCert:
    reader = Reader(data, base=base)
    cert_size, dbx_size, cert_off, dbx_off = reader.unpack(CERT_TABLE, 0, ".vendor_cert table")
    c0, c1 = _region(reader, cert_size, cert_off, 0, "vendor cert")
    x0, x1 = _region(reader, dbx_size, dbx_off, 1, "vendor dbx")
    cert = data[c0:c1]
    certificates: tuple[bytes, ...] = ()
    db_lists: tuple[SignatureList, ...] = ()
    if not cert:
        cert_format = "none"
    elif (
        cert[:2] == DER_SEQUENCE_LONG2
        and len(cert) >= DER_HEADER_SIZE
        and int.from_bytes(cert[2:4], "big") + DER_HEADER_SIZE == len(cert)
    ):
        cert_format = "x509"
        certificates = (cert,)
    else:
        cert_format = "esl"
        try:
            db_lists = tuple(parse_signature_lists(cert, base=base + c0, structure="vendor db"))
        except ParseError as exc:
            raise ParseError(
                "vendor cert is neither one DER certificate nor EFI signature lists: "
                + exc.message,
                structure=exc.structure,
                offset=exc.offset,
            ) from None
        certificates = tuple(e.data for lst in db_lists if lst.is_x509 for e in lst.entries)
    dbx_lists = tuple(parse_signature_lists(data[x0:x1], base=base + x0, structure="vendor dbx"))
    return VendorCert(
        cert_size, dbx_size, cert_off, dbx_off, cert_format, certificates, db_lists, dbx_lists
    )


def decode_sdmagic(data: bytes, base: int) -> SdMagic:
    text, err = _decode_text(data, base, ".sdmagic")
    match = SDMAGIC.search(text)
    decoded = SdMagic(text, match.group(1) if match else None, match.group(2) if match else None)
    if err is not None:
        raise _Partial(decoded, err)
    if match is None:
        raise _Partial(
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
        text, err = _decode_text(data, base, structure)
        if err is not None:
            raise _Partial(Text(text), err)
        return Text(text)

    return decode


def decode_linux(data: bytes, base: int) -> KernelInfo:
    info = kernel_info(data)
    if info is not None:
        return info
    fmt = sniff_kernel(data)
    return KernelInfo(fmt.kind, fmt.is_pe, pe_machine(data), None, None, None)


def sniff_payload(data: bytes) -> str | None:
    """ "cpio-newc"/"cpio-crc"/"cpio-odc", a compression name, "elf", or None."""
    for magic, name in CPIO_MAGICS:
        if data.startswith(magic):
            return name
    compression = sniff_compression(data)
    return "elf" if compression == "none" else compression


def decode_payload(data: bytes, base: int) -> PayloadFormat:
    return PayloadFormat(sniff_payload(data))


def decode_splash(data: bytes, base: int) -> SplashImage:
    if data.startswith(PNG_MAGIC):
        raise _Partial(
            SplashImage("png"),
            ParseError("PNG splash: systemd-stub shows only BMP", structure=".splash", offset=base),
        )
    if not data.startswith(BMP_MAGIC):
        raise _Partial(
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
        raise _Partial(
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
    text, err = _decode_text(data, base, ".pcrsig")
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
            f"unusable JSON: {type(exc).__name__}", structure=".pcrsig", offset=base
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
            except (binascii.Error, ValueError):
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
    text, err = _decode_text(data, base, ".pcrpkey")
    if err is not None:
        raise err
    match = PEM_BLOCK.search(text)
    if match is None:
        raise ParseError("no PEM block", structure=".pcrpkey", offset=base)
    try:
        der = base64.b64decode("".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(
            "PEM body is not valid base64",
            structure=".pcrpkey",
            offset=base + len(text[: match.start(2)].encode()),
        ) from None
    return PublicKeyPem(match.group(1), len(der), hashlib.sha256(der).hexdigest())


Decoder = Callable[[bytes, int], object]

DECODERS: Final[dict[str, Decoder]] = {
    ".sbat": decode_sbat,
    ".sbatlevel": decode_sbatlevel,
    ".data.ident": decode_ident,
    ".vendor_cert": decode_vendor_cert,
    ".sdmagic": decode_sdmagic,
    ".osrel": _decode_key_values(".osrel"),
    ".uname": _decode_plain_text(".uname"),
    ".cmdline": _decode_plain_text(".cmdline"),
    ".linux": decode_linux,
    ".initrd": decode_payload,
    ".ucode": decode_payload,
    ".efifw": decode_payload,
    ".splash": decode_splash,
    ".dtb": decode_dtb,
    ".dtbauto": decode_dtb,
    ".pcrsig": decode_pcrsig,
    ".pcrpkey": decode_pcrpkey,
    ".profile": _decode_key_values(".profile"),
}


def decode_section(name: str, data: bytes, base: int = 0) -> tuple[object | None, str | None]:
    """Decode the payload of the special section ``name``: (decoded, error)."""
    decoder = DECODERS.get(name)
    if decoder is None:
        return None, None
    try:
        return decoder(data, base), None
    except _Partial as partial:
        return partial.decoded, str(partial.error)
    except ParseError as exc:
        return None, str(exc)


def special_sections(img: PeImage) -> list[SpecialSection]:
    """Decode every special section of ``img``, in section-table order.

    Sections appear once per section header (a multi-profile UKI repeats names). Problems
    are reported per section in :attr:`SpecialSection.error`; this never raises for
    malformed section contents.
    """
    out: list[SpecialSection] = []
    for section in img.sections:
        kind = SECTION_KINDS.get(section.name)
        if kind is None:
            continue
        data = img.section_data(section)
        decoded, error = decode_section(section.name, data, section.raw_offset)
        out.append(
            SpecialSection(
                name=section.name,
                kind=kind,
                offset=section.raw_offset,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                decoded=decoded,
                error=error,
            )
        )
    return out
