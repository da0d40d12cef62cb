"""byebyebios on real firmware: SeaBIOS boots an injected raw and qcow2 image and prints the
message on the serial console; the same GPT image still boots shim -> grub under OVMF."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from fwtools.cli.byebyebios import command
from fwtools.formats.mbr import DEFAULT_MESSAGE

from .conftest import BootRecorder, Ovmf, ShimChain, VarsCopier
from .qemu import (
    QEMU_X86,
    QemuResult,
    boot_shim_chain,
    default_accel,
    make_esp_image,
    run_qemu,
    shim_chain_files,
)

MESSAGE_LINES = [line for line in DEFAULT_MESSAGE.split("\r\n") if line]
LAST_LINE = MESSAGE_LINES[-1]


def byebyebios(*args: str | Path) -> str:
    r = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def boot_seabios(image: Path, fmt: str, log: Path) -> QemuResult:
    """SeaBIOS (QEMU's default BIOS) from ``image`` on IDE. Not -nographic: with it QEMU
    turns on SeaBIOS's serial console, which mirrors int 10h onto COM1 and every character
    of the message would appear twice (once from the BIOS, once from the stub's UART)."""
    cmd = [QEMU_X86, "-display", "none", "-serial", "stdio", "-monitor", "none",
           "-net", "none", "-m", "64", "-no-reboot", "-accel", default_accel(),
           "-drive", f"file={image},format={fmt},if=ide,snapshot=on"]
    return run_qemu(cmd, timeout=60, stop_markers=[r"^" + re.escape(LAST_LINE)], serial_log=log)


def assert_message(result: QemuResult) -> None:
    assert result.marker is not None, result.describe()
    # Without -nographic SeaBIOS writes nothing to COM1: all of it is the stub's output.
    lines = [line for line in result.output.split("\n") if line]
    assert lines[: len(MESSAGE_LINES)] == MESSAGE_LINES, result.describe()


def gpt_esp(path: Path, chain: ShimChain | None = None) -> Path:
    files = shim_chain_files(chain.shim, chain.grub) if chain else {"hello.txt": b"hi"}
    return make_esp_image(path, files)


def test_seabios_raw(tmp_path: Path, qemu_tools: None, record_boot: BootRecorder) -> None:
    img = gpt_esp(tmp_path / "disk.img")
    byebyebios(img)
    assert "No problems found" in subprocess.run(
        ["sgdisk", "-v", img], capture_output=True, text=True, check=True).stdout
    result = boot_seabios(img, "raw", tmp_path / "serial.log")
    record_boot(result, "SeaBIOS raw GPT image -> byebyebios message")
    assert_message(result)


def test_seabios_qcow2(tmp_path: Path, qemu_tools: None, record_boot: BootRecorder) -> None:
    raw = gpt_esp(tmp_path / "disk.img")
    q = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, q], check=True)
    orig = tmp_path / "orig.qcow2"
    shutil.copy(q, orig)
    byebyebios(q)
    subprocess.run(["qemu-img", "check", q], check=True, capture_output=True)
    cmp = subprocess.run(["qemu-img", "compare", orig, q], capture_output=True, text=True)
    assert cmp.returncode == 1 and "Content mismatch at offset 0!" in cmp.stdout
    # Only sector 0 differs: the injected image equals the original with a new sector 0.
    expected = tmp_path / "expected.img"
    shutil.copy(raw, expected)
    byebyebios(expected)
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", expected, q],
                   check=True, capture_output=True)
    result = boot_seabios(q, "qcow2", tmp_path / "serial.log")
    record_boot(result, "SeaBIOS qcow2 GPT image -> byebyebios message")
    assert_message(result)


def test_seabios_fresh_qcow2(tmp_path: Path, qemu_tools: None,
                             record_boot: BootRecorder) -> None:
    """A fresh ``qemu-img create`` image: the first cluster is allocated by fwtools."""
    q = tmp_path / "fresh.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", q, "64M"], check=True)
    byebyebios(q)
    subprocess.run(["qemu-img", "check", q], check=True, capture_output=True)
    result = boot_seabios(q, "qcow2", tmp_path / "serial.log")
    record_boot(result, "SeaBIOS fresh qcow2 (cluster allocated) -> message")
    assert_message(result)


def test_custom_message_on_plain_disk(tmp_path: Path, qemu_tools: None,
                                      record_boot: BootRecorder) -> None:
    img = tmp_path / "blank.img"
    with img.open("wb") as f:
        f.truncate(8 << 20)
    byebyebios("--text", "FWTOOLS custom line one\nFWTOOLS-END", img)
    cmd = [QEMU_X86, "-display", "none", "-serial", "stdio", "-monitor", "none",
           "-net", "none", "-m", "64", "-no-reboot", "-accel", default_accel(),
           "-drive", f"file={img},format=raw,if=ide,snapshot=on"]
    result = run_qemu(cmd, timeout=60, stop_markers=[r"FWTOOLS-END"],
                      serial_log=tmp_path / "serial.log")
    record_boot(result, "SeaBIOS empty disk -> custom message")
    assert result.marker is not None, result.describe()
    assert result.output.strip("\n") == "FWTOOLS custom line one\nFWTOOLS-END"


def test_ovmf_still_boots_injected_gpt(
    tmp_path: Path, ovmf_bookworm: Ovmf, shim_chain_bookworm: ShimChain,
    vars_copy: VarsCopier, record_boot: BootRecorder,
) -> None:
    img = gpt_esp(tmp_path / "esp.img", shim_chain_bookworm)
    byebyebios(img)
    boot = boot_shim_chain(ovmf_bookworm.code_secboot, vars_copy(ovmf_bookworm.vars_ms), img,
                           serial_log=tmp_path / "serial.log")
    record_boot(boot.result, "OVMF secboot + ms: injected GPT image -> shim -> grub")
    assert boot.verdict == "grub", boot.describe()
    # And SeaBIOS shows the message from the very same image.
    result = boot_seabios(img, "raw", tmp_path / "seabios.log")
    record_boot(result, "SeaBIOS on the same image -> message")
    assert_message(result)
