"""A store brought to the 2023 CAs, Microsoft's current dbx and the latest SbatLevel by
``fw-vars update`` still boots Debian's shim -> grub -> kernel with Secure Boot on, on Debian's
Secure Boot firmware (the same boots as test_boot_chains.py, with the updated store instead of
the pristine .ms one).

- x64, 4 MiB OVMF: Debian 13's chain on a store updated through Microsoft's signed db and dbx
  updates (KEK 2023 written as the owner, since Debian's PK signed no KEK update), Debian 12's
  chain on one updated as the owner throughout.
- aa64, AAVMF (64 MiB varstore): the same two ways, each suite's chain on its own suite's
  Secure Boot AAVMF with its own AAVMF_VARS.ms.fd (Debian 12's chain faults on Debian 13's
  AAVMF with Secure Boot on whatever the store holds: test_boot_chains.py).
- x64, 2 MiB OVMF (Debian 12's OVMF_CODE.secboot.fd + 128 KiB OVMF_VARS.ms.fd): the latest
  dbx does not fit its PcdMaxAuthVariableSize, so that write is refused (exit 1, with the
  convert hint) while the CAs and SbatLevel are written; Debian 12's chain boots on the result.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

import pytest
from click.testing import CliRunner
from corpus import Corpus
from corpus.params import unavailable

from fwtools.cli.fw_vars import cli
from fwtools.fleet.audit import audit_store

from .chains import QEMU_AARCH64, Arch, Chain, Firmware, boot_chain
from .conftest import BootRecorder

MS_OBJECTS: Final = Path(__file__).resolve().parents[2] / "testdata/microsoft-secureboot-objects"
TRUSTS_2023: Final = ("kek-2023", "windows-uefi-ca-2023", "uefi-ca-2023", "option-rom-ca-2023")
DEB_ARCH: Final[dict[Arch, str]] = {"x64": "amd64", "aa64": "arm64"}


def update_store(store: Path, via: str, extra: tuple[str, ...] = ("--dbx", "latest"),
                 *, exit_code: int = 0) -> str:
    """``fw-vars update --ca-2023 --sbat-level latest EXTRA --via VIA --in-place`` on
    ``store``; its output."""
    args = ["update", str(store), "--ca-2023", "--sbat-level", "latest", *extra,
            "--via", via, "--in-place"]
    if via == "auto":
        args += ["--signed-dir", str(MS_OBJECTS)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == exit_code, result.output
    return result.output


def assert_updated(store: Path, *, dbx_current: bool = True) -> None:
    """The audit of ``store`` trusts every 2023 CA, and SbatLevel (and dbx) are current."""
    audit = audit_store(str(store))
    assert all(audit.trusts[k] for k in TRUSTS_2023), audit.trusts
    assert audit.sbat_level is not None and audit.sbat_level.current
    assert audit.dbx is not None
    assert (audit.dbx.missing == 0) == dbx_current, audit.dbx


def assert_boots(corpus: Corpus, suite: str, fw: Firmware, what: str, tmp_path: Path,
                 serial_log: Path, record_boot: BootRecorder,
                 extra_args: tuple[str, ...] = ()) -> None:
    """``suite``'s shim -> grub -> kernel reaches the kernel on ``fw``, Secure Boot on."""
    shim, grub, kernel = corpus.boot_chain(suite, DEB_ARCH[fw.arch])
    boot = boot_chain(Chain(suite, fw.arch, shim, grub, kernel), fw, workdir=tmp_path / "boot",
                      serial_log=serial_log, extra_args=extra_args)
    record_boot(boot.result, f"{what}: {boot.outcome}")
    assert (boot.outcome, boot.stage) == ("kernel", "kernel"), boot.describe()
    # the EFI stub's line on x86 and arm64 alike (drivers/firmware/efi/libstub)
    assert boot.result.saw(r"EFI stub: UEFI Secure Boot is enabled"), boot.describe()


def updated_copy(template: Path, store: Path, via: str, dbx_arch: str) -> Path:
    """A writable copy of ``template`` at ``store``, updated ``via`` (with ``auto``, the
    2023 CA and Microsoft's dbx update for ``dbx_arch`` are applied) and checked."""
    shutil.copyfile(template, store)
    store.chmod(0o644)
    output = update_store(store, via)
    if via == "auto":
        assert "+ Microsoft UEFI CA 2023 (signed:" in output
        assert f"Microsoft's dbx update for {dbx_arch} (signed:" in output
    assert_updated(store)
    return store


@pytest.mark.parametrize(("suite", "via"), [("trixie", "auto"), ("bookworm", "owner")])
def test_updated_store_boots_the_debian_chain(
    suite: str, via: str, corpus: Corpus, qemu_tools: None, tmp_path: Path,
    serial_log: Path, record_boot: BootRecorder,
) -> None:
    store = updated_copy(corpus.ovmf(suite, "OVMF_VARS_4M.ms.fd"), tmp_path / "vm_VARS.fd",
                         via, "x64")

    fw = Firmware(f"{suite}/OVMF_CODE_4M.secboot.fd + updated store", "x64",
                  corpus.ovmf(suite, "OVMF_CODE_4M.secboot.fd"), store, True)
    assert_boots(corpus, suite, fw, f"{suite} chain, store updated via {via}", tmp_path,
                 serial_log, record_boot)


# Each suite's chain on its own suite's Secure Boot AAVMF (bookworm's AAVMF_CODE.fd is its
# Secure Boot build; trixie splits it out as AAVMF_CODE.secboot.fd): the pairings that boot
# with the pristine AAVMF_VARS.ms.fd in test_boot_chains.py.
AA64_CASES: Final = [("trixie", "AAVMF_CODE.secboot.fd", "auto"),
                     ("bookworm", "AAVMF_CODE.fd", "owner")]


@pytest.mark.parametrize(("suite", "code", "via"), AA64_CASES,
                         ids=[f"aa64-{s}-{v}" for s, _, v in AA64_CASES])
def test_updated_aavmf_store_boots_the_debian_chain(
    suite: str, code: str, via: str, corpus: Corpus, qemu_tools: None, tmp_path: Path,
    serial_log: Path, record_boot: BootRecorder,
) -> None:
    if shutil.which(QEMU_AARCH64) is None:
        unavailable(f"e2e: {QEMU_AARCH64} not installed (apt-get install qemu-system-arm)")
    store = updated_copy(corpus.aavmf(suite, "AAVMF_VARS.ms.fd"),
                         tmp_path / "vm_AAVMF_VARS.fd", via, "aarch64")

    fw = Firmware(f"{suite}/{code} + updated store", "aa64", corpus.aavmf(suite, code), store,
                  True)
    assert_boots(corpus, suite, fw, f"aa64 {suite} chain, store updated via {via}", tmp_path,
                 serial_log, record_boot)


def test_updated_2m_ovmf_store_boots_the_bookworm_chain(
    corpus: Corpus, qemu_tools: None, tmp_path: Path, serial_log: Path,
    record_boot: BootRecorder,
) -> None:
    store = tmp_path / "vm_VARS.fd"
    shutil.copyfile(corpus.ovmf("bookworm", "OVMF_VARS.ms.fd"), store)
    store.chmod(0o644)
    # The latest dbx (a 21 KiB record) is over this build's PcdMaxAuthVariableSize (10 KiB):
    # refused with the way out, the rest written.
    output = update_store(store, "owner", exit_code=1)
    assert "REFUSED dbx via owner: too large for this firmware build" in output
    assert "--layout ovmf-4m-528k" in output
    assert_updated(store, dbx_current=False)
    # what succeeds is then already done
    output = update_store(store, "owner", ())
    assert "up to date, nothing to change" in output

    # Debian's 2 MiB Secure Boot build requires SMM (q35,smm=on + secure pflash) like the 4 MiB
    # one, and S3 off as well: with S3 on it hangs before any console output, with the
    # pristine OVMF_VARS.ms.fd too (measured, QEMU 7.2 TCG; the 4 MiB build boots either way).
    fw = Firmware("bookworm/OVMF_CODE.secboot.fd (2 MiB) + updated store", "x64",
                  corpus.ovmf("bookworm", "OVMF_CODE.secboot.fd"), store, True, smm=True)
    assert_boots(corpus, "bookworm", fw, "bookworm chain, 2 MiB store updated via owner",
                 tmp_path, serial_log, record_boot,
                 extra_args=("-global", "ICH9-LPC.disable_s3=1"))
