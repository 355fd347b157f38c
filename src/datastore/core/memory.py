"""Stores that live in process memory: :class:`NullDatastore` and :class:`DictDatastore`."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from . import engine
from .datastore import Datastore, check_value, items_of, write_key
from .key import Key, KeyLike, to_key
from .query import Cursor, Query

__all__ = ["DictDatastore", "NullDatastore"]


class NullDatastore(Datastore):
    """Stores nothing: every get misses, every put vanishes, every query is empty.

    Useful as a placeholder tier and to measure the cost of the layers above.
    """

    def get(self, key: KeyLike) -> Any:
        to_key(key)
        return None

    def put(self, key: KeyLike, value: Any) -> None:
        write_key(key)
        check_value(value)

    def delete(self, key: KeyLike) -> None:
        to_key(key)

    def contains(self, key: KeyLike) -> bool:
        to_key(key)
        return False

    def query(self, query: Query) -> Cursor:
        return engine.run(query, ())


class DictDatastore(Datastore):
    """An in-memory store backed by a ``dict``; values are kept by reference.

    Reads take no lock (a single dict lookup is atomic in CPython); writes
    and query snapshots take one, so the store is safe to share between
    threads and a query sees a consistent snapshot.
    """

    def __init__(self) -> None:
        self._items: dict[str, tuple[Key, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: KeyLike) -> Any:
        string = key._string if key.__class__ is Key else to_key(key)._string
        found = self._items.get(string)
        return None if found is None else found[1]

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        if value is None:
            check_value(value)
        with self._lock:
            self._items[key._string] = (key, value)

    def delete(self, key: KeyLike) -> None:
        string = to_key(key)._string
        with self._lock:
            self._items.pop(string, None)

    def contains(self, key: KeyLike) -> bool:
        string = key._string if key.__class__ is Key else to_key(key)._string
        return string in self._items

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        items = self._items
        out = []
        for key in keys:
            found = items.get(to_key(key)._string)
            out.append(None if found is None else found[1])
        return out

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        pairs = items_of(items)
        with self._lock:
            for key, value in pairs:
                self._items[key._string] = (key, value)

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        strings = [to_key(k)._string for k in keys]
        with self._lock:
            for string in strings:
                self._items.pop(string, None)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        # One lock for the whole batch: other threads see all of it or none.
        with self._lock:
            for key, value in puts:
                self._items[key._string] = (key, value)
            for key in deletes:
                self._items.pop(key._string, None)

    def query(self, query: Query) -> Cursor:
        with self._lock:
            snapshot = list(self._items.values())
        return engine.run(query, snapshot)

    def __repr__(self) -> str:
        return f"<DictDatastore {len(self._items)} objects>"
