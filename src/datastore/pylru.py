"""A bounded in-memory cache store on the ``pylru`` package.

Holds at most ``size`` objects; putting one more evicts the one least
recently *used* (read or written). Values are kept by reference, like
:class:`~datastore.DictDatastore`, so any Python value fits. Meant as the
top tier of a :class:`~datastore.TieredDatastore` or the ``cache`` of a
:class:`~datastore.CacheShimDatastore`; see ``docs/stores/pylru.rst``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from .core import engine
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, to_key
from .core.query import Cursor, Query
from .drivers import require
from .urlparams import parse_int, read_options

pylru = require("pylru", backend="LRUCacheDatastore", extra="lru")

__all__ = ["LRUCacheDatastore", "from_url"]


class LRUCacheDatastore(Datastore):
    """``LRUCacheDatastore(size)``: at most ``size`` objects, least recently used evicted.

    ``get`` (and ``get_many``) of a held key and ``put`` mark it used;
    ``contains`` and queries do not, so looking does not keep an object
    alive. One lock guards the cache (pylru itself is not thread-safe: even
    a read reorders it), so every call and every batch is atomic.
    """

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"size must be an int (the most objects to hold), not {size!r}")
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        # normal key string -> (Key, value), as DictDatastore keeps them.
        self._cache: Any = pylru.lrucache(size)
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """The most objects this cache holds."""
        return int(self._cache.size())

    # -- single objects --------------------------------------------------------------

    def get(self, key: KeyLike) -> Any:
        string = to_key(key)._string
        with self._lock:
            found = self._cache.get(string)  # marks it most recently used
        return None if found is None else found[1]

    def contains(self, key: KeyLike) -> bool:
        string = to_key(key)._string
        with self._lock:
            return string in self._cache

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        check_value(value)
        with self._lock:
            self._cache[key._string] = (key, value)

    def delete(self, key: KeyLike) -> None:
        string = to_key(key)._string
        with self._lock:
            self._cache.pop(string, None)

    # -- bulk and batches -------------------------------------------------------------

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        strings = [to_key(k)._string for k in keys]
        with self._lock:
            found = [self._cache.get(s) for s in strings]
        return [None if f is None else f[1] for f in found]

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        pairs = items_of(items)
        with self._lock:
            for key, value in pairs:
                self._cache[key._string] = (key, value)

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        strings = [to_key(k)._string for k in keys]
        with self._lock:
            for string in strings:
                self._cache.pop(string, None)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        # One lock for the whole batch: other threads see all of it or none.
        with self._lock:
            for key, value in puts:
                self._cache[key._string] = (key, value)
            for key in deletes:
                self._cache.pop(key._string, None)

    # -- queries -------------------------------------------------------------------

    def query(self, query: Query) -> Cursor:
        """The query over the objects held right now (a snapshot; recency unchanged)."""
        with self._lock:
            snapshot = [pair for _, pair in self._cache.items()]
        return engine.run(query, snapshot)

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Drop every cached object (frees the memory). The cache stays usable, empty."""
        with self._lock:
            self._cache.clear()

    def __repr__(self) -> str:
        return f"<LRUCacheDatastore {len(self._cache)}/{self.size} objects>"


def from_url(url: str, **options: Any) -> LRUCacheDatastore:
    """Opener for ``lru://?size=1000``; ``size`` is required."""
    if url.partition("://")[2].split("?", 1)[0] not in ("", "/"):
        raise ValueError(f"an lru:// URL names no host or path, only ?size=N: {url!r}")
    kwargs = read_options(url, {"size": parse_int}, options)
    if "size" not in kwargs:
        raise ValueError("an lru:// URL needs a size: lru://?size=1000")
    return LRUCacheDatastore(**kwargs)
