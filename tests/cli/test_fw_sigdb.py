"""fw-sigdb end to end, on Microsoft's objects and the Debian corpus, with efitools and
openssl as oracles."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from corpus.params import need_tool

from fwtools.cli.fw_sigdb import cli

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "testdata/sample"
MICROSOFT = "77fa9abd-0359-4d32-bd60-28f4e78f784b"


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def show_json(*paths: str | Path) -> dict[str, Any]:
    code, out, err = run("show", "--json", *paths)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "fwtools.fw-sigdb/1"
    return doc


def der_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_create_db_from_microsoft_certificates(ms_corpus: Any, tmp_path: Path) -> None:
    certs = sorted((ms_corpus.root / "certs/db").glob("*.der"))
    out = tmp_path / "db.esl"
    args: list[str | Path] = ["create", "-o", out, "--owner", "Microsoft"]
    for c in certs:
        args += ["--cert", c]
    code, _, err = run(*args)
    assert code == 0, err
    doc = show_json(out)
    (f,) = doc["files"]
    assert [sl["type"] for sl in f["lists"]] == ["EfiCertX509"] * len(certs)
    got = [e["sha256"] for sl in f["lists"] for e in sl["entries"]]
    assert got == [der_sha256(c) for c in certs]
    assert all(e["owner"] == MICROSOFT for sl in f["lists"] for e in sl["entries"])
    # efitools reads our list back to the same certificates.
    need_tool("sig-list-to-certs")
    subprocess.run(["sig-list-to-certs", str(out), str(tmp_path / "x")], check=True,
                   capture_output=True)
    extracted = sorted(tmp_path.glob("x-*.der"))
    assert sorted(der_sha256(p) for p in extracted) == sorted(got)


def test_add_remove_merge_dedupe(tmp_path: Path) -> None:
    db = tmp_path / "db.esl"
    h1, h2 = "11" * 32, "22" * 32
    assert run("create", "-o", db, "--hash", h1, "--cert", SAMPLE / "test-ca.pem")[0] == 0
    code, out, _ = run("add", db, "--in-place", "--hash", h2, "--hash", h1,
                       "--image", SAMPLE / "hello-nx.efi")
    assert code == 0 and "already present" in out
    values = [e.get("sha256") for sl in show_json(db)["files"][0]["lists"]
              for e in sl["entries"]]
    assert values.count(h1) == 1 and h2 in values
    code, _, _ = run("remove", db, "-o", tmp_path / "less.esl", "--subject",
                     "CN=fwtools test CA,O=fwtools test", "--hash", h2)
    assert code == 0
    left = show_json(tmp_path / "less.esl")["files"][0]
    assert left["entries"] == 2 and all(sl["type"] == "EfiCertSha256" for sl in left["lists"])
    # Nothing matched: exit 1 and nothing written.
    code, _, err = run("remove", db, "-o", tmp_path / "none.esl", "--hash", "33" * 32)
    assert code == 1 and not (tmp_path / "none.esl").exists() and "no entry" in err
    code, _, _ = run("merge", "-o", tmp_path / "m.esl", db, tmp_path / "less.esl", db)
    assert code == 0
    assert show_json(tmp_path / "m.esl")["files"][0]["entries"] == show_json(db)[
        "files"][0]["entries"]
    code, out, _ = run("dedupe", db, "-o", tmp_path / "d.esl", "--canonical")
    assert code == 0


def test_editing_needs_an_explicit_target(tmp_path: Path) -> None:
    db = tmp_path / "db.esl"
    run("create", "-o", db, "--hash", "11" * 32)
    before = db.read_bytes()
    code, _, err = run("add", db, "--hash", "22" * 32)
    assert code == 2 and "--in-place" in err
    # A bad certificate: error naming the file, and the database untouched.
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    code, _, err = run("add", db, "--in-place", "--cert", bad)
    assert code == 2 and "bad.pem" in err and "Traceback" not in err
    assert db.read_bytes() == before


def test_shim_vendor_lists(corpus: Any) -> None:
    doc = show_json(corpus.shim("bookworm", "amd64"))
    (f,) = doc["files"]
    assert f["format"] == "pe"
    roles = {sl["role"] for sl in f["lists"]}
    assert roles == {"db", "dbx"}
    (vendor,) = [e for sl in f["lists"] if sl["role"] == "db" for e in sl["entries"]]
    assert "Debian" in vendor["subject"]


def test_microsoft_dbx_update(ms_corpus: Any, tmp_path: Path) -> None:
    update = ms_corpus.root / "dbx/amd64/DBXUpdate.bin"
    doc = show_json(update)
    (f,) = doc["files"]
    assert f["format"] == "auth" and f["auth"]["error"] is None
    assert f["auth"]["signers"], "the signer of the update"
    assert all(sl["type"] == "EfiCertSha256" for sl in f["lists"])
    kek = ms_corpus.root / "certs/kek/MicCorKEKCA2011_2011-06-24.der"
    code, out, _ = run("verify", "--json", "--cert", kek, update)
    assert code == 0
    result = json.loads(out)["files"][0]
    assert result["valid"] and result["attributes"] == 0x67
    # The PK did not sign it.
    pk = ms_corpus.root / "certs/pk/WindowsOEMDevicesPK.der"
    code, out, _ = run("verify", "--cert", pk, update)
    assert code == 1 and out.startswith("FAIL")


def test_sign_and_verify_roundtrip(tmp_path: Path) -> None:
    db = tmp_path / "db.esl"
    run("create", "-o", db, "--cert", SAMPLE / "test-db.pem", "--owner", MICROSOFT)
    auth = tmp_path / "db.auth"
    code, _, err = run("sign", db, "--name", "db", "--key", SAMPLE / "keys/test-db.key",
                       "--cert", SAMPLE / "test-db.pem", "--timestamp", "2024-01-02T03:04:05Z",
                       "-o", auth)
    assert code == 0, err
    code, out, _ = run("verify", "--name", "db", "--cert", SAMPLE / "test-ca.pem", auth)
    assert code == 0 and out.startswith("OK")
    shown = show_json(auth)["files"][0]
    assert shown["auth"]["timestamp"].startswith("2024-01-02")
    assert shown["entries"] == 1
    # The same payload signed as an append write does not verify as a plain write.
    code, _, _ = run("verify", "--name", "db", "--attributes", "0x27", "--cert",
                     SAMPLE / "test-ca.pem", auth)
    assert code == 0
    code, _, _ = run("verify", "--name", "db", "--attributes", "0x67", "--cert",
                     SAMPLE / "test-ca.pem", auth)
    assert code == 1
    # Unsigned only when asked.
    code, _, err = run("sign", db, "--name", "db", "-o", tmp_path / "u.auth")
    assert code == 2 and "--unsigned" in err
    code, _, _ = run("sign", db, "--name", "db", "--unsigned", "-o", tmp_path / "u.auth")
    assert code == 0
    code, _, _ = run("verify", "--name", "db", "--cert", SAMPLE / "test-ca.pem",
                     tmp_path / "u.auth")
    assert code in (1, 2)


def test_efitools_signed_update_verifies(tmp_path: Path) -> None:
    need_tool("sign-efi-sig-list")
    db = tmp_path / "db.esl"
    run("create", "-o", db, "--hash", "ab" * 32)
    out = tmp_path / "db.auth"
    subprocess.run(
        ["sign-efi-sig-list", "-t", "2024-01-02 03:04:05", "-k", str(SAMPLE / "keys/test-db.key"),
         "-c", str(SAMPLE / "test-db.pem"), "db", str(db), str(out)],
        check=True, capture_output=True,
    )
    code, text, _ = run("verify", "--name", "db", "--cert", SAMPLE / "test-db.pem", out)
    assert code == 0, text


def test_extract_certs(ms_corpus: Any, tmp_path: Path) -> None:
    update = ms_corpus.root / "db/amd64/DBUpdate3P2023.bin"
    code, _, _ = run("extract-certs", tmp_path / "out", update)
    assert code == 0
    pems = sorted((tmp_path / "out").glob("*.pem"))
    assert pems and any("signer" in p.name for p in pems)
    for pem in pems:
        subprocess.run(["openssl", "x509", "-noout", "-in", str(pem)], check=True)


def test_bad_inputs(tmp_path: Path) -> None:
    good = tmp_path / "db.esl"
    run("create", "-o", good, "--hash", "11" * 32)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.esl"
    truncated.write_bytes(data[:-5])
    wrong_size = tmp_path / "size.esl"
    wrong_size.write_bytes(data[:24] + (47).to_bytes(4, "little") + data[28:])
    overflow = tmp_path / "overflow.esl"
    overflow.write_bytes(data[:16] + (0xFFFFFFF0).to_bytes(4, "little") + data[20:])
    garbage_auth = tmp_path / "garbage.auth"
    blob = bytearray((REPO / "testdata/microsoft-secureboot-objects/dbx/amd64/"
                      "DBXUpdate.bin").read_bytes())
    blob[40:200] = b"\xee" * 160
    garbage_auth.write_bytes(bytes(blob))
    files = [truncated, wrong_size, overflow, garbage_auth, good]
    code, out, err = run("show", "--json", *files)
    assert code == 2
    doc = json.loads(out)
    assert doc["files"][-1]["error"] is None
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 4 and all("offset 0x" in ln for ln in lines), lines
    assert "Traceback" not in err


def test_verify_against_a_variable_store(corpus: Any, ms_corpus: Any) -> None:
    update = ms_corpus.root / "dbx/amd64/DBXUpdate.bin"
    code, out, _ = run("verify", "--vars", corpus.ovmf("bookworm", "OVMF_VARS_4M.ms.fd"), update)
    assert code == 0 and out.startswith("OK")
    # Debian's snakeoil store trusts only Debian's test KEK.
    code, out, _ = run("verify", "--vars", corpus.ovmf("bookworm", "OVMF_VARS_4M.snakeoil.fd"),
                       update)
    assert code == 1 and out.startswith("FAIL")
