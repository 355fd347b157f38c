"""The one definition of how query values compare and sort across types.

Queries must never crash on mixed types and must never coerce, and every
backend that pushes a query down to its engine must reproduce these rules
exactly, so they live here and nowhere else.

Comparison (filters)
    ``int`` and ``float`` compare numerically (``bool`` is *not* a number).
    Two values of the same *class* (None, bool, number, str, bytes) compare
    with Python's operators; strings compare by code point, case-sensitively.
    Values of different classes are unequal: ``=`` is false, ``!=`` is true
    and ``< <= >= >`` are false. Values of any other class (lists, dicts,
    anything else) only support equality: ``=``/``!=`` use ``==`` on values of
    the same type, ``<=``/``>=`` are true exactly when ``=`` is, ``<``/``>``
    are false. A missing field reads as ``None``.

Ordering (orders)
    Sorted by class rank first: ``None`` (and missing), bools, numbers,
    ``str`` (by code point), ``bytes``, then lists, then dicts (any mapping),
    then every other type grouped by its qualified type name. Values inside
    the list, dict and "other" groups are not compared with each other: they
    tie, and ties are broken by the next order and finally by key.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "OPERATORS",
    "RANK_BOOL",
    "RANK_BYTES",
    "RANK_DICT",
    "RANK_LIST",
    "RANK_NONE",
    "RANK_NUMBER",
    "RANK_OTHER",
    "RANK_STR",
    "compare",
    "rank",
    "sort_value",
]

RANK_NONE = 0
RANK_BOOL = 1
RANK_NUMBER = 2
RANK_STR = 3
RANK_BYTES = 4
RANK_LIST = 5
RANK_DICT = 6
RANK_OTHER = 7

_RANKS: dict[type, int] = {
    type(None): RANK_NONE,
    bool: RANK_BOOL,
    int: RANK_NUMBER,
    float: RANK_NUMBER,
    str: RANK_STR,
    bytes: RANK_BYTES,
    list: RANK_LIST,
    tuple: RANK_LIST,
    dict: RANK_DICT,
}

#: The comparable classes: values of these ranks are ordered within the rank.
_ORDERED_RANKS = frozenset({RANK_NONE, RANK_BOOL, RANK_NUMBER, RANK_STR, RANK_BYTES})

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}


def rank(value: Any) -> int:
    """The class rank of ``value`` in the ordering above."""
    found = _RANKS.get(type(value))
    if found is not None:
        return found
    # Subclasses (IntEnum, str subclasses such as Namespace, OrderedDict ...).
    if isinstance(value, bool):
        return RANK_BOOL
    if isinstance(value, (int, float)):
        return RANK_NUMBER
    if isinstance(value, str):
        return RANK_STR
    if isinstance(value, (bytes, bytearray, memoryview)):
        return RANK_BYTES
    if isinstance(value, (list, tuple)):
        return RANK_LIST
    if isinstance(value, Mapping):
        return RANK_DICT
    return RANK_OTHER


def sort_value(value: Any) -> tuple[Any, ...]:
    """A sort key for ``value`` that realises the documented cross-type order."""
    kind = type(value)
    if kind is int or kind is float:  # the common cases first: every order reads every value
        return (RANK_NUMBER, value)
    if kind is str:
        return (RANK_STR, value)
    r = rank(value)
    if r == RANK_NONE:
        return (RANK_NONE,)
    if r in _ORDERED_RANKS:
        if r == RANK_BYTES and not isinstance(value, bytes):
            value = bytes(value)
        return (r, value)
    if r == RANK_OTHER:
        cls = type(value)
        return (r, f"{cls.__module__}.{cls.__qualname__}")
    return (r,)


def compare(value: Any, op: str, target: Any) -> bool:
    """Evaluate ``value <op> target`` under the rules in this module's docstring."""
    r = rank(value)
    if r != rank(target):
        return op == "!="
    if r == RANK_NONE:
        return op in ("=", "<=", ">=")
    if r in _ORDERED_RANKS:
        return bool(OPERATORS[op](value, target))
    equal = type(value) is type(target) and bool(value == target)
    if op in ("=", "<=", ">="):
        return equal
    if op == "!=":
        return not equal
    return False
