"""The timestamp an APPEND_WRITE of a signed update leaves, as edk2 stores it.

edk2 keeps the payload's TimeStamp unless the stored one is later
(``MdeModulePkg/Universal/Variable/RuntimeDxe/Variable.c`` UpdateVariable, with
``VariableCompareTimeStampInternal``: "FirstTime is not later than SecondTime", comparing Year
to Second and ending in ``<=``, so a tie in Year..Second takes the payload's whole EFI_TIME).
tests/e2e/test_fw_vars_update_oracle.py shows Debian's OVMF doing both of the other cases with
Microsoft's DBXUpdate.bin (payload stamp 2010-03-06T19:17:21): a 2025/2026 stamp stays, a
zero stamp is replaced. Microsoft's signature is not what is tested here (``force``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from fwtools._base.efitime import EfiTime
from fwtools.crypto.secureboot import apply_signed_update
from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import SignatureDatabase
from fwtools.formats.varstore.model import Variable
from fwtools.formats.varstore.store import VariableStore

DBX_UPDATE: Final = (Path(__file__).resolve().parents[2] / "testdata" /
                     "microsoft-secureboot-objects" / "dbx" / "amd64" / "DBXUpdate.bin")
PAYLOAD: Final = EfiTime(2010, 3, 6, 19, 17, 21)


@pytest.mark.parametrize(("stored", "expected"), [
    (EfiTime.zero(), PAYLOAD),
    (EfiTime(2009, 12, 31, 23, 59, 59), PAYLOAD),
    # Equal to the second: the payload's EFI_TIME replaces the stored one, Nanosecond included.
    (EfiTime(2010, 3, 6, 19, 17, 21, nanosecond=5), PAYLOAD),
    (EfiTime(2010, 3, 6, 19, 17, 22), EfiTime(2010, 3, 6, 19, 17, 22)),
    (EfiTime(2026, 1, 4, 18, 19, 19), EfiTime(2026, 1, 4, 18, 19, 19)),
])
def test_append_keeps_the_later_timestamp(stored: EfiTime, expected: EfiTime) -> None:
    store = VariableStore.blank("ovmf-4m-528k")
    existing = SignatureDatabase(()).add_hash(b"\x11" * 32, guids.MICROSOFT)
    store.set(Variable("dbx", guids.EFI_IMAGE_SECURITY_DATABASE, 0x27, existing.to_bytes(),
                       stored))
    result = apply_signed_update(store, DBX_UPDATE.read_bytes(), name="dbx", force=True,
                                 attributes=0x67)
    assert result.added > 0
    var = store.get("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)
    assert var is not None and var.attributes == 0x27  # APPEND_WRITE is not stored
    assert var.timestamp == expected
