"""fw-check's engine over the synthetic fixtures of testdata/policy (make_policy_fixtures.py):
every rule both ways, profiles, extends, waivers, SbatLevel sources."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from fwtools.errors import UsageError
from fwtools.policy import engine, sbat_sources
from fwtools.policy.checks import RULES
from fwtools.policy.profiles import load_profile, shipped_profiles

POLICY = Path(__file__).resolve().parents[2] / "testdata" / "policy"
SAMPLE = Path(__file__).resolve().parents[2] / "testdata" / "sample"
GRUB4 = POLICY / "sbatlevel-grub4.txt"


def rules_hit(name: str, profile: str = "strict", **opts: object) -> set[str]:
    options = engine.Options(**opts)  # type: ignore[arg-type]
    rep = engine.check_path(str(POLICY / name), load_profile(profile), options)
    assert rep.error is None, rep.error
    return {r.rule for r in rep.results}


def grub4() -> engine.Options:
    level, label = sbat_sources.from_file(str(GRUB4))
    return engine.Options(level, label)


# (fixture, profile, rule it must break). good.efi must not break any of them.
BAD = [
    ("bad-nx-compat.efi", "uefi-ca", "nx-compat"),
    ("bad-section-alignment.efi", "uefi-ca", "section-alignment"),
    ("bad-wx-section.efi", "uefi-ca", "wx-section"),
    ("bad-code-data-mixed.efi", "strict", "code-data-mixed"),
    ("bad-section-page-aligned.efi", "strict", "section-page-aligned"),
    ("bad-image-base.efi", "edk2-image-validation", "image-base"),
    ("bad-subsystem.efi", "edk2-image-validation", "subsystem-allowed"),
    ("bad-subsystem.efi", "strict", "subsystem-type"),
    ("bad-runtime-aa64.efi", "strict", "subsystem-type"),
    ("bad-runtime-aa64.efi", "edk2-image-validation", "section-alignment"),
    ("bad-relocations.efi", "strict", "relocations"),
    ("bad-sections-in-image.efi", "strict", "sections-in-image"),
    ("bad-sections-overlap.efi", "strict", "sections-overlap"),
    ("bad-headers-not-executable.efi", "strict", "headers-not-executable"),
    ("bad-section-alignment.efi", "strict", "headers-not-executable"),
    ("bad-entry-point.efi", "strict", "entry-point"),
    ("bad-pe-anomaly.efi", "strict", "pe-anomaly"),
    ("bad-sbat-present.efi", "shim-review", "sbat-present"),
    ("bad-sbat-well-formed.efi", "shim-review", "sbat-well-formed"),
    ("bad-sbat-vendor-row.efi", "shim-review", "sbat-vendor-row"),
    ("good.efi", "strict", "signed"),
    ("bad-digest-mismatch.efi", "strict", "digest-mismatch"),
    ("bad-signature-invalid.efi", "strict", "signature-invalid"),
]


@pytest.mark.parametrize(("name", "profile", "rule"), BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_rule_fails_on_its_fixture(name: str, profile: str, rule: str) -> None:
    assert rule in rules_hit(name, profile)


@pytest.mark.parametrize("profile", ["uefi-ca", "shim-review", "edk2-image-validation"])
def test_good_passes_every_profile(profile: str) -> None:
    options = grub4()
    rep = engine.check_path(str(POLICY / "good.efi"), load_profile(profile), options)
    assert rep.results == []
    assert set(rep.checked) == {c.id for c in load_profile(profile).active}


def test_good_signed_passes_strict_and_is_trusted() -> None:
    from fwtools.crypto.trust import TrustAnchors

    anchors = TrustAnchors.from_files([SAMPLE / "test-ca.pem"])
    level, label = sbat_sources.from_file(str(GRUB4))
    rep = engine.check_path(str(POLICY / "good-signed.efi"), load_profile("strict"),
                            engine.Options(level, label, anchors))
    assert rep.results == []
    assert "trusted" in rep.checked and "sbat-revoked" in rep.checked
    assert rep.skipped == {}


def test_untrusted_with_another_ca() -> None:
    from fwtools.crypto.trust import TrustAnchors

    other = Path(__file__).resolve().parents[2] / "testdata" / "authenticode" / "other-ca.pem"
    anchors = TrustAnchors.from_files([other])
    assert "trusted" in rules_hit("good-signed.efi", anchors=anchors)


def test_every_library_rule_is_covered_both_ways() -> None:
    # boot-chain is judged across files: tests/policy/test_chain_rule.py covers it both ways
    covered = {rule for _, _, rule in BAD} | {"sbat-revoked", "trusted", "boot-chain"}
    assert covered == set(RULES)


def test_good_variants() -> None:
    assert "subsystem-allowed" not in rules_hit("good-driver.efi", "edk2-image-validation")
    assert rules_hit("good-runtime-aa64.efi", "edk2-image-validation") == set()
    assert "subsystem-type" not in rules_hit("good-runtime-aa64.efi")


def test_sbat_revoked_names_the_entry() -> None:
    prof = load_profile("shim-review")
    rep = engine.check_path(str(POLICY / "old-grub.efi"), prof, grub4())
    (hit,) = [r for r in rep.results if r.rule == "sbat-revoked"]
    assert "SbatLevel 2024040900" in hit.message
    assert "entry grub,4 revokes .sbat row grub,3 (line 2)" in hit.message
    # Not revoked by the original (empty) level, and skipped without a level.
    level, label = sbat_sources.from_file(str(POLICY / "sbatlevel-original.txt"))
    rep = engine.check_path(str(POLICY / "old-grub.efi"), prof, engine.Options(level, label))
    assert rep.results == [] and "sbat-revoked" in rep.checked
    rep = engine.check_path(str(POLICY / "old-grub.efi"), prof, engine.Options())
    assert rep.skipped["sbat-revoked"] == "no SbatLevel given"


def test_sbat_level_history() -> None:
    level, label = sbat_sources.from_history("latest")
    assert level.datestamp == "2025051000"
    assert level.generations == {"shim": 4, "grub": 5, "grub.proxmox": 2}
    assert "2025051000" in label
    assert sbat_sources.from_history("2022-12-01")[0].generations == {"shim": 2, "grub": 3}
    # 2023091900 (grub,4) was never shipped: September 2023 still has the January level.
    assert sbat_sources.from_history("2023-10-01")[0].datestamp == "2023012900"
    assert sbat_sources.from_history("2021-03-02")[0].generations == {}
    with pytest.raises(UsageError):
        sbat_sources.from_history("2020-01-01")
    with pytest.raises(UsageError):
        sbat_sources.from_history("yesterday")


def test_history_dates_are_ordered() -> None:
    history = sbat_sources.load_history()
    assert [h.datestamp for h in history] == sorted(h.datestamp for h in history)
    assert len(history) == 11


def test_extends_profile() -> None:
    prof = load_profile(str(POLICY / "extends.toml"))
    assert prof.name == "my-distro" and prof.chain == ("uefi-ca",)
    assert prof.rules["nx-compat"].severity == "warning"
    assert prof.rules["nx-compat"].rationale == "shim NX exception"
    assert prof.rules["wx-section"].severity == "error"  # inherited
    assert "sbat-present" in prof.rules
    rep = engine.check_path(str(POLICY / "bad-nx-compat.efi"), prof, engine.Options())
    assert [(r.rule, r.severity) for r in rep.results] == [("nx-compat", "warning")]


def test_strict_extends_uefi_ca_and_has_everything() -> None:
    strict = load_profile("strict")
    assert strict.chain == ("uefi-ca",)
    assert {"relocations", "sections-overlap", "headers-not-executable", "entry-point",
            "subsystem-type", "signed", "digest-mismatch", "signature-invalid",
            "trusted"} <= set(strict.rules)
    assert set(shipped_profiles()) == {"uefi-ca", "shim-review", "edk2-image-validation",
                                       "strict", "wx-boot-chain"}


def test_profile_severities_are_the_one_scale(tmp_path: Path) -> None:
    # "info", the lowest level's old name in pe-inspect and store checks, reads as "note".
    p = tmp_path / "p.toml"
    p.write_text('extends = "uefi-ca"\n[rules.nx-compat]\nseverity = "info"\n'
                 '[rules.wx-section]\nseverity = "off"\n')
    prof = load_profile(str(p))
    assert prof.rules["nx-compat"].severity == "note"
    assert "wx-section" not in {r.id for r in prof.active}
    rep = engine.check_path(str(POLICY / "bad-nx-compat.efi"), prof, engine.Options())
    assert [(r.rule, r.severity) for r in rep.results] == [("nx-compat", "note")]
    assert engine.exit_code([rep], "warning") == 0
    assert engine.exit_code([rep], "note") == 1


@pytest.mark.parametrize("text", [
    'extends = "no-such-profile"',
    "[rules.no-such-rule]",
    '[rules.nx-compat]\nseverity = "fatal"',
    '[rules.nx-compat]\nseverity = 2',
    "[rules.nx-compat]\nbogus = 1",
    "not toml [",
])
def test_bad_profiles(tmp_path: Path, text: str) -> None:
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(UsageError):
        load_profile(str(p))


def test_waivers_live_and_expired() -> None:
    waivers = engine.load_waivers(str(POLICY / "waivers.toml"))
    prof = load_profile("uefi-ca")
    reps = [engine.check_path(str(POLICY / n), prof, engine.Options())
            for n in ("bad-nx-compat.efi", "bad-wx-section.efi")]
    engine.apply_waivers(reps, waivers, datetime.date(2026, 6, 1))
    nx, wx = reps
    assert [r.waived.reason for r in nx.results if r.waived] == [
        "vendor binary, NX fix scheduled"]
    assert engine.exit_code([nx], "error") == 0
    rules = [(r.rule, r.waived is None) for r in wx.results]
    assert ("wx-section", True) in rules and ("waiver-expired", True) in rules
    (exp,) = [r for r in wx.results if r.rule == "waiver-expired"]
    assert "expired on 2020-01-01" in exp.message and "old waiver" in exp.message
    assert engine.exit_code([wx], "error") == 1
    # After its expiry date the live waiver stops working too.
    reps = [engine.check_path(str(POLICY / "bad-nx-compat.efi"), prof, engine.Options())]
    engine.apply_waivers(reps, waivers, datetime.date(2030, 1, 2))
    assert {r.rule for r in reps[0].results} == {"nx-compat", "waiver-expired"}


def test_bad_waiver_file(tmp_path: Path) -> None:
    p = tmp_path / "w.toml"
    p.write_text('[[waiver]]\npath = "*"\nrule = "nx-compat"\n')
    with pytest.raises(UsageError, match="reason"):
        engine.load_waivers(str(p))


def test_unreadable_input_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.efi"
    bad.write_bytes(b"MZ" + bytes(10))
    rep = engine.check_path(str(bad), load_profile("strict"), engine.Options())
    assert rep.error and [r.rule for r in rep.results] == ["input-error"]
    assert engine.exit_code([rep], "error") == 2


def test_parallel_equals_serial() -> None:
    files = sorted(str(p) for p in POLICY.glob("*.efi"))
    prof = load_profile("strict")
    serial = engine.run(files, prof, grub4(), jobs=1)
    parallel = engine.run(files, prof, grub4(), jobs=2)
    assert [(r.path, r.results, r.checked) for r in serial] == [
        (r.path, r.results, r.checked) for r in parallel]


def test_shim_level_source_errors() -> None:
    with pytest.raises(UsageError, match=r"no \.sbatlevel"):
        sbat_sources.from_shim(str(POLICY / "good.efi"))
    with pytest.raises(UsageError, match="no SbatLevel variable"):
        sbat_sources.from_store(
            str(Path(__file__).resolve().parents[2] / "testdata" / "varstore"
                / "ftw-completed.fd"))
