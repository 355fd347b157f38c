"""MongoDatastore: objects as MongoDB documents, one Mongo collection per key collection.

The classic spelling works as it always did::

    client = pymongo.MongoClient()
    ds = MongoDatastore(client.test_db)

and ``MongoDatastore('mongodb://host:27017/db')`` (or ``datastore.open``)
builds its own client. How the contract maps onto MongoDB (the full story,
with the reasons, is ``docs/stores/mongo.rst``):

* **Collections.** The objects of collection ``key.path`` live in one Mongo
  collection whose name is derived from the path, reversibly readable and
  always valid (:func:`collection_name`). A small registry collection lists
  the paths written so far, so that a recursive query finds every
  collection below its key.
* **Documents.** ``_id`` is the key string (MongoDB's own unique index).
  A ``dict`` value is stored as the document itself, so its fields are
  Mongo fields that queries run on; any other value is wrapped as
  ``{_id, _v: value}``. Field names MongoDB cannot hold or would read as
  syntax (``$x``, ``a.b``, NUL, ``''``) and the reserved top-level names are
  escaped reversibly (:func:`escape_field`), so every dict round-trips and
  stays queryable, and a user's field name can never become an operator.
* **Values** round-trip exactly or are refused before anything is written
  (:func:`encode_document`): ints stay ints (64 bits at most), floats stay
  floats (no NaN), bytes stay bytes.
* **Queries** become ``find`` (or an ``aggregate`` pipeline when an order
  needs the cross-type rules of :mod:`datastore.core.compare`), with type
  guards that make MongoDB's answer identical to the naive engine's
  (:class:`Translation`); what cannot be expressed exactly is finished in
  Python by :func:`datastore.core.engine.run`.
"""

from __future__ import annotations

import gc
import hashlib
import math
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .collections.collection import merge_queries
from .core import engine
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, to_key
from .core.query import Cursor, Query
from .drivers import require
from .errors import BackendError, ClosedError, ConnectionFailed

require("pymongo", backend="MongoDatastore", extra="mongo")

import bson  # noqa: E402  (bson ships with pymongo, checked just above)
import pymongo  # noqa: E402
from bson.binary import Binary  # noqa: E402
from bson.codec_options import CodecOptions  # noqa: E402
from bson.int64 import Int64  # noqa: E402
from bson.raw_bson import RawBSONDocument  # noqa: E402
from pymongo.collection import Collection  # noqa: E402
from pymongo.database import Database  # noqa: E402
from pymongo.errors import (  # noqa: E402
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    PyMongoError,
)

__all__ = [
    "DEFAULT_PREFIX",
    "MongoDatastore",
    "Translation",
    "collection_name",
    "decode_document",
    "encode_document",
    "escape_field",
    "from_url",
]

Pair = tuple[Key, Any]
Document = dict[str, Any]

#: The first part of every collection name a store uses, unless told otherwise.
DEFAULT_PREFIX = "datastore"
#: MongoDB's limits: a document's encoded size, its nesting, a namespace's length.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_NESTING = 100
#: (255 bytes for ``database.collection`` since MongoDB 4.4, 235 if the collection is
#: sharded: the store keeps within 235 so that any of its collections may be sharded.)
MAX_NAMESPACE_BYTES = 235
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# -- collection names ------------------------------------------------------------------

_PREFIX_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_NAME_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


def _encode_segment(segment: str) -> str:
    """One path segment in ``[A-Za-z0-9-]`` plus ``_xx`` escapes (an empty one is ``_``)."""
    if not segment:
        return "_"
    out = []
    for char in segment:
        if char in _NAME_SAFE:
            out.append(char)
        else:
            out.extend(f"_{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


def collection_name(path: str, prefix: str, database_name: str) -> str:
    """The Mongo collection that holds the objects of collection ``path``.

    ``/`` is ``prefix`` itself and ``/Comedy/MontyPython/Actor`` is
    ``prefix.Comedy.MontyPython.Actor``: each path segment keeps
    ``[A-Za-z0-9-]`` and spells every other character as ``_`` plus the hex
    of its UTF-8 bytes (``/a b`` is ``prefix.a_20b``, ``/$x`` is
    ``prefix._24x``), and an empty segment (the path of ``/a/:x`` is ``/a/``)
    is ``_``. Segments hold no ``.``, so the mapping is one-to-one and the
    name never holds ``$``, NUL, ``..`` or a trailing ``.``, nor starts with
    ``system.``. A name that would make ``database.collection`` longer than
    235 bytes (MongoDB's limit for a sharded collection) becomes ``prefix._h`` plus the SHA-256 of the path
    (``_h`` is no escape, so it cannot clash); the registry still records
    the path, which is all a recursive query needs.
    """
    name = prefix if path == "/" else prefix + "".join("." + _encode_segment(s) for s in path[1:].split("/"))
    if len(database_name) + 1 + len(name) > MAX_NAMESPACE_BYTES:
        name = prefix + "._h" + hashlib.sha256(path.encode("utf-8")).hexdigest()
    return name


def _check_prefix(prefix: Any, database_name: str) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"collection_prefix must be a str, not {type(prefix).__name__}")
    if not _PREFIX_RE.fullmatch(prefix) or prefix.startswith("system"):
        raise ValueError(
            f"collection_prefix {prefix!r} must be 1-64 characters of A-Z a-z 0-9 _"
            " and must not start with 'system' (MongoDB reserves system.*)"
        )
    longest = len(collection_name("/" + "x" * MAX_NAMESPACE_BYTES, prefix, database_name))
    if len(database_name) + 1 + longest > MAX_NAMESPACE_BYTES:
        raise ValueError(
            f"database name {database_name!r} plus collection_prefix {prefix!r} leave no room"
            f" for collection names within MongoDB's {MAX_NAMESPACE_BYTES}-byte namespace limit"
        )
    return prefix


def _key_text(key: Key) -> str:
    """The key string, refused when MongoDB (UTF-8 only) cannot store it."""
    string = key._string
    if not string.isascii():
        try:
            string.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"key {string!r} holds a lone surrogate, which MongoDB cannot store"
                " (BSON strings are UTF-8); use valid Unicode text"
            ) from None
    return string


def _path_of(key: Key) -> str:
    """``key.path`` as a string (the key must not be the root)."""
    return key.path._string


# -- field names --------------------------------------------------------------------------

#: Top-level names the store itself uses: the key, a wrapped value, the escape flag.
RESERVED = frozenset({"_id", "_v", "_e"})
_ESCAPED_CHARS = ".$~\x00"
_UNESCAPE_RE = re.compile(r"~([0-9a-f]{2})")


def _needs_escape(name: str, top: bool) -> bool:
    return not name or name[0] in "$~" or "." in name or "\x00" in name or (top and name in RESERVED)


def _escape(name: str) -> str:
    return "~" + "".join(f"~{ord(c):02x}" if c in _ESCAPED_CHARS else c for c in name)


def _unescape(name: str) -> str:
    return _UNESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), name[1:])


def escape_field(name: str) -> str:
    """The stored name of top-level field ``name``.

    Names MongoDB would read as syntax or cannot hold (a leading ``$``, a
    ``.``, NUL, the empty name), names starting with the escape character
    ``~`` and the reserved ``_id``/``_v``/``_e`` become ``~`` followed by the
    name with each of ``. $ ~ NUL`` spelled ``~`` plus two hex digits:
    ``$where`` is ``~~24where``, ``a.b`` is ``~a~2eb``, ``_id`` is ``~_id``.
    Every other name is stored as it is. Stored names that start with ``~``
    are exactly the escaped ones, so the mapping reverses.
    """
    return _escape(name) if _needs_escape(name, True) else name


# -- values <-> documents ------------------------------------------------------------------


#: How documents are read: plain dicts. BSON int64 decodes to ``bson.Int64`` (an
#: ``int`` subclass), which :func:`decode_document` turns into plain ``int``. (A
#: type decoder would do it in the driver, but any decoder registry makes pymongo
#: decode every reply through Python callbacks: +10% on a ``find_one``, measured.)
CODEC_OPTIONS: CodecOptions[Document] = CodecOptions(document_class=dict)
#: CPython's ``gc.get_referents`` of a dict or list is its items (see :func:`_holds_int64`).
_LEVEL_WALK = sys.implementation.name == "cpython"


def _holds_int64(value: Any) -> bool:
    """True when ``value`` holds a ``bson.Int64`` anywhere (an int beyond 32 bits).

    Most documents hold none; a look at each tree level at once, in C
    (``gc.get_referents`` gives the level below), settles it without a walk.
    """
    if not _LEVEL_WALK:
        return True
    level = [value]
    while level:
        if Int64 in set(map(type, level)):
            return True
        level = gc.get_referents(*level)
    return False


def _plain_ints(value: Any) -> Any:
    """``value`` with every ``bson.Int64`` in it replaced by the plain ``int``."""
    if type(value) is Int64:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_ints(v) for v in value]
    return value


class _Encoder:
    """One walk over a value: checks that BSON holds it exactly and escapes field names."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.escaped = False

    def refuse(self, path: str, why: str) -> TypeError:
        return TypeError(f"cannot store {self.where}: {path} {why}")

    def value(self, value: Any, path: str, depth: int) -> Any:
        if value is None or isinstance(value, (str, bool)):
            return value
        if isinstance(value, int):
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise self.refuse(
                    path,
                    f"is {value}, beyond the 64-bit integers MongoDB holds;"
                    " store it as a str (or a float if precision may go)",
                )
            return int(value)
        if isinstance(value, float):
            if math.isnan(value):
                raise self.refuse(
                    path, "is NaN, which equals nothing and has no place in an order; store None"
                )
            return value
        if isinstance(value, bytes):
            return value
        if depth >= MAX_NESTING:
            raise self.refuse(path, f"nests deeper than MongoDB's {MAX_NESTING} levels")
        if isinstance(value, (list, tuple)):
            return [self.value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return self.fields(value, path, depth + 1, top=False)
        raise self.refuse(
            path,
            f"is a {type(value).__name__}; MongoDatastore stores str, int, float, bool,"
            " bytes, lists and dicts with str keys (None inside them); convert it first",
        )

    def fields(self, value: dict[Any, Any], path: str, depth: int, top: bool) -> Document:
        out: Document = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise self.refuse(path, f"has a {type(name).__name__} key {name!r}; dict keys must be str")
            if _needs_escape(name, top):
                self.escaped = True
                stored = _escape(name)
            else:
                stored = name
            out[stored] = self.value(item, f"{path}[{name!r}]", depth)
        return out


def encode_document(key: Key, value: Any) -> RawBSONDocument:
    """The BSON document that stores ``value`` under ``key``, or TypeError/ValueError.

    Everything a write could fail on (types, int range, NaN, text that is
    not UTF-8, nesting, size) is checked here, before any write starts.
    """
    check_value(value)
    string = _key_text(key)
    encoder = _Encoder(f"the value for {string!r}")
    if isinstance(value, dict):
        document = encoder.fields(value, "the value", 1, top=True)
    else:
        document = {"_v": encoder.value(value, "the value", 1)}
    document["_id"] = string
    if encoder.escaped:
        document["_e"] = True
    try:
        data = bson.encode(document)
    except UnicodeEncodeError as exc:
        raise TypeError(
            f"cannot store the value for {string!r}: it holds text that is not valid"
            f" Unicode ({exc.reason}); BSON strings are UTF-8"
        ) from None
    except (bson.errors.InvalidDocument, OverflowError) as exc:  # pragma: no cover - belt
        raise TypeError(f"cannot store the value for {string!r}: {exc}") from exc
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValueError(
            f"the value for {string!r} encodes to {len(data)} bytes; a MongoDB document"
            f" holds at most {MAX_DOCUMENT_BYTES} (16 MiB): store large blobs elsewhere"
        )
    return RawBSONDocument(data)


def _unescape_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {(_unescape(k) if k[:1] == "~" else k): _unescape_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescape_tree(v) for v in value]
    return value


def decode_document(document: Document) -> Pair:
    """``(key, value)`` from a stored document (the inverse of :func:`encode_document`)."""
    string = document.pop("_id", None)
    if not isinstance(string, str):
        raise BackendError(
            f"a document with _id {string!r} is not one MongoDatastore wrote; keep other"
            " data out of the store's collections"
        )
    escaped = document.pop("_e", False)
    value = document.get("_v", document)
    if _holds_int64(value):
        value = _plain_ints(value)
    if escaped:
        value = _unescape_tree(value)
    return Key(string), value


# -- queries -> MongoDB ---------------------------------------------------------------------

_NOT_ARRAY = {"$type": "array"}
#: BSON ``$type`` aliases for the classes whose comparisons MongoDB and compare.py share.
_TYPE_ALIAS = {bool: "bool", int: "number", float: "number", str: "string", bytes: "binData"}
_RANGE_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
#: Types an order can be computed for in MongoDB; anything else is sorted in Python.
_SORTABLE_TYPES = ["null", "bool", "int", "long", "double", "string", "array", "object"]
#: The classes within which MongoDB's own sort is compare.py's, by the Python type a
#: read gives (``$type`` aliases): every class of _TYPE_ALIAS but binary data (ordered
#: by length first), and int64 as read. A field holding one of them (besides null or
#: nothing) is sorted on directly.
_NATIVE_CLASS = {**{t: a for t, a in _TYPE_ALIAS.items() if t is not bytes}, Int64: "number"}
_NEVER = object()


def _literal(target: Any) -> Any:
    """A filter value as BSON will hold it, or None when it cannot be pushed exactly."""
    kind = type(target)
    if kind is int:
        return target if _INT64_MIN <= target <= _INT64_MAX else None
    if kind is float:
        return None if math.isnan(target) else target
    if kind in (bool, str):
        return target
    if kind is bytes:
        return Binary(target)
    return None


def _clause(field: str, op: str, target: Any) -> Any:
    """The Mongo filter for ``field <op> target`` under compare.py, None, or ``_NEVER``.

    MongoDB matches arrays element by element (``{f: 5}`` matches
    ``[5, 6]``) and treats a missing field as null, while compare.py sees a
    list as one value of its own class. Every positive clause therefore
    excludes arrays, and every ``!=`` includes them. Range operators also
    carry a ``$type`` guard (MongoDB brackets them by type already; the guard
    states the intent and keeps the index bounds tight).
    """
    if target is None:
        if op in ("=", "<=", ">="):
            return {field: {"$eq": None, "$not": _NOT_ARRAY}}
        if op == "!=":
            return {"$or": [{field: {"$ne": None}}, {field: _NOT_ARRAY}]}
        return _NEVER
    literal = _literal(target)
    if literal is None:
        return None
    if op == "=":
        return {field: {"$eq": literal, "$not": _NOT_ARRAY}}
    if op == "!=":
        return {"$or": [{field: {"$ne": literal}}, {field: _NOT_ARRAY}]}
    if type(target) is bytes:
        return None  # MongoDB orders binary data by length first, compare.py by content
    return {field: {"$type": _TYPE_ALIAS[type(target)], _RANGE_OPS[op]: literal, "$not": _NOT_ARRAY}}


class Translation:
    """What of a query MongoDB can answer exactly, and the Mongo spelling of it.

    ``match``
        the filter document (user values only ever appear as ``$eq``/``$ne``/
        ``$lt``... operands, never as operators or field names).
    ``filtered``
        every filter is in ``match``; otherwise the engine re-checks them all.
    ``never``
        some filter can hold for no object (``x < None``): the answer is empty.
    ``orders``
        ``(stored field, direction, direct)`` per order level that matters,
        or None when the orders cannot be pushed at all. ``direct`` levels are
        sorted on the field itself, since the filters leave it one class that
        MongoDB orders as compare.py does; the others need the computed
        rank/value keys of :meth:`pipeline_stages`.
    """

    def __init__(self, query: Query) -> None:
        clauses: list[Any] = []
        self.filtered = True
        self.never = False
        # stored field -> what the pushed filters leave of it: "equal" (one value, so
        # ordering on it orders nothing) or the one class ("number", ...) all its values have
        narrowed: dict[str, str] = {}
        custom = query.object_getattr is not None
        for flt in query.filters:
            field = escape_field(flt.field)
            clause = None if custom else _clause(field, flt.op, flt.value)
            if clause is _NEVER:
                self.never = True
            elif clause is None:
                self.filtered = False
            else:
                clauses.append(clause)
                if flt.op == "=" or (flt.value is None and flt.op != "!="):
                    narrowed[field] = "equal"
                elif flt.op != "!=":
                    narrowed.setdefault(field, _TYPE_ALIAS[type(flt.value)])
        self.match: Document = {} if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        self.orders: list[tuple[str, int, bool]] | None = None if custom else []
        seen: set[str] = set()
        for order in [] if custom else query.orders:
            field = escape_field(order.field)
            known = narrowed.get(field)
            if field in seen or known == "equal":
                continue  # every value ties on this level: it orders nothing
            seen.add(field)
            assert self.orders is not None
            # Range filters are pushed only for bool, number and str targets, the
            # classes MongoDB orders within exactly as compare.py does.
            self.orders.append((field, 1 if order.ascending else -1, known is not None))

    @property
    def computed(self) -> list[str]:
        """The ordered fields whose classes the filters leave open."""
        return [field for field, _, direct in self.orders or () if not direct]

    def unsortable(self) -> Document:
        """Matches the objects whose computed order fields hold a class MongoDB cannot rank.

        Binary data (ordered by length first in MongoDB) and any BSON type
        MongoDatastore does not write.
        """
        return self._matched_where(
            {f: {"$exists": True, "$not": {"$type": _SORTABLE_TYPES}}} for f in self.computed)

    def off_class(self, classes: Mapping[str, str]) -> Document:
        """Matches the objects where a field of ``classes`` holds a value outside its class.

        ``classes`` maps computed order fields to a ``$type`` alias of
        :data:`_NATIVE_CLASS`; null and a missing field are inside every
        class, since both rank first in MongoDB and in compare.py alike. An
        array is outside each: ``$type`` also matches an array's elements,
        and MongoDB sorts an array by its least or greatest element.
        """
        return self._matched_where(test for f, c in classes.items() for test in (
            {f: {"$exists": True, "$not": {"$type": ["null", c]}}}, {f: _NOT_ARRAY}))

    def _matched_where(self, tests: Iterable[Document]) -> Document:
        """The objects the filters match on which at least one of ``tests`` holds."""
        listed = list(tests)
        test: Document = listed[0] if len(listed) == 1 else {"$or": listed}
        return {"$and": [self.match, test]} if self.match else test

    def sort_directly(self) -> None:
        """Sort every level on its field: each was found to hold one class (see :meth:`off_class`)."""
        self.orders = [(field, direction, True) for field, direction, _ in self.orders or ()]

    def sort(self) -> Document:
        """The ``$sort`` document: each level, then the key (``_id``) for tree order."""
        spec: Document = {}
        for i, (field, direction, direct) in enumerate(self.orders or ()):
            if direct:
                spec[field] = direction
            else:
                spec[f"~~r{i}"] = direction
                spec[f"~~v{i}"] = direction
        spec["_id"] = 1
        return spec

    def pipeline_stages(self) -> Document:
        """``$addFields`` computing compare.py's sort key for each computed level.

        ``~~rN`` is the class rank (None/missing < bool < number < str <
        bytes < list < dict < other) and ``~~vN`` the value within the class
        (null for lists and dicts, which tie). Stored field names never start
        with ``~~`` followed by a non-hex letter, so these cannot clash.
        """
        fields: Document = {}
        for i, (field, _, direct) in enumerate(self.orders or ()):
            if direct:
                continue
            kind = {"$type": "$" + field}
            fields[f"~~r{i}"] = {
                "$switch": {
                    "branches": [
                        {"case": {"$in": [kind, ["missing", "null"]]}, "then": 0},
                        {"case": {"$eq": [kind, "bool"]}, "then": 1},
                        {"case": {"$in": [kind, ["int", "long", "double", "decimal"]]}, "then": 2},
                        {"case": {"$eq": [kind, "string"]}, "then": 3},
                        {"case": {"$eq": [kind, "binData"]}, "then": 4},
                        {"case": {"$eq": [kind, "array"]}, "then": 5},
                        {"case": {"$eq": [kind, "object"]}, "then": 6},
                    ],
                    "default": 7,
                }
            }
            fields[f"~~v{i}"] = {"$cond": [{"$in": [kind, ["array", "object"]]}, None, "$" + field]}
        return fields


# -- the store -----------------------------------------------------------------------------


@contextmanager
def _errors(action: str) -> Iterator[None]:
    """Driver failures as the library's errors, the driver's exception chained."""
    try:
        yield
    except ConnectionFailure as exc:
        raise ConnectionFailed(f"MongoDB: {action} failed, server unreachable: {exc}") from exc
    except PyMongoError as exc:
        raise BackendError(f"MongoDB: {action} failed: {exc}") from exc


class MongoDatastore(Datastore):
    """Objects in MongoDB: ``MongoDatastore(client.test_db)`` or ``MongoDatastore(url)``.

    ``collection_prefix`` starts every collection name the store uses, so
    stores with different prefixes share a database. ``transactions``
    decides whether a batch is one multi-document transaction: ``None``
    (default) uses them when the server is a replica-set member or mongos,
    which are the deployments that have them. Extra keywords go to
    ``pymongo.MongoClient`` when the store builds its own client from a URL;
    a store closes only a client it built.
    """

    def __init__(
        self,
        database: Database[Any] | str,
        *,
        collection_prefix: str = DEFAULT_PREFIX,
        transactions: bool | None = None,
        **client_options: Any,
    ) -> None:
        if transactions is not None and not isinstance(transactions, bool):
            raise TypeError(f"transactions must be True, False or None, not {transactions!r}")
        self._owns_client = isinstance(database, str)
        if isinstance(database, str):
            database = _database_from_url(database, client_options)
        elif client_options:
            raise TypeError(
                f"client options {sorted(client_options)} apply only when MongoDatastore builds"
                " its client from a URL; configure your MongoClient instead"
            )
        try:
            self._setup(database, collection_prefix, transactions)
        except BaseException:
            if self._owns_client:
                database.client.close()
            raise

    def _setup(self, database: Any, collection_prefix: Any, transactions: bool | None) -> None:
        if not isinstance(database, Database):
            raise TypeError(
                "MongoDatastore takes a pymongo Database (client.db_name) or a mongodb:// URL,"
                f" not {type(database).__name__}"
            )
        if not database.write_concern.acknowledged:
            raise ValueError(
                "MongoDatastore needs acknowledged writes (w >= 1): with w=0 a put could return"
                " before, or without, the server storing it"
            )
        self._database: Database[Any] = database
        self._prefix = _check_prefix(collection_prefix, database.name)
        self._transactions = transactions
        self._collections: dict[str, Collection[Document]] = {}
        self._registered: set[str] = set()
        self._registry = database.get_collection(self._prefix + "-paths", CODEC_OPTIONS)
        self._closed = False
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def database(self) -> Database[Any]:
        """The pymongo Database the store writes to."""
        return self._database

    @property
    def collection_prefix(self) -> str:
        return self._prefix

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this MongoDatastore was closed; open a new one")

    def _collection(self, path: str) -> Collection[Document]:
        found = self._collections.get(path)
        if found is None:
            name = collection_name(path, self._prefix, self._database.name)
            found = self._database.get_collection(name, CODEC_OPTIONS)
            self._collections[path] = found
        return found

    def collection_for(self, key: KeyLike) -> Collection[Document]:
        """The Mongo collection that holds ``key`` (for inspection and indexes of your own)."""
        return self._collection(_path_of(write_key(key)))

    def _register(self, paths: Iterable[str]) -> None:
        """Record new collection paths in the registry (before writing to them)."""
        new = sorted(set(paths) - self._registered)
        if not new:
            return
        with _errors("registering collections"):
            try:
                self._registry.bulk_write(
                    [pymongo.ReplaceOne({"_id": p}, {"_id": p}, upsert=True) for p in new],
                    ordered=False,
                )
            except BulkWriteError as exc:  # another writer registered the same path first
                details = exc.details
                if details.get("writeConcernErrors") or any(
                    e.get("code") != 11000 for e in details.get("writeErrors", ())
                ):
                    raise
        with self._lock:
            self._registered.update(new)

    def _paths_under(self, key: Key) -> list[str]:
        """Registered collection paths in the recursive scope of ``key``."""
        base = key._string
        below = "/" if base == "/" else base + "/"
        # Strings that start with base + "/" sort from there up to base + "0" ("0" follows "/").
        flt: Document = (
            {} if base == "/" else {"$or": [{"_id": base}, {"_id": {"$gte": below, "$lt": base + "0"}}]}
        )
        with _errors("listing collections"):
            found = [doc["_id"] for doc in self._registry.find(flt)]
        # Only paths of this scope, whatever else the registry collection holds.
        return sorted(
            path for path in found if isinstance(path, str) and (path == base or path.startswith(below))
        )

    def _use_transactions(self) -> bool:
        if self._transactions is None:
            with _errors("asking the server for its topology"):
                hello = self._database.client.admin.command("hello")
            self._transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
        return self._transactions

    def _encoded(self, pairs: Iterable[Pair]) -> dict[str, list[tuple[str, RawBSONDocument]]]:
        """Puts grouped by collection path, every value encoded (so checked) first."""
        groups: dict[str, list[tuple[str, RawBSONDocument]]] = {}
        for key, value in pairs:
            document = encode_document(key, value)
            groups.setdefault(_path_of(key), []).append((key._string, document))
        return groups

    def _grouped(self, keys: Iterable[Key]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for key in keys:
            if len(key._string) > 1:
                groups.setdefault(_path_of(key), []).append(_key_text(key))
        return groups

    def _write(
        self,
        puts: Mapping[str, list[tuple[str, RawBSONDocument]]],
        deletes: Mapping[str, list[str]],
        session: Any = None,
    ) -> None:
        """One ``bulk_write`` per collection touched.

        Unordered outside a transaction (the server may apply the operations
        in parallel; they touch distinct keys). Inside one it is ordered: the
        first write error aborts the transaction on the server, and an
        unordered batch would go on sending operations that then fail as
        "NoSuchTransaction", a *transient* error the driver retries for two
        minutes.
        """
        for path in sorted(set(puts) | set(deletes)):
            ops: list[Any] = [
                pymongo.ReplaceOne({"_id": string}, document, upsert=True)
                for string, document in puts.get(path, ())
            ]
            gone = deletes.get(path)
            if gone:
                ops.append(pymongo.DeleteMany({"_id": {"$in": gone}}))
            self._collection(path).bulk_write(ops, ordered=session is not None, session=session)

    # -- the contract -----------------------------------------------------------------------

    def get(self, key: KeyLike) -> Any:
        self._check_open()
        key = to_key(key)
        if len(key._string) == 1:
            return None
        with _errors("get"):
            document = self._collection(_path_of(key)).find_one({"_id": _key_text(key)})
        return None if document is None else decode_document(document)[1]

    def contains(self, key: KeyLike) -> bool:
        self._check_open()
        key = to_key(key)
        if len(key._string) == 1:
            return False
        with _errors("contains"):
            found = self._collection(_path_of(key)).find_one({"_id": _key_text(key)}, projection={"_id": 1})
        return found is not None

    def put(self, key: KeyLike, value: Any) -> None:
        self._check_open()
        key = write_key(key)
        document = encode_document(key, value)
        path = _path_of(key)
        self._register((path,))
        with _errors("put"):
            self._collection(path).replace_one({"_id": key._string}, document, upsert=True)

    def delete(self, key: KeyLike) -> None:
        self._check_open()
        key = to_key(key)
        if len(key._string) == 1:
            return
        with _errors("delete"):
            self._collection(_path_of(key)).delete_one({"_id": _key_text(key)})

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        self._check_open()
        wanted = [to_key(k) for k in keys]
        found: dict[str, Any] = {}
        with _errors("get_many"):
            for path, strings in self._grouped(wanted).items():
                cursor = self._collection(path).find({"_id": {"$in": strings}})
                for document in cursor:
                    key, value = decode_document(document)
                    found[key._string] = value
        return [found.get(key._string) for key in wanted]

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self._check_open()
        groups = self._encoded(items_of(items))
        if not groups:
            return
        self._register(groups)
        with _errors("put_many"):
            self._write(groups, {})

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        self._check_open()
        groups = self._grouped(to_key(k) for k in keys)
        if groups:
            with _errors("delete_many"):
                self._write({}, groups)

    def _apply_batch(self, puts: list[Pair], deletes: list[Key]) -> None:
        """A batch is one transaction where the server has them, else unordered bulk writes."""
        self._check_open()
        put_groups = self._encoded(puts)
        delete_groups = self._grouped(deletes)
        self._register(put_groups)
        with _errors("batch"):
            if not self._use_transactions():
                self._write(put_groups, delete_groups)
                return
            with self._database.client.start_session() as session:
                session.with_transaction(lambda s: self._write(put_groups, delete_groups, session=s))

    def query(self, query: Query) -> Cursor:
        self._check_open()
        if query.limit == 0:
            return engine.run(query, ())
        _key_text(query.key)
        if not query.recursive:
            return self._query_collection(query, query.key._string)
        paths = self._paths_under(query.key)
        if not paths:
            return engine.run(query, ())
        if len(paths) == 1:
            return self._query_collection(query, paths[0])
        parts = []
        for path in paths:
            sub = query.copy()
            sub.key, sub.recursive = Key._from_normal(path), False
            parts.append((self, sub, _same_key))
        return merge_queries(query, parts)

    def _query_collection(self, query: Query, path: str) -> Cursor:
        """Answer ``query`` over the one Mongo collection of ``path``."""
        plan = Translation(query)
        if plan.never:
            return engine.run(query, ())
        collection = self._collection(path)
        ordered = not query.orders
        if query.orders and plan.orders is not None:
            ordered = not plan.computed or self._sortable(collection, plan)
        limited = plan.filtered and ordered and query.limit is not None
        keys_only = query.keys_only and plan.filtered and ordered
        limit = query.offset + query.limit if limited and query.limit is not None else 0
        sort = plan.sort() if query.orders and ordered else None
        projection = {"_id": 1} if keys_only else None

        def pairs() -> Iterator[Pair]:
            with _errors("query"):
                documents: Iterable[Document]
                if sort is not None and plan.computed:
                    computed = plan.pipeline_stages()
                    stages: list[Document] = [{"$match": plan.match}] if plan.match else []
                    stages += [{"$addFields": computed}, {"$sort": sort}]
                    if limit:
                        stages.append({"$limit": limit})
                    stages.append({"$project": projection or dict.fromkeys(computed, 0)})
                    documents = collection.aggregate(stages)
                else:
                    documents = collection.find(
                        plan.match,
                        projection,
                        sort=list(sort.items()) if sort else None,
                        limit=limit,
                    )
                for document in documents:
                    if keys_only:
                        yield _document_key(document), None
                    else:
                        yield decode_document(document)

        return engine.run(
            query, pairs(), scoped=True, filtered=plan.filtered, ordered=ordered, limited=limited
        )

    @staticmethod
    def _sortable(collection: Collection[Any], plan: Translation) -> bool:
        """Whether MongoDB can put the matched objects in compare.py's order, and how.

        The filters leave the classes of the computed order fields open, but
        a field usually holds one class (numbers, most often): then MongoDB's
        own sort is compare.py's, the levels become direct (a plain ``find``
        with ``sort``, which an index on the field can serve) and the
        computed rank/value keys (an aggregation, 2-3x the time of the
        ``find`` on the test server) are not needed. Each probe asks for one
        object breaking the classes guessed so far (numbers first, then the
        class of the value found); a field found holding a second class, or
        a class MongoDB orders differently, falls back to the computed keys,
        after one probe that no value is of a class MongoDB cannot rank.
        """
        classes = dict.fromkeys(plan.computed, "number")
        settled: set[str] = set()
        with _errors("query"):
            while True:
                found = collection.find_one(plan.off_class(classes), projection=list(classes))
                if found is None:
                    plan.sort_directly()
                    return True
                held = [(f, type(v)) for f in classes if (v := found.get(f)) is not None]
                if any(kind not in _NATIVE_CLASS for _, kind in held):
                    break
                changed = {f: _NATIVE_CLASS[kind] for f, kind in held
                           if _NATIVE_CLASS[kind] != classes[f]}
                if not changed or not settled.isdisjoint(changed):
                    break
                classes.update(changed)
                settled.update(changed)
            return collection.find_one(plan.unsortable(), projection={"_id": 1}) is None

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Mark the store closed; close the client only if the store built it from a URL."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            self._database.client.close()

    def __repr__(self) -> str:
        return f"<MongoDatastore database={self._database.name!r} collection_prefix={self._prefix!r}>"


def _same_key(key: Key) -> Key:
    return key


def _document_key(document: Document) -> Key:
    string = document.get("_id")
    if not isinstance(string, str):
        raise BackendError(f"a document with _id {string!r} is not one MongoDatastore wrote")
    return Key(string)


# -- URLs -----------------------------------------------------------------------------------

#: Query-string options that belong to the store; every other one is pymongo's.
_STORE_OPTIONS = ("collection_prefix", "transactions")


def _parse_transactions(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in ("", "auto"):
        return None
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"URL option transactions={text!r}: use true, false or auto")


def _split_url(url: str) -> tuple[str, dict[str, Any]]:
    """The URL without the store's own options, and those options (typed)."""
    parts = urlsplit(url)
    ours: dict[str, Any] = {}
    theirs = []
    for name, text in parse_qsl(parts.query, keep_blank_values=True):
        if name == "collection_prefix":
            ours[name] = text
        elif name == "transactions":
            ours[name] = _parse_transactions(text)
        else:
            theirs.append((name, text))
    if not ours:
        return url, ours
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours


def _database_from_url(url: str, client_options: Mapping[str, Any]) -> Database[Any]:
    if not url.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError(f"not a MongoDB URL (mongodb://host:port/db): {url!r}")
    try:
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(url, **client_options)
    except ConfigurationError as exc:
        raise ValueError(f"bad MongoDB URL or client option: {exc}") from exc
    try:
        return client.get_default_database()
    except ConfigurationError:
        client.close()
        raise ValueError(
            f"the MongoDB URL {url!r} names no database; add one: mongodb://host:27017/mydb"
        ) from None


def from_url(url: str, **options: Any) -> MongoDatastore:
    """Opener for ``mongodb://host:port/db`` (and ``mongodb+srv://``).

    ``?collection_prefix=`` and ``?transactions=true|false|auto`` are the
    store's; every other query option is pymongo's (``replicaSet``,
    ``authSource``, ``w`` ...). Keyword ``options`` win over the URL's.
    """
    client_url, ours = _split_url(url)
    for name in _STORE_OPTIONS:
        if name in options:
            ours[name] = options.pop(name)
    return MongoDatastore(client_url, **ours, **options)
