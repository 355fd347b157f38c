"""RedisDatastore against redis-py: single calls, and MSET/MGET/DEL for the bulk rows.

The store keeps a sorted-set index next to the values (for queries), so each
of its writes is a MULTI/EXEC of two or three commands where the raw driver
sends one. The ``redis-py+index`` peer writes the same index by hand, to tell
the cost of the index apart from the cost of the library.
"""

from __future__ import annotations

from typing import Any

from ..data import QuerySpec
from ..subject import Context, StoreSubject, Subject, Unavailable, dumps, loads, need, server_url

STORE_PREFIX = "dsbench:"
PLAIN_PREFIX = "dsbenchplain:"
RAW_PREFIX = b"rawbench:"
INDEXED_PREFIX = b"rawbenchix:"


def redis_store(ctx: Context) -> Subject:
    url = server_url("DATASTORE_TEST_REDIS")
    try:
        from datastore.redis import RedisDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.redis: {exc}") from exc
    store = RedisDatastore(url, prefix=STORE_PREFIX)
    store.clear()
    return StoreSubject("RedisDatastore", store, label=f"prefix {STORE_PREFIX!r}, JSON values, "
                        "sorted-set index updated in the same MULTI/EXEC",
                        cleanup=_clear_store(url))


def redis_store_no_index(ctx: Context) -> Subject:
    url = server_url("DATASTORE_TEST_REDIS")
    try:
        from datastore.redis import RedisDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.redis: {exc}") from exc
    store = RedisDatastore(url, prefix=PLAIN_PREFIX, index=False)
    store.clear()
    return StoreSubject("RedisDatastore(index=False)", store,
                        label=f"prefix {PLAIN_PREFIX!r}, JSON values, no index: plain SET/DEL/MSET,"
                        " queries SCAN", cleanup=_clear_store(url, PLAIN_PREFIX, index=False))


def _clear_store(url: str, prefix: str = STORE_PREFIX, index: bool = True) -> Any:
    def clear() -> None:
        from datastore.redis import RedisDatastore

        store = RedisDatastore(url, prefix=prefix, index=index)
        try:
            store.clear()
        finally:
            store.close()

    return clear


class RawRedis(Subject):
    """redis-py: SET/GET/EXISTS/DEL for single calls; MSET, MGET and DEL of many for bulk.

    The query baseline SCANs the prefix and MGETs everything, then filters in Python.
    """

    label = "redis.Redis.from_url defaults; MSET / MGET / DEL for bulk"

    def __init__(self, url: str, prefix: bytes = RAW_PREFIX) -> None:
        redis = need("redis")
        self.prefix = prefix
        self.r = redis.Redis.from_url(url)
        self.r.ping()
        self._drop()
        self.query = self._query

    def key(self, string: str) -> Any:
        return self.prefix + string.encode()

    def put(self, key: bytes, value: Any) -> None:
        self.r.set(key, dumps(value))

    def get(self, key: bytes) -> Any:
        data = self.r.get(key)
        return None if data is None else loads(data)

    def contains(self, key: bytes) -> bool:
        return bool(self.r.exists(key))

    def delete(self, key: bytes) -> None:
        self.r.delete(key)

    def put_many(self, pairs: list[tuple[bytes, Any]]) -> None:
        self.r.mset({k: dumps(v) for k, v in pairs})

    def get_many(self, keys: list[bytes]) -> list[Any]:
        return [None if d is None else loads(d) for d in self.r.mget(keys)]

    def delete_many(self, keys: list[bytes]) -> None:
        self.r.delete(*keys)

    def _query(self, spec: QuerySpec) -> list[Any]:
        pattern = self.prefix + spec.collection.encode() + b":*"
        keys = list(self.r.scan_iter(match=pattern, count=1000))
        pairs = []
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            pairs += [(k, loads(d)) for k, d in zip(chunk, self.r.mget(chunk), strict=True) if d is not None]
        return spec.apply(pairs)

    def _drop(self) -> None:
        keys = list(self.r.scan_iter(match=self.prefix + b"*", count=1000))
        for start in range(0, len(keys), 1000):
            self.r.delete(*keys[start : start + 1000])

    def close(self) -> None:
        self._drop()
        self.r.close()


class IndexedRedis(RawRedis):
    """redis-py keeping a sorted-set index by hand: SET+ZADD (DEL+ZREM) in one MULTI/EXEC."""

    label = "redis-py, value + sorted-set index in one MULTI/EXEC per write (the store's work)"

    def __init__(self, url: str) -> None:
        super().__init__(url, INDEXED_PREFIX)
        self.index = INDEXED_PREFIX + b"index"

    def put(self, key: bytes, value: Any) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.set(key, dumps(value))
            pipe.zadd(self.index, {key: 0})
            pipe.execute()

    def delete(self, key: bytes) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.zrem(self.index, key)
            pipe.execute()

    def put_many(self, pairs: list[tuple[bytes, Any]]) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.mset({k: dumps(v) for k, v in pairs})
            pipe.zadd(self.index, {k: 0 for k, _ in pairs})
            pipe.execute()

    def delete_many(self, keys: list[bytes]) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(*keys)
            pipe.zrem(self.index, *keys)
            pipe.execute()


def raw_redis(ctx: Context) -> Subject:
    return RawRedis(server_url("DATASTORE_TEST_REDIS"))


def indexed_redis(ctx: Context) -> Subject:
    need("redis")
    return IndexedRedis(server_url("DATASTORE_TEST_REDIS"))
