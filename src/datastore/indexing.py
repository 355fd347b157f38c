"""Key <-> (collection, member name) for stores that must keep their own query index.

Key-value servers such as Redis and memcached cannot list "the objects of
collection ``/a``" on their own, so their stores keep an index per
collection. An object's collection is ``key.path`` (:mod:`datastore.core.key`)
and, inside its collection, an object is named by the key's last namespace:
``/C/MP/Actor:JohnCleese`` is member ``Actor:JohnCleese`` of ``/C/MP/Actor``
and ``/a/b`` is member ``b`` of ``/a``. The pair names the key exactly (see
:func:`join_key`), so an index holds member names only and the key is rebuilt
from them. This module is that one mapping, shared by every such store.

Key text may hold lone surrogates (a Python ``str`` can); :func:`encode_text`
keeps them (UTF-8 with ``surrogatepass``), and since UTF-8 preserves code
point order, byte order of encoded text is code point order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat

from .core.key import Key

__all__ = [
    "by_collection", "decode_text", "encode_all", "encode_text", "join_key", "path_segments", "split_key",
]


def encode_text(text: str) -> bytes:
    """``text`` as UTF-8 bytes (lone surrogates kept, order by code point preserved)."""
    return text.encode("utf-8", "surrogatepass")


def encode_all(head: bytes, keys: Iterable[Key]) -> list[bytes]:
    """``head + encode_text(key string)`` of each key, built by a few calls over the whole batch.

    A bulk call's hot path: one join, one encode, one replace and one split
    cost a third of a Python loop doing the same per key. Key strings never
    hold NUL, so NUL can part them (a ``head`` holding NUL takes the loop).
    """
    strings = [key._string for key in keys]
    if not strings or b"\0" in head:
        return [head + encode_text(string) for string in strings]
    joined = "\0".join(strings).encode("utf-8", "surrogatepass")
    return (head + joined.replace(b"\0", b"\0" + head)).split(b"\0")


def decode_text(data: bytes) -> str:
    """The inverse of :func:`encode_text`."""
    return data.decode("utf-8", "surrogatepass")


def split_key(key: Key) -> tuple[str, str]:
    """``(collection path string, member name)`` of a non-root key.

    The collection is ``key.path`` as a string. It is ``/`` for top-level
    keys and ends with ``/`` for a key whose last namespace has an empty type
    (``/a/:x`` is in ``/a/``: no collection query names it, only recursive
    ones above it do, exactly as the naive engine scopes it).
    """
    string = key._string
    cut = string.rfind("/")
    last = string[cut + 1 :]
    colon = last.find(":")
    if colon < 0:
        return (string[:cut] or "/"), last
    return string[: cut + 1] + last[:colon], last


def by_collection(keys: Sequence[Key]) -> dict[str, dict[str, Key]]:
    """``keys`` grouped by :func:`split_key`: collection path -> member name -> key.

    A bulk write usually fills one collection. When every key starts with
    the first one's collection prefix (up to its last '/', plus its type
    and colon if it has one) and the keys hold no more '/' (nor, untyped,
    ':') than the prefixes do, they all split there: two counts over the
    joined keys prove it, and the names are slices, for a fraction of a
    :func:`split_key` call per key. A name given twice keeps its last key.
    """
    if len(keys) > 1:
        strings = [key._string for key in keys]
        path, name = split_key(keys[0])
        start = len(strings[0]) - len(name)
        colon = name.find(":")
        prefix = strings[0][: start + colon + 1]
        joined = "".join(strings)
        if (all(map(str.startswith, strings, repeat(prefix)))
                and joined.count("/") == len(strings) * prefix.count("/")
                and (colon >= 0 or joined.count(":") == len(strings) * prefix.count(":"))):
            return {path: dict(zip([s[start:] for s in strings], keys, strict=True))}
    grouped: dict[str, dict[str, Key]] = {}
    for key in keys:
        path, name = split_key(key)
        grouped.setdefault(path, {})[name] = key
    return grouped


def join_key(path: str, name: str) -> Key:
    """The key whose :func:`split_key` is ``(path, name)``.

    A typed name (``Actor:JohnCleese``) sits beside its collection's last
    namespace (the type); an untyped one sits below the collection.
    """
    if ":" in name:
        return Key._from_normal(f"{path[: path.rfind('/')]}/{name}")
    parent = "" if path == "/" else path
    return Key._from_normal(f"{parent}/{name}")


def path_segments(path: str) -> list[str]:
    """The namespaces of a collection path (``/a/`` gives ``['a', '']``, ``/`` gives ``[]``)."""
    return [] if path == "/" else path[1:].split("/")
