"""Property test: the emulated firmware's effective page permissions against a naive per-page
model of the documented semantics (docs/reference/wx-model.md §3: the NX policy *assigns* the new
type's
attribute when a type transition changes it; §4: the memory attribute protocol sets/clears
only the named bits).
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from fwtools.paging import AccessKind, MemAttr
from fwtools.uefi.firmware import Firmware
from fwtools.uefi.memmap import PAGE
from fwtools.uefi.memtypes import MemoryType
from fwtools.uefi.profile import load_firmware

LC, LD, CONV = MemoryType.LOADER_CODE, MemoryType.LOADER_DATA, MemoryType.CONVENTIONAL
ACCESS = MemAttr.RP | MemAttr.RO | MemAttr.XP
ATTRS = st.sampled_from([MemAttr.RP, MemAttr.RO, MemAttr.XP, MemAttr.RO | MemAttr.XP,
                         MemAttr.RP | MemAttr.XP, ACCESS])

# (profile, arch, overrides): enforcing policies with the protocol, before the 202508 leak
# rule and without freed-page clearing, so every free really converts the pages
PROFILES = {
    "x64": ("ovmf-strict", {"edk2_release": 202502, "debug_clear_memory": False}),
    "aa64": ("armvirt-map", {"edk2_release": 202405}),
    "x64-compat": ("ovmf-compat", {"edk2_release": 202502, "debug_clear_memory": False}),
}

ops = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.sampled_from([LC, LD]), st.integers(1, 3)),
        st.tuples(st.just("free"), st.integers(0, 7)),
        st.tuples(st.just("set"), st.integers(0, 7), ATTRS),
        st.tuples(st.just("clear"), st.integers(0, 7), ATTRS),
    ),
    min_size=1,
    max_size=14,
)


def effective(attrs: MemAttr) -> tuple[bool, bool, bool]:
    present = not attrs & MemAttr.RP
    return present, present and not attrs & MemAttr.RO, present and not attrs & MemAttr.XP


@pytest.mark.parametrize("which", sorted(PROFILES))
@settings(max_examples=25, deadline=None)
@given(sequence=ops)
def test_page_permissions_follow_the_documented_semantics(which: str, sequence: list) -> None:
    name, overrides = PROFILES[which]
    profile = load_firmware(name).with_overrides(**overrides)
    fw = Firmware(profile, which[:3] if which.startswith("x64") else "aa64",  # type: ignore[arg-type]
                  secure_boot=False, log=lambda _e: None)
    assert fw.map_installed
    model: dict[int, MemAttr] = {}  # page -> access bits
    live: list[tuple[int, int, MemoryType]] = []  # allocations not yet freed

    def transition(old: MemoryType, new: MemoryType, base: int, pages: int) -> None:
        a, b = fw.type_attribute(old), fw.type_attribute(new)
        for p in range(base, base + pages * PAGE, PAGE):
            if a != b:
                model[p] = b  # assign: every access bit replaced
            elif p not in model:
                model[p] = fw.type_attribute(CONV)  # untouched free memory: the sweep's XP

    for op in sequence:
        if op[0] == "alloc":
            _, mtype, n = op
            base = fw.allocate_pages(mtype, n, "prop")
            for p in range(base, base + n * PAGE, PAGE):
                model.setdefault(p, fw.type_attribute(CONV))
            transition(CONV, mtype, base, n)
            live.append((base, n, mtype))
        elif not live:
            continue
        elif op[0] == "free":
            base, n, mtype = live.pop(op[1] % len(live))
            fw.free_pages(base, n, "prop")
            transition(mtype, CONV, base, n)
        else:
            _, i, attrs = op
            base, n, _t = live[i % len(live)]
            call = fw.map_set if op[0] == "set" else fw.map_clear
            assert call(base, n * PAGE, attrs, "prop") == "SUCCESS"
            for p in range(base, base + n * PAGE, PAGE):
                model[p] = model[p] | attrs if op[0] == "set" else model[p] & ~attrs

        for p, want in model.items():
            got = fw.pt.get_attributes(p)
            assert got is not None
            assert MemAttr(int(got.efi) & int(ACCESS)) == want, (hex(p), op)
            r, w, x = effective(want)
            perms = fw.permissions_text(p, p + PAGE)
            assert perms == ("r" if r else "-") + ("w" if w else "-") + ("x" if x else "-")
            assert (fw.check_access(p, p + 1, AccessKind.READ) is None) == r
            assert (fw.check_access(p, p + 1, AccessKind.WRITE) is None) == w
            assert (fw.check_access(p, p + 1, AccessKind.FETCH) is None) == x
