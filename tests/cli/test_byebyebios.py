"""byebyebios command line: install, check, backup/restore, dry run, refusals, JSON, qcow2."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from corpus.params import need_tool, unavailable

from fwtools.cli.byebyebios import command
from fwtools.formats.mbr import build_boot_code, max_message_length, read_stub_message
from fwtools.formats.qcow2 import Qcow2Image, raw_to_qcow2

SIZE = 4 << 20


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def protective_disk(path: Path, code: bytes = b"") -> Path:
    """A raw disk with a protective MBR, a disk signature and 'EFI PART' at LBA 1."""
    sector = bytearray(512)
    sector[: len(code)] = code
    sector[440:444] = struct.pack("<I", 0xCAFEF00D)
    sector[446:462] = bytes.fromhex("000002 00 ee ffffff 01000000") + struct.pack("<I", 8191)
    sector[510:] = b"\x55\xaa"
    data = bytearray(SIZE)
    data[:512] = sector
    data[512:520] = b"EFI PART"
    data[-4:] = b"tail"
    path.write_bytes(bytes(data))
    return path


def test_install_check_and_json(tmp_path: Path) -> None:
    img = protective_disk(tmp_path / "d.img")
    old = img.read_bytes()
    r = invoke(img)
    assert r.exit_code == 0, r.output
    new = img.read_bytes()
    assert new[440:] == old[440:] and new[:440] == build_boot_code()
    r = invoke("--check", img)
    assert r.exit_code == 0 and "This disk image needs UEFI." in r.output
    r = invoke("--check", "--json", img)
    doc: dict[str, Any] = json.loads(r.output)
    assert doc["schema"] == "fwtools.byebyebios/1" and doc["installed"] is True
    assert doc["before"]["scheme"] == "gpt" and doc["before"]["disk_signature"] == "cafef00d"
    assert doc["before"]["stub_message"].startswith("This disk image needs UEFI.")
    # Installing again changes nothing.
    r = invoke(img)
    assert r.exit_code == 0 and "nothing to do" in r.output


def test_check_without_stub_exits_1(tmp_path: Path) -> None:
    r = invoke("--check", protective_disk(tmp_path / "d.img"))
    assert r.exit_code == 1 and "no byebyebios stub" in r.output


def test_text_and_message_file(tmp_path: Path) -> None:
    img = protective_disk(tmp_path / "d.img")
    assert invoke("--text", "Use UEFI\nplease", img).exit_code == 0
    assert read_stub_message(img.read_bytes()[:440]) == "Use UEFI\r\nplease"
    msg = tmp_path / "msg.txt"
    msg.write_bytes(b"From a file\n")
    assert invoke("--message", msg, img).exit_code == 0
    assert read_stub_message(img.read_bytes()[:440]) == "From a file\r\n"


def test_message_errors_change_nothing(tmp_path: Path) -> None:
    img = protective_disk(tmp_path / "d.img")
    old = img.read_bytes()
    limit = max_message_length()
    r = invoke("--text", "x" * (limit + 1), img)
    assert r.exit_code == 2 and f"at most {limit} fit" in r.output
    r = invoke("--text", "caf\u00e9", img)
    assert r.exit_code == 2 and "printable ASCII" in r.output
    msg = tmp_path / "msg.txt"
    msg.write_bytes(b"ok\xff")
    r = invoke("--message", msg, img)
    assert r.exit_code == 2 and "byte 2" in r.output
    assert img.read_bytes() == old
    assert len(r.output.strip().splitlines()) == 1


def test_refuses_real_boot_loader(tmp_path: Path) -> None:
    grub = b"\xeb\x63\x90" + b"\x00" * 0x180 + b"GRUB \x00Geom\x00Hard Disk\x00Read\x00 Error"
    img = protective_disk(tmp_path / "d.img", grub)
    old = img.read_bytes()
    r = invoke(img)
    assert r.exit_code == 2 and "GRUB's boot.img" in r.output and "--force" in r.output
    assert img.read_bytes() == old
    assert invoke("--force", img).exit_code == 0
    assert img.read_bytes()[:440] == build_boot_code()


def test_backup_restore(tmp_path: Path) -> None:
    img = protective_disk(tmp_path / "d.img", b"\xfa\xf4")
    old = img.read_bytes()
    bak = tmp_path / "sector0.bak"
    assert invoke("--force", "--backup", bak, img).exit_code == 0
    assert bak.read_bytes() == old[:512]
    # An existing backup is never overwritten.
    r = invoke("--backup", bak, img)
    assert r.exit_code == 2 and "exists" in r.output
    assert invoke("--restore", bak, img).exit_code == 0
    assert img.read_bytes() == old


def test_restore_refuses_changed_table(tmp_path: Path) -> None:
    img = protective_disk(tmp_path / "d.img")
    bak = tmp_path / "b"
    assert invoke("--backup", bak, img).exit_code == 0
    data = bytearray(img.read_bytes())
    data[440] ^= 1
    img.write_bytes(bytes(data))
    r = invoke("--restore", bak, img)
    assert r.exit_code == 2 and "changed" in r.output
    assert invoke("--restore", bak, "--force", img).exit_code == 0
    r = invoke("--restore", tmp_path / "missing", img)
    assert r.exit_code == 2


def test_dry_run(tmp_path: Path) -> None:
    img = protective_disk(tmp_path / "d.img")
    old = img.read_bytes()
    bak = tmp_path / "b"
    r = invoke("--dry-run", "--json", "--backup", bak, img)
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert doc["changed"] is True and doc["dry_run"] is True
    assert doc["after"]["boot_code"] == "byebyebios"
    assert img.read_bytes() == old and not bak.exists()


def test_no_partition_table_gets_empty_mbr(tmp_path: Path) -> None:
    img = tmp_path / "blank.img"
    img.write_bytes(b"\x00" * SIZE)
    assert invoke(img).exit_code == 0
    data = img.read_bytes()
    assert data[510:512] == b"\x55\xaa" and data[440:510] == bytes(70)


def test_errors_are_one_line(tmp_path: Path) -> None:
    small = tmp_path / "small.img"
    small.write_bytes(b"\x00" * 100)
    for args in ([small], [tmp_path / "missing.img"], ["--check", "--restore", small, small]):
        r = invoke(*args)
        assert r.exit_code == 2
        assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_sparse_file_stays_sparse(tmp_path: Path) -> None:
    img = tmp_path / "sparse.img"
    with open(img, "wb") as f:
        f.truncate(256 << 20)
    img.chmod(0o640)
    assert invoke(img).exit_code == 0
    st = img.stat()
    assert st.st_size == 256 << 20
    assert st.st_blocks * 512 < 16 << 20
    assert st.st_mode & 0o777 == 0o640


def test_qcow2_native(tmp_path: Path) -> None:
    raw = protective_disk(tmp_path / "d.img").read_bytes()
    q = tmp_path / "d.qcow2"
    q.write_bytes(raw_to_qcow2(raw))
    old = q.read_bytes()
    r = invoke("--json", q)
    assert r.exit_code == 0 and json.loads(r.output)["format"] == "qcow2"
    new = q.read_bytes()
    assert len(new) == len(old)
    assert sum(a != b for a, b in zip(old, new, strict=True)) <= 440
    view = Qcow2Image.parse(new).to_raw()
    assert view[:440] == build_boot_code() and view[440:] == raw[440:]
    assert invoke("--check", q).exit_code == 0
    if shutil.which("qemu-img"):
        subprocess.run(["qemu-img", "check", q], check=True, capture_output=True)


def test_qcow2_unallocated_first_cluster_allocated(tmp_path: Path) -> None:
    q = tmp_path / "blank.qcow2"
    q.write_bytes(raw_to_qcow2(bytes(SIZE)))
    assert invoke(q).exit_code == 0
    view = Qcow2Image.parse(q.read_bytes()).to_raw()
    assert view[:440] == build_boot_code() and view[510:512] == b"\x55\xaa"
    assert view[512:] == bytes(SIZE - 512)
    if shutil.which("qemu-img"):
        subprocess.run(["qemu-img", "check", q], check=True, capture_output=True)


def test_qcow2_compressed_refused(tmp_path: Path) -> None:
    need_tool("qemu-img")
    raw = protective_disk(tmp_path / "d.img")
    q = tmp_path / "c.qcow2"
    subprocess.run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, q], check=True)
    old = q.read_bytes()
    r = invoke(q)
    assert r.exit_code == 2 and "compressed" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert q.read_bytes() == old


def test_console_script_help() -> None:
    import sys

    exe = Path(sys.executable).with_name("byebyebios")
    if not exe.exists():
        unavailable(f"{exe}: console script not installed (pip install -e .)")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "--restore" in out and "--check" in out
