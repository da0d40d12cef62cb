"""PE/COFF images: headers and section table, validated, with absolute file offsets.

Headers are decoded by pefile in ``fast_load`` mode (no directory parsing, no byte
statistics); everything pefile merely warns about that makes the image unloadable is
checked here and raised as :class:`PeFormatError` with the offset of the offending field.
Section bodies are read only when asked for.
"""

from __future__ import annotations

import itertools
import os
import warnings
from functools import cached_property
from typing import TYPE_CHECKING

from fwtools._base.fileio import read_file
from fwtools._base.flags import flag_names
from fwtools._base.reader import Reader
from fwtools._base.record import Record
from fwtools.errors import ParseError, PeFormatError, TruncatedError
from fwtools.formats.pe import layout

if TYPE_CHECKING:
    import pefile


class Section(Record):
    """One IMAGE_SECTION_HEADER with its absolute file offset."""

    index: int
    name: str
    raw_name: bytes
    header_offset: int
    virtual_address: int
    virtual_size: int
    raw_offset: int
    raw_size: int
    characteristics: int

    @property
    def read(self) -> bool:
        return bool(self.characteristics & layout.SCN_MEM_READ)

    @property
    def write(self) -> bool:
        return bool(self.characteristics & layout.SCN_MEM_WRITE)

    @property
    def execute(self) -> bool:
        return bool(self.characteristics & layout.SCN_MEM_EXECUTE)

    @property
    def contains_code(self) -> bool:
        return bool(self.characteristics & layout.SCN_CNT_CODE)

    @property
    def discardable(self) -> bool:
        return bool(self.characteristics & layout.SCN_MEM_DISCARDABLE)

    @property
    def permissions(self) -> str:
        """``rwx`` with dashes for missing permissions, as in ``/proc/*/maps``."""
        return (
            ("r" if self.read else "-")
            + ("w" if self.write else "-")
            + ("x" if self.execute else "-")
        )

    @property
    def virtual_end(self) -> int:
        return self.virtual_address + max(self.virtual_size, 0)

    @property
    def raw_end(self) -> int:
        return self.raw_offset + self.raw_size

    @property
    def memory_size(self) -> int:
        """Bytes the loader maps: VirtualSize, or SizeOfRawData when VirtualSize is 0."""
        return self.virtual_size or self.raw_size

    def is_page_aligned(self, page_size: int = layout.PAGE_SIZE) -> bool:
        """Whether the section starts on a page boundary, so it can get its own permissions."""
        return self.virtual_address % page_size == 0

    @property
    def characteristic_names(self) -> list[str]:
        return flag_names(
            self.characteristics & ~layout.SCN_ALIGN_MASK, layout.SECTION_CHARACTERISTICS
        )


class DataDirectory(Record):
    index: int
    name: str
    entry_offset: int
    virtual_address: int
    size: int


class PeImage:
    """A parsed PE/COFF image over an in-memory copy of the file.

    Construction validates the DOS header, PE signature, COFF and optional headers, and the
    section table (every section's raw data inside the file). Anything else odd but loadable
    is collected in :attr:`anomalies`.
    """

    def __init__(self, data: bytes, path: str | None = None) -> None:
        self.data = data
        self.path = path
        self.anomalies: list[str] = []
        try:
            self._parse()
        except ParseError as exc:
            raise (exc.with_path(path) if path else exc) from None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PeImage:
        return cls(read_file(path), os.fspath(path))

    # -- parsing -------------------------------------------------------------------------

    def _parse(self) -> None:
        data = self.data
        reader = Reader(data)
        if len(data) < layout.DOS_HEADER.size:
            raise TruncatedError(
                f"file is {len(data)} bytes, shorter than a DOS header", structure="DOS header",
                offset=0,
            )
        if data[:2] != layout.DOS_MAGIC:
            raise PeFormatError("no MZ signature", structure="DOS header", offset=0)
        pe_offset = reader.u32(layout.E_LFANEW_OFFSET, "DOS header e_lfanew")
        coff = pe_offset + len(layout.PE_SIGNATURE)
        if coff + layout.COFF_HEADER_SIZE + layout.OPTIONAL_HEADER64.end("Magic") > len(data):
            raise PeFormatError(
                f"e_lfanew {pe_offset:#x} points past the end of the file ({len(data):#x})",
                structure="DOS header e_lfanew",
                offset=layout.E_LFANEW_OFFSET,
            )
        if data[pe_offset:coff] != layout.PE_SIGNATURE:
            raise PeFormatError(
                "no PE\\0\\0 signature at e_lfanew", structure="PE signature", offset=pe_offset
            )
        self.pe_offset = pe_offset
        self.coff_header_offset = coff
        header = dict(zip(
            layout.COFF_HEADER.names,
            reader.unpack(layout.COFF_HEADER.struct, coff, "COFF header"),
            strict=True,
        ))
        self.machine = int(header["Machine"])
        self.number_of_sections = int(header["NumberOfSections"])
        self.timestamp = int(header["TimeDateStamp"])
        self.pointer_to_symbol_table = int(header["PointerToSymbolTable"])
        self.number_of_symbols = int(header["NumberOfSymbols"])
        self.size_of_optional_header = int(header["SizeOfOptionalHeader"])
        self.characteristics = int(header["Characteristics"])
        opt = coff + layout.COFF_HEADER_SIZE
        self.optional_header_offset = opt
        self.magic = reader.u16(opt, "optional header Magic")
        if self.magic not in layout.OPTIONAL_HEADERS:
            raise PeFormatError(
                f"optional header magic {self.magic:#x} is neither PE32 nor PE32+",
                structure="optional header",
                offset=opt,
            )
        self.optional_header_layout = layout.OPTIONAL_HEADERS[self.magic]
        dirs_rel = self.optional_header_layout.size
        if self.size_of_optional_header < dirs_rel:
            raise PeFormatError(
                f"SizeOfOptionalHeader {self.size_of_optional_header:#x} is smaller than the "
                f"fixed fields ({dirs_rel:#x})",
                structure="COFF header",
                offset=self.coff_field_offset("SizeOfOptionalHeader"),
            )
        self.section_table_offset = opt + self.size_of_optional_header
        table_end = self.section_table_offset + self.number_of_sections * layout.SECTION_HEADER_SIZE
        if table_end > len(data):
            raise PeFormatError(
                f"section table of {self.number_of_sections} entries ends at {table_end:#x}, "
                f"past the end of the file ({len(data):#x})",
                structure="section table",
                offset=self.section_table_offset,
            )
        if self.number_of_sections > layout.MAX_SECTIONS:
            raise PeFormatError(
                f"{self.number_of_sections} sections (at most {layout.MAX_SECTIONS} supported)",
                structure="COFF header NumberOfSections",
                offset=self.coff_field_offset("NumberOfSections"),
            )
        if self.number_of_sections > 96:
            self.anomalies.append(
                f"{self.number_of_sections} sections: more than the 96 loaders accept"
            )
        pe = self._pefile()
        oh = pe.OPTIONAL_HEADER
        self.major_linker_version = int(oh.MajorLinkerVersion)
        self.minor_linker_version = int(oh.MinorLinkerVersion)
        self.size_of_code = int(oh.SizeOfCode)
        # 1 or more in a Linux EFI stub with LINUX_INITRD_MEDIA (5.8+), which systemd-stub checks
        self.major_image_version = int(oh.MajorImageVersion)
        self.entry_point = int(oh.AddressOfEntryPoint)
        self.image_base = int(oh.ImageBase)
        self.section_alignment = int(oh.SectionAlignment)
        self.file_alignment = int(oh.FileAlignment)
        self.size_of_image = int(oh.SizeOfImage)
        self.size_of_headers = int(oh.SizeOfHeaders)
        self.checksum = int(oh.CheckSum)
        self.subsystem = int(oh.Subsystem)
        self.dll_characteristics = int(oh.DllCharacteristics)
        self.number_of_rva_and_sizes = int(oh.NumberOfRvaAndSizes)
        self.checksum_offset = self.optional_field_offset("CheckSum")
        dirs_off = opt + dirs_rel
        max_dirs = (self.size_of_optional_header - dirs_rel) // layout.DATA_DIRECTORY_SIZE
        ndirs = min(self.number_of_rva_and_sizes, max_dirs, len(layout.DATA_DIRECTORY_NAMES))
        if self.number_of_rva_and_sizes > max_dirs:
            self.anomalies.append(
                f"NumberOfRvaAndSizes {self.number_of_rva_and_sizes} exceeds the optional "
                f"header's room for {max_dirs}"
            )
        directories = []
        for i in range(ndirs):
            entry = dirs_off + i * layout.DATA_DIRECTORY_SIZE
            directories.append(
                DataDirectory(
                    i,
                    layout.DATA_DIRECTORY_NAMES[i],
                    entry,
                    *reader.unpack(layout.DATA_DIRECTORY.struct, entry, "data directory"),
                )
            )
        self.data_directories = tuple(directories)
        self.sections = self._parse_sections(pe)
        if self.size_of_headers > len(data):
            raise PeFormatError(
                f"SizeOfHeaders {self.size_of_headers:#x} is past the end of the file "
                f"({len(data):#x})",
                structure="optional header SizeOfHeaders",
                offset=self.optional_field_offset("SizeOfHeaders"),
            )
        self._check_security_directory()

    def _pefile(self) -> pefile.PE:
        import pefile

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return pefile.PE(data=self.data, fast_load=True)
        except pefile.PEFormatError as exc:
            raise PeFormatError(
                str(exc.value if hasattr(exc, "value") else exc), structure="PE headers",
                offset=self.pe_offset,
            ) from None

    def _parse_sections(self, pe: pefile.PE) -> tuple[Section, ...]:
        sections: list[Section] = []
        parsed = {int(s.get_file_offset()): s for s in pe.sections}
        for i in range(self.number_of_sections):
            off = self.section_table_offset + i * layout.SECTION_HEADER_SIZE
            s = parsed.get(off)
            raw_name = self.data[off : off + layout.SECTION_HEADER.end("Name")]
            if s is None:
                # pefile stops at an all-zero header; edk2 would load garbage from it.
                raise PeFormatError(
                    "section header is empty or unreadable",
                    structure=f"IMAGE_SECTION_HEADER[{i}]",
                    offset=off,
                )
            section = Section(
                index=i,
                name=self._section_name(raw_name),
                raw_name=raw_name,
                header_offset=off,
                virtual_address=int(s.VirtualAddress),
                virtual_size=int(s.Misc_VirtualSize),
                raw_offset=int(s.PointerToRawData),
                raw_size=int(s.SizeOfRawData),
                characteristics=int(s.Characteristics),
            )
            if section.raw_size and section.raw_end > len(self.data):
                raise PeFormatError(
                    f"section {section.name!r} raw data {section.raw_offset:#x}-"
                    f"{section.raw_end:#x} extends past the end of the file "
                    f"({len(self.data):#x})",
                    structure=f"IMAGE_SECTION_HEADER[{i}]",
                    offset=off + layout.SECTION_HEADER.offset("SizeOfRawData"),
                )
            if section.virtual_end > self.size_of_image:
                self.anomalies.append(
                    f"section {section.name!r} ends at RVA {section.virtual_end:#x}, past "
                    f"SizeOfImage {self.size_of_image:#x}"
                )
            sections.append(section)
        ordered = sorted(sections, key=lambda s: s.virtual_address)
        for a, b in itertools.pairwise(ordered):
            if a.virtual_end > b.virtual_address:
                self.anomalies.append(
                    f"sections {a.name!r} and {b.name!r} overlap in memory"
                )
        return tuple(sections)

    def _section_name(self, raw_name: bytes) -> str:
        """Decode a section name, following "/N" long names into the COFF string table.

        GNU ld writes names longer than 8 bytes (shim's ``.sbatlevel``, ``.vendor_cert``,
        ``.data.ident``) as "/N", N being a decimal offset into the string table that follows
        the COFF symbol table.
        """
        name = raw_name.rstrip(b"\0").decode("ascii", "replace")
        if not (name.startswith("/") and name[1:].isdigit() and self.pointer_to_symbol_table):
            return name
        strtab = self.pointer_to_symbol_table + self.number_of_symbols * layout.COFF_SYMBOL_SIZE
        start = strtab + int(name[1:])
        if start >= len(self.data):
            self.anomalies.append(f"long section name {name} points past the end of the file")
            return name
        end = self.data.find(b"\0", start, start + 256)
        if end < 0:
            return name
        return self.data[start:end].decode("ascii", "replace")

    def _check_security_directory(self) -> None:
        sec = self.directory(layout.DIR_SECURITY)
        if sec is None or (sec.virtual_address == 0 and sec.size == 0):
            return
        # The security directory holds a file offset, not an RVA.
        if sec.virtual_address + sec.size > len(self.data) or sec.virtual_address == 0:
            raise PeFormatError(
                f"certificate table {sec.virtual_address:#x}+{sec.size:#x} lies outside the "
                f"file ({len(self.data):#x})",
                structure="data directory SECURITY",
                offset=sec.entry_offset,
            )

    # -- queries -------------------------------------------------------------------------

    def coff_field_offset(self, field: str) -> int:
        """The file offset of a COFF file header field (``"NumberOfSections"``)."""
        return self.coff_header_offset + layout.COFF_HEADER.offset(field)

    def optional_field_offset(self, field: str) -> int:
        """The file offset of an optional header field, from this image's form (PE32 or
        PE32+): ``"ImageBase"`` is at 28 in PE32 and at 24 in PE32+."""
        return self.optional_header_offset + self.optional_header_layout.offset(field)

    @property
    def is_pe32_plus(self) -> bool:
        return self.magic == layout.PE32PLUS_MAGIC

    @property
    def machine_name(self) -> str:
        return layout.MACHINES.get(self.machine, f"{self.machine:#06x}")

    @property
    def subsystem_name(self) -> str:
        return layout.SUBSYSTEMS.get(self.subsystem, str(self.subsystem))

    @property
    def nx_compat(self) -> bool:
        return bool(self.dll_characteristics & layout.DLL_NX_COMPAT)

    @property
    def dll_characteristic_names(self) -> list[str]:
        return flag_names(self.dll_characteristics, layout.DLL_CHARACTERISTICS)

    @property
    def characteristic_names(self) -> list[str]:
        return flag_names(self.characteristics, layout.FILE_CHARACTERISTICS)

    def directory(self, index: int) -> DataDirectory | None:
        return self.data_directories[index] if index < len(self.data_directories) else None

    @property
    def has_relocations(self) -> bool:
        reloc = self.directory(layout.DIR_BASERELOC)
        stripped = bool(self.characteristics & layout.FILE_RELOCS_STRIPPED)
        return reloc is not None and reloc.size > 0 and not stripped

    @property
    def certificate_table(self) -> tuple[int, int] | None:
        """(file offset, size) of the attribute certificate table, or None when unsigned."""
        sec = self.directory(layout.DIR_SECURITY)
        if sec is None or sec.size == 0:
            return None
        return sec.virtual_address, sec.size

    @property
    def security_entry_offset(self) -> int | None:
        sec = self.directory(layout.DIR_SECURITY)
        return None if sec is None else sec.entry_offset

    def section(self, name: str) -> Section | None:
        """The first section called ``name``, or None."""
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_data(self, section: Section) -> bytes:
        """The section's bytes as the loader sees them: raw data cut to VirtualSize.

        Special sections (.sbat, .osrel, ...) are padded to FileAlignment on disk; the
        VirtualSize is the real length of their payload.
        """
        size = section.raw_size
        if section.virtual_size:
            size = min(size, section.virtual_size)
        return self.data[section.raw_offset : section.raw_offset + size]

    def rva_to_offset(self, rva: int) -> int | None:
        """The file offset of ``rva``, or None when it is not backed by file data."""
        if rva < self.size_of_headers:
            return rva
        for s in self.sections:
            if s.virtual_address <= rva < s.virtual_address + max(s.raw_size, s.virtual_size):
                delta = rva - s.virtual_address
                return s.raw_offset + delta if delta < s.raw_size else None
        return None

    @cached_property
    def end_of_section_data(self) -> int:
        """File offset just past the last byte covered by headers or any section."""
        ends = [self.size_of_headers] + [s.raw_end for s in self.sections if s.raw_size]
        return max(ends)

    def computed_checksum(self) -> int:
        """The PE optional-header CheckSum as the Windows loader computes it."""
        return self._computed_checksum

    @cached_property
    def _computed_checksum(self) -> int:
        # The checksum is the ones'-complement sum of the 16-bit words with the CheckSum
        # field taken as 0, folded to 16 bits, plus the file length. Since 2**16 == 1
        # (mod 0xFFFF), the folded sum of the words is the whole file read as one
        # little-endian integer, mod 0xFFFF (0xFFFF instead of 0 for a non-zero sum).
        # The stored CheckSum's two words are subtracted rather than the field zeroed in a
        # copy of the file; CheckSum sits at an even offset, so they are whole words.
        data = self.data
        n = len(data)
        value = int.from_bytes(data, "little")  # an odd trailing byte is its own low half
        stored = self.checksum
        folded = (value - (stored & 0xFFFF) - (stored >> 16)) % 0xFFFF
        if folded == 0 and value != stored << (8 * self.checksum_offset):
            folded = 0xFFFF
        return (folded + n) & 0xFFFFFFFF
