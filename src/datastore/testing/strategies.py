"""Hypothesis strategies for random objects and queries (the differential test's inputs).

Values mix every class the ordering rules name (None, bools, ints, floats,
mixed-case unicode strings, lists, nested dicts) and leave fields missing,
so that a store's pushed-down query has to get every cross-type rule right.
Integers stay within +/-2**53 and floats are finite, the range every engine
here holds exactly.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ..core.key import Key
from ..core.query import Query

__all__ = ["FIELDS", "objects", "queries", "scalar_values"]

FIELDS = ["n", "s", "m", "B"]
NAMESPACES = ["a", "b", "A", "ab", "a-b", "é", "x:1", "x:", "b:a", "Z9", "日本"]
STRINGS = ["", "a", "A", "b", "B", "ab", "aB", "Ab", "é", "E", "z", "ü", "日本", "10", "9", " a"]


def _ints() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(-5, 5), st.integers(-(2**53), 2**53))


def _floats() -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from([-1.5, -0.0, 0.0, 0.5, 1.0, 2.0, 2.5, 1e20, -1e-5]),
        st.floats(allow_nan=False, allow_infinity=False, width=64),
    )


def scalar_values(bytes_ok: bool = False) -> st.SearchStrategy[Any]:
    """Field values: a deliberate mix of classes, with many near-ties."""
    options: list[st.SearchStrategy[Any]] = [
        st.none(),
        st.booleans(),
        _ints(),
        _floats(),
        st.sampled_from(STRINGS),
        st.text(max_size=4),
    ]
    if bytes_ok:
        options.append(st.binary(max_size=3))
    return st.one_of(*options)


def _field_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        scalar_values(),
        scalar_values(),
        scalar_values(),
        st.lists(st.integers(0, 3), max_size=2),
        st.dictionaries(st.sampled_from(["k", "j"]), st.integers(0, 2), max_size=1),
    )


def _documents() -> st.SearchStrategy[Any]:
    return st.dictionaries(st.sampled_from(FIELDS), _field_values(), max_size=len(FIELDS))


def _values(bytes_only: bool) -> st.SearchStrategy[Any]:
    if bytes_only:
        return st.binary(min_size=0, max_size=8)
    return st.one_of(
        _documents(),
        _documents(),
        _documents(),
        _documents(),
        st.sampled_from(STRINGS).filter(bool),
        _ints(),
        st.lists(st.integers(0, 3), max_size=2),
        st.booleans(),
    )


def _relative_keys() -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(NAMESPACES), min_size=1, max_size=3)


def objects(bytes_only: bool = False) -> st.SearchStrategy[dict[tuple[str, ...], Any]]:
    """Random objects: relative key parts -> value (keys unique)."""
    return st.dictionaries(
        _relative_keys().map(tuple), _values(bytes_only), min_size=0, max_size=25
    )


@st.composite
def queries(draw: st.DrawFn, root: Key, bytes_ok: bool = False) -> Query:
    """A random query under ``root``: collection or recursive, filters, orders, paging."""
    relative = draw(st.lists(st.sampled_from(NAMESPACES), min_size=0, max_size=2))
    key = root.child(Key(relative)) if relative else root
    if draw(st.booleans()) and relative:
        # Collections of typed keys: /root/a:x is in collection /root/a.
        key = key.path if ":" in key.list[-1] else key
    query = Query(
        key,
        limit=draw(st.one_of(st.none(), st.integers(0, 12))),
        offset=draw(st.one_of(st.just(0), st.integers(0, 6))),
        recursive=draw(st.booleans()),
        keys_only=draw(st.booleans()),
    )
    for _ in range(draw(st.integers(0, 2))):
        query.filter(
            draw(st.sampled_from(FIELDS)),
            draw(st.sampled_from(["<", "<=", "=", "!=", ">=", ">"])),
            draw(scalar_values(bytes_ok)),
        )
    for _ in range(draw(st.integers(0, 3))):
        query.order(draw(st.sampled_from(FIELDS)) if draw(st.booleans()) else
                    "-" + draw(st.sampled_from(FIELDS)))
    return query
