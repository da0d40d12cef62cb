"""Every command and subcommand under a matrix of bad inputs (issue 8, docs/design.md contracts).

For each (command, bad input) pair the test asserts:

- no traceback anywhere in stdout or stderr (CliRunner runs with ``catch_exceptions=False``,
  so an escaping exception fails the test with its traceback);
- the exit code is 2 (or 1 where a command documents 1 for a failed verification / check);
- stderr is ``error: ...`` lines only, also for arguments click itself rejects (a missing
  path or a directory given to a ``click.Path(dir_okay=False)``): cli/common.py's Command
  and Group fold click's usage-error block into one line; one of the lines names the bad
  input;
- every input file is byte-for-byte unchanged, and the output of a write command was not
  created (no stray temporary files either).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from corpus.params import unavailable, without_read_override

from fwtools.cli.byebyebios import command as byebyebios
from fwtools.cli.fw_check import command as fw_check
from fwtools.cli.fw_check_boot import command as fw_check_boot
from fwtools.cli.fw_check_firmware import command as fw_check_firmware
from fwtools.cli.fw_check_vm import command as fw_check_vm
from fwtools.cli.fw_pcr import cli as fw_pcr
from fwtools.cli.fw_sigdb import cli as fw_sigdb
from fwtools.cli.fw_vars import cli as fw_vars
from fwtools.cli.pe_inspect import pe_inspect

REPO = Path(__file__).resolve().parents[2]
TD = REPO / "testdata"
SAMPLE_PE = TD / "sample/hello-nx.efi"
SIGNED_PE = TD / "sample/hello-nx.signed.efi"
GOOD_STORE = TD / "varstore/normal-format.fd"
GOOD_ESL = TD / "sigdb/mixed.esl"
GOOD_AUTH = TD / "sigdb/db-fwtools-ci.auth"
DB_KEY = TD / "sigdb/keys/db.key"
DB_CERT = TD / "sigdb/db.pem"
KEK_CERT = TD / "sigdb/kek.pem"
QCOW2 = TD / "qcow2/v3-4k-zero.qcow2"
HASH = "ab" * 32

TOOLS: dict[str, click.Command] = {
    "pe-inspect": pe_inspect,
    "fw-sigdb": fw_sigdb,
    "fw-vars": fw_vars,
    "fw-check": fw_check,
    "fw-check boot-chain": fw_check_boot,
    "fw-check firmware": fw_check_firmware,
    "fw-check vm": fw_check_vm,
    "byebyebios": byebyebios,
    "fw-pcr": fw_pcr,
}
EVENT_LOG = TD / "tcg/ovmf-d12-kernel.eventlog.bin"


# --- the bad inputs -------------------------------------------------------------------------

def _truncate(src: Path, keep: float) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        data = src.read_bytes()
        out = d / f"truncated-{src.name}"
        out.write_bytes(data[: max(1, int(len(data) * keep))])
        return out
    return make


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name
    return make


def _copy(src: Path) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        out = d / f"wrongkind-{src.name}"
        shutil.copyfile(src, out)
        return out
    return make


def _huge_qcow2(d: Path) -> Path:
    data = bytearray(QCOW2.read_bytes())
    data[24:32] = struct.pack(">Q", 1 << 60)  # QCowHeader.size
    out = d / "huge-virtual.qcow2"
    out.write_bytes(bytes(data))
    return out


def _sparse(d: Path) -> Path:
    out = d / "sparse-2g.img"
    with open(out, "wb") as f:
        f.truncate((2 << 30) + 123)  # > 1 GiB, no blocks allocated, not a multiple of 512
    return out


def _directory(d: Path) -> Path:
    out = d / "a-directory.efi"
    out.mkdir()
    return out


def _missing(d: Path) -> Path:
    return d / "does-not-exist.bin"


BAD_INPUTS: dict[str, Callable[[Path], Path]] = {
    "empty": _bytes("empty.bin", b""),
    "random": _bytes("random.bin", random.Random(8).randbytes(6000)),
    "trunc-pe": _truncate(SAMPLE_PE, 0.3),
    "trunc-esl": _truncate(GOOD_ESL, 0.5),
    "trunc-auth": _truncate(GOOD_AUTH, 0.5),
    "trunc-store": _truncate(GOOD_STORE, 0.02),
    "trunc-qcow2": _truncate(QCOW2, 0.4),
    "dir": _directory,
    "missing": _missing,
    "pe": _copy(SAMPLE_PE),
    "store": _copy(GOOD_STORE),
    "esl": _copy(GOOD_ESL),
    "huge-qcow2": _huge_qcow2,
    "garbage-pkcs7": _copy(TD / "sigdb/garbage-pkcs7.auth"),
    "sparse-2g": _sparse,
}


# --- the commands ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Cmd:
    """One command line with a slot ``{IN}`` for the bad input and ``{OUT}`` for an output."""

    tool: str
    argv: tuple[str, ...]
    # Bad inputs this slot does not reject on purpose (e.g. a PE given to pe-inspect).
    accepts: frozenset[str] = frozenset()
    codes: frozenset[int] = frozenset({2})
    # The bad input lands on an argument the command rewrites in place (byebyebios IMAGE).
    in_place: bool = False
    # The output is a report, written even when some inputs are bad (fw-check -o).
    report: bool = False

    @property
    def id(self) -> str:
        words = [Path(w).name if w.startswith("/") else w for w in self.argv]
        words = ["hash" if w == HASH else w for w in words if w not in ("{OUT}", "-o")]
        return f"{self.tool} " + " ".join(words)


PE_OK = frozenset({"pe"})
STORE_OK = frozenset({"store"})
ESL_OK = frozenset({"esl"})
# Signature-list readers take lists, .auth payloads and PE binaries (embedded certificates);
# fw-sigdb's inputs are "ESL, .auth payload, PE" per --help.
SIGDB_OK = frozenset({"esl", "pe", "empty", "garbage-pkcs7"})  # empty = an empty db
CERT_READERS = frozenset({"esl"})

COMMANDS: list[Cmd] = [
    # pe-inspect reads PE images; directories are scanned (not a bad input there).
    Cmd("pe-inspect", ("{IN}",), accepts=PE_OK | {"dir"}),
    Cmd("pe-inspect", ("--json", "{IN}"), accepts=PE_OK | {"dir"}),
    Cmd("pe-inspect", ("--verify", "{IN}", str(SAMPLE_PE)), accepts=frozenset({"esl"})),
    Cmd("pe-inspect", ("--verify", str(TD / "sample/test-ca.pem"), "--dbx", "{IN}", str(SIGNED_PE)),
        accepts=ESL_OK, codes=frozenset({1, 2})),
    Cmd("pe-inspect", ("--vars", "{IN}", str(SAMPLE_PE)), accepts=STORE_OK),
    # fw-sigdb
    Cmd("fw-sigdb", ("show", "{IN}"), accepts=SIGDB_OK),
    Cmd("fw-sigdb", ("add", "{IN}", "-o", "{OUT}", "--hash", HASH),
        accepts=SIGDB_OK | {"missing"}),  # add to a missing DATABASE starts a new one
    Cmd("fw-sigdb", ("add", str(GOOD_ESL), "-o", "{OUT}", "--cert", "{IN}")),
    Cmd("fw-sigdb", ("add", str(GOOD_ESL), "-o", "{OUT}", "--image", "{IN}"), accepts=PE_OK),
    Cmd("fw-sigdb", ("remove", "{IN}", "-o", "{OUT}", "--hash", HASH), accepts=SIGDB_OK),
    Cmd("fw-sigdb", ("dedupe", "{IN}", "-o", "{OUT}"), accepts=SIGDB_OK),
    Cmd("fw-sigdb", ("merge", str(GOOD_ESL), "{IN}", "-o", "{OUT}"), accepts=SIGDB_OK),
    Cmd("fw-sigdb", ("create", "-o", "{OUT}", "--cert", "{IN}")),
    Cmd("fw-sigdb", ("create", "-o", "{OUT}", "--from", "{IN}"), accepts=SIGDB_OK),
    Cmd("fw-sigdb", ("create", "-o", "{OUT}", "--image", "{IN}"), accepts=PE_OK),
    Cmd("fw-sigdb", ("extract-certs", "{OUTDIR}", "{IN}"), accepts=SIGDB_OK),
    Cmd("fw-sigdb", ("sign", "{IN}", "--name", "db", "--key", str(DB_KEY),
                     "--cert", str(DB_CERT), "-o", "{OUT}"), accepts=SIGDB_OK),
    Cmd("fw-sigdb", ("sign", str(GOOD_ESL), "--name", "db", "--key", "{IN}",
                     "--cert", str(DB_CERT), "-o", "{OUT}")),
    Cmd("fw-sigdb", ("sign", str(GOOD_ESL), "--name", "db", "--key", str(DB_KEY),
                     "--cert", "{IN}", "-o", "{OUT}")),
    Cmd("fw-sigdb", ("verify", "{IN}", "--cert", str(KEK_CERT)), codes=frozenset({1, 2})),
    Cmd("fw-sigdb", ("verify", str(GOOD_AUTH), "--cert", "{IN}"), codes=frozenset({1, 2})),
    Cmd("fw-sigdb", ("verify", str(GOOD_AUTH), "--vars", "{IN}"), codes=frozenset({1, 2})),
    # fw-vars: STORE is edk2 raw, qcow2 or JSON.
    Cmd("fw-vars", ("show", "{IN}"), accepts=STORE_OK),
    Cmd("fw-vars", ("get", "{IN}", "Lang", "-o", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("set", "{IN}", "Foo", "--hex", "00", "-o", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("set", str(GOOD_STORE), "Foo", "--file", "{IN}", "-o", "{OUT}"),
        accepts=frozenset(BAD_INPUTS) - {"dir", "missing", "sparse-2g"}),
    Cmd("fw-vars", ("delete", "{IN}", "Lang", "-o", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("enroll", "{IN}", "--pk", str(DB_CERT), "-o", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("enroll", str(GOOD_STORE), "--pk", "{IN}", "-o", "{OUT}")),
    Cmd("fw-vars", ("enroll", str(GOOD_STORE), "--pk", str(DB_CERT), "--kek", "{IN}",
                    "-o", "{OUT}"), accepts=ESL_OK),
    Cmd("fw-vars", ("dbx", "{IN}", str(GOOD_AUTH), "--name", "db", "-o", "{OUT}"),
        codes=frozenset({1, 2})),
    Cmd("fw-vars", ("dbx", str(GOOD_STORE), "{IN}", "-o", "{OUT}"), codes=frozenset({1, 2})),
    Cmd("fw-vars", ("sbat-level", "{IN}", "--level", "sbat,1,2021030218\n", "-o", "{OUT}"),
        accepts=STORE_OK),
    Cmd("fw-vars", ("sbat-level", str(GOOD_STORE), "--file", "{IN}", "-o", "{OUT}")),
    Cmd("fw-vars", ("sbat-level", str(GOOD_STORE), "--from-shim", "{IN}", "-o", "{OUT}")),
    Cmd("fw-vars", ("shim", "{IN}", "--verbose", "-o", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("boot", "list", "{IN}"), accepts=STORE_OK),
    Cmd("fw-vars", ("boot", "add", "{IN}", "--description", "x", "--path", "\\EFI\\x.efi",
                    "-o", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("boot", "delete", "{IN}", "0000", "-o", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("boot", "next", "{IN}", "0000", "-o", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("boot", "order", "{IN}", "0000", "-o", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("convert", "{IN}", "{OUT}"), accepts=STORE_OK),
    Cmd("fw-vars", ("diff", "{IN}", str(GOOD_STORE)), accepts=STORE_OK),
    Cmd("fw-vars", ("diff", str(GOOD_STORE), "{IN}"), accepts=STORE_OK),
    Cmd("fw-vars", ("check", "{IN}"), accepts=STORE_OK, codes=frozenset({1, 2})),
    # fw-check: PATHS are binaries or directories; the other options name data files.
    Cmd("fw-check", ("{IN}",), accepts=PE_OK | {"dir"}, codes=frozenset({1, 2})),
    Cmd("fw-check", ("--policy", "{IN}", str(SAMPLE_PE))),
    Cmd("fw-check", ("--waivers", "{IN}", str(SAMPLE_PE)), accepts=frozenset({"empty"})),
    Cmd("fw-check", ("--db", "{IN}", str(SAMPLE_PE)), accepts=ESL_OK),
    Cmd("fw-check", ("--db", str(TD / "sample/test-ca.pem"), "--dbx", "{IN}", str(SIGNED_PE)),
        accepts=ESL_OK, codes=frozenset({1, 2})),
    Cmd("fw-check", ("--sbat-level", "{IN}", str(SAMPLE_PE))),
    Cmd("fw-check", ("--sbat-level-store", "{IN}", str(SAMPLE_PE)), accepts=STORE_OK),
    Cmd("fw-check", ("--sbat-level-shim", "{IN}", str(SAMPLE_PE))),
    Cmd("fw-check", ("-o", "{OUT}", "{IN}"), accepts=PE_OK | {"dir"}, codes=frozenset({1, 2}),
        report=True),
    # fw-check boot-chain: each stage of the chain, the firmware profile file, the report.
    Cmd("fw-check boot-chain", ("--firmware", "ovmf-strict", "{IN}"), accepts=PE_OK,
        codes=frozenset({1, 2})),
    Cmd("fw-check boot-chain", ("--firmware", "ovmf-strict", str(SAMPLE_PE), "{IN}"),
        accepts=PE_OK, codes=frozenset({1, 2})),
    # an empty profile file is every default (docs/boot-chain.md), as an empty waiver file
    Cmd("fw-check boot-chain", ("--firmware", "{IN}", str(SAMPLE_PE)),
        accepts=frozenset({"empty"})),
    Cmd("fw-check boot-chain", ("--firmware", "ovmf-strict", "--json", "-o", "{OUT}", "{IN}"),
        accepts=PE_OK, codes=frozenset({1, 2})),
    Cmd("fw-check boot-chain", ("--firmware", "ovmf-strict", "--html", "{OUT}", "{IN}"),
        accepts=PE_OK, codes=frozenset({1, 2})),
    # fw-check firmware: no bad input is a firmware image (a variable store is refused too).
    Cmd("fw-check firmware", ("{IN}",)),
    Cmd("fw-check firmware", ("--json", "-o", "{OUT}", "{IN}")),
    Cmd("fw-check firmware", ("--policy", "{IN}", str(TD / "pi/tiny.fd"))),
    # fw-check vm: the store, the disk, the firmware file, a chain stage, the domain XML.
    Cmd("fw-check vm", ("--firmware", "ovmf-strict", "--vars", "{IN}", str(SAMPLE_PE)),
        accepts=frozenset({"store"})),
    Cmd("fw-check vm", ("--firmware", "ovmf-strict", "--vars", str(GOOD_STORE),
                        "--disk", "{IN}")),
    Cmd("fw-check vm", ("--firmware", "{IN}", "--vars", str(GOOD_STORE), str(SAMPLE_PE))),
    Cmd("fw-check vm", ("--firmware", "ovmf-strict", "--vars", str(GOOD_STORE), "{IN}"),
        accepts=PE_OK, codes=frozenset({1, 2})),
    Cmd("fw-check vm", ("--firmware", "ovmf-strict", "--vars", str(GOOD_STORE), "--html",
                        "{OUT}", "{IN}"), accepts=PE_OK, codes=frozenset({1, 2})),
    Cmd("fw-check vm", ("--libvirt-domain", "{IN}",)),
    # byebyebios rewrites IMAGE in place: a bad image must be left exactly as it was.
    # A 2 GiB sparse file is a legitimate (empty) raw disk for byebyebios.
    Cmd("byebyebios", ("{IN}",), in_place=True, codes=frozenset({1, 2}),
        accepts=frozenset({"sparse-2g"})),
    Cmd("byebyebios", ("--dry-run", "{IN}"), codes=frozenset({1, 2})),
    Cmd("byebyebios", ("--check", "{IN}"), codes=frozenset({1, 2})),
    Cmd("byebyebios", ("--message", "{IN}", "{IMAGE}"), accepts=frozenset({"empty"})),
    Cmd("byebyebios", ("--restore", "{IN}", "{IMAGE}")),
    # fw-pcr log reads a TCG event log, and PCR values (a directory, text or JSON) for --pcrs.
    Cmd("fw-pcr", ("log", "{IN}")),
    Cmd("fw-pcr", ("log", "--json", "{IN}")),
    Cmd("fw-pcr", ("log", str(EVENT_LOG), "--pcrs", "{IN}")),
    # fw-pcr predict reads a store, the chain's PE images and a disk image (its GPT).
    Cmd("fw-pcr", ("predict", "--vars", "{IN}", str(SAMPLE_PE)), accepts=STORE_OK),
    Cmd("fw-pcr", ("predict", "--vars", str(GOOD_STORE), "{IN}"), accepts=PE_OK),
    Cmd("fw-pcr", ("predict", "--vars", str(GOOD_STORE), str(SAMPLE_PE), "--disk", "{IN}")),
]

# Known contract deviations found by this matrix (xfail strict: fixing one turns it into an
# XPASS failure, so the entry must then be removed). Filled in below.
KNOWN: dict[str, str] = {}
_KNOWN_GROUPS: dict[str, tuple[str, list[str]]] = {
}
for _reason, _ids in _KNOWN_GROUPS.values():
    KNOWN.update(dict.fromkeys(_ids, _reason))


# A sparse 2 GiB file costs real time only for commands that read it: keep it to the ones
# whose main input it is.
SPARSE_FOR = {"pe-inspect {IN}", "fw-sigdb show {IN}", "fw-vars show {IN}", "fw-check {IN}",
              "byebyebios {IN}", "fw-vars set normal-format.fd Foo --file {IN}",
              "fw-sigdb dedupe {IN}", "fw-pcr log {IN}"}


def _cases() -> Iterator[object]:
    for cmd in COMMANDS:
        for name in BAD_INPUTS:
            if name in cmd.accepts or (name == "sparse-2g" and cmd.id not in SPARSE_FOR):
                continue
            case_id = f"{cmd.id} <- {name}"
            marks = []
            if case_id in KNOWN:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[case_id]))
            yield pytest.param(cmd, name, id=case_id, marks=marks)


# --- running and checking -------------------------------------------------------------------

@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def _snapshot(paths: list[Path]) -> dict[Path, bytes | None]:
    out: dict[Path, bytes | None] = {}
    for p in paths:
        if p.is_file() and p.stat().st_size < (64 << 20):
            out[p] = p.read_bytes()
        elif p.is_file():
            out[p] = f"{p.stat().st_size}:{p.stat().st_mtime_ns}".encode()
        else:
            out[p] = None
    return out


def _listing(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def invoke(tool: str, argv: list[str]) -> Outcome:
    result = CliRunner().invoke(TOOLS[tool], argv, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def check_error_output(outcome: Outcome, names: list[str]) -> None:
    """stderr holds error lines only, one of which names one of ``names``."""
    text = outcome.stdout + outcome.stderr
    assert "Traceback" not in text, text
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert lines, f"no error message on stderr (stdout: {outcome.stdout[:300]!r})"
    bad = [line for line in lines if not line.startswith("error: ")]
    assert not bad, f"stderr lines that are not one-line errors: {bad}"
    assert any(n in line for line in lines for n in names), (names, lines)


def _fill(cmd: Cmd, bad: Path, work: Path) -> tuple[list[str], Path | None, list[Path]]:
    out = work / "out" / "result.bin"
    out.parent.mkdir(exist_ok=True)
    image = work / "image.raw"
    inputs: list[Path] = [bad]
    argv: list[str] = []
    target: Path | None = None
    for word in cmd.argv:
        if word == "{IN}":
            argv.append(str(bad))
        elif word == "{OUT}":
            argv.append(str(out))
            target = out
        elif word == "{OUTDIR}":
            argv.append(str(work / "out" / "certs"))
            target = work / "out" / "certs"
        elif word == "{IMAGE}":
            image.write_bytes(bytes(1 << 20))
            argv.append(str(image))
            inputs.append(image)
        else:
            argv.append(word)
            if word.startswith(str(TD)):
                inputs.append(Path(word))
    return argv, target, inputs


@pytest.mark.parametrize(("cmd", "bad_name"), list(_cases()))
def test_bad_input(cmd: Cmd, bad_name: str, tmp_path: Path) -> None:
    bad = BAD_INPUTS[bad_name](tmp_path)
    argv, target, inputs = _fill(cmd, bad, tmp_path)
    before = _snapshot(inputs)
    listing = _listing(tmp_path)
    outcome = invoke(cmd.tool, argv)
    assert outcome.code in cmd.codes, (outcome.code, outcome.stdout[-500:], outcome.stderr)
    if outcome.code == 1:
        # A verdict (verification failed, stub not installed), reported on stdout.
        assert "Traceback" not in outcome.stdout + outcome.stderr
    else:
        check_error_output(outcome, [bad.name])
    assert _snapshot(inputs) == before, "an input was modified"
    if cmd.report:
        return
    if target is not None:
        assert not target.exists(), f"{target} was created although the command failed"
    created = _listing(tmp_path) - listing
    assert not created, f"stray files after a failure: {sorted(created)}"


# --- bad option values ----------------------------------------------------------------------

OPTION_CASES: list[tuple[str, str, tuple[str, ...], str]] = [
    # (id, tool, argv, a word the error line must contain)
    ("sigdb-add-bad-owner", "fw-sigdb",
     ("add", str(GOOD_ESL), "-o", "{OUT}", "--owner", "not-a-guid", "--hash", HASH), "not-a-guid"),
    ("sigdb-add-bad-hex", "fw-sigdb", ("add", str(GOOD_ESL), "-o", "{OUT}", "--hash", "zz" * 32),
     "zz"),
    ("sigdb-add-odd-hash-length", "fw-sigdb",
     ("add", str(GOOD_ESL), "-o", "{OUT}", "--hash", "abc"), "abc"),
    ("sigdb-create-bad-owner", "fw-sigdb",
     ("create", "-o", "{OUT}", "--owner", "{1234}", "--hash", HASH), "1234"),
    ("sigdb-remove-bad-owner", "fw-sigdb",
     ("remove", str(GOOD_ESL), "-o", "{OUT}", "--owner", "g-u-i-d"), "g-u-i-d"),
    ("sigdb-remove-bad-hash", "fw-sigdb", ("remove", str(GOOD_ESL), "-o", "{OUT}", "--hash", "0x"),
     "0x"),
    ("sigdb-sign-bad-timestamp", "fw-sigdb",
     ("sign", str(GOOD_ESL), "--name", "db", "--key", str(DB_KEY), "--cert", str(DB_CERT),
      "--timestamp", "2024-13-45T99:00", "-o", "{OUT}"), "2024-13-45"),
    ("sigdb-sign-bad-attributes", "fw-sigdb",
     ("sign", str(GOOD_ESL), "--name", "db", "--key", str(DB_KEY), "--cert", str(DB_CERT),
      "--attributes", "NV,XX", "-o", "{OUT}"), "XX"),
    ("sigdb-sign-bad-guid", "fw-sigdb",
     ("sign", str(GOOD_ESL), "--name", "Foo", "--guid", "1234", "--key", str(DB_KEY),
      "--cert", str(DB_CERT), "-o", "{OUT}"), "1234"),
    ("sigdb-verify-bad-attributes", "fw-sigdb",
     ("verify", str(GOOD_AUTH), "--cert", str(KEK_CERT), "--attributes", "0xZZ"), "0xZZ"),
    ("vars-set-bad-guid", "fw-vars",
     ("set", str(GOOD_STORE), "Foo", "--guid", "zzz", "--hex", "00", "-o", "{OUT}"), "zzz"),
    ("vars-set-bad-hex", "fw-vars",
     ("set", str(GOOD_STORE), "Foo", "--hex", "0g", "-o", "{OUT}"), "0g"),
    ("vars-set-bad-attributes", "fw-vars",
     ("set", str(GOOD_STORE), "Foo", "--attributes", "NV,BOGUS", "--hex", "00", "-o", "{OUT}"),
     "BOGUS"),
    ("vars-set-attributes-overflow", "fw-vars",
     ("set", str(GOOD_STORE), "Foo", "--attributes", "0x1" + "0" * 20, "--hex", "00",
      "-o", "{OUT}"), "0x1"),
    ("vars-set-uint8-overflow", "fw-vars",
     ("set", str(GOOD_STORE), "Foo", "--uint8", "256", "-o", "{OUT}"), "256"),
    ("vars-set-bad-bool", "fw-vars",
     ("set", str(GOOD_STORE), "Foo", "--bool", "maybe", "-o", "{OUT}"), "maybe"),
    ("vars-get-bad-guid", "fw-vars", ("get", str(GOOD_STORE), "Lang", "--guid", "x-y"), "x-y"),
    ("vars-delete-bad-guid", "fw-vars",
     ("delete", str(GOOD_STORE), "Lang", "--guid", "{}", "-o", "{OUT}"), "{}"),
    ("vars-show-bad-guid", "fw-vars", ("show", str(GOOD_STORE), "--guid", "nope"), "nope"),
    ("vars-enroll-bad-timestamp", "fw-vars",
     ("enroll", str(GOOD_STORE), "--pk", str(DB_CERT), "--timestamp", "yesterday-ish",
      "-o", "{OUT}"), "yesterday-ish"),
    ("vars-enroll-bad-owner", "fw-vars",
     ("enroll", str(GOOD_STORE), "--pk", str(DB_CERT), "--owner", "0000", "-o", "{OUT}"), "0000"),
    ("vars-enroll-bad-ms-kek", "fw-vars",
     ("enroll", str(GOOD_STORE), "--pk", str(DB_CERT), "--microsoft-kek", "1999",
      "-o", "{OUT}"), "1999"),
    ("vars-sbat-level-bad-csv", "fw-vars",
     ("sbat-level", str(GOOD_STORE), "--level", "sbat,notanumber", "-o", "{OUT}"),
     "notanumber"),
    ("vars-boot-add-bad-partuuid", "fw-vars",
     ("boot", "add", str(GOOD_STORE), "--description", "x", "--path", "\\x.efi",
      "--partuuid", "bad-uuid", "-o", "{OUT}"), "bad-uuid"),
    ("vars-boot-add-bad-number", "fw-vars",
     ("boot", "add", str(GOOD_STORE), "--description", "x", "--path", "\\x.efi",
      "--number", "XYZW", "-o", "{OUT}"), "XYZW"),
    ("vars-boot-next-bad-entry", "fw-vars",
     ("boot", "next", str(GOOD_STORE), "Boot12345", "-o", "{OUT}"), "12345"),
    ("vars-boot-order-bad-entry", "fw-vars",
     ("boot", "order", str(GOOD_STORE), "00G0", "-o", "{OUT}"), "00G0"),
    ("vars-convert-bad-template", "fw-vars",
     ("convert", str(GOOD_STORE), "{OUT}", "--format", "raw", "--template", "no-such-layout"),
     ""),
    ("check-bad-policy-name", "fw-check", ("--policy", "no-such-profile", str(SAMPLE_PE)),
     "no-such-profile"),
    ("check-bad-history-date", "fw-check",
     ("--sbat-level-history", "2020-99-99", str(SAMPLE_PE)), "2020-99-99"),
    ("check-bad-jobs", "fw-check", ("--jobs", "-3", str(SAMPLE_PE)), "-3"),
    ("bbb-non-ascii-text", "byebyebios", ("--text", "h\u00e9llo \u2603", "{IMAGE}"), ""),
    ("bbb-huge-text", "byebyebios", ("--text", "x" * 5000, "{IMAGE}"), ""),
]


OPTION_KNOWN = {
}


def _option_marks(case_id: str) -> list[pytest.MarkDecorator]:
    if case_id in OPTION_KNOWN:
        return [pytest.mark.xfail(strict=True, reason=OPTION_KNOWN[case_id])]
    return []


@pytest.mark.parametrize(("tool", "argv", "word"),
                         [pytest.param(t, a, w, id=i, marks=_option_marks(i))
                          for i, t, a, w in OPTION_CASES])
def test_bad_option_value(tool: str, argv: tuple[str, ...], word: str, tmp_path: Path) -> None:
    cmd = Cmd(tool, argv)
    filled, target, inputs = _fill(cmd, tmp_path / "unused", tmp_path)
    inputs = [p for p in inputs if p.exists()]
    before = _snapshot(inputs)
    listing = _listing(tmp_path)
    outcome = invoke(tool, filled)
    assert outcome.code == 2, (outcome.code, outcome.stdout[-500:], outcome.stderr)
    check_error_output(outcome, [word])
    assert _snapshot(inputs) == before
    if target is not None:
        assert not target.exists()
    assert not (_listing(tmp_path) - listing)


# --- a few real processes -------------------------------------------------------------------

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(("tool", "argv"), [
    pytest.param("pe-inspect", ["{IN}"], id="pe-inspect"),
    pytest.param("fw-sigdb", ["show", "{IN}"], id="fw-sigdb-show"),
    pytest.param("fw-vars", ["show", "{IN}"], id="fw-vars-show"),
    pytest.param("fw-check", ["{IN}"], id="fw-check"),
    pytest.param("byebyebios", ["{IN}"], id="byebyebios"),
    pytest.param("fw-pcr", ["log", "{IN}"], id="fw-pcr-log"),
])
def test_console_scripts(tool: str, argv: list[str], tmp_path: Path) -> None:
    script = BIN / tool
    if not script.exists():
        unavailable(f"{script}: console script not installed (pip install -e .)")
    bad = tmp_path / "garbage.bin"
    bad.write_bytes(random.Random(3).randbytes(3000))
    before = bad.read_bytes()
    proc = subprocess.run([str(script), *[str(bad) if a == "{IN}" else a for a in argv]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    check_error_output(Outcome(proc.returncode, proc.stdout, proc.stderr), [bad.name])
    assert bad.read_bytes() == before


# --- unreadable files: one child process without the right to read them ---------------------

UNREADABLE_CMDS: list[tuple[str, list[str]]] = [
    ("pe-inspect", ["{IN}"]),
    ("fw-sigdb", ["show", "{IN}"]),
    ("fw-sigdb", ["dedupe", "{IN}", "-o", "{OUT}"]),
    ("fw-vars", ["show", "{IN}"]),
    ("fw-vars", ["set", "{IN}", "Foo", "--hex", "00", "-o", "{OUT}"]),
    ("fw-vars", ["check", "{IN}"]),
    ("fw-check", ["{IN}"]),
    ("fw-check", ["--db", "{IN}", str(SAMPLE_PE)]),
    ("fw-check firmware", ["{IN}"]),
    ("byebyebios", ["{IN}"]),
]

CHILD = r"""
import json, os, sys
from click.testing import CliRunner
sys.path.insert(0, sys.argv[3])
sys.path.insert(0, os.path.join(sys.argv[3], "tests"))
from tests.fuzz.test_command_matrix import TOOLS, UNREADABLE_CMDS
target, out = sys.argv[1], sys.argv[2]
results = []
for tool, argv in UNREADABLE_CMDS:
    args = [target if a == "{IN}" else out if a == "{OUT}" else a for a in argv]
    try:
        r = CliRunner().invoke(TOOLS[tool], args, catch_exceptions=False)
        results.append([tool, argv, r.exit_code, r.stdout, r.stderr])
    except BaseException as exc:  # reported, so the parent shows which command broke
        import traceback
        results.append([tool, argv, -1, "", "Traceback: " + traceback.format_exc()])
print(json.dumps(results))
"""


def test_unreadable_file(tmp_path: Path) -> None:
    target = tmp_path / "secret.bin"
    target.write_bytes(SAMPLE_PE.read_bytes())
    target.chmod(0)
    out = tmp_path / "out.bin"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([*without_read_override(), sys.executable, "-c", CHILD, str(target),
                           str(out), str(REPO)],
                          capture_output=True, text=True, cwd=str(REPO), env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().startswith("["), proc.stderr
    results = json.loads(proc.stdout)
    assert len(results) == len(UNREADABLE_CMDS)
    for tool, argv, code, stdout, stderr in results:
        where = f"{tool} {' '.join(argv)}"
        assert code == 2, (where, code, stderr)
        check_error_output(Outcome(code, stdout, stderr), ["secret.bin"])
        assert "Permission denied" in stderr, (where, stderr)
    assert not out.exists()
