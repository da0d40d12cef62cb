"""Fixtures for the end-to-end tests: Debian's OVMF and boot chain from the corpus, the tools
QEMU needs, private copies of vars files, and a summary of how long each boot took.

Every test in this directory is marked ``e2e``. Tests skip with the reason when QEMU or the
disk tools are missing, or fail under ``FWTOOLS_REQUIRE_CORPUS=1`` (CI installs them), like
the corpus fixtures do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from corpus import Corpus
from corpus.params import unavailable

from .qemu import (
    REQUIRED_TOOLS,
    QemuResult,
    ShellRun,
    ShellVariable,
    VarKey,
    VarsFormat,
    copy_vars,
    dmpstore_all,
    make_esp_image,
    missing_tools,
    shim_chain_files,
)

E2E_DIR = Path(__file__).resolve().parent
_BOOT_PROPERTY = "e2e_boot"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def qemu_tools() -> None:
    """Skip (or fail under FWTOOLS_REQUIRE_CORPUS=1) unless QEMU and the disk tools exist."""
    missing = missing_tools(REQUIRED_TOOLS)
    if missing:
        unavailable(
            f"e2e: {', '.join(missing)} not installed "
            "(apt-get install qemu-system-x86 qemu-utils mtools gdisk)"
        )


@pytest.fixture(scope="session")
def lab_builds(qemu_tools: None) -> Path:
    """The firmware lab's build directory for build-ovmf.sh's current source and settings
    (tests/e2e/lab/matrix.py); skip (fail under FWTOOLS_REQUIRE_CORPUS=1, as in CI) when a
    variant is not built there."""
    import subprocess

    from .lab.matrix import build_dir, missing_builds

    try:
        builds = build_dir()
        missing = missing_builds(builds)  # the NX shim's too (build-shim.sh --print-dir)
    except (OSError, subprocess.CalledProcessError) as exc:
        unavailable(f"lab: build-ovmf.sh or build-shim.sh --print-dir failed: {exc}")
    if missing:
        unavailable(f"lab firmware not built: {', '.join(missing)} "
                    "(run: sudo tests/e2e/lab/build-ovmf.sh; sudo tests/e2e/lab/build-shim.sh)")
    return builds


@pytest.fixture(scope="session")
def lab_grub() -> Path:
    """build-grub.sh's upstream GRUB 2.12 build directory (tests/e2e/lab/matrix.py
    GRUB_CHAINS); skip (fail under FWTOOLS_REQUIRE_CORPUS=1, as in CI) when it or the
    GRUB 2.06 build is not there."""
    import subprocess

    from .lab.matrix import grub_build_dir, missing_grub_build

    try:
        missing = missing_grub_build()
    except (OSError, subprocess.CalledProcessError) as exc:
        unavailable(f"lab: build-grub.sh --print-dir failed: {exc}")
    if missing:
        unavailable(f"lab upstream GRUB not built: {', '.join(missing)} "
                    "(run: sudo tests/e2e/lab/build-grub.sh; "
                    "sudo LAB_GRUB=2.06 tests/e2e/lab/build-grub.sh)")
    return grub_build_dir()


@pytest.fixture(scope="session")
def disk_tools() -> None:
    """Like qemu_tools, for tests that only build disk images (sgdisk, mtools)."""
    missing = missing_tools(["sgdisk", "mformat", "mmd", "mcopy"])
    if missing:
        unavailable(f"e2e: {', '.join(missing)} not installed (apt-get install mtools gdisk)")


@dataclass(frozen=True)
class Ovmf:
    """Debian's x86-64 OVMF 4M images of one suite (read-only: boot copies of the vars)."""

    suite: str
    code: Path  # OVMF_CODE_4M.fd: with the UEFI shell (bookworm: Secure Boot capable, no SMM)
    code_secboot: Path  # OVMF_CODE_4M.secboot.fd: Secure Boot, SMM, no shell under SB
    vars_blank: Path  # OVMF_VARS_4M.fd: empty store, Secure Boot off
    vars_ms: Path  # OVMF_VARS_4M.ms.fd: Microsoft KEK/db, Red Hat PK, Secure Boot on
    vars_snakeoil: Path  # OVMF_VARS_4M.snakeoil.fd: Debian's test PK/KEK/db only, SB on


def _ovmf(corpus: Corpus, suite: str) -> Ovmf:
    return Ovmf(
        suite=suite,
        code=corpus.ovmf(suite, "OVMF_CODE_4M.fd"),
        code_secboot=corpus.ovmf(suite, "OVMF_CODE_4M.secboot.fd"),
        vars_blank=corpus.ovmf(suite, "OVMF_VARS_4M.fd"),
        vars_ms=corpus.ovmf(suite, "OVMF_VARS_4M.ms.fd"),
        vars_snakeoil=corpus.ovmf(suite, "OVMF_VARS_4M.snakeoil.fd"),
    )


@pytest.fixture(scope="session")
def ovmf_bookworm(corpus: Corpus, qemu_tools: None) -> Ovmf:
    """Debian 12's OVMF (edk2 2022.11)."""
    return _ovmf(corpus, "bookworm")


@pytest.fixture(scope="session")
def ovmf_trixie(corpus: Corpus, qemu_tools: None) -> Ovmf:
    """Debian 13's OVMF (edk2 2025.02); its OVMF_CODE_4M.fd has no Secure Boot at all, so its
    shell reads back any store, PK/KEK/db/dbx included."""
    return _ovmf(corpus, "trixie")


@dataclass(frozen=True)
class ShimChain:
    shim: Path  # shimx64.efi.signed (Microsoft UEFI CA)
    grub: Path  # grubx64.efi.signed (Debian's key, trusted by shim)

    def esp_image(self, path: Path) -> Path:
        """A GPT disk image at ``path`` whose ESP boots shim -> grub (:func:`shim_chain_files`)."""
        return make_esp_image(path, shim_chain_files(self.shim, self.grub))


@pytest.fixture(scope="session")
def shim_chain_bookworm(corpus: Corpus) -> ShimChain:
    return ShimChain(corpus.shim("bookworm", "amd64"), corpus.grub("bookworm", "amd64"))


VarsCopier = Callable[..., Path]


@pytest.fixture
def vars_copy(tmp_path: Path) -> VarsCopier:
    """``vars_copy(src, format="raw"|"qcow2", name=None) -> Path``: the test's own writable
    copy of a vars file in tmp_path (qcow2 made with qemu-img), for the firmware to write."""
    counter = iter(range(1_000_000))

    def copy(src: Path, format: VarsFormat = "raw", name: str | None = None) -> Path:
        suffix = ".qcow2" if format == "qcow2" else ".fd"
        dest = tmp_path / (name or f"vars-{next(counter)}-{src.name.removesuffix('.fd')}{suffix}")
        return copy_vars(src, dest, format=format)

    return copy


@dataclass(frozen=True)
class BootedStore:
    """A fresh copy of Debian 12's blank OVMF_VARS_4M.fd after one boot of OVMF_CODE_4M.fd
    into the shell and ``dmpstore -all``: the firmware has written its variables into it.

    Shared by the tests of a session (per xdist worker): copy ``vars_path`` before writing.
    """

    ovmf: Ovmf
    vars_format: VarsFormat
    vars_path: Path
    run: ShellRun

    @property
    def result(self) -> QemuResult:
        return self.run.result

    def variables(self) -> dict[VarKey, ShellVariable]:
        """What dmpstore printed, parsed (raises when the shell script did not complete)."""
        return self.run.variables()


@pytest.fixture(scope="session", params=["raw", "qcow2"])
def booted_store(
    request: pytest.FixtureRequest, ovmf_bookworm: Ovmf, tmp_path_factory: pytest.TempPathFactory
) -> BootedStore:
    """One boot per vars format and session: compare ``read_back(booted_store.vars_path)``
    (or fwtools' parse of the file) with ``booted_store.variables()``."""
    fmt: VarsFormat = request.param
    work = tmp_path_factory.mktemp(f"booted-store-{fmt}")
    vars_path = copy_vars(ovmf_bookworm.vars_blank, work / f"OVMF_VARS_4M.{fmt}", format=fmt)
    run = dmpstore_all(ovmf_bookworm.code, vars_path, workdir=work, vars_format=fmt,
                       serial_log=work / "serial.log")
    return BootedStore(ovmf_bookworm, fmt, vars_path, run)


@pytest.fixture
def serial_log(tmp_path: Path) -> Path:
    """Where to keep the raw serial console of the test's boot (for post-mortems)."""
    return tmp_path / "serial.log"


BootRecorder = Callable[[QemuResult, str], None]


@pytest.fixture
def record_boot(request: pytest.FixtureRequest) -> BootRecorder:
    """``record_boot(result, what)``: note the boot's time for the terminal summary."""

    def record(result: QemuResult, what: str) -> None:
        how = result.marker or ("timeout" if result.timed_out else f"exit {result.returncode}")
        request.node.user_properties.append(
            (_BOOT_PROPERTY, f"{result.elapsed:6.1f}s  {what}  [{how}]")
        )

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Shown when this conftest is loaded in the main process (`pytest tests/e2e`, with or
    # without -n); a run from the repository root loads it only in the xdist workers.
    lines = []
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if getattr(rep, "when", None) != "call":
                continue
            for key, value in getattr(rep, "user_properties", ()):
                if key == _BOOT_PROPERTY:
                    lines.append(f"{value}  {rep.nodeid}")
    if lines:
        terminalreporter.write_sep("-", "e2e boots (QEMU wall time)")
        for line in sorted(lines, key=lambda s: s.split("  ")[-1]):
            terminalreporter.write_line(line)
