"""The attribute certificate table: the WIN_CERTIFICATE entries of a signed PE image.

References: Microsoft PE/COFF spec, "The Attribute Certificate Table (Image Only)";
UEFI 2.10 §32.2.4 (WIN_CERTIFICATE, WIN_CERTIFICATE_UEFI_GUID); edk2
DxeImageVerificationLib.c, the loop over the table in DxeImageVerificationHandler.

The SECURITY data directory holds a *file offset* and size. Entries follow each other, each
starting on an 8-byte boundary: the next entry is at ``offset + align8(dwLength)``.
"""

from __future__ import annotations

from fwtools._base.record import Record
from fwtools.errors import SignatureFormatError
from fwtools.formats.pe import wincert_layout
from fwtools.formats.pe.image import PeImage

_HEADER = wincert_layout.WIN_CERTIFICATE


class WinCertificate(Record):
    """One WIN_CERTIFICATE: header fields, absolute file offset and the bytes after the header.

    ``length`` is dwLength (header included); ``content`` is the ``length - 8`` bytes that
    follow the header (for PKCS_SIGNED_DATA, a DER PKCS#7 SignedData possibly followed by
    zero padding).
    """

    index: int
    offset: int
    length: int
    revision: int
    cert_type: int
    content: bytes

    @property
    def type_name(self) -> str:
        """``PKCS_SIGNED_DATA``, ``EFI_GUID``, ... or the type in hex when unknown."""
        return wincert_layout.WIN_CERT_TYPES.get(self.cert_type, f"{self.cert_type:#06x}")

    @property
    def end(self) -> int:
        """File offset just past the entry (dwLength bytes from its start)."""
        return self.offset + self.length

    @property
    def aligned_end(self) -> int:
        """File offset where the next entry starts (the end rounded up to 8 bytes)."""
        align = wincert_layout.WIN_CERTIFICATE_ALIGN
        return self.offset + (self.length + align - 1) // align * align


def scan_certificate_entries(
    img: PeImage,
) -> tuple[list[WinCertificate], SignatureFormatError | None]:
    """Walk the certificate table as far as it is well formed.

    Returns the entries read and, when the walk stopped at a malformed entry, the error that
    :func:`certificate_entries` would raise, so that a caller can still use the good entries
    before it.
    """
    table = img.certificate_table
    if table is None:
        return [], None
    start, size = table
    end = start + size
    data = img.data
    entries: list[WinCertificate] = []
    pos = start
    while pos < end:
        name = f"WIN_CERTIFICATE[{len(entries)}]"
        if end - pos < _HEADER.size:
            return entries, SignatureFormatError(
                f"{end - pos} bytes left in the certificate table, too few for an "
                f"{_HEADER.size}-byte WIN_CERTIFICATE header",
                structure=name,
                offset=pos,
            )
        length, revision, cert_type = _HEADER.unpack_from(data, pos)
        if length < _HEADER.size:
            return entries, SignatureFormatError(
                f"dwLength {length} is smaller than the {_HEADER.size}-byte header",
                structure=name,
                offset=pos,
            )
        if pos + length > end:
            return entries, SignatureFormatError(
                f"dwLength {length:#x} runs past the end of the certificate table at "
                f"{end:#x} (entry at {pos:#x})",
                structure=name,
                offset=pos,
            )
        entry = WinCertificate(
            index=len(entries),
            offset=pos,
            length=length,
            revision=revision,
            cert_type=cert_type,
            content=bytes(data[pos + _HEADER.size : pos + length]),
        )
        entries.append(entry)
        pos = entry.aligned_end
    return entries, None


def certificate_entries(img: PeImage) -> list[WinCertificate]:
    """Every WIN_CERTIFICATE in the image's certificate table (empty when unsigned).

    Raises :class:`SignatureFormatError` naming ``WIN_CERTIFICATE[i]`` and its absolute file
    offset when an entry is malformed: a dwLength smaller than the header, an entry running
    past the table, or leftover bytes too short for a header. A last entry whose alignment
    padding is missing from the table is accepted here (the table is still readable); edk2
    rejects such a table, which the verifier reports.
    """
    entries, error = scan_certificate_entries(img)
    if error is not None:
        raise error.with_path(img.path) if img.path else error
    return entries
