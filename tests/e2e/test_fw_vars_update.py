"""A store brought to the 2023 CAs, Microsoft's current dbx and the latest SbatLevel by
``fw-vars update`` still boots Debian's shim -> grub -> kernel with Secure Boot on, on Debian's
Secure Boot OVMF (the same boots as test_boot_chains.py, with the updated store instead of
the pristine .ms one). Debian 13's chain on a store updated through Microsoft's signed db and
dbx updates (KEK 2023 written as the owner, since Debian's PK signed no KEK update), Debian
12's chain on one updated as the owner throughout."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

import pytest
from click.testing import CliRunner
from corpus import Corpus

from fwtools.cli.fw_vars import cli
from fwtools.fleet.audit import audit_store

from .chains import Chain, Firmware, boot_chain
from .conftest import BootRecorder

MS_OBJECTS: Final = Path(__file__).resolve().parents[2] / "testdata/microsoft-secureboot-objects"
TRUSTS_2023: Final = ("kek-2023", "windows-uefi-ca-2023", "uefi-ca-2023", "option-rom-ca-2023")


@pytest.mark.parametrize(("suite", "via"), [("trixie", "auto"), ("bookworm", "owner")])
def test_updated_store_boots_the_debian_chain(
    suite: str, via: str, corpus: Corpus, qemu_tools: None, tmp_path: Path,
    serial_log: Path, record_boot: BootRecorder,
) -> None:
    store = tmp_path / "vm_VARS.fd"
    shutil.copyfile(corpus.ovmf(suite, "OVMF_VARS_4M.ms.fd"), store)
    store.chmod(0o644)
    args = ["update", str(store), "--ca-2023", "--dbx", "latest", "--sbat-level", "latest",
            "--via", via, "--in-place"]
    if via == "auto":
        args += ["--signed-dir", str(MS_OBJECTS)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    if via == "auto":
        assert "+ Microsoft UEFI CA 2023 (signed:" in result.stdout
        assert "Microsoft's dbx update for x64 (signed:" in result.stdout
    audit = audit_store(str(store))
    assert all(audit.trusts[k] for k in TRUSTS_2023), audit.trusts
    assert audit.dbx is not None and audit.dbx.missing == 0
    assert audit.sbat_level is not None and audit.sbat_level.current

    shim, grub, kernel = corpus.boot_chain(suite, "amd64")
    fw = Firmware(f"{suite}/OVMF_CODE_4M.secboot.fd + updated store", "x64",
                  corpus.ovmf(suite, "OVMF_CODE_4M.secboot.fd"), store, True)
    boot = boot_chain(Chain(suite, "x64", shim, grub, kernel), fw, workdir=tmp_path / "boot",
                      serial_log=serial_log)
    record_boot(boot.result, f"{suite} chain, store updated via {via}: {boot.outcome}")
    assert (boot.outcome, boot.stage) == ("kernel", "kernel"), boot.describe()
    assert boot.result.saw(r"EFI stub: UEFI Secure Boot is enabled"), boot.describe()
