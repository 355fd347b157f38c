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

import heapq
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from operator import itemgetter
from typing import Any

from .compare import OPERATORS, compare, sort_value
from .key import Key
from .query import Cursor, Filter, ObjectGetattr, Query, default_getattr

__all__ = ["in_scope", "run", "run_values", "scope_test", "sort_pairs"]

Pair = tuple[Key, Any]


def scope_test(query_key: Key, recursive: bool) -> Callable[[Key], bool]:
    """A predicate telling whether a key is in the scope of a query on ``query_key``.

    Collection scope: ``key.path == query_key``. Recursive scope: ``key.path``
    is ``query_key`` or lies below it (``/a/b/c`` is in ``/a``; ``/a`` and
    ``/ab/x`` are not).

    Every query tests every candidate key, so the tests below are prefix
    checks on the normal string rather than a computed ``key.path``:
    ``key.path == B`` exactly when the key is ``B/name`` (a name without
    ``/`` or ``:``) or, when B's last namespace has no ``:``, ``B:rest``
    (a rest without ``/``), since a key's path cuts its last namespace at the
    first ``:``.
    """
    base = query_key._string
    below = "/" if base == "/" else base + "/"
    typed = ":" not in base[base.rfind("/") + 1 :]
    beside = base + ":" if base != "/" else "/:"

    if recursive:
        if base == "/":
            return lambda key: len(key._string) > 1

        def test_recursive(key: Key) -> bool:
            string = key._string
            # Below the collection (/B/..., whatever the path), or typed beside it (/B:x).
            if string.startswith(below):
                return True
            return typed and string.startswith(beside) and "/" not in string[len(beside) :]

        return test_recursive

    cut_below = len(below)
    cut_beside = len(beside)

    def test_collection(key: Key) -> bool:
        string = key._string
        if string.startswith(below):
            rest = string[cut_below:]
            if rest and "/" not in rest and ":" not in rest:
                return True
        return typed and string.startswith(beside) and "/" not in string[cut_beside:]

    return test_collection


def in_scope(query: Query, key: Key) -> bool:
    """True when ``key`` is in ``query``'s scope (convenience for single checks)."""
    return scope_test(query.key, query.recursive)(key)


def sort_pairs(query: Query, pairs: Iterable[Pair], first: int | None = None) -> list[Pair]:
    """Sort pairs by the query's orders, then by key in tree order.

    With ``first``, only the first ``first`` pairs of the result are wanted:
    the list returned then starts with exactly those, in order, and may hold
    fewer of the others (a query with a limit sorts a page, not the scope).
    """
    if first is not None and query.orders:
        pairs = _top_candidates(query, pairs, first)
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


def _top_candidates(query: Query, pairs: Iterable[Pair], count: int) -> list[Pair]:
    """A small superset of the first ``count`` pairs in the query's order.

    Selects by the first order alone with a heap (O(n log count) instead of
    sorting everything), then adds back every pair that ties with the last
    one selected, since the later orders and the key decide among those.
    Falls back to all pairs when selecting would not pay, or when a NaN
    (which has no place in an order) makes the selection ill-defined.
    """
    order = query.orders[0]
    read = query.field_reader
    field = order.field
    decorated = [(sort_value(read(pair[1], field)), pair) for pair in pairs]
    if len(decorated) <= 2 * count + 16:
        return [pair for _, pair in decorated]
    for value, _ in decorated:
        last = value[-1]
        if last != last:  # NaN
            return [pair for _, pair in decorated]
    pick = heapq.nlargest if order.descending else heapq.nsmallest
    top = pick(count, decorated, key=itemgetter(0))
    edge = top[-1][0]
    return [pair for value, pair in top if value != edge] + [
        pair for value, pair in decorated if value == edge
    ]


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
        first = None if query.limit is None else query.offset + query.limit
        stream = sort_pairs(query, stream, first)
    cursor._pairs = _page(cursor, iter(stream), query.offset, query.limit)
    return cursor


def _filtered(query: Query, pairs: Iterable[Pair]) -> Iterator[Pair]:
    tests = [_filter_test(f, query.field_reader) for f in query.filters]
    if len(tests) == 1:
        test = tests[0]
        return (pair for pair in pairs if test(pair[1]))
    return (pair for pair in pairs if all(test(pair[1]) for test in tests))


def _filter_test(flt: Filter, read: ObjectGetattr) -> Callable[[Any], bool]:
    """``flt`` as a one-argument test, with a fast path for the common case.

    The common case is a plain :class:`Filter` on a number or a string read
    from dicts by the default reader: a value of the same kind is compared
    with the operator directly; anything else goes through
    :func:`~datastore.core.compare.compare`, so the rules stay in one place.
    """
    if type(flt) is not Filter or read is not default_getattr:
        return lambda value: flt(value, read)
    field, op, target = flt.field, flt.op, flt.value
    kind = type(target)
    if kind is str:
        same: tuple[type, ...] = (str,)
    elif kind is int or kind is float:
        same = (int, float)
    else:
        return lambda value: flt(value, read)
    apply = OPERATORS[op]

    def test(value: Any) -> bool:
        found = value.get(field) if type(value) is dict else read(value, field)
        if type(found) in same:
            return bool(apply(found, target))
        return compare(found, op, target)

    return test


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
