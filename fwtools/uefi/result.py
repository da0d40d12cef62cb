"""What a boot-chain replay found: the stages and how sure each model is, the timeline,
the faults and why the chain stopped (rendered by :mod:`fwtools.report`), and the memory
views the HTML report draws. :mod:`fwtools.uefi.operations` fills a :class:`Replay`.
"""

from __future__ import annotations

from typing import Literal

from fwtools._base.record import Record, field
from fwtools.uefi.firmware import Event, FaultRecord, Firmware, Stop
from fwtools.uefi.profile import Arch, FirmwareProfile

__all__ = ["MemoryRange", "Replay", "StageInfo", "Verdict", "memory_view"]

Verdict = Literal["boots", "faults", "refused"]


class StageInfo(Record):
    index: int  # 0-based position in the chain; faults' stage_index is this + 1
    name: str  # "shim", "grub", "kernel" (unique within the chain)
    path: str
    model: str
    family: str
    version: str | None
    identified_by: str
    overridden: bool
    description: str
    #: "identified" (its facts matched the model), "override" (given by the caller) or
    #: "fallback" (nothing matched: a generic model stands in)
    model_basis: str = "identified"
    #: for a fallback: the facts that did not identify it
    unidentified: tuple[str, ...] = ()
    #: a real-firmware case in CI exercises the model (its TOML's verified_by)
    model_verified: bool = False


class MemoryRange(Record):
    """A run of memory with one type and one effective permission (for reports)."""

    start: int
    end: int
    memory_type: str | None
    permissions: str


class Replay(Record, frozen=False):
    firmware: FirmwareProfile
    arch: Arch
    secure_boot: bool
    stages: list[StageInfo]
    events: list[Event] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    verdict: Verdict = "boots"
    reason: str = ""
    #: who stopped the chain and why (a code), when the verdict is not ``boots``
    stop: Stop | None = None
    #: memory views after events (index into events -> ranges), when asked for
    snapshots: dict[int, list[MemoryRange]] = field(default_factory=dict)
    #: EFI_MEMORY_ATTRIBUTE_PROTOCOL as the replay had it: installed at boot (the profile's
    #: setting, if this edk2 release on this arch has the protocol at all), and at the end
    #: (Mu's compatibility mode uninstalls it)
    memory_attribute_protocol: bool = False
    memory_attribute_protocol_at_end: bool = False

    def stage_at(self, stage_index: int) -> StageInfo | None:
        """The stage of a 1-based ``stage_index`` (faults, stops); None for 0, the firmware."""
        return self.stages[stage_index - 1] if 0 < stage_index <= len(self.stages) else None


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
