"""Loader models: how each boot-chain component uses memory, as data in ``policies/loaders/``.

A model is a TOML file::

    name = "shim-15.8"
    family = "shim"                 # shim | grub | linux | systemd-boot | systemd-stub | efi-app
    description = "..."
    priority = 10                   # the most specific matching model wins
    sources = ["rhboot/shim 15.8: pe.c :: handle_image", ...]

    [match]                         # all given keys must hold
    min_version = "15.8"            # component version >= this
    below_version = "16.0"          # component version < this
    vendors = ["grub.debian"]       # .sbat vendor rows that must be present
    arch = "x64"
    kernel = "bzimage"              # bzimage | arm64-image | zboot
    min_section_alignment = 4096    # PE layout clues (docs/reference/wx-model.md §6.2)
    max_section_alignment = 512
    nx_compat = true

    [[steps]]                       # what the stage does once it runs, in order
    op = "allocate"                 # operations.OPERATIONS: every operation, its arguments
    name = "image"
    type = "LoaderCode"
    size = "next.image"
    when = ["secure_boot", "!map"]  # operations.CONDITIONS, all must hold
    note = "..."                    # shown in the timeline
    explain = "..."                 # used when this step faults
    fix = "..."

    [[loader_steps]]                # shim only: its PE loader, also used through its
    ...                             # LoadImage hook / loader protocol by later stages

The operations and conditions are declared, once, in :mod:`fwtools.uefi.operations`; loading
a model checks every step against that registry.
"""

from __future__ import annotations

import os
from typing import Any, Final

from fwtools._base.record import Record
from fwtools._base.tomlfile import policies_dir, read_toml, shipped_file, shipped_names, table
from fwtools.errors import UsageError
from fwtools.uefi.image import StageImage, version_tuple
from fwtools.uefi.operations import COMMON_ARGS, CONDITIONS, OPERATIONS, check_step
from fwtools.uefi.registry import LoaderModel, Match, Step

__all__ = ["COMMON_ARGS", "CONDITIONS", "FAMILIES", "OPERATIONS", "Choice", "Identity",
           "LoaderModel", "Match", "Step", "choose_model", "identify", "load_model",
           "loaders_dir", "matches", "model_by_name", "select_model", "shipped_models"]

FAMILIES: Final = ("shim", "grub", "linux", "systemd-boot", "systemd-stub", "efi-app")

class Identity(Record):
    family: str
    version: tuple[int, ...] | None
    version_text: str | None
    clue: str  # what in the file said so


def loaders_dir() -> str:
    return os.path.join(policies_dir(), "loaders")


def identify(image: StageImage) -> Identity:
    """Which component this binary is, from the file alone (docs/reference/wx-model.md §6.2)."""
    if image.shim_version or image.sbat_version("shim"):
        text = image.shim_version
        clue = f".data.ident $Version: {text} $" if text else ".sbat row shim"
        return Identity("shim", version_tuple(text), text, clue)
    if image.uki_kernel is not None or image.sbat_version("systemd-stub"):
        return Identity("systemd-stub", version_tuple(image.sbat_version("systemd-stub")),
                        image.sbat_version("systemd-stub"),
                        ".linux section (UKI)" if image.uki_kernel else ".sbat row systemd-stub")
    if image.sbat_version("systemd-boot") or image.systemd:
        text = image.sbat_version("systemd-boot") or image.sbat_version("systemd")
        # systemd-boot carries .osrel; the stubs (linux*.efi.stub, addons) do not
        if not image.sbat_version("systemd-boot") and not any(
            s.name == ".osrel" for s in image.sections
        ):
            return Identity("systemd-stub", version_tuple(text), text,
                            ".sdmagic without .osrel (a systemd stub)")
        return Identity("systemd-boot", version_tuple(text), text, ".sdmagic / .sbat systemd")
    grub = image.sbat_version("grub")
    if grub:
        vendors = ", ".join(image.vendors())
        return Identity("grub", version_tuple(grub), grub,
                        f".sbat row grub {grub}" + (f" ({vendors})" if vendors else ""))
    if image.kernel is not None:
        k = image.kernel
        return Identity("linux", k.version, k.release,
                        f"{k.kind} header, release {k.release or 'unknown'}")
    return Identity("efi-app", None, None, "no component clue (.sbat, .data.ident, kernel header)")


def shipped_models() -> list[LoaderModel]:
    return [load_model(os.path.join(loaders_dir(), f"{n}.toml"))
            for n in shipped_names(loaders_dir())]


def model_by_name(ref: str) -> LoaderModel:
    if ref.endswith(".toml") or os.sep in ref:
        return load_model(ref)
    names = shipped_names(loaders_dir())
    return load_model(shipped_file(loaders_dir(), ref, "loader model", names))


def matches(model: LoaderModel, image: StageImage, ident: Identity, arch: str) -> bool:
    m = model.match
    if model.family != ident.family:
        return False
    v = ident.version
    if m.min_version is not None and (v is None or v < m.min_version):
        return False
    if m.below_version is not None and (v is None or v >= m.below_version):
        return False
    if m.vendors and not set(m.vendors) <= set(image.vendors()):
        return False
    if m.arch is not None and m.arch != arch:
        return False
    if m.kernel is not None and (image.kernel is None or image.kernel.kind != m.kernel):
        return False
    sa = image.section_alignment
    if m.min_section_alignment is not None and sa < m.min_section_alignment:
        return False
    if m.max_section_alignment is not None and sa > m.max_section_alignment:
        return False
    return m.nx_compat is None or m.nx_compat == image.nx_compat


class Choice(Record):
    model: LoaderModel
    ident: Identity
    basis: str  # "identified" or "fallback"
    unidentified: tuple[str, ...]  # for a fallback: the facts that did not identify it


def select_model(image: StageImage, arch: str, models: list[LoaderModel]) -> tuple[
    LoaderModel, Identity
]:
    choice = choose_model(image, arch, models)
    return choice.model, choice.ident


def choose_model(image: StageImage, arch: str, models: list[LoaderModel]) -> Choice:
    """The most specific model whose facts match; else a generic one, said to be a fallback
    with the facts that did not identify the binary."""
    ident = identify(image)
    found = [m for m in models if matches(m, image, ident, arch)]
    basis = "identified"
    if ident.family == "efi-app" or not found:
        basis = "fallback"
    if not found:
        found = [m for m in models if m.family == ident.family and m.match == Match()]
    if not found:
        found = [m for m in models if m.family == "efi-app"]
    if not found:
        raise UsageError(f"{image.path}: no loader model for {ident.family}")
    best = max(found, key=lambda m: (m.priority, m.name))
    return Choice(best, ident, basis, _unidentified(image, ident, models, arch)
                  if basis == "fallback" else ())


def _unidentified(image: StageImage, ident: Identity, models: list[LoaderModel],
                  arch: str) -> tuple[str, ...]:
    """What the identification looked at and did not find (or found unmatched)."""
    if ident.family == "efi-app":
        return ("no .sbat row naming shim, grub, systemd-boot or systemd-stub",
                "no shim .data.ident version string",
                "no .sdmagic (systemd) section",
                "no bzImage, arm64 Image or zboot header")
    facts = [f"{ident.family} {ident.version_text or '(no version)'} ({ident.clue})"]
    if image.vendors():
        facts.append(f"vendor rows {', '.join(image.vendors())}")
    facts.append(f"arch {arch}, SectionAlignment {image.section_alignment:#x}, NX_COMPAT "
                 f"{'yes' if image.nx_compat else 'no'}")
    names = sorted(m.name for m in models if m.family == ident.family and m.match != Match())
    facts.append(f"matched none of {', '.join(names) or 'no specific model'}")
    return tuple(facts)


# ---- reading the TOML files ---------------------------------------------------------


def load_model(path: str | os.PathLike[str]) -> LoaderModel:
    path = os.fspath(path)
    data = read_toml(path, "loader model")
    where = f"loader model {path}"
    for key in data:
        if key not in {"name", "family", "description", "priority", "sources", "match",
                       "steps", "loader_steps", "verified", "verified_by"}:
            raise UsageError(f"{where}: unknown key {key!r}")
    family = data.get("family")
    if family not in FAMILIES:
        raise UsageError(f"{where}: family must be one of {', '.join(FAMILIES)}")
    name = data.get("name", os.path.splitext(os.path.basename(path))[0])
    if not isinstance(name, str):
        raise UsageError(f"{where}: name must be a string")
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise UsageError(f"{where}: priority must be an integer")
    sources = data.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise UsageError(f"{where}: sources must be a list of strings")
    verified = data.get("verified", False)
    verified_by = data.get("verified_by", [])
    if not isinstance(verified, bool):
        raise UsageError(f"{where}: verified must be true or false")
    if not isinstance(verified_by, list) or not all(
            isinstance(s, str) and "::" in s for s in verified_by):
        raise UsageError(f"{where}: verified_by must list e2e test ids "
                         "(tests/e2e/FILE.py::TEST[ID])")
    if verified != bool(verified_by):
        raise UsageError(f"{where}: verified = true needs verified_by (the real-firmware "
                         "cases that exercise the model), and verified_by needs it")
    return LoaderModel(
        name=name,
        family=family,
        description=str(data.get("description", "")),
        priority=priority,
        match=_match(table(data.get("match", {}), f"{where}: [match]"), where),
        steps=_steps(data.get("steps", []), f"{where}: steps"),
        loader_steps=_steps(data.get("loader_steps", []), f"{where}: loader_steps"),
        sources=tuple(sources),
        path=str(path),
        verified_by=tuple(verified_by),
    )


def _version(value: object, where: str) -> tuple[int, ...]:
    v = version_tuple(value) if isinstance(value, str) else None
    if v is None:
        raise UsageError(f"{where} must be a version string such as \"15.8\"")
    return v


def _match(data: dict[str, Any], where: str) -> Match:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("min_version", "below_version"):
            out[key] = _version(value, f"{where}: match.{key}")
        elif key == "vendors":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UsageError(f"{where}: match.vendors must be a list of strings")
            out[key] = tuple(value)
        elif key in ("arch", "kernel"):
            if not isinstance(value, str):
                raise UsageError(f"{where}: match.{key} must be a string")
            out[key] = value
        elif key in ("min_section_alignment", "max_section_alignment"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise UsageError(f"{where}: match.{key} must be an integer")
            out[key] = value
        elif key == "nx_compat":
            if not isinstance(value, bool):
                raise UsageError(f"{where}: match.nx_compat must be true or false")
            out[key] = value
        else:
            raise UsageError(f"{where}: unknown match key {key!r}")
    return Match(**out)


def _steps(value: object, where: str) -> tuple[Step, ...]:
    if not isinstance(value, list):
        raise UsageError(f"{where} must be an array of tables")
    return tuple(check_step(table(raw, f"{where}[{i}]"), f"{where}[{i}]")
                 for i, raw in enumerate(value))
