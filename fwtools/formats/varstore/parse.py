"""Reading an edk2 NV image: the firmware volume header, the store header, which layout the
image has, then the records (:mod:`.records`), the free space, the FTW working block
(:mod:`.ftw`) and the other regions, collecting findings as it goes.

References (tianocore/edk2): ``MdePkg/Include/Pi/PiFirmwareVolume.h`` and
``MdeModulePkg/Include/Guid/VariableFormat.h`` (the headers, declared in :mod:`.layout`);
``ArmVirtPkg/Drivers/VirtNorFlashDxe`` (``ValidateFvHeader``) and
``OvmfPkg/Library/PlatformInitLib`` (``PlatformValidateNvVarStore``): what strict firmware
refuses. Damage the firmware tolerates is a finding (:mod:`.issues`), never an exception;
:class:`ParseError` is raised only when no store can be read at all.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Final

from fwtools.errors import ParseError, TruncatedError
from fwtools.formats.varstore import issues as iss
from fwtools.formats.varstore import layout as lay
from fwtools.formats.varstore.bytescan import FILL, count_not, first_not
from fwtools.formats.varstore.errors import BlankStoreError
from fwtools.formats.varstore.ftw import find_working_block, read_working_block
from fwtools.formats.varstore.issues import Findings
from fwtools.formats.varstore.layout import StoreLayout
from fwtools.formats.varstore.model import FvHeader, Issue, Record, StoreHeader
from fwtools.formats.varstore.records import walk_records

if TYPE_CHECKING:
    from fwtools.formats.varstore.ftw import FtwWorkingBlock

_FV: Final = lay.FV_HEADER_LAYOUT
_STORE: Final = lay.STORE_HEADER_LAYOUT
_FV_STRUCTURE: Final = _FV.name
_STORE_STRUCTURE: Final = _STORE.name
_NV_GUID_BYTES: Final = lay.SYSTEM_NV_DATA_FV_GUID.bytes_le
_STORE_GUIDS: Final = {
    lay.AUTHENTICATED_VARIABLE_GUID.bytes_le: True,
    lay.VARIABLE_GUID.bytes_le: False,
}
# is_varstore: how much of each end of a 64 MiB image must be zero for the blank template.
_SNIFF_SIZE: Final = 4096


class ParsedImage:
    """What one parse found: everything :class:`VariableStore
    <fwtools.formats.varstore.store.VariableStore>` is built from."""

    __slots__ = (
        "data",
        "free_space_dirty_at",
        "ftw",
        "fv_header",
        "issues",
        "layout",
        "records",
        "records_end",
        "repair_layout",
        "store_header",
    )  # fmt: skip

    def __init__(
        self,
        data: bytes,
        layout: StoreLayout,
        fv_header: FvHeader,
        store_header: StoreHeader,
        records: list[Record],
        records_end: int,
        free_space_dirty_at: int | None,
        ftw: FtwWorkingBlock | None,
        issues: list[Issue],
        repair_layout: StoreLayout | None,
    ) -> None:
        self.data = data
        self.layout = layout
        self.fv_header = fv_header
        self.store_header = store_header
        self.records = records
        self.records_end = records_end
        self.free_space_dirty_at = free_space_dirty_at
        self.ftw = ftw
        self.issues = issues
        # The known build whose size the image has, when its store header disagrees: what
        # a repair rewrites it as.
        self.repair_layout = repair_layout


def parse_image(data: bytes) -> ParsedImage:
    """Parse a raw NV image. Raises :class:`BlankStoreError` for an image without a store
    yet, :class:`ParseError` (with the offset) when no store can be read; everything else is
    a finding in ``issues``."""
    return _Parser(data).parse()


def _guid_label(guid: uuid.UUID) -> str:
    from fwtools.formats.efi import guids

    name = guids.guid_name(guid)
    if guid == lay.FIRMWARE_FILE_SYSTEM2_GUID:
        name = "EFI_FIRMWARE_FILE_SYSTEM2_GUID"
    elif guid == lay.FIRMWARE_FILE_SYSTEM3_GUID:
        name = "EFI_FIRMWARE_FILE_SYSTEM3_GUID"
    return f"{guid} ({name})" if name else str(guid)


def _within_file(field: str, end: int, data: bytes) -> None:
    """Raise :class:`TruncatedError` when the FV header's ``field`` reaches past the file."""
    if end > len(data):
        raise TruncatedError(
            f"{field} is {end:#x} but the file has only {len(data):#x} bytes "
            "(truncated store)",
            structure=_FV_STRUCTURE,
            offset=len(data),
        )


class _Parser:
    """One pass over an image; collects findings as it goes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.findings = Findings()
        self.issue = self.findings.add
        self.repair_layout: StoreLayout | None = None

    def parse(self) -> ParsedImage:
        data = self.data
        if len(data) < lay.FV_HEADER_MIN_LENGTH or not data.startswith(
            lay.FV_SIGNATURE, lay.FV_SIGNATURE_OFFSET
        ):
            self._no_fv()
        fv = self._fv_header()
        store_header = self._store_header(fv)
        layout = self._layout(fv, store_header)
        self._fv_checks(fv, layout)
        records, records_end, walk_end = walk_records(
            data, store_header.authenticated, layout, self.findings
        )
        dirty_at = self._free_space(walk_end, layout)
        ftw = read_working_block(data, layout, self.findings)
        self._other_regions(layout)
        self._summary(records)
        return ParsedImage(
            data=data,
            layout=layout,
            fv_header=fv,
            store_header=store_header,
            records=records,
            records_end=records_end,
            free_space_dirty_at=dirty_at,
            ftw=ftw,
            issues=self.findings.issues,
            repair_layout=self.repair_layout,
        )

    def _no_fv(self) -> None:
        data = self.data
        size = len(data)
        by_size = lay.layout_for_size(size)
        if size and data[0] in (0x00, 0xFF) and first_not(data, 0, size, data[0]) is None:
            fill = "zero" if data[0] == 0 else "0xFF"
            if by_size is lay.AAVMF_64M and data[0] == 0:
                message = (
                    "blank AAVMF template: no firmware volume yet; the firmware formats it at "
                    "first boot (or format it now as aavmf-64m)"
                )
            elif by_size is not None:
                message = (
                    f"blank image (all {fill}): no firmware volume yet; it has the size of "
                    f"the {by_size.name} layout, which can format it"
                )
            else:
                message = f"blank image (all {fill}, {size} bytes): no firmware volume"
            raise BlankStoreError(message, layout=by_size, offset=0)
        if size < lay.FV_HEADER_MIN_LENGTH:
            raise TruncatedError(
                f"{size} bytes: too small for a firmware volume header",
                structure=_FV_STRUCTURE,
                offset=0,
            )
        found = data[lay.FV_SIGNATURE_OFFSET : _FV.end("signature")]
        raise ParseError(
            f"no firmware volume header: Signature is {found!r}, expected b'_FVH' "
            "(not an edk2 variable store)",
            structure=_FV_STRUCTURE,
            offset=lay.FV_SIGNATURE_OFFSET,
        )

    # -- FV header -----------------------------------------------------------------------

    def _fv_header(self) -> FvHeader:
        data = self.data
        (zero, fs_guid, fv_length, _sig, attrs, hl, checksum, ext, reserved, revision) = (
            _FV.unpack_from(data)
        )
        guid = uuid.UUID(bytes_le=fs_guid)
        if fs_guid != _NV_GUID_BYTES:
            hint = ""
            if guid in (lay.FIRMWARE_FILE_SYSTEM2_GUID, lay.FIRMWARE_FILE_SYSTEM3_GUID):
                hint = "; this is a firmware code volume (OVMF_CODE*.fd?), not variables"
            raise ParseError(
                f"firmware volume FileSystemGuid is {_guid_label(guid)}, not "
                f"gEfiSystemNvDataFvGuid {lay.SYSTEM_NV_DATA_FV_GUID}{hint}",
                structure=_FV_STRUCTURE,
                offset=lay.FV_GUID_OFFSET,
            )
        minimum = lay.FV_HEADER_MIN_LENGTH
        if hl < minimum or hl % 2:
            raise ParseError(
                f"HeaderLength {hl:#x} is impossible (it is even and at least {minimum:#x})",
                structure=_FV_STRUCTURE,
                offset=lay.FV_HEADER_LENGTH_OFFSET,
            )
        _within_file("HeaderLength", hl, data)
        if fv_length < hl + lay.STORE_HEADER_SIZE:
            raise ParseError(
                f"FvLength {fv_length:#x} leaves no room for a variable store after the "
                f"{hl:#x}-byte header",
                structure=_FV_STRUCTURE,
                offset=lay.FV_LENGTH_OFFSET,
            )
        _within_file("FvLength", fv_length, data)
        block_map: list[tuple[int, int]] = []
        terminated = False
        entry = lay.BLOCK_MAP_ENTRY_LAYOUT
        pos = lay.FV_BLOCK_MAP_OFFSET
        while pos + entry.size <= hl:
            count, length = entry.unpack_from(data, pos)
            pos += entry.size
            if count == 0 and length == 0:
                terminated = True
                break
            block_map.append((count, length))
        return FvHeader(
            zero_vector=zero,
            file_system_guid=guid,
            fv_length=fv_length,
            attributes=attrs,
            header_length=hl,
            checksum=checksum,
            ext_header_offset=ext,
            reserved=reserved,
            revision=revision,
            block_map=tuple(block_map),
            block_map_terminated=terminated,
            checksum_valid=lay.fv_checksum(data[:hl]) == 0,
        )

    def _fv_checks(self, fv: FvHeader, layout: StoreLayout) -> None:
        issue = self.issue
        if not fv.checksum_valid:
            total = lay.fv_checksum(self.data[: fv.header_length])
            issue(
                iss.FV_CHECKSUM,
                f"FV header checksum is wrong (words sum to {total:#06x}, must be 0): OVMF "
                "erases the whole NV store at boot and ArmVirt re-creates it; every variable "
                "would be lost",
                lay.FV_CHECKSUM_OFFSET,
            )
        if any(fv.zero_vector):
            issue(iss.FV_ZERO_VECTOR, "FV ZeroVector is not zero", lay.FV_ZERO_VECTOR_OFFSET)
        if fv.revision != lay.FV_REVISION:
            issue(
                iss.FV_REVISION,
                f"FV Revision is {fv.revision}, firmware requires {lay.FV_REVISION}",
                lay.FV_REVISION_OFFSET,
            )
        if fv.ext_header_offset:
            issue(
                iss.FV_EXT_HEADER,
                f"FV ExtHeaderOffset is {fv.ext_header_offset:#x}; variable FVs have none",
                lay.FV_EXT_HEADER_OFFSET_OFFSET,
            )
        if not fv.block_map_terminated:
            issue(
                iss.FV_BLOCK_MAP,
                "FV block map has no {0, 0} terminator within HeaderLength",
                lay.FV_BLOCK_MAP_OFFSET,
            )
        mapped = fv.block_map_length
        if mapped != fv.fv_length:
            if layout is lay.AAVMF_64M and fv.block_map == lay.AAVMF_RUNTIME_BLOCK_MAP:
                issue(
                    iss.FV_BLOCK_MAP_RUNTIME,
                    f"FV block map covers {mapped:#x} bytes (the whole flash device), FvLength "
                    f"{fv.fv_length:#x}: written by ArmVirt's VirtNorFlashDxe at runtime; normal",
                    lay.FV_BLOCK_MAP_OFFSET,
                )
            else:
                issue(
                    iss.FV_BLOCK_MAP_LENGTH,
                    f"FV block map covers {mapped:#x} bytes but FvLength is {fv.fv_length:#x}",
                    lay.FV_BLOCK_MAP_OFFSET,
                )
        first_block = fv.block_map[0][1] if fv.block_map else lay.X86_FLASH_BLOCK_SIZE
        if layout.x86_flash and first_block != lay.X86_FLASH_BLOCK_SIZE:
            issue(
                iss.FV_X86_BLOCK_SIZE,
                f"FV block size is {first_block:#x}; OVMF's flash driver requires "
                f"{lay.X86_FLASH_BLOCK_SIZE:#x} and erases the store otherwise",
                lay.FV_BLOCK_MAP_OFFSET + lay.BLOCK_MAP_ENTRY_LAYOUT.offset("length"),
            )
        if layout.name in lay.LAYOUTS and fv.attributes != layout.fv_attributes:
            runtime = layout is lay.AAVMF_64M and fv.attributes == lay.FV_ATTRIBUTES_ARMVIRT_RUNTIME
            issue(
                iss.FV_ATTRIBUTES,
                f"FV attributes {fv.attributes:#x} differ from the template's "
                f"{layout.fv_attributes:#x}"
                + ("; written by VirtNorFlashDxe at runtime, normal" if runtime else ""),
                lay.FV_ATTRIBUTES_OFFSET,
            )

    # -- store header --------------------------------------------------------------------

    def _store_header(self, fv: FvHeader) -> StoreHeader:
        data = self.data
        hl = fv.header_length
        if data[hl : hl + lay.STORE_HEADER_SIZE] == lay.RAW_STORE_HEADER:
            by_geometry = next(
                (
                    lt
                    for lt in lay.LAYOUTS.values()
                    if lt.total_size == len(data)
                    and lt.fv_length == fv.fv_length
                    and lt.store_offset == hl
                    and lt.trailer != "code"
                ),
                None,
            )
            raise BlankStoreError(
                "variable store header is erased (all 0xFF): no variables; the store was "
                "never formatted, or the firmware erased it after finding the FV header "
                "invalid",
                layout=by_geometry,
                offset=hl,
            )
        signature, size, fmt, state, reserved, reserved1 = _STORE.unpack_from(data, hl)
        if signature not in _STORE_GUIDS:
            raise ParseError(
                f"variable store Signature is {_guid_label(uuid.UUID(bytes_le=signature))}, "
                f"neither gEfiAuthenticatedVariableGuid {lay.AUTHENTICATED_VARIABLE_GUID} nor "
                f"gEfiVariableGuid {lay.VARIABLE_GUID}",
                structure=_STORE_STRUCTURE,
                offset=hl,
            )
        if size < lay.STORE_HEADER_SIZE or hl + size > fv.fv_length:
            raise ParseError(
                f"store Size {size:#x} does not fit the FV (header at {hl:#x}, FvLength "
                f"{fv.fv_length:#x})",
                structure=_STORE_STRUCTURE,
                offset=hl + _STORE.offset("size"),
            )
        header = StoreHeader(uuid.UUID(bytes_le=signature), size, fmt, state, reserved, reserved1)
        if fmt != lay.VARIABLE_STORE_FORMATTED or state != lay.VARIABLE_STORE_HEALTHY:
            self.issue(
                iss.STORE_HEADER_STATE,
                f"store header Format {fmt:#04x} / State {state:#04x}, expected 0x5a / 0xfe: "
                "the firmware treats the store as invalid",
                hl + _STORE.offset("format"),
            )
        if reserved or reserved1:
            self.issue(
                iss.STORE_RESERVED,
                "store header Reserved fields are not zero",
                hl + _STORE.offset("reserved"),
            )
        if not header.authenticated:
            self.issue(
                iss.STORE_NORMAL_FORMAT,
                "normal (non-authenticated) record format: OVMF and ArmVirt require the "
                "authenticated format (gEfiAuthenticatedVariableGuid)",
                hl,
            )
        return header

    def _layout(self, fv: FvHeader, header: StoreHeader) -> StoreLayout:
        data = self.data
        hl = fv.header_length
        known = lay.match_layout(len(data), fv.fv_length, hl, header.size)
        if known is not None:
            return known
        for build in lay.LAYOUTS.values():
            if (build.total_size, build.fv_length) == (len(data), fv.fv_length):
                self.issue(
                    iss.STORE_SIZE,
                    f"the image has the size of the {build.name} layout but its store header "
                    f"is at {hl:#x} with Size {header.size:#x} (the build has "
                    f"{build.store_offset:#x}, {build.store_size:#x}); the firmware asserts "
                    "or re-creates the store",
                    hl + _STORE.offset("size"),
                )
                if build.trailer != "code":
                    self.repair_layout = build
                break
        store_end = hl + header.size
        event_log: range | None = None
        spare: range | None = None
        working = find_working_block(data, store_end, fv.fv_length)
        if working is not None:
            event_log = range(store_end, working.start) if working.start > store_end else None
            spare = range(working.stop, fv.fv_length) if working.stop < fv.fv_length else None
        self.issue(
            iss.LAYOUT_CUSTOM,
            f"custom layout: {len(data):#x}-byte image, FvLength {fv.fv_length:#x}, store "
            f"Size {header.size:#x}"
            + ("" if working else ", no FTW working block found")
            + " (no known OVMF/ArmVirt build; size limits unknown)",
            None,
        )
        return StoreLayout(
            name=lay.CUSTOM_LAYOUT_NAME,
            description="unrecognised geometry",
            total_size=len(data),
            fv_length=fv.fv_length,
            block_map=fv.block_map,
            fv_attributes=fv.attributes,
            store_offset=hl,
            store_size=header.size,
            event_log=event_log,
            ftw_working=working,
            ftw_spare=spare,
            max_variable_size=None,
            max_auth_variable_size=None,
            max_hw_error_variable_size=None,
            trailer="none",
        )

    # -- the rest of the region ----------------------------------------------------------

    def _free_space(self, walk_end: int, layout: StoreLayout) -> int | None:
        at = first_not(self.data, walk_end, layout.store_end, 0xFF)
        if at is None:
            return None
        dirty = count_not(self.data, at, layout.store_end, 0xFF)
        self.issue(
            iss.FREE_SPACE_DIRTY,
            f"free space is not erased: {dirty} non-0xFF bytes from {at:#x} (after the last "
            "record); the firmware reclaims the store at next boot",
            at,
        )
        return at

    def _other_regions(self, layout: StoreLayout) -> None:
        region = layout.event_log
        if region is None:
            return
        at = first_not(self.data, region.start, region.stop, 0xFF)
        if at is not None:
            self.issue(iss.EVENT_LOG_DIRTY, "event-log area is not erased", at)

    def _summary(self, records: list[Record]) -> None:
        counts: dict[str, int] = {}
        for record in records:
            counts[record.state_name] = counts.get(record.state_name, 0) + 1
        live = sum(1 for r in records if r.live)
        detail = ", ".join(f"{n} {name}" for name, n in counts.items())
        self.issue(
            iss.SUMMARY,
            f"{len(records)} records, {live} live" + (f" ({detail})" if detail else ""),
            None,
        )


def is_varstore(data: bytes | bytearray | memoryview) -> bool:
    """Cheap sniff: an FV with the ``_FVH`` signature and gEfiSystemNvDataFvGuid at offset
    0, or a 64 MiB image that starts and ends with zeros (the blank AAVMF template, which
    :meth:`VariableStore.parse` reports as :class:`BlankStoreError`)."""
    view = memoryview(data)
    if len(view) < lay.FV_HEADER_SIZE:
        return False
    if (
        bytes(view[lay.FV_SIGNATURE_OFFSET : _FV.end("signature")]) == lay.FV_SIGNATURE
        and bytes(view[lay.FV_GUID_OFFSET : _FV.end("file_system_guid")]) == _NV_GUID_BYTES
    ):
        return True
    if len(view) == lay.AAVMF_64M.total_size:
        zero = FILL[0x00][:_SNIFF_SIZE]
        return bytes(view[:_SNIFF_SIZE]) == zero and bytes(view[-_SNIFF_SIZE:]) == zero
    return False


__all__ = ["ParsedImage", "is_varstore", "parse_image"]
