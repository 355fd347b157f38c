"""The naive query engine: the reference answer every store must reproduce.

A query runs in fixed steps: scope, filters, orders (ties broken by key in
tree order), offset, limit. :func:`run` takes ``(Key, value)`` pairs from a
store and performs whichever steps the store did not already do in its
engine. A store tells what it did with four flags:

``scoped``
    every pair is in the query's scope (the store listed one collection).
``filtered``
    every filter holds for every pair. A store that pushed down only *some*
    filters leaves this False: re-checking a filter is harmless.
``ordered``
    pairs arrive in the query's full order, key tie-break included.
``limited``
    the store returned no more than ``offset + limit`` pairs of the ordered
    result. Only valid together with the three flags above; the engine still
    applies offset and limit so that :attr:`Cursor.skipped` stays exact.

Everything a store cannot push down is thereby finished here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from .compare import sort_value
from .key import Key
from .query import Cursor, ObjectGetattr, Query

__all__ = ["in_scope", "run", "run_values", "scope_test", "sort_pairs"]

Pair = tuple[Key, Any]


def scope_test(query_key: Key, recursive: bool) -> Callable[[Key], bool]:
    """A predicate telling whether a key is in the scope of a query on ``query_key``.

    Collection scope: ``key.path == query_key``. Recursive scope: ``key.path``
    is ``query_key`` or lies below it (``/a/b/c`` is in ``/a``; ``/a`` and
    ``/ab/x`` are not).
    """
    base = query_key._string
    below = "/" if base == "/" else base + "/"

    def path_of(string: str) -> str:
        cut = string.rfind("/")
        last = string[cut + 1 :]
        colon = last.find(":")
        if colon < 0:
            return string[:cut] or "/"
        return string[: cut + 1] + last[:colon]

    if recursive:
        if base == "/":
            return lambda key: len(key._string) > 1

        def test_recursive(key: Key) -> bool:
            path = path_of(key._string)
            return path == base or path.startswith(below)

        return test_recursive

    def test_collection(key: Key) -> bool:
        return len(key._string) > 1 and path_of(key._string) == base

    return test_collection


def in_scope(query: Query, key: Key) -> bool:
    """True when ``key`` is in ``query``'s scope (convenience for single checks)."""
    return scope_test(query.key, query.recursive)(key)


def sort_pairs(query: Query, pairs: Iterable[Pair]) -> list[Pair]:
    """Sort pairs by the query's orders, then by key in tree order."""
    ordered = sorted(pairs, key=lambda pair: pair[0].sort_key)
    read = query.field_reader
    # Stable sorts from the last order to the first give the hierarchy;
    # reverse=True keeps equal items in their (key) order.
    for order in reversed(query.orders):
        field = order.field
        ordered.sort(
            key=lambda pair, f=field: sort_value(read(pair[1], f)),  # type: ignore[misc]
            reverse=order.descending,
        )
    return ordered


def _page(cursor: Cursor, pairs: Iterator[Pair], offset: int, limit: int | None) -> Iterator[Pair]:
    for _ in range(offset):
        if next(pairs, None) is None:
            return
        cursor.skipped += 1
    if limit is None:
        yield from pairs
    else:
        yield from islice(pairs, limit)


def run(
    query: Query,
    pairs: Iterable[Pair],
    *,
    scoped: bool = False,
    filtered: bool = False,
    ordered: bool = False,
    limited: bool = False,
) -> Cursor:
    """Finish ``query`` over ``pairs`` and return the :class:`Cursor` of its results."""
    if limited and not (scoped and filtered and (ordered or not query.orders)):
        raise ValueError("a store may only pre-limit a query it scoped, filtered and ordered")
    cursor = Cursor(query)
    if query.limit == 0:
        return cursor
    stream: Iterable[Pair] = pairs
    if not scoped:
        test = scope_test(query.key, query.recursive)
        stream = (pair for pair in stream if test(pair[0]))
    if query.filters and not filtered:
        stream = _filtered(query, stream)
    if query.orders and not ordered:
        stream = sort_pairs(query, stream)
    cursor._pairs = _page(cursor, iter(stream), query.offset, query.limit)
    return cursor


def _filtered(query: Query, pairs: Iterable[Pair]) -> Iterator[Pair]:
    read: ObjectGetattr = query.field_reader
    filters = query.filters
    for pair in pairs:
        value = pair[1]
        if all(f(value, read) for f in filters):
            yield pair


_NO_KEY = Key._from_normal("/")


def run_values(query: Query, values: Iterable[Any]) -> Cursor:
    """Apply ``query`` to bare values, reading each value's key from its ``key`` field.

    Values without a key are in scope and sort as the root key on ties.
    """
    read = query.field_reader
    test = scope_test(query.key, query.recursive)
    pairs: list[Pair] = []
    for value in values:
        raw = read(value, "key")
        if raw is None:
            pairs.append((_NO_KEY, value))
            continue
        key = raw if isinstance(raw, Key) else Key(raw)
        if test(key):
            pairs.append((key, value))
    return run(query, pairs, scoped=True)
