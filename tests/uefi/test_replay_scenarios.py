"""Boot-chain replays of the Debian corpus on the shipped firmware profiles.

Each expectation cites its source: a docs/reference/wx-model.md section or §6.1 table row
(docs/reference/wx-model.md), or /tmp/research/findings.md (Debian source packages).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import Corpus

from fwtools._base import record
from fwtools.errors import UsageError
from fwtools.formats.pe.image import Section
from fwtools.uefi.image import StageImage, load_stage
from fwtools.uefi.profile import load_firmware
from fwtools.uefi.registry import ModelError
from fwtools.uefi.replay import Replay, replay


def ImageSection(name: str, rva: int, vsize: int, raw: int, characteristics: int) -> Section:
    """A section header as the tests describe it (fwtools.formats.pe.image.Section)."""
    return Section(0, name, name.encode(), 0, rva, vsize, 0, raw, characteristics)


def chain(corpus: Corpus, suite: str, arch: str) -> list[StageImage]:
    return [load_stage(p) for p in corpus.boot_chain(suite, arch)]


def run(images: list[StageImage], firmware: str, **kw: object) -> Replay:
    return replay(images, load_firmware(firmware), **kw)  # type: ignore[arg-type]


def models(r: Replay) -> list[str]:
    return [s.model for s in r.stages]


# ---- Debian 12 (bookworm) x86: shim 16.1 -> grub 2.06 debian -> 6.1 --------------------


@pytest.mark.parametrize("secure_boot", [True, False])
def test_bookworm_x86_faults_on_ovmf_strict(corpus: Corpus, secure_boot: bool) -> None:
    r = run(chain(corpus, "bookworm", "amd64"), "ovmf-strict", secure_boot=secure_boot)
    assert models(r) == ["shim-16.1", "grub-debian-2.06", "linux-x86-stub-backport"]
    assert r.verdict == "faults"
    (f,) = r.faults
    # fetch from an NX page is #PF 0x11 (docs/reference/wx-model.md §5.1), at the grub stage
    assert f.stage == "grub"
    assert f.access == "fetch"
    assert f.fault.startswith("#PF error 0x11")
    assert (f.stage_index, f.code) == (2, 0x11)  # the second stage; I/D=1 P=1
    assert r.stop is not None and (r.stop.code, r.stop.stage_index) == ("fault", 2)
    assert r.stage_at(f.stage_index) is r.stages[1]
    assert f.attributes == "XP"
    if secure_boot:
        # findings.md Q3 "linux on x86_64-efi, Bookworm", SB on: linuxefi reads the bzImage
        # into LoaderData (loader/i386/efi/linux.c:304-308) and jumps to the handover entry
        # there (:99-107); 0x...7FD5 makes LoaderData XP (docs/reference/wx-model.md §1.2)
        assert f.memory_type == "EfiLoaderData"
        # grub_linuxefi_boot calls kernel_mem + handover_offset + 512, and kernel_mem holds
        # the file from the protected-mode code on: the page offset of the fault is that of
        # the handover entry, whatever the buffer's address (the real fault's RIP agrees)
        kernel = r.stages[2]
        bz = load_stage(kernel.path).kernel
        assert bz is not None and bz.handover_64
        handover_offset = bz.handover_entry - bz.protected_mode_offset - 0x200
        assert f.address & 0xFFF == (0x200 + handover_offset) & 0xFFF
        # not the PE entry point (what the model jumped to before)
        assert (f.address & 0xFFF) != load_stage(kernel.path).entry_rva & 0xFFF
    else:
        # SB off: the legacy x86 loader (findings.md Q3). docs/reference/wx-model.md §6.1 GRUB 2.06
        # row has
        # the LoaderData relocator "(inferred)"; the model is calibrated on the lab instead
        # (commit 7a52333, tests/e2e/lab: RIP = CR2 = 0): the trampoline runs in free memory
        assert f.memory_type == "EfiConventionalMemory"
        assert "trampoline" in f.operation


@pytest.mark.parametrize("firmware", ["ovmf-compat", "ovmf", "debian13-ovmf", "debian12-ovmf"])
def test_bookworm_x86_secure_boot_boots_where_loader_data_is_executable(
        corpus: Corpus, firmware: str) -> None:
    # docs/reference/wx-model.md §1.2: 0x...7FD1 leaves LoaderData executable; stock/Debian OVMF
    # have no
    # NX policy at all (findings.md Q1: DEC default 0, no --pcd for it in debian/rules)
    r = run(chain(corpus, "bookworm", "amd64"), firmware, secure_boot=True)
    assert r.verdict == "boots", r.reason
    assert r.faults == []
    assert r.reason == "the kernel has control"


@pytest.mark.parametrize(("firmware", "verdict"), [("ovmf", "boots"), ("debian13-ovmf", "boots"),
                                                   ("debian12-ovmf", "boots"),
                                                   ("ovmf-compat", "faults")])
def test_bookworm_x86_legacy_loader(corpus: Corpus, firmware: str, verdict: str) -> None:
    # SB off, legacy loader: no NX policy -> boots; 0x...7FD1 keeps free memory XP, and the
    # trampoline runs in free memory (calibrated on the lab's compat OVMF, commit 7a52333)
    r = run(chain(corpus, "bookworm", "amd64"), firmware, secure_boot=False)
    assert r.verdict == verdict, r.reason
    if verdict == "faults":
        assert r.faults[0].memory_type == "EfiConventionalMemory"


@pytest.mark.parametrize(("firmware", "verdict"), [("armvirt", "faults"),
                                                   ("debian13-aavmf", "faults"),
                                                   ("debian12-aavmf", "boots")])
def test_bookworm_arm64_secure_boot(corpus: Corpus, firmware: str, verdict: str) -> None:
    # Debian GRUB 2.06 arm64 with Secure Boot enters the kernel in its LoaderData buffer
    # (model source: loader/arm64/linux.c:153-180, observed in tests/e2e on Debian 13's AAVMF);
    # Debian 12's AAVMF keeps LoaderData executable (findings.md Q1: ArmVirt.dsc.inc:371,
    # the #1025656 revert)
    r = run(chain(corpus, "bookworm", "arm64"), firmware, secure_boot=True)
    assert r.verdict == verdict, r.reason
    if verdict == "faults":
        (f,) = r.faults
        assert (f.stage, f.access, f.memory_type) == ("grub", "fetch", "EfiLoaderData")
        assert f.fault.startswith("EC 0x21")
        # the ESR: EC 0x21 (instruction abort, same EL), IL, IFSC 0x0e: permission fault at
        # level 2 (the buffer lies in a 2 MiB block)
        assert f.stage_index == 2 and f.code == (0x21 << 26) | (1 << 25) | 0x0E
        # grub_efi_linux_boot calls kernel_addr + the PE entry point in the raw file copy
        kernel = load_stage(r.stages[2].path)
        assert f.address & 0xFFF == kernel.entry_rva & 0xFFF
    else:
        # the kernel ran: the raw copy is 4 KiB-aligned, so the stub relocates itself into
        # EfiLoaderCode (arm64-stub.c handle_kernel_image) before the kernel proper runs
        assert any(e.operation.startswith("relocate ") for e in r.events)


def test_bookworm_arm64_without_secure_boot_boots_on_armvirt(corpus: Corpus) -> None:
    # findings.md Q3 "linux on arm64-efi, Bookworm", SB off: firmware LoadImage into
    # LoaderCode with DXE image protection (ArmVirt 0x3)
    r = run(chain(corpus, "bookworm", "arm64"), "armvirt", secure_boot=False)
    assert r.verdict == "boots", r.reason


# ---- Debian 13 (trixie): shim 16.1 -> grub 2.12 peimage -> 6.12 ------------------------


@pytest.mark.parametrize("firmware", ["ovmf", "ovmf-strict", "ovmf-compat", "debian13-ovmf",
                                      "debian13-ovmf-strictnx", "mu-ship"])
@pytest.mark.parametrize("secure_boot", [True, False])
def test_trixie_x86_boots(corpus: Corpus, firmware: str, secure_boot: bool) -> None:
    # findings.md Q3 "Trixie monolithic image and peimage": the kernel is copied into a fresh
    # EfiLoaderCode allocation (peimage.c:239-241), which no upstream policy makes NX
    # (docs/reference/wx-model.md §6.1 note: "stock edk2 never makes LoaderCode NX"). mu-ship: shim
    # lacks
    # NX_COMPAT (findings.md Q4: debian/rules:48-49) -> compatibility mode (§2.3).
    r = run(chain(corpus, "trixie", "amd64"), firmware, secure_boot=secure_boot)
    assert models(r)[:2] == ["shim-16.1", "grub-debian-2.12"]
    assert r.verdict == "boots", r.reason


@pytest.mark.parametrize("firmware", ["armvirt", "armvirt-map", "debian13-aavmf",
                                      "debian13-aavmf-strictnx", "debian12-aavmf", "mu-ship"])
def test_trixie_arm64_boots(corpus: Corpus, firmware: str) -> None:
    r = run(chain(corpus, "trixie", "arm64"), firmware, secure_boot=True)
    assert models(r) == ["shim-16.1", "grub-debian-2.12", "linux-arm64-image"]
    assert r.verdict == "boots", r.reason


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_trixie_refused_on_mu_debug(corpus: Corpus, arch: str) -> None:
    # docs/reference/wx-model.md §2.3: BlockImagesWithoutNxFlag -> EFI_SECURITY_VIOLATION for an
    # application
    # without NX_COMPAT; Debian's shim is built with NX_COMPAT cleared (findings.md Q4:
    # debian/rules:48-49 POST_PROCESS_PE_FLAGS=-N; binaries checked: DllCharacteristics 0)
    images = chain(corpus, "trixie", arch)
    assert not images[0].nx_compat
    r = run(images, "mu-debug")
    assert r.verdict == "refused"
    assert r.faults == []
    assert "BlockImagesWithoutNxFlag" in r.reason
    assert "SECURITY_VIOLATION" in r.reason
    # the firmware's own LoadImage refuses (stage 0), for want of NX_COMPAT
    assert r.stop is not None
    assert (r.stop.code, r.stop.stage, r.stop.stage_index) == ("nx-compat-required",
                                                               "firmware", 0)


# ---- shim 15.6/15.7 and sections whose size is not a 4 KiB multiple (shim issue #585) ----


@pytest.mark.parametrize(("firmware", "verdict"), [
    ("ovmf", "faults"),  # x86 MAP since 202502 (§4 table)
    ("debian13-ovmf-strictnx", "faults"),  # Debian keeps MAP here (findings.md Q1 rules:49)
    ("debian13-ovmf", "boots"),  # MAP uninstalled (rules:40): shim sets nothing
    ("debian12-ovmf", "boots"),  # 2022.11: no MAP
])
def test_shim_15_6_with_unaligned_code_section(corpus: Corpus, firmware: str,
                                               verdict: str) -> None:
    # docs/reference/wx-model.md §6.1 shim 15.6/15.7 row: the buffer is first set RW-/NX, then
    # update_mem_attrs returns early for a section whose size is not a 4 KiB multiple, so
    # the code stays NX -> fault on entry when the protocol is there (shim issue #585)
    shim = load_stage(corpus.shim("trixie", "amd64"))
    sdboot = load_stage(corpus.systemd_boot("trixie"))
    text = next(s for s in sdboot.sections if s.name == ".text")
    assert text.virtual_size % 0x1000  # 0x177d3
    r = run([shim, sdboot], firmware, models={0: "shim-15.6"})
    assert models(r) == ["shim-15.6", "systemd-boot"]
    assert r.stages[0].overridden
    assert r.verdict == verdict, r.reason
    if verdict == "faults":
        (f,) = r.faults
        assert (f.stage, f.access, f.memory_type) == ("shim", "fetch", "EfiLoaderCode")
        assert f.fault.startswith("#PF error 0x11")
        assert f.attributes == "XP"
        assert "RW-/NX" in (f.changed_by or "")


def _odd_text(img: StageImage, size: int) -> StageImage:
    secs = tuple(record.replace(s, virtual_size=size) if s.name == ".text" else s
                 for s in img.sections)
    return record.replace(img, sections=secs)


@pytest.mark.parametrize(("firmware", "verdict"), [("armvirt-map", "faults"),
                                                   ("armvirt", "boots")])
def test_shim_15_6_arm64_unaligned_grub_text(corpus: Corpus, firmware: str,
                                             verdict: str) -> None:
    # shim issue #585 (fbaa64.efi on ArmVirt with the memory attribute protocol): same rule,
    # AArch64 signature: instruction abort EC 0x21, permission fault (§5.2)
    shim, grub, kernel = chain(corpus, "trixie", "arm64")
    grub = _odd_text(grub, 0xCF10)
    r = run([shim, grub, kernel], firmware, models={0: "shim-15.6"})
    assert r.verdict == verdict, r.reason
    if verdict == "faults":
        (f,) = r.faults
        assert (f.stage, f.access, f.memory_type) == ("shim", "fetch", "EfiLoaderCode")
        assert f.fault.startswith("EC 0x21")
        assert "permission fault" in f.fault


def test_shim_15_8_rounds_the_section_up(corpus: Corpus) -> None:
    # docs/reference/wx-model.md §6.1 shim 15.8 row: "length rounded up (c7b3051)" -> boots with MAP
    shim = load_stage(corpus.shim("trixie", "amd64"))
    sdboot = load_stage(corpus.systemd_boot("trixie"))
    r = run([shim, sdboot], "ovmf", models={0: "shim-15.8"})
    assert r.verdict == "boots", r.reason


# ---- GRUB <= 2.02: heap in LoaderData ------------------------------------------------


@pytest.mark.parametrize(("firmware", "verdict"), [("armvirt", "faults"),
                                                   ("debian12-aavmf", "boots")])
def test_grub_2_02_heap_in_loader_data(corpus: Corpus, firmware: str, verdict: str) -> None:
    # docs/reference/wx-model.md §6.1 GRUB <= 2.02 row: modules in a LoaderData heap fault under
    # 0x...7FD5
    # (armvirt) and run under 0x...7FD1 (Debian 12 AAVMF, findings.md Q1 ArmVirt.dsc.inc:371)
    r = run(chain(corpus, "bookworm", "arm64"), firmware, models={1: "grub-2.02"})
    assert r.verdict == verdict, r.reason
    if verdict == "faults":
        (f,) = r.faults
        assert (f.stage, f.access, f.memory_type) == ("grub", "fetch", "EfiLoaderData")
        assert f.fault.startswith("EC 0x21")
        assert "heap" in f.operation


# ---- Linux x86 before 6.6: efi_relocate_kernel into LoaderData --------------------------


def test_linux_x86_legacy_faults_on_ovmf_strict(corpus: Corpus) -> None:
    # docs/reference/wx-model.md §6.1 "Linux x86 < 6.6" row: relocated into LoaderData, decompressor
    # runs
    # there -> fault on strict firmware "unless the DXE path works"; a kernel without
    # NX_COMPAT (no CONFIG_EFI_DXE_MEM_ATTRIBUTES) has no DXE path
    kernel = record.replace(load_stage(corpus.kernel("bookworm", "amd64")), nx_compat=False)
    r = run([kernel], "ovmf-strict", models={0: "linux-x86-legacy"})
    assert r.verdict == "faults"
    (f,) = r.faults
    assert (f.stage, f.access, f.memory_type) == ("kernel", "fetch", "EfiLoaderData")
    assert f.fault.startswith("#PF error 0x11")
    assert run([kernel], "ovmf-compat", models={0: "linux-x86-legacy"}).verdict == "boots"


def test_linux_x86_legacy_with_dxe_mem_attributes_boots(corpus: Corpus) -> None:
    # same row: NX_COMPAT marks CONFIG_EFI_DXE_MEM_ATTRIBUTES, whose DXE-services call strips
    # XP from the relocated copy (the real 6.1 kernel has NX_COMPAT set)
    kernel = load_stage(corpus.kernel("bookworm", "amd64"))
    assert kernel.nx_compat
    r = run([kernel], "ovmf-strict", models={0: "linux-x86-legacy"})
    assert r.verdict == "boots", r.reason
    assert any("DXE SetMemorySpaceAttributes" in e.operation for e in r.events)


# ---- shim 16.1 MokPolicy NX auto-enable --------------------------------------------------


def test_nx_compat_shim_16_1_refuses_grub_without_nx_compat(corpus: Corpus) -> None:
    # docs/reference/wx-model.md §6.1 shim 16.1 row / findings.md Q4 (pe-relocate.c:681-690,
    # :572-578):
    # NX_COMPAT shim + MAP + enforcing firmware (heap NX, stack NX, shim code RO: armvirt-map)
    # -> MOK_POLICY_REQUIRE_NX -> "Policy requires NX, but image does not support NX"
    shim, grub, kernel = chain(corpus, "trixie", "arm64")
    shim = record.replace(shim, nx_compat=True)
    assert not grub.nx_compat
    r = run([shim, grub, kernel], "armvirt-map")
    assert r.verdict == "refused"
    assert "Policy requires NX" in r.reason
    assert r.stop is not None
    assert (r.stop.code, r.stop.stage, r.stop.stage_index) == ("nx-compat-required", "shim", 1)


def test_nx_compat_shim_16_1_hook_refuses_kernel_without_nx_compat(corpus: Corpus) -> None:
    # the same policy in shim_load_image (loader-proto.c:317 -> read_header), reached when an
    # upstream grub loads the arm64 kernel through firmware LoadImage, which shim >= 16 hooks
    # under Secure Boot (findings.md Q4 "Hooks": shim.c:1012-1020, loader-proto.c:474-506)
    shim, grub, kernel = chain(corpus, "trixie", "arm64")
    shim = record.replace(shim, nx_compat=True)
    # grub must pass shim's own check first (an NX_COMPAT grub), then its kernel is judged
    grub = record.replace(grub, nx_compat=True)
    kernel = record.replace(kernel, nx_compat=False)
    forced = {1: "grub-2.12"}
    r = run([shim, grub, kernel], "armvirt-map", secure_boot=True, models=forced)
    assert r.verdict == "refused"
    assert r.reason.startswith("grub: Policy requires NX")
    # shim's hook runs for grub's LoadImage: the refusal is grub's call failing
    assert r.stop is not None and (r.stop.code, r.stop.stage_index) == ("nx-compat-required", 2)
    # ... not without the protocol (hsi_api_is_present), nor with Debian's shim (no NX_COMPAT)
    assert run([shim, grub, kernel], "armvirt", secure_boot=True,
               models=forced).verdict == "boots"
    plain = chain(corpus, "trixie", "arm64")[0]
    assert run([plain, grub, kernel], "armvirt-map", secure_boot=True,
               models=forced).verdict == "boots"
    # ... and Debian 13's peimage grub bypasses shim entirely (findings.md Q3)
    assert run([shim, grub, kernel], "armvirt-map", secure_boot=True).verdict == "boots"


# ---- the JSON-able contract -----------------------------------------------------------


def test_replay_result_contract(corpus: Corpus) -> None:
    r = run(chain(corpus, "bookworm", "amd64"), "ovmf-strict", secure_boot=True)
    doc = {
        "verdict": r.verdict,
        "stages": [{"name": s.name, "model": s.model, "family": s.family} for s in r.stages],
        "faults": [record.fields_of(f) for f in r.faults],
    }
    text = json.dumps(doc)
    back = json.loads(text)
    assert back["verdict"] in ("boots", "faults", "refused")
    assert [s["name"] for s in back["stages"]] == ["shim", "grub", "kernel"]
    assert [s["model"] for s in back["stages"]] == models(r)
    (f,) = back["faults"]
    for key in ("stage", "operation", "address", "access", "memory_type", "fault",
                "explanation"):
        assert f[key] not in (None, ""), key
    assert isinstance(f["address"], int)
    assert f["access"] in ("fetch", "write", "read")
    assert "fault" in r.events[-1].operation and r.events[-1].status == "FAULT"


def test_arch_mismatch_is_a_usage_error(corpus: Corpus) -> None:
    from fwtools.errors import UsageError

    with pytest.raises(UsageError, match="is for aa64"):
        run(chain(corpus, "trixie", "amd64"), "armvirt")


def test_section_fixture_helper_is_page_unaligned() -> None:
    # guard for _odd_text: the size it sets must not be a 4 KiB multiple
    s = _odd_text(record.replace(_DUMMY, sections=(_TEXT,)), 0xCF10).sections[0]
    assert s.virtual_size % 0x1000


_TEXT = ImageSection(".text", 0x1000, 0x2000, 0x2000, 0x60000020)
_DUMMY = StageImage(
    path="x", file_size=0, machine="aarch64", subsystem=10, section_alignment=0x1000,
    file_alignment=0x200, size_of_image=0x3000, size_of_headers=0x400, entry_rva=0x1000,
    nx_compat=False, relocs_stripped=False, has_reloc_directory=False, reloc_pages=(),
    major_image_version=0, sections=(_TEXT,), signed=False, sbat=(), shim_version=None,
    kernel=None, systemd=False, uki_kernel=None)


# ---- copies stay in their buffers ---------------------------------------------------------


def test_bookworm_arm64_secure_boot_reads_the_file_into_a_file_sized_buffer(
        corpus: Corpus) -> None:
    """Debian GRUB 2.06 arm64 (loader/arm64/linux.c grub_cmd_linux): kernel_addr =
    grub_efi_allocate_any_pages(BYTES_TO_PAGES(file size)), and the file is read there
    whole; the Image's SizeOfImage (with its BSS) at 64 KiB alignment would not fit."""
    r = run(chain(corpus, "bookworm", "arm64"), "debian12-aavmf", secure_boot=True)
    assert r.verdict == "boots", r.reason
    alloc = next(e for e in r.events if e.operation.startswith("AllocatePages kernel (arm64"))
    read = next(e for e in r.events if e.operation.startswith("read vmlinuz"))
    kernel = load_stage(r.stages[2].path)
    assert alloc.end - alloc.start == (kernel.file_size + 0xFFF) & ~0xFFF
    assert (read.start, read.end - read.start) == (alloc.start, kernel.file_size)
    assert kernel.size_of_image > alloc.end - alloc.start  # what the old model wrote


def test_a_copy_past_its_buffer_is_a_model_error(corpus: Corpus, tmp_path: Path) -> None:
    """The old arm64 model: SizeOfImage placed at 64 KiB alignment into a buffer the size
    of the file. The replay stops with a ModelError naming the model and the overrun."""
    model = tmp_path / "grub-overrun.toml"
    model.write_text('name = "grub-overrun"\nfamily = "grub"\n'
                     '[[steps]]\nop = "allocate"\nname = "kernel"\ntype = "LoaderData"\n'
                     'size = "next.file"\n'
                     '[[steps]]\nop = "place"\ninto = "kernel"\nrelocate = false\n'
                     '[[steps]]\nop = "start"\n', encoding="utf-8")
    images = chain(corpus, "bookworm", "arm64")
    with pytest.raises(ModelError, match=r"grub-overrun \(stage grub\).*overruns it by") as exc:
        run(images, "debian13-aavmf", secure_boot=True, models={1: str(model)})
    assert isinstance(exc.value, UsageError)  # one line and exit 2 on the command line
    assert exc.value.model == "grub-overrun"


def test_a_protected_mode_read_of_a_non_bzimage_is_a_model_error(
        corpus: Corpus, tmp_path: Path) -> None:
    model = tmp_path / "grub-x86-on-arm.toml"
    model.write_text('name = "grub-x86-on-arm"\nfamily = "grub"\n'
                     '[[steps]]\nop = "allocate"\nname = "kernel"\ntype = "LoaderData"\n'
                     'size = "next.image"\n'
                     '[[steps]]\nop = "read"\ninto = "kernel"\nfrom = "protected_mode"\n',
                     encoding="utf-8")
    with pytest.raises(ModelError, match="no bzImage"):
        run(chain(corpus, "bookworm", "arm64"), "armvirt", models={1: str(model)})


# ---- the kernels' own stubs ----------------------------------------------------------------


def _final_permissions(r: Replay, start: int, end: int) -> set[str]:
    last = max(r.snapshots)
    return {m.permissions for m in r.snapshots[last] if m.start < end and m.end > start}


@pytest.mark.parametrize("firmware", ["ovmf-strict", "debian13-ovmf-strictnx"])
def test_x86_stub_makes_the_kernel_text_read_only(corpus: Corpus, firmware: str) -> None:
    """efi_adjust_memory_range_protection (6.8+, and the 6.1.y backport): RO set, then XP
    cleared (memory attribute protocol) or (attributes & ~XP) | RO (DXE services)."""
    r = run(chain(corpus, "trixie", "amd64"), firmware, snapshots=True)
    assert r.verdict == "boots", r.reason
    alloc = next(e for e in r.events if e.stage == "kernel"
                 and e.operation.startswith("AllocatePages kernel"))
    assert _final_permissions(r, alloc.start, alloc.end) == {"r-x"}


def test_arm64_stub_relocates_an_image_off_2mib_and_remaps_it_from_6_2(
        corpus: Corpus) -> None:
    """handle_kernel_image: GRUB 2.12's peimage places the Image at 64 KiB alignment, not
    MIN_KIMG_ALIGN, so the stub copies it into EfiLoaderCode; 6.12 has efi_remap_image and
    maps the copy's text R-X, 6.1 (before 6.2) leaves permissions alone."""
    r = run(chain(corpus, "trixie", "arm64"), "armvirt-map", snapshots=True)
    assert r.verdict == "boots", r.reason
    ops = [e.operation for e in r.events if e.stage == "kernel"]
    assert any(o.startswith("relocate ") for o in ops)
    # efi_remap_image: the copy was not XP (EfiLoaderCode), so code RO and the rest XP
    assert [o.split(" (")[0] for o in ops if "efi_remap_image" in o] == [
        "SetMemoryAttributes(RO) kernel", "SetMemoryAttributes(XP) kernel"]
    alloc = next(e for e in r.events if e.stage == "kernel"
                 and e.operation.startswith("AllocatePages kernel"))
    kernel = load_stage(r.stages[2].path)
    text = next(s for s in kernel.sections if s.execute)
    code_end = alloc.start + ((text.virtual_address + text.memory_size + 0xFFF) & ~0xFFF)
    assert _final_permissions(r, alloc.start, code_end) == {"r-x"}  # headers included
    assert _final_permissions(r, code_end, alloc.end) == {"rw-"}
    old = run(chain(corpus, "bookworm", "arm64"), "armvirt-map")
    assert old.verdict == "boots", old.reason
    assert not any("efi_remap_image" in e.operation for e in old.events)
    assert any(e.operation.startswith("relocate ") for e in old.events)
