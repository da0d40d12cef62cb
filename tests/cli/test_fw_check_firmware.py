"""fw-check firmware end to end: text and JSON (validated against its schema), exit codes,
policies, and one-line errors for hostile and wrong inputs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from corpus.params import corpus_files, need

REPO = Path(__file__).resolve().parents[2]
PI = REPO / "testdata" / "pi"
FW_CHECK = [sys.executable, "-c", "from fwtools.cli.fw_check import main; main()"]
SCHEMA = json.loads((REPO / "docs/schemas/fw-check-firmware-1.schema.json").read_text())


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FW_CHECK, "firmware", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO)


def doc_of(p: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(p.stdout)
    jsonschema.validate(doc, SCHEMA)
    return doc


def test_text_report_of_the_fixture() -> None:
    p = run(PI / "tiny.fd")
    assert p.returncode == 1, p.stderr  # LegacyWx / BcjDriver are W+X and 0x200-aligned
    out = p.stdout
    for text in ("Volumes", "11111111-2222-3333-4444-555555555555", "FFS3",
                 "in LZMA section at 0x2500", "in LZMA+x86 section at", "HelloNx", "TinyTe",
                 "unsupported: Brotli compression",
                 "FAIL 11111111-2222-3333-4444-555555555555/LegacyWx",
                 "wx-section: section .text is both writable and executable",
                 "8 modules (7 PE, 1 TE)"):
        assert text in out, text
    assert "/HelloNx\n" not in out
    assert p.stderr == ""


def test_json_document() -> None:
    doc = doc_of(run("--json", PI / "tiny.fd"))
    assert doc["schema"] == "fwtools.fw-check.firmware/1"
    fw = doc["firmware"]
    assert [v["file_system"] for v in fw["volumes"]] == ["FFS2", "FFS2", "FFS2", "FFS3"]
    assert [v["parent"] for v in fw["volumes"]] == [None, 0, 0, None]
    assert fw["volumes"][1]["offset"] is None and fw["volumes"][0]["offset"] == 0
    data = (PI / "tiny.fd").read_bytes()
    assert fw["volumes"][0]["sha256"] == hashlib.sha256(data[:0xC000]).hexdigest()
    mods = {m["name"]: m for m in doc["modules"]}
    assert list(mods) == ["HelloNx", "LegacyWx", "TinyTe", "StdCompressed", "TianoDriver",
                          "InnerDriver", "BcjDriver", "LargeHeader"]
    assert mods["HelloNx"]["nx_compat"] is True and mods["HelloNx"]["section_alignment"] == 4096
    assert mods["TinyTe"]["format"] == "TE" and mods["TinyTe"]["section_alignment"] is None
    assert mods["TinyTe"]["wx_sections"] == [".data"]
    assert set(mods["TinyTe"]["skipped"]) == {"section-alignment", "nx-compat"}
    assert mods["InnerDriver"]["label"].endswith("/InnerDriver")
    assert mods["InnerDriver"]["offset"] is None  # inside the LZMA output
    hello = (REPO / "testdata/sample/hello-nx.efi").read_bytes()
    data = (PI / "tiny.fd").read_bytes()
    assert data[mods["HelloNx"]["offset"]:][: len(hello)] == hello
    rules = {(r["path"].split("/")[-1], r["rule"]) for r in doc["results"]}
    assert ("LegacyWx", "wx-section") in rules and ("TinyTe", "wx-section") in rules
    assert not any(r[0] == "HelloNx" for r in rules)
    s = doc["summary"]
    assert s["exit_code"] == 1 and not s["passed"]
    assert s["modules"] == {"modules": 8, "pe": 7, "te": 1, "unparsed": 0, "page_aligned": 5,
                            "nx_compat": 5, "wx": 3}


def test_policy_and_fail_on(tmp_path: Path) -> None:
    profile = tmp_path / "lenient.toml"
    profile.write_text('name = "lenient"\ndescription = "d"\n[rules.wx-section]\n'
                       'severity = "note"\n')
    p = run("--policy", profile, PI / "tiny.fd")
    assert p.returncode == 0, p.stdout + p.stderr
    p = run("--policy", profile, "--fail-on", "note", "--json", PI / "tiny.fd")
    assert p.returncode == 1
    assert {r["rule"] for r in doc_of(p)["results"]} == {"wx-section"}


def test_output_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    p = run("--json", "-o", out, PI / "tiny.fd")
    assert p.returncode == 1 and p.stdout == ""
    jsonschema.validate(json.loads(out.read_text()), SCHEMA)


@pytest.mark.parametrize("name,fragment", [
    ("truncated.fd", "EFI_FIRMWARE_VOLUME_HEADER FvLength: offset 0x20"),
    ("lzma-bomb.fd", "LZMA header UncompressedSize: offset 0x7d"),
    ("nested-bomb.fd", "nested more than 10 levels deep"),
    ("huge-section-size.fd", "offset 0x60"),
])
def test_malformed_images_exit_2_with_one_line(name: str, fragment: str) -> None:
    p = run(PI / name)
    assert p.returncode == 2
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert str(PI / name) in lines[0]
    assert "Traceback" not in p.stderr


def test_a_variable_store_is_not_a_firmware_image() -> None:
    p = run(REPO / "testdata/varstore/normal-format.fd")
    assert p.returncode == 2
    assert "no firmware file system volume (only NVRAM)" in p.stderr


# -- the real images --------------------------------------------------------------------------

@pytest.mark.parametrize("path", corpus_files(
    "trixie/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_CODE.secboot.fd"))
def test_trixie_aavmf_passes_the_audit(path: Path | None) -> None:
    p = run("--json", need(path))
    assert p.returncode == 0, p.stderr
    doc = doc_of(p)
    assert doc["summary"]["modules"]["te"] == 10 and doc["results"] == []
    facts = {f["name"]: f["value"] for f in doc["firmware"]["facts"]}
    assert facts["memory_attribute_protocol"] is True
    assert facts["secure_boot"] == "supported"


@pytest.mark.parametrize("path", corpus_files("trixie/amd64/ovmf/usr/share/ovmf/OVMF.fd"))
def test_ovmf_fd_with_its_store(path: Path | None) -> None:
    p = run("--json", need(path))
    assert p.returncode == 1, p.stderr  # 124 of 134 x86 modules are 0x40-aligned
    doc = doc_of(p)
    store = doc["firmware"]["variable_store"]
    assert store["offset"] == 0 and store["size"] == 0x84000 and store["error"] is None
    assert doc["firmware"]["volumes"][0]["file_system"] == "NVRAM"
    mods = doc["summary"]["modules"]
    assert (mods["modules"], mods["page_aligned"], mods["nx_compat"], mods["wx"]) == (
        134, 10, 10, 0)
    cpu = [m for m in doc["modules"] if m["name"] == "CpuDxe"]
    assert len(cpu) == 2 and len({m["guid"] for m in cpu}) == 2  # UI names are not unique


@pytest.mark.parametrize("path", corpus_files(
    "trixie/amd64/ovmf/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"))
def test_text_keeps_modules_sharing_a_name_apart(path: Path | None) -> None:
    """OVMF has two CpuMpPei and two CpuDxe (different GUIDs): the audit shows one header
    per module, the GUID beside a shared name, each with its own findings."""
    p = run(need(path))
    assert p.returncode == 1, p.stderr
    doc = doc_of(run("--json", need(path)))
    for name in ("CpuMpPei", "CpuDxe"):
        guids = [m["guid"] for m in doc["modules"] if m["name"] == name]
        assert len(guids) == 2 and len(set(guids)) == 2
        headers = [line for line in p.stdout.splitlines()
                   if line.startswith("  FAIL ") and line.split("/")[-1].startswith(name + " ")]
        assert sorted(headers) == sorted(
            f"  FAIL {m['label']} {{{m['guid']}}}" for m in doc["modules"] if m["name"] == name)
    assert "  FAIL PEIFV/TpmMmioSevDecryptPei\n" in p.stdout  # a unique name keeps no GUID
