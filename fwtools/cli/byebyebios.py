"""byebyebios: put a BIOS boot stub into a disk image's MBR that says the image needs UEFI.

Only the boot code area (sector 0, bytes 0..439) changes; the disk signature, the partition
table and 0x55AA are kept, so GPT (protective MBR), hybrid and MBR-partitioned disks keep
working. Raw images, qcow2 images (natively: the guest bytes are rewritten where they lie in
their data cluster) and block devices.

How files are written:
- regular files (raw or qcow2): a copy is made next to the target in a temporary file (holes
  kept with SEEK_DATA/SEEK_HOLE and copy_file_range, which reflinks where the filesystem can),
  the changed bytes are written into the copy, the copy is fsynced and renamed over the
  target. A failure leaves the target untouched.
- block devices cannot be renamed over: the 512-byte sector (or, for qcow2 on a device, the
  changed bytes) is written in place with one pwrite, fsynced and read back. Every check runs
  before that write (a qcow2 on a device that would need a new cluster is refused). Use
  --backup for a copy of the original sector.

Exit codes: 0 done (or --check found the stub), 1 --check found no stub, 2 errors.
"""

from __future__ import annotations

import mmap
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from fwtools.cli.common import CONTEXT, EXIT_FINDINGS, EXIT_OK, Command, print_json
from fwtools.errors import FwIOError, UsageError

if TYPE_CHECKING:
    from fwtools.formats.qcow2 import Qcow2Image
    from fwtools.formats.qcow2.update import HostPatch

SCHEMA = "fwtools.byebyebios/1"
# Like common.INPUT_FILE, as a pathlib.Path.
# --message and --restore files: a message is at most a few hundred bytes, a backup one sector.
MAX_SIDE_FILE = 1 << 20
IN_PATH = click.Path(path_type=Path, dir_okay=False, readable=False)


class _Target:
    """The image: its kind, its guest sector 0, and how to write guest bytes back."""

    def __init__(self, path: Path) -> None:
        from fwtools.formats.mbr import layout as ML
        from fwtools.formats.qcow2 import Qcow2Image, is_qcow2

        self.path = path
        try:
            st = os.stat(path)
        except OSError as exc:
            raise FwIOError(f"{path}: cannot open: {exc.strerror}") from exc
        self.block = stat.S_ISBLK(st.st_mode)
        if not (self.block or stat.S_ISREG(st.st_mode)):
            raise UsageError(f"{path}: not a regular file or block device")
        self.qcow2: Qcow2Image | None = None
        try:
            with open(path, "rb") as f:
                head = f.read(ML.SECTOR_SIZE)
                if is_qcow2(head):
                    # Mapped, not read: a VM disk of many GiB used to be read whole into
                    # memory (MemoryError); the parser and plan_guest_write only touch the
                    # header, L1/L2 tables and refcounts (issue 8, test_resource_bounds.py).
                    size = _device_size(path) if self.block else 0  # 0: the whole file
                    self._map = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
                    self.qcow2 = Qcow2Image.parse(cast(bytes, self._map), path=str(path),
                                                  max_virtual_size=1 << 62)
        except OSError as exc:
            raise FwIOError(f"{path}: cannot read: {exc.strerror}") from exc
        if self.qcow2 is not None:
            if self.qcow2.virtual_size < ML.SECTOR_SIZE:
                raise UsageError(f"{path}: the qcow2 guest disk is smaller than one sector")
            self.sector = self.qcow2.read(0, ML.SECTOR_SIZE)
        else:
            if len(head) < ML.SECTOR_SIZE:
                raise UsageError(f"{path}: {len(head)} bytes, smaller than one 512-byte sector")
            self.sector = head

    @property
    def format(self) -> str:
        return "qcow2" if self.qcow2 is not None else "raw"

    def patches(self, sector: bytes) -> list[HostPatch]:
        """Where the new sector 0 goes in the file (raises before anything is written)."""
        if self.qcow2 is None:
            return [(0, sector)]
        from fwtools.formats.qcow2.update import plan_guest_write

        return plan_guest_write(self.qcow2, 0, sector)

    def write(self, patches: list[HostPatch]) -> None:
        if self.block:
            size = _device_size(self.path)
            if any(off + len(chunk) > size for off, chunk in patches):
                raise UsageError(
                    f"{self.path}: the qcow2 image on this device would have to grow (its first "
                    "cluster is unallocated); write to an image file instead"
                )
            _write_in_place(self.path, patches)
        else:
            from fwtools._base.atomic_copy import atomic_patch

            atomic_patch(self.path, patches)


def _device_size(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise FwIOError(f"{path}: cannot open: {exc.strerror}") from exc
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def _write_in_place(path: Path, patches: list[HostPatch]) -> None:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise FwIOError(f"{path}: cannot open for writing: {exc.strerror}") from exc
    try:
        for offset, chunk in patches:
            if os.pwrite(fd, chunk, offset) != len(chunk):
                raise FwIOError(f"{path}: short write at offset {offset:#x}")
        os.fsync(fd)
        for offset, chunk in patches:
            if os.pread(fd, len(chunk), offset) != chunk:
                raise FwIOError(f"{path}: read-back after writing offset {offset:#x} differs")
    except OSError as exc:
        raise FwIOError(f"{path}: write failed: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _read_message(text: str | None, message_file: Path | None) -> str:
    from fwtools.formats.mbr import DEFAULT_MESSAGE

    if text is not None and message_file is not None:
        raise UsageError("give --text or --message, not both")
    if message_file is not None:
        from fwtools._base.fileio import read_file

        # Bounded: `--message /dev/zero` (or a disk image given by mistake) used to read
        # until memory ran out (issue 8, tests/reliability/test_found_bugs.py).
        raw = read_file(message_file, max_size=MAX_SIDE_FILE)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"{message_file}: byte {exc.start} ({raw[exc.start]:#04x}) is not ASCII"
            ) from exc
    return DEFAULT_MESSAGE if text is None else text


def _run(
    image: Path,
    text: str | None,
    message_file: Path | None,
    check: bool,
    backup: Path | None,
    restore: Path | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> int:
    from fwtools.formats.mbr import (
        BYEBYEBIOS,
        KIND_DESCRIPTIONS,
        REPLACEABLE,
        build_boot_code,
        identify_boot_code,
        inject,
        parse_sector,
    )
    from fwtools.formats.mbr import layout as ML

    modes = sum(bool(x) for x in (check, restore is not None))
    if modes > 1:
        raise UsageError("--check and --restore exclude each other")
    if (check or restore is not None) and (text is not None or message_file is not None):
        raise UsageError("--text/--message only apply when installing the stub")
    target = _Target(image)
    before = parse_sector(target.sector)
    doc: dict[str, Any] = {
        "schema": SCHEMA, "path": str(image), "format": target.format,
        "block_device": target.block, "before": before.to_json(),
    }  # fmt: skip

    if check:
        installed = before.boot_code_kind == BYEBYEBIOS
        doc.update(action="check", installed=installed)
        if as_json:
            print_json(doc)
        elif installed:
            click.echo(f"{image}: byebyebios stub installed; message:")
            click.echo((before.stub_message or "").replace("\r\n", "\n").rstrip("\n"))
        else:
            click.echo(f"{image}: no byebyebios stub; sector 0 holds "
                       f"{KIND_DESCRIPTIONS[before.boot_code_kind]}")
        return EXIT_OK if installed else EXIT_FINDINGS

    if restore is not None:
        from fwtools._base.fileio import read_file

        saved = read_file(restore, max_size=MAX_SIDE_FILE)  # bounded, as --message
        if len(saved) != ML.SECTOR_SIZE:
            raise UsageError(f"{restore}: a backup is one {ML.SECTOR_SIZE}-byte sector, "
                             f"this file has {len(saved)} bytes")
        from fwtools.formats.mbr.mbr import inject

        table = slice(ML.DISK_SIGNATURE_OFFSET, ML.SECTOR_SIZE)
        # Compare with what installing the stub made of the saved sector: a backup of a blank
        # sector (no 0x55AA) was given an empty table and 0x55AA by the install, so comparing
        # with the backup itself refused every restore of a blank disk (issue 8, found by
        # tests/reliability/test_crash_safety.py; test_found_bugs.py).
        made = inject(saved, target.sector[: ML.BOOT_CODE_SIZE])
        if (before.has_boot_signature and made[table] != target.sector[table] and not force):
            raise UsageError(
                f"{image}: the disk signature or partition table changed since {restore} was "
                "saved; restoring would overwrite them (use --force to restore anyway)"
            )
        new_sector = saved
        action = "restore"
    else:
        kind = identify_boot_code(target.sector)
        if kind not in REPLACEABLE and not force:
            raise UsageError(
                f"{image}: sector 0 holds {KIND_DESCRIPTIONS[kind]}; refusing to replace it "
                "(use --force to replace it anyway)"
            )
        boot_code = build_boot_code(_read_message(text, message_file))
        new_sector = inject(target.sector, boot_code)
        action = "install"

    after = parse_sector(new_sector)
    changed = new_sector != target.sector
    patches = target.patches(new_sector) if changed else []
    if backup is not None and backup.exists() and not dry_run:
        raise UsageError(f"{backup}: exists; refusing to overwrite a backup")
    if not dry_run:
        if backup is not None:
            from fwtools._base.atomic import atomic_write

            atomic_write(backup, target.sector)
        if changed:
            target.write(patches)
    doc.update(action=action, changed=changed, dry_run=dry_run,
               backup=str(backup) if backup is not None else None,
               after=after.to_json())  # fmt: skip
    if as_json:
        print_json(doc)
    else:
        what = ("the byebyebios stub" if action == "install"
                else f"sector 0 from {restore}")
        details = f"{target.format}, partition scheme {after.scheme}"
        if not changed:
            click.echo(f"{image}: nothing to do (sector 0 already as requested)")
        elif dry_run:
            click.echo(f"{image}: dry run: would write {what} ({details}); nothing written")
        else:
            verb = "installed" if action == "install" else "restored"
            click.echo(f"{image}: {verb} {what} ({details})")
        if backup is not None and not dry_run:
            click.echo(f"{image}: original sector 0 saved to {backup}")
    return EXIT_OK


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("image", type=IN_PATH)
@click.option("--text", "text", metavar="TEXT", help="Message to print instead of the default.")
@click.option("--message", "message_file", type=IN_PATH,
              help="Read the message from FILE (ASCII; line ends become CRLF).")
@click.option("--check", is_flag=True,
              help="Only report whether the stub is installed (exit 1 when not).")
@click.option("--backup", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Save the original 512-byte sector 0 to FILE first.")
@click.option("--restore", type=IN_PATH, metavar="BACKUP",
              help="Write a sector saved with --backup back to sector 0.")
@click.option("--dry-run", is_flag=True, help="Check and report, write nothing.")
@click.option("--force", is_flag=True,
              help="Replace a real boot loader; restore over a changed partition table.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def command(
    image: Path,
    text: str | None,
    message_file: Path | None,
    check: bool,
    backup: Path | None,
    restore: Path | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Mark IMAGE (raw, qcow2 or a block device) as UEFI-only: its MBR boot code becomes a
    stub that prints a message on the screen and COM1 under a legacy BIOS, then halts."""
    raise SystemExit(_run(image, text, message_file, check, backup, restore, dry_run, force,
                          as_json))


def main() -> None:
    command(prog_name="byebyebios")
