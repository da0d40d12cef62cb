"""Minimal PE32 and PE32+ EFI images for tests, written field by field with struct from the
Microsoft PE Format specification, independent of fwtools' layouts (pefile is the oracle
the tests compare fwtools against).

The corpus has no PE32 EFI binary (Debian's ia32 firmware and loaders are not in it), so
these are the only PE32 images the tests see. Each has a .text (code, RX) and a .data
(RW) section; every header field is set to a distinct value so a field read at the wrong
offset shows.
"""

from __future__ import annotations

import struct
from typing import Final

PE32_MAGIC: Final = 0x10B
PE32PLUS_MAGIC: Final = 0x20B
E_LFANEW: Final = 0x80
FILE_ALIGNMENT: Final = 0x200
NUMBER_OF_RVA_AND_SIZES: Final = 16

# IMAGE_OPTIONAL_HEADER32 / 64 up to NumberOfRvaAndSizes, in spec order. PE32 has
# BaseOfData and a 4-byte ImageBase; PE32+ an 8-byte ImageBase and 8-byte stack/heap sizes.
_OPTIONAL: Final = {
    PE32_MAGIC: struct.Struct("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII"),
    PE32PLUS_MAGIC: struct.Struct("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII"),
}
_MACHINE: Final = {PE32_MAGIC: 0x014C, PE32PLUS_MAGIC: 0x8664}  # i386, x86-64

SCN_TEXT: Final = 0x60000020  # CNT_CODE | MEM_EXECUTE | MEM_READ
SCN_DATA: Final = 0xC0000040  # CNT_INITIALIZED_DATA | MEM_READ | MEM_WRITE


def build_image(
    magic: int,
    *,
    image_base: int = 0x10000,
    base_of_data: int = 0x2000,
    dll_characteristics: int = 0x0040,  # DYNAMIC_BASE, no NX_COMPAT
    subsystem: int = 10,
    section_alignment: int = 0x1000,
    entry: int = 0x1010,
) -> bytes:
    """An EFI application image of the given form (``PE32_MAGIC`` or ``PE32PLUS_MAGIC``)."""
    opt_struct = _OPTIONAL[magic]
    opt_size = opt_struct.size + NUMBER_OF_RVA_AND_SIZES * 8
    sections = [(b".text", 0x1000, SCN_TEXT), (b".data", 0x2000, SCN_DATA)]
    headers_end = E_LFANEW + 4 + 20 + opt_size + 40 * len(sections)
    size_of_headers = -(-headers_end // FILE_ALIGNMENT) * FILE_ALIGNMENT
    dos = bytearray(E_LFANEW)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, E_LFANEW)
    coff = struct.pack("<HHIIIHH", _MACHINE[magic], len(sections), 0x5F5E100, 0, 0, opt_size,
                       0x0002 | (0x0100 if magic == PE32_MAGIC else 0x0020))
    common_head = (magic, 2, 40, 0x200, 0x200, 0, entry, 0x1000)
    windows = (section_alignment, FILE_ALIGNMENT, 1, 2, 3, 4, 5, 6, 0,
               0x3000, size_of_headers, 0, subsystem, dll_characteristics)
    stack_heap = (0x100000, 0x1000, 0x100000, 0x1000, 0, NUMBER_OF_RVA_AND_SIZES)
    if magic == PE32_MAGIC:
        opt = opt_struct.pack(*common_head, base_of_data, image_base, *windows, *stack_heap)
    else:
        opt = opt_struct.pack(*common_head, image_base, *windows, *stack_heap)
    opt += bytes(NUMBER_OF_RVA_AND_SIZES * 8)
    table = b""
    raw = b""
    for i, (name, rva, flags) in enumerate(sections):
        pointer = size_of_headers + i * FILE_ALIGNMENT
        table += struct.pack("<8sIIIIIIHHI", name, 0x100, rva, FILE_ALIGNMENT, pointer,
                             0, 0, 0, 0, flags)
        raw += bytes([0xC3]) * FILE_ALIGNMENT  # ret
    headers = bytes(dos) + b"PE\0\0" + coff + opt + table
    assert len(headers) == headers_end
    return headers.ljust(size_of_headers, b"\0") + raw
