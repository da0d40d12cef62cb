"""Golden audit of every Debian OVMF/AAVMF store in the corpus (bookworm and trixie: OVMF
2 MiB and 4 MiB, AAVMF; blank, .ms and .snakeoil), its facts checked against virt-firmware's
reading of the same files (tests/fleet/virt_fw_facts.py, run in virt-firmware's own venv).

What Debian ships is in the project's CA-transition notes: .ms stores hold the Debian PK/KEK
key as PK, KEK = Debian key + Microsoft KEK CA 2011, db = Windows Production PCA 2011 +
Microsoft UEFI CA 2011, dbx = one SHA-256 (of the empty string); no 2023 certificate anywhere.
"""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
from corpus.params import CORPUS, corpus_files, need, need_peer

from fwtools.fleet.audit import StoreAudit, audit_store

STORES: Final = corpus_files(
    "*/amd64/ovmf/usr/share/OVMF/OVMF*_VARS*.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF*_VARS*.fd",
)
ORACLE: Final = Path(__file__).with_name("virt_fw_facts.py")
# After every 2011 CA's notAfter (the last, Windows Production PCA 2011, on 2026-10-19).
NOW: Final = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)

DEBIAN_PK: Final = "5fb05ed84c5170d542ed6a7b7487dd57b8faedb02f7e107b0409e1d22cac4169"
KEK_2011: Final = "a1117f516a32cefcba3f2d1ace10a87972fd6bbe8fe0d0b996e09e65d802a503"
PCA_2011: Final = "e8e95f0733a55e8bad7be0a1413ee23c51fcea64b3c8fa6a786935fddcc71961"
UEFI_2011: Final = "48e99b991f57fc52f76149599bff0a58c47154229b9f8d603ac40d3500248507"
EMPTY_SHA256: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

MS_FINDINGS: Final = {
    ("uefi-ca-2023-missing", "error"), ("windows-uefi-ca-2023-missing", "error"),
    ("option-rom-ca-2023-missing", "warning"), ("kek-2023-missing", "warning"),
    ("certificate-expired", "note"), ("dbx-outdated", "warning"), ("sbat-level-missing", "note"),
}
MS_TRUSTS: Final = {"kek-2011": True, "kek-2023": False, "windows-pca-2011": True,
                    "uefi-ca-2011": True, "windows-uefi-ca-2023": False, "uefi-ca-2023": False,
                    "option-rom-ca-2023": False}
# Microsoft's dbx_info_msft_latest.json (fwtools/data/microsoft): revocations per architecture.
PUBLISHED: Final = {"x64": 443, "aarch64": 26}


def kind(path: Path) -> str:
    rel = str(path.relative_to(CORPUS))
    if rel == "bookworm/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.fd":
        return "zeros"
    if path.name.endswith(".ms.fd"):
        return "ms"
    if path.name.endswith(".snakeoil.fd"):
        return "snakeoil"
    return "blank"


@pytest.fixture(scope="module")
def oracle() -> dict[str, dict[str, Any]]:
    paths = [str(p.values[0]) for p in STORES if p.values[0] is not None]
    if not paths:
        return {}
    python = Path(need_peer("virt-fw-vars")).with_name("python")
    done = subprocess.run([str(python), str(ORACLE), *paths], capture_output=True, text=True,
                          check=True, timeout=600)
    facts: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return facts


def test_corpus_has_every_kind() -> None:
    paths = [need(p.values[0]) for p in STORES]
    kinds = [kind(p) for p in paths]
    assert kinds.count("zeros") == 1
    assert kinds.count("ms") == 5 and kinds.count("snakeoil") == 4 and kinds.count("blank") == 4
    assert {p.name for p in paths} >= {"OVMF_VARS.fd", "OVMF_VARS_4M.fd", "AAVMF_VARS.fd"}


@pytest.mark.parametrize("path", STORES)
def test_golden_audit(path: Path | None, oracle: dict[str, dict[str, Any]]) -> None:
    path = need(path)
    audit = audit_store(str(path), now=NOW)
    peer = oracle[str(path)]
    which = kind(path)
    arch = "aarch64" if "AAVMF" in path.name else "x64"
    if which == "zeros":
        # 64 MiB of zeros: no store yet (virt-firmware finds none). Not an error: audited as
        # the empty store the firmware formats at first boot, as fw-vars show shows it, so
        # auditing Debian's own files does not fail.
        assert peer["error"] is not None
        assert audit.error is None and audit.layout == "aavmf-64m"
        assert audit.secure_boot is not None and audit.secure_boot.mode == "setup"
        assert audit.pk is None and not audit.kek and not audit.db
        assert not any(audit.trusts.values())
        assert audit.dbx is not None and audit.dbx.entries == 0
        assert audit.dbx.architecture == "aarch64" and audit.dbx.limitation is None
        assert [(f.code, f.severity) for f in audit.findings] == [
            ("blank-template", "note"), ("setup-mode", "note")]
        assert "blank AAVMF template" in audit.findings[0].message
        assert [p.id for p in audit.update_paths] == ["owner-edit"]
        return
    assert audit.error is None and peer["error"] is None
    # The facts, against virt-firmware's reading.
    assert audit.pk is None if not peer["PK"] else audit.pk is not None
    pk_certs = [audit.pk.certificate.sha256] if audit.pk and audit.pk.certificate else []
    assert pk_certs == peer["PK"]
    assert [c.sha256 for c in audit.kek] == peer["KEK"]
    assert [c.sha256 for c in audit.db] == peer["db"]
    assert audit.dbx is not None and audit.dbx.entries == peer["dbx_entries"]
    assert audit.secure_boot is not None
    assert audit.secure_boot.secure_boot_enable == peer["SecureBootEnable"]
    assert audit.dbx.architecture == arch and audit.dbx.published == PUBLISHED[arch]
    # The golden facts.
    codes = {(f.code, f.severity) for f in audit.findings}
    paths = [p.id for p in audit.update_paths]
    if which == "blank":
        assert audit.secure_boot.mode == "setup" and not audit.secure_boot.enforced
        assert not any(audit.trusts.values()) and audit.dbx.entries == 0
        assert codes == {("setup-mode", "note")} and paths == ["owner-edit"]
        return
    assert audit.secure_boot.mode == "user" and audit.secure_boot.enforced
    assert audit.secure_boot.secure_boot_enable is True
    assert peer["dbx"] == [EMPTY_SHA256] and audit.dbx.missing == PUBLISHED[arch]
    assert audit.pk is not None and audit.pk.enrolled_by_ovmf
    # OVMF's 2 MiB build (PcdMaxAuthVariableSize 10240) cannot hold x64's 443 revocations;
    # the 4 MiB build and AAVMF (26 revocations) can.
    small = audit.layout == "ovmf-2m-128k"
    assert (audit.dbx.limitation is not None) == small
    if which == "ms":
        assert peer["PK"] == [DEBIAN_PK] and peer["KEK"] == [DEBIAN_PK, KEK_2011]
        assert peer["db"] == [PCA_2011, UEFI_2011]
        assert audit.pk.owner == "distribution" and "Debian" in audit.pk.label
        assert audit.pk.kek_update is None  # Microsoft signed no KEK update for Debian's PK
        assert dict(audit.trusts) == MS_TRUSTS
        assert codes == MS_FINDINGS | ({("dbx-too-large", "warning")} if small else set())
        assert paths == ["owner-edit", "signed-db", "signed-dbx"]
        limits = {p.id: p.limitation for p in audit.update_paths}
        assert limits["signed-db"] is None
        assert (limits["signed-dbx"] is not None) == (limits["owner-edit"] is not None) == small
        assert [c.generation for c in audit.db] == ["2011", "2011"]
        assert [c.expired for c in audit.db] == [True, True]
        uefi = next(f for f in audit.findings if f.code == "uefi-ca-2023-missing")
        assert "will be refused" in uefi.message and "shims" in uefi.message
    else:
        assert peer["PK"] == peer["KEK"] == peer["db"] and len(peer["PK"]) == 1
        assert audit.pk.owner == "test-key"
        assert not any(audit.trusts.values())
        assert codes == {("test-key-pk", "warning"), ("sbat-level-missing", "note")}
        assert paths == ["owner-edit"]


def test_audit_is_frozen() -> None:
    audit = StoreAudit("x")
    with pytest.raises(AttributeError):
        audit.path = "y"  # type: ignore[misc]
