"""EFI signature lists and SignatureDatabase, against real lists and independent writers.

Oracles:
- real lists: Microsoft's signed updates (payloads), the PK/KEK/db/dbx in Debian's OVMF and
  AAVMF variable stores (written by edk2's EnrollDefaultKeys), the vendor dbx built into
  Debian's shim, Microsoft's dbx_info_msft_latest.json: parse -> to_bytes is byte-identical
  and the contents are what their sources say;
- writers: efitools' cert-to-efi-sig-list, cert-to-efi-hash-list and hash-to-efi-sig-list,
  sbsigntool's sbsiglist, and efitools' sig-list-to-certs as a reader of what we write;
- append_write: the rule of edk2's FilterSignatureList (docs/reference/formats.md §3), recomputed
here with
  set arithmetic over (type, size, owner + data).
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import subprocess
import uuid
from pathlib import Path

import pytest
from corpus import MsCorpus
from corpus.params import corpus_files, need, need_tool
from efi_varstore_walk import variables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwtools._base.efitime import EfiTime
from fwtools.errors import ParseError, SignatureFormatError, TruncatedError, UsageError
from fwtools.formats.efi import guids
from fwtools.formats.efi.authvar import AuthVariable2
from fwtools.formats.efi.siglist import (
    CANONICAL_TYPE_ORDER,
    SignatureData,
    SignatureDatabase,
    SignatureList,
    hash_type_for,
    parse_signature_lists,
    svn_entry,
    x509_hash_entry,
)

REPO = Path(__file__).resolve().parents[3]
SIGDB = REPO / "testdata" / "sigdb"
OWNER = uuid.UUID("5ef1d8b0-0d1c-4c5e-9e7a-6f7774f00d01")
UNKNOWN_TYPE = uuid.UUID("0badc0de-0000-4000-8000-000000000001")
GOOD_ESL = sorted(
    p.name for p in SIGDB.glob("*.esl") if not p.name.startswith(("bad-", "truncated"))
)


def run(*cmd: object) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)


def esl(name: str) -> bytes:
    return (SIGDB / name).read_bytes()


def db_of(*entries: tuple[uuid.UUID, uuid.UUID, bytes]) -> SignatureDatabase:
    """One list per entry: (type, owner, data)."""
    db = SignatureDatabase()
    for sig_type, owner, data in entries:
        db = db.add_list(SignatureList(sig_type, 16 + len(data), (SignatureData(owner, data),)))
    return db


def keys(db: SignatureDatabase) -> list[tuple[uuid.UUID, uuid.UUID, bytes]]:
    return [(sl.signature_type, e.owner, e.data) for _i, _j, sl, e in db.entries()]


def sha(n: int) -> bytes:
    return hashlib.sha256(b"%d" % n).digest()


# -- parsing and round trips ---------------------------------------------------------------


@pytest.mark.parametrize("name", GOOD_ESL)
def test_fixture_lists_round_trip(name: str) -> None:
    data = esl(name)
    db = SignatureDatabase.parse(data)
    assert db.to_bytes() == data
    assert [sl.to_bytes() for sl in parse_signature_lists(data)] == [
        sl.to_bytes() for sl in db.lists
    ]
    # Offsets point at the structures in the file.
    for sl in db.lists:
        assert data[sl.offset : sl.offset + 16] == sl.signature_type.bytes_le
        for e in sl.entries:
            assert data[e.offset : e.offset + 16] == e.owner.bytes_le
            assert data[e.data_offset : e.data_offset + len(e.data)] == e.data


def test_mixed_list_keeps_everything() -> None:
    data = esl("mixed.esl")
    db = SignatureDatabase.parse(data, base=0x1000)
    assert [sl.type_name for sl in db.lists] == [
        "EfiCertX509",
        "EfiCertSha256",
        str(UNKNOWN_TYPE),
        "EfiCertX509Sha384",
        "EfiCertSha256",
        "EfiCertSha256",
    ]
    assert db.lists[0].offset == 0x1000
    unknown = db.lists[2]
    assert unknown.signature_size == 24
    assert [e.data for e in unknown.entries] == [b"opaque-1", b"opaque-2"]
    assert db.lists[4].header == b"HDR!" and db.lists[5].entries == ()
    tbs, when = x509_hash_entry(db.lists[3].entries[0].data)
    assert len(tbs) == 48 and when == EfiTime(2023, 5, 6, 7, 8, 9)
    assert db.count == len(db) == 7
    assert not db.is_empty
    assert db.types() == [guids.CERT_X509, guids.CERT_SHA256, UNKNOWN_TYPE, guids.CERT_X509_SHA384]
    assert [(i, j) for i, j, _sl, _e in db.entries()] == [
        (0, 0),
        (1, 0),
        (1, 1),
        (2, 0),
        (2, 1),
        (3, 0),
        (4, 0),
    ]
    # What edk2's CheckSignatureListFormat would refuse: the unknown type, the header.
    problems = db.problems()
    assert [(p.offset, p.structure) for p in problems] == [
        (db.lists[2].offset, "EFI_SIGNATURE_LIST[2]"),
        (db.lists[4].offset + 20, "EFI_SIGNATURE_LIST[4]"),
    ]
    assert SignatureDatabase.parse(esl("hashes.esl")).problems() == []


def test_empty_database() -> None:
    db = SignatureDatabase.parse(b"")
    assert db.is_empty and db.count == 0 and db.to_bytes() == b"" and db.types() == []
    assert db == SignatureDatabase()


def test_equality_ignores_offsets() -> None:
    data = esl("hashes.esl")
    assert SignatureDatabase.parse(data, base=0) == SignatureDatabase.parse(data, base=99)


@pytest.mark.parametrize(
    ("name", "error", "offset", "message"),
    [
        ("bad-sigsize.esl", SignatureFormatError, 24, "SignatureSize 47"),
        ("bad-listsize-small.esl", SignatureFormatError, 16, "smaller than the 28-byte"),
        ("bad-listsize-overflow.esl", SignatureFormatError, 16, "does not fit"),
        ("bad-headersize.esl", SignatureFormatError, 20, "SignatureHeaderSize"),
        ("bad-body.esl", SignatureFormatError, 28, "not a multiple of SignatureSize 20"),
        ("truncated.esl", TruncatedError, 0xAC, "needs 28 bytes"),
    ],
)
def test_malformed_lists(name: str, error: type[ParseError], offset: int, message: str) -> None:
    with pytest.raises(error, match=message) as info:
        SignatureDatabase.parse(esl(name), base=0x200)
    assert type(info.value) is error
    assert info.value.offset == 0x200 + offset
    assert info.value.structure is not None
    assert info.value.structure.startswith("EFI_SIGNATURE_LIST[")


def test_zero_signature_size_for_unknown_type() -> None:
    raw = bytearray(SignatureList(UNKNOWN_TYPE, 16, ()).to_bytes())
    struct.pack_into("<I", raw, 24, 0)
    with pytest.raises(SignatureFormatError, match="SignatureSize 0") as info:
        SignatureDatabase.parse(bytes(raw))
    assert info.value.offset == 24


def test_not_der_x509_entry_is_kept() -> None:
    db = SignatureDatabase.parse(esl("not-der-x509.esl"))
    entry = db.lists[0].entries[0]
    assert entry.data == b"\x5a" * 40 and entry.data_offset == 44
    assert db.certificates() == [b"\x5a" * 40]


@given(st.binary(max_size=400))
@settings(max_examples=400)
def test_parse_fuzz_raises_only_parse_errors(data: bytes) -> None:
    try:
        db = SignatureDatabase.parse(data)
    except ParseError:
        return
    assert db.to_bytes() == data


@given(st.data())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_lists_raise_only_parse_errors(data: st.DataObject) -> None:
    raw = bytearray(esl(data.draw(st.sampled_from(GOOD_ESL))))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    try:
        db = SignatureDatabase.parse(bytes(raw[:cut]))
    except ParseError:
        return
    assert db.to_bytes() == bytes(raw[:cut])


entries_strategy = st.lists(
    st.tuples(
        st.sampled_from([guids.CERT_SHA256, guids.CERT_SHA1, guids.CERT_X509, UNKNOWN_TYPE]),
        st.sampled_from([OWNER, guids.MICROSOFT, guids.NIL]),
        st.integers(0, 5),
    ),
    max_size=12,
)


def build(entries: list[tuple[uuid.UUID, uuid.UUID, int]]) -> SignatureDatabase:
    db = SignatureDatabase()
    for sig_type, owner, n in entries:
        if sig_type == guids.CERT_X509:
            db = db.add_certificate(b"\x30\x03cert%d" % n, owner)
        elif sig_type == UNKNOWN_TYPE:
            db = db.add_list(SignatureList(UNKNOWN_TYPE, 20, (SignatureData(owner, b"%4d" % n),)))
        else:
            size = 20 if sig_type == guids.CERT_SHA1 else 32
            db = db.add_hash(hashlib.sha256(b"%d" % n).digest()[:size], owner)
    return db


@given(entries_strategy)
def test_built_databases_round_trip(entries: list[tuple[uuid.UUID, uuid.UUID, int]]) -> None:
    db = build(entries)
    again = SignatureDatabase.parse(db.to_bytes())
    assert again == db
    # Built databases carry the offsets to_bytes gives them.
    assert [e.offset for _i, _j, _s, e in again.entries()] == [
        e.offset for _i, _j, _s, e in db.entries()
    ]


# -- building, against efitools and sbsigntool ---------------------------------------------


def test_add_certificate_matches_cert_to_efi_sig_list_fixture() -> None:
    der = (SIGDB / "db.der").read_bytes()
    ours = SignatureDatabase().add_certificate(der, OWNER).to_bytes()
    assert ours == esl("db-efitools.esl")


def test_add_certificate_matches_cert_to_efi_sig_list_live(tmp_path: Path) -> None:
    need_tool("cert-to-efi-sig-list")
    owner = uuid.uuid4()
    for name in ("kek-ca", "ec-kek", "pk"):
        out = tmp_path / f"{name}.esl"
        run("cert-to-efi-sig-list", "-g", owner, SIGDB / f"{name}.pem", out)
        der = (SIGDB / f"{name}.der").read_bytes()
        assert SignatureDatabase().add_certificate(der, owner).to_bytes() == out.read_bytes()
    # Without -g efitools writes the nil owner: identical modulo owner.
    out = tmp_path / "nil.esl"
    run("cert-to-efi-sig-list", SIGDB / "db.pem", out)
    nil = SignatureDatabase.parse(out.read_bytes())
    assert nil.lists[0].entries[0].owner == guids.NIL
    assert nil.lists[0].entries[0].data == (SIGDB / "db.der").read_bytes()


def test_sig_list_to_certs_reads_what_we_write(tmp_path: Path) -> None:
    need_tool("sig-list-to-certs")
    ders = [(SIGDB / f"{n}.der").read_bytes() for n in ("db", "kek-ca", "ec-kek")]
    db = SignatureDatabase()
    for der in ders:
        db = db.add_certificate(der, OWNER)
    db = db.add_hash(sha(1), OWNER)
    path = tmp_path / "ours.esl"
    path.write_bytes(db.to_bytes())
    run("sig-list-to-certs", path, tmp_path / "cert")
    for i, der in enumerate(ders):
        assert (tmp_path / f"cert-{i}.der").read_bytes() == der


def test_sbsiglist_agrees(tmp_path: Path) -> None:
    need_tool("sbsiglist")
    owner = uuid.uuid4()
    der_path = SIGDB / "kek.der"
    out = tmp_path / "x509.esl"
    run("sbsiglist", "--owner", owner, "--type", "x509", "--output", out, der_path)
    assert SignatureDatabase().add_certificate(der_path.read_bytes(), owner).to_bytes() == (
        out.read_bytes()
    )
    digest_path = tmp_path / "digest.bin"
    digest_path.write_bytes(sha(7))
    run("sbsiglist", "--owner", owner, "--type", "sha256", "--output", out, digest_path)
    assert SignatureDatabase().add_hash(sha(7), owner).to_bytes() == out.read_bytes()


def test_add_hash_matches_hash_to_efi_sig_list(tmp_path: Path) -> None:
    need_tool("hash-to-efi-sig-list")
    from fwtools.formats.pe.authenticode import authenticode_digests
    from fwtools.formats.pe.image import PeImage

    images = [REPO / "testdata" / "sample" / n for n in ("hello-nx.efi", "legacy-wx.efi")]
    out = tmp_path / "hashes.esl"
    run("hash-to-efi-sig-list", *images, out)
    db = SignatureDatabase()
    for image in images:
        digest = authenticode_digests(PeImage.open(image), ("sha256",))["sha256"]
        db = db.add_hash(digest, guids.SHIM_LOCK)  # efitools' fixed owner
    # One list holding both hashes, as efitools writes it.
    assert len(db.lists) == 1
    assert db.to_bytes() == out.read_bytes()


def test_x509_hash_entries_match_cert_to_efi_hash_list(tmp_path: Path) -> None:
    from asn1crypto import x509

    der = (SIGDB / "db.der").read_bytes()
    tbs = x509.Certificate.load(der)["tbs_certificate"].dump()
    fixture = SignatureDatabase.parse(esl("x509-sha256-efitools.esl"))
    entry = fixture.lists[0].entries[0]
    digest, when = x509_hash_entry(entry.data)
    assert digest == hashlib.sha256(tbs).digest()
    assert when == EfiTime(2024, 1, 2, 3, 4, 5)
    ours = SignatureDatabase().add_x509_hash(digest, OWNER, when)
    assert ours.to_bytes() == esl("x509-sha256-efitools.esl")

    need_tool("cert-to-efi-hash-list")
    for bits in (384, 512):
        out = tmp_path / f"{bits}.esl"
        run("cert-to-efi-hash-list", "-g", OWNER, "-s", str(bits), SIGDB / "db.pem", out)
        expected = hashlib.new(f"sha{bits}", tbs).digest()
        ours = SignatureDatabase().add_x509_hash(expected, OWNER)  # zero time: always
        assert ours.to_bytes() == out.read_bytes()


def test_add_hash_types_and_placement() -> None:
    db = SignatureDatabase().add_hash(sha(1), OWNER).add_hash(sha(2), OWNER)
    assert len(db.lists) == 1 and db.count == 2
    db = db.add_hash(hashlib.sha384(b"").digest(), OWNER).add_hash(sha(3), OWNER)
    assert [sl.type_name for sl in db.lists] == ["EfiCertSha256", "EfiCertSha384", "EfiCertSha256"]
    db = db.add_hash(sha(4), OWNER, guids.CERT_X509_SHA256)
    assert db.lists[-1].signature_type == guids.CERT_X509_SHA256
    assert x509_hash_entry(db.lists[-1].entries[0].data) == (sha(4), EfiTime.zero())
    with_header = SignatureDatabase((SignatureList(guids.CERT_SHA256, 48, (), b"H"),))
    assert len(with_header.add_hash(sha(1), OWNER).lists) == 2  # never joins a header list
    for length, name in (
        (20, "EfiCertSha1"),
        (28, "EfiCertSha224"),
        (32, "EfiCertSha256"),
        (48, "EfiCertSha384"),
        (64, "EfiCertSha512"),
    ):
        assert guids.guid_name(hash_type_for(length)) == name
    with pytest.raises(UsageError):
        hash_type_for(33)
    with pytest.raises(UsageError):
        SignatureDatabase().add_hash(sha(1), OWNER, guids.CERT_X509)
    with pytest.raises(UsageError):
        SignatureDatabase().add_hash(sha(1), OWNER, guids.CERT_SHA384)
    with pytest.raises(UsageError):
        SignatureDatabase().add_x509_hash(b"x" * 20, OWNER)
    with pytest.raises(UsageError):
        SignatureDatabase().add_certificate(b"", OWNER)


def test_x509_hash_entry_too_short() -> None:
    with pytest.raises(SignatureFormatError):
        x509_hash_entry(bytes(16))


# -- editing -------------------------------------------------------------------------------


def test_remove_family() -> None:
    db = SignatureDatabase.parse(esl("mixed.esl"))
    der = db.lists[0].entries[0].data
    fewer, n = db.remove_certificate(der)
    assert n == 1 and fewer.count == 6 and fewer.types()[0] == guids.CERT_SHA256
    fewer, n = db.remove_hash(db.lists[1].entries[0].data)
    assert n == 1 and fewer.count == 6
    tbs, _when = x509_hash_entry(db.lists[3].entries[0].data)
    fewer, n = db.remove_hash(tbs)  # a TBS hash, whatever the revocation time
    assert n == 1 and guids.CERT_X509_SHA384 not in fewer.types()
    fewer, n = db.remove_owner(guids.MICROSOFT)
    assert n == 1 and fewer.count == 6
    fewer, n = db.remove(lambda sl, _e: sl.signature_type == guids.CERT_SHA256)
    assert n == 3
    # Emptied lists go, the list that was empty from the start stays.
    assert [sl.type_name for sl in fewer.lists] == [
        "EfiCertX509",
        str(UNKNOWN_TYPE),
        "EfiCertX509Sha384",
        "EfiCertSha256",
    ]
    same, n = db.remove(lambda _sl, _e: False)
    assert n == 0 and same is db
    # Offsets follow the new layout.
    again = SignatureDatabase.parse(fewer.to_bytes())
    assert [e.offset for *_x, e in again.entries()] == [e.offset for *_x, e in fewer.entries()]


def test_dedupe_and_merge() -> None:
    dup = SignatureDatabase.parse(esl("duplicates.esl"))
    assert dup.count == 7
    unique, dropped = dup.dedupe()
    assert dropped == 2 and unique.count == 5
    assert [len(sl.entries) for sl in unique.lists] == [3, 1, 1]
    assert unique.dedupe() == (unique, 0)
    hashes = SignatureDatabase.parse(esl("hashes.esl"))
    merged = hashes.merge(dup)
    assert len(set(keys(merged))) == merged.count
    assert set(keys(merged)) == set(keys(hashes)) | set(keys(dup))
    assert keys(merged)[: hashes.count] == keys(hashes)  # order kept, self first
    assert SignatureDatabase().merge(hashes) == hashes
    # Same data, different owner: both kept.
    a = db_of((guids.CERT_SHA256, OWNER, sha(1)))
    b = db_of((guids.CERT_SHA256, guids.MICROSOFT, sha(1)))
    assert a.merge(b).count == 2 and a.merge(a).count == 1


def test_canonical_is_deterministic() -> None:
    mixed = SignatureDatabase.parse(esl("mixed.esl"))
    dup = SignatureDatabase.parse(esl("duplicates.esl"))
    whole = mixed.merge(dup).merge(SignatureDatabase.parse(esl("kek.esl")))
    canon = whole.canonical()
    assert canon.canonical() == canon
    assert sorted(keys(canon), key=repr) == sorted(set(keys(whole)), key=repr)
    rng = random.Random(5)
    for _ in range(5):
        lists = list(whole.lists)
        rng.shuffle(lists)
        shuffled = SignatureDatabase(
            tuple(sl.with_entries(rng.sample(sl.entries, len(sl.entries))) for sl in lists)
        )
        assert shuffled.canonical().to_bytes() == canon.to_bytes()
    # X509 first, one certificate per list, ordered by DER; one list per hash type/header.
    order = [sl.signature_type for sl in canon.lists]
    ranks = [CANONICAL_TYPE_ORDER.index(t) if t in CANONICAL_TYPE_ORDER else 99 for t in order]
    assert ranks == sorted(ranks)
    x509 = [sl for sl in canon.lists if sl.is_x509]
    assert all(len(sl.entries) == 1 for sl in x509) and len(x509) == 3
    assert [sl.entries[0].data for sl in x509] == sorted(sl.entries[0].data for sl in x509)
    sha256 = [sl for sl in canon.lists if sl.signature_type == guids.CERT_SHA256]
    assert [sl.header for sl in sha256] == [b"", b"HDR!"]
    data = [e.data for e in sha256[0].entries]
    assert data == sorted(data)


def test_append_write_rules() -> None:
    stored = db_of(
        (guids.CERT_SHA256, OWNER, sha(1)),
        (guids.CERT_SHA256, OWNER, sha(2)),
    )
    incoming = SignatureDatabase(
        (
            SignatureList(
                guids.CERT_SHA256,
                48,
                (
                    SignatureData(OWNER, sha(1)),  # already stored: dropped
                    SignatureData(guids.MICROSOFT, sha(2)),  # other owner: kept
                    SignatureData(OWNER, sha(3)),
                    SignatureData(OWNER, sha(3)),  # duplicate within incoming: kept
                ),
            ),
            SignatureList(guids.CERT_SHA256, 48, (SignatureData(OWNER, sha(2)),)),  # all gone
            SignatureList(guids.CERT_X509_SHA256, 64, (SignatureData(OWNER, sha(1) + bytes(16)),)),
            SignatureList(guids.CERT_SHA256, 48, (SignatureData(OWNER, sha(4)),), header=b"HH"),
        )
    )
    after = stored.append_write(incoming)
    assert after.lists[:2] == stored.lists  # stored data untouched, nothing merged into it
    added = after.lists[2:]
    assert [[e.data for e in sl.entries] for sl in added] == [
        [sha(2), sha(3), sha(3)],
        [sha(1) + bytes(16)],
        [sha(4)],
    ]
    assert added[2].header == b"HH"
    assert after.to_bytes().startswith(stored.to_bytes())
    # Nothing stored: the data is stored as it comes.
    assert SignatureDatabase().append_write(incoming) == incoming


def filter_signature_list(
    stored: SignatureDatabase, incoming: SignatureDatabase
) -> list[tuple[uuid.UUID, int, bytes]]:
    """The surviving incoming entries by edk2's rule, as a list of (type, size, bytes)."""
    have = {
        (sl.signature_type, sl.signature_size, e.to_bytes()) for _i, _j, sl, e in stored.entries()
    }
    return [
        (sl.signature_type, sl.signature_size, e.to_bytes())
        for _i, _j, sl, e in incoming.entries()
        if (sl.signature_type, sl.signature_size, e.to_bytes()) not in have
    ]


@pytest.mark.parametrize("store", corpus_files("*/amd64/ovmf/usr/share/OVMF/OVMF_VARS_4M.ms.fd"))
def test_append_dbx_update_onto_ovmf_dbx(store: Path | None, ms_corpus: MsCorpus) -> None:
    dbx_var = variables(need(store))["dbx"]
    stored = SignatureDatabase.parse(dbx_var.data, base=dbx_var.data_offset)
    total = stored
    for update in (
        "dbx/amd64/DBXUpdate.bin",
        "dbx/optional/DBXUpdate2024.bin",
        "dbx/optional/DBXUpdateSVN.bin",
        "dbx/x86/DBXUpdate.bin",
    ):
        auth = AuthVariable2.parse((ms_corpus.root / update).read_bytes())
        incoming = SignatureDatabase.parse(auth.payload, base=auth.payload_offset)
        survivors = filter_signature_list(total, incoming)
        after = total.append_write(incoming)
        assert after.count - total.count == len(survivors)
        assert after.to_bytes().startswith(total.to_bytes())
        added = SignatureDatabase(after.lists[len(total.lists) :])
        assert [
            (sl.signature_type, sl.signature_size, e.to_bytes())
            for _i, _j, sl, e in added.entries()
        ] == survivors
        # Applying the same update again adds nothing.
        assert after.append_write(incoming) == after
        total = after
    amd64 = SignatureDatabase.parse(
        AuthVariable2.parse((ms_corpus.root / "dbx/amd64/DBXUpdate.bin").read_bytes()).payload
    )
    x86 = SignatureDatabase.parse(
        AuthVariable2.parse((ms_corpus.root / "dbx/x86/DBXUpdate.bin").read_bytes()).payload
    )
    # OVMF's dummy, then all of amd64 (443), DBXUpdate2024 (1 certificate + 3 SVN entries at
    # version 2.0), DBXUpdateSVN (the same applications at newer versions: 3 more entries,
    # nothing replaced), all of x86 (no hash in common with amd64).
    assert stored.count == 1 and amd64.count == 443 and x86.count == 45
    assert total.count == 1 + 443 + 4 + 3 + 45

    # A dbx that already holds part of the update (an older one, as one list): only the
    # rest is appended, as one new list.
    older = stored.add_list(amd64.lists[0].with_entries(amd64.lists[0].entries[:100]))
    after = older.append_write(amd64)
    assert after.count == older.count + 343
    assert after.lists[-1].entries == amd64.lists[0].entries[100:]


# -- real lists ----------------------------------------------------------------------------


MS_UPDATES = sorted(
    [f"dbx/{a}/DBXUpdate.bin" for a in ("amd64", "x86", "arm64", "arm")]
    + [f"dbx/optional/{n}.bin" for n in ("DBXUpdate2024", "DBXUpdateSVN")]
    + [f"db/amd64/{n}.bin" for n in ("DBUpdate2024", "DBUpdate3P2023", "DBUpdateOROM2023")]
    + [f"kek/KEKUpdate_Microsoft_PK{n}.bin" for n in (1, 2, 3)]
)


@pytest.mark.parametrize("relpath", MS_UPDATES)
def test_microsoft_payloads_round_trip(relpath: str, ms_corpus: MsCorpus) -> None:
    auth = AuthVariable2.parse((ms_corpus.root / relpath).read_bytes())
    db = SignatureDatabase.parse(auth.payload, base=auth.payload_offset)
    assert db.to_bytes() == auth.payload
    assert db.problems() == []
    assert db.lists[0].offset == auth.payload_offset
    owners = {e.owner for *_x, e in db.entries()}
    assert owners <= {guids.MICROSOFT, guids.MICROSOFT_SVN}


def test_microsoft_dbx_matches_published_json(ms_corpus: MsCorpus) -> None:
    info = json.loads((ms_corpus.root / "dbx/dbx_info_msft_latest.json").read_text())
    schema = json.loads((ms_corpus.root / "dbx/HashesJsonSchema.json").read_text())
    assert set(info["images"]) <= set(schema["properties"]["images"]["properties"])
    for arch, json_arch in (
        ("amd64", "x64"),
        ("x86", "ia32"),
        ("arm64", "aarch64"),
        ("arm", "arm"),
    ):
        auth = AuthVariable2.parse((ms_corpus.root / f"dbx/{arch}/DBXUpdate.bin").read_bytes())
        db = SignatureDatabase.parse(auth.payload)
        assert db.types() == [guids.CERT_SHA256]
        ours = {e.data for *_x, e in db.entries()}
        published = {
            bytes.fromhex(i["authenticodeHash"])
            for i in info["images"][json_arch]
            if i["hashType"] == "SHA256"
        }
        assert len(ours) == db.count
        # Every hash in the signed update is published for that architecture; amd64, arm64
        # and arm are exactly the published lists, x86's update carries a subset of ia32.
        assert ours <= published, arch
        if arch != "x86":
            assert ours == published, arch
    assert len(info["images"]["x64"]) == 443


def test_microsoft_svn_entries_match_json(ms_corpus: MsCorpus) -> None:
    info = json.loads((ms_corpus.root / "dbx/dbx_info_msft_latest.json").read_text())
    auth = AuthVariable2.parse((ms_corpus.root / "dbx/optional/DBXUpdateSVN.bin").read_bytes())
    db = SignatureDatabase.parse(auth.payload)
    entries = [e for *_x, e in db.entries()]
    assert {e.owner for e in entries} == {guids.MICROSOFT_SVN}
    assert sorted(e.data.hex().upper() for e in entries) == sorted(
        s["value"].upper() for s in info["svns"]
    )
    for published in info["svns"]:
        entry = svn_entry(bytes.fromhex(published["value"]))
        app = uuid.UUID(published["guid"].split("}")[0].strip("{ "))
        assert entry.application == app and entry.version == 1
        major, minor = (int(x) for x in published["version"].split("."))
        assert (entry.major, entry.minor) == (major, minor)


VARSTORES = corpus_files(
    "*/amd64/ovmf/usr/share/OVMF/OVMF_VARS*.ms.fd",
    "*/amd64/ovmf/usr/share/OVMF/OVMF_VARS*.snakeoil.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.ms.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.snakeoil.fd",
)


@pytest.mark.parametrize("store", VARSTORES)
def test_varstore_databases_round_trip(store: Path | None, ms_corpus: MsCorpus) -> None:
    path = need(store)
    found = variables(path)
    dbs = {}
    for name in ("PK", "KEK", "db", "dbx"):
        var = found[name]
        assert var.attributes == 0x27
        db = SignatureDatabase.parse(var.data, base=var.data_offset)
        assert db.to_bytes() == var.data
        assert db.problems() == []
        dbs[name] = db
    # EnrollDefaultKeys: PK is one certificate owned by EFI_GLOBAL_VARIABLE; the dbx holds
    # only the dummy SHA-256 of nothing, owned by OvmfEnrollDefaultKeys.
    assert dbs["PK"].count == 1 and dbs["PK"].types() == [guids.CERT_X509]
    assert dbs["PK"].lists[0].entries[0].owner == guids.EFI_GLOBAL_VARIABLE
    dummy = dbs["dbx"].lists[0].entries[0]
    assert dbs["dbx"].count == 1 and dummy.data == hashlib.sha256(b"").digest()
    assert dummy.owner == guids.OVMF_ENROLL_DEFAULT_KEYS
    kek_owners = [e.owner for *_x, e in dbs["KEK"].entries()]
    assert kek_owners[0] == guids.OVMF_ENROLL_DEFAULT_KEYS
    if ".ms." in path.name:
        certs = ms_corpus.root / "certs"
        assert (
            dbs["KEK"].certificates()[1]
            == (certs / "kek/MicCorKEKCA2011_2011-06-24.der").read_bytes()
        )
        assert dbs["db"].certificates() == [
            (certs / "db/MicWinProPCA2011_2011-10-19.der").read_bytes(),
            (certs / "db/MicCorUEFCA2011_2011-06-27.der").read_bytes(),
        ]
        assert {e.owner for *_x, e in dbs["db"].entries()} == {guids.MICROSOFT}


SHIMS = corpus_files(
    "*/*/shim-signed/usr/lib/shim/shim*.efi.signed", "*/amd64/shim-unsigned/usr/lib/shim/shim*.efi"
)


@pytest.mark.parametrize("path", SHIMS)
def test_shim_vendor_dbx_round_trips(path: Path | None) -> None:
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.shim_sections import CERT_TABLE

    img = PeImage.open(need(path))
    section = img.section(".vendor_cert")
    assert section is not None
    raw = img.section_data(section)
    _cert_size, dbx_size, _cert_off, dbx_off = CERT_TABLE.unpack_from(raw)
    dbx_bytes = raw[dbx_off : dbx_off + dbx_size]
    db = SignatureDatabase.parse(dbx_bytes, base=section.raw_offset + dbx_off)
    assert db.to_bytes() == dbx_bytes
    assert db.count > 100 and db.types() == [guids.CERT_SHA256]
    owners = {e.owner for *_x, e in db.entries()}
    # Debian's shim 15.8 (bookworm) and 16.1 (trixie) use different owners.
    assert owners in ({guids.RED_HAT_2}, {guids.DEBIAN_SHIM_DBX})
    assert all(guids.guid_name(o) for o in owners)
