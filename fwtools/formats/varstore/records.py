"""Walking the variable records of a store and deciding which are live, as edk2 does.

References (tianocore/edk2, ``MdeModulePkg/Universal/Variable/RuntimeDxe/``):
``VariableParsing.c`` (``IsValidVariableHeader``, ``GetNextVariablePtr``,
``NameSizeOfVariable``: the walk goes from the first aligned header until StartId is not
0x55AA or the store ends) and ``FindVariableEx`` (the live record of a key is its first 0x3F
record, else its last 0x3E one; keys are VendorGuid and the name's bytes). The record
headers are declared in :mod:`.layout`, the findings in :mod:`.issues`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from fwtools._base.efitime import EfiTime
from fwtools.formats.efi.authvar import (
    AUTHENTICATED_WRITE_ACCESS,
    NON_VOLATILE,
    TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
)
from fwtools.formats.varstore import issues as iss
from fwtools.formats.varstore import layout as lay
from fwtools.formats.varstore.model import Issue, Record, Variable

if TYPE_CHECKING:
    from fwtools.formats.varstore.issues import Findings
    from fwtools.formats.varstore.layout import StoreLayout


class _Raw:
    """A record header as read, before liveness is known."""

    __slots__ = (
        "attributes", "count", "data_size", "guid_raw", "index", "name_raw", "name_size",
        "next_offset", "offset", "problems", "reserved", "stamp", "state", "valid", "value",
    )  # fmt: skip

    def __init__(self, offset: int, state: int) -> None:
        self.offset = offset
        self.state = state
        self.reserved = 0
        self.attributes = 0
        self.count = 0
        self.index = 0
        self.stamp: EfiTime | None = None
        self.name_size = 0
        self.data_size = 0
        self.guid_raw = b""
        self.name_raw = b""
        self.value = b""
        self.next_offset = offset
        self.valid = False
        self.problems: list[Issue] = []


def walk_records(
    data: bytes, authenticated: bool, layout: StoreLayout, findings: Findings
) -> tuple[list[Record], int, int]:
    """Walk the records of the store; returns them, the aligned end of the last complete
    record and the offset where free space should begin."""
    issue = findings.add
    header = lay.AUTH_HEADER_LAYOUT if authenticated else lay.NORMAL_HEADER_LAYOUT
    hsize = header.size
    end = layout.store_end
    pos = layout.records_offset
    found: list[_Raw] = []
    records_end = pos
    # Every iteration advances pos by at least the header size, so the loop runs at most
    # Size / 32 times.
    while True:
        if not data.startswith(lay.START_ID_BYTES, pos, end):
            walk_end = pos
            break
        if pos + hsize > end:
            state_at = pos + lay.STATE_OFFSET
            item = _Raw(pos, data[state_at] if state_at < end else lay.STATE_UNWRITTEN)
            item.problems.append(issue(
                iss.RECORD_CROSSES_END,
                f"record header at {pos:#x} crosses the end of the store ({end:#x})",
                pos,
            ))  # fmt: skip
            found.append(item)
            walk_end = end
            break
        item = _Raw(pos, 0)
        if authenticated:
            (_sid, item.state, item.reserved, item.attributes, item.count, stamp_raw,
             item.index, item.name_size, item.data_size, item.guid_raw,
             ) = header.unpack_from(data, pos)  # fmt: skip
            item.stamp = EfiTime.from_bytes(stamp_raw)
        else:
            (_sid, item.state, item.reserved, item.attributes, item.name_size,
             item.data_size, item.guid_raw) = header.unpack_from(data, pos)  # fmt: skip
        found.append(item)
        erased = lay.ERASED_U32 in (item.name_size, item.data_size, item.attributes)
        name_at = pos + hsize
        value_at = name_at + item.name_size
        stop = value_at + item.data_size
        if erased or stop > end:
            if erased or item.state == lay.STATE_UNWRITTEN:
                # VariableParsing.c: NameSizeOfVariable/DataSizeOfVariable return 0 for such
                # a header and the walk goes on into what follows (never another header in
                # practice): the torn tail of an interrupted write.
                item.problems.append(issue(
                    iss.RECORD_TORN,
                    f"record at {pos:#x} is an interrupted write (State {item.state:#04x}, "
                    "sizes erased or past the end): not live; the firmware reclaims the store",
                    pos,
                ))  # fmt: skip
                walk_end = min(name_at, end)
            else:
                item.problems.append(issue(
                    iss.RECORD_CROSSES_END,
                    f"record at {pos:#x} (NameSize {item.name_size:#x}, DataSize "
                    f"{item.data_size:#x}) runs past the end of the store at {end:#x}",
                    pos,
                ))  # fmt: skip
                walk_end = end
            break
        item.valid = True
        item.name_raw = data[name_at:value_at]
        item.value = data[value_at:stop]
        item.next_offset = lay.header_align(stop)
        _record_checks(item, hsize, findings)
        pad = data[stop : min(item.next_offset, end)]
        if pad.count(b"\xff") != len(pad):
            # Measured: bookworm's AAVMF_VARS.ms.fd has 0x00 pads after VendorKeysNv and
            # SecureBootEnable. The generic driver never reads pads; OVMF's
            # PlatformValidateNvVarStore (-bios flash) wants 0xFF.
            item.problems.append(issue(
                iss.RECORD_PAD,
                f"record at {pos:#x}: padding after it is {pad.hex()}, not 0xff",
                stop,
            ))  # fmt: skip
        if item.state == lay.STATE_UNWRITTEN:
            # Current edk2 writes the whole record with State 0xFF, then sets 0x3F
            # (Variable.c UpdateVariable): the next header would be inside its name.
            walk_end = min(item.next_offset, end)
            break
        pos = item.next_offset
        records_end = pos
    return _finish(found, hsize, findings), records_end, walk_end


def _record_checks(item: _Raw, hsize: int, findings: Findings) -> None:
    pos = item.offset
    state = item.state
    add = item.problems.append
    issue = findings.add
    if state == lay.STATE_UNWRITTEN:
        add(issue(
            iss.RECORD_TORN,
            f"record at {pos:#x} is an interrupted write (State 0xff: header and data "
            "written, never marked added): not live; the firmware reclaims the store",
            pos,
        ))  # fmt: skip
    elif state not in lay.STATE_NAMES:
        add(issue(
            iss.RECORD_STATE,
            f"record at {pos:#x} has invalid State {state:#04x}; VirtNorFlashDxe and "
            "PlatformInitLib reject the whole store",
            pos + lay.STATE_OFFSET,
        ))  # fmt: skip
    elif state == lay.VAR_HEADER_VALID_ONLY:
        add(issue(
            iss.RECORD_HEADER_ONLY,
            f"record at {pos:#x} has State 0x7f (header written, data not): not live",
            pos + lay.STATE_OFFSET,
        ))  # fmt: skip
    if item.reserved:
        add(issue(
            iss.RECORD_RESERVED,
            f"record at {pos:#x} has Reserved {item.reserved:#04x}, not 0",
            pos + lay.RESERVED_OFFSET,
        ))  # fmt: skip
    if item.name_size % 2 or item.name_size < 4:
        add(issue(
            iss.RECORD_NAME_SIZE,
            f"record at {pos:#x} has NameSize {item.name_size} (must be even and at least 4)",
            pos,
        ))  # fmt: skip
    elif not item.name_raw.endswith(lay.NAME_NUL):
        add(issue(
            iss.RECORD_NAME_NUL,
            f"record at {pos:#x}: name is not NUL-terminated; strict firmware validators "
            "reject the store",
            pos + hsize,
        ))  # fmt: skip


def _finish(found: list[_Raw], hsize: int, findings: Findings) -> list[Record]:
    # FindVariableEx: the first 0x3F record of a key, else the last 0x3E one; keys are the
    # GUID and the NameSize bytes of the name.
    issue = findings.add
    first_added: dict[tuple[bytes, bytes], int] = {}
    last_transition: dict[tuple[bytes, bytes], int] = {}
    for i, item in enumerate(found):
        if not item.valid:
            continue
        key = (item.guid_raw, item.name_raw)
        if item.state == lay.STATE_ADDED:
            if key in first_added:
                issue(
                    iss.RECORD_DUPLICATE,
                    f"record at {item.offset:#x} repeats the live variable at "
                    f"{found[first_added[key]].offset:#x} (both State 0x3f); the firmware "
                    "only sees the first",
                    item.offset,
                )
            else:
                first_added[key] = i
        elif item.state == lay.STATE_IN_TRANSITION:
            last_transition[key] = i
    live = set(first_added.values())
    for key, i in last_transition.items():
        offset = found[i].offset
        if key in first_added:
            issue(
                iss.RECORD_IN_TRANSITION_OLD,
                f"record at {offset:#x} is the old copy of an interrupted update "
                "(State 0x3e with a 0x3f successor): not live",
                offset,
            )
        else:
            live.add(i)
            issue(
                iss.RECORD_IN_TRANSITION_LIVE,
                f"record at {offset:#x} is in transition (State 0x3e: an update was "
                "interrupted before the new copy was written): live; Reclaim keeps it",
                offset,
            )
    records: list[Record] = []
    for i, item in enumerate(found):
        variable = None
        if item.valid:
            name_raw = item.name_raw
            text = name_raw[: len(name_raw) & ~1].decode("utf-16-le", "surrogatepass")
            if name_raw.endswith(lay.NAME_NUL) and len(name_raw) % 2 == 0:
                text = text[:-1]
            variable = Variable(
                name=text,
                guid=uuid.UUID(bytes_le=item.guid_raw),
                attributes=item.attributes,
                data=item.value,
                timestamp=item.stamp,
                monotonic_count=item.count,
                pubkey_index=item.index,
                state=item.state,
                offset=item.offset,
            )
            if i in live:
                item.problems.extend(_variable_problems(variable, findings))
        records.append(
            Record(
                offset=item.offset,
                state=item.state,
                state_name=lay.state_name(item.state),
                variable=variable,
                header_valid=item.valid,
                live=i in live,
                header_size=hsize,
                name_size=item.name_size if item.valid else None,
                data_size=item.data_size if item.valid else None,
                next_offset=item.next_offset,
                reserved=item.reserved,
                problems=tuple(item.problems),
            )
        )
    return records


def _variable_problems(variable: Variable, findings: Findings) -> list[Issue]:
    issue = findings.add
    found: list[Issue] = []
    attrs = variable.attributes
    offset = variable.offset
    stamp = variable.timestamp
    if stamp is not None and not attrs & TIME_BASED_AUTHENTICATED_WRITE_ACCESS and not (
        stamp.is_zero
    ):
        found.append(issue(
            iss.VARIABLE_STRAY_TIMESTAMP,
            f"variable {variable.name} at {offset:#x} has a TimeStamp without the "
            "TIME_BASED_AUTHENTICATED_WRITE_ACCESS attribute (edk2 writes zero)",
            offset,
        ))  # fmt: skip
    if (variable.monotonic_count or variable.pubkey_index) and not (
        attrs & AUTHENTICATED_WRITE_ACCESS
    ):
        found.append(issue(
            iss.VARIABLE_STRAY_COUNT,
            f"variable {variable.name} at {offset:#x} has MonotonicCount/PubKeyIndex set "
            "(edk2 writes zero)",
            offset,
        ))  # fmt: skip
    if not attrs & NON_VOLATILE:
        found.append(issue(
            iss.VARIABLE_VOLATILE,
            f"variable {variable.name} at {offset:#x} lacks NON_VOLATILE ({attrs:#x})",
            offset,
        ))  # fmt: skip
    return found


__all__ = ["walk_records"]
