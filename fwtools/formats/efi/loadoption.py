"""EFI_LOAD_OPTION (UEFI 2.10 §3.1.3): the data of Boot####, Driver####, SysPrep#### and
PlatformRecovery#### variables.

Layout (packed, little-endian)::

    0    Attributes u32           LOAD_OPTION_ACTIVE 0x1, FORCE_RECONNECT 0x2, HIDDEN 0x8,
                                  CATEGORY 0x1F00 (BOOT 0x000, APP 0x100)
    4    FilePathListLength u16   bytes of FilePathList
    6    Description              UCS-2, NUL-terminated
    ..   FilePathList             packed device paths, each ending in End-Entire
    ..   OptionalData             the rest (for a loader: its command line, often UCS-2)

Parse -> ``to_bytes`` is byte-identical for every well-formed option (the description is
decoded with ``surrogatepass``, so even unpaired surrogates survive).
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

from fwtools._base.flags import bit_names
from fwtools._base.record import Record
from fwtools.errors import ParseError, TruncatedError, UsageError
from fwtools.formats.efi.devicepath import (
    DevicePathNode,
    device_path_list_to_bytes,
    device_path_text,
    parse_device_path_list,
)

LOAD_OPTION_HEADER: Final = struct.Struct("<IH")
FILE_PATH_LIST_LENGTH_FIELD: Final = 4
DESCRIPTION_OFFSET: Final = LOAD_OPTION_HEADER.size

LOAD_OPTION_ACTIVE: Final = 0x00000001
LOAD_OPTION_FORCE_RECONNECT: Final = 0x00000002
LOAD_OPTION_HIDDEN: Final = 0x00000008
LOAD_OPTION_CATEGORY: Final = 0x00001F00
LOAD_OPTION_CATEGORY_BOOT: Final = 0x00000000
LOAD_OPTION_CATEGORY_APP: Final = 0x00000100

ATTRIBUTE_NAMES: Final[dict[int, str]] = {
    LOAD_OPTION_ACTIVE: "ACTIVE",
    LOAD_OPTION_FORCE_RECONNECT: "FORCE_RECONNECT",
    LOAD_OPTION_HIDDEN: "HIDDEN",
}
CATEGORY_NAMES: Final[dict[int, str]] = {
    LOAD_OPTION_CATEGORY_BOOT: "boot",
    LOAD_OPTION_CATEGORY_APP: "app",
}


def _decode_ucs2(raw: bytes) -> str:
    return raw.decode("utf-16-le", "surrogatepass")


def _encode_ucs2(text: str) -> bytes:
    try:
        return text.encode("utf-16-le", "surrogatepass")
    except UnicodeEncodeError:  # pragma: no cover - surrogatepass encodes every str
        raise UsageError(f"description {text!r} cannot be encoded as UCS-2") from None


class LoadOption(Record):
    """One EFI_LOAD_OPTION.

    ``device_paths`` is the FilePathList, one list of nodes per device path (without its
    End node); the first is the loader (or the device) the option boots. ``offset`` is
    where the option started in the parsed file (not part of equality).
    """

    attributes: int
    description: str
    device_paths: list[list[DevicePathNode]]
    optional_data: bytes = b""
    offset: int = 0
    _uncompared = frozenset({"offset"})

    # -- bytes ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes | memoryview, base: int = 0) -> LoadOption:
        """Decode a load option; ``base`` is the absolute offset of ``data`` (for errors and
        node offsets). Raises :class:`ParseError` / :class:`TruncatedError` naming the field
        and its offset."""
        if len(data) < LOAD_OPTION_HEADER.size:
            raise TruncatedError(
                f"needs {LOAD_OPTION_HEADER.size} bytes for Attributes and FilePathListLength, "
                f"only {len(data)}",
                structure="EFI_LOAD_OPTION",
                offset=base,
            )
        attributes, list_length = LOAD_OPTION_HEADER.unpack_from(data, 0)
        end = None
        for pos in range(DESCRIPTION_OFFSET, len(data) - 1, 2):
            if data[pos] == 0 and data[pos + 1] == 0:
                end = pos
                break
        if end is None:
            raise ParseError(
                "Description has no NUL terminator",
                structure="EFI_LOAD_OPTION.Description",
                offset=base + DESCRIPTION_OFFSET,
            )
        description = _decode_ucs2(bytes(data[DESCRIPTION_OFFSET:end]))
        paths_at = end + 2
        paths_end = paths_at + list_length
        if paths_end > len(data):
            raise TruncatedError(
                f"FilePathListLength {list_length} runs past the end of the option "
                f"({len(data) - paths_at} bytes after the description)",
                structure="EFI_LOAD_OPTION.FilePathListLength",
                offset=base + FILE_PATH_LIST_LENGTH_FIELD,
            )
        paths = parse_device_path_list(data[paths_at:paths_end], base=base + paths_at)
        return cls(attributes, description, paths, bytes(data[paths_end:]), base)

    def to_bytes(self) -> bytes:
        paths = device_path_list_to_bytes(self.device_paths)
        if len(paths) > 0xFFFF:
            raise UsageError(f"FilePathList of {len(paths)} bytes does not fit its u16 length")
        if not 0 <= self.attributes <= 0xFFFFFFFF:
            raise UsageError(f"attributes {self.attributes:#x} do not fit in 32 bits")
        if "\0" in self.description:
            raise UsageError("description contains NUL")
        return (
            LOAD_OPTION_HEADER.pack(self.attributes, len(paths))
            + _encode_ucs2(self.description)
            + b"\0\0"
            + paths
            + self.optional_data
        )

    @classmethod
    def build(
        cls,
        description: str,
        file_path_bytes: bytes,
        optional_data: bytes = b"",
        attributes: int = LOAD_OPTION_ACTIVE,
    ) -> LoadOption:
        """A new option from a description, the FilePathList bytes (e.g.
        :func:`~fwtools.formats.efi.devicepath.build_hd_file_path`) and optional data.
        Raises :class:`ParseError` when ``file_path_bytes`` is not a packed device path and
        :class:`UsageError` for a description that cannot be stored."""
        option = cls(attributes, description, parse_device_path_list(file_path_bytes),
                     bytes(optional_data))
        option.to_bytes()  # validate sizes and the description now, not at write time
        return option

    # -- meaning -------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return bool(self.attributes & LOAD_OPTION_ACTIVE)

    @property
    def hidden(self) -> bool:
        return bool(self.attributes & LOAD_OPTION_HIDDEN)

    @property
    def force_reconnect(self) -> bool:
        return bool(self.attributes & LOAD_OPTION_FORCE_RECONNECT)

    @property
    def category(self) -> int:
        return self.attributes & LOAD_OPTION_CATEGORY

    @property
    def category_name(self) -> str:
        """``boot``, ``app`` or the reserved value in hex."""
        return CATEGORY_NAMES.get(self.category, f"{self.category:#x}")

    @property
    def attribute_names(self) -> list[str]:
        """Names of the set flag bits (category excluded), unknown bits in hex."""
        return bit_names(self.attributes & 0xFFFFFFFF & ~LOAD_OPTION_CATEGORY, ATTRIBUTE_NAMES)

    @property
    def path_texts(self) -> list[str]:
        """edk2's text (full form) of each device path in FilePathList."""
        return [device_path_text(path) for path in self.device_paths]

    @property
    def file_path_text(self) -> str:
        """The text of the first device path (what firmware boots), or ``""``."""
        return device_path_text(self.device_paths[0]) if self.device_paths else ""

    @property
    def optional_data_text(self) -> str | None:
        """OptionalData as text when it is UCS-2 (a loader's command line: even length,
        printable, optionally NUL-terminated), else None."""
        raw = self.optional_data
        if not raw or len(raw) % 2:
            return None
        try:
            text = raw.decode("utf-16-le")
        except UnicodeDecodeError:
            return None
        text = text[:-1] if text.endswith("\0") else text
        if not text or not all(c.isprintable() for c in text):
            return None
        return text

    @property
    def optional_data_guid(self) -> uuid.UUID | None:
        """OptionalData as a GUID when it is exactly 16 bytes (edk2 marks the boot options
        it creates itself with one), else None."""
        if len(self.optional_data) != 16:
            return None
        return uuid.UUID(bytes_le=self.optional_data)


__all__ = [
    "LOAD_OPTION_ACTIVE",
    "LOAD_OPTION_CATEGORY",
    "LOAD_OPTION_CATEGORY_APP",
    "LOAD_OPTION_CATEGORY_BOOT",
    "LOAD_OPTION_FORCE_RECONNECT",
    "LOAD_OPTION_HIDDEN",
    "LoadOption",
]
