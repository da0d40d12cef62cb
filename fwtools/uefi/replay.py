"""Boot-chain replay: run each stage's loader model on the emulated firmware.

The firmware's boot manager loads the first stage with LoadImage (from disk: image source
"unknown") and starts it; every stage then follows its model's steps, which allocate, place,
protect and start the next stage, and the last one (a kernel) exits boot services and jumps
to the kernel proper. The first access the MMU would refuse ends the replay with verdict
``faults``; a refused load ends it with ``refused``; otherwise the chain ``boots``.

The operations a step can name and the conditions it can test are declared once, in
:mod:`fwtools.uefi.operations`, with the result types.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Final

from fwtools.errors import UsageError
from fwtools.uefi.image import StageImage, load_stages
from fwtools.uefi.loaders import Choice, choose_model, model_by_name, shipped_models
from fwtools.uefi.operations import (
    MemoryRange,
    Replay,
    Runner,
    StageInfo,
    Verdict,
    memory_view,
)
from fwtools.uefi.profile import Arch, FirmwareProfile, load_firmware
from fwtools.uefi.registry import LoaderModel

__all__ = ["MemoryRange", "Replay", "StageInfo", "Verdict", "chain_arch", "memory_view",
           "replay", "replay_files"]

_MACHINE_ARCH: Final = {"x86_64": "x64", "aarch64": "aa64"}
_STAGE_NAMES: Final = {"linux": "kernel", "efi-app": "app"}


def replay_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    firmware: str | FirmwareProfile,
    arch: Arch | None = None,
    secure_boot: bool = False,
    models: Mapping[int, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    snapshots: bool = False,
) -> Replay:
    """Replay the chain in ``paths`` (first stage first) on ``firmware`` (a profile name,
    file or object). ``models`` overrides the identified loader model per stage index."""
    images = load_stages(paths)
    profile = firmware if isinstance(firmware, FirmwareProfile) else load_firmware(firmware)
    if overrides:
        profile = profile.with_overrides(**overrides)
    return replay(images, profile, arch=arch, secure_boot=secure_boot, models=models,
                  snapshots=snapshots)


def chain_arch(images: Sequence[StageImage], arch: Arch | None,
               profile: FirmwareProfile) -> Arch:
    found = {_MACHINE_ARCH.get(i.machine) for i in images}
    if None in found:
        bad = next(i for i in images if i.machine not in _MACHINE_ARCH)
        raise UsageError(f"{bad.path}: machine {bad.machine} is neither x86_64 nor aarch64")
    if len(found) > 1:
        raise UsageError("the chain mixes x86_64 and aarch64 binaries")
    image_arch = found.pop() if found else None
    chosen = arch or image_arch or profile.arch or "x64"
    if image_arch is not None and chosen != image_arch:
        raise UsageError(f"--arch {chosen} but the binaries are {image_arch}")
    if profile.arch is not None and profile.arch != chosen:
        raise UsageError(f"firmware profile {profile.name} is for {profile.arch}, "
                         f"the chain is {chosen}")
    return chosen  # type: ignore[return-value]


def replay(
    images: Sequence[StageImage],
    profile: FirmwareProfile,
    *,
    arch: Arch | None = None,
    secure_boot: bool = False,
    models: Mapping[int, str] | None = None,
    snapshots: bool = False,
) -> Replay:
    if not images:
        raise UsageError("boot-chain: give at least one binary")
    # a UKI carries its kernel: the stub's next stage is the embedded .linux image
    chain: list[StageImage] = []
    for img in images:
        chain.append(img)
        if img.uki_kernel is not None:
            chain.append(img.uki_kernel)
    the_arch = chain_arch(chain, arch, profile)
    available = shipped_models()
    picked: list[tuple[LoaderModel, Choice, bool]] = []
    for i, img in enumerate(chain):
        choice = choose_model(img, the_arch, available)
        model = choice.model
        forced = (models or {}).get(i)
        if forced is not None:
            model = model_by_name(forced)
        picked.append((model, choice, forced is not None))
    stages = _stage_infos(chain, picked)
    result = Replay(profile, the_arch, secure_boot, stages)
    runner = Runner(result, chain, [m for m, _c, _o in picked], snapshots)
    runner.run()
    return result


def _stage_infos(chain: Sequence[StageImage],
                 picked: Sequence[tuple[LoaderModel, Choice, bool]]) -> list[StageInfo]:
    out: list[StageInfo] = []
    used: dict[str, int] = {}
    for i, (img, (model, choice, forced)) in enumerate(zip(chain, picked, strict=True)):
        ident = choice.ident
        base = _STAGE_NAMES.get(ident.family, ident.family)
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base}{used[base]}"
        out.append(StageInfo(i, name, img.path, model.name, ident.family, ident.version_text,
                             ident.clue, forced, model.description,
                             model_basis="override" if forced else choice.basis,
                             unidentified=() if forced else choice.unidentified,
                             model_verified=model.verified))
    return out
