"""Decode the data of one event, on demand.

Reference: TCG PC Client Platform Firmware Profile Specification 1.06 rev 52, §10.4 (event
data per type; layouts in ``layout.py``, types in ``eventtypes.py``) and what the boot
components write (docs/reference/measured-boot.md): edk2 ``Tcg2Dxe.c`` / ``Tcg2Pei.c`` /
``DxeTpm2MeasureBootLib.c``, shim ``tpm.c``, GRUB ``commands/tpm.c``, Linux
``drivers/firmware/efi/libstub/efi-stub-helper.c`` and systemd ``src/boot/``.

:func:`decode_event` never runs during parsing or replay: a report asks for it per event.
A body that does not match its type's layout raises :class:`~fwtools.errors.ParseError`
with the absolute offset of the field; callers that show every event catch it per event.
Variable contents that fail to decode (a damaged signature list, a bad load option) keep
the variable and record the problem in ``value_error`` instead.
"""

from __future__ import annotations

import uuid
from typing import Final, NamedTuple

from fwtools.errors import FwError, ParseError, TruncatedError
from fwtools.formats.efi import guids
from fwtools.formats.tcg import layout as L
from fwtools.formats.tcg.eventtypes import data_kind
from fwtools.formats.tcg.log import Event, SpecIdEvent, parse_spec_id

# -- decoded bodies -------------------------------------------------------------------------


class RawData(NamedTuple):
    """Event data of a type with no decoder (or an unknown type): the bytes."""

    data: bytes


class TextData(NamedTuple):
    """A string event (EV_ACTION, EV_EFI_ACTION, EV_IPL, ...). ``encoding`` is ``ascii``
    (bytes as UTF-8, invalid bytes escaped) or ``utf-16le`` (systemd's EV_IPL);
    ``terminated`` says whether the data ended with a NUL; ``source`` names who writes this
    shape, when the text says (``grub_cmd``, ``kernel_cmdline``, ``module_cmdline``)."""

    text: str
    encoding: str
    terminated: bool
    source: str | None = None


class SeparatorData(NamedTuple):
    """EV_SEPARATOR: 00000000 normally, FFFFFFFF when the firmware signals an error
    (PFP §10.4.1)."""

    value: int
    error: bool


class SpecIdData(NamedTuple):
    spec_id: SpecIdEvent


class StartupLocalityData(NamedTuple):
    locality: int


class NoActionData(NamedTuple):
    """Another EV_NO_ACTION: its 16-byte signature (as text when printable) and the rest."""

    signature: str
    data: bytes


class TaggedData(NamedTuple):
    """TCG_PCClientTaggedEvent; ``text`` is the tagged data as a string when it is one (the
    Linux EFI stub writes ``"Linux initrd\\0"``, ``"LOADED_IMAGE::LoadOptions\\0"``)."""

    tag: int
    data: bytes
    text: str | None
    tag_name: str | None = None


class SignatureEntry(NamedTuple):
    """One EFI_SIGNATURE_DATA (owner + certificate DER or hash)."""

    owner: uuid.UUID
    data: bytes


class VariableData(NamedTuple):
    """UEFI_VARIABLE_DATA (EV_EFI_VARIABLE_*). ``value`` is the decoded content:
    ``int`` for one-byte switches (SecureBoot, SetupMode, ...), ``list[SignatureList]`` for
    PK/KEK/db/dbx/dbt/dbr and the MOK lists, ``LoadOption`` for Boot####, ``list[int]`` for
    BootOrder, ``str`` for SbatLevel; None when not decoded. ``value_error`` says why a
    content that should decode did not."""

    guid: uuid.UUID
    name: str
    data: bytes
    value: object = None
    value_error: str | None = None

    @property
    def guid_name(self) -> str | None:
        return guids.guid_name(self.guid)


class AuthorityData(NamedTuple):
    """EV_EFI_VARIABLE_AUTHORITY: the variable the verifying entry came from and the entry.
    ``entry`` is set when the data is an EFI_SIGNATURE_DATA (edk2 and shim for db, vendor_db,
    MokListRT, Shim); otherwise (shim's SbatLevel, MokSBState) ``data`` is the raw variable
    content and ``text`` its string form when it is one."""

    guid: uuid.UUID
    name: str
    data: bytes
    entry: SignatureEntry | None
    text: str | None = None


class ImageLoadData(NamedTuple):
    """UEFI_IMAGE_LOAD_EVENT; ``device_path`` is the text form, ``device_path_error`` why
    it is missing when the bytes did not parse."""

    location: int
    length: int
    link_time_address: int
    device_path_bytes: bytes
    device_path: str | None
    device_path_error: str | None = None


class GptPartition(NamedTuple):
    """One non-empty entry of the logged partition array; ``position`` counts from 0."""

    position: int
    type_guid: uuid.UUID
    unique_guid: uuid.UUID
    starting_lba: int
    ending_lba: int
    attributes: int
    name: str




class GptData(NamedTuple):
    disk_guid: uuid.UUID
    revision: int
    my_lba: int
    alternate_lba: int
    first_usable_lba: int
    last_usable_lba: int
    partition_entry_lba: int
    number_of_partition_entries: int
    size_of_partition_entry: int
    partitions: tuple[GptPartition, ...]


class BlobData(NamedTuple):
    """UEFI_PLATFORM_FIRMWARE_BLOB(2); ``description`` only in the BLOB2 form."""

    base: int
    length: int
    description: str | None = None


class HandoffTablesData(NamedTuple):
    """UEFI_HANDOFF_TABLE_POINTERS(2): (vendor GUID, address) per table; ``description``
    only in the ...2 form."""

    tables: tuple[tuple[uuid.UUID, int], ...]
    description: str | None = None


Decoded = (RawData | TextData | SeparatorData | SpecIdData | StartupLocalityData
           | NoActionData | TaggedData | VariableData | AuthorityData | ImageLoadData
           | GptData | BlobData | HandoffTablesData)

# Linux libstub efistub.h: the tagged events the EFI stub writes into PCR 9.
TAG_NAMES: Final[dict[int, str]] = {
    0x8F3B22EC: "Linux initrd",
    0x8F3B22ED: "Linux LoadOptions",
    0xF5BC582A: "systemd-boot loader.conf",
}
_SIGNATURE_LIST_VARIABLES: Final = frozenset(
    {"PK", "KEK", "db", "dbx", "dbt", "dbr", "PKDefault", "KEKDefault", "dbDefault",
     "dbxDefault", "MokList", "MokListX", "MokListRT", "MokListXRT", "vendor_db", "vendor_dbx"}
)
_BYTE_VARIABLES: Final = frozenset(
    {"SecureBoot", "SetupMode", "AuditMode", "DeployedMode", "MokSBState", "MokSBStateRT",
     "MokListTrusted", "MokPolicy"}
)
_GRUB_PREFIXES: Final = ("grub_cmd", "kernel_cmdline", "module_cmdline")
_EV_IPL: Final = 0xD
# shim mok.c mok_state_variables[] with MOK_MIRROR_* measured into PCR 14 (tpm_log_event).
_SHIM_MOK_NAMES: Final = frozenset(
    {"MokList", "MokListX", "MokSBState", "MokListTrusted", "MokPolicy", "MokDBState",
     "MokIgnoreDB", "SbatLevel"}
)
# systemd src/fundamental/uki.c unified_sections[] (sd-stub measures each name into PCR 11).
_UKI_SECTIONS: Final = frozenset(
    {".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname",
     ".sbat", ".pcrsig", ".pcrpkey", ".profile", ".dtbauto", ".hwids", ".efifw"}
)
# UTF-16 EV_IPL strings: systemd-boot / sd-stub log the kernel command line (PCR 12) and
# the loader's entry (PCR 12, sd-boot Type #1) as UTF-16 (systemd docs/TPM2_PCR_MEASUREMENTS.md).
_IPL_UTF16_SOURCES: Final = {12: "systemd_cmdline"}


def decode_event(event: Event) -> Decoded:
    """Decode ``event``'s data by its type (unknown types: :class:`RawData`)."""
    data = event.data
    base = event.data_offset
    kind = data_kind(event.event_type)
    if kind == "text":
        return _text(data, event.pcr if event.event_type == _EV_IPL else None)
    if kind == "text_or_blob":
        # PFP 1.06 §10.4.1: EV_POST_CODE / EV_S_CRTM_CONTENTS hold a description string
        # ("POST CODE", "ACPI DATA" ...) or, from older firmware, the blob's base and length.
        if len(data) == L.FIRMWARE_BLOB.size and _printable(data) is None:
            return _blob(data, base)
        return _text(data)
    if kind == "separator":
        if len(data) == 4:
            value = int.from_bytes(data, "little")
            return SeparatorData(value, value == 0xFFFFFFFF)
        return RawData(data)
    if kind == "no_action":
        return _no_action(data, base)
    if kind == "ucs2":
        return _ucs2_text(data)
    if kind == "tagged":
        return _tagged(data, base)
    if kind == "variable":
        return _variable(data, base)
    if kind == "authority":
        return _authority(data, base)
    if kind == "image":
        return _image(data, base)
    if kind == "gpt":
        return _gpt(data, base)
    if kind == "blob":
        return _blob(data, base)
    if kind == "blob2":
        return _blob2(data, base)
    if kind == "handoff":
        return _handoff(data, base)
    if kind == "handoff2":
        _need(data, 1, "UEFI_HANDOFF_TABLE_POINTERS2", base)
        size = data[0]
        _need(data, 1 + size, "UEFI_HANDOFF_TABLE_POINTERS2", base)
        tables = _handoff(data[1 + size :], base + 1 + size).tables
        text = data[1 : 1 + size].rstrip(b"\0").decode("utf-8", "backslashreplace")
        return HandoffTablesData(tables, text)
    return RawData(data)


# -- strings --------------------------------------------------------------------------------


def _looks_utf16(data: bytes) -> bool:
    return len(data) >= 2 and len(data) % 2 == 0 and data[1::2].count(0) == len(data) // 2


def _text(data: bytes, ipl_pcr: int | None = None) -> TextData:
    """A string event; for EV_IPL, ``ipl_pcr`` (its PCR) tells who wrote it."""
    if _looks_utf16(data):
        decoded = _ucs2_text(data)
        source = _IPL_UTF16_SOURCES.get(ipl_pcr) if ipl_pcr is not None else None
        return TextData(decoded.text, "utf-16le", decoded.terminated, source)
    terminated = data.endswith(b"\0")
    text = data.rstrip(b"\0").decode("utf-8", "backslashreplace")
    return TextData(text, "ascii", terminated, _ipl_source(text, ipl_pcr))


def _ipl_source(text: str, pcr: int | None) -> str | None:
    """Who logs an ASCII EV_IPL event like this (docs/reference/measured-boot.md 3-6)."""
    head, sep, _ = text.partition(": ")
    if sep and head in _GRUB_PREFIXES:
        return head  # GRUB commands/tpm.c, PCR 8
    if pcr == 9 and text[:1] in ("/", "("):
        return "grub_file"  # GRUB's verifier: a file it read, PCR 9
    if pcr == 14 and text in _SHIM_MOK_NAMES:
        return "shim_mok"  # shim mok.c: a mirrored MOK variable, PCR 14
    if pcr == 11 and text in _UKI_SECTIONS:
        return "systemd_stub_section"  # sd-stub: a UKI section's name, PCR 11
    return None


def _ucs2_text(data: bytes) -> TextData:
    even = data[: len(data) - len(data) % 2]
    text = even.decode("utf-16-le", "surrogatepass").split("\0", 1)[0]
    return TextData(text, "utf-16le", b"\0\0" in even[len(text) * 2 :][:2])


def _printable(raw: bytes) -> str | None:
    text = raw.rstrip(b"\0")
    if text and all(0x20 <= b < 0x7F for b in text):
        return text.decode("ascii")
    return None


# -- EV_NO_ACTION, EV_EVENT_TAG -------------------------------------------------------------


def _no_action(data: bytes, base: int) -> Decoded:
    if data.startswith(L.SPEC_ID_SIGNATURE):
        return SpecIdData(parse_spec_id(data, base))
    if data.startswith(L.STARTUP_LOCALITY_SIGNATURE):
        layout = L.STARTUP_LOCALITY_EVENT
        _need(data, layout.size, layout.name, base)
        return StartupLocalityData(layout.unpack_dict(data)["startup_locality"])
    signature = data[:16]
    return NoActionData(_printable(signature) or signature.hex(), data[16:])


def _tagged(data: bytes, base: int) -> TaggedData:
    layout = L.TAGGED_EVENT
    _need(data, layout.size, layout.name, base)
    tag, size = layout.unpack_from(data)
    if size > len(data) - layout.size:
        raise TruncatedError(f"TaggedEventDataSize {size} exceeds the "
                             f"{len(data) - layout.size} bytes of the event",
                             structure=layout.name,
                             offset=base + layout.offset("tagged_event_data_size"))
    body = data[layout.size : layout.size + size]
    return TaggedData(tag, body, _printable(body), TAG_NAMES.get(tag))


# -- variables ------------------------------------------------------------------------------


def _variable_header(data: bytes, base: int, structure: str) -> tuple[uuid.UUID, str, bytes]:
    layout = L.VARIABLE_DATA
    _need(data, layout.size, structure, base)
    raw_guid, name_chars, data_len = layout.unpack_from(data)
    name_at = layout.size
    room = len(data) - name_at
    if name_chars > room // 2:
        raise TruncatedError(f"UnicodeNameLength {name_chars} characters exceed the {room} "
                             f"bytes of the event", structure=structure,
                             offset=base + layout.offset("unicode_name_length"))
    data_at = name_at + 2 * name_chars
    if data_len > len(data) - data_at:
        raise TruncatedError(f"VariableDataLength {data_len} exceeds the "
                             f"{len(data) - data_at} bytes after the name",
                             structure=structure,
                             offset=base + layout.offset("variable_data_length"))
    name = data[name_at:data_at].decode("utf-16-le", "surrogatepass")
    return uuid.UUID(bytes_le=raw_guid), name, data[data_at : data_at + data_len]


def _variable(data: bytes, base: int) -> VariableData:
    guid, name, value_bytes = _variable_header(data, base, L.VARIABLE_DATA.name)
    value_at = base + len(data) - len(value_bytes)
    value: object = None
    error: str | None = None
    try:
        value = _variable_value(guid, name, value_bytes, value_at)
    except FwError as exc:
        error = str(exc)
    return VariableData(guid, name, value_bytes, value, error)


def _variable_value(guid: uuid.UUID, name: str, data: bytes, base: int) -> object:
    """The content of a well-known variable, decoded; None for others."""
    if name in _BYTE_VARIABLES and len(data) == 1:
        return data[0]
    if name in _SIGNATURE_LIST_VARIABLES:
        from fwtools.formats.efi.siglist import parse_signature_lists

        return parse_signature_lists(data, base=base, structure=f"{name} EFI_SIGNATURE_LIST")
    if guid == guids.EFI_GLOBAL_VARIABLE:
        if name in ("BootOrder", "DriverOrder") or name == "BootNext":
            if len(data) % 2:
                raise ParseError(f"{name} has an odd size {len(data)}", structure=name,
                                 offset=base)
            return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]
        if _is_load_option_name(name):
            from fwtools.formats.efi.loadoption import LoadOption

            return LoadOption.parse(data, base=base)
    if name.startswith("SbatLevel"):
        return data.decode("utf-8", "backslashreplace")
    return None


def _is_load_option_name(name: str) -> bool:
    for prefix in ("Boot", "Driver", "SysPrep", "PlatformRecovery"):
        rest = name[len(prefix):]
        if name.startswith(prefix) and len(rest) == 4 and all(
            c in "0123456789ABCDEF" for c in rest
        ):
            return True
    return False


def _authority(data: bytes, base: int) -> AuthorityData:
    guid, name, value = _variable_header(data, base, "UEFI_VARIABLE_DATA (authority)")
    # EFI_SIGNATURE_DATA: a 16-byte owner, then a DER certificate (a SEQUENCE, 0x30) or a
    # hash. edk2's SecureBootHook and shim's tpm_measure_variable log exactly one entry.
    if not name.startswith("SbatLevel") and len(value) > 16 and (
        _is_der_sequence(value[16:]) or name in _SIGNATURE_LIST_VARIABLES or name == "Shim"
    ):
        entry = SignatureEntry(uuid.UUID(bytes_le=value[:16]), value[16:])
        return AuthorityData(guid, name, value, entry)
    text = value.decode("utf-8", "backslashreplace") if name.startswith("SbatLevel") else None
    return AuthorityData(guid, name, value, None, text)


def _is_der_sequence(data: bytes) -> bool:
    """Whether ``data`` is exactly one DER SEQUENCE (a certificate), by its length octets."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    first = data[1]
    if first < 0x80:
        return 2 + first == len(data)
    width = first & 0x7F
    if not 0 < width <= 4 or len(data) < 2 + width:
        return False
    return 2 + width + int.from_bytes(data[2 : 2 + width], "big") == len(data)


# -- images, GPT, blobs ---------------------------------------------------------------------


def _image(data: bytes, base: int) -> ImageLoadData:
    layout = L.IMAGE_LOAD_EVENT
    _need(data, layout.size, layout.name, base)
    location, length, link, dp_len = layout.unpack_from(data)
    if dp_len > len(data) - layout.size:
        raise TruncatedError(f"LengthOfDevicePath {dp_len} exceeds the "
                             f"{len(data) - layout.size} bytes after the header",
                             structure=layout.name,
                             offset=base + layout.offset("length_of_device_path"))
    raw = data[layout.size : layout.size + dp_len]
    text: str | None = None
    error: str | None = None
    if raw:
        from fwtools.formats.efi.devicepath import device_path_text, parse_device_path

        try:
            text = device_path_text(parse_device_path(raw, base=base + layout.size))
        except FwError as exc:
            error = str(exc)
    return ImageLoadData(location, length, link, raw, text, error)


def _gpt(data: bytes, base: int) -> GptData:
    head = L.GPT_HEADER
    _need(data, head.size + L.GPT_PARTITION_COUNT.size, "UEFI_GPT_DATA", base)
    h = head.unpack_dict(data)
    if h["signature"] != b"EFI PART":
        raise ParseError(f"partition table header signature {h['signature']!r} is not "
                         f"'EFI PART'", structure=head.name, offset=base)
    (count,) = L.GPT_PARTITION_COUNT.unpack_from(data, head.size)
    entry_size = h["size_of_partition_entry"]
    at = head.size + L.GPT_PARTITION_COUNT.size
    if entry_size < L.GPT_ENTRY.size:
        raise ParseError(f"SizeOfPartitionEntry {entry_size} is below {L.GPT_ENTRY.size}",
                         structure=head.name,
                         offset=base + head.offset("size_of_partition_entry"))
    if count > (len(data) - at) // entry_size:
        raise TruncatedError(f"NumberOfPartitions {count} of {entry_size} bytes exceed the "
                             f"{len(data) - at} bytes of the event",
                             structure="UEFI_GPT_DATA", offset=base + head.size)
    partitions = []
    for i in range(count):
        e = L.GPT_ENTRY.unpack_dict(data, at + i * entry_size)
        partitions.append(GptPartition(
            position=i,
            type_guid=uuid.UUID(bytes_le=e["partition_type_guid"]),
            unique_guid=uuid.UUID(bytes_le=e["unique_partition_guid"]),
            starting_lba=e["starting_lba"],
            ending_lba=e["ending_lba"],
            attributes=e["attributes"],
            name=e["partition_name"].decode("utf-16-le", "replace").split("\0", 1)[0],
        ))
    return GptData(
        disk_guid=uuid.UUID(bytes_le=h["disk_guid"]),
        revision=h["revision"],
        my_lba=h["my_lba"],
        alternate_lba=h["alternate_lba"],
        first_usable_lba=h["first_usable_lba"],
        last_usable_lba=h["last_usable_lba"],
        partition_entry_lba=h["partition_entry_lba"],
        number_of_partition_entries=h["number_of_partition_entries"],
        size_of_partition_entry=entry_size,
        partitions=tuple(partitions),
    )


def _blob(data: bytes, base: int) -> BlobData:
    layout = L.FIRMWARE_BLOB
    _need(data, layout.size, layout.name, base)
    blob_base, length = layout.unpack_from(data)
    return BlobData(blob_base, length)


def _blob2(data: bytes, base: int) -> BlobData:
    name = L.FIRMWARE_BLOB2_TAIL.name
    _need(data, 1, name, base)
    size = data[0]
    _need(data, 1 + size + L.FIRMWARE_BLOB2_TAIL.size, name, base)
    blob_base, length = L.FIRMWARE_BLOB2_TAIL.unpack_from(data, 1 + size)
    description = data[1 : 1 + size].rstrip(b"\0").decode("utf-8", "backslashreplace")
    return BlobData(blob_base, length, description)


def _handoff(data: bytes, base: int) -> HandoffTablesData:
    head, entry = L.HANDOFF_TABLES, L.HANDOFF_TABLE_ENTRY
    _need(data, head.size, head.name, base)
    (count,) = head.unpack_from(data)
    if count > (len(data) - head.size) // entry.size:
        raise TruncatedError(f"NumberOfTables {count} exceeds the event", structure=head.name,
                             offset=base)
    tables = []
    for i in range(count):
        raw, address = entry.unpack_from(data, head.size + i * entry.size)
        tables.append((uuid.UUID(bytes_le=raw), address))
    return HandoffTablesData(tuple(tables))


def _need(data: bytes, size: int, structure: str, base: int) -> None:
    if len(data) < size:
        raise TruncatedError(f"needs {size} bytes, the event has {len(data)}",
                             structure=structure, offset=base)
