"""Usage errors click itself detects are one ``error:`` line with exit 2 (issue 8).

click's standalone mode prints them as a block (``Usage:``, ``Try ... --help``, ``Error:``);
cli/common.py's Command and Group report them on one line naming the command path. Help,
a bare group (which prints its help) and the commands' own exit codes are unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fwtools.cli.byebyebios import command as byebyebios
from fwtools.cli.fw_check import command as fw_check
from fwtools.cli.fw_check_boot import command as fw_check_boot
from fwtools.cli.fw_pcr import cli as fw_pcr
from fwtools.cli.fw_sigdb import cli as fw_sigdb
from fwtools.cli.fw_vars import cli as fw_vars
from fwtools.cli.pe_inspect import pe_inspect

REPO = Path(__file__).resolve().parents[2]
CASES: list[tuple[click.Command, str, list[str], str]] = [
    # (command, prog name, argv, text the one line must contain)
    (pe_inspect, "pe-inspect", [], "Missing argument 'PATHS...'"),
    (pe_inspect, "pe-inspect", ["--bogus", "x.efi"], "No such option '--bogus'"),
    (pe_inspect, "pe-inspect", ["--verify"], "'--verify' requires an argument"),
    (fw_vars, "fw-vars", ["nosuch"], "No such command 'nosuch'"),
    (fw_vars, "fw-vars", ["show"], "fw-vars show: Missing argument 'STORE'"),
    (fw_vars, "fw-vars", ["show", "--bogus", "x.fd"], "fw-vars show: No such option"),
    (fw_vars, "fw-vars", ["boot", "nosuch"], "fw-vars boot: No such command 'nosuch'"),
    (fw_vars, "fw-vars", ["convert", "a.fd", "b.fd", "--format", "zip"],
     "Invalid value for '--format'"),
    (fw_sigdb, "fw-sigdb", ["show"], "fw-sigdb show: Missing argument"),
    (fw_sigdb, "fw-sigdb", ["create", "--cert", "a.der"], "Missing option '-o' / '--output'"),
    (fw_check, "fw-check", ["--fail-on", "bogus", "x.efi"], "Invalid value for '--fail-on'"),
    (fw_check_boot, "fw-check boot-chain", ["--arch", "mips", "x.efi"],
     "Invalid value for '--arch'"),
    (fw_pcr, "fw-pcr", ["log"], "fw-pcr log: Missing argument 'EVENTLOG'"),
    (fw_pcr, "fw-pcr", ["predict"], "Missing option '--vars'"),
    (fw_pcr, "fw-pcr", ["frobnicate"], "No such command 'frobnicate'"),
    (fw_pcr, "fw-pcr", ["log", "--pcrs"], "'--pcrs' requires an argument"),
    (byebyebios, "byebyebios", [], "Missing argument 'IMAGE'"),
    (byebyebios, "byebyebios", ["--nope", "disk.img"], "No such option '--nope'"),
]


@pytest.mark.parametrize(("command", "prog", "argv", "text"), CASES,
                         ids=[f"{c[1]} {' '.join(c[2])}" for c in CASES])
def test_click_usage_error_is_one_line(command: click.Command, prog: str, argv: list[str],
                                       text: str) -> None:
    result = CliRunner().invoke(command, argv, prog_name=prog, catch_exceptions=False)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {prog}"), lines
    assert text in lines[0]
    assert lines[0].endswith("--help')")
    assert result.stdout == ""


@pytest.mark.parametrize("command", [pe_inspect, fw_vars, fw_sigdb, fw_check, byebyebios,
                                     fw_pcr])
def test_help_still_exits_0(command: click.Command) -> None:
    result = CliRunner().invoke(command, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage:")


def test_bare_group_prints_its_help_and_exits_2() -> None:
    result = CliRunner().invoke(fw_vars, [], prog_name="fw-vars", catch_exceptions=False)
    assert result.exit_code == 2
    assert "Commands:" in result.output


def test_command_exit_codes_pass_through() -> None:
    """A command's own sys.exit(1) (the gate found problems) stays 1, and a clean run 0."""
    sample = REPO / "testdata" / "sample"
    failing = CliRunner().invoke(fw_check, [str(sample / "legacy-wx.efi")],
                                 catch_exceptions=False)
    assert failing.exit_code == 1
    passing = CliRunner().invoke(pe_inspect, ["--json", str(sample / "hello-nx.efi")],
                                 catch_exceptions=False)
    assert passing.exit_code == 0


def test_console_script_usage_error_is_one_line() -> None:
    """The installed entry point, not only the click object, reports one line."""
    proc = subprocess.run([sys.executable, "-m", "fwtools", "--no-such-option", "x.efi"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: pe-inspect: No such option '--no-such-option'. Did you mean '--no-color'? "
        "(see 'pe-inspect --help')"
    ]


def test_interrupt_is_one_line_and_exit_130() -> None:
    from fwtools.cli.common import Command

    @click.command(cls=Command)
    def slow() -> None:
        raise KeyboardInterrupt

    result = CliRunner().invoke(slow, [], catch_exceptions=False)
    assert result.exit_code == 130
    assert [line for line in result.stderr.splitlines() if line] == ["error: interrupted"]
