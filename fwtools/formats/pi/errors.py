"""Errors of the PI firmware reader, where bytes come from, and the limits of one parse.

Bytes are either the file's own (an absolute offset says where) or the output of a
decompressed section, which has no file offset: an error there names the section it came
from and the offset inside its output ("in LZMA section at 0x94, offset 0x1234").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fwtools.errors import ParseError, TruncatedError

# Everything decompressed while reading one image, together (OVMF's DXE volume is 16 MiB,
# the largest in the corpus; edk2 itself has no bound but the flash size).
MAX_DECOMPRESSED: Final = 256 << 20
# Volumes and encapsulation sections inside each other (OVMF: FV > LZMA > FV, depth 2).
MAX_DEPTH: Final = 10
# FFS files plus sections in one image (OVMF_CODE_4M.fd: about 3 000).
MAX_NODES: Final = 200_000
# One EFI/Tiano-compressed section's output: the decoder is pure Python (1-3 MB/s), and the
# sections older firmware compresses this way are single drivers.
MAX_TIANO_OUTPUT: Final = 4 << 20
# liblzma's memory for one stream (edk2's LzmaCompress uses a 16 MiB dictionary at most; a
# hostile header may ask for 4 GiB).
LZMA_MEMLIMIT: Final = 128 << 20


class PiFormatError(ParseError):
    """A firmware volume, FFS file or section is malformed.

    ``offset`` is the absolute file offset when the bytes are the file's; inside decompressed
    data it is None and ``container``/``inner_offset`` say where instead (the structure text
    names both, so the one-line message is complete).
    """

    container: str | None = None
    inner_offset: int | None = None


class PiTruncatedError(PiFormatError, TruncatedError):
    """A structure runs past the end of its volume, file, section or the image."""


class PiLimitError(PiFormatError):
    """The input asks for more than a parse may spend (decompressed size, depth, nodes)."""


@dataclass(frozen=True)
class Origin:
    """Where a buffer's bytes come from: the file (``container`` None, byte 0 at ``base``)
    or the output of a decompressed section (``container`` names it)."""

    container: str | None = None
    base: int = 0

    def where(self, offset: int) -> str:
        """``at 0x1234`` in the file, else ``in LZMA section at 0x94, offset 0x1234``."""
        if self.container is None:
            return f"at {self.base + offset:#x}"
        return f"in {self.container}, offset {offset:#x}"

    def absolute(self, offset: int) -> int | None:
        """The file offset of ``offset``, or None inside decompressed data."""
        return self.base + offset if self.container is None else None

    def inner(self, kind: str, offset: int) -> Origin:
        """The origin of what the section at ``offset`` decompresses to: ``LZMA section at
        0x94`` in the file, ``LZMA section at 0x64 of LZMA section at 0x94`` nested."""
        if self.container is None:
            return Origin(f"{kind} section at {self.base + offset:#x}")
        return Origin(f"{kind} section at {offset:#x} of {self.container}")

    def error(self, message: str, structure: str, offset: int,
              cls: type[PiFormatError] = PiFormatError) -> PiFormatError:
        if self.container is None:
            return cls(message, structure=structure, offset=self.base + offset)
        exc = cls(message, structure=f"{structure} in {self.container}, offset {offset:#x}")
        exc.container = self.container
        exc.inner_offset = offset
        return exc


FILE: Final = Origin()


class Budget:
    """What one image's parse may still spend; shared by everything read from the image."""

    __slots__ = ("decompressed", "max_decompressed", "max_depth", "max_nodes", "max_tiano",
                 "nodes")

    def __init__(self, max_decompressed: int = MAX_DECOMPRESSED, max_depth: int = MAX_DEPTH,
                 max_nodes: int = MAX_NODES, max_tiano: int = MAX_TIANO_OUTPUT) -> None:
        self.max_decompressed = max_decompressed
        self.max_tiano = max_tiano
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.decompressed = 0
        self.nodes = 0

    def take_output(self, size: int, origin: Origin, offset: int, structure: str) -> None:
        """Reserve ``size`` bytes of decompressed output, or raise PiLimitError."""
        left = self.max_decompressed - self.decompressed
        if size > left:
            raise origin.error(
                f"declares {size:#x} bytes of output; the image's decompression limit "
                f"({self.max_decompressed:#x} bytes) leaves {left:#x}", structure, offset,
                PiLimitError)
        self.decompressed += size

    def take_node(self, origin: Origin, offset: int, structure: str) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise origin.error(f"more than {self.max_nodes} files and sections in one image",
                               structure, offset, PiLimitError)

    def check_depth(self, depth: int, origin: Origin, offset: int, structure: str) -> None:
        if depth > self.max_depth:
            raise origin.error(f"nested more than {self.max_depth} levels deep", structure,
                               offset, PiLimitError)
