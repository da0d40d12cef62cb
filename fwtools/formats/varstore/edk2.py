"""The edk2 raw variable store (``OVMF_VARS*.fd``, ``AAVMF_VARS*.fd``): parse, edit, write.

Layouts and constants are in :mod:`fwtools.formats.varstore.layout`; the fact sheet
(``formats.md`` §1) has the measured details. The model follows edk2's own code:

- Reading walks records from the first aligned header until StartId is not 0x55AA or the
  store ends (``VariableParsing.c``: ``IsValidVariableHeader``, ``GetNextVariablePtr``) and
  decides what is live the way ``FindVariableEx`` does: the first 0x3F record of a key,
  else the last 0x3E one. Keys are (VendorGuid, name) compared byte for byte.
- Damage the firmware itself tolerates (deleted and in-transition records, an interrupted
  write with State 0xFF, non-0xFF free space, a used FTW queue) is reported by
  :meth:`VariableStore.check`, never raised. :class:`ParseError` is raised only when no
  store can be read at all (not an NV firmware volume, truncated, store header invalid);
  ``parse(strict=True)`` also raises for every error-level issue, the way edk2's strict
  validators (``VirtNorFlashDxe:ValidateFvHeader``, ``PlatformInitLib``) refuse a store.
- Writing an edited store emits it compacted, as edk2's ``Reclaim`` leaves it: the live
  variables in store order (replaced ones in place, new ones appended) all with State 0x3F,
  4-byte aligned, pads and free space 0xFF, the FV header kept (checksum recomputed), a
  fresh store header, the event log 0xFF, the FTW working block pristine (the header the
  driver computes, then 0xFF) and the spare 0xFF. An unchanged store is written back
  byte for byte.
- A store with error-level issues (bad FV checksum, invalid record states, names without
  their NUL, a pending FTW write, ...) is not rewritten unless the caller passes
  ``repair=True``: compacting it would silently change what the firmware sees.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Final, Literal

from fwtools._base.efitime import EfiTime
from fwtools.errors import FwError, ParseError, TruncatedError, UsageError
from fwtools.formats.efi import guids
from fwtools.formats.efi.authvar import (
    APPEND_WRITE,
    AUTHENTICATED_WRITE_ACCESS,
    BOOTSERVICE_ACCESS,
    HARDWARE_ERROR_RECORD,
    NON_VOLATILE,
    RUNTIME_ACCESS,
    TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
    attribute_names,
    encode_variable_name,
)
from fwtools.formats.varstore import layout as lay
from fwtools.formats.varstore.layout import StoreLayout

Severity = Literal["error", "warning", "info"]
Key = tuple[uuid.UUID, str]

_ZERO_TIME: Final = EfiTime.zero()
_ZERO_TIME_BYTES: Final = bytes(EfiTime.SIZE)
_NV_GUID_BYTES: Final = lay.SYSTEM_NV_DATA_FV_GUID.bytes_le
_FTW_GUID_BYTES: Final = lay.WORKING_BLOCK_SIGNATURE_GUID.bytes_le
_STORE_GUIDS: Final = {
    lay.AUTHENTICATED_VARIABLE_GUID.bytes_le: True,
    lay.VARIABLE_GUID.bytes_le: False,
}
_CHUNK: Final = 1 << 16
_FILL: Final = {0x00: bytes(_CHUNK), 0xFF: b"\xff" * _CHUNK}
_AT_AW: Final = AUTHENTICATED_WRITE_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS


# -- errors ----------------------------------------------------------------------------------


class BlankStoreError(ParseError):
    """The image has no variable store yet: all zero (Debian bookworm's 64 MiB
    ``AAVMF_VARS.fd`` template), all 0xFF (erased flash), or an FV whose store header is
    erased. ``layout`` is the layout to format it with (:meth:`VariableStore.blank`), when
    the size says which."""

    def __init__(
        self,
        message: str,
        *,
        layout: StoreLayout | None = None,
        offset: int | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, structure="variable store", offset=offset, path=path)
        self.layout = layout


class StoreFullError(FwError):
    """The live variables do not fit in the store: ``needed`` bytes of records against
    ``available`` bytes of record space."""

    def __init__(self, needed: int, available: int, detail: str = "") -> None:
        self.needed = needed
        self.available = available
        message = (
            f"variable store full: the variables need {needed} bytes of records but the "
            f"store has room for {available}; {self.missing} bytes missing"
        )
        super().__init__(message + (f" ({detail})" if detail else ""))

    @property
    def missing(self) -> int:
        return self.needed - self.available


class VariableTooLargeError(FwError):
    """One variable's record (header + name + data) exceeds the build's limit
    (PcdMaxAuthVariableSize / PcdMaxVariableSize / PcdMaxHardwareErrorVariableSize)."""

    def __init__(self, name: str, guid: uuid.UUID, size: int, limit: int, pcd: str) -> None:
        self.name = name
        self.guid = guid
        self.size = size
        self.limit = limit
        self.pcd = pcd
        super().__init__(
            f"variable {name} ({guid}) needs a {size}-byte record (header + name + data), "
            f"over this firmware's {pcd} of {limit} bytes by {size - limit}; the firmware "
            "would refuse to update it"
        )


class DamagedStoreError(FwError):
    """The parsed store has error-level issues that rewriting would silently change;
    ``issues`` lists them. Pass ``repair=True`` to :meth:`VariableStore.to_bytes` to write
    it anyway."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        first = issues[0]
        where = f" at offset {first.offset:#x}" if first.offset is not None else ""
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        super().__init__(
            f"refusing to rewrite a damaged store: {first.message}{where}{more}; "
            "rewrite with repair to compact it anyway"
        )


# -- value objects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One finding of :meth:`VariableStore.check`: ``severity`` (``error``: the firmware
    refuses or loses data; ``warning``: the firmware copes but something is off; ``info``),
    a sentence, the absolute file offset it concerns and a stable ``code``."""

    severity: Severity
    message: str
    offset: int | None = None
    code: str = ""


@dataclass(frozen=True)
class Variable:
    """One UEFI variable as stored.

    ``timestamp``, ``monotonic_count`` and ``pubkey_index`` exist in the authenticated
    record format only (``timestamp`` is None in a normal-format store; a zero EfiTime for
    variables without TIME_BASED_AUTHENTICATED_WRITE_ACCESS). ``state`` and ``offset`` are
    those of the record it was read from (``offset`` None for variables not read from a
    file).
    """

    name: str
    guid: uuid.UUID
    attributes: int
    data: bytes
    timestamp: EfiTime | None = None
    monotonic_count: int = 0
    pubkey_index: int = 0
    state: int = lay.STATE_ADDED
    offset: int | None = None

    @property
    def key(self) -> Key:
        """(VendorGuid, name): what identifies a variable (never the name alone)."""
        return (self.guid, self.name)

    @property
    def attribute_names(self) -> list[str]:
        return attribute_names(self.attributes)

    @property
    def name_bytes(self) -> bytes:
        """The stored name: UCS-2LE with the terminating NUL."""
        return _encode_name(self.name)

    def record_size(self, authenticated: bool = True) -> int:
        """Header + name + data: the size edk2 checks against its variable size limits."""
        header = lay.AUTH_HEADER_SIZE if authenticated else lay.NORMAL_HEADER_SIZE
        return header + len(self.name_bytes) + len(self.data)


@dataclass(frozen=True)
class Record:
    """One record header found walking the store, live or not.

    ``variable`` is None when the header cannot be decoded (sizes erased or running past
    the store). ``header_valid`` says the header and what it announces fit in the store;
    ``live`` follows ``FindVariableEx``. ``next_offset`` is where the next header would be.
    ``problems`` are this record's issues (also in :meth:`VariableStore.check`).
    """

    offset: int
    state: int
    state_name: str
    variable: Variable | None
    header_valid: bool
    live: bool
    header_size: int
    name_size: int | None
    data_size: int | None
    next_offset: int
    reserved: int = 0
    problems: tuple[Issue, ...] = ()

    @property
    def size(self) -> int | None:
        """Header + name + data (None when the header could not be decoded)."""
        if self.name_size is None or self.data_size is None:
            return None
        return self.header_size + self.name_size + self.data_size


@dataclass(frozen=True)
class FvHeader:
    """EFI_FIRMWARE_VOLUME_HEADER as found (``checksum_valid``: the words sum to 0)."""

    zero_vector: bytes
    file_system_guid: uuid.UUID
    fv_length: int
    attributes: int
    header_length: int
    checksum: int
    ext_header_offset: int
    reserved: int
    revision: int
    block_map: tuple[tuple[int, int], ...]
    block_map_terminated: bool
    checksum_valid: bool

    @property
    def block_map_length(self) -> int:
        return sum(count * length for count, length in self.block_map)


@dataclass(frozen=True)
class StoreHeader:
    """VARIABLE_STORE_HEADER as found."""

    signature: uuid.UUID
    size: int
    format: int
    state: int
    reserved: int
    reserved1: int

    @property
    def authenticated(self) -> bool:
        return self.signature == lay.AUTHENTICATED_VARIABLE_GUID


@dataclass(frozen=True)
class FtwRecord:
    """EFI_FAULT_TOLERANT_WRITE_RECORD (flags decoded: True = done/set)."""

    offset: int
    boot_block_update: bool
    spare_complete: bool
    destination_complete: bool
    lba: int
    block_offset: int
    length: int
    relative_offset: int


@dataclass(frozen=True)
class FtwWrite:
    """EFI_FAULT_TOLERANT_WRITE_HEADER with its records."""

    offset: int
    header_allocated: bool
    writes_allocated: bool
    complete: bool
    caller_id: uuid.UUID
    number_of_writes: int
    private_data_size: int
    records: tuple[FtwRecord, ...]


@dataclass(frozen=True)
class FtwWorkingBlock:
    """The FTW working area: header, write queue and what the driver will do at boot.

    ``header_pristine``: the header is byte-identical to what the driver computes
    (``IsValidWorkSpace``). ``pending`` is the record the driver would restart at boot
    (``InitFtwProtocol``: the last write is not Complete and its record is SpareComplete),
    copying the spare over the target. ``aborted``: an allocated write whose spare copy never
    completed, which the driver discards.
    """

    offset: int
    size: int
    signature_valid: bool
    crc: int
    expected_crc: int
    state: int
    write_queue_size: int
    header_pristine: bool
    queue_blank: bool
    writes: tuple[FtwWrite, ...]
    pending: FtwRecord | None
    aborted: bool
    spare_blank: bool | None
    spare_has_working_header: bool

    @property
    def completed_writes(self) -> int:
        return sum(1 for w in self.writes if w.complete)


# -- helpers ---------------------------------------------------------------------------------


def _encode_name(name: str) -> bytes:
    # surrogatepass keeps names read from a store byte-exact (edk2 compares bytes).
    return name.encode("utf-16-le", "surrogatepass") + b"\0\0"


def _first_not(data: bytes, start: int, end: int, byte: int) -> int | None:
    """The first offset in [start, end) whose byte is not ``byte``, or None (C speed: no
    per-byte Python loop, no copy of the region)."""
    fill = _FILL[byte]
    pos = start
    while pos < end:
        size = min(_CHUNK, end - pos)
        if not data.startswith(fill[:size] if size < _CHUNK else fill, pos):
            chunk = data[pos : pos + size]
            return pos + size - len(chunk.lstrip(bytes((byte,))))
        pos += size
    return None


def _count_not(data: bytes, start: int, end: int, byte: int) -> int:
    return (end - start) - data.count(bytes((byte,)), start, end)


def _within_file(field: str, end: int, data: bytes) -> None:
    """Raise :class:`TruncatedError` when the FV header's ``field`` reaches past the file."""
    if end > len(data):
        raise TruncatedError(
            f"{field} is {end:#x} but the file has only {len(data):#x} bytes "
            "(truncated store)",
            structure="EFI_FIRMWARE_VOLUME_HEADER",
            offset=len(data),
        )


def _guid(raw: bytes) -> uuid.UUID:
    return uuid.UUID(bytes_le=raw)


def _guid_label(guid: uuid.UUID) -> str:
    name = guids.guid_name(guid)
    if guid == lay.FIRMWARE_FILE_SYSTEM2_GUID:
        name = "EFI_FIRMWARE_FILE_SYSTEM2_GUID"
    elif guid == lay.FIRMWARE_FILE_SYSTEM3_GUID:
        name = "EFI_FIRMWARE_FILE_SYSTEM3_GUID"
    return f"{guid} ({name})" if name else str(guid)


def _resolve_layout(layout: str | StoreLayout) -> StoreLayout:
    if isinstance(layout, StoreLayout):
        return layout
    found = lay.layout_by_name(layout)
    if found is None:
        raise UsageError(
            f"unknown variable store layout {layout!r} (known: {', '.join(lay.LAYOUTS)})"
        )
    return found


# -- the store -------------------------------------------------------------------------------


class VariableStore:
    """An edk2 variable store image: its headers, records and live variables.

    Build one with :meth:`parse` or :meth:`blank`. ``records`` are what the parsed bytes
    hold (every header, live or not); ``variables`` is the current live view, changed by
    :meth:`set` and :meth:`delete`, and written by :meth:`to_bytes`.
    """

    def __init__(
        self,
        *,
        data: bytes,
        layout: StoreLayout,
        fv_header: FvHeader,
        store_header: StoreHeader,
        records: list[Record],
        records_end: int,
        free_space_dirty_at: int | None,
        ftw: FtwWorkingBlock | None,
        issues: list[Issue],
        path: str | None,
        repair_layout: StoreLayout | None = None,
    ) -> None:
        self._data = data
        self.layout = layout
        self.fv_header = fv_header
        self.store_header = store_header
        self.records = records
        self.records_end = records_end
        self.free_space_dirty_at = free_space_dirty_at
        # The known build whose size the image has, when its store header disagrees: what
        # to_bytes(repair=True) rewrites it as.
        self._repair_layout = repair_layout
        self.ftw = ftw
        self.path = path
        self._issues = issues
        self._vars: dict[Key, Variable] = {}
        # The State of the live record each parsed variable came from: to_bytes writes the
        # 0x3F ones first and the promoted 0x3E ones after them, as Reclaim does.
        self._origin: dict[Key, int] = {}
        for record in records:
            if record.live and record.variable is not None:
                key = record.variable.key
                if key not in self._vars:
                    self._vars[key] = record.variable
                    self._origin[key] = record.state
        self._modified = False
        self._changed: set[Key] = set()
        self._trailer_checked: list[Issue] | None = None

    def __repr__(self) -> str:
        kind = "authenticated" if self.authenticated else "normal"
        changed = ", modified" if self._modified else ""
        return f"<VariableStore {self.layout.name} {kind}, {len(self._vars)} variables{changed}>"

    # -- construction --------------------------------------------------------------------

    @classmethod
    def parse(
        cls, data: bytes | bytearray | memoryview, *, path: str | None = None, strict: bool = False
    ) -> VariableStore:
        """Read a raw store image.

        Raises :class:`BlankStoreError` for an image without a store yet (all zero, all
        0xFF, or an erased store header), :class:`ParseError` (with the offset) when the
        bytes are not a readable store; ``strict`` also raises for every error-level issue
        :meth:`check` would report. Never raises anything else for any input.
        """
        raw = data if isinstance(data, bytes) else bytes(data)
        try:
            store = _Parser(raw, path).parse()
        except ParseError as exc:
            raise (exc.with_path(path) if path is not None else exc) from None
        except (struct.error, IndexError, ValueError, OverflowError) as exc:  # pragma: no cover
            # A safety net: every read above is bounds-checked, so this is a bug, but the
            # contract (ParseError for any input) holds even then.
            raise ParseError(
                f"internal parse failure: {exc}", structure="variable store", path=path
            ) from exc
        if strict:
            errors = [i for i in store.check() if i.severity == "error"]
            if errors:
                raise ParseError(
                    errors[0].message,
                    structure="variable store",
                    offset=errors[0].offset,
                    path=path,
                )
        return store

    @classmethod
    def blank(cls, layout: str | StoreLayout, *, authenticated: bool = True) -> VariableStore:
        """A freshly formatted, empty store of ``layout`` (a :class:`StoreLayout` or a
        name such as ``ovmf-4m-528k``).

        The bytes equal the build's fdf template: Debian's ``OVMF_VARS.fd``,
        ``OVMF_VARS_4M.fd`` and trixie's ``AAVMF_VARS.fd`` byte for byte. Differences from
        other shipped files: bookworm's ``AAVMF_VARS.fd`` is all zero (the firmware formats
        it at first boot), and stores ArmVirt formatted at runtime carry FV attributes
        0xE36 and a block map of 0x100 x 0x40000 (the whole flash device) instead of the
        template's 0x4FEFF and 3 x 0x40000; the firmware accepts both. ``authenticated``
        False writes the normal (gEfiVariableGuid) header format, which OVMF and ArmVirt do
        not accept. Unified ``OVMF.fd`` layouts cannot be made blank (they hold code).
        """
        target = _resolve_layout(layout)
        if target.trailer == "code":
            raise UsageError(
                f"layout {target.name} is a unified image that also holds firmware code; "
                "blank stores are variables-only (use ovmf-2m-128k or ovmf-4m-528k)"
            )
        return cls.parse(_build_blank(target, authenticated))

    # -- reading -------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        """True for the authenticated record format (gEfiAuthenticatedVariableGuid)."""
        return self.store_header.authenticated

    @property
    def variables(self) -> list[Variable]:
        """The live variables, in store order."""
        return list(self._vars.values())

    def get(self, name: str, guid: uuid.UUID) -> Variable | None:
        return self._vars.get((guid, name))

    def keys(self) -> list[Key]:
        return list(self._vars)

    def __iter__(self) -> Iterator[Variable]:
        return iter(list(self._vars.values()))

    def __len__(self) -> int:
        return len(self._vars)

    def __contains__(self, key: object) -> bool:
        return key in self._vars

    @property
    def modified(self) -> bool:
        return self._modified

    @property
    def original_bytes(self) -> bytes:
        """The bytes this store was parsed from (or built as, for :meth:`blank`)."""
        return self._data

    def state_counts(self) -> dict[str, int]:
        """How many records have each state name (``added``, ``replaced``, ...)."""
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record.state_name] = counts.get(record.state_name, 0) + 1
        return counts

    def used_space(self) -> int:
        """Record bytes the current variables take once compacted (each 4-byte aligned)."""
        auth = self.authenticated
        return sum(lay.header_align(v.record_size(auth)) for v in self._vars.values())

    def free_space(self) -> int:
        """Record space left after :meth:`to_bytes` compacts the current variables
        (negative when they do not fit). The free space *in the parsed file*, before
        compaction, is ``layout.store_end - records_end``."""
        return self.layout.capacity - self.used_space()

    # -- editing -------------------------------------------------------------------------

    def set(self, variable: Variable) -> None:
        """Add ``variable``, or replace the live variable with the same (guid, name) in
        place (it keeps its position in the store).

        The stored form is normalised as edk2 writes records: State 0x3F; in the
        authenticated format TimeStamp zero unless the variable has
        TIME_BASED_AUTHENTICATED_WRITE_ACCESS, MonotonicCount and PubKeyIndex zero unless it
        has (count-based) AUTHENTICATED_WRITE_ACCESS. Raises :class:`UsageError` for what no
        firmware stores (an invalid name, APPEND_WRITE, no NON_VOLATILE, RUNTIME without
        BOOTSERVICE, empty data, authenticated attributes in a normal-format store) and
        :class:`VariableTooLargeError` past the layout's size limit. Whether everything
        still fits is checked by :meth:`to_bytes` (:meth:`free_space` tells beforehand).
        """
        new = self._validated(variable)
        self._check_limit(new)
        old = self._vars.get(new.key)
        if old is not None and self._normalised(old) == new:
            return
        self._vars[new.key] = new
        self._changed.add(new.key)
        self._modified = True

    def delete(self, name: str, guid: uuid.UUID) -> bool:
        """Remove the live variable (guid, name); False when there is none."""
        key = (guid, name)
        if key not in self._vars:
            return False
        del self._vars[key]
        self._origin.pop(key, None)
        self._changed.discard(key)
        self._modified = True
        return True

    def _validated(self, variable: Variable) -> Variable:
        if not isinstance(variable.name, str):
            raise UsageError(f"variable name {variable.name!r} is not a string")
        if not isinstance(variable.guid, uuid.UUID):
            raise UsageError(f"variable {variable.name!r}: guid must be a uuid.UUID")
        encode_variable_name(variable.name)
        attrs = variable.attributes
        if isinstance(attrs, bool) or not isinstance(attrs, int) or not 0 <= attrs <= 0xFFFFFFFF:
            raise UsageError(f"variable {variable.name}: attributes {attrs!r} are not a u32")
        if attrs & APPEND_WRITE:
            raise UsageError(
                f"variable {variable.name}: APPEND_WRITE (0x40) is a SetVariable operation, "
                "not a stored attribute; merge the data and store it without 0x40"
            )
        if not attrs & NON_VOLATILE:
            raise UsageError(
                f"variable {variable.name}: attributes {attrs:#x} lack NON_VOLATILE (0x1); "
                "only non-volatile variables are kept in the store"
            )
        if attrs & RUNTIME_ACCESS and not attrs & BOOTSERVICE_ACCESS:
            raise UsageError(
                f"variable {variable.name}: RUNTIME_ACCESS without BOOTSERVICE_ACCESS "
                f"({attrs:#x}) is refused by SetVariable"
            )
        if attrs & _AT_AW == _AT_AW:
            raise UsageError(
                f"variable {variable.name}: both AUTHENTICATED_WRITE_ACCESS and "
                "TIME_BASED_AUTHENTICATED_WRITE_ACCESS are set"
            )
        if not variable.data:
            raise UsageError(
                f"variable {variable.name}: empty data (SetVariable with no data deletes a "
                "variable; use delete)"
            )
        if not self.authenticated:
            if attrs & _AT_AW:
                raise UsageError(
                    f"variable {variable.name}: authenticated attributes {attrs:#x} need the "
                    "authenticated store format; this store uses the normal format"
                )
            if variable.timestamp is not None and not variable.timestamp.is_zero:
                raise UsageError(
                    f"variable {variable.name}: a normal-format store has no timestamps"
                )
        for field_name in ("monotonic_count", "pubkey_index"):
            value = getattr(variable, field_name)
            limit = 0xFFFFFFFFFFFFFFFF if field_name == "monotonic_count" else 0xFFFFFFFF
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise UsageError(f"variable {variable.name}: {field_name} {value!r} does not fit")
        if variable.timestamp is not None and not isinstance(variable.timestamp, EfiTime):
            raise UsageError(f"variable {variable.name}: timestamp must be an EfiTime")
        return self._normalised(replace(variable, data=bytes(variable.data)))

    def _normalised(self, variable: Variable) -> Variable:
        """The variable as :meth:`to_bytes` writes it (see :meth:`set`)."""
        attrs = variable.attributes
        if self.authenticated:
            stamp = variable.timestamp if attrs & TIME_BASED_AUTHENTICATED_WRITE_ACCESS else None
            timestamp: EfiTime | None = stamp if stamp is not None else _ZERO_TIME
            counted = bool(attrs & AUTHENTICATED_WRITE_ACCESS)
            count = variable.monotonic_count if counted else 0
            index = variable.pubkey_index if counted else 0
        else:
            timestamp, count, index = None, 0, 0
        return Variable(
            name=variable.name,
            guid=variable.guid,
            attributes=attrs,
            data=variable.data,
            timestamp=timestamp,
            monotonic_count=count,
            pubkey_index=index,
        )

    def _limit(self, variable: Variable) -> tuple[int, str] | None:
        attrs = variable.attributes
        limit = self.layout.limit_for(attrs)
        if limit is None:
            return None
        if attrs & HARDWARE_ERROR_RECORD:
            pcd = "PcdMaxHardwareErrorVariableSize"
        elif attrs & _AT_AW:
            pcd = "PcdMaxAuthVariableSize"
        else:
            pcd = "PcdMaxVariableSize"
        return limit, pcd

    def _check_limit(self, variable: Variable) -> None:
        found = self._limit(variable)
        if found is None:
            return
        limit, pcd = found
        size = variable.record_size(self.authenticated)
        if size > limit:
            raise VariableTooLargeError(variable.name, variable.guid, size, limit, pcd)

    # -- writing -------------------------------------------------------------------------

    def to_bytes(self, *, repair: bool = False) -> bytes:
        """The store image.

        Unchanged (and without ``repair``): the original bytes exactly. Otherwise the
        compacted image described in the module docstring, the same total size as the
        original. Raises :class:`StoreFullError` when the variables do not fit,
        :class:`VariableTooLargeError` for a changed variable over the build's limit, and
        :class:`DamagedStoreError` when the parsed store has error-level issues (see
        :meth:`check`) unless ``repair`` is True. ``repair`` always rewrites (compacts),
        even an unchanged store: records that are not live (torn, invalid, past the end) are
        dropped, as is a live variable with an empty name (NameSize 2, which no SetVariable
        creates), names get their NUL, and for a known layout a broken FV header is rebuilt
        from the template.
        """
        if not self._modified and not repair:
            return self._data
        if not repair:
            blocking = [i for i in self._issues if i.severity == "error"]
            if blocking:
                raise DamagedStoreError(blocking)
        for key in self._changed:
            self._check_limit(self._vars[key])
        return self._compose(repair)

    def _compose(self, repair: bool) -> bytes:
        layout = self.layout
        if repair and self._repair_layout is not None:
            layout = self._repair_layout
        auth = self.authenticated
        parts: list[bytes] = []
        used = 0
        for variable in self.reclaim_order():
            if not variable.name:
                continue  # read from a NameSize-2 record, which no SetVariable creates
            record = _encode_record(self._normalised(variable), auth)
            parts.append(record)
            used += len(record)
        if used > layout.capacity:
            raise StoreFullError(used, layout.capacity, f"{len(self._vars)} variables")
        data = self._data
        hl = self.fv_header.header_length
        fv_bytes = bytearray(data[:hl])
        if layout.store_offset != hl or (
            repair and layout.name in lay.LAYOUTS and self._fv_header_broken()
        ):
            fv_bytes = bytearray(_fv_header_template(layout))
        struct.pack_into("<H", fv_bytes, lay.FV_CHECKSUM_OFFSET, 0)
        struct.pack_into("<H", fv_bytes, lay.FV_CHECKSUM_OFFSET, lay.fv_checksum_field(fv_bytes))
        store_header = _store_header(layout, auth)
        start = layout.records_offset
        head = bytes(fv_bytes) + store_header
        out: list[bytes | memoryview] = [head, b"\xff" * (start - len(head)), *parts]
        out.append(b"\xff" * (layout.store_end - start - used))
        out.extend(self._nv_tail(layout))
        if layout.total_size > layout.fv_length:
            # A view, not a slice: the 63 MiB ArmVirt trailer is copied once, by join.
            out.append(memoryview(data)[layout.fv_length : layout.total_size])
        result = b"".join(out)
        assert len(result) == len(data)
        return result

    def reclaim_order(self) -> list[Variable]:
        """The current variables in the order :meth:`to_bytes` writes them, which is the
        order edk2's ``Reclaim`` (``Variable.c``) gives a store: first those read from 0x3F
        records (store order), then those read from live 0x3E records, promoted to 0x3F
        (store order), then the ones added since (in the order they were added).
        A replaced variable keeps its place.

        Where a store holds two 0x3E records of one key and no 0x3F one, ``Reclaim`` keeps
        the first while ``FindVariableEx`` (what the firmware returns) reads the last; this
        writes the one the firmware returns.
        """
        added: list[Variable] = []
        promoted: list[Variable] = []
        new: list[Variable] = []
        for key, variable in self._vars.items():
            origin = self._origin.get(key)
            if origin == lay.STATE_ADDED:
                added.append(variable)
            elif origin == lay.STATE_IN_TRANSITION:
                promoted.append(variable)
            else:
                new.append(variable)
        return added + promoted + new

    def _fv_header_broken(self) -> bool:
        codes = {"fv-zero-vector", "fv-revision", "fv-block-map", "fv-x86-block-size"}
        return any(i.code in codes and i.severity == "error" for i in self._issues)

    def _nv_tail(self, layout: StoreLayout) -> list[bytes]:
        """[store_end, fv_length): event log 0xFF, pristine FTW, spare 0xFF (or the
        original bytes where a custom image has no FTW working block)."""
        if layout.ftw_working is None:
            return [self._data[layout.store_end : layout.fv_length]]
        out: list[bytes] = []
        pos = layout.store_end
        regions = [r for r in (layout.event_log, layout.ftw_working, layout.ftw_spare) if r]
        for region in regions:
            if region.start > pos:
                out.append(self._data[pos : region.start])
            if region is layout.ftw_working:
                queue = len(region) - lay.FTW_WORKING_HEADER_SIZE
                out.append(lay.ftw_working_header(queue) + b"\xff" * queue)
            else:
                out.append(b"\xff" * len(region))
            pos = region.stop
        if pos < layout.fv_length:
            out.append(self._data[pos : layout.fv_length])
        return out

    # -- checking ------------------------------------------------------------------------

    def check(self) -> list[Issue]:
        """Integrity report of the parsed image, then of the current variables (sizes
        against the build's limits, whether they fit). Errors are what makes firmware
        refuse the store or lose data; warnings what it copes with; info the rest."""
        issues = list(self._issues)
        issues.extend(self._trailer_issues())
        auth = self.authenticated
        for variable in self._vars.values():
            found = self._limit(variable)
            if found is None:
                continue
            limit, pcd = found
            size = variable.record_size(auth)
            if size > limit:
                issues.append(
                    Issue(
                        "warning",
                        f"variable {variable.name} ({variable.guid}) has a {size}-byte record, "
                        f"over the build's {pcd} ({limit}); the firmware reads it but refuses "
                        "to update or append to it",
                        variable.offset,
                        "variable-too-large",
                    )
                )
        free = self.free_space()
        if free < 0:
            issues.append(
                Issue(
                    "error",
                    f"the variables need {self.used_space()} bytes, {-free} more than the "
                    f"store's {self.layout.capacity}",
                    None,
                    "store-full",
                )
            )
        return issues

    def _trailer_issues(self) -> list[Issue]:
        if self._trailer_checked is None:
            self._trailer_checked = self._scan_trailer()
        return self._trailer_checked

    def _scan_trailer(self) -> list[Issue]:
        layout = self.layout
        if layout.trailer != "zero" or layout.total_size <= layout.fv_length:
            return []
        at = _first_not(self._data, layout.fv_length, layout.total_size, 0x00)
        if at is None:
            return []
        return [
            Issue(
                "info",
                "bytes after the NV region are not zero (QEMU ignores them)",
                at,
                "trailer-not-zero",
            )
        ]


# -- encoding --------------------------------------------------------------------------------


def _encode_record(variable: Variable, authenticated: bool) -> bytes:
    """One record, State 0x3F, padded with 0xFF to the next 4-byte boundary."""
    name = _encode_name(variable.name)
    guid = variable.guid.bytes_le
    if authenticated:
        stamp = variable.timestamp.to_bytes() if variable.timestamp else _ZERO_TIME_BYTES
        header = lay.AUTH_HEADER.pack(
            lay.START_ID,
            lay.STATE_ADDED,
            0,
            variable.attributes,
            variable.monotonic_count,
            stamp,
            variable.pubkey_index,
            len(name),
            len(variable.data),
            guid,
        )
    else:
        header = lay.NORMAL_HEADER.pack(
            lay.START_ID, lay.STATE_ADDED, 0, variable.attributes, len(name),
            len(variable.data), guid,
        )  # fmt: skip
    size = len(header) + len(name) + len(variable.data)
    return header + name + variable.data + b"\xff" * (lay.header_align(size) - size)


def _store_header(layout: StoreLayout, authenticated: bool) -> bytes:
    signature = lay.AUTHENTICATED_VARIABLE_GUID if authenticated else lay.VARIABLE_GUID
    return lay.STORE_HEADER.pack(
        signature.bytes_le,
        layout.store_size,
        lay.VARIABLE_STORE_FORMATTED,
        lay.VARIABLE_STORE_HEALTHY,
        0,
        0,
    )


def _fv_header_template(layout: StoreLayout) -> bytes:
    """The FV header of the build's fdf template (checksum included)."""
    header = bytearray(
        lay.FV_HEADER.pack(
            bytes(16),
            _NV_GUID_BYTES,
            layout.fv_length,
            lay.FV_SIGNATURE,
            layout.fv_attributes,
            lay.FV_HEADER_SIZE + lay.BLOCK_MAP_ENTRY_SIZE * (len(layout.block_map) + 1),
            0,
            0,
            0,
            lay.FV_REVISION,
        )
    )
    for count, length in (*layout.block_map, (0, 0)):
        header += lay.BLOCK_MAP_ENTRY.pack(count, length)
    if len(header) != layout.store_offset:
        raise UsageError(
            f"layout {layout.name}: a {len(layout.block_map)}-entry block map gives an FV "
            f"header of {len(header):#x} bytes, but the store header is at "
            f"{layout.store_offset:#x}"
        )
    struct.pack_into("<H", header, lay.FV_CHECKSUM_OFFSET, lay.fv_checksum_field(header))
    return bytes(header)


def _build_blank(layout: StoreLayout, authenticated: bool) -> bytes:
    head = _fv_header_template(layout) + _store_header(layout, authenticated)
    out = [head, b"\xff" * (layout.store_end - len(head))]
    pos = layout.store_end
    for region in (layout.event_log, layout.ftw_working, layout.ftw_spare):
        if region is None:
            continue
        if region.start < pos or region.stop > layout.fv_length:
            raise UsageError(f"layout {layout.name}: regions overlap or leave the FV")
        out.append(b"\xff" * (region.start - pos))
        if region is layout.ftw_working:
            queue = len(region) - lay.FTW_WORKING_HEADER_SIZE
            out.append(lay.ftw_working_header(queue) + b"\xff" * queue)
        else:
            out.append(b"\xff" * len(region))
        pos = region.stop
    out.append(b"\xff" * (layout.fv_length - pos))
    out.append(bytes(layout.total_size - layout.fv_length))
    return b"".join(out)


# -- parsing ---------------------------------------------------------------------------------


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


class _Parser:
    """One pass over an image; collects issues as it goes."""

    def __init__(self, data: bytes, path: str | None) -> None:
        self.data = data
        self.path = path
        self.issues: list[Issue] = []
        self.repair_layout: StoreLayout | None = None

    def issue(self, severity: Severity, message: str, offset: int | None, code: str) -> Issue:
        found = Issue(severity, message, offset, code)
        self.issues.append(found)
        return found

    # -- entry ---------------------------------------------------------------------------

    def parse(self) -> VariableStore:
        data = self.data
        size = len(data)
        if size < lay.FV_HEADER_SIZE + lay.BLOCK_MAP_ENTRY_SIZE or (
            data[lay.FV_SIGNATURE_OFFSET : lay.FV_SIGNATURE_OFFSET + 4] != lay.FV_SIGNATURE
        ):
            self._no_fv()
        fv = self._fv_header()
        store_header = self._store_header(fv)
        layout = self._layout(fv, store_header)
        self._fv_checks(fv, layout)
        records, records_end, walk_end = self._records(store_header, layout)
        dirty_at = self._free_space(walk_end, layout)
        ftw = self._ftw(layout)
        self._other_regions(layout)
        self._summary(records)
        return VariableStore(
            data=data,
            layout=layout,
            fv_header=fv,
            store_header=store_header,
            records=records,
            records_end=records_end,
            free_space_dirty_at=dirty_at,
            repair_layout=self.repair_layout,
            ftw=ftw,
            issues=self.issues,
            path=self.path,
        )

    def _no_fv(self) -> None:
        data = self.data
        size = len(data)
        by_size = lay.layout_for_size(size)
        if size and data[0] in (0x00, 0xFF) and _first_not(data, 0, size, data[0]) is None:
            fill = "zero" if data[0] == 0 else "0xFF"
            if by_size is lay.AAVMF_64M and data[0] == 0:
                message = (
                    "blank AAVMF template: no firmware volume yet; the firmware formats it at "
                    "first boot (or format it now as aavmf-64m)"
                )
            elif by_size is not None:
                message = (
                    f"blank image (all {fill}): no firmware volume yet; it has the size of "
                    f"the {by_size.name} layout, which can format it"
                )
            else:
                message = f"blank image (all {fill}, {size} bytes): no firmware volume"
            raise BlankStoreError(message, layout=by_size, offset=0)
        if size < lay.FV_HEADER_SIZE + lay.BLOCK_MAP_ENTRY_SIZE:
            raise TruncatedError(
                f"{size} bytes: too small for a firmware volume header",
                structure="EFI_FIRMWARE_VOLUME_HEADER",
                offset=0,
            )
        found = data[lay.FV_SIGNATURE_OFFSET : lay.FV_SIGNATURE_OFFSET + 4]
        raise ParseError(
            f"no firmware volume header: Signature is {found!r}, expected b'_FVH' "
            "(not an edk2 variable store)",
            structure="EFI_FIRMWARE_VOLUME_HEADER",
            offset=lay.FV_SIGNATURE_OFFSET,
        )

    # -- FV header -----------------------------------------------------------------------

    def _fv_header(self) -> FvHeader:
        data = self.data
        structure = "EFI_FIRMWARE_VOLUME_HEADER"
        (zero, fs_guid, fv_length, _sig, attrs, hl, checksum, ext, reserved, revision) = (
            lay.FV_HEADER.unpack_from(data, 0)
        )
        guid = _guid(fs_guid)
        if fs_guid != _NV_GUID_BYTES:
            hint = ""
            if guid in (lay.FIRMWARE_FILE_SYSTEM2_GUID, lay.FIRMWARE_FILE_SYSTEM3_GUID):
                hint = "; this is a firmware code volume (OVMF_CODE*.fd?), not variables"
            raise ParseError(
                f"firmware volume FileSystemGuid is {_guid_label(guid)}, not "
                f"gEfiSystemNvDataFvGuid {lay.SYSTEM_NV_DATA_FV_GUID}{hint}",
                structure=structure,
                offset=lay.FV_GUID_OFFSET,
            )
        minimum = lay.FV_HEADER_SIZE + lay.BLOCK_MAP_ENTRY_SIZE
        if hl < minimum or hl % 2:
            raise ParseError(
                f"HeaderLength {hl:#x} is impossible (it is even and at least {minimum:#x})",
                structure=structure,
                offset=lay.FV_HEADER_LENGTH_OFFSET,
            )
        _within_file("HeaderLength", hl, data)
        if fv_length < hl + lay.STORE_HEADER_SIZE:
            raise ParseError(
                f"FvLength {fv_length:#x} leaves no room for a variable store after the "
                f"{hl:#x}-byte header",
                structure=structure,
                offset=lay.FV_LENGTH_OFFSET,
            )
        _within_file("FvLength", fv_length, data)
        block_map: list[tuple[int, int]] = []
        terminated = False
        pos = lay.FV_BLOCK_MAP_OFFSET
        while pos + lay.BLOCK_MAP_ENTRY_SIZE <= hl:
            count, length = lay.BLOCK_MAP_ENTRY.unpack_from(data, pos)
            pos += lay.BLOCK_MAP_ENTRY_SIZE
            if count == 0 and length == 0:
                terminated = True
                break
            block_map.append((count, length))
        return FvHeader(
            zero_vector=zero,
            file_system_guid=guid,
            fv_length=fv_length,
            attributes=attrs,
            header_length=hl,
            checksum=checksum,
            ext_header_offset=ext,
            reserved=reserved,
            revision=revision,
            block_map=tuple(block_map),
            block_map_terminated=terminated,
            checksum_valid=lay.fv_checksum(data[:hl]) == 0,
        )

    def _fv_checks(self, fv: FvHeader, layout: StoreLayout) -> None:
        if not fv.checksum_valid:
            total = lay.fv_checksum(self.data[: fv.header_length])
            self.issue(
                "error",
                f"FV header checksum is wrong (words sum to {total:#06x}, must be 0): OVMF "
                "erases the whole NV store at boot and ArmVirt re-creates it; every variable "
                "would be lost",
                lay.FV_CHECKSUM_OFFSET,
                "fv-checksum",
            )
        if any(fv.zero_vector):
            self.issue("error", "FV ZeroVector is not zero", 0, "fv-zero-vector")
        if fv.revision != lay.FV_REVISION:
            self.issue(
                "error",
                f"FV Revision is {fv.revision}, firmware requires {lay.FV_REVISION}",
                lay.FV_REVISION_OFFSET,
                "fv-revision",
            )
        if fv.ext_header_offset:
            self.issue(
                "warning",
                f"FV ExtHeaderOffset is {fv.ext_header_offset:#x}; variable FVs have none",
                lay.FV_EXT_HEADER_OFFSET_OFFSET,
                "fv-ext-header",
            )
        if not fv.block_map_terminated:
            self.issue(
                "error",
                "FV block map has no {0, 0} terminator within HeaderLength",
                lay.FV_BLOCK_MAP_OFFSET,
                "fv-block-map",
            )
        mapped = fv.block_map_length
        if mapped != fv.fv_length:
            if layout is lay.AAVMF_64M and fv.block_map == lay.AAVMF_RUNTIME_BLOCK_MAP:
                self.issue(
                    "info",
                    f"FV block map covers {mapped:#x} bytes (the whole flash device), FvLength "
                    f"{fv.fv_length:#x}: written by ArmVirt's VirtNorFlashDxe at runtime; normal",
                    lay.FV_BLOCK_MAP_OFFSET,
                    "fv-block-map-runtime",
                )
            else:
                self.issue(
                    "warning",
                    f"FV block map covers {mapped:#x} bytes but FvLength is {fv.fv_length:#x}",
                    lay.FV_BLOCK_MAP_OFFSET,
                    "fv-block-map-length",
                )
        if layout.x86_flash and fv.block_map and fv.block_map[0][1] != 0x1000:
            self.issue(
                "error",
                f"FV block size is {fv.block_map[0][1]:#x}; OVMF's flash driver requires "
                "0x1000 and erases the store otherwise",
                lay.FV_BLOCK_MAP_OFFSET + 4,
                "fv-x86-block-size",
            )
        if layout.name in lay.LAYOUTS and fv.attributes != layout.fv_attributes:
            runtime = layout is lay.AAVMF_64M and fv.attributes == lay.FV_ATTRIBUTES_ARMVIRT_RUNTIME
            self.issue(
                "info",
                f"FV attributes {fv.attributes:#x} differ from the template's "
                f"{layout.fv_attributes:#x}"
                + ("; written by VirtNorFlashDxe at runtime, normal" if runtime else ""),
                lay.FV_ATTRIBUTES_OFFSET,
                "fv-attributes",
            )

    # -- store header --------------------------------------------------------------------

    def _store_header(self, fv: FvHeader) -> StoreHeader:
        data = self.data
        hl = fv.header_length
        structure = "VARIABLE_STORE_HEADER"
        raw = data[hl : hl + lay.STORE_HEADER_SIZE]
        if raw == lay.RAW_STORE_HEADER:
            by_geometry = next(
                (
                    lt
                    for lt in lay.LAYOUTS.values()
                    if lt.total_size == len(data)
                    and lt.fv_length == fv.fv_length
                    and lt.store_offset == hl
                    and lt.trailer != "code"
                ),
                None,
            )
            raise BlankStoreError(
                "variable store header is erased (all 0xFF): no variables; the store was "
                "never formatted, or the firmware erased it after finding the FV header "
                "invalid",
                layout=by_geometry,
                offset=hl,
            )
        signature, size, fmt, state, reserved, reserved1 = lay.STORE_HEADER.unpack_from(data, hl)
        if signature not in _STORE_GUIDS:
            raise ParseError(
                f"variable store Signature is {_guid_label(_guid(signature))}, neither "
                f"gEfiAuthenticatedVariableGuid {lay.AUTHENTICATED_VARIABLE_GUID} nor "
                f"gEfiVariableGuid {lay.VARIABLE_GUID}",
                structure=structure,
                offset=hl,
            )
        if size < lay.STORE_HEADER_SIZE or hl + size > fv.fv_length:
            raise ParseError(
                f"store Size {size:#x} does not fit the FV (header at {hl:#x}, FvLength "
                f"{fv.fv_length:#x})",
                structure=structure,
                offset=hl + 16,
            )
        header = StoreHeader(_guid(signature), size, fmt, state, reserved, reserved1)
        if fmt != lay.VARIABLE_STORE_FORMATTED or state != lay.VARIABLE_STORE_HEALTHY:
            self.issue(
                "error",
                f"store header Format {fmt:#04x} / State {state:#04x}, expected 0x5a / 0xfe: "
                "the firmware treats the store as invalid",
                hl + 20,
                "store-header-state",
            )
        if reserved or reserved1:
            self.issue(
                "info", "store header Reserved fields are not zero", hl + 22, "store-reserved"
            )
        if not header.authenticated:
            self.issue(
                "warning",
                "normal (non-authenticated) record format: OVMF and ArmVirt require the "
                "authenticated format (gEfiAuthenticatedVariableGuid)",
                hl,
                "store-normal-format",
            )
        return header

    def _layout(self, fv: FvHeader, header: StoreHeader) -> StoreLayout:
        data = self.data
        hl = fv.header_length
        known = lay.match_layout(len(data), fv.fv_length, hl, header.size)
        if known is not None:
            return known
        for build in lay.LAYOUTS.values():
            if (build.total_size, build.fv_length) == (len(data), fv.fv_length):
                self.issue(
                    "error",
                    f"the image has the size of the {build.name} layout but its store header "
                    f"is at {hl:#x} with Size {header.size:#x} (the build has "
                    f"{build.store_offset:#x}, {build.store_size:#x}); the firmware asserts "
                    "or re-creates the store",
                    hl + 16,
                    "store-size",
                )
                if build.trailer != "code":
                    self.repair_layout = build
                break
        store_end = hl + header.size
        event_log: range | None = None
        working: range | None = None
        spare: range | None = None
        at = data.find(_FTW_GUID_BYTES, store_end, fv.fv_length)
        if at >= 0 and at + lay.FTW_WORKING_HEADER_SIZE <= fv.fv_length:
            (queue,) = struct.unpack_from("<Q", data, at + 24)
            if queue <= fv.fv_length - at - lay.FTW_WORKING_HEADER_SIZE:
                working = range(at, at + lay.FTW_WORKING_HEADER_SIZE + queue)
                event_log = range(store_end, at) if at > store_end else None
                spare = range(working.stop, fv.fv_length) if working.stop < fv.fv_length else None
        self.issue(
            "info",
            f"custom layout: {len(data):#x}-byte image, FvLength {fv.fv_length:#x}, store "
            f"Size {header.size:#x}"
            + ("" if working else ", no FTW working block found")
            + " (no known OVMF/ArmVirt build; size limits unknown)",
            None,
            "layout-custom",
        )
        return StoreLayout(
            name=lay.CUSTOM_LAYOUT_NAME,
            description="unrecognised geometry",
            total_size=len(data),
            fv_length=fv.fv_length,
            block_map=fv.block_map,
            fv_attributes=fv.attributes,
            store_offset=hl,
            store_size=header.size,
            event_log=event_log,
            ftw_working=working,
            ftw_spare=spare,
            max_variable_size=None,
            max_auth_variable_size=None,
            max_hw_error_variable_size=None,
            trailer="none",
        )

    # -- records -------------------------------------------------------------------------

    def _records(self, header: StoreHeader, layout: StoreLayout) -> tuple[list[Record], int, int]:
        """Walk the records; returns them, the aligned end of the last complete record and
        the offset where free space should begin."""
        data = self.data
        auth = header.authenticated
        layout_struct = lay.AUTH_HEADER if auth else lay.NORMAL_HEADER
        hsize = layout_struct.size
        end = layout.store_end
        pos = layout.records_offset
        found: list[_Raw] = []
        records_end = pos
        # Every iteration advances pos by at least the header size, so the loop runs at
        # most Size / 32 times.
        while True:
            if pos + 2 > end or data[pos : pos + 2] != lay.START_ID_BYTES:
                walk_end = pos
                break
            if pos + hsize > end:
                item = _Raw(pos, data[pos + 2] if pos + 2 < end else lay.STATE_UNWRITTEN)
                item.problems.append(self.issue(
                    "error",
                    f"record header at {pos:#x} crosses the end of the store ({end:#x})",
                    pos, "record-crosses-end",
                ))  # fmt: skip
                found.append(item)
                walk_end = end
                break
            item = _Raw(pos, 0)
            if auth:
                (_sid, item.state, item.reserved, item.attributes, item.count, stamp_raw,
                 item.index, item.name_size, item.data_size, item.guid_raw,
                 ) = layout_struct.unpack_from(data, pos)  # fmt: skip
                item.stamp = EfiTime.from_bytes(stamp_raw)
            else:
                (_sid, item.state, item.reserved, item.attributes, item.name_size,
                 item.data_size, item.guid_raw) = layout_struct.unpack_from(data, pos)  # fmt: skip
            found.append(item)
            erased = lay.ERASED_U32 in (item.name_size, item.data_size, item.attributes)
            stop = pos + hsize + item.name_size + item.data_size
            if erased or stop > end:
                if erased or item.state == lay.STATE_UNWRITTEN:
                    # VariableParsing.c: NameSizeOfVariable/DataSizeOfVariable return 0 for
                    # such a header and the walk goes on into what follows (never another
                    # header in practice): the torn tail of an interrupted write.
                    item.problems.append(self.issue(
                        "warning",
                        f"record at {pos:#x} is an interrupted write (State "
                        f"{item.state:#04x}, sizes erased or past the end): not live; the "
                        "firmware reclaims the store",
                        pos, "record-torn",
                    ))  # fmt: skip
                    walk_end = min(pos + hsize, end)
                else:
                    item.problems.append(self.issue(
                        "error",
                        f"record at {pos:#x} (NameSize {item.name_size:#x}, DataSize "
                        f"{item.data_size:#x}) runs past the end of the store at {end:#x}",
                        pos, "record-crosses-end",
                    ))  # fmt: skip
                    walk_end = end
                break
            item.valid = True
            item.name_raw = data[pos + hsize : pos + hsize + item.name_size]
            item.value = data[pos + hsize + item.name_size : stop]
            item.next_offset = lay.header_align(stop)
            self._record_checks(item, hsize)
            pad = data[stop : min(item.next_offset, end)]
            if pad.count(b"\xff") != len(pad):
                # Measured: bookworm's AAVMF_VARS.ms.fd has 0x00 pads after VendorKeysNv and
                # SecureBootEnable. The generic driver never reads pads; OVMF's
                # PlatformValidateNvVarStore (-bios flash) wants 0xFF.
                item.problems.append(self.issue(
                    "info",
                    f"record at {pos:#x}: padding after it is {pad.hex()}, not 0xff",
                    stop, "record-pad",
                ))  # fmt: skip
            if item.state == lay.STATE_UNWRITTEN:
                # Current edk2 writes the whole record with State 0xFF, then sets 0x3F
                # (Variable.c UpdateVariable): the next header would be inside its name.
                walk_end = min(item.next_offset, end)
                break
            pos = item.next_offset
            records_end = pos
        return self._finish_records(found, hsize), records_end, walk_end

    def _record_checks(self, item: _Raw, hsize: int) -> None:
        pos = item.offset
        state = item.state
        add = item.problems.append
        if state == lay.STATE_UNWRITTEN:
            add(self.issue(
                "warning",
                f"record at {pos:#x} is an interrupted write (State 0xff: header and data "
                "written, never marked added): not live; the firmware reclaims the store",
                pos, "record-torn",
            ))  # fmt: skip
        elif state not in lay.STATE_NAMES:
            add(self.issue(
                "error",
                f"record at {pos:#x} has invalid State {state:#04x}; VirtNorFlashDxe and "
                "PlatformInitLib reject the whole store",
                pos + lay.STATE_OFFSET, "record-state",
            ))  # fmt: skip
        elif state == lay.VAR_HEADER_VALID_ONLY:
            add(self.issue(
                "warning",
                f"record at {pos:#x} has State 0x7f (header written, data not): not live",
                pos + lay.STATE_OFFSET, "record-header-only",
            ))  # fmt: skip
        if item.reserved:
            add(self.issue(
                "warning", f"record at {pos:#x} has Reserved {item.reserved:#04x}, not 0",
                pos + 3, "record-reserved",
            ))  # fmt: skip
        if item.name_size % 2 or item.name_size < 4:
            add(self.issue(
                "error",
                f"record at {pos:#x} has NameSize {item.name_size} (must be even and at "
                "least 4)",
                pos, "record-name-size",
            ))  # fmt: skip
        elif item.name_raw[-2:] != b"\0\0":
            add(self.issue(
                "error",
                f"record at {pos:#x}: name is not NUL-terminated; strict firmware "
                "validators reject the store",
                pos + hsize, "record-name-nul",
            ))  # fmt: skip

    def _finish_records(self, found: list[_Raw], hsize: int) -> list[Record]:
        # FindVariableEx: the first 0x3F record of a key, else the last 0x3E one; keys are
        # the GUID and the NameSize bytes of the name.
        first_added: dict[tuple[bytes, bytes], int] = {}
        last_transition: dict[tuple[bytes, bytes], int] = {}
        for i, item in enumerate(found):
            if not item.valid:
                continue
            key = (item.guid_raw, item.name_raw)
            if item.state == lay.STATE_ADDED:
                if key in first_added:
                    self.issue(
                        "warning",
                        f"record at {item.offset:#x} repeats the live variable at "
                        f"{found[first_added[key]].offset:#x} (both State 0x3f); the firmware "
                        "only sees the first",
                        item.offset,
                        "record-duplicate",
                    )
                else:
                    first_added[key] = i
            elif item.state == lay.STATE_IN_TRANSITION:
                last_transition[key] = i
        live = set(first_added.values())
        for key, i in last_transition.items():
            offset = found[i].offset
            if key in first_added:
                self.issue(
                    "info",
                    f"record at {offset:#x} is the old copy of an interrupted update "
                    "(State 0x3e with a 0x3f successor): not live",
                    offset,
                    "record-in-transition-old",
                )
            else:
                live.add(i)
                self.issue(
                    "info",
                    f"record at {offset:#x} is in transition (State 0x3e: an update was "
                    "interrupted before the new copy was written): live; Reclaim keeps it",
                    offset,
                    "record-in-transition-live",
                )
        records: list[Record] = []
        for i, item in enumerate(found):
            variable = None
            if item.valid:
                name_raw = item.name_raw
                text = name_raw[: len(name_raw) & ~1].decode("utf-16-le", "surrogatepass")
                if name_raw[-2:] == b"\0\0" and len(name_raw) % 2 == 0:
                    text = text[:-1]
                variable = Variable(
                    name=text,
                    guid=_guid(item.guid_raw),
                    attributes=item.attributes,
                    data=item.value,
                    timestamp=item.stamp,
                    monotonic_count=item.count,
                    pubkey_index=item.index,
                    state=item.state,
                    offset=item.offset,
                )
                if i in live:
                    item.problems.extend(self._variable_problems(variable))
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

    def _variable_problems(self, variable: Variable) -> list[Issue]:
        found: list[Issue] = []
        attrs = variable.attributes
        offset = variable.offset
        stamp = variable.timestamp
        if (
            stamp is not None
            and not attrs & TIME_BASED_AUTHENTICATED_WRITE_ACCESS
            and not (stamp.is_zero)
        ):
            found.append(self.issue(
                "info",
                f"variable {variable.name} at {offset:#x} has a TimeStamp without the "
                "TIME_BASED_AUTHENTICATED_WRITE_ACCESS attribute (edk2 writes zero)",
                offset, "variable-stray-timestamp",
            ))  # fmt: skip
        if (variable.monotonic_count or variable.pubkey_index) and not (
            attrs & AUTHENTICATED_WRITE_ACCESS
        ):
            found.append(self.issue(
                "info",
                f"variable {variable.name} at {offset:#x} has MonotonicCount/PubKeyIndex set "
                "(edk2 writes zero)",
                offset, "variable-stray-count",
            ))  # fmt: skip
        if not attrs & NON_VOLATILE:
            found.append(self.issue(
                "warning",
                f"variable {variable.name} at {offset:#x} lacks NON_VOLATILE ({attrs:#x})",
                offset, "variable-volatile",
            ))  # fmt: skip
        return found

    def _free_space(self, walk_end: int, layout: StoreLayout) -> int | None:
        at = _first_not(self.data, walk_end, layout.store_end, 0xFF)
        if at is None:
            return None
        dirty = _count_not(self.data, at, layout.store_end, 0xFF)
        self.issue(
            "warning",
            f"free space is not erased: {dirty} non-0xFF bytes from {at:#x} (after the last "
            "record); the firmware reclaims the store at next boot",
            at,
            "free-space-dirty",
        )
        return at

    # -- FTW -----------------------------------------------------------------------------

    def _ftw(self, layout: StoreLayout) -> FtwWorkingBlock | None:
        region = layout.ftw_working
        if region is None:
            return None
        data = self.data
        base = region.start
        size = len(region)
        signature, crc, state, _res, queue = lay.FTW_WORKING_HEADER.unpack_from(data, base)
        expected = lay.ftw_working_header(size - lay.FTW_WORKING_HEADER_SIZE)
        expected_crc = int(struct.unpack_from("<I", expected, 16)[0])
        pristine = data[base : base + lay.FTW_WORKING_HEADER_SIZE] == expected
        queue_blank = _first_not(data, base + lay.FTW_WORKING_HEADER_SIZE, region.stop, 0xFF)
        spare = layout.ftw_spare
        spare_blank: bool | None = None
        spare_working = False
        if spare is not None:
            spare_blank = _first_not(data, spare.start, spare.stop, 0xFF) is None
            if not spare_blank and len(spare) >= lay.FTW_WORKING_HEADER_SIZE:
                spare_working = (
                    data[spare.start : spare.start + lay.FTW_WORKING_HEADER_SIZE] == expected
                )
        writes: list[FtwWrite] = []
        pending: FtwRecord | None = None
        aborted = False
        if signature == _FTW_GUID_BYTES and queue_blank is not None:
            writes, pending, aborted = self._ftw_queue(base, size)
        block = FtwWorkingBlock(
            offset=base,
            size=size,
            signature_valid=signature == _FTW_GUID_BYTES,
            crc=crc,
            expected_crc=expected_crc,
            state=state,
            write_queue_size=queue,
            header_pristine=pristine,
            queue_blank=queue_blank is None,
            writes=tuple(writes),
            pending=pending,
            aborted=aborted,
            spare_blank=spare_blank,
            spare_has_working_header=spare_working,
        )
        self._ftw_issues(block, layout)
        return block

    def _ftw_queue(self, base: int, size: int) -> tuple[list[FtwWrite], FtwRecord | None, bool]:
        """FtwMisc.c: FtwGetLastWriteHeader / FtwGetLastWriteRecord and InitFtwProtocol."""
        data = self.data
        writes: list[FtwWrite] = []
        last: FtwWrite | None = None
        off = lay.FTW_WORKING_HEADER_SIZE
        while off + lay.FTW_WRITE_HEADER_SIZE <= size:
            bits, caller, count, private = lay.FTW_WRITE_HEADER.unpack_from(data, base + off)
            if bits == lay.ERASED:
                break  # an empty header slot: nothing allocated after this
            record_size = lay.FTW_WRITE_RECORD_SIZE + private
            room = (size - off - lay.FTW_WRITE_HEADER_SIZE) // record_size
            records = []
            for n in range(min(count, room)):
                at = base + off + lay.FTW_WRITE_HEADER_SIZE + n * record_size
                rbits, lba, block_offset, length, relative = lay.FTW_WRITE_RECORD.unpack_from(
                    data, at
                )
                records.append(
                    FtwRecord(
                        offset=at,
                        boot_block_update=not rbits & lay.FTW_BOOT_BLOCK_UPDATE,
                        spare_complete=not rbits & lay.FTW_SPARE_COMPLETE,
                        destination_complete=not rbits & lay.FTW_DESTINATION_COMPLETE,
                        lba=lba,
                        block_offset=block_offset,
                        length=length,
                        relative_offset=relative,
                    )
                )
            write = FtwWrite(
                offset=base + off,
                header_allocated=not bits & lay.FTW_HEADER_ALLOCATED,
                writes_allocated=not bits & lay.FTW_WRITES_ALLOCATED,
                complete=not bits & lay.FTW_COMPLETE,
                caller_id=_guid(caller),
                number_of_writes=count,
                private_data_size=private,
                records=tuple(records),
            )
            writes.append(write)
            if not write.complete:
                last = write
                break
            off += lay.FTW_WRITE_HEADER_SIZE + count * record_size
        if last is None or not last.header_allocated or not last.records:
            return writes, None, False
        record = next((r for r in last.records if not r.destination_complete), last.records[-1])
        if record.spare_complete:
            return writes, record, False
        return writes, None, True

    def _ftw_issues(self, block: FtwWorkingBlock, layout: StoreLayout) -> None:
        base = block.offset
        if not block.signature_valid:
            where = (
                "the spare holds a valid working header, which the firmware copies back"
                if block.spare_has_working_header
                else "the firmware re-creates it at boot (harmless for variables)"
            )
            self.issue(
                "warning", f"FTW working block has no valid signature; {where}", base,
                "ftw-signature",
            )  # fmt: skip
        elif not block.header_pristine:
            self.issue(
                "warning",
                f"FTW working block header differs from what the driver computes (Crc "
                f"{block.crc:#x}, expected {block.expected_crc:#x}; state {block.state:#04x}); "
                "the firmware treats it as invalid and re-creates it",
                base,
                "ftw-header",
            )
        if block.pending is not None:
            record = block.pending
            self.issue(
                "error",
                "FTW write pending: at next boot the firmware copies the spare block over LBA "
                f"{record.lba:#x} offset {record.block_offset:#x} ({record.length:#x} bytes), "
                "overwriting the variable store in this file; boot the VM once so it "
                "completes, or rewrite with repair (drops the pending write)",
                record.offset,
                "ftw-pending",
            )
        elif block.aborted:
            self.issue(
                "info",
                "FTW queue ends in a write whose spare copy never completed; the firmware "
                "discards it (harmless)",
                block.writes[-1].offset if block.writes else base,
                "ftw-aborted",
            )
        if block.completed_writes:
            self.issue(
                "info",
                f"FTW write queue holds {block.completed_writes} completed write(s) (left by "
                "the firmware's reclaim); harmless",
                base + lay.FTW_WORKING_HEADER_SIZE,
                "ftw-completed",
            )
        elif block.signature_valid and not block.queue_blank and not block.writes:
            self.issue(
                "info",
                "FTW write queue is not blank after the header; the firmware reclaims it",
                base + lay.FTW_WORKING_HEADER_SIZE,
                "ftw-queue-dirty",
            )
        if block.spare_blank is False and layout.ftw_spare is not None:
            self.issue(
                "info",
                "FTW spare area is not erased (scratch space; harmless unless a write is pending)",
                layout.ftw_spare.start,
                "ftw-spare",
            )

    def _other_regions(self, layout: StoreLayout) -> None:
        region = layout.event_log
        if region is None:
            return
        at = _first_not(self.data, region.start, region.stop, 0xFF)
        if at is not None:
            self.issue("info", "event-log area is not erased", at, "event-log-dirty")

    def _summary(self, records: list[Record]) -> None:
        counts: dict[str, int] = {}
        for record in records:
            counts[record.state_name] = counts.get(record.state_name, 0) + 1
        live = sum(1 for r in records if r.live)
        detail = ", ".join(f"{n} {name}" for name, n in counts.items())
        self.issue(
            "info",
            f"{len(records)} records, {live} live" + (f" ({detail})" if detail else ""),
            None,
            "summary",
        )


# -- sniffing --------------------------------------------------------------------------------


def is_varstore(data: bytes | bytearray | memoryview) -> bool:
    """Cheap sniff: an FV with the ``_FVH`` signature and gEfiSystemNvDataFvGuid at offset
    0, or a 64 MiB image that starts and ends with zeros (the blank AAVMF template, which
    :meth:`VariableStore.parse` reports as :class:`BlankStoreError`)."""
    view = memoryview(data)
    if len(view) < lay.FV_HEADER_SIZE:
        return False
    if (
        bytes(view[lay.FV_SIGNATURE_OFFSET : lay.FV_SIGNATURE_OFFSET + 4]) == lay.FV_SIGNATURE
        and bytes(view[lay.FV_GUID_OFFSET : lay.FV_GUID_OFFSET + 16]) == _NV_GUID_BYTES
    ):
        return True
    if len(view) == lay.AAVMF_64M.total_size:
        zero = _FILL[0x00][:4096]
        return bytes(view[:4096]) == zero and bytes(view[-4096:]) == zero
    return False


__all__ = [
    "BlankStoreError",
    "DamagedStoreError",
    "FtwRecord",
    "FtwWorkingBlock",
    "FtwWrite",
    "FvHeader",
    "Issue",
    "Record",
    "Severity",
    "StoreFullError",
    "StoreHeader",
    "StoreLayout",
    "Variable",
    "VariableStore",
    "VariableTooLargeError",
    "attribute_names",
    "is_varstore",
]
