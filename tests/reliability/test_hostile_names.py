"""Names taken from inputs never become unsafe file names (issue 8, security review).

The only places where input data names a file are the certificate extractors:
``fw-sigdb extract-certs`` (fwtools/crypto/sigdb_extract.py) and ``pe-inspect
--extract-certs`` (fwtools/policy/pe_extract.py). Both build ``<input file name>.<indices>.
<slug of the subject CN>.<ext>`` with :func:`fwtools.crypto.x509info.filename_slug`. These
tests feed certificates whose CN is hostile (path separators, ``..``, NUL, a leading dot or
dash, 4000 characters, control and bidi characters) and check that every file lands directly
in the output directory under a bounded, portable name, that nothing outside it changes, and
that a symlink planted in the output directory is replaced, not followed.
"""

from __future__ import annotations

import datetime
import re
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fwtools.cli.fw_sigdb import cli as fw_sigdb
from fwtools.cli.pe_inspect import pe_inspect
from fwtools.crypto.x509info import filename_slug

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PE = REPO / "testdata/sample/hello-nx.efi"
SIGNED_PE = REPO / "testdata/sample/hello-nx.signed.efi"

HOSTILE_CNS = [
    "../../../../tmp/evil",
    "/etc/passwd",
    "..",
    ".",
    ".bashrc",
    "-rf --no-preserve-root",
    "a\x00b",
    "x" * 4000,
    "dir\\..\\win",
    "\u202etxt.exe",  # right-to-left override
    "line\nbreak\ttab",
    "CN=inner,O=..",
    "~",
    "",
]
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@pytest.mark.parametrize("cn", HOSTILE_CNS, ids=lambda c: repr(c)[:30])
def test_filename_slug(cn: str) -> None:
    slug = filename_slug(f"CN={cn},O=x" if cn else "O=x")
    assert SAFE_NAME.match(slug), slug
    assert not slug.startswith((".", "-")) and not slug.endswith(".")
    assert len(slug) <= 60


def _cert(cn: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    # _validate=False: cryptography refuses a CN over 64 characters, an input may not.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or "x", _validate=False)])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))


@pytest.fixture(scope="module")
def hostile_certs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("hostile")
    key = ec.generate_private_key(ec.SECP256R1())
    paths = []
    for i, cn in enumerate(HOSTILE_CNS):
        p = d / f"c{i}.der"
        p.write_bytes(_cert(cn, key).public_bytes(serialization.Encoding.DER))
        paths.append(p)
    return paths


def _check_outdir(out: Path, outside: Path, snapshot: dict[str, bytes]) -> list[Path]:
    files = list(out.iterdir())
    for f in files:
        assert f.parent == out and f.is_file() and not f.is_symlink(), f
        assert SAFE_NAME.match(f.name), f.name
        assert not f.name.startswith(("-", ".")), f.name
        assert len(f.name.encode()) <= 255
    now = {str(p): p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    assert now == snapshot, "a file outside the output directory changed"
    return files


@pytest.mark.filterwarnings("ignore:Attribute.s length:UserWarning")
def test_sigdb_extract_certs_with_hostile_subjects(hostile_certs: list[Path],
                                                   tmp_path: Path) -> None:
    esl = tmp_path / "hostile.esl"
    args = ["create", "-o", str(esl)]
    for p in hostile_certs:
        args += ["--cert", str(p)]
    result = CliRunner().invoke(fw_sigdb, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil").write_bytes(b"keep")
    out = tmp_path / "out"
    out.mkdir()
    # A planted symlink with the name the first certificate will get: replaced, not followed.
    first = f"hostile.esl.0.0.{filename_slug('CN=' + HOSTILE_CNS[0])}.pem"
    (out / first).symlink_to(outside / "evil")
    snapshot = {str(p): p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    result = CliRunner().invoke(fw_sigdb, ["extract-certs", str(out), str(esl)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    files = _check_outdir(out, outside, snapshot)
    assert len(files) == len(HOSTILE_CNS)
    assert not (out / first).is_symlink()
    assert not (tmp_path / "tmp").exists() and not Path("/tmp/evil.pem").exists()


def _signed_pe(cert: x509.Certificate) -> bytes:
    """hello-nx.efi with the Authenticode PKCS#7 of hello-nx.signed.efi whose certificate
    bag is replaced by ``cert`` (the signature no longer verifies: the extractor must still
    name the certificate safely)."""
    from asn1crypto import cms
    from asn1crypto import x509 as asn1_x509

    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.wincert import certificate_entries

    signed = PeImage(SIGNED_PE.read_bytes())
    info = cms.ContentInfo.load(certificate_entries(signed)[0].content)
    info["content"]["certificates"] = [
        asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))]
    p7 = info.dump(force=True)
    data = bytearray(SAMPLE_PE.read_bytes())
    data += bytes(-len(data) % 8)
    entry = struct.pack("<IHH", 8 + len(p7), 0x0200, 0x0002) + p7
    entry += bytes(-len(entry) % 8)
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    opt = pe + 24
    magic = struct.unpack_from("<H", data, opt)[0]
    dirs = opt + (96 if magic == 0x10B else 112)
    struct.pack_into("<II", data, dirs + 4 * 8, len(data), len(entry))
    return bytes(data + entry)


@pytest.mark.filterwarnings("ignore:Attribute.s length:UserWarning")
def test_pe_inspect_extract_certs_with_hostile_subjects(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.pem").write_bytes(b"keep")
    images = []
    for i, cn in enumerate(HOSTILE_CNS):
        img = tmp_path / f"img{i}.efi"
        img.write_bytes(_signed_pe(_cert(cn, key)))
        images.append(str(img))
    snapshot = {str(p): p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    result = CliRunner().invoke(pe_inspect, ["--extract-certs", str(out), *images],
                                catch_exceptions=False)
    assert "Traceback" not in result.output
    files = _check_outdir(out, outside, snapshot)
    pems = [f for f in files if f.suffix == ".pem"]
    assert len(pems) == len(HOSTILE_CNS), sorted(f.name for f in files)
