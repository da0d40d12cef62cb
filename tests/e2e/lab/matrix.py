"""The firmware lab's matrix: which chains boot on which self-built W^X OVMF/AAVMF variant, how
a boot is observed, and how it is compared with the replay.

Plain Python with no pytest dependency: ``tests/e2e/test_lab.py`` (CI) and
``tests/e2e/lab/run-lab.py`` (recording, by hand) both use it, and
``tests/e2e/lab/calibration.py`` turns the recorded results into docs/boot-chain.md's
calibration table.

- :data:`VARIANTS`: a build of ``build-ovmf.sh`` booted one way. ``strict-nomap`` is the
  ``strict`` build booted with ``-fw_cfg name=opt/org.tianocore/UninstallMemAttrProtocol,
  string=y``: Debian's patch ``OvmfPkg-X64-add-opt-org.tianocore-UninstallMemAttrPr.patch``
  (edk2 ``OvmfPkg/Library/PlatformBootManagerLib/BdsPlatform.c``
  PlatformBootManagerAfterConsole) reads that knob and uninstalls EFI_MEMORY_ATTRIBUTE_PROTOCOL
  before any boot option runs, as ``PcdUninstallMemAttrProtocol=TRUE`` does in Debian's
  ordinary builds. The DEBUG log says which way it went ("uninstalling EFI memory protocol"
  or "not uninstalling ..."); :func:`observe` reads it and the test checks it.
- :data:`CASES`: every chain (:data:`CHAINS`: Debian 12 and 13's signed shim -> grub ->
  kernel, and the two mixes of one suite's shim and grub with the other's kernel) on every
  variant of its architecture, Secure Boot off and on; then Debian 13's systemd-boot loading
  a UKI (:data:`SD_CHAINS`) on every x64 variant: unsigned systemd-boot with Secure Boot off,
  and shim -> Debian-signed systemd-boot -> a UKI that MokList trusts with Secure Boot on;
  then upstream GRUB 2.12 (:data:`GRUB_CHAINS`: GNU's release built without Debian's patches
  by ``build-grub.sh``) loading Debian 13's and 12's kernels on :data:`GRUB_VARIANTS`:
  unsigned with Secure Boot off, and behind shim (test-key signed, MokList) with it on;
  and upstream GRUB 2.06 (x64) loading Debian 13's kernel on :data:`GRUB206_VARIANTS`;
  then (:data:`NXSHIM_CASES`) the NX shim of ``build-shim.sh`` (shim 16.1 with NX_COMPAT, so
  its MokPolicy NX can turn on) in front of both Debian grubs and of systemd-boot + UKI, on
  ``strict``, ``strict-img`` and ``strict-img-nomap`` (and both grubs on the aa64 variants),
  Secure Boot off and on.
- :func:`boot_case` boots one case (x64: the DEBUG log to QEMU's debug console) and
  :func:`observe` turns the console into an :class:`Observation`, the record kept in
  ``results.json``; :func:`replay_view` does the same for the replay, and
  :func:`compare` lines the two up field by field (``dumps.compare_fault``; a refusal:
  :func:`compare_refusal`).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..chains import (
    STOP_MARKERS,
    Arch,
    Chain,
    ChainBoot,
    Firmware,
    Outcome,
    boot_chain,
    boot_esp,
)
from ..dumps import PAGE_MASK, ConsoleFault, Field, compare_fault, parse_fault

if TYPE_CHECKING:
    from corpus import Corpus

    from fwtools.uefi.replay import Replay

LAB_DIR: Final = Path(__file__).resolve().parent
if str(LAB_DIR.parents[1] / "machine") not in sys.path:  # tests/machine: vm_builder
    sys.path.insert(0, str(LAB_DIR.parents[1] / "machine"))
BUILD_SCRIPT: Final = LAB_DIR / "build-ovmf.sh"
GRUB_BUILD_SCRIPT: Final = LAB_DIR / "build-grub.sh"
RESULTS: Final = LAB_DIR / "results.json"
CACHE_ENV: Final = "LAB_CACHE"
DEFAULT_CACHE: Final = Path("/var/cache/fwtools-lab")
SIM_VERDICT: Final[Mapping[str, str]] = {"kernel": "boots", "fault": "faults",
                                         "refused": "refused"}
#: chain label -> the Debian suites of its (shim, grub, kernel): Debian 12 and 13's own
#: chains (shim 16.1 in both; grub 2.06 / 2.12; Linux 6.1 / 6.12) and the two mixes of one
#: suite's shim and grub with the other's kernel
CHAINS: Final[Mapping[str, tuple[str, str, str]]] = {
    "bookworm": ("bookworm", "bookworm", "bookworm"),
    "trixie": ("trixie", "trixie", "trixie"),
    "grub206-linux612": ("bookworm", "bookworm", "trixie"),
    "grub212-linux61": ("trixie", "trixie", "bookworm"),
}
#: systemd-boot chains (Debian 13's systemd 257, x64 only) -> the Secure Boot state each boots
#: with. ``sdboot-uki``: systemd-boot-efi's unsigned systemd-bootx64.efi as the removable
#: loader (Secure Boot off: the firmware would refuse it); ``shim-sdboot-uki``: shim ->
#: systemd-boot-efi-amd64-signed's systemd-bootx64.efi (Debian's key, shim's vendor
#: certificate) -> the UKI signed by testdata/sample's test key, which MokList trusts (as
#: tests/e2e/test_vm_qemu.py's ``shim-sdboot-uki-moklist``). Both load a UKI of trixie's
#: systemd-stub (linuxx64.efi.stub) and kernel from ``\EFI\Linux``.
SD_CHAINS: Final[Mapping[str, bool]] = {"sdboot-uki": False, "shim-sdboot-uki": True}


class GrubChain(NamedTuple):
    """An upstream GRUB chain of :data:`GRUB_CHAINS`."""

    version: str  # build-grub.sh's LAB_GRUB
    suite: str  # of the Debian kernel it loads
    shim: bool  # behind Debian 13's shim, Secure Boot on (else alone, Secure Boot off)
    variants: tuple[str, ...]  # the lab variants it boots on


#: the variants upstream GRUB 2.12 boots on: LoaderData NX or not, and image protection
#: for images from disk (GRUB is not NX_COMPAT but has 4 KiB sections: its .text becomes RO,
#: the rest XP); on aa64 (BOOTAA64.EFI, cross-built) ArmVirtQemu's strict defaults
GRUB_VARIANTS: Final = ("strict", "compat", "strict-img", "aa64-strict")
#: behind shim, on one: shim 16.1 refuses upstream GRUB 2.12 by SBAT whatever the NX policy
#: (its automatic SbatLevel has grub,5; GRUB 2.12's own row is grub,4)
SHIM_GRUB_VARIANTS: Final = ("strict",)
#: upstream GRUB 2.06 (x64): EfiLoaderData non-executable or executable (its legacy loader
#: puts the kernel and the relocator's code in LoaderData chunks, lib/efi/relocator.c)
GRUB206_VARIANTS: Final = ("strict", "compat")
#: upstream GRUB chains -> their :class:`GrubChain`. GRUB 2.12:
#: build-grub.sh's BOOTX64.EFI / BOOTAA64.EFI (GNU's grub-2.12 release, no distribution
#: patches) with its embedded config finding the ESP's \EFI\BOOT\grub.cfg (chains.grub_cfg:
#: ``linux /vmlinuz``, ``boot``). Alone it is the removable loader, unsigned, Secure Boot
#: off: without shim_lock and with a kernel whose MajorImageVersion >= 1 (both; on arm64
#: always), grub 2.12's ``linux`` starts the
#: kernel with firmware LoadImage/StartImage (grub-core/loader/efi/linux.c grub_cmd_linux,
#: grub_linux_boot). Behind shim (Debian 13's, Secure Boot on) it is signed with the test key
#: MokList trusts (as the shim-sdboot-uki case's UKI). shim 16.1 refuses it by SBAT before
#: it runs: its automatic SbatLevel has grub,5, GNU's 2.12 is grub,4 (the GRUB fixes of
#: February 2025 came after it). So the legacy x86 loader grub 2.12 falls back to under
#: shim_lock (linux.c:465-475) cannot be reached with shim 16.1 and an honest 2.12.
#:
#: ``upstream-grub206-linux612``: build-grub.sh's GNU grub-2.06 (LAB_GRUB=2.06, x64 only, SBAT
#: grub,1) loading Debian 13's kernel, Secure Boot off. GRUB 2.06's x86 ``linux`` is the
#: legacy loader only (grub-core/loader/i386/linux.c: the kernel into relocator chunks,
#: ExitBootServices, the relocator's trampoline jumps to the 32/64-bit boot protocol entry),
#: whatever the kernel; Debian 12's 6.1 takes the same path, so it is not booted too.
GRUB_CHAINS: Final[Mapping[str, GrubChain]] = {
    "upstream-grub212-linux612": GrubChain("2.12", "trixie", False, GRUB_VARIANTS),
    "upstream-grub212-linux61": GrubChain("2.12", "bookworm", False, GRUB_VARIANTS),
    "shim-upstream-grub212-linux612": GrubChain("2.12", "trixie", True, SHIM_GRUB_VARIANTS),
    "upstream-grub206-linux612": GrubChain("2.06", "trixie", False, GRUB206_VARIANTS),
}
UNINSTALL_KNOB: Final = "opt/org.tianocore/UninstallMemAttrProtocol"


@dataclass(frozen=True)
class Variant:
    """A lab firmware: a ``build-ovmf.sh`` build, booted with or without the memory
    attribute protocol."""

    name: str
    arch: Arch
    build: str  # the build-ovmf.sh variant (its directory under the build dir)
    profile: str  # the simulator's firmware profile (policies/firmware/)
    memory_attribute_protocol: bool  # False: uninstalled through the fw_cfg knob
    description: str

    @property
    def qemu_args(self) -> list[str]:
        if self.memory_attribute_protocol:
            return []
        return ["-fw_cfg", f"name={UNINSTALL_KNOB},string=y"]


VARIANTS: Final = (
    Variant("strict", "x64", "strict", "debian13-ovmf-lab-strict", True,
            "NX policy 0xC000000000007FD5, image protection 0x2, memory attribute protocol"),
    Variant("strict-nomap", "x64", "strict", "debian13-ovmf-lab-strict-nomap", False,
            "the strict build with the memory attribute protocol uninstalled (fw_cfg)"),
    Variant("compat", "x64", "compat", "debian13-ovmf-lab-compat", True,
            "NX policy 0xC000000000007FD1 (EfiLoaderData executable), image protection 0x2"),
    Variant("strict-img", "x64", "strict-img", "debian13-ovmf-lab-strict-img", True,
            "NX policy 0xC000000000007FD5, image protection 0x3 (images from disk too)"),
    Variant("aa64-strict", "aa64", "aa64-strict", "debian13-aavmf-lab-strict", True,
            "AAVMF DEBUG: NX policy 0xC000000000007FD5, image protection 0x3, memory "
            "attribute protocol"),
    Variant("aa64-strict-nomap", "aa64", "aa64-strict", "debian13-aavmf-lab-strict-nomap",
            False, "the aa64-strict build with the memory attribute protocol uninstalled "
            "(fw_cfg)"),
)
#: the firmware files of a build, per architecture: code, blank variable store
BUILD_FILES: Final[Mapping[Arch, tuple[str, str]]] = {
    "x64": ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"), "aa64": ("AAVMF_CODE.fd", "AAVMF_VARS.fd")}
#: Debian 13's store with Microsoft's keys enrolled and Secure Boot on, for each architecture
MS_VARS: Final[Mapping[Arch, str]] = {"x64": "OVMF_VARS_4M.ms.fd", "aa64": "AAVMF_VARS.ms.fd"}
DEB_ARCH: Final[Mapping[Arch, str]] = {"x64": "amd64", "aa64": "arm64"}
VARIANT_BY_NAME: Final = {v.name: v for v in VARIANTS}


@dataclass(frozen=True)
class LabCase:
    chain: str  # a label of CHAINS
    variant: Variant
    secure_boot: bool

    @property
    def arch(self) -> Arch:
        return self.variant.arch

    @property
    def id(self) -> str:
        return f"{self.chain}-{self.variant.name}-{'sb' if self.secure_boot else 'nosb'}"


#: The NX shim's chains (build-shim.sh: Debian 13's shim 16.1 built with NX_COMPAT set, so
#: its MokPolicy NX can turn on) -> what follows it: Debian 12's grub 2.06 + 6.1 and Debian
#: 13's grub 2.12 + 6.12 (neither grub is NX_COMPAT), or (None) Debian 13's signed
#: systemd-boot loading the lab's UKI (both NX_COMPAT), the ESP of ``shim-sdboot-uki``.
NXSHIM_CHAINS: Final[Mapping[str, tuple[str, str] | None]] = {
    "nxshim-grub206": ("bookworm", "bookworm"),
    "nxshim-grub212": ("trixie", "trixie"),
    "nxshim-sdboot-uki": None,
}
#: the x64 variants the NX shim boots on: where set_shim_nx_policy should turn the policy on
#: (strict-img: shim's own text read-only) and where it should not (its text writable under
#: image protection 0x2; the memory attribute protocol uninstalled)
#: ``strict-img-nomap``: the strict-img build with the memory attribute protocol uninstalled,
#: only for the NX shim (is the policy on through DXE services alone?)
STRICT_IMG_NOMAP: Final = Variant(
    "strict-img-nomap", "x64", "strict-img", "debian13-ovmf-lab-strict-img-nomap", False,
    "the strict-img build with the memory attribute protocol uninstalled (fw_cfg)")
NXSHIM_VARIANTS: Final = (VARIANT_BY_NAME["strict"], VARIANT_BY_NAME["strict-img"],
                           STRICT_IMG_NOMAP)
#: on AArch64 (build-shim.sh's shimaa64.efi; no systemd-boot there): both grubs on aa64-strict
#: (image protection 0x3 and the protocol: the policy turns on). Without the protocol the
#: policy stays off as on x64 (strict-img-nomap), and strict, strict-nomap and compat boot
#: as with Debian's shim (recorded once, then left out to keep CI's boots few)
NXSHIM_AA64_VARIANTS: Final = (VARIANT_BY_NAME["aa64-strict"],)
NXSHIM_CASES: Final = (
    *(LabCase(c, v, sb) for v in NXSHIM_VARIANTS for c in NXSHIM_CHAINS for sb in (False, True)),
    *(LabCase(c, v, sb) for v in NXSHIM_AA64_VARIANTS for c, nx in NXSHIM_CHAINS.items() if nx
      for sb in (False, True)),
)

CASES: Final = (
    *(LabCase(c, v, sb) for v in VARIANTS for c in CHAINS for sb in (False, True)),
    *(LabCase(c, v, sb) for v in VARIANTS if v.arch == "x64" for c, sb in SD_CHAINS.items()),
    *(LabCase(c, v, g.shim) for v in VARIANTS for c, g in GRUB_CHAINS.items()
      if v.name in g.variants),
    *NXSHIM_CASES,
)
CASE_BY_ID: Final = {c.id: c for c in CASES}


# -- the builds -------------------------------------------------------------------------------


def lab_cache() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def build_dir() -> Path:
    """Where build-ovmf.sh puts the builds for its current source version and settings
    (``build-ovmf.sh --print-dir``: the script is the one place that knows the key)."""
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-dir"], check=True,
                         capture_output=True, text=True, env={**os.environ,
                                                              CACHE_ENV: str(lab_cache())})
    return Path(out.stdout.strip())


def missing_builds(builds: Path) -> list[str]:
    """The variants' build files that are not in ``builds``, and the NX shim's."""
    want = sorted({builds / v.build / f for v in VARIANTS for f in BUILD_FILES[v.arch]})
    want += [nxshim(arch, signed) for arch in ("x64", "aa64") for signed in (False, True)]
    want.append(nxshim_dir() / "debian-uefi-ca.der")
    return [str(p) for p in want if not p.is_file()]


@cache
def grub_build_dir(version: str = "2.12") -> Path:
    """Where build-grub.sh puts upstream GRUB ``version`` for its current source and settings
    (``LAB_GRUB=<version> build-grub.sh --print-dir``)."""
    out = subprocess.run(["bash", str(GRUB_BUILD_SCRIPT), "--print-dir"], check=True,
                         capture_output=True, text=True,
                         env={**os.environ, CACHE_ENV: str(lab_cache()), "LAB_GRUB": version})
    return Path(out.stdout.strip())


def upstream_grub(arch: Arch = "x64", version: str = "2.12") -> Path:
    """build-grub.sh's upstream GRUB ``version`` for ``arch`` (it may not exist:
    :func:`missing_grub_build`)."""
    return grub_build_dir(version) / arch / f"BOOT{arch.upper()}.EFI"


def missing_grub_build() -> list[str]:
    """The upstream GRUB builds the GRUB_CHAINS cases need that are not there."""
    need = sorted({(GRUB_CHAINS[c.chain].version, c.arch) for c in CASES
                   if c.chain in GRUB_CHAINS})
    want = [p for v, a in need for p in (upstream_grub(a, v), upstream_grub(a, v).parent
                                         / "build-info.txt")]
    return [str(p) for p in want if not p.is_file()]


# -- the NX shim (build-shim.sh, NXSHIM_CHAINS) ------------------------------------------------

SHIM_BUILD_SCRIPT: Final = LAB_DIR / "build-shim.sh"
# shim's read_header (rhboot/shim 16.1 pe-relocate.c) when MokPolicy NX is on: the console
# line that ends an NX shim boot as refused (chains.STOP_MARKERS does not know it)
NX_REFUSED: Final = r"Policy requires NX, but image does not support NX"
NXSHIM_MARKERS: Final[Mapping[str, Outcome]] = {**STOP_MARKERS, NX_REFUSED: "refused"}


@cache
def _nxshim_dir(cache_dir: str) -> Path:
    out = subprocess.run(["bash", str(SHIM_BUILD_SCRIPT), "--print-dir"], check=True,
                         capture_output=True, text=True, env={**os.environ,
                                                              CACHE_ENV: cache_dir})
    return Path(out.stdout.strip())


def nxshim_dir() -> Path:
    """Where build-shim.sh puts its builds for its source version and settings
    (``build-shim.sh --print-dir``): ``<arch>/shim<arch>.efi`` and Debian's CA."""
    return _nxshim_dir(str(lab_cache()))


def nxshim(arch: Arch, signed: bool) -> Path:
    """The NX shim: signed with testdata/sample's test db key (Secure Boot on), or not."""
    return nxshim_dir() / arch / f"shim{arch}{'.signed' if signed else ''}.efi"


def nxshim_missing(case: LabCase) -> str | None:
    """Why ``case`` cannot be replayed here (its NX shim is not built), or None."""
    if case.chain not in NXSHIM_CHAINS or nxshim(case.arch, case.secure_boot).is_file():
        return None
    return (f"{case.id}: the NX shim is not built ({nxshim(case.arch, case.secure_boot)}; "
            "run: sudo tests/e2e/lab/build-shim.sh)")


def nxshim_store(base: Path, workdir: Path) -> Path:
    """``base`` (Debian 13's .ms store, x64 or aa64) with testdata/sample's test db
    certificate added to db (the NX shim is signed with its key) and MokList (NV|BS) trusting
    Debian's UEFI CA, which signs Debian's grub, systemd-boot and kernels (the NX shim's
    vendor certificate is testdata/sample's test CA, which signs the lab's UKI)."""
    # tests/machine is on sys.path when pytest runs, not for mypy's check of this module.
    from vm_builder import fw_vars, x509_esl  # type: ignore[import-not-found,unused-ignore]

    from fwtools.formats.efi import guids

    db = workdir / "db.esl"
    fw_vars("get", base, "db", "-o", db)
    db.write_bytes(db.read_bytes() + x509_esl((_SAMPLE / "test-db.der").read_bytes()))
    step = workdir / "vars-ms-db.fd"
    fw_vars("set", base, "db", "--file", db, "-o", step)
    mok = workdir / "moklist.esl"
    mok.write_bytes(x509_esl((nxshim_dir() / "debian-uefi-ca.der").read_bytes()))
    out = workdir / "vars-ms-nxshim.fd"
    fw_vars("set", step, "MokList", "--guid", str(guids.SHIM_LOCK), "--attributes", "NV,BS",
            "--file", mok, "-o", out)
    return out


def case_firmware(case: LabCase, builds: Path, corpus: Corpus) -> Firmware:
    """Secure Boot on boots with Debian 13's ``.ms`` store (the same store layout: 4M SMM
    on x64, ArmVirtQemu's on aa64), off with the build's own blank store."""
    d = builds / case.variant.build
    code, blank = BUILD_FILES[case.arch]
    get = corpus.ovmf if case.arch == "x64" else corpus.aavmf
    return Firmware(f"lab-{case.variant.name}", case.arch, d / code,
                    get("trixie", MS_VARS[case.arch]) if case.secure_boot else d / blank,
                    case.secure_boot, smm=case.arch == "x64")


def case_chain(case: LabCase, corpus: Corpus) -> Chain:  # CHAINS, NXSHIM_CHAINS with grub
    """Signed shim, grub and kernel of the suites CHAINS names (Debian's kernels of both
    suites are signed with the key both grubs' shim trusts); for NXSHIM_CHAINS the NX shim
    (signed with Secure Boot on) and the grub and kernel it names."""
    da = DEB_ARCH[case.arch]
    nx = NXSHIM_CHAINS.get(case.chain)
    if nx is not None:
        return Chain(case.chain, case.arch, nxshim(case.arch, case.secure_boot),
                     corpus.grub(nx[0], da), corpus.kernel(nx[1], da))
    shim, grub, kernel = CHAINS[case.chain]
    return Chain(case.chain, case.arch, corpus.shim(shim, da), corpus.grub(grub, da),
                 corpus.kernel(kernel, da))


# -- systemd-boot and UKIs (SD_CHAINS) ---------------------------------------------------------

_SAMPLE: Final = LAB_DIR.parents[2] / "testdata" / "sample"


@cache
def _uki_dir() -> Path:
    """One directory per process for the UKIs the sd cases boot and replay (built once),
    removed when the process ends."""
    d = tempfile.mkdtemp(prefix="fwtools-lab-uki-")
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    return Path(d)


@cache
def lab_uki(corpus: Corpus, signed: bool) -> Path:
    """trixie's systemd-stub and kernel as a UKI (tests/corpus/uki.py: .osrel, .cmdline with
    the lab's kernel command line, .linux), ``signed`` by the test key MokList trusts."""
    from corpus.uki import build_uki

    from ..chains import KERNEL_CMDLINE

    d = _uki_dir()
    uki = d / "uki.efi"
    if not uki.is_file():
        build_uki(corpus.systemd_boot("trixie", "linuxx64.efi.stub"),
                  corpus.kernel("trixie", "amd64"), uki, KERNEL_CMDLINE["x64"])
    if not signed:
        return uki
    from corpus.uki import sbsign

    out = d / "uki-signed.efi"
    sbsign(_SAMPLE / "keys" / "test-db.key", _SAMPLE / "test-db.pem", uki, out)
    return out


def case_files(case: LabCase, corpus: Corpus) -> list[Path]:
    """The chain's stages, first first, as the replay takes them."""
    if case.chain in CHAINS or NXSHIM_CHAINS.get(case.chain):
        return case_chain(case, corpus).files
    if case.chain in GRUB_CHAINS:
        g = GRUB_CHAINS[case.chain]
        kernel = corpus.kernel(g.suite, DEB_ARCH[case.arch])
        if g.shim:
            return [corpus.shim("trixie", DEB_ARCH[case.arch]),
                    signed_upstream_grub(case.arch, g.version), kernel]
        return [upstream_grub(case.arch, g.version), kernel]
    if case.chain == "sdboot-uki":
        return [corpus.systemd_boot("trixie"), lab_uki(corpus, False)]
    first = nxshim(case.arch, case.secure_boot) if case.chain in NXSHIM_CHAINS else \
        corpus.shim("trixie", "amd64")
    return [first, corpus.systemd_boot("trixie", signed=True), lab_uki(corpus, True)]


def sd_esp(case: LabCase, corpus: Corpus) -> dict[str, bytes | str | Path]:
    """The ESP of an SD_CHAINS case: the first stage as the removable loader (shim's second
    stage, systemd-boot, under shim's default name grubx64.efi), the UKI as
    ``\\EFI\\Linux\\linux.efi`` (systemd-boot's type 2 entry) and ``loader.conf`` with
    ``timeout 0`` (tests/machine/vm_builder.py build_shim_sdboot_disk's layout)."""
    files = case_files(case, corpus)
    esp: dict[str, bytes | str | Path] = {"EFI/BOOT/BOOTX64.EFI": files[0],
                                          "EFI/Linux/linux.efi": files[-1],
                                          "loader/loader.conf": "timeout 0\n"}
    if len(files) == 3:
        esp["EFI/BOOT/grubx64.efi"] = files[1]
    return esp


def signed_upstream_grub(arch: Arch, version: str = "2.12") -> Path:
    """build-grub.sh's GRUB signed with testdata/sample's test key (the key
    :func:`moklist_store` puts in MokList), once per process."""
    out = _uki_dir() / f"upstream-grub-{version}-{arch}-signed.efi"
    if not out.is_file():
        from corpus.uki import sbsign

        sbsign(_SAMPLE / "keys" / "test-db.key", _SAMPLE / "test-db.pem",
               upstream_grub(arch, version), out)
    return out


def grub_esp(case: LabCase, corpus: Corpus) -> dict[str, bytes | str | Path]:
    """The ESP of a GRUB_CHAINS case: upstream GRUB as the removable loader (behind shim: as
    shim's grub<arch>.efi), the lab's grub.cfg beside it (where its embedded config looks)
    and the kernel as ``/vmlinuz``."""
    from ..chains import grub_cfg

    *first, kernel = case_files(case, corpus)
    sfx = case.arch.upper()
    esp: dict[str, bytes | str | Path] = {f"EFI/BOOT/BOOT{sfx}.EFI": first[0],
                                          "EFI/BOOT/grub.cfg": grub_cfg(case.arch),
                                          "vmlinuz": kernel}
    if len(first) == 2:
        esp[f"EFI/BOOT/grub{case.arch}.efi"] = first[1]
    return esp


def moklist_store(base: Path, workdir: Path) -> Path:
    """``base`` (Debian 13's .ms store) with MokList (NV|BS, as MokManager leaves it) holding
    the test key the signed UKI is signed with."""
    # tests/machine is on sys.path when pytest runs, not for mypy's check of this module.
    from vm_builder import fw_vars, moklist_esl  # type: ignore[import-not-found,unused-ignore]

    from fwtools.formats.efi import guids

    out = workdir / "vars-ms-moklist.fd"
    fw_vars("set", base, "MokList", "--guid", str(guids.SHIM_LOCK), "--attributes", "NV,BS",
            "--file", moklist_esl(_SAMPLE / "test-db.pem", workdir / "moklist.esl"), "-o", out)
    return out


@dataclass(frozen=True)
class LabConsole:
    """Where a lab boot's consoles go, and the QEMU arguments that send them there."""

    serial_log: Path
    debug_log: Path
    qemu_args: list[str]  # the debug console (x64) and the variant's fw_cfg


def lab_console(variant: Variant, workdir: Path) -> LabConsole:
    """The serial console goes to ``workdir/serial.log``. The DEBUG log goes to
    ``workdir/debug.log`` on x64 (QEMU's debug console at I/O port 0x402); ArmVirtQemu has
    only the serial port, so on aa64 the DEBUG log is the serial log."""
    workdir.mkdir(parents=True, exist_ok=True)
    serial_log = workdir / "serial.log"
    debug_log = workdir / "debug.log" if variant.arch == "x64" else serial_log
    debugcon = ["-debugcon", f"file:{debug_log}", "-global", "isa-debugcon.iobase=0x402"] \
        if variant.arch == "x64" else []
    return LabConsole(serial_log, debug_log, [*debugcon, *variant.qemu_args])


def boot_case(case: LabCase, corpus: Corpus, builds: Path, workdir: Path,
              timeout: float | None = None) -> tuple[ChainBoot, Path]:
    """Boot ``case`` (consoles: :func:`lab_console`); returns the boot and the DEBUG log."""
    con = lab_console(case.variant, workdir)
    fw = case_firmware(case, builds, corpus)
    nx = case.chain in NXSHIM_CHAINS
    markers = NXSHIM_MARKERS if nx else STOP_MARKERS
    if nx and case.secure_boot:
        fw = replace(fw, vars=nxshim_store(fw.vars, workdir))
    # The console line of a refusal is kept (Observation.refusal): QEMU lingers after its
    # marker, as after a fault's, so the line is complete whatever the timing.
    opts: dict[str, Any] = {"workdir": workdir, "serial_log": con.serial_log, "timeout": timeout,
                            "extra_args": con.qemu_args, "markers": markers,
                            "linger_on": ("fault", "refused")}
    if case.chain in CHAINS or NXSHIM_CHAINS.get(case.chain):
        return boot_chain(case_chain(case, corpus), fw, **opts), con.debug_log
    if case.secure_boot and not nx:  # shim-sdboot-uki, shim-upstream-grub212-*
        fw = replace(fw, vars=moklist_store(fw.vars, workdir))
    if case.chain in GRUB_CHAINS:
        return boot_esp(grub_esp(case, corpus), fw, **opts), con.debug_log
    return boot_esp(sd_esp(case, corpus), fw, **opts), con.debug_log


# -- what the real boot showed ----------------------------------------------------------------

# OvmfPkg PlatformBootManagerLib BdsPlatform.c and PlatformBootManagerLibLight PlatformBm.c,
# PlatformBootManagerAfterConsole: "%a: %auninstalling EFI memory protocol\n"
_MAP_LINE: Final = re.compile(r"PlatformBootManagerAfterConsole: (not )?uninstalling EFI memory")
# the lines of edk2's X64 dump that dumps.parse_fault reads (DumpCpuContext prints
# "RIP  - <hex>," but "CR2 - <hex>,"), each cut to what it reads
_DUMP_LINE: Final[Mapping[Arch, re.Pattern[str]]] = {
    "x64": re.compile(r"!!!! X64 Exception Type.*|ExceptionData - .*|RIP  ?- [0-9A-Fa-f]+|"
                      r"CR2  ?- [0-9A-Fa-f]+|!!!! Find image .*|!!!! Can't find image.*"),
    # ArmPkg DefaultExceptionHandler.c: the head line, the "PC 0x... [ 0] image" backtrace
    # line, "ELR 0x...", and "ESR 0x... FAR 0x..."
    "aa64": re.compile(r"(?:Synchronous|SError) Exception at 0x[0-9A-Fa-f]+|"
                       r"PC 0x[0-9A-Fa-f]+.*|ELR 0x[0-9A-Fa-f]+|ESR 0x[0-9A-Fa-f]+|"
                       r"FAR 0x[0-9A-Fa-f]+"),
}


@dataclass(frozen=True)
class Observation:
    """One real boot as results.json records it (nothing that varies between runs of the
    same firmware and chain: no times, no paths)."""

    arch: Arch
    outcome: str  # chains.Outcome
    stage: str  # chains.Stage: the furthest console marker
    secure_boot_seen: bool  # the EFI stub said "UEFI Secure Boot is enabled"
    memory_attribute_protocol: bool | None  # from the DEBUG log; None: no line
    dump: tuple[str, ...] = ()  # the exception dump's key lines (x64 only here)
    refusal: str = ""  # a refused boot: the console line that refused, from its marker on

    def fault(self) -> ConsoleFault | None:
        return parse_fault("\n".join(self.dump), self.arch) if self.dump else None

    def fault_fields(self) -> dict[str, Any] | None:
        """What the dump tells, the way the doc and the comparison need it."""
        f = self.fault()
        if f is None:
            return None
        return {"exception": f.exception, "code": f.code, "access": f.access,
                "page_offset": None if f.address is None else f.address & PAGE_MASK,
                "pc": f.pc, "data_address": f.data_address, "image_stage": f.stage}

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["dump"] = list(self.dump)
        if not self.refusal:  # the records of boots that were not refused keep their shape
            del d["refusal"]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Observation:
        arch: Arch = "aa64" if d.get("arch") == "aa64" else "x64"
        return cls(arch, str(d["outcome"]), str(d["stage"]), bool(d["secure_boot_seen"]),
                   d["memory_attribute_protocol"], tuple(d.get("dump", ())),
                   str(d.get("refusal", "")))


def observe(boot: ChainBoot, debug_log: Path, arch: Arch = "x64") -> Observation:
    log = debug_log.read_text(errors="replace") if debug_log.is_file() else ""
    m = _MAP_LINE.search(log)
    mapp = None if m is None else m.group(1) is not None  # "not uninstalling": installed
    dump: tuple[str, ...] = ()
    if boot.outcome == "fault":
        lines = [x.group(0).strip() for x in _DUMP_LINE[arch].finditer(boot.result.output)]
        # AArch64: the backtrace's first "PC" line is ELR's (its image, if any); the rest are
        # the callers
        pcs = [ln for ln in lines if ln.startswith("PC ")]
        dump = tuple(dict.fromkeys(ln for ln in lines if ln not in pcs[1:]))
    refusal = ""
    if boot.outcome == "refused" and boot.result.marker is not None:
        # From the marker to the end of the message: shim draws its message in a box on one
        # console line ("ERROR", padding, the message, padding, "OK"), so a run of spaces ends
        # it as a line end does.
        m = re.search(f"(?:{boot.result.marker})[^\r\n]*", boot.result.output)
        refusal = "" if m is None else re.split(r"\s{2,}", m.group(0).strip())[0]
    return Observation(arch, boot.outcome, boot.stage,
                       boot.result.saw(r"EFI stub: UEFI Secure Boot is enabled"), mapp, dump,
                       refusal)


# -- the replay -------------------------------------------------------------------------------


def replay_case(case: LabCase, corpus: Corpus) -> Replay:
    from fwtools.uefi.replay import replay_files

    return replay_files(case_files(case, corpus), firmware=case.variant.profile,
                        arch=case.arch, secure_boot=case.secure_boot)


def replay_view(r: Replay) -> dict[str, Any]:
    """The replay's verdict and first fault, the fields compared with the real boot."""
    from fwtools.report.boot_json import faults_json

    view = fault_view(str(r.verdict), faults_json(r))
    if r.verdict == "refused" and r.stop is not None:
        view.update(stage=r.stop.stage, stage_index=r.stop.stage_index, code=r.stop.code,
                    reason=r.stop.reason)
    return view


def fault_view(verdict: str, faults: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """:func:`replay_view` of a verdict and a ``faults[]`` list as the JSON documents carry
    them (boot-chain's replay, ``fw-check vm --json``)."""
    view: dict[str, Any] = {"verdict": verdict}
    if faults:
        f = faults[0]
        view.update(stage=str(f["stage"]).split()[0], stage_index=f.get("stage_index"),
                    access=f["access"], code=int(f["code"]),
                    page_offset=int(f["address"]) & PAGE_MASK, address=int(f["address"]),
                    memory_type=f.get("memory_type"))
    return view


def compare(obs: Observation, view: Mapping[str, Any]) -> list[Field]:
    """The real boot against the replay: the verdict, then for a fault every field the dump
    tells (dumps.compare_fault: stage, access, #PF error code, page offset). A fault with no
    dump, or a replay fault the console does not show, is a mismatch."""
    want = SIM_VERDICT.get(obs.outcome, f"? ({obs.outcome})")
    fields = [Field("verdict", want, view["verdict"], True)]
    if obs.outcome == "refused" and view["verdict"] == "refused":
        return [*fields, *compare_refusal(obs.refusal, view)]
    if obs.outcome != "fault" or view["verdict"] != "faults":
        return fields
    real = obs.fault()
    if real is None:
        return [*fields, Field("dump", "none on the console", "a fault", True)]
    replay_fault = {"stage": view["stage"], "access": view["access"], "code": view["code"],
                    "address": view["address"]}
    return [*fields, *compare_fault(real, obs.stage, replay_fault)]


#: refusal lines a console can show -> (the stage that prints it, the replay's stop code)
REFUSALS: Final[Mapping[str, tuple[str, str]]] = {
    NX_REFUSED: ("shim", "nx-compat-required"),  # pe-relocate.c read_header
}


def compare_refusal(line: str, view: Mapping[str, Any]) -> list[Field]:
    """A refused boot against a refusing replay (:func:`replay_view`): the stage that refused
    and the stop code, for a line :data:`REFUSALS` knows (other refusal lines: not compared,
    said so), and the message: the replay's reason must contain the console's line. A view
    without the replay's stop (:func:`fault_view` of a ``faults[]`` list) has nothing to
    compare them with."""
    if "reason" not in view:
        return [Field("refusal", line or "no line", "no stop in the view", False)]
    known = next((v for k, v in REFUSALS.items() if re.search(k, line)), None)
    why = f"not told ({line or 'no line'})"
    reason = str(view["reason"])
    return [
        Field("stage", known[0] if known else why, view.get("stage"), known is not None),
        Field("code", known[1] if known else why, view.get("code"), known is not None),
        Field("message", line or "no line", line if line and line in reason else reason, True),
    ]
