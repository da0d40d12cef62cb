"""What systemd-boot and systemd-stub (Debian 13's systemd 257) measure, for
``fwtools/machine/measure.py``; each rule was held against a real boot under QEMU + swtpm
(tests/e2e/test_fw_pcr_predict_cases.py):

- systemd-boot: ``loader.conf`` as read from the ESP, an EV_EVENT_TAG (tag 0xf5bc582a, the
  UTF-16 description ``loader.conf``) in PCR 5 (``src/boot/efi/boot.c``, documented in
  systemd's docs/TPM2_PCR_MEASUREMENTS.md). It starts a UKI with ``LoadImage``: the firmware
  (or shim's hook) verifies and measures it in PCR 4 like any image; no LoadOptions.
- systemd-stub (``src/boot/efi/stub.c``): per UKI section it knows, in ``unified_sections[]``
  order (``src/fundamental/uki.c``), an EV_IPL over the name and its NUL, then one over the
  section as loaded (PCR 11). It hands the ``.linux`` section to ``LoadImage`` under the
  device path VenMedia(55c5d1f8-04cd-46b5-8a20-e56cbb3052d0) (``linux.c``): with Secure Boot
  off edk2 measures it in PCR 4 (the Authenticode digest); with Secure Boot on its security
  override (``secure-boot.c`` ``install_security_override``) lets it through unmeasured.
- Linux's EFI stub then logs (PCR 9) the LoadOptions sd-stub set (the ``.cmdline`` section
  as ``mangle_stub_cmdline`` leaves it, UTF-16 with its NUL) and the initrd sd-stub serves
  over LoadFile2: ``combine_initrds`` of ``.ucode``, ``.initrd`` and, from 257, cpio archives
  of ``.pcrsig``, ``.pcrpkey``, ``.profile`` and ``.osrel`` (``generate_embedded_initrds``,
  ``cpio.c`` ``pack_cpio_literal``), each padded to 4 bytes; credentials, system
  extensions and add-ons found on the ESP would add more (and PCR 12/13 events): with any of
  them PCR 9 and 12 are not predicted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from fwtools.formats.pe.image import PeImage
from fwtools.machine.events import (
    EV_EVENT_TAG,
    LINUX_INITRD_TAG,
    LINUX_LOAD_OPTIONS_TAG,
    PredictedEvent,
    Stage,
    hash_banks,
    image_event,
    ipl_event,
    tagged_event,
)

# systemd src/fundamental/uki.c unified_sections[], the order sd-stub measures them in (257;
# .ucode from 256, .uname/.sbat from 254, .profile/.dtbauto/.hwids/.efifw from 257). .pcrsig
# is never measured. systemd 252/253 measured only UKI_252.
UKI_SECTIONS: Final = (".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb",
                       ".uname", ".sbat", ".pcrpkey", ".profile", ".dtbauto", ".hwids",
                       ".efifw")
UKI_252: Final = frozenset({".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb",
                            ".pcrpkey"})
LOADER_CONF_TAG: Final = 0xF5BC582A  # src/boot/efi/boot.c, TPM2_PCR_MEASUREMENTS.md
# src/boot/efi/linux.c STUB_PAYLOAD_GUID: the device path sd-stub loads .linux under.
STUB_PAYLOAD_DEVICE_PATH: Final = (bytes.fromhex("04031400")
                                   + bytes.fromhex("f8d1c555cd04b5468a20e56cbb3052d0")
                                   + bytes.fromhex("7fff0400"))
# stub.c generate_embedded_initrds (257): the sections passed to the kernel as /.extra files,
# in combine_initrds order (INITRD_PCRSIG, INITRD_PCRPKEY, INITRD_OSREL, INITRD_PROFILE).
_EMBEDDED_CPIOS: Final = ((".pcrsig", "tpm2-pcr-signature.json"),
                          (".pcrpkey", "tpm2-pcr-public-key.pem"),
                          (".osrel", "os-release"), (".profile", "profile"))
# Where sd-stub and systemd-boot pick up extra inputs on the ESP (stub.c
# generate_sidecar_initrds, load_all_addons): any of them changes PCR 9, 12 or 13.
SIDECAR_DIRS: Final = ("\\loader\\credentials", "\\loader\\addons")


@dataclass
class Measured:
    """What a systemd component adds to a prediction: events in order, PCRs that cannot be
    predicted (with the reason) and notes."""

    events: list[PredictedEvent] = field(default_factory=list)
    not_claimed: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def sdmagic(img: PeImage) -> str | None:
    """The ``.sdmagic`` text (``#### LoaderInfo: systemd-stub 257.9 ####``), or None."""
    for section in img.sections:
        if section.name == ".sdmagic":
            return img.section_data(section).decode("ascii", "replace")
    return None


def stub_version(img: PeImage) -> int | None:
    """systemd-stub's major version from ``.sdmagic``."""
    found = re.search(r"systemd-stub (\d+)", sdmagic(img) or "")
    return int(found.group(1)) if found else None


def is_systemd_boot(img: PeImage) -> bool:
    return "systemd-boot " in (sdmagic(img) or "")


def section_bytes(img: PeImage, name: str) -> bytes | None:
    """A section as loaded: VirtualSize bytes (zero-filled past the raw data)."""
    section = next((s for s in img.sections if s.name == name), None)
    if section is None:
        return None
    content = img.section_data(section)[: section.virtual_size]
    return content + bytes(section.virtual_size - len(content))


def mangle_stub_cmdline(text: str) -> str:
    """``mangle_stub_cmdline`` (src/boot/efi/util.c): control characters become spaces,
    trailing spaces are dropped."""
    return "".join(" " if ord(c) < 0x20 else c for c in text).rstrip(" ")


def stub_cmdline(uki: PeImage) -> str | None:
    """The command line sd-stub gives the kernel when the loader passes none: ``.cmdline``
    up to its first NUL, mangled; None without one."""
    raw = section_bytes(uki, ".cmdline")
    if raw is None:
        return None
    return mangle_stub_cmdline(raw.split(b"\0", 1)[0].decode("utf-8", "replace"))


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _cpio_header(inode: int, mode: int, size: int, name: bytes) -> bytes:
    """A newc header (``070701``, 13 eight-digit hex words) and the NUL-terminated name, as
    ``pack_cpio_one``/``pack_cpio_dir`` write them: uid, gid, mtime, devices and crc 0."""
    words = (inode, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name) + 1, 0)
    return b"070701" + b"".join(b"%08x" % w for w in words) + name + b"\0"


_CPIO_TRAILER: Final = (b"070701" + b"00000000" * 4 + b"00000001" + b"00000000" * 6
                        + b"0000000B" + b"00000000" + b"TRAILER!!!\0\0\0\0")


def cpio_literal(data: bytes, directory: str, filename: str) -> bytes:
    """``pack_cpio_literal(data, directory, filename, 0555, 0444)``: the directory inode (its
    parents first), the file, the trailer; inodes from 1, each record padded to 4 bytes."""
    out = b""
    inode = 1
    parts = directory.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent:
            out = _pad4(out + _cpio_header(inode, 0o040555, 0, parent.encode()))
            inode += 1
    out = _pad4(out + _cpio_header(inode, 0o040555, 0, directory.encode()))
    inode += 1
    out = _pad4(out + _cpio_header(inode, 0o100444, len(data),
                                   f"{directory}/{filename}".encode()))
    return _pad4(out + data) + _CPIO_TRAILER


def stub_initrd(uki: PeImage) -> bytes:
    """The initrd systemd-stub 257 serves (``combine_initrds``) when the ESP adds nothing."""
    parts = [section_bytes(uki, ".ucode"), section_bytes(uki, ".initrd")]
    for name, filename in _EMBEDDED_CPIOS:
        content = section_bytes(uki, name)
        if content is not None:
            parts.append(cpio_literal(content, ".extra", filename))
    return b"".join(_pad4(p) for p in parts if p)


def uki_events(uki: Stage, banks: Sequence[str]) -> Measured:
    """sd-stub's PCR 11 events (module doc)."""
    out = Measured()
    version = stub_version(uki.image)
    names = [s.name for s in uki.image.sections]
    if version is None:
        out.not_claimed[11] = f"{uki.path}: no systemd-stub version in .sdmagic"
        return out
    if ".profile" in names:
        out.not_claimed[11] = (f"{uki.path}: a multi-profile UKI (the profile sd-stub picks "
                               "is not modelled)")
        return out
    known = UKI_252 if version < 254 else frozenset(UKI_SECTIONS)
    for name in UKI_SECTIONS:
        content = section_bytes(uki.image, name) if name in known else None
        if not content:
            continue
        out.events.append(ipl_event(11, name, name.encode() + b"\0",
                                    f"the section name {name} and NUL", banks, "systemd-stub"))
        out.events.append(ipl_event(11, name, content, f"the {name} section ({len(content)} "
                                    "bytes)", banks, "systemd-stub"))
    return out


def kernel_handover(uki: Stage, secure_boot: bool, banks: Sequence[str]) -> Measured:
    """PCR 4: edk2 measures the ``.linux`` sd-stub loads, with Secure Boot off only; PCR 9:
    Linux's stub measures the LoadOptions and the initrd sd-stub passes (systemd >= 257)."""
    from fwtools.formats.pe.authenticode import authenticode_digests

    out = Measured()
    linux = section_bytes(uki.image, ".linux")
    if linux is None:
        out.not_claimed[4] = f"{uki.path}: no .linux section"
        return out
    if not secure_boot:
        kernel = Stage(f"{uki.path}:.linux", PeImage(linux, f"{uki.path}:.linux"), "kernel")
        kernel.digests.update(authenticode_digests(kernel.image, banks, pad=False))
        out.events.append(image_event(4, kernel, banks, "the UKI's .linux (loaded by "
                                      "systemd-stub)", "edk2", STUB_PAYLOAD_DEVICE_PATH))
    version = stub_version(uki.image) or 0
    if version < 257:
        out.not_claimed[9] = (f"{uki.path}: the initrd systemd-stub {version} assembles is "
                              "modelled from 257 on")
        return out
    cmdline = stub_cmdline(uki.image)
    if cmdline:
        options = (cmdline + "\0").encode("utf-16-le")
        out.events.append(tagged_event(9, LINUX_LOAD_OPTIONS_TAG, "LOADED_IMAGE::LoadOptions",
                                       options, "LoadOptions (UTF-16 .cmdline and NUL)", banks,
                                       "linux"))
    initrd = stub_initrd(uki.image)
    if initrd:
        out.events.append(tagged_event(9, LINUX_INITRD_TAG, "Linux initrd", initrd,
                                       f"the initrd systemd-stub serves ({len(initrd)} bytes)",
                                       banks, "linux"))
    return out


def loader_conf_event(data: bytes, banks: Sequence[str]) -> PredictedEvent:
    """systemd-boot's PCR 5 event over ``loader.conf``."""
    from fwtools.formats.tcg import layout as L

    body = "loader.conf\0".encode("utf-16-le")
    event_data = L.TAGGED_EVENT.pack(LOADER_CONF_TAG, len(body)) + body
    return PredictedEvent(5, EV_EVENT_TAG, "'loader.conf'", event_data, hash_banks(data, banks),
                          f"loader.conf ({len(data)} bytes)", "systemd-boot", data)


def esp_inputs(disk_path: str) -> tuple[bytes | None, list[str]]:
    """``\\loader\\loader.conf`` of the disk's ESP (None when absent) and the sidecar inputs
    found there (credentials, add-ons, ``*.extra.d`` drop-ins)."""
    from fwtools.errors import FwError
    from fwtools.formats.disk import open_disk
    from fwtools.formats.disk.fat import FatFilesystem

    with open_disk(disk_path) as disk:
        part = disk.esp()
        if part is None:
            return None, []
        try:
            fs = disk.filesystem(part)
        except FwError:
            return None, []
        if not isinstance(fs, FatFilesystem):
            return None, []
        conf = None
        if fs.exists("\\loader\\loader.conf"):
            conf = fs.read_file("\\loader\\loader.conf")
        extras: list[str] = []
        for path, entry in fs.walk("\\"):
            if entry.is_dir:
                continue
            folder = path.rsplit("\\", 1)[0]
            if folder.lower() in SIDECAR_DIRS or folder.lower().endswith(".extra.d"):
                extras.append(path)
        return conf, extras


def sd_inputs(disk: str | None, with_sd_boot: bool) -> tuple[bytes | None, Measured]:
    """loader.conf and the sidecar check from the boot disk's ESP (:func:`esp_inputs`); PCR 9
    and 12 are claimed only when the ESP adds nothing sd-stub would measure."""
    out = Measured()
    if disk is None:
        why = ("systemd-stub adds credentials, system extensions and add-ons it finds on the "
               "ESP: give the disk with --disk")
        out.not_claimed[9] = out.not_claimed[12] = why
        return None, out
    conf, extras = esp_inputs(disk)
    if extras:
        why = (f"the ESP holds inputs systemd-stub measures ({', '.join(extras[:3])}); not "
               "modelled")
        out.not_claimed[9] = out.not_claimed[12] = why
    else:
        out.notes.append("PCR 12: nothing measured (no credentials or add-ons on the ESP, no "
                         "SMBIOS OEM string io.systemd.stub.kernel-cmdline-extra assumed)")
    if conf is None and with_sd_boot:
        out.notes.append("the ESP has no \\loader\\loader.conf: systemd-boot measures none")
    return conf, out
