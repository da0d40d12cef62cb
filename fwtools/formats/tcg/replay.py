"""Replay an event log to PCR values, one bank per digest algorithm.

PCR_new = H(PCR_old || digest) for every event but EV_NO_ACTION (TCG PC Client Platform
Firmware Profile 1.06, §10.2; TPM 2.0 Part 1 §17.6.3 "PCR Extend"). PCRs start as zeros,
the DRTM PCRs 17-22 as all FF bytes (PFP §3.3.4.2), and PCR 0 as the locality of a
StartupLocality event in its last byte when the log has one (PFP §10.4.5.3). Only the
record headers are touched: no event data is decoded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from fwtools.formats.tcg import layout as L
from fwtools.formats.tcg.eventtypes import EV_NO_ACTION
from fwtools.formats.tcg.log import EventLog


def _constructor(name: str) -> Callable[[bytes], Any] | None:
    """The fastest hashlib constructor for ``name`` (hashlib.sha256 and friends), or
    hashlib.new's for an OpenSSL-only one such as sm3; None when unavailable."""
    direct = getattr(hashlib, name, None)
    if callable(direct):
        return direct  # type: ignore[no-any-return]
    if name not in hashlib.algorithms_available:
        return None

    def make(data: bytes) -> Any:
        return hashlib.new(name, data)

    return make


@dataclass(frozen=True)
class Replay:
    """Replayed PCR values per bank name (``sha256`` ...), each ``{pcr: value}`` for the PCRs
    the log extends (and PCR 0 when a StartupLocality event sets it).

    ``unavailable`` names the log's banks that could not be replayed (no such hash in this
    Python's OpenSSL); ``incomplete`` the banks some extending event has no digest for,
    whose values are then not what the TPM holds.
    """

    banks: dict[str, dict[int, bytes]]
    startup_locality: int | None = None
    unavailable: tuple[str, ...] = ()
    incomplete: tuple[str, ...] = ()
    extended: dict[int, int] = field(default_factory=dict)  # pcr -> events extended


def initial_value(pcr: int, size: int, startup_locality: int | None = None) -> bytes:
    """A PCR's value after TPM2_Startup: FF bytes for 17-22, the startup locality in
    PCR 0's last byte, zeros otherwise."""
    if pcr in L.DRTM_PCRS:
        return b"\xff" * size
    if pcr == 0 and startup_locality:
        return bytes(size - 1) + bytes([startup_locality & 0xFF])
    return bytes(size)


def replay(log: EventLog, banks: Iterable[str] | None = None) -> Replay:
    """Replay ``log`` into every bank it carries (or only ``banks``, hashlib names)."""
    wanted = None if banks is None else set(banks)
    locality = log.startup_locality
    hashers: dict[int, Callable[[bytes], Any]] = {}
    state: dict[int, dict[int, bytes]] = {}
    sizes: dict[int, int] = {}
    names: dict[int, str] = {}
    unavailable: list[str] = []
    declared = log.spec_id.digest_sizes if log.spec_id is not None else {L.ALG_SHA1: 20}
    for alg in log.algorithms:
        name, _ = L.ALGORITHMS.get(alg, (f"alg_{alg:04x}", 0))
        if wanted is not None and name not in wanted:
            continue
        make = _constructor(name) if alg in L.ALGORITHMS else None
        if make is None:
            unavailable.append(name)
            continue
        hashers[alg] = make
        names[alg] = name
        sizes[alg] = declared[alg]
        state[alg] = {}
    counts: dict[int, int] = {}
    missing: dict[int, int] = dict.fromkeys(hashers, 0)
    if locality is not None:
        for alg in hashers:
            state[alg][0] = initial_value(0, sizes[alg], locality)
    no_action = EV_NO_ACTION
    for event in log.events:
        if event.event_type == no_action:
            continue
        pcr = event.pcr
        counts[pcr] = counts.get(pcr, 0) + 1
        flat = event._flat  # noqa: SLF001 - the hot loop reads the parser's tuple directly
        seen = 0
        for i in range(0, len(flat), 2):
            alg = flat[i]
            make = hashers.get(alg)  # type: ignore[call-overload]
            if make is None:
                continue
            seen += 1
            pcrs = state[alg]  # type: ignore[index]
            old = pcrs.get(pcr)
            if old is None:
                old = initial_value(pcr, sizes[alg], locality)  # type: ignore[index]
            pcrs[pcr] = make(old + flat[i + 1]).digest()  # type: ignore[operator]
        if seen != len(hashers):
            present = set(flat[0::2])
            for alg in hashers:
                if alg not in present:
                    missing[alg] += 1
    return Replay(
        banks={names[alg]: dict(sorted(state[alg].items())) for alg in hashers},
        startup_locality=locality,
        unavailable=tuple(unavailable),
        incomplete=tuple(names[alg] for alg, n in missing.items() if n),
        extended=dict(sorted(counts.items())),
    )
