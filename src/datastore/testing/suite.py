"""The contract cases, as methods of :class:`DatastoreTests` (see the package docstring)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..core import engine
from ..core.datastore import Datastore
from ..core.key import Key
from ..core.query import Query
from . import strategies
from .concurrency import run_threads

__all__ = ["DatastoreTests"]

# Keys that a careless layout would map onto one another.
ALIASING_KEYS = [
    "/a",
    "/a/b",
    "/a:b",
    "/a/b:",
    "/a/b:c",
    "/a/b/c",
    "/ab",
    "/a-b",
    "/A/b",
    "/a/B",
    "/a.data",
    "/a%2Fb",
    "/a%2fb",
    "/a b",
    "/a\\b",
    "/.",
    "/..",
    "/../x",
    "/.a",
    "/a:b:c",
    "/ünï/cødé/日本:語",
    "/emoji/😀",
    "/Comedy/MontyPython/Actor:JohnCleese",
    "/Comedy/MontyPython/Actor:JohnCleese/Quote:1",
]


class DatastoreTests:
    """Mix into a test class that provides a ``store`` fixture yielding a fresh empty store."""

    holds_any_value: bool = False
    bytes_only: bool = False
    differential_examples: int = 60

    # -- helpers ---------------------------------------------------------------------

    def value(self, n: int, **fields: Any) -> Any:
        """A value the store can hold, distinct for each ``n``."""
        if self.bytes_only:
            return f"value-{n}".encode()
        return {"n": n, "name": f"v{n}", **fields}

    @pytest.fixture
    def root(self, store: Datastore) -> Iterator[Key]:
        """A fresh namespace for one test, so shared servers never mix test data."""
        yield Key("/t" + uuid.uuid4().hex[:12])

    # -- basic operations ----------------------------------------------------------

    def test_put_get(self, store: Datastore, root: Key) -> None:
        key = root.child("hello")
        assert store.get(key) is None
        store.put(key, self.value(1))
        assert store.get(key) == self.value(1)
        assert store.contains(key)

    def test_absent(self, store: Datastore, root: Key) -> None:
        key = root.child("missing")
        assert store.get(key) is None
        assert not store.contains(key)
        assert key not in store
        store.delete(key)  # a no-op
        with pytest.raises(KeyError):
            store[key]
        with pytest.raises(KeyError):
            del store[key]

    def test_overwrite(self, store: Datastore, root: Key) -> None:
        key = root.child("k")
        store.put(key, self.value(1))
        store.put(key, self.value(2))
        assert store.get(key) == self.value(2)

    def test_delete(self, store: Datastore, root: Key) -> None:
        key = root.child("k")
        store.put(key, self.value(1))
        store.delete(key)
        assert store.get(key) is None
        assert not store.contains(key)

    def test_str_keys(self, store: Datastore, root: Key) -> None:
        store.put(f"{root}/s", self.value(3))
        assert store.get(root.child("s")) == self.value(3)
        assert store.contains(f"{root}/s")
        store.delete(f"{root}/s")
        assert store.get(f"{root}/s") is None

    def test_dict_spellings(self, store: Datastore, root: Key) -> None:
        key = root.child("d")
        store[key] = self.value(4)
        assert key in store
        assert store[key] == self.value(4)
        del store[key]
        assert key not in store

    def test_value_and_children_coexist(self, store: Datastore, root: Key) -> None:
        parent, child = root.child("p"), root.child("p/c")
        store.put(parent, self.value(1))
        store.put(child, self.value(2))
        assert store.get(parent) == self.value(1)
        assert store.get(child) == self.value(2)
        store.delete(parent)
        assert store.get(child) == self.value(2)

    def test_keys_do_not_alias(self, store: Datastore, root: Key) -> None:
        written: dict[Key, Any] = {}
        for i, text in enumerate(ALIASING_KEYS):
            key = root.child(Key(text))
            store.put(key, self.value(i))
            written[key] = self.value(i)
        for key, value in written.items():
            assert store.get(key) == value, key
        for key in list(written)[::2]:
            store.delete(key)
        for i, key in enumerate(written):
            assert store.contains(key) == (i % 2 == 1), key

    def test_long_namespace_stored_or_refused(self, store: Datastore, root: Key) -> None:
        key = root.child("x" * 300)
        try:
            store.put(key, self.value(1))
        except ValueError:
            assert store.get(key) is None
        else:
            assert store.get(key) == self.value(1)

    def test_values_round_trip(self, store: Datastore, root: Key) -> None:
        if self.bytes_only:
            samples: list[Any] = [b"", b"\x00\xff", bytes(range(256))]
        else:
            samples = [
                "text",
                "ünïcødé 😀",
                "",
                0,
                -7,
                2**53,
                1.5,
                -0.25,
                True,
                False,
                [1, "two", None, [3.5]],
                {"nested": {"deep": [1, 2, {"x": None}]}, "ok": True},
                {},
                [],
            ]
        for i, sample in enumerate(samples):
            store.put(root.child(f"v{i}"), sample)
        for i, sample in enumerate(samples):
            got = store.get(root.child(f"v{i}"))
            assert got == sample and type(got) is type(sample), (sample, got)

    # -- bad input -----------------------------------------------------------------

    def test_put_none_refused(self, store: Datastore, root: Key) -> None:
        with pytest.raises(ValueError):
            store.put(root.child("none"), None)
        assert store.get(root.child("none")) is None

    def test_bad_keys_refused(self, store: Datastore, root: Key) -> None:
        for bad in (3, 4.5, None, b"/bytes", object()):
            with pytest.raises(TypeError):
                store.put(bad, self.value(1))  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            store.put(f"{root}/nul\x00", self.value(1))
        with pytest.raises(ValueError):
            store.put("/", self.value(1))

    def test_unencodable_value(self, store: Datastore, root: Key) -> None:
        key = root.child("odd")
        odd = {1, 2, 3} if not self.bytes_only else "not bytes"
        if self.holds_any_value:
            store.put(key, odd)
            assert store.get(key) == odd
            return
        with pytest.raises(TypeError):
            store.put(key, odd)
        assert store.get(key) is None
        with pytest.raises(TypeError):
            store.put_many([(root.child("ok"), self.value(1)), (key, odd)])
        assert store.get(root.child("ok")) is None
        with pytest.raises(TypeError), store.batch() as batch:
            batch.put(root.child("ok2"), self.value(1))
            batch.put(key, odd)
        assert store.get(root.child("ok2")) is None

    def test_put_many_bad_item_writes_nothing(self, store: Datastore, root: Key) -> None:
        with pytest.raises(ValueError):
            store.put_many([(root.child("first"), self.value(1)), (root.child("second"), None)])
        assert store.get(root.child("first")) is None

    # -- bulk ----------------------------------------------------------------------

    def test_bulk(self, store: Datastore, root: Key) -> None:
        keys = [root.child(f"b{i}") for i in range(30)]
        store.put_many((k, self.value(i)) for i, k in enumerate(keys))
        absent = root.child("absent")
        assert store.get_many([*keys, absent]) == [self.value(i) for i in range(30)] + [None]
        store.put_many({str(keys[0]): self.value(100)})
        assert store.get(keys[0]) == self.value(100)
        store.delete_many([*keys[:10], absent])
        assert store.get_many(keys[:12]) == [None] * 10 + [self.value(10), self.value(11)]
        assert store.get_many([]) == []
        # Keys of several collections and depths, one asked twice, in any order.
        mixed = [root.child("m").child(f"x{i}") for i in range(3)]
        mixed += [root.child(f"n{i}").child("y") for i in range(3)]
        store.put_many((k, self.value(200 + i)) for i, k in enumerate(mixed))
        asked = [mixed[5], keys[11], mixed[0], mixed[5], absent, mixed[3]]
        assert store.get_many(asked) == [
            self.value(205), self.value(11), self.value(200), self.value(205), None, self.value(203)
        ]
        store.delete_many([mixed[5], mixed[0], mixed[5]])
        assert store.get_many(mixed) == [None, *map(self.value, (201, 202, 203, 204)), None]
        store.put_many([])
        store.delete_many([])

    # -- batches -------------------------------------------------------------------

    def test_batch_applies_on_exit(self, store: Datastore, root: Key) -> None:
        a, b, c = root.child("a"), root.child("b"), root.child("c")
        store.put(c, self.value(0))
        with store.batch() as batch:
            batch.put(a, self.value(1))
            batch.put(b, self.value(2))
            batch.delete(c)
            assert store.get(a) is None  # reads inside see the old state
            assert store.get(c) == self.value(0)
        assert store.get(a) == self.value(1)
        assert store.get(b) == self.value(2)
        assert store.get(c) is None

    def test_batch_last_operation_wins(self, store: Datastore, root: Key) -> None:
        a, b = root.child("a"), root.child("b")
        store.put(b, self.value(0))
        with store.batch() as batch:
            batch.put(a, self.value(1))
            batch.delete(a)
            batch.put(a, self.value(2))
            batch.delete(b)
            batch.put(b, self.value(3))
            batch.put(b, self.value(4))
        assert store.get(a) == self.value(2)
        assert store.get(b) == self.value(4)
        with store.batch() as batch:
            batch.put(a, self.value(5))
            batch.delete(a)
        assert store.get(a) is None

    def test_batch_discarded_when_block_raises(self, store: Datastore, root: Key) -> None:
        a, b = root.child("a"), root.child("b")
        store.put(b, self.value(0))

        class Boom(Exception):
            pass

        with pytest.raises(Boom), store.batch() as batch:
            batch.put(a, self.value(1))
            batch.delete(b)
            raise Boom
        assert store.get(a) is None
        assert store.get(b) == self.value(0)

    # -- lifecycle -------------------------------------------------------------------

    def test_close_idempotent_and_context(self, store: Datastore, root: Key) -> None:
        with store as entered:
            assert entered is store
            store.put(root.child("x"), self.value(1))
        store.close()
        store.close()

    def test_threads(self, store: Datastore, root: Key) -> None:
        def work(t: int) -> None:
            for i in range(25):
                key = root.child(f"t{t}/k{i}")
                store.put(key, self.value(i))
                assert store.get(key) == self.value(i)

        run_threads(work)
        for t in range(4):
            got = [k for k in store.query(Query(root.child(f"t{t}"), keys_only=True))]
            assert len(got) == 25

    # -- queries ---------------------------------------------------------------------

    def _fill_people(self, store: Datastore, root: Key) -> list[tuple[Key, Any]]:
        people = [
            ("JohnCleese", 84, "John"),
            ("EricIdle", 80, "Eric"),
            ("MichaelPalin", 80, "Michael"),
            ("TerryJones", 77, "Terry"),
            ("GrahamChapman", 48, "Graham"),
            ("TerryGilliam", 83, "terry"),
        ]
        pairs = []
        for name, age, first in people:
            key = root.child("Actor").instance(name)
            value: Any = {"age": age, "first": first, "key": str(key)}
            if self.bytes_only:
                value = repr(value).encode()
            pairs.append((key, value))
        store.put_many(pairs)
        # Neighbours that must stay out of the collection's scope.
        store.put(root.child("Actorx:Nobody"), self.value(1, age=99))
        store.put(root.child("Actor/Film:Holy"), self.value(2, age=99))
        store.put(root.child("Actor"), self.value(3, age=99))
        return pairs

    def _expect(self, store: Datastore, query: Query, reference: list[tuple[Key, Any]]) -> None:
        """Check the store's answer against the naive engine's on the same objects."""
        got = list(store.query(query.copy()).items())
        want = list(engine.run(query, reference).items())
        assert len({k for k, _ in got}) == len(got), f"duplicate results for {query!r}"
        if query.orders:
            assert [k for k, _ in got] == [k for k, _ in want], query
        elif query.limit is None and not query.offset:
            assert sorted(k for k, _ in got) == sorted(k for k, _ in want), query
        else:
            # Unordered page: which objects is unspecified, but not how many or from where.
            everything = query.copy()
            everything.limit, everything.offset = None, 0
            allowed = {k for k, _ in engine.run(everything, reference).items()}
            assert len(got) == len(want), query
            assert {k for k, _ in got} <= allowed, query
        if not query.keys_only:
            values = dict(reference)
            for key, value in got:
                assert value == values[key], (key, value, values[key])

    def test_query_collection_scope(self, store: Datastore, root: Key) -> None:
        pairs = self._fill_people(store, root)
        got = {k for k, _ in store.query(Query(root.child("Actor"))).items()}
        assert got == {k for k, _ in pairs}
        assert list(store.query(Query(root.child("Act")))) == []

    def test_query_foo_is_not_foobar(self, store: Datastore, root: Key) -> None:
        store.put(root.child("foo/1"), self.value(1))
        store.put(root.child("foobar/1"), self.value(2))
        store.put(root.child("foo:x"), self.value(3))
        got = {k for k, _ in store.query(Query(root.child("foo"))).items()}
        assert got == {root.child("foo/1"), root.child("foo:x")}
        rec = {k for k, _ in store.query(Query(root.child("foo"), recursive=True)).items()}
        assert rec == {root.child("foo/1"), root.child("foo:x")}

    def test_query_recursive(self, store: Datastore, root: Key) -> None:
        keys = ["a/1", "a/b/2", "a/b/c/3", "a:x", "a", "ab/4", "a/b:t"]
        for i, k in enumerate(keys):
            store.put(root.child(k), self.value(i))
        query = Query(root.child("a"), recursive=True, keys_only=True)
        got = {str(k)[len(str(root)) :] for k in store.query(query)}
        assert got == {"/a/1", "/a/b/2", "/a/b/c/3", "/a:x", "/a/b:t"}

    def test_query_filters_each_operator(self, store: Datastore, root: Key) -> None:
        if self.bytes_only:
            return self._expect(store, Query(root), [])
        pairs = self._fill_people(store, root)
        for op in ("<", "<=", "=", "!=", ">=", ">"):
            for target in (80, 80.0, "80", None, True):
                query = Query(root.child("Actor")).filter("age", op, target)
                self._expect(store, query, pairs)
        query = Query(root.child("Actor")).filter("age", ">=", 77).filter("first", "!=", "Eric")
        self._expect(store, query, pairs)

    def test_query_orders_with_ties(self, store: Datastore, root: Key) -> None:
        pairs = self._fill_people(store, root)
        for orders in (["-age"], ["+age"], ["age", "-first"], ["-age", "+first"], ["first"], ["missing"]):
            query = Query(root.child("Actor"))
            for order in orders:
                query.order(order)
            self._expect(store, query, pairs)
            # Order among the results is the tree order of keys on full ties.
            if orders == ["missing"]:
                keys = [k for k, _ in store.query(query.copy()).items()]
                assert keys == sorted(keys)

    def test_query_keys_only_items_and_counters(self, store: Datastore, root: Key) -> None:
        pairs = self._fill_people(store, root)
        query = Query(root.child("Actor"), keys_only=True).order("-age")
        keys = list(store.query(query))
        assert all(isinstance(k, Key) for k in keys)
        assert len(keys) == len(pairs)
        cursor = store.query(Query(root.child("Actor"), offset=2, limit=3).order("+age"))
        items = list(cursor.items())
        assert len(items) == 3 and all(isinstance(k, Key) for k, _ in items)
        assert cursor.returned == 3
        assert cursor.skipped == 2
        with pytest.raises(RuntimeError):
            list(cursor)

    def test_query_offset_limit(self, store: Datastore, root: Key) -> None:
        pairs = self._fill_people(store, root)
        for offset in (0, 1, 5, 6, 10):
            for limit in (None, 0, 1, 2, 6, 100):
                query = Query(root.child("Actor"), limit=limit, offset=offset).order("-age")
                self._expect(store, query, pairs)
                cursor = store.query(query.copy())
                n = len(list(cursor))
                assert cursor.returned == n
                assert cursor.skipped == (min(offset, len(pairs)) if limit != 0 else 0)

    def test_query_empty_store(self, store: Datastore, root: Key) -> None:
        assert list(store.query(Query(root))) == []
        assert list(store.query(Query(root, recursive=True).order("x"))) == []

    # -- the differential test -------------------------------------------------------

    def test_differential_queries(self, store: Datastore) -> None:
        bytes_only = self.bytes_only

        @settings(
            max_examples=self.differential_examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(data=st.data(), objects=strategies.objects(bytes_only))
        def check(data: st.DataObject, objects: dict[tuple[str, ...], Any]) -> None:
            root = Key("/d" + uuid.uuid4().hex[:12])
            reference = [(root.child(Key(list(parts))), value) for parts, value in objects.items()]
            store.put_many(reference)
            try:
                for _ in range(4):
                    query = data.draw(strategies.queries(root, bytes_only))
                    self._expect(store, query, reference)
                    if not query.orders and query.limit is not None:
                        continue
                    cursor = store.query(query.copy())
                    want = engine.run(query, reference)
                    assert len(list(cursor.items())) == len(list(want.items()))
                    assert cursor.skipped == want.skipped, query
            finally:
                store.delete_many([k for k, _ in reference])

        check()
