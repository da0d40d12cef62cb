"""Boot-chain replay: run each stage's loader model on the emulated firmware.

The firmware's boot manager loads the first stage with LoadImage (from disk: image source
"unknown") and starts it; every stage then follows its model's steps, which allocate, place,
protect and start the next stage, and the last one (a kernel) exits boot services and jumps
to the kernel proper. The first access the MMU would refuse ends the replay with verdict
``faults``; a refused load ends it with ``refused``; otherwise the chain ``boots``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from fwtools.errors import UsageError
from fwtools.formats.pe.image import Section
from fwtools.paging import AccessKind, MemAttr
from fwtools.uefi.firmware import (
    ACCESS,
    Event,
    FaultRecord,
    FaultStop,
    Firmware,
    LoadedImage,
    ReplayStop,
)
from fwtools.uefi.image import StageImage, load_stage
from fwtools.uefi.loaders import (
    Identity,
    LoaderModel,
    Step,
    model_by_name,
    select_model,
    shipped_models,
)
from fwtools.uefi.memmap import PAGE, pages_for
from fwtools.uefi.memtypes import MemoryType
from fwtools.uefi.profile import Arch, FirmwareProfile, load_firmware

Verdict = Literal["boots", "faults", "refused"]
_MACHINE_ARCH: Final = {"x86_64": "x64", "aarch64": "aa64"}
_STAGE_NAMES: Final = {"linux": "kernel", "efi-app": "app"}


@dataclass(frozen=True)
class StageInfo:
    index: int
    name: str  # "shim", "grub", "kernel" (unique within the chain)
    path: str
    model: str
    family: str
    version: str | None
    identified_by: str
    overridden: bool
    description: str


@dataclass(frozen=True)
class MemoryRange:
    """A run of memory with one type and one effective permission (for reports)."""

    start: int
    end: int
    memory_type: str | None
    permissions: str


@dataclass
class Replay:
    firmware: FirmwareProfile
    arch: Arch
    secure_boot: bool
    stages: list[StageInfo]
    events: list[Event] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    verdict: Verdict = "boots"
    reason: str = ""
    #: memory views after events (index into events -> ranges), when asked for
    snapshots: dict[int, list[MemoryRange]] = field(default_factory=dict)


@dataclass
class _Buffer:
    base: int
    pages: int
    memory_type: MemoryType

    @property
    def end(self) -> int:
        return self.base + self.pages * PAGE


def replay_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    firmware: str | FirmwareProfile,
    arch: Arch | None = None,
    secure_boot: bool = False,
    models: Mapping[int, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    snapshots: bool = False,
) -> Replay:
    """Replay the chain in ``paths`` (first stage first) on ``firmware`` (a profile name,
    file or object). ``models`` overrides the identified loader model per stage index."""
    images = [load_stage(p) for p in paths]
    profile = firmware if isinstance(firmware, FirmwareProfile) else load_firmware(firmware)
    if overrides:
        profile = profile.with_overrides(**overrides)
    return replay(images, profile, arch=arch, secure_boot=secure_boot, models=models,
                  snapshots=snapshots)


def chain_arch(images: Sequence[StageImage], arch: Arch | None,
               profile: FirmwareProfile) -> Arch:
    found = {_MACHINE_ARCH.get(i.machine) for i in images}
    if None in found:
        bad = next(i for i in images if i.machine not in _MACHINE_ARCH)
        raise UsageError(f"{bad.path}: machine {bad.machine} is neither x86_64 nor aarch64")
    if len(found) > 1:
        raise UsageError("the chain mixes x86_64 and aarch64 binaries")
    image_arch = found.pop() if found else None
    chosen = arch or image_arch or profile.arch or "x64"
    if image_arch is not None and chosen != image_arch:
        raise UsageError(f"--arch {chosen} but the binaries are {image_arch}")
    if profile.arch is not None and profile.arch != chosen:
        raise UsageError(f"firmware profile {profile.name} is for {profile.arch}, "
                         f"the chain is {chosen}")
    return chosen  # type: ignore[return-value]


def replay(
    images: Sequence[StageImage],
    profile: FirmwareProfile,
    *,
    arch: Arch | None = None,
    secure_boot: bool = False,
    models: Mapping[int, str] | None = None,
    snapshots: bool = False,
) -> Replay:
    if not images:
        raise UsageError("boot-chain: give at least one binary")
    # a UKI carries its kernel: the stub's next stage is the embedded .linux image
    chain: list[StageImage] = []
    for img in images:
        chain.append(img)
        if img.uki_kernel is not None:
            chain.append(img.uki_kernel)
    the_arch = chain_arch(chain, arch, profile)
    available = shipped_models()
    picked: list[tuple[LoaderModel, Identity, bool]] = []
    for i, img in enumerate(chain):
        model, ident = select_model(img, the_arch, available)
        forced = (models or {}).get(i)
        if forced is not None:
            model = model_by_name(forced)
        picked.append((model, ident, forced is not None))
    stages = _stage_infos(chain, picked)
    result = Replay(profile, the_arch, secure_boot, stages)
    runner = _Runner(result, chain, [m for m, _i, _o in picked], snapshots)
    runner.run()
    return result


def _stage_infos(chain: Sequence[StageImage],
                 picked: Sequence[tuple[LoaderModel, Identity, bool]]) -> list[StageInfo]:
    out: list[StageInfo] = []
    used: dict[str, int] = {}
    for i, (img, (model, ident, forced)) in enumerate(zip(chain, picked, strict=True)):
        base = _STAGE_NAMES.get(ident.family, ident.family)
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base}{used[base]}"
        out.append(StageInfo(i, name, img.path, model.name, ident.family, ident.version_text,
                             ident.clue, forced, model.description))
    return out


class _Runner:
    def __init__(self, result: Replay, chain: Sequence[StageImage],
                 models: Sequence[LoaderModel], snapshots: bool) -> None:
        self.result = result
        self.chain = chain
        self.models = models
        self.snapshots = snapshots
        self.fw = Firmware(result.firmware, result.arch, secure_boot=result.secure_boot,
                           log=self._log, start=False)
        self.fw.boot()
        self.index = 0
        self.loaded: list[LoadedImage | None] = [None] * len(chain)
        self.buffers: dict[str, _Buffer] = {}
        self.next_started = False

    # ---- plumbing ---------------------------------------------------------------------

    def _log(self, event: Event) -> None:
        self.result.events.append(event)
        if self.snapshots:
            self.result.snapshots[len(self.result.events) - 1] = memory_view(self.fw)

    def stage_name(self, i: int) -> str:
        return self.result.stages[i].name

    @property
    def image(self) -> StageImage:
        return self.chain[self.index]

    @property
    def next_image(self) -> StageImage | None:
        return self.chain[self.index + 1] if self.index + 1 < len(self.chain) else None

    def run(self) -> None:
        fw = self.fw
        try:
            first = self.chain[0]
            fw.stage = "firmware"
            self.loaded[0] = fw.load_image(first, source="unknown")
            self._start(0, "StartImage (boot manager)")
            while True:
                self.next_started = False
                self._steps(self.models[self.index].steps)
                if not self.next_started:
                    if self.next_image is None:
                        self.result.reason = f"{self.stage_name(self.index)} ran to the end of " \
                                             "its model; no later stage was given"
                    break
                self.index += 1
        except _Done:
            self.result.reason = "the kernel has control"
        except FaultStop as stop:
            self.result.verdict = "faults"
            self.result.faults.append(stop.record)
            rec = stop.record
            self.result.reason = (f"{rec.stage}: {rec.access} at {rec.address:#x} "
                                  f"({rec.memory_type or 'unmapped'}, {rec.attributes}): "
                                  f"{rec.fault.split(' (')[0].split(',')[0]}")
            page = rec.address & ~(PAGE - 1)
            fw.event("fault", page, page + PAGE, memory_type=fw.memmap.type_at(rec.address),
                     detail=f"{rec.access} at {rec.address:#x}: {rec.fault}", status="FAULT")
        except ReplayStop as stop:
            self.result.verdict = stop.verdict
            self.result.reason = stop.reason

    def _start(self, i: int, how: str, *, explain: str = "", fix: str = "",
               handover: bool = False) -> None:
        loaded = self.loaded[i]
        assert loaded is not None
        target = loaded.entry
        if handover:
            kernel = self.chain[i].kernel
            if kernel is None or not kernel.handover_entry:
                raise UsageError(f"{self.chain[i].name} has no 64-bit EFI handover entry")
            # the image lies in memory as in its file (copied, or inside a UKI section)
            target = loaded.base + kernel.handover_entry
        self.fw.access(target, target + 1, AccessKind.FETCH,
                       f"{how}: jump to {self.chain[i].name} entry point",
                       explanation=explain, fix=fix)
        self.fw.stage = self.stage_name(i)
        self.fw.event(f"enter {self.chain[i].name}", target, target + PAGE,
                      memory_type=self.fw.memmap.type_at(target),
                      detail=f"entry point {target:#x} ({how})")

    # ---- conditions -----------------------------------------------------------------

    def _shim_index(self, *, including_self: bool = False) -> int | None:
        for i in range(self.index + 1 if including_self else self.index):
            if self.result.stages[i].family == "shim":
                return i
        return None

    def condition(self, name: str) -> bool:
        if name.startswith("!"):
            return not self.condition(name[1:])
        fw = self.fw
        nxt = self.next_image
        nxt_loaded = self.loaded[self.index + 1] if nxt is not None else None
        me = self.loaded[self.index]
        shim = self._shim_index()
        if name == "secure_boot":
            return self.result.secure_boot
        if name == "map":
            return fw.map_installed
        if name == "next":
            return nxt is not None
        if name == "x64":
            return self.result.arch == "x64"
        if name == "aa64":
            return self.result.arch == "aa64"
        if name == "heap_nx":
            return bool(fw.type_attribute(MemoryType.LOADER_DATA) & MemAttr.XP)
        if name == "self.protected":
            return bool(me and me.protected)
        if name == "self.nx_compat":
            return self.image.nx_compat
        if name == "self.linux_above_4g":
            linux = next((s for s in self.image.sections if s.name == ".linux"), None)
            return bool(me and linux and
                        me.base + linux.virtual_address + linux.memory_size > 1 << 32)
        if name == "stub_handover_copy":
            # systemd-stub linux_exec_efi_handover: from 254 (PR #27474) the kernel is copied
            # into EfiLoaderCode below 4 GiB when the UKI's .linux lies above 4 GiB; from 257
            # (PR #33882) also when its SizeOfImage exceeds the file (room for the BSS).
            # Before 254 (and for a stub of unknown version) it runs inside .linux.
            stub = self._version(self.index) or ()
            return (stub >= (254,) and self.condition("self.linux_above_4g")) or (
                stub >= (257,) and self.condition("next.bss"))
        if name == "stub_loads_kernel":
            # systemd-stub >= 258 (PR #37372) copies the kernel's sections into EfiLoaderCode
            # itself and calls its entry point, unless Secure Boot is on and shim is there
            # (its loader protocol, or its security override for firmware LoadImage).
            stub = self._version(self.index) or ()
            return stub >= (258,) and not (self.result.secure_boot and shim is not None)
        if name == "shim_lock":
            return shim is not None
        if name == "shim_hooks":
            if shim is None or not self.result.secure_boot:
                return False
            v = self._version(shim)
            return v is not None and v >= (16, 0)
        if name == "nx_required":
            # shim's own policy applies while shim itself loads the next stage, too
            own = self._shim_index(including_self=True)
            return own is not None and self._nx_required(own)
        if nxt is None:
            return False
        if name == "next.kernel":
            return nxt.kernel is not None
        if name == "next.nx_compat":
            return nxt.nx_compat
        if name == "next.wx_sections":
            return bool(nxt.wx_sections)
        if name == "next.handover":
            return bool(nxt.kernel and nxt.kernel.handover_64)
        if name == "next.loadfile2":
            return nxt.major_image_version >= 1
        if name == "next.bss":
            return nxt.size_of_image > nxt.file_size
        if name == "next.signed":
            return nxt.signed
        if name == "next.protected":
            return bool(nxt_loaded and nxt_loaded.protected)
        raise UsageError(f"unknown condition {name!r}")

    def _version(self, i: int) -> tuple[int, ...] | None:
        from fwtools.uefi.image import version_tuple

        return version_tuple(self.result.stages[i].version)

    def _nx_required(self, shim: int) -> bool:
        """shim 16.1 set_shim_nx_policy: shim is NX_COMPAT, the memory attribute protocol is
        there, and the firmware enforces NX (heap and stack NX, shim's code not writable)."""
        v = self._version(shim)
        if v is None or v < (16, 1) or not self.chain[shim].nx_compat:
            return False
        fw = self.fw
        loaded = self.loaded[shim]
        heap_nx = bool(fw.type_attribute(MemoryType.LOADER_DATA) & MemAttr.XP)
        sbase, send = fw.stack
        stack_nx = fw.permissions_text(sbase + PAGE, send)[2:] == "-"
        code_ro = bool(loaded and loaded.protected)
        return fw.map_installed and heap_nx and stack_nx and code_ro

    # ---- steps ----------------------------------------------------------------------

    def _steps(self, steps: Sequence[Step]) -> None:
        for step in steps:
            if not all(self.condition(c) for c in step.when):
                continue
            self._step(step)
            if self.next_started:
                return

    def _size(self, value: object) -> int:
        nxt = self.next_image
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if value == "next.image" and nxt is not None:
            return nxt.size_of_image
        if value == "next.image_padded" and nxt is not None:
            sa = max(nxt.section_alignment, PAGE)
            return (nxt.size_of_image + sa + PAGE - 1) & ~(PAGE - 1)
        if value == "next.file" and nxt is not None:
            return nxt.file_size
        if value in ("self.init_size", "next.init_size"):
            img = self.image if value == "self.init_size" else nxt
            if img is not None:
                k = img.kernel
                return max(k.init_size if k else 0, img.size_of_image)
        raise UsageError(f"loader model: cannot size {value!r} here")

    def _range(self, name: str) -> tuple[int, int, MemoryType, LoadedImage | None]:
        if name == "self":
            li = self.loaded[self.index]
        elif name == "next":
            li = self.loaded[self.index + 1] if self.next_image is not None else None
        else:
            buf = self.buffers.get(name)
            if buf is None:
                raise UsageError(f"loader model {self.models[self.index].name}: no buffer "
                                 f"{name!r} allocated before it is used")
            return buf.base, buf.end, buf.memory_type, None
        if li is None:
            raise UsageError(f"loader model {self.models[self.index].name}: {name} is not "
                             "loaded yet")
        return li.base, li.base + pages_for(li.image.size_of_image) * PAGE, li.code_type, li

    def _regions(self, step: Step) -> list[tuple[int, int]]:
        start, end, _t, li = self._range(step.args["range"])
        region = step.args.get("region", "all")
        if region == "all":
            return [(start, end)]
        if li is None:
            raise UsageError(f"region {region!r} needs an image range (self or next)")
        out = []
        for s in li.image.sections:
            if (region == "code" and s.execute) or (region == "data" and not s.execute):
                lo = li.base + s.virtual_address
                out.append((lo, lo + ((s.memory_size + PAGE - 1) & ~(PAGE - 1))))
        return out

    def _step(self, step: Step) -> None:
        fw = self.fw
        op, a = step.op, step.args
        note = f" ({step.note})" if step.note else ""
        if op == "run":
            li = self.loaded[self.index]
            assert li is not None
            for s in self.image.sections:
                if s.write and s.memory_size:
                    lo = li.base + s.virtual_address
                    fw.access(lo, lo + s.memory_size, AccessKind.WRITE,
                              f"{self.image.name} writes its {s.name}",
                              explanation=step.explain, fix=step.fix)
        elif op == "allocate":
            mtype = MemoryType.parse(a["type"])
            size = self._size(a["size"])
            align = a.get("align", PAGE)
            if align == "next":
                nxt = self.next_image
                align = max(nxt.section_alignment, PAGE) if nxt else PAGE
            if a.get("pool"):
                base = fw.allocate_pool(mtype, size, a["name"] + note)
            else:
                base = fw.allocate_pages(mtype, pages_for(size), a["name"] + note,
                                         align=int(align), max_address=a.get("max_address"))
            self.buffers[a["name"]] = _Buffer(base, pages_for(size), mtype)
        elif op == "claim":
            size = self._size(a["size"])
            pages = pages_for(size)
            free = next((d for d in fw.memmap if d.type is MemoryType.CONVENTIONAL
                         and d.pages >= pages), None)
            if free is None:
                raise ReplayStop("refused", f"{self.stage_name(self.index)}: no free memory "
                                 f"of {size:#x} bytes to claim")
            self.buffers[a["name"]] = _Buffer(free.start, pages, MemoryType.CONVENTIONAL)
            fw.event(f"claim {a['name']}{note}", free.start, free.start + pages * PAGE,
                     memory_type=MemoryType.CONVENTIONAL,
                     detail="free memory taken without AllocatePages: it keeps the "
                     "attributes of EfiConventionalMemory")
        elif op in ("write", "execute"):
            start, end, _t, li = self._range(a["range"])
            kind = AccessKind.WRITE if op == "write" else AccessKind.FETCH
            if op == "execute":
                # code runs from an image's entry point, or from the start of a buffer
                start = li.entry if li is not None else start
                end = start + 1
            fw.access(start, end, kind, f"{op} {a['range']}{note}",
                      explanation=step.explain, fix=step.fix)
            if op == "execute":
                detail = f"instruction fetch at {start:#x}"
                start &= ~(PAGE - 1)
                end = start + PAGE
            else:
                detail = ""
            fw.event(f"{op} {a['range']}{note}", start, end,
                     memory_type=fw.memmap.type_at(start), detail=detail)
        elif op == "place":
            self._place(step)
        elif op == "attrs":
            start, end, _t, _li = self._range(a["range"])
            self._request(start, end - start, a["grant"], a["revoke"],
                          f"{a['range']}{note}", a.get("unaligned", "call"))
        elif op == "section_attrs":
            self._section_attrs(step)
        elif op in ("set", "clear", "dxe_assign"):
            attrs = _parse_attrs(a["attributes"])
            for lo, hi in self._regions(step):
                what = f"{a['range']} {step.args.get('region', '')}".strip() + note
                if op == "set":
                    fw.map_set(lo, hi - lo, attrs, what)
                elif op == "clear":
                    fw.map_clear(lo, hi - lo, attrs, what)
                else:
                    fw.assign(lo, hi - lo, attrs, f"DXE SetMemorySpaceAttributes {what}",
                               fw.memmap.type_at(lo))
        elif op == "load_image":
            nxt = self.next_image
            if nxt is None:
                return
            source = a.get("source", "unknown")
            self.loaded[self.index + 1] = fw.load_image(nxt, source=source,
                                                        loaded_by=self.stage_name(self.index))
        elif op == "shim_load":
            self._shim_load()
        elif op == "start":
            if self.next_image is None:
                return
            if self.loaded[self.index + 1] is None:
                raise UsageError(f"loader model {self.models[self.index].name}: start before "
                                 "the next image is loaded")
            self._start(self.index + 1, f"{self.stage_name(self.index)} starts it" + note,
                        explain=step.explain, fix=step.fix,
                        handover=a.get("entry") == "handover")
            self.next_started = True
        elif op == "free":
            start, end, _t, _li = self._range(a["range"])
            fw.free_pages(start, (end - start) // PAGE, a["range"] + note)
            self.buffers.pop(a["range"], None)
        elif op == "exit_boot_services":
            fw.exit_boot_services()
        elif op == "refuse":
            fw.event("refused", 0, 0, detail=a["reason"], status="SECURITY_VIOLATION")
            raise ReplayStop("refused", f"{self.stage_name(self.index)}: {a['reason']}")
        elif op == "done":
            fw.event("kernel has control", 0, 0, detail=step.note)
            self.result.reason = "the kernel has control"
            raise _Done
        else:  # pragma: no cover - load_model validates ops
            raise UsageError(f"unknown op {op}")

    def _place(self, step: Step) -> None:
        """A loader's own PE loader: copy headers and sections into the buffer at the
        SectionAlignment-aligned base, then apply base relocations."""
        nxt = self.next_image
        if nxt is None:
            return
        if step.args["into"].startswith("."):
            self._place_in_section(nxt, step.args["into"])
            return
        buf = self.buffers.get(step.args["into"])
        if buf is None:
            raise UsageError(f"place: no buffer {step.args['into']!r}")
        sa = max(nxt.section_alignment, 1)
        base = (buf.base + sa - 1) // sa * sa
        size = pages_for(nxt.size_of_image) * PAGE
        what = f"{self.stage_name(self.index)} copies {nxt.name} into {step.args['into']}"
        self.fw.access(base, base + size, AccessKind.WRITE, what,
                       explanation=step.explain, fix=step.fix)
        if step.args.get("relocate", True):
            for page in nxt.reloc_pages:
                self.fw.access(base + page, base + page + PAGE, AccessKind.WRITE,
                               f"relocate {nxt.name}", explanation=step.explain, fix=step.fix)
        self.loaded[self.index + 1] = LoadedImage(
            nxt, base, pages_for(nxt.size_of_image), buf.memory_type, buf.memory_type, False,
            self.stage_name(self.index))
        self.fw.event(f"place {nxt.name}", base, base + size, memory_type=buf.memory_type,
                       detail=f"{len(nxt.sections)} sections, {len(nxt.reloc_pages)} "
                       "relocation pages")

    def _place_in_section(self, nxt: StageImage, name: str) -> None:
        """The next image is this stage's own section ``name`` (a UKI's .linux as the firmware
        loaded the UKI): it runs there, in the UKI's memory and with its permissions."""
        me = self.loaded[self.index]
        section = next((s for s in self.image.sections if s.name == name), None)
        if me is None or section is None:
            raise UsageError(f"place: {self.image.name} has no loaded section {name}")
        base = me.base + section.virtual_address
        self.loaded[self.index + 1] = LoadedImage(
            nxt, base, pages_for(section.memory_size), me.code_type, me.data_type, me.protected,
            self.stage_name(self.index))
        self.fw.event(f"{nxt.name} runs inside {self.image.name} {name}", base,
                      base + section.memory_size, memory_type=self.fw.memmap.type_at(base),
                      detail="not copied: the section as the firmware loaded it")

    def _request(self, base: int, size: int, grant: str, revoke: str, what: str,
                 unaligned: str) -> None:
        """shim's update_mem_attrs / grub's grub_update_mem_attrs: Set the restrictions of
        the permissions not granted, Clear those of the permissions not revoked (§6.3)."""
        fw = self.fw
        if not fw.map_installed:
            fw.event(f"memory attributes {what}: no protocol, nothing done", base, base + size)
            return
        if unaligned == "skip" and (base % PAGE or size % PAGE):
            fw.event(f"memory attributes {what}: unaligned, silently skipped", base,
                      base + size)
            return
        restrict = {"r": MemAttr.RP, "w": MemAttr.RO, "x": MemAttr.XP}
        set_mask = MemAttr.NONE
        clear_mask = MemAttr.NONE
        for perm, bit in restrict.items():
            if perm not in grant:
                set_mask |= bit
            if perm not in revoke:
                clear_mask |= bit
        if set_mask:
            fw.map_set(base, size, set_mask, what)
        if clear_mask:
            fw.map_clear(base, size, clear_mask, what)

    def _section_attrs(self, step: Step) -> None:
        style = step.args["style"]
        li = self.loaded[self.index + 1] if self.next_image is not None else None
        if li is None:
            return
        for s in li.image.sections:
            if not s.memory_size:
                continue
            if style in ("shim-15.8", "grub-nx") and not s.read:
                continue  # shim skips sections without MEM_READ: they stay RW-/NX (inferred)
            grant, revoke = _section_request(s)
            if "x" in grant and "w" in grant and self.condition("nx_required"):
                self.fw.event("refused", 0, 0, status="UNSUPPORTED",
                               detail=f"section {s.name} is W+X and MokPolicy requires NX")
                raise ReplayStop("refused", f"{self.stage_name(self.index)}: {li.image.name} "
                                 f"section {s.name} is writable and executable (MokPolicy NX)")
            lo = li.base + s.virtual_address
            size = s.memory_size
            unaligned = "call"
            if style == "shim-15.6":
                if size % PAGE:  # update_mem_attrs returns early: the section keeps RW-/NX
                    self.fw.event(f"{s.name}: size {size:#x} not page-multiple, silently "
                                   "skipped (shim 15.6/15.7)", lo, lo + size)
                    continue
            else:
                size = ((lo + size + PAGE - 1) & ~(PAGE - 1)) - lo
                if style == "grub-nx":
                    unaligned = "skip"
            self._request(lo, size, grant, revoke, f"{li.image.name} {s.name}", unaligned)

    def _shim_load(self) -> None:
        """A later stage's LoadImage, hooked by shim >= 16 (loader-proto.c): shim's own PE
        loader (its model's loader_steps) loads the image."""
        shim = self._shim_index()
        if shim is None:
            raise UsageError("shim_load: no shim stage in the chain")
        saved = self.fw.stage
        self.fw.stage = f"{self.stage_name(shim)} (LoadImage hook)"
        try:
            self._steps(self.models[shim].loader_steps)
        finally:
            self.fw.stage = saved


class _Done(Exception):
    """The kernel has control: ends the replay with verdict ``boots``."""


def _section_request(s: Section) -> tuple[str, str]:
    grant = "r" + ("w" if s.write else "") + ("x" if s.execute else "")
    revoke = "".join(p for p in "wx" if p not in grant)
    return grant, revoke


def _parse_attrs(text: str) -> MemAttr:
    out = MemAttr.NONE
    for part in text.split("|"):
        name = part.strip().upper()
        if name in ("", "0"):
            continue
        try:
            out |= MemAttr[name]
        except KeyError:
            raise UsageError(f"unknown memory attribute {part!r} (RP, RO, XP)") from None
    if out & ~ACCESS:
        raise UsageError("only RP, RO and XP")
    return out


def memory_view(fw: Firmware) -> list[MemoryRange]:
    """Memory-map descriptors split by effective permission (what the HTML report draws)."""
    out: list[MemoryRange] = []
    for d in fw.memmap:
        pos = d.start
        for r in fw.pt.ranges(d.start, d.end):
            if r.start > pos:
                out.append(MemoryRange(pos, r.start, d.type.efi_name, "---"))
            perms = str(r.permissions)
            if out and out[-1].end == r.start and out[-1].permissions == perms and \
                    out[-1].memory_type == d.type.efi_name:
                out[-1] = MemoryRange(out[-1].start, r.end, d.type.efi_name, perms)
            else:
                out.append(MemoryRange(max(r.start, d.start), r.end, d.type.efi_name, perms))
            pos = r.end
        if pos < d.end:
            out.append(MemoryRange(pos, d.end, d.type.efi_name, "---"))
    return out
