"""Tiered, sharded and mounted collections: the conformance suite and their own behaviour."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from datastore import (
    Datastore,
    DatastoreCollection,
    DictDatastore,
    Key,
    MountDatastore,
    Query,
    ShardedDatastore,
    TieredDatastore,
)
from datastore.collections.sharded import stable_hash
from datastore.testing import DatastoreTests


class TestTiered(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield TieredDatastore([DictDatastore(), DictDatastore(), DictDatastore()])


class TestSharded(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield ShardedDatastore([DictDatastore() for _ in range(4)])


class TestMount(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield MountDatastore({"/": DictDatastore(), "/m": DictDatastore(), "/m/deeper": DictDatastore()})

    @pytest.fixture
    def root(self, store: Datastore) -> Iterator[Key]:
        # Route every contract case through the '/m' mount (prefix removal and
        # restoration); the differential test's own roots use the '/' mount.
        yield Key("/m/t1")


# -- tiered -------------------------------------------------------------------------


def test_tiered_get_fills_upper_tiers() -> None:
    fast, middle, slow = DictDatastore(), DictDatastore(), DictDatastore()
    ds = TieredDatastore([fast, middle, slow])
    slow.put("/a", 1)
    assert ds.get("/a") == 1
    assert fast.get("/a") == 1 and middle.get("/a") == 1
    middle.put("/b", 2)
    assert ds.get_many(["/b", "/zz"]) == [2, None]
    assert fast.get("/b") == 2 and slow.get("/b") is None
    ds.put("/c", 3)
    assert all(t.get("/c") == 3 for t in (fast, middle, slow))
    ds.delete("/c")
    assert all(t.get("/c") is None for t in (fast, middle, slow))
    slow.put("/q/1", {"x": 1})
    assert [v for v in ds.query(Query("/q"))] == [{"x": 1}]
    with pytest.raises(ValueError):
        TieredDatastore([]).query(Query("/"))


def test_collection_closes_every_store() -> None:
    closed: list[int] = []

    class Closing(DictDatastore):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

        def close(self) -> None:
            closed.append(self.n)

    with TieredDatastore([Closing(1), Closing(2)]) as ds:
        assert isinstance(ds, DatastoreCollection)
    assert closed == [1, 2]
    with pytest.raises(TypeError):
        TieredDatastore([{}])  # type: ignore[list-item]


# -- sharded ------------------------------------------------------------------------


def test_sharded_places_each_key_on_one_shard() -> None:
    shards = [DictDatastore() for _ in range(5)]
    ds = ShardedDatastore(shards)
    for i in range(100):
        ds.put(f"/k/{i}", i)
    for i in range(100):
        holders = [s for s in shards if s.contains(f"/k/{i}")]
        assert holders == [shards[stable_hash(Key(f"/k/{i}")) % 5]]
    assert sum(1 for s in shards if list(s.query(Query("/k")))) > 1


def test_default_sharding_is_stable_across_processes() -> None:
    keys = ["/a", "/hello", "/Comedy/MontyPython/Actor:JohnCleese", "/ünï"]
    here = [stable_hash(Key(k)) for k in keys]
    code = (
        "from datastore import Key; from datastore.collections.sharded import stable_hash;"
        f"print([stable_hash(Key(k)) for k in {keys!r}])"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        assert out.strip() == str(here)
    # A fixed value: the function must not change between releases either.
    assert stable_hash(Key("/hello")) == 0xb70a47db


def test_sharded_query_is_the_global_page() -> None:
    shards = [DictDatastore() for _ in range(3)]
    ds = ShardedDatastore(shards, sharding_fn=lambda key: int(key.name) % 3)
    for i in range(30):
        ds.put(f"/n/{i}", {"v": i})
    # All the largest values live on one shard: a per-shard limit would be wrong.
    query = Query("/n", limit=4, offset=2).order("-v")
    assert [v["v"] for v in ds.query(query)] == [27, 26, 25, 24]
    cursor = ds.query(Query("/n", offset=28, limit=5).order("+v"))
    assert [v["v"] for v in cursor] == [28, 29]
    assert cursor.skipped == 28


def test_hello_sharding_classic_example() -> None:
    import datastore.core

    shards = [datastore.DictDatastore() for i in range(0, 10)]
    ds = datastore.ShardedDatastore(shards)
    hello = datastore.Key("hello")
    ds.put(hello, "world")
    assert ds.contains(hello) is True
    assert ds.get(hello) == "world"
    ds.delete(hello)
    assert ds.get(hello) is None
    assert datastore.core.ShardedDatastore is ShardedDatastore


# -- mount --------------------------------------------------------------------------


def test_mount_routes_by_longest_prefix() -> None:
    root, cache, deep = DictDatastore(), DictDatastore(), DictDatastore()
    ds = MountDatastore({Key("/cache"): cache, Key("/"): root, "/cache/deep": deep})
    ds.put("/cache/x", 1)
    ds.put("/cache/deep/y", 2)
    ds.put("/cachex/z", 3)
    ds.put("/cache", 4)
    assert cache.get("/x") == 1
    assert deep.get("/y") == 2
    assert root.get("/cachex/z") == 3 and root.get("/cache") == 4
    assert ds.get("/cache/deep/y") == 2
    got = sorted(str(k) for k in ds.query(Query("/", recursive=True, keys_only=True)))
    assert got == ["/cache", "/cache/deep/y", "/cache/x", "/cachex/z"]
    assert [str(k) for k in ds.query(Query("/cache", keys_only=True))] == ["/cache/x"]


def test_mount_hides_objects_shadowed_by_a_deeper_mount() -> None:
    root, inner = DictDatastore(), DictDatastore()
    ds = MountDatastore({"/": root, "/a": inner})
    root.put("/a/hidden", "shadowed")  # written behind the mount's back
    ds.put("/a/seen", "ok")
    assert ds.get("/a/hidden") is None
    assert [v for v in ds.query(Query("/a"))] == ["ok"]


def test_mount_without_root_refuses_unmounted_writes() -> None:
    ds = MountDatastore({"/only": DictDatastore()})
    assert ds.get("/elsewhere") is None
    with pytest.raises(ValueError, match="mount"):
        ds.put("/elsewhere", 1)
