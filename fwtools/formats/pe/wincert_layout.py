"""WIN_CERTIFICATE, the header of an Authenticode certificate table entry and of the
authentication descriptor of a time-based authenticated variable (UEFI 2.10 §32.2.4 and
§8.2.2): in a module of its own, so that variable stores use it without loading the PE
header layouts."""

from __future__ import annotations

from typing import Final

from fwtools._base.layout import Layout

# WIN_CERTIFICATE (wintrust.h / UEFI 2.10 §32.2.4), the header of each certificate table entry.
WIN_CERTIFICATE: Final = Layout("WIN_CERTIFICATE", (
    ("dwLength", "I"),  # header included
    ("wRevision", "H"),
    ("wCertificateType", "H"),
))
WIN_CERT_REVISION_1_0: Final = 0x0100
WIN_CERT_REVISION_2_0: Final = 0x0200
WIN_CERT_TYPE_X509: Final = 0x0001
WIN_CERT_TYPE_PKCS_SIGNED_DATA: Final = 0x0002
WIN_CERT_TYPE_EFI_PKCS115: Final = 0x0EF0
WIN_CERT_TYPE_EFI_GUID: Final = 0x0EF1
WIN_CERT_TYPES: Final[dict[int, str]] = {
    WIN_CERT_TYPE_X509: "X509",
    WIN_CERT_TYPE_PKCS_SIGNED_DATA: "PKCS_SIGNED_DATA",
    WIN_CERT_TYPE_EFI_PKCS115: "EFI_PKCS115",
    WIN_CERT_TYPE_EFI_GUID: "EFI_GUID",
}
# Entries of the attribute certificate table are quadword aligned.
WIN_CERTIFICATE_ALIGN: Final = 8
