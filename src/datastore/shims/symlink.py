"""Symbolic links between keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core import engine
from ..core.datastore import items_of
from ..core.key import Key, KeyLike, to_key
from ..core.query import Cursor, Query
from .shim import ShimDatastore

__all__ = ["LINK_FIELD", "SymlinkDatastore"]

#: A link is stored as ``{LINK_FIELD: "/source/key"}``; this field name is reserved.
LINK_FIELD = "datastore.link"

#: Longest chain of links followed before a read gives up as a cycle.
MAX_HOPS = 64


def _link_target(value: Any) -> Key | None:
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(LINK_FIELD), str):
        return Key(value[LINK_FIELD])
    return None


class SymlinkDatastore(ShimDatastore):
    """Lets a key stand for another: ``link(source, target)`` makes ``target`` follow ``source``.

    Reads and writes through ``target`` reach ``source`` (following chains of
    links); ``delete(target)`` removes the link itself. A link that would
    close a cycle raises ValueError, and so does reading a cycle made by
    hand. Links are stored in the child as ``{"datastore.link": "/source"}``,
    so that dict shape is reserved.
    """

    def link(self, source_key: KeyLike, target_key: KeyLike) -> None:
        """Make ``target_key`` a link to ``source_key``."""
        source, target = to_key(source_key), to_key(target_key)
        if source == target:
            raise ValueError(f"cannot link {target} to itself")
        hop: Key | None = source
        for _ in range(MAX_HOPS):
            if hop is None:
                break
            if hop == target:
                raise ValueError(f"linking {target} -> {source} would make a cycle")
            hop = _link_target(self.child_datastore.get(hop))
        else:
            raise ValueError(f"linking {target} -> {source} would make a cycle")
        self.child_datastore.put(target, {LINK_FIELD: str(source)})

    def _resolve(self, key: Key) -> tuple[Key, Any]:
        """Follow links from ``key``: the final key and its value."""
        seen = {key}
        value = self.child_datastore.get(key)
        for _ in range(MAX_HOPS):
            target = _link_target(value)
            if target is None:
                return key, value
            if target in seen:
                raise ValueError(f"the links from {key} form a cycle")
            seen.add(target)
            key, value = target, self.child_datastore.get(target)
        raise ValueError(f"the links from {key} form a cycle (over {MAX_HOPS} hops)")

    def get(self, key: KeyLike) -> Any:
        return self._resolve(to_key(key))[1]

    def contains(self, key: KeyLike) -> bool:
        return self.get(key) is not None

    def put(self, key: KeyLike, value: Any) -> None:
        final, _ = self._resolve(to_key(key))
        self.child_datastore.put(final, value)

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        return [self.get(k) for k in keys]

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self.child_datastore.put_many([(self._resolve(k)[0], v) for k, v in items_of(items)])

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        self.child_datastore._apply_batch([(self._resolve(k)[0], v) for k, v in puts], deletes)

    def query(self, query: Query) -> Cursor:
        scope = Query(query.key, recursive=query.recursive)
        pairs = []
        for key, value in self.child_datastore.query(scope).items():
            if _link_target(value) is not None:
                value = self._resolve(key)[1]
                if value is None:
                    continue  # a dangling link holds nothing
            pairs.append((key, value))
        return engine.run(query, pairs, scoped=True)
