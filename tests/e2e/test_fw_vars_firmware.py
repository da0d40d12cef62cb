"""What fw-vars writes, checked by real edk2 (Debian's OVMF under QEMU).

1. Variables set by fw-vars (raw and qcow2, the qcow2 written by fwtools itself) are read back
   by the firmware's shell (`dmpstore -all`), and after the firmware has run and written its
   own variables, fwtools reads the store and sees exactly what dmpstore shows.
2. A store enrolled with `fw-vars enroll --microsoft --secure-boot` boots Debian's
   Microsoft-signed shim into grub; one enrolled with only a test certificate makes the
   firmware refuse shim.
"""

from __future__ import annotations

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
    from .conftest import BootRecorder, Ovmf, ShimChain

SAMPLE = Path(__file__).resolve().parents[2] / "testdata/sample"
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
