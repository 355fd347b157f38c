"""Hierarchical keys: the names of objects in every datastore.

A :class:`Key` reads like a path (``/Comedy/MontyPython/Actor:JohnCleese``).
Each ``/``-separated part is a :class:`Namespace`; a namespace may carry a
*type* before a ``:`` (``Actor``) and its *value* after it (``JohnCleese``).

Keys are built in every hot path of every store, so construction keeps a fast
path for strings that are already normal (``/a/b``) and the normal string is
the only state a key carries; everything else (namespaces, sort key, hash) is
derived from it on demand.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

__all__ = ["Key", "KeyLike", "Namespace", "to_key"]


class Namespace(str):
    """One part of a key: ``field:value`` or just ``value``.

    The text splits at its first ``:`` so that ``Key('/a').instance('x:y')``
    keeps ``x:y`` as its name. A namespace without ``:`` has ``field == ''``.
    """

    __slots__ = ()

    @property
    def field(self) -> str:
        """The type part, before the first ``:`` ('' when there is none)."""
        head, sep, _ = self.partition(":")
        return head if sep else ""

    @property
    def value(self) -> str:
        """The name part, after the first ``:`` (the whole text when there is none)."""
        head, sep, tail = self.partition(":")
        return tail if sep else head


def _normalise(text: str) -> str:
    """Return the normal form of a key string: leading ``/``, no empty parts."""
    if "\x00" in text:
        raise ValueError(f"a key may not contain a NUL character: {text!r}")
    if text.startswith("/") and "//" not in text and (len(text) == 1 or text[-1] != "/"):
        return text
    parts = [p for p in text.split("/") if p]
    return "/" + "/".join(parts)


class Key:
    """An immutable, hashable, hierarchical name: ``Key('/a/b:c')``.

    Accepts a ``str``, another ``Key`` or an iterable of ``str`` namespaces.
    Keys compare equal only to keys with the same normal string, and sort
    namespace by namespace (tree order): ``/a/b`` before ``/a-b``.
    """

    __slots__ = ("_string",)
    _string: str

    def __init__(self, key: KeyLike | Iterable[str] = "/") -> None:
        cls = key.__class__
        if cls is str or isinstance(key, str):
            _set_string(self, _normalise(str(key)))
        elif isinstance(key, Key):
            _set_string(self, key._string)
        elif isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"a key must be a str, a Key or an iterable of str, not {cls.__name__};"
                " decode bytes first"
            )
        elif isinstance(key, Iterable):
            parts = list(key)
            for part in parts:
                if not isinstance(part, str):
                    raise TypeError(
                        "every namespace of a key must be a str, not "
                        f"{type(part).__name__} ({part!r})"
                    )
            _set_string(self, _normalise("/" + "/".join(parts)))
        else:
            raise TypeError(
                f"a key must be a str, a Key or an iterable of str, not {cls.__name__}"
            )

    @classmethod
    def _from_normal(cls, string: str) -> Key:
        """Build a key from a string already known to be normal (internal fast path)."""
        key = object.__new__(cls)
        _set_string(key, string)
        return key

    # -- text -----------------------------------------------------------------

    def __str__(self) -> str:
        return self._string

    def __repr__(self) -> str:
        return f"Key({self._string!r})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Key is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Key is immutable")

    # -- equality, hashing, tree order ----------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Key):
            return self._string == other._string
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, Key):
            return self._string != other._string
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._string)

    @property
    def sort_key(self) -> str:
        """A string whose plain ordering is tree order (``/`` maps below every character)."""
        return self._string.replace("/", "\x00")

    def __lt__(self, other: Key) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self.sort_key < other.sort_key

    def __le__(self, other: Key) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self.sort_key <= other.sort_key

    def __gt__(self, other: Key) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self.sort_key > other.sort_key

    def __ge__(self, other: Key) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self.sort_key >= other.sort_key

    def __reduce__(self) -> tuple[type[Key], tuple[str]]:
        return (Key, (self._string,))

    # -- parts ----------------------------------------------------------------

    @property
    def list(self) -> list[str]:
        """The namespaces as plain strings (``[]`` for the root)."""
        return self._string[1:].split("/") if len(self._string) > 1 else []

    @property
    def namespaces(self) -> builtins.list[Namespace]:
        """The namespaces, each a :class:`Namespace`."""
        return [Namespace(p) for p in self.list]

    @property
    def is_root(self) -> bool:
        return len(self._string) == 1

    @property
    def _last(self) -> Namespace:
        if len(self._string) == 1:
            raise ValueError("the root key has no name or type")
        return Namespace(self._string[self._string.rfind("/") + 1 :])

    @property
    def name(self) -> str:
        """The value of the last namespace: ``'JohnCleese'`` for ``/C/Actor:JohnCleese``."""
        return self._last.value

    @property
    def type(self) -> str:
        """The type of the last namespace: ``'Actor'`` ('' when it has none)."""
        return self._last.field

    @property
    def parent(self) -> Key:
        """The key one level up; ``Key('/')`` for a top-level key; ValueError for the root."""
        if len(self._string) == 1:
            raise ValueError("the root key has no parent")
        cut = self._string.rfind("/")
        return Key._from_normal(self._string[:cut] or "/")

    @property
    def path(self) -> Key:
        """The collection this key belongs to: its parent plus its type.

        ``Key('/C/MP/Actor:JohnCleese').path == Key('/C/MP/Actor')``;
        ``Key('/a/b').path == Key('/a')``.
        """
        string = self._string
        if len(string) == 1:
            raise ValueError("the root key belongs to no collection")
        cut = string.rfind("/")
        last = string[cut + 1 :]
        colon = last.find(":")
        if colon < 0:
            return Key._from_normal(string[:cut] or "/")
        return Key._from_normal(string[: cut + 1] + last[:colon])

    # -- building -------------------------------------------------------------

    def child(self, other: KeyLike) -> Key:
        """This key with ``other``'s namespace(s) appended."""
        tail = other._string if isinstance(other, Key) else Key(other)._string
        if len(tail) == 1:
            return self
        if len(self._string) == 1:
            return Key._from_normal(tail)
        return Key._from_normal(self._string + tail)

    def __truediv__(self, other: KeyLike) -> Key:
        return self.child(other)

    def instance(self, other: str) -> Key:
        """This key with ``:other`` appended to its last namespace: ``/a/b`` -> ``/a/b:x``."""
        if not isinstance(other, str):
            raise TypeError(f"an instance name must be a str, not {type(other).__name__}")
        if "/" in other or "\x00" in other:
            raise ValueError(f"an instance name may not contain '/' or NUL: {other!r}")
        return Key._from_normal(f"{self._string}:{other}")

    @property
    def reverse(self) -> Key:
        """The key with its namespaces in reverse order."""
        return Key(list(reversed(self.list)))

    @property
    def is_top_level(self) -> bool:
        """True for a key with exactly one namespace (``/a``)."""
        return len(self._string) > 1 and self._string.count("/") == 1

    def is_ancestor_of(self, other: KeyLike) -> bool:
        """True when ``other`` lies strictly below this key (``/foo`` is no ancestor of ``/foobar``)."""
        other_string = to_key(other)._string
        if len(self._string) == 1:
            return len(other_string) > 1
        return other_string.startswith(self._string + "/")

    def is_descendant_of(self, other: KeyLike) -> bool:
        """True when this key lies strictly below ``other``."""
        return to_key(other).is_ancestor_of(self)

    @staticmethod
    def random_key() -> Key:
        """A new key that no other call returns: ``/`` plus a random UUID in hex."""
        return Key._from_normal("/" + uuid.uuid4().hex)


KeyLike = Key | str

#: ``key._string`` of a Key: a C-level callable for ``map`` over a bulk call's keys.
string_of = attrgetter("_string")

# Keys refuse attribute assignment; construction writes the slot directly.
_set_string = Key.__dict__["_string"].__set__


def to_key(key: KeyLike) -> Key:
    """Return ``key`` as a :class:`Key` (every datastore method accepts ``str`` too)."""
    if key.__class__ is Key:
        return key
    return Key(key)
