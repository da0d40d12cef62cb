"""The edk2 raw variable store (``OVMF_VARS*.fd``, ``AAVMF_VARS*.fd``): parse, edit, write.

The model follows edk2's own code, one module per job:

- :mod:`.layout` declares every structure (FV header, store header, record headers, FTW
  structures) and the known layouts; :mod:`.model` the value objects; :mod:`.errors` the
  errors; :mod:`.issues` every finding with its code and severity.
- Reading (:mod:`.parse`, :mod:`.records`, :mod:`.ftw`) walks records from the first
  aligned header until StartId is not 0x55AA or the store ends (``VariableParsing.c``:
  ``IsValidVariableHeader``, ``GetNextVariablePtr``) and decides what is live the way
  ``FindVariableEx`` does: the first 0x3F record of a key, else the last 0x3E one. Keys are
  (VendorGuid, name) compared byte for byte.
- Damage the firmware itself tolerates (deleted and in-transition records, an interrupted
  write with State 0xFF, non-0xFF free space, a used FTW queue) is reported by
  :meth:`VariableStore.check`, never raised. :class:`ParseError` is raised only when no
  store can be read at all (not an NV firmware volume, truncated, store header invalid);
  ``parse(strict=True)`` also raises for every error-level issue, the way edk2's strict
  validators (``VirtNorFlashDxe:ValidateFvHeader``, ``PlatformInitLib``) refuse a store.
- Editing applies SetVariable's rules (:mod:`.setvar`). Writing an edited store
  (:mod:`.reclaim`) emits it compacted, as edk2's ``Reclaim`` leaves it: the live variables
  in store order (replaced ones in place, new ones appended) all with State 0x3F, 4-byte
  aligned, pads and free space 0xFF, the FV header kept (checksum recomputed), a fresh
  store header, the event log 0xFF, the FTW working block pristine (the header the driver
  computes, then 0xFF) and the spare 0xFF. An unchanged store is written back byte for
  byte.
- A store with error-level issues (bad FV checksum, invalid record states, names without
  their NUL, a pending FTW write, ...) is not rewritten unless the caller passes
  ``repair=True``: compacting it would silently change what the firmware sees.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fwtools.errors import ParseError, UsageError
from fwtools.formats.varstore import issues as iss
from fwtools.formats.varstore import layout as lay
from fwtools.formats.varstore.bytescan import first_not
from fwtools.formats.varstore.errors import DamagedStoreError
from fwtools.formats.varstore.layout import StoreLayout
from fwtools.formats.varstore.model import Issue, Key, Variable
from fwtools.formats.varstore.parse import parse_image

if TYPE_CHECKING:
    from fwtools.formats.varstore.ftw import FtwWorkingBlock
    from fwtools.formats.varstore.model import FvHeader, Record, StoreHeader


def _resolve_layout(layout: str | StoreLayout) -> StoreLayout:
    if isinstance(layout, StoreLayout):
        return layout
    found = lay.layout_by_name(layout)
    if found is None:
        raise UsageError(
            f"unknown variable store layout {layout!r} (known: {', '.join(lay.LAYOUTS)})"
        )
    return found


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
            parsed = parse_image(raw)
        except ParseError as exc:
            raise (exc.with_path(path) if path is not None else exc) from None
        except (struct.error, IndexError, ValueError, OverflowError) as exc:  # pragma: no cover
            # A safety net: every read above is bounds-checked, so this is a bug, but the
            # contract (ParseError for any input) holds even then.
            raise ParseError(
                f"internal parse failure: {exc}", structure="variable store", path=path
            ) from exc
        store = cls(
            data=raw,
            layout=parsed.layout,
            fv_header=parsed.fv_header,
            store_header=parsed.store_header,
            records=parsed.records,
            records_end=parsed.records_end,
            free_space_dirty_at=parsed.free_space_dirty_at,
            repair_layout=parsed.repair_layout,
            ftw=parsed.ftw,
            issues=parsed.issues,
            path=path,
        )
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
        from fwtools.formats.varstore.reclaim import build_blank

        return cls.parse(build_blank(target, authenticated))

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
        auth = self.authenticated
        from fwtools.formats.varstore.setvar import check_limit, normalised, validated

        new = validated(variable, auth)
        check_limit(self.layout, new, auth)
        old = self._vars.get(new.key)
        if old is not None and normalised(old, auth) == new:
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
        from fwtools.formats.varstore.reclaim import compose
        from fwtools.formats.varstore.setvar import check_limit

        if not self._modified and not repair:
            return self._data
        if not repair:
            blocking = [i for i in self._issues if i.severity == "error"]
            if blocking:
                raise DamagedStoreError(blocking)
        for key in self._changed:
            check_limit(self.layout, self._vars[key], self.authenticated)
        layout = self.layout
        if repair and self._repair_layout is not None:
            layout = self._repair_layout
        return compose(
            self._data,
            self.fv_header.header_length,
            layout,
            self.authenticated,
            self.reclaim_order(),
            template_fv_header=(
                repair and layout.name in lay.LAYOUTS and self._fv_header_broken()
            ),
        )

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
        return any(
            i.code in iss.FV_HEADER_BROKEN and i.severity == "error" for i in self._issues
        )

    # -- checking ------------------------------------------------------------------------

    def check(self) -> list[Issue]:
        """Integrity report of the parsed image, then of the current variables (sizes
        against the build's limits, whether they fit). Errors are what makes firmware
        refuse the store or lose data; warnings what it copes with; notes the rest (the
        codes and their severities: :mod:`fwtools.formats.varstore.issues`)."""
        from fwtools.formats.varstore.setvar import size_limit

        issues = list(self._issues)
        issues.extend(self._trailer_issues())
        auth = self.authenticated
        for variable in self._vars.values():
            found = size_limit(self.layout, variable.attributes)
            if found is None:
                continue
            limit, pcd = found
            size = variable.record_size(auth)
            if size > limit:
                issues.append(
                    iss.VARIABLE_TOO_LARGE(
                        f"variable {variable.name} ({variable.guid}) has a {size}-byte record, "
                        f"over the build's {pcd} ({limit}); the firmware reads it but refuses "
                        "to update or append to it",
                        variable.offset,
                    )
                )
        free = self.free_space()
        if free < 0:
            issues.append(
                iss.STORE_FULL(
                    f"the variables need {self.used_space()} bytes, {-free} more than the "
                    f"store's {self.layout.capacity}"
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
        at = first_not(self._data, layout.fv_length, layout.total_size, 0x00)
        if at is None:
            return []
        return [
            iss.TRAILER_NOT_ZERO("bytes after the NV region are not zero (QEMU ignores them)", at)
        ]


__all__ = ["VariableStore"]
