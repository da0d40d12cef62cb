"""Every finding a variable-store check can report, declared once: code, severity, meaning.

The parser (:mod:`.parse`, :mod:`.records`, :mod:`.ftw`) and :meth:`VariableStore.check
<fwtools.formats.varstore.store.VariableStore.check>` name an entry of this table when they
report something; the entry gives the stable ``code`` and the ``severity`` on the shared scale
(:mod:`fwtools._base.severity`): ``error`` the firmware refuses the store or loses data,
``warning`` it copes but something is off, ``note`` for the record. The message of each
:class:`~fwtools.formats.varstore.model.Issue` says what was found where; the description here
says what the code means in general. ``docs/varstore-format.md`` holds the same table,
checked against this one by ``tests/formats/varstore/test_issue_table.py``.
"""

from __future__ import annotations

from typing import Final

from fwtools._base.severity import Severity
from fwtools.formats.varstore.model import Issue


class IssueKind:
    """One row of the table: a stable ``code``, its ``severity`` and a ``description``."""

    __slots__ = ("code", "description", "severity")

    def __init__(self, code: str, severity: Severity, description: str) -> None:
        self.code = code
        self.severity: Severity = severity
        self.description = description

    def __repr__(self) -> str:
        return f"IssueKind({self.code!r}, {self.severity!r})"

    def __call__(self, message: str, offset: int | None = None) -> Issue:
        """An :class:`Issue` of this kind: ``message`` and the absolute file offset."""
        return Issue(self.severity, message, offset, self.code)


class Findings:
    """The issues one parse collects, in the order found."""

    __slots__ = ("issues",)

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(self, kind: IssueKind, message: str, offset: int | None) -> Issue:
        found = kind(message, offset)
        self.issues.append(found)
        return found


# -- firmware volume header (PiFirmwareVolume.h) ---------------------------------------------

FV_CHECKSUM: Final = IssueKind(
    "fv-checksum", "error",
    "The FV header's words do not sum to 0: OVMF erases the whole NV store at boot and "
    "ArmVirt re-creates it, so every variable is lost.",
)
FV_ZERO_VECTOR: Final = IssueKind(
    "fv-zero-vector", "error", "The FV header's ZeroVector is not zero.")
FV_REVISION: Final = IssueKind(
    "fv-revision", "error", "The FV header's Revision is not 2 (EFI_FVH_REVISION).")
FV_EXT_HEADER: Final = IssueKind(
    "fv-ext-header", "warning", "The FV header has an ExtHeaderOffset; variable FVs have none.")
FV_BLOCK_MAP: Final = IssueKind(
    "fv-block-map", "error", "The FV block map has no {0, 0} terminator within HeaderLength.")
FV_BLOCK_MAP_RUNTIME: Final = IssueKind(
    "fv-block-map-runtime", "note",
    "The block map covers the whole 64 MiB flash device, not FvLength: what ArmVirt's "
    "VirtNorFlashDxe writes when it formats the store at runtime; normal.",
)
FV_BLOCK_MAP_LENGTH: Final = IssueKind(
    "fv-block-map-length", "warning", "The FV block map covers more or less than FvLength.")
FV_X86_BLOCK_SIZE: Final = IssueKind(
    "fv-x86-block-size", "error",
    "The block size is not 0x1000: OVMF's flash driver erases such a store.",
)
FV_ATTRIBUTES: Final = IssueKind(
    "fv-attributes", "note",
    "The FV attributes differ from the build's template (0xE36 is VirtNorFlashDxe's, normal).",
)

# -- variable store header (VariableFormat.h) ------------------------------------------------

STORE_HEADER_STATE: Final = IssueKind(
    "store-header-state", "error",
    "The store header's Format/State is not 0x5A/0xFE: the firmware treats the store as "
    "invalid.",
)
STORE_RESERVED: Final = IssueKind(
    "store-reserved", "note", "The store header's Reserved fields are not zero.")
STORE_NORMAL_FORMAT: Final = IssueKind(
    "store-normal-format", "warning",
    "The store uses the normal record format (gEfiVariableGuid); OVMF and ArmVirt require "
    "the authenticated one.",
)
STORE_SIZE: Final = IssueKind(
    "store-size", "error",
    "The image has the size of a known build but its store header is elsewhere or has "
    "another Size: the firmware asserts or re-creates the store.",
)
LAYOUT_CUSTOM: Final = IssueKind(
    "layout-custom", "note",
    "The geometry is no known OVMF/ArmVirt build; regions are found from the headers and "
    "the size limits are unknown.",
)

# -- variable records (VariableFormat.h, VariableParsing.c) ----------------------------------

RECORD_CROSSES_END: Final = IssueKind(
    "record-crosses-end", "error",
    "A record header, or the name and data it announces, runs past the end of the store.",
)
RECORD_TORN: Final = IssueKind(
    "record-torn", "warning",
    "An interrupted write (State 0xFF or erased sizes): not live; the firmware reclaims the "
    "store.",
)
RECORD_PAD: Final = IssueKind(
    "record-pad", "note",
    "The alignment padding after a record is not 0xFF (the generic driver never reads it; "
    "OVMF's -bios flash check wants 0xFF).",
)
RECORD_STATE: Final = IssueKind(
    "record-state", "error",
    "A record's State is no valid value: VirtNorFlashDxe and PlatformInitLib reject the "
    "whole store.",
)
RECORD_HEADER_ONLY: Final = IssueKind(
    "record-header-only", "warning",
    "A record has State 0x7F (header written, data not): not live.",
)
RECORD_RESERVED: Final = IssueKind(
    "record-reserved", "warning", "A record header's Reserved byte is not 0.")
RECORD_NAME_SIZE: Final = IssueKind(
    "record-name-size", "error", "A record's NameSize is odd or less than 4.")
RECORD_NAME_NUL: Final = IssueKind(
    "record-name-nul", "error",
    "A record's name has no terminating NUL: strict firmware validators reject the store.",
)
RECORD_DUPLICATE: Final = IssueKind(
    "record-duplicate", "warning",
    "Two live (State 0x3F) records of one variable: the firmware only sees the first.",
)
RECORD_IN_TRANSITION_OLD: Final = IssueKind(
    "record-in-transition-old", "note",
    "The old copy of an interrupted update (State 0x3E with a 0x3F successor): not live.",
)
RECORD_IN_TRANSITION_LIVE: Final = IssueKind(
    "record-in-transition-live", "note",
    "An update interrupted before the new copy was written (State 0x3E, no successor): "
    "live; Reclaim keeps it.",
)
VARIABLE_STRAY_TIMESTAMP: Final = IssueKind(
    "variable-stray-timestamp", "note",
    "A TimeStamp on a variable without TIME_BASED_AUTHENTICATED_WRITE_ACCESS (edk2 writes "
    "zero).",
)
VARIABLE_STRAY_COUNT: Final = IssueKind(
    "variable-stray-count", "note",
    "MonotonicCount or PubKeyIndex on a variable without AUTHENTICATED_WRITE_ACCESS (edk2 "
    "writes zero).",
)
VARIABLE_VOLATILE: Final = IssueKind(
    "variable-volatile", "warning", "A stored variable lacks NON_VOLATILE.")
FREE_SPACE_DIRTY: Final = IssueKind(
    "free-space-dirty", "warning",
    "The free space after the last record is not erased: the firmware reclaims the store at "
    "next boot.",
)

# -- FTW working block and the other regions (FaultTolerantWriteDxe) -------------------------

FTW_SIGNATURE: Final = IssueKind(
    "ftw-signature", "warning",
    "The FTW working block has no valid signature; the firmware restores it from the spare "
    "or re-creates it (harmless for variables).",
)
FTW_HEADER: Final = IssueKind(
    "ftw-header", "warning",
    "The FTW working block header differs from what the driver computes: the firmware "
    "re-creates it.",
)
FTW_PENDING: Final = IssueKind(
    "ftw-pending", "error",
    "An FTW write is pending: at next boot the firmware copies the spare block over its "
    "target, overwriting the variable store in this file.",
)
FTW_ABORTED: Final = IssueKind(
    "ftw-aborted", "note",
    "The FTW queue ends in a write whose spare copy never completed; the firmware discards "
    "it.",
)
FTW_COMPLETED: Final = IssueKind(
    "ftw-completed", "note", "The FTW queue holds completed writes (left by a reclaim).")
FTW_QUEUE_DIRTY: Final = IssueKind(
    "ftw-queue-dirty", "note",
    "The FTW write queue is not blank after the header; the firmware reclaims it.",
)
FTW_SPARE: Final = IssueKind(
    "ftw-spare", "note",
    "The FTW spare area is not erased (scratch space; harmless unless a write is pending).",
)
EVENT_LOG_DIRTY: Final = IssueKind(
    "event-log-dirty", "note", "OVMF's event-log area is not erased.")
TRAILER_NOT_ZERO: Final = IssueKind(
    "trailer-not-zero", "note",
    "Bytes after the NV region of a 64 MiB ArmVirt image are not zero (QEMU ignores them).",
)
SUMMARY: Final = IssueKind(
    "summary", "note", "How many records the store holds, how many are live, and their states.")

# -- the current variables (VariableStore.check) ---------------------------------------------

VARIABLE_TOO_LARGE: Final = IssueKind(
    "variable-too-large", "warning",
    "A variable's record is over the build's PcdMaxVariableSize / PcdMaxAuthVariableSize: "
    "the firmware reads it but refuses to update or append to it.",
)
STORE_FULL: Final = IssueKind(
    "store-full", "error", "The variables need more record space than the store has.")

# The table, in the order of docs/varstore-format.md.
ISSUE_KINDS: Final[tuple[IssueKind, ...]] = (
    FV_CHECKSUM, FV_ZERO_VECTOR, FV_REVISION, FV_EXT_HEADER, FV_BLOCK_MAP,
    FV_BLOCK_MAP_RUNTIME, FV_BLOCK_MAP_LENGTH, FV_X86_BLOCK_SIZE, FV_ATTRIBUTES,
    STORE_HEADER_STATE, STORE_RESERVED, STORE_NORMAL_FORMAT, STORE_SIZE, LAYOUT_CUSTOM,
    RECORD_CROSSES_END, RECORD_TORN, RECORD_PAD, RECORD_STATE, RECORD_HEADER_ONLY,
    RECORD_RESERVED, RECORD_NAME_SIZE, RECORD_NAME_NUL, RECORD_DUPLICATE,
    RECORD_IN_TRANSITION_OLD, RECORD_IN_TRANSITION_LIVE, VARIABLE_STRAY_TIMESTAMP,
    VARIABLE_STRAY_COUNT, VARIABLE_VOLATILE, FREE_SPACE_DIRTY,
    FTW_SIGNATURE, FTW_HEADER, FTW_PENDING, FTW_ABORTED, FTW_COMPLETED, FTW_QUEUE_DIRTY,
    FTW_SPARE, EVENT_LOG_DIRTY, TRAILER_NOT_ZERO, SUMMARY,
    VARIABLE_TOO_LARGE, STORE_FULL,
)
BY_CODE: Final[dict[str, IssueKind]] = {kind.code: kind for kind in ISSUE_KINDS}

# What a broken FV header looks like: with repair, a known layout's header is rebuilt from
# the build's template when the parse reported one of these (at error level).
FV_HEADER_BROKEN: Final[frozenset[str]] = frozenset(
    kind.code for kind in (FV_ZERO_VECTOR, FV_REVISION, FV_BLOCK_MAP, FV_X86_BLOCK_SIZE)
)


def kind_of(issue: Issue) -> IssueKind:
    """The table entry of ``issue`` (KeyError for an issue not made from the table)."""
    return BY_CODE[issue.code]
