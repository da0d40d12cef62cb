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
