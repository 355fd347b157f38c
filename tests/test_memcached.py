"""MemcachedDatastore on a real memcached: the conformance suite, item keys, sizes, eviction, races.

memcached cannot list keys, so eviction is simulated the only way a test can
make it happen at will and exactly: by deleting an item behind the store's
back, which is what an eviction does to it.
"""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymemcache.client.base import Client, PooledClient

import datastore
from datastore import Key, Query
from datastore.errors import BackendError, ClosedError, ConnectionFailed
from datastore.memcached import MemcachedDatastore
from datastore.testing import DatastoreTests
from servers import server_url

MEMCACHED = "DATASTORE_TEST_MEMCACHED"


def servers() -> str:
    return server_url(MEMCACHED).split("://", 1)[1].split("?")[0]


def fresh(**options: Any) -> MemcachedDatastore:
    return MemcachedDatastore(servers(), prefix=f"dstest{uuid.uuid4().hex}", **options)


def clean(prefix: str, **options: Any) -> None:
    """Remove what a test store wrote; afterwards its index must answer nothing."""
    cleaner = MemcachedDatastore(servers(), prefix=prefix, **options)
    try:
        cleaner.clear()
        assert list(cleaner.query(Query(Key("/"), recursive=True))) == []
    finally:
        cleaner.close()


@pytest.fixture
def store() -> Iterator[MemcachedDatastore]:
    ds = fresh()
    yield ds
    ds.close()
    clean(ds._prefix)


def raw_client() -> Client:
    host, port = servers().rsplit(":", 1)
    return Client((host, int(port)), default_noreply=False)


# -- the conformance suite ---------------------------------------------------------------------


class TestMemcached(DatastoreTests):
    differential_examples = 40

    @pytest.fixture
    def store(self) -> Iterator[MemcachedDatastore]:
        ds = fresh()
        yield ds
        ds.close()
        clean(ds._prefix)


class TestMemcachedRawBytes(TestMemcached):
    bytes_only = True
    differential_examples = 10

    @pytest.fixture
    def store(self) -> Iterator[MemcachedDatastore]:
        ds = fresh(serializer=None)
        yield ds
        ds.close()
        clean(ds._prefix, serializer=None)


class TestMemcachedSmallSegments(TestMemcached):
    """The suite with a new log segment every few names and a compaction on every query."""

    differential_examples = 20

    @pytest.fixture
    def store(self) -> Iterator[MemcachedDatastore]:
        ds = fresh()
        ds._segment_bytes = 40
        ds._compact_min = 0
        yield ds
        ds.close()
        clean(ds._prefix)


class TestMemcachedGivenClient(TestMemcached):
    """The suite through a pooled pymemcache client the caller owns (its own API, not the
    store's pipelined commands), with small segments."""

    differential_examples = 10

    @pytest.fixture
    def store(self) -> Iterator[MemcachedDatastore]:
        host, port = servers().rsplit(":", 1)
        client = PooledClient((host, int(port)), default_noreply=False, max_pool_size=16)
        ds = MemcachedDatastore(client, prefix=f"dstest{uuid.uuid4().hex}")
        ds._segment_bytes = 40
        yield ds
        ds.close()
        client.close()
        clean(ds._prefix)


# -- keys and sizes ------------------------------------------------------------------------------


def test_any_key_maps_to_a_valid_item_key(store: MemcachedDatastore) -> None:
    keys = [
        Key("/" + "long" * 200),
        Key("/with space/tab\there"),
        Key("/ctl\x01\x7f/nl\nx"),
        Key("/ü/日本:語"),
    ]
    for i, key in enumerate(keys):
        store.put(key, i)
    assert store.get_many(keys) == list(range(len(keys)))
    for key in keys:  # none of them can be an item key as it is: each is hashed
        item_key = store._value_key(key)
        assert item_key.startswith(f"{store._prefix}:v:") and len(item_key) <= 250
        assert item_key.isascii() and item_key.isprintable() and " " not in item_key
    got = {k for k in store.query(Query(Key("/"), recursive=True, keys_only=True))}
    assert got == set(keys)


def test_plain_keys_are_their_own_item_keys(store: MemcachedDatastore) -> None:
    """A key of printable ASCII without spaces that fits is used as it is, in put and in put_many."""
    longest = Key("/" + "a" * (250 - len(f"{store._prefix}:k:") - 1))
    plain = [Key("/p/a:1"), Key("/p/b"), longest]
    store.put(plain[0], "one")
    store.put_many([(plain[1], "two"), (longest, "three")])
    client = raw_client()
    try:
        assert client.get(f"{store._prefix}:k:/p/a:1") == b"/p/a:1\x00" + b'"one"'
        assert client.get(f"{store._prefix}:k:/p/b") == b"/p/b\x00" + b'"two"'
        assert client.get(f"{store._prefix}:k:{longest}") is not None
    finally:
        client.close()
    too_long = Key(str(longest) + "a")  # one byte more: hashed
    mixed = [Key("/p/c"), Key("/p/d e"), too_long]  # a batch with both kinds
    store.put_many([(key, i) for i, key in enumerate(mixed)])
    assert [store._value_key(k)[len(store._prefix):][:3] for k in mixed] == [":k:", ":v:", ":v:"]
    assert store._value_keys(mixed) == [store._value_key(k) for k in mixed]
    assert store.get_many([*plain, *mixed]) == ["one", "two", "three", 0, 1, 2]
    assert set(store.query(Query(Key("/p"), keys_only=True))) == {
        Key("/p/b"), Key("/p/c"), Key("/p/d e")}
    store.delete_many([plain[1], mixed[1]])
    assert store.get_many([plain[1], mixed[1], mixed[0]]) == [None, None, 0]


def test_value_over_item_size_refused(store: MemcachedDatastore) -> None:
    big = "x" * (1024 * 1024)
    with pytest.raises(ValueError, match="at most"):
        store.put("/big", big)
    assert store.get("/big") is None
    with pytest.raises(ValueError):
        store.put_many([("/small", 1), ("/big", big)])
    assert store.get("/small") is None
    assert list(store.query(Query(Key("/")))) == []
    near = "y" * (1024 * 1024 - 1000)  # just under the limit: stored
    store.put("/near", near)
    assert store.get("/near") == near


def test_server_refusal_surfaces(store: MemcachedDatastore) -> None:
    """A store told the server takes 4 MiB items hears the server refuse 2 MiB."""
    liar = MemcachedDatastore(servers(), prefix=store._prefix, max_item_size=4 * 1024 * 1024)
    try:
        with pytest.raises(BackendError):
            liar.put("/huge", "z" * (2 * 1024 * 1024))
        assert liar.get("/huge") is None
        assert list(liar.query(Query(Key("/")))) == []  # the name it indexed has no value
        with pytest.raises(BackendError):
            liar.put_many([("/ok", 1), ("/huge", "z" * (2 * 1024 * 1024))])
        assert list(liar.query(Query(Key("/")))) == [1]  # what the server stored is listed
    finally:
        liar.close()


def _count_calls(clients: Any, calls: list[str]) -> None:
    """Make the store's client record the name of each call (each one is a round trip)."""
    for name in ("store_commands", "retrieve", "set_many", "append", "add", "get", "get_many", "gets",
                 "cas", "incr"):
        method = getattr(clients, name)

        def call(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _method(*args, **kwargs)

        setattr(clients, name, call)


def test_put_is_one_round_trip(store: MemcachedDatastore) -> None:
    """A put on the store's own client writes set + append together: one call, one round trip."""
    store.put("/rt/first", 0)  # the first put of a collection also lists it in its ancestors
    calls: list[str] = []
    _count_calls(store._client, calls)
    store.put("/rt/a", {"x": 1})
    assert calls == ["store_commands"]
    calls.clear()
    store.put_many([(f"/rt/m{i}", i) for i in range(300)])  # 300 sets + 1 append, one write
    assert calls == ["store_commands"]
    assert len(list(store.query(Query(Key("/rt"), keys_only=True)))) == 302
    store.delete_many([f"/rt/m{i}" for i in range(300)])
    calls.clear()
    client = raw_client()
    try:
        client.delete(store._log_key("/rt"))  # an evicted log: the append is NOT_STORED
    finally:
        client.close()
    store.put("/rt/b", 2)
    assert calls[:3] == ["store_commands", "append", "add"]  # the log is re-created by add
    assert sorted(str(k) for k in store.query(Query(Key("/rt"), keys_only=True))) == ["/rt/b"]
    assert store.get("/rt/a") == {"x": 1}  # its name went with the evicted log


def test_a_large_put_many_streams_its_sets_and_appends_once(store: MemcachedDatastore) -> None:
    """Sets go out STREAM at a time within one exchange per CHUNK; the names are appended once, last."""
    from datastore import memcached

    count = 2 * memcached.CHUNK + memcached.STREAM + 7  # three exchanges, the last of two parts
    items = [(f"/st/m{i:05d}", {"i": i}) for i in range(count)]
    store.put("/st/first", 0)  # connects, and lists the collection in its ancestors
    client = store._client._client()
    sock = client.sock
    real = sock.sendall
    sent: list[bytes] = []
    calls: list[str] = []
    _count_calls(store._client, calls)

    class Recorder:
        def __getattr__(self, name: str) -> Any:
            return getattr(sock, name)

        def sendall(self, data: bytes) -> None:
            sent.append(bytes(data))
            real(data)

    client.sock = Recorder()
    try:
        store.put_many(items)
    finally:
        client.sock = sock
    assert calls == ["store_commands"] * 3
    per_chunk = -(-memcached.CHUNK // memcached.STREAM)
    assert len(sent) == 2 * per_chunk + 2  # each part as soon as it is formatted
    assert [part.count(b"append ") for part in sent] == [0] * (len(sent) - 1) + [1]
    assert sum(part.count(b"set ") for part in sent) == count
    listed = [str(k) for k in store.query(Query(Key("/st"), keys_only=True))]
    assert sorted(listed) == sorted(["/st/first", *(k for k, _ in items)])
    assert store.get_many([k for k, _ in items]) == [v for _, v in items]


def test_hash_collision_detected(store: MemcachedDatastore) -> None:
    """An item under a key's hash that names another key is reported, never returned."""
    client = raw_client()
    try:
        client.set(store._value_key(Key("/victim")), b"/other\x00" + b'"v"')
        with pytest.raises(BackendError, match="collision"):
            store.get("/victim")
    finally:
        client.close()


# -- eviction --------------------------------------------------------------------------------------


def test_evicted_value_drops_out_of_results(store: MemcachedDatastore) -> None:
    for i in range(3):
        store.put(f"/e/{i}", {"i": i})
    client = raw_client()
    try:
        client.delete(store._value_key(Key("/e/1")))
    finally:
        client.close()
    assert store.get("/e/1") is None
    assert sorted(str(k) for k in store.query(Query(Key("/e"), keys_only=True))) == ["/e/0", "/e/2"]
    store.put("/e/1", {"i": 1})
    assert len(list(store.query(Query(Key("/e"))))) == 3


def test_evicted_index_hides_its_collection(
    store: MemcachedDatastore, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(3):
        store.put(f"/t/c/{i}", i)
    client = raw_client()
    try:
        client.delete(store._log_key("/t/c"))
    finally:
        client.close()
    assert store.get("/t/c/0") == 0  # the values are still there
    assert list(store.query(Query(Key("/t/c")))) == []
    with caplog.at_level(logging.WARNING, logger="datastore.memcached"):
        assert list(store.query(Query(Key("/t"), recursive=True))) == []
    assert "evicted" in caplog.text
    store.put("/t/c/9", 9)  # a write re-creates the node with what it knows
    assert list(store.query(Query(Key("/t"), recursive=True))) == [9]


# -- concurrency -------------------------------------------------------------------------------------


def test_concurrent_puts_deletes_and_compactions_keep_every_value_indexed(
    store: MemcachedDatastore,
) -> None:
    """Racing puts, deletes and compacting queries: once they stop, every stored value is listed.

    Every query compacts the log here (``_compact_min = 0``), so compactions
    race with puts of names whose values they just saw missing; two stores
    write, each moving on to new segments every few names.
    """
    second = MemcachedDatastore(servers(), prefix=store._prefix)
    for each in (store, second):
        each._compact_min = 0
        each._segment_bytes = 50
    keys = [Key(f"/race/k{i}") for i in range(2)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                key = rng.choice(keys)
                writer = (store, second)[seed % 2]
                if rng.random() < 0.5:
                    writer.put(key, seed)
                else:
                    writer.delete(key)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def compact() -> None:
        try:
            while not stop.is_set():
                for value in store.query(Query(Key("/race"))):
                    assert isinstance(value, int)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    for round_ in range(15):
        stop.clear()
        threads = [threading.Thread(target=work, args=(round_ * 10 + t,)) for t in range(6)]
        threads += [threading.Thread(target=compact) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads[:6]:
            thread.join()
        stop.set()
        for thread in threads[6:]:
            thread.join()
        assert not errors, errors
        stored = {k for k, v in zip(keys, store.get_many(keys), strict=True) if v is not None}
        listed = set(store.query(Query(Key("/race"), keys_only=True)))
        assert listed == stored, round_
    second.close()


# -- the index log ---------------------------------------------------------------------------------


def _log_lines(store: MemcachedDatastore, path: str) -> list[bytes]:
    client = raw_client()
    try:
        data = client.get(store._log_key(path))
    finally:
        client.close()
    assert data is not None
    return bytes(data).split(b"\n")[1:-1]


def test_delete_writes_no_index_and_queries_compact(store: MemcachedDatastore) -> None:
    store._compact_min = 10
    store.put_many([(f"/c/{i}", i) for i in range(40)])
    for _ in range(3):
        store.put("/c/0", "again")  # an overwrite appends its name again
    before = _log_lines(store, "/c")
    assert len(before) == 43
    store.delete_many([f"/c/{i}" for i in range(1, 35)])
    assert _log_lines(store, "/c") == before  # a delete only deletes the value
    got = {str(k) for k in store.query(Query(Key("/c"), keys_only=True))}
    assert got == {"/c/0", *(f"/c/{i}" for i in range(35, 40))}
    assert len(_log_lines(store, "/c")) == 6  # the query folded duplicates and dropped the dead
    assert list(store.query(Query(Key("/c")))) == ["again", 35, 36, 37, 38, 39]


def _segments(store: MemcachedDatastore, path: str) -> list[list[bytes]]:
    """The lines of each segment of ``path``'s log (after its header), read behind the store's back."""
    tail = store._tail(path)
    client = raw_client()
    try:
        top = int(client.get(tail.top_key) or b"0")
        found = client.get_many([tail.segment_key(n) for n in range(top + 1)])
    finally:
        client.close()
    return [bytes(found[k]).split(b"\n")[1:-1] for k in (tail.segment_key(n) for n in range(top + 1))
            if k in found]


def test_a_collection_outgrows_one_item_in_segments(store: MemcachedDatastore) -> None:
    """Names beyond memcached's item size go on in new segments: nothing is refused or lost."""
    store._segment_bytes = 10**9  # move on only when memcached refuses the append
    long = "n" * 400
    batches = [[(f"/f/{long}{tag}{i}", i) for i in range(2000)] for tag in "xyz"]  # ~820 KB each
    for batch in batches:
        store.put_many(batch)
    assert len(_segments(store, "/f")) >= 3
    other = MemcachedDatastore(servers(), prefix=store._prefix)
    try:
        listed = {str(k) for k in other.query(Query(Key("/f"), keys_only=True))}
    finally:
        other.close()
    assert listed == {k for batch in batches for k, _ in batch}


def test_segments_roll_and_compaction_keeps_each_live_name_once(store: MemcachedDatastore) -> None:
    store._segment_bytes = 60  # a new segment every eight names (7 bytes a line)
    store._compact_min = 0
    for i in range(30):
        store.put(f"/r/k{i:02d}", i)
    for i in range(0, 30, 3):
        store.put(f"/r/k{i:02d}", -i)  # listed again, in a later segment
    store.delete_many([f"/r/k{i:02d}" for i in range(0, 30, 2)])  # over half the lines dead
    before = _segments(store, "/r")
    assert len(before) >= 5
    assert sum(map(len, before)) == 40  # 30 + 10 names (/r is listed as a child in /)
    live = {f"k{i:02d}" for i in range(1, 30, 2)}
    assert {k.name for k in store.query(Query(Key("/r"), keys_only=True))} == live
    after = [line for segment in _segments(store, "/r") for line in segment]
    assert sorted(after) == sorted(b'n"%s"' % name.encode() for name in live)  # each once
    assert len(_segments(store, "/r")) == len(before)  # emptied segments stay, a header each
    assert sorted(store.query(Query(Key("/r")))) == sorted(
        -i if i % 3 == 0 else i for i in range(1, 30, 2))


def test_a_new_segment_costs_one_incr_and_its_first_write_adds_it(store: MemcachedDatastore) -> None:
    """After a roll the put still goes out in one exchange: the new segment's add rides along."""
    store._segment_bytes = 60  # a new segment every eight names (7 bytes a line)
    store.put("/n/first", 0)  # lists the collection in its ancestors
    calls: list[str] = []
    _count_calls(store._client, calls)
    rolls = 0
    for i in range(20):
        calls.clear()
        before = store._tail("/n").segment
        store.put(f"/n/k{i:02d}", i)
        if store._tail("/n").segment != before:
            rolls += 1
            assert calls == ["incr", "store_commands"]
        else:
            assert calls == ["store_commands"]
    assert rolls >= 2
    assert sum(map(len, _segments(store, "/n"))) == 21  # every name once, none lost in a roll
    assert {k.name for k in store.query(Query(Key("/n"), keys_only=True))} == {
        "first", *(f"k{i:02d}" for i in range(20))}


def test_a_fresh_segment_that_exists_after_all_is_appended_to(store: MemcachedDatastore) -> None:
    """A segment number that incr hands out may name a stale segment: its names are kept, ours added."""
    store._segment_bytes = 10**9
    store.put("/s/a", 1)
    tail = store._tail("/s")
    client = raw_client()
    try:  # a stale segment 1 (say, from before an evicted t item came back lower)
        client.set(tail.segment_key(1), b'"/s"\nn"stale"\n', noreply=False)
    finally:
        client.close()
    store._segment_bytes = 1  # the next write rolls: incr t -> 1, whose segment exists
    for put in (store.put, lambda k, v: store.put_many([(k, v)])):
        put("/s/b", 2)
        assert tail.segment >= 1 and not tail.fresh
    assert _segments(store, "/s")[1][:2] == [b'n"stale"', b'n"b"']
    assert {k.name for k in store.query(Query(Key("/s"), keys_only=True))} == {"a", "b"}


def test_a_cleared_log_is_found_again_by_a_store_that_was_on_a_later_segment(
    store: MemcachedDatastore,
) -> None:
    """A store still on segment N after another cleared the log re-creates N and its t item."""
    store._segment_bytes = 30
    for i in range(20):
        store.put(f"/z/{i}", i)
    assert store._tail("/z").segment >= 3
    store._segment_bytes = 10**9  # the next put stays on that segment
    clean(store._prefix)  # another store clears everything: segments and t items
    store.put("/z/again", 1)
    other = MemcachedDatastore(servers(), prefix=store._prefix)
    try:
        assert list(other.query(Query(Key("/z"), keys_only=True))) == [Key("/z/again")]
        assert list(other.query(Query(Key("/"), recursive=True))) == [1]
    finally:
        other.close()


def test_evicted_ancestor_is_listed_again(store: MemcachedDatastore) -> None:
    store.put("/a/b/c/1", 1)
    client = raw_client()
    try:
        client.delete(store._log_key("/a"))
    finally:
        client.close()
    assert list(store.query(Query(Key("/"), recursive=True))) == []
    assert list(store.query(Query(Key("/a/b/c")))) == [1]  # the collection itself is intact
    other = MemcachedDatastore(servers(), prefix=store._prefix)
    try:
        other.put("/a/b/c/2", 2)  # a store that has not listed /a/b/c yet lists it
        assert sorted(store.query(Query(Key("/"), recursive=True))) == [1, 2]
        client = raw_client()
        client.delete(store._log_key("/a/b"))
        client.close()
        store._register_every = 0.0  # every put re-lists its collection
        store.put("/a/b/c/3", 3)
        assert sorted(store.query(Query(Key("/a"), recursive=True))) == [1, 2, 3]
    finally:
        other.close()


# -- clients, errors, URLs ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_raises_connection_failed() -> None:
    store = MemcachedDatastore(f"127.0.0.1:{_free_port()}", connect_timeout=1)
    with pytest.raises(ConnectionFailed) as info:
        store.get("/a")
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(ConnectionFailed):
        store.put("/a", 1)
    store.close()


def test_reads_are_one_get_on_the_stores_own_connection(store: MemcachedDatastore) -> None:
    """get, contains and get_many read replies themselves: awkward values come back whole."""
    awkward = {"/rd/crlf": "a\r\nEND\r\nVALUE x 0 3\r\n", "/rd/big": "z" * 1_000_000,
               "/rd/empty": "", "/rd/n": None}
    for key, value in awkward.items():
        if value is not None:
            store.put(key, value)
    calls: list[str] = []
    _count_calls(store._client, calls)
    assert store.get("/rd/crlf") == awkward["/rd/crlf"]
    assert store.get("/rd/big") == awkward["/rd/big"]  # many packets
    assert store.contains("/rd/empty") and not store.contains("/rd/n")
    assert store.get_many(list(awkward)) == list(awkward.values())
    assert calls == ["retrieve"] * 5
    calls.clear()
    store.delete("/rd/crlf")
    store.delete("/rd/n")  # absent: NOT_FOUND is no error
    assert calls == ["store_commands"] * 2
    assert not store.contains("/rd/crlf") and store.contains("/rd/big")


def test_delete_many_sends_its_deletes_on_the_stores_own_connection(store: MemcachedDatastore) -> None:
    """1,000 deletes a round trip; absent keys are no error, an error reply raises."""
    keys = [f"/dm/k{i}" for i in range(2500)]
    store.put_many([(k, i) for i, k in enumerate(keys)])
    calls: list[str] = []
    _count_calls(store._client, calls)
    store.delete_many([*keys[:2000], "/dm/never", "/dm/k2000"])
    assert calls == ["store_commands"] * 3
    assert store.get_many(keys) == [None] * 2001 + list(range(2001, 2500))
    with pytest.raises(BackendError, match="CLIENT_ERROR"):
        store._delete_items(["k" * 300])  # longer than memcached's 250-byte keys
    assert store.get("/dm/k2001") == 2001


def test_an_error_reply_raises_and_the_connection_starts_afresh(store: MemcachedDatastore) -> None:
    from pymemcache.exceptions import MemcacheClientError

    store.put("/er", 1)
    with pytest.raises(MemcacheClientError):
        store._client.retrieve(["k" * 300])  # longer than memcached's 250-byte keys
    assert store._client._client().sock is None  # closed: nothing unread is left behind
    assert store.get("/er") == 1


def test_a_dropped_connection_is_retried_once(store: MemcachedDatastore) -> None:
    """The server hanging up between calls costs one retry, not an error."""
    store.put("/drop", {"n": 1})
    client = store._client._client()
    assert client.sock is not None
    client.sock.shutdown(socket.SHUT_RDWR)  # as if the server had closed the connection
    assert store.get("/drop") == {"n": 1}
    assert store._client._client().sock is not None  # reconnected
    store._client._client().sock.shutdown(socket.SHUT_RDWR)
    store.put("/drop", {"n": 2})  # the one-round-trip put retries too
    assert store.get("/drop") == {"n": 2}
    assert [v for v in store.query(Query(Key("/")))] == [{"n": 2}]
    store._client._client().sock.shutdown(socket.SHUT_RDWR)
    many = [(f"/drop/m{i}", i) for i in range(600)]  # several parts: all sent again, once
    store.put_many(many)
    assert store.get_many([k for k, _ in many]) == list(range(600))
    assert sorted(str(k) for k in store.query(Query(Key("/drop"), keys_only=True))) == sorted(
        k for k, _ in many)


def test_each_thread_has_its_own_client_and_close_closes_all(store: MemcachedDatastore) -> None:
    seen: list[Any] = []

    def work() -> None:
        store.put("/thread", 1)
        seen.append(store._client._client())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    mine = store._client._client()
    assert len({id(c) for c in [*seen, mine]}) == 4
    alive = [c for c in seen if c.sock is not None] + [mine]
    store.close()
    assert all(c.sock is None for c in alive)  # every live connection was closed


def test_given_client_is_left_open(store: MemcachedDatastore) -> None:
    client = raw_client()
    other = MemcachedDatastore(client, prefix=store._prefix)
    other.put("/g", 1)
    other.close()
    assert client.version()
    with pytest.raises(ClosedError):
        other.get("/g")
    assert store.get("/g") == 1
    client.close()


def test_bad_arguments() -> None:
    for bad_prefix in ("", "has space", "x" * 101, "tab\t"):
        with pytest.raises(ValueError):
            MemcachedDatastore("127.0.0.1:11211", prefix=bad_prefix)
    with pytest.raises(ValueError):
        MemcachedDatastore("127.0.0.1:port")
    with pytest.raises(ValueError):
        MemcachedDatastore("127.0.0.1:11211", max_item_size=10)
    with pytest.raises(TypeError):
        MemcachedDatastore(object())


def test_open_urls() -> None:
    url = server_url(MEMCACHED)
    prefix = f"dstest{uuid.uuid4().hex}"
    store = datastore.open(f"{url}?prefix={prefix}")
    assert isinstance(store, MemcachedDatastore) and store._prefix == prefix
    store.put("/u", [1])
    assert store.get("/u") == [1]
    store.close()
    clean(prefix)
    with datastore.open(f"{url}?prefix=a", prefix="b") as store:
        assert store._prefix == "b"
    raw = datastore.open(f"{url}?serializer=none&max_item_size=65536&prefix={prefix}")
    raw.put("/b", b"\x00\xff")
    assert raw.get("/b") == b"\x00\xff"
    with pytest.raises(ValueError, match="at most"):
        raw.put("/c", b"x" * 70000)
    raw.close()
    clean(prefix, serializer=None)
    with pytest.raises(ValueError, match="pickle"):
        datastore.open(f"{url}?serializer=pickle")
    two = datastore.open("memcached://127.0.0.1:11211,127.0.0.1:11212")
    assert type(two._client._client()).__name__ == "HashClient"
    two.close()
    for bad in ("memcached://h:1/path", "memcached://h:1?nope=1", "memcached://"):
        with pytest.raises(ValueError):
            datastore.open(bad)


def test_import_loads_no_driver() -> None:
    code = "import sys, datastore; sys.exit('pymemcache' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
