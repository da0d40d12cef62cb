"""_base/record.Record: the dataclass behaviour fwtools relies on, without dataclass's cost."""

from __future__ import annotations

import builtins
import marshal
import pickle
from pathlib import Path

import pytest

from fwtools._base import record
from fwtools._base.record import FrozenRecordError, Record, field, fields_of, replace


class Point(Record):
    x: int
    y: int = 0
    offset: int = 0
    _uncompared = frozenset({"offset"})


class Checked(Record):
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


class Result(Record, frozen=False):
    valid: bool
    notes: list[str] = field(default_factory=list)


def test_construction_positional_keyword_and_defaults() -> None:
    assert Point(1) == Point(x=1) == Point(1, 0) == Point(1, y=0, offset=0)
    assert (Point(1, 2).x, Point(1, 2).y) == (1, 2)
    with pytest.raises(TypeError, match="missing argument 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 3 arguments"):
        Point(1, 2, 3, 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected or repeated"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="unexpected or repeated"):
        Point(1, z=2)  # type: ignore[call-arg]


def test_equality_hash_repr_and_uncompared_fields() -> None:
    a, b = Point(1, 2, offset=5), Point(1, 2, offset=9)
    assert a == b and hash(a) == hash(b)
    assert Point(1, 2) != Point(2, 1)
    assert repr(a) == "Point(x=1, y=2, offset=5)"
    assert Point(1) != Checked(1)  # another class is never equal, as for dataclasses
    assert Point.__match_args__ == ("x", "y", "offset")


def test_frozen_replace_and_fields() -> None:
    p = Point(1)
    with pytest.raises(FrozenRecordError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.x
    q = replace(p, y=7)
    assert (q.x, q.y, p.y) == (1, 7, 0)
    with pytest.raises(TypeError, match="no field z"):
        replace(p, z=1)
    assert fields_of(q) == {"x": 1, "y": 7, "offset": 0}


def test_post_init_runs_on_both_paths() -> None:
    with pytest.raises(ValueError):
        Checked(-1)
    with pytest.raises(ValueError):
        Checked(value=-1)


def test_mutable_records_and_factories() -> None:
    r, s = Result(True), Result(True)
    r.notes.append("x")
    r.valid = False
    assert s.notes == [] and r == Result(False, ["x"])
    with pytest.raises(TypeError):
        hash(r)


def test_pickle_round_trip() -> None:
    p = Point(1, 2, offset=3)
    back = pickle.loads(pickle.dumps(p))
    assert back == p and back.offset == 3


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="follows a default"):

        class Bad(Record):
            a: int = 0
            b: int  # type: ignore[misc]


def test_a_hot_class_gets_a_compiled_init_with_the_same_behaviour() -> None:
    class Hot(Record):
        a: int
        b: int = 2
        notes: list[int] = field(default_factory=list)
        _uncompared = frozenset({"notes"})

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    made = [Hot(i) for i in range(1000)]
    assert "__init__" in Hot.__dict__ and Hot.__init__ is not Record.__init__
    assert made[99] == Hot(99, 2) and made[0].notes is not made[1].notes
    assert Hot(1, b=3, notes=[1]) == Hot(a=1, b=3)
    with pytest.raises(ValueError):
        Hot(-1)
    with pytest.raises(TypeError):
        Hot()  # type: ignore[call-arg]
    with pytest.raises(FrozenRecordError):
        made[0].a = 1  # type: ignore[misc]

    class Child(Hot):  # a subclass is counted (and compiled) on its own
        c: int = 0

    assert Child(1, 2, [], 5).c == 5 and Child(1) != Hot(1)


def test_hot_comparisons_are_compiled_with_the_same_results() -> None:
    class Key(Record):
        a: int
        b: str = ""
        at: int = 0
        _uncompared = frozenset({"at"})

    class Empty(Record):
        pass

    keys = [Key(i % 5, "x", at=i) for i in range(1000)]
    assert len(set(keys)) == 5  # hashing past the threshold compiles __eq__/__hash__
    assert "__eq__" in Key.__dict__ and Key.__eq__ is not Record.__eq__
    assert Key(1, "x", 7) == Key(1, "x", 9) and Key(1) != Key(2) and Key(1) != (1, "")
    assert hash(Key(1, "y")) == hash(Key(1, "y", at=3))
    assert len({Empty() for _ in range(100)}) == 1
    with pytest.raises(TypeError):
        hash(Result(True))  # a mutable record is not hashable


def test_compiled_methods_are_cached_across_processes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A method's code comes from the cache when its source was compiled before (in this
    process or an earlier one), so a command's run calls compile() only for new sources."""
    cache = tmp_path / "__pycache__" / "record-methods"
    monkeypatch.setattr(record, "_CODE_CACHE_FILE", str(cache))
    monkeypatch.setattr(record, "_code_cache", None)
    monkeypatch.setattr(record.sys, "dont_write_bytecode", False)
    source = "def __init__(self, a):\n    _rec_set(self, 'a', a)\n"
    code = record._compiled(source)
    assert cache.is_file() and record._read_code_cache() == {source: code}

    def no_compile(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(record, "_code_cache", None)  # as a new process starts
    monkeypatch.setattr(builtins, "compile", no_compile)
    assert record._compiled(source) == code
    monkeypatch.undo()


@pytest.mark.parametrize("content", [b"", b"garbage", marshal.dumps([1, 2]),
                                     marshal.dumps({"x": 1})])
def test_an_unreadable_method_cache_is_ignored(
        content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "record-methods"
    cache.write_bytes(content)
    monkeypatch.setattr(record, "_CODE_CACHE_FILE", str(cache))
    assert record._read_code_cache() == {}
