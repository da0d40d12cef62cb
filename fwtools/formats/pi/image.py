"""A PI firmware image (a flash image such as OVMF_CODE_4M.fd or AAVMF_CODE.fd) and the
executable modules inside it.

The image is raw flash or qcow2 (told by content); its top-level volumes are found when it is
opened, everything below on demand. :meth:`FirmwareImage.modules` walks all volumes, nested
and compressed ones included, and lists every FFS file holding an executable image (PE32,
TE or PIC section) with its UI name, GUID, FFS type and the image's PE facts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Final

from fwtools._base.fileio import read_file
from fwtools.errors import FwError
from fwtools.formats.pe import layout as pe_layout
from fwtools.formats.pi import layout as L
from fwtools.formats.pi.errors import FILE, Budget, PiFormatError
from fwtools.formats.pi.volume import FfsFile, FirmwareVolume, find_volumes

if TYPE_CHECKING:
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pi.volume import Section
    from fwtools.formats.varstore.store import VariableStore

# The largest flash image fwtools expects: AAVMF's 64 MiB; a qcow2 header claiming more
# than this is refused before anything is allocated.
MAX_IMAGE_SIZE: Final = 256 << 20


@dataclass(frozen=True)
class TeInfo:
    """An EFI_TE_IMAGE_HEADER: what a TE image says of itself (no SectionAlignment, no
    DllCharacteristics: those are stripped with the PE headers)."""

    machine: int
    subsystem: int
    number_of_sections: int
    stripped_size: int
    entry_point: int
    image_base: int
    wx_sections: tuple[str, ...]
    sections: tuple[tuple[str, int], ...]  # (name, characteristics)

    @property
    def machine_name(self) -> str:
        return pe_layout.MACHINES.get(self.machine, f"{self.machine:#06x}")


def parse_te(data: bytes, section: Section) -> TeInfo:
    """The TE header and section table of ``data`` (a TE section's body)."""
    lay = L.TE_HEADER_LAYOUT
    if len(data) < lay.size:
        raise section.error(f"TE image of {len(data)} bytes is shorter than its header",
                            lay.name, section.data_offset)
    h = lay.unpack_dict(data)
    if h["signature"] != L.TE_SIGNATURE:
        raise section.error(f"signature {h['signature']!r} is not 'VZ'", lay.name,
                            section.data_offset)
    count = h["number_of_sections"]
    shdr = pe_layout.SECTION_HEADER
    end = lay.size + count * shdr.size
    if end > len(data):
        raise section.error(f"{count} section headers run past the TE image ({len(data):#x})",
                            lay.name, section.data_offset)
    sections = []
    wx = []
    for i in range(count):
        s = shdr.unpack_dict(data, lay.size + i * shdr.size)
        name = bytes(s["Name"]).rstrip(b"\0").decode("ascii", "replace")
        ch = int(s["Characteristics"])
        sections.append((name, ch))
        if ch & pe_layout.SCN_MEM_WRITE and ch & pe_layout.SCN_MEM_EXECUTE:
            wx.append(name)
    return TeInfo(h["machine"], h["subsystem"], count, h["stripped_size"],
                  h["address_of_entry_point"], h["image_base"], tuple(wx), tuple(sections))


class Module:
    """An FFS file holding an executable image: a driver, an application, a core."""

    def __init__(self, file: FfsFile, section: Section, volume_path: tuple[str, ...]) -> None:
        self.file = file
        self.section = section
        self.volume_path = volume_path

    @property
    def guid(self) -> uuid.UUID:
        return self.file.name

    @property
    def name(self) -> str | None:
        return self.file.ui_name

    @property
    def label(self) -> str:
        """The UI name, else the GUID."""
        return self.name or str(self.guid)

    @property
    def file_type(self) -> str:
        return self.file.type_name

    @property
    def image_format(self) -> str:
        """``PE32`` (PE32 or PE32+), ``TE`` or ``PIC``."""
        return self.section.type_name

    @cached_property
    def image_bytes(self) -> bytes:
        return bytes(self.section.body)

    @property
    def where(self) -> str:
        return self.section.where()

    @property
    def version(self) -> str | None:
        for s in self.file.walk_sections():
            if s.type == L.SECTION_VERSION:
                return s.text
        return None

    @cached_property
    def _parsed(self) -> tuple[PeImage | TeInfo | None, str | None]:
        try:
            if self.section.type == L.SECTION_TE:
                return parse_te(self.image_bytes, self.section), None
            from fwtools.formats.pe.image import PeImage

            return PeImage(self.image_bytes, f"{self.label} ({self.where})"), None
        except FwError as exc:
            return None, str(exc)

    @property
    def pe(self) -> PeImage | None:
        """The PE image (None for TE, or when it does not parse: see :attr:`image_error`)."""
        from fwtools.formats.pe.image import PeImage

        parsed = self._parsed[0]
        return parsed if isinstance(parsed, PeImage) else None

    @property
    def te(self) -> TeInfo | None:
        parsed = self._parsed[0]
        return parsed if isinstance(parsed, TeInfo) else None

    @property
    def image_error(self) -> str | None:
        return self._parsed[1]

    @property
    def machine(self) -> int | None:
        img = self._parsed[0]
        return None if img is None else img.machine

    @property
    def wx_sections(self) -> tuple[str, ...]:
        pe, te = self.pe, self.te
        if pe is not None:
            return tuple(s.name for s in pe.sections if s.write and s.execute)
        return te.wx_sections if te is not None else ()

    def __repr__(self) -> str:
        return f"Module({self.label}, {self.file_type}, {self.image_format}, {self.where})"


class FirmwareImage:
    """A flash image: its top-level volumes, and through them every nested one.

    ``container`` is ``raw`` or ``qcow2``; ``data`` is the raw flash. ``budget`` bounds what
    reading the image may decompress and how deep it may nest (:mod:`.errors`).
    """

    def __init__(self, data: bytes, path: str | None = None, *, container: str = "raw",
                 budget: Budget | None = None) -> None:
        self.data = data
        self.path = path
        self.container = container
        self.budget = budget or Budget()
        rejected: list[int] = []
        try:
            self.volumes = tuple(find_volumes(data, self.budget, FILE, rejected))
        except PiFormatError as exc:
            raise exc.with_path(path) if path else exc from None
        if not self.volumes:
            if rejected:  # the likeliest volume is broken: say where
                err = PiFormatError(
                    "header words do not sum to 0 (the only '_FVH' header candidates have a "
                    "wrong checksum)", structure="EFI_FIRMWARE_VOLUME_HEADER Checksum",
                    offset=rejected[0] + L.FV_HEADER_LAYOUT.offset("checksum"))
            else:
                err = PiFormatError("no firmware volume (no '_FVH' header)",
                                    structure="EFI_FIRMWARE_VOLUME_HEADER", offset=0)
            raise err.with_path(path) if path else err

    @classmethod
    def parse(cls, data: bytes, path: str | None = None, *,
              budget: Budget | None = None) -> FirmwareImage:
        """Raw flash or qcow2 (the flash is its guest view)."""
        from fwtools.formats.qcow2.layout import is_qcow2

        if is_qcow2(data):
            from fwtools.formats.qcow2 import Qcow2Image

            raw = Qcow2Image.parse(data, path=path, max_virtual_size=MAX_IMAGE_SIZE).to_raw()
            return cls(raw, path, container="qcow2", budget=budget)
        return cls(data, path, budget=budget)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> FirmwareImage:
        return cls.parse(read_file(path), os.fspath(path))

    def _guard(self, exc: FwError) -> FwError:
        return exc.with_path(self.path) if self.path else exc

    # -- walking ----------------------------------------------------------------------------

    def all_volumes(self) -> Iterator[FirmwareVolume]:
        """Every volume, nested ones after their parent (decompresses what holds them)."""
        try:
            for fv in self.volumes:
                yield from fv.walk()
        except FwError as exc:
            raise self._guard(exc) from None

    def files(self) -> Iterator[FfsFile]:
        for fv in self.all_volumes():
            yield from fv.files

    @cached_property
    def modules(self) -> tuple[Module, ...]:
        """Every FFS file with a PE32, TE or PIC section (valid state only), in flash order."""
        out: list[Module] = []
        try:
            for top in self.volumes:
                self._collect(top, (top.display_name,), out)
        except FwError as exc:
            raise self._guard(exc) from None
        return tuple(out)

    def _collect(self, fv: FirmwareVolume, path: tuple[str, ...], out: list[Module]) -> None:
        for f in fv.files:
            if not f.is_valid or not f.has_sections:
                continue
            if f.type in L.EXECUTABLE_FILE_TYPES:
                image = f.image_section
                if image is not None:
                    out.append(Module(f, image, path))
            for s in f.walk_sections():
                if s.volume is not None:
                    self._collect(s.volume, (*path, s.volume.display_name), out)

    def code_span(self) -> tuple[int, int]:
        """``(start, end)``: where the firmware's code lies in the flash, the part that
        identifies a build.

        It starts at the first volume that is not a variable store when the image opens
        with one: OVMF.fd carries its NV area (the NVRAM volume, gEfiSystemNvDataFvGuid,
        with the fault-tolerant-write blocks inside its FvLength) before the code
        (OvmfPkg/OvmfPkgX64.fdf ``[FD.OVMF]``: VARS then FVMAIN_COMPACT and SECFV), and a VM
        writes that area. It ends where the last volume ends when only blank bytes (all
        0x00 or all 0xFF) follow: Debian's AAVMF_CODE.fd is QEMU_EFI.fd padded with zeros
        to QEMU's 64 MiB flash (debian/rules). Everything else counts, such as the jump that
        ArmVirtQemu.fdf puts before its volume."""
        data = self.data
        start, end = 0, len(data)
        code = [fv for fv in self.volumes if fv.file_system != "NVRAM"]
        if not code:
            return start, end
        if self.volumes[0].file_system == "NVRAM":
            start = code[0].offset
        last = max(fv.offset + fv.length for fv in self.volumes)
        tail = end - last
        if tail > 0 and (data.count(b"\x00", last) == tail or data.count(b"\xff", last) == tail):
            end = last
        return start, end

    @cached_property
    def code_sha256(self) -> str:
        """SHA-256 (hex) of the bytes in :meth:`code_span`: the same for a build whether it
        comes as its ``*_CODE*.fd``, inside OVMF.fd (any variables), padded, or in qcow2."""
        import hashlib

        start, end = self.code_span()
        return hashlib.sha256(memoryview(self.data)[start:end]).hexdigest()

    @property
    def has_variable_store(self) -> bool:
        return any(fv.file_system == "NVRAM" for fv in self.volumes)

    def variable_store(self) -> tuple[FirmwareVolume, VariableStore | None, str | None] | None:
        """The variable store volume built into the image (OVMF.fd), parsed: (volume, store,
        None), or (volume, None, why it does not parse); None when there is none."""
        fv = next((v for v in self.volumes if v.file_system == "NVRAM"), None)
        if fv is None:
            return None
        from fwtools.formats.varstore.store import VariableStore

        try:
            return fv, VariableStore.parse(bytes(fv.data), path=self.path), None
        except FwError as exc:
            return fv, None, str(exc)

    def problems(self) -> list[str]:
        """Anomalies of every volume and the sections that could not be decoded (after a
        walk: sections not yet decoded have none)."""
        out: list[str] = []
        for fv in self.all_volumes():
            out += [f"volume {fv.where()}: {a}" for a in fv.anomalies]
            for f in fv.files:
                if not f.header_checksum_ok:
                    out.append(f"file {f.name} {f.where()}: header checksum is wrong")
                if not f.data_checksum_ok:
                    out.append(f"file {f.name} {f.where()}: data checksum is wrong")
                out += [f"section {s.type_name} {s.where()} of {f.name}: {s.problem}"
                        for s in f.walk_sections() if s.problem]
        return out
