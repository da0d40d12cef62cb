"""Real event logs (testdata/tcg, captured from OVMF + swtpm by capture.sh): they parse,
every event decodes, and replay gives exactly the PCR values the TPM reported in the same
boot, in every bank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fwtools.formats.tcg.decode import (
    AuthorityData,
    BlobData,
    GptData,
    ImageLoadData,
    SeparatorData,
    SpecIdData,
    TaggedData,
    TextData,
    VariableData,
    decode_event,
)
from fwtools.formats.tcg.log import EventLog, load_event_log, parse_event_log
from fwtools.formats.tcg.replay import compare, replay
from fwtools.formats.tcg.write import log_to_bytes

TCG = Path(__file__).resolve().parents[3] / "testdata" / "tcg"
CASES = ("ovmf-d12-kernel", "ovmf-d12-shim-sb", "ovmf-d13-shim-sb")


def measured(case: str) -> dict[str, dict[int, bytes]]:
    doc = json.loads((TCG / f"{case}.pcrs.json").read_text())
    return {bank: {int(k): bytes.fromhex(v) for k, v in values.items()}
            for bank, values in doc.items()}


def load(case: str) -> EventLog:
    return load_event_log(TCG / f"{case}.eventlog.bin")


@pytest.mark.parametrize("case", CASES)
def test_replay_equals_the_tpm(case: str) -> None:
    log = load(case)
    assert log.format == "crypto-agile"
    result = replay(log)
    tpm = measured(case)
    assert list(result.banks) == ["sha1", "sha256", "sha384", "sha512"]
    assert not result.incomplete and not result.unavailable
    for bank, values in result.banks.items():
        assert values, bank
        for pcr, value in values.items():
            assert value == tpm[bank][pcr], f"{bank} PCR {pcr}"
    rows = compare(result, tpm)
    assert {r.status for r in rows} == {"match", "not-logged"}
    # PCR 10 is IMA's, extended by the kernel and never in the firmware log.
    assert {r.pcr for r in rows if r.status == "not-logged"} == {10}


@pytest.mark.parametrize("case", CASES)
def test_every_event_decodes_and_round_trips(case: str) -> None:
    data = (TCG / f"{case}.eventlog.bin").read_bytes()
    log = parse_event_log(data)
    for event in log.events:
        decoded = decode_event(event)
        assert not getattr(decoded, "value_error", None), (event, decoded)
    assert log_to_bytes(log) == data


def test_kernel_log_contents() -> None:
    log = load("ovmf-d12-kernel")
    assert len(log) == 25
    spec = decode_event(log.events[0])
    assert isinstance(spec, SpecIdData)
    assert spec.spec_id.algorithms == ((4, 20), (11, 32), (12, 48), (13, 64))
    assert spec.spec_id.uintn_size == 2
    decoded = [decode_event(e) for e in log.events]
    assert decoded[2] == BlobData(0x820000, 0xE0000)  # PEIFV
    assert decoded[3] == BlobData(0x900000, 0xC00000)  # DXEFV (Debian 12)
    secure_boot = decoded[4]
    assert isinstance(secure_boot, VariableData)
    assert (secure_boot.name, secure_boot.value) == ("SecureBoot", 0)
    image = decoded[10]
    assert isinstance(image, ImageLoadData)
    assert image.device_path is not None and image.device_path.endswith("/kernel")
    boot0000 = decoded[12]
    assert isinstance(boot0000, VariableData) and boot0000.name == "Boot0000"
    assert getattr(boot0000.value, "description", None) == "UiApp"
    tags = [d for d in decoded if isinstance(d, TaggedData)]
    assert [(t.tag, t.text) for t in tags] == [(0x8F3B22ED, "LOADED_IMAGE::LoadOptions"),
                                              (0x8F3B22EC, "Linux initrd")]
    assert sum(isinstance(d, SeparatorData) and not d.error for d in decoded) == 8


def test_secure_boot_log_contents() -> None:
    from fwtools.crypto.x509info import certificate_info

    log = load("ovmf-d12-shim-sb")
    by_index = {e.index: decode_event(e) for e in log.events}
    db = by_index[7]
    assert isinstance(db, VariableData) and db.name == "db"
    assert isinstance(db.value, list)
    subjects = [certificate_info(entry.data).common_name
                for sl in db.value for entry in sl.entries]
    assert subjects == ["Microsoft Windows Production PCA 2011",
                        "Microsoft Corporation UEFI CA 2011"]
    authority = by_index[22]
    assert isinstance(authority, AuthorityData) and authority.entry is not None
    assert str(authority.entry.owner) == "77fa9abd-0359-4d32-bd60-28f4e78f784b"
    assert certificate_info(authority.entry.data).common_name == (
        "Microsoft Corporation UEFI CA 2011")
    sbat = by_index[27]
    assert isinstance(sbat, AuthorityData) and sbat.entry is None
    assert sbat.text == "sbat,1,2025021800\nshim,4\ngrub,5\n"
    mok = by_index[29]
    assert isinstance(mok, AuthorityData) and mok.name == "MokListRT" and mok.entry
    assert certificate_info(mok.entry.data).common_name == "Debian Secure Boot CA"
    gpt = by_index[23]
    assert isinstance(gpt, GptData)
    assert str(gpt.disk_guid) == "11111111-2222-3333-4444-555555555555"
    assert [str(p.unique_guid) for p in gpt.partitions] == [
        "66666666-7777-8888-9999-aaaaaaaaaaaa"]
    assert gpt.partitions[0].starting_lba == 2048
    shim = by_index[24]
    assert isinstance(shim, ImageLoadData) and shim.device_path is not None
    assert shim.device_path.endswith("\\EFI\\BOOT\\BOOTX64.EFI")
    grub = [d for d in by_index.values() if isinstance(d, TextData)
            and d.source in ("grub_cmd", "kernel_cmdline")]
    assert grub[0].text == "grub_cmd: [ -z (hd0,gpt1)/EFI/debian -o ! -e (hd0,gpt1)/EFI/debian ]"
    assert any(d.source == "kernel_cmdline" and "console=ttyS0" in d.text for d in grub)
    mok_ipl = [d.text for e, d in zip(log.events, by_index.values(), strict=True)
               if e.pcr == 14 and isinstance(d, TextData) and d.source == "shim_mok"]
    assert mok_ipl == ["MokList", "MokListX", "MokListTrusted"]
    files = [d.text for d in by_index.values()
             if isinstance(d, TextData) and d.source == "grub_file"]
    assert files == ["(hd0,gpt1)/EFI/debian/grub.cfg", "/vmlinuz", "/initrd.img"]


def test_debian13_log_contents() -> None:
    log = load("ovmf-d13-shim-sb")
    decoded = [decode_event(e) for e in log.events]
    crtm = decoded[1]
    assert isinstance(crtm, TextData) and crtm.text == "2025.02-8+deb13u1"
    acpi = [d for e, d in zip(log.events, decoded, strict=True)
            if e.type_name == "EV_PLATFORM_CONFIG_FLAGS"]
    assert [getattr(d, "text", None) for d in acpi] == ["ACPI DATA"] * 4
    assert decoded[3] == BlobData(0x900000, 0xE80000)  # DXEFV of the 2025.02 build
    files = [d.text for d in decoded if isinstance(d, TextData) and d.source == "grub_file"]
    assert files[:2] == ["(hd0,gpt1)/EFI/debian/grub.cfg"] * 2  # grub 2.12 reads it twice
    tags = [d.tag_name for d in decoded if isinstance(d, TaggedData)]
    assert tags == ["Linux LoadOptions", "Linux initrd"]


def test_sha1_legacy_log_replays_to_the_sha1_bank() -> None:
    log = load_event_log(TCG / "ovmf-d12-kernel.sha1.eventlog.bin")
    assert log.format == "sha1" and log.spec_id is None
    assert len(log) == 24  # the real log without its Spec ID event
    result = replay(log)
    assert list(result.banks) == ["sha1"]
    tpm = measured("ovmf-d12-kernel")["sha1"]
    assert result.banks["sha1"] == {pcr: tpm[pcr] for pcr in result.banks["sha1"]}
    assert len(result.banks["sha1"]) == 9
    assert log_to_bytes(log) == (TCG / "ovmf-d12-kernel.sha1.eventlog.bin").read_bytes()


def test_fixture_script_output_is_committed(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tcg", TCG / "make_tcg_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kernel = (TCG / "ovmf-d12-kernel.eventlog.bin").read_bytes()
    assert module.sha1_log(kernel) == (TCG / "ovmf-d12-kernel.sha1.eventlog.bin").read_bytes()
    for name, (blob, _, _) in module.hostile(kernel).items():
        assert (TCG / "hostile" / name).read_bytes() == blob, name


@pytest.mark.parametrize("case", CASES)
def test_data_digests_of_real_logs(case: str) -> None:
    from fwtools.formats.tcg.check import data_digest_status

    log = load(case)
    statuses = [data_digest_status(e, decode_event(e)) for e in log.events]
    assert "mismatch" not in statuses
    by_type = {}
    for event, status in zip(log.events, statuses, strict=True):
        by_type.setdefault(event.type_name, set()).add(status)
    for name in ("EV_SEPARATOR", "EV_EFI_ACTION", "EV_EFI_VARIABLE_DRIVER_CONFIG",
                 "EV_EFI_VARIABLE_BOOT", "EV_S_CRTM_VERSION"):
        assert by_type[name] == {"match"}, name
    assert by_type["EV_EFI_PLATFORM_FIRMWARE_BLOB"] == {None}


def test_a_tampered_log_is_flagged() -> None:
    from fwtools.formats.tcg.check import data_digest_status

    data = bytearray((TCG / "ovmf-d12-shim-sb.eventlog.bin").read_bytes())
    log = parse_event_log(bytes(data))
    action = log.events[14]  # "Calling EFI Application from Boot Option"
    grub = log.events[37]  # "grub_cmd: linux /vmlinuz console=ttyS0 panic=-1 loglevel=1"
    assert action.data.startswith(b"Calling") and b"loglevel=1" in grub.data
    data[action.data_offset] = ord("K")
    at = grub.data_offset + grub.data.index(b"loglevel=1") + len("loglevel=")
    data[at] = ord("7")
    tampered = parse_event_log(bytes(data))
    got = {e.index: data_digest_status(e, decode_event(e)) for e in tampered.events}
    assert [i for i, s in got.items() if s == "mismatch"] == [14, 37]
    # The replay only reads digests: it still matches the TPM.
    assert replay(tampered).banks == replay(log).banks
