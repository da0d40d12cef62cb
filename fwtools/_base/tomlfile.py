"""Reading the TOML data files of policies/ (rule profiles, waivers, SbatLevel history,
firmware profiles, loader models) with one kind of error: a UsageError naming the file,
whatever is wrong with it."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any, Final

from fwtools._base.fileio import read_file
from fwtools.errors import FwError, UsageError

# A policy file is a few KiB; anything near this is not one.
MAX_POLICY_FILE: int = 4 << 20


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """The table in ``path``; ``what`` says which option or file it is, for the message.

    A shipped file (under :func:`policies_dir`) is read through a cache of its parsed form,
    as Python caches bytecode: ``fw-check boot-chain`` reads some twenty loader models and
    profiles, and parsing them took more of its start-up than replaying the chain's
    loader steps."""
    cache = _cache_path(Path(path))
    if cache is not None:
        cached = _read_cache(Path(path), cache)
        if cached is not None:
            return cached
    data = _parse_toml(path, what)
    if cache is not None and not sys.dont_write_bytecode:
        _write_cache(Path(path), cache, data)
    return data


def _parse_toml(path: str | Path, what: str) -> dict[str, Any]:
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


# The parsed-TOML cache: marshal data (like a .pyc) in __pycache__ beside the file, headed
# by the interpreter's magic number and the source's mtime and size.
_CACHE_MAGIC: Final = b"fwtoml1\0"


def _cache_path(path: Path) -> Path | None:
    """Where the parsed form of a shipped file is cached; None for other files (a user's
    profile or waivers: no cache files are written beside them)."""
    try:
        resolved = path.resolve()
        resolved.relative_to(policies_dir().resolve())
    except (OSError, ValueError):
        return None
    return resolved.parent / "__pycache__" / f"{resolved.name}.{sys.implementation.cache_tag}"


def _stamp(path: Path) -> bytes | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _CACHE_MAGIC + st.st_mtime_ns.to_bytes(8, "little") + st.st_size.to_bytes(8, "little")


def _read_cache(path: Path, cache: Path) -> dict[str, Any] | None:
    stamp = _stamp(path)
    try:
        with open(cache, "rb") as f:
            blob = f.read()
    except OSError:
        return None
    if stamp is None or not blob.startswith(stamp):
        return None
    import marshal

    try:
        data = marshal.loads(blob[len(stamp):])
    except (EOFError, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _write_cache(path: Path, cache: Path, data: dict[str, Any]) -> None:
    """Best effort, like the interpreter's .pyc writes: a read-only tree, or data marshal
    cannot hold (TOML dates), just leaves the file uncached."""
    import marshal

    stamp = _stamp(path)
    if stamp is None:
        return
    try:
        blob = stamp + marshal.dumps(data)
    except ValueError:
        return
    try:
        from fwtools._base.atomic import atomic_write

        cache.parent.mkdir(exist_ok=True)
        atomic_write(cache, blob)
    except (OSError, FwError):
        pass


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
