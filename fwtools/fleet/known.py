"""What an audit recognises: Microsoft's Secure Boot CAs, the PKs of platforms and
distributions, the PKs Microsoft has signed KEK updates for, the published dbx, SbatLevel.

Certificate SHA-256s are of the DER files shipped in ``fwtools/data/microsoft`` (copied from
microsoft/secureboot_objects ``PreSignedObjects/{PK,KEK,DB}/Certificates``). The KEK-update
signers are the PK certificates of ``PostSignedObjects/KEK/kek_update_map.json`` in
microsoft/secureboot_objects (keyed there by the SHA-1 of the PK certificate's DER, as here)
and of the signed updates in ``testdata/microsoft-secureboot-objects/kek`` (the same files as
upstream ``PostSignedObjects/KEK/Microsoft/KEKUpdate_Microsoft_PK{1,2,3}.bin``).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fwtools.formats.efi.siglist import SignatureDatabase

Generation = Literal["2011", "2023", "other"]
TrustKey = Literal["kek-2011", "kek-2023", "windows-pca-2011", "uefi-ca-2011",
                   "windows-uefi-ca-2023", "uefi-ca-2023", "option-rom-ca-2023"]
Architecture = Literal["x64", "ia32", "aarch64", "arm"]


@dataclass(frozen=True)
class KnownCa:
    key: TrustKey
    name: str
    variable: Literal["KEK", "db"]
    generation: Generation
    sha256: str
    not_after: str  # ISO date; firmware never checks it, signers stop using the CA


# The trusts keys of fwtools.fw-vars.audit/1, in document order.
MICROSOFT_CAS: Final[tuple[KnownCa, ...]] = (
    KnownCa("kek-2011", "Microsoft Corporation KEK CA 2011", "KEK", "2011",
            "a1117f516a32cefcba3f2d1ace10a87972fd6bbe8fe0d0b996e09e65d802a503", "2026-06-24"),
    KnownCa("kek-2023", "Microsoft Corporation KEK 2K CA 2023", "KEK", "2023",
            "3cd3f0309edae228767a976dd40d9f4affc4fbd5218f2e8cc3c9dd97e8ac6f9d", "2038-03-02"),
    KnownCa("windows-pca-2011", "Microsoft Windows Production PCA 2011", "db", "2011",
            "e8e95f0733a55e8bad7be0a1413ee23c51fcea64b3c8fa6a786935fddcc71961", "2026-10-19"),
    KnownCa("uefi-ca-2011", "Microsoft Corporation UEFI CA 2011", "db", "2011",
            "48e99b991f57fc52f76149599bff0a58c47154229b9f8d603ac40d3500248507", "2026-06-27"),
    KnownCa("windows-uefi-ca-2023", "Windows UEFI CA 2023", "db", "2023",
            "076f1fea90ac29155ebf77c17682f75f1fdd1be196da302dc8461e350a9ae330", "2035-06-13"),
    KnownCa("uefi-ca-2023", "Microsoft UEFI CA 2023", "db", "2023",
            "f6124e34125bee3fe6d79a574eaa7b91c0e7bd9d929c1a321178efd611dad901", "2038-06-13"),
    KnownCa("option-rom-ca-2023", "Microsoft Option ROM UEFI CA 2023", "db", "2023",
            "e5be3e64c6e66a281457ecdece0d6d0787577aad2a3a0144262c10c14ba8d8f1", "2038-10-26"),
)
TRUST_KEYS: Final[tuple[TrustKey, ...]] = tuple(ca.key for ca in MICROSOFT_CAS)
CA_BY_SHA256: Final[dict[str, KnownCa]] = {ca.sha256: ca for ca in MICROSOFT_CAS}
CA_BY_KEY: Final[dict[str, KnownCa]] = {ca.key: ca for ca in MICROSOFT_CAS}

PkOwner = Literal["microsoft-oem", "distribution", "test-key", "custom"]


@dataclass(frozen=True)
class KnownPk:
    owner: PkOwner
    label: str
    sha256: str | None = None
    subject_cn_prefix: str | None = None  # recognised by subject when the hash differs
    subject_o: str | None = None


KNOWN_PKS: Final[tuple[KnownPk, ...]] = (
    KnownPk("microsoft-oem", "Windows OEM Devices PK (Microsoft)",
            "2f569e8edaf9657dc4951c29598725255c7f821472db71374211fe44d082546f",
            "Windows OEM Devices PK"),
    # Debian's edk2 .ms stores: edk2-vars-generator.py passes this certificate to OVMF's
    # EnrollDefaultKeys as PK and first KEK (debian/PkKek-1-Debian.pem in Debian's edk2).
    KnownPk("distribution", "Debian UEFI Secure Boot (PK/KEK key)",
            "5fb05ed84c5170d542ed6a7b7487dd57b8faedb02f7e107b0409e1d22cac4169",
            "Debian UEFI Secure Boot"),
    # virt-firmware's --enroll-redhat (virt/firmware/certs/redhat.com/rh-pk-kek-2014.pem).
    KnownPk("distribution", "Red Hat Secure Boot (PK/KEK key 1)",
            "7f122fab825041c2b0c67696bb151db6f39fed7df2d1104107f5b892b354ef5c",
            "Red Hat Secure Boot (PK/KEK key"),
    # The SnakeOil test key whose private key is public (Debian edk2 .snakeoil stores;
    # trixie's has a CN, bookworm's only O=SnakeOil).
    KnownPk("test-key", "SnakeOil test key (private key published)",
            subject_cn_prefix="SnakeOil", subject_o="SnakeOil"),
)


@dataclass(frozen=True)
class KekUpdate:
    """A KEK update (adds KEK 2023) that Microsoft signed with one platform's PK."""

    pk_sha1: str
    pk_name: str
    source: str  # where it is published


_MS_KEK_DIR: Final = "microsoft/secureboot_objects PostSignedObjects/KEK/Microsoft/"
# The KEK update is an AUTHENTICATION_2 write to KEK; firmware in User Mode takes it only when
# the PKCS#7 signer is the enrolled PK byte for byte (edk2 SecurityPkg/Library/
# AuthVariableLib/AuthService.c, VerifyTimeBasedPayloadAndUpdate with AuthVarTypePk).
KEK_UPDATES: Final[tuple[KekUpdate, ...]] = (
    KekUpdate("3d8660c0cb2d57b189c3d7995572a552f75e48b5", "Windows OEM Devices PK",
              _MS_KEK_DIR + "KEKUpdate_Microsoft_PK3d8660c0.bin"),
    KekUpdate("fdfc7f3c7ef3e05776add79878216c9be0e19597", "Red Hat Secure Boot (PK/KEK key 1)",
              "microsoft/secureboot_objects PostSignedObjects/KEK/RedHat/"
              "KEKUpdate_RedHat_PK1.bin"),
    KekUpdate("8058e8cc51749652804bbd6f39aed713d119c64b", "Microsoft Hyper-V Firmware PK",
              _MS_KEK_DIR + "KEKUpdate_Microsoft_PK1.bin"),
    KekUpdate("1b6f494b7881ff564f7f9ec7e80c064d9f948454",
              "Microsoft Surface XLFF 2 UEFI PK Signer",
              _MS_KEK_DIR + "KEKUpdate_Microsoft_PK2.bin"),
    KekUpdate("3f169742cbe8830e6f6a1c0b7008932598dd912d", "Microsoft Surface NFF UEFI PK Signer",
              _MS_KEK_DIR + "KEKUpdate_Microsoft_PK3.bin"),
)
KEK_UPDATE_BY_PK_SHA1: Final[dict[str, KekUpdate]] = {u.pk_sha1: u for u in KEK_UPDATES}

# The signed db updates (microsoft/secureboot_objects PostSignedObjects/Optional/DB/amd64;
# signed by a leaf under KEK CA 2011; the payload is a certificate, so they apply to stores of
# any architecture) and what each adds. Copies: testdata/microsoft-secureboot-objects/db.
DB_UPDATE_DIR: Final = "microsoft/secureboot_objects PostSignedObjects/Optional/DB/amd64"
DB_UPDATES: Final[tuple[tuple[str, TrustKey], ...]] = (
    ("DBUpdate2024.bin", "windows-uefi-ca-2023"),
    ("DBUpdate3P2023.bin", "uefi-ca-2023"),
    ("DBUpdateOROM2023.bin", "option-rom-ca-2023"),
)
# The signed dbx update per architecture (PostSignedObjects/DBX/<dir>/DBXUpdate.bin).
DBX_UPDATE_DIR: Final[dict[str, str]] = {"x64": "amd64", "ia32": "x86", "aarch64": "arm64",
                                         "arm": "arm"}


@dataclass(frozen=True)
class PublishedDbx:
    """Microsoft's published dbx (``fwtools/data/microsoft/dbx_info_msft_latest.json``):
    the Authenticode SHA-256s revoked per architecture, upper-case hex as published."""

    images: dict[str, frozenset[bytes]]
    certificates: tuple[str, ...]  # SHA-1 thumbprints of revoked certificates
    svns: int


@functools.cache
def published_dbx() -> PublishedDbx:
    """Read once per process (the file is 400 KB)."""
    path = resources.files("fwtools") / "data" / "microsoft" / "dbx_info_msft_latest.json"
    doc = json.loads(path.read_bytes())
    images = {
        arch: frozenset(bytes.fromhex(item["authenticodeHash"]) for item in items
                        if item.get("hashType", "SHA256") == "SHA256")
        for arch, items in doc["images"].items()
    }
    certs = tuple(str(c.get("thumbprint", "")).lower() for c in doc.get("certificates", []))
    return PublishedDbx(images, certs, len(doc.get("svns", [])))


def revocation_list(digests: Sequence[bytes]) -> SignatureDatabase:
    """``digests`` (SHA-256 image hashes, none repeated) as the dbx content that adds them:
    one EFI_CERT_SHA256 list, owner Microsoft, as ``add_hash`` per digest would group them
    but built at once (each add_hash lays the whole database out again: quadratic in 443
    entries). What fw-vars update writes as the owner and what audit sizes against the
    build's PcdMaxAuthVariableSize."""
    from fwtools.formats.efi import guids
    from fwtools.formats.efi.siglist import (
        OWNER_SIZE,
        SignatureData,
        SignatureDatabase,
        SignatureList,
    )

    entries = tuple(SignatureData(guids.MICROSOFT, digest) for digest in digests)
    return SignatureDatabase(()).add_list(SignatureList(
        guids.CERT_SHA256, OWNER_SIZE + len(digests[0]), entries))


@dataclass(frozen=True)
class LatestSbatLevel:
    datestamp: str
    generations: dict[str, int]


@functools.cache
def latest_sbat_level() -> LatestSbatLevel | None:
    """The newest shipped level of ``policies/sbatlevel-history.toml`` (the file
    ``fw-check --sbat-level-history latest`` reads), or None when it cannot be found."""
    from fwtools._base.tomlfile import policies_dir, read_toml
    from fwtools.errors import FwError

    try:
        data = read_toml(os.path.join(policies_dir(), "sbatlevel-history.toml"),
                         "SbatLevel history")
    except FwError:
        return None
    shipped = [item for item in data.get("level", []) if bool(item.get("shipped", True))]
    if not shipped:
        return None
    last = shipped[-1]
    return LatestSbatLevel(str(last["datestamp"]),
                           {str(k): int(v) for k, v in last.get("generations", {}).items()})
