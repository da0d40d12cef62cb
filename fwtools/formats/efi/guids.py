"""Well-known EFI GUIDs: one registry, with friendly names, and the reverse lookup.

Sources: edk2 MdePkg/Include/Guid/ImageAuthentication.h, GlobalVariable.h,
SecurityPkg/SecurityPkg.dec (certdb, SecureBootEnable, CustomMode, VendorKeysNv), OvmfPkg.dec
and OvmfPkg/EnrollDefaultKeys; shim's MokVars.txt and lib/guid.c (SHIM_LOCK);
microsoft/secureboot_objects; rhboot/efivar ``src/guids.txt``; fwupd
``libfwupdplugin/fu-efi-signature.h``. Signature owners (EFI_SIGNATURE_DATA.SignatureOwner)
are listed only where a source or a measured file names them; each entry says which.
"""

from __future__ import annotations

import uuid
from typing import Final

# -- variable namespaces (VendorGuid) ---------------------------------------------------

EFI_GLOBAL_VARIABLE: Final = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
EFI_IMAGE_SECURITY_DATABASE: Final = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
# shim's MOK and SBAT variables (MokList, MokListX, MokListTrusted, SbatLevel, ...).
SHIM_LOCK: Final = uuid.UUID("605dab50-e046-4300-abb6-3dd810dd8b23")
# SecurityPkg.dec: gEfiCertDbGuid ("certdb", "certdbv"), gEfiSecureBootEnableDisableGuid,
# gEfiCustomModeEnableGuid, gEfiVendorKeysNvGuid.
EFI_CERT_DB: Final = uuid.UUID("d9bee56e-75dc-49d9-b4d7-b534210f637a")
EFI_SECURE_BOOT_ENABLE_DISABLE: Final = uuid.UUID("f0a30bc7-af08-4556-99c4-001009c93a44")
EFI_CUSTOM_MODE_ENABLE: Final = uuid.UUID("c076ec0c-7028-4399-a072-71ee5c448b9f")
EFI_VENDOR_KEYS_NV: Final = uuid.UUID("9073e4e0-60ec-4b6e-9903-4c223c260f3c")
# MdeModulePkg.dec gMtcVendorGuid (Include/Guid/MtcVendor.h): "MTC", the high 32 bits of the
# monotonic counter (MonotonicCounterRuntimeDxe).
MTC_VENDOR: Final = uuid.UUID("eb704011-1402-11d3-8e77-00a0c969723b")
# MdeModulePkg.dec gEdkiiVarErrorFlagGuid (Include/Guid/VarErrorFlag.h): "VarErrorFlag".
VAR_ERROR_FLAG: Final = uuid.UUID("04b37fe8-f6ae-480b-bdd5-37d98c5e89aa")
# MdeModulePkg.dec gEfiMemoryTypeInformationGuid: "MemoryTypeInformation".
MEMORY_TYPE_INFORMATION: Final = uuid.UUID("4c19049f-4137-4dd3-9c10-8b97a83ffdfa")
# UefiBootManagerLib BmBoot.c mBmAutoCreateBootOptionGuid: the OptionalData of the boot
# options edk2's BDS creates for every bootable device (measured in OVMF-written Boot####).
EDK2_AUTO_CREATED_BOOT_OPTION: Final = uuid.UUID("8108ac4e-9f11-4d59-850e-e21a522c59b2")

# -- WIN_CERTIFICATE_UEFI_GUID.CertType -------------------------------------------------

CERT_TYPE_PKCS7: Final = uuid.UUID("4aafd29d-68df-49ee-8aa9-347d375665a7")
CERT_TYPE_RSA2048_SHA256: Final = uuid.UUID("a7717414-c616-4977-9420-844712a735bf")

# -- signature owners (EFI_SIGNATURE_DATA.SignatureOwner) -------------------------------

# OvmfPkg.dec gMicrosoftVendorGuid; every object in microsoft/secureboot_objects.
MICROSOFT: Final = uuid.UUID("77fa9abd-0359-4d32-bd60-28f4e78f784b")
# secureboot_objects scripts/utility_functions.py: owner of the SVN entries in dbx.
MICROSOFT_SVN: Final = uuid.UUID("9d132b6c-59d5-4388-ab1c-185cfcb2eb92")
# OvmfPkg/EnrollDefaultKeys/EnrollDefaultKeys.inf FILE_GUID: owner of the KEK/db/dbx
# entries EnrollDefaultKeys.efi writes (virt-firmware calls it OvmfEnrollDefaultKeys).
OVMF_ENROLL_DEFAULT_KEYS: Final = uuid.UUID("a0baa8a3-041d-48a8-bc87-c36d121b5e3d")
# fwupd fu-efi-signature.h FU_EFI_SIGNATURE_GUID_OVMF_LEGACY: older OVMF enrollment.
OVMF_LEGACY: Final = uuid.UUID("d5c1df0b-1bac-4edf-ba48-08834009ca5a")
# fwupd fu-efi-signature.h FU_EFI_SIGNATURE_GUID_FRAMEWORK.
FRAMEWORK: Final = uuid.UUID("6841bdb0-b2af-4079-918f-fe458325d5cd")
# efivar guids.txt "canonical"; secureboot_objects' key-export script shows it as the owner
# of "Canonical Ltd. Master Certificate Authority" in db and KEK.
CANONICAL: Final = uuid.UUID("6dc40ae4-2ee8-9c4c-a314-0fc7b2008710")
# efivar guids.txt "redhat" ("Red Hat").
RED_HAT: Final = uuid.UUID("0223eddb-9079-4388-af77-2d65b1c35d3b")
# efivar guids.txt "redhat_2" ("Red Hat Maybe"); measured: the owner of every entry of the
# vendor dbx in Debian bookworm's shim 15.8 (shimx64.efi and shimaa64.efi).
RED_HAT_2: Final = uuid.UUID("ade9e48f-9cb8-98e6-31af-b4e6009e2fe3")
# Measured: the owner of the vendor dbx (one SHA-256 list) in Debian trixie's shim 16.1.
DEBIAN_SHIM_DBX: Final = uuid.UUID("fa31923d-6047-40bf-81d0-e63edefcf194")
NIL: Final = uuid.UUID(int=0)

# -- signature types (EFI_SIGNATURE_LIST.SignatureType) ---------------------------------

CERT_SHA1: Final = uuid.UUID("826ca512-cf10-4ac9-b187-be01496631bd")
CERT_SHA224: Final = uuid.UUID("0b6e5233-a65c-44c9-9407-d9ab83bfc8bd")
CERT_SHA256: Final = uuid.UUID("c1c41626-504c-4092-aca9-41f936934328")
CERT_SHA384: Final = uuid.UUID("ff3e5307-9fd0-48c9-85f1-8ad56c701e01")
CERT_SHA512: Final = uuid.UUID("093e0fae-a6c4-4f50-9f1b-d41e2b89c19a")
CERT_RSA2048: Final = uuid.UUID("3c5766e8-269c-4e34-aa14-ed776e85b3b6")
CERT_RSA2048_SHA256: Final = uuid.UUID("e2b36190-879b-4a3d-ad8d-f2e7bba32784")
CERT_RSA2048_SHA1: Final = uuid.UUID("67f8444f-8743-48f1-a328-1eaab8736080")
CERT_X509: Final = uuid.UUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")
CERT_X509_SHA256: Final = uuid.UUID("3bd2a492-96c0-4079-b420-fcf98ef103ed")
CERT_X509_SHA384: Final = uuid.UUID("7076876e-80c2-4ee6-aad2-28b349a6865b")
CERT_X509_SHA512: Final = uuid.UUID("446dbf63-2502-4cda-bcfa-2465d2b0fe9d")
CERT_SM3: Final = uuid.UUID("57347f87-7a9b-403a-b93c-dc4afb7a0ebc")
CERT_X509_SM3: Final = uuid.UUID("60d807e5-10b4-49a9-9331-e40437888d37")

NAMES: Final[dict[uuid.UUID, str]] = {
    EFI_GLOBAL_VARIABLE: "EfiGlobalVariable",
    EFI_IMAGE_SECURITY_DATABASE: "EfiImageSecurityDatabase",
    SHIM_LOCK: "ShimLock",
    EFI_CERT_DB: "EfiCertDb",
    EFI_SECURE_BOOT_ENABLE_DISABLE: "EfiSecureBootEnableDisable",
    EFI_CUSTOM_MODE_ENABLE: "EfiCustomModeEnable",
    EFI_VENDOR_KEYS_NV: "EfiVendorKeysNv",
    MTC_VENDOR: "MtcVendor",
    VAR_ERROR_FLAG: "EdkiiVarErrorFlag",
    MEMORY_TYPE_INFORMATION: "EfiMemoryTypeInformation",
    EDK2_AUTO_CREATED_BOOT_OPTION: "Edk2AutoCreatedBootOption",
    MICROSOFT: "Microsoft",
    MICROSOFT_SVN: "MicrosoftSvn",
    OVMF_ENROLL_DEFAULT_KEYS: "OvmfEnrollDefaultKeys",
    OVMF_LEGACY: "OvmfLegacy",
    FRAMEWORK: "Framework",
    CANONICAL: "Canonical",
    RED_HAT: "RedHat",
    RED_HAT_2: "RedHat2",
    DEBIAN_SHIM_DBX: "DebianShimDbx",
    NIL: "Zero",
    CERT_TYPE_PKCS7: "EfiCertTypePkcs7",
    CERT_TYPE_RSA2048_SHA256: "EfiCertTypeRsa2048Sha256",
    CERT_SHA1: "EfiCertSha1",
    CERT_SHA224: "EfiCertSha224",
    CERT_SHA256: "EfiCertSha256",
    CERT_SHA384: "EfiCertSha384",
    CERT_SHA512: "EfiCertSha512",
    CERT_RSA2048: "EfiCertRsa2048",
    CERT_RSA2048_SHA256: "EfiCertRsa2048Sha256",
    CERT_RSA2048_SHA1: "EfiCertRsa2048Sha1",
    CERT_X509: "EfiCertX509",
    CERT_X509_SHA256: "EfiCertX509Sha256",
    CERT_X509_SHA384: "EfiCertX509Sha384",
    CERT_X509_SHA512: "EfiCertX509Sha512",
    CERT_SM3: "EfiCertSm3",
    CERT_X509_SM3: "EfiCertX509Sm3",
}

# Other spellings accepted by guid_by_name: efivar's guids.txt names and virt-firmware's
# (``guid:MicrosoftVendor``), plus the variable names people reach for.
ALIASES: Final[dict[str, uuid.UUID]] = {
    "global": EFI_GLOBAL_VARIABLE,
    "efiglobal": EFI_GLOBAL_VARIABLE,
    "security": EFI_IMAGE_SECURITY_DATABASE,
    "imagesecuritydatabase": EFI_IMAGE_SECURITY_DATABASE,
    "shim": SHIM_LOCK,
    "shimlockguid": SHIM_LOCK,
    "microsoftvendor": MICROSOFT,
    "ms": MICROSOFT,
    "microsoftsvn": MICROSOFT_SVN,
    "ovmf": OVMF_ENROLL_DEFAULT_KEYS,
    "redhat_2": RED_HAT_2,
    "zero": NIL,
    "nil": NIL,
    "none": NIL,
    "x509_cert": CERT_X509,
    "x509": CERT_X509,
    "sha1": CERT_SHA1,
    "sha224": CERT_SHA224,
    "sha256": CERT_SHA256,
    "sha384": CERT_SHA384,
    "sha512": CERT_SHA512,
    "x509_sha256": CERT_X509_SHA256,
    "x509_sha384": CERT_X509_SHA384,
    "x509_sha512": CERT_X509_SHA512,
    "pkcs7_cert": CERT_TYPE_PKCS7,
}

_BY_NAME: Final[dict[str, uuid.UUID]] = {
    **{name.lower(): guid for guid, name in NAMES.items()},
    **ALIASES,
}


def guid_name(guid: uuid.UUID) -> str | None:
    """The friendly name of a well-known GUID, or None."""
    return NAMES.get(guid)


def guid_by_name(name: str) -> uuid.UUID | None:
    """The GUID a friendly name stands for, or None.

    Case-insensitive; accepts the names of :data:`NAMES` (``Microsoft``,
    ``OvmfEnrollDefaultKeys``, ``EfiCertSha256``), the :data:`ALIASES` (efivar and
    virt-firmware spellings such as ``microsoft``, ``global``, ``MicrosoftVendor``), and a
    ``guid:`` prefix as virt-firmware prints it.
    """
    key = name.strip().lower()
    if key.startswith("guid:"):
        key = key[5:]
    return _BY_NAME.get(key)
