"""The classic "Hello Tiered Access" example: an LRU cache in front of MongoDB in front of files.

The original README ran it against ``pymongo.Connection().test_db``; here the
client comes from the test server's URL and the database is dropped after.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest

import datastore
from datastore.filesystem import FileSystemDatastore
from datastore.mongo import MongoDatastore
from datastore.pylru import LRUCacheDatastore
from servers import server_url


@pytest.fixture
def test_db() -> Iterator[Any]:
    """What ``pymongo.MongoClient().test_db`` was in the example: a database of its own."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(
        server_url("DATASTORE_TEST_MONGODB"), serverSelectionTimeoutMS=5000
    )
    name = f"test_db_{uuid.uuid4().hex[:10]}"
    yield client[name]
    client.drop_database(name)
    client.close()


def test_hello_tiered_access(test_db: Any, tmp_path: Path) -> None:
    cache = LRUCacheDatastore(1000)
    mongo = MongoDatastore(test_db)
    fs = FileSystemDatastore(tmp_path)
    ds = datastore.TieredDatastore([cache, mongo, fs])

    hello = datastore.Key("hello")
    ds.put(hello, "world")
    assert ds.contains(hello)
    assert ds.get(hello) == "world"
    # written through to every tier
    assert cache.get(hello) == mongo.get(hello) == fs.get(hello) == "world"

    ds.delete(hello)
    assert ds.get(hello) is None
    assert not ds.contains(hello)
    assert cache.get(hello) is None and mongo.get(hello) is None and fs.get(hello) is None


def test_tiers_fill_from_mongo(test_db: Any, tmp_path: Path) -> None:
    cache = LRUCacheDatastore(10)
    mongo = MongoDatastore(test_db)
    ds = datastore.TieredDatastore([cache, mongo, FileSystemDatastore(tmp_path)])
    mongo.put("/only/in/mongo", {"n": 1})
    assert cache.get("/only/in/mongo") is None
    assert ds.get("/only/in/mongo") == {"n": 1}
    assert cache.get("/only/in/mongo") == {"n": 1}  # filled on the way up
    ds.put("/q/a", {"n": 2})
    ds.put("/q/b", {"n": 3})
    # queries ask the last, complete tier (the filesystem)
    assert [v["n"] for v in ds.query(datastore.Query("/q").order("-n"))] == [3, 2]
    ds.close()
