"""Special sections: synthetic fixtures, hostile payloads, Debian binaries, a real UKI."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import pytest
from corpus.params import CORPUS, corpus_files, need, need_tool
from corpus.uki import build_uki_with_objcopy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwtools.formats.efi import guids
from fwtools.formats.pe import special
from fwtools.formats.pe.image import PeImage
from fwtools.formats.pe.kernel import KernelInfo
from fwtools.formats.pe.shim_sections import ShimIdent, ShimSbatLevel, VendorCert
from fwtools.formats.pe.special import (
    DECODERS,
    SpecialSection,
    decode_section,
    embedded_pe,
    special_sections,
)
from fwtools.formats.pe.uki_sections import (
    DeviceTree,
    KeyValues,
    PayloadFormat,
    PcrSignature,
    PublicKeyPem,
    SdMagic,
    SplashImage,
    Text,
)
from fwtools.formats.sbat import Sbat

ROOT = Path(__file__).resolve().parents[3]
TESTDATA = ROOT / "testdata" / "uki"



def corpus_versions() -> dict[tuple[str, str, str], str]:
    """(suite, arch, package) -> Debian version, from the corpus manifest."""
    manifest = CORPUS.parent / "manifest.tsv"
    out: dict[tuple[str, str, str], str] = {}
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            cols = line.split("\t")
            if len(cols) >= 4:
                out[(cols[0], cols[1], cols[2])] = cols[3]
    return out


# -- fixtures -----------------------------------------------------------------------------


def load_make_uki() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_uki", ROOT / "testdata" / "make_uki.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_uki", module)
    spec.loader.exec_module(module)
    return module


MAKE_UKI = load_make_uki()
MANIFEST: dict[str, list[dict[str, Any]]] = json.loads((TESTDATA / "MANIFEST.json").read_text())


def sections_of(name: str) -> list[SpecialSection]:
    return special_sections(PeImage.open(TESTDATA / name))


def by_name(sections: list[SpecialSection], name: str) -> list[SpecialSection]:
    return [s for s in sections if s.name == name]


def pe_bytes(sections: list[tuple[str, bytes]]) -> bytes:
    """A PE built by testdata/make_uki.py's writer with the given read-only sections."""
    data: bytes = MAKE_UKI.build_pe(
        [(".text", MAKE_UKI.STUB_CODE, MAKE_UKI.RX)] + [(n, d, MAKE_UKI.RO) for n, d in sections]
    )
    return data


def pe_with(sections: list[tuple[str, bytes]]) -> PeImage:
    return PeImage(pe_bytes(sections))


def test_fixtures_are_reproducible() -> None:
    for name, data in MAKE_UKI.build().items():
        assert (TESTDATA / name).read_bytes() == data, f"{name}: rerun testdata/make_uki.py"


@pytest.mark.parametrize("fixture", ["uki.efi", "shim-like.efi"])
def test_fixture_digests_match_manifest(fixture: str) -> None:
    found = sections_of(fixture)
    expected = [e for e in MANIFEST[fixture] if e["name"] in DECODERS]
    assert [(s.name, s.size, s.sha256) for s in found] == [
        (e["name"], e["size"], e["sha256"]) for e in expected
    ]
    assert all(s.error is None for s in found), [s.error for s in found]


@pytest.mark.parametrize("fixture", ["uki.efi", "shim-like.efi", "fake-bzimage.efi"])
def test_fixture_section_table_against_objdump(fixture: str) -> None:
    need_tool("objdump")
    out = subprocess.run(
        ["objdump", "-h", str(TESTDATA / fixture)], capture_output=True, text=True, check=True
    ).stdout
    rows = re.findall(
        r"^\s+\d+\s+(\S+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)", out, re.MULTILINE
    )
    img = PeImage.open(TESTDATA / fixture)
    assert [(s.name, s.virtual_size, s.raw_offset) for s in img.sections] == [
        (name, int(size, 16), int(off, 16)) for name, size, off in rows
    ]


def test_uki_fixture_decoded() -> None:
    found = sections_of("uki.efi")
    kinds = {s.name: s.kind for s in found}
    assert kinds[".sbat"] == "sbat" and kinds[".sdmagic"] == "sdmagic"
    assert kinds[".osrel"] == "osrel" and kinds[".uname"] == "uname"
    assert kinds[".cmdline"] == "cmdline"
    assert {
        kinds[n]
        for n in (".linux", ".initrd", ".splash", ".dtb", ".pcrsig", ".pcrpkey", ".profile")
    } == {"uki"}

    (sbat,) = by_name(found, ".sbat")
    assert isinstance(sbat.decoded, Sbat)
    assert [r.component for r in sbat.decoded.rows] == [
        "sbat",
        "systemd-stub",
        "systemd-stub.fwtools",
    ]
    (sdmagic,) = by_name(found, ".sdmagic")
    assert sdmagic.decoded == SdMagic(
        "#### LoaderInfo: systemd-stub 999-fwtools ####", "systemd-stub", "999-fwtools"
    )
    (osrel,) = by_name(found, ".osrel")
    assert isinstance(osrel.decoded, KeyValues)
    assert osrel.decoded.get("PRETTY_NAME") == 'fwtools "test" OS 1.0'
    assert osrel.decoded.get("ID") == "fwtools" and osrel.decoded.get("NAME") == "fwtools test OS"
    assert osrel.decoded.warnings == ()
    cmdlines = by_name(found, ".cmdline")
    assert [c.decoded for c in cmdlines] == [
        Text(MAKE_UKI.CMDLINE),
        Text(MAKE_UKI.CMDLINE + " systemd.debug_shell=1"),
    ]
    assert by_name(found, ".uname")[0].decoded == Text("6.1.0-fwtools-test")
    assert by_name(found, ".initrd")[0].decoded == PayloadFormat("cpio-newc")
    assert by_name(found, ".splash")[0].decoded == SplashImage("bmp", 2, 2, False, 24, 0)
    assert by_name(found, ".dtb")[0].decoded == DeviceTree(
        212, 17, 16, 0, "fwtools test board", ("fwtools,test-board", "fwtools,test")
    )
    profiles = [p.decoded for p in by_name(found, ".profile")]
    assert [(p.get("ID"), p.get("TITLE")) for p in profiles if isinstance(p, KeyValues)] == [
        ("default", "Default boot"),
        ("debug", "Debug shell"),
    ]
    # The profile layout of the UKI spec: .profile, .profile, .cmdline at the end.
    assert [s.name for s in found][-3:] == [".profile", ".profile", ".cmdline"]


def test_uki_pcr_signature_matches_public_key() -> None:
    found = sections_of("uki.efi")
    key = by_name(found, ".pcrpkey")[0].decoded
    sig = by_name(found, ".pcrsig")[0].decoded
    assert isinstance(key, PublicKeyPem) and isinstance(sig, PcrSignature)
    assert key.label == "PUBLIC KEY" and key.der_size == 44  # Ed25519 SubjectPublicKeyInfo
    (bank,) = sig.banks
    (entry,) = bank.entries
    assert bank.bank == "sha256" and entry.pcrs == (11,) and entry.sig_size == 64
    assert entry.pkfp == key.fingerprint_sha256
    assert entry.pol == MAKE_UKI.PCR_POLICY.hex()


def test_uki_linux_is_the_fake_bzimage() -> None:
    img = PeImage.open(TESTDATA / "uki.efi")
    linux = img.section(".linux")
    assert linux is not None
    inner = embedded_pe(img, linux)
    assert inner == (TESTDATA / "fake-bzimage.efi").read_bytes()
    inner_img = PeImage(inner)
    assert inner_img.machine_name == "x86_64"
    decoded = by_name(special_sections(img), ".linux")[0].decoded
    assert isinstance(decoded, KernelInfo)
    assert (decoded.kind, decoded.is_pe, decoded.machine, decoded.release) == (
        "bzimage",
        True,
        "x86_64",
        "6.1.0-fwtools-test",
    )
    assert decoded.bzimage is not None and decoded.bzimage.efi_handover_64
    # Sections that are not PE images are not offered for recursion.
    sbat = img.section(".sbat")
    assert sbat is not None and embedded_pe(img, sbat) is None


def test_shim_like_fixture() -> None:
    found = sections_of("shim-like.efi")
    level = by_name(found, ".sbatlevel")[0].decoded
    assert isinstance(level, ShimSbatLevel)
    assert level.format_version == 0
    assert level.automatic_text == MAKE_UKI.SBATLEVEL_AUTOMATIC
    assert level.latest_text == MAKE_UKI.SBATLEVEL_LATEST
    assert level.automatic.generations == {"shim": 4, "grub": 4, "grub.peimage": 2}
    assert level.latest.datestamp == "2025051000"
    ident = by_name(found, ".data.ident")[0].decoded
    assert isinstance(ident, ShimIdent)
    assert (ident.title, ident.version, ident.build_machine, ident.commit) == (
        "UEFI SHIM",
        "16.1",
        "fwtools-testdata",
        "0123456789abcdef0123456789abcdef01234567",
    )
    cert = by_name(found, ".vendor_cert")[0].decoded
    assert isinstance(cert, VendorCert)
    assert cert.cert_format == "esl"
    assert [lst.signature_type for lst in cert.db_lists] == [guids.CERT_X509, guids.CERT_SHA256]
    assert [lst.signature_type for lst in cert.dbx_lists] == [guids.CERT_SHA256]
    assert cert.dbx_lists[0].entries[0].data == hashlib.sha256(b"fwtools revoked image").digest()
    (der,) = cert.certificates
    (expected,) = MANIFEST["shim-like.efi.vendor_cert"]
    assert hashlib.sha256(der).hexdigest() == expected["sha256"]


def test_shim_like_certificate_against_openssl(tmp_path: Path) -> None:
    need_tool("openssl")
    cert = by_name(sections_of("shim-like.efi"), ".vendor_cert")[0].decoded
    assert isinstance(cert, VendorCert)
    (tmp_path / "c.der").write_bytes(cert.certificates[0])
    out = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-in", str(tmp_path / "c.der")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "fwtools test vendor CA" in out


# -- edge cases -------------------------------------------------------------------------

SBATLEVEL_OK = struct.pack("<III", 0, 8, 8 + 19) + b"sbat,1,2024010900\n\0sbat,1,2024040900\n\0"


def sbatlevel(version: int = 0, automatic: int = 8, latest: int = 27, tail: bytes = b"") -> bytes:
    return struct.pack("<III", version, automatic, latest) + (tail or SBATLEVEL_OK[12:])


@pytest.mark.parametrize(
    ("payload", "message", "offset"),
    [
        (sbatlevel(automatic=0x1000), "automatic offset 0x1000 points past the end", 4),
        (sbatlevel(latest=0xFFFFFFFF), "latest offset 0xffffffff points past the end", 8),
        (sbatlevel(version=1), "unknown .sbatlevel format version 1", 0),
        (SBATLEVEL_OK[:10], "needs 8 bytes", 4),
        (SBATLEVEL_OK[:3], "needs 4 bytes", 0),
        (sbatlevel(tail=b"sbat,1,2024010900\n\0sbat,1,2024040900\n"), "not NUL-terminated", 31),
        (sbatlevel(tail=b"sbat,1,2024010900\n\0sbat,1,20240409\n\0"), "not YYYYMMDDCC", 38),
    ],
)
def test_sbatlevel_edge_cases(payload: bytes, message: str, offset: int) -> None:
    _decoded, error = decode_section(".sbatlevel", payload, 0x3000)
    assert error is not None and message in error
    assert f"offset {0x3000 + offset:#x}" in error


def test_sbatlevel_keeps_decoded_levels_with_content_errors() -> None:
    decoded, error = decode_section(
        ".sbatlevel", sbatlevel(tail=b"sbat,1,2024010900\n\0sbat,1,2024040900\ngrub,x\n\0"), 0
    )
    assert error is not None and "not a decimal number" in error
    assert isinstance(decoded, ShimSbatLevel) and decoded.automatic.datestamp == "2024010900"


def test_sbatlevel_offsets_may_point_at_the_same_string() -> None:
    decoded, error = decode_section(".sbatlevel", sbatlevel(latest=8), 0)
    assert error is None and isinstance(decoded, ShimSbatLevel)
    assert decoded.automatic == decoded.latest


DER = b"\x30\x82\x00\x04" + b"\x02\x01\x01\x05"  # a (meaningless) well-framed DER SEQUENCE


def cert_table(cert: bytes, dbx: bytes = b"", **override: int) -> bytes:
    fields = {
        "cert_size": len(cert),
        "dbx_size": len(dbx),
        "cert_off": 16,
        "dbx_off": 16 + len(cert),
        **override,
    }
    return (
        struct.pack(
            "<IIII", fields["cert_size"], fields["dbx_size"], fields["cert_off"], fields["dbx_off"]
        )
        + cert
        + dbx
    )


@pytest.mark.parametrize(
    ("payload", "message", "field_offset"),
    [
        (cert_table(DER, cert_size=0xFFFFFFFF), "vendor_cert_size", 0),
        (cert_table(DER, cert_off=0xFFFFFFF0), "vendor_cert_offset", 8),
        (cert_table(DER, dbx_size=0xFFFFFFFF), "vendor_dbx_size", 4),
        (cert_table(DER, dbx_off=0x7FFFFFFF, dbx_size=1), "vendor_dbx_offset", 12),
        (cert_table(DER)[:15], "needs 16 bytes", 0),
    ],
)
def test_vendor_cert_bounds(payload: bytes, message: str, field_offset: int) -> None:
    decoded, error = decode_section(".vendor_cert", payload, 0x5000)
    assert decoded is None and error is not None
    assert message in error and f"offset {0x5000 + field_offset:#x}" in error


def test_vendor_cert_variants() -> None:
    decoded, error = decode_section(".vendor_cert", cert_table(DER), 0)
    assert error is None and isinstance(decoded, VendorCert)
    assert (decoded.cert_format, decoded.certificates, decoded.dbx_lists) == ("x509", (DER,), ())
    # No VENDOR_CERT_FILE: size 0, shim's one-byte placeholder.
    decoded, error = decode_section(".vendor_cert", cert_table(b"", cert_off=16) + b"\0", 0)
    assert error is None and isinstance(decoded, VendorCert)
    assert decoded.cert_format == "none" and decoded.certificates == ()
    # A DER header whose length disagrees with vendor_cert_size is not taken as X.509.
    decoded, error = decode_section(".vendor_cert", cert_table(DER + b"\0"), 0x100)
    assert decoded is None and error is not None
    assert "neither one DER certificate nor EFI signature lists" in error
    decoded, error = decode_section(".vendor_cert", cert_table(DER, dbx=b"\x01" * 20), 0)
    assert decoded is None and error is not None and "vendor dbx" in error


TEXT_CASES = [
    (
        ".sbat",
        b"sbat,1,SBAT Version,sbat,1,x\ngrub,1,Univ\xe9,g,1,u\n",
        "invalid UTF-8 byte 0xe9",
        40,
    ),
    (".cmdline", b"quiet \xff splash\0", "invalid UTF-8 byte 0xff", 6),
    (".uname", b"6.1\x80", "invalid UTF-8 byte 0x80", 3),
    (".sdmagic", b"#### LoaderInfo: nothing", "not a '#### LoaderInfo", 0),
    (".data.ident", b"UEFI SHIM\n$Version: 1\xff $\n", "invalid UTF-8", 21),
    (".splash", b"GIF89a", "not a BMP image", 0),
    (".splash", b"\x89PNG\r\n\x1a\n" + bytes(20), "systemd-stub shows only BMP", 0),
    (".splash", b"BM" + bytes(10), "needs 18 bytes", 0),
    (".splash", b"BM" + struct.pack("<IHHII", 0, 0, 0, 0, 20), "DIB header size 20", 14),
    (
        ".splash",
        b"BM" + struct.pack("<IHHII", 0, 0, 0, 0xFFFF, 40) + bytes(40),
        "pixel data offset",
        10,
    ),
    (".dtb", b"\xd0\x0d\xfe\xee" + bytes(36), "FDT magic", 0),
    (".dtb", b"\xd0\x0d\xfe\xed" + bytes(20), "needs 40 bytes", 0),
    (
        ".dtb",
        struct.pack(">10I", 0xD00DFEED, 0x1000, 40, 40, 40, 17, 16, 0, 0, 0),
        "totalsize 0x1000 exceeds",
        4,
    ),
    (".pcrsig", b'{"sha256": [}\0', "invalid JSON", 12),
    (".pcrsig", b"[1, 2]\0", "not a JSON object", 0),
    (".pcrsig", b'{"sha256": 5}', "is not a list", 0),
    (".pcrpkey", b"not pem", "no PEM block", 0),
    (
        ".pcrpkey",
        b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        "not valid base64",
        27,
    ),
]


@pytest.mark.parametrize(("name", "payload", "message", "offset"), TEXT_CASES)
def test_section_content_errors(name: str, payload: bytes, message: str, offset: int) -> None:
    _decoded, error = decode_section(name, payload, 0x7000)
    assert error is not None and message in error, error
    assert f"offset {0x7000 + offset:#x}" in error


@pytest.mark.parametrize("payload", [b"[" * 200_000, b'{"sha256": ' + b"9" * 10_000 + b"}"])
def test_pcrsig_pathological_json(payload: bytes) -> None:
    decoded, error = decode_section(".pcrsig", payload, 0x10)
    assert decoded is None and error is not None and "offset 0x10" in error


def test_dtb_property_name_outside_strings() -> None:
    dtb = bytearray(MAKE_UKI.dtb())
    off_struct = struct.unpack_from(">I", dtb, 8)[0]
    struct.pack_into(">I", dtb, off_struct + 8 + 8, 0xFFFF)  # first property's nameoff
    decoded, error = decode_section(".dtb", bytes(dtb), 0)
    assert decoded is None and error is not None and "outside the strings block" in error


def test_lenient_results_survive_errors() -> None:
    decoded, error = decode_section(".cmdline", b"quiet \xff\0", 0)
    assert error is not None and decoded == Text("quiet \\xff")
    decoded, error = decode_section(".sbat", b"grub,1,a,b,c,d\n", 0)
    assert error is not None and isinstance(decoded, Sbat) and decoded.rows[0].component == "grub"
    decoded, error = decode_section(".osrel", b"ID=x\nnot an assignment\n9X=1\n", 0)
    assert error is None and isinstance(decoded, KeyValues)
    assert decoded.entries[0].value == "x" and len(decoded.warnings) == 2


def test_os_release_quoting() -> None:
    decoded, _ = decode_section(
        ".osrel", b'A=\'single $x\'\nB="dq \\"q\\" \\$HOME \\\\"\nC=plain\n#D=comment\n', 0
    )
    assert isinstance(decoded, KeyValues)
    assert [(e.key, e.value) for e in decoded.entries] == [
        ("A", "single $x"),
        ("B", 'dq "q" $HOME \\'),
        ("C", "plain"),
    ]


def test_unknown_section_has_no_decoder() -> None:
    assert decode_section(".text", b"\xc3", 0) == (None, None)


def test_huge_and_empty_sections_in_a_pe() -> None:
    img = pe_with(
        [
            (".sbat", b"sbat,1,SBAT Version,sbat,1,x\ngrub,99999999999999999999,a,b,c,d\n"),
            (".sbatlevel", b""),
            (".vendor_cert", struct.pack("<IIII", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)),
            (".linux", b"\x00" * 64),
            (".initrd", b""),
        ]
    )
    found = special_sections(img)
    assert [s.name for s in found] == [".sbat", ".sbatlevel", ".vendor_cert", ".linux", ".initrd"]
    errors = {s.name: s.error for s in found}
    assert errors[".sbat"] is not None and "16 bits" in errors[".sbat"]
    assert errors[".sbatlevel"] is not None and "needs 4 bytes" in errors[".sbatlevel"]
    assert errors[".vendor_cert"] is not None and "outside the section" in errors[".vendor_cert"]
    assert errors[".linux"] is None and errors[".initrd"] is None
    linux = by_name(found, ".linux")[0]
    assert isinstance(linux.decoded, KernelInfo) and linux.decoded.kind == "unknown"
    empty = by_name(found, ".initrd")[0]
    assert (empty.size, empty.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert empty.decoded == PayloadFormat(None)


@given(st.sampled_from(sorted(DECODERS)), st.binary(max_size=600), st.integers(0, 1 << 40))
@settings(max_examples=1500)
def test_hostile_payloads_never_raise(name: str, payload: bytes, base: int) -> None:
    _decoded, error = decode_section(name, payload, base)
    assert error is None or isinstance(error, str)


@given(st.sampled_from([".sbatlevel", ".vendor_cert", ".dtb", ".splash"]), st.data())
@settings(max_examples=600)
def test_mutated_valid_payloads_never_raise(name: str, data: st.DataObject) -> None:
    img_name = "shim-like.efi" if name in (".sbatlevel", ".vendor_cert") else "uki.efi"
    img = PeImage.open(TESTDATA / img_name)
    section = img.section(name)
    assert section is not None
    payload = bytearray(img.section_data(section))
    for _ in range(data.draw(st.integers(1, 4))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    decode_section(name, bytes(payload), section.raw_offset)


@given(st.lists(st.tuples(st.sampled_from(sorted(DECODERS)), st.binary(max_size=300)), max_size=6))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_pe_sections(sections: list[tuple[str, bytes]]) -> None:
    found = special_sections(pe_with(sections))
    assert [s.name for s in found] == [n for n, _ in sections]
    for s, (_, payload) in zip(found, sections, strict=True):
        assert s.sha256 == hashlib.sha256(payload).hexdigest()


# -- lazy decoder modules ---------------------------------------------------------------

SBAT_GRUB = (
    b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
    b"grub,4,Free Software Foundation,grub,2.12,https://www.gnu.org/software/grub/\n"
)
DECODER_MODULES = (
    "fwtools.formats.pe.shim_sections",
    "fwtools.formats.pe.uki_sections",
    "fwtools.formats.pe.kernel",
    "fwtools.formats.efi.siglist",
    "fwtools.formats.sbat.sbat",
)


def test_decoder_table_resolves() -> None:
    assert set(DECODERS) <= set(special.SECTION_KINDS)
    for module, function in DECODERS.values():
        assert callable(getattr(importlib.import_module(module), function))


@pytest.mark.parametrize(
    ("sections", "loaded", "not_loaded"),
    [
        pytest.param(
            [(".sbat", SBAT_GRUB)],
            {"fwtools.formats.sbat.sbat"},
            set(DECODER_MODULES) - {"fwtools.formats.sbat.sbat"},
            id="grub",
        ),
        pytest.param(
            [(".sdmagic", b"#### LoaderInfo: systemd-boot 252 ####\0"), (".osrel", b"ID=x\n")],
            {"fwtools.formats.pe.uki_sections"},
            # json and base64 only for .pcrsig/.pcrpkey.
            set(DECODER_MODULES) - {"fwtools.formats.pe.uki_sections"} | {"json", "base64"},
            id="systemd-boot",
        ),
        pytest.param(
            "shim-like.efi",
            {"fwtools.formats.pe.shim_sections", "fwtools.formats.efi.siglist"},
            {"fwtools.formats.pe.uki_sections", "fwtools.formats.pe.kernel"},
            id="shim",
        ),
        pytest.param(
            "uki.efi",
            {"fwtools.formats.pe.uki_sections", "fwtools.formats.pe.kernel"},
            # kernel.py decompresses only plainly compressed kernels; .linux is a bzImage.
            {"fwtools.formats.pe.shim_sections", "fwtools.formats.efi.siglist", "bz2", "lzma"},
            id="uki",
        ),
    ],
)
def test_decoders_are_imported_on_demand(
    sections: list[tuple[str, bytes]] | str, loaded: set[str], not_loaded: set[str], tmp_path: Path
) -> None:
    # In a fresh interpreter, so that modules other tests imported cannot hide a load.
    if isinstance(sections, str):
        path = TESTDATA / sections
    else:
        path = tmp_path / "image.efi"
        path.write_bytes(pe_bytes(sections))
    code = (
        "import sys\n"
        "from fwtools.formats.pe.image import PeImage\n"
        "from fwtools.formats.pe.special import special_sections\n"
        f"found = special_sections(PeImage.open({str(path)!r}))\n"
        "assert found and all(s.error is None for s in found), found\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    modules = set(proc.stdout.split())
    assert loaded <= modules
    assert not (not_loaded & modules)


# -- Debian binaries --------------------------------------------------------------------

PE_FILES = corpus_files(
    "*/*/*/usr/**/*.efi",
    "*/*/*/usr/**/*.efi.signed",
    "*/*/*/usr/**/*.efi.stub",
    "*/*/linux-image-*/boot/vmlinuz-*",
)
SHIMS = corpus_files("*/*/shim-*/usr/lib/shim/shim*.efi*")
SYSTEMD = corpus_files("*/*/systemd-boot-efi/usr/lib/systemd/boot/efi/*.efi*")


@pytest.mark.parametrize("path", PE_FILES)
def test_every_corpus_special_section_decodes(path: Path | None) -> None:
    path = need(path)
    img = PeImage.open(path)
    found = special_sections(img)
    assert [(s.name, s.error) for s in found if s.error] == []
    data = path.read_bytes()
    for s in found:
        section = img.section(s.name)
        assert section is not None
        assert s.offset == section.raw_offset
        assert s.sha256 == hashlib.sha256(data[s.offset : s.offset + s.size]).hexdigest()
        assert s.decoded is not None


@pytest.mark.parametrize("path", SHIMS)
def test_shim_sbatlevel_matches_raw_strings(path: Path | None) -> None:
    path = need(path)
    img = PeImage.open(path)
    section = img.section(".sbatlevel")
    assert section is not None
    raw = img.section_data(section)
    # Oracle: the NUL-terminated "sbat,1,<datestamp>" strings as they sit in the section.
    strings = [m.decode() for m in re.findall(rb"sbat,1,[0-9]{10}\n[^\0]*", raw)]
    level = by_name(special_sections(img), ".sbatlevel")[0].decoded
    assert isinstance(level, ShimSbatLevel)
    assert [level.automatic_text, level.latest_text] == strings
    assert level.automatic.to_bytes().decode() == strings[0]
    assert level.latest.to_bytes().decode() == strings[1]
    # What Debian's shim 16.1 carries (docs/reference/formats.md 6.3).
    ident = by_name(special_sections(img), ".data.ident")[0].decoded
    assert isinstance(ident, ShimIdent)
    if ident.version == "16.1":
        assert level.automatic.generations == {"shim": 4, "grub": 5}
        assert level.latest.generations == {"shim": 4, "grub": 5, "grub.proxmox": 2}
        assert (level.automatic.datestamp, level.latest.datestamp) == ("2025021800", "2025051000")


@pytest.mark.parametrize("path", SHIMS)
def test_shim_ident_matches_package_version(path: Path | None) -> None:
    path = need(path)
    suite, arch, package = path.relative_to(CORPUS).parts[:3]
    ident = by_name(special_sections(PeImage.open(path)), ".data.ident")[0].decoded
    assert isinstance(ident, ShimIdent)
    assert (
        ident.title == "UEFI SHIM" and ident.commit and re.fullmatch("[0-9a-f]{40}", ident.commit)
    )
    version = corpus_versions().get((suite, arch, package))
    assert version is not None, f"{suite}/{arch}/{package} is not in the corpus manifest"
    # shim-unsigned "16.1-2~deb12u1"; shim-signed "1.51~1+deb12u1+16.1-2~deb12u1".
    upstream = version.rsplit("+", 1)[-1].split("-", 1)[0]
    assert ident.version == upstream


@pytest.mark.parametrize("path", SHIMS)
def test_shim_vendor_cert_is_debians(path: Path | None, tmp_path: Path) -> None:
    path = need(path)
    cert = by_name(special_sections(PeImage.open(path)), ".vendor_cert")[0].decoded
    assert isinstance(cert, VendorCert)
    assert cert.cert_format == "x509" and len(cert.certificates) == 1
    assert cert.vendor_cert_offset == 16 and cert.vendor_dbx_offset == 16 + cert.vendor_cert_size
    assert cert.db_lists == ()
    assert cert.dbx_lists and all(lst.signature_type == guids.CERT_SHA256 for lst in cert.dbx_lists)
    assert sum(len(lst.to_bytes()) for lst in cert.dbx_lists) == cert.vendor_dbx_size
    need_tool("openssl")
    der = tmp_path / "vendor.der"
    der.write_bytes(cert.certificates[0])
    out = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-in", str(der)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "subject=CN = Debian Secure Boot CA"


@pytest.mark.parametrize("path", SYSTEMD)
def test_systemd_markers_match_package_version(path: Path | None) -> None:
    path = need(path)
    suite, arch, package = path.relative_to(CORPUS).parts[:3]
    found = special_sections(PeImage.open(path))
    magic = by_name(found, ".sdmagic")[0].decoded
    assert isinstance(magic, SdMagic)
    component = {"systemd-boot": "systemd-boot", "linux": "systemd-stub", "addon": "systemd-addon"}
    (expected,) = [c for prefix, c in component.items() if path.name.startswith(prefix)]
    assert magic.component == expected
    version = corpus_versions().get((suite, arch, package))
    if version is not None:
        assert magic.version == version
    osrel = by_name(found, ".osrel")
    if osrel:
        assert isinstance(osrel[0].decoded, KeyValues)
        assert osrel[0].decoded.get("ID") == "systemd-boot"
        assert version is None or osrel[0].decoded.get("VERSION") == version


# -- a real UKI: Debian's systemd-stub + a Debian kernel, put together by objcopy -----------

UKI_SUITES = [pytest.param(suite, marks=pytest.mark.corpus) for suite in ("bookworm", "trixie")]


def corpus_one(pattern: str) -> Path | None:
    found = [
        p
        for p in sorted(CORPUS.glob(pattern))
        if p.is_file() and not any(part.endswith(".tmp") for part in p.parts)
    ]
    return found[0] if found else None


def stub_and_kernel(suite: str) -> tuple[Path, Path]:
    """Debian's x86-64 systemd-stub and kernel of ``suite`` (skip, or fail under
    FWTOOLS_REQUIRE_CORPUS=1, without them)."""
    stub = corpus_one(f"{suite}/amd64/systemd-boot-efi/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
    kernel = corpus_one(f"{suite}/amd64/linux-image-*/boot/vmlinuz-*")
    if stub is None or kernel is None:
        need(None)
    assert stub is not None and kernel is not None
    return stub, kernel


@pytest.mark.parametrize("suite", UKI_SUITES)
def test_real_uki_from_the_corpus(suite: str, tmp_path: Path) -> None:
    stub, kernel = stub_and_kernel(suite)
    need_tool("objcopy")
    inputs = {
        ".osrel": b'ID=debian\nNAME="Debian GNU/Linux"\nVERSION_ID="fwtools"\n',
        ".cmdline": b"console=ttyS0 root=/dev/vda1 ro",
        ".uname": kernel.name.removeprefix("vmlinuz-").encode(),
        ".initrd": MAKE_UKI.cpio_newc({"init": b"#!/bin/sh\necho hi\n"}),
    }
    parts: dict[str, Path] = {}
    for name, content in inputs.items():
        parts[name] = tmp_path / name.lstrip(".")
        parts[name].write_bytes(content)
    parts[".linux"] = kernel
    uki = tmp_path / "uki.efi"
    build_uki_with_objcopy(stub, parts, uki)

    img = PeImage.open(uki)
    found = special_sections(img)
    assert [(s.name, s.error) for s in found if s.error] == []
    names = [s.name for s in found]
    assert names[:2] == [".sbat", ".sdmagic"]  # the stub's own, as Debian ships it
    assert names[2:] == list(parts)
    for s in found[2:]:
        content = parts[s.name].read_bytes()
        assert (s.size, s.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    release = kernel.name.removeprefix("vmlinuz-")
    assert by_name(found, ".uname")[0].decoded == Text(release)
    assert by_name(found, ".initrd")[0].decoded == PayloadFormat("cpio-newc")
    osrel = by_name(found, ".osrel")[0].decoded
    assert isinstance(osrel, KeyValues) and osrel.get("NAME") == "Debian GNU/Linux"
    linux = by_name(found, ".linux")[0].decoded
    assert isinstance(linux, KernelInfo)
    assert (linux.kind, linux.is_pe, linux.machine, linux.release) == (
        "bzimage",
        True,
        "x86_64",
        release,
    )
    section = img.section(".linux")
    assert section is not None
    inner = embedded_pe(img, section)
    assert inner == kernel.read_bytes()
    assert PeImage(inner).machine_name == "x86_64"


# systemd's own UKI builder, from Debian 13's systemd-ukify (a Python script; the corpus
# carries the package, and the venv has its one dependency, pefile).
UKIFY: Final = CORPUS / "trixie/all/systemd-ukify/usr/bin/ukify"


@pytest.mark.parametrize("suite", UKI_SUITES)
def test_real_uki_with_ukify(suite: str, tmp_path: Path) -> None:
    stub, kernel = stub_and_kernel(suite)
    ukify = need(UKIFY if UKIFY.is_file() else None)
    initrd = tmp_path / "initrd"
    initrd.write_bytes(MAKE_UKI.cpio_newc({"init": b"#!/bin/sh\n"}))
    out = tmp_path / "uki.efi"
    subprocess.run(
        [
            sys.executable,
            str(ukify),
            "build",
            f"--linux={kernel}",
            f"--initrd={initrd}",
            f"--stub={stub}",
            "--cmdline=quiet",
            f"--output={out}",
        ],
        check=True,
        capture_output=True,
    )
    found = special_sections(PeImage.open(out))
    assert [(s.name, s.error) for s in found if s.error] == []
    linux = by_name(found, ".linux")[0]
    assert linux.sha256 == hashlib.sha256(kernel.read_bytes()).hexdigest()
    assert by_name(found, ".initrd")[0].sha256 == hashlib.sha256(initrd.read_bytes()).hexdigest()
