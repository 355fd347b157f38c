"""SQLiteDatastore against raw sqlite3 (same journal and sync settings) and two peers.

The peers run with their defaults, as a user who picks them instead would:
diskcache's ``Cache`` (WAL, synchronous=NORMAL, values pickled) and
sqlitedict's ``SqliteDict`` with ``autocommit=True`` (values pickled, writes
committed by its background thread).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from typing import Any

from ..data import QuerySpec
from ..subject import Context, StoreSubject, Subject, Unavailable, dumps, loads, need
from .sql import store_index_statements

#: The settings the raw baseline copies from SQLiteDatastore (see its module).
JOURNAL_MODE = "WAL"
SYNCHRONOUS = "NORMAL"


def sqlite_store(ctx: Context) -> Subject:
    try:
        from datastore.sqlite import SQLiteDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.sqlite: {exc}") from exc
    path = ctx.scratch("sqlite-store") / "store.db"
    return StoreSubject("SQLiteDatastore", SQLiteDatastore(str(path)), pushes_down=True,
                        label="defaults: WAL, synchronous=NORMAL, JSON text, (path, key) primary key",
                        cleanup=lambda: shutil.rmtree(path.parent, ignore_errors=True))


def sqlite_indexed_store(ctx: Context) -> Subject:
    """SQLiteDatastore with ``indexes=['score']``: the benchmark's order field indexed."""
    try:
        from datastore.sqlite import SQLiteDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.sqlite: {exc}") from exc
    path = ctx.scratch("sqlite-store-ix") / "store.db"
    try:
        store = SQLiteDatastore(str(path), indexes=["score"])
    except TypeError as exc:
        raise Unavailable(f"this SQLiteDatastore has no indexes= option: {exc}") from exc
    return StoreSubject("SQLiteDatastore(indexes=score)", store, pushes_down=True,
                        label="defaults plus indexes=['score'] (the query's order field)",
                        cleanup=lambda: shutil.rmtree(path.parent, ignore_errors=True))


class RawSQLite(Subject):
    """sqlite3 with one key/value table, autocommit for single calls, one transaction per bulk call.

    ``query`` is the fetch-all baseline; ``query_pushdown`` is the SQL a user
    would write by hand (``json_extract`` filter and order, ``LIMIT``).
    """

    label = f"journal_mode={JOURNAL_MODE}, synchronous={SYNCHRONOUS}, TEXT JSON values"

    def __init__(self, path: str) -> None:
        self.path = path
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        con.execute(f"PRAGMA journal_mode={JOURNAL_MODE}")
        con.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        con.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        self.con = con
        self.execute = con.execute
        self.query = self._query
        self.query_pushdown = self._pushdown

    def put(self, key: str, value: Any) -> None:
        self.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)",
                     (key, dumps(value).decode()))

    def get(self, key: str) -> Any:
        row = self.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else loads(row[0])

    def contains(self, key: str) -> bool:
        return self.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone() is not None

    def delete(self, key: str) -> None:
        self.execute("DELETE FROM kv WHERE key = ?", (key,))

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        rows = [(k, dumps(v).decode()) for k, v in pairs]
        with self.con:  # BEGIN ... COMMIT: one transaction per call
            self.execute("BEGIN")
            self.con.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", rows)

    def get_many(self, keys: list[str]) -> list[Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.execute(
                f"SELECT key, value FROM kv WHERE key IN ({marks})", chunk).fetchall())
        return [None if (d := found.get(k)) is None else loads(d) for k in keys]

    def delete_many(self, keys: list[str]) -> None:
        with self.con:
            self.execute("BEGIN")
            self.con.executemany("DELETE FROM kv WHERE key = ?", [(k,) for k in keys])

    def _query(self, spec: QuerySpec) -> list[Any]:
        low = spec.collection + ":"
        rows = self.execute("SELECT key, value FROM kv WHERE key >= ? AND key < ?",
                            (low, spec.collection + ";"))
        return spec.apply((k, loads(v)) for k, v in rows)

    def _pushdown(self, spec: QuerySpec) -> list[Any]:
        sql = (
            "SELECT value FROM kv WHERE key >= ? AND key < ?"
            f" AND json_extract(value, '$.{spec.field}') {spec.op} ?"
            f" ORDER BY json_extract(value, '$.{spec.order_field}')"
            f" {'DESC' if spec.descending else 'ASC'}, key LIMIT ?"
        )
        rows = self.execute(sql, (spec.collection + ":", spec.collection + ";", spec.value,
                                  spec.limit))
        return [loads(v) for (v,) in rows]

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)


def raw_sqlite(ctx: Context) -> Subject:
    return RawSQLite(str(ctx.scratch("sqlite-raw") / "raw.db"))


class IndexedSQLite(RawSQLite):
    """raw sqlite3 plus an expression index on the order field: what "cost follows the page" takes.

    Only its hand-written query is of interest (the fetch-all one is the raw
    driver's); its writes show what maintaining the index costs.
    """

    label = RawSQLite.label + ", plus INDEX ON (json_extract(value, '$.score') DESC, key)"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.execute("CREATE INDEX kv_order ON kv (json_extract(value, '$.score') DESC, key)")
        self.query = None

    def _pushdown(self, spec: QuerySpec) -> list[Any]:
        if spec.order_field != "score" or not spec.descending:
            raise ValueError("the index serves the benchmark's order only")
        # The planner prefers the key-range search; the index walk stops after one page.
        sql = (
            "SELECT value FROM kv INDEXED BY kv_order WHERE key >= ? AND key < ?"
            f" AND json_extract(value, '$.{spec.field}') {spec.op} ?"
            " ORDER BY json_extract(value, '$.score') DESC, key LIMIT ?"
        )
        rows = self.execute(sql, (spec.collection + ":", spec.collection + ";", spec.value,
                                  spec.limit))
        return [loads(v) for (v,) in rows]


def indexed_sqlite(ctx: Context) -> Subject:
    return IndexedSQLite(str(ctx.scratch("sqlite-indexed") / "raw.db"))


class LayoutSQLite(RawSQLite):
    """raw sqlite3 on SQLiteDatastore's table, with the store's statements, written by hand.

    The ``(path, key)`` primary key (WITHOUT ROWID) that collection queries
    need, multi-row upserts of 333 rows for bulk writes, ``path = ? AND key
    IN (...)`` for bulk reads: against ``sqlite3`` it shows what the layout
    costs, against the store what the library adds (its checks of keys and
    values). Queries are left out: this subject is about the CRUD workloads.
    """

    label = RawSQLite.label + ", the store's (path, key) table and statements by hand"
    ROWS = 333  # 3 parameters a row, within SQLite's 999

    def __init__(self, path: str) -> None:  # a table of its own, not the parent's
        self.path = path
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        con.execute(f"PRAGMA journal_mode={JOURNAL_MODE}")
        con.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        con.execute("CREATE TABLE t (path TEXT NOT NULL, key TEXT NOT NULL, value NOT NULL,"
                    " doc TEXT, PRIMARY KEY (path, key)) WITHOUT ROWID")
        self.con = con
        self.execute = con.execute
        self.query = None
        self.query_pushdown = None
        self.multi: dict[int, str] = {}

    @staticmethod
    def _path(key: str) -> str:
        cut = key.rfind("/")
        colon = key.find(":", cut)
        return key[:colon] if colon >= 0 else (key[:cut] or "/")

    def _upsert(self, count: int) -> str:
        sql = self.multi.get(count)
        if sql is None:
            sql = self.multi[count] = (
                "INSERT INTO t (path, key, value, doc) VALUES "
                + ", ".join(["(?, ?, ?, NULL)"] * count)
                + " ON CONFLICT (path, key) DO UPDATE SET value = excluded.value, doc = excluded.doc")
        return sql

    def put(self, key: str, value: Any) -> None:
        self.execute(self._upsert(1), (self._path(key), key, dumps(value).decode()))

    def get(self, key: str) -> Any:
        row = self.execute("SELECT CAST(value AS BLOB) FROM t WHERE path = ? AND key = ?",
                           (self._path(key), key)).fetchone()
        return None if row is None else loads(row[0])

    def contains(self, key: str) -> bool:
        return self.execute("SELECT 1 FROM t WHERE path = ? AND key = ?",
                            (self._path(key), key)).fetchone() is not None

    def delete(self, key: str) -> None:
        self.execute("DELETE FROM t WHERE path = ? AND key = ?", (self._path(key), key))

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        params: list[Any] = []
        path = self._path
        for key, value in pairs:
            params += (path(key), key, dumps(value).decode())
        with self.con:
            self.execute("BEGIN IMMEDIATE")
            for start in range(0, len(pairs), self.ROWS):
                chunk = params[3 * start : 3 * (start + self.ROWS)]
                self.execute(self._upsert(len(chunk) // 3), chunk)

    def get_many(self, keys: list[str]) -> list[Any]:
        # The benchmark's keys share one collection: one IN list per 500 keys.
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.execute(
                f"SELECT key, CAST(value AS BLOB) FROM t WHERE path = ? AND key IN ({marks})",
                [self._path(chunk[0]), *chunk]).fetchall())
        return [None if (d := found.get(k)) is None else loads(d) for k in keys]

    def delete_many(self, keys: list[str]) -> None:
        with self.con:  # as get_many: one collection, 500 keys a statement
            self.execute("BEGIN IMMEDIATE")
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                self.execute(f"DELETE FROM t WHERE path = ? AND key IN ({marks})",
                             [self._path(chunk[0]), *chunk])


def layout_sqlite(ctx: Context) -> Subject:
    return LayoutSQLite(str(ctx.scratch("sqlite-layout") / "raw.db"))


class LayoutIndexedSQLite(LayoutSQLite):
    """sqlite3+layout plus the store's own index on ``score``: SQLiteDatastore(indexes=score)'s work.

    The index is the store's exactly (its DDL, run by hand): the path, the
    field's type rank, its value per type and the key, so that a mixed-type
    order walks it as the naive engine orders. Its entries are wider than
    the one-expression index of ``sqlite3+index``; this peer shows what
    maintaining it costs the engine, and how that grows with the table.
    """

    label = LayoutSQLite.label + ", plus the store's index on score (its DDL by hand)"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        for statement in store_index_statements("SQLiteDialect", "t"):
            self.execute(statement)


def layout_indexed_sqlite(ctx: Context) -> Subject:
    return LayoutIndexedSQLite(str(ctx.scratch("sqlite-layout-ix") / "raw.db"))


class DiskCache(Subject):
    """``diskcache.Cache`` with its defaults; bulk writes in one ``transact()``."""

    label = "diskcache.Cache defaults (WAL, synchronous=NORMAL, pickled values)"

    def __init__(self, path: str) -> None:
        diskcache = need("diskcache")
        self.path = path
        self.cache = diskcache.Cache(path)
        self.put = self.cache.set  # type: ignore[method-assign]
        self.get = self.cache.get  # type: ignore[method-assign]
        self.contains = self.cache.__contains__  # type: ignore[method-assign]
        self.delete = self.cache.delete  # type: ignore[method-assign]
        self.query = self._query

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        cache = self.cache
        with cache.transact():
            for key, value in pairs:
                cache.set(key, value)

    def delete_many(self, keys: list[str]) -> None:
        cache = self.cache
        with cache.transact():
            for key in keys:
                cache.delete(key)

    def _query(self, spec: QuerySpec) -> list[Any]:
        prefix = spec.collection + ":"
        cache = self.cache
        return spec.apply((k, cache.get(k)) for k in cache.iterkeys()
                          if isinstance(k, str) and k.startswith(prefix))

    def close(self) -> None:
        self.cache.close()
        shutil.rmtree(self.path, ignore_errors=True)


def diskcache_store(ctx: Context) -> Subject:
    return DiskCache(str(ctx.scratch("diskcache")))


class SqliteDictPeer(Subject):
    """``SqliteDict(path, autocommit=True)``: the dict-like SQLite wrapper, its defaults."""

    label = "SqliteDict(autocommit=True), defaults (pickled values)"

    def __init__(self, path: str) -> None:
        sqlitedict = need("sqlitedict")
        self.path = path
        self.d = sqlitedict.SqliteDict(path, autocommit=True)
        self.put = self.d.__setitem__  # type: ignore[method-assign]
        self.get = self.d.get  # type: ignore[method-assign]
        self.contains = self.d.__contains__  # type: ignore[method-assign]
        self.put_many = self.d.update  # type: ignore[method-assign]
        self.query = self._query

    def delete(self, key: str) -> None:
        try:  # noqa: SIM105 - the plain form is the faster one, and this is a baseline
            del self.d[key]
        except KeyError:
            pass

    def _query(self, spec: QuerySpec) -> list[Any]:
        prefix = spec.collection + ":"
        return spec.apply((k, v) for k, v in self.d.items() if k.startswith(prefix))

    def close(self) -> None:
        self.d.close()
        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)


def sqlitedict_store(ctx: Context) -> Subject:
    return SqliteDictPeer(str(ctx.scratch("sqlitedict") / "d.sqlite"))
