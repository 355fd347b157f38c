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
    "by_collection", "decode_text", "encode_all", "encode_text", "join_key", "path_segments",
    "path_string", "shared_path", "split_key",
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
    return path_string(string), string[string.rfind("/") + 1 :]


def path_string(string: str) -> str:
    """``key.path`` of the normal key string ``string``, as a string (no Key is built)."""
    cut = string.rfind("/")
    colon = string.find(":", cut)
    if colon < 0:
        return string[:cut] or "/"
    return string[:colon]


def shared_path(strings: Sequence[str]) -> str | None:
    """The one path of all of ``strings`` when whole-list steps in C prove it, else None.

    A bulk write usually fills one collection: every key is the first one's
    path, then either a colon and a name without '/' (``/a/obj:1``), or a
    '/' and a name without '/' or ':' (``/a/1``). Each key starting with
    that prefix, and the keys together holding no more '/' (and, after a
    '/', no more ':') than the prefixes do, proves it for a tenth of the
    cost of a loop. None says only that the proof failed: the keys may
    still share a path.
    """
    if not strings:
        return None
    first = path_string(strings[0])
    sep = ":" if strings[0].startswith(first + ":") else "/"
    prefix = "/" if first == "/" and sep == "/" else first + sep
    if not all(map(str.startswith, strings, repeat(prefix))):
        return None
    joined = "".join(strings)
    count = len(strings)
    if joined.count("/") != count * prefix.count("/"):
        return None
    if sep == "/" and joined.count(":") != count * prefix.count(":"):
        return None
    return first


def by_collection(keys: Sequence[Key]) -> dict[str, dict[str, Key]]:
    """``keys`` grouped by :func:`split_key`: collection path -> member name -> key.

    A bulk write usually fills one collection: :func:`shared_path` proves
    it, and the names are then slices after the last '/' (the same place
    in every key), for a fraction of a :func:`split_key` call per key. A
    name given twice keeps its last key.
    """
    if len(keys) > 1:
        strings = [key._string for key in keys]
        path = shared_path(strings)
        if path is not None:
            start = strings[0].rfind("/") + 1
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
