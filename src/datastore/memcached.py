"""MemcachedDatastore: objects in memcached (pymemcache), with an index kept in memcached itself.

memcached holds opaque items under short ASCII keys and cannot list them, so
this store maps every key and keeps its own index:

* an object lives in the item ``PREFIX:v:<blake2b of the key>`` whose value is
  ``key + NUL + serialized value``: memcached keys are at most 250 bytes of
  printable ASCII, so the item key is a hash, and the real key rides inside
  the item so that queries return it and a hash collision is detected;
* the index is a tree of *node* items ``PREFIX:n:<blake2b of a path>``, one
  per collection path and per ancestor of one. A node holds its path, the
  member names of the collection (``key.path == path``, named by the last
  namespace of the key, see :mod:`datastore.indexing`) and the child segments
  below it that lead to other collections. A collection query reads one node,
  a recursive query walks the tree below its key.

memcached has no transactions; nodes are updated with ``gets``/``cas`` loops
(no update is ever lost to a concurrent writer) and ordered around the value
writes so that the index always names *at least* the stored objects:

* put: register the name (and the path's chain of nodes) if missing, write
  the value, then rewrite the node once more. The final rewrite changes the
  node's CAS token, so a concurrent delete that read the node before the value
  was written cannot remove the name (its ``cas`` fails and it re-checks);
* delete: remove the value, then remove the name only while its value is
  verifiably absent, with ``cas`` on the node read *before* that check.

A name whose value is gone (evicted, or a crash between the two steps) is
harmless: queries fetch every named value and drop the missing ones. What
eviction does to query results is documented in ``docs/stores/memcached.rst``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .core import engine
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, to_key
from .core.query import Cursor, Query
from .corrupt import decode_value
from .drivers import require
from .errors import BackendError, ClosedError, ConnectionFailed
from .indexing import decode_text, encode_text, join_key, path_segments, split_key
from .serialize import as_bytes_serializer
from .serialize import json as _json
from .urlparams import parse_int, parse_serializer, read_options

_base = require("pymemcache.client.base", backend="MemcachedDatastore", extra="memcached")
_hash = require("pymemcache.client.hash", backend="MemcachedDatastore", extra="memcached")
_retrying = require("pymemcache.client.retrying", backend="MemcachedDatastore", extra="memcached")
_exceptions = require("pymemcache.exceptions", backend="MemcachedDatastore", extra="memcached")

__all__ = ["MemcachedDatastore", "from_url"]

log = logging.getLogger(__name__)

Pair = tuple[Key, Any]

#: memcached's default largest item (``-I 1m``).
DEFAULT_MAX_ITEM_SIZE = 1024 * 1024
#: Room left in an item for memcached's own header, key and CAS.
_ITEM_OVERHEAD = 400
#: Item keys fetched per multi-get.
CHUNK = 200
#: ``cas`` attempts on one node before giving up under contention.
CAS_ATTEMPTS = 100
DEFAULT_PREFIX = "ds"


# -- index nodes ------------------------------------------------------------------------------


@dataclass
class _Node:
    """One index item: the members of collection ``path`` and the child segments below it."""

    path: str
    names: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)

    def encode(self) -> bytes:
        # ASCII JSON keeps lone surrogates (\\udXXX escapes) that UTF-8 would refuse.
        record = {"p": self.path, "n": sorted(self.names), "c": sorted(self.children)}
        return json.dumps(record, separators=(",", ":")).encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> _Node:
        record = json.loads(data)
        return cls(record["p"], set(record["n"]), set(record["c"]))


def _child_path(path: str, segment: str) -> str:
    return "/" + segment if path == "/" else f"{path}/{segment}"


def _chain(path: str) -> list[tuple[str, str | None]]:
    """``(node path, child segment it must list)`` from the root down to ``path`` (None at the end)."""
    out: list[tuple[str, str | None]] = []
    current = "/"
    for segment in path_segments(path):
        out.append((current, segment))
        current = _child_path(current, segment)
    out.append((current, None))
    return out


@dataclass
class _Plan:
    """What one node must gain (puts) or may lose (deletes)."""

    names: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)


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
        self._max_record = max_item_size - _ITEM_OVERHEAD
        self._serializer = as_bytes_serializer(serializer)

    # -- item keys ----------------------------------------------------------------------------

    def _item_key(self, kind: str, text: str) -> str:
        digest = hashlib.blake2b(encode_text(text), digest_size=20).hexdigest()
        return f"{self._prefix}:{kind}:{digest}"

    def _value_key(self, key: Key) -> str:
        return self._item_key("v", key._string)

    def _node_key(self, path: str) -> str:
        return self._item_key("n", path)

    # -- errors and lifecycle ------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[Any]:
        """Yield the client; turn driver failures into the library's errors, cause chained."""
        client = self._client
        if client is None:
            raise ClosedError("this MemcachedDatastore was closed; open a new one")
        try:
            yield client
        except (OSError, _exceptions.MemcacheUnexpectedCloseError) as exc:
            raise ConnectionFailed(f"memcached is unreachable: {exc}") from exc
        except _exceptions.MemcacheError as exc:
            raise BackendError(f"memcached failed: {exc}") from exc

    def close(self) -> None:
        """Forget the client; close its connections if the store built it."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            client.close()

    # -- records --------------------------------------------------------------------------------

    def _record(self, key: Key, value: Any) -> bytes:
        """``key NUL serialized value``, refused with ValueError if memcached cannot hold it."""
        data: bytes = self._serializer.dumps(value)
        record = encode_text(key._string) + b"\x00" + data
        if len(record) > self._max_record:
            raise ValueError(
                f"the value for {key} takes {len(record)} bytes with its key; memcached items"
                f" hold at most {self._max_record} here: store it elsewhere or split it"
            )
        return record

    def _value_of(self, key: Key, record: bytes | None) -> Any:
        if record is None:
            return None
        stored, _, data = bytes(record).partition(b"\x00")
        if stored != encode_text(key._string):
            raise BackendError(
                f"item {self._value_key(key)} holds {decode_text(stored)!r}, not {key}:"
                " a hash collision or a foreign writer under this prefix"
            )
        return decode_value(self._serializer, data, f"memcached item {self._value_key(key)} ({key})")

    # -- reads ------------------------------------------------------------------------------------

    def get(self, key: KeyLike) -> Any:
        key = to_key(key)
        if key.is_root:
            return None
        with self._errors() as client:
            record = client.get(self._value_key(key))
        return self._value_of(key, record)

    def contains(self, key: KeyLike) -> bool:
        return self.get(key) is not None

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        wanted = [to_key(k) for k in keys]
        records = self._fetch([k for k in wanted if not k.is_root])
        return [self._value_of(k, records.get(k)) for k in wanted]

    def _fetch(self, keys: Sequence[Key]) -> dict[Key, bytes]:
        """The records of ``keys`` that exist, CHUNK keys per multi-get."""
        found: dict[Key, bytes] = {}
        for start in range(0, len(keys), CHUNK):
            part = {self._value_key(k): k for k in keys[start : start + CHUNK]}
            with self._errors() as client:
                got = client.get_many(list(part))
            for item_key, record in got.items():
                found[part[item_key]] = record
        return found

    # -- writes -----------------------------------------------------------------------------------

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        check_value(value)
        self._put_records([(key, self._record(key, value))])

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        self._put_records([(key, self._record(key, value)) for key, value in items_of(items)])

    def delete(self, key: KeyLike) -> None:
        self.delete_many([key])

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        targets = list({k: None for k in (to_key(k) for k in keys) if not k.is_root})
        if targets:
            self._delete_keys(targets)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        records = [(key, self._record(key, value)) for key, value in puts]
        if records:
            self._put_records(records)
        self.delete_many(deletes)

    def _put_records(self, records: list[tuple[Key, bytes]]) -> None:
        """Index the names, write the values, then touch the collection nodes (see module doc)."""
        if not records:
            return
        plans: dict[str, _Plan] = {}
        collections: dict[str, set[str]] = {}
        for key, _ in records:
            path, name = split_key(key)
            collections.setdefault(path, set()).add(name)
            for node_path, child in _chain(path):
                plan = plans.setdefault(node_path, _Plan())
                if child is None:
                    plan.names.add(name)
                else:
                    plan.children.add(child)
        unchanged = self._register(plans)
        items = list({self._value_key(key): record for key, record in records}.items())
        for start in range(0, len(items), CHUNK):
            with self._errors() as client:
                failed = client.set_many(dict(items[start : start + CHUNK]), noreply=False)
            if failed:
                raise BackendError(
                    f"memcached refused to store {len(failed)} item(s), e.g. {failed[0]}"
                )
        for path, names in collections.items():
            self._update(path, _Plan(names=names), unchanged.get(path), always=True)

    def _register(self, plans: dict[str, _Plan]) -> dict[str, tuple[_Node, Any]]:
        """Add what is missing to every planned node; return unchanged nodes with their CAS tokens.

        Nodes are written deepest first, so that a node listed as a child by
        its parent exists (a missing one then means it was evicted).
        """
        keys = {self._node_key(path): path for path in plans}
        with self._errors() as client:
            found = client.gets_many(list(keys))
        current: dict[str, tuple[_Node, Any]] = {}
        for item_key, (data, token) in found.items():
            current[keys[item_key]] = (self._node(keys[item_key], data), token)
        # Check sizes first, so that a full node refuses the put before anything is written.
        for path, plan in plans.items():
            node = current[path][0] if path in current else _Node(path)
            self._check_size(_Node(path, node.names | plan.names, node.children | plan.children))
        unchanged: dict[str, tuple[_Node, Any]] = {}
        for path in reversed(plans):
            plan = plans[path]
            known = current.get(path)
            if known is not None and plan.names <= known[0].names and plan.children <= known[0].children:
                unchanged[path] = known
            else:
                self._update(path, plan, known)
        return unchanged

    def _update(
        self, path: str, plan: _Plan, known: tuple[_Node, Any] | None, *, always: bool = False
    ) -> None:
        """CAS loop: add ``plan``'s names and children to node ``path``.

        ``known`` is the node and its CAS token as read earlier (a stale one
        only costs a retry). With ``always`` the node is rewritten even when
        it holds everything already: a put uses that to change the token
        after writing its value (see the module docstring).
        """
        item_key = self._node_key(path)
        for _ in range(CAS_ATTEMPTS):
            with self._errors() as client:
                if known is None:
                    data, token = client.gets(item_key)
                    known = None if data is None else (self._node(path, data), token)
                if known is None:
                    node = _Node(path, set(plan.names), set(plan.children))
                    self._check_size(node)
                    if client.add(item_key, node.encode(), noreply=False):
                        return
                else:
                    old, token = known
                    if not always and plan.names <= old.names and plan.children <= old.children:
                        return
                    node = _Node(path, old.names | plan.names, old.children | plan.children)
                    self._check_size(node)
                    if client.cas(item_key, node.encode(), token, noreply=False):
                        return
            known = None
        raise BackendError(f"could not update the memcached index of {path}: too much contention")

    def _delete_keys(self, keys: list[Key]) -> None:
        """Delete the values, then drop each name whose value is verifiably gone (see module doc)."""
        with self._errors() as client:
            client.delete_many([self._value_key(k) for k in keys], noreply=False)
        by_path: dict[str, dict[str, Key]] = {}
        for key in keys:
            path, name = split_key(key)
            by_path.setdefault(path, {})[name] = key
        for path, names in by_path.items():
            self._remove_names(path, names)

    def _remove_names(self, path: str, names: dict[str, Key]) -> None:
        item_key = self._node_key(path)
        for _ in range(CAS_ATTEMPTS):
            with self._errors() as client:
                data, token = client.gets(item_key)
            if data is None:
                return
            node = self._node(path, data)
            listed = [name for name in names if name in node.names]
            if not listed:
                return
            # Read after the node: a value written since then keeps its name (the put's
            # final node rewrite makes the cas below fail, and this loop looks again).
            present = self._fetch([names[n] for n in listed])
            gone = {n for n in listed if names[n] not in present}
            if not gone:
                return
            node.names -= gone
            with self._errors() as client:
                if client.cas(item_key, node.encode(), token, noreply=False) is not False:
                    return
        raise BackendError(f"could not update the memcached index of {path}: too much contention")

    def _node(self, path: str, data: bytes) -> _Node:
        node = _Node.decode(data)
        if node.path != path:
            raise BackendError(
                f"index item {self._node_key(path)} belongs to {node.path!r}, not {path!r}:"
                " a hash collision or a foreign writer under this prefix"
            )
        return node

    def _check_size(self, node: _Node) -> None:
        if len(node.encode()) > self._max_record:
            raise ValueError(
                f"the memcached index of {node.path} would exceed {self._max_record} bytes:"
                " memcached cannot index this many objects in one collection; use fewer or"
                " shorter keys per collection, or a store with a real index"
            )

    # -- queries ------------------------------------------------------------------------------------

    def query(self, query: Query) -> Cursor:
        """Scope through the index nodes; the naive engine filters, orders and pages.

        Objects whose value is gone (evicted or deleted meanwhile) are
        skipped. A ``keys_only`` query without filters or orders still reads
        the values, because an index name alone does not prove the object exists.
        """
        if self._client is None:
            raise ClosedError("this MemcachedDatastore was closed; open a new one")
        pairs = self._scope_pairs(query.key._string, query.recursive)
        return engine.run(query, pairs, scoped=True)

    def _scope_pairs(self, path: str, recursive: bool) -> Iterator[Pair]:
        for node in self._nodes(path, recursive):
            keys = [join_key(node.path, name) for name in sorted(node.names)]
            for start in range(0, len(keys), CHUNK):
                part = keys[start : start + CHUNK]
                records = self._fetch(part)
                for key in part:
                    if key in records:
                        yield key, self._value_of(key, records[key])

    def _nodes(self, path: str, recursive: bool) -> Iterator[_Node]:
        """Node ``path``, then (when ``recursive``) every node below it, level by level."""
        level = [path]
        listed: set[str] = set()
        while level:
            below: list[str] = []
            for start in range(0, len(level), CHUNK):
                part = {self._node_key(p): p for p in level[start : start + CHUNK]}
                with self._errors() as client:
                    found = client.get_many(list(part))
                for item_key, node_path in part.items():
                    data = found.get(item_key)
                    if data is None:
                        if node_path in listed:
                            log.warning(
                                "memcached evicted the index node of %s: objects below it are"
                                " missing from query results until they are written again",
                                node_path,
                            )
                        continue
                    node = self._node(node_path, data)
                    yield node
                    if recursive:
                        for child in sorted(node.children):
                            child_path = _child_path(node_path, child)
                            listed.add(child_path)
                            below.append(child_path)
            level = below

    # -- housekeeping ---------------------------------------------------------------------------------

    def clear(self) -> None:
        """Delete every object and index node this store can reach (not atomic)."""
        nodes = list(self._nodes("/", True))
        for node in nodes:
            keys = [join_key(node.path, name) for name in node.names]
            for start in range(0, len(keys), CHUNK):
                with self._errors() as client:
                    client.delete_many(
                        [self._value_key(k) for k in keys[start : start + CHUNK]], noreply=False
                    )
        with self._errors() as client:
            client.delete_many([self._node_key(n.path) for n in nodes], noreply=False)

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


def _build_client(servers: list[tuple[str, int]], *, connect_timeout: float, timeout: float) -> Any:
    """A pooled client that waits for every reply and retries once on a dropped connection."""
    options: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "timeout": timeout,
        "no_delay": True,
        "default_noreply": False,
    }
    if len(servers) == 1:
        inner = _base.PooledClient(servers[0], **options)
    else:
        inner = _hash.HashClient(servers, use_pooling=True, ignore_exc=False, **options)
    return _retrying.RetryingClient(
        inner,
        attempts=2,
        retry_delay=0.05,
        retry_for=[OSError, _exceptions.MemcacheUnexpectedCloseError],
    )


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
