"""PE base relocations: the ``.reloc`` blocks of the BASERELOC data directory.

Microsoft PE/COFF spec rev 11, "The .reloc Section (Image Only)": the directory is a run of
blocks, each an IMAGE_BASE_RELOCATION header (PageRVA u32, BlockSize u32, BlockSize
counting the header) followed by u16 entries, the type in the top 4 bits and the offset
into the 4 KiB page in the low 12. edk2's PeCoffLoaderRelocateImage
(MdePkg/Library/BasePeCoffLib/BasePeCoff.c) and shim's relocate_coff (pe-relocate.c) walk
them the same way; a block smaller than its header ends the walk.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from fwtools._base.record import Record
from fwtools.formats.pe import layout

if TYPE_CHECKING:
    from fwtools.formats.pe.image import PeImage

#: IMAGE_BASE_RELOCATION: VirtualAddress (the page RVA), SizeOfBlock (declared in layout)
BLOCK_HEADER: Final = layout.BASE_RELOCATION_BLOCK
ENTRY_SIZE: Final = 2
#: IMAGE_REL_BASED_* types (the top 4 bits of an entry)
REL_BASED_ABSOLUTE: Final = 0  # padding: patches nothing
REL_BASED_HIGHLOW: Final = 3
REL_BASED_DIR64: Final = 10
REL_BASED_TYPES: Final[dict[int, str]] = {
    0: "ABSOLUTE", 1: "HIGH", 2: "LOW", 3: "HIGHLOW", 4: "HIGHADJ", 5: "ARM_MOV32",
    7: "THUMB_MOV32", 10: "DIR64",
}  # fmt: skip


class RelocBlock(Record):
    """One IMAGE_BASE_RELOCATION block, with the file offset of its header."""

    offset: int
    page_rva: int
    size: int  # SizeOfBlock, header included
    end: int  # file offset where its entries end: the block's, or the directory's end

    @property
    def entry_count(self) -> int:
        return (self.size - BLOCK_HEADER.size) // ENTRY_SIZE


def relocation_blocks(img: PeImage) -> tuple[RelocBlock, ...]:
    """The blocks of ``img``'s BASERELOC directory, as far as they lie in the file; empty
    when there is no directory or it is not backed by file data."""
    d = img.directory(layout.DIR_BASERELOC)
    if d is None or not d.size:
        return ()
    off = img.rva_to_offset(d.virtual_address)
    if off is None:
        return ()
    data = img.data
    end = min(off + d.size, len(data))
    blocks: list[RelocBlock] = []
    while off + BLOCK_HEADER.size <= end:
        page, size = BLOCK_HEADER.unpack_from(data, off)
        if size < BLOCK_HEADER.size:
            break
        blocks.append(RelocBlock(off, page, size, min(off + size, end)))
        off += size
    return tuple(blocks)


def relocation_entries(img: PeImage, block: RelocBlock) -> tuple[tuple[int, int], ...]:
    """(type, RVA) of each entry of ``block`` that lies in the directory and the file."""
    start = block.offset + BLOCK_HEADER.size
    count = max(block.end - start, 0) // ENTRY_SIZE
    raw = struct.unpack_from(f"<{count}H", img.data, start) if count else ()
    return tuple((e >> 12, block.page_rva + (e & 0xFFF)) for e in raw)


def relocated_pages(img: PeImage) -> tuple[int, ...]:
    """Page RVAs (4 KiB) that base relocations patch, sorted: each block with entries
    names one page (a block with no entries patches nothing)."""
    pages = {b.page_rva & ~(layout.PAGE_SIZE - 1) for b in relocation_blocks(img)
             if b.size > BLOCK_HEADER.size}
    return tuple(sorted(pages))
