"""Write the seed corpus of every target to fuzz/work/<target>/seeds/ (or the named ones).

Seeds: testdata/ (with the Microsoft Secure Boot objects in testdata/microsoft-secureboot-objects),
the real corpus (/var/cache/fwtools-corpus/root), the regression fixtures in
testdata/fuzz/<target>/ and a few inputs built with fwtools (MBRs, load options, JSON stores).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from fuzz.targets import TARGETS, seeds  # noqa: E402

WORK = REPO / "fuzz" / "work"


def main(names: list[str]) -> None:
    for name in names or list(TARGETS):
        out = WORK / name / "seeds"
        out.mkdir(parents=True, exist_ok=True)
        blobs = seeds(name)
        for blob in blobs:
            (out / hashlib.sha1(blob).hexdigest()).write_bytes(blob)
        print(f"{name}: {len(blobs)} seeds -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
