"""fwtools._base.jsontext: the same text as json.dumps(indent=2), for any value."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fwtools._base.jsontext import dumps_indented

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text())
keys = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
values = st.recursive(
    scalars,
    lambda inner: (st.lists(inner) | st.lists(inner).map(tuple)
                   | st.dictionaries(keys, inner)),
    max_leaves=40,
)


@given(values)
@settings(max_examples=400)
def test_same_text_as_json(value: Any) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


@pytest.mark.parametrize("value", [
    {"a": Colour.RED, "b": [Name("x"), 1.5, float("nan"), float("-inf")]},
    {1: "int key", None: "none key", False: [], 2.5: {}},
    [[[[[[[[[[]]]]]]]]]],
    {"deep": [{"x": [1, 2, {"y": "é\u2028\"\\"}]}]},
])
def test_unusual_values_are_jsons(value: Any) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)


def test_errors_are_jsons() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_indented(loop)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_indented({"x": object()})
    deep: Any = []
    for _ in range(300):
        deep = [deep]
    assert dumps_indented(deep) == json.dumps(deep, indent=2)
