#!/usr/bin/env python3
"""The floor under every single-file target: what the interpreter and the mandated libraries
cost before fwtools does any work, beside each target's time budget, in one run.

A target "at most R x the peer's time" gives fwtools a budget of R x (peer's time). Before
any of its own code runs, a fwtools command pays for the interpreter and for importing the
libraries DESIGN.md mandates for that job: click for every command (only cli/ imports it,
but every command is a click command), pefile and asn1crypto's CMS for a signed PE,
asn1crypto's CMS and cryptography's RSA for verifying a .auth. When that floor alone is
above the budget (a negative margin), or leaves less than the work itself needs, no
implementation on this stack meets the target.

Each floor is ``.venv/bin/python -c "import ..."``, measured like the other benchmarks
(whole process, warm-up run, median of --runs); the peers' commands are the ones
bench_pe_inspect.py, bench_fw_sigdb.py and bench_fw_vars.py time.

Usage:
  bash benchmarks/setup-peers.sh
  .venv/bin/python benchmarks/bench_floor.py [--runs 21]
Writes benchmarks/results/floor.json (gitignored). A measurement, never a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Final

from _harness import (
    FWTOOLS_BIN,
    RESULTS_DIR,
    VIRT_BIN,
    corpus_or_exit,
    fmt_s,
    measure,
    ms_corpus_base,
)
from bench_fw_sigdb import auth_payload, make_dbx

RESULTS: Final = RESULTS_DIR / "floor.json"
WORK: Final = RESULTS_DIR / "floor"
PYTHON: Final = str(FWTOOLS_BIN / "python")

# What each kind of command must import, by DESIGN.md and the issues' dependency lists.
FLOORS: Final = {
    "interpreter": "pass",
    "click": "import click",
    "click + pefile + asn1crypto.cms": "import click, pefile, asn1crypto.cms",
    "click + asn1crypto.cms + cryptography RSA": (
        "import click, asn1crypto.cms; "
        "from cryptography.hazmat.primitives.asymmetric import rsa"
    ),
}


# The least work pe-inspect must do on top of the floor: both Authenticode digests it
# reports cover (nearly) the whole file. Measured as a process, minus the interpreter.
HASH_BOTH: Final = ("import hashlib, sys; d = open(sys.argv[1], 'rb').read(); "
                    "hashlib.sha256(d).digest(); hashlib.sha1(d).digest()")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("-o", "--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    corpus = corpus_or_exit("bench_floor")
    WORK.mkdir(parents=True, exist_ok=True)
    dbx = WORK / "dbx1500.esl"
    make_dbx(dbx, 1500)
    payload = WORK / "DBXUpdate.payload.esl"
    auth_payload(ms_corpus_base() / "dbx" / "amd64" / "DBXUpdate.bin", payload)
    virt_pe, sigdb, fwvars = (str(VIRT_BIN / n) for n in ("pe-inspect", "virt-fw-sigdb",
                                                          "virt-fw-vars"))
    pe_floor, verify_floor = "click + pefile + asn1crypto.cms", (
        "click + asn1crypto.cms + cryptography RSA")
    kernel, grub = corpus.kernel("bookworm", "amd64"), corpus.grub("bookworm", "amd64")
    # (target, ratio, the peer's command, the floor that applies, the least own work or None)
    budgets: list[tuple[str, float, list[str], str, list[str] | None]] = [
        ("pe-inspect kernel", 1 / 5, [virt_pe, str(kernel)], pe_floor,
         [PYTHON, "-c", HASH_BOTH, str(kernel)]),
        ("pe-inspect grub", 1 / 5, [virt_pe, str(grub)], pe_floor,
         [PYTHON, "-c", HASH_BOTH, str(grub)]),
        ("fw-sigdb list 1,500-hash dbx", 1 / 3, [sigdb, "-i", str(dbx), "-p"], "click", None),
        ("fw-sigdb DBXUpdate parse + verify", 1 / 3, [sigdb, "-i", str(payload), "-p"],
         verify_floor, None),
        ("fw-vars show OVMF_VARS_4M.ms.fd", 1 / 4,
         [fwvars, "-i", str(corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd")), "--print"],
         "click", None),
        ("fw-vars show 64 MiB AAVMF_VARS.ms.fd", 1 / 4,
         [fwvars, "-i", str(corpus.aavmf("bookworm", "AAVMF_VARS.ms.fd")), "--print"],
         "click", None),
    ]
    floors = {}
    for name, code in FLOORS.items():
        print(f"measuring floor: {name} ...", file=sys.stderr, flush=True)
        floors[name] = measure([PYTHON, "-c", code], args.runs)
    rows, record = [], []
    interpreter = floors["interpreter"].median_s or 0.0
    for target, ratio, cmd, floor_name, work_cmd in budgets:
        print(f"measuring peer: {target} ...", file=sys.stderr, flush=True)
        peer = measure(cmd, args.runs)
        floor = floors[floor_name].median_s
        work = None
        if work_cmd is not None:
            work_s = measure(work_cmd, args.runs).median_s
            work = None if work_s is None else max(0.0, work_s - interpreter)
        budget = None if peer.median_s is None else ratio * peer.median_s
        # What is left for fwtools' own imports, parsing, hashing and output.
        margin = None if budget is None or floor is None else budget - floor
        rows.append((target, fmt_s(peer.median_s), f"{ratio:.3g}", fmt_s(budget), floor_name,
                     fmt_s(floor), "-" if margin is None else f"{margin * 1000:+.1f} ms",
                     "-" if work is None else fmt_s(work)))
        record.append({"target": target, "ratio": ratio, "peer": cmd,
                       "peer_median_s": peer.median_s, "budget_s": budget,
                       "floor": floor_name, "floor_median_s": floor, "margin_s": margin,
                       "least_work_s": work})
    print("floors:")
    for name, t in floors.items():
        print(f"  {name:<44} {fmt_s(t.median_s)}")
    head = ("target", "peer", "ratio", "budget", "floor", "floor time", "left for the work",
            "least work (digests)")
    table = [head, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "schema": "fwtools.bench.floor/1", "runs": args.runs,
        "floors": {n: t.median_s for n, t in floors.items()}, "budgets": record,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
