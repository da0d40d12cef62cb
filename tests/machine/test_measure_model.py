"""The parts of the prediction the three real boots do not reach: Secure Boot off with shim,
a store whose SbatLevel is newer than shim's, a store with MokListTrusted, chains that are
not modelled, and the event encodings."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from corpus import Corpus

from fwtools.errors import UsageError
from fwtools.formats.efi import guids
from fwtools.formats.efi.siglist import SignatureData, SignatureList
from fwtools.formats.varstore.model import Variable
from fwtools.formats.varstore.storeio import LoadedStore, load_store
from fwtools.machine.measure import (
    EV_EFI_VARIABLE_AUTHORITY,
    SBAT_ORIGINAL,
    MachineInput,
    predict,
    variable_data,
)


class Extra:
    """A store with some variables replaced (what predict reads: ``get``)."""

    def __init__(self, base: LoadedStore, **values: bytes) -> None:
        self.base, self.values = base, values

    def get(self, name: str, guid: uuid.UUID) -> Variable | None:
        if name in self.values:
            return Variable(name, guid, 7, self.values[name])
        return self.base.get(name, guid)


@pytest.fixture
def d12(corpus: Corpus) -> tuple[LoadedStore, list[str]]:
    s, a = "bookworm", "amd64"
    store = load_store(corpus.package_dir(s, a, "ovmf") / "usr/share/OVMF/OVMF_VARS_4M.ms.fd")
    chain = [str(corpus.file(s, a, "shim-signed", "usr/lib/shim/shimx64.efi.signed")),
             str(corpus.file(s, a, "grub-efi-amd64-signed",
                             "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed")),
             str(corpus.file(s, a, "linux-image-6.1.0-50-amd64", "boot/vmlinuz-*"))]
    return store, chain


def authorities(p: object) -> list[bytes]:
    return [e.data for e in p.events if e.event_type == EV_EFI_VARIABLE_AUTHORITY]  # type: ignore[attr-defined]


def test_variable_data_layout() -> None:
    raw = variable_data(guids.EFI_GLOBAL_VARIABLE, "SecureBoot", b"\x01")
    assert raw[:16] == guids.EFI_GLOBAL_VARIABLE.bytes_le
    assert raw[16:24] == (10).to_bytes(8, "little") and raw[24:32] == (1).to_bytes(8, "little")
    assert raw[32:] == "SecureBoot".encode("utf-16-le") + b"\x01"


def test_secure_boot_off_with_shim(d12: tuple[LoadedStore, list[str]]) -> None:
    store, chain = d12
    p = predict(MachineInput(store, chain, secure_boot=False))
    assert p.events[0].data.endswith(b"\x00") and not p.secure_boot
    # No image is verified: only shim's SbatLevel, reset to the original level.
    only = authorities(p)
    assert only == [variable_data(guids.SHIM_LOCK, "SbatLevel", SBAT_ORIGINAL.encode())]
    assert [e.description for e in p.events if e.pcr == 14] == \
        ["'MokList'", "'MokListX'", "'MokListTrusted'"]
    # PCR 4: shim and GRUB only; GRUB's shim_lock verifier (which logs the kernel) is not
    # registered with Secure Boot off [tests/e2e/test_fw_pcr_predict_cases.py]
    assert [e.source for e in p.events if e.pcr == 4 and e.event_type == 0x80000003] == \
        ["edk2", "shim"]
    on = predict(MachineInput(store, chain, secure_boot=True))
    assert [e.source for e in on.events if e.pcr == 4 and e.event_type == 0x80000003] == \
        ["edk2", "shim", "grub", "grub"]


def test_newer_sbat_level_in_the_store_is_kept(d12: tuple[LoadedStore, list[str]]) -> None:
    store, chain = d12
    newer = b"sbat,1,2099010100\nshim,9\ngrub,9\n"
    p = predict(MachineInput(Extra(store, SbatLevel=newer), chain))
    assert variable_data(guids.SHIM_LOCK, "SbatLevel", newer) in authorities(p)
    older = b"sbat,1,2021030218\n"
    q = predict(MachineInput(Extra(store, SbatLevel=older), chain))
    assert variable_data(guids.SHIM_LOCK, "SbatLevel", older) not in authorities(q)


def test_mok_list_from_the_store_extends_pcr14(d12: tuple[LoadedStore, list[str]]) -> None:
    store, chain = d12
    base = predict(MachineInput(store, chain))
    extra_esl = SignatureList(guids.CERT_SHA256, 48,
                              (SignatureData(uuid.uuid4(), bytes(range(32))),)).to_bytes()
    p = predict(MachineInput(Extra(store, MokList=extra_esl), chain))
    mok = next(e for e in p.events if e.pcr == 14)
    old = next(e for e in base.events if e.pcr == 14)
    assert mok.hashed is not None and old.hashed is not None
    assert mok.hashed == old.hashed + extra_esl
    assert mok.digests["sha256"] == hashlib.sha256(old.hashed + extra_esl).digest()
    q = predict(MachineInput(Extra(store, MokListTrusted=b"\x00"), chain))
    assert 14 in q.not_predicted and 14 not in q.banks["sha256"]


def test_unmodelled_chains_are_not_claimed(d12: tuple[LoadedStore, list[str]]) -> None:
    store, chain = d12
    grub_first = predict(MachineInput(store, [chain[1], chain[2]]))
    assert {4, 7, 8, 14} <= set(grub_first.not_predicted)
    no_kernel = predict(MachineInput(store, chain[:2]))
    assert 4 in no_kernel.not_predicted and 7 in no_kernel.predicted
    qemu = predict(MachineInput(store, [chain[2]], qemu_kernel=True))
    assert 4 in qemu.not_predicted and {5, 7} <= set(qemu.predicted)
    with pytest.raises(UsageError):
        predict(MachineInput(store, chain, banks=("md5",)))


def test_refused_image_is_noted(d12: tuple[LoadedStore, list[str]], tmp_path: Path) -> None:
    store, chain = d12
    sample = Path(__file__).resolve().parents[2] / "testdata/sample/hello-nx.efi"
    (tmp_path / "unsigned.efi").write_bytes(sample.read_bytes())
    p = predict(MachineInput(Extra(store, db=b""), chain))
    assert any("firmware (not verified by db) refuses it" in n for n in p.notes)
    assert {4, 5, 7, 14} <= set(p.not_predicted) and 7 not in p.banks["sha256"]
    # A kernel signed by nobody shim trusts: shim refuses it after grub.
    q = predict(MachineInput(store, [chain[0], chain[1], chain[0]]))
    assert not q.notes and 7 in q.predicted  # shim itself is MS-signed: db verifies it
    r = predict(MachineInput(store, [chain[0], str(tmp_path / "unsigned.efi")]))
    assert any("shim (not verified" in n for n in r.notes) and 7 in r.not_predicted
