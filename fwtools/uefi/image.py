"""What a loader needs to know about a boot-chain binary, read from the file itself.

The PE layout a loader places in memory (sections, alignment, entry, relocation pages),
plus the clues that identify the component and its version (wx-model.md §6.2): ``.sbat``
rows, shim's ``.data.ident``, the bzImage header and arm64 Image/zboot headers, systemd's
``.sdmagic``, and for a UKI the embedded ``.linux`` kernel.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Final

from fwtools._base.fileio import read_file
from fwtools._base.reader import Reader
from fwtools.errors import FwError
from fwtools.formats.pe import layout
from fwtools.formats.pe.image import PeImage, Section

_VERSION: Final = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    """``"2.06-13+deb12u2"`` -> (2, 6); ``"6.12.117+deb13-amd64"`` -> (6, 12, 117);
    ``"257"`` -> (257,)."""
    if not text:
        return None
    m = _VERSION.search(text)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


@dataclass(frozen=True)
class KernelFacts:
    kind: str  # "bzimage", "arm64-image", "zboot"
    version: tuple[int, ...] | None
    release: str | None
    handover_64: bool = False
    init_size: int = 0  # bzImage: memory the decompressed kernel needs
    # bzImage: file offset of the 64-bit EFI handover entry, which a loader calls at
    # code32_start + 512 + handover_offset (code32_start = the protected-mode code)
    handover_entry: int = 0


@dataclass(frozen=True)
class SbatEntry:
    component: str
    generation: int
    version: str


@dataclass(frozen=True)
class StageImage:
    """A boot-chain binary as the replay sees it."""

    path: str
    file_size: int
    machine: str
    subsystem: int
    section_alignment: int
    file_alignment: int
    size_of_image: int
    size_of_headers: int
    entry_rva: int
    nx_compat: bool
    relocs_stripped: bool
    has_reloc_directory: bool
    reloc_pages: tuple[int, ...]
    major_image_version: int
    sections: tuple[Section, ...]
    signed: bool
    sbat: tuple[SbatEntry, ...]
    shim_version: str | None
    kernel: KernelFacts | None
    systemd: bool  # .sdmagic present: systemd-boot or systemd-stub
    uki_kernel: StageImage | None  # the .linux section of a UKI

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def wx_sections(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.write and s.execute)

    def sbat_version(self, component: str) -> str | None:
        for e in self.sbat:
            if e.component == component:
                return e.version
        return None

    def vendors(self) -> tuple[str, ...]:
        """The ``component.vendor`` rows (``grub.debian``, ``grub.rh``...)."""
        return tuple(e.component for e in self.sbat if "." in e.component)


def load_stage(path: str | os.PathLike[str]) -> StageImage:
    data = read_file(path)
    return stage_from_bytes(data, os.fspath(path))


def stage_from_bytes(data: bytes, path: str) -> StageImage:
    img = PeImage(data, path)
    sections = img.sections
    sbat: tuple[SbatEntry, ...] = ()
    shim_version = None
    uki_kernel = None
    systemd = False
    # Imported here: the special-section decoders pull in every format they know.
    from fwtools.formats.pe.special import PartialDecode, decode_sbat, embedded_pe
    from fwtools.formats.sbat import Sbat

    for s in img.sections:
        if s.name == ".sbat":
            try:
                rows = decode_sbat(img.section_data(s), s.raw_offset).rows
            except PartialDecode as exc:
                # a malformed row: the rows that do parse still name the loader, as shim's
                # own lenient parser would read them
                rows = exc.decoded.rows if isinstance(exc.decoded, Sbat) else ()
            except FwError:
                rows = ()
            sbat = tuple(SbatEntry(r.component, r.generation or 0, r.vendor_version) for r in rows)
        elif s.name == ".data.ident":
            m = re.search(rb"\$Version: ([^ $]+) \$", img.section_data(s))
            shim_version = m.group(1).decode("ascii", "replace") if m else None
        elif s.name == ".sdmagic":
            systemd = True
        elif s.name == ".linux":
            inner = embedded_pe(img, s)
            if inner is not None:
                try:
                    uki_kernel = stage_from_bytes(inner, f"{path}:.linux")
                except FwError:
                    uki_kernel = None
    return StageImage(
        path=path,
        file_size=len(data),
        machine=img.machine_name,
        subsystem=img.subsystem,
        section_alignment=img.section_alignment,
        file_alignment=img.file_alignment,
        size_of_image=img.size_of_image,
        size_of_headers=img.size_of_headers,
        entry_rva=img.entry_point,
        nx_compat=img.nx_compat,
        relocs_stripped=bool(img.characteristics & layout.FILE_RELOCS_STRIPPED),
        has_reloc_directory=img.has_relocations,
        reloc_pages=_reloc_pages(img),
        major_image_version=Reader(data).u16(
            img.optional_field_offset("MajorImageVersion"), "optional header"
        ),
        sections=sections,
        signed=img.certificate_table is not None,
        sbat=sbat,
        shim_version=shim_version,
        kernel=_kernel_facts(data),
        systemd=systemd,
        uki_kernel=uki_kernel,
    )


def _reloc_pages(img: PeImage) -> tuple[int, ...]:
    """Page RVAs that base relocations patch (each block header names one 4 KiB page)."""
    d = img.directory(layout.DIR_BASERELOC)
    if d is None or not d.size:
        return ()
    off = img.rva_to_offset(d.virtual_address)
    if off is None:
        return ()
    data = img.data
    end = min(off + d.size, len(data))
    block = layout.BASE_RELOCATION_BLOCK
    pages: list[int] = []
    while off + block.size <= end:
        page, size = block.unpack_from(data, off)
        if size < block.size:
            break
        if size > block.size:  # a block with no entries patches nothing
            pages.append(page & ~(layout.PAGE_SIZE - 1))
        off += size
    return tuple(sorted(set(pages)))


def _kernel_facts(data: bytes) -> KernelFacts | None:
    from fwtools.formats.pe.kernel import kernel_info

    try:
        info = kernel_info(data, peek=False)
    except FwError:
        return None
    if info is None or info.kind not in ("bzimage", "arm64-image", "zboot"):
        return None
    version = version_tuple(info.release or info.version_string)
    bz = info.bzimage
    return KernelFacts(
        kind=info.kind,
        version=version,
        release=info.release,
        handover_64=bool(bz and bz.efi_handover_64),
        init_size=bz.init_size if bz else 0,
        handover_entry=(bz.protected_mode_offset + 512 + bz.handover_offset
                        if bz and bz.efi_handover_64 else 0),
    )
