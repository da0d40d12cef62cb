"""What a loader needs to know about a boot-chain binary, read from the file itself.

The PE layout a loader places in memory (sections, alignment, entry, relocation pages),
plus the clues that identify the component and its version (docs/reference/wx-model.md §6.2):
``.sbat``
rows, shim's ``.data.ident``, the bzImage header and arm64 Image/zboot headers, systemd's
``.sdmagic``, and for a UKI the embedded ``.linux`` kernel.

A :class:`StageImage` is a view of the same parse the policy facts use
(:class:`fwtools.formats.pe.image.PeImage`, the special-section decoders of
:mod:`fwtools.formats.pe.special`, :func:`fwtools.formats.pe.kernel.kernel_info`, the base
relocations of :mod:`fwtools.formats.pe.reloc`): :func:`stage_from_pe` builds it from a
parsed image, and from the decoded special sections and kernel header when the caller has
them (``fwtools.policy.pe_facts.PeFacts``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from fwtools._base.fileio import ReadAhead, read_file
from fwtools._base.record import Record
from fwtools.errors import FwError
from fwtools.formats.pe import layout
from fwtools.formats.pe.image import PeImage, Section

if TYPE_CHECKING:
    from fwtools.formats.pe.special import SpecialSection

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


class KernelFacts(Record):
    kind: str  # "bzimage", "arm64-image", "zboot"
    version: tuple[int, ...] | None
    release: str | None
    handover_64: bool = False
    init_size: int = 0  # bzImage: memory the decompressed kernel needs
    # bzImage: file offset of the 64-bit EFI handover entry, which a loader calls at
    # code32_start + 512 + handover_offset (code32_start = the protected-mode code)
    handover_entry: int = 0
    # bzImage: file offset of the protected-mode code, (setup_sects + 1) * 512: where
    # linuxefi starts copying the file (Debian grub2 2.06 loader/i386/efi/linux.c)
    protected_mode_offset: int = 0


class SbatEntry(Record):
    component: str
    generation: int
    version: str


class StageImage(Record):
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
    # shim's .sbatlevel: the automatic level, (component, minimum generation) rows
    sbat_level: tuple[tuple[str, int], ...] = ()

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


def load_stages(paths: Sequence[str | os.PathLike[str]]) -> list[StageImage]:
    """:func:`load_stage` of each of ``paths``, in order, with the same errors; each file is
    read by a second thread while the ones before it are parsed (:class:`ReadAhead`: the
    kernel at the end of a chain is most of its bytes)."""
    if len(paths) < 2:
        return [load_stage(p) for p in paths]
    with ReadAhead(paths) as files:
        return [stage_from_bytes(files.take(i), os.fspath(p)) for i, p in enumerate(paths)]


def stage_from_bytes(data: bytes, path: str) -> StageImage:
    return stage_from_pe(PeImage(data, path))


#: the special sections a stage image needs (identification and the UKI's kernel)
_STAGE_SECTIONS: Final = (".sbat", ".data.ident", ".sdmagic", ".linux", ".sbatlevel")
_UNSET: Final = object()


def stage_from_pe(img: PeImage, *, special: Sequence[SpecialSection] | None = None,
                  kernel: object = _UNSET) -> StageImage:
    """The stage image of a parsed PE. ``special`` and ``kernel`` (a ``KernelInfo`` or None)
    are the decoded special sections and kernel header when the caller already has them (as
    ``fwtools.policy.collect.collect_facts`` does); otherwise they are decoded here, with
    the same decoders."""
    from fwtools.formats.pe.reloc import relocated_pages
    from fwtools.formats.pe.special import embedded_pe

    path = img.path or ""
    decoded = _decoded_sections(img, special)
    rows = getattr(decoded.get(".sbat"), "rows", ())
    # a malformed row: the rows that do parse still name the loader, as shim's own lenient
    # parser would read them (the decoder keeps them alongside the error)
    sbat = tuple(SbatEntry(r.component, r.generation or 0, r.vendor_version) for r in rows)
    shim_version = getattr(decoded.get(".data.ident"), "version", None)
    automatic = getattr(decoded.get(".sbatlevel"), "automatic", None)
    sbat_level = tuple((e.component, e.generation) for e in getattr(automatic, "entries", ()))
    uki_kernel = None
    for s in img.sections:
        if s.name == ".linux":
            inner = embedded_pe(img, s)
            if inner is not None:
                try:
                    uki_kernel = stage_from_bytes(inner, f"{path}:.linux")
                except FwError:
                    uki_kernel = None
    facts = _kernel_facts(img.data) if kernel is _UNSET else _kernel_from_info(kernel)
    return StageImage(
        path=path,
        file_size=len(img.data),
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
        reloc_pages=relocated_pages(img),
        major_image_version=img.major_image_version,
        sections=img.sections,
        signed=img.certificate_table is not None,
        sbat=sbat,
        shim_version=shim_version,
        kernel=facts,
        systemd=any(s.name == ".sdmagic" for s in img.sections),
        uki_kernel=uki_kernel,
        sbat_level=sbat_level,
    )


def _decoded_sections(img: PeImage, special: Sequence[SpecialSection] | None
                      ) -> dict[str, object]:
    """Section name -> decoded payload of the sections a stage needs (the last one of a
    name, as the section walk of identification always read them)."""
    out: dict[str, object] = {}
    if special is not None:
        for sp in special:
            if sp.name in _STAGE_SECTIONS:
                out[sp.name] = sp.decoded
        return out
    from fwtools.formats.pe.special import decode_section

    for s in img.sections:
        if s.name in (".sbat", ".data.ident", ".sbatlevel"):
            out[s.name], _error = decode_section(s.name, img.section_data(s), s.raw_offset)
    return out


def _kernel_facts(data: bytes) -> KernelFacts | None:
    from fwtools.formats.pe.kernel import kernel_info

    try:
        info = kernel_info(data, peek=False)
    except FwError:
        return None
    return _kernel_from_info(info)


def _kernel_from_info(info: object) -> KernelFacts | None:
    from fwtools.formats.pe.kernel import KernelInfo

    if not isinstance(info, KernelInfo) or info.kind not in ("bzimage", "arm64-image", "zboot"):
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
        protected_mode_offset=bz.protected_mode_offset if bz else 0,
    )
