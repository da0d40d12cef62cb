"""The console scripts' launcher (fwtools/cli/launch.py): every script in pyproject.toml
runs its command's ``main`` through it, with the collector paused while modules load and
running, over a frozen start-up, while the command works."""

from __future__ import annotations

import gc
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from fwtools.cli import launch

REPO: Final = Path(__file__).resolve().parents[2]


def test_every_console_script_goes_through_the_launcher() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts
    for tool, target in scripts.items():
        module, _, function = target.partition(":")
        assert module == "fwtools.cli.launch", tool
        assert function == tool.replace("-", "_"), tool
        assert callable(getattr(launch, function)), tool
        # the command module it loads has the main the tests call directly
        command = __import__(f"fwtools.cli.{function}", fromlist=["main"])
        assert callable(command.main), tool


@pytest.fixture
def fake_command(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    seen: dict[str, object] = {}
    module = types.ModuleType("fwtools_fake_command")

    def main() -> None:
        seen["enabled"] = gc.isenabled()
        seen["frozen"] = gc.get_freeze_count()
        raise SystemExit(3)

    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fwtools_fake_command", module)
    enabled = gc.isenabled()
    try:
        yield seen
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def test_collection_runs_during_the_work_over_a_frozen_start_up(
        fake_command: dict[str, object]) -> None:
    with pytest.raises(SystemExit) as exc:
        launch._launch("fwtools_fake_command")
    assert exc.value.code == 3  # the command's exit status passes through
    assert fake_command["enabled"] is True
    assert isinstance(fake_command["frozen"], int) and fake_command["frozen"] > 0
    assert gc.get_freeze_count() >= fake_command["frozen"]  # frozen again for the exit


def test_an_import_failure_still_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    enabled = gc.isenabled()
    try:
        with pytest.raises(ImportError):
            launch._launch("fwtools_no_such_command_module")
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def test_click_strings_are_given_as_written_without_loading_locale() -> None:
    """click's own strings still appear (the help option's text), and gettext never imports
    ``locale`` on the way (about 1 ms of every start-up)."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('locale' in sys.modules, file=sys.stderr))\n"
            "sys.argv = ['fw-vars', 'show', '--help']\n"
            "from fwtools.cli.launch import fw_vars\n"
            "fw_vars()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "Show this message and exit." in proc.stdout
    assert proc.stderr.strip() == "False"
