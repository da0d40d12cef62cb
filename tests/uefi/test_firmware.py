"""fwtools.uefi.firmware: the emulated boot services against docs/reference/wx-model.md.

Every expectation cites the section (and, for §4, the table row) of
docs/reference/wx-model.md it comes from; facts marked (inferred) there are marked so
here. Images are the synthetic testdata/sample PEs (make_sample.py), reshaped with
record.replace where a test needs another layout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fwtools._base import record
from fwtools.formats.pe.image import Section
from fwtools.paging import Abort, AccessKind, MemAttr, PageFault
from fwtools.uefi.firmware import Event, FaultStop, Firmware, ReplayStop
from fwtools.uefi.image import StageImage, load_stage
from fwtools.uefi.memmap import PAGE
from fwtools.uefi.memtypes import MemoryType
from fwtools.uefi.profile import load_firmware

TESTDATA = Path(__file__).resolve().parents[2] / "testdata"
LC, LD, CONV = MemoryType.LOADER_CODE, MemoryType.LOADER_DATA, MemoryType.CONVENTIONAL
R, W, F = AccessKind.READ, AccessKind.WRITE, AccessKind.FETCH
RP, RO, XP, NONE = MemAttr.RP, MemAttr.RO, MemAttr.XP, MemAttr.NONE
STRICT = 0xC000000000007FD5
UNMAPPED = 1 << 40  # above everything either guest layout maps

# PE section characteristics
CNT_CODE, X, RD, WR, IDATA = 0x20, 0x2000_0000, 0x4000_0000, 0x8000_0000, 0x40


@pytest.fixture(scope="module")
def hello() -> StageImage:
    # SectionAlignment 0x1000, NX_COMPAT; .text R-X CNT_CODE @0x1000, .data RW- @0x2000,
    # .sbat R-- @0x3000, .reloc @0x4000 (testdata/README.md)
    return load_stage(TESTDATA / "sample" / "hello-nx.efi")


@pytest.fixture(scope="module")
def legacy() -> StageImage:
    # SectionAlignment 0x200, no NX_COMPAT, one RWX .text
    return load_stage(TESTDATA / "sample" / "legacy-wx.efi")


def ImageSection(name: str, rva: int, vsize: int, raw: int, characteristics: int) -> Section:
    """A section header as the tests describe it (fwtools.formats.pe.image.Section)."""
    return Section(0, name, name.encode(), 0, rva, vsize, 0, raw, characteristics)


def make(name: str, arch: str | None = None, **overrides: object) -> tuple[Firmware, list[Event]]:
    profile = load_firmware(name)
    if overrides:
        profile = profile.with_overrides(**overrides)
    events: list[Event] = []
    fw = Firmware(profile, arch or profile.arch or "x64",  # type: ignore[arg-type]
                  secure_boot=False, log=events.append)
    return fw, events


def one_section(img: StageImage, characteristics: int, size: int = 0x3000) -> StageImage:
    """``img`` reshaped to a single section at 0x1000 (entry at its start)."""
    sec = ImageSection(".text", 0x1000, size, size, characteristics)
    return record.replace(img, sections=(sec,), size_of_image=0x1000 + size,
                               entry_rva=0x1000, reloc_pages=())


def perms(fw: Firmware, start: int, size: int = PAGE) -> str:
    return fw.permissions_text(start, start + size)


def x86_code(fw: Firmware, va: int, kind: AccessKind) -> int:
    fault = fw.check_access(va, va + 1, kind)
    assert isinstance(fault, PageFault), fault
    return fault.error_code


def arm_abort(fw: Firmware, va: int, kind: AccessKind) -> Abort:
    fault = fw.check_access(va, va + 1, kind)
    assert isinstance(fault, Abort), fault
    return fault


# ---- §4 EFI_MEMORY_ATTRIBUTE_PROTOCOL -------------------------------------------------


def test_map_attributes_zero_x86_is_invalid_parameter() -> None:
    # §4 table, "Attributes == 0": x86 Set/Clear -> INVALID_PARAMETER
    fw, _ = make("ovmf")
    page = fw.allocate_pages(LD, 1, "t")
    assert fw.map_set(page, PAGE, NONE, "t") == "INVALID_PARAMETER"
    assert fw.map_clear(page, PAGE, NONE, "t") == "INVALID_PARAMETER"


def test_map_attributes_zero_arm_is_accepted_and_makes_rwx() -> None:
    # §4 table, "Attributes == 0": ARM accepted; mask 0 replaces all permissions (inferred)
    fw, _ = make("armvirt-map")
    page = fw.allocate_pages(LD, 1, "t")
    assert perms(fw, page) == "rw-"  # LoaderData is XP under 0x...7FD5 (§1.2)
    assert fw.map_set(page, PAGE, NONE, "t") == "SUCCESS"
    assert perms(fw, page) == "rwx"


@pytest.mark.parametrize("name", ["ovmf", "armvirt-map"])
def test_map_bits_outside_access_mask_are_invalid_parameter(name: str) -> None:
    # §4 table, "Bits outside RP/RO/XP": INVALID_PARAMETER on both
    fw, _ = make(name)
    page = fw.allocate_pages(LD, 1, "t")
    wb = MemAttr(0x8)  # EFI_MEMORY_WB
    assert fw.map_set(page, PAGE, wb, "t") == "INVALID_PARAMETER"
    assert fw.map_clear(page, PAGE, XP | wb, "t") == "INVALID_PARAMETER"


@pytest.mark.parametrize("name", ["ovmf", "armvirt-map"])
def test_map_length_zero_is_invalid_parameter(name: str) -> None:
    # §4: spec-level INVALID_PARAMETER for length 0
    fw, _ = make(name)
    page = fw.allocate_pages(LD, 1, "t")
    assert fw.map_set(page, 0, XP, "t") == "INVALID_PARAMETER"
    assert fw.map_get(page, 0)[0] == "INVALID_PARAMETER"


@pytest.mark.parametrize(
    ("name", "release", "status"),
    [
        ("ovmf", 202605, "UNSUPPORTED"),  # x86: ConvertMemoryPageAttributes; Get checks too
        ("armvirt-map", 202605, "INVALID_PARAMETER"),  # ARM: UpdateRegionMapping
        ("armvirt-map", 202402, "INVALID_PARAMETER"),
        ("armvirt-map", 202305, "UNSUPPORTED"),  # "2023 versions folded errors to UNSUPPORTED"
    ],
)
def test_map_unaligned(name: str, release: int, status: str) -> None:
    # §4 table, "Base/length not 4 KiB aligned"
    fw, _ = make(name, edk2_release=release)
    page = fw.allocate_pages(LD, 2, "t")
    assert fw.map_set(page + 0x800, PAGE, RO, "t") == status
    assert fw.map_clear(page, 0x800, XP, "t") == status
    assert fw.map_get(page + 0x10, PAGE)[0] == status
    assert perms(fw, page, 2 * PAGE) == ("rwx" if name == "ovmf" else "rw-")  # unchanged


@pytest.mark.parametrize("name", ["ovmf", "armvirt-map"])
def test_map_get_mixed_range_is_no_mapping(name: str) -> None:
    # §4 table, "Get, mixed range": NO_MAPPING
    fw, _ = make(name)
    page = fw.allocate_pages(LC, 2, "t")
    assert fw.map_set(page, PAGE, RO, "t") == "SUCCESS"
    assert fw.map_get(page, 2 * PAGE) == ("NO_MAPPING", NONE)
    status, attrs = fw.map_get(page, PAGE)
    assert status == "SUCCESS"
    assert attrs == RO  # LoaderCode is never XP upstream (§1.2), so only RO


@pytest.mark.parametrize(("name", "status"),
                         [("ovmf", "UNSUPPORTED"), ("armvirt-map", "NO_MAPPING")])
def test_map_get_unmapped(name: str, status: str) -> None:
    # §4 table, "Get, mixed range" row: "unmapped -> UNSUPPORTED" (x86), "also for unmapped" (ARM)
    fw, _ = make(name)
    assert fw.map_get(UNMAPPED, PAGE) == (status, NONE)


def test_map_set_unmapped_x86_is_unsupported() -> None:
    # §4 / paging NotMappedError: ConvertMemoryPageAttributes finds no entry -> UNSUPPORTED
    fw, _ = make("ovmf")
    assert fw.map_set(UNMAPPED, PAGE, XP, "t") == "UNSUPPORTED"


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("armvirt", {}),  # PcdUninstallMemAttrProtocol (§4 knobs)
        ("debian13-ovmf", {}),  # Debian's Uninstall patch (findings.md Q1)
        ("debian12-aavmf", {}),  # 2022.11: before ArmPkg's 202305
        ("ovmf", {"edk2_release": 202411}),  # before x86's 202502
    ],
)
def test_map_not_installed_is_not_found(name: str, overrides: dict[str, int]) -> None:
    fw, _ = make(name, **overrides)
    assert not fw.map_installed
    page = fw.allocate_pages(LD, 1, "t")
    before = perms(fw, page)
    assert fw.map_get(page, PAGE) == ("NOT_FOUND", NONE)
    assert fw.map_set(page, PAGE, RO, "t") == "NOT_FOUND"
    assert fw.map_clear(page, PAGE, XP, "t") == "NOT_FOUND"
    assert perms(fw, page) == before


@pytest.mark.parametrize("name", ["ovmf-strict", "armvirt-map"])
def test_map_set_and_clear_are_bitwise(name: str) -> None:
    # §4: "Set/Clear touch only the named bits (unlike the CPU arch call)"
    fw, _ = make(name)
    page = fw.allocate_pages(LD, 1, "t")  # XP
    assert fw.map_set(page, PAGE, RO, "t") == "SUCCESS"
    assert fw.map_get(page, PAGE) == ("SUCCESS", RO | XP)
    assert fw.map_clear(page, PAGE, XP, "t") == "SUCCESS"
    assert fw.map_get(page, PAGE) == ("SUCCESS", RO)
    assert perms(fw, page) == "r-x"


# ---- §3 NX policy: assign semantics on type transitions --------------------------------


@pytest.mark.parametrize("name", ["ovmf-strict", "armvirt"])
def test_allocating_loader_code_from_free_memory_gives_rwx(name: str) -> None:
    # §3: under 0x...7FD5, Conventional=XP -> LoaderCode=0 is assigned: RWX pages
    fw, _ = make(name)
    code = fw.allocate_pages(LC, 4, "t")
    data = fw.allocate_pages(LD, 4, "t")
    assert perms(fw, code, 4 * PAGE) == "rwx"
    assert fw.pt.get_attributes(code).efi == NONE
    # LoaderData keeps the free memory's XP (same attribute: no call)
    assert perms(fw, data, 4 * PAGE) == "rw-"
    assert fw.memmap.type_at(code) is LC and fw.memmap.type_at(data) is LD


def test_loader_data_is_executable_under_the_compat_policy() -> None:
    # §1.2: 0x...7FD1 differs only in LoaderData (bit 2 clear)
    fw, _ = make("debian12-aavmf")
    data = fw.allocate_pages(LD, 1, "t")
    assert perms(fw, data) == "rwx"
    assert fw.check_access(data, data + 1, F) is None


def test_pool_pages_carry_the_type_attribute() -> None:
    # §3 "Pools": AllocatePool(EfiLoaderData) returns NX memory under 0x...7FD5
    fw, _ = make("ovmf-strict")
    pool = fw.allocate_pool(LD, 100, "t")
    assert perms(fw, pool) == "rw-"


def test_freeing_loader_code_assigns_xp_and_drops_ro() -> None:
    # §3: "freeing LoaderCode back to Conventional assigns XP, which also drops any RO/RP"
    # (release 202405: before the 202508 leak rule; ArmVirt RELEASE does not clear memory)
    fw, _ = make("armvirt-map", edk2_release=202405)
    code = fw.allocate_pages(LC, 2, "t")
    assert fw.map_set(code, 2 * PAGE, RO, "t") == "SUCCESS"
    assert perms(fw, code, 2 * PAGE) == "r-x"
    fw.free_pages(code, 2, "t")
    assert fw.memmap.type_at(code) is CONV
    assert fw.pt.get_attributes(code).efi == XP
    assert perms(fw, code, 2 * PAGE) == "rw-"


def test_loader_data_to_conventional_keeps_an_owners_ro() -> None:
    # §3 free-path hazard (inferred): LoaderData->Conventional maps to the same attribute
    # under 0x...7FD5, so no call is made and the owner's RO survives into free memory and
    # into the next allocation
    fw, _ = make("armvirt-map", edk2_release=202405)
    data = fw.allocate_pages(LD, 2, "t")
    assert fw.map_set(data, 2 * PAGE, RO, "t") == "SUCCESS"
    fw.free_pages(data, 2, "t")
    assert fw.memmap.type_at(data) is CONV
    assert fw.pt.get_attributes(data).efi == RO | XP
    again = fw.allocate_pages(LD, 2, "t")
    assert again == data  # top-down: the same pages come back
    assert perms(fw, again, 2 * PAGE) == "r--"
    assert fw.check_access(again, again + 1, W) is not None


def test_no_policy_no_calls() -> None:
    # §3: ApplyMemoryProtectionPolicy skips when the policy is 0 (stock OVMF)
    fw, events = make("ovmf")
    n = len(events)
    code = fw.allocate_pages(LC, 1, "t")
    fw.free_pages(code, 1, "t")
    assert not any(e.operation.startswith("NX policy") for e in events[n:])


# ---- §3 DEBUG_CLEAR_MEMORY and the 202508 leak ------------------------------------------


def test_debug_clear_memory_faults_on_ro_pages_x86() -> None:
    # §3 + shim PR #750: the freed range is poisoned while still RO -> #PF W=1 P=1 (0x03)
    fw, _ = make("ovmf", edk2_release=202502)
    code = fw.allocate_pages(LC, 2, "t")
    assert fw.map_set(code + PAGE, PAGE, RO, "t") == "SUCCESS"
    with pytest.raises(FaultStop) as e:
        fw.free_pages(code, 2, "image")
    rec = e.value.record
    assert rec.fault.startswith("#PF error 0x03")
    assert (rec.access, rec.address, rec.memory_type) == ("write", code + PAGE, "EfiLoaderCode")
    assert "DEBUG_CLEAR_MEMORY" in rec.operation
    assert rec.attributes == "RO"
    assert fw.memmap.type_at(code) is LC  # nothing was freed


def test_debug_clear_memory_on_writable_pages_is_fine() -> None:
    fw, _ = make("ovmf", edk2_release=202502)
    code = fw.allocate_pages(LC, 2, "t")
    fw.free_pages(code, 2, "t")
    assert fw.memmap.type_at(code) is CONV


@pytest.mark.parametrize("attr", [RO, RP])
def test_202508_leaks_ro_and_rp_pages(attr: MemAttr) -> None:
    # §3: edk2-stable202508+ (2d69507a4d) checks the protocol: RO/RP ranges are leaked
    fw, events = make("ovmf")  # 202605
    code = fw.allocate_pages(LC, 2, "t")
    assert fw.map_set(code, PAGE, attr, "t") == "SUCCESS"
    fw.free_pages(code, 2, "t")  # no fault
    assert fw.memmap.type_at(code) is LC
    assert "leaks" in events[-1].detail


def test_clearing_memory_is_off_on_armvirt_release() -> None:
    # findings.md Q2: ArmVirt RELEASE PcdDebugPropertyMask 0x21, no clearing
    fw, _ = make("armvirt-map", edk2_release=202502)
    code = fw.allocate_pages(LC, 1, "t")
    assert fw.map_set(code, PAGE, RO, "t") == "SUCCESS"
    fw.free_pages(code, 1, "t")
    assert fw.memmap.type_at(code) is CONV


# ---- §2 image loading and protection -------------------------------------------------


def test_image_is_one_loader_code_allocation(hello: StageImage) -> None:
    # §2.1: EFI_APPLICATION -> the whole image in one EfiLoaderCode allocation
    fw, _ = make("ovmf")
    li = fw.load_image(hello)
    assert (li.code_type, li.data_type) == (LC, LD)
    assert li.base % hello.section_alignment == 0
    assert {fw.memmap.type_at(li.base + o) for o in range(0, hello.size_of_image, PAGE)} == {LC}
    assert li.entry == li.base + hello.entry_rva


def test_stock_ovmf_does_not_protect_images_from_disk(hello: StageImage) -> None:
    # §1.3: OVMF PcdImageProtectionPolicy 0x2 = FV only; disk images are "unknown" sources
    fw, _ = make("ovmf")
    assert not fw.load_image(hello, source="unknown").protected
    assert fw.load_image(hello, source="fv").protected


@pytest.mark.parametrize("release", [202211, 202402])
def test_pre_202405_code_is_execute_and_not_write(hello: StageImage, release: int) -> None:
    # §2.2 <= 202402: code = EXECUTE && !WRITE -> RO; everything else XP
    fw, _ = make("ovmf-strict", edk2_release=release, image_protection=0x3)
    li = fw.load_image(hello)
    assert li.protected
    assert perms(fw, li.base) == "rw-"  # headers
    assert perms(fw, li.base + 0x1000) == "r-x"  # .text
    assert perms(fw, li.base + 0x2000) == "rw-"  # .data
    assert perms(fw, li.base + 0x3000) == "rw-"  # .sbat: read-only data is still writable
    # an executable section without CNT_CODE still counts as code before 202405
    li2 = fw.load_image(one_section(hello, X | RD))
    assert perms(fw, li2.base + 0x1000, 0x3000) == "r-x"


def test_pre_202405_rwx_only_image_is_left_unprotected(hello: StageImage) -> None:
    # §2.2 <= 202402: "if no section qualifies (e.g. one RWX section) the image is left
    # unprotected with a warning" (findings.md Q2: MemoryProtection.c:553-566)
    fw, events = make("ovmf-strict", edk2_release=202402, image_protection=0x3)
    li = fw.load_image(one_section(hello, CNT_CODE | X | RD | WR))
    assert not li.protected
    assert perms(fw, li.base, 0x4000) == "rwx"  # as allocated (LoaderCode)
    assert any("not protected" in e.operation and "read-only" in e.detail for e in events)


def test_202405_cnt_code_rwx_section_becomes_read_only(hello: StageImage) -> None:
    # §2.2 >= 202405 (37f63deeef): code = CNT_CODE regardless of WRITE -> RO (inferred:
    # "a CNT_CODE section that is also writable becomes read-only")
    fw, _ = make("ovmf-strict", edk2_release=202405, image_protection=0x3)
    li = fw.load_image(one_section(hello, CNT_CODE | X | RD | WR))
    assert li.protected
    assert perms(fw, li.base + 0x1000, 0x3000) == "r-x"
    assert x86_code(fw, li.base + 0x1000, W) == 0x03
    assert perms(fw, li.base) == "rw-"


def test_202405_image_without_cnt_code_is_all_xp(hello: StageImage) -> None:
    # §2.2 >= 202405 (inferred): no CNT_CODE section -> XP over the whole image, the entry
    # point faults (findings.md Q2: "Last DATA" branch, MemoryProtection.c:266-279)
    fw, _ = make("ovmf-strict", edk2_release=202405, image_protection=0x3)
    li = fw.load_image(one_section(hello, X | RD))
    assert li.protected
    assert perms(fw, li.base, 0x4000) == "rw-"
    assert x86_code(fw, li.entry, F) == 0x11


def test_202405_code_size_rounds_to_section_alignment(hello: StageImage) -> None:
    # §2.2: code size = VirtualSize rounded up to SectionAlignment (0x19 -> one page)
    fw, _ = make("ovmf-strict", edk2_release=202605, image_protection=0x3)
    li = fw.load_image(hello)
    assert perms(fw, li.base + 0x1000) == "r-x"
    assert perms(fw, li.base + 0x2000) == "rw-"


@pytest.mark.parametrize(("release", "expected"), [(202402, "rw-"), (202502, "rw-"),
                                                   (202505, "rwx"), (202605, "rwx")])
def test_unaligned_image_not_protected_and_rwx_since_202505(
        legacy: StageImage, release: int, expected: str) -> None:
    # §2.2: SectionAlignment 0x200 is not a multiple of 4 KiB -> not protected; before 202505
    # left as allocated, since 202505 explicitly set to access attributes 0 (RWX). A policy
    # with LoaderCode XP (bit 1, as Mu's _DEBUG) makes the difference visible.
    fw, events = make("ovmf", edk2_release=release, image_protection=0x3,
                      nx_policy=STRICT | 0x2)
    li = fw.load_image(legacy)
    assert not li.protected
    assert perms(fw, li.base) == expected
    texts = [e.operation for e in events if "not protected" in e.operation]
    assert texts
    assert any("set RWX" in t for t in texts) == (release >= 202505)


def test_aa64_runtime_driver_needs_64k_alignment(hello: StageImage) -> None:
    # §2.2: RUNTIME_PAGE_ALLOCATION_GRANULARITY (64 KiB on AArch64) for RuntimeServicesCode
    fw, _ = make("armvirt")
    rt = fw.load_image(record.replace(hello, subsystem=12))
    assert rt.code_type is MemoryType.RUNTIME_SERVICES_CODE
    assert not rt.protected
    bs = fw.load_image(record.replace(hello, subsystem=11))
    assert bs.code_type is MemoryType.BOOT_SERVICES_CODE
    assert bs.protected


def test_non_efi_subsystem_is_unsupported(hello: StageImage) -> None:
    # §2.1: anything but subsystem 10/11/12 -> EFI_UNSUPPORTED
    fw, events = make("ovmf")
    with pytest.raises(ReplayStop, match="EFI_UNSUPPORTED") as e:
        fw.load_image(record.replace(hello, subsystem=3))
    assert e.value.verdict == "refused"
    assert events[-1].status == "UNSUPPORTED"


def test_unload_unprotects_then_frees(hello: StageImage) -> None:
    # §2.2 Unload: whole range back to 0 (RWX), then freed (LoaderCode -> Conventional = XP)
    fw, _ = make("ovmf-strict", image_protection=0x3)
    li = fw.load_image(hello)
    fw.unload_image(li)
    assert fw.memmap.type_at(li.base) is CONV
    assert perms(fw, li.base, li.pages * PAGE) == "rw-"


# ---- §2.3 Project Mu -------------------------------------------------------------------


def test_mu_debug_blocks_applications_without_nx_compat(hello: StageImage) -> None:
    # §2.3: BlockImagesWithoutNxFlag -> EFI_SECURITY_VIOLATION
    fw, events = make("mu-debug", "x64")
    with pytest.raises(ReplayStop) as e:
        fw.load_image(record.replace(hello, nx_compat=False))
    assert e.value.verdict == "refused"
    assert "BlockImagesWithoutNxFlag" in e.value.reason
    assert events[-1].status == "SECURITY_VIOLATION"
    assert fw.load_image(hello).image is hello  # NX_COMPAT: loads


def test_mu_debug_makes_code_allocations_nx() -> None:
    # §1.4: _DEBUG sets NX on LoaderCode too
    fw, _ = make("mu-debug", "aa64")
    code = fw.allocate_pages(LC, 1, "t")
    assert perms(fw, code) == "rw-"


def test_mu_ship_compatibility_mode(hello: StageImage) -> None:
    # §2.3 ActivateCompatibilityMode: MAP uninstalled, every type -> 0, no image protection
    fw, events = make("mu-ship", "aa64")
    assert fw.map_installed
    assert fw.type_attribute(LD) == XP
    assert fw.type_attribute(CONV) == RP | XP  # FreeMemoryReadProtected (§1.4)
    fw.load_image(record.replace(hello, nx_compat=False))
    assert fw.compat_mode
    assert not fw.map_installed
    assert fw.map_get(0x4000_0000, PAGE)[0] == "NOT_FOUND"
    assert fw.type_attribute(LD) == NONE
    assert not fw.image_protection_wanted("fv")
    data = fw.allocate_pages(LD, 1, "t")
    assert perms(fw, data) == "rwx"
    assert any(e.operation == "Mu compatibility mode" for e in events)


def test_mu_ship_x64_has_the_memory_attribute_protocol() -> None:
    fw, _ = make("mu-ship", "x64")
    assert fw.map_installed


def test_mu_ship_x64_compatibility_mode_remaps_the_legacy_range(hello: StageImage) -> None:
    # §2.3: legacy BIOS range (below 640 KiB) remapped RWX
    fw, _ = make("mu-ship", "x64")
    assert perms(fw, 0x10000) == "---"  # free memory RP
    fw.load_image(record.replace(hello, nx_compat=False))
    assert perms(fw, 0x10000) == "rwx"


def test_mu_ship_drivers_do_not_trigger_compatibility_mode(hello: StageImage) -> None:
    # §2.3: "Drivers without the flag do not trigger it"
    fw, _ = make("mu-ship", "aa64")
    fw.load_image(record.replace(hello, nx_compat=False, subsystem=11))
    assert not fw.compat_mode
    assert fw.map_installed


def test_mu_free_memory_is_read_protected() -> None:
    # §1.4 FreeMemoryReadProtected / §8 UnallocatedMemoryIsRP
    fw, _ = make("mu-ship", "x64")
    free = next(d for d in fw.memmap if d.type is CONV and d.start >= 0x100000)
    assert x86_code(fw, free.start, R) == 0x00


# ---- §3 x86 EFER.NXE, stack -----------------------------------------------------------


def test_x86_nxe_off_when_nothing_needs_it() -> None:
    # §3 IsEnableNonExecNeeded: no stack NX, no NX policy, no image protection -> NXE off;
    # "CpuDxe silently ignores XP requests when NXE is off"
    fw, _ = make("ovmf", image_protection=0)
    assert not fw.pt.nxe
    page = fw.allocate_pages(LD, 1, "t")
    assert fw.map_set(page, PAGE, XP, "t") == "SUCCESS"
    assert fw.check_access(page, page + 1, F) is None
    assert perms(fw, page) == "rwx"


@pytest.mark.parametrize("overrides", [{}, {"image_protection": 0, "stack_nx": True},
                                       {"image_protection": 0, "nx_policy": STRICT}])
def test_x86_nxe_on(overrides: dict[str, int]) -> None:
    # §3: OVMF's default image policy 0x2 is enough to turn NXE on
    fw, _ = make("ovmf", **overrides)
    assert fw.pt.nxe


def test_arm_stack_is_nx_with_a_guard_page() -> None:
    # §3 Stack + ArmVirtQemu PcdSetNxForStack/PcdCpuStackGuard: guard page RP, rest XP
    fw, _ = make("armvirt")
    sbase, send = fw.stack
    guard = arm_abort(fw, sbase, R)
    assert guard.reason == "access-flag"  # §5.2: RP = AF cleared
    assert perms(fw, sbase + PAGE, send - sbase - PAGE) == "rw-"
    assert arm_abort(fw, sbase + PAGE, F).ec == 0x21


def test_x86_stack_executable_by_default_and_nx_with_the_pcd() -> None:
    # §1.3: OVMF PcdSetNxForStack FALSE; fw_cfg can switch it on
    fw, _ = make("ovmf")
    sbase, send = fw.stack
    assert perms(fw, sbase, send - sbase) == "rwx"
    fw2, _ = make("ovmf", stack_nx=True, stack_guard=True)
    sbase, _send = fw2.stack
    assert x86_code(fw2, sbase + PAGE, F) == 0x11
    assert x86_code(fw2, sbase, R) == 0x00  # guard page P=0
    assert x86_code(fw2, sbase, W) == 0x02


def test_stack_is_nx_when_boot_services_data_is_in_the_policy() -> None:
    # §3: "The stack is BootServicesData, so any policy with bit 4 set makes it NX"
    fw, _ = make("ovmf-strict")
    sbase, send = fw.stack
    assert perms(fw, sbase, send - sbase) == "rw-"


def test_null_detection() -> None:
    # §3 NULL page: RP with PcdNullPointerDetectionPropertyMask BIT0
    fw, _ = make("ovmf", null_detection=True)
    assert x86_code(fw, 0, R) == 0x00
    assert x86_code(fw, 8, W) == 0x02


# ---- §5 fault signatures --------------------------------------------------------------


def test_x86_fault_codes() -> None:
    # §5.1: fetch on NX 0x11, write to RO 0x03, RP: P=0 (0x00 read, 0x02 write, 0x10 fetch)
    fw, _ = make("ovmf-strict")
    data = fw.allocate_pages(LD, 1, "t")
    assert x86_code(fw, data, F) == 0x11
    code = fw.allocate_pages(LC, 2, "t")
    assert fw.map_set(code, PAGE, RO, "t") == "SUCCESS"
    assert x86_code(fw, code, W) == 0x03
    assert fw.check_access(code, code + 1, F) is None
    assert fw.map_set(code + PAGE, PAGE, RP, "t") == "SUCCESS"
    assert x86_code(fw, code + PAGE, R) == 0x00
    assert x86_code(fw, code + PAGE, W) == 0x02
    assert x86_code(fw, code + PAGE, F) == 0x10


def test_aarch64_fault_codes() -> None:
    # §5.2: XN -> instruction abort EC 0x21, permission fault at the leaf (page: IFSC 0x0f);
    # RO write -> data abort EC 0x25, WnR=1; RP -> access-flag fault (level 3: 0x0b)
    fw, _ = make("armvirt-map")
    code = fw.allocate_pages(LC, 3, "t")  # 4 KiB pages (split from the free block)
    assert fw.map_set(code, PAGE, XP, "t") == "SUCCESS"
    a = arm_abort(fw, code, F)
    assert (a.ec, a.fsc) == (0x21, 0x0F)
    assert "instruction abort" in a.describe() and "IFSC 0x0f" in a.describe()
    assert fw.map_set(code + PAGE, PAGE, RO, "t") == "SUCCESS"
    a = arm_abort(fw, code + PAGE, W)
    assert (a.ec, a.fsc, a.wnr) == (0x25, 0x0F, True)
    assert a.esr & (1 << 6)
    assert fw.map_set(code + 2 * PAGE, PAGE, RP, "t") == "SUCCESS"
    a = arm_abort(fw, code + 2 * PAGE, R)
    assert (a.ec, a.fsc, a.wnr, a.reason) == (0x25, 0x0B, False, "access-flag")


def test_fault_record_names_the_last_change() -> None:
    fw, _ = make("ovmf-strict")
    fw.stage = "grub"
    data = fw.allocate_pages(LD, 1, "t")
    with pytest.raises(FaultStop) as e:
        fw.access(data, data + 1, F, "jump")
    rec = e.value.record
    assert (rec.stage, rec.operation, rec.address, rec.access) == ("grub", "jump", data, "fetch")
    assert (rec.memory_type, rec.attributes) == ("EfiLoaderData", "XP")
    assert rec.fault.startswith("#PF error 0x11")
    assert rec.changed_by == "firmware: NX policy sweep (XP)"
    assert "EfiLoaderData" in rec.explanation
    assert "EfiLoaderCode" in rec.fix  # default fix for fetch from LoaderData


def test_after_exit_boot_services_no_allocations() -> None:
    fw, _ = make("ovmf")
    fw.exit_boot_services()
    with pytest.raises(ReplayStop, match="after ExitBootServices"):
        fw.allocate_pages(LD, 1, "t")


def test_secure_boot_refuses_unsigned_images(hello: StageImage) -> None:
    events: list[Event] = []
    fw = Firmware(load_firmware("ovmf"), "x64", secure_boot=True, log=events.append)
    with pytest.raises(ReplayStop, match="SECURITY_VIOLATION"):
        fw.load_image(hello)


def test_allocate_max_address_stays_below_it() -> None:
    """AllocateMaxAddress (systemd-stub's handover copy below 4 GiB): the highest free range
    ending at or below the limit, on a guest with memory far above it."""
    fw, _events = make("ovmf", memory_mib=65536)
    base = fw.allocate_pages(MemoryType.LOADER_CODE, 0x800, "below 4 GiB",
                             max_address=0xFFFFFFFF)
    assert base + 0x800 * PAGE <= 1 << 32
    assert fw.memmap.type_at(base) is MemoryType.LOADER_CODE
    with pytest.raises(ReplayStop, match="no free range"):
        fw.allocate_pages(MemoryType.LOADER_CODE, 0x100000, "4 GiB below 4 GiB",
                          max_address=0xFFFFFFFF)


# ---- stops and faults as data ------------------------------------------------------------


def test_fault_record_carries_stage_index_and_pf_error_code() -> None:
    fw, _ = make("ovmf-strict")
    fw.stage, fw.stage_index = "grub", 2
    data = fw.allocate_pages(LD, 1, "t")
    with pytest.raises(FaultStop) as e:
        fw.access(data + 0x10, data + 0x11, F, "jump")
    rec = e.value.record
    assert (rec.stage, rec.stage_index, rec.address, rec.access) == ("grub", 2, data + 0x10,
                                                                     "fetch")
    assert rec.code == 0x11  # I/D and P: an instruction fetch from a present NX page
    assert rec.summary == "#PF error 0x11"
    stop = e.value.stop
    assert (stop.verdict, stop.code, stop.stage, stop.stage_index) == ("faults", "fault",
                                                                       "grub", 2)


def test_fault_record_code_is_the_esr_on_aarch64() -> None:
    fw, _ = make("armvirt-map", "aa64")
    fw.stage_index = 1
    data = fw.allocate_pages(LD, 1, "t")
    with pytest.raises(FaultStop) as e:
        fw.access(data, data + 1, F, "jump")
    rec = e.value.record
    abort = arm_abort(fw, data, F)
    assert rec.code == abort.esr and rec.code >> 26 == 0x21  # EC: instruction abort, same EL
    assert rec.summary == "EC 0x21" and rec.stage_index == 1


def test_write_fault_code_has_the_write_bit() -> None:
    fw, _ = make("ovmf")
    code = fw.allocate_pages(LC, 1, "t")
    fw.map_set(code, PAGE, RO, "t")
    with pytest.raises(FaultStop) as e:
        fw.access(code, code + 8, W, "poke")
    assert e.value.record.code == 0x03 and e.value.record.access == "write"


def test_load_image_refusals_are_the_firmwares_with_a_code(hello: StageImage) -> None:
    fw = Firmware(load_firmware("ovmf"), "x64", secure_boot=True, log=lambda e: None)
    fw.stage, fw.stage_index = "grub", 2  # grub calls LoadImage; the firmware refuses
    with pytest.raises(ReplayStop) as e:
        fw.load_image(hello)
    assert (e.value.verdict, e.value.code) == ("refused", "unsigned")
    assert (e.value.stage, e.value.stage_index) == ("firmware", 0)
    fw2, _ = make("ovmf")
    with pytest.raises(ReplayStop) as e2:
        fw2.load_image(record.replace(hello, subsystem=3))
    assert e2.value.code == "not-efi"


def test_allocation_stops_name_the_calling_stage() -> None:
    fw, _ = make("ovmf")
    fw.stage, fw.stage_index = "shim", 1
    with pytest.raises(ReplayStop) as e:
        fw.allocate_pages(LC, 1 << 30, "huge")
    assert (e.value.code, e.value.stage, e.value.stage_index) == ("out-of-resources", "shim", 1)
    fw.exit_boot_services()
    with pytest.raises(ReplayStop) as e2:
        fw.allocate_pages(LD, 1, "t")
    assert (e2.value.verdict, e2.value.code) == ("faults", "boot-services-exited")


def test_unknown_stop_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown stop code"):
        ReplayStop("refused", "x", code="because", stage="shim", stage_index=1)
