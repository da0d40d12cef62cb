"""Real firmware as the oracle for ``fw-vars update --via signed`` (issue 14, "Proof on real
firmware").

Debian's Secure Boot OVMF (``OVMF_CODE_4M.secboot.fd``) boots a copy of Debian's
``OVMF_VARS_4M.ms.fd`` with Secure Boot on, through Debian's signed shim -> grub -> kernel
(QEMU's direct kernel boot would meet the same db check, and Debian's kernel is signed by
Debian, not by anything in the store's db). grub loads a small initramfs (a static busybox,
Debian's signed ``efivarfs.ko`` and e2fsprogs' ``chattr`` with its libraries) whose init mounts
efivarfs and writes Microsoft's signed objects (``testdata/microsoft-secureboot-objects``,
each an EFI_VARIABLE_AUTHENTICATION_2 payload) to their variable with the attribute prefix
0x67 (NV|BS|RT|TIME_BASED_AUTHENTICATED_WRITE_ACCESS|APPEND_WRITE), one ``write()`` each, and
prints ``@@WRITE <file> <variable> status=<dd's exit status> <error>`` per write, then powers
off. The firmware (edk2's AuthVariableLib in SMM) verifies and appends them into the vars file.

Three boots per store, all of the same ESP and initramfs, only the kernel command line
choosing the writes (``fwtools.oracle=``):

- ``none``: no write, the control: what one boot does to the store by itself;
- ``db``: the files ``fw-vars update --ca-2023 --via signed`` applies to this store, in its
  order (DBUpdate2024.bin, DBUpdate3P2023.bin, DBUpdateOROM2023.bin: Windows UEFI CA 2023,
  Microsoft UEFI CA 2023, Option ROM UEFI CA 2023; and the KEK update first where the
  store's PK signed one), preceded by Microsoft's other KEK updates, which both the firmware
  and fwtools refuse (Debian's PK signed none of them);
- ``dbx``: ``dbx/amd64/DBXUpdate.bin``, what ``--dbx latest --via signed`` applies.

Then ``fw-vars update`` applies the same update offline, once to a copy of the pristine store
and once to the control boot's store, and fwtools' parser (``fwtools.formats.varstore``) reads
every store. Checked:

- db and dbx of the firmware's store equal the offline ones: data byte for byte, attributes,
  the full EFI_TIME of the timestamp (edk2 keeps the later of the stored and the payload
  timestamp on an APPEND_WRITE, ``MdeModulePkg/Universal/Variable/RuntimeDxe/Variable.c``
  UpdateVariable; Microsoft's payloads carry 2010-03-06, Debian's stores a 2025/2026 stamp);
- the offline update of the control store equals the firmware's store in every variable
  (name, GUID, attributes, data, timestamp, monotonic count, public key index): the write
  changed nothing but db or dbx, and fwtools changes nothing else either;
- efivarfs reads back, inside the guest, what the file holds (SHA-256 of attributes + data);
- the KEK writes fail in the guest and fwtools refuses the KEK update.

The stores booted (``STORES``): Debian 12's and Debian 13's ``.ms`` store as shipped;
Debian 13's with db and dbx stamped zero, so that both sides of edk2's timestamp rule occur;
and Debian 13's with its PK replaced by the certificate that signed
KEKUpdate_Microsoft_PK2.bin, so that the signed KEK update applies (firmware and fwtools
alike) before the db updates, and the other two KEK updates are refused.

Second (``test_shim_signed_only_by_uefi_ca_2023``): an image that only the updated store
trusts. No package of the corpus ships an EFI binary signed by Microsoft UEFI CA 2023 alone;
Debian's shim 16.1 (shim-signed 1.51~1) is signed twice, by Microsoft Corporation UEFI CA
2011 and by Microsoft UEFI CA 2023; with the 2011 signature removed it is a shim signed by the
2023 CA only, Microsoft's real signature, no test CA. It boots shim -> grub -> kernel on the
store ``fw-vars update --ca-2023`` made and is refused by the firmware ("Access Denied") on
the store as shipped; ``pe-inspect --vars`` says the same.

Needs qemu-system-x86, busybox-static, e2fsprogs (chattr), sbsigntool (sbattach), mtools,
gdisk and the corpus (ovmf, shim-signed, grub-efi-amd64-signed, linux-image-amd64 with its
modules); fails under FWTOOLS_REQUIRE_CORPUS=1 without them. 10-25 s of TCG per boot.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest
from click.testing import CliRunner
from corpus import Corpus
from corpus.params import need_tool, unavailable

from fwtools.cli.fw_vars import cli
from fwtools.formats.efi import guids
from fwtools.formats.varstore.model import Variable
from fwtools.formats.varstore.storeio import load_store

from .chains import Chain, Firmware, chain_files, firmware_command
from .conftest import BootRecorder
from .qemu import QemuResult, copy_vars, make_esp_image, run_qemu

MS_OBJECTS: Final = Path(__file__).resolve().parents[2] / "testdata/microsoft-secureboot-objects"
EFIVARS: Final = "/sys/firmware/efi/efivars"
APPEND_ATTRIBUTES: Final = 0x67  # NV|BS|RT|TIME_BASED_AUTHENTICATED_WRITE_ACCESS|APPEND_WRITE
BUSYBOX: Final = Path("/bin/busybox")
BOOT_TIMEOUT: Final = 600.0  # seconds before $FWTOOLS_E2E_TIMEOUT_SCALE; boots take 10-60 s

# Stop early only on a verdict that means the initramfs will never run; a good boot ends by
# itself (the init powers off, and -no-reboot makes QEMU exit).
FAILURE_MARKERS: Final = (
    r"Security Violation|Access Denied|Verification failed",  # BdsDxe / shim
    r"bad shim signature|you need to load the kernel first|FWTOOLS-LINUX-FAILED",  # grub
    r"!!!! X64 Exception|X64 Exception Type",
    r"Kernel panic",
    r"No bootable option or device was found",
)


def efivar_file(name: str, guid: uuid.UUID) -> str:
    """The efivarfs file name of a variable: NAME-guid."""
    return f"{name}-{guid}"


@dataclass(frozen=True)
class GuestWrite:
    """One SetVariable the guest makes: ``payload`` to ``variable`` with APPEND_WRITE."""

    payload: Path
    variable: str
    guid: uuid.UUID

    @property
    def label(self) -> str:
        return self.payload.name


@dataclass(frozen=True)
class WriteOutcome:
    label: str
    variable: str
    status: int
    error: str


_WRITE_RE: Final = re.compile(r"^@@WRITE (?P<label>\S+) (?P<var>\S+) status=(?P<status>\d+)"
                              r" ?(?P<error>.*)$", re.MULTILINE)
_READ_RE: Final = re.compile(r"^@@READ (?P<var>\S+) (?P<sha>[0-9a-f]{64}|missing)$",
                             re.MULTILINE)


# -- the initramfs ----------------------------------------------------------------------------


def _cpio_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
                ino: int = 0) -> bytes:
    """One record of the "newc" cpio format the kernel unpacks (Documentation/
    driver-api/early-userspace/buffer-format.rst): a 110-byte ASCII header, the name with its
    NUL, padding to 4, the data, padding to 4."""
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = header + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)


def cpio_archive(files: Mapping[str, bytes], executables: Iterable[str] = ()) -> bytes:
    """A newc archive of ``files`` (path -> content; parent directories made), with a
    /dev/console node and empty /proc, /sys and /tmp, for the kernel to unpack as its
    initramfs."""
    execs = set(executables)
    dirs = {"dev", "proc", "sys", "tmp"}
    for path in files:
        parts = path.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    out = bytearray()
    ino = 1
    for d in sorted(dirs):
        out += _cpio_entry(d, 0o040755, ino=ino)
        ino += 1
    out += _cpio_entry("dev/console", 0o020600, rdev=(5, 1), ino=ino)
    for path, data in sorted(files.items()):
        ino += 1
        out += _cpio_entry(path, 0o100755 if path in execs else 0o100644, data, ino=ino)
    return bytes(out + _cpio_entry("TRAILER!!!", 0))


def with_libraries(binary: Path) -> dict[str, bytes]:
    """``binary`` and the shared objects ``ldd`` says it loads, each at its own path."""
    out = {str(binary).lstrip("/"): binary.read_bytes()}
    listing = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True,
                             timeout=30).stdout
    for line in listing.splitlines():
        m = re.search(r"(?:=> )?(/\S+) \(0x", line)
        if m:
            out[m.group(1).lstrip("/")] = Path(m.group(1)).resolve().read_bytes()
    return out


def kernel_module(corpus: Corpus, suite: str, name: str) -> bytes:
    """The kernel package's module ``name`` (e.g. efivarfs), decompressed: Debian signs a
    module before compressing it, so the plain .ko keeps its signature for lockdown."""
    hits = corpus.files(suite, "amd64", "linux-image-amd64", f"**/kernel/fs/{name}/{name}.ko*")
    if len(hits) != 1:
        raise LookupError(f"{suite}: {len(hits)} copies of {name}.ko in linux-image-amd64")
    data = hits[0].read_bytes()
    return lzma.decompress(data) if hits[0].suffix == ".xz" else data


INIT_SCRIPT: Final = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
set=none
for word in $(cat /proc/cmdline); do
  case "$word" in fwtools.oracle=*) set="${word#fwtools.oracle=}" ;; esac
done
echo "@@ORACLE set=$set"
insmod /efivarfs.ko; echo "@@INSMOD status=$?"
mount -t efivarfs efivarfs EFIVARS; echo "@@MOUNT status=$?"
echo "@@SECUREBOOT $(od -An -tx1 EFIVARS/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c)"
if [ -f "/oracle/$set.list" ]; then
  while read -r file var label; do
    # efivarfs makes every variable outside its own short list immutable; the write is one
    # write() of attributes + payload (dd reads the whole file, then writes it at once).
    [ -e "EFIVARS/$var" ] && chattr -i "EFIVARS/$var"
    dd if="/oracle/$file" of="EFIVARS/$var" bs=1M conv=notrunc 2>/tmp/dd.err
    status=$?
    error=""; [ $status -eq 0 ] || error="$(grep -m 1 '^dd: ' /tmp/dd.err)"
    echo "@@WRITE $label $var status=$status $error"
  done <"/oracle/$set.list"
fi
for var in READBACK; do
  if [ -e "EFIVARS/$var" ]; then
    echo "@@READ $var $(sha256sum <"EFIVARS/$var" | cut -c1-64)"
  else
    echo "@@READ $var missing"
  fi
done
echo "@@DONE"
sync
poweroff -f
"""


def oracle_initramfs(corpus: Corpus, suite: str, sets: Mapping[str, list[GuestWrite]],
                     readback: Iterable[str]) -> bytes:
    """The initramfs: busybox, efivarfs.ko, chattr, and per set of writes a list file
    (``/oracle/<set>.list``: payload file, efivarfs name, label) and the payloads, each
    prefixed with the attributes (UINT32 little-endian) as efivarfs expects."""
    if not BUSYBOX.exists():
        unavailable("e2e: /bin/busybox not installed (apt-get install busybox-static)")
    chattr = Path(need_tool("chattr"))
    need_tool("ldd")
    programs = {"bin/busybox": BUSYBOX.read_bytes(), **with_libraries(chattr)}
    files = {"efivarfs.ko": kernel_module(corpus, suite, "efivarfs"), **programs}
    for name, writes in sets.items():
        lines = []
        for n, w in enumerate(writes):
            stored = f"{name}-{n}"
            files[f"oracle/{stored}"] = struct.pack("<I", APPEND_ATTRIBUTES) + \
                w.payload.read_bytes()
            lines.append(f"{stored} {efivar_file(w.variable, w.guid)} {w.label}\n")
        files[f"oracle/{name}.list"] = "".join(lines).encode()
    script = INIT_SCRIPT.replace("EFIVARS", EFIVARS).replace("READBACK", " ".join(readback))
    files["init"] = script.encode()
    # Executable: the programs and their libraries (the kernel opens the ELF interpreter,
    # ld-linux, for execution too).
    return cpio_archive(files, executables=["init", *programs])


# -- booting ----------------------------------------------------------------------------------


@dataclass
class GuestRun:
    """One boot: the console, the store the firmware left, what the init reported."""

    result: QemuResult
    vars_path: Path

    @property
    def writes(self) -> list[WriteOutcome]:
        return [WriteOutcome(m["label"], m["var"], int(m["status"]), m["error"].strip())
                for m in _WRITE_RE.finditer(self.result.output)]

    @property
    def readback(self) -> dict[str, str]:
        return {m["var"]: m["sha"] for m in _READ_RE.finditer(self.result.output)}

    @property
    def completed(self) -> bool:
        return self.result.saw(r"^@@DONE") and not self.result.killed

    def describe(self) -> str:
        marks = "\n".join(ln for ln in self.result.lines if ln.startswith("@@"))
        return f"--- guest markers ---\n{marks}\n{self.result.describe()}"


def boot_guest(chain: Chain, code: Path, template: Path, initrd: bytes, oracle_set: str,
               workdir: Path) -> GuestRun:
    """Boot ``chain`` on ``code`` with a fresh copy of ``template`` (Secure Boot on), the
    initramfs ``initrd`` and ``fwtools.oracle=<oracle_set>``; the store is kept."""
    workdir.mkdir(parents=True, exist_ok=True)
    vars_path = copy_vars(template, workdir / "vars.fd")
    esp = make_esp_image(workdir / "esp.img", chain_files(
        chain, initrd=initrd, append=f"loglevel=4 fwtools.oracle={oracle_set}"))
    fw = Firmware(f"{code.name} + {template.name}", "x64", code, template, True)
    cmd = firmware_command(fw, vars_path, esp, workdir=workdir)
    result = run_qemu(cmd, timeout=BOOT_TIMEOUT, stop_markers=list(FAILURE_MARKERS),
                      serial_log=workdir / "serial.log")
    return GuestRun(result, vars_path)


# -- comparing --------------------------------------------------------------------------------


Key = tuple[uuid.UUID, str]


def variables(path: Path) -> dict[Key, Variable]:
    """Every live variable of a store, read with fwtools' own parser."""
    loaded = load_store(path)
    assert loaded.store is not None, path
    return {v.key: v for v in loaded.store}


def describe(var: Variable | None) -> str:
    if var is None:
        return "absent"
    stamp = var.timestamp.to_bytes().hex() if var.timestamp is not None else "-"
    return (f"attributes {var.attributes:#x}, {len(var.data)} bytes, sha256 "
            f"{hashlib.sha256(var.data).hexdigest()[:16]}, timestamp "
            f"{var.timestamp.isoformat() if var.timestamp else None} (EFI_TIME {stamp}), "
            f"monotonic count {var.monotonic_count}, pubkey index {var.pubkey_index}")


def same(a: Variable | None, b: Variable | None) -> bool:
    """Equal as stored: attributes, data, the whole EFI_TIME, monotonic count, key index."""
    if a is None or b is None:
        return a is b
    return ((a.attributes, bytes(a.data), a.timestamp, a.monotonic_count, a.pubkey_index)
            == (b.attributes, bytes(b.data), b.timestamp, b.monotonic_count, b.pubkey_index))


def differences(firmware: Mapping[Key, Variable], offline: Mapping[Key, Variable],
                keys: Iterable[Key] | None = None) -> list[str]:
    """Every variable (or those of ``keys``) that is not the same in both stores."""
    wanted = sorted(set(keys) if keys is not None else firmware.keys() | offline.keys(),
                    key=lambda k: (k[1], str(k[0])))
    return [f"{name} ({guid}):\n  firmware: {describe(firmware.get((guid, name)))}\n"
            f"  fwtools:  {describe(offline.get((guid, name)))}"
            for guid, name in wanted if not same(firmware.get((guid, name)),
                                                   offline.get((guid, name)))]


def fw_vars_update(store: Path, out: Path, *options: str) -> tuple[int, dict[str, object]]:
    """``fw-vars update STORE --via signed --signed-dir MS -o OUT --json OPTIONS``."""
    result = CliRunner().invoke(cli, ["update", str(store), *options, "--via", "signed",
                                      "--signed-dir", str(MS_OBJECTS), "-o", str(out),
                                      "--json"], catch_exceptions=False)
    doc = json.loads(result.stdout)
    store_doc = doc["stores"][0]
    assert isinstance(store_doc, dict)
    return result.exit_code, store_doc


# -- the oracle -------------------------------------------------------------------------------

IMAGE_SECURITY: Final = guids.EFI_IMAGE_SECURITY_DATABASE
UPDATES: Final[dict[str, tuple[str, ...]]] = {
    "db": ("--ca-2023",),
    "dbx": ("--dbx", "latest"),
}
DB_FILES: Final = ("DBUpdate2024.bin", "DBUpdate3P2023.bin", "DBUpdateOROM2023.bin")
KEK_UPDATES: Final = tuple(sorted((MS_OBJECTS / "kek").glob("KEKUpdate_*.bin")))
SURFACE_KEK_UPDATE: Final = MS_OBJECTS / "kek" / "KEKUpdate_Microsoft_PK2.bin"
READBACK: Final = tuple(efivar_file(n, g) for n, g in (
    ("db", IMAGE_SECURITY), ("dbx", IMAGE_SECURITY), ("KEK", guids.EFI_GLOBAL_VARIABLE)))
KEY_VARIABLES: Final = ((IMAGE_SECURITY, "db"), (IMAGE_SECURITY, "dbx"),
                        (guids.EFI_GLOBAL_VARIABLE, "KEK"), (guids.EFI_GLOBAL_VARIABLE, "PK"))


# The stores booted:
# - "ms": Debian's .ms store as shipped (db/dbx stamped 2025-03-10 in bookworm, 2026-01-04 in
#   trixie: later than the 2010-03-06T19:17:21 of every Microsoft payload, so an append
#   keeps them); Debian's PK signed none of Microsoft's KEK updates: all three are refused;
# - "ms-zero-stamps": trixie's with db and dbx stamped zero (the payload's stamp is later and
#   replaces it);
# - "ms-surface-pk": trixie's with its PK replaced by the certificate that signed
#   KEKUpdate_Microsoft_PK2.bin (a Microsoft Surface PK; only the certificate is needed),
#   so the signed KEK update applies too: the KEK path of --via signed.
STORES: Final = (("trixie", "ms"), ("bookworm", "ms"), ("trixie", "ms-zero-stamps"),
                 ("trixie", "ms-surface-pk"))
PAYLOAD_STAMP: Final = "2010-03-06T19:17:21Z"


def expected_files(variant: str, update: str) -> tuple[str, ...]:
    """The signed objects ``fw-vars update --via signed`` applies, in its order."""
    if update == "dbx":
        return ("DBXUpdate.bin",)
    return ((SURFACE_KEK_UPDATE.name,) if variant == "ms-surface-pk" else ()) + DB_FILES


def surface_pk(src: Path, dest: Path) -> Path:
    """A copy of ``src`` whose PK is the signer certificate of KEKUpdate_Microsoft_PK2.bin
    (PK's attributes and timestamp kept), written with fwtools' store writer."""
    from fwtools.crypto.authvar import auth_signature_info
    from fwtools.formats.efi.authvar import AuthVariable2
    from fwtools.formats.efi.siglist import SignatureDatabase
    from fwtools.formats.varstore.store import VariableStore

    signer = auth_signature_info(AuthVariable2.parse(SURFACE_KEK_UPDATE.read_bytes()))
    store = VariableStore.parse(src.read_bytes(), path=str(src))
    pk = store.get("PK", guids.EFI_GLOBAL_VARIABLE)
    assert pk is not None
    data = SignatureDatabase(()).add_certificate(signer.signers[0].der, guids.MICROSOFT)
    store.set(Variable("PK", pk.guid, pk.attributes, data.to_bytes(), pk.timestamp))
    dest.write_bytes(store.to_bytes())
    return dest


def zero_stamps(src: Path, dest: Path, names: Iterable[str]) -> Path:
    """A copy of ``src`` whose variables ``names`` (image security database) carry an
    all-zero EFI_TIME, written with fwtools' store writer."""
    from fwtools._base.efitime import EfiTime
    from fwtools.formats.varstore.store import VariableStore

    store = VariableStore.parse(src.read_bytes(), path=str(src))
    for name in names:
        var = store.get(name, IMAGE_SECURITY)
        assert var is not None and var.timestamp is not None
        store.set(Variable(var.name, var.guid, var.attributes, bytes(var.data), EfiTime.zero()))
    dest.write_bytes(store.to_bytes())
    return dest


@dataclass
class Oracle:
    """One store's offline updates, and its boots, each made when a test first asks for it
    (under pytest-xdist each worker that gets a test of this store sets the fixture up, and
    then boots only what its tests need)."""

    suite: str
    variant: str
    pristine: Path
    plans: dict[str, dict[str, object]]  # update -> fw-vars update's JSON for the store
    offline: dict[str, Path]  # update -> the pristine store updated by fwtools
    chain: Chain
    code: Path
    initrd: bytes
    work: Path
    runs: dict[str, GuestRun] = field(default_factory=dict)

    def run(self, oracle_set: str) -> GuestRun:
        """The boot with ``fwtools.oracle=<oracle_set>`` ("none", "db" or "dbx")."""
        if oracle_set not in self.runs:
            self.runs[oracle_set] = boot_guest(self.chain, self.code, self.pristine,
                                               self.initrd, oracle_set,
                                               self.work / f"boot-{oracle_set}")
        return self.runs[oracle_set]


def planned_writes(doc: Mapping[str, object]) -> list[GuestWrite]:
    """The signed objects ``fw-vars update`` applied, in its order, as guest writes."""
    out = []
    changes = doc["changes"]
    assert isinstance(changes, list)
    for change in changes:
        for added in change["added"]:
            assert added["via"] == "signed", added
            out.append(GuestWrite(Path(added["source"]), change["variable"],
                                  uuid.UUID(change["guid"])))
    return out




@pytest.fixture(scope="module", params=STORES, ids=["-".join(s) for s in STORES])
def oracle(request: pytest.FixtureRequest, corpus: Corpus, qemu_tools: None,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    """Plan both updates offline and build the initramfs; the boots come on demand."""
    suite, variant = request.param
    work = tmp_path_factory.mktemp(f"oracle-{suite}-{variant}")
    pristine = work / "OVMF_VARS_4M.ms.fd"
    shutil.copyfile(corpus.ovmf(suite, "OVMF_VARS_4M.ms.fd"), pristine)
    pristine.chmod(0o644)
    if variant == "ms-zero-stamps":
        pristine = zero_stamps(pristine, work / "OVMF_VARS_4M.ms-zero-stamps.fd", ["db", "dbx"])
    elif variant == "ms-surface-pk":
        pristine = surface_pk(pristine, work / "OVMF_VARS_4M.ms-surface-pk.fd")
    plans: dict[str, dict[str, object]] = {}
    offline: dict[str, Path] = {}
    sets: dict[str, list[GuestWrite]] = {"none": []}
    for name, options in UPDATES.items():
        out = work / f"offline-{name}.fd"
        status, doc = fw_vars_update(pristine, out, *options)
        plans[name], offline[name] = doc, out
        writes = planned_writes(doc)
        assert tuple(w.label for w in writes) == expected_files(variant, name), doc
        # fw-vars exits 1 for a refused KEK update (Debian's PK signed none of Microsoft's).
        assert status == (1 if doc["refusals"] else 0), doc
        # The guest first tries the KEK updates fwtools did not apply (refused by both).
        kek = [GuestWrite(p, "KEK", guids.EFI_GLOBAL_VARIABLE) for p in KEK_UPDATES
               if p.name not in expected_files(variant, name)]
        sets[name] = kek + writes if name == "db" else writes
    initrd = oracle_initramfs(corpus, suite, sets, READBACK)
    shim, grub, kernel = corpus.boot_chain(suite, "amd64")
    chain = Chain(suite, "x64", shim, grub, kernel)
    code = corpus.ovmf(suite, "OVMF_CODE_4M.secboot.fd")
    yield Oracle(suite, variant, pristine, plans, offline, chain, code, initrd, work)


def _check_boot(run: GuestRun, record_boot: BootRecorder, what: str) -> None:
    record_boot(run.result, what)
    assert run.completed, run.describe()
    assert run.result.saw(r"^@@INSMOD status=0") and run.result.saw(r"^@@MOUNT status=0"), \
        run.describe()
    # SecureBoot = 1: efivarfs shows the attributes (06 00 00 00: BS|RT) and the byte.
    assert run.result.saw(r"^@@SECUREBOOT +06 00 00 00 01$"), run.describe()


@pytest.mark.parametrize("update", ["db", "dbx"])
def test_firmware_applies_what_fwtools_applies(oracle: Oracle, update: str,
                                               record_boot: BootRecorder,
                                               tmp_path: Path) -> None:
    run = oracle.run(update)
    _check_boot(run, record_boot,
                f"{oracle.suite} {oracle.variant}: guest writes the signed {update} update")
    writes = {w.label: w for w in run.writes}
    applied = expected_files(oracle.variant, update)
    for label in applied:
        assert label in writes and writes[label].status == 0, run.describe()
    refusals = oracle.plans[update]["refusals"]
    assert isinstance(refusals, list)
    if update == "db":
        refused = [p.name for p in KEK_UPDATES if p.name not in applied]
        assert len(refused) == (2 if oracle.variant == "ms-surface-pk" else 3)
        for name in refused:
            # EFI_SECURITY_VIOLATION, which efivarfs returns as EACCES.
            w = writes.get(name)
            assert w is not None and w.status != 0, run.describe()
            assert w.error.endswith("Permission denied"), run.describe()
        # fwtools refuses the KEK update exactly when no KEK update is applied.
        assert [r["variable"] for r in refusals] == (
            [] if oracle.variant == "ms-surface-pk" else ["KEK"]), refusals

    firmware = variables(run.vars_path)
    pristine = variables(oracle.pristine)
    offline = variables(oracle.offline[update])
    db, dbx = (IMAGE_SECURITY, "db"), (IMAGE_SECURITY, "dbx")
    target = db if update == "db" else dbx
    # The firmware changed the target (and KEK for the Surface PK), fwtools the same way.
    assert not same(firmware[target], pristine[target])
    kek = (guids.EFI_GLOBAL_VARIABLE, "KEK")
    assert same(firmware[kek], pristine[kek]) != (
        update == "db" and oracle.variant == "ms-surface-pk")
    # edk2 keeps the later of the stored and the payload's timestamp.
    stamp, before = firmware[target].timestamp, pristine[target].timestamp
    assert stamp is not None and before is not None
    expected = PAYLOAD_STAMP if before.is_zero else before.isoformat()
    assert stamp.isoformat() == expected, describe(firmware[target])
    problems = differences(firmware, offline, KEY_VARIABLES)
    assert not problems, "\n".join(problems) + "\n" + run.describe()

    # The whole store: the control boot's store updated offline equals the firmware's.
    control_updated = tmp_path / "control-updated.fd"
    code, doc = fw_vars_update(oracle.run("none").vars_path, control_updated,
                               *UPDATES[update])
    assert code == (1 if refusals else 0) and doc["refusals"] == refusals
    problems = differences(firmware, variables(control_updated))
    assert not problems, "\n".join(problems)

    # efivarfs read back, in the guest, what the file holds.
    for var in (firmware[db], firmware[dbx], firmware[kek]):
        content = struct.pack("<I", var.attributes) + bytes(var.data)
        assert run.readback[efivar_file(var.name, var.guid)] == \
            hashlib.sha256(content).hexdigest(), run.describe()


def test_control_boot_changes_no_key(oracle: Oracle, record_boot: BootRecorder) -> None:
    """Without a write, a boot leaves PK/KEK/db/dbx as they were."""
    run = oracle.run("none")
    _check_boot(run, record_boot, f"{oracle.suite} {oracle.variant}: control boot, no write")
    assert run.writes == []
    firmware, pristine = variables(run.vars_path), variables(oracle.pristine)
    assert not differences(firmware, pristine, KEY_VARIABLES)


# -- an image only the updated store trusts ---------------------------------------------------


def shim_2023_only(shim: Path, dest: Path) -> Path:
    """A copy of Debian's dual-signed shim (shim-signed 1.51: one WIN_CERTIFICATE by Microsoft
    Corporation UEFI CA 2011, a second by Microsoft UEFI CA 2023) with the 2011 signature
    removed (``sbattach --remove --signum 0``). The 2023 signature is Microsoft's own and still
    covers the image, since the Authenticode digest leaves out the certificate table: this is
    the shim Microsoft will sign from now on, signed by nothing else."""
    sbattach = need_tool("sbattach")
    shutil.copyfile(shim, dest)
    subprocess.run([sbattach, "--remove", "--signum", "0", str(dest)], check=True,
                   capture_output=True, timeout=60)
    return dest


def pe_verdict(image: Path, store: Path) -> tuple[list[str], str]:
    """(signature issuers, fwtools' verdict) of ``pe-inspect --vars STORE --json IMAGE``."""
    from fwtools.cli.pe_inspect import pe_inspect

    result = CliRunner().invoke(pe_inspect, ["--json", "--vars", str(store), str(image)],
                                catch_exceptions=False)
    doc = json.loads(result.stdout)["files"][0]
    return [s["issuer"] for s in doc["signatures"]], doc["verification"]["status"]


@pytest.mark.parametrize(("suite", "via"), [("trixie", "signed"), ("bookworm", "signed"),
                                            ("trixie", "owner")])
def test_shim_signed_only_by_uefi_ca_2023(suite: str, via: str, corpus: Corpus,
                                          qemu_tools: None, tmp_path: Path,
                                          record_boot: BootRecorder) -> None:
    """Debian's shim with only its Microsoft UEFI CA 2023 signature boots shim -> grub ->
    kernel on the store ``fw-vars update --ca-2023`` made, and the firmware refuses it
    ("Access Denied") on the store as Debian ships it, whose db has only the 2011 CAs."""
    from .chains import boot_chain

    pristine = tmp_path / "OVMF_VARS_4M.ms.fd"
    shutil.copyfile(corpus.ovmf(suite, "OVMF_VARS_4M.ms.fd"), pristine)
    pristine.chmod(0o644)
    updated = tmp_path / "updated.fd"
    args = ["update", str(pristine), "--ca-2023", "--via", via, "-o", str(updated)]
    if via == "signed":
        args += ["--signed-dir", str(MS_OBJECTS)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    # --via signed refuses the KEK update (exit 1) and still writes the db updates.
    assert result.exit_code == (1 if via == "signed" else 0), result.output
    shim, grub, kernel = corpus.boot_chain(suite, "amd64")
    shim = shim_2023_only(shim, tmp_path / "shimx64-2023-only.efi")
    assert pe_verdict(shim, updated) == (
        ["CN=Microsoft UEFI CA 2023,O=Microsoft Corporation,C=US"], "trusted")
    assert pe_verdict(shim, pristine)[1] == "untrusted"

    chain = Chain(suite, "x64", shim, grub, kernel)
    code = corpus.ovmf(suite, "OVMF_CODE_4M.secboot.fd")
    for store, expected in ((updated, ("kernel", "kernel")), (pristine, ("refused", "firmware"))):
        fw = Firmware(f"{suite} {store.name}", "x64", code, store, True)
        boot = boot_chain(chain, fw, workdir=tmp_path / f"boot-{store.stem}",
                          serial_log=tmp_path / f"serial-{store.stem}.log")
        record_boot(boot.result, f"{suite} 2023-only shim on {store.name}: {boot.outcome}")
        assert (boot.outcome, boot.stage) == expected, boot.describe()
        if expected[0] == "kernel":
            assert boot.result.saw(r"EFI stub: UEFI Secure Boot is enabled"), boot.describe()
        else:
            assert boot.result.saw(r"BdsDxe: failed to load Boot\d+ .*: Access Denied"), \
                boot.describe()
