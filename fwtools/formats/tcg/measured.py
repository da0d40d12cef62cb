"""PCR values read from a TPM, in the forms people save them in.

- a directory dump of Linux sysfs (``/sys/class/tpm/tpm0/pcr-<bank>/<N>``, Linux >= 5.12,
  ``drivers/char/tpm/tpm-sysfs.c``): either the ``tpm0`` directory (``pcr-sha256/0`` ...) or
  one ``pcr-<bank>`` directory; each file holds the value as hex (upper-case in the kernel);
- ``tpm2_pcrread`` output (tpm2-tools ``tools/tpm2_pcrread.c``), YAML-like::

    sha256:
      0 : 0x3D458CFE55CC03EA1F443F1562BEEC8DF51C75E14A9FCF9A7234A13F198E7969

  (``tpm2_eventlog``'s trailing ``pcrs:`` block has the same shape and is read too);
- JSON: ``{"sha256": {"0": "hex", ...}, ...}``.

Bank names are hashlib's (``sha1``, ``sha256``, ``sha384``, ``sha512``, ``sm3_256``); the
aliases ``sm3``/``sm3-256`` are accepted. Every value must have its bank's digest size.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Final

from fwtools.errors import FwIOError, ParseError
from fwtools.formats.tcg import layout as L

Measured = dict[str, dict[int, bytes]]

_SIZES: Final = {name: size for name, size in L.ALGORITHMS.values()}
_BANK_LINE: Final = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*:\s*$")
_VALUE_LINE: Final = re.compile(r"^\s*(\d+)\s*:\s*(?:0[xX])?([0-9A-Fa-f]+)\s*$")
# A dump is small: 24 PCRs x a few banks. Anything much larger is not one.
_MAX_FILE: Final = 1 << 20


def bank_name(text: str) -> str | None:
    """The hashlib name of a bank as tools spell it, or None for an unknown one."""
    name = text.strip().lower()
    name = L.BANK_ALIASES.get(name, name)
    return name if name in _SIZES else None


def read_measured(path: str | os.PathLike[str]) -> Measured:
    """The PCR values saved at ``path`` (a sysfs-style directory, tpm2_pcrread output or
    JSON). Raises :class:`~fwtools.errors.FwIOError` when it cannot be read and
    :class:`~fwtools.errors.ParseError` (with the path) for anything else."""
    from fwtools._base.fileio import open_input

    p = Path(path)
    try:
        if p.is_dir():
            return _read_directory(p)
        fd, _ = open_input(p)  # a FIFO or device is refused, never opened for reading
        with os.fdopen(fd, "rb") as f:
            data = f.read(_MAX_FILE + 1)
        if len(data) > _MAX_FILE:
            raise ParseError(f"larger than {_MAX_FILE} bytes: not a PCR dump",
                             structure="PCR values")
        return parse_measured(data)
    except FwIOError as exc:  # open_input's "PATH: why"
        why = str(exc).removeprefix(f"{p}: ")
        raise FwIOError(f"cannot read PCR values: {why}").with_path(p) from None
    except OSError as exc:
        raise FwIOError(f"cannot read PCR values: {exc.strerror or exc}").with_path(p) from None
    except ParseError as exc:
        raise exc.with_path(p) from None


def parse_measured(data: bytes) -> Measured:
    """PCR values from the bytes of a JSON document or tpm2_pcrread output."""
    text = data.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    return _parse_pcrread(text)


def _value(bank: str, pcr: object, value: object, structure: str,
           offset: int | None = None) -> tuple[int, bytes]:
    where = f"{bank} PCR {pcr}"
    try:
        index = int(str(pcr), 10)
    except ValueError:
        raise ParseError(f"{where}: PCR index is not a number", structure=structure,
                         offset=offset) from None
    if not 0 <= index < L.PCR_COUNT:
        raise ParseError(f"{where}: PCR index out of 0..{L.PCR_COUNT - 1}",
                         structure=structure, offset=offset)
    if not isinstance(value, str):
        raise ParseError(f"{where}: the value is not a hex string", structure=structure,
                         offset=offset)
    hexpart = value.strip()
    if hexpart[:2] in ("0x", "0X"):
        hexpart = hexpart[2:]
    try:
        raw = bytes.fromhex(hexpart)
    except ValueError:
        raise ParseError(f"{where}: {value[:80]!r} is not hex", structure=structure,
                         offset=offset) from None
    if len(raw) != _SIZES[bank]:
        raise ParseError(f"{where}: {len(raw)} bytes, a {bank} PCR has {_SIZES[bank]}",
                         structure=structure, offset=offset)
    return index, raw


def _parse_json(text: str) -> Measured:
    structure = "PCR values (JSON)"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc.msg} (line {exc.lineno})", structure=structure,
                         offset=exc.pos) from None
    if not isinstance(doc, dict):
        raise ParseError('expected {"sha256": {"0": "hex", ...}}', structure=structure)
    out: Measured = {}
    for key, values in doc.items():
        bank = bank_name(str(key))
        if bank is None:
            raise ParseError(f"unknown bank {key!r}", structure=structure)
        if not isinstance(values, dict):
            raise ParseError(f"bank {key!r} is not an object of PCR index -> hex",
                             structure=structure)
        pcrs = out.setdefault(bank, {})
        for pcr, value in values.items():
            index, raw = _value(bank, pcr, value, structure)
            pcrs[index] = raw
    return out


def _parse_pcrread(text: str) -> Measured:
    structure = "tpm2_pcrread output"
    out: Measured = {}
    bank: str | None = None
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        at = offset
        offset += len(line.encode("utf-8", "replace"))
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        head = _BANK_LINE.match(line)
        if head:
            bank = bank_name(head.group(1))  # other keys (pcrs:, events:) end a bank
            continue
        match = _VALUE_LINE.match(line)
        if match and bank is not None:
            index, raw = _value(bank, match.group(1), match.group(2),
                                f"{structure} line {number}", at)
            out.setdefault(bank, {})[index] = raw
        elif bank is not None and not line[:1].isspace():
            bank = None
    if not out:
        raise ParseError("no PCR values found (expected 'sha256:' then '  0 : 0x...' lines, "
                         "a sysfs directory or JSON)", structure=structure, offset=0)
    return out


def _read_directory(path: Path) -> Measured:
    """``tpm0/pcr-<bank>/<N>`` or one ``pcr-<bank>`` directory."""
    from fwtools._base.fileio import open_input

    banks = [path] if path.name.startswith("pcr-") else sorted(path.glob("pcr-*"))
    out: Measured = {}
    for directory in banks:
        bank = bank_name(directory.name[4:])
        if bank is None or not directory.is_dir():
            continue
        pcrs: dict[int, bytes] = {}
        for entry in sorted(directory.iterdir()):
            if not entry.name.isdigit():
                continue
            structure = f"{directory.name}/{entry.name}"
            fd, _ = open_input(entry)  # sysfs files are regular; a FIFO there is refused
            with os.fdopen(fd, "rb") as f:
                content = f.read(1024)
            index, raw = _value(bank, entry.name,
                                content.decode("ascii", "replace"), structure)
            pcrs[index] = raw
        if pcrs:
            out[bank] = pcrs
    if not out:
        raise ParseError("no pcr-<bank>/<N> files (expected a /sys/class/tpm/tpm0 or "
                         "pcr-sha256 directory dump)", structure="PCR directory")
    return out
