"""decode_variable: every variable of the corpus stores that has a decoder decodes (live
and superseded records alike), values checked against what the firmware wrote and what the
fact sheet says; hand-made payloads for the rest; malformed data gives DecodedInvalid, and
fuzzing shows it never raises."""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from pathlib import Path
from typing import Any, Final

import pytest
from corpus.params import corpus_files, need, populated_stores
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwtools.formats.efi import guids
from fwtools.formats.efi.devicepath import build_file_path
from fwtools.formats.efi.loadoption import LoadOption
from fwtools.formats.varstore.decode import (
    DecodedBoolean,
    DecodedCertDb,
    DecodedDevicePath,
    DecodedGuidList,
    DecodedInteger,
    DecodedInvalid,
    DecodedKeyOption,
    DecodedLoadOption,
    DecodedOptionOrder,
    DecodedSbatLevel,
    DecodedSignatureDatabase,
    DecodedString,
    decode_variable,
    is_known,
)
from fwtools.formats.varstore.store import VariableStore
from fwtools.report.jsonable import to_jsonable

G: Final = guids.EFI_GLOBAL_VARIABLE
SHIM: Final = guids.SHIM_LOCK
STORES: Final = populated_stores(
    "*/amd64/ovmf/usr/share/OVMF/OVMF*_VARS*.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF*_VARS*.fd",
)
SHA256_EMPTY: Final = hashlib.sha256(b"").hexdigest()


def _store(path: Path) -> VariableStore:
    return VariableStore.parse(path.read_bytes())


@pytest.mark.parametrize("path", STORES)
def test_corpus_variables_decode(path: Path | None) -> None:
    store = _store(need(path))
    decoded = 0
    for record in store.records:
        var = record.variable
        if var is None:
            continue
        result = decode_variable(var.name, var.guid, var.data)
        assert is_known(var.name, var.guid) == (result is not None)
        if result is None:
            continue
        assert not isinstance(result, DecodedInvalid), (var.name, result)
        assert result.summary
        json.dumps(to_jsonable(result))
        decoded += 1
    if store.records:
        assert decoded >= 15


@pytest.mark.parametrize(
    "path", corpus_files("bookworm/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
)
def test_bookworm_ms_store_values(path: Path | None) -> None:
    store = _store(need(path))

    def dec(name: str, guid: uuid.UUID = G) -> Any:
        var = store.get(name, guid)
        assert var is not None, name
        return decode_variable(name, guid, var.data)

    assert dec("Timeout") == DecodedInteger("integer", 0, 2, (), "boot after 0 s", "boot after 0 s")
    assert dec("Lang").value == "eng"
    assert dec("PlatformLang").value == "en"
    key = dec("Key0000")
    assert isinstance(key, DecodedKeyOption)
    assert (key.keys, key.boot_option) == (("F2",), "Boot0000")
    assert dec("Key0001").keys == ("Esc",)
    boot = dec("Boot0000")
    assert isinstance(boot, DecodedLoadOption)
    assert boot.description == "UiApp" and boot.category == "app" and boot.hidden
    assert boot.device_paths == (
        "Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(462CAA21-7614-4503-836E-8AB6F4662331)",
    )
    con = dec("ConOut")
    assert isinstance(con, DecodedDevicePath) and len(con.instances) == 2
    assert con.instances[0].endswith(
        "Serial(0x0)/Uart(115200,8,N,1)/VenMsg(E0C14753-F9BE-11D2-9A0C-0090273FC14D)"
    )
    assert dec("SecureBootEnable", guids.EFI_SECURE_BOOT_ENABLE_DISABLE).value is True
    assert dec("CustomMode", guids.EFI_CUSTOM_MODE_ENABLE).value is False
    assert dec("VendorKeysNv", guids.EFI_VENDOR_KEYS_NV).raw == 0
    assert dec("MTC", guids.MTC_VENDOR).value == 1
    assert dec("VarErrorFlag", guids.VAR_ERROR_FLAG).meaning == "no error"
    certdb = dec("certdb", guids.EFI_CERT_DB)
    assert isinstance(certdb, DecodedCertDb) and certdb.entries == () and certdb.size == 4
    # docs/reference/formats.md §2.4: EnrollDefaultKeys' dummy dbx entry, SHA-256 of nothing.
    dbx = dec("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)
    assert isinstance(dbx, DecodedSignatureDatabase) and dbx.count == 1
    entry = dbx.lists[0].entries[0]
    assert (entry.algorithm, entry.digest) == ("sha256", SHA256_EMPTY)
    assert entry.owner_name == "OvmfEnrollDefaultKeys"
    pk = dec("PK")
    assert pk.count == 1 and pk.lists[0].type_name == "EfiCertX509"
    der = store.get("PK", G).data[16 + 28 :]  # type: ignore[union-attr]
    assert pk.lists[0].entries[0].sha256 == hashlib.sha256(der).hexdigest()
    # BootOrder only survives in superseded records of this store.
    orders = [
        r.variable
        for r in store.records
        if r.variable is not None and r.variable.name == "BootOrder"
    ]
    assert orders
    order = decode_variable("BootOrder", G, orders[-1].data)
    assert isinstance(order, DecodedOptionOrder) and order.options[0].startswith("Boot")


def _u8(v: int) -> bytes:
    return bytes([v])


@pytest.mark.parametrize(
    ("name", "guid", "data", "value"),
    [
        ("SecureBoot", G, _u8(1), True),
        ("SetupMode", G, _u8(0), False),
        ("AuditMode", G, _u8(0), False),
        ("DeployedMode", G, _u8(1), True),
        ("VendorKeys", G, _u8(1), True),
        ("MokSBState", SHIM, _u8(1), True),
        ("MokDBState", SHIM, _u8(0), False),
        ("MokIgnoreDB", SHIM, _u8(1), True),
        ("SHIM_VERBOSE", SHIM, struct.pack("<I", 1), True),  # virt-firmware writes a u32
        ("SHIM_DEBUG", SHIM, _u8(0), False),
        ("FALLBACK_VERBOSE", SHIM, _u8(1), True),
        ("FB_NO_REBOOT", SHIM, struct.pack("<I", 0), False),
        ("MokListTrusted", SHIM, _u8(1), True),
    ],
)
def test_booleans(name: str, guid: uuid.UUID, data: bytes, value: bool) -> None:
    result = decode_variable(name, guid, data)
    assert isinstance(result, DecodedBoolean)
    assert result.value is value and result.meaning


def test_boolean_odd_values() -> None:
    two = decode_variable("SecureBoot", G, b"\x02")
    assert isinstance(two, DecodedBoolean) and two.raw == 2 and "neither" in two.meaning
    bad = decode_variable("SecureBoot", G, b"\x01\x00")
    assert isinstance(bad, DecodedInvalid) and bad.kind == "boolean"
    assert "1 bytes" in bad.error


def test_integers_and_bits() -> None:
    supported = decode_variable("OsIndicationsSupported", G, struct.pack("<Q", 0x4F))
    assert isinstance(supported, DecodedInteger)
    assert supported.names == (
        "BOOT_TO_FW_UI",
        "TIMESTAMP_REVOCATION",
        "FILE_CAPSULE_DELIVERY_SUPPORTED",
        "FMP_CAPSULE_SUPPORTED",
        "START_PLATFORM_RECOVERY",
    )
    assert decode_variable("OsIndications", G, struct.pack("<Q", 1 << 40)).names == (  # type: ignore[union-attr]
        "0x10000000000",
    )
    assert decode_variable("BootNext", G, b"\x0a\x00").names == ("Boot000A",)  # type: ignore[union-attr]
    assert decode_variable("BootCurrent", G, b"\x01\x00").value == 1  # type: ignore[union-attr]
    assert decode_variable("Timeout", G, b"\xff\xff").meaning == "wait for a key"  # type: ignore[union-attr]
    support = decode_variable("BootOptionSupport", G, struct.pack("<I", 0x213))
    assert support.names == ("KEY", "APP", "SYSPREP")  # type: ignore[union-attr]
    assert "2 keys" in support.meaning  # type: ignore[union-attr]


def test_orders_strings_guids() -> None:
    order = decode_variable("DriverOrder", G, struct.pack("<3H", 0, 0x1A, 3))
    assert isinstance(order, DecodedOptionOrder)
    assert order.options == ("Driver0000", "Driver001A", "Driver0003")
    assert isinstance(decode_variable("BootOrder", G, b"\x01"), DecodedInvalid)
    codes = decode_variable("LangCodes", G, b"engfra\0")
    assert isinstance(codes, DecodedString) and codes.values == ("eng", "fra")
    assert decode_variable("PlatformLangCodes", G, b"en;fr;en-US\0").values == (  # type: ignore[union-attr]
        "en",
        "fr",
        "en-US",
    )
    assert isinstance(decode_variable("Lang", G, b"en\0g\0"), DecodedInvalid)
    sigs = decode_variable(
        "SignatureSupport", G, guids.CERT_SHA256.bytes_le + guids.CERT_X509.bytes_le
    )
    assert isinstance(sigs, DecodedGuidList)
    assert sigs.names == ("EfiCertSha256", "EfiCertX509")


def test_load_option_and_device_path() -> None:
    option = LoadOption.build(
        "debian", build_file_path("\\EFI\\debian\\shimx64.efi"), "quiet".encode("utf-16-le")
    )
    result = decode_variable("Boot0003", G, option.to_bytes())
    assert isinstance(result, DecodedLoadOption)
    assert result.device_paths == ("\\EFI\\debian\\shimx64.efi",)
    assert result.optional_data_text == "quiet"
    assert "debian" in result.summary
    for name in ("Driver0001", "SysPrep0002", "PlatformRecovery0000"):
        assert isinstance(decode_variable(name, G, option.to_bytes()), DecodedLoadOption)
    # Variable names are case-sensitive; hex digits in option names are upper case.
    assert decode_variable("Boot000a", G, option.to_bytes()) is None
    assert decode_variable("boot0003", G, option.to_bytes()) is None
    assert decode_variable("Boot0003", guids.SHIM_LOCK, option.to_bytes()) is None
    broken = decode_variable("Boot0003", G, option.to_bytes()[:9])
    assert isinstance(broken, DecodedInvalid) and broken.kind == "load-option"
    assert broken.offset is not None
    path = decode_variable("ConOut", G, bytes.fromhex("7fff0500ff"))
    assert isinstance(path, DecodedInvalid) and path.offset == 2


def test_signature_databases() -> None:
    from fwtools.formats.efi.siglist import SignatureDatabase

    der = b"\x30\x03\x02\x01\x05"
    db = (
        SignatureDatabase()
        .add_certificate(der, guids.MICROSOFT)
        .add_hash(hashlib.sha256(b"x").digest(), guids.CANONICAL)
    )
    for name, guid in (
        ("db", guids.EFI_IMAGE_SECURITY_DATABASE),
        ("KEK", G),
        ("dbxDefault", G),
        ("MokListRT", SHIM),
        ("MokListX", SHIM),
    ):
        result = decode_variable(name, guid, db.to_bytes())
        assert isinstance(result, DecodedSignatureDatabase), name
        assert result.count == 2
        cert, digest = (sl.entries[0] for sl in result.lists)
        assert cert.sha256 == hashlib.sha256(der).hexdigest() and cert.owner_name == "Microsoft"
        assert digest.digest == hashlib.sha256(b"x").hexdigest()
    bad = decode_variable("db", guids.EFI_IMAGE_SECURITY_DATABASE, b"\x00" * 20)
    assert isinstance(bad, DecodedInvalid) and bad.kind == "signature-database"
    assert decode_variable("db", G, db.to_bytes()) is None  # db lives in the security GUID


def test_sbat_level() -> None:
    level = decode_variable("SbatLevel", SHIM, b"sbat,1,2024010900\nshim,4\ngrub,3\n")
    assert isinstance(level, DecodedSbatLevel)
    assert level.datestamp == "2024010900"
    assert [(e.component, e.generation) for e in level.entries] == [("shim", 4), ("grub", 3)]
    assert isinstance(
        decode_variable("SbatLevelRT", SHIM, b"sbat,1,2021030218\n"), DecodedSbatLevel
    )


def test_certdb_node() -> None:
    name = "MyVar"
    digest = hashlib.sha256(b"signer").digest()
    node_size = 28 + 2 * len(name) + len(digest)
    node = (
        guids.SHIM_LOCK.bytes_le
        + struct.pack("<III", node_size, len(name), len(digest))
        + name.encode("utf-16-le")
        + digest
    )
    data = struct.pack("<I", 4 + len(node)) + node
    result = decode_variable("certdb", guids.EFI_CERT_DB, data)
    assert isinstance(result, DecodedCertDb)
    assert [(e.name, e.vendor_name, e.digest) for e in result.entries] == [
        ("MyVar", "ShimLock", digest.hex())
    ]
    # python-uefivars writes NameSize with the NUL (docs/reference/formats.md §2.3): sizes no longer
    # add up.
    wrong = bytearray(data)
    struct.pack_into("<I", wrong, 4 + 20, len(name) + 1)
    assert isinstance(decode_variable("certdbv", guids.EFI_CERT_DB, bytes(wrong)), DecodedInvalid)


def test_unknown_variables() -> None:
    assert decode_variable("Attempt 1", uuid.uuid4(), b"\x00") is None
    assert decode_variable(
        "MemoryTypeInformation", guids.MEMORY_TYPE_INFORMATION, struct.pack("<4I", 9, 0x12, 0x10, 0)
    ).summary == (  # type: ignore[union-attr]
        "ACPIReclaim=18, 0x10=0"
    )


_KNOWN: Final = [
    ("SecureBoot", G),
    ("Timeout", G),
    ("BootOrder", G),
    ("Boot0001", G),
    ("Key0001", G),
    ("ConIn", G),
    ("Lang", G),
    ("PlatformLangCodes", G),
    ("OsIndications", G),
    ("SignatureSupport", G),
    ("BootOptionSupport", G),
    ("PK", G),
    ("dbx", guids.EFI_IMAGE_SECURITY_DATABASE),
    ("MokList", SHIM),
    ("MokListTrusted", SHIM),
    ("SbatLevel", SHIM),
    ("SHIM_VERBOSE", SHIM),
    ("certdb", guids.EFI_CERT_DB),
    ("MTC", guids.MTC_VENDOR),
    ("VarErrorFlag", guids.VAR_ERROR_FLAG),
    ("MemoryTypeInformation", guids.MEMORY_TYPE_INFORMATION),
]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_KNOWN), st.binary(max_size=120))
def test_fuzz_never_raises(known: tuple[str, uuid.UUID], data: bytes) -> None:
    name, guid = known
    result = decode_variable(name, guid, data)
    assert result is not None
    if isinstance(result, DecodedInvalid):
        assert not result.error.startswith("internal error"), result.error
    json.dumps(to_jsonable(result))
