"""Reading the TOML data files of policies/ (rule profiles, waivers, SbatLevel history,
firmware profiles, loader models) with one kind of error: a UsageError naming the file,
whatever is wrong with it."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Final

from fwtools._base.fileio import read_file
from fwtools.errors import FwError, UsageError

# A policy file is a few KiB; anything near this is not one.
MAX_POLICY_FILE: int = 4 << 20


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The table in ``path``; ``what`` says which option or file it is, for the message.

    A shipped file (under :func:`policies_dir`) is read through a cache of its parsed form,
    as Python caches bytecode: ``fw-check boot-chain`` reads some twenty loader models and
    profiles, and parsing them took more of its start-up than replaying the chain's
    loader steps."""
    path = os.fspath(path)
    cache = _cache_path(path)
    if cache is not None:
        cached = _read_cache(path, cache)
        if cached is not None:
            return cached
    data = _parse_toml(path, what)
    if cache is not None and not sys.dont_write_bytecode:
        _write_cache(path, cache, data)
    return data


def _parse_toml(path: str, what: str) -> dict[str, Any]:
    import tomllib

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
# by a format tag and the source's mtime and size (the file name carries the interpreter's
# cache tag, as .pyc names do).
_CACHE_MAGIC: Final = b"fwtoml1\0"


def _cache_path(path: str) -> str | None:
    """Where the parsed form of a shipped file is cached; None for other files (a user's
    profile or waivers: no cache files are written beside them)."""
    resolved = os.path.realpath(path)
    if not resolved.startswith(_realpath(policies_dir()) + os.sep):
        return None
    folder, name = os.path.split(resolved)
    return os.path.join(folder, "__pycache__", f"{name}.{sys.implementation.cache_tag}")


# The policies directory resolved, remembered: a replay asks for it once per file it reads.
_realpath: Final = functools.cache(os.path.realpath)


def _stamp(path: str) -> bytes | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _CACHE_MAGIC + st.st_mtime_ns.to_bytes(8, "little") + st.st_size.to_bytes(8, "little")


def _read_cache(path: str, cache: str) -> dict[str, Any] | None:
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


def _write_cache(path: str, cache: str, data: dict[str, Any]) -> None:
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

        os.makedirs(os.path.dirname(cache), exist_ok=True)
        atomic_write(cache, blob)
    except (OSError, FwError):
        pass


def table(value: object, where: str) -> dict[str, Any]:
    """``value`` when it is a TOML table, else a UsageError saying where."""
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a table")
    return value


def policies_dir() -> str:
    """Where the shipped data files are: $FWTOOLS_POLICIES, policies/ of the source tree, or
    <prefix>/share/fwtools/policies of an installed (non-editable) package."""
    # Paths are strings here, not pathlib: importing pathlib (and the urllib.parse and
    # ipaddress it pulls in) cost fw-check boot-chain 4 ms of start-up.
    return os.environ.get("FWTOOLS_POLICIES") or _shipped_policies()


@functools.cache
def _shipped_policies() -> str:
    """policies/ of the source tree, else the installed copy (where this file is does not
    change: resolved once)."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    source = os.path.join(os.path.dirname(package), "policies")
    if os.path.isdir(source):
        return source
    return os.path.join(sys.prefix, "share", "fwtools", "policies")


def shipped_names(directory: str, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """The names (without .toml) of the data files in ``directory``, sorted."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    return sorted(n[:-5] for n in entries if n.endswith(".toml") and n[:-5] not in exclude)


def shipped_file(directory: str, name: str, kind: str, shipped: list[str]) -> str:
    """``directory/name.toml`` of a shipped data file, or a UsageError naming the ``shipped``
    ones. The name comes from the command line or a user's file: one that is no possible
    file name (too long: ENAMETOOLONG) is unknown too, not a traceback (issue 8; found by
    atheris: testdata/fuzz/policy/crash-shipped-name-too-long-1433d6d7.bin)."""
    path = os.path.join(directory, f"{name}.toml")
    try:
        if os.path.isfile(path):
            return path
    except OSError:
        pass
    shown = name if len(name) <= 60 else name[:60] + "..."
    raise UsageError(f"unknown {kind} {shown!r} (shipped: {', '.join(shipped)})")
