"""``fw-check vm`` against real boots: Debian 13's and Debian 12's layouts on a GPT disk
(tests/machine/vm_builder.py) with Debian's Secure Boot OVMF (SMM), paired with stores that
boot (Debian's .ms store, only the 2023 Microsoft CAs, a MokList key or a db CA trusting a
test-signed kernel, Secure Boot off) or are refused by the firmware (db trusting only Windows
PCA 2011, dbx revoking shim's hash), by shim (SbatLevel revoking GRUB) or by GRUB (a kernel
shim does not trust, or whose CA's certificate is in dbx: a revoked certificate, not a hash,
which fw-check vm names as the refusal's revoked_by; so too for systemd-boot signed by that
CA, which the firmware refuses). The verdict, the refusing stage and component, and the
message on the console must match what fw-check vm says. Each test boots in its own
tmp_path (no ports), so they run under pytest-xdist.

systemd-boot and UKIs (test_sdboot_uki_matches_qemu): Debian 13's systemd-boot (unsigned as
the removable loader; or Debian-signed, systemd-boot-efi-amd64-signed, behind shim) and a UKI
of Debian 13's stub and kernel in ``\\EFI\\Linux``, found by systemd-boot's own rules
(fwtools/machine/sdboot.py): the kernel's command line on the console says which entry
really booted."""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from corpus import Corpus

from .chains import DEBIAN_DISK_MARKERS, evidence_lines, refusal_not_on_console, refused_by
from .qemu import Disk, QemuResult, copy_vars, ovmf_command, run_qemu

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "machine"),
                str(Path(__file__).resolve().parents[1] / "formats" / "disk")]

from vm_builder import (  # noqa: E402
    build_debian_disk,
    build_sdboot_disk,
    build_shim_sdboot_disk,
    fw_vars,
    sbsign,
    signed_by_test_key,
    vm_store,
)

from fwtools.machine.vm import VmResult, check_vm  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "testdata" / "sample"
VERDICT = {"kernel": "boots", "refused": "refused", "fault": "faults"}
MARKERS = DEBIAN_DISK_MARKERS


@dataclass(frozen=True)
class VmCase:
    id: str
    store: str  # how the store is made (vm_builder.vm_store)
    verdict: str
    refused: tuple[int, str] | None  # (stage, component)
    test_kernel: bool = False
    suite: str = "trixie"  # whose boot chain, layout and OVMF (Debian 13; bookworm: 12)
    kernel_by: str | None = None  # the authority kind fw-check vm names for the kernel
    reason_has: str | None = None  # a word the predicted refusal's reason must contain
    uki_signed: bool = True  # the UKI signed by the test key ("sdboot-test-key", "shim")
    revoked: str | None = None  # the refusal's revoked_by kind, naming the test CA


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
    # the kernel signed by the test key, whose CA db trusts: shim's check_allowlist (db)
    VmCase("db-cert-kernel", "db-test-ca", "boots", None, test_kernel=True,
           kernel_by="db-certificate"),
    # the same, but dbx also holds the test CA's certificate (an X.509 entry, not a hash):
    # shim's check_denylist, through GRUB's shim_lock, refuses the kernel
    VmCase("dbx-cert-revokes-kernel", "db-test-ca-dbx-cert", "refused", (3, "grub"),
           test_kernel=True, reason_has="forbidden by dbx", revoked="dbx-certificate"),
    VmCase("uefi-2023-only", "2023-only", "boots", None),
    VmCase("bookworm-ms-boots", "ms", "boots", None, suite="bookworm"),
    VmCase("bookworm-sbat-revokes-grub", "sbat-grub", "refused", (2, "shim"),
           suite="bookworm"),
]


def assert_revokes_test_ca(predicted: VmResult, kind: str) -> None:
    """fw-check vm's JSON names the revoked test CA (subject, SHA-256 of its DER) and the
    denylist ``kind`` as the refusal's ``revoked_by``."""
    from fwtools.report.vm_json import vm_document

    ca = (SAMPLE / "test-ca.der").read_bytes()
    revoked = vm_document(predicted)["refusal"]["revoked_by"]
    assert revoked == {"kind": kind, "subject": "CN=fwtools test CA,O=fwtools test",
                       "sha256": hashlib.sha256(ca).hexdigest()}, revoked


def boot_with_verdict(code: Path, store: Path, disk: Path, tmp_path: Path, serial_log: Path,
                      verdict: str) -> tuple[QemuResult, str]:
    """Boot ``disk`` on ``code`` with a copy of ``store`` (Secure Boot on) and require the
    console's outcome to be ``verdict`` (fw-check vm's); the run and its evidence lines."""
    vars_copy = copy_vars(store, tmp_path / "vars-run.fd")
    # linger: the stop marker matches early in a line; read on so the whole line is there
    result = run_qemu(ovmf_command(code, vars_copy, secure_boot=True,
                                   disks=[Disk.image(disk, snapshot=True)]),
                      stop_markers=list(MARKERS), serial_log=serial_log, timeout=240,
                      linger=3.0)
    assert result.marker is not None, result.describe()
    outcome = MARKERS[result.marker]
    evidence = "\n".join(evidence_lines(result))
    assert VERDICT.get(outcome) == verdict, f"{outcome}\n{evidence}"
    return result, evidence


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_vm_matches_qemu(case: VmCase, corpus: Corpus, qemu_tools: None,
                         tmp_path: Path, serial_log: Path) -> None:
    shim, grub, kernel = corpus.boot_chain(case.suite, "amd64")
    if case.test_kernel:
        # the same kernel, signed by the test key instead of Debian's: shim does not trust it
        kernel = signed_by_test_key(kernel, tmp_path / "signed")
    disk = build_debian_disk(tmp_path, shim, grub, kernel)
    ovmf = corpus.ovmf_dir(case.suite)
    code = ovmf / "OVMF_CODE_4M.secboot.fd"
    store = vm_store(case.store, ovmf, tmp_path, shim)

    predicted = check_vm(str(code), str(store), disk=str(disk))
    assert predicted.verdict == case.verdict, predicted.refusal
    got = None if predicted.refusal is None else (predicted.refusal.stage,
                                                 predicted.refusal.by)
    assert got == case.refused
    if case.reason_has is not None:
        assert predicted.refusal is not None and case.reason_has in predicted.refusal.reason, (
            predicted.refusal)
    if case.revoked is not None:
        assert_revokes_test_ca(predicted, case.revoked)
    if case.kernel_by is not None:
        authority = predicted.stages[-1].authority
        assert authority is not None and authority.kind == case.kernel_by, predicted.stages

    result, evidence = boot_with_verdict(code, store, disk, tmp_path, serial_log,
                                         predicted.verdict)
    if predicted.refusal is not None:
        line = result.matched_line or ""
        assert refused_by(line) == predicted.refusal.by, evidence
        # the message fw-check vm quotes is on the console (firmware: its fixed parts)
        first = predicted.refusal.message.splitlines()[0]
        if predicted.refusal.by == "firmware":
            assert re.search(r"BdsDxe: failed to load Boot\d{4} .*: Access Denied",
                             result.output), evidence
        else:
            assert first in result.output, evidence


# -- systemd-boot and UKIs -------------------------------------------------------------------

#: a word only the UKI's .cmdline has: "Command line:" on the console proves the UKI booted
#: (the type 1 entry's options are ``root=/dev/vda2 ro``)
UKI_TOKEN = "fwtools.entry=uki"


@dataclass(frozen=True)
class SdCase:
    id: str
    # "sdboot": systemd-boot as BOOTX64.EFI; "sdboot-test-key": the same signed by the test
    # key; "shim": shim -> Debian-signed systemd-boot
    layout: str
    store: str  # "blank" (Secure Boot off), "ms", "ms-moklist" (vm_builder.vm_store)
    verdict: str
    refused: tuple[int, str] | None
    authorities: tuple[str, ...] = ()  # per allowed stage, when it boots
    default: str | None = None  # loader.conf default (layout "sdboot")
    entry_name: str = "debian-6.12.conf"  # the type 1 entry's file (layout "sdboot")
    entry_default: str | None = None  # LoaderEntryDefault in the store (bootctl set-default)
    reason_has: str | None = None  # a word the predicted refusal's reason must contain
    uki_signed: bool = True  # the UKI signed by the test key ("sdboot-test-key", "shim")
    revoked: str | None = None  # the refusal's revoked_by kind, naming the test CA


SD_CASES = [
    # loader.conf's default glob picks the UKI over the type 1 entry
    SdCase("sdboot-uki-secure-boot-off", "sdboot", "blank", "boots", None,
           ("secure-boot-off", "secure-boot-off"), default="debian-uki*"),
    # no default: the UKI has a sort key (its .osrel ID) and the type 1 entry none, so the
    # UKI comes first although "zz-debian.conf" sorts first by name
    SdCase("sdboot-uki-sort-key-first", "sdboot", "blank", "boots", None,
           ("secure-boot-off", "secure-boot-off"), entry_name="zz-debian.conf"),
    # LoaderEntryDefault (bootctl set-default) beats loader.conf: the type 1 entry boots
    SdCase("sdboot-loader-entry-default", "sdboot", "blank", "boots", None,
           ("secure-boot-off", "secure-boot-off"), default="debian-uki*",
           entry_default="debian-6.12.conf"),
    # Debian's systemd-boot-efi build is unsigned: Microsoft's db refuses it
    SdCase("sdboot-unsigned-ms", "sdboot", "ms", "refused", (1, "firmware"),
           default="debian-uki*"),
    # no shim: systemd-boot and the UKI signed by a key db trusts; systemd-boot's LoadImage
    # is the firmware's, which checks the UKI against db
    SdCase("sdboot-db-test-key", "sdboot-test-key", "db-test-ca", "boots", None,
           ("db-certificate", "db-certificate"), default="debian-uki*"),
    # the same keys, but dbx holds the test CA's certificate: the firmware refuses
    # systemd-boot itself (DxeImageVerificationLib IsForbiddenByDbx)
    SdCase("sdboot-dbx-cert-revokes", "sdboot-test-key", "db-test-ca-dbx-cert", "refused",
           (1, "firmware"), default="debian-uki*", reason_has="dbx cert",
           revoked="dbx-certificate"),
    SdCase("sdboot-db-uki-unsigned", "sdboot-test-key", "db-test-ca", "refused",
           (2, "firmware"), default="debian-uki*", uki_signed=False),
    # shim -> Debian-signed systemd-boot (shim's vendor certificate) -> the UKI signed by the
    # test key, which MokList trusts: LoadImage goes through shim's hook
    SdCase("shim-sdboot-uki-moklist", "shim", "ms-moklist", "boots", None,
           ("db-certificate", "shim-vendor-certificate", "mok-certificate")),
    # the same without the MokList key: shim's hook refuses the UKI, systemd-boot says so
    SdCase("shim-sdboot-uki-untrusted", "shim", "ms", "refused", (3, "shim")),
    # trusted by MokList, but its stub's SBAT is revoked: shim's hook checks SBAT too
    SdCase("shim-sdboot-uki-sbat-revoked", "shim", "ms-moklist-sbat-stub", "refused",
           (3, "shim"), reason_has="SBAT: systemd-stub"),
]


@pytest.mark.parametrize("case", SD_CASES, ids=[c.id for c in SD_CASES])
def test_sdboot_uki_matches_qemu(case: SdCase, corpus: Corpus, qemu_tools: None,
                                 tmp_path: Path, serial_log: Path) -> None:
    from corpus.uki import build_uki

    from .chains import KERNEL_CMDLINE

    kernel = corpus.kernel("trixie", "amd64")
    (tmp_path / "uki").mkdir()
    uki = build_uki(corpus.systemd_boot("trixie", "linuxx64.efi.stub"), kernel,
                    tmp_path / "uki" / "uki.efi", f"{KERNEL_CMDLINE['x64']} {UKI_TOKEN}")
    if case.uki_signed and case.layout != "sdboot":
        uki = sbsign(SAMPLE / "keys" / "test-db.key", SAMPLE / "test-db.pem", uki,
                     tmp_path / "uki" / "uki-signed.efi")
    if case.layout.startswith("sdboot"):
        sd_boot = corpus.systemd_boot("trixie")
        if case.layout == "sdboot-test-key":
            sd_boot = sbsign(SAMPLE / "keys" / "test-db.key", SAMPLE / "test-db.pem", sd_boot,
                             tmp_path / "uki" / "systemd-bootx64.efi")
        disk = build_sdboot_disk(tmp_path, sd_boot, kernel, uki,
                                 default=case.default, entry_name=case.entry_name)
        expect = [("systemd-boot", "firmware"), ("systemd-stub", "systemd-boot")]
        uki_path = "partition 1:\\EFI\\Linux\\debian-uki.efi"
    else:
        shim = corpus.shim("trixie", "amd64")
        disk = build_shim_sdboot_disk(tmp_path, shim,
                                      corpus.systemd_boot("trixie", signed=True), uki)
        expect = [("shim", "firmware"), ("systemd-boot", "shim"),
                  ("systemd-stub", "systemd-boot")]
        uki_path = "partition 1:\\EFI\\Linux\\linux.efi"
    ovmf = corpus.ovmf_dir("trixie")
    code = ovmf / "OVMF_CODE_4M.secboot.fd"
    store = vm_store(case.store, ovmf, tmp_path, corpus.shim("trixie", "amd64"))
    if case.entry_default is not None:
        from fwtools.machine.sdboot import LOADER_GUID

        value = tmp_path / "entry-default.bin"
        value.write_bytes(f"{case.entry_default}\0".encode("utf-16-le"))
        with_default = tmp_path / "entry-default.fd"
        fw_vars("set", store, "LoaderEntryDefault", "--guid", str(LOADER_GUID),
                "--attributes", "NV,BS,RT", "--file", value, "-o", with_default)
        store = with_default
        expect[-1] = ("linux", "systemd-boot")
        uki_path = f"partition 1:\\{kernel.name}"

    predicted = check_vm(str(code), str(store), disk=str(disk))
    assert [(s.family, s.loaded_by) for s in predicted.stages] == expect, predicted.stages
    assert predicted.stages[-1].path == uki_path  # the UKI, or the type 1 entry's kernel
    assert predicted.verdict == case.verdict, predicted.refusal
    got = None if predicted.refusal is None else (predicted.refusal.stage,
                                                 predicted.refusal.by)
    assert got == case.refused
    if case.reason_has is not None:
        assert predicted.refusal is not None and case.reason_has in predicted.refusal.reason
    if case.revoked is not None:
        assert_revokes_test_ca(predicted, case.revoked)
    if case.verdict == "boots":
        assert tuple(s.authority.kind for s in predicted.stages
                     if s.authority is not None) == case.authorities

    result, evidence = boot_with_verdict(code, store, disk, tmp_path, serial_log,
                                         predicted.verdict)
    if predicted.verdict == "boots":
        # the entry fw-check vm named is the one systemd-boot started
        cmdline = [ln for ln in result.lines if "Command line:" in ln]
        assert cmdline, evidence
        if predicted.stages[-1].family == "systemd-stub":
            assert UKI_TOKEN in cmdline[0], (cmdline, evidence)
        else:  # the type 1 entry's options
            assert "root=/dev/vda2" in cmdline[0] and UKI_TOKEN not in cmdline[0], cmdline
    if predicted.refusal is not None:
        r = predicted.refusal
        assert refused_by(result.matched_line or "") == r.by, evidence
        # BdsDxe's line, and every other line fw-check vm quotes (shim's, systemd-boot's)
        assert refusal_not_on_console(r.by, r.stage, r.message, result.output) == [], evidence
