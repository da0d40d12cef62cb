"""``fw-check vm`` against real boots: Debian 13's and Debian 12's layouts on a GPT disk
(tests/machine/vm_builder.py) with Debian's Secure Boot OVMF (SMM), paired with stores that
boot (Debian's .ms store, only the 2023 Microsoft CAs, a MokList key trusting a test-signed
kernel, Secure Boot off) or are refused by the firmware (db trusting only Windows PCA 2011,
dbx revoking shim's hash), by shim (SbatLevel revoking GRUB) or by GRUB (a kernel shim does not
trust). The verdict, the refusing stage and component, and the message on the console must
match what fw-check vm says. Each test boots in its own tmp_path (no ports), so they run
under pytest-xdist."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from corpus import Corpus

from .chains import STOP_MARKERS, evidence_lines
from .qemu import Disk, copy_vars, ovmf_command, run_qemu

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "machine"),
                str(Path(__file__).resolve().parents[1] / "formats" / "disk")]

from vm_builder import build_debian_disk, fw_vars, sbsign  # noqa: E402

from fwtools.formats.efi import guids  # noqa: E402
from fwtools.formats.pe.authenticode import authenticode_digests  # noqa: E402
from fwtools.formats.pe.image import PeImage  # noqa: E402
from fwtools.machine.vm import check_vm  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "testdata" / "sample"
VERDICT = {"kernel": "boots", "refused": "refused", "fault": "faults"}
# Debian's entry boots with ``quiet`` (tests/machine/vm_builder.py), which hides "Linux
# version". Any line of the kernel's EFI stub (quiet: only its errors, here about the
# placeholder initrd) or a panic at the root mount proves GRUB verified and started the kernel.
MARKERS = {**STOP_MARKERS, r"EFI stub: |Kernel panic - not syncing": "kernel"}


@dataclass(frozen=True)
class VmCase:
    id: str
    store: str  # how the store is made (see _store)
    verdict: str
    refused: tuple[int, str] | None  # (stage, component)
    test_kernel: bool = False
    suite: str = "trixie"  # whose boot chain, layout and OVMF (Debian 13; bookworm: 12)
    kernel_by: str | None = None  # the authority kind fw-check vm names for the kernel
    reason_has: str | None = None  # a word the predicted refusal's reason must contain


CASES = [
    VmCase("ms-boots", "ms", "boots", None, kernel_by="shim-vendor-certificate"),
    VmCase("windows-only-db", "windows-only", "refused", (1, "firmware")),
    VmCase("sbat-revokes-grub", "sbat-grub", "refused", (2, "shim")),
    VmCase("untrusted-kernel", "ms", "refused", (3, "grub"), test_kernel=True),
    VmCase("secure-boot-off", "blank", "boots", None, kernel_by="secure-boot-off"),
    # shim trusts the test key through MokList (NV|BS, as MokManager leaves it): boots
    VmCase("moklist-kernel", "ms-moklist", "boots", None, test_kernel=True,
           kernel_by="mok-certificate"),
    VmCase("dbx-revokes-shim", "dbx-shim", "refused", (1, "firmware"), reason_has="dbx"),
    VmCase("uefi-2023-only", "2023-only", "boots", None),
    VmCase("bookworm-ms-boots", "ms", "boots", None, suite="bookworm"),
    VmCase("bookworm-sbat-revokes-grub", "sbat-grub", "refused", (2, "shim"),
           suite="bookworm"),
]


def _sha256_esl(image: Path, tmp: Path) -> Path:
    """An EFI_SIGNATURE_LIST (UEFI 2.10 section 32.4.1) holding the Authenticode SHA-256 of
    ``image``: what a dbx entry revoking that exact binary looks like."""
    digest = authenticode_digests(PeImage.open(image), ("sha256",))["sha256"]
    owner = uuid.UUID("77fa9abd-0359-4d32-bd60-28f4e78f784b").bytes_le  # Microsoft's owner
    entry = owner + digest
    esl = guids.CERT_SHA256.bytes_le + struct.pack("<III", 28 + len(entry), 0, len(entry))
    out = tmp / "dbx-shim.esl"
    out.write_bytes(esl + entry)
    return out


def _store(kind: str, ovmf: Path, tmp: Path, shim: Path) -> Path:
    out = tmp / f"{kind}.fd"
    if kind == "ms":
        shutil.copyfile(ovmf / "OVMF_VARS_4M.ms.fd", out)
    elif kind == "blank":
        shutil.copyfile(ovmf / "OVMF_VARS_4M.fd", out)
    elif kind == "windows-only":
        fw_vars("enroll", ovmf / "OVMF_VARS_4M.fd", "--pk", "generate:fwtools vm e2e PK",
                "--microsoft", "--microsoft-db", "windows-2011", "-o", out)
    elif kind == "sbat-grub":
        fw_vars("sbat-level", ovmf / "OVMF_VARS_4M.ms.fd", "--level",
                "sbat,1,2099010100\ngrub,99\n", "-o", out)
    elif kind == "ms-moklist":
        der = subprocess.run(["openssl", "x509", "-in", str(SAMPLE / "test-db.pem"),
                              "-outform", "DER"], check=True, capture_output=True).stdout
        entry = uuid.UUID(int=0).bytes_le + der
        esl = tmp / "moklist.esl"
        esl.write_bytes(guids.CERT_X509.bytes_le
                        + struct.pack("<III", 28 + len(entry), 0, len(entry)) + entry)
        fw_vars("set", ovmf / "OVMF_VARS_4M.ms.fd", "MokList", "--guid",
                str(guids.SHIM_LOCK), "--attributes", "NV,BS",
                "--file", esl, "-o", out)
    elif kind == "dbx-shim":
        fw_vars("enroll", ovmf / "OVMF_VARS_4M.fd", "--pk", "generate:fwtools vm e2e PK",
                "--microsoft", "--dbx", _sha256_esl(shim, tmp), "-o", out)
    elif kind == "2023-only":
        fw_vars("enroll", ovmf / "OVMF_VARS_4M.fd", "--pk", "generate:fwtools vm e2e PK",
                "--microsoft", "--microsoft-kek", "2023", "--microsoft-db",
                "windows-2023,uefi-2023", "-o", out)
    else:
        raise ValueError(kind)
    return out


def _who(line: str) -> str:
    if "BdsDxe: failed to load" in line or "Access Denied" in line:
        return "firmware"
    if "bad shim signature" in line or "load the kernel first" in line:
        return "grub"
    return "shim"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vm_matches_qemu(case: VmCase, corpus: Corpus, qemu_tools: None,
                         tmp_path: Path, serial_log: Path) -> None:
    shim, grub, kernel = corpus.boot_chain(case.suite, "amd64")
    if case.test_kernel:
        # the same kernel, signed by the test key instead of Debian's: shim does not trust it
        unsigned = tmp_path / "unsigned" / kernel.name
        unsigned.parent.mkdir()
        shutil.copyfile(kernel, unsigned)
        subprocess.run(["sbattach", "--remove", str(unsigned)], check=True, capture_output=True)
        (tmp_path / "signed").mkdir()
        kernel = sbsign(SAMPLE / "keys" / "test-db.key", SAMPLE / "test-db.pem", unsigned,
                        tmp_path / "signed" / kernel.name)
    disk = build_debian_disk(tmp_path, shim, grub, kernel)
    ovmf = corpus.ovmf_dir(case.suite)
    code = ovmf / "OVMF_CODE_4M.secboot.fd"
    store = _store(case.store, ovmf, tmp_path, shim)

    predicted = check_vm(str(code), str(store), disk=str(disk))
    assert predicted.verdict == case.verdict, predicted.refusal
    got = None if predicted.refusal is None else (predicted.refusal.stage,
                                                 predicted.refusal.by)
    assert got == case.refused
    if case.reason_has is not None:
        assert predicted.refusal is not None and case.reason_has in predicted.refusal.reason, (
            predicted.refusal)
    if case.kernel_by is not None:
        authority = predicted.stages[-1].authority
        assert authority is not None and authority.kind == case.kernel_by, predicted.stages

    vars_copy = copy_vars(store, tmp_path / "vars-run.fd")
    # linger: the stop marker matches early in a line; read on so the whole line is there
    result = run_qemu(ovmf_command(code, vars_copy, secure_boot=True,
                                   disks=[Disk.image(disk, snapshot=True)]),
                      stop_markers=list(MARKERS), serial_log=serial_log, timeout=240,
                      linger=3.0)
    assert result.marker is not None, result.describe()
    outcome = MARKERS[result.marker]
    evidence = "\n".join(evidence_lines(result))
    assert VERDICT.get(outcome) == predicted.verdict, f"{outcome}\n{evidence}"
    if predicted.refusal is not None:
        line = result.matched_line or ""
        assert _who(line) == predicted.refusal.by, evidence
        # the message fw-check vm quotes is on the console (firmware: its fixed parts)
        first = predicted.refusal.message.splitlines()[0]
        if predicted.refusal.by == "firmware":
            assert re.search(r"BdsDxe: failed to load Boot\d{4} .*: Access Denied",
                             result.output), evidence
        else:
            assert first in result.output, evidence
