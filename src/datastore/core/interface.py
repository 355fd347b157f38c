"""Adapting any object with get/put/delete-like methods into a :class:`Datastore`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from .datastore import Datastore, check_value, write_key
from .key import Key, KeyLike, to_key
from .query import Cursor, Query

__all__ = ["InterfaceMappingDatastore"]


class InterfaceMappingDatastore(Datastore):
    """A store over a ``service`` object whose methods have other names.

    ``InterfaceMappingDatastore(client, get='get', put='set', delete='delete',
    key=str)`` calls ``client.set(str(key), value)`` for ``put``. ``key``
    turns a :class:`Key` into whatever the service expects. A service has no
    general way to list its keys, so :meth:`query` raises
    ``NotImplementedError``; put the adapter under a store that can list
    (for instance as the cache of a :class:`~datastore.CacheShimDatastore`).
    """

    def __init__(
        self,
        service: Any,
        get: str = "get",
        put: str = "put",
        delete: str = "delete",
        key: Callable[[Key], Any] = str,
    ) -> None:
        self.service = service
        self._get = getattr(service, get)
        self._put = getattr(service, put)
        self._delete = getattr(service, delete)
        self._key = key

    def get(self, key: KeyLike) -> Any:
        return self._get(self._key(to_key(key)))

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        check_value(value)
        self._put(self._key(key), value)

    def delete(self, key: KeyLike) -> None:
        # Deleting an absent key is a no-op, whatever the service thinks.
        with contextlib.suppress(KeyError):
            self._delete(self._key(to_key(key)))

    def query(self, query: Query) -> Cursor:
        raise NotImplementedError(
            f"{type(self.service).__name__} cannot list its keys, so this adapter cannot"
            " answer queries; query the store it caches instead"
        )
