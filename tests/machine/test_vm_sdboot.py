"""systemd-boot layouts: loader.conf's default picks a type 1 entry or a UKI in EFI/Linux."""

from __future__ import annotations

from pathlib import Path

import pytest
from vm_builder import build_sdboot_disk

from fwtools.formats.disk import open_disk
from fwtools.machine.discover import discover
from fwtools.machine.vm import check_vm

UKI = Path(__file__).resolve().parents[2] / "testdata" / "uki" / "uki.efi"


@pytest.mark.parametrize(("default", "expect"), [
    ("debian-6*", "partition 1:\\vmlinuz-"),
    ("debian-uki*", "partition 1:\\EFI\\Linux\\debian-uki.efi"),
])
def test_loader_conf_default(corpus: object, tmp_path: Path, default: str, expect: str) -> None:
    sd = corpus.systemd_boot("trixie")  # type: ignore[attr-defined]
    kernel = corpus.kernel("trixie", "amd64")  # type: ignore[attr-defined]
    disk = build_sdboot_disk(tmp_path, sd, kernel, UKI, default=default)
    with open_disk(disk) as d:
        found = discover(d, None, "x64")
    assert [s.loaded_by for s in found.stages] == ["firmware", "systemd-boot"]
    assert found.stages[0].path == "partition 1:\\EFI\\BOOT\\BOOTX64.EFI"
    assert found.stages[1].path.startswith(expect)
    assert repr(default) in found.stages[1].how


def test_sdboot_type1_entry_secure_boot_off_and_on(corpus: object, tmp_path: Path) -> None:
    sd = corpus.systemd_boot("trixie")  # type: ignore[attr-defined]
    kernel = corpus.kernel("trixie", "amd64")  # type: ignore[attr-defined]
    disk = build_sdboot_disk(tmp_path, sd, kernel, UKI, default=None)
    ovmf = corpus.ovmf_dir("trixie")  # type: ignore[attr-defined]
    code = str(ovmf / "OVMF_CODE_4M.secboot.fd")
    r = check_vm(code, str(ovmf / "OVMF_VARS_4M.fd"), disk=str(disk))
    # no default: the entries sort newest first by name, and the .conf wins over the UKI name
    assert [s.family for s in r.stages][:1] == ["systemd-boot"]
    assert r.verdict in ("boots", "faults")
    # unsigned systemd-boot under Microsoft's db: the firmware refuses it
    r = check_vm(code, str(ovmf / "OVMF_VARS_4M.ms.fd"), disk=str(disk))
    assert r.verdict == "refused" and r.refusal is not None
    assert (r.refusal.stage, r.refusal.by) == (1, "firmware")
    assert "unsigned" in r.refusal.reason


def test_shim_then_systemd_boot_then_uki(corpus: object, tmp_path: Path) -> None:
    """shim loads systemd-boot (SBAT checked, trusted here by its hash in MokList);
    systemd-boot's LoadImage of the UKI goes through shim's hook (MokList hash too)."""
    from vm_builder import build_shim_sdboot_disk, fw_vars

    from fwtools.formats.efi import guids
    from fwtools.formats.efi.siglist import SignatureDatabase
    from fwtools.formats.pe.authenticode import authenticode_digests
    from fwtools.formats.pe.image import PeImage

    shim = corpus.shim("trixie", "amd64")  # type: ignore[attr-defined]
    sd = corpus.systemd_boot("trixie")  # type: ignore[attr-defined]
    disk = build_shim_sdboot_disk(tmp_path, shim, sd, UKI)
    ovmf = corpus.ovmf_dir("trixie")  # type: ignore[attr-defined]
    code = str(ovmf / "OVMF_CODE_4M.secboot.fd")

    r = check_vm(code, str(ovmf / "OVMF_VARS_4M.ms.fd"), disk=str(disk))
    assert [(s.family, s.loaded_by) for s in r.stages][:2] == [("shim", "firmware"),
                                                             ("systemd-boot", "shim")]
    assert r.verdict == "refused" and r.refusal is not None
    assert (r.refusal.stage, r.refusal.by) == (2, "shim")  # unsigned systemd-boot
    assert r.stages[1].sbat is not None and r.stages[1].sbat.passed

    db = SignatureDatabase()
    for p in (sd, UKI):
        db = db.add_hash(authenticode_digests(PeImage(p.read_bytes()), ["sha256"])["sha256"],
                         guids.SHIM_LOCK)
    (tmp_path / "mok.esl").write_bytes(db.to_bytes())
    store = tmp_path / "mok.fd"
    fw_vars("set", ovmf / "OVMF_VARS_4M.ms.fd", "MokList", "--guid", "shim", "--attributes",
            "NV,BS", "--file", tmp_path / "mok.esl", "-o", store)
    r = check_vm(code, str(store), disk=str(disk))
    assert r.refusal is None or r.refusal.stage > 3, r.refusal
    assert [s.authority.kind for s in r.stages if s.authority] == \
        ["db-certificate", "mok-hash", "mok-hash"]
    assert r.stages[2].loaded_by == "systemd-boot" and r.stages[2].decision is not None
    assert r.stages[2].decision.by == "shim"  # through shim's LoadImage hook
