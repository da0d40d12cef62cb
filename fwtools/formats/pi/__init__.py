"""PI firmware images (OVMF/AAVMF flash images): volumes, FFS files, sections, modules.

- :class:`FirmwareImage` opens a raw or qcow2 flash image and finds its volumes;
- :class:`FirmwareVolume`, :class:`FfsFile`, :class:`Section` are the PI structures
  (layouts in :mod:`.layout`), read lazily: nested and compressed volumes are decoded when
  first walked;
- :class:`Module` is a driver, application or core with its PE (or TE) facts;
- :mod:`.facts` derives what the bytes say about the build (Secure Boot support, the memory
  attribute protocol, variable drivers, release hints).

Errors are :class:`PiFormatError` (a :class:`fwtools.errors.ParseError`) with the absolute
offset, or the decompressed section and the offset inside it.
"""

from __future__ import annotations

from fwtools.formats.pi.errors import Budget, PiFormatError, PiLimitError, PiTruncatedError
from fwtools.formats.pi.image import FirmwareImage, Module, TeInfo
from fwtools.formats.pi.volume import FfsFile, FirmwareVolume, Section

__all__ = [
    "Budget",
    "FfsFile",
    "FirmwareImage",
    "FirmwareVolume",
    "Module",
    "PiFormatError",
    "PiLimitError",
    "PiTruncatedError",
    "Section",
    "TeInfo",
]
