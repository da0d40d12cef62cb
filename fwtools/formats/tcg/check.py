"""Whether an event's digests are the hash of its own data, where the spec fixes that.

For most event types the digest is of something the log does not hold (a firmware volume, a
PE image's Authenticode hash, a file GRUB read), but for these the TCG PC Client Platform
Firmware Profile 1.06 §10.4.1 and the code that logs them fix it to the event data (or a
part of it), so a log whose digest differs does not describe what was measured:

- the event data: EV_SEPARATOR, EV_ACTION, EV_EFI_ACTION, EV_S_CRTM_VERSION,
  EV_EFI_GPT_EVENT(2), EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_AUTHORITY,
  EV_EFI_VARIABLE_BOOT2 (edk2 ``Tcg2Dxe.c``, ``Tcg2Pei.c``, ``DxeTpm2MeasureBootLib.c``);
- EV_EFI_VARIABLE_BOOT: the variable's data (edk2 ``Tcg2Dxe.c`` ``MeasureVariable``); the
  whole UEFI_VARIABLE_DATA is accepted too (what EV_EFI_VARIABLE_BOOT2 hashes, and what
  some other firmware hashes for this type);
- EV_IPL ``grub_cmd:`` / ``kernel_cmdline:`` / ``module_cmdline:``: the text after the
  prefix, without the NUL (GRUB ``commands/tpm.c``).

Other EV_IPL strings are a match when their digest is of the string (with or without its
NUL) and otherwise unknown, never a mismatch: GRUB's file events and shim's MOK events hash
content the log does not carry.

docs/reference/measured-boot.md sections 1 and 4 list the same rules as measured on real logs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final, Literal

from fwtools.formats.tcg import layout as L
from fwtools.formats.tcg.decode import Decoded, TextData, VariableData
from fwtools.formats.tcg.log import Event

DigestStatus = Literal["match", "mismatch"]

_WHOLE_DATA: Final = frozenset(
    {0x4, 0x5, 0x8, 0x80000001, 0x80000006, 0x80000007, 0x8000000C, 0x8000000D, 0x800000E0}
)
_VARIABLE_BOOT: Final = 0x80000002
_EV_IPL: Final = 0xD
_GRUB: Final = frozenset({"grub_cmd", "kernel_cmdline", "module_cmdline"})


def _hasher(alg: int) -> Callable[[bytes], bytes] | None:
    known = L.ALGORITHMS.get(alg)
    if known is None:
        return None
    name = L.OPENSSL_NAMES.get(known[0], known[0])
    if name not in hashlib.algorithms_available:
        return None
    return lambda data: hashlib.new(name, data).digest()


def _all_match(event: Event, candidate: bytes) -> bool | None:
    """True when every digest the log gives (that hashlib can compute) is H(candidate);
    None when none can be computed."""
    checked = False
    for alg, digest in event.digests.items():
        hasher = _hasher(alg)
        if hasher is None:
            continue
        if hasher(candidate) != digest:
            return False
        checked = True
    return True if checked else None


def data_digest_status(event: Event, decoded: Decoded | None) -> DigestStatus | None:
    """``match`` / ``mismatch`` when the spec fixes the digest to (part of) the event data,
    None when the digest is of something else (or nothing could be computed)."""
    data = event.data
    if event.event_type in _WHOLE_DATA:
        ok = _all_match(event, data)
        return None if ok is None else ("match" if ok else "mismatch")
    if event.event_type == _VARIABLE_BOOT:
        value = decoded.data if isinstance(decoded, VariableData) else None
        candidates = [data] if value is None else [value, data]
        results = [_all_match(event, c) for c in candidates]
        if any(results):
            return "match"
        return None if all(r is None for r in results) else "mismatch"
    if event.event_type == _EV_IPL and isinstance(decoded, TextData):
        if decoded.source in _GRUB and decoded.encoding == "ascii":
            text = data.rstrip(b"\0")
            ok = _all_match(event, text.split(b": ", 1)[1])
            return None if ok is None else ("match" if ok else "mismatch")
        if _all_match(event, data) or _all_match(event, data.rstrip(b"\0")):
            return "match"
    return None
