#!/usr/bin/env python3
"""``fw-check vm`` as a whole process (issue 16's target): a 2 GiB qcow2 disk with Debian 13's
layout (shim, GRUB, grub.cfg on the ESP; the kernel on ext4: tests/machine/vm_builder.py),
Debian's 4 MiB ``OVMF_VARS_4M.ms.fd`` and ``OVMF_CODE_4M.secboot.fd``.

  vm-qcow2-2g   `fw-check vm --firmware CODE --vars VARS --disk DISK --json`, wall time,
                median of --runs runs after a warm-up.   Target: < 1 s.

Reading the disk costs what the files it opens cost: the same disk at 64 GiB is measured too
(vm-qcow2-64g), and should take the same time.

Usage:  .venv/bin/python benchmarks/bench_vm.py [--runs 7]
Writes benchmarks/results/vm.json (gitignored). A measurement, never a test.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from typing import Final

from _harness import (
    FWTOOLS_BIN,
    REPO_ROOT,
    RESULTS_DIR,
    Case,
    Timing,
    compile_fwtools,
    corpus_or_exit,
    finish,
    measure,
    parser,
)

RESULTS: Final = RESULTS_DIR / "vm.json"
SCHEMA: Final = "fwtools.bench.vm/1"
TARGET_S: Final = 1.0
GIB: Final = 1 << 30


def main(argv: list[str] | None = None) -> int:
    ap = parser("fw-check vm whole-process cost", RESULTS)
    args = ap.parse_args(argv)
    compile_fwtools()
    corpus = corpus_or_exit("bench_vm")
    sys.path[:0] = [str(REPO_ROOT / "tests" / "machine"),
                    str(REPO_ROOT / "tests" / "formats" / "disk")]
    # The test builders are plain modules beside the tests, not a package.
    to_qcow2 = importlib.import_module("disk_builder").to_qcow2
    build_debian_disk = importlib.import_module("vm_builder").build_debian_disk

    shim, grub, kernel = corpus.boot_chain("trixie", "amd64")
    ovmf = corpus.ovmf_dir("trixie")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for gib in (2, 64):
            d = Path(tmp) / f"{gib}g"
            d.mkdir()
            qcow = to_qcow2(build_debian_disk(d, shim, grub, kernel, size=gib * GIB))
            cmd = [str(FWTOOLS_BIN / "fw-check"), "vm", "--firmware",
                   str(ovmf / "OVMF_CODE_4M.secboot.fd"), "--vars",
                   str(ovmf / "OVMF_VARS_4M.ms.fd"), "--disk", str(qcow), "--json"]
            t = measure(cmd, args.runs)
            med = t.median_s
            results.append(Case(
                f"vm-qcow2-{gib}g", f"fw-check vm on a {gib} GiB qcow2 disk (Debian 13)",
                1, qcow.stat().st_size, t, Timing([]), f"< {TARGET_S:.0f} s",
                met=None if med is None else med < TARGET_S))
    return finish(args, SCHEMA, results)


if __name__ == "__main__":
    sys.exit(main())
