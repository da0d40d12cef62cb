"""Boot chains that a set of binaries can form, for the policy gate's ``boot-chain`` rule:
every shim -> grub -> kernel combination of one architecture (grub -> kernel without a
shim), systemd-boot -> kernel or UKI, and UKIs on their own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from fwtools.uefi.image import StageImage
from fwtools.uefi.loaders import identify

MACHINE_ARCH: Final = {"x86_64": "x64", "aarch64": "aa64"}


def assemble(images: Iterable[StageImage], *, limit: int = 256) -> list[list[StageImage]]:
    """The chains, shortest stage lists last; at most ``limit`` (a directory of many loaders
    makes a product of combinations)."""
    by_arch: dict[str, dict[str, list[StageImage]]] = {}
    for img in images:
        arch = MACHINE_ARCH.get(img.machine)
        if arch is None:
            continue
        fam = identify(img).family
        by_arch.setdefault(arch, {}).setdefault(fam, []).append(img)
    chains: list[list[StageImage]] = []
    for fams in by_arch.values():
        shims = fams.get("shim", [])
        prefixes: Sequence[list[StageImage]] = [[s] for s in shims] or [[]]
        kernels = fams.get("linux", [])
        ukis = fams.get("systemd-stub", [])
        for pre in prefixes:
            for g in fams.get("grub", []):
                chains.extend([*pre, g, k] for k in kernels)
            for b in fams.get("systemd-boot", []):
                chains.extend([*pre, b, k] for k in [*kernels, *ukis])
            if not fams.get("grub") and not fams.get("systemd-boot"):
                chains.extend([*pre, u] for u in ukis)
    return chains[:limit]
