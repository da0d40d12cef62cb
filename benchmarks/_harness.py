"""What every benchmark here shares: the command line, timing whole processes side by side,
the result table, the JSON record. Measurements, never tests.

A script lists its cases (:class:`Plan`) and runs them with :func:`run_cases`, then
:func:`finish` prints the table, writes the record and gives the exit status.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]

# The same corpus lookup (and peer tools) the tests use, so a benchmark measures exactly the
# files they see; the scripts take it from here.
sys.path.insert(0, str(REPO_ROOT / "tests"))
from corpus.corpus import PEERS_DIR, Corpus, CorpusMissingError, load_corpus  # noqa: E402
from corpus.corpus import ms_corpus_base as ms_corpus_base  # noqa: E402

# Bytecode caching on for every process a benchmark starts (issue 13): with
# PYTHONDONTWRITEBYTECODE set (some shells and CI do), every run of a checkout would compile
# fwtools again while an installed wheel, or a peer's venv, has its .pyc files. The warm-up
# run of each command (measure) then writes whatever .pyc is still missing.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

VIRT_BIN: Final = PEERS_DIR / "virt-venv" / "bin"
FWTOOLS_BIN: Final = REPO_ROOT / ".venv" / "bin"
RESULTS_DIR: Final = REPO_ROOT / "benchmarks" / "results"  # gitignored
TIMEOUT_S: Final = 600.0


@dataclass
class Timing:
    command: list[str]
    runs_s: list[float] = field(default_factory=list)
    max_rss_kib: int = 0
    error: str | None = None

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.runs_s) if self.runs_s and not self.error else None


@dataclass
class Case:
    name: str
    description: str
    files: int
    bytes: int
    fwtools: Timing
    virt: Timing
    target: str
    ratio: float | None = None
    met: bool | None = None


def run_once(cmd: list[str]) -> tuple[float, int, str | None]:
    """(wall seconds, max RSS KiB, error or None) of one run of cmd."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err)
        except OSError as exc:
            return 0.0, 0, f"cannot run: {exc.strerror or exc}"
        # A hung command must not stall the whole benchmark.
        timer = threading.Timer(TIMEOUT_S, proc.kill)
        timer.start()
        try:
            # wait4 rather than wait: it returns this child's own rusage (max RSS).
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            tail = lines[-1][:120] if lines else "no stderr"
            return elapsed, usage.ru_maxrss, f"exit {code}: {tail}"
    return elapsed, usage.ru_maxrss, None


def measure(cmd: list[str], runs: int) -> Timing:
    t = Timing(cmd)
    _, _, t.error = run_once(cmd)  # warm-up: page cache, .pyc files
    if t.error:
        return t
    for _ in range(runs):
        elapsed, rss, error = run_once(cmd)
        if error:
            t.error = error
            return t
        t.runs_s.append(elapsed)
        t.max_rss_kib = max(t.max_rss_kib, rss)
    return t


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:8.1f} ms"


def render(results: list[Case]) -> str:
    head = ("case", "files", "fwtools", "virt-firmware", "ratio", "target", "met")
    rows = [head]
    for c in results:
        rows.append((
            c.name, str(c.files) if c.files else "-",
            fmt_s(c.fwtools.median_s) if not c.fwtools.error else "FAILED",
            fmt_s(c.virt.median_s) if not c.virt.error else "FAILED",
            "-" if c.ratio is None else f"{c.ratio:.3f}",
            c.target,
            {True: "yes", False: "NO", None: "?"}[c.met],
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for c in results:
        for who, t in (("fwtools", c.fwtools), ("virt-firmware", c.virt)):
            if t.error:
                lines.append(f"{c.name}: {who} failed: {t.error}")
    return "\n".join(lines)


def compile_fwtools() -> None:
    """Compile fwtools' bytecode up front, as pip does for an installed package.

    An editable checkout gets .pyc files only when Python may write them, which
    PYTHONDONTWRITEBYTECODE (set in some shells and CI environments) forbids; without this
    fwtools would be timed compiling its own source on every run.
    """
    compileall.compile_dir(str(REPO_ROOT / "fwtools"), quiet=1)


def judge(case: Case, *, ratio_target: float | None, absolute_target_s: float | None) -> None:
    fw, virt = case.fwtools.median_s, case.virt.median_s
    if fw is not None and virt is not None:
        case.ratio = fw / virt
    if absolute_target_s is not None:
        case.met = None if fw is None else fw <= absolute_target_s
    elif ratio_target is not None:
        case.met = None if case.ratio is None else case.ratio <= ratio_target


def write_record(path: Path, schema: str, runs: int, results: list[Case],
                 **extra: Any) -> None:
    doc = {
        "schema": schema,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "runs": runs,
        **extra,
        "cases": [
            {**asdict(c), "fwtools": {**asdict(c.fwtools), "median_s": c.fwtools.median_s},
             "virt": {**asdict(c.virt), "median_s": c.virt.median_s}}
            for c in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


# -- the driver every script runs ----------------------------------------------------------


def parser(description: str, output: Path, *, only: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The options every benchmark takes (``--runs``, ``-o/--output``, ``--strict``, and
    ``--only`` when ``only`` names the cases); a script adds its own."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--runs", type=int, default=7, help="timed runs per command (median)")
    if only:
        ap.add_argument("--only", action="append", choices=list(only),
                        help="run only these cases (repeatable)")
    ap.add_argument("-o", "--output", type=Path, default=output)
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a target is missed or a command fails")
    return ap


def corpus_or_exit(prog: str) -> Corpus:
    """The Debian corpus, or exit 2 with the reason."""
    try:
        return load_corpus()
    except CorpusMissingError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@dataclass
class Plan:
    """One case to measure: the fwtools and the peer command, and the target: fwtools' time
    at most ``absolute_target_s`` when given, else at most ``ratio_target`` x the peer's."""

    name: str
    description: str
    fwtools: list[str]
    virt: list[str]
    ratio_target: float
    absolute_target_s: float | None = None
    files: int = 1
    bytes: int = 0

    @property
    def target(self) -> str:
        if self.absolute_target_s is not None:
            return f"<= {self.absolute_target_s * 1000:.0f} ms"
        return f"ratio <= {self.ratio_target:.3g}"


def run_cases(plan: Iterable[Plan], runs: int, only: Sequence[str] | None = None) -> list[Case]:
    """Measure and judge each case (those in ``only`` when given). A command that two cases
    share is measured once."""
    compile_fwtools()
    timings: dict[tuple[str, ...], Timing] = {}

    def timing(cmd: list[str]) -> Timing:
        if tuple(cmd) not in timings:
            timings[tuple(cmd)] = measure(cmd, runs)
        return timings[tuple(cmd)]

    results: list[Case] = []
    for p in plan:
        if only and p.name not in only:
            continue
        print(f"measuring {p.name} ({p.description}) ...", file=sys.stderr, flush=True)
        case = Case(p.name, p.description, p.files, p.bytes, timing(p.fwtools), timing(p.virt),
                    target=p.target)
        judge(case, ratio_target=p.ratio_target, absolute_target_s=p.absolute_target_s)
        results.append(case)
    return results


def finish(args: argparse.Namespace, schema: str, results: list[Case], *,
           notes: Iterable[str] = (), failed: bool = False, **extra: Any) -> int:
    """Print the table (and ``notes``), write the JSON record; the exit status: 1 under
    ``--strict`` when a target is missed, a command failed, or ``failed``."""
    print(render(results))
    for line in notes:
        print(line)
    write_record(args.output, schema, args.runs, results, **extra)
    print(f"wrote {args.output}", file=sys.stderr)
    if args.strict and (failed or any(c.met is not True for c in results)):
        return 1
    return 0
