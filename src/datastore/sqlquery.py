"""How the SQL stores speak SQL: one query translator and one small dialect per engine.

:mod:`datastore.sqlite` and :mod:`datastore.sql` keep every object as one
row of one table::

    key    the key's normal string (primary key; compared by code point)
    path   key.path's string (indexed with tree: a collection is one index range)
    tree   the key in tree order: its UTF-8 bytes with '/' written as 0x00,
           so plain byte order is tree order ('/a/b' before '/a-b')
    value  the serialized value, exactly as the serializer wrote it
    doc    (SQLite, PostgreSQL) the copy of a JSON value that queries read,
           see :func:`query_document`

This module owns everything that depends on the engine's SQL: the table
layout (:class:`Dialect` and its three subclasses) and the translation of a
:class:`~datastore.Query` into one ``SELECT`` (:func:`plan_query`) whose
answer is *identical* to the naive engine's under
:mod:`datastore.core.compare`'s rules. Whatever cannot be translated exactly
is left to the naive engine, and the returned :class:`Plan` says which steps
were done (the flags of :func:`datastore.core.engine.run`).

The cross-type rules in SQL
---------------------------
A field of a JSON document has a JSON type (or is missing). Each type maps
to the class rank of :mod:`datastore.core.compare`: missing and null 0,
booleans 1, numbers 2, strings 3, arrays 5, objects 6. A filter against a
bool, number or str compares the field's value *only when the field has that
rank* (``COALESCE(CASE WHEN <type matches> THEN <value> END <op> ?, FALSE)``,
and ``!=`` is the negation of ``=``), so a value of another class is unequal
to the target and never "less" or "greater". An order sorts by the rank,
then by the value within the bool, number and string ranks, so arrays and
objects tie among themselves, and ends with ``tree`` (the key in tree
order), ascending even under a descending order, as the naive engine's
stable sort does. Strings compare by code point: SQLite's BINARY collation
and MySQL's binary strings compare UTF-8 bytes, PostgreSQL uses
``COLLATE "C"``. Numbers compare numerically, exactly for every integer and
float a JSON document holds within +/-2**53 (see each dialect for beyond).

Never pushed (the naive engine finishes them): filters whose value is a
list or dict (JSON equality differs from Python's: ``[1] == [True]``),
numbers outside the dialect's exact range, non-finite floats, field names
an engine's JSON path cannot spell exactly, and every field when the query
has a custom ``object_getattr`` or the store's values are not JSON.

Every user-supplied value (keys, paths, field names, filter values, limits)
is a bound parameter; the only identifiers (table and index names) are
checked by :func:`check_table_name` and quoted.
"""

from __future__ import annotations

import enum
import json as _json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .core.compare import (
    RANK_BOOL,
    RANK_DICT,
    RANK_LIST,
    RANK_NONE,
    RANK_NUMBER,
    RANK_STR,
    compare,
    rank,
)
from .core.key import Key
from .core.query import Filter, Order, Query

__all__ = [
    "Dialect",
    "Fields",
    "MySQLDialect",
    "Plan",
    "PostgreSQLDialect",
    "SQLiteDialect",
    "check_table_name",
    "escape_text",
    "path_string",
    "plan_query",
    "query_document",
]

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,57}")

#: Integers and floats strictly inside +/-2**53 are exact doubles and exact decimals.
_EXACT = 2**53

#: Field names that a quoted JSON path (``$."name"``) spells exactly on every
#: engine: no '"', no backslash, no control characters (JSON escapes those).
_PLAIN_FIELD = re.compile(r'[^"\\\x00-\x1f]+')

#: A JSON text that holds a NUL or U+0001 character inside some string.
_NUL_ESCAPE = re.compile(r"\\u000[01]")


def check_table_name(name: str) -> str:
    """Return ``name`` if it is a safe table name, else raise ValueError.

    Letters, digits and ``_``, not starting with a digit, at most 58
    characters (so that ``<name>_path``, the index, fits every engine's limit).
    """
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        raise ValueError(
            f"table name {name!r} is not allowed: use 1-58 letters, digits or '_',"
            " not starting with a digit"
        )
    return name


def escape_text(text: str) -> str:
    """``text`` with NUL and U+0001 rewritten so that no NUL is left, order kept.

    U+0001 becomes ``\\x01\\x02`` and NUL becomes ``\\x01\\x01``. Every other
    character stays, and the codes are prefix-free and ordered as the
    characters they replace, so comparing escaped strings by code point gives
    the same answer as comparing the originals. SQLite's JSON functions
    truncate strings at NUL and PostgreSQL's jsonb refuses NUL, so the query
    copy of a document and the filter values use this form.
    """
    if "\x00" in text or "\x01" in text:
        return text.replace("\x01", "\x01\x02").replace("\x00", "\x01\x01")
    return text


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, dict):
        return {escape_text(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def query_document(text: str) -> str | None:
    """The copy of JSON ``text`` that queries read, or None when ``text`` itself serves.

    Only a document holding NUL or U+0001 in a string (or object key) needs a
    copy: it is ``text`` with every string passed through :func:`escape_text`.
    """
    if "\\u000" not in text or _NUL_ESCAPE.search(text) is None:
        return None
    escaped = _escaped(_json.loads(text))
    return _json.dumps(escaped, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def path_string(string: str) -> str:
    """``key.path`` of the normal key string ``string``, as a string (no Key is built)."""
    cut = string.rfind("/")
    colon = string.find(":", cut)
    if colon < 0:
        return string[:cut] or "/"
    return string[:colon]


class Fields(enum.Enum):
    """What the store knows about the fields of its values."""

    #: Values are JSON text: fields are read in SQL with the dialect's JSON functions.
    JSON = "json"
    #: Values are raw bytes: every field of every value reads as None.
    NONE = "none"
    #: Values are opaque to SQL (another serializer): fields are read in Python only.
    OPAQUE = "opaque"


# A piece of SQL and the parameters for its placeholders, in order.
_Fragment = tuple[str, list[Any]]


class Dialect:
    """What differs between engines: placeholders, quoting, layout, JSON functions.

    Subclasses fill in the class attributes and the few methods marked
    "per engine"; :func:`plan_query` and the stores use only this interface.
    """

    #: A short name for messages ("SQLite", "PostgreSQL", "MySQL").
    label = ""
    #: The DB-API placeholder.
    mark = "?"
    #: The statement that opens a write transaction.
    begin = "BEGIN"
    #: The longest key, in UTF-8 bytes, the layout holds (None: no limit).
    max_key_bytes: int | None = None
    #: Whether strings are compared in their :func:`escape_text` form.
    escapes_nul = False
    #: Whether the table has a ``doc`` column.
    has_doc = False
    #: JSON type names (as ``type_sql`` returns them) of each rank; null or missing is rank 0.
    type_names: dict[int, tuple[str, ...]] = {}
    #: The type name of JSON null.
    null_type = "null"
    #: Appended to string expressions so that they compare by code point.
    str_collate = ""
    #: How many keys one ``IN (...)`` list may hold.
    in_chunk = 500

    # -- identifiers and plain parameters -------------------------------------------

    def quote(self, name: str) -> str:
        """A quoted identifier (names are checked before they get here)."""
        return f'"{name}"'

    def text(self, string: str) -> Any:
        """The parameter for a key or path string."""
        return string

    def key_string(self, raw: Any) -> str:
        """A key read back from the ``key`` column."""
        return raw  # type: ignore[no-any-return]

    def row(self, key: Key, stored: Any, doc: str | None) -> tuple[Any, ...]:
        """The parameters of one upsert: key, path, tree, value (and doc)."""
        string = key._string
        return (
            self.text(string),
            self.text(path_string(string)),
            string.replace("/", "\x00").encode("utf-8"),
            stored,
        )

    # -- statements -------------------------------------------------------------------

    def create_statements(self, table: str) -> list[str]:  # per engine
        """``CREATE ... IF NOT EXISTS`` statements: the table first, then any index of its own."""
        raise NotImplementedError

    def columns(self) -> list[str]:
        """The table's columns, in the order of :meth:`row`."""
        return ["key", "path", "tree", "value", *(["doc"] if self.has_doc else [])]

    def upsert(self, table: str) -> str:  # per engine
        """The statement that inserts one row or replaces its value."""
        raise NotImplementedError

    def keys_in(self, keys: Sequence[str]) -> Iterator[_Fragment]:
        """Conditions ``key IN (...)`` covering ``keys``, a chunk at a time."""
        column = self.quote("key")
        for start in range(0, len(keys), self.in_chunk):
            chunk = keys[start : start + self.in_chunk]
            marks = ", ".join([self.mark] * len(chunk))
            yield f"{column} IN ({marks})", [self.text(k) for k in chunk]

    # -- JSON fields (per engine) -----------------------------------------------------

    def field_param(self, field: str) -> Any | None:
        """The parameter naming ``field`` in :meth:`type_sql`/:meth:`extract_sql`, or None.

        None means the engine cannot address this field exactly: the filter
        or order on it is left to the naive engine.
        """
        if _PLAIN_FIELD.fullmatch(field) is None:
            return None
        return f'$."{field}"'

    def type_sql(self) -> str:
        """An expression of the field's JSON type name (NULL when missing); one placeholder."""
        raise NotImplementedError

    def extract_sql(self, rank: int) -> str:
        """The field's value as an SQL value, valid when its type has ``rank``; one placeholder."""
        raise NotImplementedError

    def order_terms(self, path: Any) -> list[_Fragment]:
        """ORDER BY terms (ascending) that sort a field as :func:`~datastore.core.compare.sort_value`.

        The class rank, then the value within the bool, number and string
        ranks (NULL elsewhere, so arrays and objects tie).
        """
        terms = [_rank_sql(self, path)]
        return terms + [_value_sql(self, path, r) for r in (RANK_BOOL, RANK_NUMBER, RANK_STR)]

    def number_ok(self, value: int | float) -> bool:
        """Whether a number filter compares exactly in this engine."""
        return math.isfinite(value) and -_EXACT < value < _EXACT

    def target(self, rank: int, value: Any) -> _Fragment:
        """The placeholder (maybe wrapped) and parameter for a filter value of ``rank``."""
        if rank == RANK_BOOL:
            return self.mark, [int(value)]
        if rank == RANK_NUMBER:
            return self.mark, [int(value) if isinstance(value, int) else float(value)]
        text = str(value)
        return self.mark, [escape_text(text) if self.escapes_nul else text]


class SQLiteDialect(Dialect):
    """SQLite 3.31+ with its JSON1 functions (built in since 3.38, and in every Python wheel).

    Integers are exact within 64 bits; ``json_extract`` reads a larger
    integer as an approximate REAL, so such values order approximately.
    """

    label = "SQLite"
    mark = "?"
    begin = "BEGIN IMMEDIATE"
    escapes_nul = True
    has_doc = True
    type_names = {
        RANK_BOOL: ("true", "false"),
        RANK_NUMBER: ("integer", "real"),
        RANK_STR: ("text",),
        RANK_LIST: ("array",),
        RANK_DICT: ("object",),
    }
    _SOURCE = 'COALESCE("doc", "value")'

    def create_statements(self, table: str) -> list[str]:
        t = self.quote(table)
        return [
            f'CREATE TABLE IF NOT EXISTS {t} ("key" TEXT NOT NULL PRIMARY KEY,'
            ' "path" TEXT NOT NULL, "tree" BLOB NOT NULL, "value" NOT NULL, "doc" TEXT)'
            " WITHOUT ROWID",
            f'CREATE INDEX IF NOT EXISTS {self.quote(table + "_path")} ON {t} ("path", "tree")',
        ]

    def row(self, key: Key, stored: Any, doc: str | None) -> tuple[Any, ...]:
        string = key._string
        return (string, path_string(string), string.replace("/", "\x00").encode(), stored, doc)

    def upsert(self, table: str) -> str:
        return (
            f'INSERT INTO {self.quote(table)} ("key", "path", "tree", "value", "doc")'
            ' VALUES (?, ?, ?, ?, ?) ON CONFLICT ("key") DO UPDATE'
            ' SET "value" = excluded."value", "doc" = excluded."doc"'
        )

    def type_sql(self) -> str:
        return f"json_type({self._SOURCE}, ?)"

    def extract_sql(self, rank: int) -> str:
        return f"json_extract({self._SOURCE}, ?)"

    def number_ok(self, value: int | float) -> bool:
        if isinstance(value, int):
            return -(2**63) <= value < 2**63
        return math.isfinite(value)

    def order_terms(self, path: Any) -> list[_Fragment]:
        # SQLite values carry their own type: after the rank, one term holds
        # the bool (as 0/1), number or string, each compared within its rank.
        names = _literal_list(
            self.type_names[RANK_BOOL] + self.type_names[RANK_NUMBER] + self.type_names[RANK_STR]
        )
        value = f"(CASE WHEN {self.type_sql()} IN ({names}) THEN {self.extract_sql(RANK_STR)} END)"
        return [_rank_sql(self, path), (value, [path, path])]


class PostgreSQLDialect(Dialect):
    """PostgreSQL 12+ through psycopg 3: ``value`` TEXT (exact), ``doc`` JSONB (queried).

    ``doc`` is a second copy because jsonb does not round-trip every float
    (``1e20`` comes back as an integer) and refuses NUL; the exact text is
    what ``get`` returns. Numbers compare as ``numeric``: integers exactly at
    any size, floats by their shortest decimal form (exact order among
    floats; against an integer beyond 2**53 a float may compare by that
    decimal rather than its binary value).
    """

    label = "PostgreSQL"
    mark = "%s"
    begin = "BEGIN"
    max_key_bytes = 1024
    escapes_nul = True
    has_doc = True
    str_collate = ' COLLATE "C"'
    type_names = {
        RANK_BOOL: ("boolean",),
        RANK_NUMBER: ("number",),
        RANK_STR: ("string",),
        RANK_LIST: ("array",),
        RANK_DICT: ("object",),
    }

    def create_statements(self, table: str) -> list[str]:
        t = self.quote(table)
        return [
            f'CREATE TABLE IF NOT EXISTS {t} ("key" TEXT COLLATE "C" PRIMARY KEY,'
            ' "path" TEXT COLLATE "C" NOT NULL, "tree" BYTEA NOT NULL,'
            ' "value" TEXT NOT NULL, "doc" JSONB NOT NULL)',
            f'CREATE INDEX IF NOT EXISTS {self.quote(table + "_path")} ON {t} ("path", "tree")',
        ]

    def row(self, key: Key, stored: Any, doc: str | None) -> tuple[Any, ...]:
        return (*super().row(key, stored, doc), stored if doc is None else doc)

    def upsert(self, table: str) -> str:
        return (
            f'INSERT INTO {self.quote(table)} ("key", "path", "tree", "value", "doc")'
            " VALUES (%s, %s, %s, %s, %s::jsonb) ON CONFLICT (\"key\") DO UPDATE"
            ' SET "value" = EXCLUDED."value", "doc" = EXCLUDED."doc"'
        )

    def keys_in(self, keys: Sequence[str]) -> Iterator[_Fragment]:
        yield '"key" = ANY(%s::text[])', [list(keys)]

    def field_param(self, field: str) -> Any | None:
        return escape_text(field)  # a plain text parameter: any name is exact

    def type_sql(self) -> str:
        return 'jsonb_typeof("doc" -> %s::text)'

    def extract_sql(self, rank: int) -> str:
        if rank == RANK_BOOL:
            return '("doc" -> %s::text)::boolean'
        if rank == RANK_NUMBER:
            return '("doc" -> %s::text)::numeric'
        return '("doc" ->> %s::text)'

    def target(self, rank: int, value: Any) -> _Fragment:
        if rank == RANK_BOOL:
            return "%s", [bool(value)]
        if rank == RANK_NUMBER:
            number = int(value) if isinstance(value, int) else float(value)
            return "CAST(%s AS numeric)", [repr(number)]
        return "%s", [escape_text(str(value))]


class MySQLDialect(Dialect):
    """MySQL 8 and MariaDB 10.5+ through PyMySQL: ``value`` LONGTEXT read with JSON functions.

    Keys and paths are VARBINARY (byte order, no collation, no trailing-space
    padding); strings are compared as ``CAST(JSON_UNQUOTE(...) AS BINARY)``,
    their UTF-8 bytes; numbers as DOUBLE, so integers beyond 2**53 order as
    their nearest double.
    """

    label = "MySQL"
    mark = "%s"
    begin = "START TRANSACTION"
    max_key_bytes = 1024
    null_type = "NULL"
    type_names = {
        RANK_BOOL: ("BOOLEAN",),
        RANK_NUMBER: ("INTEGER", "DOUBLE", "DECIMAL", "UNSIGNED INTEGER"),
        RANK_STR: ("STRING",),
        RANK_LIST: ("ARRAY",),
        RANK_DICT: ("OBJECT",),
    }

    def quote(self, name: str) -> str:
        return f"`{name}`"

    def text(self, string: str) -> Any:
        return string.encode("utf-8")

    def key_string(self, raw: Any) -> str:
        return bytes(raw).decode("utf-8")

    def create_statements(self, table: str) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.quote(table)} ("
            " `key` VARBINARY(1024) NOT NULL, `path` VARBINARY(1024) NOT NULL,"
            " `tree` VARBINARY(1024) NOT NULL,"
            " `value` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
            f" PRIMARY KEY (`key`), INDEX {self.quote(table + '_path')} (`path`, `tree`)"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        ]

    def upsert(self, table: str) -> str:
        return (
            f"INSERT INTO {self.quote(table)} (`key`, `path`, `tree`, `value`)"
            " VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)"
        )

    def type_sql(self) -> str:
        return "JSON_TYPE(JSON_EXTRACT(`value`, %s))"

    def extract_sql(self, rank: int) -> str:
        if rank == RANK_BOOL:
            return "(JSON_UNQUOTE(JSON_EXTRACT(`value`, %s)) = 'true')"
        if rank == RANK_NUMBER:
            return "CAST(JSON_EXTRACT(`value`, %s) AS DOUBLE)"
        return "CAST(JSON_UNQUOTE(JSON_EXTRACT(`value`, %s)) AS BINARY)"

    def target(self, rank: int, value: Any) -> _Fragment:
        if rank == RANK_STR:
            return "%s", [str(value).encode("utf-8")]
        if rank == RANK_NUMBER:
            return "%s", [float(value)]
        return super().target(rank, value)


# -- the translator ---------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One ``SELECT`` and what it did, for :func:`datastore.core.engine.run`.

    ``sql`` is None when the answer is known to be empty without asking.
    Rows are ``(key,)`` when ``with_values`` is false, else ``(key, value)``.
    """

    sql: str | None
    params: list[Any]
    with_values: bool
    scoped: bool
    filtered: bool
    ordered: bool
    limited: bool


class _Constant(enum.Enum):
    TRUE = True
    FALSE = False


def _literal_list(names: Sequence[str]) -> str:
    # Type names are this module's constants, never user input.
    return ", ".join(f"'{name}'" for name in names)


def _value_sql(dialect: Dialect, path: Any, rank_: int) -> _Fragment:
    """The field's value when its type has ``rank_``, else NULL."""
    names = _literal_list(dialect.type_names[rank_])
    sql = f"(CASE WHEN {dialect.type_sql()} IN ({names}) THEN {dialect.extract_sql(rank_)} END)"
    if rank_ == RANK_STR:
        sql += dialect.str_collate
    return sql, [path, path]


def _rank_sql(dialect: Dialect, path: Any) -> _Fragment:
    """The field's class rank (0 for null or missing)."""
    whens = " ".join(
        f"WHEN {_literal_list([name])} THEN {r}"
        for r, names in dialect.type_names.items()
        for name in names
    )
    return f"(CASE {dialect.type_sql()} {whens} ELSE 0 END)", [path]


def _filter_sql(flt: Filter, dialect: Dialect, fields: Fields) -> _Fragment | _Constant | None:
    """``flt`` as a condition, a constant, or None (not pushable)."""
    op, target = flt.op, flt.value
    if fields is Fields.NONE:
        return _Constant(compare(None, op, target))
    if fields is Fields.OPAQUE:
        return None
    target_rank = rank(target)
    if target_rank in (RANK_LIST, RANK_DICT) and op not in ("<", ">"):
        return None  # JSON equality of arrays/objects is not Python's
    if target_rank not in (RANK_NONE, RANK_BOOL, RANK_NUMBER, RANK_STR):
        # Bytes and other classes never occur in JSON; lists/dicts are never < or >.
        return _Constant(op == "!=")
    if op in ("<", ">") and target_rank == RANK_NONE:
        return _Constant.FALSE
    if target_rank == RANK_NUMBER and not dialect.number_ok(target):
        return None
    path = dialect.field_param(flt.field)
    if path is None:
        return None
    if target_rank == RANK_NONE:
        null = _literal_list([dialect.null_type])
        null_test = f"COALESCE({dialect.type_sql()}, {null}) = {null}"
        return (f"NOT {null_test}" if op == "!=" else null_test), [path]
    value_sql, params = _value_sql(dialect, path, target_rank)
    mark, target_params = dialect.target(target_rank, target)
    if op == "!=":
        return f"NOT COALESCE({value_sql} = {mark}, FALSE)", params + target_params
    return f"COALESCE({value_sql} {op} {mark}, FALSE)", params + target_params


def _order_sql(order: Order, dialect: Dialect, fields: Fields) -> list[_Fragment] | None:
    """ORDER BY terms for ``order`` (empty: all values tie), or None (not pushable)."""
    if fields is Fields.NONE:
        return []
    if fields is Fields.OPAQUE:
        return None
    path = dialect.field_param(order.field)
    if path is None:
        return None
    direction = " DESC" if order.descending else ""
    return [(sql + direction, params) for sql, params in dialect.order_terms(path)]


def _scope_sql(query: Query, dialect: Dialect) -> _Fragment | None:
    base = query.key._string
    path = dialect.quote("path")
    mark = dialect.mark
    if not query.recursive:
        return f"{path} = {mark}", [dialect.text(base)]
    if base == "/":
        return None  # every stored key lies below the root
    # path == base, or path starts with base + '/': '0' is the character after '/'.
    return (
        f"({path} = {mark} OR ({path} >= {mark} AND {path} < {mark}))",
        [dialect.text(base), dialect.text(base + "/"), dialect.text(base + "0")],
    )


def plan_query(query: Query, dialect: Dialect, table: str, fields: Fields) -> Plan:
    """Translate ``query`` into one SELECT over ``table`` (see the module docstring)."""
    if query.object_getattr is not None and fields is not Fields.OPAQUE:
        fields = Fields.OPAQUE  # a custom field reader runs in Python only
    if query.limit == 0:
        return Plan(None, [], False, True, True, True, False)
    conditions: list[_Fragment] = []
    scope = _scope_sql(query, dialect)
    if scope is not None:
        conditions.append(scope)
    filtered = True
    for flt in query.filters:
        pushed = _filter_sql(flt, dialect, fields)
        if pushed is None:
            filtered = False
        elif pushed is _Constant.FALSE:
            return Plan(None, [], False, True, True, True, False)
        elif isinstance(pushed, tuple):
            conditions.append(pushed)

    ordered = True
    terms: list[_Fragment] = []
    for order in query.orders:
        pushed_terms = _order_sql(order, dialect, fields)
        if pushed_terms is None:
            ordered = False
            terms = []
            break
        terms += pushed_terms
    if ordered:
        terms.append((dialect.quote("tree"), []))

    with_values = not (query.keys_only and filtered and ordered)
    limited = filtered and ordered and query.limit is not None
    columns = dialect.quote("key") + (", " + dialect.quote("value") if with_values else "")
    sql = f"SELECT {columns} FROM {dialect.quote(table)}"
    params: list[Any] = []
    if conditions:
        sql += " WHERE " + " AND ".join(c for c, _ in conditions)
        for _, p in conditions:
            params += p
    if terms:
        sql += " ORDER BY " + ", ".join(t for t, _ in terms)
        for _, p in terms:
            params += p
    if limited:
        sql += f" LIMIT {dialect.mark}"
        params.append(query.offset + (query.limit or 0))
    return Plan(sql, params, with_values, True, filtered, ordered, limited)
