"""Which firmware build a ``--firmware`` argument names, and the replay settings it has.

A shipped profile name (``debian13-ovmf``) is taken as is. A file is identified by the
SHA-256 of its code (formats/pi ``FirmwareImage.code_sha256``: the guest's view of a qcow2,
without the variable store OVMF.fd carries, without blank padding) against Debian's packaged
OVMF/AAVMF builds (bookworm 2022.11-6+deb12u2, trixie 2025.02-8+deb13u1): each maps to the
firmware profile and Secure Boot support its ``debian/rules`` gives it
(docs/reference/pi-firmware.md §2 and the Debian table there), and against the firmware lab's
x64 builds (:data:`LAB_BUILDS`), which map to their ``debian13-ovmf-lab-*`` profiles. For
anything else the settings formats/pi can read from the image (Secure Boot support, the
memory attribute protocol, the edk2 release, the NX policy where DxeCore holds it as one
immediate) get the basis "read from the image"; the rest are folded into code and the caller
asks for ``--profile NAME`` for them rather than guess.

QEMU's fw_cfg entries are the VM's settings, not the image's: ``opt/ovmf/PcdSetNxForStack``
and ``opt/org.tianocore/UninstallMemAttrProtocol`` (Debian's patch
OvmfPkg-X64-add-opt-org.tianocore-UninstallMemAttrPr, BdsPlatform.c) override the build.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from fwtools.errors import UsageError

if TYPE_CHECKING:
    from fwtools.formats.pi import FirmwareImage

Basis = Literal["read from the image", "known build", "override", "unknown"]


@dataclass(frozen=True)
class KnownBuild:
    file: str
    package: str
    profile: str
    secure_boot: bool
    also: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.package} {self.file}" + (
            f" (also in {', '.join(self.also)})" if self.also else "")


_D12_OVMF: Final = "ovmf 2022.11-6+deb12u2"
_D13_OVMF: Final = "ovmf 2025.02-8+deb13u1"
_D12_AAVMF: Final = "qemu-efi-aarch64 2022.11-6+deb12u2"
_D13_AAVMF: Final = "qemu-efi-aarch64 2025.02-8+deb13u1"

#: SHA-256 of the build's code (``FirmwareImage.code_sha256``: the guest's view of a qcow2,
#: without OVMF.fd's variable store and without blank padding after the last volume) -> the
#: build. Symlinks (``*.ms.fd``, ``*.snakeoil.fd``) share their target's bytes; ``also``
#: names the other Debian files that hold the same code (debian/rules installs the build's
#: OVMF.fd, VARS then CODE, and QEMU_EFI.fd, which AAVMF_CODE.fd pads to 64 MiB). Made from
#: the corpus (tests/machine/test_firmware_id.py checks every entry against the corpus files).
DEBIAN_BUILDS: Final[Mapping[str, KnownBuild]] = {
    "d9b568def24088c92f34b5479e0ed7e44d0a4d4cea8a0f5716719180bba48106":
        KnownBuild("OVMF_CODE.fd", _D12_OVMF, "debian12-ovmf", False, ("OVMF.fd",)),
    "6ee6a5db7a1443d17594f1e00e3cf2a2250bc1c95c8f9101bc49c9977ce11a68":
        KnownBuild("OVMF_CODE.secboot.fd", _D12_OVMF, "debian12-ovmf", True),
    "b157d97b1f69729514feb7f201d2cbe4957f23ab77920e361fe9f822ba49ca4c":
        KnownBuild("OVMF_CODE_4M.fd", _D12_OVMF, "debian12-ovmf", False),
    "d50189a486d22af418198226a3a5bcb6ddac775590f6a808bd629474ee034d62":
        KnownBuild("OVMF_CODE_4M.secboot.fd", _D12_OVMF, "debian12-ovmf", True),
    "624e06de18b4fa535e90db7160d00d3d07d206422b89999bf1e27d920264e4e0":
        KnownBuild("OVMF_CODE_4M.fd", _D13_OVMF, "debian13-ovmf", False, ("OVMF.fd",)),
    "1a46295574430cfb7f825ee3e4dc64b052acbef08e310377ed7c64cb757a9dc1":
        KnownBuild("OVMF_CODE_4M.secboot.fd", _D13_OVMF, "debian13-ovmf", True),
    "9ee9f2382e0c6aa95c87fed4131f9c1080a084d8ef7bff3d8b89147bf2a34b1b":
        KnownBuild("OVMF_CODE_4M.secboot.strictnx.fd", _D13_OVMF, "debian13-ovmf-strictnx",
                   True),
    # bookworm's one AAVMF_CODE.fd is also its .ms/.snakeoil (Secure Boot capable)
    "1794df260f8a1b1c938b5cee48f277327d8ce901a07ff44d2cd86ca043dae96a":
        KnownBuild("AAVMF_CODE.fd", _D12_AAVMF, "debian12-aavmf", True, ("QEMU_EFI.fd",)),
    "86493b7dc94bb917347116c600e7e94c12ee9b295aef990bed00a101237e0d69":
        KnownBuild("AAVMF_CODE.no-secboot.fd", _D13_AAVMF, "debian13-aavmf", False,
                   ("QEMU_EFI.fd",)),
    "bcba13e91a424db8e24736299aa94a7b196adc3ed8d63801423dbe9dfb0029c9":
        KnownBuild("AAVMF_CODE.secboot.fd", _D13_AAVMF, "debian13-aavmf", True),
    "4b48c51c370f9ef1c40167c1a8d85d546f2aa31ea071b6a12354691026fb6e9d":
        KnownBuild("AAVMF_CODE.secboot.strictnx.fd", _D13_AAVMF, "debian13-aavmf-strictnx",
                   True),
}

_LAB: Final = "firmware lab DEBUG build of edk2 2025.02-8+deb13u1 (tests/e2e/lab/build-ovmf.sh)"

#: The firmware lab's builds (tests/e2e/lab/build-ovmf.sh at its default LAB_CACHE; the
#: digests are of the code of ``$LAB_CACHE/edk2-<version>-<key>/<variant>/{OVMF,AAVMF}_CODE*.fd``).
#: They are reproducible only together with their build path: a DEBUG build embeds the absolute
#: path of every module's .dll (GenFw's CodeView entry) and of the sources ASSERT names
#: (``__FILE__``), and build-ovmf.sh builds in ``$LAB_CACHE/src/edk2``. ArmVirtQemu's SEC
#: (ArmPlatformPkg/Sec/Sec.c) also prints ``__DATE__``/``__TIME__``: build-ovmf.sh pins them
#: with SOURCE_DATE_EPOCH (the changelog's date, as Debian's own build does).
#: ``strict-nomap`` is the strict binary; its fw_cfg entry is the VM's (:func:`apply_fw_cfg`).
#: tests/machine/test_firmware_id.py recomputes each digest from the cached build.
LAB_BUILDS: Final[Mapping[str, KnownBuild]] = {
    "85466641ba1ebf56728f2984ac479128cddc6b66b12efdded6099874f2914646":
        KnownBuild("strict/OVMF_CODE_4M.fd", _LAB, "debian13-ovmf-lab-strict", True),
    "3d27e2a1fb18579d3c93b6f739640347db504df51a5a3b719f7242727837cd26":
        KnownBuild("compat/OVMF_CODE_4M.fd", _LAB, "debian13-ovmf-lab-compat", True),
    "1d11b07514f84f20199bb0a65aab73f0adf8f2fc802e893d874bdb4bef49069f":
        KnownBuild("strict-img/OVMF_CODE_4M.fd", _LAB, "debian13-ovmf-lab-strict-img", True),
    "4cd427158ad3c09322b7a2c3d27a562554d55afa1c21ab6a4e9f6127b3f0808d":
        KnownBuild("aa64-strict/AAVMF_CODE.fd", _LAB, "debian13-aavmf-lab-strict", True),
}
#: Every build a digest identifies.
KNOWN_BUILDS: Final[Mapping[str, KnownBuild]] = {**DEBIAN_BUILDS, **LAB_BUILDS}

#: fw_cfg names the VM can set, and the profile field each one overrides.
FW_CFG_SETTINGS: Final = {
    "opt/ovmf/PcdSetNxForStack": "stack_nx",
    "opt/org.tianocore/UninstallMemAttrProtocol": "memory_attribute_protocol",
}


#: The replay settings of a firmware profile that ``fw-check vm`` reports, each with its basis.
PROFILE_SETTINGS: Final = ("edk2_release", "nx_policy", "image_protection",
                           "memory_attribute_protocol", "stack_nx", "stack_guard",
                           "null_detection", "debug_clear_memory")


@dataclass
class FirmwareInfo:
    """What ``--firmware`` named: ``profile`` (a shipped profile name, or None when unknown),
    ``basis`` of the identification, ``secure_boot_support`` (None: not known) and
    per-setting ``settings_basis``; ``overrides`` go to ``FirmwareProfile.with_overrides``.
    ``sha256`` is the digest of the build's code (see :data:`KNOWN_BUILDS`)."""

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
    read: list[str] = field(default_factory=list)  # what was read from the image, in words

    def unread_settings(self) -> list[str]:
        """The profile settings nothing (image, fw_cfg, command line) has given a value."""
        return [s for s in PROFILE_SETTINGS if s not in self.settings_basis]

    def ask_for_profile(self) -> str:
        """Why an unknown build needs ``--profile``: what was read, and what cannot be."""
        name = os.path.basename(self.source)
        digest = f" (code sha256 {self.sha256[:16]}...)" if self.sha256 else ""
        read = f"; read from the image: {', '.join(self.read)}" if self.read else ""
        return (f"{name}{digest} is not a known build{read}; the image cannot tell "
                f"{', '.join(self.unread_settings())} (folded into code, or the VM's): give "
                "--profile NAME for them (see fw-check boot-chain --list-firmware)")


def identify_firmware(spec: str, *, profile_override: str | None = None) -> FirmwareInfo:
    """Identify ``spec`` (a profile name, a profile TOML file or a firmware image file).

    A file is identified by its code (:meth:`FirmwareImage.code_sha256`): what the guest sees
    of a qcow2, without the variable store OVMF.fd carries and without blank padding. For a
    build no digest identifies, the settings formats/pi reads are filled in with the basis
    "read from the image" and ``profile`` stays None (or ``profile_override``)."""
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
    image, digest, why = _open_image(spec)
    known = KNOWN_BUILDS.get(digest)
    notes = [] if image is None else _how_identified(image)
    if known is not None and profile_override is None:
        return FirmwareInfo(spec, "file", "known build", known.profile, known.secure_boot,
                            digest, known.label, notes=notes)
    info = FirmwareInfo(spec, "file", "override" if profile_override else "unknown",
                        profile_override, known.secure_boot if known else None, digest,
                        known.label if known else None, notes=notes)
    if known is None:
        if image is None:
            info.notes.append(f"settings not read from the image: {why}")
        else:
            _read_from_image(image, info)
    return info


def _open_image(path: str) -> tuple[FirmwareImage | None, str, str | None]:
    """The image (None when formats/pi cannot read it), the digest that identifies it, and
    why it could not be read. Unreadable files raise (FwIOError)."""
    from fwtools._base.fileio import read_file
    from fwtools.errors import FwError
    from fwtools.formats.pi import FirmwareImage

    data = read_file(path)
    try:
        image = FirmwareImage.parse(data, path)
    except FwError as exc:
        import hashlib

        return None, hashlib.sha256(data).hexdigest(), str(exc)
    return image, image.code_sha256, None


def _how_identified(image: FirmwareImage) -> list[str]:
    start, end = image.code_span()
    out = []
    if image.container != "raw":
        out.append(f"firmware read through its {image.container} container (the guest's view)")
    if start or end != len(image.data):
        what = ("the variable store before it is the VM's" if start
                else "blank padding after it")
        out.append(f"the code compared with known builds is at {start:#x}-{end:#x} ({what})")
    return out


def _release_number(value: object) -> int | None:
    """``edk2-stable202502`` -> 202502."""
    if isinstance(value, str) and value.startswith("edk2-stable") and value[11:].isdigit():
        return int(value[11:17])
    return None


def _read_from_image(image: FirmwareImage, info: FirmwareInfo) -> None:
    """Fill in what formats/pi reads from an image no digest identifies (what ``fw-check
    firmware`` shows): Secure Boot support (image verification and authenticated variables
    linked in), whether the memory attribute protocol is still installed when the OS loader
    runs, the edk2 release and the NX policy (where DxeCore's code holds it as one immediate:
    AAVMF). An image formats/pi cannot walk leaves them unknown, with a note."""
    from fwtools.errors import FwError
    from fwtools.formats.pi.facts import firmware_facts

    try:
        facts = {f.name: f.value for f in firmware_facts(image)}
    except FwError as exc:
        info.notes.append(f"settings not read from the image: {exc}")
        return
    read = info.read

    def setting(name: str, value: Any, words: str) -> None:
        info.overrides[name] = value
        info.settings_basis[name] = "read from the image"
        read.append(words)

    support = facts.get("secure_boot")
    if support in ("supported", "not supported"):
        info.secure_boot_support = support == "supported"
        info.settings_basis["secure_boot_support"] = "read from the image"
        read.append(f"Secure Boot {support}")
    release = _release_number(facts.get("edk2_release"))
    if release is not None:
        setting("edk2_release", release, f"edk2 release {facts['edk2_release']}")
    policy = facts.get("nx_memory_protection_policy")
    if isinstance(policy, str):
        setting("nx_policy", int(policy, 16), f"NX policy {policy}")
    present = facts.get("memory_attribute_protocol")
    switch = facts.get("memory_attribute_uninstall_switch")  # BdsDxe may uninstall it
    uninstalled = False if switch is False else facts.get("memory_attribute_uninstall_default")
    if present is False or (present is True and isinstance(uninstalled, bool)):
        available = bool(present) and not uninstalled
        setting("memory_attribute_protocol", available, "memory attribute protocol "
                + ("installed at boot" if available else "not installed at boot"))


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
