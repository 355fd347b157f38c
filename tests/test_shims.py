"""Every shim passes the conformance suite around a DictDatastore, plus its own behaviour."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import datastore
import datastore.serialize
from datastore import (
    CacheShimDatastore,
    Datastore,
    DictDatastore,
    DirectoryDatastore,
    DirectoryTreeDatastore,
    Key,
    KeyTransformDatastore,
    LoggingDatastore,
    LowercaseKeyDatastore,
    NamespaceDatastore,
    NestedPathDatastore,
    Query,
    SerializerShimDatastore,
    ShimDatastore,
    SymlinkDatastore,
)
from datastore.testing import DatastoreTests as _Suite


class DatastoreTests(_Suite):
    # Each shim's own logic is small; fewer random stores keep the run short.
    differential_examples = 25


class TestShim(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield ShimDatastore(DictDatastore())


class TestCacheShim(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield CacheShimDatastore(DictDatastore(), cache=DictDatastore())


class TestLogging(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield LoggingDatastore(DictDatastore())


class TestKeyTransform(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield KeyTransformDatastore(DictDatastore(), keytransform=lambda k: k)


class TestNamespace(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield NamespaceDatastore(Key("/ns/deep"), DictDatastore())


class TestNestedPath(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield NestedPathDatastore(DictDatastore())


class TestSymlink(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield SymlinkDatastore(DictDatastore())


class TestDirectory(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield DirectoryDatastore(DictDatastore())


class TestDirectoryTree(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield DirectoryTreeDatastore(DictDatastore())


class TestSerializerShim(DatastoreTests):
    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield SerializerShimDatastore(DictDatastore())


class TestSerializeShimFunction(DatastoreTests):
    @pytest.fixture
    def store(self) -> Iterator[Datastore]:
        yield datastore.serialize.shim(DictDatastore(), datastore.serialize.json)


# -- behaviour particular to each shim ------------------------------------------------


def test_shim_closes_child() -> None:
    closed: list[bool] = []

    class Closing(DictDatastore):
        def close(self) -> None:
            closed.append(True)

    with ShimDatastore(Closing()):
        pass
    assert closed == [True]
    with pytest.raises(TypeError):
        ShimDatastore({})  # type: ignore[arg-type]


def test_cache_shim_fills_cache_on_miss() -> None:
    child, cache = DictDatastore(), DictDatastore()
    ds = CacheShimDatastore(child, cache=cache)
    child.put("/a", 1)
    assert cache.get("/a") is None
    assert ds.get("/a") == 1
    assert cache.get("/a") == 1
    ds.put("/b", 2)
    assert child.get("/b") == 2 and cache.get("/b") == 2
    ds.delete("/b")
    assert child.get("/b") is None and cache.get("/b") is None
    child.put("/c", 3)
    assert ds.get_many(["/a", "/c", "/z"]) == [1, 3, None]
    assert cache.get("/c") == 3


def test_logging_levels(caplog: pytest.LogCaptureFixture) -> None:
    ds = LoggingDatastore(DictDatastore(), logger=logging.getLogger("test.ds"))
    with caplog.at_level(logging.INFO, logger="test.ds"):
        ds.put("/secret", "s3cr3t-value")
        ds.get("/secret")
    text = caplog.text
    assert "put /secret" in text and "get /secret" in text
    assert "s3cr3t-value" not in text  # values only at DEBUG
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="test.ds"):
        ds.get("/secret")
    assert "s3cr3t-value" in caplog.text


def test_lowercase_keys() -> None:
    child = DictDatastore()
    ds = LowercaseKeyDatastore(child)
    ds.put("/Hello/World", 1)
    assert ds.get("/hello/WORLD") == 1
    assert child.get("/hello/world") == 1
    assert [k for k in ds.query(Query("/HELLO", keys_only=True))] == [Key("/hello/world")]


def test_namespace_prefixes_keys() -> None:
    child = DictDatastore()
    ds = NamespaceDatastore("/ns", child)
    ds.put("/a/b", 1)
    assert child.get("/ns/a/b") == 1
    assert child.get("/a/b") is None
    assert list(ds.query(Query("/a").filter("missing", "=", None)).items()) == [(Key("/a/b"), 1)]


def test_nested_path_layout_matches_the_classic_example() -> None:
    child = DictDatastore()
    ds = NestedPathDatastore(child, depth=3, length=2)
    ds.put(Key("/abcdefghijk"), 1)
    assert ds.get(Key("/abcdefghijk")) == 1
    assert child.get(Key("/abcdefghijk")) is None
    assert child.get(Key("/ab/cd/ef/abcdefghijk")) == 1
    ds.put(Key("abc"), 2)
    assert child.get(Key("/ab/ca/bc/abc")) == 2
    assert sorted(k for k in ds.query(Query("/", keys_only=True))) == [Key("/abc"), Key("/abcdefghijk")]
    with pytest.raises(ValueError):
        NestedPathDatastore(child, depth=0)


def test_symlinks() -> None:
    ds = SymlinkDatastore(DictDatastore())
    ds.put("/source", {"v": 1})
    ds.link("/source", "/link")
    ds.link("/link", "/link2")
    assert ds.get("/link") == {"v": 1}
    assert ds.get("/link2") == {"v": 1}
    ds.put("/link2", {"v": 2})  # writes follow links
    assert ds.get("/source") == {"v": 2}
    with pytest.raises(ValueError, match="cycle"):
        ds.link("/link2", "/source")
    with pytest.raises(ValueError):
        ds.link("/a", "/a")
    ds.delete("/link")  # removes the link, not the source
    assert ds.get("/link") is None and ds.get("/source") == {"v": 2}
    # A cycle made behind the shim's back is refused on read.
    raw = ds.child_datastore
    raw.put("/x", {"datastore.link": "/y"})
    raw.put("/y", {"datastore.link": "/x"})
    with pytest.raises(ValueError, match="cycle"):
        ds.get("/x")


def test_directory() -> None:
    ds = DirectoryDatastore(DictDatastore())
    ds.directory("/dir")
    assert list(ds.directory_read("/dir")) == []
    ds.directory_add("/dir", "/dir/a")
    ds.directory_add("/dir", "/dir/b")
    ds.directory_add("/dir", "/dir/a")
    assert list(ds.directory_read("/dir")) == [Key("/dir/a"), Key("/dir/b")]
    ds.directory_remove("/dir", "/dir/a")
    ds.directory_remove("/dir", "/dir/zzz")
    assert list(ds.directory_read("/dir")) == [Key("/dir/b")]
    ds.put("/notdir", "text")
    with pytest.raises(ValueError, match="not a directory"):
        list(ds.directory_read("/notdir"))


def test_directory_tree_tracks_children() -> None:
    child = DictDatastore()
    ds = DirectoryTreeDatastore(child)
    ds.put("/a/b", 1)
    ds.put("/a/c", 2)
    ds.put("/top", 3)
    assert child.get(Key("/a").instance("directory")) == ["/a/b", "/a/c"]
    assert child.get("/:directory") == ["/top"]
    ds.delete("/a/b")
    assert list(ds.directory_read(Key("/a:directory"))) == [Key("/a/c")]
    assert [k for k in ds.query(Query("/a", recursive=True, keys_only=True))] == [Key("/a/c")]


def test_serializer_shim_stores_serialized_data() -> None:
    child = DictDatastore()
    ds = SerializerShimDatastore(child)
    ds.put("/a", {"x": [1, 2]})
    assert child.get("/a") == b'{"x":[1,2]}'
    assert ds.get("/a") == {"x": [1, 2]}

    class Upper:
        def dumps(self, value: Any) -> str:
            return str(value).upper()

        def loads(self, data: str) -> str:
            return data.lower()

    ds2 = SerializerShimDatastore(DictDatastore(), serializer=Upper())
    ds2.put("/a", "hello")
    assert ds2.child_datastore.get("/a") == "HELLO"
    assert ds2.get("/a") == "hello"
    with pytest.raises(TypeError):
        SerializerShimDatastore(DictDatastore(), serializer=object())
