"""A store in a LevelDB database, through plyvel (whose wheel bundles LevelDB).

LevelDB is an ordered map of bytes to bytes, so the whole design is the
byte layout of the keys: each object's LevelDB key is its collection's path
followed by its last namespace, arranged so that the objects of one
collection are contiguous and so are the objects of a collection and all the
collections below it. A collection query and a recursive query are each one
prefix range scan of a snapshot. Batches and bulk writes are one LevelDB
``WriteBatch``, applied atomically.

Layout, durability and the one-process rule are described in
``docs/stores/leveldb.rst``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

from . import serialize
from .core import engine
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, to_key
from .core.query import Cursor, Query
from .corrupt import decode_value, decode_values
from .drivers import require
from .errors import BackendError, ClosedError
from .urlparams import parse_bool, parse_serializer, read_options, url_path

plyvel = require("plyvel", backend="LevelDBDatastore", extra="leveldb")

#: What plyvel raises on failure: its own errors, and RuntimeError once its database is closed.
_FAILURES = (plyvel.Error, RuntimeError)

__all__ = [
    "LevelDBDatastore",
    "collection_prefix",
    "decode_key",
    "encode_key",
    "from_url",
    "recursive_prefix",
]

# Key strings never hold NUL, so their UTF-8 bytes never hold 0x00: a 0x00
# byte in a LevelDB key is always one of these two markers, and the layout
# parses without escaping. Both start with 0x00, below every byte a name can
# have, so "/a" + marker sorts before "/ab" and a prefix ending in 0x00 never
# reaches into a sibling whose name merely starts the same way.
_NAME = b"\x00\x01"  # between a collection's path and an object's last namespace
_CHILD = b"\x00\x02"  # between the namespaces of a collection's path


def _path_bytes(path: str) -> bytes:
    """The layout of a collection path string (``/a/b`` -> ``a 00 02 b``; ``/`` -> empty)."""
    return path[1:].encode("utf-8").replace(b"/", _CHILD)


def encode_key(key: Key) -> bytes:
    """The LevelDB key of an object: ``path(key.path) + 00 01 + last namespace``.

    ``/a/b`` is ``a 00 01 b``; ``/a:b`` (also in collection ``/a``) is
    ``a 00 01 a:b``; ``/a/T:x`` is ``a 00 02 T 00 01 T:x``.
    """
    string = key._string
    cut = string.rfind("/")
    last = string[cut + 1 :]
    colon = last.find(":")
    path = (string[:cut] or "/") if colon < 0 else string[: cut + 1] + last[:colon]
    return _path_bytes(path) + _NAME + last.encode("utf-8")


def decode_key(data: bytes) -> Key:
    """The key whose :func:`encode_key` is ``data`` (ValueError if it is not one)."""
    head, sep, tail = data.partition(_NAME)
    if not sep or not tail or b"\x00" in tail:
        raise ValueError(f"not a key of this store's layout: {data!r}")
    path = "/" + head.replace(_CHILD, b"/").decode("utf-8")
    last = tail.decode("utf-8")
    # A typed last namespace: the path ends with the type, which the key does not repeat.
    parent = path[: path.rfind("/")] if ":" in last else path.rstrip("/")
    key = Key(parent + "/" + last)
    if encode_key(key) != data:
        raise ValueError(f"not a key of this store's layout: {data!r}")
    return key


def collection_prefix(collection: Key) -> bytes:
    """The prefix shared by exactly the objects whose ``key.path`` is ``collection``."""
    return _path_bytes(collection._string) + _NAME


def recursive_prefix(collection: Key) -> bytes:
    """The prefix shared by exactly the objects whose path is ``collection`` or below it."""
    if collection.is_root:
        return b""
    return _path_bytes(collection._string) + b"\x00"


class LevelDBDatastore(Datastore):
    """``LevelDBDatastore(path_or_db, serializer=json, *, sync=False, **plyvel_options)``.

    ``path_or_db`` is a directory (opened with ``create_if_missing=True``
    unless told otherwise, and closed by :meth:`close`) or an open
    ``plyvel.DB`` / prefixed database (left open by :meth:`close`; its
    owner closes it). The store expects the key range it is given to be its
    own. ``sync=True`` makes every write wait for the disk (durable against
    power loss); without it a returned write is in LevelDB's log and survives
    a crash of the process. LevelDB admits one process per database.
    """

    def __init__(
        self,
        path_or_db: Any,
        serializer: Any = serialize.json,
        *,
        sync: bool = False,
        create_if_missing: bool = True,
        **options: Any,
    ) -> None:
        self._serializer = serialize.as_bytes_serializer(serializer)
        self.sync = bool(sync)
        if isinstance(path_or_db, (str, os.PathLike)):
            self.path: str | None = os.path.abspath(os.fspath(path_or_db))
            try:
                self._db: Any = plyvel.DB(
                    self.path, create_if_missing=create_if_missing, **options
                )
            except plyvel.IOError as exc:
                if "lock" in str(exc).lower():
                    raise BackendError(
                        f"the LevelDB database {self.path!r} is already open (in another"
                        " process, or another LevelDBDatastore in this one); LevelDB admits"
                        " one process per database: share one store object between threads,"
                        " or use a server-backed store for several processes"
                    ) from exc
                raise BackendError(f"cannot open LevelDB at {self.path!r}: {exc}") from exc
            except plyvel.Error as exc:
                raise BackendError(f"cannot open LevelDB at {self.path!r}: {exc}") from exc
            self._owned = True
        elif all(
            callable(getattr(path_or_db, name, None))
            for name in ("get", "put", "delete", "iterator", "snapshot", "write_batch")
        ):
            if options or not create_if_missing:
                raise ValueError("plyvel options apply only when the store opens the database")
            self.path = None
            self._db = path_or_db
            self._owned = False
        else:
            raise TypeError(
                "LevelDBDatastore takes a directory path or an open plyvel database,"
                f" not {type(path_or_db).__name__}"
            )
        self._closed = False

    # -- plumbing --------------------------------------------------------------------

    # The hot paths below call ``_live`` and catch ``_FAILURES`` themselves:
    # a generator context manager per call costs a third of a plyvel get.

    def _live(self) -> Any:
        """The open database, or ClosedError once the store is closed."""
        if self._closed:
            raise ClosedError("this LevelDBDatastore was closed; open a new one")
        return self._db

    def _reraise(self, exc: BaseException) -> NoReturn:
        """Raise LevelDB's failure ``exc`` as BackendError/ClosedError (called in its except block)."""
        if isinstance(exc, plyvel.Error):
            raise BackendError(f"LevelDB failed: {exc}") from exc
        if "closed" in str(exc).lower():  # plyvel's "Database is closed" (by its owner)
            raise ClosedError(f"the LevelDB database was closed: {exc}") from exc
        raise exc

    @contextmanager
    def _engine(self) -> Iterator[Any]:
        """The open database; LevelDB's failures surface as BackendError/ClosedError."""
        db = self._live()
        try:
            yield db
        except _FAILURES as exc:
            self._reraise(exc)

    def _where(self, key: Key) -> str:
        return f"LevelDB {self.path or 'database'} key {key}"

    def _decode(self, key: Key, data: bytes | None) -> Any:
        return None if data is None else decode_value(self._serializer, data, self._where(key))

    # -- single objects --------------------------------------------------------------

    def get(self, key: KeyLike) -> Any:
        if key.__class__ is not Key:
            key = to_key(key)
        if len(key._string) == 1:  # the root key holds no value
            return None
        db = self._live()
        try:
            data = db.get(encode_key(key))
        except _FAILURES as exc:
            self._reraise(exc)
        return self._decode(key, data)

    def contains(self, key: KeyLike) -> bool:
        if key.__class__ is not Key:
            key = to_key(key)
        if len(key._string) == 1:
            return False
        db = self._live()
        try:
            return db.get(encode_key(key)) is not None
        except _FAILURES as exc:
            self._reraise(exc)

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        check_value(value)
        data = self._serializer.dumps(value)
        db = self._live()
        try:
            db.put(encode_key(key), data, sync=self.sync)
        except _FAILURES as exc:
            self._reraise(exc)

    def delete(self, key: KeyLike) -> None:
        if key.__class__ is not Key:
            key = to_key(key)
        if len(key._string) == 1:
            return
        db = self._live()
        try:
            db.delete(encode_key(key), sync=self.sync)
        except _FAILURES as exc:
            self._reraise(exc)

    # -- bulk and batches -------------------------------------------------------------

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        wanted = [k if k.__class__ is Key else to_key(k) for k in keys]
        if not wanted:
            return []
        with self._engine() as db:
            snapshot = db.snapshot()  # one consistent view for the whole call
            try:
                get = snapshot.get
                found = [None if len(k._string) == 1 else get(encode_key(k)) for k in wanted]
            finally:
                snapshot.close()
        return decode_values(self._serializer, found, lambda i: self._where(wanted[i]))

    def _write_batch(self, puts: list[tuple[Key, Any]], deletes: Iterable[Key]) -> None:
        """Encode every put, then apply puts and deletes as one atomic WriteBatch."""
        encoded = [(encode_key(key), data) for key, data in serialize.encode_items(self._serializer, puts)]
        removed = [encode_key(k) for k in deletes if not k.is_root]
        if not encoded and not removed:
            return
        with self._engine() as db, db.write_batch(transaction=True, sync=self.sync) as batch:
            for ldb_key, data in encoded:
                batch.put(ldb_key, data)
            for ldb_key in removed:
                batch.delete(ldb_key)

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self._write_batch(items_of(items), ())

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        self._write_batch([], [to_key(k) for k in keys])

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        self._write_batch(puts, deletes)

    # -- queries -------------------------------------------------------------------

    def query(self, query: Query) -> Cursor:
        prefix = (recursive_prefix if query.recursive else collection_prefix)(query.key)
        need_values = not query.keys_only or bool(query.filters) or bool(query.orders)
        with self._engine() as db:
            snapshot = db.snapshot()  # taken now: the query sees the store as of this call
        return engine.run(query, self._scan(snapshot, prefix, need_values), scoped=True)

    def _scan(self, snapshot: Any, prefix: bytes, need_values: bool) -> Iterator[tuple[Key, Any]]:
        """One range scan over ``prefix`` in ``snapshot``, decoding as it goes."""
        try:
            with self._engine():
                iterator = snapshot.iterator(prefix=prefix, include_value=need_values)
                try:
                    for item in iterator:
                        raw = item[0] if need_values else item
                        try:
                            key = decode_key(raw)
                        except (ValueError, UnicodeDecodeError) as exc:
                            raise BackendError(
                                f"the LevelDB key {raw!r} was not written by LevelDBDatastore;"
                                " give the store a database (or db.prefixed_db(...)) of its own"
                            ) from exc
                        yield key, (self._decode(key, item[1]) if need_values else None)
                finally:
                    iterator.close()
        finally:
            snapshot.close()

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the database if this store opened it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self._db.close()

    def __repr__(self) -> str:
        return f"<LevelDBDatastore {self.path or self._db!r}>"


def from_url(url: str, **options: Any) -> LevelDBDatastore:
    """Opener for ``leveldb:///abs/path`` (``leveldb://./rel``, ``leveldb://~/x``).

    Query options: ``sync``, ``create_if_missing`` (true/false) and
    ``serializer`` (json, prettyjson, msgpack, none).
    """
    kwargs = read_options(
        url,
        {"sync": parse_bool, "create_if_missing": parse_bool, "serializer": parse_serializer},
        options,
    )
    return LevelDBDatastore(url_path(url), **kwargs)
