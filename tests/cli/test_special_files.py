"""A named pipe where a file is expected: refused with one line, never opened for reading.

Opening a FIFO for reading blocks until a writer comes, so each case runs the command in a
child process under a timeout: a regression fails here instead of hanging the suite (the
review of issues 14/16 found fw-vars audit DIR, audit/update FIFO, fw-check vm --vars/
--firmware/--disk and fw-check firmware all hanging). The other inputs are Debian's real
OVMF code and store, so each command gets past everything but the FIFO.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest
from corpus.params import CORPUS, need

REPO: Final = Path(__file__).resolve().parents[2]
OVMF: Final = CORPUS / "trixie/amd64/ovmf/usr/share/OVMF"
TIMEOUT: Final = 60  # a hang is a failure, not a stuck run
MAIN: Final = {"fw-vars": "fwtools.cli.fw_vars", "fw-check": "fwtools.cli.fw_check",
               "fw-pcr": "fwtools.cli.fw_pcr"}


def run(tool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    code = f"from {MAIN[tool]} import main; main()"
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    try:
        return subprocess.run([sys.executable, "-c", code, *map(str, args)],
                              capture_output=True, text=True, timeout=TIMEOUT, env=env,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{tool} {' '.join(map(str, args))}: still running after {TIMEOUT} s "
                    "(blocked opening a FIFO?)")


def corpus_file(name: str) -> Path:
    path = OVMF / name
    return need(path if path.is_file() else None)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "vm_VARS.fd"
    os.mkfifo(path)
    return path


def one_error_naming(proc: subprocess.CompletedProcess[str], path: Path) -> str:
    """The single stderr line, which names the FIFO and says what it is."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and str(path) in lines[0], lines[0]
    assert "named pipe (FIFO), not a regular file" in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_audit_directory_skips_a_fifo_named_like_a_store(tmp_path: Path, fifo: Path) -> None:
    store = shutil.copy(corpus_file("OVMF_VARS_4M.ms.fd"), tmp_path / "real_VARS.fd")
    os.mkfifo(tmp_path / "dom.xml")  # a FIFO a domain-XML sniff would open
    proc = run("fw-vars", "audit", "--json", tmp_path)
    import json

    doc = json.loads(proc.stdout)
    assert [s["path"] for s in doc["stores"]] == [str(store)]
    assert doc["stores"][0]["error"] is None and proc.returncode == 1  # the 2011-only findings


def test_audit_directory_of_only_a_fifo_finds_nothing(tmp_path: Path, fifo: Path) -> None:
    proc = run("fw-vars", "audit", tmp_path)
    assert proc.returncode == 2 and "no variable stores found" in proc.stderr, proc.stderr


def test_audit_a_fifo_named_on_the_command_line(tmp_path: Path, fifo: Path) -> None:
    store = corpus_file("OVMF_VARS_4M.ms.fd")
    proc = run("fw-vars", "audit", "--json", fifo, store)
    import json

    rows = json.loads(proc.stdout)["stores"]
    # A store that cannot be read is a row with its one-line error, as a missing file is;
    # the real store after it is still audited.
    assert rows[0]["path"] == str(fifo) and rows[1]["error"] is None
    assert rows[0]["error"] == f"{fifo}: is a named pipe (FIFO), not a regular file"
    assert proc.returncode == 1


@pytest.mark.parametrize("mode", ["--dry-run", "--in-place"])
def test_update_a_fifo(fifo: Path, mode: str) -> None:
    proc = run("fw-vars", "update", "--ca-2023", mode, fifo)
    assert proc.returncode == 2
    # One clean line: "error:" and the path once each (it read "error: P: error: ...").
    assert one_error_naming(proc, fifo) == f"error: {fifo}: is a named pipe (FIFO), not a " \
        "regular file"
    assert fifo.exists() and not fifo.is_file()  # not replaced by a written store


def test_fw_vars_show_a_fifo(fifo: Path) -> None:
    proc = run("fw-vars", "show", fifo)
    assert proc.returncode == 2
    one_error_naming(proc, fifo)


def test_fw_check_firmware_a_fifo(fifo: Path) -> None:
    proc = run("fw-check", "firmware", fifo)
    assert proc.returncode == 2
    one_error_naming(proc, fifo)


@pytest.mark.parametrize("slot", ["--firmware", "--vars", "--disk"])
def test_fw_check_vm_a_fifo_in_each_slot(tmp_path: Path, fifo: Path, slot: str) -> None:
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    files = {"--firmware": corpus_file("OVMF_CODE_4M.secboot.fd"),
             "--vars": corpus_file("OVMF_VARS_4M.ms.fd"), "--disk": disk}
    files[slot] = fifo
    proc = run("fw-check", "vm", *(x for kv in files.items() for x in kv))
    assert proc.returncode == 2
    one_error_naming(proc, fifo)


@pytest.mark.parametrize("slot", ["EVENTLOG", "--pcrs"])
def test_fw_pcr_log_a_fifo(fifo: Path, slot: str) -> None:
    log = REPO / "testdata/tcg/ovmf-d12-kernel.eventlog.bin"
    args = [fifo] if slot == "EVENTLOG" else [log, "--pcrs", fifo]
    proc = run("fw-pcr", "log", *args)
    assert proc.returncode == 2
    one_error_naming(proc, fifo)
