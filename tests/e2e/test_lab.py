"""The firmware lab in CI: Debian 12 and 13's chains and their mixes, x86-64 and AArch64,
Debian 13's systemd-boot with a UKI (unsigned, Secure Boot off; behind shim, Secure Boot on) and
upstream GRUB 2.12 built without Debian's patches (tests/e2e/lab/build-grub.sh) loading Debian's
kernels, on W^X-enforcing DEBUG OVMF and AAVMF built from Debian's edk2 source
(tests/e2e/lab/build-ovmf.sh; .ci/run runs both scripts), Secure Boot off and on, on the
variants of tests/e2e/lab/matrix.py; and shim 16.1 built from Debian's source with NX_COMPAT
set (tests/e2e/lab/build-shim.sh) in front of Debian's grubs and systemd-boot.

Each boot (``test_lab_boot``) must
- show what ``tests/e2e/lab/results.json`` recorded for it (outcome, stage, Secure Boot, the
  memory attribute protocol from the DEBUG log, and for a fault the exception, fault code
  (#PF error code, ESR), access, page offset and the image stage), so the committed record,
  and the calibration
  table generated from it, cannot drift from what CI sees;
- have the memory attribute protocol the variant promises (``strict-nomap``: uninstalled by
  the fw_cfg knob);
- agree with the replay on verdict, and for a fault on the stage, access, fault code (#PF
  error code; ESR's EC and FSC) and page offset (RIP for a fetch, else CR2; FAR), and for a
  refusal on the refusing stage, the stop code and the message. Any difference is a failure.

Without QEMU: the record covers the matrix, every recorded boot agrees with today's replay
and records today's replay fields, and docs/boot-chain.md's lab table is the one
``tests/e2e/lab/calibration.py`` generates from the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from corpus import Corpus
from corpus.params import unavailable

from .conftest import BootRecorder
from .dumps import mismatch_report
from .lab import calibration
from .lab.matrix import (
    CASES,
    GRUB_CHAINS,
    LabCase,
    Observation,
    boot_case,
    compare,
    nxshim_missing,
    observe,
    replay_case,
    replay_view,
)

IDS = [c.id for c in CASES]
RECORD_HINT = "re-record: tests/e2e/lab/run-lab.py --record (see tests/e2e/lab/README.md)"


@pytest.fixture(scope="session")
def recorded() -> calibration.Results:
    return calibration.load()


def comparable(obs: Observation) -> dict[str, Any]:
    """What must be the same on every boot of the same chain and firmware: addresses can
    move with allocations, page offsets do not."""
    fault = obs.fault_fields()
    if fault is not None:
        fault = {k: v for k, v in fault.items() if k not in ("pc", "data_address")}
    return {"outcome": obs.outcome, "stage": obs.stage, "secure_boot_seen": obs.secure_boot_seen,
            "memory_attribute_protocol": obs.memory_attribute_protocol, "fault": fault,
            "refusal": obs.refusal}


def needs_builds(case: LabCase, request: pytest.FixtureRequest) -> None:
    """The upstream GRUB chains boot and replay build-grub.sh's GRUB: its fixture skips (fails
    in CI) when it is not built."""
    if case.chain in GRUB_CHAINS:
        request.getfixturevalue("lab_grub")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_lab_boot(case: LabCase, corpus: Corpus, lab_builds: Path,
                  recorded: calibration.Results, tmp_path: Path,
                  record_boot: BootRecorder, request: pytest.FixtureRequest) -> None:
    needs_builds(case, request)
    boot, debug_log = boot_case(case, corpus, lab_builds, tmp_path)
    record_boot(boot.result, f"lab {case.id}: {boot.outcome}/{boot.stage}")
    real = observe(boot, debug_log, case.arch)
    evidence = f"{boot.describe()}\n(DEBUG log: {debug_log})"

    assert real.memory_attribute_protocol == case.variant.memory_attribute_protocol, (
        f"{case.variant.name}: the DEBUG log says the memory attribute protocol is "
        f"{real.memory_attribute_protocol} (None: no PlatformBootManagerAfterConsole line)\n"
        + evidence)
    if real.outcome == "kernel":
        assert real.secure_boot_seen == case.secure_boot, evidence

    rec = recorded.records.get(case.id)
    assert rec is not None, f"{case.id} is not in results.json: {RECORD_HINT}"
    assert comparable(real) == comparable(rec.real), (
        f"{case.id}: the real boot differs from results.json ({RECORD_HINT})\n"
        f"now:      {comparable(real)}\nrecorded: {comparable(rec.real)}\n{evidence}")

    view = replay_view(replay_case(case, corpus))
    fields = compare(real, view)
    assert all(f.ok for f in fields), (
        f"{case.id} ({case.variant.profile}): {mismatch_report(fields)}\nreplay: {view}\n"
        + evidence)


# -- the record, without QEMU ------------------------------------------------------------------


def test_record_covers_the_matrix(recorded: calibration.Results) -> None:
    assert list(recorded.records) == IDS, RECORD_HINT


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_recorded_boot_agrees_with_replay(case: LabCase, corpus: Corpus,
                                          recorded: calibration.Results,
                                          request: pytest.FixtureRequest) -> None:
    needs_builds(case, request)
    why = nxshim_missing(case)
    if why:
        unavailable(why)
    rec = recorded.records[case.id]
    view = replay_view(replay_case(case, corpus))
    fields = compare(rec.real, view)
    assert all(f.ok for f in fields), f"{case.id}: {mismatch_report(fields)}\nreplay: {view}"
    if rec.real.outcome == "fault":
        assert any(f.compared and f.name not in ("verdict", "stage") for f in fields), \
            "a recorded fault with nothing to compare but the verdict"
    assert rec.replay == view, (
        f"{case.id}: results.json's replay fields are not today's replay; "
        "run: python tests/e2e/lab/calibration.py --replay --write")


def test_doc_table_is_generated(recorded: calibration.Results) -> None:
    doc = calibration.DOC.read_text(encoding="utf-8")
    assert calibration.BEGIN in doc and calibration.END in doc
    assert calibration.replace_table(doc, calibration.table(recorded)) == doc, \
        "run: python tests/e2e/lab/calibration.py --write"


def test_table_shows_every_record(recorded: calibration.Results) -> None:
    text = calibration.table(recorded)
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "lab-" in ln]
    assert len(rows) == len(CASES)
    faults = [r for r in recorded.records.values() if r.real.outcome == "fault"]
    assert sum("**#PF" in ln or " exception**" in ln for ln in rows) == len(faults)


def test_compare_catches_each_field(recorded: calibration.Results) -> None:
    """The comparison a boot goes through fails on a moved page offset, a changed error
    code, a different verdict and a fault without a dump."""
    from .lab.matrix import Observation

    rec = recorded.records["bookworm-strict-sb"]
    assert rec.real.outcome == "fault" and all(f.ok for f in compare(rec.real, rec.replay))

    def bad(obs: Observation) -> list[str]:
        return [f.name for f in compare(obs, rec.replay) if not f.ok]

    def edited(old: str, new: str) -> Observation:
        dump = tuple(x.replace(old, new) for x in rec.real.dump)
        r = rec.real
        return Observation(r.arch, r.outcome, r.stage, r.secure_boot_seen,
                           r.memory_attribute_protocol, dump)

    assert bad(edited("RIP  - 00000000287AA2F0", "RIP  - 00000000287AA2F8")) == ["RIP & 0xfff"]
    assert bad(edited("ExceptionData - 0000000000000011",
                      "ExceptionData - 0000000000000015")) == ["#PF error"]
    assert bad(Observation("x64", "kernel", "kernel", True, True)) == ["verdict"]
    assert bad(Observation("x64", "fault", "kernel-loaded", False, True)) == ["dump"]


def test_compare_catches_each_refusal_field(recorded: calibration.Results) -> None:
    """A refused boot is compared on the stage that refused, the stop code and the message:
    a replay that stops elsewhere, for another reason or with other words fails."""
    from dataclasses import replace

    rec = recorded.records["nxshim-grub206-strict-img-nosb"]
    assert rec.real.outcome == "refused" and rec.real.refusal
    fields = compare(rec.real, rec.replay)
    assert [f.name for f in fields] == ["verdict", "stage", "code", "message"]
    assert all(f.ok and f.compared for f in fields)

    def bad(obs: Observation, **view: object) -> list[str]:
        return [f.name for f in compare(obs, {**rec.replay, **view}) if not f.ok]

    assert bad(rec.real, stage="grub") == ["stage"]
    assert bad(rec.real, code="unsigned", reason="shim: Verification failed") == \
        ["code", "message"]
    # a refusal line the table does not know: stage and code not compared, the message is
    other = replace(rec.real, refusal="Verification failed: (0x1A) Security Violation")
    assert bad(other) == ["message"]
    assert [f.compared for f in compare(other, rec.replay)] == [True, False, False, True]


def test_a_view_without_the_stop_compares_only_the_verdict(
        recorded: calibration.Results) -> None:
    """``fault_view`` of a refusing ``fw-check vm`` document carries no stop: the refusal's
    fields are shown as not compared rather than failed."""
    from .lab.matrix import fault_view

    rec = recorded.records["nxshim-grub212-strict-img-sb"]
    fields = compare(rec.real, fault_view("refused", []))
    assert [(f.name, f.ok, f.compared) for f in fields] == [
        ("verdict", True, True), ("refusal", True, False)]
