"""MemcachedDatastore against a bare pymemcache ``Client`` (replies awaited, like the store).

memcached cannot list its items, so the raw driver has no query baseline;
the store answers queries from an index it keeps in memcached itself (an
append-only log of names per collection, appended to by every put).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from ..subject import Context, StoreSubject, Subject, Unavailable, dumps, loads, need, server_url


def _address() -> tuple[str, int]:
    netloc = urlsplit(server_url("DATASTORE_TEST_MEMCACHED")).netloc.split(",")[0]
    host, _, port = netloc.rpartition(":")
    return host or "127.0.0.1", int(port or 11211)


def memcached_store(ctx: Context) -> Subject:
    host, port = _address()
    try:
        from datastore.memcached import MemcachedDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.memcached: {exc}") from exc
    store = MemcachedDatastore(f"{host}:{port}", prefix=f"bench{uuid.uuid4().hex[:8]}")

    def cleanup() -> None:
        from datastore.memcached import MemcachedDatastore

        again = MemcachedDatastore(f"{host}:{port}", prefix=store._prefix)
        try:
            again.clear()
        finally:
            again.close()

    return StoreSubject("MemcachedDatastore", store,
                        label="a client per thread; set + append of the name to the collection log"
                        " in one write",
                        cleanup=cleanup)


class RawPymemcache(Subject):
    """``pymemcache.Client`` with ``default_noreply=False``: set/get/delete and their _many forms."""

    label = "pymemcache.Client(no_delay=True, default_noreply=False)"

    def __init__(self) -> None:
        base = need("pymemcache.client.base")
        self.c = base.Client(_address(), no_delay=True, default_noreply=False,
                             connect_timeout=5, timeout=10)
        self.prefix = f"rawbench{uuid.uuid4().hex[:8]}:"
        self.written: set[str] = set()

    def key(self, string: str) -> Any:
        return self.prefix + string

    def put(self, key: str, value: Any) -> None:
        self.c.set(key, dumps(value), noreply=False)

    def get(self, key: str) -> Any:
        data = self.c.get(key)
        return None if data is None else loads(data)

    def contains(self, key: str) -> bool:
        return self.c.get(key) is not None

    def delete(self, key: str) -> None:
        self.c.delete(key, noreply=False)

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        self.c.set_many({k: dumps(v) for k, v in pairs}, noreply=False)

    def get_many(self, keys: list[str]) -> list[Any]:
        found = self.c.get_many(keys)
        return [None if (d := found.get(k)) is None else loads(d) for k in keys]

    def delete_many(self, keys: list[str]) -> None:
        self.c.delete_many(keys, noreply=False)

    def load(self, pairs: list[tuple[Any, Any]], chunk: int = 1000) -> None:
        super().load(pairs, chunk)
        self.written.update(k for k, _ in pairs)

    def close(self) -> None:
        keys = list(self.written)
        for start in range(0, len(keys), 1000):
            self.c.delete_many(keys[start : start + 1000], noreply=False)
        self.c.close()


class IndexedPymemcache(RawPymemcache):
    """pymemcache keeping the store's kind of index by hand: set, then append the name to a log item.

    The work the store must do for queries to find a put (memcached cannot
    list items): two commands, two round trips with pymemcache's API. As the
    store does, it moves on to a new log item (numbered by ``incr`` of a
    counter item) after appending 64 KiB to one, so that an append never
    copies a large item. Deletes touch the value only, as in the store.
    """

    label = ("pymemcache.Client, set + append of the name to a log item per put, a new log item"
             " every 64 KiB (the store's work)")
    SEGMENT_BYTES = 64 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.top = self.prefix + "top"
        self.c.set(self.top, b"0", noreply=False)
        self.written.add(self.top)
        self.segment, self.appended = 0, 0

    def _append(self, names: list[str]) -> None:
        lines = "".join(name + "\n" for name in names).encode()
        if self.appended >= self.SEGMENT_BYTES:
            self.segment, self.appended = int(self.c.incr(self.top, 1, noreply=False)), 0
        log = f"{self.prefix}log.{self.segment}"
        if not self.c.append(log, lines, noreply=False):
            self.c.add(log, lines, noreply=False)
            self.written.add(log)
        self.appended += len(lines)

    def put(self, key: str, value: Any) -> None:
        self.c.set(key, dumps(value), noreply=False)
        self._append([key])

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        self.c.set_many({k: dumps(v) for k, v in pairs}, noreply=False)
        self._append([k for k, _ in pairs])


def raw_pymemcache(ctx: Context) -> Subject:
    return RawPymemcache()


def indexed_pymemcache(ctx: Context) -> Subject:
    return IndexedPymemcache()
