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

import sys
from pathlib import Path
from typing import Final

from _harness import (
    FWTOOLS_BIN,
    RESULTS_DIR,
    VIRT_BIN,
    Plan,
    corpus_or_exit,
    finish,
    ms_corpus_base,
    parser,
    run_cases,
)

DEFAULT_FWTOOLS: Final = FWTOOLS_BIN / "fw-check"
DEFAULT_VIRT: Final = VIRT_BIN / "pe-inspect"
RESULTS: Final = RESULTS_DIR / "fw_check.json"
SCHEMA: Final = "fwtools.bench.fw-check/1"
RATIO_TARGET: Final = 0.2


def db_anchors() -> list[str]:
    """Microsoft's UEFI CA certificates when the MS corpus is present (else none: the
    signatures are still verified, only the db trust verdict is skipped)."""
    return [str(p) for p in sorted((ms_corpus_base() / "certs" / "db").glob("*.der"))]


def main(argv: list[str] | None = None) -> int:
    ap = parser("fw-check vs virt-firmware pe-inspect", RESULTS)
    ap.add_argument("--fwtools", type=Path, default=DEFAULT_FWTOOLS)
    ap.add_argument("--virt", type=Path, default=DEFAULT_VIRT)
    args = ap.parse_args(argv)
    corpus = corpus_or_exit("bench_fw_check")
    paths = [b.path for b in corpus.efi_binaries()]
    files = [str(p) for p in paths]
    size = sum(p.stat().st_size for p in paths)
    anchors = db_anchors()
    db = [arg for cert in anchors for arg in ("--db", cert)]
    # fw-check exits 1 on findings (the corpus has plenty): count that as success, but not a
    # crash, which Python also reports with exit 1 (and a traceback on stderr).
    base = [str(args.fwtools), "--policy", "strict", "--json", "--fail-on", "note", *db]
    wrapper = ["/bin/sh", "-c",
               'err=$("$@" 2>&1 >/dev/null); rc=$?; '
               'case "$err" in *Traceback*) echo "$err" >&2; exit 3;; esac; test $rc -le 1',
               "fw-check"]
    # Both cases compare with the same virt-firmware command, which is measured once.
    virt_cmd = [str(args.virt), *files]
    plan = [
        Plan(name, f"fw-check strict {what}, {len(files)} corpus PE images",
             [*wrapper, *base, *extra, *files], virt_cmd, RATIO_TARGET, files=len(files),
             bytes=size)
        for name, extra, what in (("all", [], "parallel (default)"),
                                  ("serial", ["-j", "1"], "-j 1"))
    ]
    results = run_cases(plan, args.runs)
    notes = [
        f"{c.name}: {label}: {c.files / t.median_s:.0f} files/s"
        for c in results
        for label, t in (("fw-check", c.fwtools), ("virt pe-inspect", c.virt))
        if t.median_s
    ]
    return finish(args, SCHEMA, results, notes=notes, corpus=str(corpus.base), db=anchors)


if __name__ == "__main__":
    sys.exit(main())
