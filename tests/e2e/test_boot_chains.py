"""Debian's shim -> grub -> kernel chains on Debian's real firmware (QEMU, TCG), x86-64 and
AArch64, Secure Boot off and on, and fwtools' W^X boot-chain simulator's verdict for each.

Every case records the outcome observed on the real firmware (see the README section "Boot
chains"): the test boots the chain, asserts that outcome and how far the chain got, then
asserts that ``fwtools.uefi.replay.replay_files`` predicts the same thing for the firmware
profile the case names. A fault is then compared field by field with the replay's first fault
(stage, access, fault code, page offset: tests/e2e/README.md "What a fault is compared on").
``test_simulator_verdict`` and ``test_simulator_fault`` repeat only the simulator half,
without QEMU, for quick iteration on the simulator.

The one fault here is real: Debian 12's chain (grub 2.06, 6.1) on Debian 13's AAVMF (edk2
2025.02, whose ArmVirtQemu default PcdDxeNxMemoryProtectionPolicy is 0xC000000000007FD5,
EfiLoaderData non-executable) with Secure Boot on: grub's `linux` succeeds, then `boot`
ends in "Synchronous Exception at 0x..." and the firmware hangs. The same chain boots with
Secure Boot off, and on Debian 12's AAVMF. Debian's x86 OVMF builds, strictnx included,
leave the NX policy at MdeModulePkg's default 0, so the same grub boots there.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest
from corpus import Corpus
from corpus.params import unavailable

from .chains import QEMU_AARCH64, Arch, Chain, ChainBoot, Firmware, Outcome, Stage, boot_chain
from .conftest import BootRecorder
from .dumps import compare_fault, mismatch_report, parse_fault
from .recorded_dumps import AA64_RELEASE

if TYPE_CHECKING:
    from fwtools.uefi.replay import Replay

DEB_ARCH: Final[dict[Arch, str]] = {"x64": "amd64", "aa64": "arm64"}
SIM_VERDICT: Final[dict[Outcome, str]] = {"kernel": "boots", "fault": "faults",
                                          "refused": "refused"}


@dataclass(frozen=True)
class Case:
    """One boot: a chain (Debian suite), a firmware build + store, and what happens."""

    id: str
    arch: Arch
    chain_suite: str  # bookworm: shim 16.1, grub 2.06, 6.1; trixie: shim 16.1, grub 2.12, 6.12
    fw_suite: str
    code: str  # file name in usr/share/OVMF or usr/share/AAVMF
    vars: str  # *.ms.fd: Microsoft keys, Secure Boot on; plain: empty store, Secure Boot off
    secure_boot: bool
    profile: str  # the simulator's firmware profile
    outcome: Outcome  # observed on the real firmware
    stage: Stage  # how far the chain got, observed
    grub_signed: bool = True  # False: grub-efi-amd64-bin's unsigned monolithic image


# Measured 2026-11 with QEMU 7.2 (TCG, 2 cores, -n 2): each x86 boot ~4-8 s, each AArch64
# boot ~7-13 s from QEMU start to "Linux version" (or the exception).
CASES: Final = [
    # -- x86-64 (OVMF, q35; Secure Boot builds on the SMM machine) -------------------------
    Case("x64-trixie-on-debian13-strictnx-sb", "x64", "trixie", "trixie",
         "OVMF_CODE_4M.secboot.strictnx.fd", "OVMF_VARS_4M.ms.fd", True,
         "debian13-ovmf-strictnx", "kernel", "kernel"),
    Case("x64-trixie-on-debian13-strictnx-nosb", "x64", "trixie", "trixie",
         "OVMF_CODE_4M.secboot.strictnx.fd", "OVMF_VARS_4M.fd", False,
         "debian13-ovmf-strictnx", "kernel", "kernel"),
    Case("x64-trixie-on-debian13-secboot-sb", "x64", "trixie", "trixie",
         "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", True,
         "debian13-ovmf", "kernel", "kernel"),
    Case("x64-bookworm-on-debian12-secboot-sb", "x64", "bookworm", "bookworm",
         "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", True,
         "debian12-ovmf", "kernel", "kernel"),
    # grub 2.06 on x86 strictnx: boots, because Debian's x86 builds keep the NX policy at 0
    # (the contrast to the AArch64 fault below).
    Case("x64-bookworm-on-debian13-strictnx-sb", "x64", "bookworm", "trixie",
         "OVMF_CODE_4M.secboot.strictnx.fd", "OVMF_VARS_4M.ms.fd", True,
         "debian13-ovmf-strictnx", "kernel", "kernel"),
    Case("x64-bookworm-on-debian13-strictnx-nosb", "x64", "bookworm", "trixie",
         "OVMF_CODE_4M.secboot.strictnx.fd", "OVMF_VARS_4M.fd", False,
         "debian13-ovmf-strictnx", "kernel", "kernel"),
    # -- AArch64 (AAVMF, virt, cortex-a57) -------------------------------------------------
    Case("aa64-trixie-on-debian13-strictnx-sb", "aa64", "trixie", "trixie",
         "AAVMF_CODE.secboot.strictnx.fd", "AAVMF_VARS.ms.fd", True,
         "debian13-aavmf-strictnx", "kernel", "kernel"),
    Case("aa64-trixie-on-debian13-strictnx-nosb", "aa64", "trixie", "trixie",
         "AAVMF_CODE.secboot.strictnx.fd", "AAVMF_VARS.fd", False,
         "debian13-aavmf-strictnx", "kernel", "kernel"),
    Case("aa64-trixie-on-debian13-nosecboot-nosb", "aa64", "trixie", "trixie",
         "AAVMF_CODE.no-secboot.fd", "AAVMF_VARS.fd", False,
         "debian13-aavmf", "kernel", "kernel"),
    Case("aa64-bookworm-on-debian12-nosb", "aa64", "bookworm", "bookworm",
         "AAVMF_CODE.fd", "AAVMF_VARS.fd", False,
         "debian12-aavmf", "kernel", "kernel"),
    Case("aa64-bookworm-on-debian12-sb", "aa64", "bookworm", "bookworm",
         "AAVMF_CODE.fd", "AAVMF_VARS.ms.fd", True,
         "debian12-aavmf", "kernel", "kernel"),
    # grub 2.06 + Secure Boot on Debian 13's AAVMF: "Synchronous Exception" after grub's
    # `linux` succeeded (stage kernel-loaded), on the strictnx and the ordinary build alike.
    Case("aa64-bookworm-on-debian13-strictnx-sb", "aa64", "bookworm", "trixie",
         "AAVMF_CODE.secboot.strictnx.fd", "AAVMF_VARS.ms.fd", True,
         "debian13-aavmf-strictnx", "fault", "kernel-loaded"),
    Case("aa64-bookworm-on-debian13-secboot-sb", "aa64", "bookworm", "trixie",
         "AAVMF_CODE.secboot.fd", "AAVMF_VARS.ms.fd", True,
         "debian13-aavmf", "fault", "kernel-loaded"),
    Case("aa64-bookworm-on-debian13-strictnx-nosb", "aa64", "bookworm", "trixie",
         "AAVMF_CODE.secboot.strictnx.fd", "AAVMF_VARS.fd", False,
         "debian13-aavmf-strictnx", "kernel", "kernel"),
    # -- refusals: shim verifies the second stage in secure mode only (pe.c:638) -----------
    Case("x64-bookworm-unsigned-grub-sb", "x64", "bookworm", "bookworm",
         "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", True,
         "debian12-ovmf", "refused", "firmware", grub_signed=False),
    Case("x64-bookworm-unsigned-grub-nosb", "x64", "bookworm", "bookworm",
         "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.fd", False,
         "debian12-ovmf", "kernel", "kernel", grub_signed=False),
]


def case_chain(corpus: Corpus, case: Case) -> Chain:
    shim, grub, kernel = corpus.boot_chain(case.chain_suite, DEB_ARCH[case.arch])
    if not case.grub_signed:
        grub = corpus.grub(case.chain_suite, DEB_ARCH[case.arch], signed=False)
    return Chain(case.chain_suite, case.arch, shim, grub, kernel)


def case_firmware(corpus: Corpus, case: Case) -> Firmware:
    get = corpus.ovmf if case.arch == "x64" else corpus.aavmf
    return Firmware(f"{case.fw_suite}/{case.code}", case.arch, get(case.fw_suite, case.code),
                    get(case.fw_suite, case.vars), case.secure_boot)


def replay_case(chain: Chain, case: Case) -> Replay:
    from fwtools.uefi.replay import replay_files

    return replay_files(chain.files, firmware=case.profile, arch=case.arch,
                        secure_boot=case.secure_boot)


def simulate(chain: Chain, case: Case) -> str:
    """The simulator's verdict: "boots", "faults" or "refused"."""
    return str(replay_case(chain, case).verdict)


@pytest.fixture(scope="session")
def aarch64_tools(qemu_tools: None) -> None:
    if shutil.which(QEMU_AARCH64) is None:
        unavailable(f"e2e: {QEMU_AARCH64} not installed (apt-get install qemu-system-arm)")


def _evidence(boot: ChainBoot) -> str:
    return boot.describe()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_boot_chain(
    case: Case, corpus: Corpus, qemu_tools: None, aarch64_tools: None, tmp_path: Path,
    serial_log: Path, record_boot: BootRecorder,
) -> None:
    chain = case_chain(corpus, case)
    fw = case_firmware(corpus, case)
    boot = boot_chain(chain, fw, workdir=tmp_path, serial_log=serial_log)
    record_boot(boot.result, f"{case.id}: {boot.outcome}/{boot.stage}")

    assert (boot.outcome, boot.stage) == (case.outcome, case.stage), _evidence(boot)
    if boot.outcome == "kernel":
        # The store decides Secure Boot: the EFI stub says so when it is on (x86 and arm64).
        sb_seen = boot.result.saw(r"EFI stub: UEFI Secure Boot is enabled")
        assert sb_seen == case.secure_boot, _evidence(boot)
    if boot.outcome == "fault":
        assert re.search(r"Exception", "\n".join(boot.evidence)), _evidence(boot)

    replayed = replay_case(chain, case)
    verdict = str(replayed.verdict)
    assert verdict == SIM_VERDICT[boot.outcome], (
        f"simulator ({case.profile}, secure_boot={case.secure_boot}) says {verdict!r}; "
        f"the real firmware: {boot.outcome}\n{_evidence(boot)}"
    )
    if boot.outcome == "fault":
        # everything the dump tells against the replay's first fault as `fw-check
        # boot-chain --json` lists it (README: "What a fault is compared on")
        assert_fault_agrees(case.id, boot.result.output, case.arch, boot.stage, replayed,
                            _evidence(boot))


def assert_fault_agrees(what: str, console: str, arch: Arch, stage: Stage, replayed: Replay,
                        evidence: str = "") -> None:
    from fwtools.report.boot_json import faults_json

    real = parse_fault(console, arch)
    assert real is not None, f"{what}: no exception dump on the console\n{evidence}"
    faults = faults_json(replayed)
    assert faults, f"{what}: the replay says {replayed.verdict} but lists no fault"
    fields = compare_fault(real, stage, faults[0])
    report = (f"{what}: {mismatch_report(fields)}\nreplay: {faults[0]['fault']} at "
              f"{faults[0]['address_hex']} ({faults[0]['operation']})\n{evidence}")
    assert all(f.ok for f in fields), report
    assert any(f.compared for f in fields), f"nothing on the console to compare\n{report}"


# The console of every faulting case's real boot, for test_simulator_fault (no QEMU).
RECORDED_FAULTS: Final[dict[str, str]] = {
    "aa64-bookworm-on-debian13-strictnx-sb": AA64_RELEASE,
    "aa64-bookworm-on-debian13-secboot-sb": AA64_RELEASE,
}
FAULT_CASES: Final = [c for c in CASES if c.outcome == "fault"]


@pytest.mark.parametrize("case", FAULT_CASES, ids=[c.id for c in FAULT_CASES])
def test_simulator_fault(case: Case, corpus: Corpus) -> None:
    """The replay's fault against the recorded console of the real boot, field by field."""
    assert case.id in RECORDED_FAULTS, f"{case.id} faults: record its console in RECORDED_FAULTS"
    replayed = replay_case(case_chain(corpus, case), case)
    assert replayed.verdict == "faults", replayed.reason
    assert_fault_agrees(case.id, RECORDED_FAULTS[case.id], case.arch, case.stage, replayed)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_simulator_verdict(case: Case, corpus: Corpus) -> None:
    """The simulator against the recorded real outcome, without booting anything."""
    verdict = simulate(case_chain(corpus, case), case)
    assert verdict == SIM_VERDICT[case.outcome], (
        f"simulator ({case.profile}, secure_boot={case.secure_boot}) says {verdict!r}; "
        f"real firmware: {case.outcome} (stage {case.stage})"
    )


# The firmware lab's boots (W^X-enforcing DEBUG OVMF built from Debian's edk2 source) are
# in test_lab.py, recorded in tests/e2e/lab/results.json.


# -- UKIs booted directly: systemd-stub's two ways into the kernel ---------------------------
#
# Debian's stubs (252, 257) start a kernel of 5.8+ (PE MajorImageVersion >= 1) with LoadImage
# and an older one through the EFI handover protocol (systemd linux.c/linux_x86.c). The
# "pre-5.8" kernel is Debian 12's 6.1 with MajorImageVersion set to 0 (relabel_pre_58), the
# field the stub decides by. Firmware: Debian 13's strictnx OVMF, Secure Boot off (the UKIs
# are unsigned). Each boot must reach "Linux version" on the path the console shows (the
# initrd line below), and the simulator must say "boots" and take the path the stub's source
# gives: 252 jumps into the UKI's .linux section (not
# protectable: the stub's SectionAlignment is 0x200), 257 first copies such a kernel into
# EfiLoaderCode below 4 GiB (its SizeOfImage exceeds the file).

UKI_CASES: Final = [
    # (id, stub suite, kernel suite, pre-5.8 label, the simulator's event for the path)
    ("uki-trixie", "trixie", "trixie", False, "AllocatePages image uki.efi:.linux"),
    ("uki-bookworm-stub-pre58", "bookworm", "bookworm", True, "runs inside uki.efi .linux"),
    ("uki-trixie-stub-pre58", "trixie", "bookworm", True, "copied below 4 GiB"),
]


@pytest.mark.parametrize(("case_id", "stub_suite", "kernel_suite", "pre58", "path_event"),
                         UKI_CASES, ids=[c[0] for c in UKI_CASES])
def test_uki_boot(case_id: str, stub_suite: str, kernel_suite: str, pre58: bool,
                  path_event: str, corpus: Corpus, qemu_tools: None, tmp_path: Path,
                  serial_log: Path, record_boot: BootRecorder) -> None:
    from corpus.uki import build_uki, relabel_pre_58

    from fwtools.uefi.replay import replay_files

    from .chains import KERNEL_CMDLINE, boot_esp, uki_files

    kernel = corpus.kernel(kernel_suite, "amd64")
    if pre58:
        kernel = relabel_pre_58(kernel, tmp_path / "vmlinuz-pre58")
    uki = build_uki(corpus.systemd_boot(stub_suite, "linuxx64.efi.stub"), kernel,
                    tmp_path / "uki.efi", KERNEL_CMDLINE["x64"])

    fw = Firmware("trixie/OVMF_CODE_4M.secboot.strictnx.fd", "x64",
                  corpus.ovmf("trixie", "OVMF_CODE_4M.secboot.strictnx.fd"),
                  corpus.ovmf("trixie", "OVMF_VARS_4M.fd"), False)
    boot = boot_esp(uki_files(uki, "x64"), fw, workdir=tmp_path / "boot", serial_log=serial_log)
    record_boot(boot.result, f"{case_id}: {boot.outcome}/{boot.stage}")
    assert (boot.outcome, boot.stage) == ("kernel", "kernel"), _evidence(boot)
    # Which way the stub went, as the console shows it: after LoadImage the stub serves the
    # initrd through LINUX_EFI_INITRD_MEDIA_GUID and the kernel's EFI stub says so; through
    # the handover protocol it passes the initrd in boot_params, and the line is missing.
    loadfile2 = boot.result.saw(r"Loaded initrd from LINUX_EFI_INITRD_MEDIA_GUID")
    assert loadfile2 == (not pre58), _evidence(boot)

    r = replay_files([uki], firmware="debian13-ovmf-strictnx")
    assert r.verdict == "boots", r.reason
    assert any(path_event in e.operation for e in r.events), [e.operation for e in r.events]
