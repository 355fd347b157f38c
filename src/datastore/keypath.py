"""Mapping keys to relative file paths and back, for stores laid out as trees of files.

The filesystem, git and S3 stores keep one file (object) per key, with
namespaces as directories so that a person can browse the data. This module
is the one place that decides the names, so that all three agree and no key
can alias another or escape the store's root.

Layout: the object ``/Comedy/MontyPython/Actor:JohnCleese`` lives at
``Comedy/MontyPython/Actor:JohnCleese<suffix>`` (suffix ``.data`` by
default). Directories carry no suffix and object files always do, so an
object ``/a`` (file ``a.data``) and a collection ``/a/...`` (directory ``a``)
coexist, and ``/a:b``, ``/a/b`` and ``/a/b:`` are three different files.

Each namespace is encoded so that the name is one safe path component:
``%``, ``/``, ``\\``, control characters and (on case-insensitive stores)
upper-case letters become ``%xx`` (lower-case hex); a leading ``.`` is
encoded too, so ``.`` and ``..`` cannot occur and every name that starts
with ``.`` (temporary files) is the store's own; a name that would end with
the object suffix has that suffix's dot encoded, so a directory never looks
like an object. A component longer than the file system allows is refused
with ValueError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .core.key import Key

__all__ = ["MAX_NAME_BYTES", "KeyPath"]

#: Longest file name (in UTF-8 bytes) most file systems accept.
MAX_NAME_BYTES = 255

_UNSAFE = re.compile(r"[%/\\\x00-\x1f\x7f]")
_UNSAFE_NOCASE = re.compile(r"[%/\\\x00-\x1f\x7fA-Z]")
_ESCAPE = re.compile(r"%([0-9a-fA-F]{2})")


def _hex(match: re.Match[str]) -> str:
    return "".join(f"%{b:02x}" for b in match.group(0).encode("utf-8"))


class KeyPath:
    """Translates between keys and ``/``-joined relative paths.

    ``case_sensitive=False`` encodes upper-case letters so that two keys
    differing only in case never share a file on a case-insensitive file
    system (or object store).
    """

    def __init__(self, suffix: str = ".data", *, case_sensitive: bool = True) -> None:
        if not suffix.startswith(".") or "/" in suffix or len(suffix) < 2:
            raise ValueError(f"an object suffix looks like '.data', not {suffix!r}")
        self.suffix = suffix
        self._unsafe = _UNSAFE if case_sensitive else _UNSAFE_NOCASE

    # -- names -------------------------------------------------------------------

    def encode(self, namespace: str) -> str:
        """The path component for one namespace (no suffix)."""
        name = self._unsafe.sub(_hex, namespace)
        if name.startswith("."):
            name = "%2e" + name[1:]
        if name.endswith(self.suffix):
            cut = len(name) - len(self.suffix)
            name = name[:cut] + "%2e" + name[cut + 1 :]
        if len(name.encode("utf-8")) + len(self.suffix) > MAX_NAME_BYTES:
            raise ValueError(
                f"the key namespace {namespace[:40]!r}... is too long to be a file name"
                f" (at most about {MAX_NAME_BYTES - len(self.suffix)} bytes once encoded);"
                " use shorter namespaces"
            )
        return name

    @staticmethod
    def decode(name: str) -> str:
        """The namespace a path component (without suffix) stands for."""
        if "%" not in name:
            return name
        raw = _ESCAPE.sub(lambda m: "\x00" + m.group(1), name)
        # Re-assemble escaped UTF-8 byte runs into characters.
        out = bytearray()
        i = 0
        while i < len(raw):
            if raw[i] == "\x00":
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
            else:
                out += raw[i].encode("utf-8")
                i += 1
        return out.decode("utf-8")

    # -- keys and paths ------------------------------------------------------------

    def dir_parts(self, key: Key) -> list[str]:
        """The directory components of a collection key (its namespaces, encoded)."""
        return [self.encode(ns) for ns in key.list]

    def object_parts(self, key: Key) -> list[str]:
        """The path components of the file holding ``key`` (ValueError for the root)."""
        parts = key.list
        if not parts:
            raise ValueError("the root key '/' has no file; it cannot hold a value")
        encoded = [self.encode(ns) for ns in parts]
        encoded[-1] += self.suffix
        return encoded

    def object_path(self, key: Key) -> str:
        """``object_parts`` joined with ``/``."""
        return "/".join(self.object_parts(key))

    def is_object_name(self, name: str) -> bool:
        """True for a file name that holds an object (not a directory or temporary file)."""
        return name.endswith(self.suffix) and not name.startswith(".") and len(name) > len(self.suffix)

    def key_for(self, dir_parts: Iterable[str], name: str) -> Key | None:
        """The key of the object file ``name`` in directory ``dir_parts`` (None if not an object)."""
        if not self.is_object_name(name):
            return None
        namespaces = [self.decode(p) for p in dir_parts]
        namespaces.append(self.decode(name[: -len(self.suffix)]))
        return Key(namespaces)

    def key_for_path(self, path: str) -> Key | None:
        """The key of the object at relative ``path`` (``a/b.data``), or None."""
        parts = path.split("/")
        return self.key_for(parts[:-1], parts[-1])

    # -- where a collection's objects are --------------------------------------------

    def collection_sources(self, collection: Key) -> list[tuple[list[str], str | None]]:
        """Where the objects whose ``key.path`` is ``collection`` can be.

        Returns ``(dir_parts, type_prefix)`` pairs: every untyped object file
        directly in ``dir_parts`` (``type_prefix`` None), or every object file
        directly in ``dir_parts`` whose name starts with ``type_prefix``
        (typed keys ``/parent/Type:name`` live beside the collection's
        directory, in its parent). The caller still checks each candidate key's
        path; this only says which directories to list.
        """
        sources: list[tuple[list[str], str | None]] = [(self.dir_parts(collection), None)]
        if not collection.is_root:
            last = collection.list[-1]
            if ":" not in last:
                sources.append((self.dir_parts(collection.parent), self.encode(last + ":")))
        return sources
