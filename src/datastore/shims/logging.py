"""Logging every operation."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.datastore import Datastore, items_of
from ..core.key import Key, KeyLike, to_key
from ..core.query import Cursor, Query
from .shim import ShimDatastore

__all__ = ["LoggingDatastore"]


class LoggingDatastore(ShimDatastore):
    """Logs each operation at INFO and the values involved at DEBUG.

    ``logger`` defaults to the ``datastore`` logger. Values appear only at
    DEBUG so that a production INFO log never holds user data.
    """

    def __init__(self, datastore: Datastore, logger: logging.Logger | None = None) -> None:
        super().__init__(datastore)
        self.logger = logger or logging.getLogger("datastore")

    def _log(self, op: str, key: object, value: Any = None, *, show: bool = False) -> None:
        self.logger.info("%s: %s %s", self, op, key)
        if show and self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("%s: %s %s value %r", self, op, key, value)

    def get(self, key: KeyLike) -> Any:
        key = to_key(key)
        value = super().get(key)
        self._log("get", key, value, show=True)
        return value

    def put(self, key: KeyLike, value: Any) -> None:
        key = to_key(key)
        self._log("put", key, value, show=True)
        super().put(key, value)

    def delete(self, key: KeyLike) -> None:
        key = to_key(key)
        self._log("delete", key)
        super().delete(key)

    def contains(self, key: KeyLike) -> bool:
        key = to_key(key)
        found = super().contains(key)
        self._log("contains", key, found, show=True)
        return found

    def query(self, query: Query) -> Cursor:
        self._log("query", query)
        return super().query(query)

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        keys = [to_key(k) for k in keys]
        values = super().get_many(keys)
        self._log("get_many", [str(k) for k in keys], values, show=True)
        return values

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        pairs = items_of(items)
        self._log("put_many", [str(k) for k, _ in pairs], [v for _, v in pairs], show=True)
        super().put_many(pairs)

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        keys = [to_key(k) for k in keys]
        self._log("delete_many", [str(k) for k in keys])
        super().delete_many(keys)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        self._log("batch", f"{len(puts)} puts, {len(deletes)} deletes", puts, show=True)
        super()._apply_batch(puts, deletes)

    def close(self) -> None:
        self._log("close", "")
        super().close()

    def __str__(self) -> str:
        return type(self.child_datastore).__name__
