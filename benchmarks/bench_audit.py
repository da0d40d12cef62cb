#!/usr/bin/env python3
"""fw-vars audit over a host's worth of stores, against a shell loop of virt-fw-vars.

Cases:
  audit-N      issue 14's target: N stores (default 1,000) in one temporary directory: copies
               of every Debian OVMF/AAVMF store of the corpus (bookworm and trixie; 2 MiB,
               4 MiB and 64 MiB; blank, .ms, .snakeoil), raw and qcow2 taking turns.
               fwtools: one `fw-vars audit --json DIR`; virt-firmware: `for f in DIR/*; do
               virt-fw-vars --input $f --print; done` (what a host script would do today;
               virt-fw-vars reads qcow2 through qemu-img).  Target: fwtools <= 1/20 of the loop.
  audit-N-x86  the same with the x86 (OVMF) stores only, as on a typical x86 libvirt host:
               the 64 MiB AAVMF stores, whose reading dominates both tools, left out.
Also recorded: fwtools' peak RSS against the largest store (memory must follow the largest
store and the number of workers, not the number of stores).

The 64 MiB AAVMF copies are written sparse (their tail is zeros), so N stores need little
disk; reading them still costs both tools the full 64 MiB.

Usage:
  bash benchmarks/setup-peers.sh
  .venv/bin/python benchmarks/bench_audit.py [--stores 1000] [--runs 1] [--strict]
Writes benchmarks/results/audit.json (gitignored). A measurement, never a test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
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

RESULTS: Final = RESULTS_DIR / "audit.json"
SCHEMA: Final = "fwtools.bench.audit/1"
RATIO_TARGET: Final = 1 / 20
STORE_GLOBS: Final = ("*/amd64/ovmf/usr/share/OVMF/OVMF*_VARS*.fd",
                      "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF*_VARS*.fd")


def write_sparse(data: bytes, target: Path) -> None:
    """``data`` with its trailing zeros left as a hole."""
    body = data.rstrip(b"\0")
    with open(target, "wb") as f:
        f.write(body)
        f.truncate(len(data))


def make_fleet(sources: list[Path], directory: Path, count: int) -> tuple[int, int]:
    """``count`` stores in ``directory``; returns (bytes, largest store in bytes)."""
    fw_vars = str(FWTOOLS_BIN / "fw-vars")
    variants: list[tuple[str, bytes]] = []
    for src in sources:
        data = src.read_bytes()
        variants.append(("fd", data))
        if any(data[:4096]):  # the all-zero template has no store to convert
            qcow2 = directory / "tmp.qcow2"
            subprocess.run([fw_vars, "convert", str(src), str(qcow2)], check=True,
                           capture_output=True)
            variants.append(("qcow2", qcow2.read_bytes()))
            qcow2.unlink()
    total = largest = 0
    for i in range(count):
        ext, data = variants[i % len(variants)]
        target = directory / f"vm{i:05d}_VARS.{ext}"
        if ext == "fd":
            write_sparse(data, target)
            largest = max(largest, len(data))
        else:
            target.write_bytes(data)
        total += len(data)
    return total, largest


def make_fleet_elsewhere(sources: list[Path], directory: Path, count: int) -> tuple[int, int]:
    """:func:`make_fleet` in a child process. Linux carries a process's peak RSS across
    fork and exec, so the timed commands, forked from this process, would report this
    process's peak (the 64 MiB stores read to make the copies) as theirs."""
    import json

    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "import bench_audit as b; print(json.dumps(b.make_fleet("
            "[Path(p) for p in sys.argv[4:]], Path(sys.argv[2]), int(sys.argv[3]))))")
    done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent),
                           str(directory), str(count), *map(str, sources)],
                          check=True, capture_output=True, text=True)
    size, largest = json.loads(done.stdout)
    return int(size), int(largest)


def main(argv: list[str] | None = None) -> int:
    ap = parser("fw-vars audit vs a virt-fw-vars loop", RESULTS)
    ap.add_argument("--stores", type=int, default=1000, help="how many stores (default 1000)")
    ap.set_defaults(runs=1)
    ap.add_argument("--only", action="append", choices=["all", "x86"],
                    help="run only this mix (repeatable)")
    args = ap.parse_args(argv)
    corpus = corpus_or_exit("bench_audit")
    sources = sorted({p for g in STORE_GLOBS for p in corpus.root.glob(g)})
    if not sources:
        print("bench_audit: no OVMF/AAVMF stores in the corpus", file=sys.stderr)
        return 2
    if not shutil.which("qemu-img"):
        print("bench_audit: virt-fw-vars needs qemu-img for qcow2 stores", file=sys.stderr)
        return 2
    fw = str(FWTOOLS_BIN / "fw-vars")
    virt = str(VIRT_BIN / "virt-fw-vars")
    mixes = {"all": sources, "x86": [p for p in sources if "AAVMF" not in p.name]}
    results = []
    largest = 0
    with tempfile.TemporaryDirectory(prefix="fwtools-bench-audit-", dir="/var/tmp") as tmp:
        for mix, chosen in mixes.items():
            if args.only and mix not in args.only:
                continue
            fleet = Path(tmp) / mix
            fleet.mkdir()
            size, big = make_fleet_elsewhere(chosen, fleet, args.stores)
            largest = max(largest, big)
            # fw-vars audit exits 1 when it finds errors (Debian's .ms stores have them):
            # that is its answer, not a failure of the run.
            fw_cmd = ["sh", "-c", f'"{fw}" audit --json "$0" >/dev/null; [ $? -le 1 ]',
                      str(fleet)]
            # virt-fw-vars fails on the all-zero AAVMF template; the loop goes on, as a host
            # script's would.
            virt_cmd = ["sh", "-c", f'for f in "$0"/*; do "{virt}" --input "$f" --print '
                        '>/dev/null 2>&1; done; true', str(fleet)]
            name = f"audit-{args.stores}" + ("" if mix == "all" else f"-{mix}")
            plan = [Plan(name, f"{args.stores} stores (raw and qcow2 copies of {len(chosen)} "
                         "Debian stores)", fw_cmd, virt_cmd, RATIO_TARGET, files=args.stores,
                         bytes=size)]
            results += run_cases(plan, args.runs)
            shutil.rmtree(fleet)
    rss = max(c.fwtools.max_rss_kib for c in results)
    notes = [f"peak RSS of fw-vars audit's largest process: {rss} KiB; largest store "
             f"{largest // 1024} KiB",
             "fw-vars audit uses a process pool (all cores) above 16 stores; the "
             "virt-fw-vars loop runs one store at a time, as such loops do"]
    return finish(args, SCHEMA, results, notes=notes, stores=args.stores,
                  largest_store_kib=largest // 1024, peak_rss_kib=rss)


if __name__ == "__main__":
    sys.exit(main())
