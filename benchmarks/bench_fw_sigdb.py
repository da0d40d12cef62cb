#!/usr/bin/env python3
"""fw-sigdb: fwtools vs virt-firmware's virt-fw-sigdb, side by side in one run.

Cases:
  help       ``--help``: start-up cost
  dbx1500    list a dbx of 1,500 SHA-256 hashes (generated, fixed seed):
             ``fw-sigdb show`` vs ``virt-fw-sigdb -i FILE -p``
  dbxupdate  Microsoft's amd64 DBXUpdate.bin: fwtools parses the .auth and verifies its
             signature against the Microsoft KEK CA 2011 (``fw-sigdb verify``);
             virt-fw-sigdb cannot read .auth files nor verify anything, so it lists the
             update's signature lists (the payload cut out of the .auth) -- less work than
             fwtools does.
Target: fwtools time <= 1/3 of virt-fw-sigdb's.

Usage:
  bash benchmarks/setup-peers.sh
  .venv/bin/python benchmarks/bench_fw_sigdb.py [--runs 7] [--strict]
Writes benchmarks/results/fw_sigdb.json (gitignored). A measurement, never a test.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import uuid
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
from corpus.corpus import ms_corpus_base

RESULTS: Final = REPO_ROOT / "benchmarks" / "results" / "fw_sigdb.json"
WORK: Final = REPO_ROOT / "benchmarks" / "results" / "fw_sigdb"
SCHEMA: Final = "fwtools.bench.fw-sigdb/1"
RATIO_TARGET: Final = 1 / 3
SHA256_TYPE: Final = uuid.UUID("c1c41626-504c-4092-aca9-41f936934328")
MICROSOFT: Final = uuid.UUID("77fa9abd-0359-4d32-bd60-28f4e78f784b")


def make_dbx(path: Path, count: int) -> None:
    """A signature list of ``count`` SHA-256 entries, the same bytes on every run."""
    rng = random.Random(1500)
    body = b"".join(MICROSOFT.bytes_le + rng.randbytes(32) for _ in range(count))
    header = SHA256_TYPE.bytes_le + struct.pack("<III", 28 + len(body), 0, 48)
    path.write_bytes(header + body)


def auth_payload(update: Path, out: Path) -> None:
    """The signature lists of an EFI_VARIABLE_AUTHENTICATION_2 file (after dwLength)."""
    data = update.read_bytes()
    (length,) = struct.unpack_from("<I", data, 16)
    out.write_bytes(data[16 + length :])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fw-sigdb: fwtools vs virt-fw-sigdb")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--only", action="append", choices=["help", "dbx1500", "dbxupdate"])
    ap.add_argument("-o", "--output", type=Path, default=RESULTS)
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args(argv)

    ms = ms_corpus_base()
    update = ms / "dbx" / "amd64" / "DBXUpdate.bin"
    kek = ms / "certs" / "kek" / "MicCorKEKCA2011_2011-06-24.der"
    if not update.is_file():
        print(f"bench_fw_sigdb: {update} missing", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    dbx = WORK / "dbx1500.esl"
    make_dbx(dbx, 1500)
    payload = WORK / "DBXUpdate.payload.esl"
    auth_payload(update, payload)
    compile_fwtools()

    fw, virt = str(FWTOOLS_BIN / "fw-sigdb"), str(VIRT_BIN / "virt-fw-sigdb")
    plan = [
        ("help", "--help", [fw, "--help"], [virt, "--help"]),
        ("dbx1500", "list 1,500 SHA-256 hashes", [fw, "show", str(dbx)],
         [virt, "-i", str(dbx), "-p"]),
        ("dbxupdate", "amd64 DBXUpdate.bin: parse + verify (virt: list payload only)",
         [fw, "verify", "--cert", str(kek), str(update)], [virt, "-i", str(payload), "-p"]),
    ]
    results: list[Case] = []
    for name, description, fw_cmd, virt_cmd in plan:
        if args.only and name not in args.only:
            continue
        print(f"measuring {name} ({description}) ...", file=sys.stderr, flush=True)
        case = Case(name, description, 1, 0, measure(fw_cmd, args.runs),
                    measure(virt_cmd, args.runs), target=f"ratio <= {RATIO_TARGET:.3f}")
        judge(case, ratio_target=RATIO_TARGET, absolute_target_s=None)
        results.append(case)
    print(render(results))
    write_record(args.output, SCHEMA, args.runs, results)
    print(f"wrote {args.output}", file=sys.stderr)
    if args.strict and any(c.met is not True for c in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
