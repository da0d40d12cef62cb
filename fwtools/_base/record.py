"""Frozen value classes that cost microseconds to define.

``@dataclass(frozen=True)`` generates and ``exec``s five methods per class when the module is
imported: about 0.4 ms per class on Python 3.11 (1 ms on a loaded machine), so a module with
fifteen of them spends more time defining its types than a command spends on its input
(issue 13, "start-up at the floor"). :class:`Record` gives the same behaviour from one
shared set of methods: subclass it and annotate the fields, with class-level defaults::

    class DecodedInteger(Record):
        kind: str
        value: int
        summary: str = ""

Instances are built positionally or by keyword like a dataclass's, compare equal when they
are of the same class with equal fields (fields named in ``_uncompared`` are left out, like
``field(compare=False)``), hash, print as ``Name(field=value, ...)`` and refuse attribute
assignment. A ``__post_init__`` runs after the fields are set, and may set derived fields
with ``object.__setattr__`` as it would on a frozen dataclass. :func:`replace` is
``dataclasses.replace``. Type checkers see the constructor through ``dataclass_transform``
(PEP 681).

A mutable default is given as ``field(default_factory=list)``, which calls the factory for
each instance, as ``dataclasses.field`` does. ``class Result(Record, frozen=False)`` makes a
mutable record (like ``@dataclass``: assignable, compared by value, not hashable).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import CodeType
from typing import Any, ClassVar, Final, TypeVar, cast, dataclass_transform

R = TypeVar("R", bound="Record")
T = TypeVar("T")


class _Factory:
    """A default made by calling ``factory`` for each instance (see :func:`field`)."""

    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory


def field(*, default_factory: Callable[[], T]) -> T:
    """A field whose default is ``default_factory()``, called for each new instance."""
    return cast(T, _Factory(default_factory))


class FrozenRecordError(AttributeError):
    """Assignment to a field of a :class:`Record` (``dataclasses.FrozenInstanceError``)."""


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Record:
    """Base of cheap frozen value classes (see the module docstring)."""

    __slots__ = ()
    # Filled in for each subclass by __init_subclass__.
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _compared: ClassVar[tuple[str, ...]] = ()
    _uncompared: ClassVar[frozenset[str]] = frozenset()
    _post_init: ClassVar[bool] = False
    _made: ClassVar[int] = -1  # instances made so far; -1 once __init__ is compiled
    _cmp: ClassVar[int] = -1  # comparisons and hashes so far; -1 once they are compiled

    def __init_subclass__(cls, *, frozen: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        namespace = cls.__dict__
        fields = list(cls._fields)
        defaults = dict(cls._defaults)
        seen_default = bool(defaults)
        # The class's own annotations (inspect.get_annotations would import inspect).
        own = namespace.get("__annotations__", {})
        for name, annotation in own.items():
            text = annotation if isinstance(annotation, str) else repr(annotation)
            if "ClassVar" in text:
                continue
            if name not in fields:
                fields.append(name)
            if name in namespace:
                value = namespace[name]
                defaults[name] = value
                seen_default = True
                if isinstance(value, _Factory):
                    delattr(cls, name)  # as dataclasses does: no class attribute
            else:
                defaults.pop(name, None)
                if seen_default and any(f in defaults for f in fields[:fields.index(name)]):
                    raise TypeError(f"non-default field {name!r} follows a default field in "
                                    f"{cls.__name__}")
        cls._fields = names = tuple(fields)
        cls._defaults = defaults
        uncompared = cls._uncompared
        cls._compared = tuple(f for f in names if f not in uncompared) if uncompared else names
        cls._post_init = hasattr(cls, "__post_init__")
        # Assigning a special method to a class is slow (CPython updates its slots), so the
        # shared methods are only re-assigned when a base compiled its own for its fields.
        if "__init__" in cls.__dict__:
            cls._made = -1  # a class's own __init__ is never replaced
        else:
            cls._made = 0
            if cls.__init__ is not Record.__init__:
                cls.__init__ = Record.__init__  # type: ignore[method-assign]
        if "__eq__" in cls.__dict__ or "__hash__" in cls.__dict__:
            cls._cmp = -1  # nor its own __eq__ or __hash__
        else:
            cls._cmp = 0
            if cls.__eq__ is not Record.__eq__:
                cls.__eq__ = Record.__eq__  # type: ignore[method-assign]
            if cls.__hash__ is not Record.__hash__:
                cls.__hash__ = Record.__hash__  # type: ignore[method-assign]
        setattr(cls, "__match_args__", names)  # noqa: B010 (not a declared name)
        if not frozen:
            cls.__setattr__ = object.__setattr__  # type: ignore[method-assign,assignment]
            cls.__delattr__ = object.__delattr__  # type: ignore[method-assign]
            cls.__hash__ = None  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if cls._made >= 0:
            # Count instances; a class that turns out hot gets a compiled __init__ (one
            # exec, once), so per-instance cost matches a dataclass's where it matters.
            cls._made += 1
            if cls._made >= _HOT:
                cls._made = -1
                cls.__init__ = _compile_init(cls)  # type: ignore[method-assign]
        _generic_init(self, args, kwargs)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._compared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        self._count_comparison()
        return self._values() == other._values()

    def __hash__(self) -> int:
        self._count_comparison()
        return hash(self._values())

    def _count_comparison(self) -> None:
        cls = type(self)
        if cls._cmp >= 0:
            cls._cmp += 1
            if cls._cmp >= _HOT:
                cls._cmp = -1
                eq, hash_ = _compile_comparison(cls)
                cls.__eq__ = eq  # type: ignore[method-assign]
                if cls.__hash__ is not None:  # a mutable record stays unhashable
                    cls.__hash__ = hash_  # type: ignore[method-assign]

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__qualname__}({inner})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"cannot delete field {name!r}")


# Fields are set as attributes (object.__setattr__, as frozen dataclasses do), never through
# ``self.__dict__``: touching an instance's __dict__ turns its attribute storage into a plain
# dict, and every later attribute read of it is then about twice as slow (CPython 3.11).
_setattr: Final = object.__setattr__

# Instances of one class after which its __init__ is compiled.
_HOT: Final = 64
_MISSING: Final = object()


def _generic_init(self: Record, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    fields = self._fields
    if not kwargs and len(args) == len(fields):  # the common case, kept fast
        for name, value in zip(fields, args, strict=True):
            _setattr(self, name, value)
        if self._post_init:
            self.__post_init__()  # type: ignore[attr-defined]
        return
    if len(args) > len(fields):
        raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, "
                        f"{len(args)} were given")
    values = dict(zip(fields, args, strict=False))
    for name in fields[len(args):]:
        if name in kwargs:
            values[name] = kwargs.pop(name)
        elif name in self._defaults:
            default = self._defaults[name]
            values[name] = default.factory() if isinstance(default, _Factory) else default
        else:
            raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
    if kwargs:
        raise TypeError(f"{type(self).__name__}() got unexpected or repeated arguments "
                        f"{', '.join(sorted(kwargs))}")
    for name, value in values.items():
        _setattr(self, name, value)
    if self._post_init:
        self.__post_init__()  # type: ignore[attr-defined]


def _compile_init(cls: type[Record]) -> Callable[..., None]:
    """An ``__init__`` for ``cls`` with its fields as parameters, as dataclasses writes."""
    namespace: dict[str, Any] = {"_MISSING": _MISSING, "_rec_set": _setattr}
    params, body = [], []
    for name in cls._fields:
        default = cls._defaults.get(name, _MISSING)
        if default is _MISSING:
            params.append(name)
            body.append(f"    _rec_set(self, {name!r}, {name})")
        elif isinstance(default, _Factory):
            namespace[f"_f_{name}"] = default.factory
            params.append(f"{name}=_MISSING")
            value = f"_f_{name}() if {name} is _MISSING else {name}"
            body.append(f"    _rec_set(self, {name!r}, {value})")
        else:
            namespace[f"_d_{name}"] = default
            params.append(f"{name}=_d_{name}")
            body.append(f"    _rec_set(self, {name!r}, {name})")
    if cls._post_init:
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(_compiled(source), namespace)  # the source holds field names only
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _compile_comparison(cls: type[Record]) -> tuple[Callable[..., Any], Callable[..., int]]:
    """``__eq__`` and ``__hash__`` for ``cls`` over its compared fields, as dataclasses
    writes them."""
    mine = "".join(f"self.{f}, " for f in cls._compared)
    theirs = "".join(f"other.{f}, " for f in cls._compared)
    source = (
        "def __eq__(self, other):\n"
        "    if other.__class__ is not self.__class__:\n"
        "        return NotImplemented\n"
        f"    return ({mine}) == ({theirs})\n"
        "def __hash__(self):\n"
        f"    return hash(({mine}))\n"
    )
    namespace: dict[str, Any] = {}
    exec(_compiled(source), namespace)  # the source holds field names only
    return namespace["__eq__"], namespace["__hash__"]


# Compiled methods are cached across processes, as the interpreter caches a module's
# bytecode: the first compile() of a process costs about 1 ms before any work (CPython
# builds its AST types then), each later one about 0.1 ms, and a command compiles the
# methods of its hot classes on every run. The cache maps each method's source to its code
# (marshal, in __pycache__ beside this file, named with the interpreter's cache tag); the
# source is the key, so an entry cannot go stale.
_CODE_CACHE_FILE: Final = os.path.join(
    os.path.dirname(__file__), "__pycache__", f"record-methods.{sys.implementation.cache_tag}"
)
_code_cache: dict[str, CodeType] | None = None


def _compiled(source: str) -> CodeType:
    global _code_cache
    if _code_cache is None:
        _code_cache = _read_code_cache()
    code = _code_cache.get(source)
    if code is None:
        code = _code_cache[source] = compile(source, "<fwtools record>", "exec")
        _write_code_cache(_code_cache)
    return code


def _read_code_cache() -> dict[str, CodeType]:
    import marshal

    try:
        with open(_CODE_CACHE_FILE, "rb") as f:
            cache = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(cache, dict):
        return {}
    return {k: v for k, v in cache.items() if isinstance(k, str) and isinstance(v, CodeType)}


def _write_code_cache(cache: dict[str, CodeType]) -> None:
    """Best effort, like the interpreter's .pyc writes (a read-only tree leaves it unwritten);
    concurrent writers each replace the file whole, and a lost entry is compiled again."""
    if sys.dont_write_bytecode:
        return
    import marshal

    from fwtools._base.atomic import atomic_write
    from fwtools.errors import FwError

    try:
        os.makedirs(os.path.dirname(_CODE_CACHE_FILE), exist_ok=True)
        atomic_write(_CODE_CACHE_FILE, marshal.dumps(cache))
    except (OSError, FwError, ValueError):
        pass


def replace(record: R, /, **changes: Any) -> R:
    """A copy of ``record`` with ``changes`` (``dataclasses.replace`` for a Record)."""
    cls = type(record)
    unknown = [c for c in changes if c not in cls._fields]
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    new = cls.__new__(cls)
    for f in cls._fields:  # fields only: not what a cached_property stored beside them
        _setattr(new, f, changes[f] if f in changes else getattr(record, f))
    if cls._post_init:
        new.__post_init__()  # type: ignore[attr-defined]
    return new


def fields_of(record: Record) -> dict[str, Any]:
    """The fields of ``record`` in declaration order (``dataclasses.asdict`` one level)."""
    return {f: getattr(record, f) for f in record._fields}
