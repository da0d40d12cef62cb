"""What fw-vars writes, checked by real edk2 (Debian's OVMF under QEMU).

1. Variables set by fw-vars (raw and qcow2, the qcow2 written by fwtools itself) are read back
   by the firmware's shell (`dmpstore -all`), and after the firmware has run and written its
   own variables, fwtools reads the store and sees exactly what dmpstore shows.
2. A store enrolled with `fw-vars enroll --microsoft --secure-boot` boots Debian's
   Microsoft-signed shim into grub; one enrolled with only a test certificate makes the
   firmware refuse shim.
3. Debian 12's 2 MiB-build OVMF_VARS.ms.fd moved to the 4 MiB build's layout with
   `fw-vars convert --layout ovmf-4m` (where Microsoft's current dbx fits, issue 13) and
   updated with it: the 4 MiB firmware reads every Secure Boot variable back as written, and
   Secure Boot with it boots shim -> grub.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from fwtools.cli.fw_vars import cli

from .qemu import (
    RawVariable,
    VarsFormat,
    boot_shim_chain,
    compare_nv,
    dmpstore_all,
    read_back,
)

if TYPE_CHECKING:
    from corpus import Corpus

    from .conftest import BootRecorder, Ovmf, ShimChain

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "testdata/sample"
DBX_UPDATE = REPO / "testdata/microsoft-secureboot-objects/dbx/amd64/DBXUpdate.bin"
EFI_GLOBAL = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
SHIM_LOCK = uuid.UUID("605dab50-e046-4300-abb6-3dd810dd8b23")


def fw_vars(*args: str | Path) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def fwtools_reader(path: Path) -> Iterator[RawVariable]:
    """The store as fwtools reads it (raw or qcow2, by content)."""
    from fwtools.formats.varstore.storeio import load_store

    for v in load_store(path).variables:
        yield (v.guid, v.name, v.attributes, v.data)


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_firmware_reads_what_fw_vars_set(
    ovmf_bookworm: Ovmf, tmp_path: Path, record_boot: BootRecorder, fmt: VarsFormat
) -> None:
    store = tmp_path / f"vars.{'fd' if fmt == 'raw' else 'qcow2'}"
    # OVMF rewrites Timeout and the console variables at every boot; a name of our own
    # is only ever written by us.
    fw_vars("set", ovmf_bookworm.vars_blank, "FwtoolsText", "--guid", str(SHIM_LOCK),
            "--ucs2", "hello firmware", "-o", store)
    fw_vars("set", store, "FwtoolsE2E", "--guid", str(SHIM_LOCK), "--hex", "f00dcafe01",
            "--attributes", "0x3", "--in-place")
    fw_vars("shim", store, "--verbose", "--in-place")
    run = dmpstore_all(ovmf_bookworm.code, store, workdir=tmp_path, vars_format=fmt)
    record_boot(run.result, f"bookworm shell dmpstore, store written by fw-vars ({fmt})")
    assert run.completed, run.result.describe()
    shown = run.variables()
    text = shown[(SHIM_LOCK, "FwtoolsText")]
    assert text.data == "hello firmware\0".encode("utf-16-le")
    assert text.attributes == "NV+RT+BS"
    ours = shown[(SHIM_LOCK, "FwtoolsE2E")]
    assert ours.data == bytes.fromhex("f00dcafe01") and ours.attributes == "NV+BS"
    assert shown[(SHIM_LOCK, "SHIM_VERBOSE")].data == b"\x01\x00\x00\x00"
    # The firmware has now written its own variables (Boot####, ConOut, MTC, ...) into the
    # file; fwtools reads exactly the non-volatile set dmpstore printed.
    assert compare_nv(shown, read_back(store, reader=fwtools_reader)) == []


def test_enrolled_microsoft_keys_boot_shim(
    ovmf_bookworm: Ovmf, shim_chain_bookworm: ShimChain, tmp_path: Path,
    record_boot: BootRecorder,
) -> None:
    store = tmp_path / "sb.fd"
    fw_vars("enroll", ovmf_bookworm.vars_blank, "--pk", "generate:fwtools e2e PK",
            "--microsoft", "--secure-boot", "-o", store)
    boot = boot_shim_chain(ovmf_bookworm.code_secboot, store,
                           shim_chain_bookworm.esp_image(tmp_path / "esp.img"))
    record_boot(boot.result, "bookworm secboot, fw-vars --microsoft store: shim -> grub")
    assert boot.verdict == "grub", boot.describe()


def test_enrolled_test_key_only_refuses_shim(
    ovmf_bookworm: Ovmf, shim_chain_bookworm: ShimChain, tmp_path: Path,
    record_boot: BootRecorder,
) -> None:
    store = tmp_path / "test-only.qcow2"
    fw_vars("enroll", ovmf_bookworm.vars_blank, "--pk", SAMPLE / "test-ca.pem",
            "--kek", SAMPLE / "test-ca.pem", "--db", SAMPLE / "test-db.pem", "--secure-boot",
            "-o", store)
    boot = boot_shim_chain(ovmf_bookworm.code_secboot, store,
                           shim_chain_bookworm.esp_image(tmp_path / "esp.img"),
                           vars_format="qcow2")
    record_boot(boot.result, "bookworm secboot, fw-vars test-key store: shim refused")
    assert boot.verdict == "security-violation", boot.describe()
    assert boot.refused_by == "firmware"


def test_converted_2m_store_with_the_new_dbx_boots_on_the_4m_firmware(
    corpus: Corpus, ovmf_bookworm: Ovmf, ovmf_trixie: Ovmf, shim_chain_bookworm: ShimChain,
    tmp_path: Path, record_boot: BootRecorder,
) -> None:
    from fwtools.formats.varstore.storeio import load_store

    source = corpus.ovmf("bookworm", "OVMF_VARS.ms.fd")  # 128 KiB: the 2 MiB build's store
    store = tmp_path / "OVMF_VARS_4M.ms.fd"
    fw_vars("convert", source, store, "--layout", "ovmf-4m")
    fw_vars("dbx", store, DBX_UPDATE, "--in-place")  # refused in the 2 MiB layout
    written = {v.key: v for v in load_store(store).variables}
    before = {v.key: v for v in load_store(source).variables}
    assert written.keys() == before.keys()

    # (a) The 4 MiB firmware's shell (Debian 13's OVMF_CODE_4M.fd has no Secure Boot, so it
    # starts with keys enrolled) shows the authenticated variables exactly as written.
    shell_copy = tmp_path / "shell.fd"
    shutil.copyfile(store, shell_copy)
    run = dmpstore_all(ovmf_trixie.code, shell_copy, workdir=tmp_path)
    record_boot(run.result, "trixie 4M shell dmpstore, bookworm 2M store converted + dbx")
    assert run.completed, run.result.describe()
    shown = run.variables()
    authenticated = [v for v in written.values() if v.attributes & 0x30]
    assert {v.name for v in authenticated} >= {"PK", "KEK", "db", "dbx"}
    for v in authenticated:
        got = shown[(v.guid, v.name)]
        assert got.data == v.data, v.name
        assert got.attribute_bits == v.attributes, v.name
    dbx_key = next(k for k in written if k[1] == "dbx")
    assert len(shown[dbx_key].data) > len(before[dbx_key].data)  # the update is in
    # Every other variable is there too, except what the boot manager rebuilds (boot options
    # for devices this machine does not have).
    managed = ("Boot", "Key", "ConOut", "ConIn", "ErrOut", "MemoryTypeInformation", "MTC")
    for key in written:
        if not key[1].startswith(managed):
            assert key in shown, key
    # After the firmware has written to it, fwtools reads what the firmware printed.
    assert compare_nv(shown, read_back(shell_copy, reader=fwtools_reader)) == []

    # (b) Secure Boot on the 4 MiB build with the converted store: shim -> grub.
    boot_copy = tmp_path / "boot.fd"
    shutil.copyfile(store, boot_copy)
    boot = boot_shim_chain(ovmf_bookworm.code_secboot, boot_copy,
                           shim_chain_bookworm.esp_image(tmp_path / "esp.img"))
    record_boot(boot.result, "bookworm 4M secboot, converted store + dbx: shim -> grub")
    assert boot.verdict == "grub", boot.describe()
