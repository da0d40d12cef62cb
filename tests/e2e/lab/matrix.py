"""The firmware lab's matrix: which chains boot on which self-built W^X OVMF variant, how a
boot is observed, and how it is compared with the replay.

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
- :data:`CASES`: every chain (Debian 12 and 13's signed shim -> grub -> kernel) on every
  variant, Secure Boot off and on.
- :func:`boot_case` boots one case (the DEBUG log to QEMU's debug console) and
  :func:`observe` turns the console into an :class:`Observation`, the record kept in
  ``results.json``; :func:`replay_view` does the same for the replay, and
  :func:`compare` lines the two up field by field (``dumps.compare_fault``).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..chains import Chain, ChainBoot, Firmware, boot_chain
from ..dumps import PAGE_MASK, ConsoleFault, Field, compare_fault, parse_fault

if TYPE_CHECKING:
    from corpus import Corpus

    from fwtools.uefi.replay import Replay

LAB_DIR: Final = Path(__file__).resolve().parent
BUILD_SCRIPT: Final = LAB_DIR / "build-ovmf.sh"
RESULTS: Final = LAB_DIR / "results.json"
CACHE_ENV: Final = "LAB_CACHE"
DEFAULT_CACHE: Final = Path("/var/cache/fwtools-lab")
EDK2_RELEASE: Final = 202502
SIM_VERDICT: Final[Mapping[str, str]] = {"kernel": "boots", "fault": "faults",
                                         "refused": "refused"}
CHAINS: Final = ("bookworm", "trixie")
UNINSTALL_KNOB: Final = "opt/org.tianocore/UninstallMemAttrProtocol"


@dataclass(frozen=True)
class Variant:
    """A lab firmware: a ``build-ovmf.sh`` build, booted with or without the memory
    attribute protocol."""

    name: str
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
    Variant("strict", "strict", "debian13-ovmf-lab-strict", True,
            "NX policy 0xC000000000007FD5, image protection 0x2, memory attribute protocol"),
    Variant("strict-nomap", "strict", "debian13-ovmf-lab-strict-nomap", False,
            "the strict build with the memory attribute protocol uninstalled (fw_cfg)"),
    Variant("compat", "compat", "debian13-ovmf-lab-compat", True,
            "NX policy 0xC000000000007FD1 (EfiLoaderData executable), image protection 0x2"),
    Variant("strict-img", "strict-img", "debian13-ovmf-lab-strict-img", True,
            "NX policy 0xC000000000007FD5, image protection 0x3 (images from disk too)"),
)
VARIANT_BY_NAME: Final = {v.name: v for v in VARIANTS}


@dataclass(frozen=True)
class LabCase:
    chain: str  # Debian suite of the chain: bookworm (grub 2.06, 6.1), trixie (2.12, 6.12)
    variant: Variant
    secure_boot: bool

    @property
    def id(self) -> str:
        return f"{self.chain}-{self.variant.name}-{'sb' if self.secure_boot else 'nosb'}"


CASES: Final = tuple(LabCase(c, v, sb) for v in VARIANTS for c in CHAINS for sb in (False, True))
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
    """The variants' build files that are not in ``builds``."""
    want = sorted({builds / v.build / f for v in VARIANTS
                   for f in ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd")})
    return [str(p) for p in want if not p.is_file()]


def case_firmware(case: LabCase, builds: Path, ms_vars: Path) -> Firmware:
    """Secure Boot on boots with Debian 13's OVMF_VARS_4M.ms.fd (the same 4M SMM store
    layout), off with the build's own blank store."""
    d = builds / case.variant.build
    return Firmware(f"lab-{case.variant.name}", "x64", d / "OVMF_CODE_4M.fd",
                    ms_vars if case.secure_boot else d / "OVMF_VARS_4M.fd",
                    case.secure_boot, smm=True)


def case_chain(case: LabCase, corpus: Corpus) -> Chain:
    return Chain(case.chain, "x64", *corpus.boot_chain(case.chain, "amd64"))


def boot_case(case: LabCase, corpus: Corpus, builds: Path, workdir: Path,
              timeout: float | None = None) -> tuple[ChainBoot, Path]:
    """Boot ``case``; the DEBUG log goes to ``workdir/debug.log`` (QEMU's debug console at
    I/O port 0x402), the serial console to ``workdir/serial.log``."""
    workdir.mkdir(parents=True, exist_ok=True)
    debug_log = workdir / "debug.log"
    fw = case_firmware(case, builds, corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd"))
    boot = boot_chain(case_chain(case, corpus), fw, workdir=workdir,
                      serial_log=workdir / "serial.log", timeout=timeout,
                      extra_args=["-debugcon", f"file:{debug_log}",
                                  "-global", "isa-debugcon.iobase=0x402",
                                  *case.variant.qemu_args])
    return boot, debug_log


# -- what the real boot showed ----------------------------------------------------------------

_MAP_LINE: Final = re.compile(r"PlatformBootManagerAfterConsole: (not )?uninstalling EFI memory")
# the lines of edk2's X64 dump that dumps.parse_fault reads (DumpCpuContext prints
# "RIP  - <hex>," but "CR2 - <hex>,"), each cut to what it reads
_DUMP_LINE: Final = re.compile(r"!!!! X64 Exception Type.*|ExceptionData - .*|RIP  ?- [0-9A-Fa-f]+|"
                               r"CR2  ?- [0-9A-Fa-f]+|!!!! Find image .*|!!!! Can't find image.*")


@dataclass(frozen=True)
class Observation:
    """One real boot as results.json records it (nothing that varies between runs of the
    same firmware and chain: no times, no paths)."""

    outcome: str  # chains.Outcome
    stage: str  # chains.Stage: the furthest console marker
    secure_boot_seen: bool  # the EFI stub said "UEFI Secure Boot is enabled"
    memory_attribute_protocol: bool | None  # from the DEBUG log; None: no line
    dump: tuple[str, ...] = ()  # the exception dump's key lines (x64 only here)

    def fault(self) -> ConsoleFault | None:
        return parse_fault("\n".join(self.dump), "x64") if self.dump else None

    def fault_fields(self) -> dict[str, Any] | None:
        """What the dump tells, the way the doc and the comparison need it."""
        f = self.fault()
        if f is None:
            return None
        return {"exception": f.exception, "code": f.code, "access": f.access,
                "page_offset": None if f.address is None else f.address & PAGE_MASK,
                "rip": f.pc, "cr2": f.data_address, "image_stage": f.stage}

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["dump"] = list(self.dump)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Observation:
        return cls(str(d["outcome"]), str(d["stage"]), bool(d["secure_boot_seen"]),
                   d["memory_attribute_protocol"], tuple(d.get("dump", ())))


def observe(boot: ChainBoot, debug_log: Path) -> Observation:
    log = debug_log.read_text(errors="replace") if debug_log.is_file() else ""
    m = _MAP_LINE.search(log)
    mapp = None if m is None else m.group(1) is not None  # "not uninstalling": installed
    dump: tuple[str, ...] = ()
    if boot.outcome == "fault":
        dump = tuple(dict.fromkeys(x.group(0).strip()
                                   for x in _DUMP_LINE.finditer(boot.result.output)))
    return Observation(boot.outcome, boot.stage,
                       boot.result.saw(r"EFI stub: UEFI Secure Boot is enabled"), mapp, dump)


# -- the replay -------------------------------------------------------------------------------


def replay_case(case: LabCase, corpus: Corpus) -> Replay:
    from fwtools.uefi.replay import replay_files

    return replay_files(case_chain(case, corpus).files, firmware=case.variant.profile,
                        arch="x64", secure_boot=case.secure_boot)


def replay_view(r: Replay) -> dict[str, Any]:
    """The replay's verdict and first fault, the fields compared with the real boot."""
    from fwtools.report.boot_json import faults_json

    view: dict[str, Any] = {"verdict": str(r.verdict)}
    faults = faults_json(r)
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
    if obs.outcome != "fault" or view["verdict"] != "faults":
        return fields
    real = obs.fault()
    if real is None:
        return [*fields, Field("dump", "none on the console", "a fault", True)]
    replay_fault = {"stage": view["stage"], "access": view["access"], "code": view["code"],
                    "address": view["address"]}
    return [*fields, *compare_fault(real, obs.stage, replay_fault)]
