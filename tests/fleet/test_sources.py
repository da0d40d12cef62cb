"""Where stores come from: directories (with files that are not stores), libvirt domain XML,
and the refusal of XML with a DTD; the worker pool keeps input order."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleet_testlib import store_2011

from fwtools.errors import UsageError
from fwtools.fleet.audit import audit_store
from fwtools.fleet.sources import StoreRef, expand, looks_like_store, parse_domain_xml
from fwtools.fleet.workers import run_many

DOMAIN = """<domain type='kvm'>
  <name>{name}</name>
  <os firmware='efi'>
    <type arch='{arch}' machine='q35'>hvm</type>
    <loader readonly='yes' secure='yes' type='pflash'
            format='raw'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd' format='raw'>{nvram}</nvram>
  </os>
</domain>
"""


def test_directory_with_a_bad_file(tmp_path: Path) -> None:
    good = store_2011(tmp_path)
    (tmp_path / "broken_VARS.fd").write_bytes(b"\x00" * 1000)  # named like a store: audited
    (tmp_path / "README").write_text("not a store\n")  # not a store by name or size: skipped
    (tmp_path / "OVMF_CODE_4M.fd").write_bytes(b"\xff" * 0x84000)  # store-sized, no FV
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "garbage.qcow2").write_bytes(b"QFI\xfb" + b"\x00" * 60)
    refs = list(expand([str(tmp_path)]))
    # A directory's own files first (sorted), then its subdirectories.
    assert [Path(r.path).name for r in refs] == ["broken_VARS.fd", good.name, "garbage.qcow2"]
    audits = [audit_store(r) for r in refs]
    assert audits[0].error is not None and "broken_VARS.fd" in audits[0].error
    assert audits[2].error is not None and "\n" not in audits[2].error
    assert audits[1].error is None and audits[1].pk is not None
    assert audits[0].findings[0].code == "store-unreadable"


def test_directory_walk_skips_special_files(tmp_path: Path) -> None:
    # A FIFO named like a store hung the audit (its open for reading blocks); a socket and
    # a symlink to a FIFO are no stores either. Nothing that is not a regular file is opened.
    import os
    import socket

    good = store_2011(tmp_path)
    os.mkfifo(tmp_path / "vm_VARS.fd")
    os.mkfifo(tmp_path / "dom.xml")
    (tmp_path / "link_VARS.fd").symlink_to(tmp_path / "vm_VARS.fd")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "qemu.nvram"))
    sock.close()
    assert [Path(r.path).name for r in expand([str(tmp_path)])] == [good.name]
    assert not looks_like_store(str(tmp_path / "vm_VARS.fd"))
    # Named on the command line, it is a row that reading reports (tests/cli/
    # test_special_files.py runs the commands).
    (ref,) = expand([str(tmp_path / "vm_VARS.fd")])
    assert audit_store(ref).error == f"{tmp_path / 'vm_VARS.fd'}: is a named pipe (FIFO), " \
        "not a regular file"


def test_missing_argument_is_an_error_row(tmp_path: Path) -> None:
    (ref,) = expand([str(tmp_path / "nope.fd")])
    assert ref.error is not None
    audit = audit_store(ref)
    assert audit.error is not None and "no such file" in audit.error


def test_domain_xml(tmp_path: Path) -> None:
    store = store_2011(tmp_path, "web_VARS.fd")
    xml = tmp_path / "web.xml"
    xml.write_text(DOMAIN.format(name="web", arch="x86_64", nvram=store))
    (ref,) = expand([str(xml)])
    assert ref == StoreRef(str(store), vm="web", declared_format="raw",
                           template="/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
                           loader="/usr/share/OVMF/OVMF_CODE_4M.ms.fd", architecture="x64",
                           source="domain-xml")
    audit = audit_store(ref)
    assert audit.vm == "web" and audit.error is None and audit.template is not None


def test_domain_xml_architecture_wins_over_layout(tmp_path: Path) -> None:
    store = store_2011(tmp_path, "arm_VARS.fd")
    ref = parse_domain_xml(DOMAIN.format(name="arm", arch="aarch64", nvram=store), origin="x")
    assert ref is not None
    audit = audit_store(ref)
    assert audit.dbx is not None and audit.dbx.architecture == "aarch64"
    assert "domain" in audit.dbx.architecture_from


def test_domain_without_nvram_and_bios_domain() -> None:
    no_nvram = "<domain><name>a</name><os firmware='efi'><type>hvm</type></os></domain>"
    ref = parse_domain_xml(no_nvram, origin="a.xml")
    assert ref is not None and ref.error is not None and "no <nvram>" in ref.error
    bios = "<domain><name>b</name><os><type>hvm</type></os></domain>"
    assert parse_domain_xml(bios, origin="b.xml") is None
    source = ("<domain><name>c</name><os><loader>/x</loader><nvram type='file'>"
              "<source file='/var/lib/c_VARS.fd'/></nvram></os></domain>")
    ref = parse_domain_xml(source, origin="c.xml")
    assert ref is not None and ref.path == "/var/lib/c_VARS.fd" and ref.vm == "c"


@pytest.mark.parametrize("text", [
    '<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY x "y">]><domain><name>&x;</name></domain>',
    "<domain><name>unclosed</domain>",
    "<network><name>n</name></network>",
    '<?xml version="1.0" encoding="bogus"?><domain/>',
    "",
    "\xff\xfe<",
])
def test_bad_domain_xml_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_domain_xml(text, origin="bad.xml")


def test_bad_domain_xml_file_is_an_error_row(tmp_path: Path) -> None:
    xml = tmp_path / "evil.xml"
    xml.write_text('<!DOCTYPE domain [<!ENTITY a "b">]><domain><name>&a;</name></domain>')
    (ref,) = expand([str(xml)])
    assert ref.error is not None and "DTD" in ref.error


def _square(n: int) -> int:
    return n * n


def test_pool_keeps_order() -> None:
    items = list(range(40))
    assert list(run_many(_square, items, jobs=2)) == [n * n for n in items]
    assert list(run_many(_square, items[:3], jobs=2)) == [0, 1, 4]


def test_large_buffers_are_kept_where_glibc_can() -> None:
    import platform

    from fwtools.fleet.workers import reuse_large_buffers

    # mallopt is glibc's: elsewhere the workers run with the allocator as it is.
    assert reuse_large_buffers() is (platform.libc_ver()[0] == "glibc")


def test_declared_format_against_the_file(tmp_path: Path) -> None:
    from fleet_testlib import fw_vars

    store = store_2011(tmp_path, "q_VARS.fd")
    qcow2 = tmp_path / "q_VARS.qcow2"
    fw_vars("convert", store, qcow2)
    ref = parse_domain_xml(DOMAIN.format(name="q", arch="x86_64", nvram=qcow2), origin="q.xml")
    assert ref is not None and ref.declared_format == "raw"
    audit = audit_store(ref)
    assert audit.format == "qcow2"
    assert ("nvram-format-mismatch", "error") in {(f.code, f.severity) for f in audit.findings}
    ref = parse_domain_xml(DOMAIN.format(name="r", arch="x86_64", nvram=store), origin="r.xml")
    assert ref is not None
    assert "nvram-format-mismatch" not in {f.code for f in audit_store(ref).findings}


def test_unlistable_directory_is_an_error_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    import errno
    import os

    real_walk = os.walk

    def walk(top: str, onerror: object = None, **kw: object) -> object:
        assert callable(onerror)
        onerror(PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "locked")))
        return real_walk(top, onerror=onerror)

    store_2011(tmp_path)
    monkeypatch.setattr(os, "walk", walk)
    refs = list(expand([str(tmp_path)]))
    assert refs[0].error is not None and "cannot list the directory" in refs[0].error
    assert refs[0].path.endswith("locked") and refs[1].error is None


def test_domain_that_never_started_gets_its_template(tmp_path: Path) -> None:
    template = store_2011(tmp_path, "TEMPLATE_VARS.fd")
    xml = (f"<domain><name>new</name><os><loader>/c</loader><nvram template='{template}'>"
           f"{tmp_path / 'new_VARS.fd'}</nvram></os></domain>")
    ref = parse_domain_xml(xml, origin="new.xml")
    assert ref is not None
    audit = audit_store(ref)
    assert audit.error is None and audit.path.endswith("new_VARS.fd") and audit.vm == "new"
    assert audit.findings[0].code == "nvram-not-created"
    assert audit.trusts["uefi-ca-2011"] and "uefi-ca-2023-missing" in {
        f.code for f in audit.findings}
    # Without a template it is an error row.
    bare = parse_domain_xml(xml.replace(f" template='{template}'", ""), origin="new.xml")
    assert bare is not None and audit_store(bare).error is not None


def test_autoselected_firmware_found_at_libvirts_nvram_path(tmp_path: Path) -> None:
    """libvirt < 9.2 keeps no <loader>/<nvram> in a stopped domain with firmware
    autoselection: the store is where libvirt creates it (tests/e2e/test_libvirt_fleet.py
    checks this against Debian 12's libvirt)."""
    from fwtools.fleet.sources import nvram_dir

    xml = ("<domain><name>auto</name><os firmware='efi'><type arch='x86_64'>hvm</type>"
           "</os></domain>")
    ref = parse_domain_xml(xml, origin="qemu:///system/auto", nvram_dir=str(tmp_path))
    assert ref is not None and ref.path == str(tmp_path / "auto_VARS.fd")
    assert ref.error is not None and "not started yet" in ref.error
    store_2011(tmp_path, "auto_VARS.fd")
    ref = parse_domain_xml(xml, origin="qemu:///system/auto", nvram_dir=str(tmp_path),
                           running=False, source="libvirt")
    assert ref == StoreRef(str(tmp_path / "auto_VARS.fd"), vm="auto", architecture="x64",
                           running=False, source="libvirt")
    assert nvram_dir("qemu:///system") == "/var/lib/libvirt/qemu/nvram"
    assert nvram_dir("qemu+ssh://host/system") is None
    assert nvram_dir("qemu:///embed?root=/x") is None
