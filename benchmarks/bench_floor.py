#!/usr/bin/env python3
"""Start-up at the floor (issue 13): each single-file command's time above what the
interpreter and its mandated imports cost, beside the least work the job needs.

For each command the script measures, in one run:

- fwtools: the whole command as a process (wall time);
- floor: ``python -c "import ..."`` of what the job must import by docs/design.md and the
  issues: click for every command; pefile and asn1crypto's CMS for a signed PE; asn1crypto's
  CMS and cryptography's RSA for verifying a signature; rich for pe-inspect's text output
  (the only text renderer here that uses it); json for ``--json`` output;
- above = fwtools - floor: what fwtools itself costs (its imports, its work, its output);
- least work: the essential computation (both Authenticode digests of the kernel, parsing
  and decoding the store, parsing the lists, verifying the .auth, the boot-chain replay),
  timed inside one process after a warm-up (``_least_work.py``), once per round.

Target per row: above <= least work + 15 ms.

fwtools' console scripts handle the garbage collector for a one-shot process
(fwtools/cli/launch.py), which also saves some of the work a plain ``python -c "import ..."``
does; the last columns give "above" against the floor run the same way (``gc_floor``), so
that what fwtools saves inside the floor's own imports is not counted as its own gain.

How it is measured, on a shared and noisy machine: in each of ``--runs`` rounds, every row
runs its command, its floor and its least work back to back in a random order; "above" is the
median over the rounds of the paired difference (command - floor), so load that comes and
goes hits both sides of it alike; the other columns are medians too. Each process has one
untimed warm-up run first. The
subprocesses run with bytecode caching on: PYTHONDONTWRITEBYTECODE is removed from their
environment and fwtools is compiled first, so no run pays for compiling fwtools (an
installed wheel has its .pyc too). PYTHONPATH puts this checkout's fwtools first.

Usage:
  .venv/bin/python benchmarks/bench_floor.py [--runs 31] [--only ROW ...] [--python PY]
Writes benchmarks/results/floor.json (gitignored). A measurement, never a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from _harness import (
    FWTOOLS_BIN,
    REPO_ROOT,
    RESULTS_DIR,
    compile_fwtools,
    corpus_or_exit,
    ms_corpus_base,
    run_once,
)

RESULTS: Final = RESULTS_DIR / "floor.json"
WORK: Final = RESULTS_DIR / "floor"
SCHEMA: Final = "fwtools.bench.floor/3"
SLACK_S: Final = 0.015  # the target: above <= least work + 15 ms
LEAST_WORK: Final = Path(__file__).with_name("_least_work.py")
WORK_REPEATS: Final = 5  # in-process repetitions of the least work per round (median)

# What each kind of job must import (docs/design.md: click for the command layer; pefile and
# asn1crypto for PE and PKCS#7; cryptography to verify; rich only in pe-inspect's text).
RICH: Final = "rich.console, rich.padding, rich.rule, rich.table, rich.text"
FLOORS: Final = {
    "interpreter": "pass",
    "click": "import click",
    "click + json": "import click, json",
    "click + pefile + cms + rich": f"import click, pefile, asn1crypto.cms, {RICH}",
    "click + pefile + cms + json": "import click, pefile, asn1crypto.cms, json",
    "click + cms + cryptography RSA": (
        "import click, asn1crypto.cms; from cryptography.hazmat.primitives.asymmetric import rsa"
    ),
    "click + pefile + json": "import click, pefile, json",
}



def gc_floor(imports: str) -> str:
    """The floor's imports with the collector handled as fwtools' console scripts handle it
    (fwtools/cli/launch.py): paused while click loads (the launcher pauses it while the
    command's modules load), then everything frozen and collection back on for the rest
    (a command imports pefile, asn1crypto, rich and json as it runs), and everything frozen
    again at exit. The launcher saves a plain ``python -c "import ..."`` some of that work
    too, so "above" against this floor is what is left when the floor gets the same
    treatment."""
    return (f"import gc; gc.disable(); import click; gc.freeze(); gc.enable(); {imports}; "
            "gc.freeze()")


MICROSOFT: Final = uuid.UUID("77fa9abd-0359-4d32-bd60-28f4e78f784b")
SHA256_TYPE: Final = uuid.UUID("c1c41626-504c-4092-aca9-41f936934328")


@dataclass
class Row:
    name: str
    command: list[str]  # fwtools' command line, program name first
    floor: str
    least_work: list[str]  # _least_work.py's kind and arguments


def make_dbx(path: Path, count: int) -> int:
    """A dbx of ``count`` SHA-256 entries: every image hash of Microsoft's dbx JSON (all
    architectures, deduplicated), then hashes of those to make up the count (the real list
    has about 670); the same bytes every run. Returns how many are real."""
    doc = json.loads((ms_corpus_base() / "dbx" / "dbx_info_msft_latest.json").read_text())
    real: list[bytes] = []
    for images in doc["images"].values():
        for image in images:
            digest = bytes.fromhex(image["authenticodeHash"])
            if image.get("hashType", "SHA256") == "SHA256" and digest not in real:
                real.append(digest)
    hashes = real[:count]
    while len(hashes) < count:
        hashes.append(hashlib.sha256(hashes[len(hashes) - len(real)]).digest())
    body = b"".join(MICROSOFT.bytes_le + h for h in hashes)
    path.write_bytes(SHA256_TYPE.bytes_le + struct.pack("<III", 28 + len(body), 0, 48) + body)
    return min(len(real), count)


def plan(python: str) -> list[Row]:
    corpus = corpus_or_exit("bench_floor")
    ms = ms_corpus_base()
    WORK.mkdir(parents=True, exist_ok=True)
    dbx = WORK / "dbx1500.esl"
    make_dbx(dbx, 1500)
    kernel = str(corpus.kernel("bookworm", "amd64"))
    ovmf = str(corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd"))
    aavmf = str(corpus.aavmf("bookworm", "AAVMF_VARS.ms.fd"))
    update = str(ms / "dbx" / "amd64" / "DBXUpdate.bin")
    kek = str(ms / "certs" / "kek" / "MicCorKEKCA2011_2011-06-24.der")
    chain = [str(p) for p in corpus.boot_chain("trixie", "amd64")]
    pe = "click + pefile + cms + rich"
    return [
        Row("pe-inspect kernel", ["pe-inspect", kernel], pe, ["digests", kernel]),
        Row("pe-inspect --json kernel", ["pe-inspect", "--json", kernel],
            "click + pefile + cms + json", ["digests", kernel]),
        Row("fw-vars show 4 MiB", ["fw-vars", "show", ovmf], "click", ["store", ovmf]),
        Row("fw-vars show --json 4 MiB", ["fw-vars", "show", "--json", ovmf], "click + json",
            ["store", ovmf]),
        Row("fw-vars show 64 MiB", ["fw-vars", "show", aavmf], "click", ["store", aavmf]),
        Row("fw-vars show --json 64 MiB", ["fw-vars", "show", "--json", aavmf],
            "click + json", ["store", aavmf]),
        Row("fw-sigdb show 1,500-hash dbx", ["fw-sigdb", "show", str(dbx)], "click",
            ["sigdb", str(dbx)]),
        Row("fw-sigdb verify DBXUpdate.bin", ["fw-sigdb", "verify", "--cert", kek, update],
            "click + cms + cryptography RSA", ["verify", kek, update]),
        Row("fw-check boot-chain --json (3 stages)",
            ["fw-check", "boot-chain", "--firmware", "ovmf-strict", "--memory", "65536",
             "--secure-boot", "on", "--json", *chain],
            "click + pefile + json", ["boot-chain", *chain]),
    ]


# The console scripts' entry points (pyproject.toml [project.scripts]).
ENTRY: Final = {
    "pe-inspect": "pe_inspect", "fw-vars": "fw_vars", "fw-sigdb": "fw_sigdb",
    "fw-check": "fw_check",
}


def command_line(python: str, argv: list[str]) -> list[str]:
    """The console script when the interpreter's bin directory has it (as a user runs it),
    else the same entry point through ``-c``."""
    script = Path(python).parent / argv[0]
    if script.is_file():
        return [python, str(script), *argv[1:]]
    code = (f"import sys; sys.argv[0] = {argv[0]!r}; "
            f"from fwtools.cli.launch import {ENTRY[argv[0]]}; sys.exit({ENTRY[argv[0]]}())")
    return [python, "-c", code, *argv[1:]]


def least_work(python: str, args: list[str], runs: int) -> float | None:
    proc = subprocess.run([python, str(LEAST_WORK), args[0], str(runs), *args[1:]],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"least work {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}",
              file=sys.stderr)
        return None
    times: list[float] = json.loads(proc.stdout)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=31, help="repetitions (median)")
    ap.add_argument("--only", action="append", help="rows whose name contains this")
    ap.add_argument("--python", default=None,
                    help="the interpreter with fwtools' dependencies (default: .venv's)")
    ap.add_argument("-o", "--output", type=Path, default=RESULTS)
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions under valgrind instead of timing (the same "
                    "rows; independent of other load on the machine)")
    args = ap.parse_args(argv)
    python = args.python or str(FWTOOLS_BIN / "python")
    if not Path(python).exists():
        python = sys.executable
    # Bytecode caching is on (_harness); this checkout's fwtools first.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    compile_fwtools()

    rows = [r for r in plan(python)
            if not args.only or any(o in r.name for o in args.only)]
    if args.instructions:
        return count_instructions(python, rows)
    floors_used = ["interpreter", *dict.fromkeys(r.floor for r in rows)]
    floor_cmd = {f: [python, "-c", FLOORS[f]] for f in floors_used}
    gc_floor_cmd = {f: [python, "-c", gc_floor(FLOORS[f])] for f in floors_used}
    fw_cmd = {r.name: command_line(python, r.command) for r in rows}
    errors: dict[str, str] = {}
    warm_up = [*floor_cmd.items(), *((f"{k} (gc)", c) for k, c in gc_floor_cmd.items()),
               *fw_cmd.items()]
    for key, cmd in warm_up:  # warm-up: page cache, .pyc
        _, _, error = run_once(cmd)
        if error:
            errors[key] = error
    # Per row and round: the command, its floor and its least work, run back to back in a
    # random order, so that "above" is a paired difference: load that comes and goes on the
    # shared machine hits both sides of it alike.
    fw_t: dict[str, list[float]] = {r.name: [] for r in rows}
    floor_t: dict[str, list[float]] = {r.name: [] for r in rows}
    gc_floor_t: dict[str, list[float]] = {r.name: [] for r in rows}
    work_t: dict[str, list[float]] = {r.name: [] for r in rows}
    interp_t: list[float] = []
    rng = random.Random(13)
    print(f"measuring {len(rows)} rows x {args.runs} rounds ...", file=sys.stderr)
    for i in range(args.runs):
        interp_t.append(run_once(floor_cmd["interpreter"])[0])
        for r in rng.sample(rows, len(rows)):
            if r.name in errors or r.floor in errors:
                continue
            steps = ["fw", "floor", "gc floor", "work"]
            rng.shuffle(steps)
            got: dict[str, float | None] = {}
            for step in steps:
                if step == "fw":
                    elapsed, _, error = run_once(fw_cmd[r.name])
                    if error:  # every command here exits 0; anything else is a failure
                        errors[r.name] = error
                    got[step] = None if error else elapsed
                elif step == "floor":
                    got[step] = run_once(floor_cmd[r.floor])[0]
                elif step == "gc floor":
                    got[step] = run_once(gc_floor_cmd[r.floor])[0]
                else:
                    got[step] = least_work(python, r.least_work, WORK_REPEATS)
            if None in got.values():
                continue
            fw_t[r.name].append(got["fw"] or 0.0)
            floor_t[r.name].append(got["floor"] or 0.0)
            gc_floor_t[r.name].append(got["gc floor"] or 0.0)
            work_t[r.name].append(got["work"] or 0.0)
        print(f"  round {i + 1}/{args.runs}", file=sys.stderr, flush=True)

    head = ("command", "fwtools", "floor", "above", "least work", "target", "ok?",
            "best of N: above / least work", "above a GC-handled floor", "ok?")
    table: list[tuple[str, ...]] = [head]
    record = []
    for r in rows:
        n = len(fw_t[r.name])
        fw = statistics.median(fw_t[r.name]) if n else None
        floor = statistics.median(floor_t[r.name]) if n else None
        above = (statistics.median(a - b for a, b in zip(fw_t[r.name], floor_t[r.name],
                                                          strict=True)) if n else None)
        above_gc = (statistics.median(a - b for a, b in zip(fw_t[r.name], gc_floor_t[r.name],
                                                             strict=True)) if n else None)
        lw = statistics.median(work_t[r.name]) if n else None
        target = None if lw is None else lw + SLACK_S
        ok = None if above is None or target is None else above <= target
        ok_gc = None if above_gc is None or target is None else above_gc <= target
        # Best of N (the fastest run of each side): the usual start-up figure on a busy
        # machine, where load only ever adds time.
        best = (f"{_ms(min(fw_t[r.name]) - min(floor_t[r.name]))} / {_ms(min(work_t[r.name]))}"
                if n else "-")
        table.append((r.name, _ms(fw), f"{_ms(floor)} ({r.floor})", _ms(above), _ms(lw),
                      _ms(target), _yes(ok), best, _ms(above_gc), _yes(ok_gc)))
        record.append({"name": r.name, "command": r.command, "floor": r.floor, "rounds": n,
                       "fwtools_s": fw, "floor_s": floor, "above_s": above,
                       "least_work_s": lw, "target_s": target, "ok": ok,
                       "above_gc_floor_s": above_gc, "ok_gc_floor": ok_gc,
                       "fwtools_runs_s": fw_t[r.name], "floor_runs_s": floor_t[r.name],
                       "gc_floor_runs_s": gc_floor_t[r.name],
                       "least_work_runs_s": work_t[r.name], "error": errors.get(r.name)})
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    for i, t in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"interpreter alone: {_ms(statistics.median(interp_t))}; "
          "above = median over rounds of (fwtools - floor), each pair run back to back")
    for key, error in errors.items():
        print(f"{key}: failed: {error}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "schema": SCHEMA, "runs": args.runs, "python": python,
        "interpreter_s": statistics.median(interp_t), "rows": record,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def instructions(cmd: list[str]) -> float | None:
    """Millions of instructions the process executes (valgrind's callgrind), with hash
    randomisation fixed so that runs repeat exactly."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"})
    for line in proc.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split()[-1]) / 1e6
    return None


def count_instructions(python: str, rows: list[Row]) -> int:
    """The same rows counted in instructions: fwtools, its floor, above = the difference,
    and the least work (one warm repetition: two runs in a process minus one). Time on a
    shared machine varies by more than the margins in question; instruction counts do not,
    though they leave out what the kernel does (page faults, reading files) and how fast
    each instruction runs."""
    if shutil.which("valgrind") is None:
        print("bench_floor: --instructions needs valgrind (apt-get install valgrind)",
              file=sys.stderr)
        return 2
    head = ("command", "fwtools", "floor", "above", "least work", "above - least work",
            "the same, GC-handled floor")
    table: list[tuple[str, ...]] = [head]
    for cmd in [*(command_line(python, r.command) for r in rows)]:
        run_once(cmd)  # .pyc files and caches written
    for r in rows:
        fw = instructions(command_line(python, r.command))
        floor = instructions([python, "-c", FLOORS[r.floor]])
        floor_gc = instructions([python, "-c", gc_floor(FLOORS[r.floor])])
        work_args = [python, str(LEAST_WORK), r.least_work[0]]
        one = instructions([*work_args, "1", *r.least_work[1:]])
        two = instructions([*work_args, "2", *r.least_work[1:]])
        above = None if fw is None or floor is None else fw - floor
        work = None if one is None or two is None else two - one
        above_gc = None if fw is None or floor_gc is None else fw - floor_gc
        table.append((r.name, _mi(fw), f"{_mi(floor)} ({r.floor})", _mi(above), _mi(work),
                      _mi(None if above is None or work is None else above - work),
                      _mi(None if above_gc is None or work is None else above_gc - work)))
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    for i, t in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0


def _yes(ok: bool | None) -> str:
    return {True: "yes", False: "NO", None: "?"}[ok]


def _mi(millions: float | None) -> str:
    return "-" if millions is None else f"{millions:.1f} M"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    sys.exit(main())
