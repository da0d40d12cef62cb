"""Baseline boots of Debian's pristine firmware and stores (no fwtools writes yet).

They prove the end-to-end machinery: the shell driver and the dmpstore parser agree with the
store the firmware wrote (read back from the file, raw and qcow2), Debian 13's shell reads a
store with Secure Boot keys, and the shim -> grub chain gives the expected verdict with
Microsoft keys, without Secure Boot, and with a db that lacks the Microsoft UEFI CA.
Six boots, a few seconds each under TCG; see README.md.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .qemu import (
    GRUB_MARKER,
    ShellVariable,
    VarKey,
    attributes_from_text,
    attributes_to_text,
    boot_shim_chain,
    clean_serial,
    compare_nv,
    dmpstore_all,
    make_esp_image,
    parse_dmpstore,
    read_back,
    startup_nsh,
)

if TYPE_CHECKING:
    from .conftest import BootedStore, BootRecorder, Ovmf, ShimChain, VarsCopier

EFI_GLOBAL = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
IMAGE_SECURITY_DB = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")


def g(name: str) -> VarKey:
    return (EFI_GLOBAL, name)


# -- the helpers, on recorded output (no boot) ---------------------------------------------

# Real `dmpstore -all` lines from Debian 12's shell (clean_serial'ed), plus a variable whose
# printable column looks like hex, and the prompt that follows.
DMPSTORE_SAMPLE = """\
Shell> dmpstore -all
Variable NV+BS '4C19049F-4137-4DD3-9C10-8B97A83FFDFA:MemoryTypeInformation' DataSize = 0x30
  00000000: 0A 00 00 00 80 00 00 00-09 00 00 00 12 00 00 00  *................*
  00000010: 00 00 00 00 80 00 00 00-05 00 00 00 00 01 00 00  *................*
  00000020: 06 00 00 00 46 02 00 00-10 00 00 00 00 00 00 00  *....F...........*
Variable NV+RT+BS 'EFIGlobalVariable:BootOrder' DataSize = 0x08
  00000000: 00 00 01 00 02 00 03 00-                         *........*
Variable NV+RT+BS '04B37FE8-F6AE-480B-BDD5-37D98C5E89AA:VarErrorFlag' DataSize = 0x01
  00000000: FF                                               *.*
Variable NV+BS 'iSCSIInitiatorName:Attempt 1' DataSize = 0x05
  00000000: 41 42 20 43 44                                   *AB CD*
Variable RT+BS 'EFIGlobalVariable:SecureBoot' DataSize = 0x01
  00000000: 00                                               *.*
Shell> echo done
"""


def test_parse_dmpstore_sample() -> None:
    vs = parse_dmpstore(DMPSTORE_SAMPLE)
    assert list(vs) == [
        (uuid.UUID("4c19049f-4137-4dd3-9c10-8b97a83ffdfa"), "MemoryTypeInformation"),
        g("BootOrder"),
        (uuid.UUID("04b37fe8-f6ae-480b-bdd5-37d98c5e89aa"), "VarErrorFlag"),
        (uuid.UUID("59324945-ec44-4c0d-b1cd-9db139df070c"), "Attempt 1"),
        g("SecureBoot"),
    ]
    assert vs[g("BootOrder")] == ShellVariable(
        "EFIGlobalVariable", EFI_GLOBAL, "BootOrder", "NV+RT+BS", bytes.fromhex("0000010002000300")
    )
    mti = vs[(uuid.UUID("4c19049f-4137-4dd3-9c10-8b97a83ffdfa"), "MemoryTypeInformation")]
    assert len(mti.data) == 0x30 and mti.data[0x24:0x28] == bytes.fromhex("46020000")
    assert vs[(uuid.UUID("59324945-ec44-4c0d-b1cd-9db139df070c"), "Attempt 1")].data == b"AB CD"
    assert not vs[g("SecureBoot")].non_volatile and vs[g("SecureBoot")].attribute_bits == 0x06


def test_parse_dmpstore_rejects_a_short_dump() -> None:
    with pytest.raises(ValueError, match="got 8 bytes of 9"):
        parse_dmpstore(
            "Variable NV+RT+BS 'EFIGlobalVariable:BootOrder' DataSize = 0x09\n"
            "  00000000: 00 00 01 00 02 00 03 00-                         *........*\n"
        )


@pytest.mark.parametrize(
    ("attrs", "text"),
    [(0x07, "NV+RT+BS"), (0x03, "NV+BS"), (0x06, "RT+BS"), (0x27, "NV+RT+BS+AT"),
     (0x23, "NV+BS+AT"), (0x0F, "NV+RT+BS+HR"), (0x00, "Invalid")],
)
def test_attribute_text(attrs: int, text: str) -> None:
    assert attributes_to_text(attrs) == text
    assert attributes_from_text(text) == attrs


def test_clean_serial() -> None:
    raw = (b"\x1b[2J\x1b[01;01H\x1b[=3h\x1b[1m\x1b[33m\x1b[40mShell> \x1b[0m\x1b[37m\x1b[40m"
           b"echo X\r\nX\r\n\xda\xc4\xc4\xbf\r\n\xb3 ERROR \xb3\r\n")
    assert clean_serial(raw) == "Shell> echo X\nX\n\n ERROR \n"


def test_esp_image(tmp_path: Path, disk_tools: None) -> None:
    img = make_esp_image(tmp_path / "esp.img", {"startup.nsh": startup_nsh(["echo hi", "reset -s"]),
                                                "EFI/BOOT/x.bin": b"\x00" * 5000})
    gpt = subprocess.run(["sgdisk", "-p", str(img)], capture_output=True, text=True, check=True)
    assert "EF00" in gpt.stdout
    got = subprocess.run(["mtype", "-i", f"{img}@@1M", "::/startup.nsh"], capture_output=True,
                         check=True, env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    assert got.stdout == b"echo hi\r\nreset -s\r\n"


# -- (a) + (d): the shell's dmpstore and the store file agree --------------------------------


def test_dmpstore_pristine_store(booted_store: BootedStore, record_boot: BootRecorder) -> None:
    """Debian 12's plain OVMF with a fresh copy of the blank store (raw, and qcow2 made by
    qemu-img), booted into the shell for ``dmpstore -all`` by the booted_store fixture."""
    run = booted_store.run
    record_boot(run.result, f"bookworm shell dmpstore -all ({booted_store.vars_format})")
    assert run.completed, run.result.describe()
    assert run.result.returncode == 0 and not run.result.killed, run.result.describe()
    vs = run.variables()

    # Boot manager variables the firmware creates on first boot (non-volatile) ...
    order = vs[g("BootOrder")]
    assert order.attributes == "NV+RT+BS"
    assert order.data and len(order.data) % 2 == 0
    for i in range(0, len(order.data), 2):
        assert g(f"Boot{int.from_bytes(order.data[i : i + 2], 'little'):04X}") in vs
    assert vs[g("Lang")].data == b"eng\0" and vs[g("PlatformLang")].data == b"en\0"
    assert vs[g("Timeout")].attributes == "NV+RT+BS"
    assert any(k[1] == "MTC" and v.non_volatile for k, v in vs.items())
    # ... and volatile ones: a pristine store has no PK, so Secure Boot is off, setup mode on.
    for name in ("BootCurrent", "PlatformLangCodes", "OsIndicationsSupported", "ConOutDev"):
        assert not vs[g(name)].non_volatile, name
    assert vs[g("SecureBoot")].data == b"\x00" and vs[g("SecureBoot")].attributes == "RT+BS"
    assert vs[g("SetupMode")].data == b"\x01"

    # (d) The firmware wrote its variables into our copy: they read back identically.
    store = read_back(booted_store.vars_path)
    assert g("BootOrder") in store
    assert compare_nv(vs, store) == []


def test_dmpstore_reads_secure_boot_keys(
    ovmf_trixie: Ovmf, vars_copy: VarsCopier, tmp_path: Path, serial_log: Path,
    record_boot: BootRecorder,
) -> None:
    """Debian 13's plain OVMF has no Secure Boot, so its shell starts with any store and shows
    PK/KEK/db/dbx: the way to read back a store with keys enrolled."""
    vars_file = vars_copy(ovmf_trixie.vars_ms)
    run = dmpstore_all(ovmf_trixie.code, vars_file, workdir=tmp_path, serial_log=serial_log)
    record_boot(run.result, "trixie shell dmpstore -all (ms store)")
    assert run.completed, run.result.describe()
    vs = run.variables()
    pristine = read_back(ovmf_trixie.vars_ms)
    for key in (g("PK"), g("KEK"), (IMAGE_SECURITY_DB, "db"), (IMAGE_SECURITY_DB, "dbx")):
        assert vs[key].attributes == "NV+RT+BS+AT", key
        assert vs[key].data == pristine[key].data, key
    assert g("SecureBoot") not in vs  # this build has no Secure Boot at all
    assert compare_nv(vs, read_back(vars_file)) == []


# -- (b) + (c): shim -> grub -------------------------------------------------------------------


def test_shim_grub_boots_with_microsoft_keys(
    ovmf_bookworm: Ovmf, shim_chain_bookworm: ShimChain, vars_copy: VarsCopier,
    tmp_path: Path, serial_log: Path, record_boot: BootRecorder,
) -> None:
    boot = boot_shim_chain(ovmf_bookworm.code_secboot, vars_copy(ovmf_bookworm.vars_ms),
                           shim_chain_bookworm.esp_image(tmp_path / "esp.img"),
                           serial_log=serial_log)
    record_boot(boot.result, "bookworm secboot, ms store: shim -> grub")
    assert boot.verdict == "grub", boot.describe()
    assert boot.welcome_grub and boot.result.saw(GRUB_MARKER)


def test_shim_grub_boots_without_secure_boot(
    ovmf_bookworm: Ovmf, shim_chain_bookworm: ShimChain, vars_copy: VarsCopier,
    tmp_path: Path, serial_log: Path, record_boot: BootRecorder,
) -> None:
    boot = boot_shim_chain(ovmf_bookworm.code_secboot, vars_copy(ovmf_bookworm.vars_blank),
                           shim_chain_bookworm.esp_image(tmp_path / "esp.img"),
                           serial_log=serial_log)
    record_boot(boot.result, "bookworm secboot, blank store: shim -> grub")
    assert boot.verdict == "grub", boot.describe()


def test_shim_refused_without_microsoft_ca(
    ovmf_bookworm: Ovmf, shim_chain_bookworm: ShimChain, vars_copy: VarsCopier,
    tmp_path: Path, serial_log: Path, record_boot: BootRecorder,
) -> None:
    """Debian's snakeoil store: Secure Boot on, db holds only Debian's test certificate."""
    boot = boot_shim_chain(ovmf_bookworm.code_secboot, vars_copy(ovmf_bookworm.vars_snakeoil),
                           shim_chain_bookworm.esp_image(tmp_path / "esp.img"),
                           serial_log=serial_log)
    record_boot(boot.result, "bookworm secboot, snakeoil store: shim refused")
    assert boot.verdict == "security-violation", boot.describe()
    assert boot.refused_by == "firmware", boot.describe()
    assert not boot.welcome_grub
