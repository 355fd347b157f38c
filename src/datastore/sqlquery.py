"""How the SQL stores speak SQL: one query translator and one small dialect per engine.

:mod:`datastore.sqlite` and :mod:`datastore.sql` keep every object as one
row of one table, on every engine::

    path   key.path's string
    key    the key's normal string (compared by code point)
    value  the serialized value, exactly as the serializer wrote it
    doc    the copy of a JSON value that queries read where ``value`` will
           not do, see :func:`query_document` (on PostgreSQL, always: the
           JSONB copy; on SQLite, NULL unless needed; not on MySQL)

On SQLite and PostgreSQL the primary key is ``(path, key)``: one B-tree
serves key lookups, collection ranges and tree order, so a write updates
one B-tree, not two. (MySQL's InnoDB finds rows by the clustered primary
key fastest when it is the key alone: there the primary key is ``key`` and
a secondary ``(path, key)`` index scopes collections; see
:class:`MySQLDialect`.) Within one collection every key is ``path``
followed by ``/name`` or ``:name`` (a name without ``/``; for the root
collection, ``/name``), so the only ``/`` a key has beyond its path is the
first character after it: comparing two such keys by code point gives the
same answer as comparing them in tree order. A collection query is
therefore one range of the ``(path, key)`` index, already in tree order; a
recursive query (a subtree of several collections) sorts by the tree order
computed from the key (:meth:`Dialect.tree_sql`). Measured on PostgreSQL,
a put of a new key cost 1.09-1.18x the raw driver's with a second index on
``(path, tree)``, and 1.02-1.05x with this one.

This module owns everything that depends on the engine's SQL: the table
layout (:class:`Dialect` and its three subclasses), the field indexes that
:meth:`datastore.sql.SQLDatastore.create_index` builds
(:meth:`Dialect.index_statements`), and the translation of a
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
rank* (``<rank> = R AND <value> <op> ?``; ``!=`` is the negation of ``=``),
so a value of another class is unequal to the target and never "less" or
"greater". An order sorts by the rank, then by the value within the bool,
number and string ranks, so arrays and objects tie among themselves, and
ends with the key in tree order, ascending even under a descending order,
as the naive engine's stable sort does. Strings compare by code point:
SQLite's BINARY collation and MySQL's binary strings compare UTF-8 bytes,
PostgreSQL uses ``COLLATE "C"``. Numbers compare numerically, exactly for
every integer and float a JSON document holds within +/-2**53 (see each
dialect for beyond).

Never pushed (the naive engine finishes them): filters whose value is a
list or dict (JSON equality differs from Python's: ``[1] == [True]``),
numbers outside the dialect's exact range, non-finite floats, field names
an engine's JSON path cannot spell exactly, and every field when the query
has a custom ``object_getattr`` or the store's values are not JSON.

Field indexes
-------------
A field index (:meth:`Dialect.index_statements`) holds *the same
expressions* the translator writes for that field: the collection path,
the field's rank, its value term(s) and the tree order. The engine then
walks the index in the order the query asks (backwards for a descending
order, sorting only each run of tied values by key), tests the filters on
the way and stops after the page, so an ordered, limited query costs what
its page costs, not what the collection holds. For
the expressions to match, a field whose name is an identifier
(:func:`index_field`) is written into the SQL as a literal JSON path, after
the same strict check as a table name; any other field name is a bound
parameter. A filter that pins a field to one rank (``age > 30`` keeps
numbers only) is written ``<rank> = 2 AND <value> > ?``, a range that an
index on that field can seek to.

Every other user-supplied value (keys, paths, other field names, filter
values, limits) is a bound parameter; identifiers (table, index and column
names) are checked by :func:`check_table_name` or :func:`index_field`, then
quoted.
"""

from __future__ import annotations

import enum
import json as _json
import math
import re
import sqlite3
from collections.abc import Collection, Iterator, Sequence
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
from .core.query import Filter, Order, Query
from .indexing import path_string, shared_path

try:  # orjson is optional (the ``fast`` extra): it writes a bulk read's key list 8x faster.
    import orjson as _orjson
except ImportError:  # pragma: no cover - the stdlib does the same job
    _orjson = None  # type: ignore[assignment]


def _json_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    if _orjson is not None:
        return _orjson.dumps(value)
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

__all__ = [
    "Dialect",
    "Field",
    "Fields",
    "MySQLDialect",
    "Plan",
    "PostgreSQLDialect",
    "SQLiteDialect",
    "check_table_name",
    "escape_text",
    "index_field",
    "plan_query",
    "query_document",
]

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,57}")

#: Field names that are written into SQL as literals, and that may be indexed.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")

#: Integers and floats strictly inside +/-2**53 are exact doubles and exact decimals.
_EXACT = 2**53

#: Field names that a quoted JSON path (``$."name"``) spells exactly on every
#: engine: no '"', no backslash, no control characters (JSON escapes those).
_PLAIN_FIELD = re.compile(r'[^"\\\x00-\x1f]+')

#: A JSON text that holds a NUL or U+0001 character inside some string.
_NUL_ESCAPE = re.compile(r"\\u000[01]")

#: The ranks whose values an order compares (arrays and objects tie).
_VALUE_RANKS = (RANK_BOOL, RANK_NUMBER, RANK_STR)


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


def index_field(field: str) -> str:
    """Return ``field`` if an index may be built on it, else raise ValueError.

    1-48 letters, digits or ``_``, not starting with a digit: such a name is
    written into SQL as a literal JSON path and into index and column names,
    so it is held to the same strict pattern as a table name.
    """
    if not isinstance(field, str) or not _IDENTIFIER.fullmatch(field):
        raise ValueError(
            f"cannot index field {field!r}: an indexed field is named by 1-48 letters, digits"
            " or '_', not starting with a digit (queries on other fields still run in SQL,"
            " without an index)"
        )
    return field


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


def path_strings(strings: Sequence[str]) -> list[str]:
    """:func:`path_string` of each of ``strings``: the same steps, inlined for a bulk write."""
    if len(strings) > 1:
        first = shared_path(strings)
        if first is not None:
            return [first] * len(strings)
    paths: list[str] = []
    append = paths.append
    for string in strings:
        cut = string.rfind("/")
        colon = string.find(":", cut)
        append(string[:colon] if colon >= 0 else (string[:cut] or "/"))
    return paths


def by_path(strings: Sequence[str]) -> dict[str, list[str]]:
    """The key strings ``strings`` grouped by their path, in order of first appearance."""
    paths = path_strings(strings)
    if paths and paths.count(paths[0]) == len(paths):
        return {paths[0]: list(strings)}  # one collection, the usual bulk call: settled in C
    groups: dict[str, list[str]] = {}
    for path, string in zip(paths, strings, strict=True):
        group = groups.get(path)
        if group is None:
            groups[path] = [string]
        else:
            group.append(string)
    return groups


def query_copies(texts: Sequence[str]) -> dict[int, str]:
    """The query copies some of the JSON ``texts`` need, by position.

    Only a text holding ``\\u0000`` or ``\\u0001`` needs a copy (see
    :func:`query_document`); one look over all of them settles the common
    case of none: first for any backslash at all (a one-character search,
    ~50x faster than the five-character one over 100 kB of JSON).
    """
    docs: dict[int, str] = {}
    joined = "".join(texts)
    if "\\" in joined and "\\u000" in joined:
        for index, text in enumerate(texts):
            doc = query_document(text)
            if doc is not None:
                docs[index] = doc
    return docs


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


@dataclass(frozen=True)
class Field:
    """A field of the stored JSON documents, as one statement names it."""

    name: str
    #: The field's JSON path in SQL: a literal for an identifier, else a placeholder.
    sql: str
    #: The parameters of ``sql`` (none for a literal).
    params: list[Any]
    #: Whether the store has an index on the field (MySQL then reads its generated columns).
    indexed: bool = False


def _literal_list(names: Sequence[str]) -> str:
    # Type names are this module's constants, never user input.
    return ", ".join(f"'{name}'" for name in names)


class Dialect:
    """What differs between engines: placeholders, quoting, layout, JSON functions.

    Subclasses fill in the class attributes and the methods marked "per
    engine"; :func:`plan_query` and the stores use only this interface.
    """

    #: A short name for messages ("SQLite", "PostgreSQL", "MySQL").
    label = ""
    #: The DB-API placeholder.
    mark = "?"
    #: The statement that opens a write transaction.
    begin = "BEGIN"
    #: The longest key, in UTF-8 bytes, the layout holds (None: no limit).
    max_key_bytes: int | None = None
    #: The longest index or column name the engine keeps (None: no limit).
    max_name: int | None = None
    #: Whether strings are compared in their :func:`escape_text` form.
    escapes_nul = False
    #: JSON type names (as ``type_sql`` returns them) of each rank; null or missing is rank 0.
    type_names: dict[int, tuple[str, ...]] = {}
    #: Appended to string expressions so that they compare by code point.
    str_collate = ""
    #: How many keys one ``IN (...)`` list may hold.
    in_chunk = 500
    #: Whether an order on a field that a filter pins to one rank keeps only
    #: that rank's value term (needed where the engine cannot skip an ORDER BY
    #: term that an equality on an expression makes constant).
    drops_pinned_terms = False
    #: Whether :meth:`value_term` is NULL outside its rank, so that a filter on
    #: an unindexed field needs no rank test of its own (one JSON extraction a
    #: row less); False where one value term serves every rank (SQLite).
    ranked_values = True
    #: Whether filters on other fields are kept from seeking an index when the
    #: first order's field is indexed, so that the planner walks the order index.
    prefers_order_index = False
    #: The directions a field is indexed in: ascending only where the engine
    #: walks an index backwards for a descending order and sorts just each run
    #: of ties by key (SQLite, PostgreSQL 13+'s incremental sort); also
    #: descending where a descending order must match an index exactly (MySQL).
    index_directions: tuple[str, ...] = ("a",)
    #: Whether JSON values are bound as ``str`` (bulk writes then encode them
    #: straight to text) rather than as UTF-8 bytes.
    json_as_text = True

    # -- identifiers and plain parameters -------------------------------------------

    def quote(self, name: str) -> str:
        """A quoted identifier (names are checked before they get here)."""
        return f'"{name}"'

    def text(self, string: str) -> Any:
        """The parameter for a key or path string."""
        return string

    def texts(self, strings: Sequence[str]) -> list[Any]:
        """:meth:`text` of each of ``strings``: a bulk call's keys, in one step.

        The ``key`` column reads back in this form too, so a bulk read
        matches its rows to its keys without converting either.
        """
        return list(strings)

    def key_string(self, raw: Any) -> str:
        """A key read back from the ``key`` column."""
        return raw  # type: ignore[no-any-return]

    # -- layout and statements (per engine) -------------------------------------------

    def create_statements(self, table: str) -> list[str]:
        """``CREATE ... IF NOT EXISTS`` statements: the table first, then any index of its own."""
        raise NotImplementedError

    def columns(self) -> list[str]:
        """The table's columns (what a table must have to be a datastore table)."""
        raise NotImplementedError

    def row(self, string: str, stored: Any, json: bool) -> tuple[Any, ...]:
        """The parameters of the upsert of one key (see :meth:`upserts`): ``put``'s :meth:`rows`."""
        raise NotImplementedError

    def rows(self, strings: list[str], stored: list[Any], json: bool) -> list[tuple[Any, ...]]:
        """The parameters of the upserts of keys ``strings`` (see :meth:`upserts`), in order.

        ``stored[i]`` is the serialized value of ``strings[i]``; ``json``
        says that the values are JSON text, which queries read: ``str``
        where the dialect binds JSON as text (:attr:`json_as_text`), else
        UTF-8 bytes. Built a column at a time: this runs for every object
        written.
        """
        raise NotImplementedError

    def upserts(self, table: str) -> dict[int, str]:
        """The statements that insert one row or replace its value, by the length of the row."""
        raise NotImplementedError

    def key_condition(self) -> str:
        """The condition that selects one key's row (placeholders for :meth:`key_statement`)."""
        return f"{self.quote('path')} = {self.mark} AND {self.quote('key')} = {self.mark}"

    def key_statement(self, sql: str, string: str) -> tuple[str, Any]:
        """``sql`` (ending in :meth:`key_condition`) and its parameters for the key ``string``."""
        return sql, (self.text(path_string(string)), self.text(string))

    def keys_in(self, keys: Sequence[str], texts: Sequence[Any] | None = None) -> Iterator[_Fragment]:
        """Conditions covering the rows of ``keys``, a chunk of :attr:`in_chunk` at a time.

        The primary key is ``(path, key)``: each chunk's keys are grouped by
        path, ``(path = ? AND key IN (...)) OR ...``, so that each group is
        a handful of primary-key lookups (a bulk call usually fills one
        collection: one group). ``texts``, when the caller has them, are
        :meth:`texts` of ``keys``.
        """
        if texts is None:
            texts = self.texts(keys)
        path_column, key_column = self.quote("path"), self.quote("key")
        for start in range(0, len(keys), self.in_chunk):
            chunk = keys[start : start + self.in_chunk]
            groups = by_path(chunk)
            terms: list[str] = []
            params: list[Any] = []
            for path, strings in groups.items():
                terms.append(f"({path_column} = {self.mark} AND {key_column} IN"
                             f" ({', '.join([self.mark] * len(strings))}))")
                params.append(self.text(path))
                params += (texts[start : start + self.in_chunk] if len(groups) == 1
                           else self.texts(strings))
            yield " OR ".join(terms), params

    def value_column(self) -> str:
        """How a SELECT reads the ``value`` column."""
        return self.quote("value")

    def select_values(self, table: str, keys: Sequence[str],
                      texts: Sequence[Any]) -> list[_Fragment]:
        """SELECTs of the ``(key, value)`` rows of ``keys`` (``texts``: their :meth:`texts`)."""
        select = (f"SELECT {self.quote('key')}, {self.value_column()} FROM {self.quote(table)}"
                  " WHERE ")
        return [(select + condition, params) for condition, params in self.keys_in(keys, texts)]

    def tree_sql(self, recursive: bool) -> str:
        """The final, ascending tie-break: tree order within a collection or a subtree.

        Within one collection key order is tree order (module docstring);
        across a subtree the order is computed from the key (per engine).
        """
        return self.quote("key") if not recursive else self.subtree_order_sql()

    def subtree_order_sql(self) -> str:  # per engine
        """An expression of the key whose ascending order is tree order across collections."""
        raise NotImplementedError

    # -- JSON fields ------------------------------------------------------------------

    def field(self, name: str, indexed: Collection[str] = ()) -> Field | None:
        """``name`` as SQL can address it, or None (a filter or order on it runs in Python)."""
        if _IDENTIFIER.fullmatch(name):
            return Field(name, self.literal_path(name), [], name in indexed)
        if _PLAIN_FIELD.fullmatch(name) is None:
            return None
        return Field(name, self.mark, [f'$."{name}"'])

    def literal_path(self, name: str) -> str:
        """The JSON path of the identifier ``name`` as an SQL literal."""
        return f"'$.\"{name}\"'"

    def type_sql(self, path: str) -> str:  # per engine
        """An expression of the field's JSON type name (NULL when missing)."""
        raise NotImplementedError

    def extract_sql(self, rank_: int, path: str) -> str:  # per engine
        """The field's value as an SQL value, valid when its type has ``rank_``."""
        raise NotImplementedError

    def rank_term(self, field: Field) -> _Fragment:
        """The field's class rank (0 for null or missing)."""
        whens = " ".join(
            f"WHEN {_literal_list([name])} THEN {r}"
            for r, names in self.type_names.items()
            for name in names
        )
        return f"(CASE {self.type_sql(field.sql)} {whens} ELSE 0 END)", list(field.params)

    def value_term(self, field: Field, rank_: int) -> _Fragment:
        """The field's value when its type has ``rank_`` (one of the value ranks), else NULL."""
        names = _literal_list(self.type_names[rank_])
        sql = (
            f"(CASE WHEN {self.type_sql(field.sql)} IN ({names})"
            f" THEN {self.extract_sql(rank_, field.sql)} END)"
        )
        if rank_ == RANK_STR:
            sql += self.str_collate
        return sql, field.params * 2

    def order_terms(self, field: Field, pinned: int | None = None) -> list[_Fragment]:
        """ORDER BY terms (ascending) that sort a field as :func:`~datastore.core.compare.sort_value`.

        The class rank, then the value within the bool, number and string
        ranks (NULL elsewhere, so arrays and objects tie). ``pinned`` is the
        one rank a filter leaves the field: null/missing (all tie: no
        terms), or a value rank (only its value term, where the dialect
        drops the constant ones).
        """
        if pinned == RANK_NONE:
            return []
        if pinned is not None and self.drops_pinned_terms:
            return [self.value_term(field, pinned)]
        return [self.rank_term(field)] + [self.value_term(field, r) for r in _VALUE_RANKS]

    def pin_terms(self, field: Field, rank_: int) -> list[str]:
        """Extra conditions, true when the field has ``rank_``, that help an index seek."""
        return []

    def unindexed(self, sql: str) -> str:
        """``sql`` written so that the planner does not seek an index with it."""
        return sql

    def number_ok(self, value: int | float) -> bool:
        """Whether a number filter compares exactly in this engine."""
        return math.isfinite(value) and -_EXACT < value < _EXACT

    def target(self, rank_: int, value: Any) -> _Fragment:
        """The placeholder (maybe wrapped) and parameter for a filter value of ``rank_``."""
        if rank_ == RANK_BOOL:
            return self.mark, [int(value)]
        if rank_ == RANK_NUMBER:
            return self.mark, [int(value) if isinstance(value, int) else float(value)]
        text = str(value)
        return self.mark, [escape_text(text) if self.escapes_nul else text]

    # -- field indexes ----------------------------------------------------------------

    def index_name(self, table: str, field: str, direction: str) -> str:
        """The name of the ascending (``a``) or descending (``d``) index of ``field``."""
        name = f"{table}:{field}:{direction}"
        if self.max_name is not None and len(name) > self.max_name:
            raise ValueError(
                f"the index name {name!r} is longer than the {self.max_name} characters"
                f" {self.label} allows: use a shorter table or field name"
            )
        return name

    def indexed_field(self, table: str, name: str) -> str | None:
        """The field whose index (or column) is called ``name``, or None if not one of ours."""
        prefix = f"{table}:"
        if name.startswith(prefix) and name.endswith(":a"):
            field = name[len(prefix) : -2]
            if _IDENTIFIER.fullmatch(field):
                return field
        return None

    def index_elements(self, field: Field, descending: bool) -> list[str]:
        """The columns of a field index: path, the field's order terms, the tree order."""
        direction = " DESC" if descending else ""
        terms = [sql + direction for sql, _ in self.order_terms(field)]
        return [self.quote("path"), *terms, self.tree_sql(False)]

    def index_statements(self, table: str, field: str) -> list[str]:
        """Statements creating the index(es) of ``field`` (an identifier) if absent.

        They end with ``ANALYZE``: a planner without statistics on the new
        expressions (PostgreSQL right after a bulk load) sorts the whole
        collection instead of walking the index.
        """
        f = Field(field, self.literal_path(field), [])
        t = self.quote(table)
        creates = [
            f"CREATE INDEX IF NOT EXISTS {self.quote(self.index_name(table, field, d))} ON {t}"
            f" ({', '.join(self.index_elements(f, d == 'd'))})"
            for d in self.index_directions
        ]
        return [*creates, f"ANALYZE {t}"]

    def drop_index_statements(self, table: str, field: str) -> list[str]:
        """Statements dropping the index(es) of ``field`` if present."""
        return [f"DROP INDEX IF EXISTS {self.quote(self.index_name(table, field, d))}"
                for d in self.index_directions]

    def list_indexes_sql(self) -> str:  # per engine
        """A query of the names of the table's indexes (one placeholder: the table)."""
        raise NotImplementedError


class SQLiteDialect(Dialect):
    """SQLite 3.31+ with its JSON1 functions (built in since 3.38, and in every Python wheel).

    The table is ``WITHOUT ROWID``: the primary key ``(path, key)`` (see
    the module docstring) is the table itself.

    Integers are exact within 64 bits; ``json_extract`` reads a larger
    integer as an approximate REAL, so such values order approximately.
    """

    label = "SQLite"
    mark = "?"
    begin = "BEGIN IMMEDIATE"
    escapes_nul = True
    type_names = {
        RANK_BOOL: ("true", "false"),
        RANK_NUMBER: ("integer", "real"),
        RANK_STR: ("text",),
        RANK_LIST: ("array",),
        RANK_DICT: ("object",),
    }
    drops_pinned_terms = True
    prefers_order_index = True
    ranked_values = False
    #: The most rows one multi-row upsert holds (3 parameters each): SQLite binds up to
    #: 32,766 parameters a statement since 3.32, 999 before. One statement per 1,000
    #: rows instead of four saves ~5% of a bulk write.
    rows_per_statement = 1000 if sqlite3.sqlite_version_info >= (3, 32) else 333
    _SOURCE = 'COALESCE("doc", "value")'
    _VALUE_TYPES = _literal_list(("true", "false", "integer", "real", "text"))

    def create_statements(self, table: str) -> list[str]:
        return [
            f'CREATE TABLE IF NOT EXISTS {self.quote(table)} ("path" TEXT NOT NULL,'
            ' "key" TEXT NOT NULL, "value" NOT NULL, "doc" TEXT, PRIMARY KEY ("path", "key"))'
            " WITHOUT ROWID"
        ]

    def columns(self) -> list[str]:
        return ["path", "key", "value", "doc"]

    def row(self, string: str, stored: Any, json: bool) -> tuple[Any, ...]:
        if not json:
            return (path_string(string), string, stored)
        text = stored.decode()
        doc = query_document(text) if "\\u000" in text else None
        if doc is None:
            return (path_string(string), string, text)
        return (path_string(string), string, text, doc)

    def rows(self, strings: list[str], stored: list[Any], json: bool) -> list[tuple[Any, ...]]:
        # None is bound through the sqlite3 module's slow adaptation path; the
        # common row (no query copy) leaves ``doc`` to a literal NULL instead.
        paths = path_strings(strings)
        rows: list[tuple[Any, ...]] = list(zip(paths, strings, stored, strict=True))
        if not json:
            return rows
        docs = query_copies(stored)
        for index, doc in docs.items():
            rows[index] = (*rows[index], doc)
        return rows

    def _upsert(self, table: str, values: str) -> str:
        return (
            f'INSERT INTO {self.quote(table)} ("path", "key", "value", "doc") VALUES {values}'
            ' ON CONFLICT ("path", "key") DO UPDATE'
            ' SET "value" = excluded."value", "doc" = excluded."doc"'
        )

    def upserts(self, table: str) -> dict[int, str]:
        return {3: self._upsert(table, "(?, ?, ?, NULL)"), 4: self._upsert(table, "(?, ?, ?, ?)")}

    def upsert_rows(self, table: str, count: int) -> str:
        """One upsert of ``count`` rows without a query copy (3 parameters each, in order).

        SQLite applies the rows one after the other, so a key given twice
        ends with its last value, as a sequence of single upserts would.
        """
        return self._upsert(table, ", ".join(["(?, ?, ?, NULL)"] * count))

    def upsert_path_rows(self, table: str, count: int) -> str:
        """One upsert of ``count`` rows of one path: ``path`` once, then key and value of each.

        The path is bound once as ``?1`` and named by every row: a bulk
        write into one collection (the usual one) binds two parameters a
        row instead of three, and builds its parameter list by two slice
        assignments instead of flattening row tuples (~15% less time per
        row in SQLite and the sqlite3 module, measured on a 1,000-row write).
        """
        return self._upsert(table, ", ".join(
            f"(?1, ?{2 * i + 2}, ?{2 * i + 3}, NULL)" for i in range(count)))

    def value_column(self) -> str:
        # Bytes, not str: the JSON decoder takes them as they are, with no UTF-8
        # decoding into a str first (BLOB values are unchanged by the cast).
        return 'CAST("value" AS BLOB)'

    def subtree_order_sql(self) -> str:
        # The key's UTF-8 bytes with '/' as 0x00: byte order is then tree order.
        return "CAST(replace(\"key\", '/', char(0)) AS BLOB)"

    def type_sql(self, path: str) -> str:
        return f"json_type({self._SOURCE}, {path})"

    def extract_sql(self, rank_: int, path: str) -> str:
        return f"json_extract({self._SOURCE}, {path})"

    def value_term(self, field: Field, rank_: int) -> _Fragment:
        # SQLite values carry their own type: one term holds the bool (as 0/1),
        # number or string, each compared within its rank (the rank term or
        # filter keeps ranks apart), whatever ``rank_`` is asked for.
        return (
            f"(CASE WHEN {self.type_sql(field.sql)} IN ({self._VALUE_TYPES})"
            f" THEN {self.extract_sql(RANK_STR, field.sql)} END)",
            field.params * 2,
        )

    def order_terms(self, field: Field, pinned: int | None = None) -> list[_Fragment]:
        if pinned == RANK_NONE:
            return []
        if pinned is not None:
            return [self.value_term(field, pinned)]
        return [self.rank_term(field), self.value_term(field, RANK_STR)]

    def unindexed(self, sql: str) -> str:
        return "+" + sql  # SQLite's unary + is a no-op that no index matches

    def number_ok(self, value: int | float) -> bool:
        if isinstance(value, int):
            return -(2**63) <= value < 2**63
        return math.isfinite(value)

    def list_indexes_sql(self) -> str:
        return "SELECT \"name\" FROM sqlite_master WHERE \"type\" = 'index' AND \"tbl_name\" = ?"


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
    max_name = 63
    escapes_nul = True
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
            f'CREATE TABLE IF NOT EXISTS {t} ("path" TEXT COLLATE "C" NOT NULL,'
            ' "key" TEXT COLLATE "C" NOT NULL, "value" TEXT NOT NULL, "doc" JSONB NOT NULL,'
            ' PRIMARY KEY ("path", "key"))'
        ]

    def columns(self) -> list[str]:
        return ["path", "key", "value", "doc"]

    def row(self, string: str, stored: Any, json: bool) -> tuple[Any, ...]:
        text = stored.decode()
        doc = query_document(text) if "\\u000" in text else None
        return (path_string(string), string, text, text if doc is None else doc)

    def rows(self, strings: list[str], stored: list[Any], json: bool) -> list[tuple[Any, ...]]:
        # ``doc`` is the value text itself (the same object) unless it needs a query copy.
        rows: list[tuple[Any, ...]] = list(zip(path_strings(strings), strings, stored, stored,
                                               strict=True))
        for index, doc in query_copies(stored).items():
            rows[index] = (*rows[index][:3], doc)
        return rows

    #: The most rows one multi-row upsert holds (3 parameters each, within PostgreSQL's 65,535).
    rows_per_statement = 1000

    def _upsert(self, table: str, values: str) -> str:
        return (
            f'INSERT INTO {self.quote(table)} ("path", "key", "value", "doc")'
            f' VALUES {values} ON CONFLICT ("path", "key") DO UPDATE'
            ' SET "value" = EXCLUDED."value", "doc" = EXCLUDED."doc"'
        )

    def upserts(self, table: str) -> dict[int, str]:
        return {4: self._upsert(table, "(%s, %s, %s, %s::jsonb)")}

    def upsert_rows(self, table: str, count: int) -> str:
        """One upsert of ``count`` rows with distinct keys, for psycopg's RawCursor (``$n``).

        A row is (path, key, value text) and its ``doc`` is that text
        (rows with a query copy of their own take :meth:`upserts`). Every
        placeholder is cast, so the text, sent once, is both the value and
        the JSONB copy.
        """
        values = ", ".join(
            f"(${n}::text, ${n + 1}::text, ${n + 2}::text, ${n + 2}::text::jsonb)"
            for n in range(1, 3 * count, 3)
        )
        return self._upsert(table, values)

    def keys_in(self, keys: Sequence[str], texts: Sequence[Any] | None = None) -> Iterator[_Fragment]:
        # One statement whatever the count: each path's keys go as one array
        # parameter, in binary (%b): psycopg quotes a text array element by
        # element with a regex search each, 0.27 ms of a 1,000-key get_many.
        groups = by_path(keys)
        if groups:
            yield (" OR ".join(['("path" = %s AND "key" = ANY(%b::text[]))'] * len(groups)),
                   [param for path, strings in groups.items() for param in (path, strings)])

    def subtree_order_sql(self) -> str:
        # Arrays compare element by element, a prefix first: the key's segments
        # compared in turn (by code point: the column's collation) is tree order.
        return "string_to_array(\"key\", '/')"

    def field(self, name: str, indexed: Collection[str] = ()) -> Field | None:
        if _IDENTIFIER.fullmatch(name):
            return Field(name, self.literal_path(name), [], name in indexed)
        return Field(name, "%s::text", [escape_text(name)])  # a text parameter: any name is exact

    def literal_path(self, name: str) -> str:
        return f"'{name}'::text"

    def type_sql(self, path: str) -> str:
        return f'jsonb_typeof("doc" -> {path})'

    def extract_sql(self, rank_: int, path: str) -> str:
        if rank_ == RANK_BOOL:
            return f'("doc" -> {path})::boolean'
        if rank_ == RANK_NUMBER:
            return f'("doc" -> {path})::numeric'
        return f'("doc" ->> {path})'

    def target(self, rank_: int, value: Any) -> _Fragment:
        if rank_ == RANK_BOOL:
            return "%s", [bool(value)]
        if rank_ == RANK_NUMBER:
            number = int(value) if isinstance(value, int) else float(value)
            return "CAST(%s AS numeric)", [repr(number)]
        return "%s", [escape_text(str(value))]

    def list_indexes_sql(self) -> str:
        return "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s"


class MySQLDialect(Dialect):
    """MySQL 8 and MariaDB 10.5+ through PyMySQL: ``value`` LONGTEXT read with JSON functions.

    Keys and paths are VARBINARY (byte order, no collation, no trailing-space
    padding); strings are compared as ``CAST(JSON_UNQUOTE(...) AS BINARY)``,
    their UTF-8 bytes; numbers as DOUBLE, so integers beyond 2**53 order as
    their nearest double.

    Unlike the other engines, the primary key is ``key`` alone, with a
    secondary index ``(path, key)`` (:meth:`path_index`) that scopes
    collection queries in key order. InnoDB stores rows in the primary key's
    B-tree, and a lookup there by the whole key is its cheapest read:
    measured by hand with identical client code (10k and 100k rows), a
    ``get`` from a ``(path, key)`` primary key cost 1.02-1.08x the time of
    one from a key-only table, and ``path = ? AND key = ?`` on this layout
    1.02-1.04x ``key = ?``, which costs what the same statement costs on a
    bare key/value table. The second index costs a new key's upsert ~3%; a
    whole-collection read costs the same as before (the planner walks the
    primary key, whose order is the collection's).

    MySQL and MariaDB index expressions through generated columns: a field
    index adds four virtual columns (``<field>:r``, ``:b``, ``:n``, ``:s``:
    its rank and its bool, number and string values, each defined by exactly
    the expression a query would use) and indexes them, and queries on an
    indexed field read those columns. An index entry has a size limit, so
    the string column holds at most :attr:`index_str_bytes` bytes: a string
    longer than that in an indexed field is refused with ValueError.
    """

    # One IN list per 1,000-key get_many: each extra SELECT is a round trip.
    in_chunk = 1000

    label = "MySQL"
    mark = "%s"
    begin = "START TRANSACTION"
    max_key_bytes = 1024
    max_name = 64
    drops_pinned_terms = True
    index_directions = ("a", "d")
    # PyMySQL sends bytes as one hex literal (a C call), a str escaped in Python.
    json_as_text = False
    #: The longest string (UTF-8 bytes) an indexed field may hold.
    index_str_bytes = 768
    type_names = {
        RANK_BOOL: ("BOOLEAN",),
        RANK_NUMBER: ("INTEGER", "DOUBLE", "DECIMAL", "UNSIGNED INTEGER"),
        RANK_STR: ("STRING",),
        RANK_LIST: ("ARRAY",),
        RANK_DICT: ("OBJECT",),
    }
    _COLUMN = {RANK_BOOL: "b", RANK_NUMBER: "n", RANK_STR: "s"}
    _COLUMN_TYPE = {RANK_BOOL: "TINYINT", RANK_NUMBER: "DOUBLE"}

    def quote(self, name: str) -> str:
        return f"`{name}`"

    def text(self, string: str) -> Any:
        return string.encode("utf-8")

    def key_condition(self) -> str:
        # The primary key is the key alone (class docstring).
        return "`key` = %s"

    def key_statement(self, sql: str, string: str) -> tuple[str, Any]:
        """``sql`` with the key written in as a hex literal, and no parameters.

        The literal is what PyMySQL's escaping of bytes makes of it
        (``X'...'``: hex digits only, so nothing in a key can end it), built
        in two C calls; a statement without parameters skips PyMySQL's
        per-call formatting (~3.5 µs of Python, 2-3% of a loopback ``get``).
        The statement's only ``%s`` is the key condition's (table names are
        identifiers).
        """
        return sql % f"X'{string.encode().hex()}'", None

    def keys_in(self, keys: Sequence[str], texts: Sequence[Any] | None = None) -> Iterator[_Fragment]:
        # ``key IN (...)``: primary-key lookups whatever the keys' collections.
        if texts is None:
            texts = self.texts(keys)
        for start in range(0, len(keys), self.in_chunk):
            chunk = texts[start : start + self.in_chunk]
            yield f"`key` IN ({', '.join(['%s'] * len(chunk))})", list(chunk)

    def texts(self, strings: Sequence[str]) -> list[Any]:
        return list(map(str.encode, strings))  # UTF-8, the default

    def key_string(self, raw: Any) -> str:
        return bytes(raw).decode("utf-8")

    #: Whether the server has JSON_TABLE (MariaDB 10.6+, MySQL 8.0.4+); the
    #: store finds out when it opens (:meth:`probe_statement`) and sets it.
    json_table = False

    def probe_statement(self) -> str:
        """A statement that fails on a server without JSON_TABLE."""
        return "SELECT 1 FROM JSON_TABLE('[1]', '$[*]' COLUMNS (`x` INT PATH '$')) AS `j`"

    def select_values(self, table: str, keys: Sequence[str],
                      texts: Sequence[Any]) -> list[_Fragment]:
        """One SELECT joining the table to the keys, sent as one JSON text.

        An ``IN`` list costs PyMySQL an escape call per key (0.6 µs each) and
        the server a list to parse; the keys' JSON array is one parameter,
        escaped in one pass, and the server looks each key up in the primary
        key (a 1,000-key read: 2.57 ms instead of 2.81, measured by hand).
        Without JSON_TABLE, or with a key longer than any stored one
        (``JSON_TABLE`` would cut it), the ``IN`` lists serve.
        """
        if not self.json_table or max(map(len, texts)) > (self.max_key_bytes or 0):
            return super().select_values(table, keys, texts)
        return [(
            f"SELECT `t`.`key`, `t`.`value` FROM JSON_TABLE(%s, '$[*]' COLUMNS (`k`"
            f" VARCHAR({self.max_key_bytes}) CHARACTER SET utf8mb4 PATH '$')) AS `j`"
            f" JOIN {self.quote(table)} AS `t` ON `t`.`key` = CAST(`j`.`k` AS BINARY)",
            [_json_bytes(list(keys))],
        )]

    def subtree_order_sql(self) -> str:
        # The key's bytes with '/' as 0x00: byte order is then tree order.
        return "REPLACE(`key`, '/', X'00')"

    def create_statements(self, table: str) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.quote(table)} ("
            " `path` VARBINARY(1024) NOT NULL, `key` VARBINARY(1024) NOT NULL,"
            " `value` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
            f" PRIMARY KEY (`key`), KEY {self.quote(self.path_index(table))} (`path`, `key`)"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        ]

    @staticmethod
    def path_index(table: str) -> str:
        """The name of the ``(path, key)`` index that scopes collection queries."""
        return f"{table}_path"

    def primary_key_sql(self) -> str:
        """A query of the table's primary-key columns in order (one placeholder: the table)."""
        return ("SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA ="
                " DATABASE() AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX")

    def upgrade_statement(self, table: str) -> str:
        """What turns a table of the earlier ``PRIMARY KEY (path, key)`` layout into this one."""
        return (f"ALTER TABLE {self.quote(table)} DROP PRIMARY KEY, ADD PRIMARY KEY (`key`),"
                f" ADD KEY {self.quote(self.path_index(table))} (`path`, `key`)")

    def columns(self) -> list[str]:
        return ["path", "key", "value"]

    def row(self, string: str, stored: Any, json: bool) -> tuple[Any, ...]:
        return (path_string(string).encode("utf-8"), string.encode("utf-8"), stored)

    def rows(self, strings: list[str], stored: list[Any], json: bool) -> list[tuple[Any, ...]]:
        # Every column as UTF-8 bytes: written in as hex literals by
        # upsert_statement (and sent by PyMySQL as one for a single put), where
        # a str is escaped character by character in Python; the server
        # stores the same text in the utf8mb4 column.
        return list(zip([p.encode("utf-8") for p in path_strings(strings)],
                        [s.encode("utf-8") for s in strings], stored, strict=True))

    #: The most rows one multi-row upsert holds.
    rows_per_statement = 1000
    #: The most bytes (escaped) one multi-row upsert holds: PyMySQL's own
    #: ``executemany`` limit, well within every server's ``max_allowed_packet``.
    statement_bytes = 1_024_000

    def upserts(self, table: str) -> dict[int, str]:
        return {3: self.upsert_rows(table, 1)}

    def upsert_rows(self, table: str, count: int) -> str:
        """One upsert of ``count`` rows (path, key, value), applied in order."""
        return (
            f"INSERT INTO {self.quote(table)} (`path`, `key`, `value`) VALUES "
            + ", ".join(["(%s, %s, %s)"] * count)
            + " ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)"
        )

    def upsert_statement(self, table: str, rows: Sequence[tuple[bytes, bytes, bytes]]) -> str:
        """One upsert of ``rows`` (:meth:`rows`) with every column written in as a hex literal.

        ``X'...'`` holds hex digits only, so nothing in a row can end it;
        the server reads it as the same bytes PyMySQL would send escaped.
        Built in one pass of C-level ``hex`` calls, the statement skips
        PyMySQL's escaping of each parameter (five Python calls apiece): a
        1,000-row statement is ready in 0.35 ms instead of 0.6-0.7. It runs
        without parameters, so PyMySQL does no ``%`` formatting either.
        """
        values = ",".join([f"(X'{p.hex()}',X'{k.hex()}',X'{v.hex()}')" for p, k, v in rows])
        return (f"INSERT INTO {self.quote(table)} (`path`, `key`, `value`) VALUES {values}"
                " ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)")

    def type_sql(self, path: str) -> str:
        return f"JSON_TYPE(JSON_EXTRACT(`value`, {path}))"

    def extract_sql(self, rank_: int, path: str) -> str:
        if rank_ == RANK_BOOL:
            return f"(JSON_UNQUOTE(JSON_EXTRACT(`value`, {path})) = 'true')"
        if rank_ == RANK_NUMBER:
            return f"CAST(JSON_EXTRACT(`value`, {path}) AS DOUBLE)"
        return f"CAST(JSON_UNQUOTE(JSON_EXTRACT(`value`, {path})) AS BINARY)"

    def column(self, field: str, part: str) -> str:
        """The generated column of an indexed field: ``r`` (rank), ``b``, ``n`` or ``s``."""
        return f"{field}:{part}"

    def rank_term(self, field: Field) -> _Fragment:
        if field.indexed:
            return self.quote(self.column(field.name, "r")), []
        return super().rank_term(field)

    def value_term(self, field: Field, rank_: int) -> _Fragment:
        if field.indexed:
            return self.quote(self.column(field.name, self._COLUMN[rank_])), []
        return super().value_term(field, rank_)

    def pin_terms(self, field: Field, rank_: int) -> list[str]:
        # The index holds (rank, b, n, s): the value columns of the other ranks
        # are NULL, and saying so lets the index seek to the pinned value.
        if not field.indexed:
            return []
        return [f"{self.quote(self.column(field.name, self._COLUMN[r]))} IS NULL"
                for r in _VALUE_RANKS if r != rank_]

    def target(self, rank_: int, value: Any) -> _Fragment:
        if rank_ == RANK_STR:
            return "%s", [str(value).encode("utf-8")]
        if rank_ == RANK_NUMBER:
            return "%s", [float(value)]
        return super().target(rank_, value)

    def index_statements(self, table: str, field: str) -> list[str]:
        f = Field(field, self.literal_path(field), [])
        names = {d: self.quote(self.index_name(table, field, d)) for d in self.index_directions}
        rank_sql, _ = super().rank_term(f)
        adds = [f"ADD COLUMN {self.quote(self.column(field, 'r'))} TINYINT AS ({rank_sql}) VIRTUAL"]
        for r in _VALUE_RANKS:
            kind = self._COLUMN_TYPE.get(r, f"VARBINARY({self.index_str_bytes})")
            value_sql, _ = super().value_term(f, r)
            adds.append(f"ADD COLUMN {self.quote(self.column(field, self._COLUMN[r]))} {kind}"
                        f" AS ({value_sql}) VIRTUAL")
        indexed = Field(field, f.sql, [], indexed=True)
        for d in self.index_directions:
            adds.append(f"ADD INDEX {names[d]} ({', '.join(self.index_elements(indexed, d == 'd'))})")
        return [f"ALTER TABLE {self.quote(table)} {', '.join(adds)}"]

    def drop_index_statements(self, table: str, field: str) -> list[str]:
        drops = [f"DROP INDEX {self.quote(self.index_name(table, field, d))}"
                 for d in self.index_directions]
        drops += [f"DROP COLUMN {self.quote(self.column(field, part))}" for part in "rbns"]
        return [f"ALTER TABLE {self.quote(table)} {', '.join(drops)}"]

    def list_indexes_sql(self) -> str:
        return ("SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s")


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


@dataclass(frozen=True)
class _Condition:
    """A pushed filter: its SQL, and the rank it pins its field to (None: several ranks pass)."""

    sql: str
    params: list[Any]
    pins: int | None


def _filter_sql(flt: Filter, dialect: Dialect, fields: Fields, indexed: Collection[str],
                seek: bool) -> _Condition | _Constant | None:
    """``flt`` as a condition, a constant, or None (not pushable).

    ``seek`` False writes the condition so that no index seeks with it.
    """
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
    field = dialect.field(flt.field, indexed)
    if field is None:
        return None
    rank_sql, params = dialect.rank_term(field)
    if not seek:
        rank_sql = dialect.unindexed(rank_sql)
    if target_rank == RANK_NONE:  # = None, <= None, >= None: null or missing
        if op == "!=":
            return _Condition(f"{rank_sql} <> {RANK_NONE}", params, None)
        pins = [f"{rank_sql} = {RANK_NONE}", *dialect.pin_terms(field, RANK_NONE)]
        return _Condition("(" + " AND ".join(pins) + ")", params, RANK_NONE)
    value_sql, value_params = dialect.value_term(field, target_rank)
    if not seek:
        value_sql = dialect.unindexed(value_sql)
    mark, target_params = dialect.target(target_rank, target)
    # An index seeks on the rank first; elsewhere a ranked value term is NULL
    # outside the target's rank, which fails the comparison just as well.
    ranks = [f"{rank_sql} = {target_rank}"] if field.indexed or not dialect.ranked_values else []
    params = (params if ranks else []) + value_params + target_params
    if op == "!=":
        return _Condition(
            f"NOT COALESCE({' AND '.join([*ranks, f'{value_sql} = {mark}'])}, FALSE)",
            params, None,
        )
    terms = [*ranks, *dialect.pin_terms(field, target_rank), f"{value_sql} {op} {mark}"]
    return _Condition("(" + " AND ".join(terms) + ")", params, target_rank)


def _order_sql(order: Order, dialect: Dialect, fields: Fields, indexed: Collection[str],
               pinned: int | None) -> list[_Fragment] | None:
    """ORDER BY terms for ``order`` (empty: all values tie), or None (not pushable)."""
    if fields is Fields.NONE:
        return []
    if fields is Fields.OPAQUE:
        return None
    field = dialect.field(order.field, indexed)
    if field is None:
        return None
    direction = " DESC" if order.descending else ""
    return [(sql + direction, params) for sql, params in dialect.order_terms(field, pinned)]


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


def plan_query(query: Query, dialect: Dialect, table: str, fields: Fields,
               indexed: Collection[str] = ()) -> Plan:
    """Translate ``query`` into one SELECT over ``table`` (see the module docstring).

    ``indexed`` names the fields the store has indexes on: the SQL is the
    same whatever they are (an index matches the expressions), except that
    MySQL reads an indexed field's generated columns, and SQLite keeps
    filters on other fields from seeking an index when the first order's
    field is indexed, so that it walks that index and stops after the page.
    """
    if query.object_getattr is not None and fields is not Fields.OPAQUE:
        fields = Fields.OPAQUE  # a custom field reader runs in Python only
    if query.limit == 0:
        return Plan(None, [], False, True, True, True, False)
    conditions: list[_Fragment] = []
    scope = _scope_sql(query, dialect)
    if scope is not None:
        conditions.append(scope)
    walked = query.orders[0].field if query.orders else None
    walk = dialect.prefers_order_index and walked is not None and walked in indexed
    pinned: dict[str, int] = {}
    filtered = True
    for flt in query.filters:
        pushed = _filter_sql(flt, dialect, fields, indexed,
                             seek=not walk or flt.field == walked)
        if pushed is None:
            filtered = False
        elif pushed is _Constant.FALSE:
            return Plan(None, [], False, True, True, True, False)
        elif isinstance(pushed, _Condition):
            conditions.append((pushed.sql, pushed.params))
            if pushed.pins is not None:
                pinned.setdefault(flt.field, pushed.pins)

    ordered = True
    terms: list[_Fragment] = []
    for order in query.orders:
        pushed_terms = _order_sql(order, dialect, fields, indexed, pinned.get(order.field))
        if pushed_terms is None:
            ordered = False
            terms = []
            break
        terms += pushed_terms
    if ordered:
        terms.append((dialect.tree_sql(query.recursive), []))

    with_values = not (query.keys_only and filtered and ordered)
    limited = filtered and ordered and query.limit is not None
    columns = dialect.quote("key") + (", " + dialect.value_column() if with_values else "")
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
