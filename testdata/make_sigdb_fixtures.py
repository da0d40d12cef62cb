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
import hashlib
import random
import struct
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from _fixture_tools import (
    WIN_CERT_TYPE_PKCS_SIGNED_DATA,
    FixtureDir,
    PrivateKey,
    issue_cert,
    load_or_make_key,
    patched,
    require_tools,
    run,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7

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
FIXTURES: Final = FixtureDir(OUT)
write: Final = FIXTURES.write
OWNER: Final = uuid.UUID("5ef1d8b0-0d1c-4c5e-9e7a-6f7774f00d01")
UNKNOWN_TYPE: Final = uuid.UUID("0badc0de-0000-4000-8000-000000000001")
STAMP: Final = EfiTime(2024, 1, 2, 3, 4, 5)
STAMP_TEXT: Final = "2024-01-02 03:04:05"


# -- PKI ---------------------------------------------------------------------------------


def make_pki(new: bool) -> tuple[dict[str, x509.Certificate], dict[str, PrivateKey]]:
    KEYS.mkdir(parents=True, exist_ok=True)
    keys = {
        name: load_or_make_key(
            KEYS / f"{name}.key", kind="ec" if name == "ec-kek" else "rsa", new=new
        )
        for name in ("pk", "kek-ca", "kek", "db", "ec-kek", "other")
    }
    certs: dict[str, x509.Certificate] = {}
    certs["pk"] = issue_cert("fwtools test PK", 0x3001, keys["pk"], None, keys["pk"], ca=True)
    certs["kek-ca"] = issue_cert(
        "fwtools test KEK CA", 0x3002, keys["kek-ca"], None, keys["kek-ca"], ca=True
    )
    certs["kek"] = issue_cert(
        "fwtools test KEK signer", 0x3003, keys["kek"], certs["kek-ca"], keys["kek-ca"], ca=False
    )
    certs["db"] = issue_cert("fwtools test db", 0x3004, keys["db"], None, keys["db"], ca=True)
    certs["other"] = issue_cert(
        "fwtools test unrelated", 0x3006, keys["other"], None, keys["other"], ca=True
    )
    ec_pem = OUT / "ec-kek.pem"
    if ec_pem.exists() and not new:  # ECDSA signatures are not deterministic: keep it
        certs["ec-kek"] = x509.load_pem_x509_certificate(ec_pem.read_bytes())
    else:
        certs["ec-kek"] = issue_cert(
            "fwtools test EC KEK", 0x3005, keys["ec-kek"], None, keys["ec-kek"], ca=True
        )
    for name, cert in certs.items():
        FIXTURES.write_cert(name, cert)
    return certs, keys


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# -- lists -------------------------------------------------------------------------------


def digest(n: int, algorithm: str = "sha256") -> bytes:
    return hashlib.new(algorithm, f"fwtools sigdb {n}".encode()).digest()


def make_lists(certs: dict[str, x509.Certificate]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    run("cert-to-efi-sig-list", "-g", OWNER, OUT / "db.pem", OUT / "db-efitools.esl")
    what = "cert-to-efi-sig-list -g OWNER db.pem"
    out["db-efitools.esl"] = FIXTURES.record("db-efitools.esl", what).read_bytes()
    run(
        "cert-to-efi-hash-list",
        "-g",
        OWNER,
        "-t",
        STAMP_TEXT,
        OUT / "db.pem",
        OUT / "x509-sha256-efitools.esl",
    )
    FIXTURES.record(
        "x509-sha256-efitools.esl",
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

    def efitools(name: str, var: str, esl: Path, signer: str, *options: str, what: str) -> None:
        key, cert = KEYS / f"{signer}.key", OUT / f"{signer}.pem"
        run("sign-efi-sig-list", *options, "-k", key, "-c", cert, var, esl, OUT / name)
        out[name] = FIXTURES.record(name, what).read_bytes()

    def fwtools(var: str, attributes: int, payload: bytes, signer: str, **options: Any) -> bytes:
        return sign_auth(
            var,
            guids.EFI_IMAGE_SECURITY_DATABASE,
            attributes,
            payload,
            keys[signer],
            der(certs[signer]),
            timestamp=STAMP,
            **options,
        )

    def kept_while_valid(
        name: str, anchors: list[bytes], remake: Callable[[Path], object], what: str
    ) -> None:
        """Keep the committed ``name`` while it verifies with ``anchors`` (its signature is
        not deterministic), else ``remake`` it."""
        path = OUT / name
        if resign or not verifies(path, "db", anchors):
            remake(path)
        out[name] = FIXTURES.record(name, what).read_bytes()

    efitools(
        "db-efitools.auth", "db", db_esl, "kek", "-t", STAMP_TEXT,
        what="sign-efi-sig-list -t '2024-01-02 03:04:05' -k kek.key -c kek.pem db "
        "db-efitools.esl (0x27)",
    )  # fmt: skip
    efitools(
        "db-efitools-append.auth", "db", db_esl, "kek", "-a",
        what="sign-efi-sig-list -a (0x67, zero TimeStamp) of db-efitools.esl by kek",
    )  # fmt: skip
    efitools(
        "kek-efitools.auth", "KEK", OUT / "kek.esl", "pk", "-t", STAMP_TEXT,
        what="sign-efi-sig-list by pk of kek.esl for KEK (0x27)",
    )  # fmt: skip
    efitools(
        "moklist-efitools.auth", "MokList", db_esl, "kek", "-g", str(guids.SHIM_LOCK),
        "-t", STAMP_TEXT,
        what="sign-efi-sig-list -g SHIM_LOCK MokList db-efitools.esl by kek (0x27)",
    )  # fmt: skip

    anchors = [der(certs["kek-ca"])]
    kept_while_valid(
        "db-sbvarsign.auth",
        anchors,
        lambda path: run(
            "sbvarsign", "--key", kek_key, "--cert", kek_pem, "--output", path, "db", db_esl
        ),
        "sbvarsign --key kek.key --cert kek.pem db db-efitools.esl "
        "(0x67, authenticated attributes, 0-based Month)",
    )

    db_bytes = lists["db-efitools.esl"]
    blob = fwtools("dbx", 0x27, lists["hashes.esl"], "kek")
    write("dbx-fwtools.auth", blob, "fwtools sign_auth dbx hashes.esl by kek, bare SignedData")

    kept_while_valid(
        "db-fwtools-ci.auth",
        anchors,
        lambda path: path.write_bytes(
            fwtools(
                "db",
                0x67,
                db_bytes,
                "kek",
                extra_certs=[der(certs["kek-ca"])],
                form="ContentInfo",
                signed_attributes=True,
            )
        ),
        "fwtools sign_auth db, ContentInfo, authenticated attributes, kek-ca in the bag, 0x67",
    )
    kept_while_valid(
        "db-fwtools-ec.auth",
        [der(certs["ec-kek"])],
        lambda path: path.write_bytes(fwtools("db", 0x27, db_bytes, "ec-kek")),
        "fwtools sign_auth db by ec-kek (ECDSA P-256)",
    )

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

    for name, data, offset, value, what in (
        ("bad-sigsize.esl", one, 24, 47, "SHA256 list with SignatureSize 47 (offset 24)"),
        ("bad-listsize-small.esl", one, 16, 20, "SignatureListSize 20 < 28 (offset 16)"),
        ("bad-listsize-overflow.esl", hashes_esl, 16, len(one) + 0x1000,
         "first SignatureListSize runs 0x1000 bytes past the data (offset 16)"),
        ("bad-headersize.esl", one, 20, len(one),
         "SignatureHeaderSize larger than the list (offset 20)"),
    ):  # fmt: skip
        write(name, patched(data, offset, "<I", value), what)

    body = SignatureList(UNKNOWN_TYPE, 20, ()).to_bytes() + bytes(range(30))
    write(
        "bad-body.esl",
        patched(body, 16, "<I", len(body)),
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

    for name, fmt, offset, value, what in (
        ("bad-dwlength.auth", "<I", 16, len(good) - 16 + 0x100,
         "dwLength 0x100 bytes past the end (offset 16)"),
        ("bad-dwlength-small.auth", "<I", 16, 8, "dwLength 8 < 24 (offset 16)"),
        ("bad-certtype.auth", "<H", 22, WIN_CERT_TYPE_PKCS_SIGNED_DATA,
         "wCertificateType 0x0002 (offset 22)"),
    ):  # fmt: skip
        write(name, patched(good, offset, fmt, value), what)

    bad_guid = good[:24] + guids.CERT_TYPE_RSA2048_SHA256.bytes_le + good[40:]
    write("bad-certguid.auth", bad_guid, "CertType RSA2048_SHA256 GUID (offset 24)")

    rng = random.Random(3)
    garbage = bytes(rng.randrange(256) for _ in range(64))
    bad = patched(good[:40] + garbage + good[16 + length :], 16, "<I", 24 + len(garbage))
    write("garbage-pkcs7.auth", bad, "64 pseudo-random bytes as PKCS#7 (offset 40)")

    write("truncated-timestamp.auth", good[:10], "10 bytes: TimeStamp cut short")
    write("truncated-header.auth", good[:30], "30 bytes: WIN_CERTIFICATE_UEFI_GUID cut short")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--resign", action="store_true", help="remake the non-deterministic signatures too"
    )
    parser.add_argument("--new-keys", action="store_true", help="new keys (implies --resign)")
    args = parser.parse_args()
    require_tools(
        "cert-to-efi-sig-list", "cert-to-efi-hash-list", "sign-efi-sig-list", "sbvarsign",
        install="efitools sbsigntool",
    )  # fmt: skip
    OUT.mkdir(exist_ok=True)
    certs, keys = make_pki(args.new_keys)
    lists = make_lists(certs)
    auths = make_auths(certs, keys, lists, args.resign or args.new_keys)
    make_malformed(lists, auths)
    FIXTURES.write_manifest()
    print(f"wrote {len(FIXTURES)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
