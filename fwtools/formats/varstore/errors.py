"""The errors of the variable-store library: a store without variables yet, a store or a
variable too large, and a damaged store that rewriting would silently change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fwtools.errors import FwError, ParseError

if TYPE_CHECKING:
    import uuid

    from fwtools.formats.varstore.layout import StoreLayout
    from fwtools.formats.varstore.model import Issue


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


__all__ = ["BlankStoreError", "DamagedStoreError", "StoreFullError", "VariableTooLargeError"]
