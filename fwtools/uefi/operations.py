"""The loader operations and conditions of the boot-chain replay, and the interpreter.

Each operation a model's step can name, and each condition its ``when`` can test, is
registered here once (:func:`~fwtools.uefi.registry.operation`,
:func:`~fwtools.uefi.registry.condition`), with the code that runs it; the handler's
docstring is the operation's documentation. Importing this module fills the tables of
:mod:`fwtools.uefi.registry`, which loading a model checks against and :class:`Runner`
dispatches through. :class:`Replay` is what a run finds.
"""

from __future__ import annotations

from collections.abc import Sequence

from fwtools._base.record import Record
from fwtools.errors import UsageError
from fwtools.formats.pe.image import Section
from fwtools.paging.model import AccessKind, MemAttr
from fwtools.uefi.firmware import (
    Event,
    FaultStop,
    Firmware,
    LoadedImage,
    ReplayStop,
)
from fwtools.uefi.image import StageImage, version_tuple
from fwtools.uefi.memmap import PAGE, pages_for
from fwtools.uefi.memtypes import MemoryType
from fwtools.uefi.registry import (
    COMMON_ARGS,
    CONDITIONS,
    OPERATIONS,
    PARAMETERS,
    LoaderModel,
    ModelError,
    Step,
    check_step,
    condition,
    operation,
    parse_attrs,
)
from fwtools.uefi.result import MemoryRange, Replay, StageInfo, Verdict, memory_view

__all__ = ["COMMON_ARGS", "CONDITIONS", "OPERATIONS", "PARAMETERS", "MemoryRange", "Replay",
           "Runner", "StageInfo", "Verdict", "check_step", "memory_view", "parse_attrs"]

# ---- the interpreter ---------------------------------------------------------------------


class Buffer(Record, frozen=False):
    base: int
    pages: int
    memory_type: MemoryType
    #: the image copied into it (``relocate``): ``region`` steps then address its sections
    image: StageImage | None = None

    @property
    def end(self) -> int:
        return self.base + self.pages * PAGE


class Done(Exception):
    """The kernel has control: ends the replay with verdict ``boots``."""


class Runner:
    """One replay: the firmware, the chain, and which stage is running."""

    def __init__(self, result: Replay, chain: Sequence[StageImage],
                 models: Sequence[LoaderModel], snapshots: bool) -> None:
        self.result = result
        self.chain = chain
        self.models = models
        self.snapshots = snapshots
        self.fw = Firmware(result.firmware, result.arch, secure_boot=result.secure_boot,
                           log=self._log, start=False)
        self.fw.boot()
        result.memory_attribute_protocol = self.fw.map_installed
        result.memory_attribute_protocol_at_end = self.fw.map_installed
        self.index = 0
        self.loaded: list[LoadedImage | None] = [None] * len(chain)
        self.buffers: dict[str, Buffer] = {}
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

    @property
    def next_loaded(self) -> LoadedImage | None:
        return self.loaded[self.index + 1] if self.next_image is not None else None

    def refuse(self, code: str, reason: str) -> ReplayStop:
        """A refusal by the running stage (the caller raises it)."""
        return ReplayStop("refused", f"{self.stage_name(self.index)}: {reason}", code=code,
                          stage=self.stage_name(self.index), stage_index=self.index + 1)

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.result.memory_attribute_protocol_at_end = self.fw.map_installed

    def _run(self) -> None:
        fw = self.fw
        try:
            first = self.chain[0]
            fw.stage = "firmware"
            self.loaded[0] = fw.load_image(first, source="unknown")
            self.start(0, "StartImage (boot manager)")
            while True:
                self.next_started = False
                self.steps(self.models[self.index].steps)
                if not self.next_started:
                    if self.next_image is None:
                        self.result.reason = f"{self.stage_name(self.index)} ran to the end of " \
                                             "its model; no later stage was given"
                    break
                self.index += 1
        except Done:
            self.result.reason = "the kernel has control"
        except FaultStop as stop:
            self.result.verdict = "faults"
            self.result.faults.append(stop.record)
            self.result.stop = stop.stop
            rec = stop.record
            self.result.reason = (f"{rec.stage}: {rec.access} at {rec.address:#x} "
                                  f"({rec.memory_type or 'unmapped'}, {rec.attributes}): "
                                  f"{rec.summary}")
            page = rec.address & ~(PAGE - 1)
            fw.event("fault", page, page + PAGE, memory_type=fw.memmap.type_at(rec.address),
                     detail=f"{rec.access} at {rec.address:#x}: {rec.fault}", status="FAULT")
        except ReplayStop as stop:
            self.result.verdict = stop.verdict
            self.result.reason = stop.reason
            self.result.stop = stop.stop

    def start(self, i: int, how: str, *, explain: str = "", fix: str = "",
              handover: bool = False) -> None:
        loaded = self.loaded[i]
        assert loaded is not None
        target = loaded.entry
        if handover:
            kernel = self.chain[i].kernel
            if kernel is None or not kernel.handover_entry:
                raise UsageError(f"{self.chain[i].name} has no 64-bit EFI handover entry")
            # code32_start + 512 + handover_offset: the protected-mode code lies where the
            # loader put it (a copy of the whole file, a UKI section, or linuxefi's copy
            # from the protected-mode code on: Debian grub2 2.06 loader/i386/efi/linux.c
            # grub_linuxefi_boot jumps to kernel_mem + handover_offset + 512)
            target = loaded.at(kernel.handover_entry)
        self.fw.access(target, target + 1, AccessKind.FETCH,
                       f"{how}: jump to {self.chain[i].name} entry point",
                       explanation=explain, fix=fix)
        self.fw.stage = self.stage_name(i)
        self.fw.stage_index = i + 1
        self.fw.event(f"enter {self.chain[i].name}", target, target + PAGE,
                      memory_type=self.fw.memmap.type_at(target),
                      detail=f"entry point {target:#x} ({how})")

    def condition(self, name: str) -> bool:
        if name.startswith("!"):
            return not self.condition(name[1:])
        spec = CONDITIONS.get(name)
        if spec is None:
            raise UsageError(f"unknown condition {name!r}")
        if spec.needs_next and self.next_image is None:
            return False
        return spec.predicate(self)

    def steps(self, steps: Sequence[Step]) -> None:
        for step in steps:
            if not all(self.condition(c) for c in step.when):
                continue
            OPERATIONS[step.op].handler(self, step)
            if self.next_started:
                return

    # ---- what steps share -----------------------------------------------------------

    def shim_index(self, *, including_self: bool = False) -> int | None:
        for i in range(self.index + 1 if including_self else self.index):
            if self.result.stages[i].family == "shim":
                return i
        return None

    def version(self, i: int) -> tuple[int, ...] | None:
        return version_tuple(self.result.stages[i].version)

    def nx_required(self, shim: int) -> bool:
        """shim 16.1 set_shim_nx_policy (pe-relocate.c), Secure Boot on or off: shim's own
        image is NX_COMPAT and get_hsi_mem_info (memattrs.c) finds shim's code page read-only
        and a stack and a heap page (AllocatePool: EfiLoaderData, gnu-efi InitializeLib) NX.
        Without the memory attribute protocol shim reads the GCD descriptors through DXE
        services instead, which on edk2 carry no RO/XP (MemoryProtection.c applies both
        through gCpu->SetMemoryAttributes), so the policy stays off: hence ``map_installed``
        (the lab's strict-img-nomap case shows it)."""
        v = self.version(shim)
        if v is None or v < (16, 1) or not self.chain[shim].nx_compat:
            return False
        fw = self.fw
        loaded = self.loaded[shim]
        heap_nx = bool(fw.type_attribute(MemoryType.LOADER_DATA) & MemAttr.XP)
        sbase, send = fw.stack
        stack_nx = fw.permissions_text(sbase + PAGE, send)[2:] == "-"
        code_ro = bool(loaded and loaded.protected)
        return fw.map_installed and heap_nx and stack_nx and code_ro

    def size(self, value: object) -> int:
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
        if value == "self.image":
            return self.image.size_of_image
        if value in ("self.init_size", "next.init_size"):
            img = self.image if value == "self.init_size" else nxt
            if img is not None:
                k = img.kernel
                return max(k.init_size if k else 0, img.size_of_image)
        raise UsageError(f"loader model: cannot size {value!r} here")

    def range(self, name: str) -> tuple[int, int, MemoryType, LoadedImage | None]:
        if name == "self":
            li = self.loaded[self.index]
        elif name == "next":
            li = self.next_loaded
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

    def buffer(self, name: str, step: Step) -> Buffer:
        buf = self.buffers.get(name)
        if buf is None:
            raise ModelError(self.models[self.index].name, self.stage_name(self.index),
                             f"{step.op}: no buffer {name!r} allocated before it is used")
        return buf

    def check_fits(self, buf: Buffer, name: str, base: int, size: int, what: str) -> None:
        """A copy of ``size`` bytes at ``base`` must stay inside buffer ``name``: a model
        that writes past it is wrong, whatever the memory there would do."""
        if base < buf.base or base + size > buf.end:
            over = base + size - buf.end
            raise ModelError(
                self.models[self.index].name, self.stage_name(self.index),
                f"copy of {what} into {name} ({buf.base:#x}-{buf.end:#x}, "
                f"{buf.pages * PAGE:#x} bytes) overruns it by {over:#x} bytes")

    def regions(self, step: Step) -> list[tuple[int, int]]:
        start, end, _t, li = self.range(step.args["range"])
        region = step.args.get("region", "all")
        if region == "all":
            return [(start, end)]
        buf = self.buffers.get(step.args["range"])
        image = li.image if li is not None else buf.image if buf is not None else None
        if image is None:
            raise UsageError(f"region {region!r} needs an image range (self, next, or a "
                             "buffer an image was relocated into)")
        at = li.at if li is not None else (lambda rva: start + rva)
        out = []
        for s in image.sections:
            if (region == "code" and s.execute) or (region == "data" and not s.execute):
                lo = at(s.virtual_address)
                out.append((lo, lo + ((s.memory_size + PAGE - 1) & ~(PAGE - 1))))
        return out

    def request(self, base: int, size: int, grant: str, revoke: str, what: str,
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


def _note(step: Step) -> str:
    return f" ({step.note})" if step.note else ""


def section_request(s: Section) -> tuple[str, str]:
    grant = "r" + ("w" if s.write else "") + ("x" if s.execute else "")
    revoke = "".join(p for p in "wx" if p not in grant)
    return grant, revoke


# ---- operations --------------------------------------------------------------------------


@operation("run")
def _run(r: Runner, step: Step) -> None:
    """The stage's own code runs: it writes its writable sections (globals, .bss)."""
    li = r.loaded[r.index]
    assert li is not None
    for s in r.image.sections:
        if s.write and s.memory_size:
            lo = li.at(s.virtual_address)
            # what lies past the memory it was loaded into (the BSS of an image a loader read
            # as a file) is not this code's to write before it relocates itself
            hi = min(lo + s.memory_size, li.end)
            if hi <= lo:
                continue
            r.fw.access(lo, hi, AccessKind.WRITE,
                        f"{r.image.name} writes its {s.name}",
                        explanation=step.explain, fix=step.fix)


@operation("allocate", required=("name", "type", "size"),
           optional=("align", "pool", "max_address"))
def _allocate(r: Runner, step: Step) -> None:
    """AllocatePages (AllocatePool with ``pool``) of ``size`` bytes of memory ``type``,
    kept as buffer ``name``; ``align`` and ``max_address`` (AllocateMaxAddress) as given."""
    fw, a = r.fw, step.args
    mtype = MemoryType.parse(a["type"])
    size = r.size(a["size"])
    align = a.get("align", PAGE)
    if align == "next":
        nxt = r.next_image
        align = max(nxt.section_alignment, PAGE) if nxt else PAGE
    if a.get("pool"):
        base = fw.allocate_pool(mtype, size, a["name"] + _note(step))
    else:
        base = fw.allocate_pages(mtype, pages_for(size), a["name"] + _note(step),
                                 align=int(align), max_address=a.get("max_address"))
    r.buffers[a["name"]] = Buffer(base, pages_for(size), mtype)


@operation("claim", required=("name", "size"))
def _claim(r: Runner, step: Step) -> None:
    """Take free memory without AllocatePages (GRUB's relocator after ExitBootServices): the
    lowest EfiConventionalMemory range that fits, still mapped as free memory is."""
    fw, a = r.fw, step.args
    size = r.size(a["size"])
    pages = pages_for(size)
    free = next((d for d in fw.memmap if d.type is MemoryType.CONVENTIONAL
                 and d.pages >= pages), None)
    if free is None:
        raise r.refuse("out-of-resources", f"no free memory of {size:#x} bytes to claim")
    r.buffers[a["name"]] = Buffer(free.start, pages, MemoryType.CONVENTIONAL)
    fw.event(f"claim {a['name']}{_note(step)}", free.start, free.start + pages * PAGE,
             memory_type=MemoryType.CONVENTIONAL,
             detail="free memory taken without AllocatePages: it keeps the "
             "attributes of EfiConventionalMemory")


@operation("write", required=("range",))
@operation("execute", required=("range",))
def _touch(r: Runner, step: Step) -> None:
    """``write``: writes over a range (a buffer, ``self``, ``next``); ``execute``: an
    instruction fetch at its start, or at the entry point of an image range."""
    fw, a, op = r.fw, step.args, step.op
    start, end, _t, li = r.range(a["range"])
    kind = AccessKind.WRITE if op == "write" else AccessKind.FETCH
    if op == "execute":
        # code runs from an image's entry point, or from the start of a buffer
        start = li.entry if li is not None else start
        end = start + 1
    fw.access(start, end, kind, f"{op} {a['range']}{_note(step)}",
              explanation=step.explain, fix=step.fix)
    if op == "execute":
        detail = f"instruction fetch at {start:#x}"
        start &= ~(PAGE - 1)
        end = start + PAGE
    else:
        detail = ""
    fw.event(f"{op} {a['range']}{_note(step)}", start, end,
             memory_type=fw.memmap.type_at(start), detail=detail)


@operation("place", required=("into",), optional=("relocate",))
def _place(r: Runner, step: Step) -> None:
    """The stage's own PE loader: place the next image's sections in buffer ``into`` at the
    SectionAlignment-aligned base (writes over SizeOfImage, then the base-relocation
    pages). ``into`` = ".name": the next image already lies in this stage's section .name
    (a UKI's .linux) and runs there."""
    nxt = r.next_image
    if nxt is None:
        return
    into = step.args["into"]
    if into.startswith("."):
        _place_in_section(r, nxt, into)
        return
    buf = r.buffer(into, step)
    sa = max(nxt.section_alignment, 1)
    base = (buf.base + sa - 1) // sa * sa
    size = pages_for(nxt.size_of_image) * PAGE
    r.check_fits(buf, into, base, size, f"{nxt.name} (SizeOfImage {nxt.size_of_image:#x} at "
                 f"its {sa:#x} SectionAlignment)")
    what = f"{r.stage_name(r.index)} copies {nxt.name} into {into}"
    r.fw.access(base, base + size, AccessKind.WRITE, what,
                explanation=step.explain, fix=step.fix)
    if step.args.get("relocate", True):
        for page in nxt.reloc_pages:
            r.fw.access(base + page, base + page + PAGE, AccessKind.WRITE,
                        f"relocate {nxt.name}", explanation=step.explain, fix=step.fix)
    r.loaded[r.index + 1] = LoadedImage(
        nxt, base, pages_for(nxt.size_of_image), buf.memory_type, buf.memory_type, False,
        r.stage_name(r.index))
    r.fw.event(f"place {nxt.name}", base, base + size, memory_type=buf.memory_type,
               detail=f"{len(nxt.sections)} sections, {len(nxt.reloc_pages)} "
               "relocation pages")


@operation("read", required=("into",), optional=("from",))
def _read(r: Runner, step: Step) -> None:
    """The next file read into buffer ``into`` as it lies in the file, not placed as a PE
    image: from its start, or (``from = "protected_mode"``) from a bzImage's
    protected-mode code on, (setup_sects + 1) * 512, as linuxefi copies it. The image then
    runs there: its RVAs are taken as file offsets (as the arm64 Image and the bzImage lay
    out their PE sections)."""
    nxt = r.next_image
    if nxt is None:
        return
    into = step.args["into"]
    buf = r.buffer(into, step)
    skip = 0
    if step.args.get("from", "file") == "protected_mode":
        if nxt.kernel is None or not nxt.kernel.protected_mode_offset:
            raise ModelError(r.models[r.index].name, r.stage_name(r.index),
                             f"read from the protected-mode code of {nxt.name}, which is "
                             "no bzImage")
        skip = nxt.kernel.protected_mode_offset
    size = nxt.file_size - skip
    what = f"{nxt.name} from file offset {skip:#x} ({size:#x} bytes)"
    r.check_fits(buf, into, buf.base, size, what)
    r.fw.access(buf.base, buf.base + size, AccessKind.WRITE,
                f"{r.stage_name(r.index)} reads {nxt.name} into {into}",
                explanation=step.explain, fix=step.fix)
    r.loaded[r.index + 1] = LoadedImage(
        nxt, buf.base, buf.pages, buf.memory_type, buf.memory_type, False,
        r.stage_name(r.index), file_offset=skip)
    r.fw.event(f"read {nxt.name}{_note(step)}", buf.base, buf.base + size,
               memory_type=buf.memory_type, detail=f"file bytes {skip:#x}-{nxt.file_size:#x}, "
               "as in the file")


@operation("relocate", required=("into",))
def _relocate(r: Runner, step: Step) -> None:
    """The running image copies itself (its file bytes: arm64 ``kernel_size = _edata -
    _text``) into buffer ``into`` and will run there; ``region`` steps on that buffer then
    address its sections."""
    me = r.loaded[r.index]
    assert me is not None
    into = step.args["into"]
    buf = r.buffer(into, step)
    size = min(r.image.file_size, r.image.size_of_image)
    r.check_fits(buf, into, buf.base, size, f"{r.image.name} ({size:#x} bytes)")
    r.fw.access(buf.base, buf.base + size, AccessKind.WRITE,
                f"{r.image.name} copies itself into {into}", explanation=step.explain,
                fix=step.fix)
    buf.image = r.image
    r.fw.event(f"relocate {r.image.name}{_note(step)}", buf.base, buf.base + size,
               memory_type=buf.memory_type, detail=f"from {me.base:#x}")


def _place_in_section(r: Runner, nxt: StageImage, name: str) -> None:
    """The next image is this stage's own section ``name`` (a UKI's .linux as the firmware
    loaded the UKI): it runs there, in the UKI's memory and with its permissions."""
    me = r.loaded[r.index]
    section = next((s for s in r.image.sections if s.name == name), None)
    if me is None or section is None:
        raise UsageError(f"place: {r.image.name} has no loaded section {name}")
    base = me.base + section.virtual_address
    r.loaded[r.index + 1] = LoadedImage(
        nxt, base, pages_for(section.memory_size), me.code_type, me.data_type, me.protected,
        r.stage_name(r.index))
    r.fw.event(f"{nxt.name} runs inside {r.image.name} {name}", base,
               base + section.memory_size, memory_type=r.fw.memmap.type_at(base),
               detail="not copied: the section as the firmware loaded it")


@operation("attrs", required=("range", "grant", "revoke"), optional=("unaligned",))
def _attrs(r: Runner, step: Step) -> None:
    """A loader's memory-attribute request (grant, revoke) translated to Set/Clear calls the
    way shim's and grub's helpers do it (docs/reference/wx-model.md §6.3)."""
    a = step.args
    start, end, _t, _li = r.range(a["range"])
    r.request(start, end - start, a["grant"], a["revoke"], f"{a['range']}{_note(step)}",
              a.get("unaligned", "call"))


@operation("section_attrs", required=("into", "style"))
def _section_attrs(r: Runner, step: Step) -> None:
    """The same per section of the next image, as ``style``'s code does it."""
    style = step.args["style"]
    li = r.next_loaded
    if li is None:
        return
    for s in li.image.sections:
        if not s.memory_size:
            continue
        if style in ("shim-15.8", "grub-nx") and not s.read:
            continue  # shim skips sections without MEM_READ: they stay RW-/NX (inferred)
        grant, revoke = section_request(s)
        if "x" in grant and "w" in grant and r.condition("nx_required"):
            r.fw.event("refused", 0, 0, status="UNSUPPORTED",
                       detail=f"section {s.name} is W+X and MokPolicy requires NX")
            raise r.refuse("wx-section", f"{li.image.name} section {s.name} is writable "
                           "and executable (MokPolicy NX)")
        lo = li.at(s.virtual_address)
        size = s.memory_size
        unaligned = "call"
        if style == "shim-15.6":
            if size % PAGE:  # update_mem_attrs returns early: the section keeps RW-/NX
                r.fw.event(f"{s.name}: size {size:#x} not page-multiple, silently "
                           "skipped (shim 15.6/15.7)", lo, lo + size)
                continue
        else:
            size = ((lo + size + PAGE - 1) & ~(PAGE - 1)) - lo
            if style == "grub-nx":
                unaligned = "skip"
        r.request(lo, size, grant, revoke, f"{li.image.name} {s.name}", unaligned)


@operation("set", required=("range", "attributes"), optional=("region",))
@operation("clear", required=("range", "attributes"), optional=("region",))
@operation("dxe_assign", required=("range", "attributes"), optional=("region",))
def _attributes_call(r: Runner, step: Step) -> None:
    """``set``/``clear``: plain EFI_MEMORY_ATTRIBUTE_PROTOCOL calls; ``dxe_assign``: DXE
    services SetMemorySpaceAttributes (assigns the access bits; where MAP is absent).
    ``region`` of an image range: all, code (executable sections) or data."""
    fw, a = r.fw, step.args
    attrs = parse_attrs(a["attributes"])
    for lo, hi in r.regions(step):
        what = f"{a['range']} {a.get('region', '')}".strip() + _note(step)
        if step.op == "set":
            fw.map_set(lo, hi - lo, attrs, what)
        elif step.op == "clear":
            fw.map_clear(lo, hi - lo, attrs, what)
        else:
            fw.assign(lo, hi - lo, attrs, f"DXE SetMemorySpaceAttributes {what}",
                      fw.memmap.type_at(lo))


@operation("remap_image", required=("range",))
def _remap_image(r: Runner, step: Step) -> None:
    """efi_remap_image (linux libstub efi-stub-helper.c) over an image range or a buffer an
    image was relocated into: the code region, from the image base to the end of its last
    executable section (the headers included), set read-only; then XP cleared from it when
    GetMemoryAttributes found the whole region XP, else XP set on the rest. Without the
    memory attribute protocol, or when GetMemoryAttributes fails, it does nothing more."""
    fw, name = r.fw, step.args["range"]
    start, end, _t, li = r.range(name)
    buf = r.buffers.get(name)
    image = li.image if li is not None else buf.image if buf is not None else None
    if image is None:
        raise UsageError(f"remap_image: {name} holds no image (self, next, or a buffer an "
                         "image was relocated into)")
    what = f"{name}{_note(step)}"
    if not fw.map_installed:
        fw.event(f"efi_remap_image {what}: no protocol, nothing done", start, end)
        return
    code_end = max((s.virtual_address + s.memory_size for s in image.sections if s.execute),
                   default=0)
    base = li.at(0) if li is not None else start
    code = ((base + code_end + PAGE - 1) & ~(PAGE - 1)) - start
    status, attr = fw.map_get(start, end - start)
    if status != "SUCCESS":
        fw.event(f"efi_remap_image {what}: GetMemoryAttributes {status}, nothing done",
                 start, end, status=status)
        return
    if fw.map_set(start, code, MemAttr.RO, f"{what}: code read-only") != "SUCCESS":
        return
    if attr & MemAttr.XP:
        fw.map_clear(start, code, MemAttr.XP, f"{what}: code executable")
    elif end > start + code:
        fw.map_set(start + code, end - start - code, MemAttr.XP, f"{what}: data non-executable")


@operation("load_image", optional=("source",))
def _load_image(r: Runner, step: Step) -> None:
    """Firmware LoadImage of the next image (DXE image protection applies)."""
    nxt = r.next_image
    if nxt is None:
        return
    r.loaded[r.index + 1] = r.fw.load_image(nxt, source=step.args.get("source", "unknown"),
                                            loaded_by=r.stage_name(r.index))


@operation("shim_load")
def _shim_load(r: Runner, step: Step) -> None:
    """A later stage's LoadImage, hooked by shim >= 16 (loader-proto.c): shim's own PE
    loader (its model's loader_steps) loads the image."""
    shim = r.shim_index()
    if shim is None:
        raise UsageError("shim_load: no shim stage in the chain")
    saved = r.fw.stage, r.fw.stage_index
    r.fw.stage = f"{r.stage_name(shim)} (LoadImage hook)"
    r.fw.stage_index = shim + 1
    try:
        r.steps(r.models[shim].loader_steps)
    finally:
        r.fw.stage, r.fw.stage_index = saved


@operation("start", optional=("entry",))
def _start(r: Runner, step: Step) -> None:
    """Jump to the next stage's entry point (after load_image or place); entry =
    "handover": the bzImage's 64-bit EFI handover entry instead of the PE entry point."""
    if r.next_image is None:
        return
    if r.loaded[r.index + 1] is None:
        raise UsageError(f"loader model {r.models[r.index].name}: start before "
                         "the next image is loaded")
    r.start(r.index + 1, f"{r.stage_name(r.index)} starts it" + _note(step),
            explain=step.explain, fix=step.fix, handover=step.args.get("entry") == "handover")
    r.next_started = True


@operation("free", required=("range",))
def _free(r: Runner, step: Step) -> None:
    """FreePages of a range."""
    start, end, _t, _li = r.range(step.args["range"])
    r.fw.free_pages(start, (end - start) // PAGE, step.args["range"] + _note(step))
    r.buffers.pop(step.args["range"], None)


@operation("exit_boot_services")
def _exit_boot_services(r: Runner, step: Step) -> None:
    """ExitBootServices: boot-services calls after it end the replay."""
    r.fw.exit_boot_services()


@operation("refuse", required=("reason",), optional=("code",))
def _refuse(r: Runner, step: Step) -> None:
    """Stop with verdict "refused": ``reason`` is printed, ``code`` (firmware.STOP_CODES)
    says why as data."""
    reason = step.args["reason"]
    r.fw.event("refused", 0, 0, detail=reason, status="SECURITY_VIOLATION")
    raise r.refuse(step.args.get("code", "model-refusal"), reason)


@operation("done")
def _done(r: Runner, step: Step) -> None:
    """The OS kernel has control: the chain booted."""
    r.fw.event("kernel has control", 0, 0, detail=step.note)
    r.result.reason = "the kernel has control"
    raise Done


# ---- conditions --------------------------------------------------------------------------


@condition("secure_boot")
def _secure_boot(r: Runner) -> bool:
    """Secure Boot is on."""
    return r.result.secure_boot


@condition("map")
def _map(r: Runner) -> bool:
    """EFI_MEMORY_ATTRIBUTE_PROTOCOL is installed."""
    return r.fw.map_installed


@condition("next")
def _next(r: Runner) -> bool:
    """There is a next stage."""
    return r.next_image is not None


@condition("x64")
def _x64(r: Runner) -> bool:
    """The chain is x86-64."""
    return r.result.arch == "x64"


@condition("aa64")
def _aa64(r: Runner) -> bool:
    """The chain is AArch64."""
    return r.result.arch == "aa64"


@condition("heap_nx")
def _heap_nx(r: Runner) -> bool:
    """The firmware makes EfiLoaderData non-executable."""
    return bool(r.fw.type_attribute(MemoryType.LOADER_DATA) & MemAttr.XP)


@condition("self.protected")
def _self_protected(r: Runner) -> bool:
    """The firmware section-protected this stage at LoadImage."""
    me = r.loaded[r.index]
    return bool(me and me.protected)


@condition("self.nx_compat")
def _self_nx_compat(r: Runner) -> bool:
    """This stage is NX_COMPAT."""
    return r.image.nx_compat


@condition("self.linux_above_4g")
def _self_linux_above_4g(r: Runner) -> bool:
    """This stage's .linux section (a UKI's kernel) ends above 4 GiB."""
    me = r.loaded[r.index]
    linux = next((s for s in r.image.sections if s.name == ".linux"), None)
    return bool(me and linux and me.base + linux.virtual_address + linux.memory_size > 1 << 32)


@condition("stub_handover_copy")
def _stub_handover_copy(r: Runner) -> bool:
    """systemd-stub copies a handover kernel first. linux_exec_efi_handover: from 254
    (PR #27474) the kernel is copied into EfiLoaderCode below 4 GiB when the UKI's .linux
    lies above 4 GiB; from 257 (PR #33882) also when its SizeOfImage exceeds the file
    (room for the BSS). Before 254 (and for a stub of unknown version) it runs inside
    .linux."""
    stub = r.version(r.index) or ()
    return (stub >= (254,) and r.condition("self.linux_above_4g")) or (
        stub >= (257,) and r.condition("next.bss"))


@condition("stub_loads_kernel")
def _stub_loads_kernel(r: Runner) -> bool:
    """systemd-stub >= 258 (PR #37372) copies the kernel's sections into EfiLoaderCode
    itself and calls its entry point, unless Secure Boot is on and shim is there (its
    loader protocol, or its security override for firmware LoadImage)."""
    stub = r.version(r.index) or ()
    return stub >= (258,) and not (r.result.secure_boot and r.shim_index() is not None)


@condition("shim_lock")
def _shim_lock(r: Runner) -> bool:
    """An earlier stage is shim (its shim_lock protocol is there)."""
    return r.shim_index() is not None


@condition("shim_hooks")
def _shim_hooks(r: Runner) -> bool:
    """An earlier shim >= 16 hooked LoadImage (Secure Boot on)."""
    shim = r.shim_index()
    if shim is None or not r.result.secure_boot:
        return False
    v = r.version(shim)
    return v is not None and v >= (16, 0)


@condition("nx_required")
def _nx_required(r: Runner) -> bool:
    """shim's MokPolicy requires NX_COMPAT (16.1 auto policy); shim's own policy applies
    while shim itself loads the next stage, too."""
    own = r.shim_index(including_self=True)
    return own is not None and r.nx_required(own)


#: arm64 MIN_KIMG_ALIGN (arch/arm64/include/asm/boot.h: SZ_2M)
_MIN_KIMG_ALIGN = 2 << 20


@condition("self.kimg_aligned")
def _self_kimg_aligned(r: Runner) -> bool:
    """This arm64 Image lies at a MIN_KIMG_ALIGN (2 MiB) boundary, where the stub runs it in
    place (libstub/arm64-stub.c :: handle_kernel_image: without a KASLR seed efi_nokaslr is
    set and min_kimg_align() is 2 MiB; with one the stub always moves the kernel, which the
    model does not assume: QEMU's AAVMF is taken to have no EFI_RNG_PROTOCOL seed)."""
    me = r.loaded[r.index]
    return bool(me and me.at(0) % _MIN_KIMG_ALIGN == 0)


@condition("self.remap_image")
def _self_remap_image(r: Runner) -> bool:
    """This arm64 kernel's stub has efi_remap_image (the memory attribute protocol on arm64,
    Linux 6.2: the 6.2 EFI pull 'use the memory attributes protocol on arm64'); older stubs
    leave the permissions as they find them."""
    k = r.image.kernel
    return bool(k and k.version and k.version >= (6, 2))


@condition("self.stub_text_ro")
def _self_stub_text_ro(r: Runner) -> bool:
    """This x86 stub makes the kernel text read-only before clearing XP
    (efi_adjust_memory_range_protection, 'x86/efistub: Remap kernel text read-only before
    dropping NX attribute', Linux 6.8, backported with the 4 KiB PE layout series to
    6.1.y/6.6.y): a kernel of 6.8 or later, or one with 4 KiB-aligned PE sections."""
    k = r.image.kernel
    return bool(k and ((k.version and k.version >= (6, 8))
                       or r.image.section_alignment >= PAGE))


@condition("next.kernel", needs_next=True)
def _next_kernel(r: Runner) -> bool:
    """The next stage is a Linux kernel (bzImage / arm64 Image / zboot header)."""
    return r.chain[r.index + 1].kernel is not None


@condition("next.nx_compat", needs_next=True)
def _next_nx_compat(r: Runner) -> bool:
    """The next image is NX_COMPAT."""
    return r.chain[r.index + 1].nx_compat


@condition("next.wx_sections", needs_next=True)
def _next_wx_sections(r: Runner) -> bool:
    """A section of the next image is writable and executable."""
    return bool(r.chain[r.index + 1].wx_sections)


@condition("next.handover", needs_next=True)
def _next_handover(r: Runner) -> bool:
    """The next image is a bzImage with the 64-bit EFI handover entry."""
    k = r.chain[r.index + 1].kernel
    return bool(k and k.handover_64)


@condition("next.loadfile2", needs_next=True)
def _next_loadfile2(r: Runner) -> bool:
    """Kernel MajorImageVersion >= 1 (LoadFile2 initrd, LoadImage path ok)."""
    return r.chain[r.index + 1].major_image_version >= 1


@condition("next.bss", needs_next=True)
def _next_bss(r: Runner) -> bool:
    """The next image's SizeOfImage exceeds its file (a bzImage's BSS)."""
    nxt = r.chain[r.index + 1]
    return nxt.size_of_image > nxt.file_size


@condition("next.signed", needs_next=True)
def _next_signed(r: Runner) -> bool:
    """The next image carries an Authenticode signature."""
    return r.chain[r.index + 1].signed


@condition("next.sbat_revoked", needs_next=True)
def _next_sbat_revoked(r: Runner) -> bool:
    """The shim loading the next image revokes it by SBAT: a row of shim's automatic
    SbatLevel (its .sbatlevel) names a component of the next image's .sbat with a higher
    generation (rhboot/shim sbat.c verify_sbat_helper; an SbatLevel variable already in the
    store is not modelled)."""
    shim = r.shim_index(including_self=True)
    if shim is None:
        return False
    level = dict(r.chain[shim].sbat_level)
    return any(e.generation < level.get(e.component, 0) for e in r.chain[r.index + 1].sbat)


@condition("next.protected", needs_next=True)
def _next_protected(r: Runner) -> bool:
    """The firmware section-protected the next image at LoadImage."""
    li = r.loaded[r.index + 1]
    return bool(li and li.protected)
