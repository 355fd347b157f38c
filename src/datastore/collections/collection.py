"""The base of every collection: an ordered list of stores."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..core import engine
from ..core.datastore import Datastore
from ..core.key import Key
from ..core.query import Cursor, Query

__all__ = ["DatastoreCollection", "merge_queries"]


class DatastoreCollection(Datastore):
    """Holds several stores in order (``.datastores``); closing it closes them all."""

    def __init__(self, stores: Iterable[Datastore] = ()) -> None:
        self.datastores: list[Datastore] = []
        for store in stores:
            self.append_datastore(store)

    def datastore(self, index: int) -> Datastore:
        """The store at ``index``."""
        return self.datastores[index]

    def append_datastore(self, store: Datastore) -> None:
        self.insert_datastore(len(self.datastores), store)

    def insert_datastore(self, index: int, store: Datastore) -> None:
        if not isinstance(store, Datastore):
            raise TypeError(f"a collection holds Datastores, not {type(store).__name__}")
        self.datastores.insert(index, store)

    def remove_datastore(self, store: Datastore) -> None:
        self.datastores.remove(store)

    def close(self) -> None:
        errors: list[BaseException] = []
        for store in self.datastores:
            try:
                store.close()
            except Exception as exc:  # close every store, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.datastores)
        return f"<{type(self).__name__} [{inner}]>"


KeyMap = Callable[[Key], Key | None]


def merge_queries(query: Query, parts: Iterable[tuple[Datastore, Query, KeyMap]]) -> Cursor:
    """Answer ``query`` from several stores, each asked its own sub-query.

    Each part is ``(store, sub_query, key_map)``: the sub-query selects what
    that store holds of the answer (same filters and orders), and
    ``key_map`` turns the store's keys into the caller's (``None`` drops an
    object). Each store returns at most ``offset + limit`` objects, since
    the global page can hold no more from any one store; the union is then
    ordered and paged once, so the result is exactly the global page.
    """
    window = None if query.limit is None else query.offset + query.limit
    pairs: list[tuple[Key, Any]] = []
    for store, sub, key_map in parts:
        sub = sub.copy()
        sub.offset, sub.limit = 0, window
        if query.orders:
            sub.keys_only = False  # the merge must read the order fields
        for key, value in store.query(sub).items():
            mapped = key_map(key)
            if mapped is not None:
                pairs.append((mapped, value))
    return engine.run(query, pairs, scoped=True, filtered=True)
