"""Decoded views of the UEFI variables people read: Secure Boot state, boot entries,
consoles, languages, signature databases, shim's MOK and SBAT variables, certdb.

:func:`decode_variable` picks a decoder by vendor GUID and name and returns a frozen record
(:class:`~fwtools._base.record.Record`) of plain values (str, int, bool, bytes, tuples and
nested such records) that the report layer serialises generically, or None for a variable
it does not know. It never raises: data that does not fit the variable's format gives
:class:`DecodedInvalid` with the reason (and the offset within the data where known).
Every decoded object has a ``kind`` and a one-line ``summary``.

References:
    UEFI 2.10 §3.3 (globally defined variables: Boot####, BootOrder, Timeout, Lang,
    ConIn..., OsIndications, BootOptionSupport, SignatureSupport, Key####), §3.1.3
    (EFI_LOAD_OPTION), §3.1.6 (EFI_KEY_OPTION), §8.5.4 (OsIndications bits), §32.3-32.4
    (SecureBoot, SetupMode, AuditMode, DeployedMode, PK...dbr, the *Default variables);
    edk2 SecurityPkg (SecureBootEnable, CustomMode, VendorKeysNv, certdb:
    ``AuthServiceInternal.h``), MdeModulePkg (MTC, VarErrorFlag);
    shim ``MokVars.txt`` (MokList*, MokSBState, MokDBState, MokIgnoreDB), ``shim.c`` /
    ``lib/console.c`` (SHIM_VERBOSE and friends: any nonzero little-endian value),
    ``include/sbat.h`` (SbatLevel); ``docs/reference/formats.md`` §2.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Final

from fwtools._base.digest import sha256_hex
from fwtools._base.flags import bit_names
from fwtools._base.guid import guid_from_bytes
from fwtools._base.record import Record
from fwtools.errors import FwError, ParseError
from fwtools.formats.efi import guids

# -- decoded values ---------------------------------------------------------------------


class DecodedInvalid(Record):
    """Data that does not have the format its variable should have."""

    kind: str
    error: str
    offset: int | None = None
    summary: str = ""


class DecodedBoolean(Record):
    """A one-byte (or, for shim's switches, up to 8-byte) flag; ``raw`` is the stored
    number, ``value`` whether it is set and ``meaning`` what that means for this variable."""

    kind: str
    value: bool
    raw: int
    meaning: str
    summary: str


class DecodedInteger(Record):
    """A little-endian integer of ``size`` bytes; ``names`` are its set bits' names (bit
    fields) or the option it names (BootNext -> Boot0003); ``meaning`` explains it."""

    kind: str
    value: int
    size: int
    names: tuple[str, ...]
    meaning: str
    summary: str


class DecodedString(Record):
    """Text; ``values`` is the list a code list (LangCodes, PlatformLangCodes) holds."""

    kind: str
    value: str
    encoding: str
    values: tuple[str, ...]
    summary: str


class DecodedOptionOrder(Record):
    """BootOrder, DriverOrder, SysPrepOrder: option numbers and the variables they name."""

    kind: str
    numbers: tuple[int, ...]
    options: tuple[str, ...]
    summary: str


class DecodedLoadOption(Record):
    """Boot####, Driver####, SysPrep####, PlatformRecovery####."""

    kind: str
    description: str
    attributes: int
    attribute_names: tuple[str, ...]
    active: bool
    hidden: bool
    category: str
    device_paths: tuple[str, ...]
    optional_data: bytes
    optional_data_text: str | None
    optional_data_guid: str | None
    optional_data_guid_name: str | None
    summary: str


class DecodedDevicePath(Record):
    """ConIn, ConOut, ErrOut and their *Dev twins: ``text`` is edk2's text of the whole
    path, ``instances`` the text of each instance."""

    kind: str
    text: str
    instances: tuple[str, ...]
    summary: str


class DecodedSignatureEntry(Record):
    """One EFI_SIGNATURE_DATA: the owner, and for a hash entry its ``algorithm`` and
    ``digest`` (hex), for an X.509 entry ``sha256`` of the DER certificate."""

    owner: str
    owner_name: str | None
    size: int
    algorithm: str | None = None
    digest: str | None = None
    sha256: str | None = None


class DecodedSignatureList(Record):
    type: str
    type_name: str | None
    signature_size: int
    count: int
    entries: tuple[DecodedSignatureEntry, ...]


class DecodedSignatureDatabase(Record):
    """PK, KEK, db, dbx, dbt, dbr, the *Default copies, MokList and friends."""

    kind: str
    count: int
    lists: tuple[DecodedSignatureList, ...]
    summary: str


class DecodedSbatEntry(Record):
    component: str
    generation: int


class DecodedSbatLevel(Record):
    kind: str
    version: int
    datestamp: str
    entries: tuple[DecodedSbatEntry, ...]
    warnings: tuple[str, ...]
    summary: str


class DecodedCertDbEntry(Record):
    """One certdb node: which variable (name, vendor GUID) is bound to which signer (the
    digest of its CN and TBSCertificate)."""

    name: str
    vendor_guid: str
    vendor_name: str | None
    digest: str


class DecodedCertDb(Record):
    kind: str
    size: int
    entries: tuple[DecodedCertDbEntry, ...]
    summary: str


class DecodedGuidList(Record):
    """SignatureSupport, OsRecoveryOrder: GUIDs and their well-known names."""

    kind: str
    guids: tuple[str, ...]
    names: tuple[str | None, ...]
    summary: str


class DecodedKeyOption(Record):
    """Key####: a hot key that boots Boot#### (EFI_KEY_OPTION)."""

    kind: str
    boot_option: str
    boot_option_crc: int
    modifiers: tuple[str, ...]
    keys: tuple[str, ...]
    summary: str


class DecodedMemoryTypeInformation(Record):
    """edk2's MemoryTypeInformation: pages BDS reserves per memory type."""

    kind: str
    entries: tuple[tuple[str, int], ...]
    summary: str


Decoded = (
    DecodedInvalid
    | DecodedBoolean
    | DecodedInteger
    | DecodedString
    | DecodedOptionOrder
    | DecodedLoadOption
    | DecodedDevicePath
    | DecodedSignatureDatabase
    | DecodedSbatLevel
    | DecodedCertDb
    | DecodedGuidList
    | DecodedKeyOption
    | DecodedMemoryTypeInformation
)

# -- tables -----------------------------------------------------------------------------

# UEFI 2.10 §8.5.4, EFI_OS_INDICATIONS_*.
OS_INDICATIONS_BITS: Final[dict[int, str]] = {
    0x01: "BOOT_TO_FW_UI",
    0x02: "TIMESTAMP_REVOCATION",
    0x04: "FILE_CAPSULE_DELIVERY_SUPPORTED",
    0x08: "FMP_CAPSULE_SUPPORTED",
    0x10: "CAPSULE_RESULT_VAR_SUPPORTED",
    0x20: "START_OS_RECOVERY",
    0x40: "START_PLATFORM_RECOVERY",
    0x80: "JSON_CONFIG_DATA_REFRESH",
}
# UEFI 2.10 §3.3, EFI_BOOT_OPTION_SUPPORT_*; bits 8-9 are the supported key count.
BOOT_OPTION_SUPPORT_BITS: Final[dict[int, str]] = {
    0x01: "KEY",
    0x02: "APP",
    0x10: "SYSPREP",
}
BOOT_OPTION_SUPPORT_COUNT: Final = 0x300
# UEFI 2.10 §3.1.6 EFI_BOOT_KEY_DATA bits 8-13, InputKeyCount bits 30-31.
KEY_MODIFIERS: Final[dict[int, str]] = {
    0x100: "Shift",
    0x200: "Ctrl",
    0x400: "Alt",
    0x800: "Logo",
    0x1000: "Menu",
    0x2000: "SysReq",
}
# UEFI 2.10 §12.3, Table 12-5 (EFI scan codes).
SCAN_CODES: Final[dict[int, str]] = {
    0x01: "Up",
    0x02: "Down",
    0x03: "Right",
    0x04: "Left",
    0x05: "Home",
    0x06: "End",
    0x07: "Insert",
    0x08: "Delete",
    0x09: "PageUp",
    0x0A: "PageDown",
    **{0x0B + i: f"F{i + 1}" for i in range(10)},
    0x15: "F11",
    0x16: "F12",
    0x17: "Esc",
}
# edk2 MdeModulePkg Include/Guid/VarErrorFlag.h.
VAR_ERROR_FLAGS: Final[dict[int, str]] = {
    0xFF: "no error",
    0xEF: "system error (variable storage ran out of space)",
    0xFE: "user error (variable storage ran out of space)",
}
# UEFI 2.10 Table 7-5, EFI_MEMORY_TYPE.
MEMORY_TYPES: Final = (
    "Reserved",
    "LoaderCode",
    "LoaderData",
    "BootServicesCode",
    "BootServicesData",
    "RuntimeServicesCode",
    "RuntimeServicesData",
    "Conventional",
    "Unusable",
    "ACPIReclaim",
    "ACPINVS",
    "MemoryMappedIO",
    "MemoryMappedIOPortSpace",
    "PalCode",
    "Persistent",
    "Unaccepted",
)

# Booleans: (vendor, name) -> (what 1 means, what 0 means).
_BOOLEANS: Final[dict[tuple[uuid.UUID, str], tuple[str, str]]] = {
    (guids.EFI_GLOBAL_VARIABLE, "SecureBoot"): (
        "Secure Boot is enforced",
        "Secure Boot is not enforced",
    ),
    (guids.EFI_GLOBAL_VARIABLE, "SetupMode"): ("setup mode (no PK)", "user mode (PK enrolled)"),
    (guids.EFI_GLOBAL_VARIABLE, "AuditMode"): ("audit mode", "not in audit mode"),
    (guids.EFI_GLOBAL_VARIABLE, "DeployedMode"): ("deployed mode", "not in deployed mode"),
    (guids.EFI_GLOBAL_VARIABLE, "VendorKeys"): (
        "only the platform vendor's keys are enrolled",
        "keys were changed since manufacture",
    ),
    (guids.EFI_SECURE_BOOT_ENABLE_DISABLE, "SecureBootEnable"): (
        "Secure Boot enabled (enforced once PK is enrolled)",
        "Secure Boot disabled",
    ),
    (guids.EFI_CUSTOM_MODE_ENABLE, "CustomMode"): (
        "custom mode: the platform owner may change keys without signatures",
        "standard mode",
    ),
    (guids.EFI_VENDOR_KEYS_NV, "VendorKeysNv"): (
        "only the platform vendor's keys are enrolled",
        "keys were changed since manufacture",
    ),
    (guids.SHIM_LOCK, "MokSBState"): (
        "shim does not verify signatures (insecure mode)",
        "shim verifies signatures",
    ),
    (guids.SHIM_LOCK, "MokSBStateRT"): (
        "shim does not verify signatures (insecure mode)",
        "shim verifies signatures",
    ),
    (guids.SHIM_LOCK, "MokDBState"): ("shim does not use db", "shim uses db"),
    (guids.SHIM_LOCK, "MokIgnoreDB"): (
        "the OS should not import db certificates",
        "the OS may import db certificates",
    ),
}
# shim's debugging switches: any nonzero little-endian value of up to 8 bytes is "on"
# (shim lib/console.c setup_verbosity; virt-firmware writes a u32 1).
_SHIM_SWITCHES: Final[dict[str, str]] = {
    "SHIM_VERBOSE": "shim prints verbose messages",
    "SHIM_DEVEL_VERBOSE": "shim (devel build) prints verbose messages",
    "SHIM_DEBUG": "shim waits for a debugger at start",
    "SHIM_DEVEL_DEBUG": "shim (devel build) waits for a debugger at start",
    "FALLBACK_VERBOSE": "fallback prints verbose messages",
    "FALLBACK_DEVEL_VERBOSE": "fallback (devel build) prints verbose messages",
    "FB_NO_REBOOT": "fallback does not reset after creating boot entries",
}
_SIGNATURE_DATABASES: Final[frozenset[tuple[uuid.UUID, str]]] = frozenset(
    {
        *((guids.EFI_GLOBAL_VARIABLE, n) for n in ("PK", "KEK")),
        *(
            (guids.EFI_GLOBAL_VARIABLE, f"{n}Default")
            for n in ("PK", "KEK", "db", "dbx", "dbt", "dbr")
        ),
        *((guids.EFI_IMAGE_SECURITY_DATABASE, n) for n in ("db", "dbx", "dbt", "dbr")),
        *(
            (guids.SHIM_LOCK, n)
            for n in ("MokList", "MokListRT", "MokListX", "MokListXRT", "MokNew", "MokDel",
                      "MokXNew", "MokXDel")
        ),
    }
)
_DEVICE_PATHS: Final = frozenset(
    {"ConIn", "ConOut", "ErrOut", "ConInDev", "ConOutDev", "ErrOutDev"}
)
# Boot####, Driver####, SysPrep####, PlatformRecovery####: four upper-case hex digits.
_LOAD_OPTION_PREFIXES: Final = frozenset({"Boot", "Driver", "SysPrep", "PlatformRecovery"})
_UPPER_HEX: Final = frozenset("0123456789ABCDEF")
_ORDER_PREFIX: Final[dict[str, str]] = {
    "BootOrder": "Boot",
    "DriverOrder": "Driver",
    "SysPrepOrder": "SysPrep",
}

# -- helpers ----------------------------------------------------------------------------


def _name(guid: uuid.UUID) -> str | None:
    return guids.guid_name(guid)


def _int(data: bytes, size: int, what: str) -> int:
    if len(data) != size:
        raise ParseError(f"{what} is {size} bytes, the variable has {len(data)}", offset=0)
    return int.from_bytes(data, "little")


def _nul_string(data: bytes, what: str) -> str:
    """ASCII text, NUL-terminated as edk2 stores Lang and PlatformLang (a missing NUL is
    tolerated; bytes after the NUL are an error)."""
    text = data
    if data.endswith(b"\0"):
        text = data[:-1]
    if b"\0" in text:
        raise ParseError(f"{what} has bytes after its NUL", offset=text.index(b"\0"))
    try:
        return text.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{what} is not ASCII", offset=exc.start) from None


# -- decoders ---------------------------------------------------------------------------


def _boolean(meanings: tuple[str, str]) -> Callable[[str, bytes], Decoded]:
    def decode(name: str, data: bytes) -> Decoded:
        raw = _int(data, 1, f"{name} (UINT8)")
        on, off = meanings
        if raw not in (0, 1):
            return DecodedBoolean(
                "boolean", True, raw, f"{raw:#04x} is neither 0 nor 1; {on}",
                f"{raw:#04x} (not 0/1)",
            )
        meaning = on if raw else off
        return DecodedBoolean("boolean", bool(raw), raw, meaning, f"{raw} ({meaning})")

    return decode


def _shim_switch(name: str, data: bytes) -> Decoded:
    if not 1 <= len(data) <= 8:
        raise ParseError(f"{name} should be 1 to 8 bytes, it has {len(data)}", offset=0)
    raw = int.from_bytes(data, "little")
    what = _SHIM_SWITCHES[name]
    meaning = what if raw else f"off ({what} when nonzero)"
    return DecodedBoolean("boolean", raw != 0, raw, meaning, f"{raw} ({'on' if raw else 'off'})")


def _timeout(name: str, data: bytes) -> Decoded:
    value = _int(data, 2, "Timeout (UINT16)")
    meaning = "wait for a key" if value == 0xFFFF else f"boot after {value} s"
    return DecodedInteger("integer", value, 2, (), meaning, meaning)


def _option_number(name: str, data: bytes) -> Decoded:
    value = _int(data, 2, f"{name} (UINT16)")
    option = f"Boot{value:04X}"
    return DecodedInteger("integer", value, 2, (option,), option, option)


def _order(name: str, data: bytes) -> Decoded:
    if len(data) % 2:
        raise ParseError(f"{name} has an odd size {len(data)}", offset=len(data) - 1)
    numbers = tuple(v for (v,) in struct.iter_unpack("<H", data))
    prefix = _ORDER_PREFIX[name]
    options = tuple(f"{prefix}{n:04X}" for n in numbers)
    summary = ",".join(f"{n:04X}" for n in numbers)
    return DecodedOptionOrder("option-order", numbers, options, summary)


def _load_option(name: str, data: bytes) -> Decoded:
    from fwtools.formats.efi.loadoption import LoadOption

    option = LoadOption.parse(data)
    paths = tuple(option.path_texts)
    guid = option.optional_data_guid
    flags = "" if option.active else " [inactive]"
    text = option.optional_data_text
    summary = f"{option.description!r}: {paths[0] if paths else '(no path)'}{flags}"
    if text is not None:
        summary += f" {text!r}"
    return DecodedLoadOption(
        "load-option",
        option.description,
        option.attributes,
        tuple(option.attribute_names),
        option.active,
        option.hidden,
        option.category_name,
        paths,
        option.optional_data,
        text,
        str(guid) if guid is not None else None,
        _name(guid) if guid is not None else None,
        summary,
    )


def _device_path(name: str, data: bytes) -> Decoded:
    from fwtools.formats.efi.devicepath import device_path_text, parse_device_path

    instances = parse_device_path(data)
    texts = tuple(device_path_text([i]) for i in instances)
    text = device_path_text(instances)
    return DecodedDevicePath("device-path", text, texts, text)


# Digest sizes of the hash list types (hashlib's digest_size, without importing hashlib).
_DIGEST_SIZE: Final[dict[str, int]] = {
    "sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64,
}


def _signature_database(name: str, data: bytes, digests: bool = True) -> Decoded:
    """The lists and entries; ``digests=False`` leaves X.509 entries' ``sha256`` None (a
    one-line summary does not show it, and hashing costs time)."""
    from fwtools.formats.efi.siglist import HASH_ALGORITHM, SignatureDatabase

    db = SignatureDatabase.parse(data, structure=f"{name} EFI_SIGNATURE_LIST")
    lists = []
    for sl in db.lists:
        entries = []
        for entry in sl.entries:
            owner_name = _name(entry.owner)
            algorithm = HASH_ALGORITHM.get(sl.signature_type)
            if sl.is_x509:
                sha256 = None
                if digests:
                    sha256 = sha256_hex(entry.data)
                entries.append(
                    DecodedSignatureEntry(str(entry.owner), owner_name, len(entry.data),
                                          sha256=sha256)
                )
            elif algorithm is not None:
                digest = entry.data[: _DIGEST_SIZE[algorithm]]
                entries.append(
                    DecodedSignatureEntry(
                        str(entry.owner), owner_name, len(entry.data), algorithm, digest.hex()
                    )
                )
            else:
                entries.append(DecodedSignatureEntry(str(entry.owner), owner_name, len(entry.data)))
        lists.append(
            DecodedSignatureList(
                str(sl.signature_type),
                _name(sl.signature_type),
                sl.signature_size,
                len(sl.entries),
                tuple(entries),
            )
        )
    kinds = ", ".join(
        f"{len(sl.entries)} {(_name(sl.signature_type) or str(sl.signature_type))}"
        for sl in db.lists
    )
    summary = f"{db.count} entries ({kinds})" if db.lists else "empty"
    return DecodedSignatureDatabase("signature-database", db.count, tuple(lists), summary)


def _mok_trusted(name: str, data: bytes, digests: bool = True) -> Decoded:
    # shim 15.6+ stores MokListTrusted as a one-byte switch (mokutil --trust-mok); treat
    # anything longer as signature lists, as some tools write.
    if len(data) == 1:
        return _boolean(
            ("the kernel trusts MokList keys for its machine keyring",
             "MokList keys are not trusted by the kernel")
        )(name, data)
    return _signature_database(name, data, digests)


def _sbat_level(name: str, data: bytes) -> Decoded:
    from fwtools.formats.sbat import parse_sbat_level

    level = parse_sbat_level(data, strict=False)
    entries = tuple(DecodedSbatEntry(e.component, e.generation) for e in level.entries)
    shown = ", ".join(f"{e.component}={e.generation}" for e in entries)
    summary = f"{level.datestamp}: {shown}" if shown else level.datestamp
    return DecodedSbatLevel(
        "sbat-level", level.version, level.datestamp, entries, tuple(level.warnings), summary
    )


# certdb (SecurityPkg AuthServiceInternal.h, InsertCertsToDb): u32 total size (including
# itself), then nodes {VendorGuid, CertNodeSize u32, NameSize u32 (characters, no NUL),
# CertDataSize u32, Name (UCS-2, no NUL), CertData (the signer digest)}.
CERT_DB_NODE: Final = struct.Struct("<16sIII")


def _certdb(name: str, data: bytes) -> Decoded:
    if len(data) < 4:
        raise ParseError(f"{name} needs a 4-byte size, has {len(data)} bytes", offset=0)
    total = int.from_bytes(data[:4], "little")
    if total != len(data):
        raise ParseError(f"size field {total} differs from the data size {len(data)}", offset=0)
    entries = []
    pos = 4
    while pos < total:
        if total - pos < CERT_DB_NODE.size:
            raise ParseError("truncated certdb node header", offset=pos)
        raw_guid, node_size, name_chars, cert_size = CERT_DB_NODE.unpack_from(data, pos)
        expected = CERT_DB_NODE.size + 2 * name_chars + cert_size
        if node_size != expected or node_size > total - pos:
            raise ParseError(
                f"CertNodeSize {node_size} does not match its parts ({expected}) or the data",
                offset=pos + 16,
            )
        name_at = pos + CERT_DB_NODE.size
        var_name = data[name_at : name_at + 2 * name_chars].decode("utf-16-le", "replace")
        digest = data[name_at + 2 * name_chars : pos + node_size]
        vendor = uuid.UUID(bytes_le=raw_guid)
        entries.append(DecodedCertDbEntry(var_name, str(vendor), _name(vendor), digest.hex()))
        pos += node_size
    summary = ", ".join(e.name for e in entries) if entries else "empty"
    return DecodedCertDb("certdb", total, tuple(entries), summary)


def _guid_list(name: str, data: bytes) -> Decoded:
    if len(data) % 16:
        raise ParseError(f"{name} size {len(data)} is not a multiple of 16", offset=0)
    values = [guid_from_bytes(data, i) for i in range(0, len(data), 16)]
    names = tuple(_name(g) for g in values)
    summary = ", ".join(n or str(g) for g, n in zip(values, names, strict=True))
    return DecodedGuidList("guid-list", tuple(str(g) for g in values), names, summary)


def _lang(name: str, data: bytes) -> Decoded:
    value = _nul_string(data, name)
    return DecodedString("string", value, "ascii", (value,), value)


def _lang_codes(name: str, data: bytes) -> Decoded:
    value = _nul_string(data, name)
    if name == "LangCodes":  # ISO 639-2: three letters each, concatenated
        codes = tuple(value[i : i + 3] for i in range(0, len(value), 3))
    else:  # RFC 4646, separated by ';'
        codes = tuple(c for c in value.split(";") if c)
    return DecodedString("string", value, "ascii", codes, ", ".join(codes))


def _os_indications(name: str, data: bytes) -> Decoded:
    value = _int(data, 8, f"{name} (UINT64)")
    names = tuple(bit_names(value, OS_INDICATIONS_BITS))
    return DecodedInteger(
        "integer", value, 8, names, "", f"{value:#x} ({', '.join(names) or 'none'})"
    )


def _boot_option_support(name: str, data: bytes) -> Decoded:
    value = _int(data, 4, f"{name} (UINT32)")
    names = tuple(bit_names(value & ~BOOT_OPTION_SUPPORT_COUNT, BOOT_OPTION_SUPPORT_BITS))
    count = (value & BOOT_OPTION_SUPPORT_COUNT) >> 8
    meaning = f"hot keys of up to {count} keys" if value & 0x1 else ""
    return DecodedInteger(
        "integer", value, 4, names, meaning, f"{value:#x} ({', '.join(names) or 'none'})"
    )


def _u32(meaning: str) -> Callable[[str, bytes], Decoded]:
    def decode(name: str, data: bytes) -> Decoded:
        value = _int(data, 4, f"{name} (UINT32)")
        return DecodedInteger("integer", value, 4, (), meaning, str(value))

    return decode


def _u16(meaning: str) -> Callable[[str, bytes], Decoded]:
    def decode(name: str, data: bytes) -> Decoded:
        value = _int(data, 2, f"{name} (UINT16)")
        return DecodedInteger("integer", value, 2, (), meaning, str(value))

    return decode


def _var_error_flag(name: str, data: bytes) -> Decoded:
    value = _int(data, 1, f"{name} (UINT8)")
    meaning = VAR_ERROR_FLAGS.get(value, "unknown error flag")
    return DecodedInteger("integer", value, 1, (), meaning, f"{value:#04x} ({meaning})")


KEY_OPTION_HEADER: Final = struct.Struct("<IIH")


def _key_option(name: str, data: bytes) -> Decoded:
    if len(data) < KEY_OPTION_HEADER.size:
        raise ParseError(f"EFI_KEY_OPTION needs {KEY_OPTION_HEADER.size} bytes", offset=0)
    key_data, crc, boot = KEY_OPTION_HEADER.unpack_from(data)
    count = key_data >> 30
    want = KEY_OPTION_HEADER.size + 4 * count
    if len(data) != want:
        raise ParseError(f"InputKeyCount {count} needs {want} bytes, the variable has "
                         f"{len(data)}", offset=0)
    keys = []
    for i in range(count):
        scan, char = struct.unpack_from("<HH", data, KEY_OPTION_HEADER.size + 4 * i)
        if scan:
            keys.append(SCAN_CODES.get(scan, f"scan {scan:#x}"))
        else:
            keys.append(chr(char) if 0x20 <= char < 0xD800 else f"char {char:#x}")
    modifiers = tuple(bit_names(key_data & 0x3F00, KEY_MODIFIERS))
    option = f"Boot{boot:04X}"
    combo = "+".join((*modifiers, *keys)) or "(no key)"
    return DecodedKeyOption("key-option", option, crc, modifiers, tuple(keys),
                            f"{combo} -> {option}")


def _memory_type_information(name: str, data: bytes) -> Decoded:
    if len(data) % 8:
        raise ParseError(f"size {len(data)} is not a multiple of 8", offset=0)
    entries = []
    for kind, pages in struct.iter_unpack("<II", data):
        label = MEMORY_TYPES[kind] if kind < len(MEMORY_TYPES) else f"{kind:#x}"
        entries.append((label, pages))
    summary = ", ".join(f"{k}={p}" for k, p in entries)
    return DecodedMemoryTypeInformation("memory-type-information", tuple(entries), summary)


# -- dispatch ---------------------------------------------------------------------------

_Decoder = Callable[[str, bytes], Decoded]

_BY_NAME: Final[dict[tuple[uuid.UUID, str], tuple[str, _Decoder]]] = {
    **{key: ("boolean", _boolean(m)) for key, m in _BOOLEANS.items()},
    **{(guids.SHIM_LOCK, n): ("boolean", _shim_switch) for n in _SHIM_SWITCHES},
    **{key: ("signature-database", _signature_database) for key in _SIGNATURE_DATABASES},
    **{(guids.EFI_GLOBAL_VARIABLE, n): ("device-path", _device_path) for n in _DEVICE_PATHS},
    **{(guids.EFI_GLOBAL_VARIABLE, n): ("option-order", _order) for n in _ORDER_PREFIX},
    (guids.EFI_GLOBAL_VARIABLE, "Timeout"): ("integer", _timeout),
    (guids.EFI_GLOBAL_VARIABLE, "BootCurrent"): ("integer", _option_number),
    (guids.EFI_GLOBAL_VARIABLE, "BootNext"): ("integer", _option_number),
    (guids.EFI_GLOBAL_VARIABLE, "Lang"): ("string", _lang),
    (guids.EFI_GLOBAL_VARIABLE, "PlatformLang"): ("string", _lang),
    (guids.EFI_GLOBAL_VARIABLE, "LangCodes"): ("string", _lang_codes),
    (guids.EFI_GLOBAL_VARIABLE, "PlatformLangCodes"): ("string", _lang_codes),
    (guids.EFI_GLOBAL_VARIABLE, "OsIndications"): ("integer", _os_indications),
    (guids.EFI_GLOBAL_VARIABLE, "OsIndicationsSupported"): ("integer", _os_indications),
    (guids.EFI_GLOBAL_VARIABLE, "BootOptionSupport"): ("integer", _boot_option_support),
    (guids.EFI_GLOBAL_VARIABLE, "SignatureSupport"): ("guid-list", _guid_list),
    (guids.EFI_GLOBAL_VARIABLE, "OsRecoveryOrder"): ("guid-list", _guid_list),
    (guids.EFI_GLOBAL_VARIABLE, "HwErrRecSupport"): (
        "integer", _u16("hardware error record persistence support level"),
    ),
    (guids.SHIM_LOCK, "MokListTrusted"): ("boolean", _mok_trusted),
    (guids.SHIM_LOCK, "MokListTrustedRT"): ("boolean", _mok_trusted),
    (guids.SHIM_LOCK, "SbatLevel"): ("sbat-level", _sbat_level),
    (guids.SHIM_LOCK, "SbatLevelRT"): ("sbat-level", _sbat_level),
    (guids.EFI_CERT_DB, "certdb"): ("certdb", _certdb),
    (guids.EFI_CERT_DB, "certdbv"): ("certdb", _certdb),
    (guids.MTC_VENDOR, "MTC"): ("integer", _u32("monotonic counter, high 32 bits")),
    (guids.VAR_ERROR_FLAG, "VarErrorFlag"): ("integer", _var_error_flag),
    (guids.MEMORY_TYPE_INFORMATION, "MemoryTypeInformation"): (
        "memory-type-information", _memory_type_information,
    ),
}


def _decoder_for(name: str, guid: uuid.UUID) -> tuple[str, _Decoder] | None:
    found = _BY_NAME.get((guid, name))
    if found is not None:
        return found
    if guid == guids.EFI_GLOBAL_VARIABLE:
        prefix, number = name[:-4], name[-4:]
        if len(number) == 4 and _UPPER_HEX.issuperset(number):
            if prefix in _LOAD_OPTION_PREFIXES:
                return "load-option", _load_option
            if prefix == "Key":
                return "key-option", _key_option
    return None


def is_known(name: str, guid: uuid.UUID) -> bool:
    """Whether :func:`decode_variable` has a decoder for this variable."""
    return _decoder_for(name, guid) is not None


def decode_variable(name: str, guid: uuid.UUID, data: bytes, *, digests: bool = True
                    ) -> Decoded | None:
    """Decode a variable's data by its vendor GUID and (case-sensitive) name.

    Returns None for variables without a decoder, :class:`DecodedInvalid` when the data
    does not fit, else one of the ``Decoded*`` records. Never raises. ``digests=False``
    skips what only a full view shows: the SHA-256 of each certificate in a signature
    database (``sha256`` is None then).
    """
    found = _decoder_for(name, guid)
    if found is None:
        return None
    kind, decoder = found
    try:
        if not digests and decoder in (_signature_database, _mok_trusted):
            return decoder(name, bytes(data), False)
        return decoder(name, bytes(data))
    except FwError as exc:
        offset = getattr(exc, "offset", None)
        message = getattr(exc, "message", str(exc))
        structure = getattr(exc, "structure", None)
        text = f"{structure}: {message}" if structure else str(message)
        return DecodedInvalid(kind, text, offset, f"malformed: {text}")
    except Exception as exc:  # the contract is "never raises"; tests fuzz for these
        text = f"internal error: {exc.__class__.__name__}: {exc}"
        return DecodedInvalid(kind, text, None, text)


__all__ = [
    "Decoded",
    "DecodedBoolean",
    "DecodedCertDb",
    "DecodedCertDbEntry",
    "DecodedDevicePath",
    "DecodedGuidList",
    "DecodedInteger",
    "DecodedInvalid",
    "DecodedKeyOption",
    "DecodedLoadOption",
    "DecodedMemoryTypeInformation",
    "DecodedOptionOrder",
    "DecodedSbatEntry",
    "DecodedSbatLevel",
    "DecodedSignatureDatabase",
    "DecodedSignatureEntry",
    "DecodedSignatureList",
    "DecodedString",
    "decode_variable",
    "is_known",
]
