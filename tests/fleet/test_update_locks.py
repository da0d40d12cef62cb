"""A store that a running QEMU holds is refused (exit 2) and left untouched: QEMU's image
locks (OFD byte-range locks on bytes 100.. and 200..) are seen, for real, on a QEMU started
here with Debian's OVMF and the store on pflash."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from corpus.params import CORPUS, need, need_tool

from fwtools.cli.fw_vars import cli
from fwtools.fleet import locks

OVMF = CORPUS / "trixie" / "amd64" / "ovmf" / "usr" / "share" / "OVMF"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def qemu_binary() -> str:
    return need_tool("qemu-system-x86_64")


def start_qemu(qemu: str, store: Path, *, paused: bool) -> subprocess.Popen[bytes]:
    code = need(OVMF / "OVMF_CODE_4M.fd")
    argv = [qemu, "-machine", "q35", "-accel", "tcg", "-nographic", "-net", "none",
            "-m", "256", "-drive", f"if=pflash,format=raw,readonly=on,file={code}",
            "-drive", f"if=pflash,format=raw,file={store}"]
    if paused:
        argv.append("-S")  # CPUs never start: the firmware cannot write the store
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while locks.holder(store) is None:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"QEMU exited early ({proc.returncode}): {err}")
        if time.monotonic() > deadline:
            stop(proc)
            pytest.fail("QEMU took no lock on the store within 30 s")
        time.sleep(0.2)
    time.sleep(2)  # "wait a few seconds": the firmware is running (unless paused)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "vm_VARS.fd"
    shutil.copyfile(need(OVMF / "OVMF_VARS_4M.ms.fd"), path)
    path.chmod(0o644)
    yield path


def update(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["update", *[str(a) for a in args]],
                                catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("paused", [True, False], ids=["paused", "booting"])
def test_store_held_by_qemu_is_refused(qemu_binary: str, store: Path, tmp_path: Path,
                                       paused: bool) -> None:
    other = tmp_path / "other_VARS.fd"
    shutil.copyfile(store, other)
    proc = start_qemu(qemu_binary, store, paused=paused)
    try:
        held = locks.holder(store)
        assert held is not None and held.offset >= locks.RAW_LOCK_PERM_BASE
        inode = store.stat().st_ino
        before = digest(store) if paused else None
        code, out = update(store, other, "--ca-2023", "--in-place", "--backup")
        assert code == 2, out
        assert f"error: {store}: refused: in use:" in out and "QEMU's image lock" in out
        # The other store is still updated (one failure never stops the rest).
        assert f"{other} [edk2-raw, ovmf-4m-528k]: 2 variables changed" in out
        # Untouched: the same file (never replaced), no backup, no temporary file left.
        assert store.stat().st_ino == inode
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            ["vm_VARS.fd", "other_VARS.fd", "other_VARS.fd.bak"])
        if before is not None:  # paused: nothing but us could have written it
            assert digest(store) == before
        # A dry run is refused the same way (its plan would be stale by the next boot).
        code, out = update(store, "--ca-2023", "--dry-run")
        assert code == 2 and "in use" in out
    finally:
        stop(proc)
    assert locks.holder(store) is None
    code, out = update(store, "--ca-2023", "--in-place")
    assert code == 0, out


def test_hold_keeps_qemu_out(qemu_binary: str, store: Path) -> None:
    """While update holds a store, a QEMU starting on it fails to get its lock."""
    code = need(OVMF / "OVMF_CODE_4M.fd")
    with locks.hold(store):
        done = subprocess.run(
            [qemu_binary, "-machine", "q35", "-accel", "tcg", "-nographic", "-net", "none",
             "-S", "-drive", f"if=pflash,format=raw,readonly=on,file={code}",
             "-drive", f"if=pflash,format=raw,file={store}"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
    assert done.returncode != 0
    assert b"lock" in done.stderr, done.stderr
