"""Firmware volumes, their FFS files and the files' sections (PI volume 3 chapter 3).

Volumes hold files, files hold sections, and sections hold volumes again (a
FIRMWARE_VOLUME_IMAGE section), so the three live in this one module.

A volume's header, block map and extended header are read when it is built; its files are
walked on first access of :attr:`FirmwareVolume.files`, and a file's sections on first access
of :attr:`FfsFile.sections`, so listing the volumes of a flash image decompresses nothing.

The walk follows edk2's DXE FV driver (MdeModulePkg/Core/Dxe/FwVol/FwVolInit.c FvCheck and
Ffs.c): files start 8-byte aligned, the first header that is all erased bytes ends the file
list, the state byte is inverted on erase-polarity-1 volumes and its highest set bit decides.

Sections (PI volume 3 chapters 3.2.4-3.2.5): leaf sections expose their body (a PE32/TE
image, a UI name, a version, a dependency expression, raw data). Encapsulation sections
expose :attr:`Section.children` (the sections inside) and firmware-volume-image sections
:attr:`Section.volume`; both are built on first access, so decompression happens only for
what is looked at.

Decoding (edk2 names; MdeModulePkg/Library/*CustomDecompressLib, MdePkg Crc32 extraction):

- COMPRESSION type 0: the sections follow uncompressed; type 1 (EFI standard compression,
  UEFI 2.11 chapter 19) and GUID-defined Tiano (``A31280AD-...``): :mod:`.tiano`, a Python
  port of edk2's decompressor, for at most ``Budget.max_tiano`` bytes (4 MiB: it runs at 1-3 MB/s);
- GUID-defined LZMA (``EE4E5898-...``): the .lzma container of BaseTools' LzmaCompress, read
  with ``lzma.FORMAT_ALONE``; the declared output size is reserved from the image's
  :class:`~fwtools.formats.pi.errors.Budget` first and the output capped at it;
- GUID-defined LZMA with the x86 branch converter (``D42AE6BD-...``): liblzma's raw
  ``[X86, LZMA1]`` chain, whose filter holds back the last bytes of a stream without end
  marker; those (never converted: an x86 call needs five bytes) come from the plain decode;
- GUID-defined CRC32 (``FC1BCDB0-...``): the CRC32 is checked, the sections follow;
- Brotli: not decoded (:attr:`Section.problem` says "unsupported"); other GUIDs without
  PROCESSING_REQUIRED: the sections at DataOffset are read, as edk2 does.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from fwtools.formats.pi import layout as L
from fwtools.formats.pi.errors import (
    LZMA_MEMLIMIT,
    Budget,
    Origin,
    PiFormatError,
    PiLimitError,
    PiTruncatedError,
)

Buffer = bytes | memoryview

_FV = L.FV_HEADER_LAYOUT
_FFS = L.FFS_HEADER_LAYOUT


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) & ~(alignment - 1)


@dataclass(frozen=True)
class BlockMapEntry:
    num_blocks: int
    length: int


@dataclass(frozen=True)
class ExtEntry:
    """One EFI_FIRMWARE_VOLUME_EXT_ENTRY (its offset is from the volume's start)."""

    offset: int
    type: int
    size: int

    @property
    def type_name(self) -> str:
        return L.EXT_TYPE_NAMES.get(self.type, f"{self.type:#06x}")


class FirmwareVolume:
    """One EFI_FIRMWARE_VOLUME_HEADER and what follows it.

    ``offset`` is where the volume starts in its buffer (the file, or a decompressed
    section's output: ``origin`` says which); ``data`` is the volume's bytes. ``anomalies``
    are problems edk2 would tolerate or that do not stop the reading (a bad header
    checksum inside a section, a block map that does not add up).
    """

    def __init__(self, buffer: Buffer, offset: int, origin: Origin, budget: Budget,
                 depth: int = 0, *, require_checksum: bool = False) -> None:
        """``buffer`` starts with the volume (it may run on past it); ``offset`` is where
        that is in ``origin``'s buffer, for positions in messages."""
        self.offset = offset
        self.origin = origin
        self.budget = budget
        self.depth = depth
        self.anomalies: list[str] = []
        budget.check_depth(depth, origin, offset, _FV.name)
        view = memoryview(buffer)
        available = len(view)
        if available < L.FV_HEADER_SIZE:
            raise origin.error(f"needs {L.FV_HEADER_SIZE} bytes, only {available} left",
                               _FV.name, offset, PiTruncatedError)
        h = _FV.unpack_dict(view, 0)
        if h["signature"] != L.FV_SIGNATURE:
            raise origin.error(f"signature {bytes(h['signature'])!r} is not '_FVH'",
                               f"{_FV.name} Signature", offset + L.FV_SIGNATURE_OFFSET)
        self.file_system_guid = uuid.UUID(bytes_le=h["file_system_guid"])
        self.length: int = h["fv_length"]
        self.attributes: int = h["attributes"]
        self.header_length: int = h["header_length"]
        self.checksum: int = h["checksum"]
        self.ext_header_offset: int = h["ext_header_offset"]
        self.revision: int = h["revision"]
        hl = self.header_length
        min_header = L.FV_HEADER_SIZE + L.BLOCK_MAP_ENTRY_LAYOUT.size
        if hl < min_header or hl % 2 or hl > self.length:
            raise origin.error(
                f"HeaderLength {hl:#x} is not an even size between {min_header:#x} and "
                f"FvLength {self.length:#x}", f"{_FV.name} HeaderLength",
                offset + _FV.offset("header_length"))
        if hl > available:
            raise origin.error(f"HeaderLength {hl:#x} runs past the end ({available:#x} left)",
                               _FV.name, offset, PiTruncatedError)
        header_ok = L.fv_checksum(view[:hl]) == 0
        if not header_ok:
            if require_checksum:
                raise origin.error("header words do not sum to 0", f"{_FV.name} Checksum",
                                   offset + _FV.offset("checksum"))
            self.anomalies.append("header checksum is wrong (edk2 refuses the volume)")
        self.header_checksum_ok = header_ok
        if self.length > available:
            raise origin.error(
                f"FvLength {self.length:#x} runs past the end of the data ({available:#x} "
                f"bytes from the volume's start)", f"{_FV.name} FvLength",
                offset + _FV.offset("fv_length"), PiTruncatedError)
        if self.revision != L.FVH_REVISION:
            self.anomalies.append(f"Revision {self.revision} (expected {L.FVH_REVISION})")
        self.data = view[: self.length]
        self.block_map = self._block_map()
        self.name: uuid.UUID | None = None
        self.ext_entries: tuple[ExtEntry, ...] = ()
        self.used_size: int | None = None
        if self.ext_header_offset:
            self._ext_header()
        self.free_space_offset: int | None = None

    # -- header parts -----------------------------------------------------------------------

    def _block_map(self) -> tuple[BlockMapEntry, ...]:
        entries: list[BlockMapEntry] = []
        size = L.BLOCK_MAP_ENTRY_LAYOUT.size
        pos, total, terminated = L.FV_HEADER_SIZE, 0, False
        while pos + size <= self.header_length:
            num, length = L.BLOCK_MAP_ENTRY_LAYOUT.unpack_from(self.data, pos)
            pos += size
            if num == 0 and length == 0:
                terminated = True
                break
            entries.append(BlockMapEntry(num, length))
            total += num * length
        if not terminated:
            self.anomalies.append("block map has no {0, 0} terminator within HeaderLength")
        if total != self.length:
            self.anomalies.append(f"block map covers {total:#x} bytes, FvLength is "
                                  f"{self.length:#x}")
        return tuple(entries)

    def _ext_header(self) -> None:
        lay = L.EXT_HEADER_LAYOUT
        off = self.ext_header_offset
        structure = lay.name
        if off < self.header_length or off + lay.size > self.length:
            raise self.error(f"ExtHeaderOffset {off:#x} is outside the volume's body "
                             f"({self.header_length:#x}-{self.length:#x})",
                             f"{_FV.name} ExtHeaderOffset", _FV.offset("ext_header_offset"))
        name_raw, ext_size = lay.unpack_from(self.data, off)
        if ext_size < lay.size or off + ext_size > self.length:
            raise self.error(f"ExtHeaderSize {ext_size:#x} does not fit the volume",
                             f"{structure} ExtHeaderSize", off + lay.offset("ext_header_size"))
        self.name = uuid.UUID(bytes_le=name_raw)
        entries = []
        pos, end = off + lay.size, off + ext_size
        entry = L.EXT_ENTRY_LAYOUT
        while pos + entry.size <= end:
            esize, etype = entry.unpack_from(self.data, pos)
            if esize < entry.size or pos + esize > end:
                raise self.error(f"ExtEntrySize {esize:#x} does not fit the extended header",
                                 entry.name, pos)
            self.budget.take_node(self.origin, self.offset + pos, entry.name)
            entries.append(ExtEntry(pos, etype, esize))
            if etype == L.EXT_TYPE_USED_SIZE and esize >= L.USED_SIZE_LAYOUT.size:
                self.used_size = int(L.USED_SIZE_LAYOUT.unpack_dict(self.data, pos)["used_size"])
            pos += esize
        self.ext_entries = tuple(entries)

    # -- queries ----------------------------------------------------------------------------

    def error(self, message: str, structure: str, rel: int,
              cls: type[PiFormatError] = PiFormatError) -> PiFormatError:
        """An error at ``rel`` bytes from the volume's start."""
        return self.origin.error(message, structure, self.offset + rel, cls)

    def where(self, rel: int = 0) -> str:
        return self.origin.where(self.offset + rel)

    @property
    def absolute_offset(self) -> int | None:
        return self.origin.absolute(self.offset)

    @property
    def file_system(self) -> str:
        """``FFS2``, ``FFS3``, ``NVRAM`` (a variable store) or the GUID."""
        return L.FILE_SYSTEM_NAMES.get(self.file_system_guid, str(self.file_system_guid))

    @property
    def is_ffs(self) -> bool:
        return self.file_system_guid in (L.FIRMWARE_FILE_SYSTEM2_GUID,
                                         L.FIRMWARE_FILE_SYSTEM3_GUID)

    @property
    def is_ffs3(self) -> bool:
        return self.file_system_guid == L.FIRMWARE_FILE_SYSTEM3_GUID

    @property
    def erase_polarity(self) -> int:
        return 1 if self.attributes & L.FVB2_ERASE_POLARITY else 0

    @property
    def alignment(self) -> int:
        return 1 << ((self.attributes & L.FVB2_ALIGNMENT_MASK) >> L.FVB2_ALIGNMENT_SHIFT)

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the volume's bytes (hex): what identifies a build's code, where a hash of
        the flash file would also cover padding and, for OVMF.fd, live variables."""
        import hashlib

        return hashlib.sha256(self.data).hexdigest()

    @property
    def display_name(self) -> str:
        """The fdf name of a well-known volume (``DXEFV``), else its name GUID, else ``-``."""
        if self.name is None:
            return "-"
        return L.VOLUME_NAMES.get(self.name, str(self.name))

    def __repr__(self) -> str:
        return (f"FirmwareVolume({self.where()}, {self.file_system}, length={self.length:#x}, "
                f"name={self.name})")

    # -- files ------------------------------------------------------------------------------

    @cached_property
    def files(self) -> tuple[FfsFile, ...]:
        """The FFS files in order (pad files and deleted files included); none unless the
        volume is FFS2/FFS3."""
        if not self.is_ffs:
            return ()
        return tuple(self._walk_files())

    def _walk_files(self) -> Iterator[FfsFile]:
        data = self.data
        end = self.length
        erased = (b"\xff" if self.erase_polarity else b"\x00") * L.FFS_HEADER_SIZE
        pos = _align(self.header_length, L.FFS_ALIGNMENT)
        while pos + L.FFS_HEADER_SIZE <= end:
            if data[pos : pos + L.FFS_HEADER_SIZE] == erased:
                self.free_space_offset = pos
                return
            self.budget.take_node(self.origin, self.offset + pos, _FFS.name)
            f = FfsFile(self, pos)
            yield f
            pos = _align(pos + f.size, L.FFS_ALIGNMENT)
        if pos < end:
            # A tail too short for a header: it must be erased (or padding) space.
            self.free_space_offset = pos

    def walk(self) -> Iterator[FirmwareVolume]:
        """This volume and every volume nested in its files' sections, depth first."""
        yield self
        for f in self.files:
            for s in f.walk_sections():
                if s.volume is not None:
                    yield from s.volume.walk()


class FfsFile:
    """One EFI_FFS_FILE_HEADER(2) and its body; sections are read on first access."""

    def __init__(self, volume: FirmwareVolume, rel: int) -> None:
        self.volume = volume
        self.rel = rel  # from the volume's start
        data = volume.data
        h = _FFS.unpack_dict(data, rel)
        self.name = uuid.UUID(bytes_le=h["name"])
        self.header_checksum: int = h["header_checksum"]
        self.file_checksum: int = h["file_checksum"]
        self.type: int = h["type"]
        self.attributes: int = h["attributes"]
        self.raw_state: int = h["state"]
        size = int.from_bytes(h["size"], "little")
        self.large = bool(self.attributes & L.FFS_ATTRIB_LARGE_FILE)
        header_size = L.FFS_HEADER_SIZE
        room = volume.length - rel
        if self.large:
            header_size = L.FFS_HEADER2_SIZE
            if room < header_size:
                raise volume.error(f"a large file's header needs {header_size} bytes, only "
                                   f"{room} left in the volume", L.FFS_HEADER2_LAYOUT.name, rel,
                                   PiTruncatedError)
            size = int(L.FFS_HEADER2_LAYOUT.unpack_dict(data, rel)["extended_size"])
            if not volume.is_ffs3:
                volume.anomalies.append(f"large file {self.name} in an {volume.file_system} "
                                        "volume (edk2 accepts large files in FFS3 only)")
        self.header_size = header_size
        self.size = size
        if size < header_size:
            raise volume.error(f"size {size:#x} is smaller than its header ({header_size:#x})",
                               f"{_FFS.name} Size ({self.name})", rel + _FFS.offset("size"))
        if size > room:
            raise volume.error(f"size {size:#x} runs past the end of the volume ({room:#x} "
                               "bytes left)", f"{_FFS.name} Size ({self.name})",
                               rel + _FFS.offset("size"), PiTruncatedError)
        self.data = data[rel : rel + size]
        self.body = self.data[header_size:]

    # -- header facts -----------------------------------------------------------------------

    @property
    def origin(self) -> Origin:
        return self.volume.origin

    @property
    def offset(self) -> int:
        """The file's offset in its buffer (absolute when the buffer is the file)."""
        return self.volume.offset + self.rel

    @property
    def body_offset(self) -> int:
        return self.offset + self.header_size

    def where(self) -> str:
        return self.origin.where(self.offset)

    @property
    def type_name(self) -> str:
        return L.file_type_name(self.type)

    @property
    def state(self) -> int:
        """The state bits with erase polarity applied."""
        return (~self.raw_state & 0xFF) if self.volume.erase_polarity else self.raw_state

    @property
    def state_name(self) -> str:
        state = self.state
        if state == 0:
            return "erased"
        bit = 1 << (state.bit_length() - 1)  # 0x40 and 0x80 are reserved: not loaded
        return L.FILE_STATE_NAMES.get(bit, f"reserved-{bit:#04x}")

    @property
    def is_valid(self) -> bool:
        """State DATA_VALID as its highest bit (what edk2 loads)."""
        return self.state_name == "valid"

    @property
    def data_alignment(self) -> int:
        index = (self.attributes & L.FFS_ATTRIB_DATA_ALIGNMENT) >> 3
        table = (L.DATA_ALIGNMENT_2_LOG2 if self.attributes & L.FFS_ATTRIB_DATA_ALIGNMENT_2
                 else L.DATA_ALIGNMENT_LOG2)
        return 1 << table[index]

    @property
    def header_checksum_ok(self) -> bool:
        """The header bytes sum to 0 with IntegrityCheck.File and State counted as 0
        (MdeModulePkg/Core/Dxe/FwVol/Ffs.c IsValidFfsHeader)."""
        total = sum(self.data[: self.header_size]) - self.file_checksum - self.raw_state
        return total & 0xFF == 0

    @cached_property
    def data_checksum_ok(self) -> bool:
        """With FFS_ATTRIB_CHECKSUM the body and IntegrityCheck.File sum to 0; without it,
        IntegrityCheck.File is 0xAA (FFS_FIXED_CHECKSUM)."""
        if self.attributes & L.FFS_ATTRIB_CHECKSUM:
            return (sum(self.body) + self.file_checksum) & 0xFF == 0
        return self.file_checksum == L.FFS_FIXED_CHECKSUM

    def __repr__(self) -> str:
        return f"FfsFile({self.name}, {self.type_name}, {self.where()}, size={self.size:#x})"

    # -- sections ---------------------------------------------------------------------------

    @property
    def has_sections(self) -> bool:
        return self.type not in L.FILE_TYPES_WITHOUT_SECTIONS

    @cached_property
    def sections(self) -> tuple[Section, ...]:
        """The sections of the body (none for RAW and pad files)."""
        if not self.has_sections:
            return ()
        return parse_sections(self.body, self.body_offset, self.origin, self.volume.budget,
                              self.volume.depth, f"file {self.name}")

    def walk_sections(self) -> Iterator[Section]:
        """Every section, encapsulated ones (compressed, GUID-defined) included, depth first;
        not the sections of files inside nested volumes."""
        for s in self.sections:
            yield s
            yield from s.walk()

    @cached_property
    def ui_name(self) -> str | None:
        """The USER_INTERFACE section's name (the INF's BASE_NAME), if any."""
        from fwtools.formats.pi.layout import SECTION_USER_INTERFACE

        for s in self.walk_sections():
            if s.type == SECTION_USER_INTERFACE:
                return s.text
        return None

    @cached_property
    def image_section(self) -> Section | None:
        """The first PE32, TE or PIC section."""
        for s in self.walk_sections():
            if s.type in (L.SECTION_PE32, L.SECTION_TE, L.SECTION_PIC):
                return s
        return None


# The largest HeaderLength a top-level candidate may have (a block map of 120 entries; GenFv
# writes one or two): keeps the scan of a hostile file full of '_FVH' cheap.
MAX_SCAN_HEADER: Final = 0x400


def find_volumes(data: Buffer, budget: Budget, origin: Origin | None = None,
                 rejected: list[int] | None = None) -> Iterator[FirmwareVolume]:
    """The volumes laid out in a flash image, in order.

    A candidate is a ``_FVH`` signature 40 bytes after a place where a header with a valid
    checksum starts; a volume's body is skipped whole, so volumes nested inside it (or the
    signature quoted in a driver) are not taken for top-level ones. A header that checks out
    but whose FvLength runs past the image raises PiTruncatedError. Candidates whose header
    is sane but does not checksum are appended to ``rejected`` (their offsets).
    """
    origin = origin or Origin()
    view = memoryview(data)
    raw = data if isinstance(data, bytes) else bytes(data)
    pos = 0
    sig_at = L.FV_SIGNATURE_OFFSET
    while True:
        i = raw.find(L.FV_SIGNATURE, pos + sig_at)
        if i < 0:
            return
        start = i - sig_at
        verdict = _plausible(view, start)
        if verdict is not True:
            if verdict is False and rejected is not None:
                rejected.append(start)
            pos = start + 1
            continue
        fv = FirmwareVolume(view[start:], start, origin, budget)
        yield fv
        pos = start + max(fv.length, 1)


def _plausible(view: memoryview, start: int) -> bool | None:
    """True for a header whose HeaderLength is sane and whose words sum to 0; False when
    only the checksum is wrong; None when it is not a header at all."""
    if start < 0 or len(view) - start < L.FV_HEADER_SIZE:
        return None
    h = _FV.unpack_dict(view, start)
    hl = h["header_length"]
    if hl < L.FV_HEADER_SIZE + L.BLOCK_MAP_ENTRY_LAYOUT.size or hl % 2 or hl > MAX_SCAN_HEADER:
        return None
    if start + hl > len(view) or h["fv_length"] < hl:
        return None
    return L.fv_checksum(view[start : start + hl]) == 0


# -- sections ----------------------------------------------------------------------------------

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
        return raw[: len(raw) & ~1].decode("utf-16-le", "replace").split("\0", 1)[0]

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
                out = decompress_efi(self.body, tiano=False, budget=self.budget,
                                     origin=self.origin, offset=self.offset + self.data_offset)
                if self.uncompressed_length != len(out):
                    self.problem = (f"UncompressedLength {self.uncompressed_length:#x} differs "
                                    f"from the {len(out):#x} bytes decompressed")
                return memoryview(out), 0, self.origin.inner("EFI-compressed", self.offset)
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
        if guid == L.TIANO_GUID:
            out = decompress_efi(self.body, tiano=True, budget=self.budget, origin=self.origin,
                                 offset=self.offset + self.data_offset)
            return memoryview(out), 0, self.origin.inner("Tiano", self.offset)
        if guid == L.BROTLI_GUID:
            self.problem = "unsupported: Brotli compression is not decoded"
        else:
            self.problem = f"unsupported: GUID-defined section {guid} needs processing"
        return None

    @cached_property
    def volume(self) -> FirmwareVolume | None:
        """The volume inside a FIRMWARE_VOLUME_IMAGE section."""
        if self.type != L.SECTION_FIRMWARE_VOLUME_IMAGE:
            return None
        return FirmwareVolume(self.body, self.offset + self.data_offset, self.origin,
                              self.budget, self.depth + 1)

    def walk(self) -> Iterator[Section]:
        """Every section inside this one (not inside nested volumes), depth first."""
        for child in self.children:
            yield child
            yield from child.walk()


def decompress_efi(payload: memoryview, *, tiano: bool, budget: Budget, origin: Origin,
                   offset: int) -> bytes:
    """The output of an EFI standard (COMPRESSION type 1) or Tiano (GUID-defined) stream."""
    from fwtools.formats.pi import tiano as T

    kind = "Tiano" if tiano else "EFI"
    structure = f"{kind} compression header"
    try:
        _, size = T.sizes(payload)
    except T.TianoError as exc:
        raise origin.error(str(exc), structure, offset, PiTruncatedError) from None
    if size > budget.max_tiano:
        raise origin.error(f"OrigSize {size:#x} is above the {budget.max_tiano:#x} bytes the "
                           "Python decoder takes", f"{structure} OrigSize", offset + 4,
                           PiLimitError)
    budget.take_output(size, origin, offset + 4, f"{structure} OrigSize")
    try:
        return T.decompress(payload, tiano=tiano)
    except T.TianoError as exc:
        raise origin.error(f"{kind}-compressed data cannot be decoded: {exc}", structure,
                           offset + T.HEADER_SIZE + exc.offset) from None


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
    except (lzma.LZMAError, ValueError) as exc:
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
    # The raw decoder takes no memory limit; it never needs a dictionary larger than its
    # output, whatever the header asks for.
    window = max(min(dict_size, len(plain)), 4096)
    filters = [{"id": lzma.FILTER_X86},
               {"id": lzma.FILTER_LZMA1, "dict_size": window, "lc": lc, "lp": lp, "pb": pb}]
    try:
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)
        converted = dec.decompress(payload[L.LZMA_HEADER_LAYOUT.size :], max_length=len(plain))
    except (lzma.LZMAError, ValueError) as exc:
        raise origin.error(f"LZMA+x86 data cannot be decoded: {exc}", L.LZMA_HEADER_LAYOUT.name,
                           offset) from None
    return converted + plain[len(converted) :]
