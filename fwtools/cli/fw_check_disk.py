"""``fw-check disk IMAGE``: a disk image's partitions and the EFI files on its ESP
(docs/disk.md). Exit 0, or 2 when the image cannot be read."""

from __future__ import annotations

from typing import Any

import click

from fwtools.cli.common import CONTEXT, INPUT_FILE, Command, print_json

SCHEMA = "fwtools.fw-check.disk/1"


def disk_document(path: str) -> dict[str, Any]:
    """The JSON document: ``format``, ``size``, ``table`` (scheme, partitions[], notes) and
    ``esp`` (partition index, FAT type, ``efi_files[]`` with ``path`` and ``size``) or null."""
    from fwtools.formats.disk import open_disk
    from fwtools.formats.disk.fat import FatFilesystem

    with open_disk(path) as disk:
        table = disk.table
        doc: dict[str, Any] = {"schema": SCHEMA, "path": path, "format": disk.format,
                               "size": disk.size, "table": table.to_json(), "esp": None}
        esp = disk.esp()
        if esp is None:
            return doc
        fs = disk.filesystem(esp)
        files: list[dict[str, Any]] = []
        efi_dir = fs.lookup("\\EFI") if isinstance(fs, FatFilesystem) else None
        if isinstance(fs, FatFilesystem) and efi_dir is not None and efi_dir.is_dir:
            for p, entry in fs.walk("\\EFI"):
                if not entry.is_dir and entry.name.lower().endswith(".efi"):
                    files.append({"path": p, "size": entry.size})
        doc["esp"] = {
            "partition": esp.index,
            "filesystem": f"FAT{fs.fat_type}" if isinstance(fs, FatFilesystem) else fs.kind,
            "efi_files": sorted(files, key=lambda f: f["path"].lower()),
        }
        return doc


def _render(doc: dict[str, Any]) -> None:
    table = doc["table"]
    click.echo(f"{doc['path']}: {doc['format']}, {doc['size']} bytes, "
               f"{table['scheme'].upper()} ({table['header'] or 'no'} header)"
               if table["scheme"] == "gpt" else
               f"{doc['path']}: {doc['format']}, {doc['size']} bytes, {table['scheme']}")
    for note in table["notes"]:
        click.echo(f"  note: {note}")
    for p in table["partitions"]:
        mark = " [ESP]" if p["esp"] else ""
        name = f" {p['name']!r}" if p["name"] else ""
        click.echo(f"  {p['index']:>3}  LBA {p['first_lba']}..{p['last_lba']}  "
                   f"{p['type_name']}{name}{mark}")
    esp = doc["esp"]
    if esp is None:
        click.echo("no EFI system partition")
        return
    click.echo(f"ESP: partition {esp['partition']} ({esp['filesystem']}), "
               f"{len(esp['efi_files'])} EFI files")
    for f in esp["efi_files"]:
        click.echo(f"  {f['path']}  {f['size']} bytes")


@click.command(cls=Command, context_settings=CONTEXT)
@click.argument("image", type=INPUT_FILE)
@click.option("--json", "as_json", is_flag=True, help=f"JSON document ({SCHEMA}).")
def command(image: str, as_json: bool) -> None:
    """List the partitions of IMAGE (raw or qcow2) and the EFI files on its ESP."""
    doc = disk_document(image)
    if as_json:
        print_json(doc)
    else:
        _render(doc)


def main(argv: list[str]) -> None:
    command(args=argv, prog_name="fw-check disk")
