"""Access to the real-world corpus for tests and benchmarks.

Two corpora:

- the Debian corpus, outside the repository, fetched by ``tests/corpus/fetch.sh`` into
  ``$FWTOOLS_CORPUS`` (default ``/var/cache/fwtools-corpus``): ``root/<suite>/<arch>/<package>/``
  is each package unpacked with ``dpkg-deb -x`` and ``manifest.tsv`` records what was fetched;
- Microsoft's published Secure Boot objects, kept in the repository in
  ``testdata/microsoft-secureboot-objects`` (provenance and licence beside them).

This module is plain Python with no pytest dependency, so ``benchmarks/`` can import it too;
the fixtures that skip (or fail, under ``FWTOOLS_REQUIRE_CORPUS=1``) live in
``tests/conftest.py``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

CORPUS_ENV: Final = "FWTOOLS_CORPUS"
REQUIRE_ENV: Final = "FWTOOLS_REQUIRE_CORPUS"

DEFAULT_CORPUS: Final = Path("/var/cache/fwtools-corpus")
REPO_ROOT: Final = Path(__file__).resolve().parents[2]
PACKAGES_TXT: Final = Path(__file__).resolve().with_name("packages.txt")
FETCH_HINT: Final = "run tests/corpus/fetch.sh"
# The peer tools (virt-firmware, python-uefivars), each in its own venv made by
# benchmarks/setup-peers.sh: oracles for the tests, the competition for the benchmarks.
PEERS_DIR: Final = Path(os.environ.get("FWTOOLS_BENCH_DIR", "/var/cache/fwtools-bench"))

SUITES: Final = ("bookworm", "trixie")
# Debian architecture -> the suffix EFI file names use (shimx64.efi, grubaa64.efi).
EFI_ARCH_SUFFIX: Final = {"amd64": "x64", "arm64": "aa64"}
# Debian architecture -> IMAGE_FILE_MACHINE_* of its EFI binaries.
MACHINE: Final = {"amd64": 0x8664, "arm64": 0xAA64}

# Bumped whenever EfiBinary or the scan changes, so an old on-disk cache is ignored.
_EFI_CACHE_VERSION: Final = 1
_EFI_CACHE_NAME: Final = "efi-binaries.json"

# Directories that hold thousands of files and never a PE image: kernel modules (ELF),
# device trees, documentation. Pruning them keeps the scan in the tens of milliseconds.
_PRUNE_DIRS: Final = frozenset(
    {"usr/share/doc", "usr/share/man", "usr/share/bug", "usr/share/lintian", "lib/modules",
     "usr/lib/modules"}
)
_SKIP_SUFFIXES: Final = (".mod", ".lst", ".dtb", ".dtbo", ".ko", ".ko.xz", ".gz")


class CorpusMissingError(Exception):
    """The corpus is absent or incomplete; the message says what to run."""


def require_corpus() -> bool:
    """True when a missing corpus must fail the run (CI) instead of skipping."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


def corpus_base() -> Path:
    return Path(os.environ.get(CORPUS_ENV) or DEFAULT_CORPUS)


def ms_corpus_base() -> Path:
    return REPO_ROOT / "testdata" / "microsoft-secureboot-objects"


@dataclass(frozen=True)
class Requested:
    """One line of packages.txt."""

    suite: str
    arch: str
    name: str
    meta: bool


def read_packages_txt(path: Path = PACKAGES_TXT) -> list[Requested]:
    out: list[Requested] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        out.append(Requested(fields[0], fields[1], fields[2], "meta" in fields[3:]))
    return out


@dataclass(frozen=True)
class Package:
    """One row of manifest.tsv: a package as fetched and unpacked."""

    suite: str
    arch: str
    name: str  # the real package, e.g. linux-image-6.1.0-50-amd64
    version: str
    sha256: str
    deb: str  # relative to the corpus base
    requested: str  # the packages.txt name, e.g. linux-image-amd64 (== name unless meta)
    root: Path  # the unpacked tree

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.arch}/{self.name}"


@dataclass(frozen=True)
class EfiBinary:
    """A PE/COFF image found in the corpus (EFI applications, signed or not, and kernels)."""

    path: Path
    suite: str
    arch: str
    package: str  # the real package name (directory under root/<suite>/<arch>/)
    relpath: str  # path inside the package, e.g. usr/lib/shim/shimx64.efi.signed
    machine: int  # IMAGE_FILE_MACHINE_* from the COFF header
    size: int

    @property
    def id(self) -> str:
        """Stable, readable test id: suite/arch/package/relpath."""
        return f"{self.suite}/{self.arch}/{self.package}/{self.relpath}"


def pe_machine(path: Path) -> int | None:
    """The COFF Machine of a PE image, or None when the file is not MZ + PE\\0\\0.

    Only the DOS header and the PE signature are read, because the scan touches every file.
    """
    try:
        with path.open("rb") as fh:
            dos = fh.read(64)
            if len(dos) < 64 or dos[:2] != b"MZ":
                return None
            (e_lfanew,) = struct.unpack_from("<I", dos, 0x3C)
            fh.seek(e_lfanew)
            sig = fh.read(6)
    except OSError:
        return None
    if len(sig) < 6 or sig[:4] != b"PE\0\0":
        return None
    machine: int = struct.unpack_from("<H", sig, 4)[0]
    return machine


class Corpus:
    """The unpacked Debian corpus.

    Lookups raise ``LookupError`` naming what exists, so a renamed file in a new package
    version shows up as a readable test failure rather than a confusing ``None``.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.manifest_path = base / "manifest.tsv"

    def __repr__(self) -> str:
        return f"Corpus({str(self.base)!r})"

    # -- presence -------------------------------------------------------------------------

    def check(self) -> None:
        """Raise CorpusMissingError unless the manifest and every tree in it exist."""
        if not self.manifest_path.is_file() or self.manifest_path.stat().st_size == 0:
            raise CorpusMissingError(f"corpus missing: {FETCH_HINT} (no {self.manifest_path})")
        missing = [p.id for p in self.packages() if not p.root.is_dir()]
        if missing:
            raise CorpusMissingError(
                f"corpus incomplete: {FETCH_HINT} (not unpacked: {', '.join(missing)})"
            )

    # -- packages -------------------------------------------------------------------------

    @functools.cached_property
    def _packages(self) -> tuple[Package, ...]:
        rows: list[Package] = []
        for line in self.manifest_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            f = line.split("\t")
            # Manifests written before the "requested" column existed have six fields.
            requested = f[6] if len(f) > 6 else f[2]
            rows.append(
                Package(f[0], f[1], f[2], f[3], f[4], f[5], requested,
                        self.root / f[0] / f[1] / f[2])
            )
        return tuple(rows)

    def packages(self) -> list[Package]:
        return list(self._packages)

    def package(self, suite: str, arch: str, name: str) -> Package:
        """A package by its real name or its packages.txt name (``linux-image-amd64``).

        ``arch`` "all" packages are also found under their own arch, so
        ``package("trixie", "amd64", "qemu-efi-aarch64")`` works.
        """
        for p in self._packages:
            if p.suite == suite and name in (p.name, p.requested) and p.arch in (arch, "all"):
                return p
        have = sorted({p.requested for p in self._packages if p.suite == suite})
        raise LookupError(f"no package {name!r} for {suite}/{arch} in the corpus; have {have}")

    def package_dir(self, suite: str, arch: str, name: str) -> Path:
        return self.package(suite, arch, name).root

    # -- files ----------------------------------------------------------------------------

    def files(self, suite: str, arch: str, package: str, pattern: str) -> list[Path]:
        """Files matching a glob relative to a package's unpacked tree, sorted."""
        root = self.package_dir(suite, arch, package)
        return sorted(p for p in root.glob(pattern) if p.is_file())

    def file(self, suite: str, arch: str, package: str, pattern: str) -> Path:
        """Exactly one file matching a glob relative to a package's tree.

        e.g. ``file("bookworm", "amd64", "grub-efi-amd64-signed",
        "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")`` or
        ``file("trixie", "amd64", "linux-image-amd64", "boot/vmlinuz-*")``.
        """
        hits = self.files(suite, arch, package, pattern)
        if len(hits) != 1:
            root = self.package_dir(suite, arch, package)
            raise LookupError(
                f"{suite}/{arch}/{package}: {len(hits)} files match {pattern!r} under {root}"
                + (f": {[str(h.relative_to(root)) for h in hits]}" if hits else "")
            )
        return hits[0]

    def find(self, pattern: str) -> list[Path]:
        """Files matching a glob relative to root/, e.g. ``*/amd64/*/usr/lib/shim/*.efi*``."""
        return sorted(p for p in self.root.glob(pattern) if p.is_file())

    # -- well-known files -----------------------------------------------------------------

    def kernel(self, suite: str, arch: str) -> Path:
        """The signed kernel (a PE image with the EFI stub): boot/vmlinuz-*."""
        return self.file(suite, arch, f"linux-image-{arch}", "boot/vmlinuz-*")

    def shim(self, suite: str, arch: str, *, signed: bool = True) -> Path:
        """shim<arch>.efi.signed (Microsoft-signed) or, amd64 only, the unsigned build."""
        sfx = EFI_ARCH_SUFFIX[arch]
        if signed:
            return self.file(suite, arch, "shim-signed", f"usr/lib/shim/shim{sfx}.efi.signed")
        return self.file(suite, arch, "shim-unsigned", f"usr/lib/shim/shim{sfx}.efi")

    def grub(self, suite: str, arch: str, *, signed: bool = True, flavour: str = "grub") -> Path:
        """Debian's grub image: flavour "grub", "gcd", "grubnet" or "grubnet…-installer".

        Unsigned images exist only for bookworm amd64 (grub-efi-amd64-bin's monolithic/).
        """
        sfx = EFI_ARCH_SUFFIX[arch]
        gdir = {"amd64": "x86_64-efi", "arm64": "arm64-efi"}[arch]
        if signed:
            return self.file(
                suite, arch, f"grub-efi-{arch}-signed",
                f"usr/lib/grub/{gdir}-signed/{flavour}{sfx}.efi.signed",
            )
        return self.file(
            suite, arch, f"grub-efi-{arch}-bin",
            f"usr/lib/grub/{gdir}/monolithic/{flavour}{sfx}.efi",
        )

    def boot_chain(self, suite: str, arch: str) -> tuple[Path, Path, Path]:
        """(shim, grub, kernel), all signed: what Debian installs on the ESP and /boot."""
        return self.shim(suite, arch), self.grub(suite, arch), self.kernel(suite, arch)

    def systemd_boot(self, suite: str, name: str = "systemd-bootx64.efi", *,
                     signed: bool = False) -> Path:
        """A file of systemd-boot-efi (amd64): systemd-bootx64.efi, linuxx64.efi.stub, …;
        ``signed``: systemd-boot-efi-amd64-signed's ``<name>.signed`` (trixie: systemd-boot
        signed by Debian's Secure Boot key, which shim's vendor certificate trusts)."""
        if signed:
            return self.file(suite, "amd64", "systemd-boot-efi-amd64-signed",
                             f"usr/lib/systemd/boot/efi/{name}.signed")
        return self.file(suite, "amd64", "systemd-boot-efi", f"usr/lib/systemd/boot/efi/{name}")

    def ovmf_dir(self, suite: str) -> Path:
        """usr/share/OVMF of the ovmf package (OVMF_CODE_4M*.fd, OVMF_VARS_4M*.fd)."""
        return self.package_dir(suite, "amd64", "ovmf") / "usr/share/OVMF"

    def ovmf(self, suite: str, name: str) -> Path:
        """e.g. ``ovmf("bookworm", "OVMF_VARS_4M.ms.fd")``; usr/share/ovmf/OVMF.fd too."""
        for sub in ("usr/share/OVMF", "usr/share/ovmf"):
            p = self.package_dir(suite, "amd64", "ovmf") / sub / name
            if p.is_file():
                return p
        have = sorted(p.name for p in self.ovmf_dir(suite).iterdir())
        raise LookupError(f"{suite} ovmf has no {name!r}; have {have}")

    def aavmf_dir(self, suite: str) -> Path:
        """usr/share/AAVMF of qemu-efi-aarch64 (AAVMF_CODE*.fd, AAVMF_VARS*.fd, 64 MiB each)."""
        return self.package_dir(suite, "all", "qemu-efi-aarch64") / "usr/share/AAVMF"

    def aavmf(self, suite: str, name: str) -> Path:
        p = self.aavmf_dir(suite) / name
        if not p.is_file():
            have = sorted(q.name for q in self.aavmf_dir(suite).iterdir())
            raise LookupError(f"{suite} qemu-efi-aarch64 has no {name!r}; have {have}")
        return p

    def snakeoil(self, suite: str) -> tuple[Path, Path]:
        """(PkKek-1-snakeoil.pem, .key): the test PK/KEK Debian enrolls in *.snakeoil.fd."""
        d = self.package_dir(suite, "amd64", "ovmf") / "usr/share/ovmf"
        return d / "PkKek-1-snakeoil.pem", d / "PkKek-1-snakeoil.key"

    # -- every PE image -------------------------------------------------------------------

    def efi_binaries(
        self, *, suite: str | None = None, arch: str | None = None, machine: int | None = None
    ) -> list[EfiBinary]:
        """Every PE image in the unpacked packages (shim, grub, systemd-boot, efitools,
        fwupd, and the kernels, which carry the EFI stub), sorted by id; optionally filtered.
        """
        return [
            b
            for b in self._efi_binaries
            if (suite is None or b.suite == suite)
            and (arch is None or b.arch == arch)
            and (machine is None or b.machine == machine)
        ]

    @functools.cached_property
    def _efi_binaries(self) -> tuple[EfiBinary, ...]:
        key = self._manifest_digest()
        cached = self._load_efi_cache(key)
        if cached is not None:
            return cached
        found = tuple(self._scan())
        self._store_efi_cache(key, found)
        return found

    def _scan(self) -> Iterator[EfiBinary]:
        for pkg in sorted(self._packages, key=lambda p: p.id):
            hits: list[EfiBinary] = []
            for dirpath, dirnames, filenames in os.walk(pkg.root):
                rel_dir = os.path.relpath(dirpath, pkg.root)
                dirnames[:] = [
                    d for d in dirnames
                    if os.path.normpath(os.path.join(rel_dir, d)) not in _PRUNE_DIRS
                ]
                for fn in filenames:
                    if fn.endswith(_SKIP_SUFFIXES):
                        continue
                    path = Path(dirpath) / fn
                    if path.is_symlink():
                        continue  # the target is listed under its own name
                    machine = pe_machine(path)
                    if machine is None:
                        continue
                    hits.append(
                        EfiBinary(path, pkg.suite, pkg.arch, pkg.name,
                                  path.relative_to(pkg.root).as_posix(), machine,
                                  path.stat().st_size)
                    )
            yield from sorted(hits, key=lambda b: b.relpath)

    # The list is cached on disk beside the manifest, because every pytest-xdist worker and
    # every benchmark run would otherwise rescan; the key is the manifest's digest, which
    # changes whenever fetch.sh unpacks something different.
    def _manifest_digest(self) -> str:
        return hashlib.sha256(self.manifest_path.read_bytes()).hexdigest()

    def _load_efi_cache(self, key: str) -> tuple[EfiBinary, ...] | None:
        try:
            doc = json.loads((self.base / _EFI_CACHE_NAME).read_text(encoding="utf-8"))
            if doc.get("version") != _EFI_CACHE_VERSION or doc.get("manifest") != key:
                return None
            out = tuple(
                EfiBinary(self.root / e["suite"] / e["arch"] / e["package"] / e["relpath"],
                          e["suite"], e["arch"], e["package"], e["relpath"], e["machine"],
                          e["size"])
                for e in doc["binaries"]
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # A tree edited by hand behind fetch.sh's back: rescan rather than trust the cache.
        if not all(b.path.is_file() for b in out):
            return None
        return out

    def _store_efi_cache(self, key: str, binaries: tuple[EfiBinary, ...]) -> None:
        doc = {
            "version": _EFI_CACHE_VERSION,
            "manifest": key,
            "binaries": [
                {"suite": b.suite, "arch": b.arch, "package": b.package, "relpath": b.relpath,
                 "machine": b.machine, "size": b.size}
                for b in binaries
            ],
        }
        # Best effort: a read-only cache directory only costs a rescan next time. Written to
        # a temporary file and renamed, so concurrent xdist workers never read half a file.
        try:
            fd, tmp = tempfile.mkstemp(prefix=".efi-binaries.", dir=self.base)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=0)
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; other users may run the tests
            os.replace(tmp, self.base / _EFI_CACHE_NAME)
        except OSError:
            pass


class MsCorpus:
    """Microsoft's Secure Boot objects (certs/, db/, dbx/, kek/, templates/)."""

    # Files whose absence means the copy is broken, not merely older.
    EXPECTED: Final = (
        "certs/db/MicCorUEFCA2011_2011-06-27.der",
        "certs/kek/MicCorKEKCA2011_2011-06-24.der",
        "dbx/amd64/DBXUpdate.bin",
        "dbx/dbx_info_msft_latest.json",
    )

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"MsCorpus({str(self.root)!r})"

    def check(self) -> None:
        if not self.root.is_dir():
            raise CorpusMissingError(
                f"Microsoft corpus missing: no {self.root} (it is part of the repository)"
            )
        missing = [rel for rel in self.EXPECTED if not (self.root / rel).is_file()]
        if missing:
            raise CorpusMissingError(
                f"Microsoft corpus incomplete in {self.root}: missing {', '.join(missing)}"
            )

    def file(self, relpath: str) -> Path:
        """e.g. ``file("dbx/amd64/DBXUpdate.bin")``."""
        p = self.root / relpath
        if not p.is_file():
            raise LookupError(f"no {relpath} in {self.root}")
        return p

    def find(self, pattern: str) -> list[Path]:
        """e.g. ``find("certs/db/*.der")``, ``find("dbx/*/DBXUpdate.bin")``."""
        return sorted(p for p in self.root.glob(pattern) if p.is_file())

    def certs(self, kind: str) -> list[Path]:
        """DER certificates of ``pk``, ``kek`` or ``db``."""
        return self.find(f"certs/{kind}/*.der")


@functools.cache
def load_corpus() -> Corpus:
    """The Debian corpus, checked; raises CorpusMissingError with the reason."""
    c = Corpus(corpus_base())
    c.check()
    return c


@functools.cache
def load_ms_corpus() -> MsCorpus:
    m = MsCorpus(ms_corpus_base())
    m.check()
    return m
