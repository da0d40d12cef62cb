"""The value objects of an edk2 variable store: a variable, a record as found, the FV and
store headers as found, and one finding of a check (:class:`Issue`).

All immutable: frozen value classes (:class:`fwtools._base.record.Record`, edited with
``fwtools._base.record.replace``, serialised by ``report.jsonable``), which cost a third of
a named tuple to define at import. The store (:mod:`.store`) keeps them, the parser
(:mod:`.parse`, :mod:`.records`) builds them; the FTW working block's objects are in
:mod:`.ftw`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from fwtools._base.record import Record as Value
from fwtools._base.severity import Severity
from fwtools.formats.efi.authvar import attribute_names
from fwtools.formats.varstore import layout as lay

if TYPE_CHECKING:
    from fwtools._base.efitime import EfiTime

Key = tuple[uuid.UUID, str]


def encode_name(name: str) -> bytes:
    """A variable name as stored: UCS-2LE with the terminating NUL."""
    # surrogatepass keeps names read from a store byte-exact (edk2 compares bytes).
    return name.encode("utf-16-le", "surrogatepass") + lay.NAME_NUL


class Issue(Value):
    """One finding of :meth:`VariableStore.check`: ``severity`` (``error``: the firmware
    refuses or loses data; ``warning``: the firmware copes but something is off; ``note``),
    a sentence, the absolute file offset it concerns and a stable ``code``. Every code and its
    severity are declared once, in :mod:`fwtools.formats.varstore.issues`."""

    severity: Severity
    message: str
    offset: int | None = None
    code: str = ""


class Variable(Value):
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
        return encode_name(self.name)

    def record_size(self, authenticated: bool = True) -> int:
        """Header + name + data: the size edk2 checks against its variable size limits."""
        header = lay.AUTH_HEADER_SIZE if authenticated else lay.NORMAL_HEADER_SIZE
        return header + len(self.name_bytes) + len(self.data)


class Record(Value):
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


class FvHeader(Value):
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


class StoreHeader(Value):
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


__all__ = [
    "FvHeader",
    "Issue",
    "Key",
    "Record",
    "Severity",
    "StoreHeader",
    "Variable",
    "encode_name",
]
