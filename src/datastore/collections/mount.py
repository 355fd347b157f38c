"""Stores mounted at key prefixes, like file systems at mount points."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.datastore import Datastore, items_of
from ..core.key import Key, KeyLike, to_key
from ..core.query import Cursor, Query
from .collection import DatastoreCollection, KeyMap, merge_queries

__all__ = ["MountDatastore"]


class MountDatastore(DatastoreCollection):
    """``MountDatastore({Key('/cache'): lru, Key('/'): db})``.

    A key goes to the store mounted at its longest matching prefix, bounded
    by namespaces (``/cache/x`` is under ``/cache``; ``/cachex`` and
    ``/cache`` itself are not), and that store sees the key with the prefix
    removed. A key under no mount reads as absent and cannot be written.
    Queries ask each mount that can hold part of the answer and return full
    keys; objects hidden by a deeper mount are not returned.
    """

    def __init__(self, mounts: Mapping[KeyLike, Datastore]) -> None:
        ordered = sorted(((to_key(p), s) for p, s in mounts.items()), key=lambda m: -len(m[0].list))
        self.mounts: list[tuple[Key, Datastore]] = ordered
        super().__init__(store for _, store in ordered)

    def _route(self, key: Key) -> tuple[Datastore, Key] | None:
        for prefix, store in self.mounts:
            if prefix.is_root:
                return store, key
            if key._string.startswith(prefix._string + "/"):
                return store, Key._from_normal(key._string[len(prefix._string) :])
        return None

    def _route_or_fail(self, key: Key) -> tuple[Datastore, Key]:
        routed = self._route(key)
        if routed is None:
            mounted = ", ".join(str(p) for p, _ in self.mounts)
            raise ValueError(f"no store is mounted above {key} (mounts: {mounted}); mount one at '/'")
        return routed

    def get(self, key: KeyLike) -> Any:
        routed = self._route(to_key(key))
        return None if routed is None else routed[0].get(routed[1])

    def contains(self, key: KeyLike) -> bool:
        routed = self._route(to_key(key))
        return routed is not None and routed[0].contains(routed[1])

    def put(self, key: KeyLike, value: Any) -> None:
        store, inner = self._route_or_fail(to_key(key))
        store.put(inner, value)

    def delete(self, key: KeyLike) -> None:
        routed = self._route(to_key(key))
        if routed is not None:
            routed[0].delete(routed[1])

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        return [self.get(k) for k in keys]

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        groups: dict[int, list[tuple[Key, Any]]] = {}
        for key, value in items_of(items):
            store, inner = self._route_or_fail(key)
            groups.setdefault(id(store), []).append((inner, value))
        for store in self.datastores:
            if id(store) in groups:
                store.put_many(groups[id(store)])

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        put_groups: dict[int, list[tuple[Key, Any]]] = {}
        delete_groups: dict[int, list[Key]] = {}
        for key, value in puts:
            store, inner = self._route_or_fail(key)
            put_groups.setdefault(id(store), []).append((inner, value))
        for key in deletes:
            routed = self._route(key)
            if routed is not None:
                delete_groups.setdefault(id(routed[0]), []).append(routed[1])
        for store in self.datastores:
            if id(store) in put_groups or id(store) in delete_groups:
                store._apply_batch(put_groups.get(id(store), []), delete_groups.get(id(store), []))

    def query(self, query: Query) -> Cursor:
        parts = []
        for prefix, store in self.mounts:
            key_map = self._key_map(prefix, store)
            if prefix.is_root or prefix == query.key or prefix.is_ancestor_of(query.key):
                sub = query.copy()
                cut = 0 if prefix.is_root else len(prefix._string)
                sub.key = Key._from_normal(query.key._string[cut:] or "/")
                parts.append((store, sub, key_map))
            elif query.recursive and (query.key.is_root or query.key.is_ancestor_of(prefix)):
                sub = query.copy()
                sub.key = Key._from_normal("/")
                sub.recursive = True
                parts.append((store, sub, key_map))
        return merge_queries(query, parts)

    def _key_map(self, prefix: Key, store: Datastore) -> KeyMap:
        """Map a mounted store's key to the full key, dropping keys a deeper mount hides."""

        def full(key: Key) -> Key | None:
            whole = key if prefix.is_root else Key._from_normal(prefix._string + key._string)
            routed = self._route(whole)
            return whole if routed is not None and routed[0] is store else None

        return full
