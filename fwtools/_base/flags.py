"""Naming the set bits of a flag word from a table of bit values to names."""

from __future__ import annotations

from collections.abc import Mapping


def flag_names(value: int, table: Mapping[int, str]) -> list[str]:
    """The names of the bits of ``value`` found in ``table``, in table order, then all the
    bits it does not name together in one hex value (PE and boot-protocol flag words)."""
    names = [name for bit, name in table.items() if value & bit]
    unknown = value & ~sum(table)
    if unknown:
        names.append(f"{unknown:#x}")
    return names


def bit_names(value: int, table: Mapping[int, str]) -> list[str]:
    """The names of the set bits of ``value``, lowest bit first; a bit ``table`` does not
    name is given in hex (``0x100``), each on its own."""
    out = []
    for bit in range(value.bit_length()):
        mask = 1 << bit
        if value & mask:
            out.append(table.get(mask, f"{mask:#x}"))
    return out
