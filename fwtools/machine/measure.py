"""Predict the TCG events (and so the PCR values) a machine's boot measures, from its files:
a variable store and the chain of EFI binaries the firmware, shim and GRUB load.

The order and contents follow what edk2 (Debian's OVMF 2022.11 and 2025.02), shim 16.1 and
Debian's GRUB 2.06/2.12 measure; docs/reference/measured-boot.md has the facts and
testdata/tcg/ three real logs that the tests hold every claimed PCR to:

- PCR 7: ``Tcg2Dxe.c`` ``MeasureAllSecureVariables`` (SecureBoot, PK, KEK, db, dbx as
  EV_EFI_VARIABLE_DRIVER_CONFIG over the whole ``UEFI_VARIABLE_DATA``, an absent variable
  with no data; dbt when present, never dbr), the separator, then one
  EV_EFI_VARIABLE_AUTHORITY per distinct db entry that verified an image
  (``DxeImageVerificationLib`` ``Measurement.c``), shim's SbatLevel (``sbat.c``
  ``set_sbat_uefi_variable``/``mirror_one_mok_variable``) and the entry shim verified each
  next stage with (``verify.c``/``tpm.c`` ``tpm_measure_variable``: ``db`` or ``MokListRT``).
- PCR 4: "Calling EFI Application from Boot Option" (``Tcg2Dxe.c`` ``OnReadyToBoot``), the
  separator, then the edk2 Authenticode digest (no padding) of each image
  (``DxeTpm2MeasureBootLib.c``; shim ``tpm_log_pe``; GRUB's shim_lock ``Verify``, twice for
  the kernel in Debian's 2.06, once in 2.12).
- PCR 5: separator, the GPT of the boot disk (``Tcg2MeasureGptTable``), the two
  ExitBootServices actions.
- PCR 2, 3, 6: the separator alone (no option ROMs or drivers from outside the firmware).
- PCR 8: GRUB's commands (``commands/tpm.c``: ``grub_cmd: <line>``, ``kernel_cmdline:``), from
  a grub.cfg the caller gives (flat command lists).
- PCR 9: the files GRUB reads (grub.cfg, the kernel, the initrd) and, after GRUB 2.12, Linux's
  EFI stub LoadOptions and initrd events (``efi-stub-helper.c``).
- PCR 14: shim's mirrored MokList, MokListX and MokListTrusted as EV_IPL (``mok.c``).

- PCR 4, 5, 9, 11, 12 with systemd-boot and a UKI: ``measure_sd.py``.

PCRs 0, 1, 10, 13 and 15 are reported as not predicted, each with its reason.
"""

from __future__ import annotations

import functools
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from fwtools._base.fileio import read_file
from fwtools.errors import UsageError
from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import SignatureData, SignatureDatabase, SignatureList
from fwtools.formats.pe.authenticode import authenticode_digests
from fwtools.formats.pe.image import PeImage
from fwtools.formats.tcg import layout as L
from fwtools.machine import measure_sd
from fwtools.machine.events import (
    EV_EFI_BOOT_SERVICES_APPLICATION,
    EV_EFI_GPT_EVENT,
    EV_EFI_VARIABLE_AUTHORITY,
    EV_EFI_VARIABLE_DRIVER_CONFIG,
    LINUX_INITRD_TAG,
    LINUX_LOAD_OPTIONS_TAG,
    PredictedEvent,
    Stage,
    StageKind,
    action,
    image_event,
    ipl_event,
    separator,
    tagged_event,
    variable_data,
    variable_event,
)
from fwtools.machine.events import hashed_event as _hashed_event

if TYPE_CHECKING:
    from fwtools.crypto.trust import TrustAnchors
    from fwtools.formats.disk.device import BlockDevice


CALLING: Final = "Calling EFI Application from Boot Option"
EBS_INVOCATION: Final = "Exit Boot Services Invocation"
EBS_SUCCESS: Final = "Exit Boot Services Returned with Success"
# shim's sbat.h SBAT_ORIGINAL: what shim resets SbatLevel to with Secure Boot off.
SBAT_ORIGINAL: Final = "sbat,1,2021030218\n"
DEFAULT_BANKS: Final = ("sha1", "sha256")
ALL_PCRS: Final = tuple(range(16))
DEFAULT_GRUB_PREFIX: Final = "(hd0,gpt1)/EFI/debian"
AA64: Final = 0xAA64  # IMAGE_FILE_MACHINE_ARM64



@dataclass
class Prediction:
    events: list[PredictedEvent]
    banks: dict[str, dict[int, bytes]]
    predicted: tuple[int, ...]
    not_predicted: dict[int, str]
    stages: list[tuple[str, StageKind]]
    notes: list[str] = field(default_factory=list)
    secure_boot: bool = False


@dataclass
class MachineInput:
    """What a prediction is made from. ``store`` is anything with ``get(name, guid)``
    (a ``storeio.LoadedStore``); ``chain`` the files in load order (shim, grub, kernel, or
    one UKI/application); ``qemu_kernel`` says the one kernel comes from QEMU ``-kernel``;
    ``disk`` a raw or qcow2 image whose GPT the firmware measures; ``grub_cfg`` the text
    GRUB reads, ``grub_prefix`` its ``$prefix``."""

    store: object
    chain: Sequence[str]
    banks: Sequence[str] = DEFAULT_BANKS
    secure_boot: bool | None = None
    qemu_kernel: bool = False
    disk: str | None = None
    grub_cfg: str | bytes | None = None
    grub_prefix: str = DEFAULT_GRUB_PREFIX
    initrd: str | None = None


# -- event builders ---------------------------------------------------------------------


# -- the chain --------------------------------------------------------------------------


def _sections(img: PeImage) -> dict[str, object]:
    from fwtools.formats.pe.special import special_sections

    return {s.name: s.decoded for s in special_sections(img)}


def classify(path: str, img: PeImage) -> Stage:
    """Which loader ``img`` is: shim (``.vendor_cert``), GRUB (SBAT ``grub``), a UKI
    (``.linux``), systemd-boot (``.sdmagic``), a Linux kernel (bzImage or arm64 Image) or
    another application."""
    from fwtools.formats.sbat.sbat import Sbat

    names = {s.name for s in img.sections}
    if ".linux" in names:
        return Stage(path, img, "uki")
    if measure_sd.is_systemd_boot(img):
        return Stage(path, img, "systemd-boot")
    decoded = _sections(img)
    if ".vendor_cert" in decoded:
        return Stage(path, img, "shim")
    sbat = decoded.get(".sbat")
    if isinstance(sbat, Sbat):
        for row in sbat.rows:
            if row.component == "grub":
                version = None
                for other in sbat.rows:
                    if other.component.startswith("grub.") and other.vendor_version:
                        version = other.vendor_version.split("-")[0]
                        break
                return Stage(path, img, "grub", version or row.vendor_version)
    if img.data[0x202:0x206] == b"HdrS" or img.data[0x38:0x3C] == b"ARM\x64":
        return Stage(path, img, "kernel")
    return Stage(path, img, "application")


def _grub_before_212(stage: Stage) -> bool:
    try:
        major, minor = (int(x) for x in (stage.version or "2.12").split(".")[:2])
    except ValueError:
        return False
    return (major, minor) < (2, 12)


def _grub_measures_kernel_twice(stage: Stage) -> bool:
    """Debian's GRUB 2.06 for x86-64 logs the kernel twice in PCR 4 (shim_lock ``Verify``
    from the verifier and again from linuxefi); 2.12, and 2.06 for arm64 (no linuxefi), once
    [measured, docs/reference/measured-boot.md §4; tests/e2e/test_fw_pcr_predict_cases.py]."""
    return _grub_before_212(stage) and stage.image.machine != AA64


def _grub_206_arm64(stage: Stage) -> bool:
    """Debian 12's arm64 GRUB (2.06): its PCR 8 and 9 under AAVMF differ from the x86-64
    model and no log of them was available (Debian's arm64 kernel has no driver for QEMU's
    tpm-tis-device), so they are not predicted."""
    return _grub_before_212(stage) and stage.image.machine == AA64


# -- Secure Boot ------------------------------------------------------------------------


def _get(store: object, name: str, guid: uuid.UUID) -> bytes | None:
    var = store.get(name, guid)  # type: ignore[attr-defined]
    return None if var is None else bytes(var.data)


def _secure_boot(store: object, override: bool | None) -> bool:
    """edk2's SecureBoot: 1 when a PK is enrolled (user mode) and SecureBootEnable is not
    0 (``SecureBootConfigDxe``); ``override`` wins (a firmware without Secure Boot)."""
    if override is not None:
        return override
    pk = _get(store, "PK", guids.EFI_GLOBAL_VARIABLE)
    enable = _get(store, "SecureBootEnable",
                  uuid.UUID("f0a30bc7-af08-4556-99c4-001009c93a44"))
    return bool(pk) and enable != b"\x00"


def _lists(data: bytes | None) -> tuple[SignatureList, ...]:
    return SignatureDatabase.parse(data).lists if data else ()


@dataclass(frozen=True)
class Authority:
    name: str
    guid: uuid.UUID
    entry: SignatureData


@functools.lru_cache(maxsize=64)
def _anchors(db: tuple[SignatureList, ...], dbx: tuple[SignatureList, ...]) -> TrustAnchors:
    from fwtools.crypto.trust import TrustAnchors

    return TrustAnchors.from_signature_lists(db, dbx)


@functools.lru_cache(maxsize=256)
def _cert_label(data: bytes) -> str:
    from fwtools.crypto.x509info import certificate_info
    from fwtools.errors import FwError

    try:
        info = certificate_info(data)
    except (FwError, ValueError):
        return f"hash {data.hex()[:16]}…"
    return info.common_name or info.subject


def _entry_label(entry: SignatureData) -> str:
    """The certificate's subject CN (or the hash) of a signature database entry."""
    return _cert_label(entry.data)


def _db_text(name: str, data: bytes) -> str:
    if not data:
        return f"{name} = (empty)"
    from fwtools.errors import FwError

    try:
        lists = SignatureDatabase.parse(data).lists
    except FwError:
        return f"{name} = {len(data)} bytes (not signature lists)"
    entries = [e for sl in lists for e in sl.entries]
    certs = [_entry_label(e) for sl in lists if sl.is_x509 for e in sl.entries]
    text = f"{name} = {len(lists)} lists, {len(entries)} entries"
    return text + (": " + "; ".join(certs) if certs else "")


def _verifier(stage: Stage, db: Sequence[SignatureList],
              dbx: Sequence[SignatureList]) -> SignatureData | None:
    """The db entry (owner + data) that lets firmware (or shim) run ``stage``, or None."""
    from fwtools.crypto.authenticode import image_signatures
    from fwtools.crypto.trust import verify_image

    anchors = _anchors(tuple(db), tuple(dbx))
    img, digests = stage.image, stage.digests
    result = verify_image(img, image_signatures(img, digests), anchors, digests=digests)
    if not result.trusted:
        return None
    wanted: bytes | None = None
    if result.chain:
        wanted = result.chain[-1].der
    elif result.entry is not None:
        wanted = result.entry.digest
    for sl in db:
        for entry in sl.entries:
            if wanted is not None and entry.data[: len(wanted)] == wanted:
                return entry
    return None


# -- the prediction ---------------------------------------------------------------------


class _Builder:
    def __init__(self, machine: MachineInput) -> None:
        self.m = machine
        self.banks = list(machine.banks)
        self.events: list[PredictedEvent] = []
        self.notes: list[str] = []
        self.not_predicted: dict[int, str] = {}
        self.measured_authorities: set[bytes] = set()
        self.refusals = 0
        self.secure_boot = False

    def add(self, event: PredictedEvent) -> None:
        self.events.append(event)

    def authority(self, name: str, guid: uuid.UUID, entry_bytes: bytes, description: str,
                  source: str) -> None:
        """An EV_EFI_VARIABLE_AUTHORITY, once per distinct event (edk2 ``IsDataMeasured``,
        shim's ``tpm_measure_variable`` dedup)."""
        raw = source.encode() + variable_data(guid, name, entry_bytes)
        if raw in self.measured_authorities:
            return
        self.measured_authorities.add(raw)
        self.add(variable_event(7, EV_EFI_VARIABLE_AUTHORITY, guid, name, entry_bytes,
                                self.banks, description, source))

    def take(self, measured: measure_sd.Measured) -> None:
        self.events.extend(measured.events)
        self.notes.extend(measured.notes)
        for pcr, reason in measured.not_claimed.items():
            self.not_claimed(pcr, reason)

    def not_claimed(self, pcr: int, reason: str) -> None:
        self.not_predicted.setdefault(pcr, reason)

    def refused(self, path: str, who: str) -> None:
        """``who`` will not run ``path``: the boot goes elsewhere (edk2 tries the next boot
        option, shim stops), so what follows is not predicted."""
        self.refusals += 1
        self.notes.append(f"{path}: {who} refuses it; the boot stops there")
        for pcr in (4, 5, 7, 8, 9, 11, 14):
            self.not_claimed(pcr, f"{who} refuses {path}: the boot takes another path")


def _secure_variables(b: _Builder, store: object, secure_boot: bool) -> None:
    sb = b"\x01" if secure_boot else b"\x00"
    b.add(variable_event(7, EV_EFI_VARIABLE_DRIVER_CONFIG, guids.EFI_GLOBAL_VARIABLE,
                         "SecureBoot", sb, b.banks, f"SecureBoot = {sb[0]}", "edk2"))
    for name, guid in (("PK", guids.EFI_GLOBAL_VARIABLE), ("KEK", guids.EFI_GLOBAL_VARIABLE),
                       ("db", guids.EFI_IMAGE_SECURITY_DATABASE),
                       ("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)):
        data = _get(store, name, guid) or b""
        text = _db_text(name, data)
        b.add(variable_event(7, EV_EFI_VARIABLE_DRIVER_CONFIG, guid, name, data, b.banks,
                             text, "edk2"))
    dbt = _get(store, "dbt", guids.EFI_IMAGE_SECURITY_DATABASE)
    if dbt:
        b.add(variable_event(7, EV_EFI_VARIABLE_DRIVER_CONFIG,
                             guids.EFI_IMAGE_SECURITY_DATABASE, "dbt", dbt, b.banks,
                             f"dbt = {len(dbt)} bytes", "edk2"))
    b.add(separator(7, b.banks))


def _gpt_event(path: str, banks: Sequence[str]) -> PredictedEvent:
    """``UEFI_GPT_DATA``: the 92-byte primary header from LBA 1, the number of used entries,
    then those entries (``Tcg2MeasureGptTable``, ``DxeTpm2MeasureBootLib.c``)."""
    from fwtools.errors import ParseError
    from fwtools.formats.disk.device import open_device

    try:
        device = open_device(path)
        try:
            header, array = _read_gpt(device)
        finally:
            device.close()
    except ParseError as exc:
        raise exc.with_path(path) from None
    fields = L.GPT_HEADER.unpack_dict(header)
    count = fields["number_of_partition_entries"]
    size = fields["size_of_partition_entry"]
    used = [array[i * size:(i + 1) * size] for i in range(count)
            if array[i * size:i * size + 16] != bytes(16)]
    data = header + struct.pack("<Q", len(used)) + b"".join(used)
    disk_guid = uuid.UUID(bytes_le=fields["disk_guid"])
    return _hashed_event(5, EV_EFI_GPT_EVENT, f"GPT of disk {disk_guid}, {len(used)} "
                         "partitions", data, data, "UEFI_GPT_DATA", "edk2", banks)


def _read_gpt(device: BlockDevice) -> tuple[bytes, bytes]:
    """The primary GPT header (92 bytes from LBA 1) and its partition entry array."""
    from fwtools.errors import ParseError

    if device.size < 1024:
        raise ParseError(f"{device.size} bytes: too small for a GPT", offset=0,
                         structure="GPT")
    header = device.read(512, L.GPT_HEADER.size)
    fields = L.GPT_HEADER.unpack_dict(header)
    if fields["signature"] != b"EFI PART":
        raise ParseError("no GPT header at LBA 1", offset=512, structure="GPT")
    entry_lba = fields["partition_entry_lba"]
    count = fields["number_of_partition_entries"]
    size = fields["size_of_partition_entry"]
    if size < L.GPT_ENTRY.size or count * size > 1 << 20 or \
            entry_lba * 512 + count * size > device.size:
        raise ParseError(f"GPT entry array ({count} x {size} bytes at LBA {entry_lba}) is "
                         "not inside the disk or not supported", offset=512 + 72,
                         structure="GPT")
    return header, device.read(entry_lba * 512, count * size)


def _shim_events(b: _Builder, shim: Stage, store: object, secure_boot: bool,
                 rest: Sequence[Stage]) -> list[tuple[Stage, SignatureData | None, str]]:
    """shim's PCR 14 and PCR 7 events after it starts, in ``mok.c`` mirror order; returns
    how shim will verify each later stage."""
    from fwtools.formats.pe.shim_sections import ShimSbatLevel, VendorCert

    decoded = _sections(shim.image)
    vendor = decoded.get(".vendor_cert")
    level = decoded.get(".sbatlevel")
    certs: tuple[bytes, ...] = vendor.certificates if isinstance(vendor, VendorCert) else ()
    vendor_dbx = vendor.dbx_lists if isinstance(vendor, VendorCert) else ()
    # MokList: the vendor cert as an EFI_SIGNATURE_LIST owned by SHIM_LOCK, then MokList.
    vendor_lists = [SignatureList(guids.CERT_X509, 16 + len(der),
                                  (SignatureData(guids.SHIM_LOCK, der),)) for der in certs]
    if isinstance(vendor, VendorCert) and vendor.cert_format == "esl":
        vendor_lists = list(vendor.db_lists)
    mok_nv = _get(store, "MokList", guids.SHIM_LOCK) or b""
    moklist = b"".join(sl.to_bytes() for sl in vendor_lists) + mok_nv
    mokx_nv = _get(store, "MokListX", guids.SHIM_LOCK) or b""
    moklistx = b"".join(sl.to_bytes() for sl in vendor_dbx) + mokx_nv
    for name, content in (("MokList", moklist), ("MokListX", moklistx)):
        if content:
            b.add(ipl_event(14, name, content, f"{name}RT as shim mirrors it "
                            f"({len(content)} bytes)", b.banks, "shim"))
    # SbatLevel (sbat.c set_sbat_uefi_variable): SB off resets to the original level; else
    # shim's automatic level unless the store holds a newer one.
    if not secure_boot:
        sbat = SBAT_ORIGINAL.encode()
    else:
        sbat = (level.automatic_text if isinstance(level, ShimSbatLevel) else SBAT_ORIGINAL
                ).encode()
        current = _get(store, "SbatLevel", guids.SHIM_LOCK)
        if current and _sbat_date(current) > _sbat_date(sbat):
            sbat = current
    b.add(variable_event(7, EV_EFI_VARIABLE_AUTHORITY, guids.SHIM_LOCK, "SbatLevel", sbat,
                         b.banks, f"SbatLevel: {sbat.decode(errors='replace')!r}", "shim"))
    trusted = _get(store, "MokListTrusted", guids.SHIM_LOCK)
    if trusted is None:
        b.add(ipl_event(14, "MokListTrusted", b"\x01", "MokListTrustedRT = 01 (default)",
                        b.banks, "shim"))
    else:
        b.not_claimed(14, "the store sets MokListTrusted; shim's inverse mirroring of it "
                      "is not modelled")
    sbstate = _get(store, "MokSBState", guids.SHIM_LOCK)
    if sbstate:
        b.not_claimed(14, "the store sets MokSBState (Secure Boot disabled in shim); not "
                      "modelled")
    # What shim verifies each later stage with: firmware db first, then the vendor cert
    # (measured as MokListRT, tpm.c), then MokList.
    db = _lists(_get(store, "db", guids.EFI_IMAGE_SECURITY_DATABASE))
    dbx = list(_lists(_get(store, "dbx", guids.EFI_IMAGE_SECURITY_DATABASE))) + list(vendor_dbx)
    mok_lists = list(vendor_lists) + list(_lists(mok_nv))
    out: list[tuple[Stage, SignatureData | None, str]] = []
    for stage in rest:
        if not secure_boot:
            out.append((stage, None, ""))
            continue
        entry = _verifier(stage, db, dbx)
        if entry is not None:
            out.append((stage, entry, "db"))
            continue
        entry = _verifier(stage, mok_lists, dbx)
        out.append((stage, entry, "MokListRT" if entry is not None else ""))
        if entry is None:
            b.refused(stage.path, "shim (not verified by db, its vendor certificate or "
                      "MokList)")
    return out


def _sbat_date(text: bytes) -> int:
    first = text.split(b"\n", 1)[0].split(b",")
    try:
        return int(first[2]) if len(first) > 2 else 0
    except ValueError:
        return 0


_GRUB_SCRIPT_WORDS: Final = frozenset({"menuentry", "submenu", "if", "elif", "else", "fi",
                                        "for", "while", "until", "function", "{", "}"})
def _grub_events(b: _Builder, grub: Stage, kernel: Stage | None) -> None:
    """PCR 8 and 9 (and the kernel's PCR 4 events) as Debian's GRUB runs ``grub_cfg``: each
    command line (``commands/tpm.c`` ``grub_cmd:``), each file it reads (grub.cfg, the
    kernel, the initrds), then with 2.12 Linux's stub events (LoadOptions, initrd)."""
    cfg = b.m.grub_cfg
    prefix = b.m.grub_prefix
    twice = _grub_measures_kernel_twice(grub)
    old = _grub_before_212(grub)
    # shim_lock's verifier, which logs the kernel in PCR 4, is registered only with Secure
    # Boot on (grub-core/kern/efi/sb.c grub_shim_lock_verifier_setup) [measured, 2.06, 2.12]
    verifies = (2 if twice else 1) if b.secure_boot else 0
    if _grub_206_arm64(grub):
        why = ("Debian 12's arm64 GRUB 2.06 is not modelled for PCR 8 and 9 (its events under "
               "AAVMF differ from x86-64's and no log of them was seen)")
        b.not_claimed(8, why)
        b.not_claimed(9, why)
    if kernel is None:
        b.not_claimed(4, "GRUB loads a kernel that is not in the chain (give it after GRUB)")
    if cfg is None:
        b.not_claimed(8, "GRUB's commands depend on grub.cfg: give it with --grub-cfg")
        b.not_claimed(9, "GRUB measures grub.cfg and every file it reads: give --grub-cfg")
        if kernel is not None:
            for _ in range(verifies):
                b.add(image_event(4, kernel, b.banks, f"{kernel.path} (via shim_lock)",
                                  "grub"))
        return
    cfg_bytes = cfg.encode() if isinstance(cfg, str) else cfg
    lines = [raw.strip() for raw in cfg_bytes.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if any(line.split()[0] in _GRUB_SCRIPT_WORDS for line in lines):
        why = ("grub.cfg uses menuentry, if or other script blocks: GRUB's evaluation of "
               "them is not modelled (flat command lists are)")
        b.not_claimed(8, why)
        b.not_claimed(9, why)
    initrd = b.m.initrd
    initrd_data = read_file(initrd) if initrd is not None else None
    cfg_path = f"{prefix}/grub.cfg"

    def file_event(path: str, content: bytes, what: str) -> None:
        b.add(ipl_event(9, path, content, what, b.banks, "grub"))

    if old:
        # Debian's embedded grub-efi config (build-efi-images), as GRUB 2.06 logs it.
        for line in (f"[ -z {prefix} -o ! -e {prefix} ]",
                     f"[ -e {prefix}/x86_64-efi/grub.cfg ]",
                     f"[ -e {prefix}/grub.cfg ]",
                     f"source {prefix}/grub.cfg"):
            b.add(_grub_cmd(line, b.banks))
        file_event(cfg_path, cfg_bytes, "grub.cfg")
    else:
        # GRUB 2.12 logs grub.cfg twice and no embedded-config commands [measured].
        file_event(cfg_path, cfg_bytes, "grub.cfg")
        file_event(cfg_path, cfg_bytes, "grub.cfg")
    linux_args: str | None = None
    initrds = 0
    stub_done = False
    for line in lines:
        b.add(_grub_cmd(line, b.banks))
        words = line.split()
        if words[0] in ("linux", "linuxefi") and len(words) > 1:
            if kernel is not None:
                file_event(words[1], kernel.image.data, f"the kernel file {kernel.path}")
                for _ in range(verifies):
                    b.add(image_event(4, kernel, b.banks, f"{words[1]} (via shim_lock)",
                                      "grub"))
            else:
                b.not_claimed(9, "GRUB reads a kernel that is not in the chain")
            linux_args = line.split(None, 1)[1]
            b.add(ipl_event(8, f"kernel_cmdline: {linux_args}", linux_args.encode(),
                            "the command line", b.banks, "grub"))
        elif words[0] in ("initrd", "initrdefi") and len(words) > 1:
            for path in words[1:]:
                initrds += 1
                if initrd_data is None:
                    b.not_claimed(9, "GRUB reads an initrd: give it with --initrd")
                    continue
                file_event(path, initrd_data, f"the initrd {initrd}")
        elif words[0] == "boot" and not old:
            _stub_events(b, linux_args, initrds, initrd_data)
            stub_done = True
    if not old and not stub_done and linux_args is not None:
        _stub_events(b, linux_args, initrds, initrd_data)
    if initrds > 1:
        b.not_claimed(9, "several initrds: Linux's stub measures their concatenation, not "
                      "modelled")


def _stub_events(b: _Builder, linux_args: str | None, initrds: int,
                 initrd_data: bytes | None) -> None:
    """Linux's EFI stub after GRUB 2.12 (``efi-stub-helper.c``): LoadOptions as GRUB sets
    them (UTF-16 ``BOOT_IMAGE=<linux line>``, no NUL counted) and the initrd GRUB serves
    through LoadFile2 [measured, Debian 13]."""
    if linux_args is None:
        return
    options = f"BOOT_IMAGE={linux_args}".encode("utf-16-le")
    b.add(tagged_event(9, LINUX_LOAD_OPTIONS_TAG, "LOADED_IMAGE::LoadOptions", options,
                       "LoadOptions (UTF-16 BOOT_IMAGE=...)", b.banks, "linux"))
    if initrds and initrd_data is not None:
        b.add(tagged_event(9, LINUX_INITRD_TAG, "Linux initrd", initrd_data, "the initrd",
                           b.banks, "linux"))


def _grub_cmd(line: str, banks: Sequence[str]) -> PredictedEvent:
    return ipl_event(8, f"grub_cmd: {line}", line.encode(), "the command", banks, "grub")


def _firmware_verifies(b: _Builder, stage: Stage, store: object) -> bool:
    """edk2's Secure Boot check of ``stage`` against db/dbx: the authority event of the db
    entry that allows it (PCR 7), or the refusal; whether it is allowed."""
    db = _lists(_get(store, "db", guids.EFI_IMAGE_SECURITY_DATABASE))
    dbx = _lists(_get(store, "dbx", guids.EFI_IMAGE_SECURITY_DATABASE))
    entry = _verifier(stage, db, dbx)
    if entry is None:
        b.refused(stage.path, "firmware (not verified by db)")
        return False
    b.authority("db", guids.EFI_IMAGE_SECURITY_DATABASE, entry.to_bytes(),
                f"db: {_entry_label(entry)} (verified {stage.path})", "edk2")
    return True


def _firmware_loads(b: _Builder, stage: Stage, store: object, secure_boot: bool,
                    parent: str) -> None:
    """``parent`` starts ``stage`` with the firmware's LoadImage: with Secure Boot edk2
    verifies it against db/dbx (an authority event), then measures it in PCR 4."""
    if secure_boot and not _firmware_verifies(b, stage, store):
        return
    b.add(image_event(4, stage, b.banks, f"{stage.path} (loaded by {parent})", "edk2"))


def predict(machine: MachineInput) -> Prediction:
    """The events and PCR values of ``machine``'s boot (see the module doc)."""
    for bank in machine.banks:
        if bank not in L.ALGORITHM_IDS:
            raise UsageError(f"unknown bank {bank!r} (sha1, sha256, sha384, sha512)")
    stages = [classify(p, PeImage.open(p)) for p in machine.chain]
    wanted = list(dict.fromkeys([*machine.banks, "sha256"]))
    for stage in stages:
        # One pass over each image for every bank and for the verification (sha256).
        stage.digests.update(authenticode_digests(stage.image, wanted, pad=False))
    b = _Builder(machine)
    store = machine.store
    secure_boot = b.secure_boot = _secure_boot(store, machine.secure_boot)
    b.not_claimed(0, "edk2 measures its PEI and DXE volumes as they are in memory; Debian's "
                  "OVMF PEI volume differs from the image (PlatformPei writes globals before "
                  "Tcg2Pei measures it)")
    b.not_claimed(1, "boot variables the firmware creates from QEMU's devices, and on edk2 "
                  ">= 2023.02 QEMU's ACPI tables")
    ukis = [s for s in stages if s.kind == "uki"]
    grub_in_chain = any(s.kind == "grub" for s in stages)
    if not grub_in_chain and not ukis:
        b.not_claimed(9, "Linux's EFI stub measures the initrd and its command line; "
                      "modelled after GRUB and systemd-stub only")
    for pcr in (10, 13, 15):
        b.not_claimed(pcr, "measured by the operating system (and PCR 13 by systemd-stub for "
                      "system extensions on the ESP), not modelled")
    if not ukis:
        b.not_claimed(11, "systemd-stub measures a UKI's sections; there is no UKI in the chain")
        b.not_claimed(12, "systemd-boot and systemd-stub measure command lines, credentials "
                      "and add-ons; there is no UKI in the chain")
    elif grub_in_chain:
        for pcr in (4, 9, 12):
            b.not_claimed(pcr, "a UKI loaded by GRUB is not modelled")
    loader_conf = None
    if ukis:
        loader_conf, found = measure_sd.sd_inputs(
            machine.disk, any(s.kind == "systemd-boot" for s in stages))
        b.take(found)
    _secure_variables(b, store, secure_boot)

    first = stages[0] if stages else None
    if machine.qemu_kernel:
        b.not_claimed(4, "QEMU -kernel: edk2 measures the bzImage as QEMU patched its setup "
                      "header (x86_load_linux), which depends on RAM size and initrd length")
    b.add(action(4, CALLING, b.banks))
    for pcr in (2, 3, 4, 5, 6):
        b.add(separator(pcr, b.banks))

    if first is not None and not machine.qemu_kernel:
        if secure_boot:
            _firmware_verifies(b, first, store)  # a refusal is recorded; the events below follow
        if machine.disk is not None:
            b.add(_gpt_event(machine.disk, b.banks))
        else:
            b.not_claimed(5, "the first image comes from a disk whose GPT edk2 measures: "
                          "give the disk image with --disk")
        b.add(image_event(4, first, b.banks, f"{first.path} (from the boot option)", "edk2"))

    def started(stage: Stage) -> None:
        """What a stage measures once it runs: systemd-boot its loader.conf, sd-stub the
        UKI's sections and the kernel it hands over (fwtools/machine/measure_sd.py)."""
        if stage.kind == "systemd-boot" and loader_conf is not None:
            b.add(measure_sd.loader_conf_event(loader_conf, b.banks))
        elif stage.kind == "uki":
            b.take(measure_sd.uki_events(stage, b.banks))
            if not grub_in_chain:
                b.take(measure_sd.kernel_handover(stage, secure_boot, b.banks))

    rest = stages[1:]
    if first is not None and not machine.qemu_kernel and not b.refusals:
        started(first)
    if first is not None and first.kind == "shim" and not machine.qemu_kernel:
        plan = _shim_events(b, first, store, secure_boot, rest)
        grub = next((s for s in rest if s.kind == "grub"), None)
        kernel = next((s for s in rest if s.kind in ("kernel", "uki")), None)
        for stage, entry, via in plan:
            if entry is not None:
                guid = guids.EFI_IMAGE_SECURITY_DATABASE if via == "db" else guids.SHIM_LOCK
                b.authority(via, guid, entry.to_bytes(), f"{via}: {_entry_label(entry)} "
                            f"(verified {stage.path})", "shim")
            if stage is grub:
                b.add(image_event(4, stage, b.banks, f"{stage.path} (loaded by shim)",
                                  "shim"))
                _grub_events(b, grub, kernel)
            elif grub is None:
                # shim's LoadImage hook measures what systemd-boot loads too (shim 16)
                b.add(image_event(4, stage, b.banks, f"{stage.path} (loaded by shim)",
                                  "shim"))
                if not b.refusals:
                    started(stage)
        if grub is not None:
            for uki in ukis:
                started(uki)
    elif first is not None and first.kind == "systemd-boot" and \
            [s.kind for s in rest] == ["uki"]:
        _firmware_loads(b, rest[0], store, secure_boot, "systemd-boot")
        if not b.refusals:
            started(rest[0])
    elif len(rest) > 0:
        why = ("only chains that start with shim, or systemd-boot and a UKI, are modelled "
               "past the first image")
        for pcr in (4, 7, 8, 9, 11, 12, 14):
            b.not_claimed(pcr, why)

    b.add(action(5, EBS_INVOCATION, b.banks))
    b.add(action(5, EBS_SUCCESS, b.banks))

    claimed = tuple(p for p in ALL_PCRS if p not in b.not_predicted)
    events = [e for e in b.events if e.pcr in claimed]
    replayed = _replay(events, machine.banks)
    banks: dict[str, dict[int, bytes]] = {}
    for name in machine.banks:
        size = L.ALGORITHMS[L.ALGORITHM_IDS[name]][1]
        values = replayed.get(name, {})
        # A claimed PCR nothing extends keeps its reset value (zeros below PCR 16).
        banks[name] = {pcr: values.get(pcr, bytes(size)) for pcr in claimed}
    return Prediction(events, banks, claimed, dict(sorted(b.not_predicted.items())),
                      [(s.path, s.kind) for s in stages], b.notes, secure_boot)


def events_to_log(events: Iterable[PredictedEvent], banks: Sequence[str]) -> bytes:
    """The events as a crypto-agile event log (``formats/tcg/write.py``)."""
    from fwtools.formats.tcg.write import pcr_event2, spec_id_record

    ids = [L.ALGORITHM_IDS[b] for b in banks]
    out = [spec_id_record([(i, L.ALGORITHMS[i][1]) for i in ids])]
    for e in events:
        out.append(pcr_event2(e.pcr, e.event_type,
                              [(L.ALGORITHM_IDS[b], e.digests[b]) for b in banks], e.data))
    return b"".join(out)


def _replay(events: list[PredictedEvent], banks: Sequence[str]) -> dict[str, dict[int, bytes]]:
    """PCR values per bank by replaying the events with ``formats/tcg/replay.py``."""
    from fwtools.formats.tcg.log import parse_event_log
    from fwtools.formats.tcg.replay import replay

    log = parse_event_log(events_to_log(events, banks))
    return {name: dict(values) for name, values in replay(log, banks).banks.items()}


# -- comparing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Divergence:
    """Where a prediction and a real log part: the ``position``-th event of ``pcr`` (both
    sides filtered to the claimed PCRs, in log order)."""

    position: int
    pcr: int
    predicted: PredictedEvent | None
    logged_index: int | None
    logged_type: int | None
    logged_digest: bytes | None
    explanation: str


def compare_with_log(prediction: Prediction, log: object,
                     bank: str = "sha256") -> Divergence | None:
    """Line up the predicted events with ``log``'s (a parsed ``EventLog``) over the claimed
    PCRs; the first that differs in PCR, type or ``bank`` digest, or None."""
    from fwtools.formats.tcg.eventtypes import EV_NO_ACTION, event_type_name

    alg = L.ALGORITHM_IDS[bank]
    claimed = set(prediction.predicted)
    logged = [e for e in log.events  # type: ignore[attr-defined]
              if e.event_type != EV_NO_ACTION and e.pcr in claimed]
    mine = [e for e in prediction.events if e.pcr in claimed]
    for i in range(max(len(mine), len(logged))):
        p = mine[i] if i < len(mine) else None
        r = logged[i] if i < len(logged) else None
        if p is not None and r is not None and p.pcr == r.pcr and \
                p.event_type == r.event_type and p.digests.get(bank) == r.digest(alg):
            continue
        if r is None:
            assert p is not None
            why = (f"the log ends here; predicted PCR {p.pcr} {event_type_name(p.event_type)} "
                   f"{p.description} ({p.source})")
            return Divergence(i, p.pcr, p, None, None, None, why)
        if p is None:
            why = (f"the log goes on with record {r.index}: PCR {r.pcr} "
                   f"{event_type_name(r.event_type)}, which the prediction does not have")
            return Divergence(i, r.pcr, None, r.index, r.event_type, r.digest(alg), why)
        if (p.pcr, p.event_type) != (r.pcr, r.event_type):
            why = (f"record {r.index} is PCR {r.pcr} {event_type_name(r.event_type)}; predicted "
                   f"PCR {p.pcr} {event_type_name(p.event_type)} {p.description} ({p.source}): "
                   "the boot took another path (another boot option, loader or Secure Boot "
                   "state)")
        else:
            why = (f"record {r.index} (PCR {r.pcr} {event_type_name(r.event_type)}) has "
                   f"{bank} {(r.digest(alg) or b'').hex()}; predicted {p.description}: "
                   f"{p.digests[bank].hex()} of {p.what}")
            if p.hashed is not None and p.hashed != r.data and p.data != r.data:
                why += "; the logged data differs too (another variable value, file or text)"
            elif p.event_type == EV_EFI_BOOT_SERVICES_APPLICATION:
                why += " (another binary than the one given)"
        return Divergence(i, r.pcr, p, r.index, r.event_type, r.digest(alg), why)
    return None


@dataclass(frozen=True)
class PcrChange:
    pcr: int
    old: bytes
    new: bytes
    removed: tuple[PredictedEvent, ...]
    added: tuple[PredictedEvent, ...]

    @property
    def changed(self) -> bool:
        return self.old != self.new


def diff_predictions(old: Prediction, new: Prediction, bank: str = "sha256") -> list[PcrChange]:
    """Per PCR both predict: old and new value, and the events only one side has (by type,
    digest and data), in order."""
    out = []
    for pcr in sorted(set(old.predicted) & set(new.predicted)):
        def key(e: PredictedEvent) -> tuple[int, bytes, bytes]:
            return (e.event_type, e.digests[bank], e.data)

        before = [e for e in old.events if e.pcr == pcr]
        after = [e for e in new.events if e.pcr == pcr]
        before_keys = [key(e) for e in before]
        after_keys = [key(e) for e in after]
        removed = tuple(e for e in before if key(e) not in after_keys)
        added = tuple(e for e in after if key(e) not in before_keys)
        out.append(PcrChange(pcr, old.banks[bank][pcr], new.banks[bank][pcr], removed, added))
    return out


def pcrlock_records(prediction: Prediction, pcrs: Iterable[int]) -> dict[int, list[dict[str,
                                                                                      object]]]:
    """systemd-pcrlock records per PCR (``systemd.pcrlock(5)``: ``{"pcr": N, "digests":
    [{"hashAlg": "sha256", "digest": "hex"}]}``), for the claimed PCRs among ``pcrs``."""
    wanted = set(pcrs) & set(prediction.predicted)
    out: dict[int, list[dict[str, object]]] = {}
    for e in prediction.events:
        if e.pcr not in wanted:
            continue
        out.setdefault(e.pcr, []).append({
            "pcr": e.pcr,
            "digests": [{"hashAlg": b, "digest": d.hex()} for b, d in e.digests.items()],
        })
    return out
