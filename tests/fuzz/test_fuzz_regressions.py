"""Replay every crasher kept in testdata/fuzz/<parser>/ (provenance: testdata/fuzz/README.md).

Each fixture once made its parser raise something other than FwError. The library target
must now return or raise FwError, and the command that reads such a file must exit 2 with
one error line naming it (no traceback).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fuzz.targets import FUZZ_FIXTURES, TARGETS, UNFIXED, run
from fwtools.cli.fw_check import command as fw_check
from fwtools.cli.fw_check_boot import command as fw_check_boot
from fwtools.cli.fw_check_firmware import command as fw_check_firmware
from fwtools.cli.fw_sigdb import cli as fw_sigdb
from fwtools.cli.fw_vars import cli as fw_vars
from fwtools.cli.pe_inspect import pe_inspect

FIXTURES = sorted(FUZZ_FIXTURES.rglob("*.bin"))

def _param(path: Path) -> object:
    key = f"{path.parent.name}/{path.name}"
    marks = [pytest.mark.xfail(strict=True, reason=UNFIXED[key])] if key in UNFIXED else []
    return pytest.param(path, id=key, marks=marks)


def test_every_fixture_is_documented() -> None:
    readme = (FUZZ_FIXTURES / "README.md").read_text()
    for path in FIXTURES:
        assert path.parent.name in TARGETS, path
        assert f"{path.parent.name}/{path.name}" in readme, f"{path} has no provenance entry"


@pytest.mark.parametrize("path", [_param(p) for p in FIXTURES])
def test_fixture_parses_or_raises_fwerror(path: Path) -> None:
    run(path.parent.name, path.read_bytes())


# How each parser's input reaches a command: (command, argv lists with {IN}, file suffix).
COMMAND_FOR = {
    "policy": (fw_check, [["--policy", "{IN}", "{PE}"], ["--waivers", "{IN}", "{PE}"]], ".toml"),
    "json": (fw_vars, [["show", "{IN}"]], ".json"),
    "varstore": (fw_vars, [["show", "{IN}"]], ".fd"),
    "qcow2": (fw_vars, [["show", "{IN}"]], ".qcow2"),
    "siglist": (fw_sigdb, [["show", "{IN}"]], ".esl"),
    "authvar": (fw_sigdb, [["show", "{IN}"]], ".auth"),
    "pe": (pe_inspect, [["{IN}"]], ".efi"),
    "bootchain": (fw_check_boot, [["--firmware", "ovmf-strict", "{IN}"],
                                  ["--firmware", "ovmf-strict", "{PE}", "{IN}"]], ".efi"),
    "firmware": (fw_check_boot, [["--firmware", "{IN}", "{PE}"]], ".toml"),
    "pi": (fw_check_firmware, [["{IN}"], ["--json", "{IN}"]], ".fd"),
}
SAMPLE_PE = Path(__file__).resolve().parents[2] / "testdata/sample/hello-nx.efi"


@pytest.mark.parametrize("path", [_param(p) for p in FIXTURES if p.parent.name in COMMAND_FOR])
def test_command_on_fixture_gives_one_line(path: Path, tmp_path: Path) -> None:
    command, argvs, suffix = COMMAND_FOR[path.parent.name]
    target = tmp_path / f"crasher{suffix}"
    shutil.copyfile(path, target)
    for argv in argvs:
        args = [str(target) if a == "{IN}" else str(SAMPLE_PE) if a == "{PE}" else a
                for a in argv]
        result = CliRunner().invoke(command, args, catch_exceptions=False)
        assert "Traceback" not in result.stdout + result.stderr
        if result.exit_code == 0:
            continue  # the fixture is a (now) acceptable input for the command
        assert result.exit_code in (1, 2), result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        if result.exit_code == 2:
            assert lines and all(line.startswith("error: ") for line in lines), lines
            assert any(target.name in line for line in lines), lines


@pytest.mark.parametrize("path", sorted((FUZZ_FIXTURES / "qcow2").glob("*.bin")),
                         ids=lambda p: p.name)
def test_byebyebios_on_qcow2_fixture(path: Path, tmp_path: Path) -> None:
    from fwtools.cli.byebyebios import command as byebyebios

    image = tmp_path / "disk.qcow2"
    shutil.copyfile(path, image)
    before = image.read_bytes()
    result = CliRunner().invoke(byebyebios, [str(image)], catch_exceptions=False)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code in (0, 2), result.stderr
    if result.exit_code == 2:
        assert image.read_bytes() == before
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and image.name in lines[0]
