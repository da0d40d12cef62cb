"""Find a machine's boot chain on its disk, as firmware, shim, GRUB and systemd-boot do.

1. Firmware (edk2 MdeModulePkg/Library/UefiBootManagerLib/BmBoot.c): BootNext, then the
   active Boot#### options in BootOrder. An option whose device path has a hard-drive node
   (``HD(n,GPT,<partition GUID>,...)``) and a file path loads that file from the partition
   with that GUID; an option naming only the disk (OVMF's "UEFI QEMU HARDDISK") or none
   usable falls back to the removable-media path ``\\EFI\\BOOT\\BOOT{X64,AA64}.EFI``
   (``BmExpandMediaDevicePath``), as does a store without boot options.
2. shim (shim.c ``DEFAULT_LOADER``): its second stage ``grubx64.efi``/``grubaa64.efi`` in
   the directory shim was loaded from; started as ``\\EFI\\BOOT\\BOOT*.EFI`` beside
   ``fbx64.efi`` it runs the fallback, which boots the loader named by a
   ``\\EFI\\<vendor>\\BOOT*.CSV`` (fallback.c), so that loader's chain is followed.
3. GRUB (Debian's signed, monolithic image): ``grub.cfg`` beside the image, typically
   grub-install's stub ``search.fs_uuid UUID root`` / ``set prefix=($root)'/boot/grub'`` /
   ``configfile $prefix/grub.cfg``; then the default menu entry's ``linux`` line, its path
   relative to the entry's ``$root`` (a ``search --fs-uuid --set=root`` inside the entry
   moves it), found by ext4 superblock UUID or FAT volume serial.
4. systemd-boot (fwtools/machine/sdboot.py): type 1 entries ``\\loader\\entries\\*.conf``
   (``linux``/``efi``) and type 2 entries, the UKIs in ``\\EFI\\Linux`` (with ``.osrel`` and
   ``.linux``), in systemd-boot's order; the default from ``LoaderEntryOneShot``,
   ``LoaderEntryDefault`` (the store), then ``loader.conf``'s ``default`` glob, else the first
   entry in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from fwtools.formats.disk import DiskPathError
from fwtools.machine.grubcfg import default_entry, parse_grub_cfg

if TYPE_CHECKING:
    from fwtools.formats.disk import Disk, Partition
    from fwtools.formats.disk.ext4 import Ext4Filesystem
    from fwtools.formats.disk.fat import FatFilesystem
    from fwtools.formats.varstore.storeio import LoadedStore

    Filesystem = FatFilesystem | Ext4Filesystem

EFI_SUFFIX: Final = {"x64": "X64", "aa64": "AA64"}
_MEDIA: Final = 0x04
_HARD_DRIVE: Final = 0x01
_FILE_PATH: Final = 0x04
_FV_FILE: Final = 0x06
_MAX_CONFIGFILE_DEPTH: Final = 4


@dataclass
class FoundStage:
    """One stage found on the disk: ``path`` as ``partition N:path``, ``how`` it was found,
    ``loaded_by`` (firmware, shim, grub, systemd-boot)."""

    path: str
    data: bytes
    how: str
    loaded_by: str
    file: str = ""


@dataclass
class Discovery:
    stages: list[FoundStage] = field(default_factory=list)
    boot_label: str | None = None
    notes: list[str] = field(default_factory=list)
    stopped: str | None = None
    #: a file the boot needs is not there: (component, reason, what it prints); the boot
    #: stops there (as opposed to ``stopped`` alone: a configuration not followed)
    missing: tuple[str, str, str] | None = None

    def fail(self, by: str, reason: str, message: str) -> None:
        self.stopped = reason
        self.missing = (by, reason, message)


@dataclass
class _Fs:
    partition: Partition | None
    fs: Filesystem

    @property
    def label(self) -> str:
        return f"partition {self.partition.index}" if self.partition is not None else "disk"

    def read(self, path: str) -> bytes:
        from fwtools.formats.disk.fat import FatFilesystem

        if isinstance(self.fs, FatFilesystem):
            return self.fs.read_file(path.replace("/", "\\"))
        return self.fs.read_file(path.replace("\\", "/"))

    def exists(self, path: str) -> bool:
        from fwtools.formats.disk.fat import FatFilesystem

        if isinstance(self.fs, FatFilesystem):
            return self.fs.exists(path.replace("/", "\\"))
        return self.fs.exists(path.replace("\\", "/"))

    def where(self, path: str) -> str:
        return f"{self.label}:{path}"


class _Machine:
    def __init__(self, disk: Disk, store: LoadedStore | None, arch: str) -> None:
        self.disk = disk
        self.store = store
        self.arch = arch
        self.out = Discovery()
        self._fs: dict[int, _Fs | None] = {}
        self.second_stage: str | None = None

    def fs(self, partition: Partition) -> _Fs | None:
        if partition.index not in self._fs:
            from fwtools.errors import FwError

            try:
                self._fs[partition.index] = _Fs(partition, self.disk.filesystem(partition))
            except FwError:
                self._fs[partition.index] = None
        return self._fs[partition.index]

    def esp(self) -> _Fs:
        part = self.disk.esp()
        if part is None:
            raise DiskPathError("no EFI system partition on the disk", fs_path="ESP")
        fs = self.fs(part)
        if fs is None:
            raise DiskPathError(f"the ESP (partition {part.index}) has no readable FAT",
                                fs_path="ESP")
        return fs

    def by_fs_uuid(self, wanted: str) -> _Fs | None:
        """The filesystem whose UUID (ext4) or volume serial (FAT, written like ``1A2B-3C4D``) is
        ``wanted``, as GRUB's ``search.fs_uuid`` compares them (case-insensitive)."""
        from fwtools.formats.disk.ext4 import Ext4Filesystem

        w = wanted.lower()
        for part in self.disk.partitions:
            fs = self.fs(part)
            if fs is None:
                continue
            if isinstance(fs.fs, Ext4Filesystem):
                if str(fs.fs.uuid) == w:
                    return fs
            else:
                vid = fs.fs.volume_id
                if f"{vid >> 16:04x}-{vid & 0xFFFF:04x}" == w:
                    return fs
        return None

    # -- firmware ----------------------------------------------------------------------

    def first_stage(self) -> tuple[_Fs, str] | None:
        from fwtools.formats.varstore.bootentries import boot_next, boot_order, entry_name

        fallback = f"\\EFI\\BOOT\\BOOT{EFI_SUFFIX[self.arch]}.EFI"
        if self.disk.esp() is None:
            if self.disk.table.scheme == "none":
                raise DiskPathError("no partition table on the disk (so no EFI system "
                                    "partition)", fs_path="ESP")
            # a partitioned disk without an ESP: nothing for UEFI to boot
            self.out.fail("firmware", "the disk has no EFI system partition",
                          "BdsDxe: No bootable option or device was found.")
            return None
        if self.store is not None:
            order = boot_order(self.store)
            nxt = boot_next(self.store)
            if nxt is not None:
                order = [nxt, *order]
            for number in order:
                got = self._try_option(number, entry_name(number), fallback)
                if got is not None:
                    return got
            if not order:
                self.out.notes.append("the store has no BootOrder: firmware uses the "
                                      "removable media path")
        esp = self.esp()
        if esp.exists(fallback):
            self.out.boot_label = f'the removable media path {fallback}'
            self.out.stages.append(FoundStage(esp.where(fallback), esp.read(fallback),
                                              f"removable media fallback {fallback}",
                                              "firmware", fallback))
            return esp, fallback
        self.out.fail("firmware", f"no boot option loads a file and {fallback} is not on the "
                      "ESP", "BdsDxe: No bootable option or device was found.")
        return None

    def _try_option(self, number: int, name: str,
                    fallback: str) -> tuple[_Fs, str] | None:
        from fwtools.errors import FwError
        from fwtools.formats.efi import guids
        from fwtools.formats.efi.loadoption import LoadOption

        assert self.store is not None
        var = self.store.get(name, guids.EFI_GLOBAL_VARIABLE)
        if var is None:
            self.out.notes.append(f"BootOrder names {name}, which is not in the store")
            return None
        try:
            opt = LoadOption.parse(bytes(var.data))
        except FwError as exc:
            self.out.notes.append(f"{name}: unreadable load option ({exc})")
            return None
        if not opt.active:
            return None
        nodes = opt.device_paths[0] if opt.device_paths else []
        hd = next((n for n in nodes if (n.type, n.subtype) == (_MEDIA, _HARD_DRIVE)), None)
        files = [n for n in nodes if (n.type, n.subtype) == (_MEDIA, _FILE_PATH)]
        if any((n.type, n.subtype) == (_MEDIA, _FV_FILE) for n in nodes):
            self.out.notes.append(f"{name} {opt.description!r} is a firmware application "
                                  "(skipped)")
            return None
        path = "\\".join(n.data.decode("utf-16-le").rstrip("\0").strip("\\")
                         for n in files)
        path = "\\" + path if path else ""
        label = f'{name} "{opt.description}" from {opt.file_path_text}'
        target: _Fs | None = None
        if hd is not None and len(hd.data) >= 38 and hd.data[37] == 2:  # GPT signature
            import uuid

            guid = str(uuid.UUID(bytes_le=hd.data[20:36]))
            try:
                part = self.disk.partition(guid=guid)
            except DiskPathError:
                self.out.notes.append(f"{name}: no partition {guid} on the disk")
                return None
            target = self.fs(part)
        elif hd is not None and len(hd.data) >= 38 and hd.data[37] == 1:  # MBR signature
            # HARDDRIVE_DEVICE_PATH: PartitionNumber (u32) first; the MBR disk signature is
            # not kept by the partition table reader, so the number decides
            number = int.from_bytes(hd.data[0:4], "little")
            try:
                target = self.fs(self.disk.partition(index=number))
            except DiskPathError:
                self.out.notes.append(f"{name}: no partition {number} on the disk")
                return None
        elif path:
            target = self.esp()  # a short-form file path: tried on every file system
        if target is None and not path:
            # a whole-disk option: the removable media path on it
            path, target = fallback, self.esp()
        if target is None or not path or not target.exists(path):
            self.out.notes.append(f"{label}: {path or 'no file'} not found")
            return None
        self.out.boot_label = label
        arg = (opt.optional_data_text or "").strip("\0 ").split(" ")[-1]
        if arg.lower().endswith(".efi"):
            self.second_stage = arg  # shim.c set_second_stage: the option names its loader
        self.out.stages.append(FoundStage(target.where(path), target.read(path),
                                          f"{name} in BootOrder ({opt.file_path_text})",
                                          "firmware", path))
        return target, path

    # -- shim ------------------------------------------------------------------------------

    def shim_next(self, fs: _Fs, path: str) -> tuple[_Fs, str] | None:
        directory = path.rsplit("\\", 1)[0]
        suffix = EFI_SUFFIX[self.arch].lower()
        fb = f"{directory}\\fb{suffix}.efi"
        if directory.upper() == "\\EFI\\BOOT" and fs.exists(fb):
            csv = self._fallback_csv(fs)
            if csv is not None:
                vendor_dir, loader = csv
                self.out.notes.append(f"shim runs the fallback {fb}, which boots "
                                      f"{vendor_dir}\\{loader} (BOOT{suffix.upper()}.CSV)")
                loader_path = f"{vendor_dir}\\{loader}"
                if fs.exists(loader_path):
                    self.out.stages[-1:] = [FoundStage(
                        fs.where(loader_path), fs.read(loader_path),
                        f"fallback {fb} -> BOOT{suffix.upper()}.CSV", "firmware",
                        loader_path)]
                    return self.shim_next(fs, loader_path)
        nxt = f"{directory}\\grub{suffix}.efi"
        how = f"shim's default second stage grub{suffix}.efi beside it"
        if self.second_stage:
            given = self.second_stage.replace("/", "\\")
            nxt = given if given.startswith("\\") else f"{directory}\\{given}"
            how = f"the boot option's argument {self.second_stage} (shim's second stage)"
            self.second_stage = None
        if not fs.exists(nxt):
            # shim.c load_image: perror(L"Failed to open %s - %r\n", PathName, efi_status)
            self.out.fail("shim", f"shim's second stage {nxt} is not on the ESP",
                          f"Failed to open {nxt} - Not Found")
            return None
        self.out.stages.append(FoundStage(fs.where(nxt), fs.read(nxt), how, "shim", nxt))
        return fs, nxt

    def _fallback_csv(self, fs: _Fs) -> tuple[str, str] | None:
        from fwtools.formats.disk.fat import FatFilesystem

        if not isinstance(fs.fs, FatFilesystem):
            return None
        name = f"BOOT{EFI_SUFFIX[self.arch]}.CSV"
        for entry in fs.fs.listdir("\\EFI"):
            if not entry.is_dir or entry.name.upper() == "BOOT":
                continue
            csv_path = f"\\EFI\\{entry.name}\\{name}"
            if fs.exists(csv_path):
                raw = fs.read(csv_path)
                text = raw.decode("utf-16-le" if raw[:2] == b"\xff\xfe" else "utf-8", "replace")
                first = text.lstrip("\ufeff").strip().splitlines()[0] if text.strip() else ""
                loader = first.split(",")[0].strip()
                if loader:
                    return f"\\EFI\\{entry.name}", loader
        return None

    # -- GRUB ------------------------------------------------------------------------------

    def grub_kernel(self, fs: _Fs, path: str, image: bytes) -> None:
        directory = path.rsplit("\\", 1)[0]
        # Debian's signed image (build-efi-images, grub-bootstrap.cfg in its memdisk) sources
        # $prefix/<platform>/grub.cfg, else $prefix/grub.cfg, else $cmdpath/grub.cfg, with
        # the prefix built in (-p /EFI/debian) on the device it was loaded from
        platform = "x86_64-efi" if self.arch == "x64" else "arm64-efi"
        candidates = []
        prefixes = re.findall(rb"\0(/EFI/[A-Za-z0-9._-]+)\0", image)
        if prefixes:
            prefix = prefixes[-1].decode().replace("/", "\\")
            candidates += [f"{prefix}\\{platform}\\grub.cfg", f"{prefix}\\grub.cfg"]
        candidates.append(f"{directory}\\grub.cfg")
        cfg_path = next((c for c in candidates if fs.exists(c)), None)
        if cfg_path is None:
            self.out.fail("grub", f"no grub.cfg for GRUB (looked for {', '.join(candidates)})",
                          "grub> (GRUB's command line: no configuration)")
            return
        root: _Fs = fs
        variables = {"root": "", "cmdpath": ""}
        text = fs.read(cfg_path).decode("utf-8", "replace")
        where = fs.where(cfg_path)
        trail = [where]
        for _depth in range(_MAX_CONFIGFILE_DEPTH):
            cfg = parse_grub_cfg(text, variables)
            self.out.notes.extend(f"{where}: {n}" for n in cfg.notes)
            nxt: tuple[_Fs, str] | None = None
            for words in cfg.commands:
                found = self._grub_command(words, root, cfg.variables)
                if isinstance(found, _Fs):
                    root = found
                elif found is not None:
                    nxt = found
                    break
            if nxt is None:
                self._grub_menu(cfg, root, " -> ".join(trail))
                return
            root, cfg_file = nxt
            variables = dict(cfg.variables)
            where = root.where(cfg_file)
            trail.append(where)
            try:
                text = root.read(cfg_file).decode("utf-8", "replace")
            except DiskPathError:
                self.out.stopped = f"GRUB's configfile {where} is not there; give --kernel"
                return
        self.out.stopped = "configfile nests too deeply; give --kernel"

    def _grub_command(self, words: list[str], root: _Fs,
                      variables: dict[str, str]) -> _Fs | tuple[_Fs, str] | None:
        """Apply a top-level command: a new ``$root`` (search), the next configfile, or
        nothing."""
        cmd = words[0]
        if cmd in ("search", "search.fs_uuid") and len(words) > 1:
            uuid_value, var = None, "root"
            args = [w for w in words[1:] if not w.startswith("-")]
            for w in words[1:]:
                if w.startswith("--set="):
                    var = w.split("=", 1)[1]
            if cmd == "search.fs_uuid" or "--fs-uuid" in words or "-u" in words:
                uuid_value = args[0] if args else None
                if cmd == "search.fs_uuid" and len(args) > 1:
                    var = args[1]
            if uuid_value and var == "root":
                found = self.by_fs_uuid(uuid_value)
                if found is None:
                    self.out.notes.append(f"GRUB searches filesystem UUID {uuid_value}, "
                                          "which no partition has")
                    return None
                variables["root"] = found.label
                return found
        if cmd == "set" and len(words) > 1 and words[1].startswith("root="):
            dev = words[1].split("=", 1)[1]
            fs, _rest = self._grub_path(f"({dev})/", root)
            variables["root"] = dev
            return fs
        if cmd == "configfile" and len(words) > 1:
            return self._grub_path(words[1], root)
        return None

    def _grub_path(self, text: str, root: _Fs) -> tuple[_Fs, str]:
        """A GRUB path: ``(device)/path`` or ``/path`` on ``$root``. The device names
        ``($root)`` and ``(partition N)`` written by the expansion map back to filesystems;
        other ``(hdX,gptN)`` names use partition N."""
        m = re.match(r"^\(([^)]*)\)(.*)$", text)
        if not m:
            return root, text or "/"
        dev, rest = m.group(1), m.group(2) or "/"
        pm = re.search(r"(?:partition |gpt|msdos)(\d+)$", dev)
        if pm:
            try:
                fs = self.fs(self.disk.partition(index=int(pm.group(1))))
            except DiskPathError:
                fs = None
            if fs is not None:
                return fs, rest
        return root, rest

    def _grub_menu(self, cfg: object, root: _Fs, where: str) -> None:
        from fwtools.machine.grubcfg import GrubConfig

        assert isinstance(cfg, GrubConfig)
        entry, how = default_entry(cfg)
        if entry is None:
            self.out.stopped = f"{where} has no menu entry; give --kernel"
            return
        variables = dict(cfg.variables)
        for words in entry.lines:
            found = self._grub_command(words, root, variables)
            if isinstance(found, _Fs):
                root = found
            if words[0] in ("linux", "linuxefi") and len(words) > 1:
                fs, path = self._grub_path(words[1], root)
                try:
                    data = fs.read(path)
                except DiskPathError:
                    # grub-core/loader/efi/linux.c opens the file: "file `%s' not found"
                    self.out.fail("grub", f"the default entry's kernel {fs.where(path)} is not "
                                  "there", f"error: file `{words[1]}' not found.\n"
                                  "error: you need to load the kernel first.")
                    return
                self.out.stages.append(FoundStage(
                    fs.where(path), data,
                    f"{where}: {how}, entry {entry.title!r}: linux {words[1]}", "grub", path))
                return
            if words[0] == "chainloader":
                self.out.stopped = (f"the default entry {entry.title!r} chainloads "
                                    f"{words[1:]}: not followed")
                return
        self.out.stopped = f"the default entry {entry.title!r} has no linux line; give --kernel"

    # -- systemd-boot --------------------------------------------------------------------

    def sd_boot_next(self, fs: _Fs) -> None:
        """systemd-boot's entry (fwtools/machine/sdboot.py: loader.conf, type 1 entries, UKIs
        in \\EFI\\Linux, its order and default rules, LoaderEntry* variables)."""
        from fwtools.formats.disk.fat import FatFilesystem
        from fwtools.machine.sdboot import (
            ENTRIES_DIR,
            UKI_DIR,
            choose,
            parse_conf,
            type1_entry,
            type2_entry,
        )

        conf: dict[str, str] = {}
        if fs.exists("\\loader\\loader.conf"):
            conf = parse_conf(fs.read("\\loader\\loader.conf"))
        entries = []
        skipped = []
        if isinstance(fs.fs, FatFilesystem):
            if fs.exists(ENTRIES_DIR):
                for e in fs.fs.listdir(ENTRIES_DIR):
                    if e.name.lower().endswith(".conf") and not e.name.startswith("."):
                        path = f"{ENTRIES_DIR}\\{e.name}"
                        entries.append(type1_entry(e.name, path, fs.read(path)))
            if fs.exists(UKI_DIR):
                for e in fs.fs.listdir(UKI_DIR):
                    if e.name.lower().endswith(".efi") and not e.name.startswith("."):
                        path = f"{UKI_DIR}\\{e.name}"
                        uki = type2_entry(e.name, path, fs.read(path))
                        if uki is None:
                            skipped.append(e.name)
                        else:
                            entries.append(uki)
        if skipped:
            self.out.notes.append(f"systemd-boot skips {', '.join(skipped)} in {UKI_DIR}: "
                                  "not a UKI (no .osrel or no .linux section)")
        choice = choose(entries, conf, self.store)
        if choice is None:
            self.out.stopped = "systemd-boot finds no loader entry or UKI; give --kernel"
            return
        self.out.notes.extend(choice.notes)
        entry, how = choice.entry, choice.how
        if entry.kind == "type2":
            assert entry.data is not None
            self.out.stages.append(FoundStage(fs.where(entry.path), entry.data,
                                              f"systemd-boot: UKI {entry.id} ({how})",
                                              "systemd-boot", entry.path))
            return
        target = entry.target
        if not target:
            self.out.stopped = f"loader entry {entry.path} has no linux or efi line"
            return
        if not fs.exists(target):
            self.out.stopped = f"loader entry {entry.path} names {target}, not on the ESP"
            return
        self.out.stages.append(FoundStage(fs.where(target), fs.read(target),
                                          f"systemd-boot: {entry.path} ({how})",
                                          "systemd-boot", target))


def discover(disk: Disk, store: LoadedStore | None, arch: str, *,
             kernel: tuple[str, bytes] | None = None) -> Discovery:
    """The chain on ``disk`` for firmware with ``store``; ``kernel`` (path, bytes) replaces
    what GRUB or systemd-boot would load."""
    from fwtools.uefi.image import stage_from_bytes
    from fwtools.uefi.loaders import identify

    m = _Machine(disk, store, arch)
    got = m.first_stage()
    while got is not None and not m.out.stopped and len(m.out.stages) < 6:
        fs, path = got
        stage = m.out.stages[-1]
        family = identify(stage_from_bytes(stage.data, stage.path)).family
        got = None
        if family == "shim":
            got = m.shim_next(fs, path)
        elif family in ("grub", "systemd-boot"):
            if kernel is not None:
                m.out.stages.append(FoundStage(kernel[0], kernel[1], "--kernel",
                                               family, kernel[0]))
            elif family == "grub":
                m.grub_kernel(fs, path, stage.data)
            else:
                m.sd_boot_next(fs)
            break
        else:
            break
    return m.out
