"""RedisDatastore: objects in Redis (one server or a Redis Cluster), with an index for queries.

Redis cannot list "the objects of collection ``/a``" by itself (the classic
store raised NotImplementedError for queries), so this store keeps an index
next to the values and updates it atomically with the value it describes
(one Lua script, or one MULTI/EXEC for a bulk write on one server):

* each value is a Redis string, serialized (JSON by default), at
  ``PREFIX + "v:" + key``;
* the index is a sorted set whose members all have score 0, so that
  ``ZRANGEBYLEX`` reads them in byte order. A member is
  ``code(collection) + b"\\0\\0" + last namespace``, where ``code`` spells the
  collection path with ``/`` as a NUL byte. NUL cannot occur in a key and a
  namespace is never empty, so a collection's members are one contiguous
  lexical range and the members of a collection *and everything below it*
  are another: both scopes of a query are a single range scan.

On one server the index is one sorted set, ``PREFIX + "i"``, and every write
(put, delete, put_many, delete_many, a batch) is one script or one
MULTI/EXEC, so it is atomic as a whole. On a Redis Cluster a transaction must stay within one hash
slot, so every collection gets its own slot: its values and its index carry
the hash tag ``{hash of the collection path}``, a write is one script run per
collection it touches (atomic per collection), and a *registry* sorted set
(one more slot) lists the collections for recursive queries. The module
documentation page ``docs/stores/redis.rst`` spells out the guarantees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from .core import engine
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, to_key
from .core.query import Cursor, Query
from .corrupt import decode_value, decode_values
from .drivers import require
from .errors import BackendError, ClosedError, ConnectionFailed
from .indexing import decode_text, encode_all, encode_text, join_key, split_key
from .serialize import as_bytes_serializer, encode_items
from .serialize import json as _json
from .urlparams import parse_bool, parse_serializer

_redis = require("redis", backend="RedisDatastore", extra="redis")
_backoff = require("redis.backoff", backend="RedisDatastore", extra="redis")
_cluster = require("redis.cluster", backend="RedisDatastore", extra="redis")
_exceptions = require("redis.exceptions", backend="RedisDatastore", extra="redis")
_retry = require("redis.retry", backend="RedisDatastore", extra="redis")
_connection = require("redis.connection", backend="RedisDatastore", extra="redis")

__all__ = ["RedisDatastore", "from_url"]

Pair = tuple[Key, Any]

#: Members (and value keys) fetched per round trip while a query streams.
CHUNK = 500
#: Keys per MGET of get_many: few round trips, yet no reply large enough to stall the server.
BULK = 10_000
#: Between a member's collection code and its name (a NUL pair never occurs in a code).
_SEP = b"\x00\x00"
#: The prefix of every Redis key a store uses, unless told otherwise.
DEFAULT_PREFIX = "ds:"
#: Options of ours that may ride in a URL's query string.
_URL_OPTIONS = ("prefix", "serializer", "index")
_UNSET: Any = object()


# -- the write script -------------------------------------------------------------------

#: The writes of one index in one script: every write on a cluster (all its
#: keys share the collection's hash slot). Redis runs a script atomically and
#: replicates / appends its effects as one transaction, like MULTI/EXEC, but
#: it is one command and one reply, and a cluster accepts many-key commands
#: in it (a cluster pipeline refuses MSET). On one server a bulk write is a
#: MULTI/EXEC instead (see ``RedisDatastore._transaction``).
#: KEYS = index, the value keys to set (n of them), the value keys to delete;
#: ARGV = n, the n values, the n members to add, the members to remove.
#: The index is written first, so a wrongly typed index key fails the script
#: before any value is written. ``unpack`` goes STEP items at a time (Lua's C
#: stack holds a few thousand). Returns the members left in the index.
_WRITE_LUA = """
local n = tonumber(ARGV[1])
local d = #KEYS - 1 - n
local index = KEYS[1]
local STEP = 1000
for i = 1, n, STEP do
  local t = {}
  for j = i, math.min(i + STEP - 1, n) do
    t[#t + 1] = 0
    t[#t + 1] = ARGV[1 + n + j]
  end
  redis.call('ZADD', index, unpack(t))
end
for i = 1, d, STEP do
  local t = {}
  for j = i, math.min(i + STEP - 1, d) do
    t[#t + 1] = ARGV[1 + 2 * n + j]
  end
  redis.call('ZREM', index, unpack(t))
end
for i = 1, n, STEP do
  local t = {}
  for j = i, math.min(i + STEP - 1, n) do
    t[#t + 1] = KEYS[1 + j]
    t[#t + 1] = ARGV[1 + j]
  end
  redis.call('MSET', unpack(t))
end
for i = 1, d, STEP do
  local t = {}
  for j = i, math.min(i + STEP - 1, d) do
    t[#t + 1] = KEYS[1 + n + j]
  end
  redis.call('DEL', unpack(t))
end
return redis.call('ZCARD', index)
"""
#: One put and one delete, the commonest writes, get scripts without loops or
#: tables: the server runs them in half the time of the general one.
#: KEYS = index, value key; ARGV = (value,) member.
_PUT_LUA = """
redis.call('ZADD', KEYS[1], 0, ARGV[2])
return redis.call('SET', KEYS[2], ARGV[1])
"""
_DELETE_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])
"""


def _sha(script: str) -> bytes:
    """The id by which EVALSHA names a script (bytes, as every argument the store sends)."""
    return hashlib.sha1(script.encode("ascii")).hexdigest().encode("ascii")  # how Redis names scripts


_SHAS = {script: _sha(script) for script in (_WRITE_LUA, _PUT_LUA, _DELETE_LUA)}

#: Driver failures, turned into the library's errors by :func:`_translate`.
_DRIVER_ERRORS = (_exceptions.RedisError, _exceptions.RedisClusterException)
_UNREACHABLE = (_exceptions.ConnectionError, _exceptions.TimeoutError,
                _exceptions.ClusterDownError, _exceptions.SlotNotCoveredError)


def _send_and_read(conn: Any, args: tuple[Any, ...]) -> Any:
    """Send one command on ``conn`` and read its reply (a server error reply raises)."""
    conn.send_command(*args)
    return conn.read_response()


def _translate(exc: BaseException) -> Exception:
    """The library's error for a driver failure (the caller chains ``exc`` as its cause)."""
    if isinstance(exc, _UNREACHABLE):
        return ConnectionFailed(f"Redis is unreachable: {exc}")
    return BackendError(f"Redis failed: {exc}")


# -- the index encoding ------------------------------------------------------------------


def _path_code(path: str) -> bytes:
    """A collection path as index bytes: ``/`` becomes NUL, so byte order is tree order."""
    return b"" if path == "/" else encode_text(path).replace(b"/", b"\x00")


def _code_path(code: bytes) -> str:
    return decode_text(code.replace(b"\x00", b"/")) if code else "/"


@lru_cache(maxsize=4096)
def _member_head(path: str) -> bytes:
    """What every member of collection ``path`` starts with (cached: every write needs it)."""
    return _path_code(path) + _SEP


def _member(path: str, name: str) -> bytes:
    return _member_head(path) + encode_text(name)


def _members(keys: Iterable[Key]) -> list[bytes]:
    """``_member`` of each key, in one loop: a bulk write's hot path.

    Inlines :func:`split_key` and remembers each collection's member head,
    since a bulk write usually stays in a few collections.
    """
    heads: dict[str, bytes] = {}
    members = []
    for key in keys:
        string = key._string
        cut = string.rfind("/")
        name = string[cut + 1 :]
        colon = name.find(":")
        path = (string[:cut] or "/") if colon < 0 else string[: cut + 1] + name[:colon]
        head = heads.get(path)
        if head is None:
            head = heads[path] = _member_head(path)
        members.append(head + name.encode("utf-8", "surrogatepass"))
    return members


def _interleave(first: list[Any], second: list[Any]) -> list[Any]:
    """``[first[0], second[0], first[1], ...]``: the flat arguments of MSET and ZADD, built in C."""
    out: list[Any] = [None] * (2 * len(first))
    out[0::2] = first
    out[1::2] = second
    return out


def _member_key(member: bytes) -> Key:
    """The key an index member names (the inverse of :func:`_member`)."""
    cut = member.find(_SEP)
    code, name = member[:cut], member[cut + 2 :]
    if name[:1] == b"\x00":  # the path ended in '/' (a key such as /a/:x)
        code, name = code + b"\x00", name[1:]
    return join_key(_code_path(code), decode_text(name))


def _member_range(path: str, recursive: bool) -> tuple[bytes, bytes]:
    """The ZRANGEBYLEX bounds of a query scope.

    UTF-8 never holds the byte 0xff, so ``prefix + 0xff`` bounds every member
    that starts with ``prefix``; a collection's own members start with
    ``code + NUL NUL`` followed by a non-NUL byte (names are never empty),
    which keeps out keys with an empty type (``/a/:x`` is in ``/a/``).
    """
    if recursive:
        if path == "/":
            return b"-", b"+"
        start = _path_code(path) + b"\x00"
        return b"[" + start, b"(" + start + b"\xff"
    start = _path_code(path) + _SEP
    return b"[" + start + b"\x01", b"(" + start + b"\xff"


def _registry_range(path: str) -> tuple[bytes, bytes]:
    """Bounds of the registry codes of ``path`` and every collection below it."""
    if path == "/":
        return b"-", b"+"
    code = _path_code(path)
    return b"[" + code, b"(" + code + b"\x00\xff"


# -- where things live ----------------------------------------------------------------------


class _Layout:
    """Key names on one server: a value key per object, one index for the store."""

    cluster = False

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self._index = prefix + b"i"

    def value_key(self, key: Key) -> bytes:
        return self.prefix + b"v:" + encode_text(key._string)

    def index_key(self, path: str) -> bytes:
        return self._index

    def value_keys(self, keys: Iterable[Key]) -> list[bytes]:
        """``value_key`` of each key, in one loop (get_many's and put_many's hot path)."""
        return encode_all(self.prefix + b"v:", keys)

    def value_pattern(self, key_pattern: bytes) -> bytes:
        """A SCAN pattern for the value keys whose key string matches ``key_pattern``."""
        return _glob_escape(self.prefix) + b"v:" + key_pattern

    def key_of(self, value_key: bytes) -> Key:
        """The key a value key names (the inverse of ``value_key``)."""
        return Key._from_normal(decode_text(value_key[len(self.prefix) + 2 :]))


class _ClusterLayout(_Layout):
    """Key names on a cluster: one hash slot per collection, plus a registry of collections."""

    cluster = True

    def __init__(self, prefix: bytes) -> None:
        super().__init__(prefix)
        self.registry = prefix + b"{" + _digest(prefix + b"\x00registry") + b"}r"

    def _tag(self, path: str) -> bytes:
        return self.prefix + b"{" + _digest(encode_text(path)) + b"}"

    def value_key(self, key: Key) -> bytes:
        return self._tag(split_key(key)[0]) + b"v:" + encode_text(key._string)

    def index_key(self, path: str) -> bytes:
        return self._tag(path) + b"i"

    def value_keys(self, keys: Iterable[Key]) -> list[bytes]:
        return [self.value_key(key) for key in keys]

    def value_pattern(self, key_pattern: bytes) -> bytes:
        # {<16 hex digits>}: the hash tag of a collection
        return _glob_escape(self.prefix) + b"{" + b"?" * 16 + b"}v:" + key_pattern

    def key_of(self, value_key: bytes) -> Key:
        return Key._from_normal(decode_text(value_key[len(self.prefix) + 20 :]))


def _glob_escape(text: bytes) -> bytes:
    """``text`` as a literal in a SCAN MATCH pattern (``*?[]\\`` escaped)."""
    for char in (b"\\", b"*", b"?", b"[", b"]"):
        text = text.replace(char, b"\\" + char)
    return text


def _hash_tag(value_key: bytes) -> bytes:
    """The ``{...}`` hash tag of a cluster value key: keys that share it share a slot."""
    start = value_key.index(b"{")
    return value_key[start : value_key.index(b"}", start) + 1]


def _digest(data: bytes) -> bytes:
    """A short stable hash: a hash tag made of it never holds ``{`` or ``}``."""
    return hashlib.blake2b(data, digest_size=8).hexdigest().encode("ascii")


@dataclass
class _Group:
    """The writes of one script run: one index (one collection on a cluster)."""

    path: str
    put_keys: list[Key] = field(default_factory=list)
    delete_keys: list[Key] = field(default_factory=list)
    # made from the keys above once all are grouped: value keys to set and to delete
    sets: list[bytes] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    added: list[bytes] = field(default_factory=list)
    deleted: list[bytes] = field(default_factory=list)
    removed: list[bytes] = field(default_factory=list)


# -- the store ----------------------------------------------------------------------------


class RedisDatastore(Datastore):
    """A datastore on Redis: ``RedisDatastore(redis.Redis(...))`` or ``RedisDatastore('redis://...')``.

    ``client_or_url`` is a ``redis.Redis`` or ``redis.cluster.RedisCluster``
    client (the store uses it as it is and leaves it open on :meth:`close`),
    or a URL (``redis://host:port/db``, ``rediss://...``,
    ``redis-cluster://host:port,host:port``), from which the store builds a
    pooled client that retries on connection errors and reconnects after a
    server restart; ``client_options`` go to that client. Values are
    serialized with ``serializer`` (JSON by default; ``None`` stores raw
    ``bytes``). Every Redis key the store uses starts with ``prefix``, so
    stores with different prefixes share one database safely.

    ``index=False`` keeps no index: a write is one plain ``SET``/``DEL``
    (``MSET``/``DEL`` for bulk), as cheap as the bare driver, and a query
    ``SCAN`` walks the whole database for the store's keys: for a cache in front
    of another store (a tiered store asks its last tier), or small data. Give
    such a store a prefix of its own; an indexed store must never read data
    written without the index.
    """

    def __init__(
        self,
        client_or_url: Any,
        *,
        serializer: Any = _UNSET,
        prefix: str | None = None,
        index: bool | None = None,
        **client_options: Any,
    ) -> None:
        if isinstance(client_or_url, str):
            ours = _store_options(client_or_url)
            if prefix is None:
                prefix = ours.get("prefix")
            if serializer is _UNSET and "serializer" in ours:
                serializer = parse_serializer(ours["serializer"], "serializer")
            if index is None and "index" in ours:
                index = parse_bool(ours["index"], "index")
        if index is None:
            index = True
        if not isinstance(index, bool):
            raise TypeError(f"index must be True or False, not {index!r}")
        self._indexed = index
        self._prefix = _check_prefix(DEFAULT_PREFIX if prefix is None else prefix)
        self._serializer = as_bytes_serializer(_json if serializer is _UNSET else serializer)
        self._dumps = self._serializer.dumps
        self._loads = self._serializer.loads
        if isinstance(client_or_url, str):
            client = _client_from_url(client_or_url, client_options)
            self._owns_client = True
        else:
            if client_options:
                raise TypeError(
                    f"options {sorted(client_options)} configure a client built from a URL;"
                    " configure the client you pass instead"
                )
            client = client_or_url
            self._owns_client = False
            if not isinstance(client, (_redis.Redis, _cluster.RedisCluster)):
                raise TypeError(
                    "RedisDatastore takes a redis.Redis or redis.cluster.RedisCluster client or a"
                    f" redis:// / redis-cluster:// URL, not {type(client_or_url).__name__}"
                )
            if getattr(client.get_encoder(), "decode_responses", False):
                raise ValueError(
                    "RedisDatastore needs a client with decode_responses=False: it stores bytes"
                )
        cluster = isinstance(client, _cluster.RedisCluster)
        if cluster:
            _require_cluster_transactions()
        self._layout = _ClusterLayout(self._prefix) if cluster else _Layout(self._prefix)
        self._client: Any = client

    @property
    def cluster(self) -> bool:
        """True when the store runs on a Redis Cluster (atomicity is then per collection)."""
        return self._layout.cluster

    @property
    def prefix(self) -> str:
        return decode_text(self._prefix)

    @property
    def indexed(self) -> bool:
        """False when the store keeps no index (``index=False``): queries then SCAN."""
        return self._indexed

    # -- errors and lifecycle --------------------------------------------------------------

    def _live(self) -> Any:
        """The client, or :class:`ClosedError` once the store is closed."""
        client = self._client
        if client is None:
            raise ClosedError("this RedisDatastore was closed; open a new one")
        return client

    @contextmanager
    def _errors(self) -> Iterator[Any]:
        """Yield the client; turn driver failures into the library's errors, cause chained."""
        client = self._live()
        try:
            yield client
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    def close(self) -> None:
        """Forget the client; close its connection pool if the store built it from a URL."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            client.close()

    # -- reads -------------------------------------------------------------------------------

    # The hot paths below (get, get_many, the writes) inline what ``_errors``
    # does: a generator context manager costs as much as a tenth of a round trip.

    def get(self, key: KeyLike) -> Any:
        if key.__class__ is not Key:
            key = to_key(key)
        if len(key._string) == 1:  # the root key holds no value
            return None
        value_key = self._layout.value_key(key)
        data = self._command("GET", value_key)
        return None if data is None else self._decode(value_key, data)

    def _decode(self, value_key: bytes, data: bytes) -> Any:
        try:
            return self._loads(data)
        except Exception:  # decode again, for the error that names the Redis key
            return decode_value(self._serializer, data, f"Redis key {value_key!r}")

    def contains(self, key: KeyLike) -> bool:
        if key.__class__ is not Key:
            key = to_key(key)
        if len(key._string) == 1:
            return False
        return bool(self._command("EXISTS", self._layout.value_key(key)))

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        """One MGET per BULK keys (per node on a cluster); the root key reads as None."""
        wanted = [k if k.__class__ is Key else to_key(k) for k in keys]
        real = wanted if "/" not in (k._string for k in wanted) else [k for k in wanted if len(k._string) > 1]
        value_keys = self._layout.value_keys(real)
        if len(value_keys) <= BULK:
            found = self._mget(value_keys)
        else:
            found = []
            for start in range(0, len(value_keys), BULK):
                found += self._mget(value_keys[start : start + BULK])
        values = decode_values(self._serializer, found, lambda i: f"Redis key {value_keys[i]!r}")
        if len(real) == len(wanted):
            return values
        slots = iter(values)  # root keys asked for: put their None back in place
        return [next(slots) if len(k._string) > 1 else None for k in wanted]

    def _mget(self, value_keys: list[bytes]) -> list[bytes | None]:
        if not value_keys:
            return []
        client = self._live()
        try:
            if self._layout.cluster:
                return list(client.mget_nonatomic(value_keys))
            return client.execute_command("MGET", *value_keys)  # type: ignore[no-any-return]
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    # -- writes ------------------------------------------------------------------------------

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        check_value(value)
        data = self._dumps(value)
        layout = self._layout
        if not self._indexed:
            self._command("SET", layout.value_key(key), data)
            return
        if layout.cluster:
            self._write([(key, data)], [])
            return
        path, name = split_key(key)
        self._eval(_PUT_LUA, 2, layout.index_key(path), layout.value_key(key), data, _member(path, name))

    def delete(self, key: KeyLike) -> None:
        key = to_key(key)
        if len(key._string) == 1:
            return
        layout = self._layout
        if not self._indexed:
            self._command("DEL", layout.value_key(key))
            return
        if layout.cluster:
            self._write([], [key])
            return
        path, name = split_key(key)
        self._eval(_DELETE_LUA, 2, layout.index_key(path), layout.value_key(key), _member(path, name))

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self._write(encode_items(self._serializer, items_of(items)), [])

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        self._write([], [k for k in (to_key(k) for k in keys) if not k.is_root])

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        self._write(encode_items(self._serializer, puts), [k for k in deletes if not k.is_root])

    def _write(self, puts: list[tuple[Key, bytes]], deletes: list[Key]) -> None:
        """Apply encoded puts and deletes, each index in the same script as its values.

        Every value was serialized by the caller, so nothing can fail on
        input once the first command is sent.
        """
        if not puts and not deletes:
            return
        layout = self._layout
        if not self._indexed:
            self._write_plain(puts, deletes)
            return
        if not layout.cluster:
            self._transaction(puts, deletes)
            return
        groups: dict[bytes, _Group] = {}
        # path -> (member prefix, group): work once per collection, not once per key
        seen: dict[str, tuple[bytes, _Group]] = {}
        for key, data in puts:
            path, name = split_key(key)
            head, group = seen.get(path) or self._slot(path, groups, seen)
            group.put_keys.append(key)
            group.data.append(data)
            group.added.append(head + encode_text(name))
        for key in deletes:
            path, name = split_key(key)
            head, group = seen.get(path) or self._slot(path, groups, seen)
            group.delete_keys.append(key)
            group.removed.append(head + encode_text(name))
        for group in groups.values():
            group.sets = layout.value_keys(group.put_keys)
            group.deleted = layout.value_keys(group.delete_keys)
        self._write_cluster(groups)

    def _slot(
        self, path: str, groups: dict[bytes, _Group], seen: dict[str, tuple[bytes, _Group]]
    ) -> tuple[bytes, _Group]:
        """The member prefix of collection ``path`` and the group of its index, remembered."""
        index = self._layout.index_key(path)
        group = groups.get(index) or groups.setdefault(index, _Group(path))
        seen[path] = found = (_member_head(path), group)
        return found

    def _transaction(self, puts: list[tuple[Key, bytes]], deletes: list[Key]) -> None:
        """One MULTI/EXEC of a few many-key commands: a bulk write on one server.

        For many keys this beats the script: Redis runs MSET and ZADD of a
        thousand entries several times faster than a Lua loop builds them,
        and the client packs the same arguments either way. The index comes
        first, as in the script. The flat argument lists are built here
        rather than by redis-py's ``zadd``/``mset`` helpers, which loop in
        Python over every pair. (A cluster pipeline refuses many-key
        commands, so a cluster runs the script instead.)
        """
        layout = self._layout
        index = layout.index_key("/")
        client = self._live()
        try:
            with client.pipeline(transaction=True) as pipe:
                if puts:
                    keys = [key for key, _ in puts]
                    # b"0" rather than 0: redis-py packs bytes as they are, ints via repr()
                    pipe.execute_command("ZADD", index, *_interleave([b"0"] * len(keys), _members(keys)))
                    pipe.execute_command(
                        "MSET", *_interleave(layout.value_keys(keys), [data for _, data in puts])
                    )
                if deletes:
                    pipe.execute_command("ZREM", index, *_members(deletes))
                    pipe.execute_command("DEL", *layout.value_keys(deletes))
                pipe.execute()
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    def _write_plain(self, puts: list[tuple[Key, bytes]], deletes: list[Key]) -> None:
        """The writes of a store without an index: MSET and DEL, one of each per hash slot.

        On one server a call holding both puts and deletes (a batch) runs
        in one MULTI/EXEC; on a cluster each collection's slot is written
        atomically, as with the index.
        """
        layout = self._layout
        sets = _interleave(layout.value_keys([k for k, _ in puts]), [d for _, d in puts])
        deleted = layout.value_keys(deletes)
        if not layout.cluster:
            if sets and deleted:
                client = self._live()
                try:
                    with client.pipeline(transaction=True) as pipe:
                        pipe.execute_command("MSET", *sets)
                        pipe.execute_command("DEL", *deleted)
                        pipe.execute()
                except _DRIVER_ERRORS as exc:
                    raise _translate(exc) from exc
            elif sets:
                self._command("MSET", *sets)
            elif deleted:
                self._command("DEL", *deleted)
            return
        slots: dict[bytes, tuple[list[bytes], list[bytes]]] = {}
        for i in range(0, len(sets), 2):
            slots.setdefault(_hash_tag(sets[i]), ([], []))[0].extend(sets[i : i + 2])
        for value_key in deleted:
            slots.setdefault(_hash_tag(value_key), ([], []))[1].append(value_key)
        for slot_sets, slot_deleted in slots.values():
            if slot_sets:
                self._command("MSET", *slot_sets)
            if slot_deleted:
                self._command("DEL", *slot_deleted)

    def _command(self, *args: Any) -> Any:
        """One Redis command, its failure turned into the library's error.

        On one server the command is sent and its reply read on a pooled
        connection directly: redis-py's ``execute_command`` spends ~15% of a
        loopback round trip on per-command machinery (metrics, response
        callbacks, options) that the store's commands do not use (their
        replies are used as they come: bytes, an int, OK). The retry is the
        client's own (each connection carries it), as in redis-py. A cluster,
        or a client holding a single connection, goes through redis-py.
        """
        client = self._live()
        try:
            if self._layout.cluster or client.connection is not None:
                return client.execute_command(*args)
            pool = client.connection_pool
            conn = pool.get_connection()
            try:
                return conn.retry.call_with_retry(
                    partial(_send_and_read, conn, args), lambda _error: conn.disconnect()
                )
            finally:
                pool.release(conn)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    def _apply(self, index: bytes, group: _Group) -> int:
        """Run the write script for one group; return how many members ``index`` has left."""
        return self._script(index, group.sets, group.data, group.added, group.deleted, group.removed)

    def _script(
        self,
        index: bytes,
        sets: Sequence[bytes],
        data: Sequence[bytes],
        added: Sequence[bytes],
        deleted: Sequence[bytes] = (),
        removed: Sequence[bytes] = (),
    ) -> int:
        """One run of :data:`_WRITE_LUA`: the values and their index entries, atomically."""
        keys = 1 + len(sets) + len(deleted)
        return int(self._eval(_WRITE_LUA, keys, index, *sets, *deleted, b"%d" % len(sets), *data,
                              *added, *removed))

    def _eval(self, script: str, keys: int, *keys_and_args: Any) -> Any:
        """EVALSHA ``script``, loading it first if the server does not know it.

        A server loses its scripts on a restart, SCRIPT FLUSH or failover;
        it then answers NOSCRIPT, and the script is loaded and sent again.
        """
        try:
            return self._command("EVALSHA", _SHAS[script], b"%d" % keys, *keys_and_args)
        except BackendError as exc:
            if not isinstance(exc.__cause__, _exceptions.NoScriptError):
                raise
        client = self._live()
        try:
            client.script_load(script)  # on every primary of a cluster
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc
        return self._command("EVALSHA", _SHAS[script], b"%d" % keys, *keys_and_args)

    def _write_cluster(self, groups: dict[bytes, _Group]) -> None:
        """Write collection by collection, keeping the registry a superset of the live collections.

        A collection is registered before its first value is written (so a
        crash leaves at most a stale registry entry, which queries skip) and
        again after (so a concurrent prune of the same collection cannot
        leave it out). A collection found empty after a delete is pruned:
        removed from the registry, then re-added if a write slipped in.
        """
        layout = self._layout
        assert isinstance(layout, _ClusterLayout)
        written = {_path_code(g.path): 0 for g in groups.values() if g.sets}
        emptied: list[str] = []
        with self._errors() as client:
            if written:
                client.zadd(layout.registry, written)
            for index, group in groups.items():
                left = self._apply(index, group)
                if group.deleted and not group.sets and not left:
                    emptied.append(group.path)
            if written:
                client.zadd(layout.registry, written)
            for path in emptied:
                code = _path_code(path)
                client.zrem(layout.registry, code)
                if client.exists(layout.index_key(path)):
                    client.zadd(layout.registry, {code: 0})

    # -- queries -----------------------------------------------------------------------------

    def query(self, query: Query) -> Cursor:
        """Scope through the index (one range per collection); the naive engine does the rest.

        Filters and orders run in Python over the scope's values, fetched
        CHUNK at a time with MGET while the cursor is read. A ``keys_only``
        query without filters or orders reads the index alone.
        """
        if self._client is None:
            raise ClosedError("this RedisDatastore was closed; open a new one")
        if not self._indexed:
            return engine.run(query, self._scanned_pairs(query.key._string))
        with_values = not query.keys_only or bool(query.filters) or bool(query.orders)
        first = CHUNK
        if query.limit is not None and not query.filters and not query.orders:
            # The engine stops reading after offset + limit objects: fetch no more at first.
            first = max(1, min(CHUNK, query.offset + query.limit))
        pairs = self._scope_pairs(query.key._string, query.recursive, with_values, first)
        return engine.run(query, pairs, scoped=True)

    def _scope_pairs(self, path: str, recursive: bool, with_values: bool, first: int) -> Iterator[Pair]:
        if self._layout.cluster and recursive:
            for collection in self._registered(path):
                index = self._layout.index_key(collection)
                yield from self._pairs(index, b"-", b"+", with_values, first)
        else:
            low, high = _member_range(path, recursive)
            yield from self._pairs(self._layout.index_key(path), low, high, with_values, first)

    def _pairs(
        self, index: bytes, low: bytes, high: bytes, with_values: bool, first: int = CHUNK
    ) -> Iterator[Pair]:
        for members in self._ranges(index, low, high, first):
            keys = [_member_key(m) for m in members]
            if not with_values:
                for key in keys:
                    yield key, None
                continue
            value_keys = [self._layout.value_key(k) for k in keys]
            for key, value_key, data in zip(keys, value_keys, self._mget(value_keys), strict=True):
                if data is not None:  # deleted since the index was read
                    yield key, self._decode(value_key, data)

    def _scanned_pairs(self, path: str) -> Iterator[Pair]:
        """Every object whose key starts with ``path`` (a superset of the scope), by SCAN.

        SCAN returns every key that exists for the whole scan, some maybe
        twice (dropped here), so the naive engine, which scopes the pairs,
        answers exactly. Values are read CHUNK keys per MGET.
        """
        seen: set[bytes] = set()
        batch: list[bytes] = []
        for value_key in self._scan(path):
            if value_key not in seen:
                seen.add(value_key)
                batch.append(value_key)
            if len(batch) >= CHUNK:
                yield from self._scanned_values(batch)
                batch = []
        yield from self._scanned_values(batch)

    def _scanned_values(self, value_keys: list[bytes]) -> Iterator[Pair]:
        for value_key, data in zip(value_keys, self._mget(value_keys), strict=True):
            if data is not None:  # deleted since the scan saw it
                yield self._layout.key_of(value_key), self._decode(value_key, data)

    def _scan(self, path: str = "/") -> Iterator[bytes]:
        """The value keys whose key string starts with ``path`` (SCAN MATCH; duplicates possible).

        A plain prefix, since the objects of ``/a/T`` include ``/a/T:x``; it
        also matches ``/a/Tb``, which the naive engine then leaves out.
        """
        pattern = self._layout.value_pattern(_glob_escape(encode_text(path)) + b"*")
        with self._errors() as client:
            yield from client.scan_iter(match=pattern, count=1000)

    def _ranges(
        self, index: bytes, low: bytes, high: bytes, first: int = CHUNK
    ) -> Iterator[list[bytes]]:
        """Members of ``index`` between ``low`` and ``high``: ``first``, then CHUNK at a time.

        Each chunk resumes after the last member read, so members added or
        removed meanwhile never make the scan repeat or skip the others.
        """
        size = first
        while True:
            with self._errors() as client:
                members = client.zrangebylex(index, low, high, start=0, num=size)
            if members:
                yield members
            if len(members) < size:
                return
            low = b"(" + members[-1]
            size = CHUNK

    def _registered(self, path: str) -> Iterator[str]:
        """The registered collections at or below ``path`` (cluster mode)."""
        layout = self._layout
        assert isinstance(layout, _ClusterLayout)
        low, high = _registry_range(path)
        for codes in self._ranges(layout.registry, low, high):
            yield from (_code_path(code) for code in codes)

    # -- housekeeping ------------------------------------------------------------------------

    def clear(self) -> None:
        """Delete every object of this store and its index (not atomic with concurrent writes)."""
        layout = self._layout
        if not self._indexed:
            found = [layout.key_of(value_key) for value_key in dict.fromkeys(self._scan())]  # SCAN repeats
            for start in range(0, len(found), CHUNK):
                self._write_plain([], found[start : start + CHUNK])
            return
        collections = list(self._registered("/")) if isinstance(layout, _ClusterLayout) else ["/"]
        for path in collections:
            index = layout.index_key(path)
            for members in self._ranges(index, b"-", b"+"):
                value_keys = [layout.value_key(_member_key(m)) for m in members]
                with self._errors() as client:
                    client.delete(*value_keys)
            with self._errors() as client:
                client.delete(index)
        if isinstance(layout, _ClusterLayout):
            with self._errors() as client:
                client.delete(layout.registry)

    def __repr__(self) -> str:
        mode = "cluster" if self._layout.cluster else "server"
        return f"<RedisDatastore {mode} prefix={self.prefix!r}>"


# -- building clients ------------------------------------------------------------------------


def _check_prefix(prefix: Any) -> bytes:
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    if "{" in prefix or "}" in prefix:
        raise ValueError(
            f"prefix {prefix!r} may not hold '{{' or '}}': the store places keys in cluster"
            " slots with hash tags of its own"
        )
    return encode_text(prefix)


_BYTES = frozenset({bytes})


class _BytesPacker:
    """Packs commands for the connections of the clients the store builds.

    The store sends bytes only (keys, values, index members, counts as
    ``b"0"``), and redis-py's own packer spends most of a bulk write's
    client time on them: per argument an encoder call, a ``str(len)`` and a
    join (1,000 pairs: 2.3 ms of a 6 ms MSET). Here a command whose
    arguments after its name are all bytes is one C-level join of
    ``%``-formatted parts (1.1 ms); anything else (a str or int argument,
    from a caller using the client directly) goes to redis-py's packer,
    unchanged. One instance serves every connection of a pool: it keeps no
    state.
    """

    def __init__(self, encoding: str = "utf-8", errors: str = "strict") -> None:
        encoder = _connection.Encoder(encoding, errors, False)
        self._fallback = _connection.PythonRespSerializer(6000, encoder.encode)

    def pack(self, *args: Any) -> list[bytes]:
        """RESP for ``args``, a command name (str) and its arguments; a list of chunks."""
        name = args[0]
        if type(name) is str and " " not in name and {*map(type, args[1:])} <= _BYTES:
            head = b"*%d\r\n$%d\r\n%b\r\n" % (len(args), len(name), name.encode())
            if len(args) == 1:
                return [head]
            parts = [b"%d\r\n%b" % (len(arg), arg) for arg in args[1:]]
            return [head + b"$" + b"\r\n$".join(parts) + b"\r\n"]
        return self._fallback.pack(*args)  # type: ignore[no-any-return]


def _default_retry() -> Any:
    """Retry a command on a dropped connection: a restarted server is reached again."""
    return _retry.Retry(_backoff.ExponentialBackoff(cap=1.0, base=0.05), 6)


def _store_options(url: str) -> dict[str, str]:
    """The store's own options (``prefix``, ``serializer``) in a URL's query string."""
    return {k: v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True) if k in _URL_OPTIONS}


def _require_cluster_transactions() -> None:
    if not hasattr(_cluster, "TransactionStrategy"):
        raise ImportError(
            "Redis Cluster mode needs a redis-py whose cluster pipelines support"
            " transaction=True (redis-py 6.1 or later): pip install -U 'redis>=6.1'"
        )


def _client_from_url(url: str, options: dict[str, Any]) -> Any:
    """A pooled client for ``url`` that retries on connection errors.

    The store's own options (``prefix``, ``serializer``) are taken out of the
    query string; every other one, and the keyword ``options``, go to redis-py
    (keywords win).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    rest = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _URL_OPTIONS
    ]
    kwargs = dict(options)
    kwargs.setdefault("retry", _default_retry())
    kwargs.setdefault("socket_connect_timeout", 5)
    if scheme in ("redis", "rediss", "unix"):
        kwargs.setdefault("health_check_interval", 30)
        kwargs.setdefault("retry_on_error", [_exceptions.ConnectionError, _exceptions.TimeoutError])
        kwargs.setdefault("command_packer", _BytesPacker(kwargs.get("encoding", "utf-8"),
                                                         kwargs.get("encoding_errors", "strict")))
        clean = urlunsplit(parts._replace(query=urlencode(rest)))
        try:
            return _redis.Redis.from_url(clean, **kwargs)
        except ValueError as exc:
            raise ValueError(f"bad Redis URL {url!r}: {exc}") from exc
    if scheme == "redis-cluster":
        _require_cluster_transactions()
        return _cluster_client(url, parts.netloc, parts.path, rest, kwargs)
    raise ValueError(
        f"RedisDatastore opens redis://, rediss:// and redis-cluster:// URLs, not {url!r}"
    )


def _cluster_client(
    url: str, netloc: str, path: str, query: list[tuple[str, str]], kwargs: dict[str, Any]
) -> Any:
    """A RedisCluster from ``redis-cluster://[user:password@]host:port,host:port[?ssl=true]``."""
    credentials, _, hosts = netloc.rpartition("@")
    if credentials:
        user, _, password = credentials.partition(":")
        kwargs.setdefault("username", unquote(user) or None)
        kwargs.setdefault("password", unquote(password) or None)
    if path not in ("", "/", "/0"):
        raise ValueError(f"a Redis Cluster has database 0 only: {url!r}")
    for name, value in query:
        if name != "ssl":
            raise ValueError(
                f"redis-cluster:// URLs take ?prefix= and ?ssl= only, not {name!r}: pass other"
                " client options as keywords"
            )
        kwargs.setdefault("ssl", value.lower() in ("1", "true", "yes"))
    nodes = []
    for address in filter(None, hosts.split(",")):
        host, _, port = address.rpartition(":")
        if not host:
            host, port = port, "6379"
        try:
            nodes.append(_cluster.ClusterNode(host.strip("[]"), int(port)))
        except ValueError:
            raise ValueError(f"bad node address {address!r} in {url!r}; use host:port") from None
    if not nodes:
        raise ValueError(f"no node in {url!r}; use redis-cluster://host:port,host:port")
    try:
        return _cluster.RedisCluster(startup_nodes=nodes, **kwargs)
    except (_exceptions.RedisError, _exceptions.RedisClusterException) as exc:
        raise ConnectionFailed(f"cannot reach the Redis Cluster at {url!r}: {exc}") from exc


def from_url(url: str, **options: Any) -> RedisDatastore:
    """Opener for ``redis://``, ``rediss://`` and ``redis-cluster://`` (``?prefix=`` is the store's)."""
    return RedisDatastore(url, **options)
