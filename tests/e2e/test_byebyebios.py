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
)

MESSAGE_LINES = [line for line in DEFAULT_MESSAGE.split("\r\n") if line]
LAST_LINE = MESSAGE_LINES[-1]


def byebyebios(*args: str | Path) -> str:
    r = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def boot_seabios(image: Path, fmt: str, log: Path,
                 stop_marker: str = r"^" + re.escape(LAST_LINE)) -> QemuResult:
    """SeaBIOS (QEMU's default BIOS) from ``image`` on IDE, until ``stop_marker`` (the default
    message's last line). Not -nographic: with it QEMU turns on SeaBIOS's serial console,
    which mirrors int 10h onto COM1 and every character of the message would appear twice
    (once from the BIOS, once from the stub's UART)."""
    cmd = [QEMU_X86, "-display", "none", "-serial", "stdio", "-monitor", "none",
           "-net", "none", "-m", "64", "-no-reboot", "-accel", default_accel(),
           "-drive", f"file={image},format={fmt},if=ide,snapshot=on"]
    return run_qemu(cmd, timeout=60, stop_markers=[stop_marker], serial_log=log)


def assert_seabios_shows_message(image: Path, fmt: str, log: Path, record_boot: BootRecorder,
                                 what: str) -> None:
    """Boot ``image`` with SeaBIOS: the serial console shows the default message."""
    result = boot_seabios(image, fmt, log)
    record_boot(result, what)
    assert result.marker is not None, result.describe()
    # Without -nographic SeaBIOS writes nothing to COM1: all of it is the stub's output.
    lines = [line for line in result.output.split("\n") if line]
    assert lines[: len(MESSAGE_LINES)] == MESSAGE_LINES, result.describe()


def test_seabios_raw(tmp_path: Path, qemu_tools: None, record_boot: BootRecorder) -> None:
    img = make_esp_image(tmp_path / "disk.img", {"hello.txt": b"hi"})
    byebyebios(img)
    assert "No problems found" in subprocess.run(
        ["sgdisk", "-v", img], capture_output=True, text=True, check=True).stdout
    assert_seabios_shows_message(img, "raw", tmp_path / "serial.log", record_boot,
                                 "SeaBIOS raw GPT image -> byebyebios message")


def test_seabios_qcow2(tmp_path: Path, qemu_tools: None, record_boot: BootRecorder) -> None:
    raw = make_esp_image(tmp_path / "disk.img", {"hello.txt": b"hi"})
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
    assert_seabios_shows_message(q, "qcow2", tmp_path / "serial.log", record_boot,
                                 "SeaBIOS qcow2 GPT image -> byebyebios message")


def test_seabios_fresh_qcow2(tmp_path: Path, qemu_tools: None,
                             record_boot: BootRecorder) -> None:
    """A fresh ``qemu-img create`` image: the first cluster is allocated by fwtools."""
    q = tmp_path / "fresh.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", q, "64M"], check=True)
    byebyebios(q)
    subprocess.run(["qemu-img", "check", q], check=True, capture_output=True)
    assert_seabios_shows_message(q, "qcow2", tmp_path / "serial.log", record_boot,
                                 "SeaBIOS fresh qcow2 (cluster allocated) -> message")


def test_custom_message_on_plain_disk(tmp_path: Path, qemu_tools: None,
                                      record_boot: BootRecorder) -> None:
    img = tmp_path / "blank.img"
    with img.open("wb") as f:
        f.truncate(8 << 20)
    byebyebios("--text", "FWTOOLS custom line one\nFWTOOLS-END", img)
    result = boot_seabios(img, "raw", tmp_path / "serial.log", stop_marker=r"FWTOOLS-END")
    record_boot(result, "SeaBIOS empty disk -> custom message")
    assert result.marker is not None, result.describe()
    assert result.output.strip("\n") == "FWTOOLS custom line one\nFWTOOLS-END"


def test_ovmf_still_boots_injected_gpt(
    tmp_path: Path, ovmf_bookworm: Ovmf, shim_chain_bookworm: ShimChain,
    vars_copy: VarsCopier, record_boot: BootRecorder,
) -> None:
    img = shim_chain_bookworm.esp_image(tmp_path / "esp.img")
    byebyebios(img)
    boot = boot_shim_chain(ovmf_bookworm.code_secboot, vars_copy(ovmf_bookworm.vars_ms), img,
                           serial_log=tmp_path / "serial.log")
    record_boot(boot.result, "OVMF secboot + ms: injected GPT image -> shim -> grub")
    assert boot.verdict == "grub", boot.describe()
    # And SeaBIOS shows the message from the very same image.
    assert_seabios_shows_message(img, "raw", tmp_path / "seabios.log", record_boot,
                                 "SeaBIOS on the same image -> message")
