"""LRUCacheDatastore against a bare ``pylru.lrucache`` of the same capacity."""

from __future__ import annotations

from typing import Any

from ..data import QuerySpec
from ..subject import Context, StoreSubject, Subject, need

#: Larger than any benchmark size plus its fresh keys: nothing is evicted while timing.
CAPACITY = 1_000_000


def lru_store(ctx: Context) -> Subject:
    try:
        from datastore.pylru import LRUCacheDatastore
    except ImportError as exc:
        from ..subject import Unavailable

        raise Unavailable(f"datastore.pylru: {exc}") from exc
    return StoreSubject("LRUCacheDatastore", LRUCacheDatastore(CAPACITY),
                        label=f"capacity {CAPACITY:,}, one lock per call")


class RawPylru(Subject):
    """A bare ``pylru.lrucache`` (not thread-safe: no lock, unlike the store)."""

    label = f"pylru.lrucache({CAPACITY:,}), no lock"

    def __init__(self) -> None:
        pylru = need("pylru")
        cache = pylru.lrucache(CAPACITY)
        self.cache = cache
        self.put = cache.__setitem__  # type: ignore[method-assign]
        self.get = cache.get  # type: ignore[method-assign]
        self.contains = cache.__contains__  # type: ignore[method-assign]
        self.query = self._query

    def delete(self, key: Any) -> None:
        self.cache.pop(key, None)

    def _query(self, spec: QuerySpec) -> list[Any]:
        prefix = spec.collection + ":"
        return spec.apply((k, v) for k, v in self.cache.items() if k.startswith(prefix))


def raw_pylru(ctx: Context) -> Subject:
    return RawPylru()
