"""The committed stub.bin is what stub.asm assembles to."""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

from corpus.params import need_tool

from fwtools.formats.mbr import stub_code

DATA = Path(str(resources.files("fwtools") / "data" / "mbr"))


def test_stub_shape() -> None:
    code = stub_code()
    assert 32 <= len(code) <= 128
    # cli; hlt; jmp back to hlt: the halt loop closes the code.
    assert code.endswith(b"\xfa\xf4\xeb\xfc")


def test_stub_reassembles(tmp_path: Path) -> None:
    need_tool("nasm")
    out = tmp_path / "stub.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out), str(DATA / "stub.asm")], check=True)
    assert out.read_bytes() == (DATA / "stub.bin").read_bytes()
