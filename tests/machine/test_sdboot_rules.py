"""systemd-boot's entry rules (fwtools/machine/sdboot.py): which files are entries, their
order, and which default wins, on Debian 13's systemd-boot and UKIs built from the corpus
(what real systemd-boot does with the same layouts is tests/e2e/test_vm_qemu.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vm_builder import build_sdboot_disk, fw_vars

from fwtools.machine.sdboot import (
    LOADER_GUID,
    Entry,
    choose,
    sort_entries,
    type1_entry,
    type2_entry,
)
from fwtools.machine.vm import check_vm

UKI = Path(__file__).resolve().parents[2] / "testdata" / "uki" / "uki.efi"


def _e(id_: str, sort_key: str | None = None, version: str | None = None) -> Entry:
    return Entry(id_, "type1", f"\\loader\\entries\\{id_}", sort_key=sort_key,
                 version=version)


def test_order_sort_key_first_then_version_then_id_newest_first() -> None:
    entries = [
        _e("zz-no-key.conf"),
        _e("a-no-key.conf"),
        _e("debian-old.conf", "debian", "6.1.0"),
        _e("debian-a.conf", "debian", "6.12.3"),
        _e("debian-rc.conf", "debian", "6.12.3~rc1"),
        _e("arch.conf", "arch", "1"),
        _e("debian-b.conf", "debian", "6.12.3"),
    ]
    ids = [e.id for e in sort_entries(entries)]
    assert ids == ["arch.conf",  # sort key "arch" < "debian"
                   "debian-b.conf", "debian-a.conf",  # same version: by id, newest first
                   "debian-rc.conf",  # ~rc1 is older than the release
                   "debian-old.conf",
                   "zz-no-key.conf", "a-no-key.conf"]  # no sort key: by id, newest first


def test_version_compares_numbers_not_text() -> None:
    ids = [e.id for e in sort_entries([_e("linux-6.9.conf"), _e("linux-6.10.conf")])]
    assert ids == ["linux-6.10.conf", "linux-6.9.conf"]
    # strverscmp_improved: a numeric segment is newer than an alphabetic one
    ids = [e.id for e in sort_entries([_e("debian-new.conf"), _e("debian-6.conf")])]
    assert ids == ["debian-6.conf", "debian-new.conf"]


def test_type2_needs_osrel_and_linux(corpus: object) -> None:
    uki = type2_entry("uki.efi", "\\EFI\\Linux\\uki.efi", UKI.read_bytes())
    assert uki is not None and uki.kind == "type2" and uki.sort_key
    # systemd-boot itself has .osrel but no .linux; the bare stub has neither
    for name in ("systemd-bootx64.efi", "linuxx64.efi.stub"):
        data = corpus.systemd_boot("trixie", name).read_bytes()  # type: ignore[attr-defined]
        assert type2_entry(name, f"\\EFI\\Linux\\{name}", data) is None
    assert type2_entry("junk.efi", "\\EFI\\Linux\\junk.efi", b"MZ not a PE") is None


def test_type1_fields() -> None:
    e = type1_entry("a.conf", "\\loader\\entries\\a.conf",
                    b"# c\ntitle  A\nversion 2\nsort-key x\nlinux /vmlinuz\nlinux /other\n")
    assert (e.title, e.version, e.sort_key, e.target) == ("A", "2", "x", "\\vmlinuz")


def test_default_glob_then_first() -> None:
    entries = [_e("debian-6.1.conf"), _e("debian-6.12.conf")]
    got = choose(entries, {"default": "debian-6.1.*"}, None)
    assert got is not None and got.entry.id == "debian-6.1.conf"
    got = choose(entries, {"default": "nomatch*"}, None)
    assert got is not None and got.entry.id == "debian-6.12.conf"
    assert "no default matches" in got.how and any("matches no entry" in n for n in got.notes)
    got = choose(entries, {"default": "@saved"}, None)
    assert got is not None and got.entry.id == "debian-6.12.conf"
    assert any("LoaderEntryLastBooted" in n for n in got.notes)
    assert choose([], {}, None) is None


@pytest.mark.parametrize("variable", ["LoaderEntryDefault", "LoaderEntryOneShot"])
def test_loader_entry_variable_beats_loader_conf(corpus: object, tmp_path: Path,
                                                 variable: str) -> None:
    """``bootctl set-default``/``set-oneshot`` in the store win over loader.conf's default."""
    sd = corpus.systemd_boot("trixie")  # type: ignore[attr-defined]
    kernel = corpus.kernel("trixie", "amd64")  # type: ignore[attr-defined]
    disk = build_sdboot_disk(tmp_path, sd, kernel, UKI, default="debian-uki*")
    ovmf = corpus.ovmf_dir("trixie")  # type: ignore[attr-defined]
    value = tmp_path / "value.bin"
    value.write_bytes("debian-6.12.conf\0".encode("utf-16-le"))
    store = tmp_path / "vars.fd"
    fw_vars("set", ovmf / "OVMF_VARS_4M.fd", variable, "--guid", str(LOADER_GUID),
            "--attributes", "NV,BS,RT", "--file", value, "-o", store)
    r = check_vm(str(ovmf / "OVMF_CODE_4M.secboot.fd"), str(store), disk=str(disk))
    assert r.stages[1].path == f"partition 1:\\{kernel.name}"
    assert f"{variable} 'debian-6.12.conf' in the store" in r.stages[1].how
    # without it, loader.conf's default picks the UKI
    r = check_vm(str(ovmf / "OVMF_CODE_4M.secboot.fd"), str(ovmf / "OVMF_VARS_4M.fd"),
                 disk=str(disk))
    assert r.stages[1].path == "partition 1:\\EFI\\Linux\\debian-uki.efi"


def test_a_pe_in_efi_linux_that_is_not_a_uki_is_skipped(corpus: object,
                                                        tmp_path: Path) -> None:
    sd = corpus.systemd_boot("trixie")  # type: ignore[attr-defined]
    kernel = corpus.kernel("trixie", "amd64")  # type: ignore[attr-defined]
    # a bare kernel in \EFI\Linux has no .osrel: systemd-boot ignores it
    disk = build_sdboot_disk(tmp_path, sd, kernel, kernel, default="debian-uki*")
    ovmf = corpus.ovmf_dir("trixie")  # type: ignore[attr-defined]
    r = check_vm(str(ovmf / "OVMF_CODE_4M.secboot.fd"), str(ovmf / "OVMF_VARS_4M.fd"),
                 disk=str(disk))
    assert r.stages[1].path == f"partition 1:\\{kernel.name}"
    assert any("skips debian-uki.efi" in n for n in r.notes)
    assert any("'debian-uki*' matches no entry" in n for n in r.notes)
