"""SQLiteDatastore: the embedded default store, one SQLite file (or ``:memory:``).

It is :class:`datastore.sql.SQLDatastore` on SQLite, plus the options of a
store that holds bytes: ``serializer=`` (JSON by default, ``None`` for raw
bytes). One row per object (layout in :mod:`datastore.sqlquery`); JSON values
are stored as text so that queries run in SQL with ``json_extract`` and only
the requested page reaches Python.

Files are opened in WAL mode with ``synchronous=NORMAL`` and a busy timeout:
a ``put`` that returned survives a crash of the process, readers never wait
for a writer, and threads and processes share one file (writers take turns
within ``timeout`` seconds). Each bulk call and each batch is one
transaction. ``docs/stores/sqlite.rst`` has the details.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from .serialize import JSONSerializer, as_bytes_serializer
from .sql import SQLDatastore, sqlite_engine
from .sqlquery import Fields
from .urlparams import parse_int, parse_serializer, read_options

__all__ = ["SQLiteDatastore", "from_url", "sqlite_url"]

_DEFAULT: Any = object()

_PARSERS = {
    "table": lambda text, name: text,
    "serializer": parse_serializer,
    "timeout": lambda text, name: _parse_float(text, name),
    "synchronous": lambda text, name: text,
    "pool_size": parse_int,
    "indexes": lambda text, name: [f for f in text.split(",") if f],
}


def _parse_float(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"URL option {name}={text!r} is not a number of seconds") from None


class SQLiteDatastore(SQLDatastore):
    """Objects in one table of a SQLite file: ``SQLiteDatastore('data.db')``.

    ``path``
        the database file (created if absent; its directory must exist), or
        ``':memory:'`` for a private in-memory database shared by the threads
        of this store.
    ``table``
        the table name (letters, digits, ``_``); several stores may share a
        file with different tables.
    ``serializer``
        JSON by default: values are JSON text that queries read in SQL. Any
        other serializer stores bytes (BLOB) and queries read fields in
        Python; ``None`` stores raw ``bytes`` values only.
    ``timeout``
        seconds a writer waits for another connection's write lock.
    ``synchronous``
        ``NORMAL`` (default: durable against a process crash), ``FULL`` or
        ``EXTRA`` (also against power loss, slower).
    ``pool_size``
        how many connections (hence concurrent readers) the store keeps.
    ``indexes``
        fields to index when the store opens (see
        :meth:`~datastore.sql.SQLDatastore.create_index`): a query ordered by
        an indexed field walks the index and stops after its page.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        table: str = "datastore",
        *,
        serializer: Any = _DEFAULT,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
        pool_size: int = 8,
        indexes: Iterable[str] = (),
    ) -> None:
        target = os.fspath(path)
        if not isinstance(target, str):
            raise TypeError(f"path must be a str or os.PathLike of str, not {type(path).__name__}")
        if not target:
            raise ValueError("path is empty: name a database file, or ':memory:'")
        chosen = as_bytes_serializer() if serializer is _DEFAULT else as_bytes_serializer(serializer)
        if isinstance(chosen, JSONSerializer):
            fields = Fields.JSON
        elif serializer is None:
            fields = Fields.NONE
        else:
            fields = Fields.OPAQUE
        engine = sqlite_engine(target, timeout=timeout, synchronous=synchronous,
                               pool_size=pool_size)
        self.path = target
        self._start(engine, table, chosen, fields, indexes=indexes)


def sqlite_url(url: str, overrides: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The database path a ``sqlite://`` URL names, and its typed options.

    ``sqlite:///relative.db`` is relative to the working directory,
    ``sqlite:////abs/path.db`` is absolute, and ``sqlite://``,
    ``sqlite://:memory:`` and ``sqlite:///:memory:`` are a new in-memory
    database. Percent-escapes in the path are decoded (write ``%25`` for
    ``%``, ``%3F`` for ``?``).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        raise ValueError(f"not a sqlite:// URL: {url!r}")
    location = rest.partition("?")[0]
    if "#" in location:
        raise ValueError(f"a sqlite:// URL has no #fragment; write '#' in a path as %23: {url!r}")
    if location in ("", ":memory:"):
        path = ":memory:"
    elif location.startswith("/"):
        path = unquote(location[1:])
        if not path:
            raise ValueError(
                f"{url!r} names no file: write sqlite:///relative.db, sqlite:////abs/path.db"
                " or sqlite://:memory:"
            )
    else:
        raise ValueError(
            f"a sqlite:// URL names a local file, not a host: write sqlite:///relative.db,"
            f" sqlite:////abs/path.db or sqlite://:memory: (got {url!r})"
        )
    return path, read_options(url, _PARSERS, overrides or {})


def from_url(url: str, **options: Any) -> SQLiteDatastore:
    """Opener for ``sqlite://`` URLs (see :func:`sqlite_url`); keyword options win."""
    path, merged = sqlite_url(url, options)
    return SQLiteDatastore(path, **merged)
