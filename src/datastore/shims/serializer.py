"""Serializing values on their way into and out of a child store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import serialize
from ..core import engine
from ..core.datastore import Datastore, check_value, items_of, write_key
from ..core.key import Key, KeyLike
from ..core.query import Cursor, Query
from .shim import ShimDatastore

__all__ = ["SerializerShimDatastore"]


class SerializerShimDatastore(ShimDatastore):
    """Stores ``serializer.dumps(value)`` in the child and returns ``loads`` of it.

    The child sees only serialized data, so it cannot evaluate filters or
    orders on fields: queries fetch the child's scope and finish in the
    naive engine over the decoded values.
    """

    def __init__(self, datastore: Datastore, serializer: Any = serialize.json) -> None:
        super().__init__(datastore)
        if not (hasattr(serializer, "dumps") and hasattr(serializer, "loads")):
            raise TypeError(f"a serializer needs dumps() and loads(): {serializer!r}")
        self.serializer = serializer

    def _load(self, data: Any) -> Any:
        return None if data is None else self.serializer.loads(data)

    def get(self, key: KeyLike) -> Any:
        return self._load(self.child_datastore.get(key))

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        check_value(value)
        self.child_datastore.put(key, self.serializer.dumps(value))

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        return [self._load(v) for v in self.child_datastore.get_many(keys)]

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self.child_datastore.put_many(serialize.encode_items(self.serializer, items_of(items)))

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        self.child_datastore._apply_batch(serialize.encode_items(self.serializer, puts), deletes)

    def query(self, query: Query) -> Cursor:
        scope = Query(query.key, recursive=query.recursive)
        pairs = ((k, self._load(v)) for k, v in self.child_datastore.query(scope).items())
        return engine.run(query, pairs, scoped=True)
