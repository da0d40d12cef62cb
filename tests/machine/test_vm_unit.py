"""Pieces of fw-check vm that need no corpus: a replay's own refusal as a Refusal, the
Secure Boot state from a store's variables, and shim's state variables as shim reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from fwtools.formats.disk import DiskPathError
from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import SignatureDatabase
from fwtools.formats.sbat import parse_sbat_level
from fwtools.formats.varstore.model import Variable
from fwtools.formats.varstore.storeio import LoadedStore
from fwtools.machine.trust import (
    StoreTrust,
    effective_sbat_level,
    secure_boot_state,
    security_violation_text,
)
from fwtools.machine.vm import VmStage, check_vm, replay_refusal
from fwtools.uefi.firmware import Stop
from fwtools.uefi.profile import load_firmware
from fwtools.uefi.result import Replay

STORE = Path(__file__).resolve().parents[2] / "testdata" / "varstore" / "normal-format.fd"


def _stages() -> list[VmStage]:
    return [VmStage(1, "shim", "", "firmware", "shim", b""),
            VmStage(2, "grub", "", "shim", "grub", b"")]


def test_replay_refusal_names_the_next_stage_and_the_message() -> None:
    r = Replay(load_firmware("ovmf"), "x64", True, [])
    assert replay_refusal(r, _stages()) is None
    r.verdict = "refused"
    r.reason = "shim: Policy requires NX, but image does not support NX (read_header)"
    r.stop = Stop("refused", "nx-compat-required", "shim", 1, r.reason)
    ref = replay_refusal(r, _stages())
    assert ref is not None
    assert (ref.stage, ref.by) == (2, "shim")
    assert ref.message == "Policy requires NX, but image does not support NX"
    r.reason = "firmware: LoadImage shim: EFI_SECURITY_VIOLATION (unsigned image)"
    r.stop = Stop("refused", "unsigned", "firmware", 0, r.reason)
    ref = replay_refusal(r, _stages())
    assert ref is not None and (ref.stage, ref.by) == (1, "firmware")


class _Store:
    def __init__(self, **values: bytes) -> None:
        self.values = values

    def get(self, name: str, guid: object) -> Variable | None:
        if name not in self.values:
            return None
        return Variable(name=name, guid=guids.EFI_GLOBAL_VARIABLE, attributes=7,
                        data=self.values[name])


def test_secure_boot_state() -> None:
    s = secure_boot_state(_Store(), None)  # type: ignore[arg-type]
    assert not s.enabled and s.setup_mode
    s = secure_boot_state(_Store(PK=b"x"), True)  # type: ignore[arg-type]
    assert s.enabled and "absent" in s.reason
    s = secure_boot_state(_Store(PK=b"x", SecureBootEnable=b"\0"), True)  # type: ignore[arg-type]
    assert not s.enabled and s.secure_boot_enable == 0
    s = secure_boot_state(_Store(PK=b"x", SecureBootEnable=b"\1"), False)  # type: ignore[arg-type]
    assert not s.enabled and "no Secure Boot support" in s.reason
    s = secure_boot_state(_Store(PK=b""), None)  # type: ignore[arg-type]
    assert not s.enabled  # an empty PK is no PK


def test_security_violation_text_by_shim_version() -> None:
    assert security_violation_text("16.1") == "Security Violation"
    assert security_violation_text("15.8") == "Security Policy Violation"
    assert security_violation_text(None) == "Security Violation"


def test_disk_without_esp_is_refused_by_firmware(tmp_path: Path) -> None:
    from vm_builder import MIB, SECTOR, blank, need, run

    need("sgdisk")
    disk = blank(tmp_path / "noesp.img", 8 * MIB)
    run("sgdisk", "-n", f"1:{MIB // SECTOR}:+4096K", "-t", "1:8300", disk)
    r = check_vm("ovmf", str(STORE), disk=str(disk))
    assert r.verdict == "refused" and r.stages == []
    assert r.refusal is not None and (r.refusal.stage, r.refusal.by) == (1, "firmware")
    assert r.refusal.message == "BdsDxe: No bootable option or device was found."

    blank_disk = blank(tmp_path / "blank.img", 8 * MIB)
    with pytest.raises(DiskPathError, match="no partition table") as info:
        check_vm("ovmf", str(STORE), disk=str(blank_disk))
    assert info.value.path == str(blank_disk)


NV_BS, NV_BS_RT, NV_BS_AT = 0x03, 0x07, 0x23
CERT = (Path(__file__).resolve().parents[2] / "testdata" / "sample" / "test-ca.der").read_bytes()


def _shim_store(*variables: tuple[str, int, bytes]) -> LoadedStore:
    return LoadedStore("store.json", "json", None, [
        Variable(name=n, guid=guids.SHIM_LOCK, attributes=a, data=d) for n, a, d in variables])


def test_shim_state_variables_need_shims_attributes() -> None:
    """shim (mok.c import_one_mok_state) deletes a MokList, MokListX, MokSBState or
    MokDBState that has RUNTIME_ACCESS (only an OS could have written it) and ignores it."""
    moklist = SignatureDatabase().add_certificate(CERT, guids.SHIM_LOCK).to_bytes()
    ok = StoreTrust.from_store(_shim_store(("MokSBState", NV_BS, b"\1"),
                                           ("MokList", NV_BS, moklist),
                                           ("MokListX", NV_BS, moklist)))
    assert ok.mok_sb_state == 1 and len(ok.mok) == 1 and len(ok.mokx) == 1
    assert ok.notes == []
    rt = StoreTrust.from_store(_shim_store(("MokSBState", NV_BS_RT, b"\1"),
                                           ("MokList", NV_BS_RT, moklist),
                                           ("MokListX", NV_BS_RT, moklist)))
    assert rt.mok_sb_state is None and rt.mok == () and rt.mokx == ()
    assert [n.split(":")[0] for n in rt.notes] == [
        "MokList ignored", "MokListX ignored", "MokSBState ignored"]
    # neither NV nor BS: not MokManager's either
    assert StoreTrust.from_store(_shim_store(("MokSBState", 0, b"\1"))).mok_sb_state is None


def test_mok_db_state_makes_shim_ignore_db() -> None:
    """mokutil --ignore-db: MokManager sets MokDBState (NV|BS); MokIgnoreDB is only the
    runtime mirror shim makes of it (mok.c, MokVars.txt)."""
    assert StoreTrust.from_store(_shim_store(("MokDBState", NV_BS, b"\1"))).mok_ignore_db
    assert not StoreTrust.from_store(_shim_store(("MokDBState", NV_BS_RT, b"\1"))).mok_ignore_db
    mirror = StoreTrust.from_store(_shim_store(("MokIgnoreDB", 0x06, b"\1")))
    assert mirror.mok_ignore_db and mirror.notes == ["MokIgnoreDB read in place of MokDBState"]


def test_sbat_level_kept_only_with_shims_attributes() -> None:
    """shim keeps a stored SbatLevel only with NV|BS or NV|BS|AT (sbat.c
    check_sbat_var_attributes); any other is replaced by shim's own level."""
    level = b"sbat,1,2099010100\ngrub,99\n"
    builtin = parse_sbat_level(b"sbat,1,2024010900\nshim,4\ngrub,3\n")
    for attrs in (NV_BS, NV_BS_AT):
        trust = StoreTrust.from_store(_shim_store(("SbatLevel", attrs, level)))
        got, source = effective_sbat_level(trust, builtin)
        assert got is not None and got.datestamp == "2099010100", source
    trust = StoreTrust.from_store(_shim_store(("SbatLevel", NV_BS_RT, level)))
    got, source = effective_sbat_level(trust, builtin)
    assert got is builtin
    assert "NV|BS|RT" in source and "shim's built-in" in source, source


def test_revoking_entry_is_named_for_firmware_and_shim() -> None:
    """A signer's CA in db and in dbx (an X.509 entry): edk2 (IsForbiddenByDbx) and shim
    (check_denylist: vendor dbx, dbx, MokListX) refuse, and the refusal names the revoked
    certificate (subject, SHA-256 of its DER) and the denylist; a dbx hash names the hash."""
    import hashlib

    from fwtools.crypto.authenticode import image_signatures
    from fwtools.formats.pe.authenticode import authenticode_digests
    from fwtools.formats.pe.image import PeImage
    from fwtools.machine.trust import Revocation, ShimTrust, firmware_verify, shim_verify

    ca = CERT
    # signed by the test db signer, whose issuer is the test CA
    img = PeImage.open(STORE.parents[1] / "sample" / "hello-nx.signed.efi")
    sigs = image_signatures(img)
    ca_list = SignatureDatabase().add_certificate(ca, guids.SHIM_LOCK).lists
    revoked_ca = Revocation("dbx-certificate", "CN=fwtools test CA,O=fwtools test",
                            hashlib.sha256(ca).hexdigest())
    trust = StoreTrust(db=ca_list, dbx=ca_list)
    fw = firmware_verify(img, sigs, trust, True)
    assert not fw.allowed and fw.revoked == revoked_ca, fw
    shim = ShimTrust("shim", None, None, None, "none", None, "16.1")
    by_shim = shim_verify(img, sigs, trust, shim, by="grub", in_protocol=True)
    assert not by_shim.allowed and by_shim.revoked == revoked_ca, by_shim
    assert by_shim.reason.startswith("forbidden by dbx: ")
    # trusted by MokList, revoked by MokListX
    by_mokx = shim_verify(img, sigs, StoreTrust(mok=ca_list, mokx=ca_list), shim, by="grub",
                          in_protocol=True)
    assert by_mokx.revoked is not None and by_mokx.revoked.kind == "mokx-certificate"
    assert by_mokx.reason.startswith("forbidden by MokListX: ")
    # the image's own hash in dbx
    digest = authenticode_digests(img, ("sha256",))["sha256"]
    hash_list = SignatureDatabase().add_hash(digest, guids.SHIM_LOCK).lists
    fw = firmware_verify(img, sigs, StoreTrust(db=ca_list, dbx=hash_list), True)
    assert fw.revoked == Revocation("dbx-hash", "sha256 hash", digest.hex())
    # allowed: nothing revoked
    assert firmware_verify(img, sigs, StoreTrust(db=ca_list), True).revoked is None
