"""``fw-vars convert --layout``: the way out for a store whose build is too small for a
variable (issue 13): Debian 12's 2 MiB-build OVMF_VARS.ms.fd cannot take Microsoft's current
dbx; moved to the 4 MiB build's layout it keeps every variable and takes the update."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fwtools.cli.fw_vars import cli
from fwtools.formats.efi import guids
from fwtools.formats.varstore.model import Variable
from fwtools.formats.varstore.storeio import load_store

REPO = Path(__file__).resolve().parents[2]
DBX_UPDATE = REPO / "testdata/microsoft-secureboot-objects/dbx/amd64/DBXUpdate.bin"


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def stored(v: Variable) -> tuple[Any, ...]:
    """Everything a variable's record keeps."""
    return (v.guid, v.name, v.attributes, v.data, v.timestamp, v.monotonic_count,
            v.pubkey_index)


@pytest.mark.parametrize("fmt", ["fd", "qcow2"])
def test_2m_store_to_4m_layout_keeps_every_variable_then_takes_the_dbx(
    corpus: Any, tmp_path: Path, fmt: str
) -> None:
    source = corpus.ovmf("bookworm", "OVMF_VARS.ms.fd")
    big = tmp_path / f"OVMF_VARS_4M.ms.{fmt}"
    code, out, err = run("convert", source, big, "--layout", "ovmf-4m")
    assert code == 0, err
    assert "layout ovmf-2m-128k -> ovmf-4m-528k" in out
    before, after = load_store(source), load_store(big)
    assert after.format == ("qcow2" if fmt == "qcow2" else "edk2-raw")
    assert after.store is not None and after.store.layout.name == "ovmf-4m-528k"
    assert after.store.authenticated
    assert [stored(v) for v in after.variables] == [stored(v) for v in before.variables]
    # The Secure Boot variables really carry timestamps (2025-03-10 in this build), kept.
    stamps = {v.name: v.timestamp for v in after.variables}
    for name in ("PK", "KEK", "db", "dbx"):
        stamp = stamps[name]
        assert stamp is not None and not stamp.is_zero, name
    assert [i for i in after.store.check() if i.severity == "error"] == []
    # fw-vars diff agrees: nothing differs.
    assert run("diff", source, big)[0] == 0

    # The update that did not fit now applies, and the store still holds everything else.
    code, out, err = run("dbx", big, DBX_UPDATE, "--in-place")
    assert code == 0, err
    updated = load_store(big)
    assert updated.store is not None and updated.store.layout.name == "ovmf-4m-528k"
    dbx_old = before.get("dbx", guids.EFI_IMAGE_SECURITY_DATABASE)
    dbx_new = next(v for v in updated.variables if v.name == "dbx")
    assert dbx_old is not None and len(dbx_new.data) > len(dbx_old.data) + 10000
    assert dbx_new.data.startswith(dbx_old.data)  # an append write keeps what was there
    rest = [stored(v) for v in updated.variables if v.name != "dbx"]
    assert rest == [stored(v) for v in before.variables if v.name != "dbx"]


def test_back_to_the_small_layout_is_refused_in_one_line(corpus: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.fd"
    assert run("convert", corpus.ovmf("bookworm", "OVMF_VARS.ms.fd"), big,
               "--layout", "ovmf-4m")[0] == 0
    assert run("dbx", big, DBX_UPDATE, "--in-place")[0] == 0
    small = tmp_path / "small.fd"
    code, _, err = run("convert", big, small, "--layout", "ovmf-2m")
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and "variable dbx" in lines[0] and "PcdMaxAuthVariableSize" in lines[0]
    assert not small.exists()


def test_convert_layout_of_every_ovmf_store(corpus: Any, tmp_path: Path) -> None:
    for suite, name in [("bookworm", "OVMF_VARS.fd"), ("bookworm", "OVMF_VARS_4M.ms.fd"),
                        ("trixie", "OVMF_VARS_4M.snakeoil.fd")]:
        source = corpus.ovmf(suite, name)
        for layout in ("ovmf-2m-128k", "ovmf-4m-528k"):
            out = tmp_path / f"{suite}-{name}-{layout}.fd"
            code, _, err = run("convert", source, out, "--layout", layout)
            assert code == 0, err
            moved = load_store(out)
            assert moved.store is not None and moved.store.layout.name == layout
            assert [stored(v) for v in moved.variables] == \
                [stored(v) for v in load_store(source).variables]


def test_layout_errors_are_one_line(corpus: Any, tmp_path: Path) -> None:
    aavmf = corpus.file("trixie", "all", "qemu-efi-aarch64", "usr/share/AAVMF/AAVMF_VARS.ms.fd")
    for args, text in [
        ((aavmf, tmp_path / "x.fd", "--layout", "ovmf-4m"), "not interchangeable"),
        ((corpus.ovmf("trixie", "OVMF_VARS_4M.fd"), tmp_path / "x.fd", "--layout", "ovmf-9m"),
         "unknown variable store layout 'ovmf-9m'"),
        ((corpus.ovmf("trixie", "OVMF_VARS_4M.fd"), tmp_path / "x.fd", "--layout", "ovmf-4m",
          "--template", "ovmf-2m"), "not both"),
    ]:
        code, _, err = run("convert", *args)
        assert code == 2 and len(err.splitlines()) == 1 and text in err, err
        assert not (tmp_path / "x.fd").exists()


def test_json_input_with_layout_builds_on_it(corpus: Any, tmp_path: Path) -> None:
    doc = tmp_path / "vars.json"
    code, _, _ = run("convert", corpus.ovmf("bookworm", "OVMF_VARS.ms.fd"), doc)
    assert code == 0 and json.loads(doc.read_text())["schema"]
    out = tmp_path / "from-json.fd"
    code, _, err = run("convert", doc, out, "--layout", "ovmf-4m")
    assert code == 0, err
    built = load_store(out)
    assert built.store is not None and built.store.layout.name == "ovmf-4m-528k"
    assert len(built.variables) == len(load_store(doc).variables)
