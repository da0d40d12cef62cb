"""The audit before and after a store takes the 2023 CAs: trusts flip and the findings about
refused images go away; the update paths follow the PK and KEK."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path
from typing import Any, Final

import pytest
from fleet_testlib import MS_OBJECTS, apply_dbx, fw_vars, store_2011, update_2023

from fwtools.fleet.audit import StoreAudit, audit_store
from fwtools.fleet.known import published_dbx

NOW: Final = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)
REFUSALS: Final = {"uefi-ca-2023-missing", "windows-uefi-ca-2023-missing",
                   "option-rom-ca-2023-missing", "kek-2023-missing"}


def codes(audit: StoreAudit) -> set[str]:
    return {f.code for f in audit.findings}


def test_2023_update_flips_trusts_and_clears_findings(tmp_path: Path) -> None:
    before = audit_store(str(store_2011(tmp_path)), now=NOW)
    assert before.error is None and before.pk is not None and before.pk.owner == "custom"
    assert {k for k, v in before.trusts.items() if v} == {"kek-2011", "windows-pca-2011",
                                                           "uefi-ca-2011"}
    assert codes(before) >= REFUSALS
    after = audit_store(str(update_2023(tmp_path / "vm2011_VARS.fd",
                                        tmp_path / "vm2023_VARS.fd")), now=NOW)
    assert all(after.trusts.values())
    assert not REFUSALS & codes(after)
    assert [c.generation for c in after.db] == ["2011", "2011", "2023", "2023", "2023"]
    assert [c.known for c in after.kek] == ["kek-2011", "kek-2023"]
    # The signed paths: KEK 2011 signed the published db and dbx updates; with KEK 2023 the
    # dbx signed under it applies too; nothing is left for the db updates to add.
    paths = {p.id: p for p in after.update_paths}
    assert set(paths) == {"owner-edit", "signed-db", "signed-dbx"}
    assert paths["signed-db"].objects == ()
    assert len(paths["signed-dbx"].objects) == 2
    before_paths = {p.id: p for p in before.update_paths}
    assert len(before_paths["signed-db"].objects) == 3
    # Severity: the refusals are errors while Secure Boot is enforced.
    sev = {f.code: f.severity for f in before.findings}
    assert sev["uefi-ca-2023-missing"] == "error" and sev["kek-2023-missing"] == "warning"


def test_signed_dbx_update_clears_dbx_finding(tmp_path: Path) -> None:
    store = update_2023(store_2011(tmp_path), tmp_path / "vm2023_VARS.fd")
    before = audit_store(str(store), now=NOW)
    assert before.dbx is not None and before.dbx.missing == 443 and "dbx-outdated" in codes(before)
    after = audit_store(str(apply_dbx(store, tmp_path / "dbx_VARS.fd")), now=NOW)
    assert after.dbx is not None and after.dbx.entries >= 443
    assert after.dbx.missing == 0 and "dbx-outdated" not in codes(after)


def test_dbx_revoking_pca_2011_is_seen(tmp_path: Path) -> None:
    store = update_2023(store_2011(tmp_path), tmp_path / "vm2023_VARS.fd")
    out = tmp_path / "revoked_VARS.fd"
    fw_vars("dbx", store, MS_OBJECTS / "dbx" / "optional" / "DBXUpdate2024.bin", "-o", out)
    audit = audit_store(str(out), now=NOW)
    assert audit.trusts["windows-pca-2011"] is False and audit.trusts["uefi-ca-2011"] is True
    assert "ca-revoked" in codes(audit)


def test_microsoft_oem_pk_has_a_signed_kek_update(tmp_path: Path) -> None:
    audit = audit_store(str(store_2011(tmp_path, pk="microsoft")), now=NOW)
    assert audit.pk is not None and audit.pk.owner == "microsoft-oem"
    paths = {p.id: p for p in audit.update_paths}
    assert "signed-kek" in paths
    assert paths["signed-kek"].objects[0].endswith("KEKUpdate_Microsoft_PK3d8660c0.bin")


def test_aarch64_layout_decides_the_architecture(tmp_path: Path) -> None:
    store = store_2011(tmp_path, layout="aavmf-64m")
    audit = audit_store(str(store), now=NOW)
    assert audit.dbx is not None and audit.dbx.architecture == "aarch64"
    assert "aavmf" in audit.dbx.architecture_from
    assert audit.dbx.missing == len(published_dbx().images["aarch64"]) == 26
    after = audit_store(str(apply_dbx(store, tmp_path / "a_VARS.fd", "arm64")), now=NOW)
    assert after.dbx is not None and after.dbx.missing == 0


def test_before_expiry_nothing_is_expired(tmp_path: Path) -> None:
    early = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    audit = audit_store(str(store_2011(tmp_path)), now=early)
    assert "certificate-expired" not in codes(audit)
    assert "certificate-expired" in codes(audit_store(str(tmp_path / "vm2011_VARS.fd"), now=NOW))


def test_secure_boot_off_lowers_refusals(tmp_path: Path) -> None:
    store = store_2011(tmp_path)
    off = tmp_path / "off_VARS.fd"
    fw_vars("enroll", store, "--no-secure-boot", "-o", off)
    audit = audit_store(str(off), now=NOW)
    assert audit.secure_boot is not None and audit.secure_boot.enforced is False
    sev = {f.code: f.severity for f in audit.findings}
    assert sev["secure-boot-disabled"] == "note" and sev["uefi-ca-2023-missing"] == "warning"


def test_debian_ms_store_updated(corpus: Any, tmp_path: Path) -> None:
    original = tmp_path / "OVMF_VARS_4M.ms.fd"
    shutil.copyfile(corpus.ovmf("trixie", "OVMF_VARS_4M.ms.fd"), original)
    before = audit_store(str(original), now=NOW)
    after = audit_store(str(update_2023(original, tmp_path / "new.fd")), now=NOW)
    assert codes(before) >= REFUSALS and not REFUSALS & codes(after)
    assert after.pk is not None and after.pk.owner == "distribution"
    assert [k for k, v in before.trusts.items() if not v] == [
        "kek-2023", "windows-uefi-ca-2023", "uefi-ca-2023", "option-rom-ca-2023"]
    assert all(after.trusts.values())


@pytest.mark.parametrize("fmt", ["qcow2", "json"])
def test_other_containers(tmp_path: Path, fmt: str) -> None:
    store = store_2011(tmp_path)
    out = tmp_path / f"vm.{fmt}"
    fw_vars("convert", store, out)
    audit = audit_store(str(out), now=NOW)
    raw = audit_store(str(store), now=NOW)
    assert audit.format == fmt and audit.error is None
    assert audit.trusts == raw.trusts and codes(audit) == codes(raw)
    if fmt == "json":
        assert audit.dbx is not None and "no flash layout" in audit.dbx.architecture_from


def test_sbat_level_against_the_latest_published(tmp_path: Path) -> None:
    from fwtools.fleet.known import latest_sbat_level

    latest = latest_sbat_level()
    assert latest is not None
    store = store_2011(tmp_path)
    old = tmp_path / "old_VARS.fd"
    fw_vars("sbat-level", store, "--level", "sbat,1,2022111500\\nshim,2\\ngrub,3\\n", "-o", old)
    audit = audit_store(str(old), now=NOW)
    assert audit.sbat_level is not None and audit.sbat_level.datestamp == "2022111500"
    assert not audit.sbat_level.current
    assert f"grub 3 < {latest.generations['grub']}" in audit.sbat_level.outdated
    assert "sbat-level-outdated" in codes(audit)
    text = "".join(f"{k},{v}\\n" for k, v in latest.generations.items())
    new = tmp_path / "new_VARS.fd"
    fw_vars("sbat-level", store, "--level", f"sbat,1,{latest.datestamp}\\n{text}", "-o", new)
    audit = audit_store(str(new), now=NOW)
    assert audit.sbat_level is not None and audit.sbat_level.current
    assert not {"sbat-level-outdated", "sbat-level-missing"} & codes(audit)


def test_malformed_kek_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    store = store_2011(tmp_path)
    bad = tmp_path / "bad_VARS.fd"
    fw_vars("set", store, "KEK", "--hex", "0102030405", "--attributes", "0x27", "-o", bad)
    audit = audit_store(str(bad), now=NOW)
    assert audit.error is None
    assert ("malformed-variable", "error") in {(f.code, f.severity) for f in audit.findings}
    assert audit.kek == () and audit.trusts["kek-2011"] is False
