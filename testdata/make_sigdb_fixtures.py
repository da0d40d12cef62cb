#!/usr/bin/env python3
"""Build the signature-list and .auth fixtures in testdata/sigdb/.

Real files (Microsoft's signed updates, the OVMF/AAVMF variable stores, shim's vendor dbx)
cover the common case; these cover what they lack: updates made by each tool the tests
compare against (efitools, sbsigntool, fwtools), a chain through a CA, PK- and EC-signed
updates, an unsigned (setup-mode) header, unusual but valid lists, and malformed input with
a known offset. Every file is well below 64 KiB and described in MANIFEST.json.

PKI (keys/ holds the PEM private keys; committed on purpose, they protect nothing). All
RSA-2048 unless noted, ``O=fwtools test``, valid 2025-01-01 to 2045-01-01:

- ``pk``: ``CN=fwtools test PK``, self-signed, CA:TRUE (serial 0x3001);
- ``kek-ca``: ``CN=fwtools test KEK CA``, self-signed, CA:TRUE (0x3002);
- ``kek``: ``CN=fwtools test KEK signer``, issued by kek-ca, CA:FALSE (0x3003);
- ``db``: ``CN=fwtools test db``, self-signed, CA:TRUE (0x3004): the certificate the lists hold;
- ``ec-kek``: ``CN=fwtools test EC KEK``, EC P-256, self-signed (0x3005);
- ``other``: ``CN=fwtools test unrelated``, self-signed (0x3006), trusted by nothing.

Signature lists (owner ``OWNER`` = 5ef1d8b0-0d1c-4c5e-9e7a-6f7774f00d01 unless noted):

- ``db-efitools.esl``: ``cert-to-efi-sig-list -g OWNER db.pem`` (one X509 list);
- ``x509-sha256-efitools.esl``: ``cert-to-efi-hash-list -g OWNER -t "2024-01-02 03:04:05"
  db.pem`` (an EFI_CERT_X509_SHA256 entry with a revocation time);
- ``kek.esl``: kek-ca and ec-kek as two X509 lists (fwtools);
- ``hashes.esl``: a SHA256 list of 3 entries (SHA-256 of ``b"fwtools sigdb 1"``..``3``), a
  SHA384 list and a SHA1 list of one entry each (fwtools);
- ``mixed.esl``: X509 (db), SHA256 (2 entries), an unknown type
  (``0badc0de-0000-4000-8000-000000000001``, SignatureSize 24), X509_SHA384 (revoked from
  2023-05-06T07:08:09), SHA256 with a 4-byte SignatureHeader (``HDR!``), and an empty
  SHA256 list (header only): parse -> to_bytes must keep all of it;
- ``duplicates.esl``: hashes.esl's first list, then a list repeating its second entry and a
  new one, then the X509 list of db-efitools.esl twice (for dedupe/merge/append tests).

Signed updates (TimeStamp 2024-01-02T03:04:05Z unless noted):

- ``db-efitools.auth``: ``sign-efi-sig-list -t ... -k kek.key -c kek.pem db
  db-efitools.esl``: attributes 0x27, bare SignedData, no authenticated attributes, only the
  signer certificate in the bag (anchor: kek-ca or kek);
- ``db-efitools-append.auth``: the same with ``-a``: attributes 0x67, TimeStamp all zero;
- ``kek-efitools.auth``: ``sign-efi-sig-list -k pk.key -c pk.pem KEK kek.esl`` (PK-signed);
- ``moklist-efitools.auth``: ``sign-efi-sig-list -g 605dab50-e046-4300-abb6-3dd810dd8b23
  MokList db-efitools.esl``, signed by kek ("MOK-style": shim GUID, 0x27);
- ``db-sbvarsign.auth``: ``sbvarsign --key kek.key --cert kek.pem db db-efitools.esl``:
  attributes 0x67, authenticated attributes (contentType, signingTime, messageDigest),
  sbvarsign's own UTC time with its 0-based Month;
- ``dbx-fwtools.auth``: fwtools ``sign_auth`` of hashes.esl for dbx, kek signer, bare
  SignedData without attributes (deterministic);
- ``db-fwtools-ci.auth``: ``sign_auth`` of db-efitools.esl as a ContentInfo with
  authenticated attributes and kek-ca in the bag, attributes 0x67;
- ``db-fwtools-ec.auth``: ``sign_auth`` by ec-kek (ECDSA P-256, SHA-256);
- ``db-unsigned.auth``: ``empty_auth`` of db-efitools.esl (dwLength 24, no PKCS#7);
- ``db-bad-timestamp.auth``: a correct kek signature over a TimeStamp with Nanosecond 1
  (the signature verifies, firmware refuses the stamp).

Malformed input (the tests assert the error and its offset):

- ``bad-sigsize.esl``: SHA256 list with SignatureSize 47 (offset 24);
- ``bad-listsize-small.esl``: SignatureListSize 20, below the 28-byte header (offset 16);
- ``bad-listsize-overflow.esl``: hashes.esl with the first SignatureListSize 0x1000 bytes
  too big (offset 16);
- ``bad-headersize.esl``: SignatureHeaderSize larger than the list (offset 20);
- ``bad-body.esl``: an unknown type whose 30 bytes of entries are not a multiple of its
  SignatureSize 20 (offset 28);
- ``truncated.esl``: hashes.esl cut inside its second list header;
- ``not-der-x509.esl``: an X509 list whose entry is 40 bytes of 0x5A (parses; decoding the
  certificate fails at offset 44);
- ``bad-dwlength.auth``: db-efitools.auth with dwLength running 0x100 bytes past the end;
- ``bad-dwlength-small.auth``: dwLength 8;
- ``bad-certtype.auth``: wCertificateType 0x0002 (offset 22);
- ``bad-certguid.auth``: CertType EFI_CERT_TYPE_RSA2048_SHA256_GUID (offset 24);
- ``garbage-pkcs7.auth``: CertData replaced by 64 pseudo-random bytes (offset 40);
- ``truncated-timestamp.auth``: 10 bytes; ``truncated-header.auth``: 30 bytes.

Reproducibility: RSA keys cannot be derived from a seed, so keys are generated once and
reused (``--new-keys`` makes new ones); certificates have fixed fields and RSA PKCS#1 v1.5
signatures are deterministic, so certificates, efitools' outputs and ``dbx-fwtools.auth``
are byte-identical on every run. sbvarsign and the fwtools attribute/EC signatures are not
(signingTime, ECDSA nonces): those files are kept while they still verify and remade with
``--resign``.

Run: ``.venv/bin/python testdata/make_sigdb_fixtures.py [--resign] [--new-keys]``. Needs
efitools (cert-to-efi-sig-list, cert-to-efi-hash-list, sign-efi-sig-list), sbsigntool
(sbvarsign) and the venv (cryptography, fwtools itself).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

HERE: Final = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fwtools._base.efitime import EfiTime  # noqa: E402
from fwtools.crypto.authvar import sign_auth, verify_auth  # noqa: E402
from fwtools.formats.efi import guids  # noqa: E402
from fwtools.formats.efi.authvar import (  # noqa: E402
    AuthVariable2,
    empty_auth,
    signed_data_bytes,
)
from fwtools.formats.efi.siglist import (  # noqa: E402
    SignatureData,
    SignatureDatabase,
    SignatureList,
)

OUT: Final = HERE / "sigdb"
KEYS: Final = OUT / "keys"
MAX_FIXTURE: Final = 64 * 1024
OWNER: Final = uuid.UUID("5ef1d8b0-0d1c-4c5e-9e7a-6f7774f00d01")
UNKNOWN_TYPE: Final = uuid.UUID("0badc0de-0000-4000-8000-000000000001")
STAMP: Final = EfiTime(2024, 1, 2, 3, 4, 5)
STAMP_TEXT: Final = "2024-01-02 03:04:05"
NOT_BEFORE: Final = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NOT_AFTER: Final = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)

MANIFEST: dict[str, dict[str, str]] = {}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def write(name: str, data: bytes, what: str) -> Path:
    if len(data) >= MAX_FIXTURE:
        raise SystemExit(f"{name}: {len(data)} bytes is over the fixture limit")
    path = OUT / name
    path.write_bytes(data)
    path.chmod(0o644)  # sign-efi-sig-list creates its output 0600
    MANIFEST[name] = {"sha256": hashlib.sha256(data).hexdigest(), "what": what}
    return path


def run(*cmd: object) -> None:
    subprocess.run(
        [str(c) for c in cmd], check=True, capture_output=True, env={**os.environ, "TZ": "UTC"}
    )


# -- PKI ---------------------------------------------------------------------------------


def _key(name: str, kind: str, new: bool) -> PrivateKey:
    path = KEYS / f"{name}.key"
    if path.exists() and not new:
        loaded = serialization.load_pem_private_key(path.read_bytes(), None)
        assert isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return loaded
    key: PrivateKey = (
        rsa.generate_private_key(65537, 2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def _cert(
    cn: str,
    serial: int,
    key: PrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: PrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fwtools test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def make_pki(new: bool) -> tuple[dict[str, x509.Certificate], dict[str, PrivateKey]]:
    KEYS.mkdir(parents=True, exist_ok=True)
    keys = {
        name: _key(name, "ec" if name == "ec-kek" else "rsa", new)
        for name in ("pk", "kek-ca", "kek", "db", "ec-kek", "other")
    }
    certs: dict[str, x509.Certificate] = {}
    certs["pk"] = _cert("fwtools test PK", 0x3001, keys["pk"], None, keys["pk"], ca=True)
    certs["kek-ca"] = _cert(
        "fwtools test KEK CA", 0x3002, keys["kek-ca"], None, keys["kek-ca"], ca=True
    )
    certs["kek"] = _cert(
        "fwtools test KEK signer", 0x3003, keys["kek"], certs["kek-ca"], keys["kek-ca"], ca=False
    )
    certs["db"] = _cert("fwtools test db", 0x3004, keys["db"], None, keys["db"], ca=True)
    certs["other"] = _cert(
        "fwtools test unrelated", 0x3006, keys["other"], None, keys["other"], ca=True
    )
    ec_pem = OUT / "ec-kek.pem"
    if ec_pem.exists() and not new:  # ECDSA signatures are not deterministic: keep it
        certs["ec-kek"] = x509.load_pem_x509_certificate(ec_pem.read_bytes())
    else:
        certs["ec-kek"] = _cert(
            "fwtools test EC KEK", 0x3005, keys["ec-kek"], None, keys["ec-kek"], ca=True
        )
    for name, cert in certs.items():
        write(
            f"{name}.pem",
            cert.public_bytes(serialization.Encoding.PEM),
            f"test certificate {name} (PEM; .der alongside)",
        )
        (OUT / f"{name}.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return certs, keys


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# -- lists -------------------------------------------------------------------------------


def digest(n: int, algorithm: str = "sha256") -> bytes:
    return hashlib.new(algorithm, f"fwtools sigdb {n}".encode()).digest()


def make_lists(certs: dict[str, x509.Certificate]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    run("cert-to-efi-sig-list", "-g", OWNER, OUT / "db.pem", OUT / "db-efitools.esl")
    out["db-efitools.esl"] = (OUT / "db-efitools.esl").read_bytes()
    write("db-efitools.esl", out["db-efitools.esl"], "cert-to-efi-sig-list -g OWNER db.pem")
    run(
        "cert-to-efi-hash-list",
        "-g",
        OWNER,
        "-t",
        STAMP_TEXT,
        OUT / "db.pem",
        OUT / "x509-sha256-efitools.esl",
    )
    write(
        "x509-sha256-efitools.esl",
        (OUT / "x509-sha256-efitools.esl").read_bytes(),
        "cert-to-efi-hash-list -g OWNER -t '2024-01-02 03:04:05' db.pem",
    )

    kek = SignatureDatabase().add_certificate(der(certs["kek-ca"]), OWNER)
    kek = kek.add_certificate(der(certs["ec-kek"]), OWNER)
    out["kek.esl"] = kek.to_bytes()
    write("kek.esl", out["kek.esl"], "kek-ca and ec-kek, one X509 list each (fwtools)")

    hashes_db = SignatureDatabase()
    for n in (1, 2, 3):
        hashes_db = hashes_db.add_hash(digest(n), OWNER)
    hashes_db = hashes_db.add_hash(digest(4, "sha384"), OWNER)
    hashes_db = hashes_db.add_hash(digest(5, "sha1"), OWNER)
    out["hashes.esl"] = hashes_db.to_bytes()
    write("hashes.esl", out["hashes.esl"], "SHA256 list (3), SHA384 list (1), SHA1 list (1)")

    revoked = EfiTime(2023, 5, 6, 7, 8, 9)
    mixed = (
        SignatureDatabase()
        .add_certificate(der(certs["db"]), OWNER)
        .add_hash(digest(1), OWNER)
        .add_hash(digest(2), guids.MICROSOFT)
        .add_list(
            SignatureList(
                UNKNOWN_TYPE,
                24,
                (SignatureData(OWNER, b"opaque-1"), SignatureData(OWNER, b"opaque-2")),
            )
        )
        .add_x509_hash(digest(6, "sha384"), OWNER, revoked)
        .add_list(
            SignatureList(guids.CERT_SHA256, 48, (SignatureData(OWNER, digest(7)),), header=b"HDR!")
        )
        .add_list(SignatureList(guids.CERT_SHA256, 48, ()))
    )
    write(
        "mixed.esl",
        mixed.to_bytes(),
        "X509, SHA256 x2, unknown type, X509_SHA384 with revocation time, SHA256 with a "
        "4-byte header, empty SHA256 list",
    )

    first = SignatureDatabase.parse(out["hashes.esl"]).lists[0]
    dup = SignatureDatabase((first,)).add_list(
        SignatureList(guids.CERT_SHA256, 48, (first.entries[1], SignatureData(OWNER, digest(8))))
    )
    x509_list = SignatureDatabase.parse(out["db-efitools.esl"]).lists[0]
    dup = dup.add_list(x509_list).add_list(x509_list)
    write(
        "duplicates.esl",
        dup.to_bytes(),
        "SHA256 list, a list repeating one of its entries plus a new one, one X509 list twice",
    )
    return out


# -- signed updates ----------------------------------------------------------------------


def verifies(path: Path, name: str, anchors: list[bytes]) -> bool:
    if not path.exists():
        return False
    try:
        auth = AuthVariable2.parse(path.read_bytes())
        vendor = guids.EFI_IMAGE_SECURITY_DATABASE
        return verify_auth(auth, name, vendor, None, anchors).valid
    except Exception:  # any failure means "remake it"
        return False


def make_auths(
    certs: dict[str, x509.Certificate],
    keys: dict[str, PrivateKey],
    lists: dict[str, bytes],
    resign: bool,
) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    db_esl = OUT / "db-efitools.esl"
    kek_pem, kek_key = OUT / "kek.pem", KEYS / "kek.key"

    def efitools(name: str, *args: str | Path, what: str) -> None:
        run("sign-efi-sig-list", *args, OUT / name)
        out[name] = (OUT / name).read_bytes()
        write(name, out[name], what)

    efitools(
        "db-efitools.auth",
        "-t",
        STAMP_TEXT,
        "-k",
        kek_key,
        "-c",
        kek_pem,
        "db",
        db_esl,
        what="sign-efi-sig-list -t '2024-01-02 03:04:05' -k kek.key -c kek.pem db "
        "db-efitools.esl (0x27)",
    )
    efitools(
        "db-efitools-append.auth",
        "-a",
        "-k",
        kek_key,
        "-c",
        kek_pem,
        "db",
        db_esl,
        what="sign-efi-sig-list -a (0x67, zero TimeStamp) of db-efitools.esl by kek",
    )
    efitools(
        "kek-efitools.auth",
        "-t",
        STAMP_TEXT,
        "-k",
        KEYS / "pk.key",
        "-c",
        OUT / "pk.pem",
        "KEK",
        OUT / "kek.esl",
        what="sign-efi-sig-list by pk of kek.esl for KEK (0x27)",
    )
    efitools(
        "moklist-efitools.auth",
        "-g",
        str(guids.SHIM_LOCK),
        "-t",
        STAMP_TEXT,
        "-k",
        kek_key,
        "-c",
        kek_pem,
        "MokList",
        db_esl,
        what="sign-efi-sig-list -g SHIM_LOCK MokList db-efitools.esl by kek (0x27)",
    )

    anchors = [der(certs["kek-ca"])]
    sb = OUT / "db-sbvarsign.auth"
    if resign or not verifies(sb, "db", anchors):
        run("sbvarsign", "--key", kek_key, "--cert", kek_pem, "--output", sb, "db", db_esl)
    out[sb.name] = sb.read_bytes()
    write(
        sb.name,
        out[sb.name],
        "sbvarsign --key kek.key --cert kek.pem db db-efitools.esl "
        "(0x67, authenticated attributes, 0-based Month)",
    )

    db_bytes = lists["db-efitools.esl"]
    blob = sign_auth(
        "dbx",
        guids.EFI_IMAGE_SECURITY_DATABASE,
        0x27,
        lists["hashes.esl"],
        keys["kek"],
        der(certs["kek"]),
        timestamp=STAMP,
    )
    write("dbx-fwtools.auth", blob, "fwtools sign_auth dbx hashes.esl by kek, bare SignedData")

    ci = OUT / "db-fwtools-ci.auth"
    if resign or not verifies(ci, "db", anchors):
        ci.write_bytes(
            sign_auth(
                "db",
                guids.EFI_IMAGE_SECURITY_DATABASE,
                0x67,
                db_bytes,
                keys["kek"],
                der(certs["kek"]),
                timestamp=STAMP,
                extra_certs=[der(certs["kek-ca"])],
                form="ContentInfo",
                signed_attributes=True,
            )
        )
    write(
        ci.name,
        ci.read_bytes(),
        "fwtools sign_auth db, ContentInfo, authenticated attributes, kek-ca in the bag, 0x67",
    )

    ec_path = OUT / "db-fwtools-ec.auth"
    if resign or not verifies(ec_path, "db", [der(certs["ec-kek"])]):
        ec_path.write_bytes(
            sign_auth(
                "db",
                guids.EFI_IMAGE_SECURITY_DATABASE,
                0x27,
                db_bytes,
                keys["ec-kek"],
                der(certs["ec-kek"]),
                timestamp=STAMP,
            )
        )
    write(ec_path.name, ec_path.read_bytes(), "fwtools sign_auth db by ec-kek (ECDSA P-256)")

    write(
        "db-unsigned.auth",
        empty_auth(db_bytes, STAMP),
        "empty_auth of db-efitools.esl (dwLength 24, no PKCS#7)",
    )

    # A stamp sign_auth refuses to make: sign it by hand.
    bad_stamp = EfiTime(2024, 1, 2, 3, 4, 5, nanosecond=1)
    content = signed_data_bytes("db", guids.EFI_IMAGE_SECURITY_DATABASE, 0x27, bad_stamp, db_bytes)
    kek_signer = keys["kek"]
    assert isinstance(kek_signer, rsa.RSAPrivateKey)
    p7 = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(certs["kek"], kek_signer, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.Binary,
                pkcs7.PKCS7Options.NoAttributes,
            ],
        )
    )
    write(
        "db-bad-timestamp.auth",
        AuthVariable2.build(bad_stamp, p7, db_bytes).to_bytes(),
        "kek signature over a TimeStamp with Nanosecond 1 (ContentInfo form)",
    )
    return out


# -- malformed ---------------------------------------------------------------------------


def make_malformed(lists: dict[str, bytes], auths: dict[str, bytes]) -> None:
    hashes_esl = lists["hashes.esl"]
    one = SignatureDatabase.parse(hashes_esl).lists[0].to_bytes()

    bad = bytearray(one)
    struct.pack_into("<I", bad, 24, 47)
    write("bad-sigsize.esl", bytes(bad), "SHA256 list with SignatureSize 47 (offset 24)")

    bad = bytearray(one)
    struct.pack_into("<I", bad, 16, 20)
    write("bad-listsize-small.esl", bytes(bad), "SignatureListSize 20 < 28 (offset 16)")

    bad = bytearray(hashes_esl)
    struct.pack_into("<I", bad, 16, len(one) + 0x1000)
    write(
        "bad-listsize-overflow.esl",
        bytes(bad),
        "first SignatureListSize runs 0x1000 bytes past the data (offset 16)",
    )

    bad = bytearray(one)
    struct.pack_into("<I", bad, 20, len(one))
    write("bad-headersize.esl", bytes(bad), "SignatureHeaderSize larger than the list (offset 20)")

    body = SignatureList(UNKNOWN_TYPE, 20, ()).to_bytes()
    bad = bytearray(body + bytes(range(30)))
    struct.pack_into("<I", bad, 16, len(bad))
    write(
        "bad-body.esl",
        bytes(bad),
        "unknown type, 30 bytes of entries, SignatureSize 20 (offset 28)",
    )

    write(
        "truncated.esl",
        hashes_esl[: len(one) + 20],
        "hashes.esl cut 20 bytes into its second list header",
    )

    write(
        "not-der-x509.esl",
        SignatureDatabase().add_certificate(b"\x5a" * 40, OWNER).to_bytes(),
        "X509 list whose entry is 40 bytes of 0x5A (certificate data at offset 44)",
    )

    good = auths["db-efitools.auth"]
    (length,) = struct.unpack_from("<I", good, 16)

    bad = bytearray(good)
    struct.pack_into("<I", bad, 16, len(good) - 16 + 0x100)
    write("bad-dwlength.auth", bytes(bad), "dwLength 0x100 bytes past the end (offset 16)")

    bad = bytearray(good)
    struct.pack_into("<I", bad, 16, 8)
    write("bad-dwlength-small.auth", bytes(bad), "dwLength 8 < 24 (offset 16)")

    bad = bytearray(good)
    struct.pack_into("<H", bad, 22, 0x0002)
    write("bad-certtype.auth", bytes(bad), "wCertificateType 0x0002 (offset 22)")

    bad = bytearray(good)
    bad[24:40] = guids.CERT_TYPE_RSA2048_SHA256.bytes_le
    write("bad-certguid.auth", bytes(bad), "CertType RSA2048_SHA256 GUID (offset 24)")

    rng = random.Random(3)
    garbage = bytes(rng.randrange(256) for _ in range(64))
    bad = bytearray(good[:40] + garbage + good[16 + length :])
    struct.pack_into("<I", bad, 16, 24 + len(garbage))
    write("garbage-pkcs7.auth", bytes(bad), "64 pseudo-random bytes as PKCS#7 (offset 40)")

    write("truncated-timestamp.auth", good[:10], "10 bytes: TimeStamp cut short")
    write("truncated-header.auth", good[:30], "30 bytes: WIN_CERTIFICATE_UEFI_GUID cut short")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--resign", action="store_true", help="remake the non-deterministic signatures too"
    )
    parser.add_argument("--new-keys", action="store_true", help="new keys (implies --resign)")
    args = parser.parse_args()
    for tool in ("cert-to-efi-sig-list", "cert-to-efi-hash-list", "sign-efi-sig-list", "sbvarsign"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install efitools sbsigntool)")
    OUT.mkdir(exist_ok=True)
    certs, keys = make_pki(args.new_keys)
    lists = make_lists(certs)
    auths = make_auths(certs, keys, lists, args.resign or args.new_keys)
    make_malformed(lists, auths)
    (OUT / "MANIFEST.json").write_text(json.dumps(dict(sorted(MANIFEST.items())), indent=2) + "\n")
    print(f"wrote {len(MANIFEST)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
