#!/usr/bin/env python3
"""Build the qcow2 fixtures in testdata/qcow2/ with qemu-img and qemu-io.

Most qcow2 tests make their images with qemu-img inside tmp_path; these few are committed so
the reader's edge cases are still covered (and seed the fuzz test) where qemu-utils is not
installed. Each is well below 64 KiB, which rules out clusters of 16 KiB and more (five
metadata clusters alone). The guest is ``GUEST`` below (16 KiB: text, zeros, random bytes,
0xFF), except where noted:

- ``v2-512-deflate.qcow2``: ``qemu-img convert -c -o compat=0.10,cluster_size=512``:
  version 2, deflate-compressed 512-byte clusters (the compressed descriptor has 61 offset
  bits and a 1-bit sector count);
- ``v3-4k-zstd.qcow2``: ``-c -o compression_type=zstd,cluster_size=4096`` (incompatible bit
  3, compression_type 1);
- ``v3-4k-zero.qcow2``: ``qemu-img create -o cluster_size=4096`` 32 KiB, then qemu-io
  ``write -P 0xaa 0 32K``, ``write -z 4K 8K`` (allocated zero clusters, L2 entry
  ``COPIED|offset|1``), ``write -z -u 16K 4K`` (unallocated zero cluster, L2 entry ``1``);
- ``v3-4k-dirty.qcow2``: ``qemu-img create -o lazy_refcounts=on,cluster_size=4096`` 16 KiB,
  then qemu-io ``write -P 0x5a 4K 8K`` and ``abort`` (a simulated crash): the dirty bit stays.

MANIFEST.json records each file's sha256, virtual size and the sha256 of its guest view as
``qemu-img convert -O raw`` reads it (the oracle, not fwtools). qemu-img output is
deterministic for one QEMU and zlib/zstd version; ``--check`` rebuilds in a temporary
directory and compares the guest views and the header fields that matter, so a different
compressor version does not fail the check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "qcow2"
MAX_FIXTURE = 64 << 10


def guest() -> bytes:
    """16 KiB: compressible text, a zero run, random bytes, erased flash (0xFF)."""
    text = b"".join(b"fwtools qcow2 fixture line %04d\n" % i for i in range(200))[: 6 << 10]
    rng = random.Random(20250101)
    return text + bytes(4 << 10) + rng.randbytes(3 << 10) + b"\xff" * (3 << 10)


GUEST = guest()

# name -> (what, recipe)
FIXTURES: dict[str, str] = {
    "v2-512-deflate.qcow2": "v2, 512 B clusters, deflate-compressed",
    "v3-4k-zstd.qcow2": "v3, 4 KiB clusters, zstd-compressed (incompatible bit 3)",
    "v3-4k-zero.qcow2": "v3, 4 KiB clusters, allocated and unallocated zero-flag clusters",
    "v3-4k-dirty.qcow2": "v3, lazy refcounts, dirty bit left by qemu-io abort",
}


def require(*tools: str) -> list[str]:
    paths = [shutil.which(t) for t in tools]
    missing = [t for t, p in zip(tools, paths, strict=True) if p is None]
    if missing:
        sys.exit(f"needs {', '.join(missing)} (apt-get install qemu-utils)")
    return [p for p in paths if p is not None]


def run(*args: str | Path, check: bool = True) -> None:
    def no_core() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    subprocess.run([str(a) for a in args], check=check, capture_output=True, preexec_fn=no_core)


def build(out: Path) -> None:
    qemu_img, qemu_io = require("qemu-img", "qemu-io")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "guest.raw"
        raw.write_bytes(GUEST)
        for name, options in (
            ("v2-512-deflate.qcow2", "compat=0.10,cluster_size=512"),
            ("v3-4k-zstd.qcow2", "compression_type=zstd,cluster_size=4096"),
        ):
            run(qemu_img, "convert", "-f", "raw", "-O", "qcow2", "-c", "-o", options, raw,
                out / name)  # fmt: skip
    zero = out / "v3-4k-zero.qcow2"
    zero.unlink(missing_ok=True)
    run(qemu_img, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", zero, "32K")
    run(qemu_io, "-f", "qcow2", "-c", "write -q -P 0xaa 0 32K", "-c", "write -q -z 4K 8K",
        "-c", "write -q -z -u 16K 4K", zero)  # fmt: skip
    dirty = out / "v3-4k-dirty.qcow2"
    dirty.unlink(missing_ok=True)
    run(qemu_img, "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096",
        dirty, "16K")  # fmt: skip
    # abort kills qemu-io on purpose (SIGABRT): that is what leaves the dirty bit behind
    run(qemu_io, "-f", "qcow2", "-c", "write -q -P 0x5a 4K 8K", "-c", "abort", dirty,
        check=False)  # fmt: skip


def describe(directory: Path) -> dict[str, dict[str, object]]:
    (qemu_img,) = require("qemu-img")
    manifest: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, what in FIXTURES.items():
            path = directory / name
            data = path.read_bytes()
            if len(data) >= MAX_FIXTURE:
                sys.exit(f"{name}: {len(data)} bytes, fixtures must stay below {MAX_FIXTURE}")
            raw = Path(tmp) / (name + ".raw")
            run(qemu_img, "convert", "-f", "qcow2", "-O", "raw", path, raw)
            guest_view = raw.read_bytes()
            manifest[name] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "virtual_size": len(guest_view),
                "guest_sha256": hashlib.sha256(guest_view).hexdigest(),
                "header": data[:8].hex() + "/" + data[20:24].hex() + "/" + data[72:80].hex(),
                "what": what,
            }
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="rebuild in a temporary directory and compare"
    )
    args = parser.parse_args()
    if args.check:
        committed = json.loads((OUT / "MANIFEST.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp))
            fresh = describe(Path(tmp))
        differ = [
            name
            for name in FIXTURES
            if {k: v for k, v in fresh[name].items() if k != "sha256"}
            != {k: v for k, v in committed[name].items() if k != "sha256"}
        ]
        if differ:
            sys.exit(f"fixtures differ from a rebuild: {', '.join(differ)}")
        same = [n for n in FIXTURES if fresh[n]["sha256"] == committed[n]["sha256"]]
        print(f"ok: {len(FIXTURES)} fixtures, {len(same)} byte-identical to a rebuild")
        return
    build(OUT)
    manifest = describe(OUT)
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(manifest)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
