"""virt-firmware's ``virt-fw-measure`` (26.10, the peer venv of benchmarks/setup-peers.sh)
against the three real boots of testdata/tcg and fwtools' prediction, where their scopes
overlap (docs/fw-pcr.md "Compared with virt-fw-measure" explains each difference):

- PCR 7 up to its separator (``--vars``): the same events and digests as the TPM's log and as
  fwtools for the Microsoft-keyed stores; for a store without PK, KEK, db and dbx it leaves
  out the four events edk2 logs for absent variables (with no data), so its PCR 7 is not the
  TPM's there.
- PCR 7 as a value (``--digests``): it stops at the separator, so with Secure Boot on it lacks
  the db authority of the first image (and shim's events): never the TPM's value; fwtools'
  is. ``--shim`` adds a MokListTrusted authority in PCR 7 that shim 16.1 does not log there.
- PCR 0 (``--image``): the DXE volume and (given ``--version``) the CRTM version match the log;
  the PEI volume does not (edk2 measures it as PlatformPei left it in memory), nor, on Debian
  12's OVMF, the empty CRTM version it leaves out. fwtools does not predict PCR 0.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from corpus import Corpus
from corpus.params import need_peer

from fwtools.formats.efi import guids
from fwtools.formats.tcg.eventtypes import EV_NO_ACTION, EV_SEPARATOR
from fwtools.formats.tcg.layout import ALGORITHM_IDS
from fwtools.formats.tcg.log import EventLog, load_event_log
from fwtools.formats.varstore.storeio import load_store
from fwtools.machine.events import variable_data
from fwtools.machine.measure import MachineInput, predict

TCG = Path(__file__).resolve().parents[2] / "testdata" / "tcg"
BANKS = ("sha1", "sha256")
# case -> (suite, code, vars, Secure Boot, PcdFirmwareVersionString as the CRTM event has it)
CASES = {
    "ovmf-d12-kernel": ("bookworm", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", False, ""),
    "ovmf-d12-shim-sb": ("bookworm", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", True,
                         ""),
    "ovmf-d13-shim-sb": ("trixie", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd", True,
                         "2025.02-8+deb13u1"),
}
Record = tuple[int, str, dict[str, str]]  # pcr, event type name, digests per bank


def virt_fw_measure(*args: str) -> dict[str, list[dict[str, object]]]:
    tool = need_peer("virt-fw-measure")
    out = subprocess.run([tool, *args, *(f"--bank={b}" for b in BANKS)], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    doc: dict[str, list[dict[str, object]]] = json.loads(out)
    return doc


def records(doc: dict[str, list[dict[str, object]]]) -> list[Record]:
    out = []
    for r in doc["records"]:
        digests = {d["hashAlg"]: d["digest"] for d in r["digests"]}  # type: ignore[attr-defined]
        out.append((int(r["pcr"]), r["content"]["event_type"], digests))  # type: ignore[call-overload,index]
    return out


def logged(log: EventLog, pcr: int, *, through_separator: bool) -> list[Record]:
    from fwtools.formats.tcg.eventtypes import event_type_name

    out = []
    for e in log.events:
        if e.pcr != pcr or e.event_type == EV_NO_ACTION:
            continue
        out.append((pcr, event_type_name(e.event_type),
                    {b: (e.digest(ALGORITHM_IDS[b]) or b"").hex() for b in BANKS}))
        if through_separator and e.event_type == EV_SEPARATOR:
            break
    return out


def tpm(case: str) -> dict[str, dict[str, str]]:
    doc: dict[str, dict[str, str]] = json.loads((TCG / f"{case}.pcrs.json").read_text())
    return doc


def _ovmf(corpus: Corpus, suite: str) -> Path:
    return corpus.ovmf_dir(suite)


@pytest.mark.parametrize("case", sorted(CASES))
def test_pcr7_store_part(case: str, corpus: Corpus) -> None:
    suite, _, vars_name, secure_boot, _ = CASES[case]
    store = _ovmf(corpus, suite) / vars_name
    log = load_event_log(TCG / f"{case}.eventlog.bin")
    real = logged(log, 7, through_separator=True)
    theirs = records(virt_fw_measure("--vars", str(store),
                                     *([] if secure_boot else ["--no-sb"])))
    p = predict(MachineInput(load_store(store), [], BANKS, secure_boot=secure_boot))
    ours = [(e.pcr, real[i][1], {b: e.digests[b].hex() for b in BANKS})
            for i, e in enumerate(x for x in p.events if x.pcr == 7)]
    assert ours == real
    if secure_boot:  # PK, KEK, db, dbx all present
        assert theirs == real
    else:  # absent PK, KEK, db, dbx: edk2 logs them empty, virt-fw-measure leaves them out
        assert len(real) == 6 and theirs == [real[0], real[5]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_pcr7_value(case: str, corpus: Corpus) -> None:
    suite, _, vars_name, secure_boot, _ = CASES[case]
    store = _ovmf(corpus, suite) / vars_name
    measured = tpm(case)
    flags = [] if secure_boot else ["--no-sb"]
    values = virt_fw_measure("--vars", str(store), "--digests", *flags)["values"]
    theirs = {v["hashAlg"]: v["digest"] for v in values if v["pcr"] == 7}
    real = logged(load_event_log(TCG / f"{case}.eventlog.bin"), 7, through_separator=False)
    for bank in BANKS:
        assert theirs[bank] != measured[bank]["7"]
        value = bytes(hashlib.new(bank).digest_size)
        for _, _, digests in real:
            value = hashlib.new(bank, value + bytes.fromhex(digests[bank])).digest()
        assert value.hex() == measured[bank]["7"]  # the log is the TPM's
    if secure_boot:
        # --shim: SbatLevel from the store (Debian's has none) and MokListTrusted as PCR 7
        # authorities; shim 16.1 logs MokListTrusted in PCR 14
        shim = records(virt_fw_measure("--vars", str(store), "--shim"))
        store_part = logged(load_event_log(TCG / f"{case}.eventlog.bin"), 7,
                            through_separator=True)
        assert shim[:-1] == store_part
        trusted = variable_data(guids.SHIM_LOCK, "MokListTrusted", b"\x01")
        assert shim[-1] == (7, "EV_EFI_VARIABLE_AUTHORITY",
                            {b: hashlib.new(b, trusted).hexdigest() for b in BANKS})
        assert shim[-1][2] not in [d for _, _, d in real]


@pytest.mark.parametrize("case", sorted(CASES))
def test_pcr0(case: str, corpus: Corpus) -> None:
    suite, code_name, _, _, version = CASES[case]
    code = _ovmf(corpus, suite) / code_name
    args = ["--image", str(code), *([f"--version={version}"] if version else [])]
    theirs = records(virt_fw_measure(*args))
    real = logged(load_event_log(TCG / f"{case}.eventlog.bin"), 0, through_separator=False)
    crtm, pei, dxe, _separator = real
    assert [t for _, t, _ in real] == ["EV_S_CRTM_VERSION", "EV_EFI_PLATFORM_FIRMWARE_BLOB",
                                       "EV_EFI_PLATFORM_FIRMWARE_BLOB", "EV_SEPARATOR"]
    if version:
        assert theirs[0] == crtm
        theirs = theirs[1:]
    else:  # Debian 12's OVMF logs an empty version string; virt-fw-measure logs nothing
        assert bytes.fromhex(crtm[2]["sha256"]) == hashlib.sha256(b"\0\0").digest()
    their_pei, their_dxe = theirs
    assert their_dxe == dxe  # the DXE volume is measured as it is in the image
    assert their_pei[2] != pei[2]  # the PEI volume is not (PlatformPei's globals)
    values = virt_fw_measure(*args, "--digests")["values"]
    for v in values:
        assert v["digest"] != tpm(case)[str(v["hashAlg"])]["0"]
    p = predict(MachineInput(load_store(_ovmf(corpus, suite) / CASES[case][2]), [], BANKS))
    assert 0 in p.not_predicted
