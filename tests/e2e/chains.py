"""Booting real shim -> grub -> kernel chains on real firmware in QEMU (TCG), x86-64 and
AArch64, and classifying how each boot ended.

Plain Python with no pytest dependency (the tests are in ``test_boot_chains.py``; the
firmware lab, ``lab/matrix.py``, uses this module too). Three parts:

- :class:`Chain` and :func:`chain_files`: the ESP of Debian's removable-media path (shim as
  ``EFI/BOOT/BOOT{X64,AA64}.EFI``, grub beside it, the kernel as ``/vmlinuz``) with a grub.cfg
  that echoes a marker and boots the kernel directly (no initrd).
- :class:`Firmware` and :func:`firmware_command`: the QEMU command line, q35 (+ SMM for
  Secure Boot builds) for x86-64, ``virt`` with two 64 MiB pflash banks for AArch64.
- :func:`boot_chain` -> :class:`ChainBoot`: boots, stops at the first verdict line and
  classifies: ``kernel``, ``fault``, ``refused``, ``timeout`` (plus ``no-boot``/``exited``,
  which no test expects); :attr:`ChainBoot.stage` says how far the chain got and
  :attr:`ChainBoot.evidence` keeps the relevant console lines (exception dumps included).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from .qemu import (
    QEMU_X86,
    Disk,
    QemuResult,
    copy_vars,
    default_accel,
    make_esp_image,
    needs_smm,
    run_qemu,
)

QEMU_AARCH64: Final = "qemu-system-aarch64"

Arch = Literal["x64", "aa64"]
Outcome = Literal["kernel", "fault", "refused", "timeout", "no-boot", "exited"]
Stage = Literal["firmware", "grub", "kernel-loaded", "efi-stub", "kernel"]

# Seconds before $FWTOOLS_E2E_TIMEOUT_SCALE. Measured (2 cores, TCG, -n 2): x86 chains reach
# "Linux version" in ~10-20 s, AArch64 ones in ~40-90 s; the margin is for loaded machines.
TIMEOUTS: Final[dict[Arch, float]] = {"x64": 240.0, "aa64": 600.0}

# The virt machine maps each pflash bank as exactly 64 MiB; QEMU refuses smaller images.
AAVMF_FLASH_SIZE: Final = 64 << 20

GRUB_MARKER: Final = "FWTOOLS-GRUB-MARKER"
KERNEL_LOADED_MARKER: Final = "FWTOOLS-KERNEL-LOADED"
LINUX_FAILED_MARKER: Final = "FWTOOLS-LINUX-FAILED"

KERNEL_CMDLINE: Final[dict[Arch, str]] = {
    # earlyprintk: "Linux version" appears as soon as the decompressed kernel starts rather
    # than when the console driver registers; panic=-1 + -no-reboot ends QEMU at the
    # root-mount panic if the stop marker is ever missed.
    "x64": "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1",
    # earlycon without arguments takes the PL011 from the device tree's stdout-path.
    "aa64": "console=ttyAMA0 earlycon panic=-1",
}


def grub_cfg(arch: Arch, kernel: str = "/vmlinuz", *, initrd: str | None = None,
             append: str = "") -> str:
    """grub.cfg: a marker, then ``linux`` (which shim's protocol verifies under Secure Boot)
    and ``boot``. A failed ``linux`` prints LINUX_FAILED_MARKER instead of booting.
    ``initrd`` (a path on the ESP) is loaded after ``linux`` (grub does not verify it);
    ``append`` is added to the kernel command line."""
    cmdline = f"{KERNEL_CMDLINE[arch]} {append}".strip()
    load_initrd = f"  initrd {initrd}\n" if initrd else ""
    return (
        "set timeout=0\n"
        f"echo {GRUB_MARKER}\n"
        f"if linux {kernel} {cmdline} ; then\n"
        f"{load_initrd}"
        f"  echo {KERNEL_LOADED_MARKER}\n"
        "  boot\n"
        "else\n"
        f"  echo {LINUX_FAILED_MARKER}\n"
        "fi\n"
    )


@dataclass(frozen=True)
class Chain:
    """shim -> grub -> kernel, as Debian ships them (all signed)."""

    label: str  # e.g. "trixie"
    arch: Arch
    shim: Path
    grub: Path
    kernel: Path

    @property
    def files(self) -> list[Path]:
        return [self.shim, self.grub, self.kernel]


def chain_files(chain: Chain, *, initrd: bytes | Path | None = None,
                append: str = "") -> dict[str, bytes | str | Path]:
    """The ESP: shim as the removable-media loader, grub beside it, grub.cfg where Debian's
    signed grub looks (its prefix is /EFI/debian) and in EFI/BOOT/, the kernel at the root
    (and ``initrd`` as /initrd.img, loaded by grub; ``append`` goes on the command line)."""
    sfx = chain.arch
    cfg = grub_cfg(chain.arch, initrd="/initrd.img" if initrd is not None else None,
                   append=append)
    files: dict[str, bytes | str | Path] = {
        f"EFI/BOOT/BOOT{sfx.upper()}.EFI": chain.shim,
        f"EFI/BOOT/grub{sfx}.efi": chain.grub,
        "EFI/BOOT/grub.cfg": cfg,
        "EFI/debian/grub.cfg": cfg,
        "vmlinuz": chain.kernel,
    }
    if initrd is not None:
        files["initrd.img"] = initrd
    return files


@dataclass(frozen=True)
class Firmware:
    """A firmware build and the variable store template to boot it with.

    ``secure_boot`` is what the store says (the ``.ms`` stores enroll Microsoft's keys and
    enable Secure Boot; the plain ones are empty). ``smm`` is whether an x86 build needs the
    SMM machine (``*.secboot*`` builds; None: guess from the file name, :func:`needs_smm`).
    """

    label: str
    arch: Arch
    code: Path
    vars: Path
    secure_boot: bool
    smm: bool | None = None

    @property
    def needs_smm(self) -> bool:
        if self.arch != "x64":
            return False
        return needs_smm(self.code) if self.smm is None else self.smm


def padded_flash(image: Path, workdir: Path, size: int = AAVMF_FLASH_SIZE) -> Path:
    """``image`` if it is already ``size`` bytes, else a zero-padded copy in ``workdir``
    (AAVMF images are 64 MiB in Debian's packages, but a self-built FV is ~2-3 MiB)."""
    have = image.stat().st_size
    if have == size:
        return image
    if have > size:
        raise ValueError(f"{image} is {have} bytes, more than the {size}-byte flash bank")
    out = workdir / f"padded-{image.name}"
    shutil.copyfile(image, out)
    with out.open("r+b") as fh:
        fh.truncate(size)
    return out


def firmware_command(
    fw: Firmware,
    vars_copy: Path,
    esp: Path,  # the boot disk: an ESP image or a whole disk image (raw)
    *,
    workdir: Path,
    memory_mib: int = 1024,
    accel: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The QEMU command line for booting ``esp`` on ``fw`` with the writable ``vars_copy``."""
    for p in (fw.code, vars_copy, esp):
        if "," in str(p):
            raise ValueError(f"QEMU -drive cannot take a path with a comma: {p}")
    common = ["-nographic", "-net", "none", "-m", str(memory_mib), "-no-reboot",
              "-accel", accel or default_accel()]
    if fw.arch == "x64":
        cmd = [QEMU_X86, *common, "-machine", "q35,smm=on" if fw.needs_smm else "q35"]
        if fw.needs_smm:
            cmd += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
        cmd += [
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={fw.code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
            *Disk.image(esp).args(),
        ]
    else:
        code = padded_flash(fw.code, workdir)
        # cortex-a57 rather than max: TCG emulates max's pointer authentication (QARMA) at a
        # large cost, and nothing in these chains needs ARMv8.1+.
        cmd = [QEMU_AARCH64, *common, "-machine", "virt", "-cpu", "cortex-a57",
               "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
               "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
               "-drive", f"if=none,id=esp,format=raw,file={esp}",
               "-device", "virtio-blk-pci,drive=esp"]
    return cmd + list(extra_args)


# -- classifying the console -----------------------------------------------------------------

# Stop markers and the outcome each means; the earliest in the console wins.
_KERNEL: Final = r"Linux version \d"
_FAULT: Final = (
    r"!!!! X64 Exception|X64 Exception Type"  # OVMF CpuExceptionHandlerLib
    r"|(?:Synchronous|SError) Exception at 0x"  # ArmPkg DefaultExceptionHandlerLib
)
_REFUSED: Final = (
    r"Security Violation|Access Denied|Verification failed"  # BdsDxe / shim
    r"|bad shim signature|you need to load the kernel first"  # grub's shim_lock verifier
)
_NO_BOOT: Final = r"No bootable option or device was found"
STOP_MARKERS: Final[dict[str, Outcome]] = {
    _KERNEL: "kernel",
    _FAULT: "fault",
    _REFUSED: "refused",
    re.escape(LINUX_FAILED_MARKER): "refused",
    _NO_BOOT: "no-boot",
}
# A Debian disk (tests/machine/vm_builder.py) boots its entry with ``quiet``, which hides
# "Linux version". Any line of the kernel's EFI stub (quiet: only its errors, here about the
# placeholder initrd) or a panic at the root mount proves GRUB verified and started the kernel.
DEBIAN_DISK_MARKERS: Final[dict[str, Outcome]] = {
    **STOP_MARKERS, r"EFI stub: |Kernel panic - not syncing": "kernel"}

# Lines worth keeping as evidence: verdict lines, the exception dump's key registers (x86:
# RIP, CR2, ExceptionData; AArch64: ELR, FAR, ESR), the image the fault was in, BdsDxe's
# boot attempts, grub's errors, shim's messages.
_EVIDENCE_RE: Final = re.compile(
    r"Exception|RIP  ?-|CR2  ?-|ExceptionData|ELR|FAR|ESR|Find image|PC 0x|"
    r"BdsDxe: |Security Violation|Access Denied|Verification failed|error: |"
    r"Linux version|EFI stub: |secureboot: |FWTOOLS-|Booting Linux|shim|Shim|MOK|"
    r"Kernel panic|Welcome to GRUB"
)


@dataclass
class ChainBoot:
    """How one chain boot ended."""

    result: QemuResult
    outcome: Outcome
    stage: Stage
    serial_log: Path | None = None
    evidence: list[str] = field(default_factory=list)

    @property
    def grub_reached(self) -> bool:
        return self.stage != "firmware"

    @property
    def elapsed(self) -> float:
        return self.result.elapsed

    def describe(self) -> str:
        ev = "\n".join(f"  {ln}" for ln in self.evidence[-40:])
        return (f"outcome {self.outcome}, stage {self.stage}, {self.elapsed:.1f}s"
                f" (serial log: {self.serial_log})\n--- evidence ---\n{ev}\n"
                + self.result.describe())


# The echo lines of grub-mkconfig's 10_linux entry (tests/machine/vm_builder.py
# main_grub_cfg): "Loading initial ramdisk ..." follows a ``linux`` that loaded (and under
# Secure Boot, verified) the kernel, like KERNEL_LOADED_MARKER in chain_files' grub.cfg.
_DEBIAN_KERNEL_LOADED: Final = r"Loading initial ramdisk \.\.\."
_DEBIAN_GRUB: Final = r"Loading Linux \S+ \.\.\."


def stage_of(result: QemuResult) -> Stage:
    """The furthest milestone on the console (chain_files' markers, or the echo lines of a
    Debian disk's grub.cfg)."""
    if result.saw(_KERNEL):
        return "kernel"
    if result.saw(r"EFI stub: "):
        return "efi-stub"
    if result.saw(re.escape(KERNEL_LOADED_MARKER)) or result.saw(_DEBIAN_KERNEL_LOADED):
        return "kernel-loaded"
    if result.saw(re.escape(GRUB_MARKER)) or result.saw(_DEBIAN_GRUB):
        return "grub"
    return "firmware"


def evidence_lines(result: QemuResult) -> list[str]:
    return [ln.strip() for ln in result.lines if _EVIDENCE_RE.search(ln)]


def refused_by(line: str) -> str:
    """Who printed a refusal's line (the stop marker's): ``firmware`` (BdsDxe), ``grub`` (its
    shim_lock verifier) or ``shim``."""
    if "BdsDxe: failed to load" in line or "Access Denied" in line:
        return "firmware"
    if "bad shim signature" in line or "load the kernel first" in line:
        return "grub"
    return "shim"


def refusal_not_on_console(by: str, stage: int, message: str, output: str) -> list[str]:
    """The lines of a refusal ``message`` (as ``fw-check vm`` quotes it) that are not on the
    console ``output``. BdsDxe's line is matched by its fixed parts: it names the boot option
    QEMU's disk got (``Boot0001 "UEFI QEMU HARDDISK ..."``); ``load`` for the first stage,
    ``start`` for a later one the firmware's LoadImage refused."""
    lines = message.splitlines()
    missing = []
    if by == "firmware":
        verb = "load" if stage == 1 else "start"
        if not re.search(rf"BdsDxe: failed to {verb} Boot\d{{4}} .*: Access Denied", output):
            missing.append(f"BdsDxe: failed to {verb} Boot#### ...: Access Denied")
        lines = [ln for ln in lines if not ln.startswith("BdsDxe: ")]
    return missing + [ln for ln in lines if ln not in output]


def boot_chain(chain: Chain, fw: Firmware, **options: Any) -> ChainBoot:
    """Boot ``chain`` on ``fw``: :func:`boot_esp` of its ESP (:func:`chain_files`), with the
    same ``options``."""
    if chain.arch != fw.arch:
        raise ValueError(f"{chain.label} is {chain.arch} but {fw.label} is {fw.arch}")
    return boot_esp(chain_files(chain), fw, **options)


def uki_files(uki: Path, arch: Arch) -> dict[str, bytes | str | Path]:
    """The ESP of a UKI booted directly: the UKI as the removable-media loader."""
    return {f"EFI/BOOT/BOOT{arch.upper()}.EFI": uki}


def boot_esp(files: dict[str, bytes | str | Path], fw: Firmware, *, workdir: Path,
             **options: Any) -> ChainBoot:
    """Boot an ESP holding ``files`` (an image made in ``workdir``) on ``fw``:
    :func:`boot_disk` of that image, with the same ``options``."""
    workdir.mkdir(parents=True, exist_ok=True)
    esp = make_esp_image(workdir / "esp.img", files)
    return boot_disk(esp, fw, workdir=workdir, **options)


def boot_disk(
    disk: Path,
    fw: Firmware,
    *,
    workdir: Path,
    timeout: float | None = None,
    serial_log: Path | None = None,
    extra_args: Sequence[str] = (),
    linger: float = 4.0,
    markers: Mapping[str, Outcome] = STOP_MARKERS,
    linger_on: Collection[Outcome] = ("fault",),
) -> ChainBoot:
    """Boot the raw disk image ``disk`` (an ESP image, or a whole GPT disk such as
    tests/machine/vm_builder.py builds) on ``fw`` (a private copy of its vars template in
    ``workdir``) and classify the first verdict line on the console (``markers``, default
    :data:`STOP_MARKERS`):

    - ``kernel``: "Linux version" (the kernel proper runs: shim, grub and the EFI stub all
      got through);
    - ``fault``: a firmware exception dump (``X64 Exception Type``, ``Synchronous
      Exception at``); QEMU keeps running ``linger`` seconds more so the whole dump (and the
      image it names) is kept;
    - ``refused``: BdsDxe's "Security Violation"/"Access Denied", shim's "Verification
      failed", grub's "bad shim signature"/"you need to load the kernel first", or the
      grub.cfg's own failure marker;
    - ``no-boot``: BdsDxe found nothing to boot; ``timeout``; ``exited`` (QEMU ended first).

    ``timeout`` defaults to :data:`TIMEOUTS` (scaled by $FWTOOLS_E2E_TIMEOUT_SCALE).
    QEMU runs ``linger`` seconds more after a marker of an outcome in ``linger_on`` (a
    refusal's marker can match before its line is complete: ``("fault", "refused")``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    vars_copy = copy_vars(fw.vars, workdir / f"vars-{fw.vars.name}")
    if fw.arch == "aa64":
        vars_copy = padded_flash(vars_copy, workdir)
    cmd = firmware_command(fw, vars_copy, disk, workdir=workdir, extra_args=extra_args)
    result = run_qemu(cmd, timeout=timeout if timeout is not None else TIMEOUTS[fw.arch],
                      stop_markers=list(markers), serial_log=serial_log,
                      linger={p: linger for p, o in markers.items() if o in linger_on})
    outcome: Outcome
    if result.marker is not None:
        outcome = markers[result.marker]
    elif result.timed_out:
        outcome = "timeout"
    else:
        outcome = "exited"
    return ChainBoot(result, outcome, stage_of(result), serial_log, evidence_lines(result))
