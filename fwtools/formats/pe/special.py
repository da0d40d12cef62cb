"""The special PE sections of shim, systemd-boot/-stub and Unified Kernel Images.

This module finds the special sections of an image and dispatches each to its decoder; the
decoders live where their section's specification does, and a decoder module is imported
only when a binary has one of its sections (grub, which has only ``.sbat``, never loads the
shim or UKI decoders or the kernel header parsers):

    :mod:`fwtools.formats.sbat` (``.sbat``; shim ``SBAT.md``, ``sbat.c``, ``csv.c``),
    :mod:`fwtools.formats.pe.shim_sections` (``.sbatlevel``, ``.data.ident``,
        ``.vendor_cert``),
    :mod:`fwtools.formats.pe.uki_sections` (``.sdmagic``, ``.osrel``, ``.uname``,
        ``.cmdline`` and the other UKI sections of the UAPI Group "Unified Kernel Image"
        specification and systemd ``src/fundamental/uki.h``).

Every decoder works on the section's payload (raw data cut to VirtualSize) and reports
offsets relative to the file. A decoding problem is recorded on that section and never
stops the others; where a lenient decode is still possible, ``decoded`` is kept alongside
the ``error`` (a decoder raises :class:`PartialDecode` to say so).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Final

from fwtools._base.record import Record
from fwtools.errors import ParseError

if TYPE_CHECKING:
    from fwtools.formats.pe.image import PeImage, Section
    from fwtools.formats.sbat.sbat import Sbat

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

# -- decoder table ----------------------------------------------------------------------

_SHIM: Final = "fwtools.formats.pe.shim_sections"
_UKI: Final = "fwtools.formats.pe.uki_sections"

Decoder = Callable[[bytes, int], object]

DECODERS: Final[dict[str, tuple[str, str]]] = {
    ".sbat": (__name__, "decode_sbat"),
    ".sbatlevel": (_SHIM, "decode_sbatlevel"),
    ".data.ident": (_SHIM, "decode_ident"),
    ".vendor_cert": (_SHIM, "decode_vendor_cert"),
    ".sdmagic": (_UKI, "decode_sdmagic"),
    ".osrel": (_UKI, "decode_osrel"),
    ".uname": (_UKI, "decode_uname"),
    ".cmdline": (_UKI, "decode_cmdline"),
    ".linux": (_UKI, "decode_linux"),
    ".initrd": (_UKI, "decode_payload"),
    ".ucode": (_UKI, "decode_payload"),
    ".efifw": (_UKI, "decode_payload"),
    ".splash": (_UKI, "decode_splash"),
    ".dtb": (_UKI, "decode_dtb"),
    ".dtbauto": (_UKI, "decode_dtb"),
    ".pcrsig": (_UKI, "decode_pcrsig"),
    ".pcrpkey": (_UKI, "decode_pcrpkey"),
    ".profile": (_UKI, "decode_profile"),
}
"""Section name -> (module, function) of its decoder, a ``(data, base) -> decoded``
callable; the module is imported on first use."""

_loaded_decoders: dict[str, Decoder] = {}


def _decoder(name: str) -> Decoder | None:
    decoder = _loaded_decoders.get(name)
    if decoder is None:
        where = DECODERS.get(name)
        if where is None:
            return None
        module, function = where
        decoder = _loaded_decoders[name] = getattr(import_module(module), function)
    return decoder


# -- results ----------------------------------------------------------------------------


class SpecialSection(Record):
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


class PartialDecode(Exception):
    """A decoder's way to return a result together with a problem."""

    def __init__(self, decoded: object, error: ParseError) -> None:
        super().__init__(str(error))
        self.decoded = decoded
        self.error = error


# -- decoding ---------------------------------------------------------------------------


def decode_sbat(data: bytes, base: int) -> Sbat:
    from fwtools.formats.sbat import parse_sbat

    try:
        return parse_sbat(data, base=base)
    except ParseError as exc:
        raise PartialDecode(parse_sbat(data, base=base, strict=False), exc) from None


def decode_section(name: str, data: bytes, base: int = 0) -> tuple[object | None, str | None]:
    """Decode the payload of the special section ``name``: (decoded, error)."""
    decoder = _decoder(name)
    if decoder is None:
        return None, None
    try:
        return decoder(data, base), None
    except PartialDecode as partial:
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


def embedded_pe(img: PeImage, section: Section) -> bytes | None:
    """The section's payload when it is itself a PE image (a UKI's ``.linux``), else None."""
    # Only asked about .linux sections, whose decoder has loaded the kernel module anyway.
    from fwtools.formats.pe.kernel import pe_machine

    data = img.section_data(section)
    return data if pe_machine(data) is not None else None

