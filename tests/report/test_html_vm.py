"""``fw-check vm --html`` on real machines (Debian 13's chain on a GPT disk built from the
corpus, Debian's OVMF and stores): the page is well formed and self-contained, shows every
field of the ``fwtools.fw-check.vm/1`` document it carries (the one ``--json`` prints), and
escapes hostile paths and certificate subjects."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "machine")]

from vm_builder import build_debian_disk, fw_vars, sbsign  # noqa: E402

from fwtools.formats.efi import guids  # noqa: E402
from fwtools.machine.vm import check_vm  # noqa: E402
from fwtools.report.html_vm import DATA_ID, render_vm_html  # noqa: E402
from fwtools.report.vm_json import vm_document  # noqa: E402

from .html_pages import PageParser, parse_page  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "testdata" / "sample"
FW_CHECK = [sys.executable, "-c", "import sys; from fwtools.cli.fw_check import main; "
            "sys.argv[0] = 'fw-check'; main()", "vm"]
EVIL = "</script><script>alert(1)</script>"

#: how the page words a JSON value where it does not print it as is (path pattern with *
#: for a list index -> {value: text})
WORDED: dict[str, dict[Any, str]] = {
    "stages.*.allowed": {True: "allowed", False: "refused", None: "not checked"},
    "verdict": {"boots": "Boots", "faults": "Faults", "refused": "Refused"},
}


def parse(page: str) -> tuple[PageParser, dict[str, Any]]:
    p, doc = parse_page(page, DATA_ID)
    # self-contained: no script source, no link, no stylesheet or font from elsewhere
    assert all(u.startswith("#") for u in p.urls), p.urls
    assert p.scripts == [{"type": "application/json", "id": DATA_ID}]
    low = page.lower()
    for needle in ("<link", "@import", "url(", "<iframe", "http://", "https://", "@font-face"):
        assert needle not in low, needle
    return p, doc


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar of a JSON document with its dotted path (a null object is a leaf)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}.{i}")
    else:
        yield path, value


def _pattern(path: str) -> str:
    return ".".join("*" if part.isdigit() else part for part in path.split("."))


def assert_every_field_shown(doc: dict[str, Any], p: PageParser) -> None:
    for path, value in leaves(doc):
        assert path in p.fields, f"{path} ({value!r}) is not on the page"
        texts = p.fields[path]
        worded = WORDED.get(_pattern(path))
        if worded is not None:
            ok = worded[value] in texts
        elif isinstance(value, bool):
            ok = ("yes" if value else "no") in texts
        elif isinstance(value, int):
            ok = bool({str(value), hex(value), f"{value:#018x}"} & set(texts))
        elif isinstance(value, str) and value:
            ok = value in texts
        else:  # null or "": shown in words ("none", "absent", "(none)", ...)
            ok = all(t.strip() for t in texts)
        assert ok, f"{path}: {value!r} shown as {texts!r}"


def assert_vm_page(page: str, doc: dict[str, Any]) -> PageParser:
    p, data = parse(page)
    assert data == doc  # the document the page was drawn from rides along, unchanged
    assert_every_field_shown(doc, p)
    # the verdict is up front, then firmware, Secure Boot, stages, refusal, faults, inputs
    assert p.sections == ["firmware-h", "secure-boot-h", "stages-h", "refusal-h", "faults-h",
                          "inputs-h"]
    assert f'class="verdict verdict-{doc["verdict"]}"' in page
    assert page.index("verdict-") < page.index('id="firmware-h"')
    assert len([i for i in p.ids if i.startswith("stage-")]) == len(doc["stages"])
    return p


@pytest.fixture(scope="module")
def trixie(corpus: object, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    shim, grub, kernel = corpus.boot_chain("trixie", "amd64")  # type: ignore[attr-defined]
    tmp = tmp_path_factory.mktemp("vm-html")
    disk = build_debian_disk(tmp, shim, grub, kernel, fallback=grub)
    ovmf = corpus.ovmf_dir("trixie")  # type: ignore[attr-defined]
    return {"tmp": tmp, "disk": disk, "shim": shim, "grub": grub, "kernel": kernel,
            "code": ovmf / "OVMF_CODE_4M.secboot.fd", "ms": ovmf / "OVMF_VARS_4M.ms.fd",
            "blank": ovmf / "OVMF_VARS_4M.fd"}


def _sbat_grub_store(m: dict[str, Path]) -> Path:
    out = m["tmp"] / "sbat-grub.fd"
    if not out.exists():
        fw_vars("sbat-level", m["ms"], "--level", "sbat,1,2099010100\ngrub,99\n", "-o", out)
    return out


def test_boots_page_from_the_disk(trixie: dict[str, Path]) -> None:
    r = check_vm(str(trixie["code"]), str(trixie["ms"]), disk=str(trixie["disk"]))
    assert r.verdict == "boots"
    doc = vm_document(r)
    page = render_vm_html(doc)
    p = assert_vm_page(page, doc)
    assert p.fields["stages.0.path"] == ["partition 1:\\EFI\\debian\\shimx64.efi"]
    assert p.fields["stages.0.authority.kind"] == ["db-certificate"]
    assert "UEFI CA 2011" in p.fields["stages.0.authority.subject"][0]
    assert p.fields["firmware.settings.nx_policy.basis"] == ["known build"]
    assert p.fields["refusal"] == ["No stage was refused."]
    assert "No fault" in "".join(p.text)


def test_refused_by_shim_sbat_page(trixie: dict[str, Path]) -> None:
    r = check_vm(str(trixie["code"]), str(_sbat_grub_store(trixie)), disk=str(trixie["disk"]))
    assert r.verdict == "refused"
    doc = vm_document(r)
    p = assert_vm_page(render_vm_html(doc), doc)
    assert p.fields["refusal.by"] == ["shim"] and p.fields["refusal.stage"] == ["2"]
    # the message as shim prints it, in a console block
    assert p.fields["refusal.message"] == ["Verification failed: (0x1A) Security Violation"]
    assert p.fields["stages.1.sbat.result"] == ["fail"]
    assert p.fields["stages.1.sbat.level"] == ["2099010100"]
    assert p.fields["stages.1.sbat.failed_row.component"] == ["grub"]
    assert p.fields["stages.1.sbat.failed_row.minimum"] == ["99"]


def test_refused_by_firmware_page(trixie: dict[str, Path]) -> None:
    store = trixie["tmp"] / "windows-only.fd"
    fw_vars("enroll", trixie["blank"], "--pk", "generate:fwtools vm html PK", "--timestamp",
            "0", "--microsoft", "--microsoft-db", "windows-2011", "-o", store)
    r = check_vm(str(trixie["code"]), str(store), disk=str(trixie["disk"]))
    doc = vm_document(r)
    p = assert_vm_page(render_vm_html(doc), doc)
    assert p.fields["refusal.by"] == ["firmware"]
    assert p.fields["refusal.message"][0].startswith("BdsDxe: failed to load ")
    assert p.fields["stages.0.allowed"] == ["refused"]
    assert p.fields["stages.0.authority"] == ["none (not allowed, or not checked)"]
    assert p.fields["stages.0.model"] == ["(not replayed)"]


def test_faults_page_strict_nx(corpus: object, trixie: dict[str, Path]) -> None:
    """Debian 12's chain on the strict-NX profile: GRUB 2.06 faults; the faults section has
    every field of boot-chain's fault JSON."""
    chain = corpus.boot_chain("bookworm", "amd64")  # type: ignore[attr-defined]
    r = check_vm("ovmf-strict", str(trixie["ms"]), chain=[str(c) for c in chain])
    assert r.verdict == "faults"
    doc = vm_document(r)
    p = assert_vm_page(render_vm_html(doc), doc)
    f = doc["faults"][0]
    assert p.fields["faults.0.address_hex"] == [f["address_hex"]]
    assert p.fields["faults.0.fault"] == [f["fault"]]
    assert p.fields["firmware.settings.nx_policy.value"] == ["0xc000000000007fd5"]
    assert p.fields["firmware.settings.nx_policy.basis"] == ["override"]


def _hostile_cert(tmp: Path, cn: str) -> tuple[Path, Path, bytes]:
    from corpus.params import need_tool

    need_tool("openssl")
    key, pem = tmp / "evil.key", tmp / "evil.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                    "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(pem)],
                   check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", str(pem), "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return key, pem, der


def test_hostile_path_and_subject_are_escaped(trixie: dict[str, Path]) -> None:
    """A chain under a directory named like a script element, and a kernel signed by a key
    whose subject is markup, trusted through MokList: both are inert text on the page."""
    tmp = trixie["tmp"] / "evil"
    where = tmp / "<script>alert(1)<" / "script>&amp;\"'"
    where.mkdir(parents=True)
    key, pem, der = _hostile_cert(tmp, "<img src=x onerror=alert(1)>")
    unsigned = tmp / "vmlinuz-unsigned"
    shutil.copyfile(trixie["kernel"], unsigned)
    subprocess.run(["sbattach", "--remove", str(unsigned)], check=True, capture_output=True)
    kernel = sbsign(key, pem, unsigned, where / "vmlinuz")
    shim = where / "shimx64.efi"
    shutil.copyfile(trixie["shim"], shim)
    entry = uuid.UUID(int=0).bytes_le + der
    esl = tmp / "mok.esl"
    esl.write_bytes(guids.CERT_X509.bytes_le + struct.pack("<III", 28 + len(entry), 0,
                                                           len(entry)) + entry)
    store = tmp / "mok.fd"
    fw_vars("set", trixie["ms"], "MokList", "--guid", str(guids.SHIM_LOCK), "--attributes",
            "NV,BS", "--file", esl, "-o", store)
    r = check_vm(str(trixie["code"]), str(store),
                 chain=[str(shim), str(trixie["grub"]), str(kernel)])
    assert r.verdict == "boots", r.refusal
    auth = r.stages[2].authority
    assert auth is not None and auth.kind == "mok-certificate"
    assert auth.subject is not None and "<img" in auth.subject
    doc = vm_document(r)
    page = render_vm_html(doc)
    p = assert_vm_page(page, doc)
    assert p.fields["stages.0.path"] == [str(shim)]
    assert p.fields["stages.2.authority.subject"] == [auth.subject]
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    block = page.split(f'id="{DATA_ID}">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block and "&" not in block


def test_hand_made_document_with_script_breakout() -> None:
    """Every string of the document hostile, the fault too: nothing but text comes out."""
    from fwtools.report.vm_json import SCHEMA

    settings = {"nx_policy": {"value": 0xC000000000007FD5, "basis": EVIL,
                              "hex": "0xc000000000007fd5"},
                "edk2_release": {"value": EVIL, "basis": EVIL}}
    stage = {"index": 1, "path": EVIL, "found_by": EVIL, "loaded_by": EVIL, "family": EVIL,
             "model": EVIL, "allowed": False, "checked_by": EVIL, "trust": EVIL,
             "authority": {"kind": EVIL, "subject": EVIL, "sha256": EVIL},
             "sbat": {"level": EVIL, "source": EVIL, "result": "fail",
                      "failed_row": {"component": EVIL, "generation": 1, "minimum": 2},
                      "note": EVIL}}
    fault = {"stage": EVIL, "stage_index": 1, "operation": EVIL, "address": 0x150000,
             "address_hex": "0x150000", "access": "fetch", "memory_type": EVIL,
             "attributes": EVIL, "fault": EVIL, "code": 0x11, "code_hex": "0x11",
             "explanation": EVIL, "fix": EVIL, "changed_by": EVIL}
    doc = {"schema": SCHEMA, "tool": {"name": EVIL, "version": EVIL}, "verdict": "refused",
           "reason": EVIL, "vars": EVIL, "disk": EVIL, "discovery": EVIL,
           "firmware": {"source": EVIL, "kind": EVIL, "identified": EVIL, "sha256": EVIL,
                        "basis": EVIL, "profile": EVIL, "description": EVIL, "arch": EVIL,
                        "settings": settings, "notes": [EVIL]},
           "secure_boot": {"enabled": True, "state": "on", "reason": EVIL, "pk": True,
                           "secure_boot_enable": None, "mode": "user",
                           "firmware_support": None},
           "stages": [stage], "chain_complete": False, "chain_stopped": EVIL,
           "refusal": {"stage": 1, "by": EVIL, "reason": EVIL, "message": EVIL},
           "faults": [fault], "notes": [EVIL]}
    page = render_vm_html(doc)
    assert_vm_page(page, doc)
    assert EVIL not in page and "<script>alert" not in page
    assert page.count("<script") == 1  # the data block only


def test_cli_html_matches_json(trixie: dict[str, Path], tmp_path: Path) -> None:
    """The page --html writes carries exactly the document --json prints; the write is
    atomic (no temporary file left), and an unwritable target is exit 2."""
    out = tmp_path / "vm.html"
    args = ["--firmware", str(trixie["code"]), "--vars", str(_sbat_grub_store(trixie)),
            "--disk", str(trixie["disk"])]
    proc = subprocess.run([*FW_CHECK, *args, "--json", "--html", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert_vm_page(page, doc)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["vm.html"]

    proc = subprocess.run([*FW_CHECK, *args, "--html", str(tmp_path / "no" / "vm.html")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


def test_systemd_boot_uki_page(corpus: object, tmp_path: Path) -> None:
    """systemd-boot (Debian 13's) as the removable loader picking a UKI by loader.conf's
    default: the page names the loader and how the UKI was found."""
    from vm_builder import build_sdboot_disk

    sd = corpus.systemd_boot("trixie")  # type: ignore[attr-defined]
    kernel = corpus.kernel("trixie", "amd64")  # type: ignore[attr-defined]
    disk = build_sdboot_disk(tmp_path, sd, kernel, REPO / "testdata" / "uki" / "uki.efi",
                             default="debian-uki*")
    ovmf = corpus.ovmf_dir("trixie")  # type: ignore[attr-defined]
    r = check_vm(str(ovmf / "OVMF_CODE_4M.secboot.fd"), str(ovmf / "OVMF_VARS_4M.fd"),
                 disk=str(disk))
    doc = vm_document(r)
    p = assert_vm_page(render_vm_html(doc), doc)
    assert p.fields["stages.1.loaded_by"] == ["systemd-boot"]
    assert p.fields["stages.1.path"] == ["partition 1:\\EFI\\Linux\\debian-uki.efi"]
    assert "loader.conf default 'debian-uki*'" in p.fields["stages.1.found_by"][0]
    assert p.fields["stages.1.authority.kind"] == ["secure-boot-off"]
    assert p.fields["secure_boot.state"] == ["off"]
