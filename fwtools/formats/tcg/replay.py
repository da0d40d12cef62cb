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
from typing import Any, Literal, NamedTuple, cast

from fwtools.formats.tcg import layout as L
from fwtools.formats.tcg.eventtypes import EV_NO_ACTION
from fwtools.formats.tcg.log import EventLog


def _constructor(name: str) -> Callable[[bytes], Any] | None:
    """The fastest hashlib constructor for bank ``name`` (hashlib.sha256 and friends), or
    hashlib.new's for an OpenSSL-only hash such as SM3; None when unavailable."""
    direct = getattr(hashlib, name, None)
    if callable(direct):
        return direct  # type: ignore[no-any-return]
    openssl = L.OPENSSL_NAMES.get(name, name)
    if openssl not in hashlib.algorithms_available:
        return None

    def make(data: bytes) -> Any:
        return hashlib.new(openssl, data)

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


def _find(flat: tuple[int | bytes, ...], alg: int) -> bytes | None:
    for i in range(0, len(flat), 2):
        if flat[i] == alg:
            return cast(bytes, flat[i + 1])
    return None


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
    # One pass over the records for what every bank needs, then one tight loop per bank.
    extending = [(e.pcr, e.digest_items) for e in log.events if e.event_type != EV_NO_ACTION]
    counts: dict[int, int] = {}
    for pcr, _ in extending:
        counts[pcr] = counts.get(pcr, 0) + 1
    missing: dict[int, int] = {}
    for position, alg in enumerate(log.algorithms):
        make = hashers.get(alg)
        if make is None:
            continue
        at = 2 * position  # where the parser's fast path puts this algorithm
        size = sizes[alg]
        pcrs = state[alg]
        if locality is not None:
            pcrs[0] = initial_value(0, size, locality)
        absent = 0
        for pcr, flat in extending:
            if len(flat) > at and flat[at] == alg:
                digest = flat[at + 1]
            else:
                found = _find(flat, alg)
                if found is None:
                    absent += 1
                    continue
                digest = found
            old = pcrs.get(pcr)
            if old is None:
                old = initial_value(pcr, size, locality)
            pcrs[pcr] = make(old + digest).digest()  # type: ignore[operator]
        missing[alg] = absent
    return Replay(
        banks={names[alg]: dict(sorted(state[alg].items())) for alg in hashers},
        startup_locality=locality,
        unavailable=tuple(unavailable),
        incomplete=tuple(names[alg] for alg, n in missing.items() if n),
        extended=dict(sorted(counts.items())),
    )


CompareStatus = Literal["match", "mismatch", "not-measured", "not-logged"]


class PcrComparison(NamedTuple):
    """One PCR of one bank, replayed against measured. ``not-measured``: the log extends it
    but the dump has no value; ``not-logged``: the TPM's value is not its reset value but
    the log never extends it (IMA's PCR 10, a bootloader that does not log, ...)."""

    bank: str
    pcr: int
    replayed: bytes | None
    measured: bytes | None
    status: CompareStatus


def compare(result: Replay, measured: dict[str, dict[int, bytes]]) -> list[PcrComparison]:
    """Line up replayed and measured values, bank by bank (the banks the log replayed, in
    its order), PCR by PCR."""
    out: list[PcrComparison] = []
    for bank, replayed in result.banks.items():
        values = measured.get(bank)
        if values is None:
            continue
        for pcr in sorted(set(replayed) | set(values)):
            mine, theirs = replayed.get(pcr), values.get(pcr)
            if mine is None:
                assert theirs is not None
                if theirs == initial_value(pcr, len(theirs), result.startup_locality):
                    continue
                status: CompareStatus = "not-logged"
            elif theirs is None:
                status = "not-measured"
            else:
                status = "match" if mine == theirs else "mismatch"
            out.append(PcrComparison(bank, pcr, mine, theirs, status))
    return out
