"""A cache in front of a store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.datastore import Datastore, items_of
from ..core.key import Key, KeyLike, to_key
from .shim import ShimDatastore

__all__ = ["CacheShimDatastore"]


class CacheShimDatastore(ShimDatastore):
    """Reads go to ``cache`` first and fill it on a miss; writes go to both.

    The child is the store of record: it is written first, so a failure
    leaves the cache no newer than the child. Queries go to the child only,
    since a cache holds an arbitrary subset.
    """

    def __init__(self, datastore: Datastore, cache: Datastore) -> None:
        super().__init__(datastore)
        if not isinstance(cache, Datastore):
            raise TypeError(f"cache must be a Datastore, not {type(cache).__name__}")
        self.cache_datastore = cache

    def get(self, key: KeyLike) -> Any:
        key = to_key(key)
        value = self.cache_datastore.get(key)
        if value is None:
            value = self.child_datastore.get(key)
            if value is not None:
                self.cache_datastore.put(key, value)
        return value

    def put(self, key: KeyLike, value: Any) -> None:
        key = to_key(key)
        self.child_datastore.put(key, value)
        self.cache_datastore.put(key, value)

    def delete(self, key: KeyLike) -> None:
        key = to_key(key)
        self.child_datastore.delete(key)
        self.cache_datastore.delete(key)

    def contains(self, key: KeyLike) -> bool:
        key = to_key(key)
        return self.cache_datastore.contains(key) or self.child_datastore.contains(key)

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        keys = [to_key(k) for k in keys]
        values = self.cache_datastore.get_many(keys)
        missing = [i for i, v in enumerate(values) if v is None]
        if missing:
            found = self.child_datastore.get_many([keys[i] for i in missing])
            fill = []
            for i, value in zip(missing, found, strict=True):
                values[i] = value
                if value is not None:
                    fill.append((keys[i], value))
            if fill:
                self.cache_datastore.put_many(fill)
        return values

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        pairs = items_of(items)
        self.child_datastore.put_many(pairs)
        self.cache_datastore.put_many(pairs)

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        keys = [to_key(k) for k in keys]
        self.child_datastore.delete_many(keys)
        self.cache_datastore.delete_many(keys)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        self.child_datastore._apply_batch(puts, deletes)
        self.cache_datastore._apply_batch(puts, deletes)

    def close(self) -> None:
        try:
            self.cache_datastore.close()
        finally:
            super().close()
