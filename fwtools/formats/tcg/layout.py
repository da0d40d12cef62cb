"""TCG PC Client event log layouts, hash algorithms and fixed strings.

Reference: TCG PC Client Platform Firmware Profile Specification (PFP) 1.06 rev 52, §10
("Event Logging"): ``TCG_PCR_EVENT`` (§10.2.1, the SHA-1 form every log starts with),
``TCG_PCR_EVENT2`` (§10.2.2, crypto-agile), ``TCG_EfiSpecIdEvent`` (§10.4.5.1),
``TCG_EfiStartupLocalityEvent`` (§10.4.5.3) and the UEFI event data of §10.4.
The same structures in edk2 are ``MdePkg/Include/IndustryStandard/UefiTcgPlatform.h`` and
in Linux ``include/linux/tpm_eventlog.h``. Everything is little-endian. Summarised in
docs/reference/measured-boot.md section 1.

Each structure is declared once here; the parser (``log.py``) and the decoders
(``decode.py``) take their structs, offsets and sizes from these layouts.
"""

from __future__ import annotations

from typing import Final

from fwtools._base.layout import Layout

# -- records ---------------------------------------------------------------------------------

# TCG_PCR_EVENT (PFP §10.2.1): the only record of a SHA-1 log, and the first record (the
# Spec ID event) of a crypto-agile log.
PCR_EVENT: Final = Layout(
    "TCG_PCR_EVENT",
    (
        ("pcr_index", "I"),  # 0: PCRIndex
        ("event_type", "I"),  # 4: EventType
        ("digest", "20s"),  # 8: SHA-1 digest
        ("event_size", "I"),  # 28: EventSize, then Event[EventSize]
    ),
)

# TCG_PCR_EVENT2 (PFP §10.2.2) up to the digest list: TPML_DIGEST_VALUES.count, then
# ``count`` TPMT_HA {u16 hashAlg, digest (size from the Spec ID event)}, then u32
# EventSize and the event data.
PCR_EVENT2_HEADER: Final = Layout(
    "TCG_PCR_EVENT2",
    (
        ("pcr_index", "I"),  # 0: PCRIndex
        ("event_type", "I"),  # 4: EventType
        ("digest_count", "I"),  # 8: Digests.count
    ),
)
TPMT_HA_ALG: Final = Layout("TPMT_HA", (("hash_alg", "H"),))  # then the digest bytes
EVENT_SIZE: Final = Layout("EventSize", (("event_size", "I"),))

# TCG_EfiSpecIdEvent (PFP §10.4.5.1), the event data of the first record of a crypto-agile
# log; then numberOfAlgorithms TCG_EfiSpecIdEventAlgorithmSize, u8 vendorInfoSize and
# vendorInfo.
SPEC_ID_EVENT: Final = Layout(
    "TCG_EfiSpecIdEvent",
    (
        ("signature", "16s"),  # 0: "Spec ID Event03\0"
        ("platform_class", "I"),  # 16: 0 client, 1 server
        ("spec_version_minor", "B"),  # 20
        ("spec_version_major", "B"),  # 21
        ("spec_errata", "B"),  # 22
        ("uintn_size", "B"),  # 23: 1 = UINT32, 2 = UINT64
        ("number_of_algorithms", "I"),  # 24
    ),
)
SPEC_ID_ALGORITHM: Final = Layout(
    "TCG_EfiSpecIdEventAlgorithmSize",
    (("algorithm_id", "H"), ("digest_size", "H")),
)
SPEC_ID_SIGNATURE: Final = b"Spec ID Event03\0"
# The TCG 1.2 (SHA-1 only) log's Spec ID event, TCG_EfiSpecIDEventStruct (PFP §10.4.5.2).
SPEC_ID_SIGNATURE_SHA1: Final = b"Spec ID Event00\0"

# TCG_EfiStartupLocalityEvent (PFP §10.4.5.3): EV_NO_ACTION in PCR 0 before the first
# measurement; the locality the TPM was started from is PCR 0's initial value (§3.3.4.2).
STARTUP_LOCALITY_EVENT: Final = Layout(
    "TCG_EfiStartupLocalityEvent", (("signature", "16s"), ("startup_locality", "B"))
)
STARTUP_LOCALITY_SIGNATURE: Final = b"StartupLocality\0"

# -- event data (PFP §10.4) -----------------------------------------------------------------

# UEFI_VARIABLE_DATA (PFP §10.4.6 / UefiTcgPlatform.h): then UnicodeName (UTF-16LE, no
# NUL, UnicodeNameLength characters) and VariableData[VariableDataLength].
VARIABLE_DATA: Final = Layout(
    "UEFI_VARIABLE_DATA",
    (
        ("variable_name", "16s"),  # 0: the vendor GUID
        ("unicode_name_length", "Q"),  # 16: characters
        ("variable_data_length", "Q"),  # 24: bytes
    ),
)

# UEFI_IMAGE_LOAD_EVENT (PFP §10.4.3): then DevicePath[LengthOfDevicePath].
IMAGE_LOAD_EVENT: Final = Layout(
    "UEFI_IMAGE_LOAD_EVENT",
    (
        ("image_location_in_memory", "Q"),  # 0
        ("image_length_in_memory", "Q"),  # 8
        ("image_link_time_address", "Q"),  # 16
        ("length_of_device_path", "Q"),  # 24
    ),
)

# UEFI_PLATFORM_FIRMWARE_BLOB (PFP §10.4.4).
FIRMWARE_BLOB: Final = Layout(
    "UEFI_PLATFORM_FIRMWARE_BLOB", (("blob_base", "Q"), ("blob_length", "Q"))
)
# UEFI_PLATFORM_FIRMWARE_BLOB2 (PFP §10.4.4): u8 BlobDescriptionSize, the description,
# then this.
FIRMWARE_BLOB2_TAIL: Final = Layout(
    "UEFI_PLATFORM_FIRMWARE_BLOB2", (("blob_base", "Q"), ("blob_length", "Q"))
)

# UEFI_HANDOFF_TABLE_POINTERS (PFP §10.4.5): u64 count, then {GUID, u64 table} per table.
HANDOFF_TABLES: Final = Layout("UEFI_HANDOFF_TABLE_POINTERS", (("number_of_tables", "Q"),))
HANDOFF_TABLE_ENTRY: Final = Layout(
    "EFI_CONFIGURATION_TABLE", (("vendor_guid", "16s"), ("vendor_table", "Q"))
)

# UEFI_HANDOFF_TABLE_POINTERS2 (PFP §10.4.5): u8 TableDescriptionSize, the description, then
# the same u64 count and entries as above.

# TCG_PCClientTaggedEvent (PFP §10.4.2.1; EV_EVENT_TAG): then TaggedEventData.
TAGGED_EVENT: Final = Layout(
    "TCG_PCClientTaggedEvent", (("tagged_event_id", "I"), ("tagged_event_data_size", "I"))
)

# UEFI_GPT_DATA (PFP §10.4.7): the EFI_PARTITION_TABLE_HEADER (UEFI 2.10 §5.3.2, 92 bytes),
# u64 NumberOfPartitions, then that many EFI_PARTITION_ENTRY of SizeOfPartitionEntry each.
GPT_HEADER: Final = Layout(
    "EFI_PARTITION_TABLE_HEADER",
    (
        ("signature", "8s"),  # 0: "EFI PART"
        ("revision", "I"),  # 8
        ("header_size", "I"),  # 12
        ("header_crc32", "I"),  # 16
        ("", "4x"),  # 20: reserved
        ("my_lba", "Q"),  # 24
        ("alternate_lba", "Q"),  # 32
        ("first_usable_lba", "Q"),  # 40
        ("last_usable_lba", "Q"),  # 48
        ("disk_guid", "16s"),  # 56
        ("partition_entry_lba", "Q"),  # 72
        ("number_of_partition_entries", "I"),  # 80
        ("size_of_partition_entry", "I"),  # 84
        ("partition_entry_array_crc32", "I"),  # 88
    ),
)
GPT_PARTITION_COUNT: Final = Layout("NumberOfPartitions", (("number_of_partitions", "Q"),))
GPT_ENTRY: Final = Layout(
    "EFI_PARTITION_ENTRY",
    (
        ("partition_type_guid", "16s"),  # 0
        ("unique_partition_guid", "16s"),  # 16
        ("starting_lba", "Q"),  # 32
        ("ending_lba", "Q"),  # 40
        ("attributes", "Q"),  # 48
        ("partition_name", "72s"),  # 56: UTF-16LE, NUL padded
    ),
)

# -- hash algorithms (TCG Algorithm Registry; PFP §10.4.5.1) ---------------------------------

# TPM_ALG_ID -> (hashlib name, digest size). SM3 needs an OpenSSL with sm3 (hashlib then
# lists it); without it an SM3 bank is parsed but not replayed.
ALGORITHMS: Final[dict[int, tuple[str, int]]] = {
    0x0004: ("sha1", 20),
    0x000B: ("sha256", 32),
    0x000C: ("sha384", 48),
    0x000D: ("sha512", 64),
    0x0012: ("sm3_256", 32),
}
ALG_SHA1: Final = 0x0004
# Bank name -> the name OpenSSL (hashlib.new) knows the hash by, where they differ.
OPENSSL_NAMES: Final[dict[str, str]] = {"sm3_256": "sm3"}
ALGORITHM_IDS: Final[dict[str, int]] = {name: alg for alg, (name, _) in ALGORITHMS.items()}
# Bank names as tpm2-tools and Linux sysfs (pcr-<name>) spell them.
BANK_ALIASES: Final[dict[str, str]] = {"sm3": "sm3_256", "sm3-256": "sm3_256"}

# A digest of an algorithm outside ALGORITHMS must still have a plausible size: the Spec
# ID event declares it, and a hostile log must not make every event allocate megabytes.
MAX_DIGEST_SIZE: Final = 512
# PCRs a PC Client TPM has (PFP §3.3.4); an index above this is a record error except for
# EV_NO_ACTION, which is never extended.
PCR_COUNT: Final = 24
# PCR 17-22 (the DRTM PCRs) start as all FF bytes until a dynamic launch (PFP §3.3.4.2).
DRTM_PCRS: Final = range(17, 23)
