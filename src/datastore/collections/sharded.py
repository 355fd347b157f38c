"""Data spread over several stores by a stable hash of the key."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.datastore import Datastore, items_of
from ..core.key import Key, KeyLike, to_key
from ..core.query import Cursor, Query
from .collection import DatastoreCollection, merge_queries

__all__ = ["ShardedDatastore", "stable_hash"]


def stable_hash(key: Key) -> int:
    """CRC-32 of the key's UTF-8 string: the same in every process and on every machine.

    (Python's ``hash`` of a str is salted per process, so it would scatter
    keys differently after every restart.)
    """
    return zlib.crc32(key._string.encode("utf-8"))


class ShardedDatastore(DatastoreCollection):
    """Each key lives on exactly one store: ``stores[sharding_fn(key) % len(stores)]``.

    Queries ask every shard and merge the answers so that order, offset and
    limit apply to the whole, never per shard.
    """

    def __init__(
        self, stores: Iterable[Datastore], sharding_fn: Callable[[Key], int] | None = None
    ) -> None:
        super().__init__(stores)
        if not self.datastores:
            raise ValueError("a ShardedDatastore needs at least one store")
        self.sharding_fn = sharding_fn or stable_hash

    def shard(self, key: KeyLike) -> Datastore:
        """The store that holds ``key``."""
        return self.datastores[self.sharding_fn(to_key(key)) % len(self.datastores)]

    def _group(self, keys: Iterable[Key]) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(self.sharding_fn(key) % len(self.datastores), []).append(i)
        return groups

    def get(self, key: KeyLike) -> Any:
        key = to_key(key)
        return self.shard(key).get(key)

    def put(self, key: KeyLike, value: Any) -> None:
        key = to_key(key)
        self.shard(key).put(key, value)

    def delete(self, key: KeyLike) -> None:
        key = to_key(key)
        self.shard(key).delete(key)

    def contains(self, key: KeyLike) -> bool:
        key = to_key(key)
        return self.shard(key).contains(key)

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        wanted = [to_key(k) for k in keys]
        values: list[Any] = [None] * len(wanted)
        for shard, indexes in self._group(wanted).items():
            found = self.datastores[shard].get_many([wanted[i] for i in indexes])
            for i, value in zip(indexes, found, strict=True):
                values[i] = value
        return values

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        pairs = items_of(items)
        for shard, indexes in self._group(k for k, _ in pairs).items():
            self.datastores[shard].put_many([pairs[i] for i in indexes])

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        doomed = [to_key(k) for k in keys]
        for shard, indexes in self._group(doomed).items():
            self.datastores[shard].delete_many([doomed[i] for i in indexes])

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        # Atomic per shard where the shard is; not across shards.
        put_groups = self._group(k for k, _ in puts)
        delete_groups = self._group(deletes)
        for shard in sorted(set(put_groups) | set(delete_groups)):
            self.datastores[shard]._apply_batch(
                [puts[i] for i in put_groups.get(shard, [])],
                [deletes[i] for i in delete_groups.get(shard, [])],
            )

    def query(self, query: Query) -> Cursor:
        return merge_queries(query, ((store, query, _same) for store in self.datastores))


def _same(key: Key) -> Key:
    return key
