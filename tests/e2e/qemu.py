"""Booting Debian's real firmware in QEMU for the end-to-end tests.

Plain Python with no pytest dependency (the fixtures live in ``conftest.py``). Four parts:

- **ESP helpers**: :func:`make_esp_image` writes a GPT disk image with one FAT32 EFI system
  partition from ``{path-in-ESP: bytes | Path}`` using sgdisk and mtools (nothing is mounted);
  :func:`make_esp_dir` fills a directory for QEMU's vvfat (:meth:`Disk.vvfat`).
- **The runner**: :func:`run_ovmf` boots OVMF under TCG with the serial console on stdout,
  watches it line by line and stops QEMU as soon as a stop marker appears or the timeout
  passes; :func:`run_qemu` is the generic part. QEMU runs in its own process group, which is
  always terminated in a ``finally``.
- **The UEFI shell driver**: :func:`run_shell` runs shell commands from ``startup.nsh``
  between unique markers; :func:`parse_dmpstore` turns ``dmpstore`` output into variables;
  :func:`read_back` reads the variables the firmware left in the vars file, for comparing
  with ``dmpstore`` (:func:`compare_nv`).
- **The boot chain**: :func:`boot_shim_chain` boots shim → grub from an ESP and returns a
  verdict (``grub``, ``security-violation``, ...).

The caller always gives the firmware its own writable copy of the vars file
(:func:`copy_vars`); nothing here copies firmware files behind the caller's back.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import selectors
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

# -- tools ---------------------------------------------------------------------------------

QEMU_X86: Final = "qemu-system-x86_64"
QEMU_IMG: Final = "qemu-img"
# What the helpers shell out to (Debian packages: qemu-system-x86, qemu-utils, mtools, gdisk).
REQUIRED_TOOLS: Final = (QEMU_X86, QEMU_IMG, "sgdisk", "mformat", "mmd", "mcopy")

# Seconds; multiplied by $FWTOOLS_E2E_TIMEOUT_SCALE (e.g. 3 on a very slow runner). A boot
# normally ends in seconds on a stop marker, so a generous timeout costs nothing.
DEFAULT_TIMEOUT: Final = 180.0
TIMEOUT_SCALE_ENV: Final = "FWTOOLS_E2E_TIMEOUT_SCALE"
# QEMU's -accel: "tcg" unless this says otherwise (e.g. "kvm"). Not KVM by default even when
# /dev/kvm exists: on nested or restricted hosts KVM can be present yet fail ("KVM internal
# error ... emulation failure" in OVMF's SEC phase), and TCG is what CI measures.
ACCEL_ENV: Final = "FWTOOLS_QEMU_ACCEL"


def missing_tools(tools: Iterable[str] = REQUIRED_TOOLS) -> list[str]:
    """The tools of ``tools`` that are not on PATH."""
    return [t for t in tools if shutil.which(t) is None]


def scaled_timeout(seconds: float) -> float:
    try:
        scale = float(os.environ.get(TIMEOUT_SCALE_ENV, "") or 1.0)
    except ValueError:
        scale = 1.0
    return seconds * max(scale, 0.1)


def default_accel() -> str:
    return os.environ.get(ACCEL_ENV, "").strip() or "tcg"


# -- serial text -----------------------------------------------------------------------------

# CSI sequences (colours, cursor moves, "ESC[=3h" mode sets) and the few two-byte escapes
# edk2's terminal driver emits; then everything but printable ASCII, tab and newline.
_ANSI_RE: Final = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]")
_NON_TEXT_RE: Final = re.compile(r"[^\t\n -~]")


def clean_serial(raw: bytes | str) -> str:
    """Serial output as plain ASCII text with ``\\n`` line ends.

    OVMF's terminal (PC-ANSI) emits colours and cursor positioning (the shell's countdown
    rewrites one line in place, so its steps end up on one line here) and draws boxes (shim's
    error box) with code-page-437 bytes; escapes are removed, CR LF and lone CR become LF,
    and bytes outside printable ASCII are dropped. Every marker and dmpstore line is ASCII.
    """
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    text = _ANSI_RE.sub("", text)
    return _NON_TEXT_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


# -- ESP -------------------------------------------------------------------------------------

EspContent = Mapping[str, bytes | str | Path]

_SECTOR: Final = 512
_PART_START: Final = 2048  # sectors: 1 MiB, where sgdisk puts the first partition


def _content_bytes(value: bytes | str | Path) -> bytes:
    if isinstance(value, Path):
        return value.read_bytes()
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _esp_parts(path: str) -> list[str]:
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"bad path in ESP: {path!r}")
    return parts


def _run_tool(args: Sequence[str]) -> None:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    proc = subprocess.run(list(args), capture_output=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{args[0]} failed (exit {proc.returncode}): {' '.join(args)}\n"
            f"{proc.stderr.decode(errors='replace')}{proc.stdout.decode(errors='replace')}"
        )


def make_esp_image(
    image: Path,
    files: EspContent,
    *,
    size_mib: int | None = None,
    partition: Literal["gpt", "none"] = "gpt",
    label: str = "ESP",
) -> Path:
    """Write a disk image holding a FAT32 ESP with ``files`` (``{"EFI/BOOT/BOOTX64.EFI":
    Path(...), "startup.nsh": b"..."}``) and return ``image``.

    ``partition="gpt"`` (default) makes a GPT disk with one EF00 partition at 1 MiB, as an
    installer would; ``"none"`` formats the whole image (a "superfloppy", which OVMF also
    mounts). The size defaults to the content plus room, at least 64 MiB; FAT32 from 34 MiB of
    FAT up, FAT16/12 below. The file is sparse. Directories are created as needed.
    """
    blobs = {"/".join(_esp_parts(k)): _content_bytes(v) for k, v in files.items()}
    total = sum(len(b) for b in blobs.values())
    if size_mib is None:
        size_mib = max(64, (total * 3 // 2) // (1 << 20) + 16)
    image.parent.mkdir(parents=True, exist_ok=True)
    with image.open("wb") as fh:
        fh.truncate(size_mib << 20)
    if partition == "gpt":
        # One partition from 1 MiB to 1 MiB before the end: the end stays clear of the
        # backup GPT, and the FAT is given exactly the partition's size (-T).
        fat_sectors = (size_mib - 2) * 2048
        end = _PART_START + fat_sectors - 1
        _run_tool(["sgdisk", "-n", f"1:{_PART_START}:{end}", "-t", "1:ef00", "-c", f"1:{label}",
                   str(image)])
        target = f"{image}@@{_PART_START * _SECTOR}"
    elif partition == "none":
        fat_sectors = size_mib * 2048
        target = str(image)
    else:
        raise ValueError(f"partition must be 'gpt' or 'none', not {partition!r}")
    # FAT32 as the UEFI spec prefers for an ESP, when there are enough clusters for it.
    fat32 = ["-F"] if fat_sectors >= 68 * 1024 else []
    _run_tool(["mformat", "-i", target, "-T", str(fat_sectors), "-h", "64", "-s", "32", *fat32,
               "-v", label[:11], "::"])
    dirs: set[str] = set()
    for dest in blobs:
        parts = dest.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    if dirs:
        # Parents before children.
        _run_tool(["mmd", "-i", target, *(f"::/{d}" for d in sorted(dirs, key=len))])
    with tempfile.TemporaryDirectory(prefix="esp-", dir=image.parent) as tmp:
        for i, (dest, blob) in enumerate(sorted(blobs.items())):
            src = Path(tmp) / f"f{i}"
            src.write_bytes(blob)
            _run_tool(["mcopy", "-i", target, "-o", str(src), f"::/{dest}"])
    return image


def make_esp_dir(directory: Path, files: EspContent) -> Path:
    """Fill ``directory`` with ``files`` for QEMU's vvfat (``Disk.vvfat(directory)``)."""
    for dest, value in files.items():
        path = directory.joinpath(*_esp_parts(dest))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_content_bytes(value))
    return directory


@dataclass(frozen=True)
class Disk:
    """A disk on QEMU's default bus (AHCI on q35): an image file or a vvfat directory.

    ``snapshot`` sends the guest's writes to a temporary overlay, leaving the file (or
    directory) untouched; AHCI disks cannot be ``readonly=on`` in QEMU 7.2 ("Block node is
    read-only"), so this is how a disk is shared read-only.
    """

    file: str
    format: str = "raw"
    snapshot: bool = False

    @classmethod
    def image(cls, path: Path, *, format: str = "raw", snapshot: bool = False) -> Disk:
        return cls(str(path), format, snapshot)

    @classmethod
    def vvfat(cls, directory: Path, *, rw: bool = True) -> Disk:
        """QEMU's virtual FAT of a host directory: ``fat:rw:DIR`` (QEMU writes into the
        directory: give it one of your own), or ``fat:DIR`` with ``snapshot=on``."""
        if rw:
            return cls(f"fat:rw:{directory}", "raw")
        return cls(f"fat:{directory}", "raw", snapshot=True)

    def args(self) -> list[str]:
        if "," in self.file:
            raise ValueError(f"QEMU -drive cannot take a path with a comma: {self.file!r}")
        opts = f"file={self.file},format={self.format},media=disk"
        if self.snapshot:
            opts += ",snapshot=on"
        return ["-drive", opts]


# -- the runner ------------------------------------------------------------------------------


@dataclass
class QemuResult:
    """What one QEMU run produced."""

    command: list[str]
    raw: bytes  # the serial console, exactly as read
    output: str  # clean_serial(raw)
    stderr: str
    elapsed: float  # seconds from start to exit (or to our kill)
    returncode: int | None  # QEMU's exit status; negative: the signal that ended it
    marker: str | None = None  # the stop-marker pattern that matched, if one did
    match: str | None = None  # the text it matched
    matched_line: str | None = None  # the whole (clean) line it matched in
    timed_out: bool = False
    killed: bool = False  # we ended QEMU (marker or timeout) rather than it exiting

    @property
    def lines(self) -> list[str]:
        return self.output.split("\n")

    def saw(self, pattern: str) -> bool:
        """Whether ``pattern`` (a regex) occurs in the clean output."""
        return re.search(pattern, self.output, re.MULTILINE) is not None

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    def describe(self) -> str:
        """One paragraph for assertion messages: how it ended and the end of the console."""
        how = (
            f"stopped on {self.marker!r} ({self.matched_line!r})" if self.marker
            else "timed out" if self.timed_out
            else f"QEMU exited with {self.returncode}"
        )
        return (f"{how} after {self.elapsed:.1f}s\n$ {' '.join(self.command)}\n"
                f"--- stderr ---\n{self.stderr.strip()}\n--- serial (tail) ---\n{self.tail()}")


def _stop_process_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the group (QEMU then flushes and closes its images, which matters for qcow2),
    SIGKILL whatever is left after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _load_prctl() -> Callable[..., int] | None:
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Looked up here, not in the forked child (no dynamic loading between fork and exec).
_PRCTL: Final = _load_prctl()
_PR_SET_PDEATHSIG: Final = 1


def _die_with_parent() -> None:
    """In the child before exec: have Linux SIGKILL QEMU when the test process dies, so a
    pytest worker that is itself killed cannot leave QEMU running; the ``finally`` in
    :func:`run_qemu` covers every other way out."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def run_qemu(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stop_markers: Sequence[str] = (),
    input_on: Sequence[tuple[str, bytes]] = (),
    serial_log: Path | None = None,
    linger: float | Mapping[str, float] = 0.0,
) -> QemuResult:
    """Run ``args`` (a QEMU command line whose serial console is stdout) and watch the output.

    ``stop_markers`` are regexes (``re.MULTILINE``) matched against the clean output line by
    line, including the line still being written; the first one to appear stops QEMU. Each
    ``(regex, bytes)`` of ``input_on`` writes ``bytes`` to QEMU's stdin (the serial console)
    once, the first time ``regex`` matches. The timeout is scaled by
    ``$FWTOOLS_E2E_TIMEOUT_SCALE``. ``serial_log`` gets the raw console when the run ends,
    whatever happens. ``linger`` (seconds, default 0; or ``{stop pattern: seconds}``) keeps
    reading that long after the stop marker before stopping QEMU, e.g. to collect the rest of
    an exception dump; the first marker stays the result.
    """
    command = [str(a) for a in args]
    stops = [(p, re.compile(p, re.MULTILINE)) for p in stop_markers]
    pending_input = [(re.compile(p, re.MULTILINE), data) for p, data in input_on]
    limit = scaled_timeout(timeout)
    raw = bytearray()
    pending = b""  # raw bytes after the last newline: the line still being written
    result_marker: tuple[str, re.Match[str]] | None = None
    timed_out = False
    killed = False
    linger_until: float | None = None  # set when a marker matched and linger > 0
    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        try:
            assert proc.stdout is not None and proc.stdin is not None
            fd = proc.stdout.fileno()
            with selectors.DefaultSelector() as sel:
                sel.register(fd, selectors.EVENT_READ)
                while True:
                    now = time.monotonic()
                    remaining = start + limit - now
                    if linger_until is not None:
                        if now >= linger_until or remaining <= 0:
                            break
                        remaining = min(remaining, linger_until - now)
                    elif remaining <= 0:
                        timed_out = True
                        break
                    if not sel.select(min(remaining, 1.0)):
                        continue
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        break  # QEMU closed the console: it is exiting
                    raw += chunk
                    # The console arrives a few bytes at a time, so only the new text is
                    # scanned: the lines completed by this chunk plus the one still being
                    # written. Escapes and UTF-8 never span a newline, so cleaning line by
                    # line gives the same text as cleaning everything.
                    pending += chunk
                    window = clean_serial(pending)
                    if b"\n" in chunk:
                        pending = pending[pending.rfind(b"\n") + 1 :]
                    for pat, data in list(pending_input):
                        if pat.search(window):
                            pending_input.remove((pat, data))
                            with contextlib.suppress(BrokenPipeError):
                                proc.stdin.write(data)
                                proc.stdin.flush()
                    if linger_until is not None:
                        continue  # lingering after the marker: just collect the output
                    # The earliest match wins when several markers are in one window.
                    for pattern, rx in stops:
                        m = rx.search(window)
                        if m is not None and (result_marker is None
                                              or m.start() < result_marker[1].start()):
                            result_marker = (pattern, m)
                    if result_marker is not None:
                        extra = (linger if not isinstance(linger, Mapping)
                                 else linger.get(result_marker[0], 0.0))
                        if extra <= 0:
                            break
                        linger_until = time.monotonic() + extra
            if timed_out or result_marker is not None:
                killed = proc.poll() is None
                _stop_process_group(proc)
            else:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    killed = True
                    _stop_process_group(proc)
        finally:
            _stop_process_group(proc, grace=2.0)
            elapsed = time.monotonic() - start
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            if serial_log is not None:
                with contextlib.suppress(OSError):
                    serial_log.write_bytes(bytes(raw))
        err.seek(0)
        stderr = err.read().decode("utf-8", errors="replace")
    output = clean_serial(bytes(raw))
    marker = match = matched_line = None
    if result_marker is not None:
        marker, m = result_marker
        match = m.group(0)
        ls = m.string.rfind("\n", 0, m.start()) + 1
        le = m.string.find("\n", m.end())
        matched_line = m.string[ls : le if le >= 0 else len(m.string)]
    return QemuResult(
        command=command, raw=bytes(raw), output=output, stderr=stderr, elapsed=elapsed,
        returncode=proc.returncode, marker=marker, match=match, matched_line=matched_line,
        timed_out=timed_out, killed=killed,
    )


VarsFormat = Literal["raw", "qcow2"]


def needs_smm(code: Path) -> bool:
    """Whether an OVMF code image is a Secure Boot build (``*.secboot.fd`` and its ``.ms`` /
    ``.snakeoil`` links, ``*.strictnx.fd``), which needs SMM and a secure pflash."""
    name = code.resolve().name.lower()
    return any(t in name for t in ("secboot", ".ms.", "snakeoil", "strictnx"))


def ovmf_command(
    code: Path,
    vars: Path,
    *,
    vars_format: VarsFormat = "raw",
    secure_boot: bool = False,
    disks: Sequence[Disk] = (),
    memory_mib: int = 512,
    accel: str | None = None,
    extra_args: Sequence[str] = (),
    qemu: str = QEMU_X86,
) -> list[str]:
    """The QEMU command line :func:`run_ovmf` uses."""
    for p in (code, vars):
        if "," in str(p):
            raise ValueError(f"QEMU -drive cannot take a path with a comma: {p}")
    machine = "q35,smm=on" if secure_boot else "q35"
    cmd = [
        qemu, "-nographic", "-net", "none", "-m", str(memory_mib), "-no-reboot",
        "-machine", machine, "-accel", accel or default_accel(),
    ]
    if secure_boot:
        cmd += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
    cmd += [
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
        "-drive", f"if=pflash,format={vars_format},unit=1,file={vars}",
    ]
    for disk in disks:
        cmd += disk.args()
    return cmd + list(extra_args)


def run_ovmf(
    code: Path,
    vars: Path,
    *,
    vars_format: VarsFormat = "raw",
    secure_boot: bool = False,
    disks: Sequence[Disk] = (),
    timeout: float = DEFAULT_TIMEOUT,
    stop_markers: Sequence[str] = (),
    input_on: Sequence[tuple[str, bytes]] = (),
    extra_args: Sequence[str] = (),
    serial_log: Path | None = None,
    memory_mib: int = 512,
    accel: str | None = None,
    qemu: str = QEMU_X86,
) -> QemuResult:
    """Boot OVMF (x86-64, q35) with ``code`` read-only and ``vars`` as the writable store.

    ``vars`` must be the caller's own copy (:func:`copy_vars`): the firmware writes to it.
    ``secure_boot=True`` is the machine a Secure Boot build needs (``smm=on`` and a secure
    pflash); see :func:`needs_smm`. The console is the serial port on stdout (``-nographic``);
    see :func:`run_qemu` for ``stop_markers``, ``input_on`` and the timeout.
    """
    cmd = ovmf_command(code, vars, vars_format=vars_format, secure_boot=secure_boot,
                       disks=disks, memory_mib=memory_mib, accel=accel, extra_args=extra_args,
                       qemu=qemu)
    return run_qemu(cmd, timeout=timeout, stop_markers=stop_markers, input_on=input_on,
                    serial_log=serial_log)


# -- variable stores ------------------------------------------------------------------------

_QCOW2_MAGIC: Final = b"QFI\xfb"


def copy_vars(src: Path, dest: Path, *, format: VarsFormat = "raw") -> Path:
    """A private, writable copy of a vars file for one boot; qcow2 via ``qemu-img convert``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if format == "raw":
        shutil.copyfile(src, dest)
    else:
        to_qcow2(src, dest)
    dest.chmod(0o644)
    return dest


def to_qcow2(raw: Path, dest: Path) -> Path:
    """``qemu-img convert -f raw -O qcow2`` (qemu-img is the tests' tool, never fwtools')."""
    _run_tool([QEMU_IMG, "convert", "-f", "raw", "-O", "qcow2", str(raw), str(dest)])
    return dest


def is_qcow2(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == _QCOW2_MAGIC


def read_flash(vars_path: Path) -> bytes:
    """The vars file's flash contents as raw bytes (qcow2 converted with qemu-img)."""
    if not is_qcow2(vars_path):
        return vars_path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="flash-") as tmp:
        out = Path(tmp) / "vars.raw"
        _run_tool([QEMU_IMG, "convert", "-f", "qcow2", "-O", "raw", str(vars_path), str(out)])
        return out.read_bytes()


# Test-side oracle reader of an edk2 variable store (MdePkg PiFirmwareVolume.h, MdeModulePkg
# VariableFormat.h), independent of fwtools: FV header ("_FVH" at 0x28, HeaderLength u16 at
# 0x30), VARIABLE_STORE_HEADER (signature GUID, Size u32, Format 0x5A, State 0xFE, 7 reserved),
# then 4-byte aligned records starting 0x55AA.
_AUTH_STORE: Final = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792")
_PLAIN_STORE: Final = uuid.UUID("ddcf3616-3275-4164-98b6-fe85707ffe7d")
_AUTH_RECORD: Final = struct.Struct("<HBBIQ16sIII16s")  # ... MonotonicCount, TimeStamp, PubKeyIndex
_PLAIN_RECORD: Final = struct.Struct("<HBBIII16s")
_VAR_ADDED: Final = 0x3F
_VAR_IN_DELETED_TRANSITION_ADDED: Final = 0x3E

RawVariable = tuple[uuid.UUID, str, int, bytes]  # (vendor GUID, name, attributes, data)


def walk_store(flash: bytes) -> list[RawVariable]:
    """The live variables of an edk2 store at the start of ``flash``, in store order.

    A record is live in state VAR_ADDED (0x3F), or 0x3E (being replaced) when no 0x3F record
    of the same name and GUID exists, as VariableParsing.c:FindVariableEx decides.
    """
    if flash[0x28:0x2C] != b"_FVH":
        raise ValueError("no firmware volume header (_FVH at 0x28)")
    (hlen,) = struct.unpack_from("<H", flash, 0x30)
    sig, size, fmt, state = struct.unpack_from("<16sIBB", flash, hlen)
    kind = uuid.UUID(bytes_le=sig)
    if kind not in (_AUTH_STORE, _PLAIN_STORE) or fmt != 0x5A or state != 0xFE:
        raise ValueError(f"no variable store header at {hlen:#x} ({kind}, {fmt:#x}, {state:#x})")
    rec = _AUTH_RECORD if kind == _AUTH_STORE else _PLAIN_RECORD
    end = min(hlen + size, len(flash))
    pos = (hlen + 28 + 3) & ~3
    found: list[tuple[int, RawVariable]] = []
    while pos + rec.size <= end:
        fields = rec.unpack_from(flash, pos)
        if fields[0] != 0x55AA:
            break
        rstate, attrs = fields[1], fields[3]
        name_size, data_size, guid = fields[-3], fields[-2], fields[-1]
        name_at = pos + rec.size
        data_at = name_at + name_size
        name = flash[name_at:data_at].decode("utf-16-le").rstrip("\0")
        found.append((rstate, (uuid.UUID(bytes_le=guid), name, attrs,
                               flash[data_at : data_at + data_size])))
        pos = (data_at + data_size + 3) & ~3
    added = {(v[0], v[1]) for s, v in found if s == _VAR_ADDED}
    return [v for s, v in found
            if s == _VAR_ADDED or (s == _VAR_IN_DELETED_TRANSITION_ADDED
                                   and (v[0], v[1]) not in added)]


# -- UEFI shell ------------------------------------------------------------------------------

# The shell (ShellPkg UefiHandleParsingLib) prints a name instead of the GUID for the GUIDs in
# its table; these are the ones seen as variable vendors in Debian's OVMF. Others print raw.
SHELL_GUID_NAMES: Final[dict[str, uuid.UUID]] = {
    "EFIGlobalVariable": uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c"),
    # gEfiIScsiInitiatorNameProtocolGuid: IScsiDxe keeps its "Attempt N" variables under it.
    "iSCSIInitiatorName": uuid.UUID("59324945-ec44-4c0d-b1cd-9db139df070c"),
}

# dmpstore's attribute text (DmpStore.c GetAttrType): NV, then "RT+BS" if RUNTIME_ACCESS
# else "BS" if BOOTSERVICE_ACCESS, then HR, AW, AT, joined with "+"; "Invalid" when none.
ATTRIBUTE_BITS: Final[dict[str, int]] = {
    "NV": 0x01, "BS": 0x02, "RT": 0x04, "HR": 0x08, "AW": 0x10, "AT": 0x20, "AP": 0x40,
}


def attributes_from_text(text: str) -> int:
    """``"NV+RT+BS+AT"`` -> 0x27."""
    if text == "Invalid":
        return 0
    bits = 0
    for token in text.split("+"):
        if token not in ATTRIBUTE_BITS:
            raise ValueError(f"unknown dmpstore attribute {token!r} in {text!r}")
        bits |= ATTRIBUTE_BITS[token]
    return bits


def attributes_to_text(attrs: int) -> str:
    """The text dmpstore prints for ``attrs`` (0x27 -> ``"NV+RT+BS+AT"``)."""
    out = []
    if attrs & 0x01:
        out.append("NV")
    if attrs & 0x04:
        out.append("RT+BS")
    elif attrs & 0x02:
        out.append("BS")
    out += [t for t in ("HR", "AW", "AT") if attrs & ATTRIBUTE_BITS[t]]
    return "+".join(out) or "Invalid"


VarKey = tuple[uuid.UUID | str, str]  # (vendor GUID, or the shell's name when unknown; name)


@dataclass(frozen=True)
class ShellVariable:
    """One variable as ``dmpstore`` printed it."""

    vendor: str  # as printed: "EFIGlobalVariable" or "D719B2CB-3D3A-4596-A3BC-DAD00E67656F"
    guid: uuid.UUID | None  # None when the shell printed a name not in SHELL_GUID_NAMES
    name: str
    attributes: str  # as printed, e.g. "NV+RT+BS+AT"
    data: bytes

    @property
    def key(self) -> VarKey:
        return (self.guid if self.guid is not None else self.vendor, self.name)

    @property
    def attribute_bits(self) -> int:
        return attributes_from_text(self.attributes)

    @property
    def non_volatile(self) -> bool:
        return "NV" in self.attributes.split("+")


_HEADER_RE: Final = re.compile(
    r"^Variable (?P<attrs>[A-Za-z+]+) '(?P<vendor>[^:']+):(?P<name>.*)' "
    r"DataSize = 0x(?P<size>[0-9A-Fa-f]+)\s*$"
)
_HEX_RE: Final = re.compile(r"^\s*(?P<offset>[0-9A-Fa-f]{8}): (?P<rest>.*)$")
_GUID_RE: Final = re.compile(r"^[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
_BYTE_RE: Final = re.compile(r"[0-9A-Fa-f]{2}")


def shell_vendor_guid(vendor: str) -> uuid.UUID | None:
    if _GUID_RE.match(vendor):
        return uuid.UUID(vendor)
    return SHELL_GUID_NAMES.get(vendor)


def parse_dmpstore(text: str) -> dict[VarKey, ShellVariable]:
    """Variables from the (clean) output of ``dmpstore`` / ``dmpstore -all``.

    Format (edk2 2022.11 and 2025.02 shells)::

        Variable NV+RT+BS 'EFIGlobalVariable:BootOrder' DataSize = 0x08
          00000000: 00 00 01 00 02 00 03 00-                         *........*

    i.e. a header with the attribute text, vendor (a name from the shell's GUID table or the
    GUID in upper case), variable name and size, then DumpHex lines of up to 16 bytes: two
    spaces, an 8-digit offset, ``": "``, 48 columns of ``"XX "`` (the 8th separator a
    ``-``), ``" *"``, the printable bytes, ``"*"``. A variable of size 0 has no hex lines.
    Other lines (prompts, echo output) are ignored. Keyed by :attr:`ShellVariable.key`.
    """
    out: dict[VarKey, ShellVariable] = {}
    current: tuple[re.Match[str], bytearray, int] | None = None

    def finish() -> None:
        if current is None:
            return
        m, data, size = current
        if len(data) != size:
            raise ValueError(f"dmpstore: {m.group(0)!r}: got {len(data)} bytes of {size}")
        vendor = m.group("vendor")
        var = ShellVariable(vendor, shell_vendor_guid(vendor), m.group("name"),
                            m.group("attrs"), bytes(data))
        out[var.key] = var

    for line in text.split("\n"):
        line = line.rstrip("\r")
        header = _HEADER_RE.match(line)
        if header is not None:
            finish()
            current = (header, bytearray(), int(header.group("size"), 16))
            continue
        if current is None:
            continue
        hexline = _HEX_RE.match(line)
        if hexline is None or len(current[1]) >= current[2]:
            finish()
            current = None
            continue
        m, data, size = current
        if int(hexline.group("offset"), 16) != len(data):
            raise ValueError(f"dmpstore: {m.group(0)!r}: hex line at the wrong offset: {line!r}")
        want = min(16, size - len(data))
        data += bytes.fromhex("".join(_BYTE_RE.findall(hexline.group("rest")[:48])[:want]))
    finish()
    return out


def startup_nsh(lines: Iterable[str]) -> bytes:
    """A ``startup.nsh`` with CRLF line ends (what the shell expects)."""
    return "".join(f"{line}\r\n" for line in lines).encode("ascii")


_PROMPT_RE: Final = re.compile(r"^(?:Shell|[A-Za-z][A-Za-z0-9]*:\\[^>]*)> ?(?P<cmd>.*)$")


@dataclass
class ShellRun:
    """A run of shell commands: the QEMU run and the console between the markers."""

    result: QemuResult
    begin: str
    end: str
    esp: Path

    @property
    def transcript(self) -> str | None:
        """The clean console between the begin and end markers (prompts and echoed
        commands included), or None when the script did not run to its end marker."""
        lines = self.result.lines
        try:
            b = lines.index(self.begin)
            e = lines.index(self.end, b + 1)
        except ValueError:
            return None
        return "\n".join(lines[b + 1 : e])

    @property
    def completed(self) -> bool:
        return self.transcript is not None

    def commands(self) -> list[tuple[str, str]]:
        """``[(command, its output)]`` in order, split at the shell's prompt lines."""
        text = self.transcript
        if text is None:
            return []
        out: list[tuple[str, list[str]]] = []
        for line in text.split("\n"):
            m = _PROMPT_RE.match(line)
            if m is not None:
                out.append((m.group("cmd").strip(), []))
            elif out:
                out[-1][1].append(line)
        return [(cmd, "\n".join(body).strip("\n")) for cmd, body in out
                if not (cmd.startswith("echo ") and cmd.endswith((self.begin, self.end)))]

    def variables(self) -> dict[VarKey, ShellVariable]:
        """:func:`parse_dmpstore` of the transcript (raises when the script did not end)."""
        text = self.transcript
        if text is None:
            raise AssertionError(f"the shell script did not complete\n{self.result.describe()}")
        return parse_dmpstore(text)


# Reasons to stop a shell run early: the firmware will never reach the shell.
SHELL_FAILURE_MARKERS: Final = (
    r"Security Violation",  # a Secure Boot build with SB on refuses the (unsigned) shell
    r"No bootable option or device was found",
    r"!!!! X64 Exception",
)


def run_shell(
    code: Path,
    vars: Path,
    commands: Sequence[str],
    *,
    workdir: Path,
    vars_format: VarsFormat = "raw",
    secure_boot: bool | None = None,
    extra_files: EspContent | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    skip_countdown: bool = True,
    serial_log: Path | None = None,
) -> ShellRun:
    """Boot ``code`` into its built-in UEFI shell and run ``commands`` from startup.nsh.

    The script echoes a unique begin marker, runs the commands, echoes the end marker and
    powers off (``reset -s``), so QEMU exits by itself and the store is closed cleanly. The
    ESP (a GPT image in ``workdir`` with startup.nsh and ``extra_files``) has no boot loader,
    so the boot manager falls through to the shell, which runs FS0:\\startup.nsh. With
    ``skip_countdown`` a key is sent at "Press ESC in 5 seconds" to start the script at once.

    Only code images that contain the shell work: Debian 12's ``OVMF_CODE_4M.fd`` (refuses it
    under Secure Boot, i.e. with keys enrolled: stops on "Security Violation") and Debian
    13's ``OVMF_CODE_4M.fd`` (no Secure Boot at all, so any store's PK/KEK/db/dbx can be read
    back); not the ``*.secboot.fd`` builds.
    """
    tag = uuid.uuid4().hex[:12].upper()
    begin, end = f"FWTOOLS-{tag}-BEGIN", f"FWTOOLS-{tag}-END"
    script = startup_nsh([f"echo {begin}", *commands, f"echo {end}", "reset -s"])
    esp = make_esp_image(workdir / "shell-esp.img", {"startup.nsh": script, **(extra_files or {})})
    if secure_boot is None:
        secure_boot = needs_smm(code)
    inputs = [(r"Press ESC in \d+ seconds", b" ")] if skip_countdown else []
    result = run_ovmf(code, vars, vars_format=vars_format, secure_boot=secure_boot,
                      disks=[Disk.image(esp)], timeout=timeout,
                      stop_markers=SHELL_FAILURE_MARKERS, input_on=inputs,
                      serial_log=serial_log)
    return ShellRun(result, begin, end, esp)


def dmpstore_all(
    code: Path, vars: Path, *, workdir: Path, vars_format: VarsFormat = "raw",
    timeout: float = DEFAULT_TIMEOUT, serial_log: Path | None = None,
) -> ShellRun:
    """:func:`run_shell` with ``dmpstore -all``; ``.variables()`` gives the parse."""
    return run_shell(code, vars, ["dmpstore -all"], workdir=workdir, vars_format=vars_format,
                     timeout=timeout, serial_log=serial_log)


# -- reading the store back -----------------------------------------------------------------


@dataclass(frozen=True)
class StoreVariable:
    """A variable as found in the vars file."""

    guid: uuid.UUID
    name: str
    attributes: int
    data: bytes

    @property
    def key(self) -> VarKey:
        return (self.guid, self.name)


StoreReader = Callable[[Path], Iterable[RawVariable]]


def read_store_file(vars_path: Path) -> list[RawVariable]:
    """The default :data:`StoreReader`: :func:`walk_store` of :func:`read_flash`."""
    return walk_store(read_flash(vars_path))


def store_variables(variables: Iterable[RawVariable]) -> dict[VarKey, StoreVariable]:
    """``(guid, name, attributes, data)`` tuples keyed like :func:`parse_dmpstore`'s output."""
    out: dict[VarKey, StoreVariable] = {}
    for guid, name, attrs, data in variables:
        var = StoreVariable(guid, name, attrs, bytes(data))
        out[var.key] = var
    return out


def read_back(vars_path: Path, reader: StoreReader | None = None) -> dict[VarKey, StoreVariable]:
    """The live variables in a vars file (raw or qcow2), e.g. after a boot, keyed like
    :func:`parse_dmpstore`'s output so the two compare directly (:func:`compare_nv`).

    ``reader`` turns the file into ``(guid, name, attributes, data)`` tuples. The default,
    :func:`read_store_file`, is the tests' own reader (qcow2 converted with qemu-img); pass
    one built on fwtools' store parser to check fwtools against what the firmware printed,
    e.g. ``compare_nv(run.variables(), read_back(vars_file, reader=fwtools_reader))``.
    """
    return store_variables((reader or read_store_file)(vars_path))


def compare_nv(
    shell: Mapping[VarKey, ShellVariable], store: Mapping[VarKey, StoreVariable]
) -> list[str]:
    """Differences between the non-volatile variables dmpstore printed and those in the
    store file (volatile ones never reach the file); empty when they agree in names, GUIDs,
    attributes and data."""
    problems: list[str] = []
    nv = {k: v for k, v in shell.items() if v.non_volatile}
    for key in sorted(nv.keys() - store.keys(), key=str):
        problems.append(f"only in dmpstore: {key}")
    for key in sorted(store.keys() - nv.keys(), key=str):
        problems.append(f"only in the store: {key} ({attributes_to_text(store[key].attributes)})")
    for key in sorted(nv.keys() & store.keys(), key=str):
        s, f = nv[key], store[key]
        if attributes_to_text(f.attributes) != s.attributes:
            problems.append(f"{key}: attributes {s.attributes} (dmpstore) vs "
                            f"{attributes_to_text(f.attributes)} ({f.attributes:#x}, store)")
        if s.data != f.data:
            problems.append(f"{key}: data differs ({len(s.data)} bytes in dmpstore, "
                            f"{len(f.data)} in the store)")
    return problems


# -- shim -> grub ---------------------------------------------------------------------------

GRUB_MARKER: Final = "FWTOOLS-GRUB-MARKER"
GRUB_CFG: Final = f"set timeout=0\necho {GRUB_MARKER}\nhalt\n"

BootVerdict = Literal[
    "grub", "security-violation", "exception", "no-bootable-device", "timeout", "exited"
]

# Stop markers, and the verdict each one means; whichever appears first wins.
#
# Seen with Debian 12's OVMF_CODE_4M.secboot.fd: a store with Secure Boot on but without the
# Microsoft UEFI CA in db (OVMF_VARS_4M.snakeoil.fd) makes BdsDxe print
#   BdsDxe: failed to load Boot0002 "UEFI QEMU HARDDISK QM00001 " from ...: Access Denied
# for Microsoft-signed shim (DxeImageVerificationLib: signed, but not by anything in db), and
#   BdsDxe: failed to start Boot0003 "EFI Internal Shell" from ...: Security Violation
# for the unsigned shell. shim refusing grub prints "Verification failed: (0x1A) Security
# Violation". All of these are the verdict "security-violation".
_REFUSED_BY_FIRMWARE: Final = (
    r"BdsDxe: failed to (?:load|start) .*: (?:Access Denied|Security Violation)"
)
_REFUSED_BY_SHIM: Final = r"Verification failed: .*|Security Violation"
CHAIN_MARKERS: Final[dict[str, BootVerdict]] = {
    re.escape(GRUB_MARKER): "grub",
    _REFUSED_BY_FIRMWARE: "security-violation",
    _REFUSED_BY_SHIM: "security-violation",
    r"!!!! X64 Exception|Synchronous Exception": "exception",
    r"No bootable option or device was found": "no-bootable-device",
}


@dataclass
class BootResult:
    result: QemuResult
    verdict: BootVerdict
    esp: Path | None = None
    details: list[str] = field(default_factory=list)  # BdsDxe/shim/grub lines on the way

    @property
    def welcome_grub(self) -> bool:
        return self.result.saw(r"Welcome to GRUB!")

    @property
    def refused_by(self) -> Literal["firmware", "shim"] | None:
        """Who refused an image, for ``security-violation``: BdsDxe or shim."""
        if self.verdict != "security-violation":
            return None
        return "firmware" if self.result.marker == _REFUSED_BY_FIRMWARE else "shim"

    def describe(self) -> str:
        return f"verdict {self.verdict}\n" + self.result.describe()


def shim_chain_files(
    shim: Path, grub: Path, *, grub_cfg: str = GRUB_CFG, extra: EspContent | None = None
) -> dict[str, bytes | str | Path]:
    """The ESP of Debian's removable-media boot path: shim as EFI/BOOT/BOOTX64.EFI, grub
    beside it, grub.cfg where Debian's signed grub looks (EFI/debian/) and a copy in
    EFI/BOOT/."""
    return {
        "EFI/BOOT/BOOTX64.EFI": shim,
        "EFI/BOOT/grubx64.efi": grub,
        "EFI/debian/grub.cfg": grub_cfg,
        "EFI/BOOT/grub.cfg": grub_cfg,
        **(extra or {}),
    }


def boot_shim_chain(
    code: Path,
    vars: Path,
    esp: Path | Disk,
    *,
    vars_format: VarsFormat = "raw",
    secure_boot: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    serial_log: Path | None = None,
) -> BootResult:
    """Boot ``code`` with the store ``vars`` (the caller's copy) from the ESP ``esp`` (an
    image made with :func:`make_esp_image` and :func:`shim_chain_files`, or a :class:`Disk`)
    and say how it ended: ``grub`` (grub ran grub.cfg: shim and grub were accepted),
    ``security-violation`` (firmware refused shim: "Access Denied" / "Security Violation"
    from BdsDxe, or shim refused grub; see :attr:`BootResult.refused_by`), ``exception``,
    ``no-bootable-device``, ``timeout`` or ``exited`` (QEMU ended with no verdict line).
    ``secure_boot`` (SMM machine) defaults to :func:`needs_smm` of ``code``.
    """
    disk = esp if isinstance(esp, Disk) else Disk.image(esp)
    if secure_boot is None:
        secure_boot = needs_smm(code)
    result = run_ovmf(code, vars, vars_format=vars_format, secure_boot=secure_boot,
                      disks=[disk], timeout=timeout, stop_markers=list(CHAIN_MARKERS),
                      serial_log=serial_log)
    verdict: BootVerdict
    if result.marker is not None:
        verdict = CHAIN_MARKERS[result.marker]
    elif result.timed_out:
        verdict = "timeout"
    else:
        verdict = "exited"
    details = [ln for ln in result.lines
               if re.search(r"Security Violation|Access Denied|Verification failed|"
                            r"BdsDxe: |Welcome to GRUB|Exception", ln)]
    return BootResult(result, verdict, esp if isinstance(esp, Path) else None, details)
