"""Queries over collections of objects: :class:`Query`, :class:`Filter`, :class:`Order`, :class:`Cursor`.

A query names a collection by key, then narrows it with filters, sorts it
with orders and pages it with offset and limit. Running a query is the job
of :mod:`datastore.core.engine` (the naive reference every store reuses);
this module only describes queries and the cursor that delivers results.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .compare import OPERATORS, compare
from .key import Key, KeyLike, to_key

__all__ = ["Cursor", "Filter", "ObjectGetattr", "Order", "Query", "default_getattr"]

ObjectGetattr = Callable[[Any, str], Any]

#: Values that carry no fields: reading a field of one gives None.
_SCALARS = (str, bytes, bytearray, int, float, bool, list, tuple, type(None))


def default_getattr(obj: Any, field: str) -> Any:
    """Read ``field`` from a mapping item or an object attribute (None when missing).

    Scalars, strings and lists have no fields here, so a query never picks
    up a method such as ``str.upper`` by accident.
    """
    if type(obj) is dict or isinstance(obj, Mapping):  # plain dicts skip the ABC check
        return obj.get(field)
    if isinstance(obj, _SCALARS):
        return None
    return getattr(obj, field, None)


class Filter:
    """A condition ``field <op> value`` with op one of ``< <= = != >= >``."""

    __slots__ = ("field", "op", "value")

    def __init__(self, field: str, op: str, value: Any) -> None:
        if not isinstance(field, str) or not field:
            raise ValueError(f"a filter field must be a non-empty str, not {field!r}")
        if op not in OPERATORS:
            raise ValueError(
                f"unknown filter operator {op!r}; use one of {' '.join(OPERATORS)}"
            )
        self.field = field
        self.op = op
        self.value = value

    def __call__(self, obj: Any, getattr_: ObjectGetattr = default_getattr) -> bool:
        """True when ``obj`` satisfies this filter."""
        return compare(getattr_(obj, self.field), self.op, self.value)

    def __repr__(self) -> str:
        return f"Filter({self.field!r}, {self.op!r}, {self.value!r})"

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.value!r}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Filter):
            return NotImplemented
        return (self.field, self.op, self.value) == (other.field, other.op, other.value)

    __hash__ = None  # type: ignore[assignment]


class Order:
    """A sort on one field: ``'+field'`` or ``'field'`` ascending, ``'-field'`` descending."""

    __slots__ = ("ascending", "field")

    def __init__(self, order: str) -> None:
        if not isinstance(order, str):
            raise TypeError(f"an order must be a str such as '+age' or '-age', not {order!r}")
        text = order.strip()
        ascending = not text.startswith("-")
        field = text[1:] if text[:1] in ("+", "-") else text
        if not field:
            raise ValueError(f"an order needs a field name, as in '+age' or '-age': {order!r}")
        self.field = field
        self.ascending = ascending

    @property
    def descending(self) -> bool:
        return not self.ascending

    def __str__(self) -> str:
        return ("+" if self.ascending else "-") + self.field

    def __repr__(self) -> str:
        return f"Order({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Order):
            return NotImplemented
        return (self.field, self.ascending) == (other.field, other.ascending)

    __hash__ = None  # type: ignore[assignment]


class Query:
    """A description of which objects to return, in which order, and how many.

    ``Query(Key('/Comedy/MontyPython/Actor'), limit=10)`` matches the objects
    whose ``key.path`` is that key; ``recursive=True`` also matches deeper
    collections. Filters and orders are added with the chainable
    :meth:`filter` and :meth:`order`.
    """

    def __init__(
        self,
        key: KeyLike = "/",
        limit: int | None = None,
        offset: int = 0,
        *,
        recursive: bool = False,
        keys_only: bool = False,
        object_getattr: ObjectGetattr | None = None,
    ) -> None:
        self.key: Key = to_key(key)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise TypeError(f"limit must be an int or None, not {limit!r}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0 or None, not {limit}")
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"offset must be an int, not {offset!r}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        self.limit = limit
        self.offset = offset
        self.recursive = bool(recursive)
        self.keys_only = bool(keys_only)
        self.object_getattr = object_getattr
        self.filters: list[Filter] = []
        self.orders: list[Order] = []

    # -- building ---------------------------------------------------------------

    def filter(self, field: str | Filter, op: str | None = None, value: Any = None) -> Query:
        """Add a filter (``q.filter('age', '>', 30)`` or ``q.filter(Filter(...))``); returns self."""
        if isinstance(field, Filter):
            self.filters.append(field)
        else:
            if op is None:
                raise ValueError("filter() needs a field, an operator and a value")
            self.filters.append(Filter(field, op, value))
        return self

    def order(self, order: str | Order) -> Query:
        """Add an order (``'+age'``, ``'-age'`` or ``'age'``); later orders break ties; returns self."""
        self.orders.append(order if isinstance(order, Order) else Order(order))
        return self

    def copy(self) -> Query:
        """An independent copy (filters and orders lists are not shared)."""
        other = _copy.copy(self)
        other.filters = list(self.filters)
        other.orders = list(self.orders)
        return other

    # -- reading ----------------------------------------------------------------

    @property
    def field_reader(self) -> ObjectGetattr:
        """The field reader in force: ``object_getattr`` or :func:`default_getattr`."""
        return self.object_getattr or default_getattr

    def dict(self) -> dict[str, Any]:
        """A plain-data form of this query (``object_getattr`` is not included)."""
        data: dict[str, Any] = {"key": str(self.key)}
        if self.limit is not None:
            data["limit"] = self.limit
        if self.offset:
            data["offset"] = self.offset
        if self.recursive:
            data["recursive"] = True
        if self.keys_only:
            data["keys_only"] = True
        if self.filters:
            data["filters"] = [[f.field, f.op, f.value] for f in self.filters]
        if self.orders:
            data["orders"] = [str(o) for o in self.orders]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Query:
        """Rebuild a query from :meth:`dict` output."""
        query = cls(
            data.get("key", "/"),
            limit=data.get("limit"),
            offset=data.get("offset", 0),
            recursive=data.get("recursive", False),
            keys_only=data.get("keys_only", False),
        )
        for field, op, value in data.get("filters", ()):
            query.filter(field, op, value)
        for order in data.get("orders", ()):
            query.order(order)
        return query

    def __call__(self, iterable: Iterable[Any]) -> Cursor:
        """Apply this query naively to an iterable of values.

        A value that carries its key (a ``key`` field or attribute, as the
        classic examples' objects did) is scoped by it and ordered by it on
        ties; a value without a key is taken to be in scope.
        """
        from .engine import run_values

        return run_values(self, iterable)

    def __repr__(self) -> str:
        return f"Query.from_dict({self.dict()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Query):
            return NotImplemented
        return self.dict() == other.dict() and self.object_getattr == other.object_getattr

    __hash__ = None  # type: ignore[assignment]


class Cursor:
    """The results of one query run: iterable exactly once.

    Iterating yields values (keys when the query is ``keys_only``);
    :meth:`items` yields ``(Key, value)`` pairs instead. :attr:`returned`
    counts what has been delivered and :attr:`skipped` what ``offset`` passed
    over, both as iteration goes.
    """

    def __init__(self, query: Query, pairs: Iterable[tuple[Key, Any]] = ()) -> None:
        self.query = query
        self.returned = 0
        self.skipped = 0
        self._pairs: Iterator[tuple[Key, Any]] = iter(pairs)
        self._started = False
        self._keys_only = query.keys_only

    def _start(self) -> None:
        if self._started:
            raise RuntimeError("a Cursor can be iterated only once; run the query again")
        self._started = True

    def __iter__(self) -> Cursor:
        self._start()
        return self

    def __next__(self) -> Any:
        if not self._started:
            self._started = True
        key, value = next(self._pairs)
        self.returned += 1
        return key if self._keys_only else value

    def items(self) -> Iterator[tuple[Key, Any]]:
        """Iterate ``(Key, value)`` pairs (value may be None for a ``keys_only`` query)."""
        self._start()
        for pair in self._pairs:
            self.returned += 1
            yield pair

    def keys(self) -> Iterator[Key]:
        """Iterate the keys of the results."""
        for key, _ in self.items():
            yield key

    def __repr__(self) -> str:
        return f"<Cursor {self.query!r} returned={self.returned} skipped={self.skipped}>"
