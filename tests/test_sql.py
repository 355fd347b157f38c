"""SQLDatastore on real PostgreSQL and MySQL/MariaDB servers, and on SQLite.

Each conformance test gets a table of its own (dropped afterwards), so tests
never see each other's rows on a shared server.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import datastore
from datastore import Key, Query
from datastore.core import engine
from datastore.sql import SQLDatastore, _as_str, _db_execute, _db_fetch
from datastore.sqlite import SQLiteDatastore
from datastore.sqlquery import Fields, SQLiteDialect, check_table_name, escape_text, plan_query
from datastore.testing import DatastoreTests
from datastore.testing.strategies import FIELDS
from servers import server_url

ENGINES = ["postgresql", "mysql", "sqlite", "sqlite-store"]


def _url(kind: str) -> str:
    return server_url("DATASTORE_TEST_POSTGRESQL" if kind == "postgresql" else "DATASTORE_TEST_MYSQL")


def _table() -> str:
    return "t_" + uuid.uuid4().hex[:16]


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[..., SQLDatastore]]:
    """Opens stores of one kind, each on a fresh table; drops the tables afterwards."""
    made: list[tuple[str, str]] = []

    def make(kind: str, **options: Any) -> SQLDatastore:
        table = options.pop("table") if "table" in options else _table()
        if kind in ("postgresql", "mysql"):
            url = _url(kind)
            store = SQLDatastore(url, table, **options)
            made.append((url, table))
            return store
        if kind == "sqlite":
            return SQLDatastore(sqlite3.connect(tmp_path / "sql.db", check_same_thread=False), table)
        return SQLiteDatastore(tmp_path / "store.db", table, **options)

    yield make
    for url, table in made:
        SQLDatastore(url, table).drop()


class TestPostgreSQL(DatastoreTests):
    differential_examples = 60

    @pytest.fixture
    def store(self, make_store: Callable[..., SQLDatastore]) -> Iterator[SQLDatastore]:
        ds = make_store("postgresql")
        yield ds
        ds.close()


class TestMySQL(DatastoreTests):
    differential_examples = 60

    @pytest.fixture
    def store(self, make_store: Callable[..., SQLDatastore]) -> Iterator[SQLDatastore]:
        ds = make_store("mysql")
        yield ds
        ds.close()


class TestSQLiteConnection(DatastoreTests):
    """SQLDatastore given a sqlite3 connection (one connection, shared under a lock)."""

    differential_examples = 40

    @pytest.fixture
    def store(self, make_store: Callable[..., SQLDatastore]) -> Iterator[SQLDatastore]:
        ds = make_store("sqlite")
        yield ds
        ds.close()


class TestPostgreSQLIndexed(DatastoreTests):
    """Every field of the random documents indexed: queries read the indexes' expressions."""

    differential_examples = 40

    @pytest.fixture
    def store(self, make_store: Callable[..., SQLDatastore]) -> Iterator[SQLDatastore]:
        ds = make_store("postgresql", indexes=FIELDS)
        yield ds
        ds.close()


class TestMySQLIndexed(DatastoreTests):
    """Indexed fields on MySQL/MariaDB: queries read the generated columns."""

    differential_examples = 40

    @pytest.fixture
    def store(self, make_store: Callable[..., SQLDatastore]) -> Iterator[SQLDatastore]:
        ds = make_store("mysql", indexes=FIELDS[:2])
        yield ds
        ds.close()


class TestSQLiteIndexed(DatastoreTests):
    differential_examples = 40

    @pytest.fixture
    def store(self, make_store: Callable[..., SQLDatastore]) -> Iterator[SQLDatastore]:
        ds = make_store("sqlite-store", indexes=FIELDS[1:])
        yield ds
        ds.close()


class TestSQLiteURL(DatastoreTests):
    differential_examples = 20

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLDatastore]:
        ds = SQLDatastore("sqlite:///" + (tmp_path / "url.db").as_posix() + "?table=objects")
        yield ds
        ds.close()


# -- pushdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_server_runs_the_filtered_ordered_limited_query(
    kind: str, make_store: Callable[..., SQLDatastore], caplog: pytest.LogCaptureFixture
) -> None:
    ds = make_store(kind)
    total = 1000
    pairs = [(Key(f"/big/k{i:04d}"), {"n": i % 100, "s": f"S{i % 7}", "odd": i % 2 == 1})
             for i in range(total)]
    ds.put_many(pairs)
    query = Query("/big", limit=7, offset=3).filter("n", ">=", 90).filter("s", "!=", "S3")
    query.order("-n").order("+s")
    with caplog.at_level(logging.DEBUG, logger="datastore.sql"):
        got = list(ds.query(query.copy()).items())
    messages = [r.getMessage() for r in caplog.records]
    statements = [m for m in messages if " query: " in m]
    assert len(statements) == 1
    assert "ORDER BY" in statements[0] and "LIMIT" in statements[0]
    assert ("jsonb_typeof" if kind == "postgresql" else "JSON_EXTRACT") in statements[0]
    fetched = [m for m in messages if "fetched" in m]
    assert fetched == [f"{'PostgreSQL' if kind == 'postgresql' else 'MySQL'} query fetched 10 rows"]
    assert got == list(engine.run(query, pairs).items())
    assert len(got) == 7
    ds.close()


# Values that stress the cross-type rules: NUL and control characters, case,
# code points beyond the BMP, signed zero, the ends of the exact number range.
HARD_STRINGS = ["", "\x00", "\x00\x00", "\x01", "\x01\x00", "\x02", "a", "a\x00", "a\x00b",
                "a\x01", "A", "B", "b", "ab", "aB", " a", "a ", "é", "E", "z", "ü", "日本",
                "😀", "\U0010ffff", "10", "9", '"', "\\", "'"]
HARD_NUMBERS = [0, -0.0, 0.0, 1, 1.0, -1, 0.5, 2.5, 2**53, -(2**53), 2**53 - 1, 1e20, -1e-5,
                5e-324, 1.7976931348623157e308, 0.1, 0.30000000000000004]
HARD_OTHERS: list[Any] = [None, True, False, [], [1], [True], {}, {"k": 1}]


@pytest.mark.parametrize("kind", ENGINES)
def test_hard_values_compare_as_the_naive_engine(
    kind: str, make_store: Callable[..., SQLDatastore]
) -> None:
    ds = make_store(kind)
    values = HARD_STRINGS + HARD_NUMBERS + HARD_OTHERS
    pairs: list[tuple[Key, Any]] = [(Key(f"/h/k{i:03d}"), {"f": v}) for i, v in enumerate(values)]
    pairs += [(Key("/h/missing"), {"g": 1}), (Key("/h/scalar"), "f"), (Key("/h/list"), [1])]
    ds.put_many(pairs)
    for key, value in pairs:
        got = ds.get(key)
        assert got == value and type(got["f"] if isinstance(got, dict) and "f" in got else got) is \
            type(value["f"] if isinstance(value, dict) and "f" in value else value), key
    targets = [*HARD_STRINGS, *HARD_NUMBERS, None, True, False, b"a", [1], {"k": 1}]
    for target in targets:
        for op in ("<", "<=", "=", "!=", ">=", ">"):
            query = Query("/h").filter("f", op, target)
            want = {k for k, _ in engine.run(query, pairs).items()}
            assert {k for k, _ in ds.query(query).items()} == want, (op, target)
    for order in ("+f", "-f"):
        query = Query("/h").order(order)
        want_keys = [k for k, _ in engine.run(query, pairs).items()]
        assert [k for k, _ in ds.query(query.copy()).items()] == want_keys, order
    ds.close()


# -- injection ----------------------------------------------------------------------------------

NASTY = [
    "a') OR 1=1 --",
    "x' OR '1'='1",
    "$.x",
    '"',
    'a"b',
    "\\",
    "a\\b",
    "'; DROP TABLE datastore; --",
    "%s",
    "%(x)s",
    "?",
    "`",
    "a`b",
    "$[0]",
    "*",
    "\x01",
    "名前",
    "X'41'",
]


@pytest.mark.parametrize("kind", ENGINES)
def test_injection_through_keys_fields_and_values_is_harmless(
    kind: str, make_store: Callable[..., SQLDatastore]
) -> None:
    ds = make_store(kind)
    pairs: list[tuple[Key, Any]] = []
    nasty_keys = [Key(["keys", nasty]) for nasty in NASTY] + [Key("/keys").instance(n) for n in NASTY]
    for i, key in enumerate(nasty_keys):
        ds.put(key, i)
    assert ds.get_many(nasty_keys) == list(range(len(nasty_keys)))
    assert all(ds.contains(key) for key in nasty_keys)
    assert sorted(ds.query(Query("/keys", keys_only=True))) == sorted(nasty_keys)
    assert ds.get("/keys/x' OR '1'='2") is None
    ds.delete(nasty_keys[0])
    assert ds.get(nasty_keys[0]) is None and ds.get(nasty_keys[1]) == 1
    for i, nasty in enumerate(NASTY):
        pairs.append((Key(f"/inj/k{i}"), {nasty: nasty, "n": i, "v": nasty}))
    pairs.append((Key("/inj/plain"), {"n": -1, "v": "plain"}))
    ds.put_many(pairs)
    for key, value in pairs:
        assert ds.get(key) == value
    for nasty in NASTY:
        for op in ("=", "!=", "<", ">="):
            query = Query("/inj").filter(nasty, op, nasty).order("-" + nasty).order("n")
            want = [k for k, _ in engine.run(query, pairs).items()]
            assert [k for k, _ in ds.query(query.copy()).items()] == want, (nasty, op)
        query = Query("/inj").filter("v", "=", nasty)
        assert [v["v"] for v in ds.query(query)] == [nasty]
    ds.delete_many([k for k, _ in pairs[:3]])
    assert ds.get_many([k for k, _ in pairs[:4]]) == [None, None, None, pairs[3][1]]
    assert len(list(ds.query(Query("/inj", recursive=True)))) == len(pairs) - 3
    for bad in ("datastore; DROP TABLE x", "t'", 't"', "t`", "a-b", "", "1t", "x" * 59):
        with pytest.raises(ValueError, match="table name"):
            check_table_name(bad)
        with pytest.raises(ValueError, match="table name"):
            make_store(kind, table=bad)
    ds.close()


def test_field_names_are_parameters_not_sql() -> None:
    query = Query("/a", limit=3).filter("a') OR 1=1 --", "=", "x").order("-$.y")
    plan = plan_query(query, SQLiteDialect(), "datastore", Fields.JSON)
    assert plan.sql is not None
    assert "OR 1=1" not in plan.sql and "$.y" not in plan.sql and "'x'" not in plan.sql
    assert "$.\"a') OR 1=1 --\"" in plan.params and '$."$.y"' in plan.params
    assert plan.filtered and plan.ordered and plan.limited
    assert escape_text("a\x00b\x01") == "a\x01\x01b\x01\x02"


# -- keys, connections, URLs -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_keys_are_case_and_space_exact_and_length_checked(
    kind: str, make_store: Callable[..., SQLDatastore]
) -> None:
    ds = make_store(kind)
    keys = ["/a", "/A", "/a ", "/a  ", "/ä", "/a\u0308", "/ß", "/ss"]
    ds.put_many((k, i) for i, k in enumerate(keys))
    assert ds.get_many(keys) == list(range(len(keys)))
    assert ds.get("/A ") is None
    long_key = "/" + "é" * 600  # 1201 bytes of UTF-8
    with pytest.raises(ValueError, match="1024 bytes"):
        ds.put(long_key, 1)
    with pytest.raises(ValueError, match="1024 bytes"):
        ds.put_many([("/ok", 1), (long_key, 2)])
    assert ds.get("/ok") is None
    ds.put("/" + "é" * 500, 3)
    assert ds.get("/" + "é" * 500) == 3
    ds.close()


# -- field indexes ------------------------------------------------------------------------------


def _people(count: int) -> list[tuple[Key, Any]]:
    mixed: list[Any] = [None, True, 3, 2.5, "s", [1], {"k": 1}]
    return [(Key(f"/people/p{i:05d}"),
             {"age": (i * 37) % 100, "score": ((i * 7919) % 10007) / 7.0, "x": mixed[i % 7]})
            for i in range(count)]


def _forced_plan(kind: str, ds: SQLDatastore, query: Query, index: str) -> str:
    """The engine's plan for ``query`` with sorting (PostgreSQL) or other indexes (MySQL) ruled out.

    What this shows is that the index *can* serve the query (its expressions
    match the query's), whatever the planner would pick for this small table.
    """
    dialect = ds._dialect
    plan = plan_query(query, dialect, ds.table, Fields.JSON, ds.indexes)
    assert plan.sql is not None
    if kind == "postgresql":
        def explain(conn: Any, sql: str, params: Any) -> str:
            with conn.transaction():
                conn.execute("SET LOCAL enable_sort = off")
                conn.execute("SET LOCAL enable_seqscan = off")
                rows = conn.execute("EXPLAIN " + sql, params).fetchall()
            return "\n".join(r[0] for r in rows)

        return ds._run(explain, plan.sql, plan.params)
    table = dialect.quote(ds.table)
    sql = plan.sql.replace(f"FROM {table}", f"FROM {table} FORCE INDEX (`{index}`)", 1)

    def explain_mysql(conn: Any, sql: str, params: Any) -> str:
        cur = conn.cursor()
        cur.execute("EXPLAIN " + sql, params)
        text = " ".join(str(part) for part in cur.fetchall()[0])
        cur.close()
        return text

    return ds._run(explain_mysql, sql, plan.params)


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_field_indexes_on_a_server(kind: str, make_store: Callable[..., SQLDatastore]) -> None:
    ds = make_store(kind)
    pairs = _people(1500)
    ds.put_many(pairs)
    ds.create_index("score")
    ds.create_index("age")
    ds.create_index("age")
    assert ds.indexes == ("age", "score")
    walk = Query("/people", limit=10).filter("age", ">=", 50).order("-score")
    seek = Query("/people", limit=10, offset=2).filter("age", ">", 90).order("-age")
    for query in (walk, seek, Query("/people", limit=5).order("x").order("-score"),
                  Query("/people").filter("age", "=", 3).filter("x", "!=", None)):
        want = list(engine.run(query.copy(), pairs).items())
        assert list(ds.query(query.copy()).items()) == want, query
    table = ds.table
    if kind == "postgresql":
        # One ascending index per field: a descending order reads it backwards
        # and sorts each run of ties by key (an incremental sort), never the whole.
        walked = _forced_plan(kind, ds, walk.copy(), "")
        sought = _forced_plan(kind, ds, seek.copy(), "")
        assert f'"{table}:score:a"' in walked and "->  Sort" not in walked
        assert f'"{table}:age:a"' in sought and "->  Sort" not in sought
    else:  # MySQL has no incremental sort: an ascending and a descending index
        walked = _forced_plan(kind, ds, walk.copy(), f"{table}:score:d")
        sought = _forced_plan(kind, ds, seek.copy(), f"{table}:age:d")
        assert f"{table}:score:d" in walked and "filesort" not in walked
        assert f"{table}:age:d" in sought and "filesort" not in sought and "range" in sought
    with SQLDatastore(_url(kind), table) as other:  # the catalog tells another store
        assert other.indexes == ("age", "score")
    ds.drop_index("age")
    assert ds.indexes == ("score",)
    assert list(ds.query(seek.copy()).items()) == list(engine.run(seek.copy(), pairs).items())
    with pytest.raises(ValueError, match="cannot index field"):
        ds.create_index("a b")
    ds.close()


def _analyzes(ds: SQLDatastore) -> int:
    """How many times ANALYZE has run on the store's table (the view lags: poll it)."""
    rows = ds._run(lambda conn, sql, params: conn.execute(sql, params).fetchall(),
                   "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = %s", (ds.table,))
    return int(rows[0][0]) if rows else 0


def _wait_for_analyzes(ds: SQLDatastore, count: int) -> int:
    deadline = time.monotonic() + 5  # the statistics view is updated asynchronously
    while _analyzes(ds) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return _analyzes(ds)


def _has_statistics(ds: SQLDatastore) -> bool:
    rows = ds._run(lambda conn, sql, params: conn.execute(sql, params).fetchall(),
                   "SELECT 1 FROM pg_stats WHERE tablename = %s", (ds.table,))
    return bool(rows)


def test_postgresql_analyzes_a_table_without_statistics_after_its_first_bulk_write(
    make_store: Callable[..., SQLDatastore]
) -> None:
    """A never-analyzed table gets statistics at once; one that has them is left alone."""
    ds = make_store("postgresql")
    assert not _has_statistics(ds)
    pairs = _people(1000)
    ds.put_many(pairs)
    assert _has_statistics(ds)  # ANALYZE writes them before it returns
    assert _wait_for_analyzes(ds, 1) == 1
    for i in range(12):  # no field index: no more ANALYZE of its own however much it writes
        ds.put_many([(Key(f"/people/{i}-{k.name}"), v) for k, v in pairs])
    other = make_store("postgresql", table=ds.table)  # has statistics: only looks
    other.put_many(pairs)
    time.sleep(0.5)
    assert _analyzes(ds) == 1
    assert ds._unanalyzed == 0 and other._unanalyzed == 0


def test_postgresql_analyzes_after_bulk_loads_into_an_indexed_table(
    make_store: Callable[..., SQLDatastore]
) -> None:
    """Fresh statistics right after a bulk load, in geometric steps, without waiting for autovacuum."""
    ds = make_store("postgresql", indexes=["score"])

    from datastore import sql as sql_module

    pairs = _people(1000)
    ds.put_many(pairs)  # create_index analyzed an empty table: still no statistics
    start = _wait_for_analyzes(ds, 2)
    assert _has_statistics(ds)
    for i in range(9):
        ds.put_many([(Key(f"/people/{i}-{k.name}"), v) for k, v in pairs])
    assert _analyzes(ds) == start  # 9,000 rows: below ANALYZE_ROWS
    ds.put_many([(Key(f"/people/9-{k.name}"), v) for k, v in pairs])
    assert sql_module.ANALYZE_ROWS == 10_000
    assert _wait_for_analyzes(ds, start + 1) == start + 1
    assert ds._unanalyzed == 0 and ds._analyzed == 10_000


def test_mysql_refuses_strings_its_index_cannot_hold(
    make_store: Callable[..., SQLDatastore]
) -> None:
    ds = make_store("mysql", indexes=["name"])
    long = "é" * 385  # 770 bytes of UTF-8
    ds.put("/n/ok", {"name": "é" * 384, "other": long})
    with pytest.raises(ValueError, match="768 bytes"):
        ds.put("/n/long", {"name": long})
    with pytest.raises(ValueError, match="768 bytes"):
        ds.put_many([("/n/a", {"name": "a"}), ("/n/b", {"name": long})])
    assert ds.get_many(["/n/long", "/n/a", "/n/b"]) == [None, None, None]
    assert [k for k, _ in ds.query(Query("/n").order("-name")).items()] == [Key("/n/ok")]
    with pytest.raises(ValueError, match="holds a string longer than 768"):
        ds.create_index("other")
    assert ds.indexes == ("name",)
    ds.close()


def _one(conn: Any, sql: str) -> int:
    cur = conn.cursor()
    cur.execute(sql)
    value = cur.fetchone()[0]
    cur.close()
    return int(value)


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_reconnects_after_the_server_drops_the_connection(
    kind: str, make_store: Callable[..., SQLDatastore], caplog: pytest.LogCaptureFixture
) -> None:
    ds = make_store(kind, pool_size=1)
    ds.put("/r/a", {"n": 1})
    backend = ds._run(lambda conn, sql, _: _one(conn, sql),
                      "SELECT pg_backend_pid()" if kind == "postgresql" else "SELECT CONNECTION_ID()",
                      None)
    admin = SQLDatastore(_url(kind), _table())
    kill = "SELECT pg_terminate_backend(%s)" if kind == "postgresql" else "KILL %s"
    admin._run(lambda conn, sql, params: conn.cursor().execute(sql, params), kill, (backend,))
    admin.drop()
    with caplog.at_level(logging.INFO, logger="datastore.sql"):
        assert ds.get("/r/a") == {"n": 1}  # the dead connection is replaced, the call succeeds
    assert any("connection dropped" in r.getMessage() for r in caplog.records)
    ds.put("/r/b", {"n": 2})
    assert [v["n"] for v in ds.query(Query("/r").order("n"))] == [1, 2]
    ds.close()


def test_given_connection_stays_open_and_is_not_replaced(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "given.db", check_same_thread=False)
    ds = SQLDatastore(conn, "given")
    ds.put("/a", 1)
    ds.close()
    assert conn.execute('SELECT COUNT(*) FROM "given"').fetchone() == (1,)
    with pytest.raises(datastore.ClosedError):
        ds.get("/a")
    with pytest.raises(TypeError, match="connection"):
        SQLDatastore(object())
    with pytest.raises(ValueError, match="pool_size"):
        SQLDatastore(conn, pool_size=2)
    conn.close()


def test_urls_and_options() -> None:
    pg = _url("postgresql")
    table = _table()
    with datastore.open(pg.replace("postgresql://", "postgres://") + f"?table={table}") as ds:
        assert isinstance(ds, SQLDatastore) and ds.table == table
        ds.put("/u", 1)
        assert "datastore@127.0.0.1" in repr(ds) and ":datastore@" not in repr(ds)  # no password
    with datastore.open(pg, table=table, pool_size=2) as ds:
        assert isinstance(ds, SQLDatastore) and ds.get("/u") == 1
        ds.drop()
    my = _url("mysql")
    with datastore.open(my.replace("mysql://", "mariadb://") + f"?table={table}") as ds:
        ds.put("/u", 2)
        assert isinstance(ds, SQLDatastore) and ds.get("/u") == 2
        ds.drop()
    for bad, error, message in [
        (my + "?nosuch=1", ValueError, "unknown option"),
        (pg + "?pool_size=many", ValueError, "pool_size"),
        (pg + "?pool_size=0", ValueError, "pool_size"),
        ("oracle://x/y", ValueError, "postgresql://"),
        ("postgresql://nobody:wrong@127.0.0.1:1/db?connect_timeout=1", datastore.ConnectionFailed,
         "PostgreSQL"),
        ("mysql://nobody:wrong@127.0.0.1:1/db?connect_timeout=1", datastore.ConnectionFailed,
         "MySQL"),
    ]:
        with pytest.raises(error, match=message):
            SQLDatastore(bad)


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_foreign_table_is_refused(kind: str, make_store: Callable[..., SQLDatastore]) -> None:
    table = _table()
    admin = make_store(kind)
    admin._run(lambda conn, sql, _: conn.cursor().execute(sql),
               f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)", None)
    try:
        with pytest.raises(ValueError, match="not a datastore table"):
            SQLDatastore(_url(kind), table)
    finally:
        admin._run(lambda conn, sql, _: conn.cursor().execute(sql), f"DROP TABLE {table}", None)
        admin.close()


_EARLIER_LAYOUT = {
    "postgresql": 'CREATE TABLE {t} ("key" TEXT COLLATE "C" PRIMARY KEY, "path" TEXT NOT NULL,'
                  ' "tree" BYTEA NOT NULL, "value" TEXT NOT NULL, "doc" JSONB NOT NULL)',
    "mysql": "CREATE TABLE {t} (`key` VARBINARY(1024) NOT NULL PRIMARY KEY,"
             " `path` VARBINARY(1024) NOT NULL, `tree` VARBINARY(1024) NOT NULL,"
             " `value` LONGTEXT NOT NULL)",
}


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_earlier_layout_is_refused_with_a_way_out(
    kind: str, make_store: Callable[..., SQLDatastore]
) -> None:
    # The table of an earlier development version has every column the
    # current one has (plus "tree"): only the explicit check tells them apart.
    table = _table()
    admin = make_store(kind)
    admin._run(lambda conn, sql, _: conn.cursor().execute(sql),
               _EARLIER_LAYOUT[kind].format(t=table), None)
    try:
        with pytest.raises(ValueError, match=r"earlier development version.*datastore copy"):
            SQLDatastore(_url(kind), table)
    finally:
        admin._run(lambda conn, sql, _: conn.cursor().execute(sql), f"DROP TABLE {table}", None)
        admin.close()


def test_mysql_looks_keys_up_in_a_key_only_primary_key(
    make_store: Callable[..., SQLDatastore]
) -> None:
    """The primary key is ``key``; a table with the earlier ``(path, key)`` one is refused."""
    ds = make_store("mysql")
    ds.put_many([(Key(f"/m/k{i}"), {"i": i}) for i in range(50)])
    d = ds._dialect
    primary = [_as_str(c) for (c,) in ds._run(_db_fetch, d.primary_key_sql(), (ds.table,))]
    assert primary == ["key"]
    # Every statement that names keys is a primary-key lookup: const/eq_ref
    # on PRIMARY (a scan of the (path, key) index would say "index" or "ref").
    get, _ = d.key_statement(ds._sql_get, "/m/k7")
    assert "`path`" not in get  # the key alone: the cheapest lookup (MySQLDialect)
    many = d.select_values(ds.table, ["/m/k1", "/n/k2"], d.texts(["/m/k1", "/n/k2"]))
    [(deletes, delete_params)] = list(d.keys_in(["/m/k1", "/n/k2"]))
    for sql, params in [(get, None), *many,
                        (f"SELECT 1 FROM {d.quote(ds.table)} WHERE {deletes}", delete_params)]:
        plans = ds._run(_db_fetch, "EXPLAIN " + sql, params)
        table_rows = [row for row in plans if _as_str(row[2]) == "t" or _as_str(row[2]) == ds.table]
        assert [(_as_str(r[3]), _as_str(r[5])) for r in table_rows] in (
            [("const", "PRIMARY")], [("eq_ref", "PRIMARY")], [("range", "PRIMARY")]), plans
    # The earlier layout: refused with the statement that upgrades it in place.
    table = _table()
    ds._run(_db_execute, f"CREATE TABLE {table} (`path` VARBINARY(1024) NOT NULL,"
            " `key` VARBINARY(1024) NOT NULL, `value` LONGTEXT CHARACTER SET utf8mb4"
            " COLLATE utf8mb4_bin NOT NULL, PRIMARY KEY (`path`, `key`)) ENGINE=InnoDB", ())
    try:
        ds._run(_db_execute, f"INSERT INTO {table} VALUES (%s, %s, %s)",
                (b"/old", b"/old/a", '{"kept": true}'))
        with pytest.raises(ValueError, match=r"primary key \(path, key\).*ALTER TABLE") as refused:
            SQLDatastore(_url("mysql"), table)
        ds._run(_db_execute, str(refused.value).split("with: ", 1)[1], ())
        with SQLDatastore(_url("mysql"), table) as upgraded:
            assert upgraded.get(Key("/old/a")) == {"kept": True}
            upgraded.put(Key("/old/b"), 2)
            assert [str(k) for k, _ in upgraded.query(Query(Key("/old"))).items()] == [
                "/old/a", "/old/b"]
    finally:
        ds._run(_db_execute, f"DROP TABLE {table}", ())


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_given_server_connection(kind: str) -> None:
    from urllib.parse import urlsplit

    url = _url(kind)
    if kind == "postgresql":
        import psycopg

        conn: Any = psycopg.connect(url)
        conn.execute("SELECT 1")  # a transaction is open: the store refuses to take over
        with pytest.raises(ValueError, match="transaction"):
            SQLDatastore(conn)
        conn.rollback()
    else:
        import pymysql

        parts = urlsplit(url)
        conn = pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username,
                               password=parts.password, database=parts.path[1:],
                               charset="utf8mb4")
    table = _table()
    ds = SQLDatastore(conn, table)
    ds.put_many([("/g/a", {"n": 1}), ("/g/b", {"n": 2})])
    assert [v["n"] for v in ds.query(Query("/g", limit=1).order("-n"))] == [2]
    ds.close()
    with SQLDatastore(url, table) as other:
        assert other.get("/g/a") == {"n": 1}
    ds = SQLDatastore(conn, table)  # still open: close() left it to its owner
    ds.drop()
    conn.close()


# -- bulk writes: multi-row statements --------------------------------------------------------


@pytest.mark.parametrize("kind", ENGINES)
def test_put_many_keeps_the_last_value_of_a_key_given_twice(
    kind: str, make_store: Callable[..., SQLDatastore]
) -> None:
    """Repeated keys across and within statements, with and without a query copy (NUL)."""
    ds = make_store(kind)
    many = [(Key(f"/m/k{i:05d}"), {"n": i}) for i in range(2500)]  # several statements
    pairs: list[tuple[Key, Any]] = [
        (Key("/m/a"), {"s": "plain"}), *many[:1200], (Key("/m/a"), {"s": "a\x00b"}),
        (Key("/m/b"), {"s": "b\x00"}), *many[1200:], (Key("/m/k00007"), {"n": -7}),
        (Key("/m/a"), {"s": "last"}), (Key("/m/b"), {"s": "b\x01c"}),
    ]
    ds.put_many(pairs)
    assert ds.get("/m/a") == {"s": "last"}
    assert ds.get("/m/b") == {"s": "b\x01c"}
    assert ds.get("/m/k00007") == {"n": -7}
    assert ds.get_many([k for k, _ in many[1:7]]) == [v for _, v in many[1:7]]
    assert ds.get(many[-1][0]) == many[-1][1]
    # The query copies are those of the last values: filters read them.
    assert [k for k, _ in ds.query(Query("/m").filter("s", "=", "b\x01c")).items()] == [Key("/m/b")]
    assert not list(ds.query(Query("/m").filter("s", "=", "a\x00b")))
    ds.put_many([("/m/c", 1), ("/m/d", 0), ("/m/c", 2)])  # twice in one statement
    assert ds.get_many(["/m/c", "/m/d"]) == [2, 0]
    with ds.batch() as batch:
        batch.put("/m/a", {"s": "x\x00"})
        batch.put("/m/a", {"s": "y"})
    assert ds.get("/m/a") == {"s": "y"}
    assert [k for k, _ in ds.query(Query("/m").filter("s", "=", "y")).items()] == [Key("/m/a")]
    ds.close()


def test_mysql_put_many_splits_large_batches_and_keeps_text_exact(
    make_store: Callable[..., SQLDatastore]
) -> None:
    """Values go as UTF-8 bytes, in statements of at most ~1 MB: the text comes back unchanged."""
    ds = make_store("mysql")
    text = "ascii 'quote' \"dq\" \\back\\ %s %(x)s `tick` é 名前 🙂 \x01 \x7f " * 1500  # ~100 KB
    pairs = [(Key(f"/big/k{i:02d}"), {"t": text + str(i), "i": i}) for i in range(40)]
    pairs.append((Key("/big/k00"), {"t": "again", "i": -1}))  # in another statement than its first
    ds.put_many(pairs)
    assert ds.get("/big/k00") == {"t": "again", "i": -1}
    assert ds.get_many([k for k, _ in pairs[1:40]]) == [v for _, v in pairs[1:40]]
    ds.put(Key("/big/one"), {"t": text})
    assert ds.get("/big/one") == {"t": text}
    assert [v["i"] for v in ds.query(Query("/big").filter("t", "=", text + "5"))] == [5]
    ds.close()


def test_postgresql_put_many_without_raw_cursor(
    make_store: Callable[..., SQLDatastore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg before 3.2 has no RawCursor: bulk writes fall back to executemany, same results."""
    import psycopg

    monkeypatch.delattr(psycopg, "RawCursor")
    ds = make_store("postgresql")
    assert ds._upsert_rows == ds._upsert_each
    ds.put_many([("/p/a", {"s": "one"}), ("/p/b", {"s": "b\x00"}), ("/p/a", {"s": "two"})])
    assert ds.get_many(["/p/a", "/p/b"]) == [{"s": "two"}, {"s": "b\x00"}]
    assert [k for k, _ in ds.query(Query("/p").filter("s", "=", "b\x00")).items()] == [Key("/p/b")]
    ds.close()


def test_mysql_bulk_reads_send_keys_as_json_or_in_lists_alike(
    make_store: Callable[..., SQLDatastore]
) -> None:
    """The JSON_TABLE read (one JSON parameter) and the IN lists answer the same, for any key."""
    ds = make_store("mysql")
    assert ds._dialect.json_table  # MariaDB 10.6+ / MySQL 8: the probe found it
    odd = ["it's", 'say "hi"', "back\\slash", "50%", "tab\there", "é日本", "a b", "x" * 300]
    keys = [Key("/j").child(name) for name in odd] + [Key(f"/j/sub:{i}") for i in range(5)]
    ds.put_many([(key, {"i": i}) for i, key in enumerate(keys)])
    too_long = Key("/j/" + "y" * 1100)  # longer than any stored key: absent, never cut
    asked = [keys[3], too_long, keys[-1], Key("/j/absent"), keys[3], *keys]
    expected = [{"i": 3}, None, {"i": len(keys) - 1}, None, {"i": 3}, *({"i": i} for i in range(len(keys)))]
    assert ds.get_many(asked) == expected
    one = [keys[3], keys[0], Key("/j/absent"), keys[3], *keys[:len(odd)]]  # one collection
    one_expected = [{"i": 3}, {"i": 0}, None, {"i": 3}, *({"i": i} for i in range(len(odd)))]
    assert ds.get_many(one) == one_expected  # the JSON_TABLE read
    d = ds._dialect

    def statement(asked: list[Key]) -> str:
        strings = [str(key) for key in asked]
        return str(d.select_values(ds.table, strings, d.texts(strings))[0][0])

    assert "JSON_TABLE" in statement(one)
    assert "JSON_TABLE" in statement(keys)  # several collections: one read all the same
    assert "JSON_TABLE" not in statement(asked)  # a key too long
    assert "JSON_TABLE" not in statement([*one, too_long])
    d.json_table = False  # a server without JSON_TABLE
    assert "JSON_TABLE" not in statement(one)
    assert ds.get_many(asked) == expected
    assert ds.get_many(one) == one_expected
