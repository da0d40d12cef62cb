"""What the fixture scripts in testdata/ share: PE/COFF headers, the test PKI, the signing
tools, and fixture directories described by a MANIFEST.json.

Independent of fwtools on purpose, like the scripts: the fixtures are oracles for fwtools'
parsers, so they are written from the specifications (Microsoft PE Format; RFC 5280) rather
than with the code under test. Only make_sigdb_fixtures.py uses fwtools itself, to make the
files fwtools is the writer of.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# --- PE/COFF (Microsoft PE Format specification) -------------------------------------------

FILE_ALIGNMENT: Final = 0x200
SECTION_ALIGNMENT: Final = 0x1000

IMAGE_FILE_MACHINE_AMD64: Final = 0x8664
IMAGE_FILE_EXECUTABLE_IMAGE: Final = 0x0002
IMAGE_FILE_LARGE_ADDRESS_AWARE: Final = 0x0020
IMAGE_FILE_DEBUG_STRIPPED: Final = 0x0200
PE32PLUS_MAGIC: Final = 0x20B
IMAGE_SUBSYSTEM_EFI_APPLICATION: Final = 10
DLLCHAR_DYNAMIC_BASE: Final = 0x0040
DLLCHAR_NX_COMPAT: Final = 0x0100

SCN_CNT_CODE: Final = 0x00000020
SCN_CNT_INITIALIZED_DATA: Final = 0x00000040
SCN_CNT_UNINITIALIZED_DATA: Final = 0x00000080
SCN_MEM_DISCARDABLE: Final = 0x02000000
SCN_MEM_EXECUTE: Final = 0x20000000
SCN_MEM_READ: Final = 0x40000000
SCN_MEM_WRITE: Final = 0x80000000

IMAGE_DIRECTORY_ENTRY_SECURITY: Final = 4
IMAGE_DIRECTORY_ENTRY_BASERELOC: Final = 5
NUMBER_OF_RVA_AND_SIZES: Final = 16

PE_SIGNATURE: Final = b"PE\0\0"
E_LFANEW_FIELD: Final = 0x3C  # IMAGE_DOS_HEADER.e_lfanew
COFF_HEADER: Final = struct.Struct("<HHIIIHH")  # IMAGE_FILE_HEADER, 20 bytes
# IMAGE_OPTIONAL_HEADER64 up to NumberOfRvaAndSizes, 112 bytes; the data directories follow.
OPTIONAL_HEADER64: Final = struct.Struct("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII")
DATA_DIRECTORY: Final = struct.Struct("<II")
OPTIONAL_HEADER64_SIZE: Final = (
    OPTIONAL_HEADER64.size + NUMBER_OF_RVA_AND_SIZES * DATA_DIRECTORY.size
)  # 240
SECTION_HEADER: Final = struct.Struct("<8sIIIIIIHHI")  # IMAGE_SECTION_HEADER, 40 bytes
# Offsets from the start of the optional header.
CHECKSUM_FIELD: Final = 64
DATA_DIRECTORIES_FIELD: Final = OPTIONAL_HEADER64.size


def align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def dos_header(e_lfanew: int) -> bytes:
    """The smallest IMAGE_DOS_HEADER: "MZ", zeros, and e_lfanew (``e_lfanew`` bytes long,
    so the PE signature follows it directly)."""
    dos = bytearray(e_lfanew)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, E_LFANEW_FIELD, e_lfanew)
    return bytes(dos)


def headers_length(e_lfanew: int, sections: int) -> int:
    """The end of the section table of a PE32+ image whose PE signature is at ``e_lfanew``
    (SizeOfHeaders before FileAlignment)."""
    return (e_lfanew + len(PE_SIGNATURE) + COFF_HEADER.size + OPTIONAL_HEADER64_SIZE
            + sections * SECTION_HEADER.size)  # fmt: skip


def coff_header(
    sections: int, *, symbol_table: int = 0, machine: int = IMAGE_FILE_MACHINE_AMD64
) -> bytes:
    """IMAGE_FILE_HEADER of an executable image (x86-64 unless ``machine``) with a PE32+
    optional header and ``sections`` sections (without the "PE\\0\\0" signature before it)."""
    return COFF_HEADER.pack(
        machine, sections, 0, symbol_table, 0, OPTIONAL_HEADER64_SIZE,
        IMAGE_FILE_EXECUTABLE_IMAGE | IMAGE_FILE_LARGE_ADDRESS_AWARE | IMAGE_FILE_DEBUG_STRIPPED,
    )  # fmt: skip


def optional_header64(
    *,
    entry: int,
    base_of_code: int,
    image_base: int,
    image_size: int,
    headers_size: int,
    code_size: int,
    initialized_data_size: int,
    uninitialized_data_size: int = 0,
    section_alignment: int = SECTION_ALIGNMENT,
    file_alignment: int = FILE_ALIGNMENT,
    dll_characteristics: int = DLLCHAR_NX_COMPAT | DLLCHAR_DYNAMIC_BASE,
    linker_version: tuple[int, int] = (2, 40),
    stack_and_heap: tuple[int, int, int, int] = (0x10000, 0x10000, 0x10000, 0x10000),
    directories: Mapping[int, tuple[int, int]] | None = None,
    subsystem: int = IMAGE_SUBSYSTEM_EFI_APPLICATION,
) -> bytes:
    """IMAGE_OPTIONAL_HEADER64 of an EFI application (or ``subsystem``) with its 16 data
    directories (all zero but ``directories``: index -> (RVA, size)). CheckSum is 0: see
    :func:`set_checksum`.
    OS, image and subsystem versions, Win32VersionValue and LoaderFlags are 0;
    ``stack_and_heap`` are SizeOfStackReserve/Commit, SizeOfHeapReserve/Commit."""
    head = OPTIONAL_HEADER64.pack(
        PE32PLUS_MAGIC, *linker_version, code_size, initialized_data_size,
        uninitialized_data_size, entry, base_of_code, image_base,
        section_alignment, file_alignment,
        0, 0, 0, 0, 0, 0, 0,
        image_size, headers_size, 0,
        subsystem, dll_characteristics,
        *stack_and_heap, 0, NUMBER_OF_RVA_AND_SIZES,
    )  # fmt: skip
    dirs = [(0, 0)] * NUMBER_OF_RVA_AND_SIZES
    for index, entry_value in (directories or {}).items():
        dirs[index] = entry_value
    return head + b"".join(DATA_DIRECTORY.pack(*d) for d in dirs)


def section_header(
    name: bytes, virtual_size: int, rva: int, raw_size: int, raw_pointer: int, flags: int
) -> bytes:
    """IMAGE_SECTION_HEADER (``name`` padded to 8 bytes, no relocations or line numbers)."""
    return SECTION_HEADER.pack(name, virtual_size, rva, raw_size, raw_pointer, 0, 0, 0, 0, flags)


def pe_checksum(image: bytes | bytearray, checksum_offset: int) -> int:
    """The PE CheckSum (imagehlp CheckSumMappedFile, as the Windows loader computes it): the
    16-bit one's-complement-style sum of the file with the CheckSum field taken as zero,
    folded to 16 bits, plus the file length."""
    buf = bytearray(image)
    buf[checksum_offset : checksum_offset + 4] = bytes(4)
    if len(buf) % 2:
        buf.append(0)
    total = 0
    for (word,) in struct.iter_unpack("<H", buf):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return (total + len(image)) & 0xFFFFFFFF


def set_checksum(image: bytearray) -> None:
    """Fill in the CheckSum of the PE32+ image (found through e_lfanew)."""
    (e_lfanew,) = struct.unpack_from("<I", image, E_LFANEW_FIELD)
    offset = e_lfanew + len(PE_SIGNATURE) + COFF_HEADER.size + CHECKSUM_FIELD
    struct.pack_into("<I", image, offset, pe_checksum(image, offset))


# WIN_CERTIFICATE (wintrust.h, UEFI 2.10 §32.2.4): dwLength, wRevision, wCertificateType.
WIN_CERTIFICATE: Final = struct.Struct("<IHH")
WIN_CERT_REVISION_2_0: Final = 0x0200
WIN_CERT_TYPE_PKCS_SIGNED_DATA: Final = 0x0002


def win_certificate(content: bytes, cert_type: int = WIN_CERT_TYPE_PKCS_SIGNED_DATA) -> bytes:
    """A revision 2.0 WIN_CERTIFICATE holding ``content`` (without alignment padding)."""
    header = WIN_CERTIFICATE.pack(WIN_CERTIFICATE.size + len(content), WIN_CERT_REVISION_2_0,
                                  cert_type)  # fmt: skip
    return header + content


def patched(data: bytes | bytearray, offset: int, fmt: str, value: int) -> bytearray:
    """A copy of ``data`` with ``value`` packed (``struct`` format ``fmt``) at ``offset``."""
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return out


# --- the test PKI --------------------------------------------------------------------------

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

NOT_BEFORE: Final = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NOT_AFTER: Final = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)
# KeyUsage of a CA (keyCertSign, cRLSign) and of a signer (digitalSignature).
CA_KEY_USAGE: Final = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip
SIGNER_KEY_USAGE: Final = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def load_or_make_key(
    path: Path,
    *,
    kind: str = "rsa",
    new: bool = False,
    private_format: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
) -> PrivateKey:
    """The key in ``path`` (PEM), or, when there is none or ``new``, a new one written there:
    RSA-2048 (the size UEFI's db certificates are required to support) or, for
    ``kind="ec"``, EC P-256. RSA keys cannot be generated from a seed, so they are made once
    and committed."""
    if path.is_file() and not new:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey), path
        return key
    made: PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(made.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    ))  # fmt: skip
    return made


def subject_name(cn: str) -> x509.Name:
    """``O=fwtools test, CN=<cn>``."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fwtools test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def certificate_builder(
    cn: str,
    serial: int,
    public_key: CertificatePublicKeyTypes,
    *,
    issuer: x509.Name | None = None,
    ca: bool,
    path_length: int | None = None,
    usage: bool = False,
) -> x509.CertificateBuilder:
    """A certificate for ``subject_name(cn)``, self-issued unless ``issuer``, valid from
    NOT_BEFORE to NOT_AFTER, with a critical BasicConstraints. With ``usage`` it also gets a
    critical KeyUsage (:data:`CA_KEY_USAGE` or :data:`SIGNER_KEY_USAGE`) and, a signer, the
    codeSigning EKU. Fixed fields and deterministic RSA signatures make the certificate
    byte-identical on every run; the caller adds other extensions and signs."""
    subject = subject_name(cn)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )
    if usage:
        builder = builder.add_extension(CA_KEY_USAGE if ca else SIGNER_KEY_USAGE, critical=True)
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
    return builder


def issue_cert(
    cn: str,
    serial: int,
    key: PrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: PrivateKey,
    *,
    ca: bool,
    usage: bool = False,
) -> x509.Certificate:
    """:func:`certificate_builder` for ``key``, issued by ``issuer`` (None: self-issued) and
    signed with ``issuer_key`` (SHA-256)."""
    builder = certificate_builder(
        cn, serial, key.public_key(), issuer=issuer.subject if issuer else None, ca=ca, usage=usage
    )
    return builder.sign(issuer_key, hashes.SHA256())


def write_cert(cert: x509.Certificate, stem: Path) -> Path:
    """Write ``stem.pem`` and ``stem.der``; the PEM path."""
    pem = stem.with_suffix(".pem")
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    stem.with_suffix(".der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return pem


# --- the tools -----------------------------------------------------------------------------


def require_tools(*tools: str, install: str) -> None:
    """Exit with a hint unless every tool is on PATH."""
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt-get install {install})")


def _run(cmd: tuple[object, ...]) -> subprocess.CompletedProcess[str]:
    # TZ=UTC: efitools read times given on the command line as local time.
    try:
        return subprocess.run(
            [str(c) for c in cmd], capture_output=True, text=True, errors="replace",
            check=False, env={**os.environ, "TZ": "UTC"},
        )  # fmt: skip
    except FileNotFoundError:
        sys.exit(f"{cmd[0]} not found")


def run(*cmd: object) -> str:
    """Run a tool; exit with its output when it fails, else return that output."""
    proc = _run(cmd)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def succeeds(*cmd: object) -> bool:
    """Whether a tool exits 0 (for checks that are expected to fail too)."""
    return _run(cmd).returncode == 0


def sbsign(
    image: Path, output: Path, *, key: Path, cert: Path, extra: tuple[str | Path, ...] = ()
) -> None:
    """Sign ``image`` into ``output`` with sbsign (Debian sbsigntool)."""
    run("sbsign", "--key", key, "--cert", cert, *extra, "--output", output, image)


def is_signed_copy(signed: Path, image: Path, cert: Path) -> bool:
    """True if ``signed`` is ``image`` plus a signature that sbverify accepts with ``cert``:
    stripping the signature (sbattach --remove) must give the image back."""
    if not signed.is_file() or not succeeds("sbverify", "--cert", cert, signed):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / "stripped.efi"
        shutil.copyfile(signed, stripped)
        run("sbattach", "--remove", stripped)
        return stripped.read_bytes() == image.read_bytes()


def sbsign_reproducibly(
    image: Path, output: Path, *, key: Path, cert: Path, previous: Path | None = None
) -> None:
    """sbsign ``image`` into ``output`` unless ``previous`` (default: ``output`` itself)
    already is that image signed with ``cert``: sbsign stamps a signingTime into the PKCS#7,
    so re-signing would change the committed fixture on every run."""
    previous = output if previous is None else previous
    if is_signed_copy(previous, image, cert):
        if previous != output:
            shutil.copyfile(previous, output)
        return
    output.unlink(missing_ok=True)
    sbsign(image, output, key=key, cert=cert)


# --- fixture directories -------------------------------------------------------------------


class FixtureDir:
    """A directory of small fixtures, each described in its MANIFEST.json by a line of text
    and its SHA-256."""

    def __init__(self, root: Path, *, max_size: int = 64 * 1024) -> None:
        self.root = root
        self.max_size = max_size
        self.what: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.what)

    def record(self, name: str, what: str) -> Path:
        """Describe ``name``, a fixture already in place (written by a tool, or kept)."""
        path = self.root / name
        size = path.stat().st_size
        if size >= self.max_size:
            sys.exit(f"{name}: {size} bytes is over the fixture limit")
        path.chmod(0o644)  # some tools create their output 0600
        self.what[name] = what
        return path

    def write(self, name: str, data: bytes | bytearray, what: str) -> Path:
        """Write the fixture ``name`` and describe it."""
        if len(data) >= self.max_size:
            sys.exit(f"{name}: {len(data)} bytes is over the fixture limit")
        (self.root / name).write_bytes(bytes(data))
        return self.record(name, what)

    def write_cert(self, name: str, cert: x509.Certificate) -> Path:
        """``name.pem`` (described) and ``name.der`` alongside; the PEM path."""
        self.root.joinpath(f"{name}.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
        return self.write(
            f"{name}.pem",
            cert.public_bytes(serialization.Encoding.PEM),
            f"test certificate {name} (PEM; .der alongside)",
        )

    def write_manifest(self) -> None:
        """MANIFEST.json: {name: {"sha256", "what"}} for every fixture described, by name."""
        manifest = {
            name: {"sha256": hashlib.sha256((self.root / name).read_bytes()).hexdigest(),
                   "what": what}
            for name, what in sorted(self.what.items())
        }  # fmt: skip
        text = json.dumps(manifest, indent=2) + "\n"
        (self.root / "MANIFEST.json").write_text(text, encoding="utf-8")
