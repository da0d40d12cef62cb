"""edk2 variable stores: the raw flash image (``OVMF_VARS*.fd``, ``AAVMF_VARS*.fd``).

- :mod:`.layout`: every structure and constant (FV header, store header, record headers,
  states, FTW working block) and the known layouts (:data:`~.layout.LAYOUTS`), spec-cited;
- :mod:`.edk2`: :class:`VariableStore` (parse, edit, compact and write, check),
  :class:`Variable`, :class:`Record`, :func:`is_varstore`.

Quick use::

    store = VariableStore.parse(data, path="OVMF_VARS_4M.ms.fd")
    pk = store.get("PK", guids.EFI_GLOBAL_VARIABLE)
    store.set(Variable("Foo", guid, 0x7, b"\\x01"))
    image = store.to_bytes()          # compacted the way edk2's Reclaim leaves a store
    for issue in store.check(): ...
"""

from fwtools.formats.efi.authvar import attribute_names
from fwtools.formats.varstore.edk2 import (
    BlankStoreError,
    DamagedStoreError,
    FtwRecord,
    FtwWorkingBlock,
    FtwWrite,
    FvHeader,
    Issue,
    Record,
    Severity,
    StoreFullError,
    StoreHeader,
    Variable,
    VariableStore,
    VariableTooLargeError,
    is_varstore,
)
from fwtools.formats.varstore.layout import LAYOUTS, StoreLayout, layout_by_name

__all__ = [
    "LAYOUTS",
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
    "layout_by_name",
]
