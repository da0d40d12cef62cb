"""What a planned store update does to the TPM's PCRs, as ``fw-vars update --dry-run`` and
``fw-vars audit -v`` report it: the records only. ``fwtools.machine.plan_pcrs`` computes them
with ``fwtools.machine.measure`` (the prediction code of ``fw-pcr predict`` and ``fw-pcr
diff``); they live here so that :class:`~fwtools.fleet.update.StoreUpdate` and
:class:`~fwtools.fleet.audit.StoreAudit` can carry them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PcrEvent:
    """An event only one side of the change has (the fields of ``fwtools.fw-pcr/1``
    ``events[]`` that matter here)."""

    pcr: int
    type: str
    type_value: int
    description: str
    source: str
    digests: dict[str, str]


@dataclass(frozen=True)
class PcrEffect:
    """One PCR before and after. ``scope``: ``through-separator`` (the variable events only:
    the store alone) or ``boot`` (the whole boot of the given chain up to ExitBootServices).
    ``causes``: the variables whose events differ."""

    pcr: int
    changed: bool
    scope: Literal["through-separator", "boot"]
    old: str
    new: str
    causes: tuple[str, ...]
    removed: tuple[PcrEvent, ...]
    added: tuple[PcrEvent, ...]


@dataclass(frozen=True)
class PcrConsequences:
    """What applying a plan does to the PCRs. ``basis``: ``store`` (no chain: PCR 7 through
    its separator) or ``store and chain``. ``not_predicted``: what was not predicted and why;
    ``notes``: writes of the plan that would not happen (so are not in the prediction).
    ``error``: why nothing could be predicted (then ``pcrs`` is empty)."""

    bank: str
    basis: Literal["store", "store and chain"]
    chain: tuple[str, ...]
    changed: tuple[int, ...]
    pcrs: tuple[PcrEffect, ...]
    not_predicted: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
