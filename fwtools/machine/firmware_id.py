"""Which firmware build a ``--firmware`` argument names, and the replay settings it has.

A shipped profile name (``debian13-ovmf``) is taken as is. A file is identified by the
SHA-256 of its bytes against Debian's packaged OVMF/AAVMF builds (bookworm 2022.11-6+deb12u2,
trixie 2025.02-8+deb13u1): each maps to the firmware profile and Secure Boot support its
``debian/rules`` gives it (docs/reference/pi-firmware.md §2 and the Debian table there).
Anything else is ``unknown``: the caller asks for ``--profile NAME`` rather than guess.
Reading the settings from the image itself (formats/pi) can later replace the table.

QEMU's fw_cfg entries are the VM's settings, not the image's: ``opt/ovmf/PcdSetNxForStack``
and ``opt/org.tianocore/UninstallMemAttrProtocol`` (Debian's patch
OvmfPkg-X64-add-opt-org.tianocore-UninstallMemAttrPr, BdsPlatform.c) override the build.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from fwtools.errors import UsageError

Basis = Literal["read from the image", "known build", "override", "unknown"]


@dataclass(frozen=True)
class KnownBuild:
    file: str
    package: str
    profile: str
    secure_boot: bool


_D12_OVMF: Final = "ovmf 2022.11-6+deb12u2"
_D13_OVMF: Final = "ovmf 2025.02-8+deb13u1"
_D12_AAVMF: Final = "qemu-efi-aarch64 2022.11-6+deb12u2"
_D13_AAVMF: Final = "qemu-efi-aarch64 2025.02-8+deb13u1"

#: SHA-256 of the file -> the build. Symlinks (``*.ms.fd``, ``*.snakeoil.fd``) share their
#: target's bytes. Made from the corpus with ``sha256sum`` (tests/machine/test_firmware_id.py
#: checks every entry against the corpus files).
KNOWN_BUILDS: Final[Mapping[str, KnownBuild]] = {
    "d9b568def24088c92f34b5479e0ed7e44d0a4d4cea8a0f5716719180bba48106":
        KnownBuild("OVMF_CODE.fd", _D12_OVMF, "debian12-ovmf", False),
    "6ee6a5db7a1443d17594f1e00e3cf2a2250bc1c95c8f9101bc49c9977ce11a68":
        KnownBuild("OVMF_CODE.secboot.fd", _D12_OVMF, "debian12-ovmf", True),
    "b157d97b1f69729514feb7f201d2cbe4957f23ab77920e361fe9f822ba49ca4c":
        KnownBuild("OVMF_CODE_4M.fd", _D12_OVMF, "debian12-ovmf", False),
    "d50189a486d22af418198226a3a5bcb6ddac775590f6a808bd629474ee034d62":
        KnownBuild("OVMF_CODE_4M.secboot.fd", _D12_OVMF, "debian12-ovmf", True),
    "624e06de18b4fa535e90db7160d00d3d07d206422b89999bf1e27d920264e4e0":
        KnownBuild("OVMF_CODE_4M.fd", _D13_OVMF, "debian13-ovmf", False),
    "1a46295574430cfb7f825ee3e4dc64b052acbef08e310377ed7c64cb757a9dc1":
        KnownBuild("OVMF_CODE_4M.secboot.fd", _D13_OVMF, "debian13-ovmf", True),
    "9ee9f2382e0c6aa95c87fed4131f9c1080a084d8ef7bff3d8b89147bf2a34b1b":
        KnownBuild("OVMF_CODE_4M.secboot.strictnx.fd", _D13_OVMF, "debian13-ovmf-strictnx",
                   True),
    # bookworm's one AAVMF_CODE.fd is also its .ms/.snakeoil (Secure Boot capable)
    "5f8ef96257f27e2815270bc54cbf6923bb344cbb5cd72be5b392c2ee4939181a":
        KnownBuild("AAVMF_CODE.fd", _D12_AAVMF, "debian12-aavmf", True),
    "5d3147294c56ce8cb636c57c181776a89bc7ba254274c35698dc5795758052d3":
        KnownBuild("AAVMF_CODE.no-secboot.fd", _D13_AAVMF, "debian13-aavmf", False),
    "655bcbc1e715200d9b4bf417fa5b06d49e2998304712bf9ac121064e278dae56":
        KnownBuild("AAVMF_CODE.secboot.fd", _D13_AAVMF, "debian13-aavmf", True),
    "6570699231a9eb9327e76a2031a0909fdacd4f5f99f1be1566ac7acaa1211ea7":
        KnownBuild("AAVMF_CODE.secboot.strictnx.fd", _D13_AAVMF, "debian13-aavmf-strictnx",
                   True),
}

#: fw_cfg names the VM can set, and the profile field each one overrides.
FW_CFG_SETTINGS: Final = {
    "opt/ovmf/PcdSetNxForStack": "stack_nx",
    "opt/org.tianocore/UninstallMemAttrProtocol": "memory_attribute_protocol",
}


@dataclass
class FirmwareInfo:
    """What ``--firmware`` named: ``profile`` (a shipped profile name, or None when unknown),
    ``basis`` of the identification, ``secure_boot_support`` (None: not known) and
    per-setting ``settings_basis``; ``overrides`` go to ``FirmwareProfile.with_overrides``."""

    source: str
    kind: Literal["profile", "file"]
    basis: Basis
    profile: str | None
    secure_boot_support: bool | None
    sha256: str | None = None
    build: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    settings_basis: dict[str, Basis] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def identify_firmware(spec: str, *, profile_override: str | None = None) -> FirmwareInfo:
    """Identify ``spec`` (a profile name, a profile TOML file or a firmware image file)."""
    from fwtools.uefi.profile import shipped_firmware

    is_file = os.path.isfile(spec)
    if not is_file and os.path.exists(spec):
        from fwtools._base.fileio import open_input

        os.close(open_input(spec)[0])  # raises: a directory, FIFO or device, never opened
    if not is_file or spec.endswith(".toml"):
        if not is_file and spec not in shipped_firmware():
            raise UsageError(f"--firmware {spec!r}: neither a file nor a shipped firmware "
                             "profile (see fw-check boot-chain --list-firmware)")
        # a profile named by the user is an override of every setting
        return FirmwareInfo(spec, "profile", "override", profile_override or spec, None)
    try:
        digest = _file_sha256(spec)
    except OSError as exc:
        raise UsageError(f"{spec}: {exc.strerror or exc}") from None
    known = KNOWN_BUILDS.get(digest)
    if profile_override:
        info = FirmwareInfo(spec, "file", "override", profile_override,
                            known.secure_boot if known else None, digest,
                            f"{known.package} {known.file}" if known else None)
        if known is None:
            _read_from_image(spec, info)
        return info
    if known is None:
        info = FirmwareInfo(spec, "file", "unknown", None, None, digest)
        read = _read_from_image(spec, info)
        info.notes.insert(0,
            f"{os.path.basename(spec)} (sha256 {digest[:16]}...) is not a known build"
            + (f"; read from the image: {', '.join(read)}" if read else "")
            + "; its NX and image-protection policies are folded into code and cannot be "
            "read: give --profile NAME (see fw-check boot-chain --list-firmware)")
        return info
    return FirmwareInfo(spec, "file", "known build", known.profile, known.secure_boot, digest,
                        f"{known.package} {known.file}")


def _read_from_image(path: str, info: FirmwareInfo) -> list[str]:
    """Fill in what formats/pi reads from an image no hash identifies: Secure Boot support
    (image verification and authenticated variables linked in) and whether the memory
    attribute protocol is still installed when the OS loader runs. Returns the settings
    read; an image formats/pi cannot read leaves them unknown, with a note."""
    from fwtools.errors import FwError
    from fwtools.formats.pi import FirmwareImage
    from fwtools.formats.pi.facts import firmware_facts

    try:
        facts = {f.name: f.value for f in firmware_facts(FirmwareImage.open(path))}
    except FwError as exc:
        info.notes.append(f"settings not read from the image: {exc}")
        return []
    read: list[str] = []
    support = facts.get("secure_boot")
    if support in ("supported", "not supported"):
        info.secure_boot_support = support == "supported"
        info.settings_basis["secure_boot_support"] = "read from the image"
        read.append(f"Secure Boot {support}")
    present = facts.get("memory_attribute_protocol")
    switch = facts.get("memory_attribute_uninstall_switch")  # BdsDxe may uninstall it
    uninstalled = False if switch is False else facts.get("memory_attribute_uninstall_default")
    if present is False or (present is True and isinstance(uninstalled, bool)):
        available = bool(present) and not uninstalled
        info.overrides["memory_attribute_protocol"] = available
        info.settings_basis["memory_attribute_protocol"] = "read from the image"
        read.append("memory attribute protocol "
                    + ("installed at boot" if available else "not installed at boot"))
    return read


def _truthy(value: str) -> bool:
    v = value.strip().lower()
    if v in ("y", "yes", "true", "1", "on"):
        return True
    if v in ("n", "no", "false", "0", "off"):
        return False
    raise UsageError(f"fw_cfg value {value!r}: expected y/n (yes, no, true, false, 1, 0)")


def apply_fw_cfg(info: FirmwareInfo, entries: Mapping[str, str]) -> None:
    """Record the VM's fw_cfg ``entries`` as overrides (unknown names are noted, not used)."""
    for name, value in entries.items():
        setting = FW_CFG_SETTINGS.get(name)
        if setting is None:
            info.notes.append(f"fw_cfg {name}: not a setting the replay models")
            continue
        flag = _truthy(value)
        # UninstallMemAttrProtocol=y means the protocol is gone when the OS loader runs
        info.overrides[setting] = not flag if setting == "memory_attribute_protocol" else flag
        info.settings_basis[setting] = "override"


def parse_fw_cfg(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``NAME=VALUE`` strings (``--fw-cfg``; QEMU's ``name=...,string=...`` form too)."""
    out: dict[str, str] = {}
    for spec in specs:
        if spec.startswith("name="):
            parts = dict(p.partition("=")[::2] for p in spec.split(","))
            if "name" in parts and "string" in parts:
                out[parts["name"]] = parts["string"]
                continue
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise UsageError(f"--fw-cfg {spec!r}: expected NAME=VALUE")
        out[name] = value
    return out
