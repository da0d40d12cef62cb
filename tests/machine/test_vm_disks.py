"""``fw-check vm`` on real Debian 12 and 13 chains: disks built from the corpus (vm_builder),
paired with stores that boot, refuse at the firmware, at shim (dbx, SbatLevel), and with
test-signed kernels trusted through db or MokList."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from corpus.params import need_tool
from vm_builder import build_debian_disk, fw_vars, sbsign

from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import SignatureDatabase
from fwtools.machine.vm import check_vm

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "testdata" / "sample"
SUITES = ("bookworm", "trixie")


@pytest.fixture(scope="module", params=SUITES)
def machine(request: pytest.FixtureRequest, corpus: object,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    suite = request.param
    shim, grub, kernel = corpus.boot_chain(suite, "amd64")  # type: ignore[attr-defined]
    tmp = tmp_path_factory.mktemp(f"vm-{suite}")
    disk = build_debian_disk(tmp, shim, grub, kernel, fallback=grub)
    ovmf = corpus.ovmf_dir(suite)  # type: ignore[attr-defined]
    return {"suite": Path(suite), "tmp": tmp, "disk": disk, "shim": shim, "grub": grub,
            "kernel": kernel, "code": ovmf / "OVMF_CODE_4M.secboot.fd",
            "ms": ovmf / "OVMF_VARS_4M.ms.fd", "blank": ovmf / "OVMF_VARS_4M.fd"}


def _store(m: dict[str, Path], name: str, *args: str | Path) -> Path:
    out = m["tmp"] / f"{name}.fd"
    if not out.exists():
        fw_vars("enroll", m["blank"], "--pk", "generate:fwtools vm test PK", "--timestamp", "0",
                *args, "-o", out)
    return out


def test_ms_store_boots_from_the_disk(machine: dict[str, Path]) -> None:
    r = check_vm(str(machine["code"]), str(machine["ms"]), disk=str(machine["disk"]))
    assert r.verdict == "boots", r.refusal
    assert r.secure_boot.enabled
    assert r.firmware.basis == "known build"
    assert [s.family for s in r.stages] == ["shim", "grub", "linux"]
    # firmware uses the removable path (no Boot#### in the template); shim runs the fallback
    # (fbx64.efi beside BOOTX64.EFI), which boots \EFI\debian\shimx64.efi from BOOTX64.CSV
    assert r.stages[0].path == "partition 1:\\EFI\\debian\\shimx64.efi"
    assert r.stages[1].path == "partition 1:\\EFI\\debian\\grubx64.efi"
    assert r.stages[2].path == f"partition 2:/boot/{machine['kernel'].name}"
    assert "entry 'Debian GNU/Linux'" in r.stages[2].how
    kinds = [s.authority.kind for s in r.stages if s.authority]
    assert kinds == ["db-certificate", "shim-vendor-certificate", "shim-vendor-certificate"]
    assert "UEFI CA 2011" in (r.stages[0].authority.subject or "")  # type: ignore[union-attr]
    assert r.stages[1].authority.subject == "CN=Debian Secure Boot CA"  # type: ignore[union-attr]
    assert r.refusal is None


def test_boot_entry_in_store_is_followed(machine: dict[str, Path]) -> None:
    from vm_builder import ESP_PARTUUID

    from fwtools.formats.varstore.bootentries import add_entry
    from fwtools.formats.varstore.storeio import load_store, store_bytes

    loaded = load_store(machine["ms"])
    st = loaded.as_store()
    add_entry(st, "debian", "\\EFI\\debian\\shimx64.efi", partuuid=ESP_PARTUUID, start=2048,
              size=16 << 11)
    out = machine["tmp"] / "with-entry.fd"
    out.write_bytes(store_bytes(st, "edk2-raw"))
    r = check_vm(str(machine["code"]), str(out), disk=str(machine["disk"]))
    assert r.verdict == "boots"
    assert r.stages[0].how.startswith("Boot0000 in BootOrder") or "BootOrder" in r.stages[0].how
    assert r.stages[0].path == "partition 1:\\EFI\\debian\\shimx64.efi"


def test_2023_only_store(machine: dict[str, Path]) -> None:
    """Debian's shim 16.1 is signed by the 2011 and the 2023 UEFI CA: a db with only the 2023
    CAs lets it run (through the 2023 signature)."""
    store = _store(machine, "ms2023", "--microsoft", "--microsoft-kek", "2023",
                   "--microsoft-db", "windows-2023,uefi-2023")
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]))
    sigs = _signers(machine["shim"])
    if any("2023" in s for s in sigs):
        assert r.verdict == "boots"
        assert "UEFI CA 2023" in (r.stages[0].authority.subject or "")  # type: ignore[union-attr]
    else:
        assert r.verdict == "refused" and r.refusal is not None and r.refusal.stage == 1


def _signers(path: Path) -> list[str]:
    from fwtools.crypto.authenticode import image_signatures
    from fwtools.formats.pe.image import PeImage

    return [s.issuer for s in image_signatures(PeImage(path.read_bytes(), str(path)))]


def test_windows_only_db_refuses_shim(machine: dict[str, Path]) -> None:
    store = _store(machine, "windows-only", "--microsoft", "--microsoft-db", "windows-2011")
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]))
    assert r.verdict == "refused"
    assert r.refusal is not None
    assert (r.refusal.stage, r.refusal.by) == (1, "firmware")
    assert r.refusal.message.startswith("BdsDxe: failed to load ")
    assert r.refusal.message.endswith(": Access Denied")
    assert "does not chain to a db certificate" in r.refusal.reason
    assert r.replay is None


def test_dbx_revoking_shim(machine: dict[str, Path]) -> None:
    from fwtools.formats.pe.authenticode import authenticode_digests
    from fwtools.formats.pe.image import PeImage

    digest = authenticode_digests(PeImage(machine["shim"].read_bytes()), ["sha256"])["sha256"]
    esl = machine["tmp"] / "dbx-shim.esl"
    esl.write_bytes(SignatureDatabase().add_hash(digest, guids.MICROSOFT).to_bytes())
    store = _store(machine, "dbx-shim", "--microsoft", "--dbx", esl)
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]))
    assert r.verdict == "refused"
    assert r.refusal is not None and (r.refusal.stage, r.refusal.by) == (1, "firmware")
    assert f"dbx sha256 {digest.hex()}" in r.refusal.reason or "in dbx" in r.refusal.reason


def test_sbat_level_revoking_grub(machine: dict[str, Path]) -> None:
    store = machine["tmp"] / "sbat-grub.fd"
    if not store.exists():
        fw_vars("sbat-level", machine["ms"], "--level", "sbat,1,2099010100\ngrub,99\n",
                "-o", store)
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]))
    assert r.verdict == "refused"
    assert r.refusal is not None and (r.refusal.stage, r.refusal.by) == (2, "shim")
    # shim 16.1 (both suites) prints EFI_SECURITY_VIOLATION as "Security Violation"
    assert r.refusal.message == "Verification failed: (0x1A) Security Violation"
    sbat = r.stages[1].sbat
    assert sbat is not None and not sbat.passed and sbat.level == "2099010100"
    assert sbat.failed is not None and sbat.failed["component"] == "grub"
    assert sbat.failed["minimum"] == 99
    # shim itself passes its self-check: the level does not name shim
    assert r.stages[0].sbat is not None and r.stages[0].sbat.passed


def test_sbat_level_revoking_shim_self_check(machine: dict[str, Path]) -> None:
    store = machine["tmp"] / "sbat-shim.fd"
    if not store.exists():
        fw_vars("sbat-level", machine["ms"], "--level", "sbat,1,2099010100\nshim,99\n",
                "-o", store)
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]))
    assert r.verdict == "refused"
    assert r.refusal is not None and (r.refusal.stage, r.refusal.by) == (1, "shim")
    assert "SBAT self-check failed" in r.refusal.message


def test_older_sbat_level_is_replaced_by_shims(machine: dict[str, Path]) -> None:
    """An SbatLevel older than shim's built-in automatic level does not apply: shim
    replaces it (preserve_sbat_uefi_variable), so a grub,99 from 2020 revokes nothing."""
    store = machine["tmp"] / "sbat-old.fd"
    if not store.exists():
        fw_vars("sbat-level", machine["ms"], "--level", "sbat,1,2020010100\ngrub,99\n",
                "-o", store)
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]))
    assert r.verdict == "boots"
    assert "older" in (r.stages[1].sbat.source if r.stages[1].sbat else "")


def test_secure_boot_off(machine: dict[str, Path]) -> None:
    r = check_vm(str(machine["code"]), str(machine["blank"]), disk=str(machine["disk"]))
    assert r.verdict == "boots"
    assert not r.secure_boot.enabled and "no PK" in r.secure_boot.reason
    assert {s.authority.kind for s in r.stages if s.authority} == {"secure-boot-off"}


def test_no_secboot_build_has_secure_boot_off(machine: dict[str, Path], corpus: object) -> None:
    code = machine["code"].with_name("OVMF_CODE_4M.fd")
    r = check_vm(str(code), str(machine["ms"]), disk=str(machine["disk"]))
    assert not r.secure_boot.enabled and "no Secure Boot support" in r.secure_boot.reason


@pytest.fixture(scope="module")
def signed_kernel(machine: dict[str, Path]) -> Path:
    return sbsign(SAMPLE / "keys" / "test-db.key", SAMPLE / "test-db.pem",
                  _unsigned_kernel(machine), machine["tmp"] / "vmlinuz-test-signed")


def _unsigned_kernel(m: dict[str, Path]) -> Path:
    out = m["tmp"] / "vmlinuz-unsigned"
    need_tool("sbattach")
    if not out.exists():
        shutil.copyfile(m["kernel"], out)
        subprocess.run(["sbattach", "--remove", str(out)], check=True, capture_output=True)
    return out


def test_test_signed_kernel_refused_then_trusted_by_moklist(
        machine: dict[str, Path], signed_kernel: Path) -> None:
    r = check_vm(str(machine["code"]), str(machine["ms"]), disk=str(machine["disk"]),
                 kernel=str(signed_kernel))
    assert r.verdict == "refused"
    assert r.refusal is not None and (r.refusal.stage, r.refusal.by) == (3, "grub")
    assert r.refusal.message.startswith("error: bad shim signature.")
    assert r.stages[2].how == "--kernel"

    mok = machine["tmp"] / "mok.esl"
    mok.write_bytes(SignatureDatabase().add_certificate(
        (SAMPLE / "test-ca.der").read_bytes(), guids.SHIM_LOCK).to_bytes())
    store = machine["tmp"] / "mok.fd"
    if not store.exists():
        fw_vars("set", machine["ms"], "MokList", "--guid", "shim", "--attributes", "NV,BS",
                "--file", mok, "-o", store)
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]),
                 kernel=str(signed_kernel))
    assert r.verdict == "boots", r.refusal
    auth = r.stages[2].authority
    assert auth is not None and auth.kind == "mok-certificate"
    assert auth.subject is not None and "fwtools test CA" in auth.subject


def test_test_ca_in_db_trusts_kernel(machine: dict[str, Path], signed_kernel: Path) -> None:
    store = _store(machine, "db-test-ca", "--microsoft", "--microsoft-db", "uefi-2011",
                   "--db", SAMPLE / "test-ca.der")
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]),
                 kernel=str(signed_kernel))
    assert r.verdict == "boots", r.refusal
    assert r.stages[2].authority is not None
    assert r.stages[2].authority.kind == "db-certificate"


def test_cli_json_and_exit_codes(machine: dict[str, Path], tmp_path: Path) -> None:
    sarif = tmp_path / "vm.sarif"
    store = _store(machine, "windows-only", "--microsoft", "--microsoft-db", "windows-2011")
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from fwtools.cli.fw_check import main; "
         "sys.argv[0] = 'fw-check'; main()", "vm", "--firmware", str(machine["code"]),
         "--vars", str(store), "--disk", str(machine["disk"]), "--json", "--sarif", str(sarif)],
        capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "fwtools.fw-check.vm/1"
    assert doc["verdict"] == "refused"
    assert doc["refusal"]["stage"] == 1 and doc["refusal"]["by"] == "firmware"
    assert doc["firmware"]["basis"] == "known build"
    assert doc["firmware"]["settings"]["nx_policy"]["basis"] == "known build"
    assert doc["secure_boot"]["state"] == "on"
    assert doc["stages"][0]["path"] == "partition 1:\\EFI\\debian\\shimx64.efi"
    assert doc["faults"] == []
    assert json.loads(sarif.read_text())["runs"][0]["results"][0]["ruleId"] == "vm-refused"

    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from fwtools.cli.fw_check import main; "
         "sys.argv[0] = 'fw-check'; main()", "vm", "--firmware", str(machine["code"]),
         "--vars", str(machine["ms"]), "--disk", str(machine["disk"])],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "verdict: boots" in proc.stdout


def test_secure_boot_enable_zero(machine: dict[str, Path]) -> None:
    store = _store(machine, "sb-disabled", "--microsoft", "--no-secure-boot")
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]))
    assert not r.secure_boot.enabled
    assert r.secure_boot.reason == "PK enrolled but SecureBootEnable is 0"
    assert r.verdict == "boots"


def test_mok_sb_state_disables_shim_verification(machine: dict[str, Path],
                                                 signed_kernel: Path) -> None:
    store = machine["tmp"] / "moksbstate.fd"
    if not store.exists():
        fw_vars("set", machine["ms"], "MokSBState", "--guid", "shim", "--attributes", "NV,BS",
                "--uint8", "1", "-o", store)
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]),
                 kernel=str(signed_kernel))
    assert r.verdict == "boots"
    assert r.stages[0].authority is not None and r.stages[0].authority.kind == "db-certificate"
    assert r.stages[2].authority is not None
    assert r.stages[2].authority.kind == "secure-boot-off"


def test_libvirt_domain(machine: dict[str, Path], tmp_path: Path) -> None:
    xml = tmp_path / "vm.xml"
    xml.write_text(f"""<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>deb</name>
  <os firmware='efi'>
    <type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' secure='yes' type='pflash'>{machine['code']}</loader>
    <nvram>{machine['ms']}</nvram>
  </os>
  <devices>
    <disk type='file' device='cdrom'><source file='/nonexistent.iso'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{machine['disk']}'/><target dev='vda' bus='virtio'/></disk>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-fw_cfg'/>
    <qemu:arg value='name=opt/org.tianocore/UninstallMemAttrProtocol,string=n'/>
  </qemu:commandline>
</domain>
""")
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from fwtools.cli.fw_check import main; "
         "sys.argv[0] = 'fw-check'; main()", "vm", "--libvirt-domain", str(xml), "--json"],
        capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["disk"] == str(machine["disk"])
    assert doc["vars"] == str(machine["ms"])
    mat = doc["firmware"]["settings"]["memory_attribute_protocol"]
    assert mat == {"value": True, "basis": "override"}
    assert [s["family"] for s in doc["stages"]] == ["shim", "grub", "linux"]


def test_strict_nx_lab_firmware(machine: dict[str, Path], signed_kernel: Path) -> None:
    """On the strict-NX lab build, Debian 12's GRUB 2.06 faults (W^X) when it jumps to the
    kernel; Debian 13's chain boots. A kernel GRUB refuses is never jumped to: refused."""
    r = check_vm("debian13-ovmf-lab-strict", str(machine["ms"]), disk=str(machine["disk"]))
    assert r.firmware.basis == "override"
    if str(machine["suite"]) == "bookworm":
        assert r.verdict == "faults"
        assert r.replay is not None and r.replay.faults[0].stage == "grub"
        assert r.refusal is None
        r = check_vm("debian13-ovmf-lab-strict", str(machine["ms"]),
                     disk=str(machine["disk"]), kernel=str(signed_kernel))
        assert r.verdict == "refused"
        assert r.refusal is not None and (r.refusal.stage, r.refusal.by) == (3, "grub")
        assert r.replay is not None and r.replay.faults == []
    else:
        assert r.verdict == "boots"
        assert [s.model for s in r.stages] == [s.model for s in r.stages if s.model]


def test_qcow2_disk(machine: dict[str, Path]) -> None:
    from disk_builder import to_qcow2

    qcow = machine["tmp"] / "vm.qcow2"
    if not qcow.exists():
        to_qcow2(machine["disk"])
    r = check_vm(str(machine["code"]), str(machine["ms"]), disk=str(qcow))
    assert r.verdict == "boots"
    assert [s.family for s in r.stages] == ["shim", "grub", "linux"]


def test_removable_path_without_fallback(machine: dict[str, Path], tmp_path: Path) -> None:
    """Without fbx64.efi shim loads grubx64.efi from \\EFI\\BOOT; Debian's GRUB reads the
    configuration under its built-in prefix /EFI/debian. Without grubx64.efi there, shim
    cannot open its second stage and the boot stops."""
    disk = build_debian_disk(tmp_path, machine["shim"], machine["grub"], machine["kernel"])
    r = check_vm(str(machine["code"]), str(machine["ms"]), disk=str(disk))
    assert r.verdict == "boots"
    assert [s.path for s in r.stages][:2] == ["partition 1:\\EFI\\BOOT\\BOOTX64.EFI",
                                              "partition 1:\\EFI\\BOOT\\grubx64.efi"]
    assert "partition 1:\\EFI\\debian\\grub.cfg" in r.stages[2].how

    other = tmp_path / "nogrub"
    other.mkdir()
    disk = build_debian_disk(other, machine["shim"], machine["grub"], machine["kernel"],
                             removable_grub=False)
    r = check_vm(str(machine["code"]), str(machine["ms"]), disk=str(disk))
    assert r.verdict == "refused"
    assert r.refusal is not None and (r.refusal.stage, r.refusal.by) == (2, "shim")
    assert r.refusal.message == "Failed to open \\EFI\\BOOT\\grubx64.efi - Not Found"
    assert len(r.stages) == 1


def test_hash_authorities(machine: dict[str, Path], corpus: object) -> None:
    """An unsigned kernel whose hash is in MokList (mok-hash); an unsigned systemd-boot whose
    hash is in db (db-hash)."""
    from fwtools.formats.pe.authenticode import authenticode_digests
    from fwtools.formats.pe.image import PeImage

    unsigned = _unsigned_kernel(machine)
    digest = authenticode_digests(PeImage(unsigned.read_bytes()), ["sha256"])["sha256"]
    esl = machine["tmp"] / "mok-hash.esl"
    esl.write_bytes(SignatureDatabase().add_hash(digest, guids.SHIM_LOCK).to_bytes())
    store = machine["tmp"] / "mok-hash.fd"
    if not store.exists():
        fw_vars("set", machine["ms"], "MokList", "--guid", "shim", "--attributes", "NV,BS",
                "--file", esl, "-o", store)
    r = check_vm(str(machine["code"]), str(store), disk=str(machine["disk"]),
                 kernel=str(unsigned))
    assert r.verdict == "boots", r.refusal
    auth = r.stages[2].authority
    assert auth is not None and (auth.kind, auth.sha256) == ("mok-hash", digest.hex())

    sd = corpus.systemd_boot("trixie")  # type: ignore[attr-defined]
    sd_digest = authenticode_digests(PeImage(sd.read_bytes()), ["sha256"])["sha256"]
    db = machine["tmp"] / "db-hash.esl"
    db.write_bytes(SignatureDatabase().add_hash(sd_digest, guids.MICROSOFT).to_bytes())
    store = _store(machine, "db-hash", "--microsoft", "--db", db)
    r = check_vm(str(machine["code"]), str(store), chain=[str(sd)])
    assert r.refusal is None
    auth = r.stages[0].authority
    assert auth is not None and (auth.kind, auth.sha256) == ("db-hash", sd_digest.hex())


def test_boot_option_names_shims_second_stage(machine: dict[str, Path]) -> None:
    from vm_builder import ESP_PARTUUID

    from fwtools.formats.varstore.bootentries import add_entry
    from fwtools.formats.varstore.storeio import load_store, store_bytes

    st = load_store(machine["ms"]).as_store()
    add_entry(st, "debian", "\\EFI\\debian\\shimx64.efi", partuuid=ESP_PARTUUID, start=2048,
              size=16 << 11, optional_data="\\EFI\\BOOT\\grubx64.efi\0".encode("utf-16-le"))
    out = machine["tmp"] / "with-arg.fd"
    out.write_bytes(store_bytes(st, "edk2-raw"))
    r = check_vm(str(machine["code"]), str(out), disk=str(machine["disk"]))
    assert r.verdict == "boots"
    assert r.stages[1].path == "partition 1:\\EFI\\BOOT\\grubx64.efi"
    assert "boot option's argument" in r.stages[1].how
