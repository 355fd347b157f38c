"""Shims that rename keys on the way to the child store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core import engine
from ..core.datastore import Datastore, items_of, write_key
from ..core.key import Key, KeyLike, to_key
from ..core.query import Cursor, Query
from .shim import ShimDatastore

__all__ = [
    "KeyTransformDatastore",
    "LowercaseKeyDatastore",
    "NamespaceDatastore",
    "NestedPathDatastore",
]

KeyTransform = Callable[[Key], Key]


class KeyTransformDatastore(ShimDatastore):
    """Applies ``keytransform`` to every key before it reaches the child.

    Queries are sent to the child with the transformed query key; result
    keys come back as the child holds them (a general transform cannot be
    undone). Subclasses whose transform can be undone return the original
    keys (see :class:`NamespaceDatastore`).
    """

    def __init__(self, datastore: Datastore, keytransform: KeyTransform | None = None) -> None:
        super().__init__(datastore)
        self.keytransform: KeyTransform = keytransform or (lambda key: key)

    def _transform(self, key: KeyLike) -> Key:
        return self.keytransform(to_key(key))

    def get(self, key: KeyLike) -> Any:
        return self.child_datastore.get(self._transform(key))

    def put(self, key: KeyLike, value: Any) -> None:
        self.child_datastore.put(self.keytransform(write_key(key)), value)

    def delete(self, key: KeyLike) -> None:
        self.child_datastore.delete(self._transform(key))

    def contains(self, key: KeyLike) -> bool:
        return self.child_datastore.contains(self._transform(key))

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        return self.child_datastore.get_many([self._transform(k) for k in keys])

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self.child_datastore.put_many([(self._transform(k), v) for k, v in items_of(items)])

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        self.child_datastore.delete_many([self._transform(k) for k in keys])

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        self.child_datastore._apply_batch(
            [(self._transform(k), v) for k, v in puts], [self._transform(k) for k in deletes]
        )

    def query(self, query: Query) -> Cursor:
        child_query = query.copy()
        child_query.key = self.keytransform(query.key)
        return self.child_datastore.query(child_query)


class LowercaseKeyDatastore(KeyTransformDatastore):
    """Makes keys case-insensitive by lowercasing them (results carry lowercase keys)."""

    def __init__(self, datastore: Datastore) -> None:
        super().__init__(datastore, keytransform=lambda key: Key(str(key).lower()))


class NamespaceDatastore(KeyTransformDatastore):
    """Keeps every key of the child under ``namespace``: ``/a`` is stored as ``/ns/a``.

    The prefix is common to every key, so queries (scope, filters, orders,
    paging) pass to the child whole and only the result keys are mapped back.
    """

    def __init__(self, namespace: KeyLike, datastore: Datastore) -> None:
        self.namespace = to_key(namespace)
        prefix = self.namespace
        super().__init__(datastore, keytransform=prefix.child)
        self._cut = 0 if prefix.is_root else len(prefix._string)

    def _strip(self, key: Key) -> Key:
        return Key._from_normal(key._string[self._cut :] or "/")

    def query(self, query: Query) -> Cursor:
        child_query = query.copy()
        child_query.key = self.namespace.child(query.key)
        child_query.limit = None if query.limit is None else query.offset + query.limit
        child_query.offset = 0
        pairs = ((self._strip(k), v) for k, v in self.child_datastore.query(child_query).items())
        return engine.run(query, pairs, scoped=True, filtered=True, ordered=True, limited=True)


class NestedPathDatastore(KeyTransformDatastore):
    """Spreads keys over nested directories: ``/abcdefghijk`` -> ``/ab/cd/ef/abcdefghijk``.

    ``depth`` levels of ``length`` characters are taken from ``keyfn(key)``
    (default: the key's name), repeated when the name is too short
    (``abc`` -> ``/ab/ca/bc/abc``), and prefixed to the whole key. Queries
    walk the child recursively and finish in the naive engine, since the
    nesting scatters a collection across the tree.
    """

    def __init__(
        self,
        datastore: Datastore,
        depth: int = 3,
        length: int = 2,
        keyfn: Callable[[Key], str] | None = None,
    ) -> None:
        if depth < 1 or length < 1:
            raise ValueError("depth and length must both be >= 1")
        self.nest_depth = depth
        self.nest_length = length
        self.nest_keyfn: Callable[[Key], str] = keyfn or (lambda key: key.name)
        super().__init__(datastore, keytransform=self.nest_key)

    def nest_key(self, key: Key) -> Key:
        """The child key for ``key``.

        A key whose name is empty (``/a/b:``) nests by its last namespace
        instead, so every key has a place.
        """
        nest = self.nest_keyfn(key) or key.list[-1]
        need = self.nest_depth * self.nest_length
        nest = nest * (1 + need // len(nest))
        parts = [
            nest[i * self.nest_length : (i + 1) * self.nest_length] for i in range(self.nest_depth)
        ]
        if any("/" in part for part in parts):
            raise ValueError(f"cannot nest {key}: the key function gave a path part with '/'")
        return Key(parts).child(key)

    def _unnest(self, key: Key) -> Key | None:
        parts = key.list
        if len(parts) <= self.nest_depth:
            return None
        original = Key._from_normal("/" + "/".join(parts[self.nest_depth :]))
        return original if self.nest_key(original) == key else None

    def query(self, query: Query) -> Cursor:
        walk = Query("/", recursive=True)
        pairs = []
        for key, value in self.child_datastore.query(walk).items():
            original = self._unnest(key)
            if original is not None:
                pairs.append((original, value))
        return engine.run(query, pairs)
