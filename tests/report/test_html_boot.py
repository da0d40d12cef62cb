"""The boot-chain HTML page: well-formed, self-contained, safely escaped, snapshots shared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from corpus import Corpus

from fwtools._base import record
from fwtools.report.html_boot import DATA_ID, page_data, render_html
from fwtools.report.html_page import script_json
from fwtools.uefi.firmware import Event, FaultRecord
from fwtools.uefi.profile import load_firmware
from fwtools.uefi.replay import MemoryRange, Replay, StageInfo, replay_files

from .html_pages import PageParser, parse_page


def parse(page: str) -> tuple[PageParser, dict[str, Any]]:
    return parse_page(page, DATA_ID)


def assert_self_contained(page: str, parser: PageParser) -> None:
    assert all(u.startswith("#") for u in parser.urls), parser.urls
    for s in parser.scripts:
        assert "src" not in s
    low = page.lower()
    for needle in ("<link", "@import", "url(", "<iframe", "http://", "https://"):
        assert needle not in low, needle


def _replay_chain(paths: tuple[Path, ...], firmware: Any, *, secure_boot: bool,
                  snapshots: bool = True) -> Replay:
    return replay_files(paths, firmware=firmware, secure_boot=secure_boot,
                        snapshots=snapshots)


@pytest.fixture(scope="module")
def x64_fault(corpus: Corpus) -> Replay:
    r = _replay_chain(corpus.boot_chain("bookworm", "amd64"), "ovmf-strict", secure_boot=True)
    assert r.verdict == "faults"
    return r


def test_faulting_chain_page(x64_fault: Replay) -> None:
    page = render_html(x64_fault)
    parser, data = parse(page)
    assert_self_contained(page, parser)
    assert data == page_data(x64_fault)
    assert data["verdict"] == "faults"
    assert "verdict-faults" in page and "Faults" in page
    fault = x64_fault.faults[0]
    assert f"{fault.address:#x}" in page
    assert fault.fault in page
    for stage in x64_fault.stages:
        assert stage.name in page and stage.model in page
    # the fault is linked to its timeline step, and that step draws the map after it
    (step,) = data["faults"]
    assert data["events"][step]["status"] == "FAULT"
    assert data["events"][step]["start"] <= fault.address < data["events"][step]["end"]
    assert data["events"][step]["snap"] is not None
    # the NX policy is shown in hex with the types it makes NX
    assert "0xc000000000007fd5" in page
    assert "LoaderData" in page


def test_snapshots_stored_once(x64_fault: Replay) -> None:
    data = page_data(x64_fault)
    distinct = {tuple(v) for v in x64_fault.snapshots.values()}
    assert len(data["maps"]) == len(distinct) < len(x64_fault.snapshots)
    types = data["types"]
    for i, ev in enumerate(data["events"]):
        snap = x64_fault.snapshots.get(i)
        if snap is None:
            assert ev["snap"] is None
            continue
        rebuilt = [MemoryRange(s, e, None if t is None else types[t], p)
                   for s, e, t, p in data["maps"][ev["snap"]]]
        assert rebuilt == snap


def test_big_guest_page(corpus: Corpus) -> None:
    fw = load_firmware("ovmf-strict").with_overrides(memory_mib=65536)
    r = _replay_chain(corpus.boot_chain("bookworm", "amd64"), fw, secure_boot=True)
    page = render_html(r)
    _parser, data = parse(page)
    top = max(rng[1] for m in data["maps"] for rng in m)
    assert top >= 64 << 30
    assert "65536 MiB" in page


@pytest.mark.parametrize(
    ("suite", "arch", "firmware", "verdict"),
    [("bookworm", "amd64", "ovmf", "boots"), ("trixie", "arm64", "armvirt-map", None)],
)
def test_other_chains(corpus: Corpus, suite: str, arch: str, firmware: str,
                      verdict: str | None) -> None:
    r = _replay_chain(corpus.boot_chain(suite, arch), firmware, secure_boot=True)
    if verdict is not None:
        assert r.verdict == verdict
    page = render_html(r)
    parser, data = parse(page)
    assert_self_contained(page, parser)
    assert len(data["events"]) == len(r.events)
    assert f"verdict-{r.verdict}" in page
    assert ("x64" if arch == "amd64" else "aa64") in page


def test_without_snapshots(corpus: Corpus) -> None:
    r = _replay_chain(corpus.boot_chain("bookworm", "amd64"), "ovmf-strict", secure_boot=True,
                      snapshots=False)
    page = render_html(r)
    _parser, data = parse(page)
    assert data["maps"] == []
    assert all(ev["snap"] is None for ev in data["events"])
    assert "needs snapshots" in page
    assert 'id="strip"' not in page
    assert f"{r.faults[0].address:#x}" in page


EVIL = "</script><script>alert(1)</script>"


def _hand_made() -> Replay:
    stage = StageInfo(0, "shim<b>", "/esp/EFI/<evil>.efi", "shim-16.1", "shim", "16.1",
                      "a & b", False, "")
    events = [
        Event("firmware", "firmware start"),
        Event("shim", "AllocatePages", 0x100000, 0x200000, "EfiLoaderCode", "rwx"),
        Event("shim", "write buffer", 0x100000, 0x101000, "EfiLoaderCode", "rwx", detail=EVIL),
        Event("shim", "fault", 0x150000, 0x150001, None, "rw-", detail=EVIL, status="FAULT"),
    ]
    snap = [MemoryRange(0, 0x100000, "EfiConventionalMemory", "rw-"),
            MemoryRange(0x100000, 0x200000, "EfiLoaderCode", "rwx")]
    fault = FaultRecord("shim", EVIL, 0x150000, "fetch", "EfiLoaderData", "#PF error 0x11",
                        EVIL, EVIL, "XP", EVIL)
    return Replay(
        load_firmware("ovmf-strict"), "x64", True, [stage], events, [fault], "faults",
        EVIL, snapshots={1: list(snap), 2: list(snap), 3: list(snap)},
    )


def test_script_breakout_is_escaped() -> None:
    r = _hand_made()
    page = render_html(r)
    parser, data = parse(page)
    assert_self_contained(page, parser)
    assert "alert(1)" in page  # it is there, but only as inert text
    assert EVIL not in page
    assert "<script>alert" not in page
    assert page.count("<script") == 2  # the data block and the viewer
    assert "<b>" not in page and "<evil>" not in page
    assert data["events"][2]["detail"] == EVIL
    assert data["events"][3]["detail"] == EVIL
    block = page.split(f'id="{DATA_ID}">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block and "&" not in block
    assert "\\u003c/script\\u003e" in block


def test_script_json_escapes() -> None:
    text = script_json({"a": "<!-- & </script> -->", "n": [1, 2]})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "<!-- & </script> -->", "n": [1, 2]}


def test_identical_snapshots_share_one_map() -> None:
    data = page_data(_hand_made())
    assert len(data["maps"]) == 1
    assert [ev["snap"] for ev in data["events"]] == [None, 0, 0, 0]
    assert data["types"] == ["EfiConventionalMemory", "EfiLoaderCode"]
    assert data["faults"] == [3]


def test_changed_snapshot_gets_its_own_map() -> None:
    r = _hand_made()
    r.snapshots[3] = [MemoryRange(0, 0x200000, "EfiLoaderCode", "r-x")]
    data = page_data(r)
    assert len(data["maps"]) == 2
    assert [ev["snap"] for ev in data["events"]] == [None, 0, 0, 1]


def test_no_events() -> None:
    r = Replay(load_firmware("ovmf"), "x64", False, [], verdict="refused", reason="nothing")
    page = render_html(r)
    _parser, data = parse(page)
    assert data["events"] == [] and data["faults"] == []
    assert "recorded no events" in page
    assert "No fault" in page


def test_large_addresses_stay_exact() -> None:
    r = _hand_made()
    high = (1 << 60) + 0x1000
    r.events.append(Event("shim", "odd", high, high + 0x1000, None, "r--"))
    data = page_data(r)
    ev = data["events"][-1]
    assert ev["start"] == hex(high) and int(ev["end"], 16) == high + 0x1000


def test_a_fallback_stage_says_so_with_its_facts_escaped() -> None:
    r = _hand_made()
    r.stages[0] = record.replace(r.stages[0], model="efi-app", model_basis="fallback",
                                      unidentified=("no .sbat <row>",))
    page = render_html(r)
    assert "(fallback: not identified)" in page and "(unverified)" in page
    assert "no .sbat &lt;row&gt;" in page and "<row>" not in page
