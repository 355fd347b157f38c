"""SQLiteDatastore: the conformance suite, pushdown, crash safety, concurrency, URLs."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import datastore
from datastore import Key, Query, serialize
from datastore.serialize import JSONSerializer
from datastore.sql import SQLDatastore
from datastore.sqlite import SQLiteDatastore, sqlite_url
from datastore.sqlquery import Fields, SQLiteDialect, plan_query
from datastore.testing import DatastoreTests
from datastore.testing.concurrency import run_threads

SRC = str(Path(datastore.__file__).resolve().parent.parent)


class TestSQLiteFile(DatastoreTests):
    differential_examples = 80

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteDatastore]:
        ds = SQLiteDatastore(tmp_path / "store.db")
        yield ds
        ds.close()


class TestSQLiteMemory(DatastoreTests):
    differential_examples = 60

    @pytest.fixture
    def store(self) -> Iterator[SQLiteDatastore]:
        ds = SQLiteDatastore(":memory:")
        yield ds
        ds.close()


class TestSQLiteBytes(DatastoreTests):
    bytes_only = True
    differential_examples = 40

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteDatastore]:
        ds = SQLiteDatastore(tmp_path / "bytes.db", serializer=None)
        yield ds
        ds.close()


class TestSQLiteOtherSerializer(DatastoreTests):
    """A serializer that is not the JSON one: values are BLOBs, fields are read in Python."""

    differential_examples = 40

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteDatastore]:
        ds = SQLiteDatastore(tmp_path / "blob.db", serializer=serialize.Stack([serialize.json]))
        yield ds
        ds.close()


# -- the storage layout ---------------------------------------------------------------------


def _raw_rows(path: Path, table: str = "datastore") -> list[tuple[Any, ...]]:
    """key, path, the value's SQLite type and doc of every row, in tree order."""
    with sqlite3.connect(path) as conn:
        return conn.execute(
            f'SELECT "key", "path", typeof("value"), "doc" FROM "{table}"'
            " ORDER BY CAST(replace(\"key\", '/', char(0)) AS BLOB)"
        ).fetchall()


def test_layout_json_text_path_and_tree_order(tmp_path: Path) -> None:
    path = tmp_path / "layout.db"
    with SQLiteDatastore(path) as ds:
        for key in ("/a-b", "/a/b", "/a:x", "/a/b:c"):
            ds.put(key, {"k": key})
    rows = _raw_rows(path)
    # Tree order: '/a/b' (and what lies below '/a') sorts before '/a-b'.
    assert [r[0] for r in rows] == ["/a/b", "/a/b:c", "/a-b", "/a:x"]
    assert {r[0]: r[1] for r in rows} == {"/a/b": "/a", "/a/b:c": "/a/b", "/a:x": "/a", "/a-b": "/"}
    assert all(r[2] == "text" and r[3] is None for r in rows)
    with sqlite3.connect(path) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        # One B-tree: the primary key (path, key) of a WITHOUT ROWID table, no other index.
        primary = [(r[1], r[5]) for r in conn.execute('PRAGMA table_info("datastore")') if r[5]]
        indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        plan = " ".join(str(r) for r in conn.execute(
            'EXPLAIN QUERY PLAN SELECT "key" FROM "datastore" WHERE "path" = ? ORDER BY "key"',
            ("/a",)))
        # Within a collection, key order is tree order ('/a/b' before '/a:x' and '/a-b').
        collection = [r[0] for r in conn.execute(
            'SELECT "key" FROM "datastore" WHERE "path" = ? ORDER BY "key"', ("/a",))]
    assert mode == "wal"
    assert sorted(primary, key=lambda c: c[1]) == [("path", 1), ("key", 2)]
    assert all(name.startswith("sqlite_autoindex") for (name,) in indexes)
    assert "PRIMARY KEY" in plan and "TEMP B-TREE" not in plan
    assert collection == ["/a/b", "/a:x"]


def test_other_serializers_store_blobs(tmp_path: Path) -> None:
    path = tmp_path / "blob.db"
    with SQLiteDatastore(path, serializer=None) as ds:
        ds.put("/a", b"\x00\xff")
        assert ds.get("/a") == b"\x00\xff"
    assert _raw_rows(path)[0][2] == "blob"


def test_nul_and_control_characters_in_strings_are_queried_exactly(tmp_path: Path) -> None:
    # SQLite's JSON functions stop at NUL: such documents get an escaped query copy.
    path = tmp_path / "nul.db"
    strings = ["", "\x00", "\x00\x00", "\x01", "\x01\x00", "\x02", "a", "a\x00", "a\x00b", "a\x01",
               "a\x02", "ab", "\x7f", "é", "😀"]
    with SQLiteDatastore(path) as ds:
        pairs = [(Key(f"/s/k{i}"), {"s": s, "t": [s]}) for i, s in enumerate(strings)]
        ds.put_many(pairs)
        for target in strings:
            for op in ("<", "<=", "=", "!=", ">=", ">"):
                query = Query("/s").filter("s", op, target).order("-s")
                want = [k for k, _ in datastore.core.engine.run(query, pairs).items()]
                assert [k for k, _ in ds.query(query.copy()).items()] == want, (op, target)
        assert ds.get("/s/k4") == {"s": "\x01\x00", "t": ["\x01\x00"]}
    docs = [r[3] for r in _raw_rows(path)]
    assert sum(d is not None for d in docs) == 7  # only the strings with NUL or U+0001


class CountingJSON(JSONSerializer):
    """The JSON serializer, counting how many values it decodes."""

    def __init__(self) -> None:
        super().__init__()
        self.decoded = 0

    def loads(self, data: bytes | str) -> Any:
        self.decoded += 1
        return super().loads(data)


def test_page_of_a_large_collection_reads_only_the_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    counting = CountingJSON()
    ds = SQLiteDatastore(tmp_path / "large.db", serializer=counting)
    total = 50_000
    ds.put_many((Key(f"/big/k{i:05d}"), {"n": i % 1000, "odd": i % 2 == 1}) for i in range(total))
    ds.put_many((Key(f"/other/k{i}"), {"n": 5000}) for i in range(100))
    query = Query("/big", limit=10, offset=5).filter("n", ">=", 990).filter("odd", "=", True)
    query.order("-n").order("+odd")
    with caplog.at_level(logging.DEBUG, logger="datastore.sql"):
        got = list(ds.query(query.copy()).items())
    sql = [r.getMessage() for r in caplog.records if "query:" in r.getMessage()]
    assert len(sql) == 1 and "LIMIT" in sql[0] and "ORDER BY" in sql[0] and "json_extract" in sql[0]
    assert "SQLite query fetched 15 rows" in [r.getMessage() for r in caplog.records]
    assert counting.decoded == 10  # only the page was decoded into Python
    want = sorted(
        ((Key(f"/big/k{i:05d}"), {"n": i % 1000, "odd": True}) for i in range(total)
         if i % 1000 >= 990 and i % 2 == 1),
        key=lambda pair: (-pair[1]["n"], pair[0]),
    )[5:15]
    assert got == want
    ds.close()


def test_keys_only_page_decodes_nothing(tmp_path: Path) -> None:
    counting = CountingJSON()
    with SQLiteDatastore(tmp_path / "k.db", serializer=counting) as ds:
        ds.put_many((Key(f"/c/k{i}"), {"n": i}) for i in range(100))
        keys = list(ds.query(Query("/c", limit=3, keys_only=True).order("-n")))
        assert keys == [Key("/c/k99"), Key("/c/k98"), Key("/c/k97")]
        assert counting.decoded == 0


def test_unpushable_parts_are_finished_in_python(tmp_path: Path) -> None:
    with SQLiteDatastore(tmp_path / "mixed.db") as ds:
        pairs = [(Key(f"/m/k{i}"), {"n": i, 'we"ird': i % 3, "l": [i % 2]}) for i in range(30)]
        ds.put_many(pairs)
        queries = [
            Query("/m", limit=4).filter('we"ird', "=", 1).order("-n"),  # field SQLite can't spell
            Query("/m", limit=4).filter("l", "=", [1]).order("-n"),  # list equality
            Query("/m", limit=4).filter("n", ">", 2**70).order("n"),  # beyond 64 bits
            Query("/m", limit=4, object_getattr=lambda v, f: v["n"] % 7).filter("x", "=", 3)
            .order("y"),
            Query("/m", limit=3).order('-we"ird').order("n"),
        ]
        for query in queries:
            want = list(datastore.core.engine.run(query, pairs).items())
            assert list(ds.query(query.copy()).items()) == want, query


# -- field indexes ----------------------------------------------------------------------------


def _people(count: int, collection: str = "/people") -> list[tuple[Key, Any]]:
    """``count`` objects with an int ``age``, a float ``score`` and mixed-type ``x`` fields."""
    mixed: list[Any] = [None, True, 3, 2.5, "s", [1], {"k": 1}]
    return [
        (Key(f"{collection}/p{i:06d}"),
         {"age": (i * 37) % 100, "score": ((i * 7919) % 10007) / 7.0, "x": mixed[i % 7]})
        for i in range(count)
    ]


def _vm_steps(path: Path, ds: SQLiteDatastore, query: Query) -> int:
    """SQLite virtual-machine instructions (in hundreds) that ``query``'s SELECT runs: work, not time."""
    plan = plan_query(query, SQLiteDialect(), ds.table, Fields.JSON, ds.indexes)
    assert plan.sql is not None
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    with sqlite3.connect(path) as conn:
        conn.set_progress_handler(count, 100)
        conn.execute(plan.sql, plan.params).fetchall()
    return steps[0]


def test_field_index_serves_filtered_ordered_pages(tmp_path: Path) -> None:
    path = tmp_path / "ix.db"
    ds = SQLiteDatastore(path)
    pairs = _people(3000)
    ds.put_many(pairs)
    ds.put_many(_people(500, "/other"))
    queries = {
        "walk": Query("/people", limit=10).filter("age", ">=", 50).order("-score"),
        "seek": Query("/people", limit=10, offset=3).filter("age", ">", 90).order("-age"),
        "seek up": Query("/people", limit=10).filter("age", "<", 10).order("age"),
        "mixed types": Query("/people", limit=10).order("-x").order("score"),
    }
    full_sort = "USE TEMP B-TREE FOR ORDER BY"
    plans = {name: ds.explain(q.copy()) for name, q in queries.items()}
    assert all(full_sort in plan for plan in plans.values())  # no index yet: a full sort
    ds.create_index("score")
    ds.create_index("age")
    ds.create_index("x")
    ds.create_index("age")  # again: nothing happens
    assert ds.indexes == ("age", "score", "x")
    plans = {name: ds.explain(q.copy()) for name, q in queries.items()}
    # Descending: the index is read backwards, and only runs of ties are sorted by key.
    assert "datastore:score:a" in plans["walk"] and full_sort not in plans["walk"]
    # The filter pins age to numbers: the index seeks to the range, in order.
    assert "datastore:age:a" in plans["seek"] and ">?" in plans["seek"]
    assert "datastore:age:a" in plans["seek up"] and "<?" in plans["seek up"]
    assert "TEMP B-TREE" not in plans["seek up"]
    assert "datastore:x:a" in plans["mixed types"] and full_sort not in plans["mixed types"]
    assert all(full_sort not in plan for plan in plans.values())
    for name, query in queries.items():
        want = list(datastore.core.engine.run(query.copy(), pairs).items())
        assert list(ds.query(query.copy()).items()) == want, name
    ds.close()
    with SQLiteDatastore(path) as again:  # the catalog tells a new store what is indexed
        assert again.indexes == ("age", "score", "x")
        again.drop_index("x")
        again.drop_index("x")
        assert again.indexes == ("age", "score")
        assert full_sort in again.explain(queries["mixed types"].copy())


def test_with_an_index_a_page_costs_the_same_in_a_ten_times_larger_collection(
    tmp_path: Path,
) -> None:
    query = Query("/people", limit=10).filter("age", ">=", 50).order("-score")
    steps: dict[tuple[bool, int], int] = {}
    for indexed in (False, True):
        for count in (2000, 20000):
            path = tmp_path / f"cost-{indexed}-{count}.db"
            with SQLiteDatastore(path, indexes=["score"] if indexed else []) as ds:
                ds.put_many(_people(count))
                steps[indexed, count] = _vm_steps(path, ds, query.copy())
    # Without the index the engine sorts the collection; with it, it reads a page.
    assert steps[False, 20000] > 5 * steps[False, 2000]
    assert steps[True, 20000] <= steps[True, 2000] + 1
    assert steps[True, 20000] * 20 < steps[False, 20000]


def test_index_options_and_bad_fields(tmp_path: Path) -> None:
    with SQLiteDatastore(tmp_path / "o.db", indexes=["age", "score"]) as ds:
        assert ds.indexes == ("age", "score")
        for bad in ("a b", "1x", "x" * 49, "", "a-b", 'a"b', 3):
            with pytest.raises(ValueError, match="cannot index field"):
                ds.create_index(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="cannot index field"):
            ds.drop_index("a b")
    with pytest.raises(TypeError, match="list of field names"):
        SQLiteDatastore(tmp_path / "o.db", indexes="age")
    with pytest.raises(ValueError, match="cannot index field"):
        SQLiteDatastore(tmp_path / "bad.db", indexes=["ok", "not ok"])
    with datastore.open("sqlite:///" + (tmp_path / "u.db").as_posix() + "?indexes=n,m") as ds:
        assert isinstance(ds, SQLiteDatastore) and ds.indexes == ("m", "n")
    with SQLDatastore("sqlite:///" + (tmp_path / "u.db").as_posix() + "?indexes=k") as sql:
        assert sql.indexes == ("k", "m", "n")


def test_earlier_layout_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute('CREATE TABLE "datastore" ("key" TEXT NOT NULL PRIMARY KEY, "path" TEXT NOT'
                     ' NULL, "tree" BLOB NOT NULL, "value" NOT NULL, "doc" TEXT) WITHOUT ROWID')
    with pytest.raises(ValueError, match="earlier development version"):
        SQLiteDatastore(path)


def test_bulk_writes_keep_the_order_of_their_items(tmp_path: Path) -> None:
    # Multi-row statements carry most rows; rows with a query copy (NUL in a
    # string) go on their own. Either way the last item for a key wins.
    with SQLiteDatastore(tmp_path / "order.db") as ds:
        items: list[tuple[str, Any]] = [(f"/o/k{i}", {"s": f"v{i}"}) for i in range(1007)]
        items += [("/o/k5", {"s": "\x00a"}), ("/o/k6", {"s": "b"}), ("/o/k5", {"s": "c"}),
                  ("/o/k6", {"s": "\x00d"}), ("/o/k1006", {"s": "e"})]
        ds.put_many(items)
        assert len(list(ds.query(Query("/o", keys_only=True)))) == 1007
        assert ds.get_many(["/o/k5", "/o/k6", "/o/k1006", "/o/k0"]) == [
            {"s": "c"}, {"s": "\x00d"}, {"s": "e"}, {"s": "v0"}]
        assert [v["s"] for v in ds.query(Query("/o").filter("s", "<", "a"))] == ["\x00d"]
        with ds.batch() as batch:
            batch.put("/o/k7", {"s": "\x00x"})
            batch.put("/o/k8", {"s": "y"})
            batch.delete("/o/k9")
        assert ds.get_many(["/o/k7", "/o/k8", "/o/k9"]) == [{"s": "\x00x"}, {"s": "y"}, None]


# -- crash safety and concurrency -------------------------------------------------------------

WRITER = """
import sys
sys.path.insert(0, {src!r})
from datastore.sqlite import SQLiteDatastore
ds = SQLiteDatastore({path!r})
i = 0
while True:
    blob = str(i) * 200
    if i % 3 == 0:
        nxt = {{"i": i + 1, "blob": str(i + 1) * 200}}
        ds.put_many([(f"/w/k{{i}}", {{"i": i, "blob": blob}}), (f"/w/k{{i + 1}}", nxt)])
        print(i + 1, flush=True)
        i += 2
    else:
        ds.put(f"/w/k{{i}}", {{"i": i, "blob": blob}})
        ds.put("/w/overwritten", {{"i": i, "blob": blob}})
        print(i, flush=True)
        i += 1
"""


def test_sigkill_mid_write_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    SQLiteDatastore(path).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(src=SRC, path=str(path))],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    acknowledged = -1
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 1500:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with SQLiteDatastore(path) as ds:
        found = {k: v for k, v in ds.query(Query("/w")).items()}
        for i in range(acknowledged + 1):
            value = found.pop(Key(f"/w/k{i}"))
            assert value == {"i": i, "blob": str(i) * 200}
        last = found.pop(Key("/w/overwritten"))
        assert last["blob"] == str(last["i"]) * 200 and last["i"] >= acknowledged - 2
        for key, value in found.items():  # written after the last acknowledgement: whole
            assert value == {"i": value["i"], "blob": str(value["i"]) * 200}, key


PROCESS_WRITER = """
import sys
sys.path.insert(0, {src!r})
from datastore.sqlite import SQLiteDatastore
ds = SQLiteDatastore({path!r}, timeout=60)
for i in range({n}):
    if i % 10 == 0:
        with ds.batch() as b:
            b.put(f"/p{pid}/k{{i}}", {{"i": i}})
            b.put(f"/shared/p{pid}-{{i}}", {{"i": i}})
    else:
        ds.put(f"/p{pid}/k{{i}}", {{"i": i}})
        ds.put_many([(f"/shared/p{pid}-{{i}}", {{"i": i}})])
ds.close()
"""


def test_threads_and_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    n = 150
    ds = SQLiteDatastore(path, timeout=60)
    procs = [
        subprocess.Popen([sys.executable, "-c",
                          PROCESS_WRITER.format(src=SRC, path=str(path), n=n, pid=p)])
        for p in range(2)
    ]

    def work(t: int) -> None:
        for i in range(n):
            ds.put(f"/t{t}/k{i}", {"i": i})
            ds.put_many([(f"/shared/t{t}-{i}", {"i": i})])
            assert ds.get(f"/t{t}/k{i}") == {"i": i}
            list(ds.query(Query("/shared", limit=5).order("-i")))

    run_threads(work)
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    for writer in [f"t{t}" for t in range(4)] + [f"p{p}" for p in range(2)]:
        keys = list(ds.query(Query(f"/{writer}", keys_only=True)))
        assert len(keys) == n, writer
        assert ds.get_many([f"/{writer}/k{i}" for i in range(n)]) == [{"i": i} for i in range(n)]
    assert len(list(ds.query(Query("/shared", keys_only=True)))) == 6 * n
    ds.close()


def test_memory_store_is_shared_by_threads() -> None:
    ds = SQLiteDatastore(":memory:")

    def work(t: int) -> None:
        for i in range(50):
            ds.put(f"/m/t{t}-{i}", i)

    run_threads(work)
    assert len(list(ds.query(Query("/m")))) == 200
    ds.close()
    with pytest.raises(datastore.ClosedError):
        ds.get("/m/t0-0")


def test_batch_and_bulk_calls_are_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "tx.db"
    ds = SQLiteDatastore(path)
    ds.put("/b/keep", 1)
    with sqlite3.connect(path) as conn:  # a row the engine refuses, after others were written
        conn.execute(
            'CREATE TRIGGER refuse BEFORE INSERT ON "datastore" WHEN NEW."key" = \'/b/bad\''
            " BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
        )
    with pytest.raises(datastore.BackendError, match="refused by trigger"), ds.batch() as batch:
        batch.put("/b/x", 1)
        batch.delete("/b/keep")
        batch.put("/b/bad", 2)
    assert ds.get("/b/x") is None and ds.get("/b/keep") == 1
    with pytest.raises(datastore.BackendError, match="refused by trigger"):
        ds.put_many([("/b/y", 1), ("/b/bad", 2)])
    assert ds.get("/b/y") is None
    with ds.batch() as batch:
        batch.put("/b/x", 1)
        batch.delete("/b/keep")
    assert ds.get("/b/x") == 1 and ds.get("/b/keep") is None
    ds.close()


# -- options and URLs -------------------------------------------------------------------------


def test_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_url("sqlite:///relative.db") == ("relative.db", {})
    assert sqlite_url("sqlite:////abs/path.db")[0] == "/abs/path.db"
    for memory in ("sqlite://", "sqlite://:memory:", "sqlite:///:memory:"):
        assert sqlite_url(memory)[0] == ":memory:"
    assert sqlite_url("sqlite:///a%20b.db?table=t1&timeout=2.5&serializer=none") == (
        "a b.db", {"table": "t1", "timeout": 2.5, "serializer": None})
    with datastore.open("sqlite:///rel.db?table=things") as ds:
        assert isinstance(ds, SQLiteDatastore)
        ds.put("/x", [1])
    assert (tmp_path / "rel.db").exists()
    assert _raw_rows(tmp_path / "rel.db", "things")[0][0] == "/x"
    absolute = tmp_path / "sub" / "abs.db"
    absolute.parent.mkdir()
    with datastore.open("sqlite:///" + absolute.as_posix(), synchronous="FULL") as ds:
        ds.put("/y", 2)
        assert isinstance(ds, SQLiteDatastore) and ds.path == str(absolute)
    with datastore.open("sqlite://:memory:?serializer=none") as ds:
        ds.put("/z", b"raw")
        with pytest.raises(TypeError):
            ds.put("/z", "text")
    for bad, message in [
        ("sqlite://host/x.db", "not a host"),
        ("sqlite:///", "names no file"),
        ("sqlite:///x.db?nosuch=1", "unknown option"),
        ("sqlite:///x.db?serializer=pickle", "pickle"),
        ("sqlite:///x.db?timeout=soon", "not a number"),
    ]:
        with pytest.raises(ValueError, match=message):
            datastore.open(bad)


def test_bad_options_refused(tmp_path: Path) -> None:
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"table": "x; DROP TABLE y"}, ValueError),
        ({"table": "1abc"}, ValueError),
        ({"synchronous": "OFF"}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"pool_size": 0}, ValueError),
        ({"serializer": object()}, TypeError),
    ]
    for kwargs, error in cases:
        with pytest.raises(error):
            SQLiteDatastore(tmp_path / "opts.db", **kwargs)
    with pytest.raises(TypeError):
        SQLiteDatastore(3)  # type: ignore[arg-type]
    with pytest.raises(datastore.ConnectionFailed, match="SQLite"):
        SQLiteDatastore(tmp_path / "no" / "such" / "dir.db")


def test_tables_share_a_file_and_a_foreign_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.db"
    with SQLiteDatastore(path, "one") as one, SQLiteDatastore(path, "two") as two:
        one.put("/a", 1)
        two.put("/a", 2)
        assert (one.get("/a"), two.get("/a")) == (1, 2)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE foreign_t (id INTEGER PRIMARY KEY)")
    with pytest.raises(ValueError, match="not a datastore table"):
        SQLiteDatastore(path, "foreign_t")


def test_sqldatastore_reads_a_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "both.db"
    with SQLiteDatastore(path) as ds:
        ds.put("/a/b", {"n": 1})
    with SQLDatastore("sqlite:///" + path.as_posix()) as sql:
        assert sql.get("/a/b") == {"n": 1}
        assert list(sql.query(Query("/a").filter("n", "=", 1))) == [{"n": 1}]


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    ds = SQLiteDatastore(tmp_path / "closed.db")
    ds.put("/a", 1)
    ds.close()
    ds.close()
    for call in (lambda: ds.get("/a"), lambda: ds.put("/a", 2), lambda: list(ds.query(Query("/")))):
        with pytest.raises(datastore.ClosedError):
            call()


def test_repr_and_timeout_wait(tmp_path: Path) -> None:
    path = tmp_path / "wait.db"
    ds = SQLiteDatastore(path, timeout=5)
    assert "wait.db" in repr(ds) and "datastore" in repr(ds)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, conn.execute, args=("COMMIT",))
    timer.start()
    start = time.monotonic()
    ds.put("/waited", 1)  # waits for the lock instead of failing
    assert time.monotonic() - start >= 0.2
    assert ds.get("/waited") == 1
    timer.join()
    conn.close()
    ds.close()


def _child_writes() -> None:
    store = _forked_store[0]
    for i in range(20):
        store.put(f"/fork/child{i}", {"i": i})
    assert store.get("/fork/parent") == {"i": -1}


_forked_store: list[SQLiteDatastore] = []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_opens_its_own_connections(tmp_path: Path) -> None:
    import multiprocessing

    ds = SQLiteDatastore(tmp_path / "fork.db")
    ds.put("/fork/parent", {"i": -1})  # the parent holds an open connection
    _forked_store[:] = [ds]
    child = multiprocessing.get_context("fork").Process(target=_child_writes)
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert len(list(ds.query(Query("/fork")))) == 21
    ds.put("/fork/after", 1)  # the parent's connections are intact
    assert ds.get("/fork/after") == 1
    ds.close()
    memory = SQLiteDatastore(":memory:")
    memory.put("/m", 1)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        try:
            memory.get("/m")
        except datastore.ConnectionFailed as exc:
            os._exit(0 if "parent process" in str(exc) else 2)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert memory.get("/m") == 1
    memory.close()
