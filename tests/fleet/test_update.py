"""fw-vars update on Debian's real stores (bookworm and trixie, OVMF 2 MiB / 4 MiB, AAVMF, raw
and qcow2): --ca-2023 makes the audit trust every 2023 CA, a second run is a no-op, a dry run
writes nothing, --via signed applies Microsoft's db and dbx updates after verifying them
against the store's KEK CA 2011 and refuses the KEK update Debian's PK never signed, and the
signed result equals the owner result for the same entries."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
from click.testing import CliRunner, Result
from corpus.params import CORPUS, corpus_files, need, need_tool
from fleet_testlib import MS_OBJECTS, blank, store_2011

from fwtools.cli.fw_vars import cli
from fwtools.fleet.audit import audit_store
from fwtools.fleet.update import UpdateRequest, plan_loaded
from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import SignatureDatabase
from fwtools.formats.varstore.storeio import load_store

MS_STORES: Final = corpus_files(
    "*/amd64/ovmf/usr/share/OVMF/OVMF*_VARS*.ms.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF_VARS.ms.fd",
)
TRUSTS_2023: Final = ("kek-2023", "windows-uefi-ca-2023", "uefi-ca-2023", "option-rom-ca-2023")
DB_2023: Final = {"076f1fea90ac29155ebf77c17682f75f1fdd1be196da302dc8461e350a9ae330",
                  "f6124e34125bee3fe6d79a574eaa7b91c0e7bd9d929c1a321178efd611dad901",
                  "e5be3e64c6e66a281457ecdece0d6d0787577aad2a3a0144262c10c14ba8d8f1"}


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["update", *[str(a) for a in args]],
                              catch_exceptions=False)


def writable_copy(src: Path, dest: Path, fmt: str = "raw", cluster: int = 65536) -> Path:
    if fmt == "qcow2":
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o",
                        f"cluster_size={cluster}", str(src), str(dest)], check=True)
    else:
        shutil.copyfile(src, dest)
    dest.chmod(0o644)
    return dest


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def variables(path: Path) -> dict[tuple[Any, str], Any]:
    return {v.key: v for v in load_store(path).variables}


def ids(p: Any) -> str:
    return str(Path(p.values[0]).relative_to(CORPUS)) if p.values[0] is not None else "absent"


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
@pytest.mark.parametrize("path", MS_STORES, ids=[ids(p) for p in MS_STORES])
def test_ca_2023_then_noop(path: Path | None, fmt: str, tmp_path: Path) -> None:
    if fmt == "qcow2":
        need_tool("qemu-img")
    source = need(path)
    store = writable_copy(source, tmp_path / f"vm_VARS.{'qcow2' if fmt == 'qcow2' else 'fd'}",
                          fmt)
    before = audit_store(str(store))
    assert not any(before.trusts[k] for k in TRUSTS_2023)
    # A dry run prints the plan and leaves the file alone.
    original = digest(store)
    dry = run(store, "--ca-2023", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would change" in dry.stdout and "+ Microsoft UEFI CA 2023" in dry.stdout
    assert "KEK: 2 entries" in dry.stdout and "-> 3 entries" in dry.stdout
    assert dry.stdout.splitlines()[-1] == "1 store: 1 would be updated"  # nothing was
    assert digest(store) == original and sorted(tmp_path.iterdir()) == [store]

    done = run(store, "--ca-2023", "--in-place", "--backup")
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-1] == "1 store: 1 updated"
    after = audit_store(str(store))
    assert after.error is None
    assert all(after.trusts[k] for k in TRUSTS_2023), after.trusts
    assert after.trusts["uefi-ca-2011"] and after.trusts["windows-pca-2011"]
    assert {c.sha256 for c in after.db} >= DB_2023
    assert not {"uefi-ca-2023-missing", "windows-uefi-ca-2023-missing",
                "option-rom-ca-2023-missing", "kek-2023-missing"} & {f.code for f in
                                                                     after.findings}
    # Same container (qcow2 keeps its cluster size), backup beside it, the rest unchanged.
    loaded = load_store(store)
    assert loaded.format == ("qcow2" if fmt == "qcow2" else "edk2-raw")
    if fmt == "qcow2":
        assert loaded.qcow2_cluster_size == 65536
    backup = Path(f"{store}.bak")
    assert digest(backup) == original
    old, new = variables(backup), variables(store)
    assert old.keys() == new.keys()
    for key, var in old.items():
        if key[1] in ("KEK", "db"):
            assert new[key].timestamp == var.timestamp  # 2023 notBefore < Debian's build time
            assert new[key].data.startswith(var.data)  # appended, nothing reordered
        else:
            assert (new[key].attributes, new[key].data, new[key].timestamp) == (
                var.attributes, var.data, var.timestamp), key
    db = SignatureDatabase.parse(new[(guids.EFI_IMAGE_SECURITY_DATABASE, "db")].data)
    assert [e.owner for _, _, _, e in db.entries()][2:] == [guids.MICROSOFT] * 3

    # The second run changes nothing and says so.
    written = digest(store)
    again = run(store, "--ca-2023", "--in-place", "--backup")
    assert again.exit_code == 0, again.output
    assert "up to date, nothing to change" in again.stdout
    assert "every 2023 CA is already enrolled" in again.stdout
    assert digest(store) == written and not Path(f"{store}.bak.").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([store.name, backup.name])


@pytest.fixture
def trixie_ms(tmp_path: Path) -> Path:
    src = need(next((p.values[0] for p in MS_STORES if p.values[0] is not None and
                     "trixie/amd64" in str(p.values[0]) and "_4M" in str(p.values[0])), None))
    return writable_copy(src, tmp_path / "trixie_VARS.fd")


def test_signed_db_and_dbx_apply_kek_refused(trixie_ms: Path, tmp_path: Path) -> None:
    owner = writable_copy(trixie_ms, tmp_path / "owner_VARS.fd")
    original = variables(trixie_ms)
    result = run(trixie_ms, "--ca-2023", "--dbx", "latest", "--via", "signed", "--signed-dir",
                 MS_OBJECTS, "--in-place", "-v")
    # The KEK update is refused (exit 1), the db and dbx updates are applied.
    assert result.exit_code == 1, result.output
    assert "REFUSED KEK via signed" in result.stdout
    assert "no KEK update signed by this store's PK (Debian UEFI Secure Boot" in result.stdout
    assert "chains to trusted CN=Microsoft Corporation KEK CA 2011" in result.stdout
    for name in ("DBUpdate2024.bin", "DBUpdate3P2023.bin", "DBUpdateOROM2023.bin",
                 "DBXUpdate.bin"):
        assert name in result.stdout
    audit = audit_store(str(trixie_ms))
    assert audit.trusts["kek-2023"] is False
    assert all(audit.trusts[k] for k in TRUSTS_2023[1:])
    assert audit.dbx is not None and audit.dbx.missing == 0

    # The owner write of the same entries: identical db data and timestamps; the same dbx
    # entries (Microsoft's signed dbx and the published JSON name the same 443 hashes).
    done = run(owner, "--ca-2023", "--dbx", "latest", "--via", "owner", "--in-place")
    assert done.exit_code == 0, done.output
    signed_vars, owner_vars = variables(trixie_ms), variables(owner)
    db_key = (guids.EFI_IMAGE_SECURITY_DATABASE, "db")
    assert signed_vars[db_key].data == owner_vars[db_key].data
    assert signed_vars[db_key].timestamp == owner_vars[db_key].timestamp
    assert signed_vars[db_key].attributes == owner_vars[db_key].attributes == 0x27
    dbx_key = (guids.EFI_IMAGE_SECURITY_DATABASE, "dbx")

    def entries(var: Any) -> set[tuple[Any, bytes]]:
        db = SignatureDatabase.parse(var.data)
        return {(e.owner, bytes(e.data)) for _, _, _, e in db.entries()}

    assert entries(signed_vars[dbx_key]) == entries(owner_vars[dbx_key])
    assert len(entries(owner_vars[dbx_key])) == 444
    # Signed: the stored timestamp stays the later one (the store's); owner: the newest
    # revocation's dateOfAddition. Both are valid, neither goes back.
    assert signed_vars[dbx_key].timestamp == original[dbx_key].timestamp
    assert owner_vars[dbx_key].timestamp is not None
    assert owner_vars[dbx_key].timestamp.isoformat().startswith("2026-04-09")
    # KEK: owner added KEK 2023, signed could not.
    kek_key = (guids.EFI_GLOBAL_VARIABLE, "KEK")
    assert len(owner_vars[kek_key].data) > len(signed_vars[kek_key].data)


def test_kek_update_applies_when_the_pk_signed_it(tmp_path: Path) -> None:
    """A store whose PK is the certificate that signed KEKUpdate_Microsoft_PK2.bin (a Surface
    PK): the signed KEK update verifies against the PK and adds KEK 2023."""
    from fwtools.crypto.authvar import auth_signature_info
    from fwtools.formats.efi.authvar import AuthVariable2

    update = MS_OBJECTS / "kek" / "KEKUpdate_Microsoft_PK2.bin"
    signer = auth_signature_info(AuthVariable2.parse(update.read_bytes())).signers[0].der
    pk = tmp_path / "surface-pk.der"
    pk.write_bytes(signer)
    store = store_2011(tmp_path, pk=str(pk))
    result = run(store, "--ca-2023", "--via", "signed", "--signed-dir", MS_OBJECTS,
                 "--in-place", "-v")
    assert result.exit_code == 0, result.output
    assert "KEKUpdate_Microsoft_PK2.bin" in result.stdout
    assert "signed by CN=Microsoft Surface XLFF 2 UEFI PK Signer" in result.stdout
    audit = audit_store(str(store))
    assert all(audit.trusts[k] for k in TRUSTS_2023)
    # Same KEK as the owner path gives.
    owner = store_2011(tmp_path, "owner_VARS.fd", pk=str(pk))
    assert run(owner, "--ca-2023", "--via", "owner", "--in-place").exit_code == 0
    kek_key = (guids.EFI_GLOBAL_VARIABLE, "KEK")
    assert variables(store)[kek_key].data == variables(owner)[kek_key].data


def test_auto_falls_back_to_owner_for_the_kek(trixie_ms: Path) -> None:
    result = run(trixie_ms, "--ca-2023", "--signed-dir", MS_OBJECTS, "--in-place")
    assert result.exit_code == 0, result.output
    assert "+ Microsoft Corporation KEK 2K CA 2023 (owner:" in result.stdout
    assert "+ Microsoft UEFI CA 2023 (signed:" in result.stdout
    assert "written as the owner instead" in result.stdout
    assert all(audit_store(str(trixie_ms)).trusts[k] for k in TRUSTS_2023)


def test_signed_update_refused_without_kek_2011(tmp_path: Path) -> None:
    """A store with a custom PK and KEK (no Microsoft KEK): firmware refuses Microsoft's db
    update, and so does update, with the reason."""
    store = tmp_path / "own_VARS.fd"
    blank_store = blank(tmp_path / "blank.fd")
    sample = Path(__file__).resolve().parents[2] / "testdata" / "sample"
    CliRunner().invoke(cli, ["enroll", str(blank_store), "--pk", str(sample / "test-ca.pem"),
                             "--kek", str(sample / "test-ca.pem"), "--microsoft",
                             "--microsoft-kek", "none", "--microsoft-db", "uefi-2011",
                             "-o", str(store)], catch_exceptions=False)
    before = digest(store)
    result = run(store, "--ca-2023", "--via", "signed", "--signed-dir", MS_OBJECTS,
                 "--in-place")
    assert result.exit_code == 1, result.output
    assert "REFUSED db via signed" in result.stdout
    assert "firmware would refuse it" in result.stdout and "does not chain" in result.stdout
    assert digest(store) == before


def test_sbat_level_and_2m_dbx_refusal(tmp_path: Path) -> None:
    src = need(next((p.values[0] for p in MS_STORES if p.values[0] is not None and
                     p.values[0].name == "OVMF_VARS.ms.fd"), None))  # bookworm, 2 MiB build
    store = writable_copy(src, tmp_path / "b2m_VARS.fd")
    result = run(store, "--dbx", "latest", "--sbat-level", "latest", "--in-place")
    # The dbx does not fit the 2 MiB build's PcdMaxAuthVariableSize: refused, with the way
    # out; SbatLevel is still written.
    assert result.exit_code == 1, result.output
    assert "REFUSED dbx via owner: too large for this firmware build" in result.stdout
    assert "--layout ovmf-4m" in result.stdout
    sbat = variables(store)[(guids.SHIM_LOCK, "SbatLevel")]
    assert sbat.attributes == 0x03 and sbat.data.startswith(b"sbat,1,")
    assert not sbat.data.endswith(b"\0")
    again = run(store, "--sbat-level", "latest", "--in-place")
    assert again.exit_code == 0 and "is current" in again.stdout


def test_audit_says_the_2m_build_cannot_take_the_latest_dbx(tmp_path: Path) -> None:
    """Audit offered signed-dbx on Debian's 2 MiB .ms store without saying that no dbx update
    fits its build (PcdMaxAuthVariableSize 10240). Now the update paths carry the limit and a
    finding says to convert first, with the record size update refuses and the conversion
    fw-vars dbx names (one hint, relayout.larger_layout_hint); after the conversion it is gone
    and the update applies."""
    src = need(next((p.values[0] for p in MS_STORES if p.values[0] is not None and
                     p.values[0].name == "OVMF_VARS.ms.fd"), None))  # bookworm, 2 MiB build
    store = writable_copy(src, tmp_path / "b2m_VARS.fd")
    audit = audit_store(str(store))
    assert audit.dbx is not None and audit.dbx.limitation is not None
    finding = next(f for f in audit.findings if f.code == "dbx-too-large")
    assert finding.severity == "warning"
    convert = f"'fw-vars convert {store} NEW.fd --layout ovmf-4m-528k' and boot it with " \
        "OVMF_CODE_4M.fd"
    assert convert in finding.message and "PcdMaxAuthVariableSize of 10240" in finding.message
    limits = {p.id: p.limitation for p in audit.update_paths}
    assert limits["signed-dbx"] is not None and convert in limits["signed-dbx"]
    assert limits["owner-edit"] is not None and limits["signed-db"] is None
    # The same record size update's refusal reports, and the same hint fw-vars dbx gives.
    refused = run(store, "--dbx", "latest", "--dry-run").stdout
    size = audit.dbx.limitation.split("needs a ")[1].split("-byte")[0]
    assert f"needs a {size}-byte record" in refused and convert in refused
    dbx = CliRunner().invoke(cli, ["dbx", str(store), str(MS_OBJECTS / "dbx/amd64/DBXUpdate.bin"),
                                   "-o", str(tmp_path / "x.fd")], catch_exceptions=False)
    assert dbx.exit_code == 2 and convert in dbx.stderr
    # Converted, as it says: the 4 MiB build takes it.
    big = tmp_path / "b4m_VARS.fd"
    conv = CliRunner().invoke(cli, ["convert", str(store), str(big), "--layout", "ovmf-4m-528k"],
                              catch_exceptions=False)
    assert conv.exit_code == 0, conv.output
    after = audit_store(str(big))
    assert after.dbx is not None and after.dbx.limitation is None
    assert "dbx-too-large" not in {f.code for f in after.findings}
    assert all(p.limitation is None for p in after.update_paths)
    done = run(big, "--dbx", "latest", "--in-place")
    assert done.exit_code == 0, done.output
    assert audit_store(str(big)).dbx.missing == 0  # type: ignore[union-attr]


def test_many_stores_one_bad_and_output_dir(tmp_path: Path, trixie_ms: Path) -> None:
    stores = tmp_path / "stores"
    stores.mkdir()
    for i in range(17):  # more than POOL_THRESHOLD: the process pool does the work
        shutil.copyfile(trixie_ms, stores / f"vm{i:02}_VARS.fd")
    (stores / "broken_VARS.fd").write_bytes(b"\xff" * 4096)
    out = tmp_path / "out"
    out.mkdir()
    result = run(stores, "--ca-2023", "-o", out, "-j", "2")
    assert result.exit_code == 2, result.output  # the bad one is an input error
    (line,) = result.stderr.splitlines()  # one clean line: "error:" once, the path once
    assert line.startswith(f"error: {stores / 'broken_VARS.fd'}: ") and line.count("error") == 1
    assert "17 updated" in result.stdout and "1 error" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [f"vm{i:02}_VARS.fd" for i in range(17)]
    assert digest(stores / "vm00_VARS.fd") == digest(trixie_ms)  # inputs untouched
    assert all(audit_store(str(p)).trusts["kek-2023"] for p in out.iterdir())


def test_running_vm_refused(tmp_path: Path, trixie_ms: Path) -> None:
    """A store whose VM libvirt reports running is refused and left alone (the library, as
    --libvirt feeds it from virsh list)."""
    from fwtools.fleet.sources import StoreRef
    from fwtools.fleet.update import UpdateTask, update_one

    before = digest(trixie_ms)
    ref = StoreRef(str(trixie_ms), vm="web1", running=True, source="libvirt")
    result = update_one(UpdateTask(ref, UpdateRequest(ca_2023=True), dry_run=False))
    assert result.status == "refused" and result.error is not None
    assert "VM web1 is running" in result.error
    assert digest(trixie_ms) == before


def test_setup_mode_store_is_skipped(tmp_path: Path) -> None:
    store = blank(tmp_path / "blank_VARS.fd")
    loaded = load_store(store)
    plan, changed = plan_loaded(loaded, UpdateRequest(ca_2023=True, dbx=True))
    assert plan.status == "skipped" and changed is None
    assert "no PK" in plan.notes[0]


def test_usage_errors(tmp_path: Path, trixie_ms: Path) -> None:
    assert run(trixie_ms, "--dry-run").exit_code == 2
    assert run(trixie_ms, "--ca-2023").exit_code == 2
    assert run(trixie_ms, "--ca-2023", "--dry-run", "--in-place").exit_code == 2
    assert run(trixie_ms, "--ca-2023", "--dry-run", "--backup").exit_code == 2
    assert run(trixie_ms, "--ca-2023", "--via", "signed", "--dry-run").exit_code == 2
    assert run(trixie_ms, "--ca-2023", "--signed-dir", tmp_path, "--dry-run").exit_code == 2


def test_json_document(trixie_ms: Path) -> None:
    import json

    result = run(trixie_ms, "--ca-2023", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "fwtools.fw-vars.update/1"
    assert doc["summary"] == {"stores": 1, "updated": 1, "unchanged": 0, "skipped": 0,
                              "refused": 0, "error": 0, "refused_writes": 0}
    (store,) = doc["stores"]
    assert store["dry_run"] is True and store["written"] is None
    assert [c["variable"] for c in store["changes"]] == ["KEK", "db"]
    assert store["changes"][1]["before"]["entries"] == 2
    assert store["changes"][1]["after"]["entries"] == 5
    assert store["trusts_after"]["uefi-ca-2023"] is True


def test_libvirt_running_domain_refused(tmp_path: Path, trixie_ms: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--libvirt: the running domain's store is refused and untouched, the shut-off one is
    updated. virsh is a stand-in script answering list/dumpxml (tests/e2e/test_libvirt_fleet.py
    does the same against a real libvirt daemon)."""
    web, db = tmp_path / "web1_VARS.fd", tmp_path / "db1_VARS.fd"
    shutil.copyfile(trixie_ms, web)
    shutil.copyfile(trixie_ms, db)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    xml = ("<domain type='kvm'><name>{0}</name><os firmware='efi'><type arch='x86_64' "
           "machine='q35'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/"
           "OVMF_CODE_4M.ms.fd</loader><nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>"
           "{1}</nvram></os></domain>")
    script = f"""#!/bin/sh
[ "$LC_ALL" = C ] || {{ echo "virsh run under LC_ALL=$LC_ALL" >&2; exit 1; }}
shift 2
case "$1 $2" in
  "list --all") printf 'web1\\ndb1\\n' ;;
  "list --name") printf 'web1\\n' ;;
  "dumpxml web1") echo "{xml.format('web1', web)}" ;;
  "dumpxml db1") echo "{xml.format('db1', db)}" ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""
    (bin_dir / "virsh").write_text(script)
    (bin_dir / "virsh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    before = digest(web)
    result = run("--libvirt", "qemu:///system", "--ca-2023", "--in-place")
    assert result.exit_code == 2, result.output
    assert f"error: web1 ({web}): refused:" in result.stderr
    assert "VM web1 is running" in result.stderr
    assert f"db1 ({db})" in result.stdout and "2 variables changed" in result.stdout
    assert digest(web) == before
    assert audit_store(str(db)).trusts["uefi-ca-2023"] is True


def test_output_file_always_written(tmp_path: Path, trixie_ms: Path) -> None:
    first = tmp_path / "first.fd"
    assert run(trixie_ms, "--ca-2023", "-o", first).exit_code == 0
    second = tmp_path / "second.fd"
    result = run(first, "--ca-2023", "-o", second)
    assert result.exit_code == 0 and "copied unchanged to" in result.stdout
    assert digest(second) == digest(first)


def test_kek_update_with_a_bad_signature_is_passed_over(tmp_path: Path) -> None:
    """Two KEK updates signed by the store's PK, the first (by name) with a broken signature:
    the one that verifies is applied; with only the broken one, it is refused."""
    from fwtools.crypto.authvar import auth_signature_info
    from fwtools.formats.efi.authvar import AuthVariable2

    good = (MS_OBJECTS / "kek" / "KEKUpdate_Microsoft_PK2.bin").read_bytes()
    signer = auth_signature_info(AuthVariable2.parse(good)).signers[0].der
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])  # the last payload byte: the signature fails
    pk = tmp_path / "pk.der"
    pk.write_bytes(signer)
    signed = tmp_path / "objects"
    (signed / "kek").mkdir(parents=True)
    (signed / "kek" / "A_broken.bin").write_bytes(bad)
    only_bad = run(store_2011(tmp_path, "a_VARS.fd", pk=str(pk)), "--ca-2023", "--via",
                   "signed", "--signed-dir", signed, "--dry-run")
    assert only_bad.exit_code == 1, only_bad.output
    assert "A_broken.bin: firmware would refuse it" in only_bad.stdout
    (signed / "kek" / "B_good.bin").write_bytes(good)
    store = store_2011(tmp_path, "b_VARS.fd", pk=str(pk))
    both = run(store, "--ca-2023", "--via", "signed", "--signed-dir", signed, "--in-place")
    assert "B_good.bin" in both.stdout and "REFUSED KEK" not in both.stdout
    assert audit_store(str(store)).trusts["kek-2023"] is True


def test_backup_never_overwrites_an_older_one(tmp_path: Path, trixie_ms: Path) -> None:
    import datetime

    from fwtools.fleet.update import backup_name

    original = trixie_ms.read_bytes()
    assert run(trixie_ms, "--ca-2023", "--in-place", "--backup").exit_code == 0
    first = Path(f"{trixie_ms}.bak")
    assert first.read_bytes() == original
    updated = trixie_ms.read_bytes()
    trixie_ms.write_bytes(original)  # as if the VM's store had been reset
    result = run(trixie_ms, "--ca-2023", "--in-place", "--backup")
    assert result.exit_code == 0
    later = [p for p in tmp_path.iterdir() if p.name.startswith(f"{trixie_ms.name}.bak.")]
    assert len(later) == 1 and later[0].read_bytes() == original
    assert first.read_bytes() == original and trixie_ms.read_bytes() == updated
    when = datetime.datetime(2026, 12, 7, 8, 0, tzinfo=datetime.UTC)
    assert backup_name(str(trixie_ms), when) == f"{later[0].parent}/{trixie_ms.name}.bak." \
        "20261207T080000Z"


def test_domain_that_never_started_gets_its_updated_template(tmp_path: Path,
                                                             trixie_ms: Path) -> None:
    """No NVRAM file yet: the plan is the template's, and --in-place writes the updated
    template where libvirt would copy the template (mode 0600, never over a file that
    appeared meanwhile); a dry run writes nothing; the template is left alone."""
    from fwtools.fleet.sources import parse_domain_xml
    from fwtools.fleet.update import UpdateTask, update_one

    nvram = tmp_path / "new_VARS.fd"
    xml = (f"<domain><name>new</name><os><loader>/c</loader><nvram template='{trixie_ms}'>"
           f"{nvram}</nvram></os></domain>")
    (tmp_path / "new.xml").write_text(xml)
    before = digest(trixie_ms)
    result = run(tmp_path / "new.xml", "--ca-2023", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "does not exist yet (the VM never started)" in result.stdout
    assert not nvram.exists()
    result = run(tmp_path / "new.xml", "--ca-2023", "--in-place", "--backup")
    assert result.exit_code == 0, result.output
    assert f"new ({nvram})" in result.stdout and "2 variables changed" in result.stdout
    assert nvram.stat().st_mode & 0o777 == 0o600
    assert audit_store(str(nvram)).trusts["uefi-ca-2023"] is True
    assert digest(trixie_ms) == before
    assert {p.name for p in tmp_path.iterdir()} == {"new.xml", "new_VARS.fd", trixie_ms.name}
    assert "1 unchanged" in run(tmp_path / "new.xml", "--ca-2023", "--in-place").stdout
    # libvirt created the file between the check and the write: refused, the file untouched.
    ref = parse_domain_xml(xml.replace("new_VARS", "race_VARS"), origin="race.xml")
    assert ref is not None
    task = UpdateTask(ref, UpdateRequest(ca_2023=True), dry_run=False)
    real_link = os.link

    def link_after_libvirt(src: str, dst: str) -> None:
        shutil.copyfile(trixie_ms, dst)
        real_link(src, dst)

    import unittest.mock

    with unittest.mock.patch("os.link", link_after_libvirt):
        raced = update_one(task)
    assert raced.status == "error" and raced.error is not None and "appeared" in raced.error
    assert digest(tmp_path / "race_VARS.fd") == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    # <nvram format='qcow2'>: libvirt would convert the raw template, so is the update.
    qcow2_xml = xml.replace("new_VARS.fd", "q_VARS.qcow2").replace(
        "<nvram ", "<nvram format='qcow2' ")
    (tmp_path / "q.xml").write_text(qcow2_xml)
    assert run(tmp_path / "q.xml", "--ca-2023", "--in-place").exit_code == 0
    assert load_store(tmp_path / "q_VARS.qcow2").format == "qcow2"
    assert audit_store(str(tmp_path / "q_VARS.qcow2")).trusts["uefi-ca-2023"] is True
