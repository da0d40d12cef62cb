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

A missing lab build skips, and fails under FWTOOLS_REQUIRE_CORPUS=1 (the ``lab_builds``
fixture, tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from corpus import Corpus

from .chains import DEBIAN_DISK_MARKERS, boot_disk
from .conftest import BootRecorder
from .dumps import mismatch_report
from .lab.matrix import (
    DEFAULT_CACHE,
    VARIANT_BY_NAME,
    LabCase,
    case_chain,
    case_firmware,
    compare,
    fault_view,
    lab_cache,
    lab_console,
    observe,
)

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "machine")]

from vm_builder import build_debian_disk  # noqa: E402

#: fw-check vm's exit status per verdict (docs/fw-check.md)
EXIT = {"boots": 0, "faults": 1, "refused": 1}


@dataclass(frozen=True)
class LabVmCase:
    chain: str  # tests/e2e/lab/matrix.py CHAINS label: the disk's shim, grub and kernel
    variant: str  # matrix.VARIANT_BY_NAME
    verdict: str
    # for a fault: (stage, #PF error code, memory type) fw-check vm must name
    fault: tuple[str, int, str] | None = None
    profile_given: bool = False  # pass --profile rather than rely on identification

    @property
    def id(self) -> str:
        return f"{self.chain}-{self.variant}"


GRUB206_HANDOVER = ("grub", 0x11, "EfiLoaderData")
CASES = [
    LabVmCase("bookworm", "strict", "faults", GRUB206_HANDOVER),
    LabVmCase("trixie", "strict", "boots", profile_given=True),
    LabVmCase("bookworm", "compat", "boots"),
    LabVmCase("bookworm", "strict-nomap", "faults", GRUB206_HANDOVER),
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


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vm_lab_matches_qemu(case: LabVmCase, corpus: Corpus, lab_builds: Path,
                             tmp_path: Path, record_boot: BootRecorder) -> None:
    variant = VARIANT_BY_NAME[case.variant]
    lab = LabCase(case.chain, variant, secure_boot=True)
    fw = case_firmware(lab, lab_builds, corpus)  # the build's code, Debian 13's .ms store
    chain = case_chain(lab, corpus)
    (tmp_path / "disk").mkdir()
    disk = build_debian_disk(tmp_path / "disk", chain.shim, chain.grub, chain.kernel)

    # the build's own profile (identified from the code, or named); the VM's fw_cfg (QEMU's
    # -fw_cfg argument as it is) says the rest, as libvirt's <sysinfo type='fwcfg'> would
    fw_cfg = [a for i, a in enumerate(variant.qemu_args) if i and
              variant.qemu_args[i - 1] == "-fw_cfg"]
    build_profile = VARIANT_BY_NAME[variant.build].profile
    # the build path is in a DEBUG build's bytes: the known-build table has the builds made
    # at the default LAB_CACHE (fwtools/machine/firmware_id.py LAB_BUILDS)
    named = case.profile_given or lab_cache() != DEFAULT_CACHE
    status, doc = fw_check_vm(fw.code, fw.vars, disk, build_profile if named else None, fw_cfg)
    ident = doc["firmware"]
    assert (ident["profile"], ident["basis"]) == (
        build_profile, "override" if named else "known build"), ident
    assert doc["verdict"] == case.verdict, (doc["refusal"], doc["faults"])
    assert status == EXIT[case.verdict]
    assert doc["secure_boot"]["enabled"] is True
    assert [s["loaded_by"] for s in doc["stages"]] == ["firmware", "shim", "grub"]
    mapp = doc["firmware"]["settings"]["memory_attribute_protocol"]
    assert mapp["value"] is variant.memory_attribute_protocol, mapp
    if fw_cfg:
        assert mapp["basis"] == "override", mapp  # the VM's fw_cfg, not the build
    if case.fault is not None:
        f = doc["faults"][0]
        assert (f["stage"].split()[0], f["code"], f["memory_type"]) == case.fault, f
    else:
        assert doc["faults"] == []

    con = lab_console(variant, tmp_path / "boot")
    boot = boot_disk(disk, fw, workdir=tmp_path / "boot", serial_log=con.serial_log,
                     extra_args=con.qemu_args, markers=DEBIAN_DISK_MARKERS)
    record_boot(boot.result, f"vm lab {case.id}: {boot.outcome}/{boot.stage}")
    real = observe(boot, con.debug_log, variant.arch)
    evidence = f"{boot.describe()}\n(DEBUG log: {con.debug_log})"
    # the firmware really ran with (or without) the protocol fw-check vm assumed
    assert real.memory_attribute_protocol == variant.memory_attribute_protocol, evidence

    view = fault_view(doc["verdict"], doc["faults"])
    fields = compare(real, view)
    assert all(f.ok for f in fields), f"{case.id}: {mismatch_report(fields)}\n{evidence}"
    if case.fault is not None:
        # the fault was compared on everything the dump tells, not only the verdict
        assert [f.name for f in fields if f.compared] == [
            "verdict", "stage", "access", "#PF error", "RIP & 0xfff"], mismatch_report(fields)
