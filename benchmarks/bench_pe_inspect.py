#!/usr/bin/env python3
"""pe-inspect: fwtools vs virt-firmware, side by side in one run.

Cases (Debian corpus, see tests/corpus/fetch.sh):
  help     ``pe-inspect --help``: start-up cost (target: fwtools under 80 ms)
  kernel   the signed bookworm amd64 kernel, boot/vmlinuz-*
  grub     grubx64.efi.signed (bookworm amd64)
  all      every PE image of the corpus in one process
Targets for kernel/grub/all: fwtools time <= 0.2 x virt-firmware time.

Each command runs ``--runs`` times (after one untimed warm-up that fills the page cache);
the wall time of each run is measured around the whole process with perf_counter and the
median is reported, with stdout and stderr discarded. A command that fails is reported in
the table instead of stopping the run, so this works while fwtools' pe-inspect is unfinished.

Usage:
  bash benchmarks/setup-peers.sh          # once: virt-firmware in its own venv
  .venv/bin/python benchmarks/bench_pe_inspect.py [--runs 7] [--strict]
Writes benchmarks/results/pe_inspect.json (gitignored). This is a measurement, never a test.
"""

from __future__ import annotations

import argparse
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

# The same corpus lookup the tests use, so the benchmark measures exactly the files they see.
from corpus.corpus import Corpus, CorpusMissingError, load_corpus  # noqa: E402

DEFAULT_FWTOOLS: Final = REPO_ROOT / ".venv" / "bin" / "pe-inspect"
DEFAULT_VIRT: Final = Path(
    os.environ.get("FWTOOLS_BENCH_DIR", "/var/cache/fwtools-bench")
) / "virt-venv" / "bin" / "pe-inspect"
RESULTS: Final = REPO_ROOT / "benchmarks" / "results" / "pe_inspect.json"
SCHEMA: Final = "fwtools.bench.pe-inspect/1"
RATIO_TARGET: Final = 0.2
HELP_TARGET_S: Final = 0.080
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


def cases(corpus: Corpus, suite: str) -> list[tuple[str, str, list[Path]]]:
    everything = [b.path for b in corpus.efi_binaries()]
    return [
        ("help", "pe-inspect --help", []),
        ("kernel", f"{suite} amd64 signed kernel", [corpus.kernel(suite, "amd64")]),
        ("grub", f"{suite} amd64 grubx64.efi.signed", [corpus.grub(suite, "amd64")]),
        ("all", f"all {len(everything)} corpus PE images, one process", everything),
    ]


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="pe-inspect: fwtools vs virt-firmware")
    ap.add_argument("--runs", type=int, default=7, help="timed runs per command (median)")
    ap.add_argument("--suite", default="bookworm", choices=["bookworm", "trixie"])
    ap.add_argument("--fwtools", type=Path, default=DEFAULT_FWTOOLS,
                    help=f"fwtools pe-inspect (default {DEFAULT_FWTOOLS})")
    ap.add_argument("--virt", type=Path, default=DEFAULT_VIRT,
                    help=f"virt-firmware pe-inspect (default {DEFAULT_VIRT})")
    ap.add_argument("--only", action="append", choices=["help", "kernel", "grub", "all"],
                    help="run only these cases (repeatable)")
    ap.add_argument("-o", "--output", type=Path, default=RESULTS)
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a target is missed or a command fails")
    args = ap.parse_args(argv)

    try:
        corpus = load_corpus()
    except CorpusMissingError as exc:
        print(f"bench_pe_inspect: {exc}", file=sys.stderr)
        return 2
    if not args.virt.exists():
        print(f"bench_pe_inspect: {args.virt} missing: run bash benchmarks/setup-peers.sh",
              file=sys.stderr)

    # An installed package has its bytecode compiled by pip; an editable checkout only when
    # Python may write it, which PYTHONDONTWRITEBYTECODE (set in some shells and CI
    # environments) forbids. Compile it up front so both tools start from bytecode.
    import compileall

    compileall.compile_dir(str(REPO_ROOT / "fwtools"), quiet=1)

    results: list[Case] = []
    for name, description, paths in cases(corpus, args.suite):
        if args.only and name not in args.only:
            continue
        files = [str(p) for p in paths]
        if name == "help":
            fw_cmd, virt_cmd = [str(args.fwtools), "--help"], [str(args.virt), "--help"]
        else:
            fw_cmd = [str(args.fwtools), "--json", *files]
            virt_cmd = [str(args.virt), *files]
        print(f"measuring {name} ({description}) ...", file=sys.stderr, flush=True)
        case = Case(
            name, description, len(paths), sum(p.stat().st_size for p in paths),
            measure(fw_cmd, args.runs), measure(virt_cmd, args.runs),
            target=f"<= {HELP_TARGET_S * 1000:.0f} ms" if name == "help"
            else f"ratio <= {RATIO_TARGET}",
        )
        fw, virt = case.fwtools.median_s, case.virt.median_s
        if fw is not None and virt is not None:
            case.ratio = fw / virt
        if name == "help":
            case.met = None if fw is None else fw <= HELP_TARGET_S
        else:
            case.met = None if case.ratio is None else case.ratio <= RATIO_TARGET
        results.append(case)

    print(render(results))
    doc = {
        "schema": SCHEMA,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "runs": args.runs,
        "suite": args.suite,
        "corpus": str(corpus.base),
        "cases": [
            {**asdict(c), "fwtools": {**asdict(c.fwtools), "median_s": c.fwtools.median_s},
             "virt": {**asdict(c.virt), "median_s": c.virt.median_s}}
            for c in results
        ],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    if args.strict and any(c.met is not True for c in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
