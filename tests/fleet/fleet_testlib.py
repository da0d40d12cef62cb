"""Stores for the fleet tests, built with fw-vars itself (enroll, dbx) on a blank OVMF 4 MiB
layout, so they need no corpus: the 2011-only shape of Debian's .ms stores, the same store
updated to the 2023 CAs, and one owned by Microsoft's OEM Devices PK."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from click.testing import CliRunner

from fwtools.cli.fw_vars import cli
from fwtools.formats.varstore import VariableStore

REPO: Final = Path(__file__).resolve().parents[2]
MS_OBJECTS: Final = REPO / "testdata" / "microsoft-secureboot-objects"


def fw_vars(*args: str | Path) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def blank(path: Path, layout: str = "ovmf-4m-528k") -> Path:
    path.write_bytes(VariableStore.blank(layout).to_bytes())
    return path


def store_2011(directory: Path, name: str = "vm2011_VARS.fd", *, pk: str = "generate:Test PK",
               layout: str = "ovmf-4m-528k") -> Path:
    """A custom PK, KEK CA 2011, db = Windows PCA 2011 + UEFI CA 2011 (like Debian's .ms)."""
    base = blank(directory / f"blank-{name}", layout)
    out = directory / name
    fw_vars("enroll", base, "--pk", pk, "--microsoft", "--microsoft-kek", "2011",
            "--microsoft-db", "windows-2011,uefi-2011", "--timestamp", "2025-01-01T00:00:00",
            "-o", out)
    base.unlink()
    return out


def update_2023(store: Path, out: Path) -> Path:
    """``store`` plus KEK 2023 and the three 2023 db CAs, written as the owner."""
    fw_vars("enroll", store, "--microsoft", "--microsoft-kek", "2023", "--microsoft-db",
            "windows-2023,uefi-2023,oprom-2023", "--timestamp", "2025-06-01T00:00:00", "-o", out)
    return out


def apply_dbx(store: Path, out: Path, arch_dir: str = "amd64") -> Path:
    """Microsoft's signed dbx update for ``arch_dir``, verified against the store's KEK."""
    fw_vars("dbx", store, MS_OBJECTS / "dbx" / arch_dir / "DBXUpdate.bin", "-o", out)
    return out
