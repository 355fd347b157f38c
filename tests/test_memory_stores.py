"""The conformance suite on the in-memory stores, and what is particular to them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import datastore
from datastore import DictDatastore, Key, NullDatastore, Query
from datastore.testing import DatastoreTests


class TestDictDatastore(DatastoreTests):
    holds_any_value = True

    @pytest.fixture
    def store(self) -> Iterator[DictDatastore]:
        ds = DictDatastore()
        yield ds
        ds.close()


def test_dict_keeps_values_by_reference() -> None:
    ds = DictDatastore()
    value = {"a": [1]}
    ds.put("/x", value)
    assert ds.get("/x") is value


def test_null_datastore_holds_nothing() -> None:
    ds = NullDatastore()
    ds.put("/a", 1)
    assert ds.get("/a") is None
    assert not ds.contains("/a")
    assert list(ds.query(Query(Key("/")))) == []
    with pytest.raises(ValueError):
        ds.put("/a", None)
    with pytest.raises(TypeError):
        ds.get(3)  # type: ignore[arg-type]


def test_open_memory_url() -> None:
    ds = datastore.open("memory://")
    assert isinstance(ds, DictDatastore)
    with pytest.raises(datastore.UnknownScheme, match="known schemes"):
        datastore.open("nosuch://x")
    with pytest.raises(ValueError, match="scheme://"):
        datastore.open("/just/a/path")
