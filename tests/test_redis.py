"""RedisDatastore on real servers: one Redis, a Redis Cluster, and a Redis restarted mid-run.

Every store here gets a fresh random prefix, so tests share the servers with
anything else (other test runs included) without touching its keys, and each
clean-up checks that :meth:`RedisDatastore.clear` (which walks the store's own
index) leaves no key behind: a key missing from the index would stay.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry

import datastore
from datastore import Key, Query
from datastore.core.engine import scope_test
from datastore.corrupt import CorruptValueError
from datastore.errors import BackendError, ClosedError, ConnectionFailed
from datastore.indexing import split_key
from datastore.redis import RedisDatastore, _member, _member_key, _member_range, _path_code, _registry_range
from datastore.testing import DatastoreTests
from servers import server_url

REDIS = "DATASTORE_TEST_REDIS"
CLUSTER = "DATASTORE_TEST_REDIS_CLUSTER"
RESTART = "DATASTORE_TEST_REDIS_RESTART"
SERVICES = Path(__file__).resolve().parents[1] / "scripts" / "services.sh"


def fresh(url: str, **options: Any) -> RedisDatastore:
    """A store under a prefix nobody else uses."""
    return RedisDatastore(url, prefix=f"dstest:{uuid.uuid4().hex}:", **options)


def leftovers(store: RedisDatastore) -> list[bytes]:
    """Every Redis key under the store's prefix (on every node of a cluster)."""
    pattern = "".join("\\" + c if c in "*?[]\\" else c for c in store.prefix) + "*"
    return list(store._client.scan_iter(match=pattern, count=1000))


def clean(url: str, prefix: str, index: bool = True) -> None:
    """Remove a test store's keys and check that its index (or its SCAN) reached all of them."""
    cleaner = RedisDatastore(url, prefix=prefix, index=index)
    try:
        cleaner.clear()
        assert leftovers(cleaner) == []
    finally:
        cleaner.close()


@pytest.fixture
def redis_url() -> str:
    return server_url(REDIS)


@pytest.fixture
def cluster_url() -> str:
    return server_url(CLUSTER)


# -- the conformance suite ---------------------------------------------------------------------


class TestRedis(DatastoreTests):
    server = REDIS
    options: dict[str, Any] = {}
    differential_examples = 50

    @pytest.fixture
    def store(self) -> Iterator[RedisDatastore]:
        url = server_url(self.server)
        ds = fresh(url, **self.options)
        yield ds
        ds.close()
        clean(url, ds.prefix, index=self.options.get("index", True))


class TestRedisRawBytes(TestRedis):
    bytes_only = True
    options = {"serializer": None}
    differential_examples = 15


class TestRedisCluster(TestRedis):
    server = CLUSTER
    differential_examples = 40


class TestRedisNoIndex(TestRedis):
    """``index=False``: plain SET/DEL writes, queries by SCAN, the same answers."""

    options = {"index": False}
    differential_examples = 30


class TestRedisClusterNoIndex(TestRedis):
    server = CLUSTER
    options = {"index": False}
    differential_examples = 20


def test_no_index_writes_only_values(redis_url: str) -> None:
    """Without the index a store writes one Redis key per object and nothing else."""
    store = fresh(redis_url, index=False)
    try:
        assert not store.indexed
        store.put_many({"/a/b": 1, "/a/c": 2, "/x*y/[z]": 3})
        store.put("/a/d", 4)
        with store.batch() as batch:
            batch.put("/a/e", 5)
            batch.delete("/a/b")
        keys = sorted(leftovers(store))
        assert keys == sorted(store._layout.value_key(Key(k)) for k in ("/a/c", "/a/d", "/a/e", "/x*y/[z]"))
        # glob characters in a key are literal in the SCAN pattern
        assert [str(k) for k in store.query(Query(Key("/x*y"), keys_only=True))] == ["/x*y/[z]"]
        in_a = store.query(Query(Key("/a"), keys_only=True))
        assert sorted(str(k) for k in in_a) == ["/a/c", "/a/d", "/a/e"]
        store.delete("/a/c")
        store.clear()
        assert leftovers(store) == []
    finally:
        store.close()


_ARGS = st.lists(st.binary(max_size=40) | st.text(max_size=5) | st.integers(), max_size=6)


@given(st.sampled_from(["SET", "MSET", "CLIENT SETNAME", "ZADD"]), _ARGS)
def test_bytes_packer_writes_what_redis_py_writes(name: str, args: list[Any]) -> None:
    """The store's packer sends the same bytes as redis-py's, all-bytes fast path or not."""
    import redis.connection as connection

    from datastore.redis import _BytesPacker

    reference = connection.PythonRespSerializer(6000, connection.Encoder("utf-8", "strict", False).encode)
    assert b"".join(_BytesPacker().pack(name, *args)) == b"".join(reference.pack(name, *args))


def test_stores_own_clients_pack_with_the_bytes_packer(redis_url: str) -> None:
    """A store opened by URL packs with _BytesPacker (and it works); a client passed in is left as is."""
    from datastore.redis import _BytesPacker

    store = fresh(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        pool = store._client.connection_pool
        assert isinstance(pool.connection_kwargs["command_packer"], _BytesPacker)
        store.put_many({f"/p/k{i}": {"i": i, "s": "x" * i} for i in range(300)})
        store.put("/p/big", "y" * 100_000)  # beyond redis-py's 6,000-byte chunking
        got = store.get_many([f"/p/k{i}" for i in (0, 299)])
        assert got == [{"i": 0, "s": ""}, {"i": 299, "s": "x" * 299}]
        assert store.get("/p/big") == "y" * 100_000
        given = RedisDatastore(client, prefix=store.prefix)
        assert "command_packer" not in given._client.connection_pool.connection_kwargs
    finally:
        clean(redis_url, store.prefix)
        store.close()
        client.close()


@pytest.mark.parametrize("server", ["single", "cluster"])
def test_scripts_are_loaded_again_after_a_script_flush(server: str) -> None:
    """A server that lost its scripts (restart, SCRIPT FLUSH, failover) answers NOSCRIPT once."""
    url = server_url(REDIS) if server == "single" else server_url(CLUSTER)
    store = fresh(url)
    try:
        store.put("/s/a", 1)
        store._client.script_flush()  # on a cluster: every primary
        store.put("/s/b", 2)  # EVALSHA -> NOSCRIPT -> SCRIPT LOAD -> EVALSHA
        store.delete("/s/a")
        assert [str(k) for k in store.query(Query(Key("/s"), keys_only=True))] == ["/s/b"]
    finally:
        clean(url, store.prefix)
        store.close()


def test_single_connection_clients_and_errors_take_redis_pys_path(redis_url: str) -> None:
    """A client holding one connection is used through redis-py; a server error is BackendError."""
    client = redis.Redis.from_url(redis_url, single_connection_client=True)
    store = RedisDatastore(client, prefix=f"dstest:{uuid.uuid4().hex}:")
    try:
        store.put("/one/a", {"x": 1})
        assert store.get("/one/a") == {"x": 1} and store.contains("/one/a")
        store.delete("/one/a")
        assert store.get("/one/a") is None
        with pytest.raises(BackendError):
            store._command("NOSUCHCOMMAND", b"x")
    finally:
        clean(redis_url, store.prefix)
        client.close()


def test_index_option_in_url(redis_url: str) -> None:
    prefix = f"dstest:{uuid.uuid4().hex}:"
    with datastore.open(f"{redis_url}?prefix={prefix}&index=false") as store:
        assert isinstance(store, RedisDatastore) and not store.indexed
        store.put("/k", 1)
        assert leftovers(store) == [store._layout.value_key(Key("/k"))]
        store.clear()
    with datastore.open(f"{redis_url}?prefix={prefix}") as store:
        assert store.indexed
    with pytest.raises(ValueError):
        datastore.open(f"{redis_url}?index=maybe")
    with pytest.raises(TypeError):
        RedisDatastore(redis_url, index="no")  # type: ignore[arg-type]


# -- the index encoding ----------------------------------------------------------------------------

_NAMESPACE = st.text(
    st.sampled_from(["a", "b", ":", "\x01", "\x7f", "é", "\U0001f600", "\ud800", " ", "-"]),
    min_size=1,
    max_size=4,
)


def _in_range(member: bytes, bounds: tuple[bytes, bytes]) -> bool:
    """ZRANGEBYLEX's test, spelled in Python (byte order is memcmp order)."""
    low, high = bounds
    above = low == b"-" or (member >= low[1:] if low[:1] == b"[" else member > low[1:])
    below = high == b"+" or (member <= high[1:] if high[:1] == b"[" else member < high[1:])
    return above and below


@settings(max_examples=300, deadline=None)
@given(
    key=st.lists(_NAMESPACE, min_size=1, max_size=4).map(Key),
    query=st.lists(_NAMESPACE, min_size=0, max_size=3).map(Key),
)
def test_member_ranges_match_the_engine_scope(key: Key, query: Key) -> None:
    """Every member decodes to its key and lies in a scope's range exactly when the engine says so."""
    path, name = split_key(key)
    member = _member(path, name)
    assert _member_key(member) == key
    for recursive in (False, True):
        assert _in_range(member, _member_range(query._string, recursive)) == scope_test(query, recursive)(key)
    # Cluster registry: the key's collection is listed for a recursive query exactly when in scope.
    assert _in_range(_path_code(path), _registry_range(query._string)) == scope_test(query, True)(key)


# -- atomicity of the index ----------------------------------------------------------------------


def _snapshot(store: RedisDatastore, collection: str, keys: list[Key]) -> tuple[set[Key], set[Key]]:
    """(keys the index lists, keys that hold a value), read in ONE transaction.

    All of them are in one collection, hence in one slot on a cluster too.
    """
    layout = store._layout
    index = layout.index_key(collection)
    low, high = _member_range(collection, False)
    with store._client.pipeline(transaction=True) as pipe:
        pipe.zrangebylex(index, low, high)
        for key in keys:
            pipe.exists(layout.value_key(key))
        members, *exists = pipe.execute()
    listed = {k for k in keys if _member(*split_key(k)) in set(members)}
    stored = {k for k, found in zip(keys, exists, strict=True) if found}
    return listed, stored


@pytest.mark.parametrize("server", [REDIS, CLUSTER])
def test_index_never_disagrees_with_values(server: str) -> None:
    """Writers put, delete and batch while snapshots compare index and values.

    A store that wrote a value and its index entry in separate steps would
    be caught between them by some snapshot.
    """
    url = server_url(server)
    store = fresh(url)
    keys = [Key(f"/atomic/k{i}") for i in range(12)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                chosen = rng.sample(keys, 3)
                action = rng.randrange(4)
                if action == 0:
                    store.put(chosen[0], {"n": rng.random()})
                elif action == 1:
                    store.delete(chosen[0])
                elif action == 2:
                    store.put_many((k, rng.randrange(9)) for k in chosen)
                else:
                    with store.batch() as batch:
                        batch.put(chosen[0], "b")
                        batch.delete(chosen[1])
                        batch.delete(chosen[2])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(seed,)) for seed in range(3)]
    for thread in writers:
        thread.start()
    try:
        disagreements = []
        for _ in range(300):
            listed, stored = _snapshot(store, "/atomic", keys)
            if listed != stored:
                disagreements.append(listed ^ stored)
    finally:
        stop.set()
        for thread in writers:
            thread.join()
        store.close()
        clean(url, store.prefix)
    assert not errors, errors
    assert not disagreements, disagreements[:3]


# -- restart and errors -----------------------------------------------------------------------


def test_restart_keeps_acknowledged_writes() -> None:
    """Restart the appendonly Redis on 6380: the pool reconnects and every acknowledged write is there."""
    url = server_url(RESTART)
    store = fresh(url)
    try:
        written = {Key(f"/r/single:{i}"): {"i": i} for i in range(100)}
        for key, value in written.items():
            store.put(key, value)
        bulk = {Key(f"/r/bulk:{i}"): [i, "x"] for i in range(200)}
        store.put_many(bulk)
        written.update(bulk)
        with store.batch() as batch:
            batch.put("/r/batch:1", "one")
            batch.delete("/r/single:0")
        written[Key("/r/batch:1")] = "one"
        del written[Key("/r/single:0")]
        before = store._client.info("server")["run_id"]

        done = subprocess.run(
            ["bash", str(SERVICES), "restart-redis-6380"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

        # The first call meets the dead pooled connection and must reconnect on its own.
        first = next(iter(written))
        assert store.get(first) == written[first]
        assert store._client.info("server")["run_id"] != before, "the server did not restart"
        keys = list(written)
        assert store.get_many(keys) == [written[k] for k in keys]
        assert store.get("/r/single:0") is None
        found = dict(store.query(Query(Key("/r"), recursive=True)).items())
        assert found == written
        store.put("/r/after", 1)
        assert store.get("/r/after") == 1
    finally:
        store.close()
        clean(url, store.prefix)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_raises_connection_failed() -> None:
    store = RedisDatastore(f"redis://127.0.0.1:{_free_port()}/0", retry=Retry(NoBackoff(), 1))
    for call in (lambda: store.get("/a"), lambda: store.put("/a", 1), lambda: list(store.query(Query("/")))):
        with pytest.raises(ConnectionFailed) as info:
            call()
        assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    store.close()


def test_server_error_is_backend_error(redis_url: str) -> None:
    store = fresh(redis_url)
    try:
        store._client.set(store.prefix.encode() + b"i", b"not a sorted set")
        with pytest.raises(BackendError) as info:
            list(store.query(Query("/x")))
        assert isinstance(info.value.__cause__, redis.exceptions.ResponseError)
    finally:
        store._client.delete(store.prefix.encode() + b"i")
        store.close()


def test_undecodable_value_is_reported(redis_url: str) -> None:
    store = fresh(redis_url)
    try:
        store.put("/bad", 1)
        store._client.set(store._layout.value_key(Key("/bad")), b"\xff not json")
        with pytest.raises(CorruptValueError, match="/bad"):
            store.get("/bad")
        with pytest.raises(CorruptValueError):
            list(store.query(Query(Key("/"))))
    finally:
        store.close()
        clean(redis_url, store.prefix)


# -- clients, prefixes, URLs ---------------------------------------------------------------------


def test_prefixes_keep_stores_apart(redis_url: str) -> None:
    a, b = fresh(redis_url), fresh(redis_url)
    try:
        a.put("/x/1", "a")
        b.put("/x/2", "b")
        assert b.get("/x/1") is None and a.get("/x/2") is None
        assert [str(k) for k in a.query(Query("/x", keys_only=True))] == ["/x/1"]
        b.clear()
        assert a.get("/x/1") == "a"
    finally:
        for store in (a, b):
            store.close()
            clean(redis_url, store.prefix)


def test_given_client_is_left_open(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    store = RedisDatastore(client, prefix=f"dstest:{uuid.uuid4().hex}:")
    store.put("/k", 1)
    store.close()
    assert client.ping()
    with pytest.raises(ClosedError):
        store.get("/k")
    with pytest.raises(ClosedError):
        store.query(Query("/"))
    clean(redis_url, store.prefix)
    client.close()


def test_bad_clients_and_options(redis_url: str) -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        RedisDatastore(redis.Redis.from_url(redis_url, decode_responses=True))
    with pytest.raises(TypeError):
        RedisDatastore(redis.Redis.from_url(redis_url), socket_timeout=3)
    with pytest.raises(TypeError):
        RedisDatastore(object())
    with pytest.raises(ValueError, match="prefix"):
        RedisDatastore(redis_url, prefix="{tag}")
    with pytest.raises(TypeError):
        RedisDatastore(redis_url, prefix=3)


def test_open_urls(redis_url: str, cluster_url: str) -> None:
    prefix = f"dstest:{uuid.uuid4().hex}:"
    store = datastore.open(f"{redis_url}?prefix={prefix}")
    assert isinstance(store, RedisDatastore) and not store.cluster
    assert store.prefix == prefix
    store.put("/u", 1)
    assert store.get("/u") == 1
    store.close()
    clean(redis_url, prefix)
    with datastore.open(f"{redis_url}?prefix=a:", prefix="b:") as store:
        assert store.prefix == "b:"
    raw = datastore.open(f"{redis_url}?serializer=none&prefix={prefix}")
    raw.put("/b", b"\x00\xff")
    assert raw.get("/b") == b"\x00\xff"
    with pytest.raises(TypeError):
        raw.put("/c", "not bytes")
    raw.close()
    clean(redis_url, prefix)
    with pytest.raises(ValueError, match="pickle"):
        datastore.open(f"{redis_url}?serializer=pickle")
    with datastore.open(cluster_url) as store:
        assert isinstance(store, RedisDatastore) and store.cluster
    for bad in (f"{cluster_url}/3", f"{cluster_url}?socket_timeout=1", "redis-cluster://", "redis-cluster://h:x"):
        with pytest.raises(ValueError):
            datastore.open(bad)


def test_cluster_collection_in_one_slot(cluster_url: str) -> None:
    store = fresh(cluster_url)
    try:
        client, layout = store._client, store._layout
        slots = set()
        for i in range(30):
            key = Key(f"/c{i}/x:{i}")
            path = split_key(key)[0]
            slot = client.keyslot(layout.index_key(path))
            assert client.keyslot(layout.value_key(key)) == slot
            assert client.keyslot(layout.value_key(Key(f"/c{i}/x:other"))) == slot
            slots.add(slot)
        assert len(slots) > 1  # collections spread over the cluster
    finally:
        store.close()


def test_import_loads_no_driver() -> None:
    code = "import sys, datastore; sys.exit('redis' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
