"""MemcachedDatastore: objects in memcached (pymemcache), with an index kept in memcached itself.

memcached holds opaque items under short ASCII keys and cannot list them, so
this store maps every key and keeps its own index:

* an object lives in the item ``PREFIX:k:<key>`` when its key is printable
  ASCII without spaces and fits memcached's 250-byte item keys, else in
  ``PREFIX:v:<blake2b of the key>``; the item's value is ``key + NUL +
  serialized value``, so that queries return the real key and a hash
  collision (or a foreign writer) is detected;
* the index is one append-only *log* per collection path and per ancestor
  of one: lines naming members of the collection (``key.path == path``,
  named by the last namespace of the key, see :mod:`datastore.indexing`)
  and child segments below it that lead to other collections. A log is a
  run of *segment* items, ``PREFIX:l:<blake2b of the path>`` and then the
  same key with ``.1``, ``.2``, ...; each starts with a header line naming
  the path, and the item ``PREFIX:t:<same hash>`` holds the number of the
  last segment (no item: only the first).

Writes cost one round trip whatever the collection size, because
memcached's ``append`` is atomic on the server. The server copies an item
to append to it, so a store moves on to a new segment (``incr`` of the
``t`` item) after appending SEGMENT_BYTES to one, or when one reaches
memcached's item size: an append copies a few KiB whatever the
collection's size, and a collection holds as many names as memcached has
memory:

* put: write the value, then append its name to the collection's current
  segment (``add`` creates a missing one). The first put of a collection
  by a store instance, or one that had to create a segment, also appends
  the child segment to each ancestor's log (and again every
  ``REGISTER_EVERY`` seconds, which repairs an evicted ancestor);
* delete: delete the value, nothing else. Queries fetch every listed value
  and drop the missing ones, so a name without a value is harmless.

A query that reads a log with many more lines than live members rewrites
each segment that loses lines (``cas`` on the token it read before
fetching the values), keeping a live name in the last segment that lists
it. It drops only names whose value it saw missing; a put of such a name
after that check appends *after* writing its value, which changes the
token of the segment it appends to (or goes to a segment the query did not
read), so that rewrite fails and loses nothing. What eviction does to
query results is documented in ``docs/stores/memcached.rst``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from .core import engine
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, string_of, to_key
from .core.query import Cursor, Query
from .corrupt import decode_value, decode_values
from .drivers import require
from .errors import BackendError, ClosedError, ConnectionFailed
from .indexing import (
    by_collection,
    decode_text,
    encode_all,
    encode_text,
    join_key,
    path_segments,
    split_key,
)
from .serialize import as_bytes_serializer, encode_values
from .serialize import json as _json
from .urlparams import parse_int, parse_serializer, read_options

_base = require("pymemcache.client.base", backend="MemcachedDatastore", extra="memcached")
_hash = require("pymemcache.client.hash", backend="MemcachedDatastore", extra="memcached")
_exceptions = require("pymemcache.exceptions", backend="MemcachedDatastore", extra="memcached")

__all__ = ["MemcachedDatastore", "from_url"]

#: What pymemcache raises: socket failures and its own errors.
_FAILURES = (OSError, _exceptions.MemcacheError)
#: Failures after which a call is sent once more (pymemcache reconnects by itself).
_RETRY_FOR = (OSError, _exceptions.MemcacheUnexpectedCloseError)

log = logging.getLogger(__name__)

T = TypeVar("T")

Pair = tuple[Key, Any]

#: memcached's default largest item (``-I 1m``).
DEFAULT_MAX_ITEM_SIZE = 1024 * 1024
#: Room left in an item for memcached's own header, key and CAS.
_ITEM_OVERHEAD = 400
#: Item keys fetched per multi-get (one round trip for a 1,000-key get_many).
CHUNK = 1000
#: Sets a bulk write formats and sends at a time (see ``_put_pipelined``).
STREAM = 250
#: Attempts to append to (or create) one log segment before giving up under contention.
CAS_ATTEMPTS = 100
#: Largest single append to a log (a big put_many appends in several steps).
APPEND_BYTES = 64 * 1024
#: Bytes a store appends to one log segment before it moves on to a new one.
SEGMENT_BYTES = 64 * 1024
#: A query rewrites a log with more lines than this when fewer than half are live.
COMPACT_MIN = 64
#: Collections whose log a store remembers (then it forgets them all and starts over).
LOG_KEYS_KEPT = 4096
#: Seconds after which a put re-lists its collection in the ancestors' logs (repairs eviction).
REGISTER_EVERY = 10.0
DEFAULT_PREFIX = "ds"
#: memcached's longest item key, in bytes.
MAX_ITEM_KEY = 250


# -- index logs -------------------------------------------------------------------------------

_MEMBER = b"n"
_CHILD = b"c"


#: A str as an ASCII JSON string literal: what ``json.dumps(str)`` returns, without its dispatch.
_json_string: Callable[[str], str] = getattr(json.encoder, "encode_basestring_ascii", json.dumps)


def _entry(kind: bytes, text: str) -> bytes:
    """One log line: kind, the text as ASCII JSON (keeps lone surrogates, escapes newlines), LF."""
    return kind + _json_string(text).encode("ascii") + b"\n"


def _digest(text: str) -> str:
    """The hash that names an item of ``text`` (a key or a path) that cannot name it itself."""
    return hashlib.blake2b(encode_text(text), digest_size=20).hexdigest()


def _usable_as_is(text: str) -> bool:
    """Whether ``text`` is printable ASCII without spaces: what memcached item keys may hold."""
    return text.isascii() and text.isprintable() and " " not in text


def _entries(kind: bytes, texts: list[str]) -> bytes:
    """``_entry`` of each text, joined: plain names (printable ASCII, no quote or
    backslash: a JSON string is then the name in quotes) in one join."""
    flat = "".join(texts)
    if flat.isascii() and flat.isprintable() and '"' not in flat and "\\" not in flat:
        lead = kind.decode("ascii") + '"'
        return (lead + ('"\n' + lead).join(texts) + '"\n').encode("ascii")
    return b"".join([_entry(kind, text) for text in texts])


def _header(path: str) -> bytes:
    """The first line of a log: its own path, so that a hash collision is detected on read."""
    return json.dumps(path).encode("ascii") + b"\n"


def _segment_number(data: bytes | None) -> int:
    """The number in a log's ``t`` item (0, the first segment, when it is missing)."""
    return int(data) if data is not None and bytes(data).isdigit() else 0


@dataclass
class _Tail:
    """Where a store appends to a collection's log: its item keys, and its current segment.

    ``segment`` is -1 until the store has read the log's ``t`` item;
    ``written`` counts the bytes this store appended to that segment.
    ``fresh`` says that :meth:`MemcachedDatastore._roll` numbered the segment
    by ``incr`` of an existing ``t`` item and nothing has been written to it
    yet: its first write is an ``add`` with the header (an ``append`` would
    be refused first, a round trip for nothing), and the log needs no new
    listing or ``t`` item. Threads of one store share it unlocked: a race
    costs at most an extra segment.
    """

    log_key: str
    top_key: str
    segment: int = -1
    written: int = 0
    fresh: bool = False

    def segment_key(self, number: int) -> str:
        return self.log_key if number == 0 else f"{self.log_key}.{number}"


@dataclass
class _Segment:
    """One parsed segment of a log: its lines, and the item key and CAS token it was read with."""

    path: str
    names: list[str]
    children: set[str]
    entries: int
    item_key: str = ""
    token: Any = None

    @classmethod
    def parse(cls, data: bytes) -> _Segment:
        lines = [line for line in bytes(data).split(b"\n") if line]
        # One JSON document for all lines: much faster than one json.loads per line.
        texts = json.loads(b"[" + b",".join(line[1:] for line in lines[1:]) + b"]")
        names = [text for line, text in zip(lines[1:], texts, strict=True) if line[:1] == _MEMBER]
        children = {text for line, text in zip(lines[1:], texts, strict=True) if line[:1] != _MEMBER}
        return cls(json.loads(lines[0]), names, children, len(texts))


@dataclass
class _Log:
    """A collection's log: its segments in order, members folded across them (first seen first)."""

    path: str
    segments: list[_Segment]
    names: list[str] = field(init=False)
    children: set[str] = field(init=False)
    entries: int = field(init=False)

    def __post_init__(self) -> None:
        self.names = list(dict.fromkeys(name for s in self.segments for name in s.names))
        self.children = set().union(*(s.children for s in self.segments))
        self.entries = sum(s.entries for s in self.segments)

    def rewrites(self, live: Collection[str]) -> Iterator[tuple[_Segment, bytes]]:
        """Each segment that loses lines, with its new content: its child segments,
        and the ``live`` members it is the last segment to list."""
        last = {name: i for i, s in enumerate(self.segments) for name in s.names}
        alive = set(live)
        for i, segment in enumerate(self.segments):
            keep = [n for n in dict.fromkeys(segment.names) if last[n] == i and n in alive]
            if len(keep) + len(segment.children) < segment.entries:
                parts = [_header(self.path)]
                parts += [_entry(_CHILD, c) for c in sorted(segment.children)]
                parts += [_entry(_MEMBER, n) for n in keep]
                yield segment, b"".join(parts)


def _child_path(path: str, segment: str) -> str:
    return "/" + segment if path == "/" else f"{path}/{segment}"


def _ancestors(path: str) -> list[tuple[str, str]]:
    """``(ancestor path, child segment it must list)`` from ``path``'s parent up to the root."""
    out: list[tuple[str, str]] = []
    current = "/"
    for segment in path_segments(path):
        out.append((current, segment))
        current = _child_path(current, segment)
    out.reverse()
    return out


# -- the store ---------------------------------------------------------------------------------


class MemcachedDatastore(Datastore):
    """A datastore on memcached: ``MemcachedDatastore('127.0.0.1:11211')`` or a pymemcache client.

    ``client_or_servers`` is a pymemcache client (``Client``, ``PooledClient``,
    ``HashClient`` or ``RetryingClient``: the store uses it as it is and leaves
    it open on :meth:`close`), or servers as ``'host:port'``,
    ``'host:port,host:port'``, ``(host, port)`` or a list of those, from which
    the store builds a pooled, retrying client (a ``HashClient`` over several
    servers). Values are serialized with ``serializer`` (JSON by default;
    ``None`` stores raw ``bytes``). Every item key starts with ``prefix``.
    ``max_item_size`` is the server's ``-I`` setting (1 MiB by default):
    larger values are refused with ValueError before anything is written.
    """

    def __init__(
        self,
        client_or_servers: Any,
        *,
        serializer: Any = _json,
        prefix: str = DEFAULT_PREFIX,
        max_item_size: int = DEFAULT_MAX_ITEM_SIZE,
        connect_timeout: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        if _is_servers(client_or_servers):
            self._client: Any = _build_client(
                _servers(client_or_servers), connect_timeout=connect_timeout, timeout=timeout
            )
            self._owns_client = True
        elif all(callable(getattr(client_or_servers, m, None)) for m in ("gets_many", "cas", "add")):
            self._client = client_or_servers
            self._owns_client = False
        else:
            raise TypeError(
                "MemcachedDatastore takes a pymemcache client or servers such as"
                f" '127.0.0.1:11211', not {type(client_or_servers).__name__}"
            )
        if not isinstance(prefix, str) or not prefix or len(prefix) > 100 or not all(
            33 <= ord(c) <= 126 for c in prefix
        ):
            raise ValueError(
                f"prefix must be 1-100 printable ASCII characters without spaces, not {prefix!r}"
            )
        if isinstance(max_item_size, bool) or not isinstance(max_item_size, int) or max_item_size < 4096:
            raise ValueError(f"max_item_size must be an int of at least 4096 bytes, not {max_item_size!r}")
        self._prefix = prefix
        #: Keys that are item keys as they are follow this head (see :meth:`_value_key`).
        self._direct_head = f"{prefix}:k:"
        self._direct_max = MAX_ITEM_KEY - len(self._direct_head)
        self._max_record = max_item_size - _ITEM_OVERHEAD
        self._serializer = as_bytes_serializer(serializer)
        self._loads = self._serializer.loads
        self._compact_min = COMPACT_MIN
        self._segment_bytes = SEGMENT_BYTES
        self._register_every = REGISTER_EVERY
        #: Collection path -> when this instance last listed it in its ancestors' logs.
        self._registered: dict[str, float] = {}
        #: The log of each collection used lately (its keys are hashes: every put needs one).
        self._tails: dict[str, _Tail] = {}

    # -- item keys ----------------------------------------------------------------------------

    def _item_key(self, kind: str, text: str) -> str:
        return f"{self._prefix}:{kind}:{_digest(text)}"

    def _value_key(self, key: Key) -> str:
        """The item key of ``key``'s value: the key itself where memcached can take it.

        memcached item keys are at most 250 bytes of printable ASCII without
        spaces: a key that is such a string (after the ``PREFIX:k:`` head) is
        used as it is, any other is hashed (``PREFIX:v:<blake2b>``). The two
        heads keep the two kinds apart, and each key has exactly one item key.
        Hashing cost a bulk write ~12% of its time (measured, pinned).
        """
        string = key._string
        if len(string) <= self._direct_max and _usable_as_is(string):
            return self._direct_head + string
        return self._item_key("v", string)

    def _value_keys(self, keys: Sequence[Key]) -> list[str]:
        """:meth:`_value_key` of each key, in one pass (a bulk call's hot path)."""
        strings = list(map(string_of, keys))
        if _usable_as_is("".join(strings)) and max(map(len, strings), default=0) <= self._direct_max:
            return list(map(self._direct_head.__add__, strings))
        return [self._value_key(key) for key in keys]  # some need hashing: key by key

    def _tail(self, path: str) -> _Tail:
        found = self._tails.get(path)
        if found is None:
            if len(self._tails) >= LOG_KEYS_KEPT:
                self._tails.clear()
            digest = _digest(path)
            found = self._tails[path] = _Tail(f"{self._prefix}:l:{digest}", f"{self._prefix}:t:{digest}")
        return found

    def _log_key(self, path: str) -> str:
        """The item key of the first segment of ``path``'s log."""
        return self._tail(path).log_key

    def _append_key(self, path: str) -> str:
        """The item key of the segment this store appends ``path``'s names to.

        The first call for a collection reads the log's ``t`` item (one round
        trip); a store that has appended SEGMENT_BYTES to its segment moves on.
        """
        tail = self._tail(path)
        if tail.segment < 0:
            with self._errors() as client:
                tail.segment = _segment_number(client.get(tail.top_key))
        if tail.written >= self._segment_bytes:
            self._roll(tail)
        return tail.segment_key(tail.segment)

    def _roll(self, tail: _Tail) -> None:
        """Move ``tail`` to a new segment: the next number of its log's ``t`` item.

        A missing ``t`` item (evicted, or a log written before the store
        had segments) is created with the number after the store's own.
        """
        with self._errors() as client:
            for _ in range(CAS_ATTEMPTS):
                number = client.incr(tail.top_key, 1, noreply=False)
                fresh = number is not None
                if number is None and client.add(
                    tail.top_key, b"%d" % (tail.segment + 1), noreply=False
                ):
                    number = tail.segment + 1
                if number is not None:
                    tail.segment, tail.written, tail.fresh = int(number), 0, fresh
                    return
        raise BackendError(f"could not start a new segment of {tail.log_key}: too much contention")

    # -- errors and lifecycle ------------------------------------------------------------------

    def _open_client(self) -> Any:
        """The client, or ClosedError once the store is closed."""
        client = self._client
        if client is None:
            raise ClosedError("this MemcachedDatastore was closed; open a new one")
        return client

    @staticmethod
    def _reraise(exc: BaseException) -> NoReturn:
        """Raise the library's error for the driver failure ``exc``, cause chained."""
        if isinstance(exc, (OSError, _exceptions.MemcacheUnexpectedCloseError)):
            raise ConnectionFailed(f"memcached is unreachable: {exc}") from exc
        raise BackendError(f"memcached failed: {exc}") from exc

    @contextmanager
    def _errors(self) -> Iterator[Any]:
        """Yield the client; turn driver failures into the library's errors, cause chained."""
        client = self._open_client()
        try:
            yield client
        except _FAILURES as exc:
            self._reraise(exc)

    def close(self) -> None:
        """Forget the client; close its connections if the store built it."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            client.close()

    # -- records --------------------------------------------------------------------------------

    def _record(self, key: Key, value: Any) -> bytes:
        """``key NUL serialized value``, refused with ValueError if memcached cannot hold it."""
        return self._framed(key, self._serializer.dumps(value))

    def _records(self, pairs: list[tuple[Key, Any]]) -> tuple[list[Key], list[bytes]]:
        """The keys of ``pairs`` and the :meth:`_record` of each, values and keys encoded as one batch each.

        A batch travels as two columns (keys, records) from here on: every
        later step wants one column or the other, and a list of pairs would
        be taken apart and rebuilt at each (~5% of a put_many).
        """
        if not pairs:
            return [], []
        keys, values = zip(*pairs, strict=True)
        datas = encode_values(self._serializer, list(values))
        records = [head + b"\x00" + data
                   for head, data in zip(encode_all(b"", keys), datas, strict=True)]
        if max(map(len, records)) > self._max_record:
            for key, data in zip(keys, datas, strict=True):
                self._framed(key, data)  # raises for the first that is too large
        return list(keys), records

    def _framed(self, key: Key, data: bytes) -> bytes:
        """``key NUL data``, refused with ValueError if memcached cannot hold it."""
        record = encode_text(key._string) + b"\x00" + data
        if len(record) > self._max_record:
            raise ValueError(
                f"the value for {key} takes {len(record)} bytes with its key; memcached items"
                f" hold at most {self._max_record} here: store it elsewhere or split it"
            )
        return record

    def _payload(self, key: Key, record: bytes) -> bytes:
        """The serialized value in ``record``, once its stored key is checked to be ``key``."""
        stored, _, data = bytes(record).partition(b"\x00")
        if stored != encode_text(key._string):
            raise BackendError(
                f"item {self._value_key(key)} holds {decode_text(stored)!r}, not {key}:"
                " a hash collision or a foreign writer under this prefix"
            )
        return data

    def _where(self, key: Key) -> str:
        return f"memcached item {self._value_key(key)} ({key})"

    def _where_nth(self, keys: Sequence[Key], i: int) -> str:
        return self._where(keys[i])

    # -- reads ------------------------------------------------------------------------------------

    def get(self, key: KeyLike) -> Any:
        if key.__class__ is not Key:
            key = to_key(key)
        if len(key._string) == 1:  # the root key holds no value
            return None
        record = self._record_of(key)
        if record is None:
            return None
        data = self._payload(key, record)
        try:
            return self._loads(data)
        except Exception:  # decode again, for the error that names the item
            return decode_value(self._serializer, data, self._where(key))

    def contains(self, key: KeyLike) -> bool:
        if key.__class__ is not Key:
            key = to_key(key)
        if len(key._string) == 1:
            return False
        record = self._record_of(key)
        return record is not None and self._payload(key, record) is not None

    def _record_of(self, key: Key) -> bytes | None:
        """The record stored for ``key`` (not the root), or None: a get's one round trip."""
        client = self._open_client()
        item_key = self._value_key(key)
        try:
            if client.__class__ is _ThreadClients and client.single_server:
                return client.retrieve([item_key]).get(item_key)
            return client.get(item_key)  # type: ignore[no-any-return]
        except _FAILURES as exc:
            self._reraise(exc)

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        wanted = [k if k.__class__ is Key else to_key(k) for k in keys]
        records = self._fetch([k for k in wanted if len(k._string) > 1])
        datas = [None if (r := records.get(k)) is None else self._payload(k, r) for k in wanted]
        return decode_values(self._serializer, datas, lambda i: self._where(wanted[i]))

    def _fetch(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        """The records of ``keys`` that exist, CHUNK keys per multi-get."""
        found: dict[Key, bytes] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            part = dict(zip(self._value_keys(chunk), chunk, strict=True))
            with self._errors() as client:
                if client.__class__ is _ThreadClients and client.single_server:
                    got = client.retrieve(list(part))
                else:
                    got = client.get_many(list(part))
            for item_key, record in got.items():
                found[part[item_key]] = record
        return found

    # -- writes -----------------------------------------------------------------------------------

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        check_value(value)
        # _put_records for one key, without its whole-batch steps: every put pays this.
        path, name = split_key(key)
        self._write_records({path: {name: key}}, {self._value_key(key): self._record(key, value)})

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self._put_records(*self._records(items_of(items)))

    def delete(self, key: KeyLike) -> None:
        if key.__class__ is not Key:
            key = to_key(key)
        if len(key._string) == 1:
            return
        self._delete_items([self._value_key(key)])

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        targets = list({k: None for k in (to_key(k) for k in keys) if not k.is_root})
        if targets:
            self._delete_keys(targets)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        keys, records = self._records(puts)
        if keys:
            self._put_records(keys, records)
        self.delete_many(deletes)

    def _put_records(self, keys: list[Key], records: list[bytes]) -> None:
        """Write the values, then append their names to the collection logs (see module doc).

        Values first: a log line then always follows the value it names, so a
        compaction that saw a value missing cannot lose a name written after
        (the append changes the log's CAS token and the compaction's ``cas`` fails).
        """
        if keys:
            # A key given twice is one item: its last record wins.
            self._write_records(by_collection(keys),
                                dict(zip(self._value_keys(keys), records, strict=True)))

    def _write_records(self, by_path: dict[str, dict[str, Key]], items: dict[str, bytes]) -> None:
        """:meth:`_put_records` of the records ``items`` (item key -> record) of the keys ``by_path``."""
        failed: list[str] = []
        client = self._open_client()
        if isinstance(client, _ThreadClients) and client.single_server:
            self._put_pipelined(client, by_path, items)
            return
        try:
            try:
                if len(items) <= CHUNK:
                    failed = client.set_many(items, noreply=False)
                else:
                    pairs = list(items.items())
                    for start in range(0, len(pairs), CHUNK):
                        failed += client.set_many(dict(pairs[start : start + CHUNK]), noreply=False)
            except _FAILURES as exc:
                self._reraise(exc)
        except BackendError:
            # The server refused an item: the ones it did store must still be listed.
            self._index_records(by_path)
            raise
        self._index_records(by_path)
        if failed:
            raise BackendError(f"memcached refused to store {len(failed)} item(s), e.g. {failed[0]}")

    def _put_pipelined(
        self, client: _ThreadClients, by_path: dict[str, dict[str, Key]], items: dict[str, bytes]
    ) -> None:
        """:meth:`_put_records` in one round trip per CHUNK values on the store's own connection.

        The sets and, after the last of them, one append per collection go
        out in one exchange: the same commands in the same order as the usual
        path, without waiting between them. A collection whose append is
        refused (its log missing or full), or whose names exceed one append,
        goes the usual way afterwards. The sets are formatted and sent
        STREAM at a time, so that the server stores the first ones while
        the next are formatted (1,000 values at 10k objects, pinned: 0.80-0.83x
        -> 0.86-0.88x of pymemcache's ``set_many``, which hides the server's
        time behind its own slower reading of the replies).
        """
        appends = [(path, _entries(_MEMBER, list(names))) for path, names in by_path.items()]
        writes = [(path, *self._log_write(path, lines))
                  for path, lines in appends if len(lines) <= APPEND_BYTES]
        tail = [_storage_command(name, item_key, data) for _, name, item_key, data in writes]
        pairs = list(items.items())

        def commands(start: int, end: int) -> Iterator[bytes]:
            """The sets of ``pairs[start:end]``, STREAM a part, the tail with the last part."""
            for at in range(start, end, STREAM):
                part = [b"set %b 0 0 %d\r\n%b\r\n" % (item_key.encode("ascii"), len(record), record)
                        for item_key, record in pairs[at : min(at + STREAM, end)]]  # _storage_command
                if at + STREAM >= end == len(pairs):
                    part += tail
                yield b"".join(part)

        replies: list[bytes] = []
        try:
            try:
                for start in range(0, len(pairs), CHUNK):
                    end = min(start + CHUNK, len(pairs))
                    count = end - start + (len(tail) if end == len(pairs) else 0)
                    replies += client.store_commands(commands(start, end), count)
            except _FAILURES as exc:
                self._reraise(exc)
        except BackendError:
            self._index_records(by_path)  # as the usual path: what was stored must be listed
            raise
        stored = replies[: len(pairs)]
        failed = ([] if stored.count(b"STORED") == len(pairs) else
                  [item_key for item_key, reply in zip(items, stored, strict=True) if reply != b"STORED"])
        done: set[str] = set()
        for (path, _, _, data), reply in zip(writes, replies[len(pairs) :], strict=True):
            state = self._tail(path)
            if reply == b"STORED":
                done.add(path)
                state.written += len(data)
            state.fresh = False  # written, or there after all: the usual path appends to it
        self._index_records(by_path, appended=done)
        if failed:
            raise BackendError(
                f"memcached refused to store {len(failed)} item(s), e.g. {failed[0]}:"
                f" {replies[list(items).index(failed[0])][:80]!r}"
            )

    def _log_write(self, path: str, lines: bytes) -> tuple[bytes, str, bytes]:
        """How ``lines`` go into ``path``'s log: an append, or a fresh segment's add with its header.

        ``(command name, item key, data)``.
        """
        item_key = self._append_key(path)
        if self._tail(path).fresh:
            return b"add", item_key, _header(path) + lines
        return b"append", item_key, lines

    def _index_records(self, by_path: dict[str, dict[str, Key]], appended: Collection[str] = ()) -> None:
        """Append the names of written records (:func:`by_collection`) to their logs; list new collections.

        ``appended``: the collections whose names are in their logs already
        (appended by :meth:`_put_pipelined`).
        """
        for path, names in by_path.items():
            created = False
            if path not in appended:
                for lines in self._batches([_entry(_MEMBER, n) for n in names]):
                    created = self._append(path, lines) or created
            listed = self._registered.get(path)
            if created or listed is None or time.monotonic() - listed > self._register_every:
                self._register(path)

    def _batches(self, lines: list[bytes]) -> Iterator[bytes]:
        """``lines`` joined into appends of at most APPEND_BYTES each."""
        batch: list[bytes] = []
        size = 0
        for line in lines:
            if batch and size + len(line) > APPEND_BYTES:
                yield b"".join(batch)
                batch, size = [], 0
            batch.append(line)
            size += len(line)
        if batch:
            yield b"".join(batch)

    def _register(self, path: str) -> None:
        """List ``path`` in each ancestor's log, deepest first (a listed child then exists)."""
        for parent, segment in _ancestors(path):
            self._append(parent, _entry(_CHILD, segment))
        self._registered[path] = time.monotonic()

    def _append(self, path: str, lines: bytes) -> bool:
        """Append ``lines`` to ``path``'s log, creating its segment if missing.

        memcached answers NOT_STORED both for a missing item (then ``add``
        creates it) and for an append that would outgrow the item size (then
        ``add`` fails too, and the store moves on to a new segment). True if
        it created a segment other than a fresh one (:class:`_Tail`): the
        log may be new or lost, and the caller lists the collection again.
        """
        tail = self._tail(path)
        client = self._open_client()
        for _ in range(CAS_ATTEMPTS):
            item_key = self._append_key(path)
            fresh, tail.fresh = tail.fresh, False
            try:
                if not fresh and client.append(item_key, lines, noreply=False):
                    tail.written += len(lines)
                    return False
                data = _header(path) + lines
                if client.add(item_key, data, noreply=False):
                    tail.written += len(data)
                    if fresh:  # numbered by incr of the t item: the log is known, t is past it
                        return False
                    # Readers find segments only up to the t item's number, and
                    # a roll numbers the next one by incr of it (then fresh).
                    client.add(tail.top_key, b"%d" % tail.segment, noreply=False)
                    return True
                if fresh:
                    continue  # the segment is there after all (a stale one): append to it
            except _FAILURES as exc:
                self._reraise(exc)
            self._roll(tail)  # full (or created and evicted meanwhile): a new segment
        raise BackendError(f"could not update the memcached index of {path}: too much contention")

    def _rewrite(self, log: _Log, live: Collection[str]) -> None:
        """Rewrite the segments of ``log`` that list dead or repeated names, each if nobody changed it."""
        # A failed cas means a writer appended since the read: its lines stay, nothing is lost.
        with self._errors() as client:
            for segment, data in log.rewrites(live):
                client.cas(segment.item_key, data, segment.token, noreply=False)

    def _delete_keys(self, keys: list[Key]) -> None:
        """Delete the values only: a name without a value is dropped by queries and compactions."""
        self._delete_items(self._value_keys(keys))

    def _delete_items(self, item_keys: list[str]) -> None:
        """Delete ``item_keys``, CHUNK a round trip, on the store's own connection where it can
        (pymemcache's ``delete_many`` spends more Python on each reply than the server does)."""
        client = self._open_client()
        for start in range(0, len(item_keys), CHUNK):
            chunk = item_keys[start : start + CHUNK]
            try:
                if client.__class__ is _ThreadClients and client.single_server:
                    command = "".join([f"delete {k}\r\n" for k in chunk]).encode("ascii")
                    _check_deleted(client.store_commands([command], len(chunk)))
                else:
                    client.delete_many(chunk, noreply=False)
            except _FAILURES as exc:
                self._reraise(exc)

    def _segment(self, path: str, item_key: str, data: bytes, token: Any) -> _Segment:
        """The segment of ``path``'s log read from ``item_key``, checked to be one of ``path``."""
        try:
            segment = _Segment.parse(data)
        except (ValueError, TypeError) as exc:
            raise BackendError(
                f"index item {item_key} of {path!r} is not an index log:"
                " a foreign writer under this prefix"
            ) from exc
        if segment.path != path:
            raise BackendError(
                f"index item {item_key} belongs to {segment.path!r}, not {path!r}:"
                " a hash collision or a foreign writer under this prefix"
            )
        segment.item_key, segment.token = item_key, token
        return segment

    # -- queries ------------------------------------------------------------------------------------

    def query(self, query: Query) -> Cursor:
        """Scope through the index logs; the naive engine filters, orders and pages.

        Objects whose value is gone (evicted or deleted) are skipped. A
        ``keys_only`` query without filters or orders still reads the values,
        because an index name alone does not prove the object exists.
        """
        if self._client is None:
            raise ClosedError("this MemcachedDatastore was closed; open a new one")
        pairs = self._scope_pairs(query.key._string, query.recursive)
        return engine.run(query, pairs, scoped=True)

    def _scope_pairs(self, path: str, recursive: bool) -> Iterator[Pair]:
        for log in self._logs(path, recursive):
            keys = [join_key(log.path, name) for name in log.names]
            live: list[str] = []
            for start in range(0, len(keys), CHUNK):
                part = keys[start : start + CHUNK]
                records = self._fetch(part)
                found = [(key, name) for key, name in zip(part, log.names[start : start + CHUNK],
                                                           strict=True) if key in records]
                live += [name for _, name in found]
                datas = [self._payload(key, records[key]) for key, _ in found]
                where = functools.partial(self._where_nth, [key for key, _ in found])
                values = decode_values(self._serializer, datas, where)
                for (key, _), value in zip(found, values, strict=True):
                    yield key, value
            if log.entries > self._compact_min and log.entries > 2 * (len(live) + len(log.children)):
                self._rewrite(log, live)

    def _logs(self, path: str, recursive: bool) -> Iterator[_Log]:
        """The log of ``path``, then (when ``recursive``) every log below it, level by level.

        Two multi-gets a level: the first segments and ``t`` items, then
        the later segments of the logs that have them.
        """
        level = [path]
        listed: set[str] = set()
        while level:
            below: list[str] = []
            for start in range(0, len(level), CHUNK):
                tails = {p: self._tail(p) for p in level[start : start + CHUNK]}
                with self._errors() as client:
                    found = client.gets_many([k for t in tails.values() for k in (t.log_key, t.top_key)])
                    tops = {p: _segment_number(found.get(t.top_key, (None,))[0]) for p, t in tails.items()}
                    later = [t.segment_key(n) for p, t in tails.items() for n in range(1, tops[p] + 1)]
                    for at in range(0, len(later), CHUNK):
                        found.update(client.gets_many(later[at : at + CHUNK]))
                for node_path, tail in tails.items():
                    keys = [tail.segment_key(n) for n in range(tops[node_path] + 1)]
                    segments = [self._segment(node_path, key, *found[key]) for key in keys if key in found]
                    if not segments:
                        if node_path in listed:
                            log.warning(
                                "memcached evicted the index log of %s: objects below it are"
                                " missing from query results until they are written again",
                                node_path,
                            )
                        continue
                    index = _Log(node_path, segments)
                    yield index
                    if recursive:
                        for child in sorted(index.children):
                            child_path = _child_path(node_path, child)
                            if child_path not in listed:
                                listed.add(child_path)
                                below.append(child_path)
            level = below

    # -- housekeeping ---------------------------------------------------------------------------------

    def clear(self) -> None:
        """Delete every object and index log this store can reach (not atomic)."""
        logs = list(self._logs("/", True))
        for index in logs:
            self._delete_keys([join_key(index.path, name) for name in index.names])
        self._delete_items([s.item_key for index in logs for s in index.segments]
                           + [self._tail(index.path).top_key for index in logs])
        self._registered.clear()
        self._tails.clear()

    def __repr__(self) -> str:
        return f"<MemcachedDatastore prefix={self._prefix!r}>"


# -- building clients ---------------------------------------------------------------------------


def _is_servers(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        return True
    return isinstance(value, list) and all(_is_servers(v) for v in value)


def _servers(value: Any) -> list[tuple[str, int]]:
    """``'h:p,h:p'``, ``(h, p)`` or a list of those, as ``(host, port)`` pairs."""
    if isinstance(value, tuple):
        return [(str(value[0]), int(value[1]))]
    if isinstance(value, list):
        return [server for item in value for server in _servers(item)]
    out = []
    for address in filter(None, (a.strip() for a in value.split(","))):
        host, _, port = address.rpartition(":")
        if not host:
            host, port = port, "11211"
        try:
            out.append((host.strip("[]"), int(port)))
        except ValueError:
            raise ValueError(f"bad memcached server {address!r}; use host:port") from None
    if not out:
        raise ValueError(f"no memcached server in {value!r}; use host:port")
    return out


class _ThreadClients:
    """One plain pymemcache client per thread, with one retry on a dropped connection.

    What ``RetryingClient(PooledClient(...))`` gives, for a fraction of its
    cost per call (measured: 15-20 us of a 60 us get on loopback): no pool
    lock, no context manager and no retry closure on the way to the socket.
    A thread's client lives as long as the thread (``threading.local``);
    :meth:`close` closes every client still alive. Methods are built once
    per name on first use and then found in the instance dict.
    """

    def __init__(self, factory: Callable[[], Any], single_server: bool, retry_delay: float = 0.05) -> None:
        self._factory = factory
        #: True when each client is a plain ``Client`` of one server (it can send raw commands).
        self.single_server = single_server
        self._retry_delay = retry_delay
        self._local = threading.local()
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    def _client(self) -> Any:
        try:
            return self._local.client
        except AttributeError:
            client = self._local.client = self._factory()
            with self._lock:
                self._clients.add(client)
            return client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return getattr(self._client(), name)(*args, **kwargs)
            except _RETRY_FOR:  # the client reconnects on its next call: try once more
                time.sleep(self._retry_delay)
                return getattr(self._client(), name)(*args, **kwargs)

        call.__name__ = name
        setattr(self, name, call)
        return call

    def store_commands(self, parts: Iterable[bytes], count: int) -> list[bytes]:
        """Send storage commands (or deletes) in one exchange; return their ``count`` reply lines.

        pymemcache sends one command name per call, so a put's ``set`` and
        ``append`` would cost two round trips; written together they cost
        one. ``parts`` are whole commands, joined, each sent as soon as it is
        made: a caller that formats them lazily has the server at work on
        the first while it formats the next. Each storage command answers
        exactly one line (``STORED``, ``NOT_STORED``, ``SERVER_ERROR ...``;
        a refused value's data is skipped by the server), as does ``delete``
        (``DELETED``, ``NOT_FOUND``), so exactly ``count`` lines are read and
        nothing is left on the connection (and a delete skips pymemcache's
        per-call checks, as a get does: see :meth:`retrieve`). (pymemcache's
        ``raw_command`` cannot do this: it drops reply lines that arrive in
        a separate packet.) Single-server clients only; retried once on a
        dropped connection, which at worst appends a name twice (folded on
        read).
        """
        return self._exchange(parts, functools.partial(_read_lines, count=count))

    def retrieve(self, item_keys: list[str]) -> dict[str, bytes]:
        """The values of those of ``item_keys`` that exist: one ``get`` and its reply.

        pymemcache's ``get`` spends more Python on a call (key checks,
        its line reader, flags and serde) than the store's own framing
        does; the store's item keys are ASCII it made itself and its values
        bytes with flags 0, so the request is one line and the reply is
        read by :func:`_read_values`. Single-server clients only; retried
        once on a dropped connection (a read changes nothing); any other
        failure closes the connection, which may hold unread replies.
        """
        return self._exchange([b"get " + " ".join(item_keys).encode("ascii") + b"\r\n"], _read_values)

    def _exchange(self, request: Iterable[bytes], read: Callable[[Any], T]) -> T:
        """Send ``request``, its parts in order, on this thread's connection and ``read`` its reply.

        Retried once on a dropped connection (the client reconnects), which
        sends again the parts the dropped one took; any other failure closes
        the connection, which may hold unread replies.
        """
        sent: list[bytes] = []
        parts = iter(request)
        for attempt in (1, 2):
            client = self._client()
            try:
                if client.sock is None:
                    client.version()  # pymemcache connects on a connection's first command
                sock = client.sock
                for part in sent:
                    sock.sendall(part)
                for part in parts:
                    sent.append(part)
                    sock.sendall(part)
                return read(sock)
            except _RETRY_FOR:
                client.close()
                if attempt == 2:
                    raise
                time.sleep(self._retry_delay)
            except BaseException:
                client.close()  # replies may be left unread: the connection starts afresh
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients)
            self._clients = weakref.WeakSet()
        for client in clients:
            client.close()


def _build_client(servers: list[tuple[str, int]], *, connect_timeout: float, timeout: float) -> Any:
    """Per-thread clients that wait for every reply and retry once on a dropped connection."""
    options: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "timeout": timeout,
        "no_delay": True,
        "default_noreply": False,
    }
    if len(servers) == 1:
        return _ThreadClients(lambda: _base.Client(servers[0], **options), single_server=True)
    return _ThreadClients(
        lambda: _hash.HashClient(servers, use_pooling=False, ignore_exc=False, **options),
        single_server=False,
    )


def _read_lines(sock: Any, count: int) -> list[bytes]:
    """The next ``count`` CRLF-terminated lines a server sends on ``sock`` (and no more)."""
    chunks: list[bytes] = []
    seen = 0
    while seen < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise _exceptions.MemcacheUnexpectedCloseError()
        chunks.append(chunk)
        seen += chunk.count(b"\n")
    return b"".join(chunks).split(b"\r\n")[:count]


def _read_values(sock: Any) -> dict[str, bytes]:
    """The items of one retrieval reply on ``sock``: ``VALUE key flags size`` blocks, then ``END``.

    Reads exactly that reply: the byte count of each block says where its
    data ends, so a value holding CRLF or arriving in many packets is read
    whole. An error line raises pymemcache's exception for it.
    """
    buf = bytearray()
    pos = 0
    found: dict[str, bytes] = {}
    while True:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            _recv_into(sock, buf)
            continue
        line = bytes(buf[pos:end])
        if line == b"END":
            return found
        fields = line.split()
        if len(fields) < 4 or fields[0] != b"VALUE":
            raise _reply_error(line)
        start = end + 2
        stop = start + int(fields[3])
        while len(buf) < stop + 2:
            _recv_into(sock, buf)
        if buf[stop : stop + 2] != b"\r\n":
            raise _exceptions.MemcacheUnknownError(f"malformed reply after {line!r}")
        found[fields[1].decode("ascii")] = bytes(buf[start:stop])
        pos = stop + 2


def _recv_into(sock: Any, buf: bytearray) -> None:
    chunk = sock.recv(65536)
    if not chunk:
        raise _exceptions.MemcacheUnexpectedCloseError()
    buf += chunk


def _reply_error(line: bytes) -> Exception:
    """pymemcache's exception for an error line a server sent instead of a reply."""
    kind = (_exceptions.MemcacheServerError if line.startswith(b"SERVER_ERROR")
            else _exceptions.MemcacheClientError if line.startswith(b"CLIENT_ERROR")
            else _exceptions.MemcacheUnknownError)
    error: Exception = kind(line.decode("ascii", "replace"))
    return error


def _check_deleted(replies: list[bytes]) -> None:
    """Raise for the first reply to a ``delete`` that is neither DELETED nor NOT_FOUND."""
    if replies.count(b"DELETED") + replies.count(b"NOT_FOUND") != len(replies):
        raise _reply_error(next(r for r in replies if r not in (b"DELETED", b"NOT_FOUND")))


def _storage_command(name: bytes, item_key: str, data: bytes) -> bytes:
    """A memcached text-protocol storage command (flags 0, no expiry), data block included."""
    return b"%s %s 0 0 %d\r\n%s\r\n" % (name, item_key.encode("ascii"), len(data), data)


def _text(text: str, name: str) -> str:
    return text


def from_url(url: str, **options: Any) -> MemcachedDatastore:
    """Opener for ``memcached://host:port[,host:port][?prefix=&serializer=&max_item_size=]``."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "memcached":
        raise ValueError(f"not a memcached:// URL: {url!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"memcached:// URLs name servers only, no path: {url!r}")
    parsers = {"prefix": _text, "serializer": parse_serializer, "max_item_size": parse_int}
    return MemcachedDatastore(_servers(parts.netloc), **read_options(url, parsers, options))
