"""Query, Filter, Order, Cursor and the naive engine's rules."""

from __future__ import annotations

from typing import Any

import pytest

from datastore import Cursor, Filter, Key, Order, Query
from datastore.core import engine
from datastore.core.compare import compare, sort_value


def test_mixed_type_comparison_rules() -> None:
    assert compare(1, "=", 1.0) and compare(2, ">", 1.5)
    assert not compare(True, "=", 1) and compare(True, "!=", 1)
    assert not compare("10", ">", 9) and not compare("10", "<", 9) and compare("10", "!=", 9)
    assert compare(None, "=", None) and not compare(None, "<", None)
    assert not compare(None, "<", 3) and compare(None, "!=", 3)
    assert compare("B", "<", "a")  # by code point, case-sensitive
    assert compare([1], "=", [1]) and not compare([1], "<", [2]) and compare([1], "<=", [1])
    assert compare({"a": 1}, "!=", {"a": 2})
    assert compare(b"a", "<", b"b")


def test_cross_type_sort_order() -> None:
    class Thing:
        pass

    values: list[Any] = [Thing(), {"a": 1}, [1], b"x", "a", "B", 2.5, 1, True, False, None]
    ordered = sorted(values, key=sort_value)
    assert ordered[:9] == [None, False, True, 1, 2.5, "B", "a", b"x", [1]]
    assert ordered[9] == {"a": 1} and isinstance(ordered[10], Thing)


def test_filter_and_order_objects() -> None:
    with pytest.raises(ValueError, match="operator"):
        Filter("a", "~", 1)
    with pytest.raises(ValueError):
        Filter("", "=", 1)
    assert Filter("age", ">", 30)({"age": 31})
    assert not Filter("age", ">", 30)({"name": "x"})
    assert Order("-age").descending and Order("+age").ascending and Order("age").ascending
    assert str(Order("age")) == "+age"
    with pytest.raises(ValueError):
        Order("-")


def test_query_dict_round_trip_and_copy() -> None:
    q = Query(Key("/C/MP/Actor"), limit=10, offset=2, recursive=True, keys_only=True)
    q.filter("age", ">", 30).filter("name", "!=", "Eric").order("-age").order("+name")
    again = Query.from_dict(q.dict())
    assert again == q and again.dict() == q.dict()
    copy = q.copy()
    copy.filter("x", "=", 1)
    assert len(q.filters) == 2 and len(copy.filters) == 3
    with pytest.raises(ValueError):
        Query("/", limit=-1)
    with pytest.raises(TypeError):
        Query("/", offset="1")  # type: ignore[arg-type]


def test_query_called_on_values() -> None:
    values = [
        {"key": "/C/Actor:John", "age": 84},
        {"key": "/C/Actor:Eric", "age": 80},
        {"key": "/C/Other:Zed", "age": 99},
        {"age": 50},  # no key: in scope
    ]
    q = Query(Key("/C/Actor")).filter("age", ">", 60).order("-age")
    assert [v["age"] for v in q(values)] == [84, 80]
    assert [v["age"] for v in Query("/C/Actor").order("+age")(values)] == [50, 80, 84]


def test_tie_break_by_key_in_tree_order() -> None:
    pairs = [(Key(k), {"v": 1}) for k in ("/c/a-b", "/c/a", "/c/B", "/c/b")]
    got = [str(k) for k, _ in engine.run(Query("/c").order("-v"), pairs).items()]
    assert got == ["/c/B", "/c/a", "/c/a-b", "/c/b"]


def test_scope_rules() -> None:
    keys = ["/a", "/a/1", "/a:x", "/a/b/c", "/ab/x", "/a/b:t", "/b"]
    pairs = [(Key(k), 1) for k in keys]
    collection = {str(k) for k, _ in engine.run(Query("/a"), pairs).items()}
    assert collection == {"/a/1", "/a:x"}
    recursive = {str(k) for k, _ in engine.run(Query("/a", recursive=True), pairs).items()}
    assert recursive == {"/a/1", "/a:x", "/a/b/c", "/a/b:t"}
    top = {str(k) for k, _ in engine.run(Query("/"), pairs).items()}
    assert top == {"/a", "/b"}
    everything = {str(k) for k, _ in engine.run(Query("/", recursive=True), pairs).items()}
    assert everything == set(keys)


def test_cursor_is_iterable_once_and_counts() -> None:
    pairs = [(Key(f"/c/{i}"), {"i": i}) for i in range(10)]
    cursor = engine.run(Query("/c", offset=3, limit=4).order("i"), pairs)
    assert isinstance(cursor, Cursor)
    assert [v["i"] for v in cursor] == [3, 4, 5, 6]
    assert cursor.returned == 4 and cursor.skipped == 3
    with pytest.raises(RuntimeError):
        iter(cursor)
    keys = engine.run(Query("/c", keys_only=True, limit=2).order("-i"), pairs)
    assert list(keys) == [Key("/c/9"), Key("/c/8")]
    past = engine.run(Query("/c", offset=50), pairs)
    assert list(past) == [] and past.skipped == 10
    assert list(engine.run(Query("/c", limit=0), pairs)) == []


def test_pre_limited_results_need_full_pushdown() -> None:
    with pytest.raises(ValueError):
        engine.run(Query("/c", limit=1).order("x"), [], limited=True)


def test_custom_object_getattr() -> None:
    class Obj:
        def __init__(self, n: int) -> None:
            self.n = n

    pairs = [(Key(f"/o/{i}"), Obj(i)) for i in range(5)]
    q = Query("/o").filter("n", ">=", 3).order("-n")
    assert [o.n for o in engine.run(q, pairs)] == [4, 3]
    q2 = Query("/o", object_getattr=lambda obj, field: -obj.n).order("+n")
    assert [o.n for o in engine.run(q2, pairs)] == [4, 3, 2, 1, 0]
    # A str value has no fields: never its methods.
    assert list(engine.run(Query("/s").filter("upper", "=", None), [(Key("/s/1"), "x")])) == ["x"]
