"""Serializers: exact round trips, strict refusals, and the named-only pickle."""

from __future__ import annotations

import json as stdlib_json
import re
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datastore import serialize
from datastore.serialize import (
    NonSerializer,
    Stack,
    as_bytes_serializer,
    map_serializer,
    prettyjson,
)

EXACT: list[Any] = [
    "text", "ünï 😀", "", 0, -1, 2**63 - 1, 2**70, -(2**80), 1.5, -0.0, 1e300, True, False,
    None, [1, [2, [3]]], {"a": {"b": [None, 1.25]}}, {}, [],
    "12345678901234567890 digits in a string",
]


@pytest.mark.parametrize("value", EXACT)
def test_json_round_trips_exactly(value: Any) -> None:
    data = serialize.json.dumps(value)
    assert isinstance(data, bytes)
    back = serialize.json.loads(data)
    assert back == value and type(back) is type(value)
    text = serialize.json.loads(data.decode())  # SQL drivers hand values back as str
    assert text == value and type(text) is type(value)


@pytest.mark.parametrize(
    "value",
    [{1: "a"}, {"a": {2: "b"}}, float("nan"), [float("inf")], {1, 2}, b"bytes", object()],
)
def test_json_refuses_what_it_would_change(value: Any) -> None:
    with pytest.raises(TypeError):
        serialize.json.dumps(value)


def test_pretty_json_is_sorted_and_indented() -> None:
    data = prettyjson.dumps({"b": 1, "a": [1, 2]})
    assert data == b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    assert prettyjson.loads(data) == {"a": [1, 2], "b": 1}


def test_stack_and_map_serializer() -> None:
    class Zlib:
        def dumps(self, value: bytes) -> bytes:
            return zlib.compress(value)

        def loads(self, data: bytes) -> bytes:
            return zlib.decompress(data)

    stack = Stack([serialize.json, Zlib()])
    assert stack.loads(stack.dumps({"a": 1})) == {"a": 1}
    per_item = map_serializer(serialize.json)
    assert per_item.dumps([1, "a"]) == [b"1", b'"a"']
    assert per_item.loads([b"1", b'"a"']) == [1, "a"]
    assert NonSerializer().dumps(x := object()) is x


def test_bytes_serializer_option() -> None:
    assert as_bytes_serializer() is serialize.json
    assert as_bytes_serializer(stdlib_json) is serialize.json
    raw = as_bytes_serializer(None)
    assert raw.dumps(b"\x00\xff") == b"\x00\xff"
    with pytest.raises(TypeError, match="serializer=None"):
        raw.dumps("text")
    wrapped = as_bytes_serializer(NonSerializer())
    with pytest.raises(TypeError):
        wrapped.dumps(3)
    assert wrapped.dumps("é") == "é".encode()
    with pytest.raises(TypeError):
        as_bytes_serializer(object())


def test_pickle_only_by_name() -> None:
    assert serialize.pickle.loads(serialize.pickle.dumps({1, 2})) == {1, 2}
    assert as_bytes_serializer() is not serialize.pickle


def test_msgpack_round_trip() -> None:
    packer = serialize.msgpack()
    value = {"a": [1, 2.5, b"raw", None, True]}
    assert packer.loads(packer.dumps(value)) == value
    with pytest.raises(TypeError):
        packer.dumps(object())


@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "str"])
def test_json_loads_many_equals_loads_of_each(as_text: bool) -> None:
    """The batch decode keeps big integers exact, like loads, whichever item holds them."""
    datas: list[Any] = [serialize.json.dumps(v) for v in EXACT if v is not None]
    if as_text:
        datas = [d.decode("utf-8") for d in datas]
    datas.insert(2, None)  # absent items stay absent, in place
    expected = [None if d is None else serialize.json.loads(d) for d in datas]
    got = serialize.json.loads_many(datas)
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]
    assert 2**70 in got and -(2**80) in got  # not floats


def test_json_loads_many_without_long_digits_uses_the_fast_path() -> None:
    datas = [serialize.json.dumps({"n": i, "x": 1.5}) for i in range(50)]
    assert serialize.json.loads_many(datas) == [{"n": i, "x": 1.5} for i in range(50)]
    assert serialize.json.loads_many([]) == []
    assert serialize.json.loads_many([None, None]) == [None, None]


def test_decode_values_names_the_bad_item() -> None:
    from datastore.corrupt import CorruptValueError, decode_values

    datas = [b'{"a":1}', None, b"{not json", b"[2]"]
    with pytest.raises(CorruptValueError, match="item-2"):
        decode_values(serialize.json, datas, lambda i: f"item-{i}")
    good = [b'{"a":1}', None, b"[2]"]
    assert decode_values(serialize.json, good, str) == [{"a": 1}, None, [2]]
    # a serializer without loads_many decodes one by one
    assert decode_values(serialize.msgpack(), [serialize.msgpack().dumps([1]), None], str) == [[1], None]


#: The JSON serializer's two batch encoders, each with what it makes of one ``dumps`` result.
_BATCHES = [
    pytest.param(serialize.json.dumps_many, lambda data: data, id="dumps_many"),
    pytest.param(serialize.json.dumps_texts, bytes.decode, id="dumps_texts"),
]
Batch = Callable[[list[Any]], list[Any]]


@pytest.mark.parametrize(("batch", "form"), _BATCHES)
def test_json_batch_equals_dumps_of_each(batch: Batch, form: Callable[[bytes], Any]) -> None:
    values = [v for v in EXACT if v is not None] + [(1, "t"), {"n": None, "s": "null"}]
    assert batch(values) == [form(serialize.json.dumps(v)) for v in values]
    assert batch([]) == []


def _refusals() -> list[Any]:
    import enum
    import uuid

    class Colour(enum.Enum):
        RED = "red"

    refusals: list[Any] = [
        Colour.RED, {"c": [Colour.RED]}, uuid.UUID(int=7), {"u": (uuid.UUID(int=7),)},
        float("nan"), {"x": [None, float("inf")]}, {"s": "null", "x": float("-inf")},
        {1: "a"}, {"s": {1, 2}}, b"bytes",
    ]
    fragment = getattr(serialize._orjson, "Fragment", None)
    if fragment is not None:
        refusals.append({"f": fragment(b"[1]")})
    return refusals


@pytest.mark.parametrize(("batch", "form"), _BATCHES)
@pytest.mark.parametrize("bad", _refusals(), ids=repr)
def test_json_batch_refuses_what_dumps_refuses(batch: Batch, form: Any, bad: Any) -> None:
    """One bad value anywhere in a batch refuses the batch, with dumps' own message."""
    with pytest.raises(TypeError) as single:
        serialize.json.dumps(bad)
    values = [{"a": 1, "b": None}, ["null"], bad, {"z": 2.5}]
    with pytest.raises(TypeError) as many:
        batch(values)
    assert str(many.value) == str(single.value)


_JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.sampled_from(["null", "nul", "xnullx"]),
)
_JSON_TREE = st.recursive(
    _JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=12,
)


@pytest.mark.parametrize(("batch", "form"), _BATCHES)
@given(st.lists(_JSON_TREE, max_size=8))
def test_json_batch_agrees_with_dumps(batch: Batch, form: Callable[[bytes], Any],
                                      values: list[Any]) -> None:
    """The batch check accepts and refuses exactly what the value-by-value one does."""
    try:
        expected = [form(serialize.json.dumps(v)) for v in values]
    except TypeError as exc:
        with pytest.raises(TypeError, match=re.escape(str(exc))):
            batch(values)
    else:
        assert batch(values) == expected


def test_encode_values_uses_dumps_without_dumps_many() -> None:
    from datastore.serialize import encode_values

    packer = serialize.msgpack()
    assert encode_values(packer, [[1], {"a": b"x"}]) == [packer.dumps([1]), packer.dumps({"a": b"x"})]
    assert encode_values(serialize.json, [{"a": 1}]) == [b'{"a":1}']
