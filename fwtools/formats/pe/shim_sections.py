"""Decoders for shim's own special sections: ``.sbatlevel``, ``.data.ident``, ``.vendor_cert``.

References:
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

The decoders follow the conventions of :mod:`fwtools.formats.pe.special`, which loads this
module the first time a binary has one of these sections.
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING, Final

from fwtools._base.reader import Reader
from fwtools._base.record import Record
from fwtools.errors import ParseError
from fwtools.formats.pe._section_text import KeyValue, decode_text
from fwtools.formats.pe.special import PartialDecode
from fwtools.formats.sbat.sbat import SbatLevel, parse_sbat_level

if TYPE_CHECKING:
    # Only .vendor_cert holds signature lists: the replay decodes shim's .data.ident and
    # .sbatlevel, and loads none of the signature-list code.
    from fwtools.formats.efi.siglist import SignatureList

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

# -- decoded forms ----------------------------------------------------------------------


class ShimSbatLevel(Record):
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


class ShimIdent(Record):
    """shim's ``.data.ident`` build identification."""

    text: str
    title: str
    version: str | None
    commit: str | None
    build_machine: str | None
    fields: tuple[KeyValue, ...]


class VendorCert(Record):
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


# -- decoders ---------------------------------------------------------------------------


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
        raise PartialDecode(decoded, err)
    return decoded


def decode_ident(data: bytes, base: int) -> ShimIdent:
    text, err = decode_text(data, base, ".data.ident")
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
        raise PartialDecode(decoded, err)
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
    from fwtools.formats.efi.siglist import parse_signature_lists

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
