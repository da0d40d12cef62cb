"""Every subcommand of every command against the real inputs (issue 13).

tests/fuzz/test_command_matrix.py feeds the commands mutated and broken files; this matrix
feeds them the real ones: every OVMF/AAVMF variable store Debian ships (both suites, and
qcow2 images made from some), the firmware code and unified images beside them, Microsoft's
signed .auth updates and certificates, signature lists taken from the real stores, and a
representative set of PEs (shim, mm, fb, grub, kernel, systemd-boot and its stub per
suite/arch), each given to every command slot that reads a file, the wrong kinds included
(a PE to fw-vars, a store to pe-inspect, a 64 MiB store to fw-sigdb ...).

Each (command, input) asserts: no traceback (CliRunner with ``catch_exceptions=False``, so an
escaping exception fails the case with its traceback); an exit code the command documents
for that slot; on exit 2, stderr holds ``error:`` lines only (``warning:`` allowed), one of
which names an input; a command given the kind it reads succeeds where it always should
(fw-vars show of a store, pe-inspect of a PE, fw-sigdb show of an .auth ...); the corpus
files are never written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from corpus.params import CORPUS, unavailable

from fwtools.cli.byebyebios import command as byebyebios
from fwtools.cli.common import subcommands
from fwtools.cli.fw_check import command as fw_check
from fwtools.cli.fw_check_boot import command as fw_check_boot
from fwtools.cli.fw_check_disk import command as fw_check_disk
from fwtools.cli.fw_check_firmware import command as fw_check_firmware
from fwtools.cli.fw_pcr import cli as fw_pcr
from fwtools.cli.fw_sigdb import cli as fw_sigdb
from fwtools.cli.fw_vars import cli as fw_vars
from fwtools.cli.pe_inspect import pe_inspect

REPO = Path(__file__).resolve().parents[2]
TD = REPO / "testdata"
MS = TD / "microsoft-secureboot-objects"

TOOLS: dict[str, click.Command] = {
    "pe-inspect": pe_inspect,
    "fw-sigdb": fw_sigdb,
    "fw-vars": fw_vars,
    "fw-check": fw_check,
    "fw-check boot-chain": fw_check_boot,
    "fw-check firmware": fw_check_firmware,
    "fw-check disk": fw_check_disk,
    "byebyebios": byebyebios,
    "fw-pcr": fw_pcr,
}

# --- the real inputs --------------------------------------------------------------------------

OVMF_BW = "bookworm/amd64/ovmf/usr/share/OVMF"
OVMF_TX = "trixie/amd64/ovmf/usr/share/OVMF"
AAVMF_BW = "bookworm/all/qemu-efi-aarch64/usr/share/AAVMF"
AAVMF_TX = "trixie/all/qemu-efi-aarch64/usr/share/AAVMF"


@dataclass(frozen=True)
class Input:
    """One real input: its ``kind`` and where it comes from (``corpus`` path below the corpus
    root, ``repo`` path in the repository, or ``derived``: made once per session)."""

    id: str
    kind: str
    corpus: str | None = None
    repo: Path | None = None
    derived: str | None = None


def _c(kind: str, rel: str, ident: str | None = None) -> Input:
    return Input(ident or rel.split("/")[0] + "/" + rel.rsplit("/", 1)[-1], kind, corpus=rel)


def _ms(kind: str, rel: str) -> Input:
    return Input("ms/" + rel, kind, repo=MS / rel)


# Kinds: store (a formatted variable store), blank (an unformatted store template, which
# fw-vars formats as the firmware would), qcow2 (a store in qcow2), unified (OVMF.fd: store +
# code), code (firmware code only), auth (signed .auth), esl (signature list), cert (X.509),
# pe and pe-arm (x86-64 and AArch64 EFI binaries), text (JSON / TOML data, none of these),
# eventlog (TCG event logs captured from real boots) and pcrs (the TPM's values, JSON).
INPUTS: list[Input] = [
    _c("store", f"{OVMF_BW}/OVMF_VARS.fd"),
    _c("store", f"{OVMF_BW}/OVMF_VARS.ms.fd"),
    _c("store", f"{OVMF_BW}/OVMF_VARS_4M.fd"),
    _c("store", f"{OVMF_BW}/OVMF_VARS_4M.ms.fd"),
    _c("store", f"{OVMF_BW}/OVMF_VARS_4M.snakeoil.fd"),
    _c("store", f"{OVMF_TX}/OVMF_VARS_4M.fd"),
    _c("store", f"{OVMF_TX}/OVMF_VARS_4M.ms.fd"),
    _c("store", f"{OVMF_TX}/OVMF_VARS_4M.snakeoil.fd"),
    _c("blank", f"{AAVMF_BW}/AAVMF_VARS.fd"),
    _c("store", f"{AAVMF_BW}/AAVMF_VARS.ms.fd"),
    _c("store", f"{AAVMF_BW}/AAVMF_VARS.snakeoil.fd"),
    _c("store", f"{AAVMF_TX}/AAVMF_VARS.fd"),
    _c("store", f"{AAVMF_TX}/AAVMF_VARS.ms.fd"),
    _c("store", f"{AAVMF_TX}/AAVMF_VARS.snakeoil.fd"),
    _c("unified", "bookworm/amd64/ovmf/usr/share/ovmf/OVMF.fd"),
    _c("code", f"{OVMF_BW}/OVMF_CODE.fd"),
    _c("code", f"{OVMF_TX}/OVMF_CODE_4M.secboot.fd"),
    _c("code", f"{AAVMF_TX}/AAVMF_CODE.fd"),
    Input("qcow2/bookworm-OVMF_VARS.ms", "qcow2", derived=f"qcow2:{OVMF_BW}/OVMF_VARS.ms.fd"),
    Input("qcow2/trixie-OVMF_VARS_4M.ms", "qcow2", derived=f"qcow2:{OVMF_TX}/OVMF_VARS_4M.ms.fd"),
    Input("qcow2/trixie-AAVMF_VARS.ms", "qcow2", derived=f"qcow2:{AAVMF_TX}/AAVMF_VARS.ms.fd"),
    # Signature lists as the firmware stores them: the data of real PK/KEK/db/dbx variables.
    Input("esl/bookworm-4M.ms-PK", "esl", derived=f"esl:{OVMF_BW}/OVMF_VARS_4M.ms.fd:PK"),
    Input("esl/bookworm-4M.ms-KEK", "esl", derived=f"esl:{OVMF_BW}/OVMF_VARS_4M.ms.fd:KEK"),
    Input("esl/bookworm-4M.ms-db", "esl", derived=f"esl:{OVMF_BW}/OVMF_VARS_4M.ms.fd:db"),
    Input("esl/trixie-4M.ms-dbx", "esl", derived=f"esl:{OVMF_TX}/OVMF_VARS_4M.ms.fd:dbx"),
    Input("esl/trixie-AAVMF.snakeoil-db", "esl",
          derived=f"esl:{AAVMF_TX}/AAVMF_VARS.snakeoil.fd:db"),
    _ms("auth", "dbx/amd64/DBXUpdate.bin"),
    _ms("auth", "dbx/arm64/DBXUpdate.bin"),
    _ms("auth", "dbx/x86/DBXUpdate.bin"),
    _ms("auth", "dbx/arm/DBXUpdate.bin"),
    _ms("auth", "dbx/optional/DBXUpdateSVN.bin"),
    _ms("auth", "dbx/optional/DBXUpdate2024.bin"),
    _ms("auth", "db/amd64/DBUpdate2024.bin"),
    _ms("auth", "db/amd64/DBUpdate3P2023.bin"),
    _ms("auth", "db/amd64/DBUpdateOROM2023.bin"),
    _ms("auth", "kek/KEKUpdate_Microsoft_PK1.bin"),
    _ms("cert", "certs/pk/WindowsOEMDevicesPK.der"),
    _ms("cert", "certs/kek/MicCorKEKCA2011_2011-06-24.der"),
    _ms("cert", "certs/kek/microsoft-corporation-kek-2k-ca-2023.der"),
    _ms("cert", "certs/db/MicCorUEFCA2011_2011-06-27.der"),
    _ms("cert", "certs/db/windows-uefi-ca-2023.der"),
    _c("cert", "bookworm/amd64/ovmf/usr/share/ovmf/PkKek-1-snakeoil.pem"),
    _c("cert", "trixie/amd64/shim-unsigned/usr/share/shim/debian-uefi-ca.der"),
    _ms("text", "dbx/dbx_info_msft_latest.json"),
    _ms("text", "templates/MicrosoftOnly.toml"),
    _c("pe", "bookworm/amd64/shim-signed/usr/lib/shim/shimx64.efi.signed"),
    _c("pe", "bookworm/amd64/shim-unsigned/usr/lib/shim/mmx64.efi"),
    _c("pe", "bookworm/amd64/shim-unsigned/usr/lib/shim/fbx64.efi"),
    _c("pe", "trixie/amd64/shim-signed/usr/lib/shim/shimx64.efi.signed"),
    _c("pe-arm", "bookworm/arm64/shim-signed/usr/lib/shim/shimaa64.efi.signed"),
    _c("pe-arm", "trixie/arm64/shim-signed/usr/lib/shim/shimaa64.efi.signed"),
    _c("pe", "bookworm/amd64/grub-efi-amd64-signed/usr/lib/grub/x86_64-efi-signed/"
             "grubx64.efi.signed"),
    _c("pe", "trixie/amd64/grub-efi-amd64-signed/usr/lib/grub/x86_64-efi-signed/"
             "grubx64.efi.signed"),
    _c("pe-arm", "trixie/arm64/grub-efi-arm64-signed/usr/lib/grub/arm64-efi-signed/"
             "grubaa64.efi.signed"),
    _c("pe", "bookworm/amd64/linux-image-6.1.0-50-amd64/boot/vmlinuz-6.1.0-50-amd64"),
    _c("pe", "trixie/amd64/linux-image-6.12.117+deb13-amd64/boot/"
             "vmlinuz-6.12.117+deb13-amd64"),
    _c("pe-arm", "bookworm/arm64/linux-image-6.1.0-50-arm64/boot/vmlinuz-6.1.0-50-arm64"),
    _c("pe", "bookworm/amd64/systemd-boot-efi/usr/lib/systemd/boot/efi/systemd-bootx64.efi"),
    _c("pe", "trixie/amd64/systemd-boot-efi/usr/lib/systemd/boot/efi/systemd-bootx64.efi"),
    _c("pe", "trixie/amd64/systemd-boot-efi/usr/lib/systemd/boot/efi/linuxx64.efi.stub"),
    _c("pe", "trixie/amd64/fwupd-amd64-signed/usr/libexec/fwupd/efi/fwupdx64.efi.signed"),
    # Real TCG event logs (OVMF + swtpm boots, testdata/tcg/README.md) and the PCRs read then.
    Input("tcg/ovmf-d12-kernel", "eventlog", repo=TD / "tcg/ovmf-d12-kernel.eventlog.bin"),
    Input("tcg/ovmf-d12-shim-sb", "eventlog", repo=TD / "tcg/ovmf-d12-shim-sb.eventlog.bin"),
    Input("tcg/ovmf-d13-shim-sb", "eventlog", repo=TD / "tcg/ovmf-d13-shim-sb.eventlog.bin"),
    Input("tcg/ovmf-d12-kernel.sha1", "eventlog",
          repo=TD / "tcg/ovmf-d12-kernel.sha1.eventlog.bin"),
    Input("tcg/ovmf-d12-kernel.pcrs", "pcrs", repo=TD / "tcg/ovmf-d12-kernel.pcrs.json"),
]
BY_ID = {i.id: i for i in INPUTS}
assert len(BY_ID) == len(INPUTS), "input ids must be unique"

STORES = frozenset({"store", "blank", "qcow2", "unified"})
PES = frozenset({"pe", "pe-arm"})
SIGDB = frozenset({"auth", "esl", "cert"})  # what fw-sigdb reads (and PEs with .vendor_cert)

# Helper inputs the command lines name besides {IN} (all real, or tiny repository fixtures).
GOOD_STORE_4M = f"{OVMF_BW}/OVMF_VARS_4M.ms.fd"
GOOD_SHIM = "bookworm/amd64/shim-signed/usr/lib/shim/shimx64.efi.signed"
UEFI_CA_2011 = MS / "certs/db/MicCorUEFCA2011_2011-06-27.der"
KEK_CA_2011 = MS / "certs/kek/MicCorKEKCA2011_2011-06-24.der"
DBX_UPDATE = MS / "dbx/amd64/DBXUpdate.bin"
DB_KEY = TD / "sigdb/keys/db.key"
DB_CERT = TD / "sigdb/db.pem"
HASH = "ab" * 32
KERNEL_LOG = TD / "tcg/ovmf-d12-kernel.eventlog.bin"  # its PCRs: the "pcrs" input


class _Prepared:
    """The derived inputs, made once per session in one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, Path] = {}

    def path(self, item: Input) -> Path:
        if item.repo is not None:
            return item.repo
        if item.corpus is not None:
            return corpus_path(item.corpus)
        assert item.derived is not None
        if item.derived not in self.cache:
            self.cache[item.derived] = self._make(item)
        return self.cache[item.derived]

    def _make(self, item: Input) -> Path:
        from fwtools.formats.qcow2 import raw_to_qcow2
        from fwtools.formats.varstore.storeio import load_store

        assert item.derived is not None
        how, rest = item.derived.split(":", 1)
        out = self.root / item.id.replace("/", "-")
        if how == "qcow2":
            out.write_bytes(raw_to_qcow2(corpus_path(rest).read_bytes()))
            return out
        source, name = rest.rsplit(":", 1)
        found = [v for v in load_store(corpus_path(source)).variables if v.name == name]
        assert found, f"{source} has no {name}"
        out.write_bytes(found[0].data)
        return out


def corpus_path(rel: str) -> Path:
    path = CORPUS / rel
    if not path.is_file():
        unavailable(f"{path} missing from the real-world corpus (run tests/corpus/fetch.sh)")
    return path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> _Prepared:
    return _Prepared(tmp_path_factory.mktemp("real-inputs"))


# --- the command lines ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cmd:
    """A command line with ``{IN}`` for the input under test; ``{OUT}``/``{OUTDIR}`` become
    fresh paths, ``@rel`` a corpus file, other paths are used as they are.

    ``codes`` are the exit codes the command documents for this slot; ``reads`` the kinds it
    takes there, for which the exit code must be one of ``ok`` (a real store shown, a real PE
    inspected...). ``skip`` are kinds not run in this slot (too slow for what they add)."""

    tool: str
    argv: tuple[str, ...]
    codes: frozenset[int] = frozenset({0, 2})
    reads: frozenset[str] = frozenset()
    ok: frozenset[int] = frozenset({0})
    skip: frozenset[str] = frozenset()

    @property
    def id(self) -> str:
        words = []
        for w in self.argv:
            if w.startswith("@"):
                w = w.rsplit("/", 1)[-1]
            elif w.startswith("/"):
                w = Path(w).name
            words.append("hash" if w == HASH else w)
        return f"{self.tool} " + " ".join(w for w in words if w not in ("{OUT}", "-o"))


ANY = frozenset({0, 1, 2})
WITH_FINDINGS = frozenset({0, 1, 2})
VERDICT = frozenset({0, 1})

COMMANDS: list[Cmd] = [
    # pe-inspect: 1 = a signature does not match or --verify says untrusted/revoked.
    Cmd("pe-inspect", ("{IN}",), ANY, PES, VERDICT),
    Cmd("pe-inspect", ("--json", "{IN}"), ANY, PES, VERDICT),
    Cmd("pe-inspect", ("--extract-certs", "{OUTDIR}", "{IN}"), ANY, PES, VERDICT),
    Cmd("pe-inspect", ("--verify", "{IN}", f"@{GOOD_SHIM}"), ANY,
        frozenset({"cert", "esl"}), VERDICT),
    Cmd("pe-inspect", ("--verify", str(UEFI_CA_2011), "--dbx", "{IN}", f"@{GOOD_SHIM}"), ANY,
        frozenset({"esl", "cert"}), VERDICT),
    Cmd("pe-inspect", ("--vars", "{IN}", f"@{GOOD_SHIM}"), ANY, STORES, VERDICT),
    # fw-vars: one store per command, 1 = nothing to delete / check found problems.
    Cmd("fw-vars", ("show", "{IN}"), reads=STORES),
    Cmd("fw-vars", ("show", "--json", "{IN}"), reads=STORES),
    Cmd("fw-vars", ("get", "{IN}", "Lang", "-o", "{OUT}")),
    Cmd("fw-vars", ("set", "{IN}", "FwtoolsTest", "--hex", "00", "-o", "{OUT}"), reads=STORES),
    Cmd("fw-vars", ("set", f"@{GOOD_STORE_4M}", "FwtoolsTest", "--file", "{IN}",
                    "-o", "{OUT}")),
    Cmd("fw-vars", ("delete", "{IN}", "Lang", "-o", "{OUT}"), ANY),
    Cmd("fw-vars", ("enroll", "{IN}", "--pk", str(DB_CERT), "-o", "{OUT}"), reads=STORES),
    Cmd("fw-vars", ("enroll", f"@{GOOD_STORE_4M}", "--pk", "{IN}", "-o", "{OUT}")),
    Cmd("fw-vars", ("enroll", f"@{GOOD_STORE_4M}", "--kek", "{IN}", "-o", "{OUT}"),
        reads=frozenset({"cert", "esl"})),
    Cmd("fw-vars", ("enroll", f"@{GOOD_STORE_4M}", "--db", "{IN}", "-o", "{OUT}"),
        reads=frozenset({"cert", "esl"})),
    Cmd("fw-vars", ("enroll", f"@{GOOD_STORE_4M}", "--dbx", "{IN}", "-o", "{OUT}")),
    Cmd("fw-vars", ("dbx", "{IN}", str(DBX_UPDATE), "-o", "{OUT}"), ANY),
    Cmd("fw-vars", ("dbx", f"@{GOOD_STORE_4M}", "{IN}", "-o", "{OUT}"), ANY),
    Cmd("fw-vars", ("sbat-level", "{IN}", "--level", "sbat,1,2021030218\\n", "-o", "{OUT}"),
        reads=STORES),
    Cmd("fw-vars", ("sbat-level", f"@{GOOD_STORE_4M}", "--file", "{IN}", "-o", "{OUT}")),
    Cmd("fw-vars", ("sbat-level", f"@{GOOD_STORE_4M}", "--from-shim", "{IN}", "-o", "{OUT}")),
    Cmd("fw-vars", ("shim", "{IN}", "--verbose", "-o", "{OUT}"), reads=STORES),
    Cmd("fw-vars", ("boot", "list", "{IN}"), reads=STORES),
    Cmd("fw-vars", ("boot", "add", "{IN}", "--description", "fwtools", "--path",
                    "\\EFI\\debian\\shimx64.efi", "-o", "{OUT}"), reads=STORES),
    Cmd("fw-vars", ("boot", "delete", "{IN}", "0000", "-o", "{OUT}"), ANY),
    Cmd("fw-vars", ("boot", "next", "{IN}", "0000", "-o", "{OUT}")),
    Cmd("fw-vars", ("boot", "order", "{IN}", "0000", "-o", "{OUT}")),
    Cmd("fw-vars", ("convert", "{IN}", "{OUT}.qcow2"), reads=STORES),
    Cmd("fw-vars", ("convert", "{IN}", "{OUT}.json"), reads=STORES),
    Cmd("fw-vars", ("convert", "{IN}", "{OUT}.fd", "--layout", "ovmf-4m")),
    Cmd("fw-vars", ("diff", "{IN}", f"@{GOOD_STORE_4M}"), ANY, STORES, VERDICT),
    Cmd("fw-vars", ("check", "{IN}"), ANY, STORES, VERDICT),
    Cmd("fw-vars", ("check", "--json", "{IN}", f"@{GOOD_STORE_4M}"), ANY, STORES, VERDICT),
    # audit: 1 = a finding at --fail-on (error); a file that is no store is a row with an
    # error (exit 2), never a stop.
    Cmd("fw-vars", ("audit", "{IN}"), ANY, frozenset({"store", "qcow2", "unified"}), VERDICT),
    Cmd("fw-vars", ("audit", "--json", "-v", "{IN}", f"@{GOOD_STORE_4M}"), ANY,
        frozenset({"store", "qcow2", "unified"}), VERDICT),
    # update: 1 = a write the firmware would refuse (bookworm's 2 MiB store and the new dbx).
    Cmd("fw-vars", ("update", "{IN}", "--ca-2023", "--dbx", "latest", "--sbat-level", "latest",
                    "--dry-run"), ANY, frozenset({"store", "qcow2", "unified"}), VERDICT),
    Cmd("fw-vars", ("update", "{IN}", "--ca-2023", "--via", "owner", "-o", "{OUT}"), ANY,
        frozenset({"store", "qcow2", "unified"}), VERDICT),
    # fw-sigdb: 1 = a verification failed or nothing matched.
    Cmd("fw-sigdb", ("show", "{IN}"), reads=SIGDB),
    Cmd("fw-sigdb", ("show", "--json", "{IN}", str(DBX_UPDATE)), reads=SIGDB),
    Cmd("fw-sigdb", ("add", "{IN}", "-o", "{OUT}", "--hash", HASH), reads=frozenset({"esl"})),
    Cmd("fw-sigdb", ("add", "@esl", "-o", "{OUT}", "--cert", "{IN}"),
        reads=frozenset({"cert"})),
    Cmd("fw-sigdb", ("add", "@esl", "-o", "{OUT}", "--image", "{IN}"), reads=PES),
    Cmd("fw-sigdb", ("remove", "{IN}", "-o", "{OUT}", "--hash", HASH), ANY),
    Cmd("fw-sigdb", ("dedupe", "{IN}", "-o", "{OUT}"), reads=frozenset({"esl"})),
    Cmd("fw-sigdb", ("merge", "{IN}", "@esl", "-o", "{OUT}"), reads=SIGDB),
    Cmd("fw-sigdb", ("create", "-o", "{OUT}", "--cert", "{IN}"), reads=frozenset({"cert"})),
    Cmd("fw-sigdb", ("create", "-o", "{OUT}", "--from", "{IN}"), reads=SIGDB),
    Cmd("fw-sigdb", ("create", "-o", "{OUT}", "--image", "{IN}"), reads=PES),
    Cmd("fw-sigdb", ("extract-certs", "{OUTDIR}", "{IN}"), reads=SIGDB),
    Cmd("fw-sigdb", ("sign", "{IN}", "--name", "db", "--key", str(DB_KEY), "--cert",
                     str(DB_CERT), "-o", "{OUT}"), reads=frozenset({"esl", "cert"})),
    Cmd("fw-sigdb", ("verify", "{IN}", "--cert", str(KEK_CA_2011)), ANY,
        frozenset({"auth"}), VERDICT),
    Cmd("fw-sigdb", ("verify", "{IN}", "--vars", f"@{GOOD_STORE_4M}"), ANY,
        frozenset({"auth"}), VERDICT),
    Cmd("fw-sigdb", ("verify", str(DBX_UPDATE), "--vars", "{IN}"), ANY),
    Cmd("fw-sigdb", ("verify", str(DBX_UPDATE), "--cert", "{IN}"), ANY),
    # fw-check: 1 = a finding at or above --fail-on.
    Cmd("fw-check", ("{IN}",), ANY, PES, VERDICT),
    Cmd("fw-check", ("--json", "--policy", "uefi-ca", "{IN}"), ANY, PES, VERDICT),
    Cmd("fw-check", ("--db", "{IN}", f"@{GOOD_SHIM}"), ANY,
        frozenset({"cert", "esl"}), VERDICT),
    Cmd("fw-check", ("--db", str(UEFI_CA_2011), "--dbx", "{IN}", f"@{GOOD_SHIM}"), ANY,
        frozenset({"cert", "esl"}), VERDICT),
    Cmd("fw-check", ("--sbat-level", "{IN}", f"@{GOOD_SHIM}"), ANY),
    # (Debian's stores hold no SbatLevel: exit 2 "no SbatLevel variable" is right for them.)
    Cmd("fw-check", ("--sbat-level-store", "{IN}", f"@{GOOD_SHIM}"), ANY),
    Cmd("fw-check", ("--sbat-level-shim", "{IN}", f"@{GOOD_SHIM}"), ANY),
    # fw-check boot-chain: 1 = faults or refused.
    Cmd("fw-check boot-chain", ("--firmware", "ovmf", "{IN}"), ANY, frozenset({"pe"}), VERDICT),
    Cmd("fw-check boot-chain", ("--firmware", "armvirt", "{IN}"), ANY, frozenset({"pe-arm"}),
        VERDICT),
    # fw-check firmware: 1 = W^X findings in the firmware's own images; fw-check disk reads
    # partition tables and file systems (no real disk image in this input set: all exit 2
    # or list no partitions).
    Cmd("fw-check firmware", ("{IN}",), ANY),
    Cmd("fw-check firmware", ("--json", "{IN}"), ANY),
    Cmd("fw-check disk", ("{IN}",), ANY),
    # byebyebios reads the image with --check and --dry-run (never written here).
    Cmd("byebyebios", ("--check", "{IN}"), ANY),
    Cmd("byebyebios", ("--dry-run", "{IN}"), ANY),
    # fw-pcr log: 1 = a replayed PCR differs from --pcrs.
    Cmd("fw-pcr", ("log", "{IN}"), reads=frozenset({"eventlog"})),
    Cmd("fw-pcr", ("log", "--json", "-v", "{IN}"), reads=frozenset({"eventlog"})),
    Cmd("fw-pcr", ("log", str(KERNEL_LOG), "--pcrs", "{IN}"), ANY, frozenset({"pcrs"})),
    # fw-pcr predict / diff: a store with a real shim, a real chain stage with a real store.
    Cmd("fw-pcr", ("predict", "--vars", "{IN}", f"@{GOOD_SHIM}"), reads=STORES),
    Cmd("fw-pcr", ("predict", "--json", "--vars", f"@{GOOD_STORE_4M}", "{IN}"), reads=PES),
    Cmd("fw-pcr", ("diff", "--vars", f"@{GOOD_STORE_4M}", "--vars-new", "{IN}",
                   f"@{GOOD_SHIM}"), reads=STORES),
]


def _cases() -> Iterator[object]:
    for cmd in COMMANDS:
        for item in INPUTS:
            if item.kind in cmd.skip:
                continue
            yield pytest.param(cmd, item, id=f"{cmd.id} <- {item.id}")


# --- running and checking ---------------------------------------------------------------------


def _fill(cmd: Cmd, bad: Path, work: Path, prepared: _Prepared) -> list[str]:
    argv = []
    for word in cmd.argv:
        if word == "{IN}":
            argv.append(str(bad))
        elif word.startswith("{OUT}"):
            argv.append(str(work / ("out" + word[len("{OUT}"):])))
        elif word == "{OUTDIR}":
            argv.append(str(work / "certs"))
        elif word == "@esl":
            argv.append(str(prepared.path(BY_ID["esl/bookworm-4M.ms-db"])))
        elif word.startswith("@"):
            argv.append(str(corpus_path(word[1:])))
        else:
            argv.append(word)
    return argv


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@pytest.mark.corpus
@pytest.mark.parametrize(("cmd", "item"), list(_cases()))
def test_real_input(cmd: Cmd, item: Input, prepared: _Prepared, tmp_path: Path) -> None:
    path = prepared.path(item)
    argv = _fill(cmd, path, tmp_path, prepared)
    before = _stamp(path)
    result = CliRunner().invoke(TOOLS[cmd.tool], argv, catch_exceptions=False)
    code, out, err = result.exit_code, result.stdout, result.stderr
    where = f"exit {code}\nstdout: {out[-400:]}\nstderr: {err[-800:]}"
    assert "Traceback" not in out + err, where
    assert code in cmd.codes, where
    if item.kind in cmd.reads:
        assert code in cmd.ok, where
    if code == 2:  # (a verdict, exit 1, may explain itself on stderr in its own words)
        lines = [line for line in err.splitlines() if line.strip()]
        assert all(line.startswith(("error: ", "warning: ")) for line in lines), where
        errors = [line for line in lines if line.startswith("error: ")]
        assert errors, where
        named = [str(path), *(a for a in argv if os.sep in a)]
        assert any(n in line for line in errors for n in named) or _usage(errors), where
    assert _stamp(path) == before, f"{path} was written"


def _usage(errors: list[str]) -> bool:
    """An error about the request rather than a file (no such variable or entry, a
    firmware profile for the other architecture)."""
    words = ("no variable", "no entry", "no such", "the chain is")
    return any(w in line for line in errors for w in words)


def test_matrix_covers_every_subcommand() -> None:
    """Every leaf command of every tool appears in the matrix (a new subcommand must be
    added here)."""
    seen = {(c.tool, c.argv[0] if c.tool in ("fw-vars", "fw-sigdb", "fw-pcr") else "")
            for c in COMMANDS}
    seen |= {("fw-vars", " ".join(c.argv[:2])) for c in COMMANDS if c.argv[0] == "boot"}
    missing = []
    for tool, command in TOOLS.items():
        if isinstance(command, click.Group):
            for name, sub in subcommands(command).items():
                if isinstance(sub, click.Group):
                    missing += [f"{tool} {name} {leaf}" for leaf in subcommands(sub)
                                if (tool, f"{name} {leaf}") not in seen]
                elif (tool, name) not in seen:
                    missing.append(f"{tool} {name}")
        elif (tool, "") not in seen:
            missing.append(tool)
    assert not missing, missing
