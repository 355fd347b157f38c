"""The pass-through shim every other shim builds on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.datastore import Datastore
from ..core.key import Key, KeyLike
from ..core.query import Cursor, Query

__all__ = ["ShimDatastore"]


class ShimDatastore(Datastore):
    """Passes every call to ``child_datastore``; subclasses override what they change.

    Bulk calls and batches go to the child's own bulk paths, so a shim keeps
    the child's speed and atomicity unless it must change the values or keys.
    Closing a shim closes its child.
    """

    def __init__(self, datastore: Datastore) -> None:
        if not isinstance(datastore, Datastore):
            raise TypeError(f"a shim wraps a Datastore, not {type(datastore).__name__}")
        self.child_datastore = datastore

    def get(self, key: KeyLike) -> Any:
        return self.child_datastore.get(key)

    def put(self, key: KeyLike, value: Any) -> None:
        self.child_datastore.put(key, value)

    def delete(self, key: KeyLike) -> None:
        self.child_datastore.delete(key)

    def contains(self, key: KeyLike) -> bool:
        return self.child_datastore.contains(key)

    def query(self, query: Query) -> Cursor:
        return self.child_datastore.query(query)

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        return self.child_datastore.get_many(keys)

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self.child_datastore.put_many(items)

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        self.child_datastore.delete_many(keys)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        self.child_datastore._apply_batch(puts, deletes)

    def close(self) -> None:
        self.child_datastore.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self.child_datastore!r}>"
