"""fw-pcr predict against a real TPM, one boot per case: build the store, the boot disk and
the initramfs from the Debian corpus, predict every bank before booting, then boot it under
QEMU with swtpm (testdata/tcg/capture.sh: the guest prints the TPM's PCRs and the firmware's
event log) and require, for every PCR the prediction claims, the TPM's value in all four
banks, the logged events one by one (compare_with_log), and ``fw-pcr log`` replaying the
captured log to the TPM's values.

Cases: Secure Boot off and on; Debian 12 and 13 shim -> GRUB -> kernel; Debian's
Microsoft store (2011 CAs) and one with only the 2023 CAs (shim's db authority differs, and
the predicted difference is the TPM's); systemd-boot with a UKI, with Secure Boot off, signed
by a key in db, and behind shim trusted through MokList. Debian 12's GRUB boots Linux without
its EFI stub when Secure Boot is off, so Linux has no event log: that boot is held to the
TPM's values only.

Needs qemu-system-x86, swtpm, busybox-static, gdisk, dosfstools, mtools, binutils (objcopy),
sbsigntool and the corpus; skips without them (fails under FWTOOLS_REQUIRE_CORPUS=1).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from corpus import Corpus
from corpus.params import unavailable

from fwtools.cli.fw_pcr import cli
from fwtools.formats.efi import guids
from fwtools.formats.tcg.log import load_event_log
from fwtools.formats.varstore.storeio import load_store
from fwtools.machine.events import EV_EFI_VARIABLE_AUTHORITY
from fwtools.machine.measure import (
    MachineInput,
    Prediction,
    compare_with_log,
    diff_predictions,
    predict,
)

from .qemu import scaled_timeout

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "machine"),
                str(Path(__file__).resolve().parents[1] / "formats" / "disk")]

from disk_builder import MIB, SECTOR, blank, make_fat, run  # noqa: E402
from vm_builder import build_sdboot_disk, build_shim_sdboot_disk, fw_vars, sbsign  # noqa: E402

TCG = Path(__file__).resolve().parents[2] / "testdata" / "tcg"
SAMPLE = Path(__file__).resolve().parents[2] / "testdata" / "sample"
TOOLS = ("qemu-system-x86_64", "swtpm", "sgdisk", "mkfs.vfat", "mcopy", "objcopy", "sbsign",
         "timeout")
BANKS = ("sha1", "sha256", "sha384", "sha512")
GRUB_CFG = ("set timeout=0\nlinux /vmlinuz console={console} panic=-1 loglevel=1\n"
            "initrd /initrd.img\nboot\n")
EFI = {"amd64": ("BOOTX64.EFI", "grubx64.efi", "ttyS0"),
       "arm64": ("BOOTAA64.EFI", "grubaa64.efi", "ttyAMA0")}
# A trailing newline: sd-stub's mangle_stub_cmdline drops it from the LoadOptions it passes,
# while PCR 11 measures the section as it is.
UKI_CMDLINE = "console=ttyS0 panic=-1 loglevel=1\n"


@dataclass(frozen=True)
class Case:
    id: str
    suite: str
    layout: str  # "grub" (shim -> grub -> kernel), "sdboot", "sdboot-signed", "shim-sdboot"
    store: str  # "blank", "ms", "2023-only", "ms-moklist", "db-test-ca"
    secure_boot: bool
    has_log: bool = True
    arch: str = "amd64"


CASES = [
    Case("d12-grub-secure-boot-off", "bookworm", "grub", "blank", False, has_log=False),
    Case("d12-grub-ms", "bookworm", "grub", "ms", True),
    Case("d13-grub-secure-boot-off", "trixie", "grub", "blank", False),
    Case("d13-grub-ms", "trixie", "grub", "ms", True),
    Case("d13-grub-2023-only", "trixie", "grub", "2023-only", True),
    Case("sdboot-uki-secure-boot-off", "trixie", "sdboot", "blank", False),
    Case("sdboot-uki-db", "trixie", "sdboot-signed", "db-test-ca", True),
    Case("shim-sdboot-uki-moklist", "trixie", "shim-sdboot", "ms-moklist", True),
    # Debian's AAVMF on qemu-system-aarch64 -machine virt with a tpm-tis-device: Debian's
    # arm64 kernel has no driver for it (no CONFIG_TCG_TIS), so Linux shows no log and
    # capture.sh reads the PCRs from swtpm after the boot
    Case("aa64-d13-grub-ms", "trixie", "grub", "ms", True, has_log=False, arch="arm64"),
    Case("aa64-d13-grub-secure-boot-off", "trixie", "grub", "blank", False, has_log=False,
         arch="arm64"),
    Case("aa64-d12-grub-ms", "bookworm", "grub", "ms", True, has_log=False, arch="arm64"),
]
BY_ID = {c.id: c for c in CASES}


@dataclass
class Boot:
    prediction: Prediction
    store: Path
    out: Path  # capture.sh's OUTDIR: pcrs.json, eventlog.bin (has_log), serial.log
    tpm: dict[str, dict[str, str]]


def _capture(case: str, out: Path, **env: str) -> int:
    proc = subprocess.run(["bash", str(TCG / "capture.sh"), case, str(out)],
                          capture_output=True, text=True, timeout=scaled_timeout(900),
                          check=False, env={**os.environ, **env})
    assert proc.returncode in (0, 3), proc.stderr[-2000:]
    return proc.returncode


def _store(kind: str, ovmf: Path, tmp: Path) -> Path:
    out = tmp / f"{kind}.fd"
    if ovmf.name == "AAVMF":
        shutil.copyfile(ovmf / {"blank": "AAVMF_VARS.fd", "ms": "AAVMF_VARS.ms.fd"}[kind], out)
    elif kind == "blank":
        shutil.copyfile(ovmf / "OVMF_VARS_4M.fd", out)
    elif kind == "ms":
        shutil.copyfile(ovmf / "OVMF_VARS_4M.ms.fd", out)
    elif kind == "2023-only":
        fw_vars("enroll", ovmf / "OVMF_VARS_4M.fd", "--pk", "generate:fwtools pcr e2e PK",
                "--microsoft", "--microsoft-kek", "2023", "--microsoft-db",
                "windows-2023,uefi-2023", "-o", out)
    elif kind == "ms-moklist":
        der = subprocess.run(["openssl", "x509", "-in", str(SAMPLE / "test-db.pem"),
                              "-outform", "DER"], check=True, capture_output=True).stdout
        entry = uuid.UUID(int=0).bytes_le + der
        esl = tmp / "moklist.esl"
        esl.write_bytes(guids.CERT_X509.bytes_le
                        + struct.pack("<III", 28 + len(entry), 0, len(entry)) + entry)
        fw_vars("set", ovmf / "OVMF_VARS_4M.ms.fd", "MokList", "--guid", str(guids.SHIM_LOCK),
                "--attributes", "NV,BS", "--file", esl, "-o", out)
    elif kind == "db-test-ca":
        fw_vars("enroll", ovmf / "OVMF_VARS_4M.fd", "--pk", "generate:fwtools pcr e2e PK",
                "--microsoft", "--microsoft-db", "uefi-2011", "--db", SAMPLE / "test-ca.der",
                "-o", out)
    else:
        raise ValueError(kind)
    return out


def _grub_disk(tmp: Path, shim: Path, grub: Path, kernel: Path, initrd: Path,
               arch: str) -> Path:
    """capture.sh's shim-sb layout: a GPT disk (fixed GUIDs) whose FAT ESP holds shim as
    the removable loader, GRUB beside it, grub.cfg in \\EFI\\debian, the kernel and initrd."""
    disk = blank(tmp / "grub-disk.img", 64 * MIB)
    run("sgdisk", "-U", "11111111-2222-3333-4444-555555555555", "-n", "1:2048:0",
        "-t", "1:ef00", "-u", "1:66666666-7777-8888-9999-aaaaaaaaaaaa", "-c", "1:ESP", disk)
    esp = tmp / "grub-esp"
    (esp / "EFI" / "BOOT").mkdir(parents=True)
    (esp / "EFI" / "debian").mkdir(parents=True)
    removable, second, console = EFI[arch]
    shutil.copyfile(shim, esp / "EFI" / "BOOT" / removable)
    shutil.copyfile(grub, esp / "EFI" / "BOOT" / second)
    (esp / "EFI" / "debian" / "grub.cfg").write_text(GRUB_CFG.format(console=console))
    shutil.copyfile(kernel, esp / "vmlinuz")
    shutil.copyfile(initrd, esp / "initrd.img")
    make_fat(disk, 2048 * SECTOR, 60 * MIB, 16, esp)
    return disk


def _uki(corpus: Corpus, tmp: Path, initrd: Path, signed: bool) -> Path:
    from corpus.uki import build_uki_with_objcopy

    parts = {".osrel": tmp / "osrel", ".cmdline": tmp / "cmdline", ".initrd": initrd,
             ".linux": corpus.kernel("trixie", "amd64")}
    parts[".osrel"].write_bytes(b'ID=debian\nNAME="Debian GNU/Linux"\n')
    parts[".cmdline"].write_text(UKI_CMDLINE)
    uki = tmp / "uki.efi"
    build_uki_with_objcopy(corpus.systemd_boot("trixie", "linuxx64.efi.stub"), parts, uki)
    if signed:
        uki = sbsign(SAMPLE / "keys" / "test-db.key", SAMPLE / "test-db.pem", uki,
                     tmp / "uki-signed.efi")
    return uki


def boot_case(case: Case, corpus: Corpus, tmp: Path) -> Boot:
    """Build, predict (before booting), boot, capture."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or not Path("/bin/busybox").exists():
        unavailable(f"e2e: {', '.join(missing) or 'busybox'} not installed (apt-get install "
                    "qemu-system-x86 swtpm busybox-static gdisk dosfstools mtools binutils "
                    "sbsigntool)")
    if case.arch == "arm64":
        ovmf = corpus.package_dir(case.suite, "all", "qemu-efi-aarch64") / "usr/share/AAVMF"
        code = ovmf / "AAVMF_CODE.secboot.fd"
        code = code if code.exists() else ovmf / "AAVMF_CODE.fd"  # Debian 12: one build
        corpus.package_dir("bookworm", "arm64", "busybox-static")  # capture.sh's initramfs
        absent = [t for t in ("qemu-system-aarch64", "swtpm_ioctl", "tpm2_pcrread")
                  if shutil.which(t) is None]
        if absent:
            unavailable(f"e2e: {', '.join(absent)} not installed (apt-get install "
                        "qemu-system-arm swtpm-tools tpm2-tools)")
    else:
        ovmf = corpus.ovmf_dir(case.suite)
        code = ovmf / "OVMF_CODE_4M.secboot.fd"
    _capture("initrd", tmp, ARCH=case.arch)
    initrd = tmp / "initrd.img"
    store = _store(case.store, ovmf, tmp)
    grub_cfg: str | None = None
    if case.layout == "grub":
        shim, grub, kernel = corpus.boot_chain(case.suite, case.arch)
        disk = _grub_disk(tmp, shim, grub, kernel, initrd, case.arch)
        chain = [shim, grub, kernel]
        grub_cfg = GRUB_CFG.format(console=EFI[case.arch][2])
    elif case.layout in ("sdboot", "sdboot-signed"):
        signed = case.layout == "sdboot-signed"
        (tmp / "uki").mkdir()
        uki = _uki(corpus, tmp / "uki", initrd, signed)
        sd_boot = corpus.systemd_boot("trixie")
        if signed:
            sd_boot = sbsign(SAMPLE / "keys" / "test-db.key", SAMPLE / "test-db.pem", sd_boot,
                             tmp / "uki" / "systemd-bootx64.efi")
        disk = build_sdboot_disk(tmp, sd_boot, corpus.kernel("trixie", "amd64"), uki,
                                 default="debian-uki*")
        chain = [sd_boot, uki]
    else:
        (tmp / "uki").mkdir()
        uki = _uki(corpus, tmp / "uki", initrd, signed=True)
        shim = corpus.shim("trixie", "amd64")
        sd_boot = corpus.systemd_boot("trixie", signed=True)
        disk = build_shim_sdboot_disk(tmp, shim, sd_boot, uki)
        chain = [shim, sd_boot, uki]
    prediction = predict(MachineInput(load_store(store), [str(p) for p in chain], BANKS,
                                      disk=str(disk), grub_cfg=grub_cfg,
                                      initrd=str(initrd) if grub_cfg else None))
    assert prediction.secure_boot is case.secure_boot
    out = tmp / "boot"
    status = _capture("disk", out, DISK=str(disk), VARS=str(store), SUITE=case.suite,
                      CODE=str(code), ARCH=case.arch)
    assert (status == 0) is case.has_log, (out / "serial.log").read_text()[-3000:]
    return Boot(prediction, store, out, json.loads((out / "pcrs.json").read_text()))


_BOOTS: dict[str, Boot] = {}


def booted(case_id: str, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Boot:
    """One boot per case and session (the store-change test reuses two)."""
    if case_id not in _BOOTS:
        _BOOTS[case_id] = boot_case(BY_ID[case_id], corpus, tmp_path_factory.mktemp(case_id))
    return _BOOTS[case_id]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_prediction_equals_the_tpm(case: Case, corpus: Corpus,
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    boot = booted(case.id, corpus, tmp_path_factory)
    p = boot.prediction
    expected = {2, 3, 4, 5, 6, 7, 8, 9, 14}
    if case.layout != "grub":
        expected |= {11, 12}
    if case.id == "aa64-d12-grub-ms":  # arm64 GRUB 2.06: PCR 8 and 9 not modelled
        expected -= {8, 9}
        assert {8, 9} <= set(p.not_predicted)
    assert expected <= set(p.predicted), p.not_predicted
    for bank in BANKS:
        for pcr in p.predicted:
            assert p.banks[bank][pcr].hex() == boot.tpm[bank][str(pcr)], f"{bank} PCR {pcr}"
    authorities = [e for e in p.events if e.event_type == EV_EFI_VARIABLE_AUTHORITY]
    if not case.secure_boot:  # shim's SbatLevel, nothing verified
        assert [e.description.split(":")[0] for e in authorities] == (
            ["SbatLevel"] if "shim" in p.stages[0][1] else [])
    elif case.store == "2023-only":
        assert "Microsoft UEFI CA 2023" in authorities[0].description
    elif case.store in ("ms", "ms-moklist"):
        assert "Microsoft Corporation UEFI CA 2011" in authorities[0].description
    if not case.has_log:
        return
    log_path = boot.out / "eventlog.bin"
    divergence = compare_with_log(p, load_event_log(log_path))
    assert divergence is None, divergence.explanation
    result = CliRunner().invoke(cli, ["log", "--json", str(log_path), "--pcrs",
                                      str(boot.out / "pcrs.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout[-2000:]
    summary = json.loads(result.stdout)["summary"]
    assert summary["mismatches"] == 0 and summary["matches"] > 0


def test_store_change_diff_equals_the_tpm_difference(
        corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Debian 13's chain on the Microsoft 2011 store and on a 2023-only store: the PCRs the
    predicted diff says change (and their old and new values) are the ones whose TPM values
    differ between the two boots."""
    old = booted("d13-grub-ms", corpus, tmp_path_factory)
    new = booted("d13-grub-2023-only", corpus, tmp_path_factory)
    for bank in ("sha1", "sha256"):
        changes = diff_predictions(old.prediction, new.prediction, bank)
        assert [c.pcr for c in changes] == sorted(set(old.prediction.predicted)
                                                  & set(new.prediction.predicted))
        for c in changes:
            tpm_old, tpm_new = old.tpm[bank][str(c.pcr)], new.tpm[bank][str(c.pcr)]
            assert (c.old.hex(), c.new.hex()) == (tpm_old, tpm_new), f"{bank} PCR {c.pcr}"
            assert c.changed is (tpm_old != tpm_new)
        # PCR 9 too: each boot packs its own initramfs (busybox cpio records inode numbers
        # and times), and the prediction hashes the one each boot got
        assert [c.pcr for c in changes if c.changed] == [7, 9]
    # the events that change PCR 7: KEK, db (and PK) and the db entry that verified shim
    changed = next(c for c in diff_predictions(old.prediction, new.prediction) if c.pcr == 7)
    assert any("UEFI CA 2023" in e.description for e in changed.added
               if e.event_type == EV_EFI_VARIABLE_AUTHORITY)


@pytest.mark.parametrize("case", [c for c in CASES if c.has_log],
                         ids=[c.id for c in CASES if c.has_log])
def test_virt_fw_measure_store_part(case: Case, corpus: Corpus,
                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    """virt-fw-measure --vars on the booted store: PCR 7 through the separator as the TPM's
    log has it when PK, KEK, db and dbx exist; it leaves out the event edk2 logs (with no
    data) for each absent one (tests/machine/test_measure_virt_fw.py, docs/fw-pcr.md)."""
    from test_measure_virt_fw import logged, records, virt_fw_measure

    boot = booted(case.id, corpus, tmp_path_factory)
    real = logged(load_event_log(boot.out / "eventlog.bin"), 7, through_separator=True)
    theirs = records(virt_fw_measure("--vars", str(boot.store),
                                     *([] if case.secure_boot else ["--no-sb"])))
    # real: SecureBoot, PK, KEK, db, dbx, separator; virt-fw-measure drops the absent ones
    # (a blank store has none; fw-vars enroll without --dbx leaves dbx out)
    store = load_store(boot.store)
    names = [("PK", guids.EFI_GLOBAL_VARIABLE), ("KEK", guids.EFI_GLOBAL_VARIABLE),
             ("db", guids.EFI_IMAGE_SECURITY_DATABASE),
             ("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)]
    present = [store.get(name, guid) is not None for name, guid in names]
    assert len(real) == 6
    assert theirs == [real[0], *(r for r, p in zip(real[1:5], present, strict=True) if p),
                      real[5]]
    assert (theirs == real) is all(present)
