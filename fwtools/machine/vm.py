"""One machine's verdict: firmware settings, Secure Boot state, the chain found on the disk
(or given), trust per stage, then the W^X replay of the stages that were allowed.

The verdict is ``refused`` when a component refuses a stage (the first refusal ends the
boot), or cannot find the stage it loads (shim's second stage, GRUB's kernel), and no
earlier stage faults; ``faults`` when the replay faults; else ``boots``. The replay runs on
the stages before the refusal: a loader checks its next stage before it places and starts
it, so a fault while starting a refused stage cannot happen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from fwtools._base.record import replace as replace_record
from fwtools.errors import UsageError
from fwtools.machine.firmware_id import FirmwareInfo, apply_fw_cfg, identify_firmware
from fwtools.machine.trust import (
    Authority,
    Decision,
    Revocation,
    SbatCheck,
    SecureBootState,
    ShimTrust,
    StoreTrust,
    firmware_verify,
    secure_boot_state,
    shim_self_check,
    shim_self_check_failed,
    shim_verify,
)

if TYPE_CHECKING:
    from fwtools.uefi.profile import Arch, FirmwareProfile
    from fwtools.uefi.replay import Replay

Verdict = Literal["boots", "faults", "refused"]


@dataclass
class VmStage:
    index: int  # 1-based
    path: str
    how: str
    loaded_by: str
    family: str
    data: bytes = field(repr=False)
    model: str | None = None
    decision: Decision | None = None

    @property
    def authority(self) -> Authority | None:
        d = self.decision
        return d.authority if d is not None and d.allowed else None

    @property
    def sbat(self) -> SbatCheck | None:
        return self.decision.sbat if self.decision is not None else None


@dataclass
class Refusal:
    stage: int
    by: str
    reason: str
    message: str
    revoked: Revocation | None = None  # the denylist entry, when dbx/MokListX refused


@dataclass
class VmResult:
    verdict: Verdict
    firmware: FirmwareInfo
    profile: FirmwareProfile
    secure_boot: SecureBootState
    stages: list[VmStage]
    refusal: Refusal | None
    replay: Replay | None
    disk: str | None
    vars: str
    discovery: str
    notes: list[str] = field(default_factory=list)
    stopped: str | None = None


def _family(data: bytes, path: str) -> str:
    from fwtools.uefi.image import stage_from_bytes
    from fwtools.uefi.loaders import identify

    return identify(stage_from_bytes(data, path)).family


def _esp_path(path: str) -> str:
    """``partition 1:\\EFI\\Linux\\x.efi`` -> ``\\EFI\\Linux\\x.efi`` (the path a loader names)."""
    head, sep, tail = path.partition(":")
    return tail if sep and head.startswith("partition ") else path


def _refusal_message(stage: VmStage, decision: Decision, boot_label: str | None) -> str:
    if stage.loaded_by == "systemd-boot":
        # systemd-boot reports the status its LoadImage returned (src/boot/boot.c
        # image_start: "Error loading %ls: %m"): the firmware's EFI_ACCESS_DENIED, or
        # EFI_SECURITY_VIOLATION from shim's hook (which prints its own line first); refused
        # by the firmware, it then exits and BdsDxe reports the boot option failed to start.
        # Debian 13's systemd-boot 257 on QEMU's console, tests/e2e/test_vm_qemu.py.
        where = _esp_path(stage.path)
        if decision.by == "firmware":
            label = boot_label or "the boot option"
            return (f"Error loading {where}: Access denied\n"
                    f"BdsDxe: failed to start {label}: Access Denied")
        lines = [decision.message] if decision.message else []
        lines.append(f"Error loading {where}: Security violation")
        return "\n".join(lines)
    if decision.by == "firmware":
        if stage.loaded_by == "firmware":
            label = boot_label or stage.path
            return f"BdsDxe: failed to load {label}: Access Denied"
        return "Access Denied"
    return decision.message or ""


def judge(stages: Sequence[VmStage], trust: StoreTrust, sb: SecureBootState,
          boot_label: str | None = None) -> Refusal | None:
    """Fill each stage's decision in boot order; the first refusal, or None."""
    from fwtools.crypto.authenticode import image_signatures
    from fwtools.formats.pe.image import PeImage

    shim: ShimTrust | None = None
    for st in stages:
        img = PeImage(st.data, st.path)
        sigs = image_signatures(img) if sb.enabled else []
        if st.loaded_by == "firmware":
            decision = firmware_verify(img, sigs, trust, sb.enabled)
        elif not sb.enabled:
            decision = Decision(True, "grub" if st.loaded_by == "grub" else "shim",
                                "Secure Boot is off: nothing verifies",
                                Authority("secure-boot-off"))
        elif shim is None:
            # no shim below: the loader uses the firmware's LoadImage (db/dbx rules)
            decision = firmware_verify(img, sigs, trust, sb.enabled)
        elif st.loaded_by == "shim":
            decision = shim_verify(img, sigs, trust, shim)
        elif st.loaded_by == "grub":
            decision = shim_verify(img, sigs, trust, shim, by="grub", in_protocol=True)
        else:  # systemd-boot's LoadImage, through shim's hook
            decision = shim_verify(img, sigs, trust, shim, in_protocol=True)
        st.decision = decision
        if not decision.allowed:
            return Refusal(st.index, decision.by, decision.reason,
                           _refusal_message(st, decision, boot_label), decision.revoked)
        if st.family == "shim" and shim is None:
            shim = ShimTrust.from_image(img, trust)
            if sb.enabled and not trust.mok_sb_state:
                check = shim_self_check(shim)
                if not check.passed:
                    st.decision = Decision(True, decision.by, decision.reason,
                                           decision.authority, sbat=check)
                    row = check.failed or {}
                    return Refusal(st.index, "shim",
                                   f"SBAT self-check: {row.get('component')} generation "
                                   f"{row.get('generation')} is below the minimum "
                                   f"{row.get('minimum')} of SbatLevel {check.level}",
                                   shim_self_check_failed(shim.version))
                st.decision = Decision(decision.allowed, decision.by, decision.reason,
                                       decision.authority, sbat=check)
    return None


def _loaded_by_for_files(families: list[str]) -> list[str]:
    out: list[str] = []
    for i in range(len(families)):
        prev = families[i - 1] if i else None
        if prev is None:
            out.append("firmware")
        elif prev == "shim":
            out.append("shim")
        elif prev in ("grub", "systemd-boot"):
            out.append(prev)
        else:
            out.append(prev or "firmware")
    return out


def check_vm(
    firmware: str,
    vars_path: str,
    *,
    disk: str | None = None,
    chain: Sequence[str] = (),
    arch: Arch | None = None,
    kernel: str | None = None,
    profile: str | None = None,
    fw_cfg: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> VmResult:
    """The verdict for firmware ``firmware`` (profile name or image file), store
    ``vars_path`` and either ``disk`` (raw or qcow2) or the ``chain`` files in boot order."""
    from fwtools._base.fileio import read_file
    from fwtools.formats.varstore.storeio import load_store
    from fwtools.uefi.profile import load_firmware

    if (disk is None) == (not chain):
        raise UsageError("give either --disk DISK or the chain's files, not both")
    info = identify_firmware(firmware, profile_override=profile)
    if fw_cfg:
        apply_fw_cfg(info, fw_cfg)
    if overrides:
        for k, v in overrides.items():
            if v is not None:
                info.settings_basis[k] = "override"
    if info.profile is None:
        raise UsageError(info.ask_for_profile())
    prof = load_firmware(info.profile)
    # what the image says and the VM's fw_cfg, then what the caller gave explicitly
    if info.overrides:
        prof = prof.with_overrides(**info.overrides)
    if overrides:
        prof = prof.with_overrides(**overrides)
    the_arch: Arch = arch or prof.arch or "x64"
    loaded = load_store(vars_path)
    trust = StoreTrust.from_store(loaded)
    sb = secure_boot_state(loaded, info.secure_boot_support)
    notes = list(trust.notes)
    stages: list[VmStage] = []
    boot_label: str | None = None
    stopped: str | None = None
    missing: tuple[str, str, str] | None = None
    if disk is not None:
        from fwtools.errors import FwError
        from fwtools.formats.disk import open_disk
        from fwtools.machine.discover import discover

        kern = (kernel, read_file(kernel)) if kernel else None
        try:
            with open_disk(disk) as d:
                found = discover(d, loaded, the_arch, kernel=kern)
        except FwError as exc:
            raise exc.with_path(disk) from None
        notes.extend(found.notes)
        boot_label, stopped, missing = found.boot_label, found.stopped, found.missing
        for i, fs in enumerate(found.stages, 1):
            stages.append(VmStage(i, fs.path, fs.how, fs.loaded_by,
                                  _family(fs.data, fs.path), fs.data))
        how = "disk"
    else:
        files = [*chain, *([kernel] if kernel else [])]
        datas = [read_file(p) for p in files]
        fams = [_family(b, p) for b, p in zip(datas, files, strict=True)]
        for i, (p, b, fam, by) in enumerate(
                zip(files, datas, fams, _loaded_by_for_files(fams), strict=True), 1):
            stages.append(VmStage(i, p, "given on the command line", by, fam, b))
        how = "files"
    if not stages and missing is None:
        raise UsageError(f"{disk}: no boot chain found ({stopped or 'nothing to load'})")
    refusal = judge(stages, trust, sb, boot_label)
    if refusal is None and missing is not None:
        by, why, message = missing
        refusal = Refusal(len(stages) + 1, by, why, message)
    replay = _replay(stages, refusal, prof, the_arch if arch else None, sb.enabled)
    if refusal is None and replay is not None:
        refusal = replay_refusal(replay, stages)
    verdict: Verdict = "boots"
    if replay is not None and replay.verdict == "faults":
        verdict = "faults"
    elif refusal is not None or (replay is not None and replay.verdict == "refused"):
        verdict = "refused"
    return VmResult(verdict, info, prof, sb, stages, refusal, replay, disk, vars_path, how,
                    notes, stopped)


def replay_refusal(replay: Replay, stages: Sequence[VmStage]) -> Refusal | None:
    """A refusal the loader models know and the trust model does not (shim 16's NX policy,
    an out-of-resources LoadImage), as a :class:`Refusal` of the stage after the one that
    stopped the replay; None when the replay did not refuse."""
    stop = replay.stop
    if replay.verdict != "refused" or stop is None:
        return None
    by = "firmware" if stop.stage_index == 0 else stages[stop.stage_index - 1].family
    message = replay.reason.split(": ", 1)[-1]  # "<stage>: <what it prints> (<why>)"
    if message.endswith(")"):
        message = message.rsplit(" (", 1)[0]
    return Refusal(min(stop.stage_index + 1, len(stages)), by, replay.reason, message)


def _replay(stages: list[VmStage], refusal: Refusal | None, prof: FirmwareProfile,
            arch: Arch | None, secure_boot: bool) -> Replay | None:
    from fwtools.uefi.image import stage_from_bytes
    from fwtools.uefi.replay import replay

    upto = refusal.stage - 1 if refusal is not None else len(stages)
    if upto <= 0:
        return None
    images = [stage_from_bytes(s.data, s.path) for s in stages[:upto]]
    if secure_boot:
        # the trust checks above decided these stages run: the replay's own Secure Boot
        # test ("is it signed?") must not refuse one allowed by a hash in db or MokList
        images = [replace_record(i, signed=True) for i in images]
    result = replay(images, prof, arch=arch, secure_boot=secure_boot)
    for st, info in zip(stages, result.stages, strict=False):
        st.model = info.model
    return result

