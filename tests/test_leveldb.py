"""LevelDBDatastore: the conformance suite, the key layout, crash safety and the one-process lock."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plyvel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import datastore
from datastore import BackendError, ClosedError, DatastoreError, Key, Query
from datastore.core import engine
from datastore.corrupt import CorruptValueError
from datastore.leveldb import (
    LevelDBDatastore,
    collection_prefix,
    decode_key,
    encode_key,
    recursive_prefix,
)
from datastore.testing import DatastoreTests
from datastore.testing.concurrency import run_threads

SRC = str(Path(datastore.__file__).resolve().parent.parent)


class TestLevelDB(DatastoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LevelDBDatastore]:
        ds = LevelDBDatastore(str(tmp_path / "ldb"))
        yield ds
        ds.close()


class TestLevelDBPrefixedRawBytes(DatastoreTests):
    """A store given an open (prefixed) plyvel database, holding raw bytes."""

    bytes_only = True
    differential_examples = 20

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LevelDBDatastore]:
        db = plyvel.DB(str(tmp_path / "ldb"), create_if_missing=True)
        db.put(b"other-app", b"not ours")  # outside the prefix: never seen by the store
        ds = LevelDBDatastore(db.prefixed_db(b"ds/"), serializer=None)
        yield ds
        ds.close()
        assert db.get(b"other-app") == b"not ours"
        db.close()


# -- the layout -----------------------------------------------------------------------

_NAMESPACE = st.one_of(
    st.sampled_from(["a", "ab", "a-b", "b", "A", "x:1", "x:", ":x", ":", "a:b:c", "\x01", "\x02", "é"]),
    st.text(st.characters(blacklist_characters="/\x00", codec="utf-8"), min_size=1, max_size=4),
)
_KEYS = st.lists(_NAMESPACE, min_size=1, max_size=4).map(Key)
_COLLECTIONS = st.lists(_NAMESPACE, min_size=0, max_size=3).map(Key)


@settings(max_examples=400, deadline=None)
@given(key=_KEYS, collection=_COLLECTIONS)
def test_layout_prefixes_are_exactly_the_scopes(key: Key, collection: Key) -> None:
    encoded = encode_key(key)
    assert decode_key(encoded) == key
    in_collection = engine.scope_test(collection, False)(key)
    in_tree = engine.scope_test(collection, True)(key)
    assert encoded.startswith(collection_prefix(collection)) == in_collection
    assert encoded.startswith(recursive_prefix(collection)) == in_tree


def test_layout_examples() -> None:
    assert encode_key(Key("/a/b")) == b"a\x00\x01b"
    assert encode_key(Key("/a:b")) == b"a\x00\x01a:b"
    assert encode_key(Key("/b")) == b"\x00\x01b"
    assert encode_key(Key("/a/T:x")) == b"a\x00\x02T\x00\x01T:x"
    # /a and its objects sort before /ab, and /ab is not under /a's prefixes.
    assert encode_key(Key("/a/z")) < encode_key(Key("/ab/a"))
    assert not encode_key(Key("/ab/x")).startswith(recursive_prefix(Key("/a")))
    with pytest.raises(ValueError):
        decode_key(b"foreign")


def test_queries_are_single_range_scans(tmp_path: Path) -> None:
    """The keys of a collection (and of a tree) are contiguous in LevelDB's order."""
    ds = LevelDBDatastore(str(tmp_path / "ldb"))
    keys = ["/a/1", "/a:x", "/a/b/2", "/a/b:t", "/ab/3", "/a-b/4", "/a", "/b/5", "/a/b/c/6"]
    ds.put_many({k: i for i, k in enumerate(keys)})
    raw = [k for k, _ in ds._db.iterator()]
    for query_key, recursive in (("/a", False), ("/a", True), ("/a/b", True), ("/", False)):
        scope = engine.scope_test(Key(query_key), recursive)
        inside = [i for i, k in enumerate(raw) if scope(decode_key(k))]
        assert inside == list(range(inside[0], inside[-1] + 1)), (query_key, recursive)
        got = {str(k) for k in ds.query(Query(Key(query_key), recursive=recursive, keys_only=True))}
        assert got == {str(decode_key(raw[i])) for i in inside}
    ds.close()


# -- behaviour ------------------------------------------------------------------------


def test_query_sees_a_snapshot(tmp_path: Path) -> None:
    ds = LevelDBDatastore(str(tmp_path / "ldb"))
    ds.put_many({f"/s/{i}": i for i in range(10)})
    cursor = ds.query(Query(Key("/s")))
    ds.put("/s/new", 99)
    ds.delete("/s/0")
    assert sorted(cursor) == list(range(10))
    ds.close()


def test_batch_is_one_atomic_write_batch(tmp_path: Path) -> None:
    ds = LevelDBDatastore(str(tmp_path / "ldb"), sync=True)
    ds.put("/old", 1)
    with ds.batch() as batch:
        for i in range(100):
            batch.put(f"/b/{i}", i)
        batch.delete("/old")
    assert ds.get_many([f"/b/{i}" for i in range(100)]) == list(range(100))
    assert ds.get("/old") is None
    with pytest.raises(TypeError), ds.batch() as batch:
        batch.put("/b/0", "changed")
        batch.put("/b/bad", object())
    assert ds.get("/b/0") == 0
    ds.close()


def test_corrupt_value_is_an_error_naming_the_key(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "ldb"), create_if_missing=True)
    ds = LevelDBDatastore(db)
    ds.put("/bad", [1])
    db.put(encode_key(Key("/bad")), b"[1,")
    with pytest.raises(CorruptValueError, match="/bad"):
        ds.get("/bad")
    with pytest.raises(CorruptValueError):
        list(ds.query(Query(Key("/"))))
    db.put(b"not-our-layout", b"1")
    with pytest.raises(BackendError, match="prefixed_db"):
        list(ds.query(Query(Key("/"), recursive=True, keys_only=True)))
    ds.close()  # a database the store did not open stays open
    assert db.get(b"not-our-layout") == b"1"
    db.close()


def test_one_process_per_database_and_close(tmp_path: Path) -> None:
    path = str(tmp_path / "ldb")
    ds = LevelDBDatastore(path)
    with pytest.raises(BackendError, match="one process per database"):
        LevelDBDatastore(path)
    ds.put("/k", 1)
    ds.close()
    ds.close()
    with pytest.raises(ClosedError):
        ds.get("/k")
    with LevelDBDatastore(path) as again:
        assert again.get("/k") == 1
    with pytest.raises(TypeError):
        LevelDBDatastore(42)


def test_threads_write_one_database(tmp_path: Path) -> None:
    ds = LevelDBDatastore(str(tmp_path / "ldb"))

    def work(t: int) -> None:
        for i in range(200):
            ds.put(f"/t/{t}/{i}", i)
            if i % 10 == 0:
                ds.put_many({f"/t/{t}/m{i}-{j}": j for j in range(5)})
                ds.delete(f"/t/{t}/m{i}-0")
                list(ds.query(Query(Key("/t"), recursive=True, keys_only=True)))

    run_threads(work)
    for t in range(4):
        assert ds.get_many([f"/t/{t}/{i}" for i in range(200)]) == list(range(200))
        assert len(list(ds.query(Query(Key(f"/t/{t}"), keys_only=True)))) == 200 + 20 * 4
    ds.close()


# -- crash safety --------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {src!r})
    from datastore.leveldb import LevelDBDatastore

    def value(k, r):
        return {{"k": k, "round": r, "pad": ("%d-%d;" % (k, r)) * (500 + (k * 37 + r) % 3000)}}

    ds = LevelDBDatastore({path!r})
    r = 0
    while True:
        for k in range(20):
            ds.put("/crash/d%d/k%d" % (k % 4, k), value(k, r))
        with ds.batch() as batch:
            for k in range(20, 30):
                batch.put("/crash/batch/k%d" % k, value(k, r))
        if r == 0:
            print("ready", flush=True)
        r += 1
    """
)


def _crash_value(k: int, r: int) -> dict[str, Any]:
    return {"k": k, "round": r, "pad": f"{k}-{r};" * (500 + (k * 37 + r) % 3000)}


def test_sigkill_mid_write_leaves_every_value_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "ldb")
    for delay in (0.05, 0.3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER.format(src=SRC, path=path)], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        proc.stdout.close()
        with LevelDBDatastore(path) as ds:  # the lock died with the process
            for k in range(20):
                got = ds.get(f"/crash/d{k % 4}/k{k}")
                assert isinstance(got, dict) and got == _crash_value(k, got["round"]), k
            batch = ds.get_many([f"/crash/batch/k{k}" for k in range(20, 30)])
            rounds = {v["round"] for v in batch}
            assert len(rounds) == 1, "a batch is applied whole or not at all"
            for k, got in zip(range(20, 30), batch, strict=True):
                assert got == _crash_value(k, got["round"])
            for value in ds.query(Query(Key("/crash"), recursive=True)):
                assert value == _crash_value(value["k"], value["round"])


# -- URLs -----------------------------------------------------------------------------


def test_from_url(tmp_path: Path) -> None:
    ds = datastore.open(f"leveldb://{tmp_path}/u1")
    assert isinstance(ds, LevelDBDatastore) and not ds.sync
    assert ds.path == str(tmp_path / "u1")
    ds.put("/a", 1)
    ds.close()
    ds = datastore.open(f"leveldb://{tmp_path}/u1?sync=true")
    assert isinstance(ds, LevelDBDatastore) and ds.sync and ds.get("/a") == 1
    ds.close()
    ds = datastore.open(f"leveldb://{tmp_path}/u2?serializer=none")
    ds.put("/b", b"raw")
    assert ds.get("/b") == b"raw"
    ds.close()
    with pytest.raises(DatastoreError):
        datastore.open(f"leveldb://{tmp_path}/missing?create_if_missing=false")
    with pytest.raises(ValueError, match="unknown option"):
        datastore.open(f"leveldb://{tmp_path}/u3?synk=1")


def test_missing_driver_names_the_extra() -> None:
    code = (
        f"import sys; sys.path.insert(0, {SRC!r}); sys.modules['plyvel'] = None\n"
        "import datastore\n"
        "try:\n"
        "    import datastore.leveldb\n"
        "except datastore.MissingDriver as exc:\n"
        "    assert isinstance(exc, ImportError); print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'datastore-kit[leveldb]'" in out.stdout
