#!/usr/bin/env python3
"""The firmware lab by hand: boot the lab matrix (tests/e2e/lab/matrix.py: Debian 12 and 13's
shim -> grub -> kernel chains and their mixes, and trixie's systemd-boot + UKI, Secure Boot off
and on, on every W^X OVMF and AAVMF variant that build-ovmf.sh built), compare each boot with
the replay, print a table and, with ``--record``, write the results file that
docs/boot-chain.md's calibration table is generated from. CI boots the same matrix in
tests/e2e/test_lab.py.

    .venv/bin/python tests/e2e/lab/run-lab.py [--variants strict compat] [--chains bookworm]
        [--jobs 2] [--out /tmp/lab-table.txt] [--keep DIR] [--record [tests/e2e/lab/results.json]]

``--record`` writes the boots it ran into the results file and rewrites the calibration table
in docs/boot-chain.md too. With --variants/--chains it merges: the cases not booted keep their
record, which needs the file's firmware provenance (source, build key, QEMU) to be this run's,
except for a build only some cases boot (the upstream GRUB build, the NX shim build) when
this run reboots all of them; otherwise record the whole matrix.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS))

from corpus import Corpus, load_corpus  # noqa: E402

from e2e.chains import ChainBoot  # noqa: E402
from e2e.dumps import Field  # noqa: E402
from e2e.lab import calibration  # noqa: E402
from e2e.lab.matrix import (  # noqa: E402
    CASES,
    GRUB_CHAINS,
    NXSHIM_CHAINS,
    RESULTS,
    LabCase,
    Observation,
    boot_case,
    build_dir,
    compare,
    grub_build_dir,
    missing_builds,
    nxshim_dir,
    observe,
    replay_case,
    replay_view,
)


@dataclass
class Row:
    case: LabCase
    boot: ChainBoot
    debug_log: Path
    real: Observation
    replay: dict[str, object]
    fields: list[Field]
    context: list[str]

    @property
    def agrees(self) -> bool:
        return all(f.ok for f in self.fields)


_LOADED_RE: Final = re.compile(
    r"Loading (?:driver|image) at 0x(?P<base>[0-9A-Fa-f]+) "
    r"EntryPoint=0x[0-9A-Fa-f]+\s*(?P<name>\S*)"
)


def nearest_image(real: Observation, debug_log: Path) -> list[str]:
    """From the DEBUG log, the image loaded nearest below RIP (edk2 logs "Loading driver at
    0x... EntryPoint=0x... NAME.efi" for every image, named when the image carries a PDB path;
    shim/grub/kernel do not, so they show as the n-th unnamed image)."""
    f = real.fault()
    if f is None or real.arch != "x64" or not debug_log.is_file():
        return []
    best: tuple[int, str] | None = None
    for i, m in enumerate(_LOADED_RE.finditer(debug_log.read_text(errors="replace"))):
        base = int(m.group("base"), 16)
        if base <= f.pc and (best is None or base > best[0]):
            best = (base, m.group("name") or f"(unnamed image #{i})")
    if best is None:
        return []
    return [f"nearest image below RIP: {best[1]} at {best[0]:#x} (RIP {f.pc - best[0]:#x} "
            "into it)"]


def run_one(case: LabCase, corpus: Corpus, builds: Path, work: Path) -> Row:
    boot, debug_log = boot_case(case, corpus, builds, work / case.id)
    real = observe(boot, debug_log, case.arch)
    view = replay_view(replay_case(case, corpus))
    return Row(case, boot, debug_log, real, view, compare(real, view),
               nearest_image(real, debug_log))


def table(rows: Sequence[Row]) -> str:
    head = (f"{'case':26} {'real':8} {'stage':13} {'MAP':5} {'time':>6}  "
            f"{'replay':8} agree")
    lines = [head, "-" * len(head)]
    for r in rows:
        mapp = {None: "?", True: "yes", False: "no"}[r.real.memory_attribute_protocol]
        lines.append(f"{r.case.id:26} {r.real.outcome:8} {r.real.stage:13} {mapp:5} "
                     f"{r.boot.elapsed:5.1f}s  {r.replay['verdict']!s:8} "
                     f"{'yes' if r.agrees else 'NO'}")
        lines += [f"    {ln}" for ln in (*r.real.dump, *r.context)]
        if not r.agrees or len(r.fields) > 1:
            lines += [f"  {f.line()}" for f in r.fields]
        lines.append(f"    serial: {r.boot.serial_log}  debug: {r.debug_log}")
    return "\n".join(lines)


def grub_component(version: str) -> str:
    """The provenance entry naming build-grub.sh's GRUB ``version`` (2.12's is the one it
    had before there were two, so results.json's records of it stay mergeable)."""
    return "upstream grub" if version == "2.12" else f"upstream grub {version}"


def boots_grub(version: str) -> Callable[[LabCase], bool]:
    """Whether a case boots build-grub.sh's GRUB ``version``."""
    return lambda c: c.chain in GRUB_CHAINS and GRUB_CHAINS[c.chain].version == version


def provenance(builds: Path) -> dict[str, str]:
    info = {}
    for ln in (builds / "strict" / "build-info.txt").read_text().splitlines():
        key, _, value = ln.partition(": ")
        info[key] = value
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                          text=True, check=True).stdout.splitlines()[0]
    prov = {"source": info.get("source", "?"), "build": builds.name,
            "qemu": qemu.removeprefix("QEMU emulator version ").split()[0] + " (TCG)"}
    for version in sorted({g.version for g in GRUB_CHAINS.values()}, reverse=True):
        # build-grub.sh's upstream GRUB (GRUB_CHAINS); 2.12 keeps the key it had alone
        if (grub_build_dir(version) / "x64" / "build-info.txt").is_file():
            prov[grub_component(version)] = grub_build_dir(version).name
    if nxshim_dir().is_dir():  # build-shim.sh's NX shim (NXSHIM_CHAINS)
        prov["shim"] = nxshim_dir().name
    return prov


#: provenance entries naming a build that only some cases boot -> whether a case boots it
COMPONENT_CASES: Final[dict[str, Callable[[LabCase], bool]]] = {
    **{grub_component(v): boots_grub(v) for v in {g.version for g in GRUB_CHAINS.values()}},
    "shim": lambda c: c.chain in NXSHIM_CHAINS,
}


def mergeable(old: dict[str, str], new: dict[str, str], rebooted: set[str]) -> bool:
    """Whether the cases of a record made with ``old`` can be kept beside this run's boots
    (made with ``new``): every build ``old`` names is the same now, except a build that only
    some cases boot (COMPONENT_CASES) when this run reboots all of those. ``new`` may name a
    build added since."""
    for key, value in old.items():
        if new.get(key) == value:
            continue
        uses = COMPONENT_CASES.get(key)
        if uses is None or any(uses(c) and c.id not in rebooted for c in CASES):
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--variants", nargs="*", help="lab variants (default: all)")
    ap.add_argument("--chains", nargs="*", help="chains (default: all)")
    ap.add_argument("--jobs", type=int, default=2, help="boots at once (default 2)")
    ap.add_argument("--out", type=Path, help="also write the table here")
    ap.add_argument("--keep", type=Path, help="work directory to keep (default: a temp dir)")
    ap.add_argument("--record", nargs="?", type=Path, const=RESULTS,
                    help=f"write the results file (default {RESULTS}) and the doc's table")
    args = ap.parse_args(argv)

    builds = build_dir()
    missing = missing_builds(builds)
    if missing:
        raise SystemExit(f"lab firmware missing ({', '.join(missing)}): run "
                         "tests/e2e/lab/build-ovmf.sh and tests/e2e/lab/build-shim.sh")
    cases = [c for c in CASES if (not args.variants or c.variant.name in args.variants)
             and (not args.chains or c.chain in args.chains)]
    work = args.keep or Path(tempfile.mkdtemp(prefix="fwtools-lab-"))
    corpus = load_corpus()
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(lambda c: run_one(c, corpus, builds, work), cases))
    text = table(rows) + (f"\n{len(rows)} boots in {time.monotonic() - start:.0f} s, "
                          f"{args.jobs} at a time; work directory: {work}")
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.record:
        prov = provenance(builds)
        records = {}
        if len(rows) < len(CASES):  # a part of the matrix: merge into the record
            old = calibration.load(args.record)
            if not mergeable(old.firmware, prov, {r.case.id for r in rows}):
                raise SystemExit(f"{args.record} was recorded with {old.firmware}, this run "
                                 f"is {prov}: record the whole matrix (no --variants/--chains)")
            records = dict(old.records)
        records.update({r.case.id: calibration.Record(r.case, r.real, dict(r.replay))
                        for r in rows})
        results = calibration.Results(prov, calibration.ordered(records))
        args.record.write_text(results.to_json(), encoding="utf-8")
        doc = calibration.DOC
        doc.write_text(calibration.replace_table(doc.read_text(encoding="utf-8"),
                                                 calibration.table(results)), encoding="utf-8")
        print(f"recorded {args.record} and the table in {doc}")
    return 0 if all(r.agrees for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
