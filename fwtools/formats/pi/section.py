"""FFS sections (PI volume 3 chapter 3.2.4-3.2.5), encapsulation decoded on demand.

Leaf sections expose their body (a PE32/TE image, a UI name, a version, a dependency
expression, raw data). Encapsulation sections expose :attr:`Section.children` (the sections
inside) and firmware-volume-image sections :attr:`Section.volume`; both are built on first
access, so decompression happens only for what is looked at.

Decoding (edk2 names; MdeModulePkg/Library/*CustomDecompressLib, MdePkg Crc32 extraction):

- COMPRESSION type 0: the sections follow uncompressed; type 1 (EFI standard compression,
  UEFI 2.11 chapter 19) is not decoded: the section says so in :attr:`Section.problem`;
- GUID-defined LZMA (``EE4E5898-...``): the .lzma container of BaseTools' LzmaCompress, read
  with ``lzma.FORMAT_ALONE``; the declared output size is reserved from the image's
  :class:`~fwtools.formats.pi.errors.Budget` first and the output capped at it;
- GUID-defined LZMA with the x86 branch converter (``D42AE6BD-...``): liblzma's raw
  ``[X86, LZMA1]`` chain, whose filter holds back the last bytes of a stream without end
  marker; those (never converted: an x86 call needs five bytes) come from the plain decode;
- GUID-defined CRC32 (``FC1BCDB0-...``): the CRC32 is checked, the sections follow;
- Tiano and Brotli: not decoded (:attr:`Section.problem`); other GUIDs without
  PROCESSING_REQUIRED: the sections at DataOffset are read, as edk2 does.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Final

from fwtools.formats.pi import layout as L
from fwtools.formats.pi.errors import (
    LZMA_MEMLIMIT,
    Budget,
    Origin,
    PiFormatError,
    PiTruncatedError,
)

if TYPE_CHECKING:
    from fwtools.formats.pi.volume import FirmwareVolume

_HDR = L.SECTION_HEADER_LAYOUT
_U24_U8: Final = struct.Struct("<3sB")


def parse_sections(body: memoryview, base: int, origin: Origin, budget: Budget, depth: int,
                   owner: str) -> tuple[Section, ...]:
    """The sections in ``body`` (which starts at ``base`` in ``origin``'s buffer).

    Each section starts 4-byte aligned from the body's start (sections of a file are
    aligned to the file's 8-byte aligned body, so relative alignment is the same).
    """
    out: list[Section] = []
    pos, end = 0, len(body)
    while pos < end:
        if end - pos < L.SECTION_HEADER_SIZE:
            # GenFfs pads files to 8 bytes; up to 3 bytes of padding after the last section.
            if any(body[pos:end]):
                raise origin.error(f"{end - pos} stray bytes after the last section of {owner}",
                                   _HDR.name, base + pos, PiTruncatedError)
            break
        budget.take_node(origin, base + pos, _HDR.name)
        s = Section(body, pos, base, origin, budget, depth, owner)
        out.append(s)
        pos = (pos + s.size + 3) & ~3
    return tuple(out)


class Section:
    """One EFI_COMMON_SECTION_HEADER(2) section.

    ``offset`` is the section's position in its buffer (absolute when that is the file);
    ``data`` the whole section, ``body`` what follows the type-specific header. ``problem``
    says why an encapsulation's contents are not (or not fully) available: an unsupported
    compression, a CRC32 mismatch; it is set when :attr:`children` is first read.
    """

    def __init__(self, body: memoryview, pos: int, base: int, origin: Origin, budget: Budget,
                 depth: int, owner: str) -> None:
        self.origin = origin
        self.budget = budget
        self.depth = depth
        self.owner = owner
        self.offset = base + pos
        size_raw, self.type = _U24_U8.unpack_from(body, pos)
        size = int.from_bytes(size_raw, "little")
        header = L.SECTION_HEADER_SIZE
        room = len(body) - pos
        if size == L.SECTION_SIZE_EXTENDED:
            header = L.SECTION_HEADER2_SIZE
            if room < header:
                raise self.error(f"an extended header needs {header} bytes, only {room} left",
                                 L.SECTION_HEADER2_LAYOUT.name, 0, PiTruncatedError)
            size = int(L.SECTION_HEADER2_LAYOUT.unpack_dict(body, pos)["extended_size"])
        self.header_size = header
        self.size = size
        if size < header:
            raise self.error(f"size {size:#x} is smaller than its header ({header:#x})",
                             f"{_HDR.name} Size ({owner})", 0)
        if size > room:
            raise self.error(f"size {size:#x} runs past the end of {owner} ({room:#x} bytes "
                             "left)", f"{_HDR.name} Size", 0, PiTruncatedError)
        self.data = body[pos : pos + size]
        self.problem: str | None = None
        self.guid: uuid.UUID | None = None  # GUID_DEFINED / FREEFORM_SUBTYPE_GUID
        self.guided_attributes = 0
        self.data_offset = header
        self.compression_type: int | None = None
        self.uncompressed_length: int | None = None
        self.build_number: int | None = None
        self._parse_specific()

    def _parse_specific(self) -> None:
        t, h = self.type, self.header_size
        if t == L.SECTION_COMPRESSION:
            lay = L.COMPRESSION_LAYOUT
            self._need(h + lay.size, lay.name)
            self.uncompressed_length, self.compression_type = lay.unpack_from(self.data, h)
            self.data_offset = h + lay.size
        elif t == L.SECTION_GUID_DEFINED:
            lay = L.GUID_DEFINED_LAYOUT
            self._need(h + lay.size, lay.name)
            raw, data_offset, self.guided_attributes = lay.unpack_from(self.data, h)
            self.guid = uuid.UUID(bytes_le=raw)
            if data_offset < h + lay.size or data_offset > self.size:
                raise self.error(f"DataOffset {data_offset:#x} is outside the section "
                                 f"({h + lay.size:#x}-{self.size:#x})",
                                 f"{lay.name} DataOffset", h + lay.offset("data_offset"))
            self.data_offset = data_offset
        elif t == L.SECTION_VERSION:
            self._need(h + L.VERSION_LAYOUT.size, L.VERSION_LAYOUT.name)
            (self.build_number,) = L.VERSION_LAYOUT.unpack_from(self.data, h)
            self.data_offset = h + L.VERSION_LAYOUT.size
        elif t == L.SECTION_FREEFORM_SUBTYPE_GUID:
            lay = L.FREEFORM_SUBTYPE_LAYOUT
            self._need(h + lay.size, lay.name)
            self.guid = uuid.UUID(bytes_le=bytes(self.data[h : h + lay.size]))
            self.data_offset = h + lay.size

    def _need(self, size: int, structure: str) -> None:
        if self.size < size:
            raise self.error(f"section of {self.size:#x} bytes is too short for its "
                             f"{size:#x}-byte header", structure, 0, PiTruncatedError)

    def error(self, message: str, structure: str, rel: int,
              cls: type[PiFormatError] = PiFormatError) -> PiFormatError:
        return self.origin.error(message, structure, self.offset + rel, cls)

    def where(self) -> str:
        return self.origin.where(self.offset)

    # -- facts ------------------------------------------------------------------------------

    @property
    def body(self) -> memoryview:
        return self.data[self.data_offset :]

    @property
    def type_name(self) -> str:
        return L.section_type_name(self.type)

    @property
    def guided_kind(self) -> str | None:
        """``LZMA``, ``CRC32`` ... for a GUID-defined section, its GUID when unknown."""
        if self.type != L.SECTION_GUID_DEFINED or self.guid is None:
            return None
        return L.GUIDED_SECTION_NAMES.get(self.guid, str(self.guid))

    @property
    def is_encapsulation(self) -> bool:
        return self.type in (L.SECTION_COMPRESSION, L.SECTION_GUID_DEFINED,
                             L.SECTION_DISPOSABLE)

    @property
    def is_padding(self) -> bool:
        """A FREEFORM_SUBTYPE_GUID section that only aligns the image behind it."""
        return self.guid == L.SECTION_ALIGNMENT_PADDING_GUID and (
            self.type == L.SECTION_FREEFORM_SUBTYPE_GUID)

    @cached_property
    def text(self) -> str | None:
        """The name of a USER_INTERFACE section, the version of a VERSION section."""
        if self.type not in (L.SECTION_USER_INTERFACE, L.SECTION_VERSION):
            return None
        raw = bytes(self.body)
        raw = raw[: len(raw) & ~1]
        for i in range(0, len(raw), 2):
            if raw[i] == 0 and raw[i + 1] == 0:
                raw = raw[:i]
                break
        return raw.decode("utf-16-le", "replace")

    @cached_property
    def depex(self) -> list[str]:
        """A dependency expression as tokens (``PUSH <guid>``, ``AND``, ``END``)."""
        if self.type not in L.DEPEX_SECTION_TYPES:
            return []
        out: list[str] = []
        body = self.body
        pos = 0
        while pos < len(body):
            op = body[pos]
            name, takes_guid = L.DEPEX_OPCODES.get(op, (f"{op:#04x}", False))
            if takes_guid:
                if pos + 17 > len(body):
                    raise self.error(f"{name} needs a GUID, {len(body) - pos - 1} bytes left",
                                     "dependency expression", self.data_offset + pos,
                                     PiTruncatedError)
                out.append(f"{name} {uuid.UUID(bytes_le=bytes(body[pos + 1 : pos + 17]))}")
                pos += 17
            else:
                out.append(name)
                pos += 1
            if op == L.DEPEX_END:
                break
        return out

    def __repr__(self) -> str:
        kind = f" {self.guided_kind}" if self.guided_kind else ""
        return f"Section({self.type_name}{kind}, {self.where()}, size={self.size:#x})"

    # -- encapsulation ----------------------------------------------------------------------

    @cached_property
    def children(self) -> tuple[Section, ...]:
        """The sections inside a COMPRESSION, GUID_DEFINED or DISPOSABLE section (empty,
        with :attr:`problem` set, when they cannot be decoded)."""
        if not self.is_encapsulation:
            return ()
        decoded = self._decode()
        if decoded is None:
            return ()
        payload, base, origin = decoded
        self.budget.check_depth(self.depth + 1, self.origin, self.offset, self.type_name)
        return parse_sections(payload, base, origin, self.budget, self.depth + 1,
                              f"{self.type_name} section {self.where()}")

    def _decode(self) -> tuple[memoryview, int, Origin] | None:
        """The encapsulated bytes, where their first byte is, and in which buffer."""
        inline = (self.body, self.offset + self.data_offset, self.origin)
        if self.type == L.SECTION_DISPOSABLE:
            return inline
        if self.type == L.SECTION_COMPRESSION:
            if self.compression_type == L.NOT_COMPRESSED:
                return inline
            if self.compression_type == L.STANDARD_COMPRESSION:
                self.problem = ("unsupported: EFI standard compression (UEFI 2.11 chapter 19) "
                                "is not decoded")
            else:
                self.problem = f"unsupported: unknown CompressionType {self.compression_type}"
            return None
        guid = self.guid
        if guid == L.LZMA_GUID or guid == L.LZMA_F86_GUID:
            kind = "LZMA" if guid == L.LZMA_GUID else "LZMA+x86"
            out = decompress_lzma(self.body, x86=guid == L.LZMA_F86_GUID, budget=self.budget,
                                  origin=self.origin, offset=self.offset + self.data_offset)
            return memoryview(out), 0, self.origin.inner(kind, self.offset)
        if guid == L.CRC32_GUID:
            lay = L.CRC32_LAYOUT
            if self.data_offset < self.header_size + lay.size:
                raise self.error(f"DataOffset {self.data_offset:#x} leaves no room for the "
                                 "CRC32", lay.name, 0)
            (crc,) = struct.unpack_from("<I", self.data, self.header_size + lay.offset("crc32"))
            import zlib

            actual = zlib.crc32(self.body)
            if actual != crc:
                self.problem = f"CRC32 {actual:#010x} does not match the stored {crc:#010x}"
            return inline
        if not self.guided_attributes & L.GUIDED_SECTION_PROCESSING_REQUIRED:
            return inline
        if guid in (L.TIANO_GUID, L.BROTLI_GUID):
            self.problem = f"unsupported: {self.guided_kind} compression is not decoded"
        else:
            self.problem = f"unsupported: GUID-defined section {guid} needs processing"
        return None

    @cached_property
    def volume(self) -> FirmwareVolume | None:
        """The volume inside a FIRMWARE_VOLUME_IMAGE section."""
        if self.type != L.SECTION_FIRMWARE_VOLUME_IMAGE:
            return None
        from fwtools.formats.pi.volume import FirmwareVolume

        return FirmwareVolume(self.body, self.offset + self.data_offset, self.origin,
                              self.budget, self.depth + 1)

    def walk(self) -> Iterator[Section]:
        """Every section inside this one (not inside nested volumes), depth first."""
        for child in self.children:
            yield child
            yield from child.walk()


def decompress_lzma(payload: memoryview, *, x86: bool, budget: Budget, origin: Origin,
                    offset: int) -> bytes:
    """The output of an edk2 LZMA GUID-defined section's payload (header + raw stream)."""
    import lzma

    hdr = L.LZMA_HEADER_LAYOUT
    if len(payload) < hdr.size:
        raise origin.error(f"needs {hdr.size} bytes, only {len(payload)}", hdr.name, offset,
                           PiTruncatedError)
    props, dict_size, size = hdr.unpack_from(payload, 0)
    structure = f"{hdr.name} UncompressedSize"
    if size == (1 << 64) - 1:
        raise origin.error("unknown uncompressed size (edk2 needs it to allocate the output)",
                           structure, offset + hdr.offset("uncompressed_size"))
    budget.take_output(size * (2 if x86 else 1), origin, offset + hdr.offset("uncompressed_size"),
                       structure)
    try:
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT)
        out = dec.decompress(payload, max_length=size)
    except lzma.LZMAError as exc:
        raise origin.error(f"LZMA data cannot be decoded: {exc} (properties {props:#04x}, "
                           f"dictionary {dict_size:#x})", hdr.name, offset) from None
    if len(out) != size:
        raise origin.error(f"LZMA data ends after {len(out):#x} of the declared {size:#x} bytes",
                           hdr.name, offset, PiTruncatedError)
    if not x86:
        return out
    return _x86_convert(payload, out, props, dict_size, origin, offset)


def _x86_convert(payload: memoryview, plain: bytes, props: int, dict_size: int, origin: Origin,
                 offset: int) -> bytes:
    """Undo BaseTools' x86_Convert (LzmaF86Compress) with liblzma's X86 filter."""
    import lzma

    lc, rest = props % 9, props // 9
    lp, pb = rest % 5, rest // 5
    filters = [{"id": lzma.FILTER_X86},
               {"id": lzma.FILTER_LZMA1, "dict_size": max(dict_size, 4096), "lc": lc, "lp": lp,
                "pb": pb}]
    try:
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)
        converted = dec.decompress(payload[L.LZMA_HEADER_LAYOUT.size :], max_length=len(plain))
    except lzma.LZMAError as exc:
        raise origin.error(f"LZMA+x86 data cannot be decoded: {exc}", L.LZMA_HEADER_LAYOUT.name,
                           offset) from None
    return converted + plain[len(converted) :]
