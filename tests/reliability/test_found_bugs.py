"""Regression tests for the defects issue 8's hardening work found that have no fixture file
in testdata/fuzz/ (those are replayed by tests/fuzz/test_fuzz_regressions.py)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fwtools.cli.fw_sigdb import cli as fw_sigdb
from fwtools.cli.fw_vars import cli as fw_vars
from fwtools.crypto.x509info import certificate_info

TD = Path(__file__).resolve().parents[2] / "testdata"


def _run(tool: object, *args: object) -> tuple[int, str, str]:
    r = CliRunner().invoke(tool, [str(a) for a in args], catch_exceptions=False)  # type: ignore[arg-type]
    return r.exit_code, r.stdout, r.stderr


def test_boot_delete_of_the_last_entry_drops_boot_order(tmp_path: Path) -> None:
    # Found by tests/reliability/test_crash_safety.py: deleting the only Boot#### entry set
    # an empty BootOrder, which the store refuses (UsageError) outside the CLI's error
    # handling: a traceback.
    store = tmp_path / "s.fd"
    code, _, err = _run(fw_vars, "boot", "add", TD / "varstore/normal-format.fd",
                        "--description", "only", "--path", "\\EFI\\x.efi", "--number", "0001",
                        "-o", store)
    assert code == 0, err
    code, out, err = _run(fw_vars, "boot", "delete", store, "0001", "--in-place")
    assert code == 0, err
    assert "Boot0001 deleted" in out
    code, out, _ = _run(fw_vars, "show", store)
    assert code == 0 and "BootOrder" not in out and "Boot0001" not in out


def _nested_error_cert() -> bytes:
    """The X.509 entry of a siglist crasher whose Name is cut inside a NameTypeAndValue:
    asn1crypto's message for it goes on with "\n    while parsing ..." lines."""
    from fwtools.formats.efi.siglist import SignatureDatabase

    fixture = TD / "fuzz/siglist/crash-x509-name-real-0091693f.bin"
    db = SignatureDatabase.parse(fixture.read_bytes())
    return next(e.data for _i, _j, sl, e in db.entries() if sl.is_x509 and b"\x0c" in e.data
                and _fails(e.data))


def _fails(der: bytes) -> bool:
    try:
        certificate_info(der)
    except Exception:
        return True
    return False


def test_certificate_errors_are_one_line() -> None:
    try:
        certificate_info(_nested_error_cert())
    except Exception as exc:
        assert "while parsing" in str(exc) and "\n" not in str(exc), str(exc)
    else:  # pragma: no cover
        raise AssertionError("the broken certificate was accepted")


def test_multi_line_library_messages_become_one_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "nested.der"
    bad.write_bytes(_nested_error_cert())
    code, _, err = _run(fw_sigdb, "create", "-o", tmp_path / "x.esl", "--cert", bad)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines


def test_byebyebios_restore_of_a_blank_disk(tmp_path: Path) -> None:
    # Found by the crash matrix: on a disk without 0x55AA, installing gives sector 0 an empty
    # table and 0x55AA; --restore compared the table with the backup's (all zero) and refused
    # without --force, so undoing byebyebios on a blank disk always needed --force.
    from fwtools.cli.byebyebios import command as byebyebios

    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    backup = tmp_path / "sector0.bin"
    assert _run(byebyebios, disk, "--backup", backup)[0] == 0
    code, _, err = _run(byebyebios, disk, "--restore", backup)
    assert code == 0, err
    assert disk.read_bytes() == bytes(1 << 20)
    # A table written after the backup is still protected.
    assert _run(byebyebios, disk)[0] == 0
    data = bytearray(disk.read_bytes())
    data[446 + 4] = 0x83  # a partition appears
    disk.write_bytes(bytes(data))
    code, _, err = _run(byebyebios, disk, "--restore", backup)
    assert code == 2 and "partition table changed" in err


CHILD = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from click.testing import CliRunner
from fwtools.cli.byebyebios import command
r = CliRunner().invoke(command, sys.argv[1:], catch_exceptions=False)
print(r.exit_code)
print(r.stderr)
"""


def test_byebyebios_side_files_are_read_bounded(tmp_path: Path) -> None:
    # --message /dev/zero and --restore /dev/zero read until memory ran out (MemoryError
    # traceback). Run in a child under a 1 GiB address-space limit so that a regression
    # fails instead of eating the machine's memory.
    import subprocess
    import sys

    # Devices are now refused before any read (fwtools/_base/fileio.py); a sparse file far
    # over the limit checks the bound itself.
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:
        f.truncate(4 << 30)
    for side, expected in (("/dev/zero", "is a character device"), (str(huge), "limit")):
        for option in ("--message", "--restore"):
            proc = subprocess.run([sys.executable, "-c", CHILD, option, side, str(disk)],
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr[-1500:]
            code, err = proc.stdout.split("\n", 1)
            assert code == "2" and side in err and expected in err, proc.stdout
            assert disk.read_bytes() == bytes(1 << 20)


def test_qcow2_writes_refuse_metadata_overlaps() -> None:
    # Found by the qcow2 fuzz target (a guest write changed other guest bytes): a guest data
    # cluster lying on metadata. QEMU refuses such writes; so does fwtools now.
    import pytest

    from fwtools.errors import FwError
    from fwtools.formats.qcow2.update import write_guest

    fixtures = TD / "fuzz/qcow2"
    refcount = (fixtures / "data-cluster-is-refcount-block.bin").read_bytes()
    l1 = (fixtures / "data-cluster-is-l1-table.bin").read_bytes()
    for data, offset, what in ((refcount, 0, "metadata and in a data guest cluster"),
                               (refcount, 512, "guest data and a refcount block"),
                               (l1, 512, "guest data and the L1 table"),
                               ((fixtures / "shared-data-cluster.bin").read_bytes(), 0,
                                "a shared cluster")):
        with pytest.raises(FwError, match=what):
            write_guest(data, offset, b"x" * 512)


def test_shipped_names_that_cannot_be_file_names() -> None:
    """A profile, firmware profile or loader model named on the command line with a name too
    long to be a file name: one "unknown ..." line, exit 2 (it was an OSError traceback for
    fw-check --policy; found by atheris, testdata/fuzz/policy/crash-shipped-name-too-long-*)."""
    from fwtools.cli.fw_check import command as fw_check
    from fwtools.cli.fw_check_boot import command as fw_check_boot

    sample = str(Path(__file__).resolve().parents[2] / "testdata/sample/hello-nx.efi")
    name = "x" * 5000
    cases = [
        (fw_check, ["--policy", name, sample], "unknown profile"),
        (fw_check_boot, ["--firmware", name, sample], "unknown firmware profile"),
        (fw_check_boot, ["--firmware", "ovmf", "--model", f"1={name}", sample],
         "unknown loader model"),
    ]
    for command, argv, message in cases:
        result = CliRunner().invoke(command, argv, catch_exceptions=False)
        lines = result.stderr.splitlines()
        assert result.exit_code == 2, result.stderr
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
        assert len(lines[0]) < 600, "the name is shortened in the message"
