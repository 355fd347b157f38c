"""The :class:`Datastore` contract every store, shim and collection implements.

A concrete store implements five methods: :meth:`Datastore.get`,
:meth:`~Datastore.put`, :meth:`~Datastore.delete`, :meth:`~Datastore.query`
and, where it can answer without fetching, :meth:`~Datastore.contains`.
Everything else here (dict spellings, bulk calls, batches, context
management) is derived from those, so a store overrides a bulk method or
:meth:`~Datastore._apply_batch` only to make it faster or atomic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import repeat
from operator import is_
from types import TracebackType
from typing import Any

from .key import Key, KeyLike, string_of, to_key
from .query import Cursor, Query

__all__ = ["Batch", "Datastore", "check_value", "items_of", "write_key"]


def check_value(value: Any) -> None:
    """Refuse ``None`` as a value: None is how ``get`` says "absent"."""
    if value is None:
        raise ValueError("cannot put None: None means 'absent'; delete the key instead")


def write_key(key: KeyLike) -> Key:
    """``key`` as a :class:`Key` that may hold a value (the root key may not)."""
    key = to_key(key)
    if len(key._string) == 1:
        raise ValueError("the root key '/' cannot hold a value; put under a named key such as '/a'")
    return key


_KEY_TYPE = {Key}
_TUPLE_TYPE = {tuple}


def items_of(items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> list[tuple[Key, Any]]:
    """Normalise ``put_many`` input (a mapping or ``(key, value)`` pairs), checking every value.

    Nothing is written by any caller before this returns, so a bad item
    anywhere refuses the whole call.
    """
    pairs = list(items.items() if isinstance(items, Mapping) else items)
    if pairs:
        # The common batch (ready Keys, no root key, no None) is settled by
        # whole-list steps in C; anything else takes the loop, which words the error.
        try:
            keys, values = zip(*pairs, strict=True)
        except (TypeError, ValueError):
            pass
        else:
            if ({*map(type, keys)} == _KEY_TYPE and not any(map(is_, values, repeat(None)))
                    and "/" not in map(string_of, keys)):
                # ``pairs`` is a new list: when its pairs are tuples already it is
                # the answer, and a thousand new tuples (and the garbage
                # collections they bring on) are saved.
                if {*map(type, pairs)} == _TUPLE_TYPE:
                    return pairs
                return list(zip(keys, values, strict=True))
    out: list[tuple[Key, Any]] = []
    append = out.append
    for pair in pairs:
        try:
            key, value = pair
        except (TypeError, ValueError):
            raise TypeError(
                f"put_many takes a mapping or (key, value) pairs, not {pair!r}"
            ) from None
        if value is None:
            check_value(value)
        # Every bulk write of every store passes here: a ready Key skips the calls.
        if key.__class__ is Key and len(key._string) > 1:
            append((key, value))
        else:
            append((write_key(key), value))
    return out


class Datastore:
    """Base class of every datastore: the contract of ``../API.md``.

    Subclasses implement ``get``, ``put``, ``delete`` and ``query``; every
    method accepts a :class:`Key` or a ``str``.
    """

    # -- the five primitives ------------------------------------------------------

    def get(self, key: KeyLike) -> Any:
        """Return the value stored under ``key``, or ``None`` if there is none."""
        raise NotImplementedError

    def put(self, key: KeyLike, value: Any) -> None:
        """Store ``value`` under ``key``, replacing any old value. ``None`` is refused."""
        raise NotImplementedError

    def delete(self, key: KeyLike) -> None:
        """Remove ``key``; removing an absent key does nothing."""
        raise NotImplementedError

    def query(self, query: Query) -> Cursor:
        """Return a :class:`Cursor` over the objects matching ``query``."""
        raise NotImplementedError

    def contains(self, key: KeyLike) -> bool:
        """True when ``key`` holds a value. Stores override this to avoid fetching it."""
        return self.get(key) is not None

    # -- bulk ---------------------------------------------------------------------

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        """Values for ``keys``, aligned with them (None where absent)."""
        return [self.get(key) for key in keys]

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        """Store many ``(key, value)`` pairs (or a mapping). All are checked before any is written."""
        for key, value in items_of(items):
            self.put(key, value)

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        """Remove many keys; absent ones are ignored."""
        for key in [to_key(k) for k in keys]:
            self.delete(key)

    # -- batches ------------------------------------------------------------------

    def batch(self) -> Batch:
        """A :class:`Batch`: puts and deletes applied together when its ``with`` block exits."""
        return Batch(self)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        """Apply a batch's net operations (each key once). Override to make it atomic."""
        if puts:
            self.put_many(puts)
        if deletes:
            self.delete_many(deletes)

    # -- lifecycle ----------------------------------------------------------------

    def close(self) -> None:
        """Release connections and files. Idempotent."""

    def __enter__(self) -> Datastore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- dict spellings -----------------------------------------------------------

    def __getitem__(self, key: KeyLike) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: KeyLike, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: KeyLike) -> None:
        if not self.contains(key):
            raise KeyError(key)
        self.delete(key)

    def __contains__(self, key: KeyLike) -> bool:
        return self.contains(key)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class Batch:
    """Operations collected inside ``with ds.batch() as b:`` and applied on exit.

    Reads inside the block see the store's old state; the last operation on
    a key wins; if the block raises, nothing is applied. How atomic the
    application is depends on the store (see each store's docs).
    """

    def __init__(self, datastore: Datastore) -> None:
        self.datastore = datastore
        # key -> value to put, or _DELETE; dicts keep first-insertion order.
        self._ops: dict[Key, Any] = {}
        self._closed = False

    def put(self, key: KeyLike, value: Any) -> None:
        """Queue a put (checked now, written on exit)."""
        self._check_open()
        check_value(value)
        key = write_key(key)
        self._ops.pop(key, None)
        self._ops[key] = value

    def delete(self, key: KeyLike) -> None:
        """Queue a delete."""
        self._check_open()
        key = to_key(key)
        self._ops.pop(key, None)
        self._ops[key] = _DELETE

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[tuple[Key, Any]]:
        """The queued operations: ``(key, value)`` for puts, ``(key, None)`` for deletes."""
        for key, value in self._ops.items():
            yield key, (None if value is _DELETE else value)

    def commit(self) -> None:
        """Apply the queued operations now (the ``with`` block calls this on success)."""
        self._check_open()
        self._closed = True
        puts = [(k, v) for k, v in self._ops.items() if v is not _DELETE]
        deletes = [k for k, v in self._ops.items() if v is _DELETE]
        self._ops = {}
        if puts or deletes:
            self.datastore._apply_batch(puts, deletes)

    def discard(self) -> None:
        """Drop the queued operations without applying them."""
        self._closed = True
        self._ops = {}

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this batch was already applied or discarded; start a new one")

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


class _Delete:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<delete>"


_DELETE = _Delete()
