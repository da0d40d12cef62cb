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

import random
import struct
import sys
import uuid
from pathlib import Path
from typing import Final

from _harness import (
    FWTOOLS_BIN,
    RESULTS_DIR,
    VIRT_BIN,
    Plan,
    finish,
    ms_corpus_base,
    parser,
    run_cases,
)

RESULTS: Final = RESULTS_DIR / "fw_sigdb.json"
WORK: Final = RESULTS_DIR / "fw_sigdb"
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
    ap = parser("fw-sigdb: fwtools vs virt-fw-sigdb", RESULTS,
                only=("help", "dbx1500", "dbxupdate"))
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

    fw, virt = str(FWTOOLS_BIN / "fw-sigdb"), str(VIRT_BIN / "virt-fw-sigdb")
    plan = [
        Plan("help", "--help", [fw, "--help"], [virt, "--help"], RATIO_TARGET),
        Plan("dbx1500", "list 1,500 SHA-256 hashes", [fw, "show", str(dbx)],
             [virt, "-i", str(dbx), "-p"], RATIO_TARGET),
        Plan("dbxupdate", "amd64 DBXUpdate.bin: parse + verify (virt: list payload only)",
             [fw, "verify", "--cert", str(kek), str(update)], [virt, "-i", str(payload), "-p"],
             RATIO_TARGET),
    ]
    return finish(args, SCHEMA, run_cases(plan, args.runs, args.only))


if __name__ == "__main__":
    sys.exit(main())
