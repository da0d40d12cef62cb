"""pe-inspect end to end: JSON schema, batches with bad files, verification, extraction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from corpus.params import without_read_override

from fwtools.cli.pe_inspect import pe_inspect

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs/schemas/pe-inspect-1.schema.json").read_text())
SAMPLE = REPO / "testdata/sample"


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(pe_inspect, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    code, out, _ = run("--json", *args)
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    return code, doc


def test_sample_json() -> None:
    code, doc = run_json(SAMPLE / "hello-nx.efi", SAMPLE / "legacy-wx.efi")
    assert code == 0
    good, legacy = doc["files"]
    assert good["nx_compat"] and good["section_alignment"] == 0x1000
    assert [s["name"] for s in good["sections"]][:2] == [".text", ".data"]
    assert good["sbat"][0]["component"] == "sbat"
    assert good["signatures"] == []
    rules = {f["rule"]: f["severity"] for f in legacy["findings"]}
    assert rules["wx-section"] == "error"
    assert rules["section-alignment"] == "error"
    assert rules["nx-compat"] == "warning"
    assert doc["summary"]["files"] == 2 and doc["summary"]["errors"] == 0


def test_checksum_on_request() -> None:
    _, doc = run_json(SAMPLE / "hello-nx.efi")
    assert doc["files"][0]["checksum"]["computed"] is None
    _, doc = run_json("--checksum", SAMPLE / "hello-nx.efi")
    checksum = doc["files"][0]["checksum"]
    assert checksum["stored"] and checksum["computed"] == checksum["stored"]


def test_signed_sample_verifies(tmp_path: Path) -> None:
    path = SAMPLE / "hello-nx.signed.efi"
    code, doc = run_json("--verify", SAMPLE / "test-ca.pem", path)
    assert code == 0
    (f,) = doc["files"]
    (sig,) = f["signatures"]
    assert sig["digest_matches"] is True
    assert sig["signature_valid"] is True
    assert f["verification"]["status"] == "trusted"
    assert "test" in sig["subject"].lower()
    # The signing certificate itself (DER this time) is an anchor too.
    code, doc = run_json("--verify", SAMPLE / "test-db.der", path)
    assert code == 0 and doc["files"][0]["verification"]["status"] == "trusted"
    # An unrelated certificate does not trust it: exit 1, and so does sbverify.
    other = tmp_path / "other.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=other",
         "-keyout", str(tmp_path / "other.key"), "-out", str(other), "-days", "1"],
        check=True, capture_output=True,
    )
    code, doc = run_json("--verify", other, path)
    assert code == 1 and doc["files"][0]["verification"]["status"] == "untrusted"
    assert subprocess.run(["sbverify", "--cert", str(other), str(path)],
                          capture_output=True).returncode != 0


def test_bad_files_in_a_batch(tmp_path: Path) -> None:
    empty = tmp_path / "empty.efi"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.efi"
    garbage.write_bytes(os.urandom(5000))
    truncated = tmp_path / "truncated.efi"
    truncated.write_bytes((SAMPLE / "hello-nx.efi").read_bytes()[:1500])
    missing = tmp_path / "missing.efi"
    files = [empty, SAMPLE / "hello-nx.efi", garbage, truncated, missing]
    code, out, err = run("--json", *files)
    assert code == 2
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    by_name = {Path(f["path"]).name: f for f in doc["files"]}
    assert by_name["hello-nx.efi"]["error"] is None
    for name in ("empty.efi", "garbage.efi", "truncated.efi", "missing.efi"):
        msg = by_name[name]["error"]
        assert msg and name in msg and "\n" not in msg
    assert "offset 0x" in by_name["truncated.efi"]["error"]
    assert "offset 0x0" in by_name["empty.efi"]["error"]
    # One line per bad file on stderr, no traceback.
    assert err.count("error:") == 4 and "Traceback" not in err
    # The text view reports the same and still exits 2.
    code, out, err = run("--no-color", *files)
    assert code == 2
    assert "hello-nx.efi" in out and "Traceback" not in out + err


def test_directory_is_searched(tmp_path: Path) -> None:
    (tmp_path / "EFI" / "BOOT").mkdir(parents=True)
    (tmp_path / "EFI/BOOT/BOOTX64.EFI").write_bytes((SAMPLE / "hello-nx.efi").read_bytes())
    (tmp_path / "EFI/BOOT/grub.cfg").write_text("set timeout=0\n")
    (tmp_path / "EFI/BOOT/fake.efi").write_bytes(b"MZ" + b"\0" * 100)  # not PE: skipped
    code, doc = run_json(tmp_path)
    assert code == 0
    assert [Path(f["path"]).name for f in doc["files"]] == ["BOOTX64.EFI"]


def test_directory_as_file_argument_and_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("--dbx", SAMPLE / "test-ca.pem", SAMPLE / "hello-nx.efi")
    assert code == 2 and "--verify" in err
    bad_anchor = tmp_path / "anchor.pem"
    bad_anchor.write_text("not a certificate")
    code, _, err = run("--verify", bad_anchor, SAMPLE / "hello-nx.efi")
    assert code == 2 and "anchor.pem" in err and "Traceback" not in err


def test_extract_certs(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    code, _, _ = run("--json", "--extract-certs", out, SAMPLE / "hello-nx.signed.efi")
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert "hello-nx.signed.efi.sig0.p7s" in names
    pems = [out / n for n in names if n.endswith(".pem")]
    assert pems
    for pem in pems:
        subprocess.run(["openssl", "x509", "-noout", "-in", str(pem)], check=True)
    subprocess.run(
        ["openssl", "pkcs7", "-inform", "DER", "-noout", "-in",
         str(out / "hello-nx.signed.efi.sig0.p7s")],
        check=True,
    )


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from fwtools.cli.pe_inspect import main; "
        "heavy = [m for m in ('pefile', 'cryptography', 'asn1crypto', 'rich') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# -- real data --------------------------------------------------------------------------


def _vendor_cert(corpus: Any, tmp_path: Path, suite: str, arch: str) -> Path:
    out = tmp_path / "vendor"
    code, _, _ = run("--json", "--extract-certs", out, corpus.shim(suite, arch))
    assert code == 0
    (pem,) = out.glob("*.vendor_cert.0.*.pem")
    return pem


@pytest.mark.parametrize(("suite", "arch"), [("bookworm", "amd64"), ("trixie", "arm64")])
def test_debian_chain_verifies_against_sbverify(
    corpus: Any, ms_corpus: Any, tmp_path: Path, suite: str, arch: str
) -> None:
    vendor = _vendor_cert(corpus, tmp_path, suite, arch)
    grub = corpus.grub(suite, arch)
    kernel = corpus.kernel(suite, arch)
    code, doc = run_json("--verify", vendor, grub, kernel)
    statuses = [f["verification"]["status"] for f in doc["files"]]
    oracle = [
        subprocess.run(["sbverify", "--cert", str(vendor), str(p)], capture_output=True).returncode
        for p in (grub, kernel)
    ]
    assert statuses == ["trusted" if rc == 0 else "untrusted" for rc in oracle]
    assert statuses == ["trusted", "trusted"]
    assert code == 0
    # Microsoft's CA does not sign grub directly.
    ms_ca = ms_corpus.root / "certs/db/MicCorUEFCA2011_2011-06-27.der"
    code, doc = run_json("--verify", ms_ca, grub)
    assert code == 1 and doc["files"][0]["verification"]["status"] == "untrusted"


def test_shim_trusted_by_microsoft_and_revoked_by_its_hash(
    corpus: Any, ms_corpus: Any, tmp_path: Path
) -> None:
    shim = corpus.shim("bookworm", "amd64")
    ca = ms_corpus.root / "certs/db/MicCorUEFCA2011_2011-06-27.der"
    code, doc = run_json("--verify", ca, shim)
    assert code == 0, doc["files"][0]["verification"]
    digest = bytes.fromhex(doc["files"][0]["authenticode"]["sha256"])
    # A dbx with the image's own hash revokes it.
    import uuid

    from fwtools.formats.efi import guids
    from fwtools.formats.efi.siglist import SignatureData, SignatureList, signature_lists_to_bytes

    dbx = tmp_path / "dbx.esl"
    dbx.write_bytes(signature_lists_to_bytes([SignatureList(
        guids.CERT_SHA256, 48, (SignatureData(uuid.uuid4(), digest),))]))
    code, doc = run_json("--verify", ca, "--dbx", dbx, shim)
    assert code == 1 and doc["files"][0]["verification"]["status"] == "revoked"


def test_whole_corpus_in_one_call(corpus: Any) -> None:
    roots = sorted({str(corpus.root / b.suite / b.arch / b.package) for b in corpus.efi_binaries()})
    code, doc = run_json(*roots)
    assert code == 0, [f["error"] for f in doc["files"] if f["error"]]
    assert len(doc["files"]) == len(corpus.efi_binaries())
    for f in doc["files"]:
        for sig in f["signatures"]:
            assert sig["digest_matches"] is True, f["path"]
        # Kernels, and only kernels, get their boot headers decoded.
        is_kernel = "/boot/vmlinuz-" in f["path"]
        assert (f["kernel"] is not None) == is_kernel, f["path"]
        if is_kernel:
            assert f["kernel"]["release"] and f["kernel"]["release"] in f["path"]


# -- hostile input ----------------------------------------------------------------------


def test_garbage_inside_a_signed_image_fails_its_hash(corpus: Any, tmp_path: Path) -> None:
    grub = corpus.grub("bookworm", "amd64")
    data = bytearray(grub.read_bytes())
    from fwtools.formats.pe.image import PeImage

    mods = PeImage(bytes(data)).section("mods")
    assert mods is not None
    data[mods.raw_offset + 4096 : mods.raw_offset + 4096 + 65536] = os.urandom(65536)
    bad = tmp_path / "grubx64.efi"
    bad.write_bytes(bytes(data))
    code, doc = run_json(bad)
    assert code == 1
    rules = {f["rule"] for f in doc["files"][0]["findings"]}
    assert "digest-mismatch" in rules
    assert doc["files"][0]["signatures"][0]["digest_matches"] is False
    # sbverify agrees that the hash check fails.
    assert subprocess.run(["sbverify", "--no-verify", str(bad)],
                          capture_output=True).returncode != 0


def test_signature_that_is_not_pkcs7(tmp_path: Path) -> None:
    data = bytearray((SAMPLE / "hello-nx.signed.efi").read_bytes())
    from fwtools.formats.pe.image import PeImage

    table = PeImage(bytes(data)).certificate_table
    assert table is not None
    start = table[0] + 8  # past dwLength, wRevision, wCertificateType
    data[start : start + 64] = b"\xa5" * 64
    bad = tmp_path / "bad-sig.efi"
    bad.write_bytes(bytes(data))
    code, out, err = run("--json", bad, SAMPLE / "hello-nx.efi")
    assert code == 2
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["files"][1]["error"] is None  # the other file is still reported
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "bad-sig.efi" in line and f"offset {table[0]:#x}" in line
    assert doc["files"][0]["signatures"][0]["error"]


def test_hostile_headers_exit_2(tmp_path: Path) -> None:
    import struct

    from fwtools.formats.pe.image import PeImage

    data = (SAMPLE / "hello-nx.efi").read_bytes()
    img = PeImage(data)
    many = bytearray(data)
    struct.pack_into("<H", many, img.pe_offset + 6, 0xFFFF)
    huge = bytearray(data)
    struct.pack_into("<I", huge, img.sections[0].header_offset + 16, 0xFFFFFFFF)
    cases = {"many.efi": bytes(many), "huge.efi": bytes(huge)}
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    code, _, err = run("--json", *(tmp_path / n for n in cases))
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 2 and all("offset 0x" in ln for ln in lines)


def test_oversized_file(tmp_path: Path) -> None:
    big = tmp_path / "big.efi"
    with big.open("wb") as f:  # sparse: nothing is really written
        f.truncate((1 << 30) + 1)
    code, _, err = run("--json", big)
    assert code == 2 and "big.efi" in err and "limit" in err


def test_unreadable_file(tmp_path: Path) -> None:
    target = tmp_path / "secret.efi"
    target.write_bytes((SAMPLE / "hello-nx.efi").read_bytes())
    target.chmod(0)
    proc = subprocess.run(
        [*without_read_override(), sys.executable, "-m", "fwtools.cli.pe_inspect", "--json",
         str(target)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    err = proc.stderr
    assert "secret.efi" in err and "Permission denied" in err and "Traceback" not in err


def test_text_view_of_shim(corpus: Any, tmp_path: Path) -> None:
    shim = corpus.shim("bookworm", "amd64")
    code, out, err = run("--no-color", shim)
    assert code == 0 and "Traceback" not in out + err
    # The vendor certificate's subject as openssl reads it from the extracted PEM.
    pem = _vendor_cert(corpus, tmp_path, "bookworm", "amd64")
    subject = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", str(pem)],
        capture_output=True, text=True, check=True,
    ).stdout.strip().removeprefix("subject=")
    assert f"cert      {subject}" in out
    for marker in ("UEFI SHIM", "automatic ", "latest ", "dbx ", "✓ matches the image",
                   "nx-compat"):
        assert marker in out


def test_verify_against_a_variable_store(corpus: Any) -> None:
    shim, grub = corpus.shim("bookworm", "amd64"), corpus.grub("bookworm", "amd64")
    code, doc = run_json("--vars", corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd"), shim, grub)
    statuses = [f["verification"]["status"] for f in doc["files"]]
    # The firmware trusts shim (Microsoft UEFI CA in db); grub is shim's business, not db's.
    assert statuses == ["trusted", "untrusted"] and code == 1
    code, doc = run_json("--vars", corpus.ovmf("bookworm", "OVMF_VARS_4M.snakeoil.fd"), shim)
    assert doc["files"][0]["verification"]["status"] == "untrusted" and code == 1
