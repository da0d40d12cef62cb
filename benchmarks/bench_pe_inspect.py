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
    parser,
    run_cases,
)

DEFAULT_FWTOOLS: Final = FWTOOLS_BIN / "pe-inspect"
DEFAULT_VIRT: Final = VIRT_BIN / "pe-inspect"
RESULTS: Final = RESULTS_DIR / "pe_inspect.json"
SCHEMA: Final = "fwtools.bench.pe-inspect/1"
RATIO_TARGET: Final = 0.2
HELP_TARGET_S: Final = 0.080
CASES: Final = ("help", "kernel", "grub", "all")


def plan(fwtools: Path, virt: Path, corpus_paths: dict[str, tuple[str, list[Path]]]) -> list[Plan]:
    out = [Plan("help", "pe-inspect --help", [str(fwtools), "--help"], [str(virt), "--help"],
                RATIO_TARGET, absolute_target_s=HELP_TARGET_S, files=0)]
    for name, (description, paths) in corpus_paths.items():
        files = [str(p) for p in paths]
        out.append(Plan(name, description, [str(fwtools), "--json", *files], [str(virt), *files],
                        RATIO_TARGET, files=len(paths),
                        bytes=sum(p.stat().st_size for p in paths)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = parser("pe-inspect: fwtools vs virt-firmware", RESULTS, only=CASES)
    ap.add_argument("--suite", default="bookworm", choices=["bookworm", "trixie"])
    ap.add_argument("--fwtools", type=Path, default=DEFAULT_FWTOOLS,
                    help=f"fwtools pe-inspect (default {DEFAULT_FWTOOLS})")
    ap.add_argument("--virt", type=Path, default=DEFAULT_VIRT,
                    help=f"virt-firmware pe-inspect (default {DEFAULT_VIRT})")
    args = ap.parse_args(argv)

    corpus = corpus_or_exit("bench_pe_inspect")
    if not args.virt.exists():
        print(f"bench_pe_inspect: {args.virt} missing: run bash benchmarks/setup-peers.sh",
              file=sys.stderr)
    suite = args.suite
    everything = [b.path for b in corpus.efi_binaries()]
    corpus_paths = {
        "kernel": (f"{suite} amd64 signed kernel", [corpus.kernel(suite, "amd64")]),
        "grub": (f"{suite} amd64 grubx64.efi.signed", [corpus.grub(suite, "amd64")]),
        "all": (f"all {len(everything)} corpus PE images, one process", everything),
    }
    results = run_cases(plan(args.fwtools, args.virt, corpus_paths), args.runs, args.only)
    return finish(args, SCHEMA, results, suite=suite, corpus=str(corpus.base))


if __name__ == "__main__":
    sys.exit(main())
