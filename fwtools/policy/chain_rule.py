"""The ``boot-chain`` rule: replay every boot chain the checked files form on the
configured firmware profiles, and report each chain that faults or is refused against the
stage responsible (docs/boot-chain.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fwtools.errors import FwError, UsageError

if TYPE_CHECKING:
    from fwtools.policy.profiles import RuleConfig
    from fwtools.policy.results import FileReport, Result


def _bools(value: Any, where: str) -> list[bool]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, bool) for v in items):
        raise UsageError(f"{where}: secure_boot must be a boolean or a list of booleans")
    return items


def chain_results(reports: Sequence[FileReport], cfg: RuleConfig) -> dict[str, list[Result]]:
    """Results per path for the chains among ``reports``' files (those that parsed)."""
    from fwtools.policy.results import Result
    from fwtools.uefi.chains import MACHINE_ARCH, assemble
    from fwtools.uefi.image import StageImage, load_stage
    from fwtools.uefi.profile import load_firmware
    from fwtools.uefi.replay import replay

    params: Mapping[str, Any] = cfg.params
    names = params.get("firmware", [])
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError("rules.boot-chain: firmware must be a list of profile names or files")
    profiles = [load_firmware(n) for n in names]
    secure = _bools(params.get("secure_boot", [False, True]), "rules.boot-chain")
    limit = int(params.get("max_chains", 64))
    images: list[StageImage] = []
    for rep in reports:
        if rep.error is None:
            if rep.stage is not None:  # built from the facts the other rules judged
                images.append(rep.stage)
                continue
            try:
                images.append(load_stage(rep.path))
            except (FwError, OSError):
                continue
    out: dict[str, list[Result]] = {}
    seen: set[tuple[object, ...]] = set()
    for chain in assemble(images, limit=limit):
        arch = MACHINE_ARCH[chain[0].machine]
        label = " -> ".join(os.path.basename(i.path) for i in chain)
        for profile in profiles:
            if profile.arch not in (None, arch):
                continue
            for sb in secure:
                r = replay(chain, profile, secure_boot=sb)
                if r.verdict == "boots" or r.stop is None:
                    continue
                stop = r.stop
                # the stage that stopped the chain answers for it; the firmware's own stops
                # (its LoadImage refusing a stage, stage_index 0) go to the chain's first file
                stage = r.stage_at(stop.stage_index)
                path = stage.path if stage is not None else chain[0].path
                if ":.linux" in path:  # a UKI's embedded kernel: report the UKI file
                    path = path.split(":.linux")[0]
                fault = r.faults[0] if r.faults else None
                key = (path, label, profile.name, sb, r.verdict, stop.code, stop.stage_index,
                       stop.reason, fault)
                if key in seen:
                    continue
                seen.add(key)
                where = f"firmware {profile.name}, Secure Boot {'on' if sb else 'off'}"
                message = f"{label} {r.verdict} on {where}: {r.reason}"
                if fault is not None:
                    message += f"; fix: {fault.fix}"
                    location = f"stage {fault.stage}: {fault.operation}"
                else:
                    location = f"stage {stop.stage}"
                out.setdefault(path, []).append(
                    Result(path, cfg.id, cfg.level, message, location))
    return out
