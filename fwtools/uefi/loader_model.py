"""Loader models as data: what :mod:`fwtools.uefi.loaders` reads from ``policies/loaders/``
and :mod:`fwtools.uefi.operations` runs. Plain values only, so both can import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    """One step of a model: an operation (a key of ``operations.OPERATIONS``), its
    arguments, and the conditions (keys of ``operations.CONDITIONS``, ``!`` negates) that
    must all hold for it to run."""

    op: str
    args: dict[str, Any]
    when: tuple[str, ...] = ()
    note: str = ""
    explain: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Match:
    min_version: tuple[int, ...] | None = None
    below_version: tuple[int, ...] | None = None
    vendors: tuple[str, ...] = ()
    arch: str | None = None
    kernel: str | None = None
    min_section_alignment: int | None = None
    max_section_alignment: int | None = None
    nx_compat: bool | None = None


@dataclass(frozen=True)
class LoaderModel:
    name: str
    family: str
    description: str
    priority: int
    match: Match
    steps: tuple[Step, ...]
    loader_steps: tuple[Step, ...] = ()
    sources: tuple[str, ...] = ()
    path: str = field(default="", compare=False)
