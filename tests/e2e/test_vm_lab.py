"""``fw-check vm`` on the strict-NX lab firmware, against real boots: a Debian 12 or 13 disk
(tests/machine/vm_builder.py: GPT, shim -> grub -> kernel, grub-mkconfig's grub.cfg) with
Debian 13's ``.ms`` store (Secure Boot on) on a lab build of tests/e2e/lab/build-ovmf.sh.

fw-check identifies the lab's x64 builds by their code (fwtools/machine/firmware_id.py
``LAB_BUILDS``): the cases give no ``--profile`` and check the build's profile came out as a
"known build", except one that names it (``--profile``, the override path). ``strict-nomap``
is the strict binary: identification gives ``debian13-ovmf-lab-strict``, and the same
``--fw-cfg`` entry QEMU is given (``opt/org.tianocore/UninstallMemAttrProtocol``) uninstalls
the memory attribute protocol. ``fw-check vm --json`` must predict
the verdict, and for a fault the stage, access, #PF error code and page offset
(tests/e2e/lab/matrix.py ``compare``); the same firmware, store and disk, booted in QEMU
(chains.boot_disk, the lab's consoles: matrix.lab_console), must end that way.

- Debian 12 on ``strict`` (and ``strict-nomap``): GRUB 2.06's linuxefi copies the kernel into
  EfiLoaderData and jumps to its EFI handover entry there; the NX policy makes that page
  non-executable: #PF 0x11 (instruction fetch, present) after "Loading initial ramdisk".
- Debian 13 on ``strict``: GRUB 2.12 places the kernel as an image (EfiLoaderCode): boots.
- Debian 12 on ``compat`` (EfiLoaderData executable): boots.
- Debian 12 on ``aa64-strict`` (AAVMF, Debian 13's ``AAVMF_VARS.ms.fd``): GRUB 2.06 jumps
  into the kernel it copied to EfiLoaderData there too (an instruction abort). The build is
  identified by its code as well, and its profile's architecture is the disk's.

Trust and W^X together (``test_vm_lab_trust_matches_qemu``): Debian 12's chain faults on
``strict`` once GRUB 2.06 starts the kernel, so a refusal before that point must win, and a
chain trusted some other way than Debian's ``.ms`` db must still fault. The stores are
tests/machine/vm_builder.py ``vm_store``'s (those of tests/e2e/test_vm_qemu.py):

- refusal before the fault: an SbatLevel revoking GRUB (shim refuses stage 2, GRUB never
  runs), a dbx revoking shim's hash (the firmware refuses stage 1), a kernel signed by a key
  nothing trusts (GRUB's shim_lock verifier refuses it at ``linux``, before the handover that
  faults);
- the fault after trust: the same test-signed kernel with MokList trusting its key (faults
  in GRUB), and Debian 12's chain with only the 2023 Microsoft CAs enrolled (its shim's
  second signature, by Microsoft UEFI CA 2023, is the one db trusts; faults in GRUB);
- Debian 13's chain (GRUB 2.12 places the kernel as an image) boots with the MokList-trusted
  kernel and with the 2023-only store;
- shim's state variables as shim reads them: a MokSBState with RUNTIME_ACCESS (which only an
  OS could have written) does not turn shim's verification off (the test-signed kernel is
  refused, before the fault), an SbatLevel revoking GRUB with RUNTIME_ACCESS is replaced by
  shim's own (GRUB runs and faults), and MokDBState makes shim ignore db (a kernel that db
  trusts boots, and is refused with MokDBState set);
- Secure Boot off (a blank store) on ``compat``: Debian 12's GRUB 2.06 then loads the kernel
  its own way (the relocator's trampoline in memory the firmware lists as free) and faults,
  where the same chain with Secure Boot on boots.

Each compares the verdict, the refusing stage and component and the message on the console
(tests/e2e/chains.py ``refused_by``, ``refusal_not_on_console``), the authority fw-check
names for the kernel, and for a fault the same fields as above.

A missing lab build skips, and fails under FWTOOLS_REQUIRE_CORPUS=1 (the ``lab_builds``
fixture, tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from corpus import Corpus

from .chains import (
    DEBIAN_DISK_MARKERS,
    ChainBoot,
    Firmware,
    boot_disk,
    refusal_not_on_console,
    refused_by,
)
from .conftest import BootRecorder
from .dumps import mismatch_report
from .lab.matrix import (
    DEFAULT_CACHE,
    VARIANT_BY_NAME,
    LabCase,
    Variant,
    case_chain,
    case_firmware,
    compare,
    fault_view,
    lab_cache,
    lab_console,
    observe,
)

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "machine")]

from vm_builder import build_debian_disk, signed_by_test_key, vm_store  # noqa: E402

#: fw-check vm's exit status per verdict (docs/fw-check.md)
EXIT = {"boots": 0, "faults": 1, "refused": 1}


@dataclass(frozen=True)
class LabVmCase:
    chain: str  # tests/e2e/lab/matrix.py CHAINS label: the disk's shim, grub and kernel
    variant: str  # matrix.VARIANT_BY_NAME
    verdict: str
    # for a fault: (stage, fault code (#PF error code, ESR), memory type) fw-check vm must name
    fault: tuple[str, int, str] | None = None
    profile_given: bool = False  # pass --profile rather than rely on identification

    @property
    def id(self) -> str:
        return f"{self.chain}-{self.variant}"


GRUB206_HANDOVER = ("grub", 0x11, "EfiLoaderData")
# ESR 0x8600000E: EC 0x21 (instruction abort, same EL), FSC 0x0E (permission fault, level 2)
GRUB206_HANDOVER_AA64 = ("grub", 0x8600000E, "EfiLoaderData")
CASES = [
    LabVmCase("bookworm", "strict", "faults", GRUB206_HANDOVER),
    LabVmCase("trixie", "strict", "boots", profile_given=True),
    LabVmCase("bookworm", "compat", "boots"),
    LabVmCase("bookworm", "strict-nomap", "faults", GRUB206_HANDOVER),
    # identified by its code too, as an aa64 profile: no --profile, no --arch
    LabVmCase("bookworm", "aa64-strict", "faults", GRUB206_HANDOVER_AA64),
]


@dataclass(frozen=True)
class LabTrustCase:
    """A Debian disk with a store of tests/machine/vm_builder.py ``vm_store`` on a lab build
    (Secure Boot on, except the ``blank`` store): what fw-check vm must say, and the real boot
    must show."""

    id: str
    chain: str  # matrix.CHAINS label
    store: str  # vm_store kind
    verdict: str
    refused: tuple[int, str] | None = None  # (stage, component)
    fault: tuple[str, int, str] | None = None  # as LabVmCase.fault
    test_kernel: bool = False  # the kernel re-signed by the test key (MokList's)
    kernel_by: str | None = None  # the authority kind fw-check vm names for the kernel
    shim_by: str | None = None  # a word of the db certificate that allows shim
    variant: str = "strict"


TRUST_CASES = [
    # refusal before the fault (bookworm's GRUB 2.06 would fault starting the kernel)
    LabTrustCase("bookworm-sbat-revokes-grub", "bookworm", "sbat-grub", "refused", (2, "shim")),
    LabTrustCase("bookworm-dbx-revokes-shim", "bookworm", "dbx-shim", "refused",
                 (1, "firmware")),
    LabTrustCase("bookworm-untrusted-kernel", "bookworm", "ms", "refused", (3, "grub"),
                 test_kernel=True),
    # the fault after trust: MokList trusts the kernel; db trusts shim only through its
    # Microsoft UEFI CA 2023 signature
    LabTrustCase("bookworm-moklist-kernel", "bookworm", "ms-moklist", "faults",
                 fault=GRUB206_HANDOVER, test_kernel=True, kernel_by="mok-certificate"),
    LabTrustCase("bookworm-uefi-2023-only", "bookworm", "2023-only", "faults",
                 fault=GRUB206_HANDOVER, kernel_by="shim-vendor-certificate",
                 shim_by="UEFI CA 2023"),
    # shim's state variables only as shim reads them (mok.c import_one_mok_state, sbat.c
    # check_sbat_var_attributes): with RT (only an OS could have written them) they are
    # ignored. MokSBState with RT does not turn verification off: GRUB refuses the kernel
    # before the fault; an SbatLevel with RT is replaced by shim's own: GRUB runs, faults
    LabTrustCase("bookworm-moksbstate-rt-ignored", "bookworm", "ms-moksbstate-rt", "refused",
                 (3, "grub"), test_kernel=True),
    LabTrustCase("bookworm-sbat-level-rt-ignored", "bookworm", "sbat-grub-rt", "faults",
                 fault=GRUB206_HANDOVER),
    # db trusts the test key's CA: the kernel boots; MokDBState tells shim to ignore db
    # (mokutil --ignore-db): GRUB's shim_lock refuses it
    LabTrustCase("trixie-db-kernel", "trixie", "db-test-ca", "boots", test_kernel=True,
                 kernel_by="db-certificate"),
    LabTrustCase("trixie-mokdbstate-ignores-db", "trixie", "db-test-ca-mokdbstate", "refused",
                 (3, "grub"), test_kernel=True),
    # Secure Boot off: Debian 12's GRUB takes its non-shim path (the relocator trampoline in
    # memory the firmware lists as free), which faults even on compat, where the same chain
    # with Secure Boot on boots (CASES "bookworm-compat")
    LabTrustCase("bookworm-secure-boot-off-compat", "bookworm", "blank", "faults",
                 fault=("grub", 0x11, "EfiConventionalMemory"), kernel_by="secure-boot-off",
                 variant="compat"),
    # Debian 13's chain boots on strict, trusted the same ways
    LabTrustCase("trixie-moklist-kernel", "trixie", "ms-moklist", "boots", test_kernel=True,
                 kernel_by="mok-certificate"),
    LabTrustCase("trixie-uefi-2023-only", "trixie", "2023-only", "boots",
                 kernel_by="shim-vendor-certificate", shim_by="UEFI CA 2023"),
]


def fw_check_vm(code: Path, vars_path: Path, disk: Path, profile: str | None,
                fw_cfg: list[str]) -> tuple[int, dict[str, Any]]:
    """``fw-check vm --json`` in this interpreter's environment (the worktree's fwtools)."""
    cmd = [sys.executable, "-m", "fwtools.cli.fw_check", "vm", "--firmware", str(code),
           "--vars", str(vars_path), "--disk", str(disk), "--json"]
    if profile is not None:
        cmd += ["--profile", profile]
    for entry in fw_cfg:
        cmd += ["--fw-cfg", entry]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode in (0, 1), run.stderr
    return run.returncode, json.loads(run.stdout)


def predict(variant: Variant, code: Path, vars_path: Path, disk: Path, profile_given: bool,
            secure_boot: bool = True) -> tuple[int, dict[str, Any], list[str]]:
    """fw-check vm on a lab build: the build's own profile (identified from the code, or
    named), the VM's fw_cfg (QEMU's -fw_cfg argument as it is, as libvirt's <sysinfo
    type='fwcfg'> would give it); checks the identification and the memory attribute
    protocol it assumed. The exit status, the document and the fw_cfg entries."""
    fw_cfg = [a for i, a in enumerate(variant.qemu_args) if i and
              variant.qemu_args[i - 1] == "-fw_cfg"]
    build_profile = VARIANT_BY_NAME[variant.build].profile
    # the build path is in a DEBUG build's bytes: the known-build table has the builds made
    # at the default LAB_CACHE (fwtools/machine/firmware_id.py LAB_BUILDS)
    named = profile_given or lab_cache() != DEFAULT_CACHE
    status, doc = fw_check_vm(code, vars_path, disk, build_profile if named else None, fw_cfg)
    ident = doc["firmware"]
    assert (ident["profile"], ident["basis"], ident["arch"]) == (
        build_profile, "override" if named else "known build", variant.arch), ident
    assert doc["secure_boot"]["enabled"] is secure_boot
    assert [s["loaded_by"] for s in doc["stages"]] == ["firmware", "shim", "grub"]
    mapp = doc["firmware"]["settings"]["memory_attribute_protocol"]
    assert mapp["value"] is variant.memory_attribute_protocol, mapp
    if fw_cfg:
        assert mapp["basis"] == "override", mapp  # the VM's fw_cfg, not the build
    return status, doc, fw_cfg


def boot_and_compare(case_id: str, variant: Variant, fw: Firmware, disk: Path,
                     doc: dict[str, Any], workdir: Path,
                     record_boot: BootRecorder) -> ChainBoot:
    """Boot ``disk`` on ``fw`` with the lab's consoles and require what fw-check vm's ``doc``
    said: the verdict, and for a fault every field the dump tells (matrix.compare)."""
    con = lab_console(variant, workdir)
    # a refusal's marker can match before its line is complete: read on a few seconds
    boot = boot_disk(disk, fw, workdir=workdir, serial_log=con.serial_log,
                     extra_args=con.qemu_args, markers=DEBIAN_DISK_MARKERS,
                     linger_on=("fault", "refused"))
    record_boot(boot.result, f"vm lab {case_id}: {boot.outcome}/{boot.stage}")
    real = observe(boot, con.debug_log, variant.arch)
    evidence = f"{boot.describe()}\n(DEBUG log: {con.debug_log})"
    # the firmware really ran with (or without) the protocol fw-check vm assumed
    assert real.memory_attribute_protocol == variant.memory_attribute_protocol, evidence

    view = fault_view(doc["verdict"], doc["faults"])
    fields = compare(real, view)
    assert all(f.ok for f in fields), f"{case_id}: {mismatch_report(fields)}\n{evidence}"
    if doc["faults"]:
        # the fault was compared on everything the dump tells, not only the verdict
        want = (["#PF error", "RIP & 0xfff"] if variant.arch == "x64"
                else ["ESR.EC", "ESR.FSC", "FAR & 0xfff"])
        assert [f.name for f in fields if f.compared] == [
            "verdict", "stage", "access", *want], mismatch_report(fields)
    return boot


def check_fault(doc: dict[str, Any], fault: tuple[str, int, str] | None) -> None:
    if fault is not None:
        f = doc["faults"][0]
        assert (f["stage"].split()[0], f["code"], f["memory_type"]) == fault, f
    else:
        assert doc["faults"] == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vm_lab_matches_qemu(case: LabVmCase, corpus: Corpus, lab_builds: Path,
                             tmp_path: Path, record_boot: BootRecorder) -> None:
    variant = VARIANT_BY_NAME[case.variant]
    lab = LabCase(case.chain, variant, secure_boot=True)
    fw = case_firmware(lab, lab_builds, corpus)  # the build's code, Debian 13's .ms store
    chain = case_chain(lab, corpus)
    (tmp_path / "disk").mkdir()
    disk = build_debian_disk(tmp_path / "disk", chain.shim, chain.grub, chain.kernel,
                             arch=variant.arch)

    status, doc, _ = predict(variant, fw.code, fw.vars, disk, case.profile_given)
    assert doc["verdict"] == case.verdict, (doc["refusal"], doc["faults"])
    assert status == EXIT[case.verdict]
    assert doc["refusal"] is None
    check_fault(doc, case.fault)
    boot_and_compare(case.id, variant, fw, disk, doc, tmp_path / "boot", record_boot)


@pytest.mark.parametrize("case", TRUST_CASES, ids=[c.id for c in TRUST_CASES])
def test_vm_lab_trust_matches_qemu(case: LabTrustCase, corpus: Corpus, lab_builds: Path,
                                   tmp_path: Path, record_boot: BootRecorder) -> None:
    variant = VARIANT_BY_NAME[case.variant]
    secure_boot = case.store != "blank"
    lab = LabCase(case.chain, variant, secure_boot)
    chain = case_chain(lab, corpus)
    kernel = chain.kernel
    if case.test_kernel:
        kernel = signed_by_test_key(kernel, tmp_path / "signed")
    (tmp_path / "disk").mkdir()
    disk = build_debian_disk(tmp_path / "disk", chain.shim, chain.grub, kernel)
    store = vm_store(case.store, corpus.ovmf_dir("trixie"), tmp_path, chain.shim)
    fw = replace(case_firmware(lab, lab_builds, corpus), vars=store)

    status, doc, _ = predict(variant, fw.code, store, disk, False, secure_boot)
    assert doc["verdict"] == case.verdict, (doc["refusal"], doc["faults"])
    assert status == EXIT[case.verdict]
    refusal = doc["refusal"]
    assert (None if refusal is None else (refusal["stage"], refusal["by"])) == case.refused
    check_fault(doc, case.fault)
    stages = doc["stages"]
    if case.refused is not None:
        # nothing after the refused stage ran, so nothing after it is replayed: the fault in
        # GRUB 2.06's handover cannot come first
        assert all(s["allowed"] for s in stages[:case.refused[0] - 1]), stages
        assert stages[case.refused[0] - 1]["allowed"] is False, stages
    else:
        assert all(s["allowed"] for s in stages), stages  # trusted, and then faults or boots
    if case.kernel_by is not None:
        assert stages[-1]["authority"]["kind"] == case.kernel_by, stages[-1]
    if case.shim_by is not None:
        shim = stages[0]["authority"]
        assert shim["kind"] == "db-certificate" and case.shim_by in shim["subject"], shim

    boot = boot_and_compare(case.id, variant, fw, disk, doc, tmp_path / "boot", record_boot)
    if refusal is not None:
        evidence = boot.describe()
        assert refused_by(boot.result.matched_line or "") == refusal["by"], evidence
        assert refusal_not_on_console(refusal["by"], refusal["stage"], refusal["message"],
                                      boot.result.output) == [], evidence
