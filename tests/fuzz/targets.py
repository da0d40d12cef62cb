"""One fuzz target per parser, shared by the atheris harnesses (fuzz/) and the hypothesis
tests (tests/fuzz/test_parsers_hypothesis.py).

A target takes arbitrary bytes and drives one parser as the commands do: parse, then walk
everything the parse produced (re-serialise, decode, render). The contract is that a target
either returns or raises :class:`fwtools.errors.FwError`; any other exception is a crash.
:func:`run` applies that contract.

Targets keep memory bounded by construction: the qcow2 target parses with a 16 MiB virtual
size limit (the bound :meth:`Qcow2Image.parse` enforces, so ``to_raw`` never builds more),
and the others only hold what the input itself holds. The atheris campaigns add libFuzzer's
``-rss_limit_mb`` on top; tests/reliability/ asserts the bounds for inputs claiming huge sizes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fwtools.errors import FwError

if TYPE_CHECKING:
    from fwtools.uefi.image import StageImage
    from fwtools.uefi.profile import FirmwareProfile

#: The largest virtual disk the qcow2 target materialises (guards fuzzing throughput; the
#: commands use MAX_STORE_SIZE, asserted in tests/reliability).
QCOW2_FUZZ_MAX_VIRTUAL = 16 << 20


def target_pe(data: bytes) -> None:
    """PE/COFF headers, special sections, Authenticode ranges and digests, WIN_CERTIFICATE
    table and PKCS#7 signatures (``pe-inspect`` without the renderer)."""
    from fwtools.crypto.authenticode import image_signatures
    from fwtools.formats.pe.authenticode import authenticode_digests, authenticode_layout
    from fwtools.formats.pe.image import PeImage
    from fwtools.formats.pe.special import special_sections

    img = PeImage(data, "fuzz.efi")
    for section in special_sections(img):
        repr(section.decoded)
    authenticode_layout(img)
    digests = authenticode_digests(img, ("sha256",))
    for sig in image_signatures(img, digests):
        repr(sig)


def target_siglist(data: bytes) -> None:
    """EFI_SIGNATURE_LIST database: parse, re-serialise, certificate sanity (fw-sigdb show)."""
    from fwtools.crypto.authvar import certificate_problems
    from fwtools.formats.efi.siglist import SignatureDatabase

    db = SignatureDatabase.parse(data)
    again = SignatureDatabase.parse(db.to_bytes())
    assert again.count == db.count, "re-serialised database has a different entry count"
    certificate_problems(db)


def target_authvar(data: bytes) -> None:
    """An authenticated-variable payload (.auth): header, PKCS#7 description, signed list."""
    from fwtools.crypto.authvar import auth_signature_info
    from fwtools.formats.efi.authvar import AuthVariable2
    from fwtools.formats.efi.siglist import SignatureDatabase

    auth = AuthVariable2.parse(data)
    try:
        auth_signature_info(auth)
    finally:
        SignatureDatabase.parse(auth.payload)


def target_varstore(data: bytes) -> None:
    """edk2 firmware volume + variable store: parse, check, decode every variable, write
    back (what fw-vars show/check/set do) and re-parse what was written."""
    from fwtools.formats.varstore.decode import decode_variable
    from fwtools.formats.varstore.store import VariableStore

    store = VariableStore.parse(data, path="fuzz.fd")
    store.check()
    for var in store.variables:
        decode_variable(var.name, var.guid, var.data)
    out = store.to_bytes(repair=True)
    assert len(out) == len(data), "to_bytes changed the image size"
    VariableStore.parse(out, path="fuzz.fd")


def target_qcow2(data: bytes) -> None:
    """qcow2 header, extensions, L1/L2 walk and the guest view (fw-vars on a .qcow2), and
    in-place guest writes as byebyebios and fw-vars do them (``write_guest``): a write is
    refused with FwError or reads back exactly, leaving the rest of the guest unchanged."""
    from fwtools.formats.qcow2 import Qcow2Image
    from fwtools.formats.qcow2.update import write_guest

    image = Qcow2Image.parse(data, path="fuzz.qcow2", max_virtual_size=QCOW2_FUZZ_MAX_VIRTUAL)
    for _ in image.extents():
        pass
    raw = image.to_raw()
    assert len(raw) == image.virtual_size
    size = image.virtual_size
    if size < 512:
        return
    payload = bytes(range(256)) * 2
    for offset in sorted({0, (size // 2) & ~511, (size - 512) & ~511}):
        try:
            out = write_guest(data, offset, payload, path="fuzz.qcow2")
        except FwError:
            continue
        assert len(out) <= len(data) + 2 * image.cluster_size + 4096, "the image grew too much"
        again = Qcow2Image.parse(out, max_virtual_size=QCOW2_FUZZ_MAX_VIRTUAL).to_raw()
        assert again[offset : offset + 512] == payload, f"write at {offset:#x} not read back"
        assert again[:offset] == raw[:offset] and again[offset + 512 :] == raw[offset + 512 :], (
            f"write at {offset:#x} changed other guest bytes")


def target_mbr(data: bytes) -> None:
    """MBR / protective MBR sector and boot-code identification (byebyebios --check)."""
    from fwtools.formats.mbr.mbr import identify_boot_code, parse_sector, read_stub_message

    mbr = parse_sector(data)
    repr(mbr)
    identify_boot_code(data[:512])
    read_stub_message(data[:440])


def target_disk(data: bytes) -> None:
    """A disk image (fw-check vm --disk): partition table, then every FAT or ext4
    filesystem walked, every file read (at most 1 MiB each) and every symlink resolved.
    Each filesystem's FwError is an accepted outcome and the next one is still read."""
    from fwtools.formats.disk import BytesDevice, Disk

    disk = Disk(BytesDevice(data))
    table = disk.table
    json.dumps(table.to_json())
    for part in (*table.partitions, None):
        try:
            fs = disk.filesystem(part)
            for path, entry in fs.walk():
                if entry.is_symlink:
                    fs.readlink(path)  # type: ignore[union-attr]
                    continue
                if not entry.is_dir:
                    fs.read_file(path, max_size=1 << 20)
        except FwError as exc:
            assert "\n" not in str(exc), f"FwError message not one line: {exc!s}"


def target_sbat(data: bytes) -> None:
    """``.sbat`` CSV and SbatLevel (strict and lenient) and the revocation rule."""
    from fwtools.formats.sbat.sbat import parse_sbat, parse_sbat_level, revocations

    sbat = level = None
    for strict in (True, False):
        with contextlib.suppress(FwError):
            sbat = parse_sbat(data, strict=strict)
        with contextlib.suppress(FwError):
            level = parse_sbat_level(data, strict=strict)
    if sbat is not None and level is not None:
        revocations(sbat, level)
    if sbat is None:
        parse_sbat(data, strict=False)  # raises the (FwError) reason


def target_json(data: bytes) -> None:
    """The JSON interchange forms (fwtools, virt-firmware v1/v2, python-uefivars)."""
    from fwtools.formats.varstore.jsonform import variables_from_json

    for var in variables_from_json(data):
        repr(var)


_TOML_DIR: str | None = None


def _toml_file(data: bytes) -> str:
    global _TOML_DIR
    if _TOML_DIR is None:
        _TOML_DIR = tempfile.mkdtemp(prefix="fwtools-fuzz-toml-")
    path = os.path.join(_TOML_DIR, "input.toml")
    with open(path, "wb") as f:
        f.write(data)
    return path


def target_policy(data: bytes) -> None:
    """Rule profile and waiver TOML files (fw-check --policy FILE / --waivers FILE)."""
    from fwtools.policy.engine import load_waivers
    from fwtools.policy.profiles import load_profile

    path = _toml_file(data)
    with contextlib.suppress(FwError):
        load_waivers(path)
    load_profile(path)


def target_devicepath(data: bytes) -> None:
    """Device paths (text rendering, round trip) and EFI_LOAD_OPTION (fw-vars boot list)."""
    from fwtools.formats.efi.devicepath import (
        device_path_list_to_bytes,
        device_path_text,
        parse_device_path,
        parse_device_path_list,
    )
    from fwtools.formats.efi.loadoption import LoadOption

    try:
        instances = parse_device_path(data)
        for display_only in (False, True):
            device_path_text(instances, display_only=display_only, allow_shortcuts=display_only)
    except FwError:
        pass
    try:
        paths = parse_device_path_list(data)
        assert device_path_list_to_bytes(paths) == bytes(data), "device path round trip"
    except FwError:
        pass
    option = LoadOption.parse(data)
    for path in option.device_paths:
        device_path_text(path)
    option.to_bytes()


def _replay_two_ways(stage: StageImage, profile: FirmwareProfile) -> None:
    """Replay ``stage`` alone with Secure Boot off, and behind a real signed EFI application
    with Secure Boot on (loaders take other paths with it; the replay checks that a stage is
    signed, so an unsigned first stage would end at the firmware's LoadImage)."""
    from fwtools.uefi.image import load_stage
    from fwtools.uefi.replay import replay

    app = load_stage(TESTDATA / "sample" / "hello-nx.signed.efi")
    for chain, secure_boot in (([stage], False), ([app, stage], True)):
        try:
            r = replay(chain, profile, secure_boot=secure_boot)
        except FwError:
            continue  # e.g. a chain mixing architectures: a usage error
        assert r.verdict in ("boots", "faults", "refused"), r.verdict
        # why it stopped is data that agrees with the verdict and the faults
        assert (r.stop is None) == (r.verdict == "boots"), (r.verdict, r.stop)
        if r.stop is not None:
            assert r.stop.verdict == r.verdict
            assert 0 <= r.stop.stage_index <= len(r.stages)
            assert (r.stop.code == "fault") == bool(r.faults)
        for f in r.faults:
            assert r.stop is not None and f.stage_index == r.stop.stage_index
            assert f.code >= 0 and f.fault.startswith(f.summary)


def target_bootchain(data: bytes) -> None:
    """fw-check boot-chain: the input as a boot-chain stage (loader, kernel or UKI) replayed
    on an emulated W^X firmware, alone and as the second stage."""
    from fwtools.uefi.image import stage_from_bytes
    from fwtools.uefi.profile import load_firmware

    _replay_two_ways(stage_from_bytes(data, "fuzz.efi"), load_firmware("ovmf-strict"))


def target_firmware(data: bytes) -> None:
    """fw-check boot-chain --firmware FILE: a firmware profile TOML (``extends`` included),
    then a replay on the firmware it describes."""
    from fwtools.uefi.image import load_stage
    from fwtools.uefi.profile import load_firmware

    profile = load_firmware(_toml_file(data))
    _replay_two_ways(load_stage(TESTDATA / "sample" / "hello-nx.signed.efi"), profile)


def target_tcg(data: bytes) -> None:
    """A TCG event log (fw-pcr log): parse, replay every bank, decode every event and build
    the JSON document, and write the records back (the bytes must round-trip)."""
    from fwtools.formats.tcg.log import parse_event_log
    from fwtools.formats.tcg.replay import replay
    from fwtools.formats.tcg.write import log_to_bytes
    from fwtools.report.pcr_json import log_document

    log = parse_event_log(data)
    result = replay(log)
    log_document("fuzz.bin", log, result)
    assert log_to_bytes(log) == data, "re-serialised event log differs"


TARGETS: dict[str, Callable[[bytes], None]] = {
    "pe": target_pe,
    "siglist": target_siglist,
    "authvar": target_authvar,
    "varstore": target_varstore,
    "qcow2": target_qcow2,
    "mbr": target_mbr,
    "disk": target_disk,
    "sbat": target_sbat,
    "json": target_json,
    "policy": target_policy,
    "devicepath": target_devicepath,
    "bootchain": target_bootchain,
    "firmware": target_firmware,
    "tcg": target_tcg,
}


def run(name: str, data: bytes) -> None:
    """Run target ``name`` on ``data``: FwError is an accepted outcome, anything else
    propagates (a crash). The FwError message must be one line (the CLI contract)."""
    try:
        TARGETS[name](data)
    except FwError as exc:
        text = str(exc)
        assert text and "\n" not in text, f"FwError message not one line: {text!r}"


# -- seeds -----------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "testdata"
CORPUS = Path(os.environ.get("FWTOOLS_CORPUS", "/var/cache/fwtools-corpus")) / "root"
MS_OBJECTS = TESTDATA / "microsoft-secureboot-objects"
FUZZ_FIXTURES = TESTDATA / "fuzz"

# Crashers whose fix belongs to code another session owns (tests/fuzz/test_fuzz_regressions.py
# replays them as strict xfails; they are no seeds, or every campaign would stop at once).
UNFIXED: dict[str, str] = {}  # fixture -> why it still fails (strict xfail); none now


def _files(root: Path, patterns: tuple[str, ...], max_size: int) -> list[Path]:
    if not root.is_dir():
        return []
    out: set[Path] = set()
    for pattern in patterns:
        for p in root.rglob(pattern):
            if p.is_file() and not p.is_symlink() and 0 < p.stat().st_size <= max_size:
                out.add(p)
    return sorted(out)


def small_seeds(name: str) -> list[bytes]:
    """Small seeds from testdata/ only (fast; used by the hypothesis tests)."""
    return [p.read_bytes() for p in _seed_paths(name, corpus=False)]


def _seed_paths(name: str, *, corpus: bool) -> list[Path]:
    td = TESTDATA
    if name == "pe":
        paths = _files(td / "sample", ("*.efi",), 1 << 20) + _files(td / "uki", ("*.efi",), 1 << 20)
        paths += _files(td / "authenticode", ("*.efi",), 1 << 20)
        if corpus:
            paths += _files(CORPUS, ("*.efi", "*.efi.signed", "*.efi.stub"), 256 << 10)
    elif name == "siglist":
        paths = _files(td / "sigdb", ("*.esl",), 1 << 20)
    elif name == "authvar":
        paths = _files(td / "sigdb", ("*.auth",), 1 << 20)
        if corpus:
            paths += _files(MS_OBJECTS, ("*.bin",), 1 << 20)
    elif name == "varstore":
        paths = _files(td / "varstore", ("*.fd",), 1 << 20)
        if corpus:
            paths += _files(CORPUS, ("*VARS*.fd",), 1 << 20)
    elif name == "qcow2":
        paths = _files(td / "qcow2", ("*.qcow2",), 1 << 20)
    elif name == "policy":
        paths = _files(td / "policy", ("*.toml",), 1 << 20)
        paths += _files(REPO / "policies", ("*.toml",), 1 << 20)
        if corpus:
            paths += _files(MS_OBJECTS, ("*.toml",), 1 << 20)
    elif name == "sbat":
        paths = _files(td / "policy", ("sbatlevel*.txt",), 1 << 20)
    elif name == "disk":
        paths = _files(td / "disk", ("*.img",), 1 << 20)
    elif name == "bootchain":
        paths = _seed_paths("pe", corpus=corpus)
    elif name == "firmware":
        paths = _files(REPO / "policies" / "firmware", ("*.toml",), 1 << 20)
    elif name == "tcg":
        paths = _files(td / "tcg", ("*.eventlog.bin",), 1 << 20)
    else:
        paths = []
    fixtures = FUZZ_FIXTURES / name
    if fixtures.is_dir() and corpus:  # the hypothesis tests replay fixtures separately
        paths += sorted(p for p in fixtures.iterdir() if p.is_file() and p.suffix == ".bin"
                        and f"{name}/{p.name}" not in UNFIXED)
    return paths


def _sections(blobs: list[bytes], names: tuple[str, ...]) -> list[bytes]:
    from fwtools.formats.pe.image import PeImage

    out = []
    for blob in blobs:
        try:
            img = PeImage(blob)
        except FwError:
            continue
        for s in img.sections:
            if s.name in names:
                out.append(bytes(img.data[s.raw_offset : s.raw_offset + min(s.raw_size, 4096)]))
    return out


def _made_seeds(name: str, corpus: bool) -> list[bytes]:
    """Seeds built with fwtools itself where no file of the kind exists."""
    if name == "mbr":
        from fwtools.formats.mbr.mbr import build_boot_code, inject

        blank = bytes(510) + b"\x55\xaa"
        protective = bytearray(blank)
        protective[446 + 4] = 0xEE
        protective[446 + 8 : 446 + 16] = b"\x01\x00\x00\x00\xff\xff\xff\xff"
        return [blank, bytes(protective), inject(bytes(protective), build_boot_code()),
                bytes(512)]
    if name == "sbat":
        pe = [p.read_bytes() for p in _seed_paths("pe", corpus=corpus)]
        return _sections(pe, (".sbat", ".sbatlevel"))[:40]
    if name == "devicepath":
        from fwtools.formats.efi.devicepath import build_file_path, build_hd_file_path
        from fwtools.formats.efi.loadoption import LoadOption

        fp = build_file_path("\\EFI\\debian\\shimx64.efi")
        hd = build_hd_file_path(1, 2048, 1 << 20, uuid.UUID(int=7), "\\EFI\\BOOT\\BOOTX64.EFI")
        return [LoadOption.build("debian", fp).to_bytes(),
                LoadOption.build("UEFI disk", hd, b"\x01\x02").to_bytes(), fp, hd]
    if name == "json":
        return _json_seeds(corpus)
    if name == "disk":
        return _disk_seeds()
    return []


def _disk_seeds() -> list[bytes]:
    """The hostile variants of testdata/disk's image (byte patches in its MANIFEST.json)."""
    manifest = TESTDATA / "disk" / "MANIFEST.json"
    if not manifest.is_file():
        return []
    doc = json.loads(manifest.read_text())
    base = (TESTDATA / "disk" / doc["image"]).read_bytes()
    out = []
    for patches in doc["hostile"].values():
        data = bytearray(base)
        for offset, hexbytes in patches:
            patch = bytes.fromhex(hexbytes)
            data[offset : offset + len(patch)] = patch
        out.append(bytes(data))
    return out


def _json_seeds(corpus: bool) -> list[bytes]:
    from fwtools.formats.varstore.jsonform import variables_to_json
    from fwtools.formats.varstore.store import VariableStore

    out = []
    for p in _seed_paths("varstore", corpus=corpus)[:6]:
        try:
            store = VariableStore.parse(p.read_bytes())
        except FwError:
            continue
        out.append(json.dumps(variables_to_json(store.variables, format="edk2-raw")).encode())
    vf = {"version": 2, "variables": [{"name": "Lang", "guid":
          "8be4df61-93ca-11d2-aa0d-00e098032b8c", "attr": 7, "data": "656e6700"}]}
    uv = {"version": 2, "variables": [{"name": "Foo", "guid":
          "8be4df61-93ca-11d2-aa0d-00e098032b8c", "attr": 7, "data": "AA==",
          "digest": ""}]}
    out += [json.dumps(vf).encode(), json.dumps(uv).encode()]
    return out


def seeds(name: str, *, corpus: bool = True) -> list[bytes]:
    """Every seed for target ``name``: testdata, the real corpus when present, the
    regression fixtures in testdata/fuzz/<name>/, and seeds made with fwtools."""
    return [p.read_bytes() for p in _seed_paths(name, corpus=corpus)] + _made_seeds(name, corpus)


def render_everything_for_pe(data: bytes) -> str:  # pragma: no cover - helper for harness
    """The pe-inspect text renderer over ``data`` (used by the slow PE harness variant)."""
    from fwtools.policy.collect import collect_facts
    from fwtools.policy.pe_facts import FileResult
    from fwtools.report.text_pe import render_inspection

    facts = collect_facts(data, "fuzz.efi", check_signatures=True, checksum=True)
    buf = io.StringIO()
    render_inspection([FileResult("fuzz.efi", facts)], buf, verbose=True, color=False)
    return buf.getvalue()
