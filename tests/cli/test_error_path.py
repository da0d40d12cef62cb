"""One error path (issue 13): any FwError a command does not handle itself becomes one
``error:`` line and exit 2 in the command layer's common entry point (cli/common.py), and
errors carry their file as data instead of being rebuilt from their text.

The reviewer's reproductions are here too: ``fw-vars dbx`` of Microsoft's current dbx
update into Debian 12's 2 MiB-build store (a TypeError traceback), ``fw-vars boot add`` with
a 6000-character description (VariableTooLargeError escaped, exit 1), and a batch stopping
at its first bad input.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from fwtools.cli.byebyebios import command as byebyebios
from fwtools.cli.common import subcommands
from fwtools.cli.fw_check import command as fw_check
from fwtools.cli.fw_check_boot import command as fw_check_boot
from fwtools.cli.fw_pcr import cli as fw_pcr
from fwtools.cli.fw_sigdb import cli as fw_sigdb
from fwtools.cli.fw_vars import cli as fw_vars
from fwtools.cli.pe_inspect import pe_inspect
from fwtools.errors import FwError, ParseError
from fwtools.formats.varstore.errors import VariableTooLargeError

REPO = Path(__file__).resolve().parents[2]
TD = REPO / "testdata"
MS = TD / "microsoft-secureboot-objects"
DBX_UPDATE = MS / "dbx/amd64/DBXUpdate.bin"

TOOLS: dict[str, click.Command] = {
    "pe-inspect": pe_inspect,
    "fw-vars": fw_vars,
    "fw-sigdb": fw_sigdb,
    "fw-pcr": fw_pcr,
    "fw-check": fw_check,
    "fw-check boot-chain": fw_check_boot,
    "byebyebios": byebyebios,
}


def invoke(command: click.Command, *args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    return lines[0]


# --- the error objects ---------------------------------------------------------------------


class OddError(FwError):
    """A subclass whose constructor takes no message (as VariableTooLargeError's does):
    rebuilding it from a string, ``type(exc)(msg)``, is a TypeError."""

    def __init__(self, count: int, raw: bytes) -> None:
        super().__init__(f"{count} odd things in {raw!r}")
        self.count = count


def test_path_is_data_and_keeps_the_error() -> None:
    exc = OddError(3, b"xy")
    same = exc.with_path("dir/file.bin")
    assert same is exc and exc.path == "dir/file.bin" and exc.count == 3
    assert str(exc) == "dir/file.bin: 3 odd things in b'xy'"
    exc.with_path("other.bin")  # the first file named stays
    assert str(exc).startswith("dir/file.bin: ")
    assert str(exc.with_hint("do this instead")).endswith("; do this instead")


def test_parse_error_keeps_structure_and_offset() -> None:
    exc = ParseError("bad magic", structure="HEADER", offset=0x40).with_path("a.bin")
    assert isinstance(exc, ParseError)
    assert (exc.path, exc.structure, exc.offset) == ("a.bin", "HEADER", 0x40)
    assert str(exc) == "a.bin: HEADER: offset 0x40: bad magic"


def test_a_message_that_names_its_file_is_not_prefixed_twice() -> None:
    exc = FwError("x.fd: is a directory").with_path("x.fd")
    assert str(exc) == "x.fd: is a directory"


def test_nothing_rebuilds_exceptions_from_strings() -> None:
    # type(exc)(message) and exc.__class__(message): a new exception of the same class built
    # from text, which loses the data (and breaks on subclasses with other constructors).
    found = subprocess.run(
        ["grep", "-rnE", "--include=*.py", r"(type\(\w+\)|\.__class__)\(", str(REPO / "fwtools")],
        capture_output=True, text=True)
    assert found.stdout == "", found.stdout


# --- every console command: an unexpected FwError is one line and exit 2 ---------------------


def _leaves(name: str, command: click.Command) -> list[tuple[str, click.Command, list[str]]]:
    """(name, command, path of subcommand names) for every leaf command under ``command``."""
    if not isinstance(command, click.Group):
        return [(name, command, [])]
    out = []
    for sub_name, sub in subcommands(command).items():
        for leaf_name, leaf, path in _leaves(f"{name} {sub_name}", sub):
            out.append((leaf_name, leaf, [sub_name, *path]))
    return out


def _value(param: click.Parameter) -> str:
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, (click.types.IntParamType, click.IntRange)):
        return "1"
    return "x"


def minimal_argv(command: click.Command) -> list[str]:
    """Arguments that get past click's parsing to the callback."""
    argv: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument) and param.required:
            argv.append(_value(param))
        elif isinstance(param, click.Option) and param.required:
            argv += [param.opts[0], _value(param)]
    return argv


LEAVES = [(tool, name, leaf, path) for tool, command in TOOLS.items()
          for name, leaf, path in _leaves(tool, command)]


@pytest.mark.parametrize(("tool", "name", "leaf", "path"), LEAVES, ids=[x[1] for x in LEAVES])
def test_unexpected_fw_error_is_one_line(tool: str, name: str, leaf: click.Command,
                                         path: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise OddError(7, b"\x00").with_path("some/input.bin")

    monkeypatch.setattr(leaf, "callback", boom)
    code, out, err = invoke(TOOLS[tool], *path, *minimal_argv(leaf))
    assert code == 2, (name, code, out, err)
    assert one_error_line(err) == "error: some/input.bin: 7 odd things in b'\\x00'"


def test_every_subcommand_is_covered() -> None:
    names = {x[1] for x in LEAVES}
    assert {"pe-inspect", "fw-check", "fw-check boot-chain", "byebyebios", "fw-vars show",
            "fw-vars boot add", "fw-vars convert", "fw-sigdb verify"} <= names
    assert len(names) > 25


@pytest.mark.parametrize(("tool", "target", "argv"), [
    ("fw-vars", "fwtools.formats.varstore.storeio.load_store", ["show", "x.fd"]),
    ("fw-vars", "fwtools.formats.varstore.storeio.load_store", ["boot", "list", "x.fd"]),
    ("fw-sigdb", "fwtools.crypto.sigdb_inputs.load_input", ["dedupe", "x.esl", "-o", "y"]),
    ("pe-inspect", "fwtools.policy.collect.inspect_path", ["x.efi"]),
    ("fw-check", "fwtools.policy.profiles.load_profile", ["x.efi"]),
    ("fw-check boot-chain", "fwtools.uefi.replay.replay_files",
     ["--firmware", "ovmf", "x.efi"]),
])
def test_library_error_with_odd_constructor_is_one_line(
    tool: str, target: str, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real library entry point raising the class that used to escape."""
    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise VariableTooLargeError("Foo", __import__("uuid").UUID(int=0), 9000, 8192,
                                    "PcdMaxVariableSize").with_path("x.bin")

    monkeypatch.setattr(target, boom)
    code, out, err = invoke(TOOLS[tool], *argv)
    assert code == 2, (code, out, err)
    line = one_error_line(err)
    assert line.startswith("error: x.bin: variable Foo") and "8192" in line


# --- the reviewer's reproductions ------------------------------------------------------------


def test_dbx_too_large_for_the_2m_store_says_how_and_what_to_do(corpus: Any,
                                                               tmp_path: Path) -> None:
    """Debian 12's OVMF_VARS.ms.fd (OVMF 2M build: PcdMaxAuthVariableSize 0x2800) cannot take
    Microsoft's current amd64 dbx: one line with the size, the limit and the way out."""
    store = corpus.ovmf("bookworm", "OVMF_VARS.ms.fd")
    out = tmp_path / "out.fd"
    code, stdout, err = invoke(fw_vars, "dbx", store, DBX_UPDATE, "-o", out)
    assert code == 2, err
    line = one_error_line(err)
    assert f"error: {store}: variable dbx " in line
    assert "needs a 21436-byte record" in line  # header + name + merged lists
    assert "PcdMaxAuthVariableSize of 10240 bytes" in line
    assert f"'fw-vars convert {store} NEW.fd --layout ovmf-4m-528k'" in line
    assert "OVMF_CODE_4M.fd" in line
    assert not out.exists() and stdout == ""


def test_boot_add_with_a_huge_description_is_one_line(corpus: Any, tmp_path: Path) -> None:
    store = corpus.ovmf("bookworm", "OVMF_VARS.fd")
    out = tmp_path / "out.fd"
    code, _, err = invoke(fw_vars, "boot", "add", store, "--description", "d" * 6000,
                          "--path", "\\EFI\\debian\\shimx64.efi", "-o", out)
    assert code == 2, err
    line = one_error_line(err)
    assert "variable Boot0000" in line and "PcdMaxVariableSize of 8192 bytes" in line
    assert "--layout ovmf-4m-528k" in line
    assert not out.exists()


@pytest.fixture
def good_bad_good(corpus: Any, tmp_path: Path) -> tuple[Path, Path, Path]:
    good = corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd")
    other = tmp_path / "good2.fd"
    other.write_bytes(corpus.ovmf("bookworm", "OVMF_VARS.fd").read_bytes())
    bad = tmp_path / "bad.fd"
    bad.write_bytes(b"\x5a" * 4096)
    return good, bad, other


def test_check_goes_on_after_a_bad_store(good_bad_good: tuple[Path, Path, Path]) -> None:
    good, bad, other = good_bad_good
    code, out, err = invoke(fw_vars, "check", good, bad, other)
    assert code == 2
    assert one_error_line(err).startswith(f"error: {bad}: ")
    assert f"{good}: edk2-raw" in out and f"{other}: edk2-raw" in out


def test_check_json_reports_every_store(good_bad_good: tuple[Path, Path, Path]) -> None:
    good, bad, other = good_bad_good
    code, out, _ = invoke(fw_vars, "check", "--json", good, bad, other)
    assert code == 2
    doc = json.loads(out)
    files = doc["files"]
    assert [f["path"] for f in files] == [str(good), str(bad), str(other)]
    assert "error" in files[1] and "error" not in files[0] and "error" not in files[2]
    assert files[2]["layout"] == "ovmf-2m-128k"


def test_check_exit_status_is_the_worst(good_bad_good: tuple[Path, Path, Path],
                                        tmp_path: Path) -> None:
    good, _bad, _ = good_bad_good
    assert invoke(fw_vars, "check", good)[0] == 0
    # A store the firmware copes with but check warns about (a variable over the build's
    # limit) is exit 1; with an unreadable one beside it, the worst is 2 whatever the order.
    missing = tmp_path / "missing.fd"
    assert invoke(fw_vars, "check", missing, good)[0] == 2
    assert invoke(fw_vars, "check", good, missing)[0] == 2


BATCHES = [
    # (tool, argv before the inputs, the good input kind)
    ("pe-inspect", ["--json"], "pe"),
    ("fw-check", ["--json"], "pe"),
    ("fw-sigdb", ["show", "--json"], "auth"),
    ("fw-sigdb", ["verify", "--json", "--cert",
                  str(MS / "certs/kek/MicCorKEKCA2011_2011-06-24.der")], "auth"),
]


@pytest.mark.parametrize(("tool", "argv", "kind"), BATCHES,
                         ids=[f"{b[0]} {b[1][0]}" for b in BATCHES])
def test_batch_reports_every_input(tool: str, argv: list[str], kind: str, corpus: Any,
                                   tmp_path: Path) -> None:
    good = corpus.shim("bookworm", "amd64") if kind == "pe" else DBX_UPDATE
    other = tmp_path / f"second{good.suffix}"
    other.write_bytes(good.read_bytes())
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"MZ" + b"\xff" * 100)
    code, out, err = invoke(TOOLS[tool], *argv, good, bad, other)
    assert code == 2, err
    assert any(str(bad) in line for line in err.splitlines())
    assert all(line.startswith(("error: ", "warning: ")) for line in err.splitlines())
    text = out
    assert str(good) in text and str(other) in text, text[:2000]


def test_extract_certs_reports_every_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    bad1, bad2 = tmp_path / "bad1.esl", tmp_path / "bad2.esl"
    bad1.write_bytes(b"\x01" * 40)
    bad2.write_bytes(b"\x02" * 40)
    target = tmp_path / "certs"
    code, _, err = invoke(fw_sigdb, "extract-certs", target, bad1, DBX_UPDATE, bad2)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2 and str(bad1) in lines[0] and str(bad2) in lines[1]
    assert not target.exists()


def test_failed_dbx_verification_is_a_verdict(corpus: Any, tmp_path: Path) -> None:
    """VerificationError is exit 1 (docs/design.md: 1 = a verification failed), naming the
    update, not the store."""
    store = corpus.ovmf("bookworm", "OVMF_VARS_4M.fd")  # no KEK or PK: nothing to verify with
    update = MS / "db/amd64/DBUpdate2024.bin"
    code, _, err = invoke(fw_vars, "dbx", store, update, "--name", "db", "--cert",
                          MS / "certs/pk/WindowsOEMDevicesPK.der", "-o", tmp_path / "o.fd")
    assert code == 1, err
    line = one_error_line(err)
    assert line.startswith(f"error: {update}: db update not applied")


def test_sbat_level_with_a_bad_escape_is_one_line(tmp_path: Path) -> None:
    """``--level '\\x'``: the unicode_escape decoding raised UnicodeDecodeError, a traceback
    (found while removing the call() wrappers)."""
    out = tmp_path / "out.fd"
    code, _, err = invoke(fw_vars, "sbat-level", TD / "varstore/normal-format.fd", "--level",
                          "\\x", "-o", out)
    assert code == 2
    assert one_error_line(err).startswith("error: --level '\\\\x': ")
    assert not out.exists()


@pytest.mark.parametrize(("tool", "argv"), [
    ("fw-sigdb", ["create", "-o", "{OUT}", "--cert", "{BAD1}", "--cert", "{GOOD}",
                  "--cert", "{BAD2}"]),
    ("fw-sigdb", ["merge", "{BAD1}", "{GOOD}", "{BAD2}", "-o", "{OUT}"]),
    ("fw-sigdb", ["verify", str(DBX_UPDATE), "--cert", "{BAD1}", "--cert", "{BAD2}"]),
    ("fw-vars", ["enroll", str(TD / "varstore/normal-format.fd"), "--kek", "{BAD1}",
                 "--kek", "{GOOD}", "--db", "{BAD2}", "-o", "{OUT}"]),
    ("fw-vars", ["dbx", str(TD / "varstore/normal-format.fd"), str(DBX_UPDATE),
                 "--cert", "{BAD1}", "--cert", "{BAD2}", "-o", "{OUT}"]),
], ids=lambda x: x if isinstance(x, str) else x[0])
def test_inputs_written_as_one_are_all_reported(tool: str, argv: list[str],
                                                tmp_path: Path) -> None:
    """A batch that ends in one write reports every unreadable input, then writes nothing."""
    bad1, bad2 = tmp_path / "bad1.der", tmp_path / "bad2.der"
    bad1.write_bytes(b"\x30\x03\x02\x01")
    bad2.write_bytes(b"not a certificate")
    out = tmp_path / "out.bin"
    words = {"{BAD1}": str(bad1), "{BAD2}": str(bad2), "{OUT}": str(out),
             "{GOOD}": str(MS / "certs/kek/MicCorKEKCA2011_2011-06-24.der")}
    code, _, err = invoke(TOOLS[tool], *[words.get(a, a) for a in argv])
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines), lines
    assert str(bad1) in lines[0] and str(bad2) in lines[1]
    assert not out.exists()


def test_a_full_store_names_the_larger_layout(tmp_path: Path) -> None:
    import uuid

    from fwtools.formats.varstore import layout as lay
    from fwtools.formats.varstore.model import Variable
    from fwtools.formats.varstore.store import VariableStore

    vendor = uuid.UUID("11111111-2222-3333-4444-555555555555")
    store = VariableStore.blank(lay.OVMF_2M)
    for i in range(7):  # 7 records of ~8 KiB: 56.7 KiB of the 2M build's 57244 bytes
        store.set(Variable(f"Fill{i}", vendor, 0x07, bytes([i]) * 8000))
    path = tmp_path / "full.fd"
    path.write_bytes(store.to_bytes())
    out = tmp_path / "out.fd"
    code, _, err = invoke(fw_vars, "set", path, "OneMore", "--guid", str(vendor), "--hex",
                          "00" * 2000, "-o", out)
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"error: {path}: variable store full: ")
    assert f"'fw-vars convert {path} NEW.fd --layout ovmf-4m-528k'" in line
    assert not out.exists()
