"""TCG PC Client event logs: records, digests and the Spec ID event.

Reference: TCG PC Client Platform Firmware Profile Specification 1.06 rev 52, §10.2
(``TCG_PCR_EVENT``, ``TCG_PCR_EVENT2``) and §10.4.5 (Spec ID and StartupLocality events);
layouts in ``layout.py``. Linux exports the log as
``/sys/kernel/security/tpm0/binary_bios_measurements``; its parser is
``include/linux/tpm_eventlog.h`` (``__calc_tpm2_event_size``).

Two forms are read:

- crypto-agile: a ``TCG_PCR_EVENT`` whose data is the ``TCG_EfiSpecIdEvent``
  (``"Spec ID Event03"``, the algorithms and their digest sizes), then ``TCG_PCR_EVENT2``
  records carrying one digest per algorithm;
- SHA-1 (TCG 1.2 / legacy): ``TCG_PCR_EVENT`` records only.

Parsing reads the record headers and digests and nothing else: event data stays in the
buffer until :attr:`Event.data` or ``decode.decode_event`` asks for it, so replaying a log
costs one pass over its headers. Every size is checked against the bytes that remain before
anything is sliced, and digest counts against the Spec ID event, so a hostile log costs at
most its own size in memory; problems raise :class:`~fwtools.errors.ParseError` with the
absolute offset of the field.
"""

from __future__ import annotations

import os
import struct
from typing import Final, Literal, NamedTuple

from fwtools.errors import ParseError, TruncatedError
from fwtools.formats.tcg import layout as L
from fwtools.formats.tcg.eventtypes import EV_NO_ACTION, event_type_name

LogFormat = Literal["crypto-agile", "sha1"]

_EVENT2_HEAD: Final = L.PCR_EVENT2_HEADER.struct
_EVENT2_HEAD_SIZE: Final = L.PCR_EVENT2_HEADER.size
_U16: Final = L.TPMT_HA_ALG.struct
_U32: Final = L.EVENT_SIZE.struct
_PCR_EVENT: Final = L.PCR_EVENT.struct
_PCR_EVENT_SIZE: Final = L.PCR_EVENT.size
# Firmware logs are small (edk2 reserves PcdTcgLogAreaMinLen = 64 KiB, and Linux appends the
# final-events table); a file far larger is refused before it is read, which bounds the
# records (and so the memory) a hostile file can make: each costs ~200 bytes in memory and
# at least 16 in the file.
MAX_LOG_SIZE: Final = 32 << 20


class Event:
    """One record of the log.

    ``index`` counts records from 0 (the Spec ID event of a crypto-agile log is record 0),
    ``offset`` is the absolute offset of the record and ``data_offset``/``data_size`` locate
    its event data. ``event_type`` is the raw integer (``type_name`` gives its EV_* name or
    hex for a type the spec does not define). Read-only by convention; built by
    :func:`parse_event_log` in its hot loop, hence a plain slotted class.
    """

    __slots__ = ("_flat", "_log", "data_offset", "data_size", "event_type", "index", "offset",
                 "pcr")

    def __init__(self, log: EventLog, index: int, pcr: int, event_type: int,
                 flat: tuple[int | bytes, ...], offset: int, data_offset: int,
                 data_size: int) -> None:
        self._log = log
        self.index = index
        self.pcr = pcr
        self.event_type = event_type
        # (alg, digest, alg, digest, ...) in log order, as unpacked.
        self._flat = flat
        self.offset = offset
        self.data_offset = data_offset
        self.data_size = data_size

    def __repr__(self) -> str:
        return (f"Event(#{self.index} PCR{self.pcr} {self.type_name} at {self.offset:#x}, "
                f"{self.data_size} bytes)")

    @property
    def type_name(self) -> str:
        return event_type_name(self.event_type)

    @property
    def digest_items(self) -> tuple[int | bytes, ...]:
        """The digests as logged: algorithm id, digest, algorithm id, digest, ..."""
        return self._flat

    @property
    def digests(self) -> dict[int, bytes]:
        """Digest per TPM_ALG_ID, in log order."""
        flat = self._flat
        return {int(flat[i]): bytes(flat[i + 1]) for i in range(0, len(flat), 2)}

    def digest(self, algorithm: int) -> bytes | None:
        return self.digests.get(algorithm)

    @property
    def data(self) -> bytes:
        """The event data (sliced from the log on each call)."""
        start = self.data_offset - self._log.base
        return self._log.buffer[start : start + self.data_size]

    @property
    def extends(self) -> bool:
        """Whether replay extends a PCR with this event (EV_NO_ACTION is only logged)."""
        return self.event_type != EV_NO_ACTION


class SpecIdEvent(NamedTuple):
    """``TCG_EfiSpecIdEvent`` (PFP §10.4.5.1): the algorithms of a crypto-agile log."""

    platform_class: int
    spec_version_major: int
    spec_version_minor: int
    spec_errata: int
    uintn_size: int
    algorithms: tuple[tuple[int, int], ...]  # (TPM_ALG_ID, digest size) in declared order
    vendor_info: bytes

    @property
    def digest_sizes(self) -> dict[int, int]:
        return dict(self.algorithms)


class EventLog:
    """A parsed event log: its form, Spec ID event (crypto-agile) and records.

    ``buffer`` holds the log bytes (event data is sliced from it on demand), ``base`` is the
    absolute offset of ``buffer[0]`` in its file. ``algorithms`` are the TPM_ALG_IDs of the
    digests each record carries: the Spec ID event's list, or SHA-1 alone.
    """

    def __init__(self, buffer: bytes, base: int, log_format: LogFormat,
                 spec_id: SpecIdEvent | None) -> None:
        self.buffer = buffer
        self.base = base
        self.format: LogFormat = log_format
        self.spec_id = spec_id
        self.events: list[Event] = []

    def __len__(self) -> int:
        return len(self.events)

    @property
    def algorithms(self) -> tuple[int, ...]:
        if self.spec_id is None:
            return (L.ALG_SHA1,)
        return tuple(alg for alg, _ in self.spec_id.algorithms)

    @property
    def startup_locality(self) -> int | None:
        """The locality of a StartupLocality EV_NO_ACTION event in PCR 0 (PFP §10.4.5.3),
        which sets PCR 0's initial value; None when the log has none."""
        sig = L.STARTUP_LOCALITY_SIGNATURE
        size = L.STARTUP_LOCALITY_EVENT.size
        for event in self.events:
            if event.event_type == EV_NO_ACTION and event.pcr == 0 and event.data_size >= size:
                data = event.data
                if data.startswith(sig):
                    return int(data[len(sig)])
        return None


def parse_event_log(data: bytes | bytearray | memoryview, *, base: int = 0) -> EventLog:
    """Parse a whole event log (either form). ``base`` is the absolute offset of ``data``
    in its file, used in errors and in the events' offsets. Raises
    :class:`~fwtools.errors.ParseError` (:class:`~fwtools.errors.TruncatedError` for a
    record cut off by the end of the data) naming the record and the field's offset."""
    buf = bytes(data)
    if not buf:
        raise TruncatedError("the event log is empty", structure="TCG_PCR_EVENT[0]",
                             offset=base)
    first = _read_pcr_event(buf, 0, base, 0)
    pcr, event_type, _digest, size = first
    data_at = _PCR_EVENT_SIZE
    spec_id: SpecIdEvent | None = None
    if event_type == EV_NO_ACTION and buf.startswith(L.SPEC_ID_SIGNATURE, data_at):
        spec_id = parse_spec_id(buf[data_at : data_at + size], base + data_at)
    log = EventLog(buf, base, "sha1" if spec_id is None else "crypto-agile", spec_id)
    if spec_id is None:
        _parse_sha1_records(log, 0)
    else:
        log.events.append(Event(log, 0, pcr, event_type, (L.ALG_SHA1, _digest), base,
                                base + data_at, size))
        _parse_agile_records(log, data_at + size, spec_id)
    return log


def _read_pcr_event(buf: bytes, pos: int, base: int, index: int) -> tuple[int, int, bytes, int]:
    name = f"TCG_PCR_EVENT[{index}]"
    left = len(buf) - pos
    if left < _PCR_EVENT_SIZE:
        raise TruncatedError(f"the record header needs {_PCR_EVENT_SIZE} bytes, {left} left",
                             structure=name, offset=base + pos)
    pcr, event_type, digest, size = _PCR_EVENT.unpack_from(buf, pos)
    left -= _PCR_EVENT_SIZE
    if size > left:
        raise TruncatedError(f"EventSize {size:#x} exceeds the {left:#x} bytes left",
                             structure=name, offset=base + pos + L.PCR_EVENT.offset("event_size"))
    return pcr, event_type, digest, size


def _parse_sha1_records(log: EventLog, pos: int) -> None:
    buf, base, events = log.buffer, log.base, log.events
    end = len(buf)
    unpack = _PCR_EVENT.unpack_from
    head = _PCR_EVENT_SIZE
    sha1 = L.ALG_SHA1
    index = 0
    while pos < end:
        if end - pos >= head:
            pcr, event_type, digest, size = unpack(buf, pos)
            if size <= end - pos - head:
                events.append(Event(log, index, pcr, event_type, (sha1, digest), base + pos,
                                    base + pos + head, size))
                pos += head + size
                index += 1
                continue
        _read_pcr_event(buf, pos, base, index)  # raises the precise error


def parse_spec_id(data: bytes, base: int) -> SpecIdEvent:
    """``TCG_EfiSpecIdEvent`` from the first record's event data (absolute offset ``base``)."""
    name = "TCG_EfiSpecIdEvent"
    fixed = L.SPEC_ID_EVENT
    if len(data) < fixed.size:
        raise TruncatedError(f"needs {fixed.size} bytes, the event has {len(data)}",
                             structure=name, offset=base)
    v = fixed.unpack_dict(data)
    count = v["number_of_algorithms"]
    alg_size = L.SPEC_ID_ALGORITHM.size
    room = (len(data) - fixed.size - 1) // alg_size  # 1: vendorInfoSize
    count_at = base + fixed.offset("number_of_algorithms")
    if count == 0 or count > room:
        why = "no algorithms" if count == 0 else f"more than the {max(room, 0)} that fit"
        raise ParseError(f"numberOfAlgorithms {count}: {why}", structure=name, offset=count_at)
    algorithms: list[tuple[int, int]] = []
    pos = fixed.size
    for i in range(count):
        alg, size = L.SPEC_ID_ALGORITHM.unpack_from(data, pos)
        where = f"{name}.digestSizes[{i}]"
        known = L.ALGORITHMS.get(alg)
        if known is not None and known[1] != size:
            raise ParseError(f"digest size {size} for {known[0]} (TPM_ALG_ID {alg:#06x}) "
                             f"should be {known[1]}", structure=where, offset=base + pos + 2)
        if not 0 < size <= L.MAX_DIGEST_SIZE:
            raise ParseError(f"digest size {size} for TPM_ALG_ID {alg:#06x} is not in "
                             f"1..{L.MAX_DIGEST_SIZE}", structure=where, offset=base + pos + 2)
        if any(alg == a for a, _ in algorithms):
            raise ParseError(f"TPM_ALG_ID {alg:#06x} listed twice", structure=where,
                             offset=base + pos)
        algorithms.append((alg, size))
        pos += alg_size
    vendor_size = data[pos]
    if vendor_size > len(data) - pos - 1:
        raise TruncatedError(f"vendorInfoSize {vendor_size} exceeds the "
                             f"{len(data) - pos - 1} bytes left in the event",
                             structure=f"{name}.vendorInfoSize", offset=base + pos)
    return SpecIdEvent(
        platform_class=v["platform_class"],
        spec_version_major=v["spec_version_major"],
        spec_version_minor=v["spec_version_minor"],
        spec_errata=v["spec_errata"],
        uintn_size=v["uintn_size"],
        algorithms=tuple(algorithms),
        vendor_info=data[pos + 1 : pos + 1 + vendor_size],
    )


def _parse_agile_records(log: EventLog, pos: int, spec_id: SpecIdEvent) -> None:
    """The TCG_PCR_EVENT2 records from ``pos`` to the end.

    The hot path unpacks a record whose digests are exactly the Spec ID event's algorithms
    in its order (what edk2, U-Boot and Linux write) with one precompiled struct; any other
    record goes through :func:`_read_event2`, which checks field by field.
    """
    buf, base, events = log.buffer, log.base, log.events
    end = len(buf)
    order = spec_id.algorithms
    count = len(order)
    expected = tuple(alg for alg, _ in order)
    fast = struct.Struct("<III" + "".join(f"H{size}s" for _, size in order) + "I")
    fast_size = fast.size
    unpack = fast.unpack_from
    index = len(events)
    append = events.append
    while pos < end:
        if end - pos >= fast_size:
            v = unpack(buf, pos)
            size = v[-1]
            if v[2] == count and v[3:-1:2] == expected and size <= end - pos - fast_size:
                append(Event(log, index, v[0], v[1], v[3:-1], base + pos,
                             base + pos + fast_size, size))
                pos += fast_size + size
                index += 1
                continue
        event, pos = _read_event2(log, pos, index, spec_id.digest_sizes)
        append(event)
        index += 1


def _read_event2(log: EventLog, pos: int, index: int,
                 sizes: dict[int, int]) -> tuple[Event, int]:
    buf, base = log.buffer, log.base
    end = len(buf)
    name = f"TCG_PCR_EVENT2[{index}]"
    start = pos
    if end - pos < _EVENT2_HEAD_SIZE:
        raise TruncatedError(f"the record header needs {_EVENT2_HEAD_SIZE} bytes, "
                             f"{end - pos} left", structure=name, offset=base + pos)
    pcr, event_type, count = _EVENT2_HEAD.unpack_from(buf, pos)
    if count > len(sizes):
        raise ParseError(f"Digests.count {count} exceeds the {len(sizes)} algorithms of the "
                         f"Spec ID event", structure=name,
                         offset=base + pos + L.PCR_EVENT2_HEADER.offset("digest_count"))
    pos += _EVENT2_HEAD_SIZE
    flat: list[int | bytes] = []
    for i in range(count):
        if end - pos < 2:
            raise TruncatedError(f"digest {i} needs a 2-byte algorithm id, {end - pos} left",
                                 structure=name, offset=base + pos)
        (alg,) = _U16.unpack_from(buf, pos)
        size = sizes.get(alg)
        if size is None:
            raise ParseError(f"digest {i} uses TPM_ALG_ID {alg:#06x}, which the Spec ID "
                             f"event does not list", structure=name, offset=base + pos)
        if alg in flat[0::2]:
            raise ParseError(f"digest {i} repeats TPM_ALG_ID {alg:#06x}", structure=name,
                             offset=base + pos)
        pos += 2
        if end - pos < size:
            raise TruncatedError(f"digest {i} needs {size} bytes, {end - pos} left",
                                 structure=name, offset=base + pos)
        flat += (alg, buf[pos : pos + size])
        pos += size
    if end - pos < 4:
        raise TruncatedError(f"EventSize needs 4 bytes, {end - pos} left", structure=name,
                             offset=base + pos)
    (data_size,) = _U32.unpack_from(buf, pos)
    if data_size > end - pos - 4:
        raise TruncatedError(f"EventSize {data_size:#x} exceeds the {end - pos - 4:#x} "
                             f"bytes left", structure=name, offset=base + pos)
    pos += 4
    event = Event(log, index, pcr, event_type, tuple(flat), base + start, base + pos, data_size)
    return event, pos + data_size


def load_event_log(path: str | os.PathLike[str]) -> EventLog:
    """Read and parse the event log at ``path`` (at most :data:`MAX_LOG_SIZE` bytes); errors
    name the file."""
    from fwtools._base.fileio import read_file

    data = read_file(path, max_size=MAX_LOG_SIZE)
    try:
        return parse_event_log(data)
    except ParseError as exc:
        raise exc.with_path(path) from None
