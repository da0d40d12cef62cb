#!/usr/bin/env python3
"""fw-vars: fwtools vs virt-firmware's virt-fw-vars, side by side in one run.

Cases (Debian bookworm corpus):
  show-4m      print OVMF_VARS_4M.ms.fd
  show-aavmf   print the 64 MiB AAVMF_VARS.ms.fd (also: peak memory vs the store size)
  enroll       enrol Microsoft KEK/db with Secure Boot into a fresh OVMF_VARS_4M.fd
               (virt: --enroll-microsoft --secure-boot; fwtools: enroll --pk microsoft
               --microsoft --secure-boot, the same key set)
  enroll-qcow2 the same with a qcow2 store in and out (virt-fw-vars shells out to qemu-img)
Target: fwtools time <= 1/4 of virt-fw-vars'; memory for the 64 MiB store <= 2x its size.

Usage:
  bash benchmarks/setup-peers.sh
  .venv/bin/python benchmarks/bench_fw_vars.py [--runs 7] [--strict]
Writes benchmarks/results/fw_vars.json (gitignored). A measurement, never a test.
"""

from __future__ import annotations

import argparse
import subprocess
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

RESULTS: Final = REPO_ROOT / "benchmarks" / "results" / "fw_vars.json"
WORK: Final = REPO_ROOT / "benchmarks" / "results" / "fw_vars"
SCHEMA: Final = "fwtools.bench.fw-vars/1"
RATIO_TARGET: Final = 0.25


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fw-vars: fwtools vs virt-fw-vars")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("-o", "--output", type=Path, default=RESULTS)
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args(argv)
    try:
        corpus = load_corpus()
    except CorpusMissingError as exc:
        print(f"bench_fw_vars: {exc}", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    ms4m = corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd")
    blank = corpus.ovmf("bookworm", "OVMF_VARS_4M.fd")
    aavmf = corpus.aavmf("bookworm", "AAVMF_VARS.ms.fd")
    blank_qcow2 = WORK / "blank.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o",
                    "cluster_size=4096", str(blank), str(blank_qcow2)], check=True)
    compile_fwtools()
    fw, virt = str(FWTOOLS_BIN / "fw-vars"), str(VIRT_BIN / "virt-fw-vars")
    out_fw, out_virt = str(WORK / "fw.fd"), str(WORK / "virt.fd")
    q_fw, q_virt = str(WORK / "fw.qcow2"), str(WORK / "virt.qcow2")
    plan = [
        ("show-4m", "print OVMF_VARS_4M.ms.fd", [fw, "show", str(ms4m)],
         [virt, "-i", str(ms4m), "--print"]),
        ("show-aavmf", "print the 64 MiB AAVMF_VARS.ms.fd", [fw, "show", str(aavmf)],
         [virt, "-i", str(aavmf), "--print"]),
        ("enroll", "Microsoft keys + Secure Boot into a fresh 4M store",
         [fw, "enroll", str(blank), "--pk", "microsoft", "--microsoft", "--secure-boot",
          "-o", out_fw],
         [virt, "-i", str(blank), "--enroll-microsoft", "--secure-boot", "-o", out_virt]),
        ("enroll-qcow2", "the same, qcow2 in and out",
         [fw, "enroll", str(blank_qcow2), "--pk", "microsoft", "--microsoft", "--secure-boot",
          "-o", q_fw],
         [virt, "-i", str(blank_qcow2), "--enroll-microsoft", "--secure-boot", "-o", q_virt]),
    ]
    results: list[Case] = []
    for name, description, fw_cmd, virt_cmd in plan:
        print(f"measuring {name} ({description}) ...", file=sys.stderr, flush=True)
        case = Case(name, description, 1, 0, measure(fw_cmd, args.runs),
                    measure(virt_cmd, args.runs), target=f"ratio <= {RATIO_TARGET}")
        judge(case, ratio_target=RATIO_TARGET, absolute_target_s=None)
        results.append(case)
    print(render(results))
    aavmf_case = next(c for c in results if c.name == "show-aavmf")
    size_kib = aavmf.stat().st_size // 1024
    rss = aavmf_case.fwtools.max_rss_kib
    print(f"show-aavmf peak RSS: fwtools {rss} KiB = {rss / size_kib:.2f}x the store "
          f"(target <= 2x), virt-fw-vars {aavmf_case.virt.max_rss_kib} KiB")
    write_record(args.output, SCHEMA, args.runs, results, aavmf_rss_over_size=rss / size_kib)
    if args.strict and (any(c.met is not True for c in results) or rss > 2 * size_kib):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
