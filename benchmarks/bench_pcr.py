#!/usr/bin/env python3
"""fw-pcr predict for a three-stage chain (shim -> grub -> kernel) with Debian's 4M OVMF store
(issue 17: "the Authenticode digests dominate; report the time above the floor").

Three processes, measured like the other benchmarks (whole process, warm-up run, median of
--runs):
  floor     the interpreter importing what the command must use: click, pefile,
            asn1crypto's CMS and cryptography (the db/MokList verification of each stage)
  hashing   the floor plus the least work: reading the three binaries and hashing them in
            both default banks (SHA-1 and SHA-256), as the PCR 4 events need
  fw-pcr    `fw-pcr predict --vars OVMF_VARS_4M.ms.fd shim grub vmlinuz --grub-cfg F --json`
Printed: each median, fw-pcr's time above the floor and above the hashing, and, in this
process, the library call ``predict()`` alone (CPU time, median).

Usage:
  .venv/bin/python benchmarks/bench_pcr.py [--runs 11]
Writes benchmarks/results/pcr.json (gitignored). A measurement, never a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from _harness import REPO_ROOT, RESULTS_DIR, corpus_or_exit, fmt_s, measure

RESULTS: Final = RESULTS_DIR / "pcr.json"
FLOOR: Final = ("import click, pefile, asn1crypto.cms; "
                "from cryptography.hazmat.primitives.asymmetric import rsa")
HASHING: Final = (FLOOR + "; import hashlib, sys\n"
                  "for p in sys.argv[1:]:\n"
                  "    d = open(p, 'rb').read(); hashlib.sha1(d).digest(); "
                  "hashlib.sha256(d).digest()")
GRUB_CFG: Final = ("set timeout=0\nlinux /vmlinuz console=ttyS0 panic=-1 loglevel=1\n"
                   "initrd /initrd.img\nboot\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    corpus = corpus_or_exit("bench_pcr")
    s, a = "bookworm", "amd64"
    store = corpus.package_dir(s, a, "ovmf") / "usr/share/OVMF/OVMF_VARS_4M.ms.fd"
    chain = [corpus.file(s, a, "shim-signed", "usr/lib/shim/shimx64.efi.signed"),
             corpus.file(s, a, "grub-efi-amd64-signed",
                         "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
             corpus.file(s, a, "linux-image-6.1.0-50-amd64", "boot/vmlinuz-*")]
    # This checkout's fwtools, whatever venv runs the script.
    os.environ["PYTHONPATH"] = str(REPO_ROOT)
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "grub.cfg"
        cfg.write_text(GRUB_CFG)
        files = [str(p) for p in chain]
        fw_pcr = [python, "-c", "from fwtools.cli.fw_pcr import main; main()", "predict",
                  "--vars", str(store), *files, "--grub-cfg", str(cfg), "--json"]
        timings = {
            "floor": measure([python, "-c", FLOOR], args.runs),
            "hashing": measure([python, "-c", HASHING, *files], args.runs),
            "fw-pcr": measure(fw_pcr, args.runs),
        }
        sys.path.insert(0, str(REPO_ROOT))
        from fwtools.formats.varstore.storeio import load_store
        from fwtools.machine.measure import MachineInput, predict

        cpu = []
        for _ in range(args.runs + 1):
            start = time.process_time()
            predict(MachineInput(load_store(store), files, grub_cfg=GRUB_CFG))
            cpu.append(time.process_time() - start)
    for name, t in timings.items():
        if t.error:
            print(f"{name}: {t.error}", file=sys.stderr)
            return 2
    floor = timings["floor"].median_s or 0.0
    hashing = timings["hashing"].median_s or 0.0
    total = timings["fw-pcr"].median_s or 0.0
    library = statistics.median(cpu[1:])
    size = sum(p.stat().st_size for p in chain)
    print(f"chain: {len(chain)} stages, {size / 1e6:.1f} MB; store {store.name} "
          f"({store.stat().st_size // 1024} KiB)")
    for name, t in timings.items():
        print(f"  {name:<8} {fmt_s(t.median_s)}  (max RSS {t.max_rss_kib // 1024} MiB)")
    print(f"fw-pcr above the floor:   {fmt_s(total - floor)}")
    print(f"fw-pcr above the hashing: {fmt_s(total - hashing)}")
    print(f"predict() in process:     {fmt_s(library)} CPU, median of {args.runs}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "schema": "fwtools.bench.pcr/1", "runs": args.runs,
        "medians_s": {n: t.median_s for n, t in timings.items()},
        "above_floor_s": total - floor, "above_hashing_s": total - hashing,
        "predict_cpu_s": library,
    }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
