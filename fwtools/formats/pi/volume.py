"""Firmware volumes and their FFS files (PI volume 3 chapters 3.1-3.2).

A volume's header, block map and extended header are read when it is built; its files are
walked on first access of :attr:`FirmwareVolume.files`, and a file's sections on first access
of :attr:`FfsFile.sections` (:mod:`.section`), so listing the volumes of a flash image
decompresses nothing.

The walk follows edk2's DXE FV driver (MdeModulePkg/Core/Dxe/FwVol/FwVolInit.c FvCheck and
Ffs.c): files start 8-byte aligned, the first header that is all erased bytes ends the file
list, the state byte is inverted on erase-polarity-1 volumes and its highest set bit decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from fwtools.formats.pi import layout as L
from fwtools.formats.pi.errors import Budget, Origin, PiFormatError, PiTruncatedError

if TYPE_CHECKING:
    from fwtools.formats.pi.section import Section

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
        return L.FILE_STATE_NAMES[1 << (state.bit_length() - 1)]

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
        from fwtools.formats.pi.section import parse_sections

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


def find_volumes(data: Buffer, budget: Budget, origin: Origin | None = None) -> Iterator[
        FirmwareVolume]:
    """The volumes laid out in a flash image, in order.

    A candidate is a ``_FVH`` signature 40 bytes after a place where a header with a valid
    checksum starts; a volume's body is skipped whole, so volumes nested inside it (or the
    signature quoted in a driver) are not taken for top-level ones. A header that checks out
    but whose FvLength runs past the image raises PiTruncatedError.
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
        if not _plausible(view, start):
            pos = start + 1
            continue
        fv = FirmwareVolume(view[start:], start, origin, budget)
        yield fv
        pos = start + max(fv.length, 1)


def _plausible(view: memoryview, start: int) -> bool:
    """A header whose HeaderLength is sane and whose words sum to 0."""
    if start < 0 or len(view) - start < L.FV_HEADER_SIZE:
        return False
    h = _FV.unpack_dict(view, start)
    hl = h["header_length"]
    if hl < L.FV_HEADER_SIZE + L.BLOCK_MAP_ENTRY_LAYOUT.size or hl % 2 or hl > 0x10000:
        return False
    if start + hl > len(view) or h["fv_length"] < hl:
        return False
    return L.fv_checksum(view[start : start + hl]) == 0
