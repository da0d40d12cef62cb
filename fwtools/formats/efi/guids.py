"""Well-known EFI GUIDs: one registry, with friendly names.

Sources: MdePkg/Include/Guid/ImageAuthentication.h, GlobalVariable.h, OvmfPkg.dec,
shim's MokVar, microsoft/secureboot_objects.
"""

from __future__ import annotations

import uuid
from typing import Final

EFI_GLOBAL_VARIABLE: Final = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
EFI_IMAGE_SECURITY_DATABASE: Final = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
SHIM_LOCK: Final = uuid.UUID("605dab50-e046-4300-abb6-3dd810dd8b23")
MICROSOFT: Final = uuid.UUID("77fa9abd-0359-4d32-bd60-28f4e78f784b")
MICROSOFT_SVN: Final = uuid.UUID("9d132b6c-59d5-4388-ab1c-185cfcb2eb92")
OVMF_ENROLL_DEFAULT_KEYS: Final = uuid.UUID("a0baa8a3-041d-48a8-bc87-c36d121b5e3d")
CERT_TYPE_PKCS7: Final = uuid.UUID("4aafd29d-68df-49ee-8aa9-347d375665a7")

# Signature types (EFI_SIGNATURE_LIST.SignatureType).
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
    MICROSOFT: "Microsoft",
    MICROSOFT_SVN: "MicrosoftSvn",
    OVMF_ENROLL_DEFAULT_KEYS: "OvmfEnrollDefaultKeys",
    CERT_TYPE_PKCS7: "EfiCertTypePkcs7",
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


def guid_name(guid: uuid.UUID) -> str | None:
    """The friendly name of a well-known GUID, or None."""
    return NAMES.get(guid)
