"""Fault injection for the write paths of every command (issue 8): a fork server.

``python faults.py PLAN.json`` runs each case of the plan (see test_crash_safety.py):

1. the command once in-process (imports everything, so the forks below are cheap), then in a
   forked child with the file-system hooks counting events, which gives the "new" state of
   every target and the number of injection points;
2. for every event N, a forked child that SIGKILLs itself just before event N; afterwards
   every target must be byte-identical to its old or its new state (a directory target: each
   file in it complete), no stray file may be left but hidden temporary files of the atomic
   writer (counted, then removed), and an in-place store must still parse;
3. for every write-type event M, a forked child in which event M fails with ENOSPC: the
   command must exit 2 with one-line errors, every target must be unchanged and nothing new
   may be left in the directories.

The hooks wrap the calls fwtools' writers make (fwtools/_base/atomic.py, atomic_copy.py):
tempfile.mkstemp, os.fdopen (its writes are split into four os.write calls, so a kill can
land in the middle of the data), os.write, os.pwrite, os.ftruncate, os.copy_file_range,
os.fsync, os.chmod, os.fchmod, os.replace, os.rename, os.unlink and os.open. It prints one
JSON document: per case the number of kill points and ENOSPC points run and the failures.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

WRITEY = {"write", "pwrite", "ftruncate", "copy_file_range", "fsync", "replace", "rename",
          "mkstemp", "chmod", "fchmod"}


class _Hooks:
    def __init__(self, mode: str, at: int) -> None:
        self.mode = mode  # "count", "kill" or "enospc"
        self.at = at
        self.events = 0
        self.writes = 0

    def point(self, kind: str) -> None:
        self.events += 1
        if kind in WRITEY:
            self.writes += 1
        if self.mode == "kill" and self.events == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.mode == "enospc" and kind in WRITEY and self.writes == self.at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def install(self) -> None:
        point = self.point
        real: dict[str, Callable[..., Any]] = {}

        def wrap(module: Any, name: str, kind: str) -> None:
            fn = getattr(module, name)
            real[name] = fn

            def hooked(*args: Any, **kwargs: Any) -> Any:
                point(kind)
                return fn(*args, **kwargs)

            setattr(module, name, hooked)

        for name, kind in (("write", "write"), ("pwrite", "pwrite"), ("ftruncate", "ftruncate"),
                           ("copy_file_range", "copy_file_range"), ("fsync", "fsync"),
                           ("chmod", "chmod"), ("fchmod", "fchmod"), ("replace", "replace"),
                           ("rename", "rename"), ("unlink", "unlink"), ("open", "open")):
            wrap(os, name, kind)
        wrap(tempfile, "mkstemp", "mkstemp")
        raw_write = real["write"]

        class _File:
            """What os.fdopen(fd, "wb") returns, writing unbuffered in four pieces."""

            def __init__(self, fd: int) -> None:
                self.fd = fd

            def write(self, data: bytes) -> int:
                view = memoryview(data)
                step = max(1, -(-len(view) // 4))
                for i in range(0, len(view), step):
                    point("write")
                    piece = view[i : i + step]
                    while piece:
                        piece = piece[raw_write(self.fd, piece) :]
                return len(view)

            def flush(self) -> None:
                point("flush")

            def fileno(self) -> int:
                return self.fd

            def close(self) -> None:
                if self.fd >= 0:
                    fd, self.fd = self.fd, -1
                    os.close(fd)

            def __enter__(self) -> _File:
                return self

            def __exit__(self, *exc: object) -> None:
                self.close()

        real_fdopen = os.fdopen

        def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if "w" in mode or "a" in mode:
                return _File(fd)
            return real_fdopen(fd, mode, *args, **kwargs)

        os.fdopen = fdopen  # type: ignore[assignment]


def _tools() -> dict[str, Any]:
    from fwtools.cli.byebyebios import command as byebyebios
    from fwtools.cli.fw_check import command as fw_check
    from fwtools.cli.fw_sigdb import cli as fw_sigdb
    from fwtools.cli.fw_vars import cli as fw_vars
    from fwtools.cli.pe_inspect import pe_inspect

    return {"fw-vars": fw_vars, "fw-sigdb": fw_sigdb, "byebyebios": byebyebios,
            "pe-inspect": pe_inspect, "fw-check": fw_check}


def _child(tool: Any, argv: list[str], hooks: _Hooks, out: int, err_path: str) -> None:
    """In the forked child: run the command, report the events through ``out``, exit."""
    code = 99
    try:
        fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives until _exit
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        hooks.install()
        try:
            tool.main(args=argv, prog_name="tool", standalone_mode=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 98
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(out, json.dumps([hooks.events, hooks.writes]).encode())
    finally:
        os._exit(code)


def run_forked(tool: Any, argv: list[str], mode: str, at: int, err_path: str
               ) -> tuple[int | None, int | None, list[int]]:
    """(exit code or None, signal or None, [events, write events]) of one forked run."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        _child(tool, argv, _Hooks(mode, at), w, err_path)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    counts = json.loads(b"".join(chunks)) if chunks else [0, 0]
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status), counts
    return os.WEXITSTATUS(status), None, counts


# -- state of the targets ---------------------------------------------------------------------

State = dict[str, Any]


def _state(path: Path) -> Any:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}
    if path.is_file():
        return path.read_bytes()
    return None


def _listing(dirs: list[Path]) -> set[str]:
    out = set()
    for d in dirs:
        if d.is_dir():
            out |= {str(p) for p in d.rglob("*")}
    return out


def _is_temp(path: str) -> bool:
    name = os.path.basename(path)
    return name.startswith(".") and name.endswith(".tmp")


def run_case(case: dict[str, Any], tools: dict[str, Any], scratch: Path) -> dict[str, Any]:
    tool = tools[case["tool"]]
    argv: list[str] = case["argv"]
    targets = [Path(t) for t in case["targets"]]
    dirs = sorted({Path(d) for d in case["dirs"]})
    err_path = str(scratch / "stderr.txt")
    failures: list[str] = []

    def setup() -> None:
        for d in dirs:
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
        for src, dst in case["setup"]:
            shutil.copyfile(src, dst)

    def validate(where: str) -> None:
        for check in case.get("validate", []):
            path = Path(check["path"])
            if not path.exists():
                continue
            try:
                if check["kind"] == "store":
                    from fwtools.formats.varstore.storeio import load_store

                    load_store(path)
                elif check["kind"] == "pem-key":
                    text = path.read_bytes()
                    if not (text.startswith(b"-----BEGIN") and text.rstrip().endswith(b"-----")):
                        raise ValueError("not a complete PEM file")
                    if path.stat().st_mode & 0o077:
                        raise ValueError(f"mode {path.stat().st_mode & 0o777:o}, not 0600")
                elif check["kind"] == "siglist":
                    from fwtools.formats.efi.siglist import SignatureDatabase

                    SignatureDatabase.parse(path.read_bytes())
            except Exception as exc:
                failures.append(f"{where}: {path.name} does not parse: {exc}")

    # Warm up in-process (imports), then the baseline in a fork.
    setup()
    old = {str(t): _state(t) for t in targets}
    before = _listing(dirs)
    from click.testing import CliRunner

    warm = CliRunner().invoke(tool, argv)
    setup()
    code, sig, (events, writes) = run_forked(tool, argv, "count", 0, err_path)
    if code not in case.get("codes", [0]):
        return {"id": case["id"], "error": f"baseline exit {code} signal {sig}: "
                f"{Path(err_path).read_text()[-800:]} / warm-up: {warm.output[-300:]}"}
    new = {str(t): _state(t) for t in targets}
    setup()
    run_forked(tool, argv, "count", 0, err_path)
    deterministic = {str(t): _state(t) for t in targets} == new
    changed = [str(t) for t in targets if old[str(t)] != new[str(t)]]
    if not changed:
        failures.append("the command changed none of its targets")

    def matches(t: Path, now: Any, where: str) -> None:
        key = str(t)
        if now == old[key] or (deterministic and now == new[key]):
            return
        if not deterministic and now is not None and not isinstance(now, dict):
            return  # a complete new output is checked by validate() (signatures vary)
        if isinstance(now, dict) and isinstance(new[key], dict):
            # An output directory: each file present is complete.
            bad = [n for n, b in now.items() if not _is_temp(n) and new[key].get(n) != b
                   and (old[key] or {}).get(n) != b]
            if not bad:
                return
            failures.append(f"{where}: {t.name}: incomplete files {bad}")
            return
        size = "absent" if now is None else f"{len(now)} bytes"
        failures.append(f"{where}: {t.name} is neither old nor new ({size})")

    temps_left = 0
    for n in range(1, events + 1):
        setup()
        code, sig, _ = run_forked(tool, argv, "kill", n, err_path)
        where = f"SIGKILL before event {n}/{events}"
        for t in targets:
            matches(t, _state(t), where)
        validate(where)
        stray = _listing(dirs) - before - {str(t) for t in targets}
        stray = {s for s in stray if not any(s.startswith(str(t) + "/") for t in targets
                                             if t.is_dir())} | {
            s for t in targets if t.is_dir() for s in map(str, t.iterdir())
            if _is_temp(s)}
        temps = {s for s in stray if _is_temp(s)}
        temps_left = max(temps_left, len(temps))
        if stray - temps:
            failures.append(f"{where}: stray files {sorted(stray - temps)}")
        if len(temps) > 1:
            failures.append(f"{where}: {len(temps)} temporary files left")
    enospc_points = 0
    partial_ok = set(case.get("partial_ok", []))
    for m in range(1, writes + 1):
        setup()
        code, sig, _ = run_forked(tool, argv, "enospc", m, err_path)
        where = f"ENOSPC at write event {m}/{writes}"
        err = Path(err_path).read_text(errors="replace")
        lines = [ln for ln in err.splitlines() if ln.strip()]
        enospc_points += 1
        now = {str(t): _state(t) for t in targets}
        complete = (now == new) if deterministic else all(
            now[str(t)] is not None for t in targets)
        if code in case.get("codes", [0]) and sig is None and complete:
            # The failure hit the best-effort directory fsync after the rename: the new
            # output is complete and in place (fwtools/_base/atomic.py fsync_directory).
            validate(where)
            continue
        if code != 2 or sig is not None:
            failures.append(f"{where}: exit {code} signal {sig}: {err[-600:]}")
            continue
        if not lines or not all(ln.startswith("error: ") for ln in lines) or "Traceback" in err:
            failures.append(f"{where}: stderr is not one-line errors: {lines[:4]}")
        if not any("No space left on device" in ln for ln in lines):
            failures.append(f"{where}: the error does not say why: {lines[:2]}")
        for t in targets:
            if str(t) in partial_ok:
                matches(t, now[str(t)], where)
            elif now[str(t)] != old[str(t)]:
                failures.append(f"{where}: {t.name} changed")
        created = {c for c in _listing(dirs) - before
                   if not any(c == p or c.startswith(p + "/") for p in partial_ok)}
        temps = {c for c in _listing(dirs) if _is_temp(c)}
        if created or temps:
            failures.append(f"{where}: files left behind {sorted(created | temps)}")
    return {"id": case["id"], "kill_points": events, "enospc_points": enospc_points,
            "deterministic": deterministic, "max_temp_files_after_kill": temps_left,
            "failures": failures}


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    tools = _tools()
    scratch = Path(tempfile.mkdtemp(prefix="fwtools-faults-"))
    results = []
    for case in plan["cases"]:
        try:
            results.append(run_case(case, tools, scratch))
        except Exception:
            results.append({"id": case["id"], "error": traceback.format_exc()})
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
