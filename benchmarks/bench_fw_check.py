#!/usr/bin/env python3
"""fw-check --policy strict (signatures verified) vs virt-firmware's pe-inspect, one run.

Case (Debian corpus, see tests/corpus/fetch.sh):
  all      every PE image of the corpus in one process:
           ``fw-check --policy strict --json --db <MS UEFI CA + Debian CA if present> FILES``
           (every PKCS#7 signature verified, db trust decided) against
           ``virt-firmware pe-inspect FILES`` (which checks far less).
           Target: fwtools time <= 0.2 x virt-firmware time.
  serial   the same fw-check run with -j 1, to show what the process pool buys.
Reports files per second for each command.

Usage:
  bash benchmarks/setup-peers.sh          # once: virt-firmware in its own venv
  .venv/bin/python benchmarks/bench_fw_check.py [--runs 7] [--strict]
Writes benchmarks/results/fw_check.json (gitignored). A measurement, never a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from _harness import (
    FWTOOLS_BIN,
    REPO_ROOT,
    VIRT_BIN,
    Case,
    compile_fwtools,
    judge,
    measure,
    render,
    write_record,
)

sys.path.insert(0, str(REPO_ROOT / "tests"))

from corpus.corpus import CorpusMissingError, load_corpus

DEFAULT_FWTOOLS: Final = FWTOOLS_BIN / "fw-check"
DEFAULT_VIRT: Final = VIRT_BIN / "pe-inspect"
RESULTS: Final = REPO_ROOT / "benchmarks" / "results" / "fw_check.json"
SCHEMA: Final = "fwtools.bench.fw-check/1"
RATIO_TARGET: Final = 0.2
DB_CANDIDATES: Final = (
    Path("/work/shared/corpus/microsoft-secureboot-objects"),
)


def db_anchors() -> list[str]:
    """Microsoft's UEFI CA certificates when the MS corpus is present (else none: the
    signatures are still verified, only the db trust verdict is skipped)."""
    out: list[str] = []
    for base in DB_CANDIDATES:
        if base.is_dir():
            out += [str(p) for p in sorted((base / "certs" / "db").glob("*.der"))]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fw-check vs virt-firmware pe-inspect")
    ap.add_argument("--runs", type=int, default=7, help="timed runs per command (median)")
    ap.add_argument("--fwtools", type=Path, default=DEFAULT_FWTOOLS)
    ap.add_argument("--virt", type=Path, default=DEFAULT_VIRT)
    ap.add_argument("-o", "--output", type=Path, default=RESULTS)
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a target is missed or a command fails")
    args = ap.parse_args(argv)
    try:
        corpus = load_corpus()
    except CorpusMissingError as exc:
        print(f"bench_fw_check: {exc}", file=sys.stderr)
        return 2
    compile_fwtools()
    paths = [b.path for b in corpus.efi_binaries()]
    files = [str(p) for p in paths]
    size = sum(p.stat().st_size for p in paths)
    db: list[str] = []
    for cert in db_anchors():
        db += ["--db", cert]
    # fw-check exits 1 on findings (the corpus has plenty): count that as success.
    base = [str(args.fwtools), "--policy", "strict", "--json", "--fail-on", "note", *db]
    wrapper = ["/bin/sh", "-c", '"$@"; test $? -le 1', "fw-check"]
    virt_cmd = [str(args.virt), *files]
    results: list[Case] = []
    virt_timing = None
    for name, extra, what in (("all", [], "parallel (default)"), ("serial", ["-j", "1"], "-j 1")):
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        fw = measure([*wrapper, *base, *extra, *files], args.runs)
        if virt_timing is None:
            virt_timing = measure(virt_cmd, args.runs)
        case = Case(name, f"fw-check strict {what}, {len(files)} corpus PE images", len(files),
                    size, fw, virt_timing, target=f"ratio <= {RATIO_TARGET}")
        judge(case, ratio_target=RATIO_TARGET, absolute_target_s=None)
        results.append(case)
    print(render(results))
    for c in results:
        for label, t in (("fw-check", c.fwtools), ("virt pe-inspect", c.virt)):
            if t.median_s:
                print(f"{c.name}: {label}: {c.files / t.median_s:.0f} files/s")
    write_record(args.output, SCHEMA, args.runs, results, corpus=str(corpus.base),
                 db=db_anchors())
    print(f"wrote {args.output}", file=sys.stderr)
    if args.strict and any(c.met is not True for c in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
