"""Write event log records: the inverse of ``log.py``, for tests, fixtures and tools that
build logs (layouts from ``layout.py``; TCG PC Client Platform Firmware Profile 1.06 §10.2).

``log_to_bytes(parse_event_log(data)) == data`` for every log the parser accepts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from fwtools.errors import UsageError
from fwtools.formats.tcg import layout as L
from fwtools.formats.tcg.eventtypes import EV_NO_ACTION
from fwtools.formats.tcg.log import EventLog


def spec_id_data(algorithms: Sequence[tuple[int, int]], *, vendor_info: bytes = b"",
                 platform_class: int = 0, version: tuple[int, int] = (2, 0),
                 errata: int = 0, uintn_size: int = 2) -> bytes:
    """A ``TCG_EfiSpecIdEvent`` (edk2's values by default: class 0, 2.0, UINT64)."""
    if len(vendor_info) > 0xFF:
        raise UsageError("vendorInfo is at most 255 bytes")
    head = L.SPEC_ID_EVENT.pack(L.SPEC_ID_SIGNATURE, platform_class, version[1], version[0],
                                errata, uintn_size, len(algorithms))
    algs = b"".join(L.SPEC_ID_ALGORITHM.pack(alg, size) for alg, size in algorithms)
    return head + algs + bytes([len(vendor_info)]) + vendor_info


def pcr_event(pcr: int, event_type: int, digest: bytes, data: bytes) -> bytes:
    """One ``TCG_PCR_EVENT`` (SHA-1 form; also the first record of a crypto-agile log)."""
    if len(digest) != 20:
        raise UsageError("a TCG_PCR_EVENT digest is 20 bytes")
    return L.PCR_EVENT.pack(pcr, event_type, digest, len(data)) + data


def spec_id_record(algorithms: Sequence[tuple[int, int]], *, vendor_info: bytes = b"") -> bytes:
    """The first record of a crypto-agile log."""
    return pcr_event(0, EV_NO_ACTION, bytes(20), spec_id_data(algorithms,
                                                              vendor_info=vendor_info))


def pcr_event2(pcr: int, event_type: int, digests: Iterable[tuple[int, bytes]],
               data: bytes) -> bytes:
    """One ``TCG_PCR_EVENT2`` with ``digests`` as (TPM_ALG_ID, digest) pairs in order."""
    items = list(digests)
    out = [L.PCR_EVENT2_HEADER.pack(pcr, event_type, len(items))]
    for alg, digest in items:
        out.append(L.TPMT_HA_ALG.pack(alg) + digest)
    out.append(L.EVENT_SIZE.pack(len(data)) + data)
    return b"".join(out)


def measure(data: bytes, algorithms: Iterable[int]) -> list[tuple[int, bytes]]:
    """The digests of ``data`` in ``algorithms`` (what a firmware logs for hashed data)."""
    out = []
    for alg in algorithms:
        name = L.ALGORITHMS[alg][0]
        out.append((alg, hashlib.new(L.OPENSSL_NAMES.get(name, name), data).digest()))
    return out


def log_to_bytes(log: EventLog) -> bytes:
    """The records of ``log`` written back (the same bytes for a parsed log)."""
    out = []
    for event in log.events:
        pairs = list(event.digests.items())
        if log.format == "sha1" or event.index == 0:
            out.append(pcr_event(event.pcr, event.event_type, pairs[0][1], event.data))
        else:
            out.append(pcr_event2(event.pcr, event.event_type, pairs, event.data))
    return b"".join(out)
