"""LRUCacheDatastore: the conformance suite, eviction, and its place in front of a real store."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import datastore
from datastore import CacheShimDatastore, Key, Query, TieredDatastore
from datastore.filesystem import FileSystemDatastore
from datastore.pylru import LRUCacheDatastore
from datastore.testing import DatastoreTests
from datastore.testing.concurrency import run_threads


class TestLRUCache(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[LRUCacheDatastore]:
        ds = LRUCacheDatastore(10_000)  # larger than any test's data: nothing is evicted
        yield ds
        ds.close()


def test_evicts_the_least_recently_used() -> None:
    cache = LRUCacheDatastore(3)
    cache.put("/a", 1)
    cache.put("/b", 2)
    cache.put("/c", 3)
    assert cache.get("/a") == 1  # /a is now the most recently used; /b the least
    assert cache.contains("/b")  # looking does not count as use
    cache.put("/d", 4)
    assert cache.get("/b") is None
    assert cache.get_many(["/a", "/c", "/d"]) == [1, 3, 4]
    cache.put("/c", 30)  # overwrite is a use: /a is now the least recently used
    cache.put("/e", 5)
    assert not cache.contains("/a")
    assert sorted(str(k) for k in cache.query(Query(Key("/"), keys_only=True))) == [
        "/c",
        "/d",
        "/e",
    ]


def test_holds_any_value_by_reference() -> None:
    cache = LRUCacheDatastore(2)
    value = {1, 2}
    cache.put("/set", value)
    assert cache.get("/set") is value


def test_query_scope_over_what_it_holds() -> None:
    cache = LRUCacheDatastore(100)
    cache.put_many({"/a/1": 1, "/a:x": 2, "/a/b/2": 3, "/ab/3": 4, "/a": 5})
    assert sorted(cache.query(Query(Key("/a")))) == [1, 2]
    assert sorted(cache.query(Query(Key("/a"), recursive=True))) == [1, 2, 3]


def test_size_is_checked() -> None:
    with pytest.raises(ValueError):
        LRUCacheDatastore(0)
    with pytest.raises(TypeError):
        LRUCacheDatastore("10")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LRUCacheDatastore(True)
    assert LRUCacheDatastore(7).size == 7


def test_threads_share_a_small_cache() -> None:
    cache = LRUCacheDatastore(50)

    def work(t: int) -> None:
        for i in range(2000):
            cache.put(f"/t{t}/{i}", i)
            got = cache.get(f"/t{t}/{i - 3}")
            assert got is None or got == i - 3
            if i % 100 == 0:
                list(cache.query(Query(Key("/"), recursive=True)))

    run_threads(work)
    assert len(list(cache.query(Query(Key("/"), recursive=True)))) == 50


def test_top_tier_of_tiered_datastore(tmp_path: Path) -> None:
    cache = LRUCacheDatastore(2)
    disk = FileSystemDatastore(tmp_path / "root")
    tiered = TieredDatastore([cache, disk])
    for i in range(5):
        tiered.put(f"/k{i}", i)
    assert disk.get_many([f"/k{i}" for i in range(5)]) == list(range(5))
    assert [cache.contains(f"/k{i}") for i in range(5)] == [False, False, False, True, True]
    assert tiered.get("/k0") == 0  # from disk, and copied into the cache ...
    assert cache.get("/k0") == 0
    assert not cache.contains("/k3")  # ... evicting its least recently used entry
    disk.put("/k0", "changed behind the cache's back")
    assert tiered.get("/k0") == 0  # served by the top tier
    tiered.delete("/k0")
    assert cache.get("/k0") is None and disk.get("/k0") is None
    # Queries ask the complete (last) tier, not the cache.
    assert sorted(tiered.query(Query(Key("/")))) == [1, 2, 3, 4]


def test_cache_of_cache_shim(tmp_path: Path) -> None:
    cache = LRUCacheDatastore(3)
    disk = FileSystemDatastore(tmp_path / "root")
    shim = CacheShimDatastore(disk, cache=cache)
    shim.put_many({f"/k{i}": {"i": i} for i in range(6)})
    assert disk.get("/k0") == {"i": 0}
    assert [cache.contains(f"/k{i}") for i in range(6)] == [False] * 3 + [True] * 3
    assert shim.get_many(["/k0", "/k5"]) == [{"i": 0}, {"i": 5}]
    assert cache.contains("/k0")
    Path(disk.object_path("/k0")).unlink()  # only the cache has it now
    assert shim.get("/k0") == {"i": 0}
    shim.delete("/k5")
    assert shim.get("/k5") is None and not cache.contains("/k5")
    assert len(list(shim.query(Query(Key("/"))))) == 4
    shim.close()  # closes (empties) the cache too
    assert not cache.contains("/k0")


def test_from_url() -> None:
    ds = datastore.open("lru://?size=1000")
    assert isinstance(ds, LRUCacheDatastore) and ds.size == 1000
    assert datastore.open("lru://", size=5).size == 5  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="size"):
        datastore.open("lru://")
    with pytest.raises(ValueError, match="integer"):
        datastore.open("lru://?size=big")
    with pytest.raises(ValueError):
        datastore.open("lru://?size=0")
    with pytest.raises(ValueError, match="host or path"):
        datastore.open("lru://somewhere?size=3")
    with pytest.raises(ValueError, match="unknown option"):
        datastore.open("lru://?size=3&ttl=5")


def test_missing_driver_names_the_extra() -> None:
    src = str(Path(datastore.__file__).resolve().parent.parent)
    code = (
        f"import sys; sys.path.insert(0, {src!r}); sys.modules['pylru'] = None\n"
        "import datastore\n"
        "try:\n"
        "    datastore.open('lru://?size=3')\n"
        "except datastore.MissingDriver as exc:\n"
        "    assert isinstance(exc, ImportError); print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'datastore-kit[lru]'" in out.stdout
