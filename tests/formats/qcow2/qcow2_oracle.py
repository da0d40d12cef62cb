"""qemu-img / qemu-io as the oracle for the qcow2 tests, and the synthetic guest buffers.

qemu-img is used only here, never by fwtools at run time. Tests that need it skip with the
reason when Debian's qemu-utils is not installed.
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from corpus.params import need_tool

from fwtools.formats.qcow2 import COMPRESSED, DATA, UNALLOCATED, ZERO, Qcow2Image
from fwtools.formats.qcow2.image import _zstd_module

QEMU_IMG: Final = shutil.which("qemu-img")
QEMU_IO: Final = shutil.which("qemu-io")


def qemu_img() -> str:
    """qemu-img, the qcow2 oracle (Debian qemu-utils)."""
    return need_tool("qemu-img")


def qemu_io() -> str:
    return need_tool("qemu-io")


def zstd_available() -> bool:
    return _zstd_module() is not None


def run(
    *args: str | Path, check: bool = True, core: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a qemu tool; ``core=False`` stops qemu-io's ``abort`` from leaving a core file."""

    def no_core() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return subprocess.run(
        [str(a) for a in args],
        check=check,
        capture_output=True,
        text=True,
        preexec_fn=None if core else no_core,
    )


def img(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(qemu_img(), *args, check=check)


def io(path: Path, *commands: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``qemu-io -c CMD ... path`` (format qcow2)."""
    args: list[str | Path] = [qemu_io(), "-f", "qcow2"]
    for command in commands:
        args += ["-c", command]
    return run(*args, path, check=check)


def convert_to_qcow2(raw: Path, out: Path, options: list[str]) -> bytes:
    """``qemu-img convert -f raw -O qcow2 OPTIONS raw out``; the qcow2 bytes."""
    img("convert", "-f", "raw", "-O", "qcow2", *options, raw, out)
    return out.read_bytes()


def convert_to_raw(qcow2: Path, out: Path) -> bytes:
    """The guest view as QEMU sees it: ``qemu-img convert -f qcow2 -O raw``."""
    img("convert", "-f", "qcow2", "-O", "raw", qcow2, out)
    return out.read_bytes()


def check(path: Path) -> tuple[int, dict[str, Any]]:
    """(exit code, JSON report) of ``qemu-img check``; 0 clean, 2 errors, 3 leaks."""
    result = img("check", "--output=json", path, check=False)
    return result.returncode, json.loads(result.stdout) if result.stdout else {}


def info(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(img("info", "--output=json", path).stdout)
    return result


def compare(raw: Path, qcow2: Path) -> subprocess.CompletedProcess[str]:
    """``qemu-img compare -f raw -F qcow2`` (exit 0 and "Images are identical.")."""
    return img("compare", "-f", "raw", "-F", "qcow2", raw, qcow2, check=False)


# -- mapping: our extents against ``qemu-img map`` -----------------------------------------

MapEntry = tuple[int, int, bool, bool, bool, int | None]  # start, length, present, zero, data, off


def _merge(entries: Iterable[MapEntry]) -> list[MapEntry]:
    merged: list[MapEntry] = []
    for start, length, present, zero, data, offset in entries:
        if merged:
            p_start, p_len, p_present, p_zero, p_data, p_off = merged[-1]
            same = (p_present, p_zero, p_data) == (present, zero, data)
            contiguous = (p_off is None and offset is None) or (
                p_off is not None and offset == p_off + p_len
            )
            if same and contiguous and p_start + p_len == start:
                merged[-1] = (p_start, p_len + length, present, zero, data, p_off)
                continue
        merged.append((start, length, present, zero, data, offset))
    return merged


def qemu_map(path: Path) -> list[MapEntry]:
    """``qemu-img map --output=json``, with offsets kept only for plain data clusters."""
    raw = json.loads(img("map", "--output=json", path).stdout)
    return _merge(
        (
            e["start"],
            e["length"],
            e["present"],
            e["zero"],
            e["data"],
            e.get("offset") if e["data"] and not e.get("compressed") else None,
        )
        for e in raw
    )


_FLAGS: Final = {
    DATA: (True, False, True),
    COMPRESSED: (True, False, True),
    ZERO: (True, True, False),
    UNALLOCATED: (False, True, False),
}


def our_map(image: Qcow2Image) -> list[MapEntry]:
    return _merge(
        (e.guest_offset, e.length, *_FLAGS[e.kind], e.host_offset if e.kind == DATA else None)
        for e in image.extents()
    )


# -- qemu-img convert variants --------------------------------------------------------------

# id -> options of `qemu-img convert -f raw -O qcow2`. "libvirt" is libvirt's plain convert of
# the NVRAM template; "virt-firmware" is the Fedora edk2.spec / virt-firmware recipe.
CONVERT_VARIANTS: Final[dict[str, list[str]]] = {
    "libvirt": [],
    "virt-firmware": ["-o", "cluster_size=4096", "-S", "4096"],
    "v2": ["-o", "compat=0.10"],
    "v3-512": ["-o", "cluster_size=512"],
    "v2-512": ["-o", "compat=0.10,cluster_size=512"],
    "v3-2M": ["-o", "cluster_size=2M"],
    "v2-2M": ["-o", "compat=0.10,cluster_size=2M"],
    "lazy": ["-o", "lazy_refcounts=on,cluster_size=8192"],
    "c-512": ["-c", "-o", "cluster_size=512"],
    "c-v2-4k": ["-c", "-o", "compat=0.10,cluster_size=4096"],
    "c-64k": ["-c"],
    "c-2M": ["-c", "-o", "cluster_size=2M"],
    "c-zstd-64k": ["-c", "-o", "compression_type=zstd"],
    "c-zstd-512": ["-c", "-o", "compression_type=zstd,cluster_size=512"],
    "extl2-64k": ["-o", "extended_l2=on"],
    "extl2-c-32k": ["-c", "-o", "extended_l2=on,cluster_size=32k"],
}


# -- synthetic guest buffers ----------------------------------------------------------------


def _random(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _sparse() -> bytes:
    buf = bytearray(2 << 20)
    rng = random.Random(7)
    for start, length in (
        (0x1234, 700),
        (0x80011, 100 << 10),
        (0x1F0000, 0x1000),
        ((2 << 20) - 512, 512),
    ):
        buf[start : start + length] = rng.randbytes(length)
    return bytes(buf)


def _text() -> bytes:
    line = b"fwtools qcow2 oracle test: compressible text with a counter "
    out = b"".join(line + str(i).encode() + b"\n" for i in range(5000))
    return out[: len(out) // 512 * 512]


SYNTHETIC: Final[dict[str, Callable[[], bytes]]] = {
    "random-1M": lambda: _random(1, 1 << 20),
    "sparse-2M": _sparse,
    "erased-528k": lambda: b"\xff" * (528 << 10),  # flash erase value, 8.25 x 64 KiB clusters
    "text": _text,
    "zeros-1M": lambda: bytes(1 << 20),
    "one-sector": lambda: _random(2, 512),
}
