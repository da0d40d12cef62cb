"""atheris harness for one fwtools parser: ``python fuzz/harness.py TARGET [libFuzzer args]``.

TARGET is one of the names in tests/fuzz/targets.py (pe, siglist, authvar, varstore, qcow2,
mbr, disk, sbat, json, policy, devicepath, bootchain, firmware). The target either returns or
raises FwError; any other exception is reported by atheris as a crash and the input saved
(-artifact_prefix).
Seed the working corpus with ``python fuzz/seed.py`` first (fuzz/run-campaigns.py does).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: harness.py TARGET [libFuzzer options] [CORPUS_DIR ...]")
    name = sys.argv.pop(1)
    with atheris.instrument_imports(include=["fwtools", "pefile", "asn1crypto"]):
        from fuzz.targets import TARGETS, run

        import fwtools.crypto.authenticode
        import fwtools.crypto.authvar
        import fwtools.formats.disk
        import fwtools.formats.disk.ext4
        import fwtools.formats.disk.fat
        import fwtools.formats.disk.gpt
        import fwtools.formats.disk.mbr
        import fwtools.formats.efi.devicepath
        import fwtools.formats.efi.loadoption
        import fwtools.formats.efi.siglist
        import fwtools.formats.mbr.mbr
        import fwtools.formats.pe.authenticode
        import fwtools.formats.pe.image
        import fwtools.formats.pe.special
        import fwtools.formats.qcow2
        import fwtools.formats.qcow2.image
        import fwtools.formats.sbat.sbat
        import fwtools.formats.varstore.decode
        import fwtools.formats.varstore.ftw
        import fwtools.formats.varstore.jsonform
        import fwtools.formats.varstore.parse
        import fwtools.formats.varstore.records
        import fwtools.formats.varstore.store
        import fwtools.policy.engine
        import fwtools.policy.profiles
        import fwtools.uefi.firmware
        import fwtools.uefi.image
        import fwtools.uefi.profile
        import fwtools.uefi.replay  # noqa: F401

        if name not in TARGETS:
            sys.exit(f"unknown target {name!r}: {', '.join(TARGETS)}")
        # fwtools imports most modules lazily, at first use: run the seeds once inside the
        # instrumentation block so that every module the target reaches is instrumented.
        seeds = REPO / "fuzz" / "work" / name / "seeds"
        for path in sorted(seeds.iterdir())[:50] if seeds.is_dir() else []:
            try:
                run(name, path.read_bytes())
            except Exception:
                continue

    def one(data: bytes) -> None:
        run(name, data)

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
