#!/usr/bin/env python3
"""fw-check firmware and formats/pi: how long listing a firmware image's modules takes.

Target (issue 16): listing every driver of OVMF_CODE_4M.fd with its PE facts takes well under
300 ms of work. Three numbers per image, median of --runs:

- ``list``: in-process CPU time of ``FirmwareImage.open(...).modules`` plus every module's
  PE/TE header (what the drivers table needs; imports excluded, they are paid once);
- ``facts``: :func:`fwtools.formats.pi.facts.firmware_facts` on the listed image;
- ``process``: wall time of the whole ``fw-check firmware --json`` process;
- ``oracle``: uefi-firmware-parser walking the same volumes (when ``uefi_firmware`` is
  installed: the test extra), for scale.

Usage: .venv/bin/python benchmarks/bench_fw_check_firmware.py [--runs 5] [--suite trixie]
A measurement, never a test.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from corpus.corpus import corpus_base  # noqa: E402

IMAGES: Final = ("amd64/ovmf/usr/share/OVMF/OVMF_CODE_4M.fd",
                 "all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_CODE.fd")
TARGET_S: Final = 0.300


def _cpu(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--suite", default="trixie")
    args = ap.parse_args()
    from fwtools.formats.pe.image import PeImage  # noqa: F401 - imports paid once, not timed
    from fwtools.formats.pi import FirmwareImage
    from fwtools.formats.pi.facts import firmware_facts

    root = corpus_base() / "root" / args.suite
    missed = False
    for rel in IMAGES:
        path = root / rel
        if not path.is_file():
            print(f"{path}: missing (tests/corpus/fetch.sh)")
            return 2

        def listing(p: Path = path) -> FirmwareImage:
            image = FirmwareImage.open(p)
            for m in image.modules:
                m.pe  # noqa: B018
                m.te  # noqa: B018
            return image

        t_list = _cpu(listing, args.runs)
        image = listing()
        t_facts = _cpu(functools.partial(firmware_facts, image), args.runs)
        walls = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "from fwtools.cli.fw_check import main; main()",
                            "firmware", "--json", str(path)], capture_output=True, cwd=REPO)
            walls.append(time.perf_counter() - start)
        wall = statistics.median(walls)
        line = (f"{path.name:<24} {len(image.modules):>4} modules  list {t_list * 1000:6.0f} ms  "
                f"facts {t_facts * 1000:5.0f} ms  process {wall * 1000:6.0f} ms")
        try:
            from uefi_firmware import uefi

            def oracle(img: FirmwareImage = image) -> None:
                for fv in img.volumes:
                    uefi.FirmwareVolume(bytes(fv.data)).process()

            line += f"  uefi-firmware-parser {_cpu(oracle, 1) * 1000:6.0f} ms"
        except ImportError:
            pass
        if "OVMF" in path.name and t_list > TARGET_S:
            missed = True
            line += f"  MISSED ({TARGET_S * 1000:.0f} ms)"
        print(line)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
