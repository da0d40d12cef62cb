"""The UEFI standard ("EFI") and Tiano decompressors, in Python.

A port of edk2's MdePkg/Library/BaseUefiDecompressLib/UefiDecompressLib.c (UEFI 2.11 chapter
19, "Compression Algorithm Specification"): LZ77 with a 13-bit (EFI, version 1) or 19-bit
(Tiano, version 2) window and three Huffman codes per block. The only difference between
the two is the width of the position-set code length (PBIT 4 or 5).

The edk2 code trusts its scratch buffers; this port checks every table index and stops a
tree walk that does not reach a leaf, so a hostile stream ends in :class:`TianoError`, never
in an endless loop or an out-of-range read. Output never exceeds the declared size, which the
caller has already accepted. Pure Python runs at about 1-3 MB/s: fine for the per-driver
sections older firmware compresses this way.
"""

from __future__ import annotations

from typing import Final

BITBUFSIZ: Final = 32
MAXMATCH: Final = 256
THRESHOLD: Final = 3
CODE_BIT: Final = 16
NC: Final = 0xFF + MAXMATCH + 2 - THRESHOLD  # 510
CBIT: Final = 9
MAXPBIT: Final = 5
TBIT: Final = 5
MAXNP: Final = (1 << MAXPBIT) - 1  # 31
NT: Final = CODE_BIT + 3  # 19
NPT: Final = max(NT, MAXNP)
TREE: Final = 2 * NC - 1
HEADER_SIZE: Final = 8  # CompSize u32, OrigSize u32
OVER_READ: Final = 8  # bytes of zeros read past CompSize before the stream counts as cut


class TianoError(ValueError):
    """The stream is not a valid EFI/Tiano compressed stream (``offset``: into the input)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def sizes(data: bytes | memoryview) -> tuple[int, int]:
    """(CompSize, OrigSize) from the 8-byte header."""
    if len(data) < HEADER_SIZE:
        raise TianoError(f"needs an {HEADER_SIZE}-byte header, only {len(data)} bytes", 0)
    return int.from_bytes(data[0:4], "little"), int.from_bytes(data[4:8], "little")


class _Decoder:
    def __init__(self, src: bytes, orig_size: int, pbit: int) -> None:
        self.src = src
        self.in_pos = 0
        self.over_read = 0
        self.comp_size = len(src)
        self.bit_buf = 0
        self.sub_bit_buf = 0
        self.bit_count = 0
        self.block_size = 0
        self.pbit = pbit
        self.out = bytearray(orig_size)
        self.out_pos = 0
        self.left = [0] * TREE
        self.right = [0] * TREE
        self.c_len = [0] * NC
        self.pt_len = [0] * NPT
        self.c_table = [0] * 4096
        self.pt_table = [0] * 256
        self.fill(BITBUFSIZ)

    # -- bits --------------------------------------------------------------------------------

    def fill(self, n: int) -> None:
        self.bit_buf = (self.bit_buf << n) & 0xFFFFFFFF
        while n > self.bit_count:
            n -= self.bit_count
            self.bit_buf |= (self.sub_bit_buf << n) & 0xFFFFFFFF
            if self.in_pos < self.comp_size:
                self.sub_bit_buf = self.src[self.in_pos]
                self.in_pos += 1
            else:
                # edk2 reads zeros past CompSize; a stream that needs more than the 32-bit
                # look-ahead of them is truncated (and would decode zeros for ever)
                self.sub_bit_buf = 0
                self.over_read += 1
                if self.over_read > OVER_READ:
                    raise TianoError("the stream ends before the output is complete",
                                     self.comp_size)
            self.bit_count = 8
        self.bit_count -= n
        self.bit_buf |= self.sub_bit_buf >> self.bit_count

    def bits(self, n: int) -> int:
        value = self.bit_buf >> (BITBUFSIZ - n)
        self.fill(n)
        return value

    def _walk(self, value: int, limit: int, table_bits: int) -> int:
        """Follow the tree below a table entry until a leaf (< limit)."""
        mask = 1 << (BITBUFSIZ - 1 - table_bits)
        while value >= limit:
            if value >= TREE or mask == 0:
                raise TianoError("Huffman code does not end in a symbol", self.in_pos)
            value = self.right[value] if self.bit_buf & mask else self.left[value]
            mask >>= 1
        return value

    # -- tables ------------------------------------------------------------------------------

    def make_table(self, count: int, lengths: list[int], table_bits: int,
                   table: list[int]) -> None:
        counts = [0] * 17
        for i in range(count):
            if lengths[i] > 16:
                raise TianoError("code length above 16", self.in_pos)
            counts[lengths[i]] += 1
        start = [0] * 18
        for i in range(1, 17):
            start[i + 1] = (start[i] + (counts[i] << (16 - i))) & 0xFFFF
        if start[17] != 0:
            raise TianoError("code lengths do not form a complete Huffman code", self.in_pos)
        ju_bits = 16 - table_bits
        weight = [0] * 17
        for i in range(1, table_bits + 1):
            start[i] >>= ju_bits
            weight[i] = 1 << (table_bits - i)
        for i in range(table_bits + 1, 17):
            weight[i] = 1 << (16 - i)
        i = start[table_bits + 1] >> ju_bits
        size = 1 << table_bits
        if i != 0:
            for k in range(i, size):
                table[k] = 0
        avail = count
        mask = 1 << (15 - table_bits)
        left, right = self.left, self.right
        for char in range(count):
            length = lengths[char]
            if length == 0:
                continue
            next_code = start[length] + weight[length]
            if length <= table_bits:
                if start[length] >= next_code or next_code > size:
                    raise TianoError("Huffman table overflows", self.in_pos)
                for k in range(start[length], next_code):
                    table[k] = char
            else:
                index3 = start[length]
                where, slot = table, index3 >> ju_bits
                if slot >= size:
                    raise TianoError("Huffman table overflows", self.in_pos)
                for _ in range(length - table_bits):
                    if where[slot] == 0 and avail < TREE:
                        right[avail] = left[avail] = 0
                        where[slot] = avail
                        avail += 1
                    node = where[slot]
                    if node < TREE:
                        where, slot = (right, node) if index3 & mask else (left, node)
                    index3 <<= 1
                where[slot] = char
            start[length] = next_code

    def read_pt_len(self, nn: int, nbit: int, special: int) -> None:
        number = self.bits(nbit)
        if number > NPT or nn > NPT:
            raise TianoError(f"{number} code lengths, at most {NPT}", self.in_pos)
        if number == 0:
            char = self.bits(nbit)
            self.pt_table[:] = [char] * 256
            for k in range(nn):
                self.pt_len[k] = 0
            return
        i = 0
        while i < number and i < NPT:
            char = self.bit_buf >> (BITBUFSIZ - 3)
            if char == 7:
                mask = 1 << (BITBUFSIZ - 1 - 3)
                while mask & self.bit_buf:
                    mask >>= 1
                    char += 1
            self.fill(3 if char < 7 else char - 3)
            self.pt_len[i] = char & 0xFF
            i += 1
            if i == special:
                zeros = self.bits(2)
                while zeros > 0 and i < NPT:
                    self.pt_len[i] = 0
                    i += 1
                    zeros -= 1
        while i < nn and i < NPT:
            self.pt_len[i] = 0
            i += 1
        self.make_table(nn, self.pt_len, 8, self.pt_table)

    def read_c_len(self) -> None:
        number = self.bits(CBIT)
        if number == 0:
            char = self.bits(CBIT)
            self.c_len[:] = [0] * NC
            self.c_table[:] = [char] * 4096
            return
        i = 0
        while i < number and i < NC:
            char = self._walk(self.pt_table[self.bit_buf >> (BITBUFSIZ - 8)], NT, 8)
            self.fill(self.pt_len[char])
            if char <= 2:
                if char == 0:
                    zeros = 1
                elif char == 1:
                    zeros = self.bits(4) + 3
                else:
                    zeros = self.bits(CBIT) + 20
                while zeros > 0 and i < NC:
                    self.c_len[i] = 0
                    i += 1
                    zeros -= 1
            else:
                self.c_len[i] = char - 2
                i += 1
        for k in range(i, NC):
            self.c_len[k] = 0
        self.make_table(NC, self.c_len, 12, self.c_table)

    # -- symbols -----------------------------------------------------------------------------

    def decode_c(self) -> int:
        if self.block_size == 0:
            self.block_size = self.bits(16)
            self.read_pt_len(NT, TBIT, 3)
            self.read_c_len()
            self.read_pt_len(MAXNP, self.pbit, -1)
        self.block_size = (self.block_size - 1) & 0xFFFF
        char = self._walk(self.c_table[self.bit_buf >> (BITBUFSIZ - 12)], NC, 12)
        self.fill(self.c_len[char])
        return char

    def decode_p(self) -> int:
        value = self._walk(self.pt_table[self.bit_buf >> (BITBUFSIZ - 8)], MAXNP, 8)
        self.fill(self.pt_len[value])
        if value > 1:
            return (1 << (value - 1)) + self.bits(value - 1)
        return value

    def run(self) -> bytes:
        out, size = self.out, len(self.out)
        while self.out_pos < size:
            char = self.decode_c()
            if char < 256:
                out[self.out_pos] = char
                self.out_pos += 1
                continue
            length = char - (256 - THRESHOLD)
            src = self.out_pos - self.decode_p() - 1
            if src < 0:
                raise TianoError(f"match {self.out_pos - src} bytes back, before the start",
                                 self.in_pos)
            n = min(length, size - self.out_pos)
            end = self.out_pos + n
            if src + n <= self.out_pos:  # no overlap: one slice copy
                out[self.out_pos : end] = out[src : src + n]
            else:  # overlapping: the bytes repeat with period out_pos - src
                for k in range(self.out_pos, end):
                    out[k] = out[src]
                    src += 1
            self.out_pos = end
        return bytes(out)


def decompress(data: bytes | memoryview, *, tiano: bool) -> bytes:
    """The output of an EFI (``tiano=False``) or Tiano compressed stream (header included);
    the caller bounds OrigSize (:func:`sizes`) before calling."""
    comp_size, orig_size = sizes(data)
    if comp_size + HEADER_SIZE > len(data):
        raise TianoError(f"CompSize {comp_size:#x} runs past the {len(data):#x} bytes given", 0)
    if orig_size == 0:
        return b""
    src = bytes(data[HEADER_SIZE : HEADER_SIZE + comp_size])
    return _Decoder(src, orig_size, 5 if tiano else 4).run()
