"""Loader models as data, and the registry of the operations and conditions their steps
name: each declared once, by name.

A loader model's steps (``policies/loaders/*.toml``, read by :mod:`fwtools.uefi.loaders`)
name an operation (``op``) and the conditions (``when``) under which it runs.
:mod:`fwtools.uefi.operations` registers each with :func:`operation` and :func:`condition`,
beside the code that interprets it: :data:`OPERATIONS` maps an operation to its handler and
the arguments it needs and may take, :data:`CONDITIONS` maps a condition to its predicate,
and :data:`PARAMETERS` says what each argument's value may be. :func:`check_step` checks a
model's step against these tables. Import the tables from :mod:`fwtools.uefi.operations`,
which fills them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from fwtools._base.record import Record
from fwtools.errors import UsageError
from fwtools.paging.model import MemAttr
from fwtools.uefi.firmware import ACCESS, STOP_CODES
from fwtools.uefi.memtypes import MemoryType


class ModelError(UsageError):
    """A loader model did something its component cannot: a copy larger than the buffer it
    goes into, say. The replay stops with this error rather than simulate a write into
    memory the real loader never touches (which could create or hide a fault)."""

    def __init__(self, model: str, stage: str, detail: str) -> None:
        super().__init__(f"loader model {model} (stage {stage}): {detail}")
        self.model = model
        self.stage = stage
        self.detail = detail


# ---- loader models as data (read by uefi/loaders.py, run by uefi/operations.py) --------

class Step(Record):
    """One step of a model: an operation (a key of ``operations.OPERATIONS``), its
    arguments, and the conditions (keys of ``operations.CONDITIONS``, ``!`` negates) that
    must all hold for it to run."""

    op: str
    args: dict[str, Any]
    when: tuple[str, ...] = ()
    note: str = ""
    explain: str = ""
    fix: str = ""


class Match(Record):
    min_version: tuple[int, ...] | None = None
    below_version: tuple[int, ...] | None = None
    vendors: tuple[str, ...] = ()
    arch: str | None = None
    kernel: str | None = None
    min_section_alignment: int | None = None
    max_section_alignment: int | None = None
    nx_compat: bool | None = None


class LoaderModel(Record):
    _uncompared = frozenset({"path"})  # field(compare=False)
    name: str
    family: str
    description: str
    priority: int
    match: Match
    steps: tuple[Step, ...]
    loader_steps: tuple[Step, ...] = ()
    sources: tuple[str, ...] = ()
    path: str = ""
    #: a real-firmware case in CI exercises this model: the e2e test ids that do
    #: (tests/uefi/test_model_verification.py checks they exist and use the model)
    verified_by: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        return bool(self.verified_by)


# ---- the registry ------------------------------------------------------------------------

#: handler(runner, step) and predicate(runner); the runner is operations.Runner
Handler = Callable[[Any, Step], None]
Predicate = Callable[[Any], bool]


class Operation(Record):
    """A step kind: the arguments it needs and may take, and the code that runs it."""

    name: str
    required: frozenset[str]
    optional: frozenset[str]
    handler: Handler
    doc: str


class Condition(Record):
    """A ``when`` name: the predicate over the replay's state that decides it."""

    name: str
    predicate: Predicate
    doc: str
    needs_next: bool  # false whenever there is no next stage


OPERATIONS: Final[dict[str, Operation]] = {}
CONDITIONS: Final[dict[str, Condition]] = {}
#: Arguments every step may carry, whatever its operation.
COMMON_ARGS: Final = frozenset({"op", "when", "note", "explain", "fix"})


def _doc(fn: Callable[..., object]) -> str:
    """The docstring as one line (``inspect`` costs more to import than this needs)."""
    return " ".join((fn.__doc__ or "").split())


def operation(name: str, *, required: Sequence[str] = (),
              optional: Sequence[str] = ()) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of step kind ``name``; its
    docstring documents the operation."""

    def register(fn: Handler) -> Handler:
        unknown = (set(required) | set(optional)) - PARAMETERS.keys()
        if name in OPERATIONS or unknown:
            raise ValueError(f"operation {name}: registered twice or undeclared "
                             f"parameters {sorted(unknown)}")
        OPERATIONS[name] = Operation(name, frozenset(required), frozenset(optional), fn,
                                     _doc(fn))
        return fn

    return register


def condition(name: str, *, needs_next: bool = False) -> Callable[[Predicate], Predicate]:
    """Register the decorated function as the predicate of condition ``name``."""

    def register(fn: Predicate) -> Predicate:
        if name in CONDITIONS:
            raise ValueError(f"condition {name} registered twice")
        CONDITIONS[name] = Condition(name, fn, _doc(fn), needs_next)
        return fn

    return register


# ---- argument values ---------------------------------------------------------------------

SIZES: Final = ("self.image", "next.image", "next.image_padded", "next.file", "self.init_size",
                "next.init_size")
REGIONS: Final = ("all", "code", "data")
SECTION_STYLES: Final = ("shim-15.6", "shim-15.8", "grub-nx")


def _choice(*allowed: str) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"

    return check


def _text(value: object) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty string"


def _count(value: object, *, positive: bool = False) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= int(positive)


def _size(value: object) -> str | None:
    if _count(value) or value in SIZES:
        return None
    return f"must be a byte count or one of {', '.join(SIZES)}"


def _align(value: object) -> str | None:
    return None if _count(value, positive=True) or value == "next" else \
        "must be a byte count or \"next\""


def _address(value: object) -> str | None:
    return None if _count(value) else "must be an address"


def _entry(value: object) -> str | None:
    return None if value == "handover" else \
        "must be \"handover\" (or absent: the PE entry point)"


def _memory_type(value: object) -> str | None:
    if not isinstance(value, (str, int)):
        return "memory type must be a name or a number"
    try:
        MemoryType.parse(value)
    except UsageError as exc:
        return str(exc)
    return None


def _attributes(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string such as \"RO|XP\""
    try:
        parse_attrs(value)
    except UsageError as exc:
        return str(exc)
    return None


def _permissions(value: object) -> str | None:
    ok = isinstance(value, str) and set(value) <= set("rwx")
    return None if ok else "must be permission letters from \"rwx\" (or \"\")"


def _flag(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


#: argument -> check of its value (None when fine, else what is wrong)
PARAMETERS: Final[dict[str, Callable[[object], str | None]]] = {
    "name": _text,  # a buffer's name, used by later steps' range/into
    "type": _memory_type,  # an EFI memory type
    "size": _size,  # bytes, or a size taken from an image (SIZES)
    "align": _align,  # bytes, or "next": the next image's SectionAlignment
    "pool": _flag,  # AllocatePool rather than AllocatePages
    "max_address": _address,  # AllocateMaxAddress (0xFFFFFFFF: below 4 GiB)
    "range": _text,  # a buffer name, "self" or "next" (the image as loaded)
    "into": _text,  # a buffer name, or ".section" of this stage (a UKI's .linux)
    "relocate": _flag,  # apply base relocations after the copy (default true)
    "grant": _permissions,  # a memory-attribute request: what to allow ...
    "revoke": _permissions,  # ... and what to take away
    "unaligned": _choice("call", "skip"),  # what a request does with unaligned ranges
    "style": _choice(*SECTION_STYLES),  # whose per-section protection code
    "attributes": _attributes,  # RP|RO|XP
    "region": _choice(*REGIONS),  # of an image range: all, executable or other sections
    "source": _choice("fv", "unknown"),  # where LoadImage thinks the image comes from
    "entry": _entry,  # the bzImage EFI handover entry, not the PE entry
    "from": _choice("file", "protected_mode"),  # where a raw read of the next file starts
    "reason": _text,  # what the loader prints when it refuses
    "code": _choice(*STOP_CODES),  # why it refuses, as data (firmware.STOP_CODES)
}


def check_step(raw: Mapping[str, Any], where: str) -> Step:
    """A model step from its TOML table, checked against the registry; ``where`` names
    the file and the step in errors."""
    op = raw.get("op")
    spec = OPERATIONS.get(op) if isinstance(op, str) else None
    if spec is None:
        raise UsageError(f"{where}: unknown op {op!r} (one of {', '.join(OPERATIONS)})")
    keys = set(raw)
    missing = spec.required - keys
    extra = keys - spec.required - spec.optional - COMMON_ARGS
    if missing:
        raise UsageError(f"{where}: op {op} needs {', '.join(sorted(missing))}")
    if extra:
        raise UsageError(f"{where}: op {op} does not take {', '.join(sorted(extra))}")
    for key in sorted(keys - COMMON_ARGS):
        problem = PARAMETERS[key](raw[key])
        if problem is not None:
            if key == "type":  # MemoryType.parse's own words
                raise UsageError(f"{where}: {problem}")
            raise UsageError(f"{where}: op {op}: {key} {problem}")
    when = raw.get("when", [])
    bad = [c for c in when if not (isinstance(c, str) and c.removeprefix("!") in CONDITIONS)] \
        if isinstance(when, list) else [when]
    if bad:
        raise UsageError(f"{where}: when must list conditions, not {bad[0]!r} (one of "
                         f"{', '.join(CONDITIONS)}; \"!\" negates one)")
    for text in ("note", "explain", "fix"):
        if not isinstance(raw.get(text, ""), str):
            raise UsageError(f"{where}: {text} must be a string")
    args = {k: v for k, v in raw.items() if k not in COMMON_ARGS}
    return Step(spec.name, args, tuple(when), raw.get("note", ""), raw.get("explain", ""),
                raw.get("fix", ""))



def parse_attrs(text: str) -> MemAttr:
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
