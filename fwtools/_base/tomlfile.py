"""Reading the TOML data files of policies/ (rule profiles, waivers, SbatLevel history,
firmware profiles, loader models) with one kind of error: a UsageError naming the file,
whatever is wrong with it."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from fwtools._base.fileio import read_file
from fwtools.errors import FwError, UsageError

# A policy file is a few KiB; anything near this is not one.
MAX_POLICY_FILE: int = 4 << 20


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """The table in ``path``; ``what`` says which option or file it is, for the message."""
    try:
        raw = read_file(path, max_size=MAX_POLICY_FILE)
    except FwError as exc:
        # The read error keeps its own type and file; only the role of the file is added.
        raise exc.with_path(path).with_hint(f"it was given as the {what}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path}: not UTF-8 text (byte {exc.start:#x})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {path}: not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a small file of
        # "a = [[[[..." exhausts the interpreter stack (found by fuzzing, issue 8;
        # testdata/fuzz/policy/nested-arrays.bin).
        raise UsageError(f"{what} {path}: not valid TOML: nested too deeply") from None
    except ValueError as exc:
        # tomllib lets int()'s digit limit escape as a plain ValueError for a decimal
        # integer of more than 4300 digits (issue 8; testdata/fuzz/policy/long-integer.bin).
        raise UsageError(f"{what} {path}: not valid TOML: {exc}") from None


def table(value: object, where: str) -> dict[str, Any]:
    """``value`` when it is a TOML table, else a UsageError saying where."""
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a table")
    return value


def policies_dir() -> Path:
    """Where the shipped data files are: $FWTOOLS_POLICIES, policies/ of the source tree, or
    <prefix>/share/fwtools/policies of an installed (non-editable) package."""
    env = os.environ.get("FWTOOLS_POLICIES")
    if env:
        return Path(env)
    source = Path(__file__).resolve().parents[2] / "policies"
    if source.is_dir():
        return source
    return Path(sys.prefix) / "share" / "fwtools" / "policies"


def shipped_file(directory: Path, name: str, kind: str, shipped: list[str]) -> Path:
    """``directory/name.toml`` of a shipped data file, or a UsageError naming the ``shipped``
    ones. The name comes from the command line or a user's file: one that is no possible
    file name (too long: ENAMETOOLONG) is unknown too, not a traceback (issue 8; found by
    atheris: testdata/fuzz/policy/crash-shipped-name-too-long-1433d6d7.bin)."""
    path = directory / f"{name}.toml"
    try:
        if path.is_file():
            return path
    except OSError:
        pass
    shown = name if len(name) <= 60 else name[:60] + "..."
    raise UsageError(f"unknown {kind} {shown!r} (shipped: {', '.join(shipped)})")
