"""Building UKIs from corpus parts for tests: the objcopy recipe systemd-stub(7) documents."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fwtools.formats.pe.image import PeImage


def build_uki_with_objcopy(stub: Path, parts: dict[str, Path], out: Path) -> None:
    """objcopy --add-section/--change-section-vma, as systemd-stub(7) documents it: each
    section at the next free 4 KiB-aligned address after the stub's SizeOfImage."""
    img = PeImage.open(stub)
    vma = img.image_base + ((img.size_of_image + 0xFFF) & ~0xFFF)
    cmd = ["objcopy"]
    for name, path in parts.items():
        cmd += ["--add-section", f"{name}={path}", "--change-section-vma", f"{name}={vma:#x}"]
        vma += (path.stat().st_size + 0xFFF) & ~0xFFF
    subprocess.run([*cmd, str(stub), str(out)], check=True, capture_output=True)


def build_uki(stub: Path, kernel: Path, out: Path, cmdline: str = "console=ttyS0") -> Path:
    """A UKI of ``stub`` with .osrel (Debian), .cmdline and ``kernel`` as .linux, made in
    ``out``'s directory (the section files are written beside it)."""
    from corpus.params import need_tool

    need_tool("objcopy")
    parts = {".osrel": out.parent / "osrel", ".cmdline": out.parent / "cmdline",
             ".linux": kernel}
    parts[".osrel"].write_bytes(b'ID=debian\nNAME="Debian GNU/Linux"\n')
    parts[".cmdline"].write_text(cmdline)
    build_uki_with_objcopy(stub, parts, out)
    return out


def sbsign(key: Path, cert: Path, src: Path, out: Path) -> Path:
    """``src`` signed with ``key``/``cert`` into ``out`` (sbsigntool), for test-key chains."""
    from corpus.params import need_tool

    need_tool("sbsign")
    subprocess.run(["sbsign", "--key", str(key), "--cert", str(cert), "--output", str(out),
                    str(src)], check=True, capture_output=True)
    return out


def relabel_pre_58(kernel: Path, out: Path) -> Path:
    """A copy of ``kernel`` whose PE header says MajorImageVersion 0, as kernels before 5.8
    do (no LINUX_INITRD_MEDIA support): the one field systemd-stub's pe_kernel_info checks
    to choose the EFI handover protocol over LoadImage. Nothing else changes."""
    data = bytearray(kernel.read_bytes())
    at = PeImage(bytes(data), str(kernel)).optional_field_offset("MajorImageVersion")
    data[at : at + 2] = b"\0\0"
    out.write_bytes(bytes(data))
    return out
