"""Tiers of stores, fastest first: a cache hierarchy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.datastore import items_of
from ..core.key import Key, KeyLike, to_key
from ..core.query import Cursor, Query
from .collection import DatastoreCollection

__all__ = ["TieredDatastore"]


class TieredDatastore(DatastoreCollection):
    """``TieredDatastore([fast, ..., complete])``.

    ``get`` returns the first hit and copies it into the tiers above the one
    that had it; ``put`` and ``delete`` write through to every tier, last
    (the complete store) first, so that a failure never leaves a cache newer
    than the store of record; queries ask the last tier, the only complete one.
    """

    def get(self, key: KeyLike) -> Any:
        key = to_key(key)
        for index, store in enumerate(self.datastores):
            value = store.get(key)
            if value is not None:
                for upper in self.datastores[:index]:
                    upper.put(key, value)
                return value
        return None

    def put(self, key: KeyLike, value: Any) -> None:
        key = to_key(key)
        for store in reversed(self.datastores):
            store.put(key, value)

    def delete(self, key: KeyLike) -> None:
        key = to_key(key)
        for store in reversed(self.datastores):
            store.delete(key)

    def contains(self, key: KeyLike) -> bool:
        key = to_key(key)
        return any(store.contains(key) for store in self.datastores)

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        keys = [to_key(k) for k in keys]
        values: list[Any] = [None] * len(keys)
        missing = list(range(len(keys)))
        for index, store in enumerate(self.datastores):
            if not missing:
                break
            found = store.get_many([keys[i] for i in missing])
            hits = [(i, v) for i, v in zip(missing, found, strict=True) if v is not None]
            if hits:
                for upper in self.datastores[:index]:
                    upper.put_many([(keys[i], v) for i, v in hits])
                for i, v in hits:
                    values[i] = v
            missing = [i for i, v in zip(missing, found, strict=True) if v is None]
        return values

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        pairs = items_of(items)
        for store in reversed(self.datastores):
            store.put_many(pairs)

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        keys = [to_key(k) for k in keys]
        for store in reversed(self.datastores):
            store.delete_many(keys)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        for store in reversed(self.datastores):
            store._apply_batch(puts, deletes)

    def query(self, query: Query) -> Cursor:
        if not self.datastores:
            raise ValueError("a TieredDatastore with no tiers cannot answer queries")
        return self.datastores[-1].query(query)
