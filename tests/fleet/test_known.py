"""What the audit recognises, checked against the objects themselves: the shipped Microsoft
certificates, the signers of the KEK updates in testdata, and a store virt-firmware enrols
with Red Hat's PK."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from corpus.params import need_peer
from fleet_testlib import MS_OBJECTS, blank

from fwtools.crypto.authvar import auth_signature_info
from fwtools.crypto.secureboot import MICROSOFT_DB, MICROSOFT_KEK, MICROSOFT_PK, shipped_certificate
from fwtools.fleet.audit import audit_store
from fwtools.fleet.known import CA_BY_KEY, KEK_UPDATE_BY_PK_SHA1, KNOWN_PKS, published_dbx
from fwtools.formats.efi.authvar import AuthVariable2

SHIPPED = {"kek-2011": MICROSOFT_KEK["2011"], "kek-2023": MICROSOFT_KEK["2023"],
           "windows-pca-2011": MICROSOFT_DB["windows-2011"],
           "uefi-ca-2011": MICROSOFT_DB["uefi-2011"],
           "windows-uefi-ca-2023": MICROSOFT_DB["windows-2023"],
           "uefi-ca-2023": MICROSOFT_DB["uefi-2023"],
           "option-rom-ca-2023": MICROSOFT_DB["oprom-2023"]}


def test_ca_fingerprints_are_the_shipped_certificates() -> None:
    for key, name in SHIPPED.items():
        der = shipped_certificate("microsoft", name)
        assert hashlib.sha256(der).hexdigest() == CA_BY_KEY[key].sha256, key
    oem = shipped_certificate("microsoft", MICROSOFT_PK)
    assert hashlib.sha256(oem).hexdigest() == KNOWN_PKS[0].sha256
    assert hashlib.sha1(oem).hexdigest() in KEK_UPDATE_BY_PK_SHA1


def test_kek_update_signers_are_known() -> None:
    files = sorted((MS_OBJECTS / "kek").glob("KEKUpdate_*.bin"))
    assert len(files) == 3
    for path in files:
        info = auth_signature_info(AuthVariable2.parse(path.read_bytes()))
        (signer,) = info.signers
        update = KEK_UPDATE_BY_PK_SHA1[hashlib.sha1(signer.der).hexdigest()]
        assert update.source.endswith(path.name)


def test_published_dbx_counts() -> None:
    dbx = published_dbx()
    assert {k: len(v) for k, v in dbx.images.items()} == {
        "x64": 443, "ia32": 94, "aarch64": 26, "arm": 110}
    assert len(dbx.certificates) == 1 and dbx.svns == 3


def test_red_hat_pk_from_virt_firmware(tmp_path: Path) -> None:
    tool = need_peer("virt-fw-vars")
    store = tmp_path / "rh_VARS.fd"
    subprocess.run([tool, "-i", str(blank(tmp_path / "blank.fd")), "--enroll-redhat",
                    "--secure-boot", "-o", str(store)], check=True, capture_output=True,
                   timeout=120)
    audit = audit_store(str(store))
    assert audit.pk is not None and audit.pk.owner == "distribution"
    assert audit.pk.label.startswith("Red Hat") and audit.pk.enrolled_by_ovmf
    assert audit.pk.kek_update is not None and audit.pk.kek_update.endswith(
        "KEKUpdate_RedHat_PK1.bin")
    # virt-firmware's default enrolment has both KEKs and all five db CAs.
    assert all(audit.trusts.values())
    assert "signed-kek" in {p.id for p in audit.update_paths}
