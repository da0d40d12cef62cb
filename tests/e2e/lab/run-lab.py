#!/usr/bin/env python3
"""The firmware lab: boot Debian's x86-64 shim -> grub -> kernel chains (bookworm and trixie),
Secure Boot off and on, on each self-built W^X OVMF variant (build-ovmf.sh), and print a
table: chain, firmware, SB, the real outcome, the evidence (exception type, RIP/CR2/error
code and the image the fault was in, from the serial console and the DEBUG log), and the
simulator's verdict. Not run by CI; see README.md.

    .venv/bin/python tests/e2e/lab/run-lab.py [--variants strict compat] [--jobs 2]
        [--out /tmp/lab-results.txt] [--keep DIR]

Secure Boot on uses Debian 13's OVMF_VARS_4M.ms.fd (Microsoft keys, Secure Boot enabled):
the lab builds use the same variable-store layout (4M, SMM, authenticated store). Off uses
the variant's own blank OVMF_VARS_4M.fd.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS))

from corpus import load_corpus  # noqa: E402
from e2e.chains import Chain, ChainBoot, Firmware, boot_chain  # noqa: E402

LAB_CACHE: Final = Path(os.environ.get("LAB_CACHE", "/var/cache/fwtools-lab"))
# The simulator's profiles for each lab variant, in order of preference: the first one the
# simulator knows is used (the edk2-release-specific lab profiles, then the generic ones).
PROFILES: Final = {
    "strict": ("debian13-ovmf-lab-strict", "ovmf-strict"),
    "compat": ("debian13-ovmf-lab-compat", "ovmf-compat"),
    "strict-img": ("debian13-ovmf-lab-strict-img", "ovmf-strict-img"),
}
EDK2_RELEASE: Final = "202502"
SIM_VERDICT: Final = {"kernel": "boots", "fault": "faults", "refused": "refused"}


@dataclass
class Row:
    chain: str
    firmware: str
    secure_boot: bool
    boot: ChainBoot
    debug_log: Path
    fault: list[str]
    sim: str
    profile: str

    @property
    def agrees(self) -> str:
        want = SIM_VERDICT.get(self.boot.outcome)
        if self.sim.startswith("n/a") or want is None:
            return "?"
        return "yes" if self.sim == want else "NO"


# -- the fault's context ----------------------------------------------------------------------

_DUMP_RE: Final = re.compile(
    r"X64 Exception Type.*|ExceptionData - .*|RIP  - \S+|CR2  - \S+|"
    r"!!!! Find image .*|!!!! Can't find image.*"
)
_LOADED_RE: Final = re.compile(
    r"Loading (?:driver|image) at 0x(?P<base>[0-9A-Fa-f]+) "
    r"EntryPoint=0x[0-9A-Fa-f]+\s*(?P<name>\S*)"
)


def fault_context(boot: ChainBoot, debug_log: Path) -> list[str]:
    """The exception dump's key lines (serial), and from the DEBUG log the image loaded
    nearest below RIP (edk2 logs "Loading driver at 0x... EntryPoint=0x... NAME.efi" for every
    image, named when the image carries a PDB path; shim/grub/kernel do not, so they show as
    the n-th unnamed image)."""
    if boot.outcome != "fault":
        return []
    text = boot.result.output
    if debug_log.is_file():
        text += "\n" + debug_log.read_text(errors="replace")
    dump = list(dict.fromkeys(m.group(0).strip() for m in _DUMP_RE.finditer(text)))
    rip_m = re.search(r"RIP  - ([0-9A-Fa-f]+)", text)
    if rip_m is not None and debug_log.is_file():
        rip = int(rip_m.group(1), 16)
        best: tuple[int, str] | None = None
        log = debug_log.read_text(errors="replace")
        for i, m in enumerate(_LOADED_RE.finditer(log)):
            base = int(m.group("base"), 16)
            if base <= rip and (best is None or base > best[0]):
                best = (base, m.group("name") or f"(unnamed image #{i})")
        if best is not None:
            dump.append(f"nearest image below RIP: {best[1]} at {best[0]:#x} "
                        f"(RIP {rip - best[0]:#x} into it)")
    return dump


# -- the simulator ------------------------------------------------------------------------------


def simulate(chain: Chain, variant: str, secure_boot: bool) -> tuple[str, str]:
    """(verdict or "n/a (why)", the profile used)."""
    try:
        from fwtools.uefi.replay import replay_files
    except Exception as exc:  # the lab must run before the API lands
        return f"n/a ({type(exc).__name__}: {exc})", "-"
    candidates = PROFILES.get(variant, (f"debian13-ovmf-lab-{variant}", f"ovmf-{variant}"))
    error = "no profile"
    for profile in candidates:
        try:
            try:
                result = replay_files(chain.files, firmware=profile, arch="x64",
                                      secure_boot=secure_boot,
                                      edk2_release=EDK2_RELEASE)  # type: ignore[call-arg]
            except TypeError:  # no edk2_release keyword
                result = replay_files(chain.files, firmware=profile, arch="x64",
                                      secure_boot=secure_boot)
            return str(result.verdict), profile
        except Exception as exc:  # any simulator error is a table entry, not a crash
            error = f"{type(exc).__name__}: {exc}"
            if "unknown firmware profile" not in str(exc):
                return f"n/a ({error})", profile
    return f"n/a ({error})", "-"


# -- running -------------------------------------------------------------------------------------


def variants(names: Sequence[str] | None) -> list[tuple[str, Path]]:
    found = sorted(p.parent for p in LAB_CACHE.glob("*/OVMF_CODE_4M.fd"))
    out = [(d.name, d) for d in found if names is None or d.name in names]
    if not out:
        raise SystemExit(f"no lab firmware in {LAB_CACHE}: run tests/e2e/lab/build-ovmf.sh")
    return out


def run_one(chain: Chain, variant: str, fwdir: Path, ms_vars: Path, sb: bool,
            work: Path) -> Row:
    fw = Firmware(f"lab-{variant}", "x64", fwdir / "OVMF_CODE_4M.fd",
                  ms_vars if sb else fwdir / "OVMF_VARS_4M.fd", sb, smm=True)
    wd = work / f"{chain.label}-{variant}-{'sb' if sb else 'nosb'}"
    wd.mkdir(parents=True, exist_ok=True)
    debug_log = wd / "debug.log"
    boot = boot_chain(chain, fw, workdir=wd, serial_log=wd / "serial.log",
                      extra_args=["-debugcon", f"file:{debug_log}",
                                  "-global", "isa-debugcon.iobase=0x402"])
    return Row(chain.label, variant, sb, boot, debug_log, fault_context(boot, debug_log),
               *simulate(chain, variant, sb))


def table(rows: Sequence[Row]) -> str:
    head = f"{'chain':9} {'firmware':11} {'SB':3} {'real':8} {'stage':13} {'time':>6}  " \
           f"{'sim':8} {'agree':5} profile"
    lines = [head, "-" * len(head)]
    for r in rows:
        sim = r.sim if not r.sim.startswith("n/a") else "n/a"
        lines.append(f"{r.chain:9} {r.firmware:11} {'on' if r.secure_boot else 'off':3} "
                     f"{r.boot.outcome:8} {r.boot.stage:13} {r.boot.elapsed:5.1f}s  "
                     f"{sim:8} {r.agrees:5} {r.profile}")
        for ev in r.fault:
            lines.append(f"    {ev}")
        if r.boot.outcome != "kernel":
            tail = [ln for ln in r.boot.evidence if not ln.startswith("BdsDxe: loading")][-8:]
            lines += [f"    | {ln[:150]}" for ln in tail]
        lines.append(f"    serial: {r.boot.serial_log}  debug: {r.debug_log}")
    notes = sorted({r.sim for r in rows if r.sim.startswith("n/a")})
    lines += [f"sim: {n}" for n in notes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--variants", nargs="*", help="lab variants (default: all built)")
    ap.add_argument("--chains", nargs="*", default=["bookworm", "trixie"])
    ap.add_argument("--jobs", type=int, default=2, help="boots at once (default 2)")
    ap.add_argument("--out", type=Path, help="also write the table here")
    ap.add_argument("--keep", type=Path, help="work directory to keep (default: a temp dir)")
    args = ap.parse_args(argv)

    corpus = load_corpus()
    ms_vars = corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd")
    chains = [Chain(s, "x64", *corpus.boot_chain(s, "amd64")) for s in args.chains]
    work = args.keep or Path(tempfile.mkdtemp(prefix="fwtools-lab-"))
    jobs = [(c, v, d, sb) for v, d in variants(args.variants) for c in chains
            for sb in (False, True)]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(lambda j: run_one(j[0], j[1], j[2], ms_vars, j[3], work), jobs))
    text = table(rows)
    for v, d in variants(args.variants):
        info = (d / "build-info.txt")
        if info.is_file():
            pcds = [ln for ln in info.read_text().splitlines() if ln.startswith("pcds:")]
            text += f"\n{v}: {pcds[0] if pcds else ''}"
    text += f"\nwork directory: {work}"
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
