"""The conformance suite on the in-memory stores, and what is particular to them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


class _Unequal:
    """A value whose == raises, like a numpy array's truth value: no bulk check may compare it."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("the truth value of this comparison is ambiguous")

    __hash__ = object.__hash__


def test_put_many_never_compares_values(tmp_path: Any) -> None:
    from datastore.serialize import pickle
    from datastore.sqlite import SQLiteDatastore

    values = [_Unequal(), _Unequal()]
    memory = DictDatastore()
    memory.put_many([(Key("/u/a"), values[0]), (Key("/u/b"), values[1])])
    assert memory.get("/u/b") is values[1]
    with SQLiteDatastore(str(tmp_path / "u.db"), serializer=pickle) as store:
        store.put_many({Key("/u/a"): values[0], Key("/u/b"): [2]})
        got = store.get_many(["/u/a", "/u/b"])
        assert isinstance(got[0], _Unequal) and got[1] == [2]
    with pytest.raises(ValueError, match="cannot put None"):
        memory.put_many([(Key("/u/c"), values[0]), (Key("/u/d"), None)])
    assert not memory.contains("/u/c")


def test_put_many_pairs_come_as_tuples_whatever_their_shape() -> None:
    # The whole-list shortcut hands back the caller's tuples (in a new list);
    # pairs given as lists are rebuilt as tuples, and the input is untouched.
    from datastore.core.datastore import items_of

    tuples = [(Key("/p/a"), 1), (Key("/p/b"), 2)]
    normal = items_of(tuples)
    assert normal == tuples and normal is not tuples
    assert all(type(pair) is tuple for pair in items_of([[Key("/p/a"), 1], (Key("/p/b"), 2)]))
    memory = DictDatastore()
    memory.put_many([[Key("/p/a"), 1], [Key("/p/b"), 2]])
    memory.put_many(tuples)
    assert memory.get_many(["/p/a", "/p/b"]) == [1, 2] and tuples == [(Key("/p/a"), 1), (Key("/p/b"), 2)]
