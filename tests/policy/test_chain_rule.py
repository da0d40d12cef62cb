"""The boot-chain rule of the policy gate: chains assembled from the inputs, replayed on
the configured firmware, findings against the stage responsible (docs/boot-chain.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import Corpus

from fwtools.errors import UsageError
from fwtools.policy import engine
from fwtools.policy.profiles import load_profile
from fwtools.policy.results import FileReport

REPO = Path(__file__).resolve().parents[2]


def _profile(tmp_path: Path, firmware: list[str], secure_boot: str = "[false, true]") -> Path:
    p = tmp_path / "chain.toml"
    fw = ", ".join(f'"{f}"' for f in firmware)
    p.write_text('name = "chain"\n[rules.boot-chain]\n'
                 f"[rules.boot-chain.params]\nfirmware = [{fw}]\nsecure_boot = {secure_boot}\n")
    return p


def test_bookworm_chain_fails_on_strict_x86_and_names_grub(corpus: Corpus,
                                                            tmp_path: Path) -> None:
    shim, grub, kernel = corpus.boot_chain("bookworm", "amd64")
    profile = load_profile(str(_profile(tmp_path, ["ovmf-strict"])))
    reports = engine.run([str(shim), str(grub), str(kernel)], profile, engine.Options())
    by_path = {r.path: r for r in reports}
    # GRUB 2.06 (Debian) runs code from EfiLoaderData (Secure Boot) and free memory (legacy
    # loader): both faults are GRUB's, none is shim's or the kernel's
    assert [r.rule for r in by_path[str(grub)].results] == ["boot-chain", "boot-chain"]
    assert not by_path[str(shim)].results and not by_path[str(kernel)].results
    messages = " ".join(r.message for r in by_path[str(grub)].results)
    assert "Secure Boot on" in messages and "Secure Boot off" in messages
    assert "#PF error 0x11" in messages and "EfiLoaderData" in messages
    assert all(r.location.startswith("stage grub") for r in by_path[str(grub)].results)
    assert all("boot-chain" in r.checked for r in reports)
    assert engine.exit_code(reports, "error") == 1


def test_trixie_chain_passes_everywhere(corpus: Corpus, tmp_path: Path) -> None:
    x64 = corpus.boot_chain("trixie", "amd64")
    aa64 = corpus.boot_chain("trixie", "arm64")
    profile = load_profile(str(_profile(
        tmp_path, ["ovmf-strict", "ovmf-compat", "armvirt", "armvirt-map"])))
    reports = engine.run([str(p) for p in (*x64, *aa64)], profile, engine.Options())
    assert [r for rep in reports for r in rep.results] == []
    assert engine.exit_code(reports, "error") == 0


def test_refusal_is_reported_against_the_refused_stage(corpus: Corpus,
                                                       tmp_path: Path) -> None:
    shim, grub, kernel = corpus.boot_chain("trixie", "amd64")
    profile = load_profile(str(_profile(tmp_path, ["mu-debug"], "[true]")))
    reports = engine.run([str(shim), str(grub), str(kernel)], profile, engine.Options())
    shim_results = next(r for r in reports if r.path == str(shim)).results
    # Mu's BlockImagesWithoutNxFlag refuses Debian's shim (built without NX_COMPAT)
    assert len(shim_results) == 1 and "refused" in shim_results[0].message
    assert "NX_COMPAT" in shim_results[0].message
    # the firmware's LoadImage refused it (stop stage 0): the chain's first file answers
    assert shim_results[0].location == "stage firmware"


def test_refusal_by_a_later_stage_goes_to_that_stages_file(corpus: Corpus,
                                                          tmp_path: Path) -> None:
    """shim's Secure Boot check refuses the unsigned grub: the stop names shim (stage 1) as
    data, and the finding is shim's, whatever the reason text says."""
    shim = corpus.shim("bookworm", "amd64")
    grub = corpus.file("bookworm", "amd64", "grub-efi-amd64-bin",
                       "usr/lib/grub/x86_64-efi/monolithic/grubx64.efi")
    kernel = corpus.kernel("bookworm", "amd64")
    profile = load_profile(str(_profile(tmp_path, ["ovmf"], "[true]")))
    reports = engine.run([str(shim), str(grub), str(kernel)], profile, engine.Options())
    by_path = {r.path: r.results for r in reports}
    assert [r.location for r in by_path[str(shim)]] == ["stage shim"]
    assert "Verification failed" in by_path[str(shim)][0].message
    assert not by_path[str(grub)] and not by_path[str(kernel)]


def test_shipped_profile_and_bad_parameters(tmp_path: Path) -> None:
    prof = load_profile("wx-boot-chain")
    assert prof.rules["boot-chain"].params["firmware"]
    with pytest.raises(UsageError, match="unknown firmware profile"):
        bad = load_profile(str(_profile(tmp_path, ["no-such-firmware"])))
        engine.add_chain_results([FileReport("x")], bad)
    with pytest.raises(UsageError, match="secure_boot"):
        bad = load_profile(str(_profile(tmp_path, ["ovmf"], '"yes"')))
        engine.add_chain_results([FileReport("x")], bad)


def test_strict_profile_does_not_replay_chains(corpus: Corpus) -> None:
    """Replays cost tens of milliseconds each: only profiles that ask for them pay."""
    shim, grub, kernel = corpus.boot_chain("bookworm", "amd64")
    reports = engine.run([str(shim), str(grub), str(kernel)], load_profile("strict"),
                         engine.Options())
    assert all("boot-chain" not in r.checked for r in reports)


def test_chains_are_replayed_on_the_facts_the_rules_judged(corpus: Corpus,
                                                           tmp_path: Path) -> None:
    """One parse per file: each report carries its stage image, built from its facts."""
    from fwtools.uefi.image import load_stage

    paths = [str(p) for p in corpus.boot_chain("bookworm", "amd64")]
    profile = load_profile(str(_profile(tmp_path, ["ovmf"], "[false]")))
    reports = engine.run(paths, profile, engine.Options())
    assert [r.stage == load_stage(r.path) for r in reports] == [True, True, True]
    # without the chain rule, no stage image is built
    plain = engine.run(paths, load_profile("strict"), engine.Options())
    assert [r.stage for r in plain] == [None, None, None]
