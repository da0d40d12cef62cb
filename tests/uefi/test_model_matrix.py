"""Every shipped loader model in at least one replay, forced onto real Debian binaries where
the corpus has no such build (docs/reference/wx-model.md §6.1 names each component's behaviour;
citations
per case). Every firmware profile that a case names is exercised both ways where it can be."""

from __future__ import annotations

from pathlib import Path

from corpus import Corpus

from fwtools._base import record
from fwtools.uefi.image import KernelFacts, SbatEntry, StageImage, load_stage
from fwtools.uefi.loaders import shipped_models
from fwtools.uefi.profile import load_firmware
from fwtools.uefi.replay import Replay, replay


def chain(corpus: Corpus, suite: str, arch: str) -> list[StageImage]:
    return [load_stage(p) for p in corpus.boot_chain(suite, arch)]


def run(images: list[StageImage], firmware: str, *, secure_boot: bool = False,
        models: dict[int, str] | None = None) -> Replay:
    return replay(images, load_firmware(firmware), secure_boot=secure_boot, models=models)


def test_shim_15_4_sets_no_attributes(corpus: Corpus) -> None:
    # §6.1 shim 15.4/15.5: own loader into LoaderCode, no MAP: OK on strict and compat
    images = chain(corpus, "trixie", "arm64")
    for fw in ("armvirt", "armvirt-map"):
        r = run(images, fw, models={0: "shim-15.4"})
        assert r.verdict == "boots", r.reason
        assert not any(e.stage == "shim" and "MemoryAttributes" in e.operation
                       for e in r.events)
    # §2.3: under Mu, shim (no NX_COMPAT) triggers compatibility mode or is blocked
    x86 = chain(corpus, "trixie", "amd64")
    assert run(x86, "mu-ship", models={0: "shim-15.4"}).verdict == "boots"
    assert run(x86, "mu-debug", models={0: "shim-15.4"}).verdict == "refused"


def test_shim_16_0_loads_like_15_8_and_hooks_loadimage(corpus: Corpus) -> None:
    # §6.1 shim 16.0: as 15.8, plus LoadImage hooks under Secure Boot (loader-proto.c)
    shim, _grub, kernel = chain(corpus, "bookworm", "arm64")
    grub = load_stage(corpus.grub("trixie", "arm64"))
    for sb in (False, True):
        r = run([shim, grub, kernel], "armvirt-map", secure_boot=sb,
                models={0: "shim-16.0", 1: "grub-2.12"})
        assert r.verdict == "boots", r.reason
        hooked = any(e.stage == "shim (LoadImage hook)" for e in r.events)
        assert hooked == sb  # upstream grub 2.12's arm64 LoadImage goes through the hook


def test_upstream_grub_2_06_x86_legacy_loader(corpus: Corpus) -> None:
    # §6.1 GRUB 2.06: x86 `linux` is the legacy loader with relocator chunks; the lab
    # (tests/e2e/lab, RIP = CR2 = 0) shows its trampoline runs in free memory: faults where
    # EfiConventionalMemory is NX (both 0x...7FD5 and 0x...7FD1), boots with no NX policy
    images = chain(corpus, "trixie", "amd64")
    forced = {1: "grub-2.06"}
    for fw in ("ovmf-strict", "ovmf-compat"):
        r = run(images, fw, models=forced)
        assert r.verdict == "faults" and r.faults[0].memory_type == "EfiConventionalMemory"
    assert run(images, "ovmf", models=forced).verdict == "boots"
    # arm64 `linux`: LoadImage/StartImage: OK (§6.1)
    aa = chain(corpus, "trixie", "arm64")
    assert run(aa, "armvirt-map", models=forced).verdict == "boots"


def test_upstream_grub_2_12_chooses_loadimage_without_shim(corpus: Corpus) -> None:
    # §6.1 GRUB 2.12: x86 `linux` uses LoadImage when shim_lock is not enabled and the
    # kernel's MajorImageVersion >= 1 (Debian's 6.12 has 3), else the legacy loader. shim_lock
    # is enabled only with Secure Boot on (grub 2.12 kern/efi/sb.c grub_shim_lock_verifier_setup)
    shim, grub, kernel = chain(corpus, "trixie", "amd64")
    assert kernel.major_image_version >= 1
    forced_alone = {0: "grub-2.12"}
    assert run([grub, kernel], "ovmf-strict", models=forced_alone).verdict == "boots"
    forced = {1: "grub-2.12"}
    assert run([shim, grub, kernel], "ovmf-strict", models=forced).verdict == "boots"
    r = run([shim, grub, kernel], "ovmf-strict", secure_boot=True, models=forced)
    assert r.verdict == "faults"  # shim_lock enabled: the legacy loader
    assert r.faults[0].memory_type == "EfiConventionalMemory"  # its relocator trampoline
    old = record.replace(kernel, major_image_version=0)
    assert run([grub, old], "ovmf-strict", models=forced_alone).verdict == "faults"


def test_shim_refuses_a_stage_its_sbat_level_revokes(corpus: Corpus) -> None:
    # shim's automatic SbatLevel (.sbatlevel; shim 16.1: grub,5) against the next stage's
    # .sbat (rhboot/shim sbat.c verify_sbat_helper), Secure Boot on only: upstream GRUB 2.12's
    # own row is grub,4 (tests/e2e/lab/build-grub.sh; the lab boots it behind shim: refused)
    shim, grub, kernel = chain(corpus, "trixie", "amd64")
    assert ("grub", 5) in shim.sbat_level
    old = record.replace(grub, sbat=(SbatEntry("grub", 4, "2.12"),))
    r = run([shim, old, kernel], "ovmf-strict", secure_boot=True)
    assert r.verdict == "refused" and r.stop is not None
    assert (r.stop.code, r.stop.stage_index) == ("sbat-revoked", 1)  # grub refused
    assert run([shim, grub, kernel], "ovmf-strict", secure_boot=True).verdict == "boots"
    # no SBAT check without Secure Boot; a component the level does not name is not revoked
    assert run([shim, old, kernel], "ovmf-strict", models={1: "grub-2.12"}).verdict == "boots"
    other = record.replace(grub, sbat=(SbatEntry("grub.fwtools", 1, "1"),
                                       *grub.sbat))
    assert run([shim, other, kernel], "ovmf-strict", secure_boot=True).verdict == "boots"


def test_grub_2_14_permissions_modules_with_the_protocol(corpus: Corpus) -> None:
    # §6.1 GRUB master/2.14: module sections permissioned via MAP; kernel via LoadImage
    images = chain(corpus, "trixie", "arm64")
    r = run(images, "armvirt-map", models={1: "grub-2.14"})
    assert r.verdict == "boots", r.reason
    ops = [e.operation for e in r.events if e.stage == "grub"]
    assert any(o.startswith("SetMemoryAttributes(RO) module-text") for o in ops)
    assert run(images, "armvirt", models={1: "grub-2.14"}).verdict == "boots"


def test_grub_rh_nx(corpus: Corpus) -> None:
    # §6.1 distro GRUB with the NX series: kernel in LoaderCode, sections per flags when the
    # kernel is NX_COMPAT; refuses a non-NX kernel when MokPolicy requires NX
    shim, grub, kernel = chain(corpus, "trixie", "arm64")
    r = run([shim, grub, kernel], "armvirt-map", models={1: "grub-rh-nx"})
    assert r.verdict == "boots", r.reason
    nx_shim = record.replace(shim, nx_compat=True)
    nx_grub = record.replace(grub, nx_compat=True)
    plain_kernel = record.replace(kernel, nx_compat=False)
    r = run([nx_shim, nx_grub, plain_kernel], "armvirt-map", models={1: "grub-rh-nx"})
    assert r.verdict == "refused" and "NX_COMPAT" in r.reason


def test_linux_arm64_zboot(corpus: Corpus) -> None:
    # §6.1 Linux arm64 zboot: decompress into LoaderCode, remap via MAP: OK
    shim, grub, kernel = chain(corpus, "trixie", "arm64")
    assert kernel.kernel is not None
    zboot = record.replace(kernel, kernel=KernelFacts("zboot", kernel.kernel.version,
                                                           kernel.kernel.release))
    for fw in ("armvirt", "armvirt-map", "debian13-aavmf-strictnx"):
        r = run([shim, grub, zboot], fw)
        assert r.stages[2].model == "linux-arm64-zboot"
        assert r.verdict == "boots", r.reason
    # efi_remap_image only from 6.2: a 6.1 zboot stub makes no attribute call
    remapped = run([shim, grub, zboot], "armvirt-map")
    assert any("efi_remap_image" in e.operation for e in remapped.events)
    old = record.replace(zboot, kernel=KernelFacts("zboot", (6, 1, 0), "6.1.0"))
    r61 = run([shim, grub, old], "armvirt-map")
    assert r61.verdict == "boots", r61.reason
    assert not any(e.stage == "kernel" and "MemoryAttributes" in e.operation
                   for e in r61.events)


def test_linux_x86_stub_for_mainline_6_6_layout(corpus: Corpus) -> None:
    # §6.1 Linux x86 6.6 (SectionAlignment 0x20): decompresses into LoaderCode: OK
    kernel = load_stage(corpus.kernel("trixie", "amd64"))
    k66 = record.replace(kernel, section_alignment=0x20,
                              kernel=record.replace(kernel.kernel, version=(6, 6, 0)))
    shim, grub, _k = chain(corpus, "trixie", "amd64")
    r = run([shim, grub, k66], "ovmf-strict")
    assert r.stages[2].model == "linux-x86-stub" and r.verdict == "boots"


def test_efi_app_alone(corpus: Corpus) -> None:
    hello = corpus.file("trixie", "amd64", "efitools",
                        "usr/lib/efitools/x86_64-linux-gnu/HelloWorld.efi")
    r = run([load_stage(hello)], "ovmf-strict")
    assert r.stages[0].model == "efi-app" and r.verdict == "boots"
    # unsigned: refused by the firmware with Secure Boot on
    assert run([load_stage(hello)], "ovmf-strict", secure_boot=True).verdict == "refused"


def test_every_shipped_model_has_a_scenario() -> None:
    """Each loader model is named in a replay scenario of tests/uefi (here, or the Debian
    chains of test_replay_scenarios.py / test_uki_chains.py)."""
    here = Path(__file__).parent
    text = "".join((here / f).read_text() for f in (
        "test_model_matrix.py", "test_replay_scenarios.py", "test_uki_chains.py"))
    missing = [m.name for m in shipped_models() if f'"{m.name}"' not in text]
    assert missing == []


def test_arm64_stub_runs_in_place_only_at_2mib(corpus: Corpus) -> None:
    """handle_kernel_image without a KASLR seed: IS_ALIGNED(_text, MIN_KIMG_ALIGN), 2 MiB;
    a 64 KiB-aligned image (what LoadImage and PE loaders give) is relocated."""
    from types import SimpleNamespace

    from fwtools.uefi.firmware import LoadedImage
    from fwtools.uefi.memtypes import MemoryType
    from fwtools.uefi.operations import CONDITIONS

    kernel = load_stage(corpus.kernel("trixie", "arm64"))
    aligned = CONDITIONS["self.kimg_aligned"].predicate
    remap = CONDITIONS["self.remap_image"].predicate
    for base, expected in ((0x4020_0000, True), (0x4021_0000, False), (0x4000_1000, False)):
        li = LoadedImage(kernel, base, 1, MemoryType.LOADER_CODE, MemoryType.LOADER_DATA,
                         False, "firmware")
        runner = SimpleNamespace(loaded=[li], index=0, image=kernel)
        assert aligned(runner) is expected, hex(base)
    for version, has in (((6, 1, 0), False), ((6, 2, 0), True), ((6, 12, 117), True)):
        assert kernel.kernel is not None
        k = record.replace(kernel, kernel=record.replace(kernel.kernel,
                                                                   version=version))
        assert remap(SimpleNamespace(image=k)) is has, version
