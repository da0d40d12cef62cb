"""fwtools.formats.qcow2.update: rewriting guest bytes in place, checked against qemu-img."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from corpus.params import need_tool

from fwtools.errors import UsageError
from fwtools.formats.qcow2 import Qcow2Image, Qcow2UnsupportedError, raw_to_qcow2
from fwtools.formats.qcow2.update import plan_guest_write, write_guest

CS = 65536


def guest() -> bytes:
    raw = bytearray(4 * CS)
    raw[:512] = bytes(range(256)) * 2
    raw[3 * CS : 3 * CS + 4] = b"tail"
    return bytes(raw)


def test_only_the_payload_changes() -> None:
    raw = guest()
    image = raw_to_qcow2(raw, cluster_size=CS)
    new = write_guest(image, 0, b"\xab" * 512)
    assert len(new) == len(image)
    diff = [i for i in range(len(image)) if new[i] != image[i]]
    host = plan_guest_write(Qcow2Image.parse(image), 0, b"x" * 512)[0][0]
    assert diff and min(diff) >= host and max(diff) < host + 512
    view = Qcow2Image.parse(new).to_raw()
    assert view[:512] == b"\xab" * 512 and view[512:] == raw[512:]


def test_unallocated_cluster_allocated() -> None:
    raw = bytearray(4 * CS)
    raw[CS : CS + 4] = b"next"  # an L2 table exists, guest cluster 0 is unallocated
    image = raw_to_qcow2(bytes(raw), cluster_size=CS)
    new = write_guest(image, 0, b"\x01" * 512)
    assert new[: len(image)] != image
    raw[:512] = b"\x01" * 512
    assert Qcow2Image.parse(new).to_raw() == bytes(raw)
    # No L2 table at all: a new L2 table and a new data cluster.
    blank = raw_to_qcow2(bytes(4 * CS), cluster_size=CS)
    view = Qcow2Image.parse(write_guest(blank, 100, b"ab")).to_raw()
    assert view[100:102] == b"ab" and view.count(0) == 4 * CS - 2


def test_allocation_spanning_clusters_refused() -> None:
    blank = raw_to_qcow2(bytes(4 * CS), cluster_size=CS)
    with pytest.raises(Qcow2UnsupportedError, match="several clusters"):
        write_guest(blank, CS - 1, b"ab")


def test_outside_virtual_size() -> None:
    image = raw_to_qcow2(guest(), cluster_size=CS)
    with pytest.raises(UsageError):
        write_guest(image, 4 * CS - 100, b"\x01" * 512)


@pytest.mark.parametrize("args", [[], ["-o", "cluster_size=4096"], ["-o", "compat=0.10"],
                                  ["-o", "extended_l2=on"]])
def test_qemu_img_oracle(tmp_path: Path, args: list[str]) -> None:
    need_tool("qemu-img")
    raw = tmp_path / "g.raw"
    raw.write_bytes(guest())
    q = tmp_path / "g.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", *args, raw, q],
                   check=True)
    old = tmp_path / "old.qcow2"
    shutil.copy(q, old)
    q.write_bytes(write_guest(q.read_bytes(), 0, b"\xcd" * 512))
    subprocess.run(["qemu-img", "check", q], check=True, capture_output=True)
    cmp = subprocess.run(["qemu-img", "compare", old, q], capture_output=True, text=True)
    assert cmp.returncode == 1 and "offset 0!" in cmp.stdout
    # Everything after the first sector still matches.
    expected = tmp_path / "expected.raw"
    expected.write_bytes(b"\xcd" * 512 + guest()[512:])
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", expected, q],
                   check=True, capture_output=True)


def test_compressed_refused(tmp_path: Path) -> None:
    need_tool("qemu-img")
    raw = tmp_path / "g.raw"
    raw.write_bytes(guest())
    q = tmp_path / "c.qcow2"
    subprocess.run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, q], check=True)
    with pytest.raises(Qcow2UnsupportedError, match="compressed"):
        write_guest(q.read_bytes(), 0, b"\x01" * 512)


@pytest.mark.parametrize(
    ("create", "io"),
    [([], []), (["-o", "compat=0.10"], []), (["-o", "cluster_size=4096"], []),
     ([], ["write -P 7 65536 512"]), ([], ["write -P 7 65536 512", "write -z 0 65536"]),
     (["-o", "cluster_size=512"], ["write -P 7 4096 512"])],
)
def test_allocate_qemu_img_oracle(tmp_path: Path, create: list[str], io: list[str]) -> None:
    need_tool("qemu-io")
    q = tmp_path / "t.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *create, q, "4M"], check=True)
    for cmd in io:
        subprocess.run(["qemu-io", "-c", cmd, q], check=True, capture_output=True)
    before = tmp_path / "before.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", q, before], check=True)
    q.write_bytes(write_guest(q.read_bytes(), 0, b"\xee" * 512))
    subprocess.run(["qemu-img", "check", q], check=True, capture_output=True)
    expected = tmp_path / "expected.raw"
    expected.write_bytes(b"\xee" * 512 + before.read_bytes()[512:])
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", expected, q],
                   check=True, capture_output=True)
