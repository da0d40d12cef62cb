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

# The same corpus lookup the tests use, so the benchmark measures exactly the files they see.
from corpus.corpus import Corpus, CorpusMissingError, load_corpus

DEFAULT_FWTOOLS: Final = FWTOOLS_BIN / "pe-inspect"
DEFAULT_VIRT: Final = VIRT_BIN / "pe-inspect"
RESULTS: Final = REPO_ROOT / "benchmarks" / "results" / "pe_inspect.json"
SCHEMA: Final = "fwtools.bench.pe-inspect/1"
RATIO_TARGET: Final = 0.2
HELP_TARGET_S: Final = 0.080


def cases(corpus: Corpus, suite: str) -> list[tuple[str, str, list[Path]]]:
    everything = [b.path for b in corpus.efi_binaries()]
    return [
        ("help", "pe-inspect --help", []),
        ("kernel", f"{suite} amd64 signed kernel", [corpus.kernel(suite, "amd64")]),
        ("grub", f"{suite} amd64 grubx64.efi.signed", [corpus.grub(suite, "amd64")]),
        ("all", f"all {len(everything)} corpus PE images, one process", everything),
    ]


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

    compile_fwtools()

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
        judge(case, ratio_target=RATIO_TARGET,
              absolute_target_s=HELP_TARGET_S if name == "help" else None)
        results.append(case)

    print(render(results))
    write_record(args.output, SCHEMA, args.runs, results, suite=args.suite,
                 corpus=str(corpus.base))
    print(f"wrote {args.output}", file=sys.stderr)
    if args.strict and any(c.met is not True for c in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
