"""SQLDatastore on PostgreSQL and MySQL/MariaDB against psycopg and PyMySQL used directly.

Each raw baseline keeps one key/value table (PostgreSQL: ``value JSONB``;
MySQL: JSON text in a LONGTEXT column, as the store does), in autocommit for
single calls and one transaction per bulk call, and runs the query twice:
fetch everything and filter in Python, and the hand-written SQL with a JSON
filter, order and LIMIT. The store's table also holds the key's path (in
the primary key; on MySQL in a second index), and (PostgreSQL) a JSONB
query copy beside the exact text: that is more work per write than the raw
table. The ``+layout`` subjects below do the store's work by hand.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from ..data import QuerySpec
from ..subject import Context, StoreSubject, Subject, Unavailable, dumps, loads, need, server_url

STORE_TABLE = "bench_store"
RAW_TABLE = "bench_raw"


def _sql_store(env: str, driver: str, label: str, indexes: tuple[str, ...] = ()) -> Subject:
    url = server_url(env)
    need(driver)
    try:
        from datastore.sql import SQLDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.sql: {exc}") from exc
    table = STORE_TABLE + ("_ix" if indexes else "")
    SQLDatastore(url, table=table).drop()
    if indexes:
        try:
            store = SQLDatastore(url, table=table, indexes=list(indexes))
        except TypeError as exc:
            raise Unavailable(f"this SQLDatastore has no indexes= option: {exc}") from exc
        name, label = "SQLDatastore(indexes=score)", label + ", plus indexes=['score']"
    else:
        store, name = SQLDatastore(url, table=table), "SQLDatastore"

    def cleanup() -> None:
        SQLDatastore(url, table=table).drop()

    return StoreSubject(name, store, pushes_down=True, label=label, cleanup=cleanup)


def postgresql_store(ctx: Context) -> Subject:
    return _sql_store("DATASTORE_TEST_POSTGRESQL", "psycopg",
                      "pool of autocommit connections; value TEXT + doc JSONB")


def mysql_store(ctx: Context) -> Subject:
    return _sql_store("DATASTORE_TEST_MYSQL", "pymysql",
                      "pool of autocommit connections; JSON in LONGTEXT")


def postgresql_indexed_store(ctx: Context) -> Subject:
    return _sql_store("DATASTORE_TEST_POSTGRESQL", "psycopg", "the same", ("score",))


def mysql_indexed_store(ctx: Context) -> Subject:
    return _sql_store("DATASTORE_TEST_MYSQL", "pymysql", "the same", ("score",))


class RawPsycopg(Subject):
    """psycopg 3, one autocommit connection; ``executemany`` in a transaction for bulk."""

    label = "psycopg.connect(autocommit=True); key TEXT COLLATE \"C\" PRIMARY KEY, value JSONB"

    def __init__(self, table: str = RAW_TABLE) -> None:
        psycopg = need("psycopg")
        self.table = table
        self.conn = psycopg.connect(server_url("DATASTORE_TEST_POSTGRESQL"), autocommit=True)
        self.execute = self.conn.execute
        self.execute(f"DROP TABLE IF EXISTS {table}")
        self.execute(f'CREATE TABLE {table} (key TEXT COLLATE "C" PRIMARY KEY,'
                     " value JSONB NOT NULL)")
        self.upsert = (f"INSERT INTO {table} (key, value) VALUES (%s, %s::jsonb)"
                       " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
        self.query = self._query
        self.query_pushdown = self._pushdown

    def put(self, key: str, value: Any) -> None:
        self.execute(self.upsert, (key, dumps(value).decode()))

    def get(self, key: str) -> Any:
        row = self.execute(f"SELECT value::text FROM {self.table} WHERE key = %s",
                           (key,)).fetchone()
        return None if row is None else loads(row[0])

    def contains(self, key: str) -> bool:
        return self.execute(f"SELECT 1 FROM {self.table} WHERE key = %s",
                            (key,)).fetchone() is not None

    def delete(self, key: str) -> None:
        self.execute(f"DELETE FROM {self.table} WHERE key = %s", (key,))

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        rows = [(k, dumps(v).decode()) for k, v in pairs]
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(self.upsert, rows)

    def get_many(self, keys: list[str]) -> list[Any]:
        found = dict(self.execute(
            f"SELECT key, value::text FROM {self.table} WHERE key = ANY(%s)", (keys,)).fetchall())
        return [None if (d := found.get(k)) is None else loads(d) for k in keys]

    def delete_many(self, keys: list[str]) -> None:
        with self.conn.transaction():
            self.execute(f"DELETE FROM {self.table} WHERE key = ANY(%s)", (keys,))

    def _query(self, spec: QuerySpec) -> list[Any]:
        rows = self.execute(f"SELECT key, value::text FROM {self.table}"
                            " WHERE key >= %s AND key < %s",
                            (spec.collection + ":", spec.collection + ";"))
        return spec.apply((k, loads(v)) for k, v in rows)

    def _pushdown(self, spec: QuerySpec) -> list[Any]:
        rows = self.execute(
            f"SELECT value::text FROM {self.table} WHERE key >= %s AND key < %s"
            f" AND (value->>%s)::numeric {spec.op} %s"
            f" ORDER BY (value->>%s)::float8 {'DESC' if spec.descending else 'ASC'}, key"
            " LIMIT %s",
            (spec.collection + ":", spec.collection + ";", spec.field, spec.value,
             spec.order_field, spec.limit))
        return [loads(v) for (v,) in rows]

    def close(self) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.table}")
        self.conn.close()


def raw_psycopg(ctx: Context) -> Subject:
    return RawPsycopg()


class _AnalyzedAfterLoad(Subject):
    """A psycopg subject that runs ANALYZE once loaded, as the store does by itself.

    Without statistics PostgreSQL's planner, which believes a freshly loaded
    table empty, would not walk a field index, and would read a whole
    collection to find a bulk read's keys in a ``(path, key)`` primary key;
    the store analyzes a table without statistics after its first bulk
    write (and, with field indexes, as bulk writes grow it).
    """

    table: str
    execute: Any

    def load(self, pairs: list[tuple[Any, Any]], chunk: int = 1000) -> None:
        super().load(pairs, chunk)
        self.execute(f"ANALYZE {self.table}")


class IndexedPsycopg(_AnalyzedAfterLoad, RawPsycopg):
    """raw psycopg plus an expression index on the order field (what page-cost queries take)."""

    label = RawPsycopg.label + ", plus INDEX ON (((value->>'score')::float8) DESC, key)"

    def __init__(self) -> None:
        super().__init__(RAW_TABLE + "ix")
        self.execute(f"CREATE INDEX {self.table}_order ON {self.table}"
                     " (((value->>'score')::float8) DESC, key)")
        self.query = None

    def _pushdown(self, spec: QuerySpec) -> list[Any]:
        if spec.order_field != "score" or not spec.descending:
            raise ValueError("the index serves the benchmark's order only")
        # The order expression is spelled as in the index (a bound parameter would not match).
        rows = self.execute(
            f"SELECT value::text FROM {self.table} WHERE key >= %s AND key < %s"
            f" AND (value->>%s)::numeric {spec.op} %s"
            " ORDER BY (value->>'score')::float8 DESC, key LIMIT %s",
            (spec.collection + ":", spec.collection + ";", spec.field, spec.value, spec.limit))
        return [loads(v) for (v,) in rows]


def indexed_psycopg(ctx: Context) -> Subject:
    return IndexedPsycopg()


class RawPyMySQL(Subject):
    """PyMySQL, one autocommit connection; multi-row ``executemany`` in a transaction for bulk."""

    label = "pymysql.connect(autocommit=True); VARBINARY key, LONGTEXT utf8mb4_bin JSON value"

    def __init__(self) -> None:
        pymysql = need("pymysql")
        parts = urlsplit(server_url("DATASTORE_TEST_MYSQL"))
        self.conn = pymysql.connect(
            host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or ""),
            password=unquote(parts.password or ""), database=parts.path.lstrip("/"),
            charset="utf8mb4", autocommit=True)
        self.cur = self.conn.cursor()
        self.cur.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        self.cur.execute(
            f"CREATE TABLE {RAW_TABLE} (`key` VARBINARY(1024) NOT NULL PRIMARY KEY,"
            " `value` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL)"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
        self.upsert = (f"INSERT INTO {RAW_TABLE} (`key`, `value`) VALUES (%s, %s)"
                       " ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)")
        self.query = self._query
        self.query_pushdown = self._pushdown

    def key(self, string: str) -> Any:
        return string.encode()

    def put(self, key: bytes, value: Any) -> None:
        self.cur.execute(self.upsert, (key, dumps(value).decode()))

    def get(self, key: bytes) -> Any:
        self.cur.execute(f"SELECT `value` FROM {RAW_TABLE} WHERE `key` = %s", (key,))
        row = self.cur.fetchone()
        return None if row is None else loads(row[0])

    def contains(self, key: bytes) -> bool:
        return bool(self.cur.execute(f"SELECT 1 FROM {RAW_TABLE} WHERE `key` = %s", (key,)))

    def delete(self, key: bytes) -> None:
        self.cur.execute(f"DELETE FROM {RAW_TABLE} WHERE `key` = %s", (key,))

    def put_many(self, pairs: list[tuple[bytes, Any]]) -> None:
        self.conn.begin()
        try:
            self.cur.executemany(self.upsert, [(k, dumps(v).decode()) for k, v in pairs])
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def get_many(self, keys: list[bytes]) -> list[Any]:
        marks = ",".join(["%s"] * len(keys))
        self.cur.execute(f"SELECT `key`, `value` FROM {RAW_TABLE} WHERE `key` IN ({marks})",
                         keys)
        found = dict(self.cur.fetchall())
        return [None if (d := found.get(k)) is None else loads(d) for k in keys]

    def delete_many(self, keys: list[bytes]) -> None:
        marks = ",".join(["%s"] * len(keys))
        self.conn.begin()
        try:
            self.cur.execute(f"DELETE FROM {RAW_TABLE} WHERE `key` IN ({marks})", keys)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def _query(self, spec: QuerySpec) -> list[Any]:
        self.cur.execute(f"SELECT `key`, `value` FROM {RAW_TABLE}"
                         " WHERE `key` >= %s AND `key` < %s",
                         ((spec.collection + ":").encode(), (spec.collection + ";").encode()))
        return spec.apply((k, loads(v)) for k, v in self.cur.fetchall())

    def _pushdown(self, spec: QuerySpec) -> list[Any]:
        self.cur.execute(
            f"SELECT `value` FROM {RAW_TABLE} WHERE `key` >= %s AND `key` < %s"
            f" AND JSON_EXTRACT(`value`, %s) {spec.op} %s"
            f" ORDER BY CAST(JSON_EXTRACT(`value`, %s) AS DOUBLE)"
            f" {'DESC' if spec.descending else 'ASC'}, `key` LIMIT %s",
            ((spec.collection + ":").encode(), (spec.collection + ";").encode(),
             f"$.{spec.field}", spec.value, f"$.{spec.order_field}", spec.limit))
        return [loads(v) for (v,) in self.cur.fetchall()]

    def close(self) -> None:
        self.cur.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        self.conn.close()


def raw_pymysql(ctx: Context) -> Subject:
    return RawPyMySQL()


# -- the raw drivers on the store's layout -------------------------------------------------
#
# What a user of psycopg or PyMySQL would write by hand to keep the store's
# table: the same columns, keys and statements (the collection path beside
# the key; on PostgreSQL the primary key (path, key) and the exact text plus
# its JSONB copy, on MySQL the primary key (key) and an index (path, key)).
# Against the raw subjects above they show what the layout costs; against
# the store, what the library costs on top of it. Queries are left out:
# these subjects are about the CRUD workloads.

LAYOUT_TABLE = "bench_layout"


def _path(key: str) -> str:
    """The collection path of a key string, as the store's layout keeps it."""
    cut = key.rfind("/")
    colon = key.find(":", cut)
    return key[:colon] if colon >= 0 else (key[:cut] or "/")


class LayoutPsycopg(_AnalyzedAfterLoad, Subject):
    """psycopg 3 on SQLDatastore's PostgreSQL table, with the store's statements.

    Bulk writes are multi-row upserts through ``RawCursor`` (``$n``
    placeholders; the value text sent once, also cast to the JSONB ``doc``),
    1,000 rows a statement, in one transaction. The benchmark's keys all
    lie in one collection, so bulk reads and deletes name its path once.
    """

    label = ('psycopg.connect(autocommit=True); path, key, value TEXT, doc JSONB,'
             ' PRIMARY KEY (path, key): the store\'s table and statements by hand')

    def __init__(self, table: str = LAYOUT_TABLE) -> None:
        psycopg = need("psycopg")
        if not hasattr(psycopg, "RawCursor"):
            raise Unavailable("psycopg before 3.2 has no RawCursor")
        self.psycopg = psycopg
        self.table = t = table
        self.conn = psycopg.connect(server_url("DATASTORE_TEST_POSTGRESQL"), autocommit=True)
        self.execute = self.conn.execute
        self.execute(f"DROP TABLE IF EXISTS {t}")
        self.execute(f'CREATE TABLE {t} (path TEXT COLLATE "C" NOT NULL,'
                     ' key TEXT COLLATE "C" NOT NULL, value TEXT NOT NULL, doc JSONB NOT NULL,'
                     ' PRIMARY KEY (path, key))')
        self.conflict = (" ON CONFLICT (path, key) DO UPDATE"
                         " SET value = EXCLUDED.value, doc = EXCLUDED.doc")
        self.upsert = (f"INSERT INTO {t} (path, key, value, doc)"
                       " VALUES (%s, %s, %s, %s::jsonb)" + self.conflict)
        self.where = " WHERE path = %s AND key = %s"
        self.multi: dict[int, str] = {}

    def put(self, key: str, value: Any) -> None:
        text = dumps(value).decode()
        self.execute(self.upsert, (_path(key), key, text, text))

    def get(self, key: str) -> Any:
        row = self.execute(f"SELECT value FROM {self.table}" + self.where,
                           (_path(key), key)).fetchone()
        return None if row is None else loads(row[0])

    def contains(self, key: str) -> bool:
        return self.execute(f"SELECT 1 FROM {self.table}" + self.where,
                            (_path(key), key)).fetchone() is not None

    def delete(self, key: str) -> None:
        self.execute(f"DELETE FROM {self.table}" + self.where, (_path(key), key))

    def _statement(self, count: int) -> str:
        sql = self.multi.get(count)
        if sql is None:
            values = ", ".join(f"(${n}::text, ${n + 1}::text, ${n + 2}::text,"
                               f" ${n + 2}::text::jsonb)" for n in range(1, 3 * count, 3))
            sql = self.multi[count] = (f"INSERT INTO {self.table} (path, key, value, doc)"
                                       f" VALUES {values}" + self.conflict)
        return sql

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        params: list[Any] = []
        for key, value in pairs:  # the benchmark's keys are distinct within a call
            params += (_path(key), key, dumps(value).decode())
        with self.conn.transaction(), self.psycopg.RawCursor(self.conn) as cur:
            for start in range(0, len(pairs), 1000):
                chunk = params[3 * start : 3 * (start + 1000)]
                cur.execute(self._statement(len(chunk) // 3), chunk)

    def get_many(self, keys: list[str]) -> list[Any]:
        found = dict(self.execute(
            f"SELECT key, value FROM {self.table} WHERE path = %s AND key = ANY(%s::text[])",
            (_path(keys[0]), keys)).fetchall())
        return [None if (d := found.get(k)) is None else loads(d) for k in keys]

    def delete_many(self, keys: list[str]) -> None:
        with self.conn.transaction():
            self.execute(f"DELETE FROM {self.table} WHERE path = %s AND key = ANY(%s::text[])",
                         (_path(keys[0]), keys))

    def close(self) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.table}")
        self.conn.close()


def layout_psycopg(ctx: Context) -> Subject:
    return LayoutPsycopg()


class LayoutPyMySQL(Subject):
    """PyMySQL on SQLDatastore's MySQL table, with the store's statements.

    Paths, keys and values go as bytes (hex literals); bulk writes are one
    multi-row upsert per call (the benchmark's 1,000 small items fit in one
    statement), in one transaction; bulk reads and deletes are one
    ``key IN (...)`` each.
    """

    label = ("pymysql.connect(autocommit=True); VARBINARY path, key, LONGTEXT value,"
             " PRIMARY KEY (key), KEY (path, key): the store's table and statements by hand")

    def __init__(self, table: str = LAYOUT_TABLE) -> None:
        pymysql = need("pymysql")
        parts = urlsplit(server_url("DATASTORE_TEST_MYSQL"))
        self.conn = pymysql.connect(
            host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or ""),
            password=unquote(parts.password or ""), database=parts.path.lstrip("/"),
            charset="utf8mb4", autocommit=True)
        self.cur = self.conn.cursor()
        self.table = t = table
        self.cur.execute(f"DROP TABLE IF EXISTS {t}")
        self.cur.execute(
            f"CREATE TABLE {t} (`path` VARBINARY(1024) NOT NULL, `key` VARBINARY(1024) NOT NULL,"
            " `value` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
            f" PRIMARY KEY (`key`), KEY `{t}_path` (`path`, `key`))"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
        self.prefix = f"INSERT INTO {t} (`path`, `key`, `value`) VALUES "
        self.postfix = " ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)"
        self.where = " WHERE `key` = %s"

    def put(self, key: str, value: Any) -> None:
        self.cur.execute(self.prefix + "(%s, %s, %s)" + self.postfix,
                         (_path(key).encode(), key.encode(), dumps(value)))

    def get(self, key: str) -> Any:
        self.cur.execute(f"SELECT `value` FROM {self.table}" + self.where, (key.encode(),))
        row = self.cur.fetchone()
        return None if row is None else loads(row[0])

    def contains(self, key: str) -> bool:
        return bool(self.cur.execute(f"SELECT 1 FROM {self.table}" + self.where, (key.encode(),)))

    def delete(self, key: str) -> None:
        self.cur.execute(f"DELETE FROM {self.table}" + self.where, (key.encode(),))

    def put_many(self, pairs: list[tuple[str, Any]]) -> None:
        params: list[Any] = []
        for key, value in pairs:
            params += (_path(key).encode(), key.encode(), dumps(value))
        sql = self.prefix + ", ".join(["(%s, %s, %s)"] * len(pairs)) + self.postfix
        self.conn.begin()
        try:
            self.cur.execute(sql, params)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def _keys_in(self, keys: list[str]) -> tuple[str, list[bytes]]:
        """``key IN (...)`` of ``keys`` and its parameters."""
        return f"`key` IN ({','.join(['%s'] * len(keys))})", [k.encode() for k in keys]

    def get_many(self, keys: list[str]) -> list[Any]:
        condition, params = self._keys_in(keys)
        self.cur.execute(f"SELECT `key`, `value` FROM {self.table} WHERE {condition}", params)
        found = {k.decode(): v for k, v in self.cur.fetchall()}
        return [None if (d := found.get(k)) is None else loads(d) for k in keys]

    def delete_many(self, keys: list[str]) -> None:
        condition, params = self._keys_in(keys)
        self.conn.begin()
        try:
            self.cur.execute(f"DELETE FROM {self.table} WHERE {condition}", params)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def close(self) -> None:
        self.cur.execute(f"DROP TABLE IF EXISTS {self.table}")
        self.conn.close()


def layout_pymysql(ctx: Context) -> Subject:
    return LayoutPyMySQL()


def store_index_statements(dialect_name: str, table: str) -> list[str]:
    """The DDL SQLDatastore runs for ``indexes=['score']`` on ``table``: the same index, by hand."""
    try:
        from datastore import sqlquery
    except ImportError as exc:
        raise Unavailable(f"datastore.sqlquery: {exc}") from exc
    dialect = getattr(sqlquery, dialect_name)()
    return list(dialect.index_statements(table, "score"))


class LayoutIndexedPsycopg(LayoutPsycopg):
    """psycopg+layout plus the store's own index on ``score``: SQLDatastore(indexes=score)'s work.

    The index is the store's exactly (its DDL, run by hand): the field's type
    rank, then its value per type, so that a mixed-type order walks it as
    the naive engine orders. That costs more per write than the one-
    expression index of ``psycopg+index``; this peer shows how much.
    """

    label = LayoutPsycopg.label + ", plus the store's index on score (its DDL by hand)"

    def __init__(self) -> None:
        super().__init__(LAYOUT_TABLE + "ix")
        for statement in store_index_statements("PostgreSQLDialect", self.table):
            self.execute(statement)


def layout_indexed_psycopg(ctx: Context) -> Subject:
    return LayoutIndexedPsycopg()


class LayoutIndexedPyMySQL(LayoutPyMySQL):
    """PyMySQL+layout plus the store's own index on ``score`` (its generated columns and two indexes)."""

    label = LayoutPyMySQL.label + ", plus the store's index on score (its DDL by hand)"

    def __init__(self) -> None:
        super().__init__(LAYOUT_TABLE + "ix")
        for statement in store_index_statements("MySQLDialect", self.table):
            self.cur.execute(statement)


def layout_indexed_pymysql(ctx: Context) -> Subject:
    return LayoutIndexedPyMySQL()
