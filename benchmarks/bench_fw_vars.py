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

import subprocess
import sys
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

RESULTS: Final = RESULTS_DIR / "fw_vars.json"
WORK: Final = RESULTS_DIR / "fw_vars"
SCHEMA: Final = "fwtools.bench.fw-vars/1"
RATIO_TARGET: Final = 0.25


def main(argv: list[str] | None = None) -> int:
    args = parser("fw-vars: fwtools vs virt-fw-vars", RESULTS).parse_args(argv)
    corpus = corpus_or_exit("bench_fw_vars")
    WORK.mkdir(parents=True, exist_ok=True)
    ms4m = corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd")
    blank = corpus.ovmf("bookworm", "OVMF_VARS_4M.fd")
    aavmf = corpus.aavmf("bookworm", "AAVMF_VARS.ms.fd")
    blank_qcow2 = WORK / "blank.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o",
                    "cluster_size=4096", str(blank), str(blank_qcow2)], check=True)
    fw, virt = str(FWTOOLS_BIN / "fw-vars"), str(VIRT_BIN / "virt-fw-vars")
    out_fw, out_virt = str(WORK / "fw.fd"), str(WORK / "virt.fd")
    q_fw, q_virt = str(WORK / "fw.qcow2"), str(WORK / "virt.qcow2")
    enroll = ["--pk", "microsoft", "--microsoft", "--secure-boot"]
    virt_enroll = ["--enroll-microsoft", "--secure-boot"]
    plan = [
        Plan("show-4m", "print OVMF_VARS_4M.ms.fd", [fw, "show", str(ms4m)],
             [virt, "-i", str(ms4m), "--print"], RATIO_TARGET),
        Plan("show-aavmf", "print the 64 MiB AAVMF_VARS.ms.fd", [fw, "show", str(aavmf)],
             [virt, "-i", str(aavmf), "--print"], RATIO_TARGET),
        Plan("enroll", "Microsoft keys + Secure Boot into a fresh 4M store",
             [fw, "enroll", str(blank), *enroll, "-o", out_fw],
             [virt, "-i", str(blank), *virt_enroll, "-o", out_virt], RATIO_TARGET),
        Plan("enroll-qcow2", "the same, qcow2 in and out",
             [fw, "enroll", str(blank_qcow2), *enroll, "-o", q_fw],
             [virt, "-i", str(blank_qcow2), *virt_enroll, "-o", q_virt], RATIO_TARGET),
    ]
    results = run_cases(plan, args.runs)
    aavmf_case = next(c for c in results if c.name == "show-aavmf")
    size_kib = aavmf.stat().st_size // 1024
    rss = aavmf_case.fwtools.max_rss_kib
    note = (f"show-aavmf peak RSS: fwtools {rss} KiB = {rss / size_kib:.2f}x the store "
            f"(target <= 2x), virt-fw-vars {aavmf_case.virt.max_rss_kib} KiB")
    return finish(args, SCHEMA, results, notes=[note], failed=rss > 2 * size_kib,
                  aavmf_rss_over_size=rss / size_kib)


if __name__ == "__main__":
    sys.exit(main())
