"""edk2 variable stores: the raw flash image (``OVMF_VARS*.fd``, ``AAVMF_VARS*.fd``).

One module per job:

- :mod:`.layout`: every structure (FV header, block map, store header, record headers, FTW
  working block, write headers and records, each a :class:`~fwtools._base.layout.Layout`)
  and the known layouts (:data:`~.layout.LAYOUTS`), spec-cited;
- :mod:`.model`: :class:`Variable`, :class:`Record`, :class:`Issue`, the headers as found;
- :mod:`.errors`: :class:`BlankStoreError`, :class:`StoreFullError`,
  :class:`VariableTooLargeError`, :class:`DamagedStoreError`;
- :mod:`.issues`: every finding a check reports (code, severity, description), once;
- :mod:`.store`: :class:`VariableStore` (parse, edit, compact and write, check);
- :mod:`.parse` and :mod:`.records` read an image, :mod:`.ftw` its FTW working block,
  :mod:`.setvar` holds SetVariable's rules and :mod:`.reclaim` writes an image;
- :mod:`.jsonform`, :mod:`.storeio` and :mod:`.decode`: the JSON form, the containers (raw,
  qcow2, JSON) and what known variables mean.

The names below are imported on first use (module ``__getattr__``), so importing one module
of the package does not import the rest.

Quick use::

    store = VariableStore.parse(data, path="OVMF_VARS_4M.ms.fd")
    pk = store.get("PK", guids.EFI_GLOBAL_VARIABLE)
    store.set(Variable("Foo", guid, 0x7, b"\\x01"))
    image = store.to_bytes()          # compacted the way edk2's Reclaim leaves a store
    for issue in store.check(): ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fwtools._base.severity import Severity
    from fwtools.formats.efi.authvar import attribute_names
    from fwtools.formats.varstore.errors import (
        BlankStoreError,
        DamagedStoreError,
        StoreFullError,
        VariableTooLargeError,
    )
    from fwtools.formats.varstore.ftw import FtwRecord, FtwWorkingBlock, FtwWrite
    from fwtools.formats.varstore.layout import LAYOUTS, StoreLayout, layout_by_name
    from fwtools.formats.varstore.model import FvHeader, Issue, Record, StoreHeader, Variable
    from fwtools.formats.varstore.parse import is_varstore
    from fwtools.formats.varstore.store import VariableStore

# Public name -> the module that defines it.
_EXPORTS = {
    "LAYOUTS": "fwtools.formats.varstore.layout",
    "StoreLayout": "fwtools.formats.varstore.layout",
    "layout_by_name": "fwtools.formats.varstore.layout",
    "BlankStoreError": "fwtools.formats.varstore.errors",
    "DamagedStoreError": "fwtools.formats.varstore.errors",
    "StoreFullError": "fwtools.formats.varstore.errors",
    "VariableTooLargeError": "fwtools.formats.varstore.errors",
    "FtwRecord": "fwtools.formats.varstore.ftw",
    "FtwWorkingBlock": "fwtools.formats.varstore.ftw",
    "FtwWrite": "fwtools.formats.varstore.ftw",
    "FvHeader": "fwtools.formats.varstore.model",
    "Issue": "fwtools.formats.varstore.model",
    "Record": "fwtools.formats.varstore.model",
    "StoreHeader": "fwtools.formats.varstore.model",
    "Variable": "fwtools.formats.varstore.model",
    "Severity": "fwtools._base.severity",
    "is_varstore": "fwtools.formats.varstore.parse",
    "VariableStore": "fwtools.formats.varstore.store",
    "attribute_names": "fwtools.formats.efi.authvar",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


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
