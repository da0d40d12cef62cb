"""The Authenticode image digest: which bytes of a PE image are hashed, and their digests.

References:
- Microsoft, "Windows Authenticode Portable Executable Signature Format" (2008),
  "Calculating the PE Image Hash".
- edk2 SecurityPkg/Library/DxeImageVerificationLib/DxeImageVerificationLib.c, HashPeImage
  (what firmware computes).
- sbsigntools src/image.c, image_find_regions and image_load (sbsign / sbverify).
- pesign src/cms_common.c, generate_digest; osslsigncode pe.c, pe_digest_calc.

The hashed bytes are, in this order:

1. the headers up to SizeOfHeaders, minus the CheckSum field and minus the SECURITY data
   directory entry (when the optional header has one);
2. the raw data of every section with SizeOfRawData != 0, sorted by PointerToRawData;
3. "trailing data": the bytes from offset SUM_OF_BYTES_HASHED (SizeOfHeaders plus every
   SizeOfRawData, a count, not a position) up to file size minus the certificate table size.

Rule 3 is what edk2, sbverify and pesign all do, and it has two consequences worth knowing:
bytes in holes between sections are never hashed while, in a file with holes, the trailing
range starts inside section data that was already hashed; and data appended *after* the
certificate table shifts the trailing range into the table itself.

Where the tools differ, this module follows sbverify (and so edk2, except for padding):

- Padding. sbsign/sbverify and osslsigncode hash the image as if zero-padded to a multiple
  of 8 bytes when the hashed data runs to the end of the file: sbsign pads the file that way
  before appending the certificate table, so the digest of an unsigned image of unaligned
  length is the one its signed form will carry. pesign ``-h`` and edk2 hash the file as it
  is. :func:`authenticode_digests` pads by default; ``pad=False`` gives the pesign/edk2
  value. Signed images are never padded.
- Section order. edk2 and sbverify sort by PointerToRawData. pesign 0.112 sorts only the
  first NumberOfSections - 1 headers (``sort_shdrs(shdrs, n - 1)``), so when the last
  section header's raw data is not last in the file pesign hashes a different order.
- Header order. sbverify sorts the three header ranges together with the sections, edk2 and
  pesign hash the headers first; they differ only for a section whose raw data starts
  inside the optional header, which no loader accepts.
- osslsigncode hashes the file linearly up to the certificate table instead of section by
  section, so it agrees with the others only on images without holes between sections and
  without data after the table.

Every binary of the Debian corpus hashes the same under all four tools.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

from fwtools._base.record import Record
from fwtools.errors import PeFormatError, UsageError
from fwtools.formats.pe import layout, wincert_layout
from fwtools.formats.pe.image import PeImage

# Hash in chunks so that every algorithm sees a chunk while it is still in the CPU cache.
_CHUNK: Final = 1 << 20
_ALIGN: Final = wincert_layout.WIN_CERTIFICATE_ALIGN


class AuthenticodeLayout(Record):
    """The hashed file ranges of an image, and what is odd about them.

    ``ranges`` are (start, end) file offsets in hashing order. ``padding`` is the number of
    zero bytes hashed after the last range (see the module docstring); ``anomalies`` are
    human-readable notes on layouts where the Authenticode rules produce surprising results.
    """

    ranges: tuple[tuple[int, int], ...]
    padding: int
    anomalies: tuple[str, ...]

    @property
    def hashed_size(self) -> int:
        """Bytes fed to the hash, padding included."""
        return sum(end - start for start, end in self.ranges) + self.padding


def _align_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def _header_ranges(img: PeImage) -> list[tuple[int, int]]:
    ck = img.checksum_offset
    ck_end = ck + img.optional_header_layout.field_size("CheckSum")
    soh = img.size_of_headers
    sec = img.security_entry_offset
    last_fixed = ck_end if sec is None else sec + layout.DATA_DIRECTORY_SIZE
    if soh < last_fixed:
        raise PeFormatError(
            f"SizeOfHeaders {soh:#x} ends before the "
            f"{'SECURITY data directory entry' if sec is not None else 'CheckSum field'} "
            f"({last_fixed:#x}); the image cannot be hashed",
            structure="optional header SizeOfHeaders",
            offset=img.optional_field_offset("SizeOfHeaders"),
        )
    if sec is None:
        # NumberOfRvaAndSizes <= 4: there is no SECURITY entry to skip (edk2 HashPeImage).
        return [(0, ck), (ck_end, soh)]
    return [(0, ck), (ck_end, sec), (sec + layout.DATA_DIRECTORY_SIZE, soh)]


def _ranges_for_size(img: PeImage, file_size: int) -> tuple[list[tuple[int, int]], list[str]]:
    """The ranges sbverify hashes for an image whose buffer is ``file_size`` bytes long."""
    notes: list[str] = []
    regions = _header_ranges(img)
    hashed = img.size_of_headers
    sections = [s for s in img.sections if s.raw_size]
    for s in sections:
        regions.append((s.raw_offset, s.raw_end))
        hashed += s.raw_size
    # Stable sort by start: ties keep header-then-section-table order (sbverify's qsort is
    # not stable, edk2's insertion sort is; ties only occur in malformed images).
    regions.sort(key=lambda r: r[0])
    cert_size = 0 if img.certificate_table is None else img.certificate_table[1]
    if file_size > hashed + cert_size:
        regions.append((hashed, file_size - cert_size))
    elif file_size < hashed + cert_size:
        notes.append(
            f"headers and sections claim {hashed:#x} bytes, more than the {file_size:#x}-byte "
            f"file minus the {cert_size:#x}-byte certificate table holds; edk2 refuses to "
            "hash such an image"
        )
    return regions, notes


def authenticode_layout(img: PeImage) -> AuthenticodeLayout:
    """Work out the hashed ranges of ``img``, the zero padding and any layout anomalies."""
    n = len(img.data)
    regions, notes = _ranges_for_size(img, n)
    # sbverify's image_load: the signed data ends at the end of the last region rounded up to
    # 8; when that is past the end of the file the buffer is zero-padded and the regions are
    # worked out again for the longer buffer.
    padded_size = _align_up(regions[-1][1], _ALIGN)
    padding = 0
    if padded_size > n:
        regions, notes = _ranges_for_size(img, padded_size)
        padding = max(0, regions[-1][1] - n)
        regions[-1] = (regions[-1][0], min(regions[-1][1], n))
    notes.extend(_anomalies(img, regions))
    ranges = tuple((start, end) for start, end in regions if end > start)
    return AuthenticodeLayout(ranges, padding, tuple(notes))


def _anomalies(img: PeImage, regions: list[tuple[int, int]]) -> list[str]:
    notes: list[str] = []
    sections = sorted((s for s in img.sections if s.raw_size), key=lambda s: s.raw_offset)
    prev_end, prev_name = img.size_of_headers, "headers"
    for s in sections:
        if s.raw_offset > prev_end:
            notes.append(
                f"bytes {prev_end:#x}-{s.raw_offset:#x} between {prev_name} and section "
                f"{s.name!r} are not hashed"
            )
        elif s.raw_offset < prev_end:
            notes.append(
                f"section {s.name!r} raw data at {s.raw_offset:#x} overlaps {prev_name} "
                f"(ending at {prev_end:#x}); the overlap is hashed twice"
            )
        if s.raw_end >= prev_end:
            prev_end, prev_name = s.raw_end, f"section {s.name!r}"
    sum_hashed = img.size_of_headers + sum(s.raw_size for s in sections)
    if sum_hashed != prev_end and regions and regions[-1][0] == sum_hashed:
        notes.append(
            f"trailing data is hashed from {sum_hashed:#x} (the number of bytes hashed so "
            f"far), not from the end of the last section at {prev_end:#x}"
        )
    table = img.certificate_table
    if table is not None:
        start, size = table
        if start + size < len(img.data):
            extra = len(img.data) - start - size
            notes.append(
                f"{extra:#x} bytes follow the certificate table; Authenticode hashes up to the "
                f"file size minus the table size, so {min(extra, size):#x} bytes of the table "
                "are hashed and the data after it is not"
            )
        if start % _ALIGN:
            notes.append(f"certificate table at {start:#x} is not 8-byte aligned")
    return notes


def authenticode_ranges(img: PeImage) -> list[tuple[int, int]]:
    """The (start, end) file ranges that the Authenticode digest covers, in hashing order.

    Zero padding hashed after the last range is not a file range; see
    :func:`authenticode_layout` for it.
    """
    return list(authenticode_layout(img).ranges)


def authenticode_digests(
    img: PeImage, algorithms: Iterable[str] = ("sha256", "sha1"), *, pad: bool = True
) -> dict[str, bytes]:
    """The Authenticode digest of ``img`` for each hashlib algorithm name, in one pass.

    With ``pad`` (the default) the digest is the one sbsign/sbverify/osslsigncode compute,
    which for an unsigned image of unaligned length includes zero padding to 8 bytes; with
    ``pad=False`` it is what pesign ``-h`` and edk2 compute. Signed images hash the same
    either way.
    """
    names = list(dict.fromkeys(a.lower() for a in algorithms))
    try:
        hashers = [hashlib.new(name) for name in names]
    except ValueError as exc:
        raise UsageError(f"unsupported digest algorithm: {exc}") from None
    lay = authenticode_layout(img)
    view = memoryview(img.data)
    for start, end in lay.ranges:
        for pos in range(start, end, _CHUNK):
            chunk = view[pos : min(pos + _CHUNK, end)]
            for h in hashers:
                h.update(chunk)
    if pad and lay.padding:
        zeros = bytes(lay.padding)
        for h in hashers:
            h.update(zeros)
    return {name: h.digest() for name, h in zip(names, hashers, strict=True)}
