#!/usr/bin/env python3
"""The W^X boot-chain replay (fw-check boot-chain), measured in one process.

No peer tool replays boot chains, so these are absolute measurements (issue 6's targets):

  replay-64g   a full three-stage replay (Debian 13's shim -> grub -> 6.12 kernel, x86-64)
               on ovmf-strict with a 64 GiB guest memory map: parsing the three binaries
               plus the replay, median CPU time of --runs runs.   Target: < 200 ms.
  fault-64g    the same with Debian 12's chain, which faults (the replay stops at GRUB).
  scaling      the replay with 4 GiB and with 1 TiB of guest memory: time(1 TiB) / time(4 GiB).
               Target: about 1 (cost follows the ranges touched, not the memory size).
  paging       the page-table simulator alone: identity-map the address space with the
               largest pages, make it all XP, then make the same 64 unaligned 4 KiB..2 MiB
               ranges RO (spread over the low 4 GiB, where firmware allocates), for 4 GiB and
               for 1 TiB: the ratio of the two. Also shown: the 64 ranges spread over the
               whole 1 TiB, which touches 64 distinct 1 GiB regions and so splits more tables.
  process      `fw-check boot-chain --memory 65536 --json` as a whole process (wall), for
               scale against the replay itself.

Usage:  .venv/bin/python benchmarks/bench_boot_chain.py [--runs 7] [--strict]
Writes benchmarks/results/boot_chain.json (gitignored). A measurement, never a test.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from _harness import FWTOOLS_BIN, RESULTS_DIR, compile_fwtools, corpus_or_exit, parser, run_once

RESULTS: Final = RESULTS_DIR / "boot_chain.json"
SCHEMA: Final = "fwtools.bench.boot-chain/1"
TARGET_MS: Final = 200.0
GIB: Final = 1 << 30


def cpu_ms(fn: Callable[[], object], runs: int) -> list[float]:
    """CPU time of each run in ms (process_time: the work, not the machine's other load)."""
    out = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        out.append((time.process_time() - start) * 1000)
    return out


def paging_case(size: int, spread: int = 4 * GIB) -> Callable[[], object]:
    """Map [0, size), make it XP, then make 64 ranges RO spaced evenly over [0, spread)."""
    from fwtools.paging import MemAttr, X64PageTable

    def run() -> object:
        pt = X64PageTable()
        pt.map(0, 0, size)
        pt.assign_attributes(0, size, MemAttr.XP)
        step = spread // 64
        for i in range(64):
            base = i * step + 0x1000 * (i + 1)  # unaligned: forces 1 GiB -> 2 MiB -> 4 KiB
            pt.assign_attributes(base, 0x1000 << (i % 10), MemAttr.RO)
        return pt.table_count

    return run


def main(argv: list[str] | None = None) -> int:
    ap = parser("fw-check boot-chain replay cost", RESULTS)
    args = ap.parse_args(argv)
    compile_fwtools()
    corpus = corpus_or_exit("bench_boot_chain")
    from fwtools.uefi.image import load_stage
    from fwtools.uefi.profile import load_firmware
    from fwtools.uefi.replay import replay

    trixie = [str(p) for p in corpus.boot_chain("trixie", "amd64")]
    bookworm = [str(p) for p in corpus.boot_chain("bookworm", "amd64")]
    strict = load_firmware("ovmf-strict")

    def full(paths: list[str], memory_mib: int) -> Callable[[], object]:
        profile = strict.with_overrides(memory_mib=memory_mib)
        return lambda: replay([load_stage(p) for p in paths], profile, secure_boot=True)

    runs = max(3, args.runs)
    full(trixie, 65536)()  # warm the imports and the file cache
    rows: dict[str, Any] = {}
    rows["replay-64g"] = cpu_ms(full(trixie, 65536), runs)
    rows["fault-64g"] = cpu_ms(full(bookworm, 65536), runs)
    rows["replay-4g"] = cpu_ms(full(trixie, 4096), runs)
    rows["replay-1t"] = cpu_ms(full(trixie, 1 << 20), runs)
    rows["paging-4g"] = cpu_ms(paging_case(4 * GIB), runs)
    rows["paging-1t"] = cpu_ms(paging_case(1024 * GIB), runs)
    rows["paging-1t-spread"] = cpu_ms(paging_case(1024 * GIB, 1024 * GIB), runs)
    med = {k: statistics.median(v) for k, v in rows.items()}
    cmd = [str(FWTOOLS_BIN / "fw-check"), "boot-chain", "--firmware", "ovmf-strict",
           "--memory", "65536", "--secure-boot", "on", "--json", *trixie]
    wall = []
    for _ in range(runs):
        seconds, _rss, error = run_once(cmd)
        if error is not None:
            print(f"process run failed: {error}", file=sys.stderr)
            break
        wall.append(seconds * 1000)
    med["process"] = statistics.median(wall) if wall else float("nan")
    scaling = med["replay-1t"] / med["replay-4g"]
    paging_ratio = med["paging-1t"] / med["paging-4g"]
    met = med["replay-64g"] < TARGET_MS

    print(f"{'case':<34} {'median':>10}")
    labels = {
        "replay-64g": "replay, 64 GiB guest (boots)",
        "fault-64g": "replay, 64 GiB guest (faults)",
        "replay-4g": "replay, 4 GiB guest",
        "replay-1t": "replay, 1 TiB guest",
        "paging-4g": "page tables: map+protect 4 GiB",
        "paging-1t": "page tables: map+protect 1 TiB",
        "paging-1t-spread": "  ... ranges spread over 1 TiB",
        "process": "fw-check boot-chain process (wall)",
    }
    for key, label in labels.items():
        print(f"{label:<34} {med[key]:>8.1f} ms")
    print(f"\nthree-stage replay, 64 GiB: {med['replay-64g']:.1f} ms CPU "
          f"(target < {TARGET_MS:.0f} ms: {'met' if met else 'missed'})")
    print(f"scaling 1 TiB / 4 GiB: replay {scaling:.2f}, page tables {paging_ratio:.2f}")

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = Path(args.output) if getattr(args, "output", None) else RESULTS
    out.write_text(json.dumps({
        "schema": SCHEMA, "runs_ms": rows, "median_ms": med, "scaling": scaling,
        "paging_scaling": paging_ratio, "target_ms": TARGET_MS, "met": met,
        "chain": trixie, "fault_chain": bookworm,
    }, indent=2) + "\n")
    return 1 if (args.strict and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
