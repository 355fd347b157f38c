"""SQLDatastore: objects as rows of one table on PostgreSQL, MySQL/MariaDB or SQLite.

One row per object (layout in :mod:`datastore.sqlquery`): the key, its
collection path in an index together with the key's tree order, and the
value as JSON text, so that a query's scope, filters, orders, offset and
limit run in the server (translated by :func:`datastore.sqlquery.plan_query`)
and only the page comes back. :meth:`SQLDatastore.create_index` adds field
indexes that let an ordered, limited query stop after its page.

This module holds what the SQL stores share beyond the SQL text: the
drivers (psycopg 3, PyMySQL, the standard ``sqlite3``), a small connection
pool that reconnects after a dropped connection, transactions, and the
store class itself. :class:`datastore.sqlite.SQLiteDatastore`, the embedded
default store, is this class on a SQLite file with a choice of serializer.

psycopg and PyMySQL are imported when a store is opened on their engine,
never when this module is imported.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import operator
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .core import engine as naive
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, string_of, to_key
from .core.query import Cursor, Query
from .corrupt import decode_values
from .drivers import require
from .errors import BackendError, ClosedError, ConnectionFailed
from .indexing import shared_path
from .serialize import encode_values
from .serialize import json as _json
from .sqlquery import (
    Dialect,
    Fields,
    MySQLDialect,
    PostgreSQLDialect,
    SQLiteDialect,
    check_table_name,
    index_field,
    plan_query,
    query_copies,
)

__all__ = ["SQLDatastore", "from_url"]

log = logging.getLogger("datastore.sql")

T = TypeVar("T")
Pair = tuple[Key, Any]

#: Options of ours that may ride in a URL's query string.
_URL_OPTIONS = ("table", "pool_size", "connect_timeout", "indexes")
#: SQLite's ``synchronous`` settings that keep a committed transaction after a process crash.
SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")
#: Rows a store with field indexes bulk-writes on PostgreSQL before it runs ANALYZE itself
#: (see ``SQLDatastore._keep_statistics``).
ANALYZE_ROWS = 10_000

#: Whether PostgreSQL's planner has statistics on a table (one placeholder: its name).
_HAS_STATISTICS = ("SELECT 1 FROM pg_stats WHERE schemaname = current_schema()"
                   " AND tablename = %s LIMIT 1")



# -- engines: a driver, its dialect and how to (re)connect ---------------------------------


@dataclass(frozen=True)
class _Engine:
    """One engine as the store sees it: SQL dialect, driver errors, a connection factory."""

    dialect: Dialect
    #: The driver's base exception class(es): what the store wraps in BackendError.
    errors: tuple[type[BaseException], ...]
    #: Opens a new connection; None when the store was given one and cannot make more.
    connect: Callable[[], Any] | None
    #: True when a failed connection is unusable and must be replaced.
    broken: Callable[[Any], bool]
    #: Where the store points, for messages (never a password).
    where: str
    #: The most connections the pool keeps.
    pool_size: int = 4
    #: Whether a forked child may open connections of its own (False: the
    #: data lives in the parent's connection, as for ``:memory:`` or a given one).
    reopens_after_fork: bool = True
    #: Whether a cursor holds nothing on the server between statements (it
    #: reads each whole reply), so that one cursor kept per connection may run
    #: every single-key statement (psycopg, PyMySQL; not sqlite3, whose cursor
    #: keeps a read snapshot open until its statement is stepped to the end).
    keeps_cursor: bool = False
    #: psycopg's RawCursor class (``$n`` placeholders, no client-side parsing of
    #: the statement): what multi-row upserts run through on PostgreSQL (None:
    #: not PostgreSQL, or a psycopg before 3.2, which has none).
    raw_cursor: Callable[[Any], Any] | None = None


def _never_broken(conn: Any) -> bool:
    return False


def _connection_fetch_one(conn: Any, sql: str, params: Any) -> Any:
    """The row of a one-row SELECT through ``connection.execute`` (sqlite3), or None.

    ``fetchone`` and ``close`` cost sqlite3 less than ``fetchall``, which
    steps the statement once more to find that no row follows.
    """
    cur = conn.execute(sql, params)
    try:
        return cur.fetchone()
    finally:
        cur.close()


def _quiet_close(closable: Any) -> None:
    """Close a connection or cursor, ignoring errors (it may be broken already)."""
    with contextlib.suppress(Exception):
        closable.close()


def _connector(label: str, where: str, errors: tuple[type[BaseException], ...],
               open_: Callable[[], Any]) -> Callable[[], Any]:
    """``open_`` with driver failures turned into :class:`ConnectionFailed`."""

    def connect() -> Any:
        try:
            return open_()
        except errors as exc:
            raise ConnectionFailed(f"cannot connect to {label} at {where}: {exc}") from exc

    return connect


def open_sqlite(path: str, *, timeout: float, synchronous: str) -> Any:
    """A SQLite connection for the store: autocommit, WAL for files, busy timeout.

    ``isolation_level=None`` leaves transactions to the store (``BEGIN
    IMMEDIATE`` for every multi-statement write, so a writer waits for the
    lock instead of failing on an upgrade). WAL lets readers and one writer
    work at once across threads and processes; switching a new file to WAL
    needs a moment of exclusive access, so it is retried within ``timeout``.
    """
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        if path != ":memory:":
            deadline = time.monotonic() + timeout
            while True:
                try:
                    conn.execute("PRAGMA journal_mode=WAL").fetchall()
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn


def sqlite_engine(path: str, *, timeout: float = 30.0, synchronous: str = "NORMAL",
                  pool_size: int = 8) -> _Engine:
    """The engine of a SQLite database file (or ``:memory:``, one shared connection)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError(f"timeout must be a number of seconds >= 0, not {timeout!r}")
    level = str(synchronous).upper()
    if level not in SYNCHRONOUS:
        raise ValueError(
            f"synchronous must be one of {', '.join(SYNCHRONOUS)} (OFF would lose committed"
            f" writes in a crash), not {synchronous!r}"
        )
    memory = path == ":memory:"
    errors = (sqlite3.Error,)
    return _Engine(
        dialect=SQLiteDialect(),
        errors=errors,
        connect=_connector("SQLite", repr(path), errors,
                           lambda: open_sqlite(path, timeout=float(timeout), synchronous=level)),
        broken=_never_broken,
        where=path,
        # One in-memory database lives in one connection: every thread shares it.
        pool_size=1 if memory else _check_pool_size(pool_size),
        reopens_after_fork=not memory,
    )


def _check_pool_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"pool_size must be an int >= 1, not {size!r}")
    return size


def _split_url_options(url: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The store's own options in ``url``'s query string, and the other parameters."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _URL_OPTIONS}
    rest = [(k, v) for k, v in query if k not in _URL_OPTIONS]
    return ours, rest


def _psycopg_broken(conn: Any) -> bool:
    return bool(conn.closed or getattr(conn, "broken", False))


def _pymysql_broken(conn: Any) -> bool:
    return not conn.open


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{unquote(parts.username)}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _postgresql_engine(url: str, rest: list[tuple[str, str]], timeout: float,
                       pool_size: int) -> _Engine:
    psycopg = require("psycopg", backend="SQLDatastore (PostgreSQL)", extra="postgresql")
    conninfo = urlunsplit(urlsplit(url)._replace(query=urlencode(rest)))
    errors = (psycopg.Error,)

    def open_() -> Any:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=max(1, round(timeout)))

    where = _redacted(url)
    return _Engine(
        dialect=PostgreSQLDialect(),
        errors=errors,
        connect=_connector("PostgreSQL", where, errors, open_),
        broken=_psycopg_broken,
        where=where,
        pool_size=pool_size,
        keeps_cursor=True,
        raw_cursor=getattr(psycopg, "RawCursor", None),
    )


def _mysql_engine(url: str, rest: list[tuple[str, str]], timeout: float,
                  pool_size: int) -> _Engine:
    pymysql = require("pymysql", backend="SQLDatastore (MySQL)", extra="mysql")
    parts = urlsplit(url)
    kwargs: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 3306,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else "",
        "database": unquote(parts.path.lstrip("/")) or None,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": timeout,
    }
    for name, value in rest:
        if name != "unix_socket":
            raise ValueError(
                f"unknown option {name!r} in a MySQL URL; known options:"
                f" {', '.join((*_URL_OPTIONS, 'unix_socket'))}"
            )
        kwargs["unix_socket"] = value
    errors = (pymysql.err.MySQLError,)
    where = _redacted(url)
    return _Engine(
        dialect=MySQLDialect(),
        errors=errors,
        connect=_connector("MySQL", where, errors, lambda: pymysql.connect(**kwargs)),
        broken=_pymysql_broken,
        keeps_cursor=True,
        where=where,
        pool_size=pool_size,
    )


def _connection_engine(conn: Any) -> _Engine:
    """The engine of a connection the caller made (the store never makes another)."""
    module = type(conn).__module__.split(".")[0]
    if isinstance(conn, sqlite3.Connection):
        conn.isolation_level = None  # the store runs its own transactions
        return _Engine(SQLiteDialect(), (sqlite3.Error,), None, _never_broken,
                       "a sqlite3 connection", 1, reopens_after_fork=False)
    if module == "psycopg":
        psycopg = require("psycopg", backend="SQLDatastore (PostgreSQL)", extra="postgresql")
        try:
            conn.autocommit = True
        except psycopg.Error as exc:
            raise ValueError(
                "finish the connection's transaction (commit or rollback) before giving it"
                " to SQLDatastore"
            ) from exc
        return _Engine(PostgreSQLDialect(), (psycopg.Error,), None, _psycopg_broken,
                       "a psycopg connection", 1, reopens_after_fork=False,
                       keeps_cursor=True, raw_cursor=getattr(psycopg, "RawCursor", None))
    if module == "pymysql":
        pymysql = require("pymysql", backend="SQLDatastore (MySQL)", extra="mysql")
        if "utf8mb4" not in str(getattr(conn, "charset", "")):
            raise ValueError("connect PyMySQL with charset='utf8mb4' so that every key fits")
        conn.autocommit(True)
        return _Engine(MySQLDialect(), (pymysql.err.MySQLError,), None, _pymysql_broken,
                       "a PyMySQL connection", 1, reopens_after_fork=False, keeps_cursor=True)
    raise TypeError(
        "SQLDatastore takes a URL (postgresql://, mysql://, sqlite://) or a connection of"
        f" sqlite3, psycopg 3 or PyMySQL, not {type(conn).__name__}"
    )


# -- the pool ---------------------------------------------------------------------------


class _Pool:
    """Up to ``engine.pool_size`` connections, each used by one thread at a time.

    Taking and returning an idle connection is a list pop/append (atomic, no
    lock); only a caller that finds no idle connection takes the lock, to
    open one or to wait for one. A connection that broke is dropped and the
    next caller opens a new one. In a child process after ``fork`` the pool
    starts empty: the parent's connections are set aside, never used or
    closed, so the parent's stay intact.
    """

    def __init__(self, engine: _Engine, given: Any = None) -> None:
        self._engine = engine
        self._idle: list[Any] = [] if given is None else [given]
        #: The cursor kept for each connection's single-key statements (see :meth:`fetch_one`).
        self._cursors: dict[Any, Any] = {}
        self._count = len(self._idle)
        self._given = given
        self._cond = threading.Condition()
        self._closed = False
        self._forked = False
        self._abandoned: list[Any] = []
        _POOLS.add(self)

    @property
    def can_reconnect(self) -> bool:
        return self._engine.connect is not None

    def acquire(self) -> Any:
        try:
            return self._idle.pop()
        except IndexError:
            return self._acquire_slow()

    def _acquire_slow(self) -> Any:
        connect = self._engine.connect
        with self._cond:
            while True:
                if self._closed:
                    raise ClosedError("this store is closed; open a new one")
                if self._forked:
                    self._refuse_forked()
                if self._idle:
                    return self._idle.pop()
                if connect is None and self._count == 0:
                    raise ConnectionFailed(
                        f"the connection given to this store ({self._engine.where}) was lost;"
                        " open the store again with a new connection or a URL"
                    )
                if connect is not None and self._count < self._engine.pool_size:
                    self._count += 1
                    break
                # Returns are lock-free, so wake up now and then to look again.
                self._cond.wait(0.05)
        try:
            return connect()
        except BaseException:
            with self._cond:
                self._count -= 1
            raise

    def release(self, conn: Any) -> None:
        self._idle.append(conn)
        if self._closed:
            self.close()

    # The single-key statements (get, contains, put, delete) of engines whose
    # cursors hold nothing between statements run on one cursor kept per
    # connection: making a cursor per statement cost psycopg 4 of its 14 µs
    # of Python a get (measured), as much as the library's own work.

    def _cursor(self, conn: Any) -> Any:
        cursor = self._cursors.get(conn)
        if cursor is None:
            cursor = self._cursors[conn] = conn.cursor()
        return cursor

    def fetch_one(self, conn: Any, sql: str, params: Any) -> Any:
        """The row of a one-row SELECT on ``conn``'s kept cursor, or None."""
        cursor = self._cursor(conn)
        cursor.execute(sql, params)
        return cursor.fetchone()

    def execute(self, conn: Any, sql: str, params: Any) -> None:
        """Run one statement without a result on ``conn``'s kept cursor."""
        self._cursor(conn).execute(sql, params)

    def discard(self, conn: Any) -> None:
        """Drop a broken connection (a given one is left to its owner)."""
        with self._cond:
            self._count -= 1
        self._cursors.pop(conn, None)
        if conn is not self._given:
            _quiet_close(conn)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for conn in idle:
            cursor = self._cursors.pop(conn, None)
            if conn is self._given:
                if cursor is not None:
                    _quiet_close(cursor)  # the connection stays open: so would our cursor
            else:
                _quiet_close(conn)

    def _after_fork(self) -> None:
        self._abandoned += self._idle
        self._cursors = {}
        self._idle, self._count = [], 0
        self._cond = threading.Condition()
        if not self._engine.reopens_after_fork:
            self._forked = True

    def _refuse_forked(self) -> None:
        raise ConnectionFailed(
            f"this store ({self._engine.where}) was opened in the parent process and its data"
            " lives in the parent's connection; open the store again in this process"
        )


_POOLS: weakref.WeakSet[_Pool] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for pool in list(_POOLS):
        pool._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)


def _db_fetch(conn: Any, sql: str, params: Any) -> list[Any]:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()  # type: ignore[no-any-return]
    finally:
        cur.close()


def _db_execute(conn: Any, sql: str, params: Any) -> None:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
    finally:
        cur.close()


def _db_fetch_each(conn: Any, statements: list[tuple[str, Any]], unused: Any) -> list[Any]:
    cur = conn.cursor()
    try:
        rows: list[Any] = []
        for sql, params in statements:
            cur.execute(sql, params)
            rows += cur.fetchall()
        return rows
    finally:
        cur.close()


def _db_script(conn: Any, statements: list[str], unused: Any) -> None:
    cur = conn.cursor()
    try:
        for statement in statements:
            cur.execute(statement)
    finally:
        cur.close()


def _db_transaction(conn: Any, begin: str, work: Callable[[Any], None]) -> None:
    """Run ``work(cursor)`` between ``begin`` and COMMIT; roll back if anything raises."""
    cur = conn.cursor()
    try:
        cur.execute(begin)
        try:
            work(cur)
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cur.execute("ROLLBACK")
            raise
    finally:
        cur.close()


def _statement_sizes(total: int, full: int) -> Iterator[tuple[int, int]]:
    """``(start, rows)`` of the multi-row statements that write ``total`` rows, in order.

    Each holds ``full`` rows or a power of two of them, so a connection
    caches (and PostgreSQL prepares) a handful of statements whatever the
    batch sizes are.
    """
    start = 0
    while start < total:
        count = min(total - start, full)
        size = count if count == full else 1 << (count.bit_length() - 1)
        yield start, size
        start += size


# -- the store --------------------------------------------------------------------------


class SQLDatastore(Datastore):
    """Objects as rows of one table on PostgreSQL, MySQL/MariaDB or SQLite.

    ``SQLDatastore('postgresql://user:pw@host/db', table='objects')`` (also
    ``postgres://``, ``mysql://``, ``mariadb://``, ``sqlite:///file.db``), or
    a connection made with psycopg 3, PyMySQL or ``sqlite3`` (the store
    switches it to autocommit and runs its own transactions; it never opens
    another and leaves closing it to you).

    Values are JSON (``str``, numbers, bools, lists, dicts with ``str``
    keys); anything else is refused with TypeError before writing. The table
    is created if absent. Queries run in the server: see
    ``docs/stores/sql.rst`` for the layout, what is pushed down, and the
    guarantees. ``indexes=['age', ...]`` creates field indexes (see
    :meth:`create_index`) when the store opens.
    """

    def __init__(
        self,
        url_or_connection: str | Any,
        table: str | None = None,
        *,
        pool_size: int | None = None,
        connect_timeout: float | None = None,
        indexes: Iterable[str] = (),
    ) -> None:
        if isinstance(url_or_connection, str):
            engine, table, url_indexes = _engine_from_url(url_or_connection, table, pool_size,
                                                          connect_timeout)
            given = None
            if indexes == ():
                indexes = url_indexes
        else:
            if pool_size is not None or connect_timeout is not None:
                raise ValueError("pool_size and connect_timeout apply to URLs, not a connection")
            engine, given = _connection_engine(url_or_connection), url_or_connection
        self._start(engine, "datastore" if table is None else table, _json, Fields.JSON, given,
                    indexes)

    # -- set-up ---------------------------------------------------------------------------

    def _start(self, engine: _Engine, table: str, serializer: Any, fields: Fields,
               given: Any = None, indexes: Iterable[str] = ()) -> None:
        """Bind the store to ``engine`` and ``table``, creating the table (and indexes) if absent."""
        self._table = check_table_name(table)
        wanted = [index_field(f) for f in _field_names(indexes)]
        self._engine = engine
        self._dialect = d = engine.dialect
        self._serializer = serializer
        self._fields = fields
        self._json = fields is Fields.JSON
        #: What a row's value decodes with: the serializer itself when it reads every row.
        self._decode_value = serializer.loads if self._json else self._decode
        # A key of at most limit / 4 characters has at most limit bytes of UTF-8:
        # only a longer one is measured against the engine's limit.
        limit = d.max_key_bytes
        self._short_key = sys.maxsize if limit is None else limit // 4
        #: MySQL checks the strings of indexed fields in every value it writes.
        self._mysql = isinstance(d, MySQLDialect)
        self._key_statement = d.key_statement
        self._pool = _Pool(engine, given)
        #: How get/contains and put/delete run their one statement on a connection.
        self._fetch_one: Callable[[Any, str, Any], Any]
        self._execute_one: Callable[[Any, str, Any], None]
        if engine.keeps_cursor:
            self._fetch_one, self._execute_one = self._pool.fetch_one, self._pool.execute
        else:
            self._fetch_one, self._execute_one = _connection_fetch_one, _db_execute
        t = d.quote(table)
        where = d.key_condition()
        self._sql_get = f"SELECT {d.value_column()} FROM {t} WHERE {where}"
        self._sql_contains = f"SELECT 1 FROM {t} WHERE {where}"
        self._sql_delete = f"DELETE FROM {t} WHERE {where}"
        self._upserts = d.upserts(table)
        #: Multi-row upserts (SQLite, PostgreSQL), by row count (built on first use).
        self._multi_upserts: dict[int, str] = {}
        #: SQLite's multi-row upserts of rows that share one path, by row count.
        self._path_upserts: dict[int, str] = {}
        #: How ``_write`` upserts encoded items, ``upsert_rows(cursor, strings, stored)``:
        #: one engine's way of turning the columns into statements.
        self._upsert_rows: Callable[[Any, list[str], list[Any]], None]
        if isinstance(d, SQLiteDialect):
            self._upsert_rows = self._upsert_sqlite_rows
        elif isinstance(d, MySQLDialect):
            self._upsert_rows = self._upsert_mysql_rows
        elif engine.raw_cursor is not None:
            self._upsert_rows = self._upsert_postgresql_rows
        else:
            self._upsert_rows = self._upsert_each
        #: The fields this store knows to have an index (replaced whole, never mutated).
        self._indexed: frozenset[str] = frozenset()
        #: Rows bulk-written before and since this store's last ANALYZE (PostgreSQL).
        self._analyzed = 0
        self._unanalyzed = 0
        #: Whether the table is known to have planner statistics (PostgreSQL).
        self._has_statistics = False
        try:
            self._create_table()
            if fields is Fields.JSON and isinstance(d, SQLiteDialect):
                self._check_json_functions()
            if isinstance(d, MySQLDialect):
                d.json_table = self._succeeds(d.probe_statement())
            self._indexed = self._find_indexes()
            for field in wanted:
                self.create_index(field)
        except BaseException:
            self._pool.close()
            raise

    def _succeeds(self, statement: str) -> bool:
        """Whether the engine runs ``statement`` (a probe of what this server supports)."""
        try:
            self._run(_db_fetch, statement, ())
        except BackendError:
            return False
        return True

    def _check_json_functions(self) -> None:
        """Read fields in Python if this SQLite was built without its JSON functions."""
        if not self._succeeds("SELECT json_type('{}')"):
            log.warning("SQLite without JSON functions: queries read fields in Python")
            self._fields = Fields.OPAQUE

    def _create_table(self) -> None:
        """Create the table if absent, check that it is ours, then create its index."""
        d = self._dialect
        table, *indexes = d.create_statements(self._table)
        try:
            self._run(_db_script, [table], None)
        except BackendError:
            # Two stores creating one table at once may collide; the second attempt sees it.
            self._run(_db_script, [table], None)
        # Qualified names: SQLite would read an unknown "column" as a string literal.
        t = d.quote(self._table)
        columns = ", ".join(f"{t}.{d.quote(c)}" for c in d.columns())
        try:
            self._run(_db_fetch, f"SELECT {columns} FROM {t} WHERE 1 = 0", ())
        except BackendError as exc:
            raise ValueError(
                f"table {self._table!r} exists but is not a datastore table (columns"
                f" {', '.join(d.columns())} expected); choose another table= name"
            ) from exc
        self._refuse_old_layout()
        if indexes:
            try:
                self._run(_db_script, indexes, None)
            except BackendError:
                self._run(_db_script, indexes, None)

    def _refuse_old_layout(self) -> None:
        """Refuse a table of an earlier development version's layout, saying what to do.

        The first had a ``tree`` column; MySQL's second had the primary key
        ``(path, key)``, which answers rightly to ``key = ?`` but by a scan.
        """
        d = self._dialect
        t = d.quote(self._table)
        if self._succeeds(f"SELECT {t}.{d.quote('tree')} FROM {t} WHERE 1 = 0"):
            raise ValueError(
                f"table {self._table!r} has the layout of an earlier development version of"
                " datastore (a 'tree' column); copy its objects out with the version that"
                " wrote it (e.g. `datastore copy` into a directory store) and into a new"
                " table, or choose another table= name"
            )
        if isinstance(d, MySQLDialect):
            primary = [_as_str(name) for (name,) in
                       self._run(_db_fetch, d.primary_key_sql(), (self._table,))]
            if primary != ["key"]:
                raise ValueError(
                    f"table {self._table!r} has the primary key ({', '.join(primary)}) of an"
                    " earlier development version of datastore; give it this one's layout"
                    f" (its rows stay as they are) with: {d.upgrade_statement(self._table)}"
                )

    # -- field indexes ----------------------------------------------------------------------

    def create_index(self, field: str) -> None:
        """Index the field ``field`` of the stored JSON values, in every collection.

        Queries that order by the field (``order('age')`` or
        ``order('-age')``) then walk the index within their collection and
        stop after ``offset + limit`` matching objects, and filters on it seek
        to their range, so a page costs what the page holds rather than what
        the collection holds. The index holds exactly the expressions the
        queries use, so results are the same with or without it; each write
        then also updates the index (two B-tree entries per indexed field).

        ``field`` is 1-48 letters, digits or ``_`` (ValueError otherwise).
        Creating an index that exists does nothing. On MySQL/MariaDB the
        index lives in generated columns of at most 768 bytes per string: a
        string longer than that in an indexed field is refused with
        ValueError (and so is creating the index while the table holds one).
        """
        field = index_field(field)
        d = self._dialect
        if isinstance(d, MySQLDialect):
            if field in self._find_indexes():
                self._indexed = self._indexed | {field}
                return
            self._refuse_long_strings(field)
        statements = d.index_statements(self._table, field)
        try:
            self._run(_db_script, statements, None)
        except BackendError:
            if field not in self._find_indexes():  # else another store made it meanwhile
                raise
        self._indexed = self._indexed | {field}

    def drop_index(self, field: str) -> None:
        """Remove the index of ``field`` (nothing happens if it has none).

        On MySQL/MariaDB, other stores open on the table must be reopened
        afterwards: they read the index's generated columns.
        """
        field = index_field(field)
        if isinstance(self._dialect, MySQLDialect) and field not in self._find_indexes():
            self._indexed = self._indexed - {field}
            return
        self._run(_db_script, self._dialect.drop_index_statements(self._table, field), None)
        self._indexed = self._indexed - {field}

    @property
    def indexes(self) -> tuple[str, ...]:
        """The fields that have an index (see :meth:`create_index`), sorted."""
        return tuple(sorted(self._indexed))

    def _find_indexes(self) -> frozenset[str]:
        """The indexed fields, read from the engine's catalog."""
        d = self._dialect
        rows = self._run(_db_fetch, d.list_indexes_sql(), (self._table,))
        found = (d.indexed_field(self._table, _as_str(name)) for (name,) in rows)
        return frozenset(f for f in found if f is not None)

    def _refuse_long_strings(self, field: str) -> None:
        """Refuse to index a MySQL field while some stored value has a too long string in it."""
        d = self._dialect
        assert isinstance(d, MySQLDialect)
        t = d.quote(self._table)
        path = d.literal_path(field)
        sql = (f"SELECT `key` FROM {t} WHERE {d.type_sql(path)} = 'STRING'"
               f" AND LENGTH({d.extract_sql(3, path)}) > {d.index_str_bytes} LIMIT 1")
        rows = self._run(_db_fetch, sql, ())
        if rows:
            raise ValueError(
                f"cannot index field {field!r}: the object {d.key_string(rows[0][0])!r} holds a"
                f" string longer than {d.index_str_bytes} bytes there, more than a MySQL index"
                " entry holds"
            )

    def _check_indexed_strings(self, value: Any) -> None:
        """Refuse (MySQL) a value whose indexed field holds a string its index cannot hold."""
        if not self._indexed or not isinstance(value, dict):
            return
        limit = getattr(self._dialect, "index_str_bytes", None)
        if limit is None:
            return
        for field in self._indexed:
            text = value.get(field)
            if isinstance(text, str) and len(text) * 4 > limit and len(text.encode("utf-8")) > limit:
                raise ValueError(
                    f"field {field!r} is indexed, and a MySQL index holds strings of at most"
                    f" {limit} bytes (UTF-8); this one has {len(text.encode('utf-8'))}: shorten"
                    " it, or drop the index"
                )

    # -- running statements -----------------------------------------------------------------

    def _run(self, work: Callable[[Any, Any, Any], T], first: Any, second: Any) -> T:
        """Run ``work(connection, first, second)``; on a dropped connection, once more on a new one.

        Every operation of this store is idempotent (upserts and deletes of
        given keys, reads), so running it again after a connection broke
        mid-way leaves the same state.
        """
        pool = self._pool
        for attempt in (0, 1):
            # Pool.acquire and Pool.release, inlined for the common case: every call pays this.
            try:
                conn = pool._idle.pop()
            except IndexError:
                conn = pool.acquire()
            try:
                result = work(conn, first, second)
            except self._engine.errors as exc:
                broken = self._engine.broken(conn)
                if not broken:
                    pool.release(conn)
                    raise BackendError(
                        f"{self._dialect.label} ({self._engine.where}) failed: {exc}"
                    ) from exc
                pool.discard(conn)
                if attempt == 0 and pool.can_reconnect:
                    log.info("%s connection dropped (%s); reconnecting", self._dialect.label, exc)
                    continue
                raise ConnectionFailed(
                    f"{self._dialect.label} ({self._engine.where}) connection lost: {exc}"
                ) from exc
            except BaseException:
                pool.release(conn)
                raise
            pool._idle.append(conn)
            if pool._closed:
                pool.close()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(self, work: Callable[[Any], None]) -> None:
        """Run ``work(cursor)`` in one transaction: all of it is committed, or none."""
        self._run(_db_transaction, self._dialect.begin, work)

    # -- values -----------------------------------------------------------------------------

    def _encoded(self, items: Mapping[Any, Any] | Iterable[Any]) -> tuple[list[str], list[Any]]:
        """The key strings and stored values of ``items`` (``(key, value)`` pairs), in order.

        Every key and value is checked and encoded before anything is
        written: one bad item raises and the caller writes nothing. This
        runs once per object of every write, so the common case (all keys
        :class:`Key`, no ``None`` value, no key near a per-engine limit) is
        settled by whole-list steps in C (a transpose, a type set, a
        length range); anything else goes item by item through
        :meth:`_check_item` and the core helpers, which also word the
        errors. Each engine's upsert then builds its statements' parameters
        from these two columns; JSON values come as ``str`` where the
        dialect binds them as text (:attr:`Dialect.json_as_text`).
        """
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        if not pairs:
            return [], []
        try:
            keys, values = zip(*pairs, strict=True)
        except (TypeError, ValueError):
            items_of(pairs)  # a malformed pair: raises the error that says what put_many takes
            raise
        if ({*map(type, keys)} == {Key}
                and not (self._indexed and self._mysql)  # checks the strings of every value
                and not any(map(operator.is_, values, itertools.repeat(None)))):
            strings = list(map(string_of, keys))
            if "/" in strings or (self._short_key < sys.maxsize
                                  and max(map(len, strings)) > self._short_key):
                strings = self._checked_strings(keys, values)
        else:
            strings = self._checked_strings(keys, values)
        if self._json and self._dialect.json_as_text:
            return strings, self._serializer.dumps_texts(values)
        return strings, encode_values(self._serializer, list(values))

    def _checked_strings(self, keys: Sequence[Any], values: Sequence[Any]) -> list[str]:
        """The key strings of a bulk write, each pair checked by :meth:`_check_item`."""
        strings = []
        for key, value in zip(keys, values, strict=True):
            string = write_key(key)._string
            self._check_item(key, string, value)
            strings.append(string)
        return strings

    def _check_item(self, key: Any, string: str, value: Any) -> None:
        """Refuse the root key, None, and what the engine cannot hold (key size, indexed strings)."""
        write_key(key)
        check_value(value)
        limit = self._dialect.max_key_bytes
        if limit is not None and len(string) * 4 > limit and len(string.encode("utf-8")) > limit:
            raise ValueError(
                f"key {string[:60]!r}... is longer than the {limit} bytes (UTF-8) that"
                f" a {self._dialect.label} datastore table holds; use a shorter key"
            )
        if self._indexed and isinstance(self._dialect, MySQLDialect):
            self._check_indexed_strings(value)

    def _decode(self, raw: Any) -> Any:
        if self._json or isinstance(raw, bytes):
            return self._serializer.loads(raw)
        return self._serializer.loads(raw.encode("utf-8") if isinstance(raw, str) else bytes(raw))

    # -- the primitives ---------------------------------------------------------------------

    def get(self, key: KeyLike) -> Any:
        string = key._string if key.__class__ is Key else to_key(key)._string
        row = self._run(self._fetch_one, *self._key_statement(self._sql_get, string))
        return None if row is None else self._decode_value(row[0])

    def contains(self, key: KeyLike) -> bool:
        string = key._string if key.__class__ is Key else to_key(key)._string
        return self._run(self._fetch_one, *self._key_statement(self._sql_contains, string)) is not None

    def put(self, key: KeyLike, value: Any) -> None:
        # _encoded for one item, without its lists: every put pays this.
        string = key._string if key.__class__ is Key else write_key(key)._string
        if (value is None or len(string) == 1 or len(string) > self._short_key
                or (self._indexed and self._mysql)):
            self._check_item(key, string, value)
        row = self._dialect.row(string, self._serializer.dumps(value), self._json)
        self._run(self._execute_one, self._upserts[len(row)], row)

    def delete(self, key: KeyLike) -> None:
        string = key._string if key.__class__ is Key else to_key(key)._string
        self._run(self._execute_one, *self._key_statement(self._sql_delete, string))

    # -- bulk: one transaction per call -----------------------------------------------------

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        strings = [k._string if k.__class__ is Key else to_key(k)._string for k in keys]
        if not strings:
            return []
        d = self._dialect
        # Rows are matched to keys in the key column's own form (bytes on MySQL),
        # and decoded per position: a key asked for twice gives two independent values.
        texts = d.texts(strings)
        statements = d.select_values(self._table, strings, texts)
        found = dict(self._run(_db_fetch_each, statements, None))
        raws = list(map(found.get, texts))
        if self._json:
            return decode_values(self._serializer, raws, lambda i: f"the row of key {strings[i]!r}")
        decode = self._decode_value
        return [None if raw is None else decode(raw) for raw in raws]

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self._write(*self._encoded(items), [])

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        self._write([], [], [to_key(k)._string for k in keys])

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        self._write(*self._encoded(puts), [k._string for k in deletes])

    def _write(self, strings: list[str], stored: list[Any], deletes: list[str]) -> None:
        """Upsert keys ``strings`` with values ``stored`` (encoded), delete ``deletes``: one transaction."""
        if not strings and not deletes:
            return
        d = self._dialect
        upsert_rows = self._upsert_rows
        delete = f"DELETE FROM {d.quote(self._table)} WHERE "

        def work(cur: Any) -> None:
            if strings:
                upsert_rows(cur, strings, stored)
            for condition, params in d.keys_in(deletes):
                cur.execute(delete + condition, params)

        self._transaction(work)
        if strings and isinstance(d, PostgreSQLDialect):
            self._keep_statistics(len(strings))

    def _keep_statistics(self, written: int) -> None:
        """ANALYZE the table where PostgreSQL's planner would otherwise plan blind.

        PostgreSQL plans from statistics that only ANALYZE refreshes, and
        autovacuum gets to a table up to a minute after a bulk load. A
        table that was never analyzed leaves the planner guessing: it reads
        a whole collection to find 1,000 keys instead of looking each up in
        the primary key (measured at 100,000 objects: 22 ms vs 2.9 ms a
        get_many). So after its first bulk write a store looks once whether
        the table has statistics, and runs ANALYZE if not.

        A store with field indexes keeps them fresher: a planner that
        believes the table small sorts a whole collection instead of
        walking a field index (measured: 274 ms vs 2.7 ms for a page of 10
        of 100,000). It runs ANALYZE after each bulk write that brings the
        rows it has written since the last one to ANALYZE_ROWS and to as
        many as it had written before: geometric steps, a handful of
        ANALYZEs (each samples at most 30,000 rows) however large the load.
        Counts are per store object and approximate (upserts of existing
        keys count too).
        """
        analyze = f"ANALYZE {self._dialect.quote(self._table)}"
        if not self._has_statistics:
            self._has_statistics = True
            if not self._run(_db_fetch, _HAS_STATISTICS, (self._table,)):
                self._run(_db_execute, analyze, None)
                return
        if not self._indexed:
            return
        self._unanalyzed += written
        if self._unanalyzed >= max(ANALYZE_ROWS, self._analyzed):
            self._analyzed += self._unanalyzed
            self._unanalyzed = 0
            self._run(_db_execute, analyze, None)

    def _upsert_each(self, cur: Any, strings: list[str], stored: list[Any]) -> None:
        """Upsert with ``executemany`` (psycopg pipelines it): one statement per row."""
        rows = self._dialect.rows(strings, stored, self._json)
        cur.executemany(self._upserts[len(rows[0])], rows)

    def _upsert_sqlite_rows(self, cur: Any, strings: list[str], stored: list[Any]) -> None:
        """Upsert in order, many rows per SQLite statement.

        One statement of hundreds of rows costs SQLite and the sqlite3
        module far less per row than ``executemany``, which runs a statement
        per row. A batch into one collection (the usual one) binds its path
        once (:meth:`SQLiteDialect.upsert_path_rows`). Otherwise a row with
        a query copy (4 values, rare) goes on its own, in its place in the
        order, so a key given twice ends with its last value.
        """
        path = shared_path(strings)
        if path is not None and not (self._json and query_copies(stored)):
            self._upsert_path_rows(cur, path, strings, stored)
            return
        rows = self._dialect.rows(strings, stored, self._json)
        if max(map(len, rows)) == 3:
            self._upsert_multi(cur, rows)
            return
        run: list[tuple[Any, ...]] = []
        for row in rows:
            if len(row) == 3:
                run.append(row)
                continue
            self._upsert_multi(cur, run)
            run = []
            cur.execute(self._upserts[len(row)], row)
        self._upsert_multi(cur, run)

    def _upsert_path_rows(self, cur: Any, path: str, keys: list[str], values: list[Any]) -> None:
        """Upsert ``keys`` (all of collection ``path``) with ``values``, by the path-once statements."""
        d = self._dialect
        assert isinstance(d, SQLiteDialect)
        cache = self._path_upserts
        for start, size in _statement_sizes(len(keys), d.rows_per_statement):
            sql = cache.get(size)
            if sql is None:
                sql = cache[size] = d.upsert_path_rows(self._table, size)
            params: list[Any] = [path] * (2 * size + 1)
            params[1::2] = keys[start : start + size]
            params[2::2] = values[start : start + size]
            cur.execute(sql, params)

    def _upsert_postgresql_rows(self, cur: Any, strings: list[str], stored: list[Any]) -> None:
        """Upsert with multi-row statements through psycopg's RawCursor.

        ``executemany`` costs psycopg ~20 µs of Python per row (a Bind and
        an Execute each, however pipelined); one statement of many rows with
        ``$n`` placeholders costs a few µs, and the server runs one INSERT
        instead of one per row. Each row's value text goes once and serves
        as its ``doc`` too. ``ON CONFLICT DO UPDATE`` may touch a row only
        once per statement, so a key given twice keeps only its last row (all
        in one transaction: the same end state as upserting them in order);
        the rare rows with a query copy of their own go one by one.
        """
        rows = self._dialect.rows(strings, stored, self._json)
        latest = {row[1]: row for row in rows}.values() if len(rows) > 1 else rows
        plain = [row[:3] for row in latest if row[3] is row[2]]
        if plain:
            raw_cursor = self._engine.raw_cursor
            assert raw_cursor is not None
            raw = raw_cursor(cur.connection)
            try:
                self._upsert_multi(raw, plain)
            finally:
                raw.close()
        if len(plain) < len(latest):
            cur.executemany(self._upserts[4], [row for row in latest if row[3] is not row[2]])

    def _upsert_multi(self, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        """Upsert ``rows`` in order with the dialect's multi-row statements (SQLite, PostgreSQL)."""
        d = self._dialect
        assert isinstance(d, (SQLiteDialect, PostgreSQLDialect))
        cache = self._multi_upserts
        flatten = itertools.chain.from_iterable
        for start, size in _statement_sizes(len(rows), d.rows_per_statement):
            sql = cache.get(size)
            if sql is None:
                sql = cache[size] = d.upsert_rows(self._table, size)
            cur.execute(sql, list(flatten(rows[start : start + size])))

    def _upsert_mysql_rows(self, cur: Any, strings: list[str], stored: list[Any]) -> None:
        """Upsert in order, one multi-row INSERT per chunk of up to ~1 MB.

        PyMySQL's ``executemany`` also writes a multi-row INSERT, but formats
        and escapes each row apart; the store writes each chunk's statement
        with its values in it (:meth:`MySQLDialect.upsert_statement`). A
        chunk stays within PyMySQL's own statement limit (the estimate below
        bounds its size: bytes go as hex, twice their length). MySQL applies
        the rows in order, so a key given twice ends with its last value.
        """
        d = self._dialect
        assert isinstance(d, MySQLDialect)
        rows = d.rows(strings, stored, self._json)
        # Running total of each row's written size (path, key, value).
        ends = list(itertools.accumulate(2 * (len(row[0]) + len(row[1]) + len(row[2])) + 64
                                         for row in rows))
        start, total = 0, len(rows)
        while start < total:
            before = ends[start - 1] if start else 0
            end = bisect.bisect_right(ends, before + d.statement_bytes, start + 1,
                                      min(total, start + d.rows_per_statement))
            cur.execute(d.upsert_statement(self._table, rows[start:end]))
            start = end

    # -- queries ----------------------------------------------------------------------------

    def query(self, query: Query) -> Cursor:
        plan = plan_query(query, self._dialect, self._table, self._fields, self._indexed)
        if plan.sql is None:
            return naive.run(query, ())
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s query: %s", self._dialect.label, plan.sql)
        rows = self._run(_db_fetch, plan.sql, plan.params)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s query fetched %d rows", self._dialect.label, len(rows))
        return naive.run(
            query,
            # Scoped, filtered and ordered: the engine only counts the offset rows.
            self._pairs(rows, plan.with_values, query.offset if plan.filtered and plan.ordered
                        else 0),
            scoped=plan.scoped,
            filtered=plan.filtered,
            ordered=plan.ordered,
            limited=plan.limited,
        )

    def explain(self, query: Query) -> str:
        """The engine's plan for ``query``'s SELECT, as text (to check that an index is used)."""
        plan = plan_query(query, self._dialect, self._table, self._fields, self._indexed)
        if plan.sql is None:
            return "no statement: the answer is empty"
        prefix = "EXPLAIN QUERY PLAN " if isinstance(self._dialect, SQLiteDialect) else "EXPLAIN "
        rows = self._run(_db_fetch, prefix + plan.sql, plan.params)
        return "\n".join(" ".join(str(part) for part in row) for row in rows)

    def _pairs(self, rows: list[Any], with_values: bool, skip: int) -> Iterator[Pair]:
        """Rows as ``(Key, value)`` pairs, each value decoded only when it is reached.

        The first ``skip`` rows are ones the engine will pass over for the
        offset without looking at them: their values are not decoded.
        """
        key_string = self._dialect.key_string
        from_normal = Key._from_normal
        if not with_values:
            for row in rows:
                yield from_normal(key_string(row[0])), None
            return
        decode = self._decode_value
        for index, (raw_key, raw_value) in enumerate(rows):
            yield from_normal(key_string(raw_key)), (None if index < skip else decode(raw_value))

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store's connections (a connection you passed in stays open). Idempotent."""
        self._pool.close()

    def drop(self) -> None:
        """Delete the store's table and everything in it, then close the store."""
        self._run(_db_execute, f"DROP TABLE IF EXISTS {self._dialect.quote(self._table)}", ())
        self.close()

    @property
    def table(self) -> str:
        """The name of the table that holds this store's objects."""
        return self._table

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._engine.where} table={self._table!r}>"


def _field_names(fields: Iterable[str]) -> list[str]:
    """``indexes=`` as a list (a lone str would otherwise index each of its letters)."""
    if isinstance(fields, str):
        raise TypeError(f"indexes takes a list of field names, e.g. [{fields!r}], not a str")
    return list(fields)


def _as_str(name: Any) -> str:
    """A catalog name as str (MySQL's catalog may answer in bytes)."""
    return name.decode("utf-8") if isinstance(name, (bytes, bytearray)) else str(name)


def _engine_from_url(url: str, table: str | None, pool_size: int | None,
                     connect_timeout: float | None) -> tuple[_Engine, str | None, list[str]]:
    """The engine a URL names, the table (keyword first, then ``?table=``) and ``?indexes=``."""
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        from .sqlite import sqlite_url

        path, options = sqlite_url(url)
        unknown = set(options) - {"table", "pool_size", "timeout", "synchronous", "indexes"}
        if unknown:
            raise ValueError(
                f"SQLDatastore reads table, pool_size, timeout, synchronous and indexes from a"
                f" sqlite:// URL, not {', '.join(sorted(unknown))}; use SQLiteDatastore for"
                " serializer="
            )
        size = pool_size if pool_size is not None else options.get("pool_size", 8)
        engine = sqlite_engine(path, timeout=options.get("timeout", 30.0),
                               synchronous=options.get("synchronous", "NORMAL"),
                               pool_size=size)
        return (engine, table if table is not None else options.get("table"),
                options.get("indexes", []))
    ours, rest = _split_url_options(url)
    size = _check_pool_size(
        pool_size if pool_size is not None else _int_option(ours.get("pool_size", "4"))
    )
    timeout = connect_timeout if connect_timeout is not None else _float_option(
        ours.get("connect_timeout", "10"))
    table = table if table is not None else ours.get("table")
    indexes = [f for f in ours.get("indexes", "").split(",") if f]
    if scheme in ("postgresql", "postgres"):
        return _postgresql_engine(url, rest, timeout, size), table, indexes
    if scheme in ("mysql", "mariadb"):
        return _mysql_engine(url, rest, timeout, size), table, indexes
    raise ValueError(
        "SQLDatastore opens postgresql://, postgres://, mysql://, mariadb:// and sqlite://"
        f" URLs, not {scheme + '://'!r}"
    )


def _int_option(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"URL option pool_size={text!r} is not an integer") from None


def _float_option(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"URL option connect_timeout={text!r} is not a number") from None


def from_url(url: str, **options: Any) -> SQLDatastore:
    """Opener for ``postgresql://``, ``postgres://``, ``mysql://`` and ``mariadb://`` URLs.

    ``?table=``, ``?pool_size=`` and ``?connect_timeout=`` are the store's;
    other parameters go to libpq on PostgreSQL (``sslmode`` ...); MySQL takes
    ``?unix_socket=``. Keyword options win over the URL's.
    """
    return SQLDatastore(url, **options)
