"""Directories: objects that list the keys of other objects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..core import engine
from ..core.datastore import Datastore
from ..core.key import Key, KeyLike, to_key
from ..core.query import Cursor, Query
from .shim import ShimDatastore

__all__ = ["DIRECTORY_NAME", "DirectoryDatastore", "DirectoryTreeDatastore"]

#: DirectoryTreeDatastore keeps a key's siblings list at ``parent.instance(DIRECTORY_NAME)``.
DIRECTORY_NAME = "directory"


class DirectoryDatastore(ShimDatastore):
    """Adds directories: values that are lists of key strings, kept under their own keys."""

    def directory(self, dir_key: KeyLike) -> None:
        """Create an empty directory at ``dir_key`` unless one exists."""
        dir_key = to_key(dir_key)
        if self.child_datastore.get(dir_key) is None:
            self.child_datastore.put(dir_key, [])

    def _entries(self, dir_key: Key) -> list[str]:
        value = self.child_datastore.get(dir_key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(f"{dir_key} holds a {type(value).__name__}, not a directory")
        return list(value)

    def directory_read(self, dir_key: KeyLike) -> Iterator[Key]:
        """The keys listed in the directory at ``dir_key`` (none if it does not exist)."""
        return (Key(entry) for entry in self._entries(to_key(dir_key)))

    def directory_add(self, dir_key: KeyLike, key: KeyLike) -> None:
        """Add ``key`` to the directory at ``dir_key`` (creating it); adding twice is a no-op."""
        dir_key, entry = to_key(dir_key), str(to_key(key))
        entries = self._entries(dir_key)
        if entry not in entries:
            entries.append(entry)
            self.child_datastore.put(dir_key, entries)

    def directory_remove(self, dir_key: KeyLike, key: KeyLike) -> None:
        """Remove ``key`` from the directory at ``dir_key``; absent entries are ignored."""
        dir_key, entry = to_key(dir_key), str(to_key(key))
        entries = self._entries(dir_key)
        if entry in entries:
            entries.remove(entry)
            self.child_datastore.put(dir_key, entries)


def _is_directory_key(key: Key) -> bool:
    """True for the keys DirectoryTreeDatastore reserves (last namespace ends ``:directory``)."""
    return key._string.endswith(":" + DIRECTORY_NAME)


class DirectoryTreeDatastore(DirectoryDatastore):
    """Every put adds the key to its parent's directory; every delete removes it.

    A key's directory lives at ``key.parent.instance('directory')`` (for a
    top-level key, ``/:directory``). Every key whose last namespace ends in
    ``:directory`` is reserved: queries do not return them, and they are not
    themselves listed.
    """

    def __init__(self, datastore: Datastore) -> None:
        super().__init__(datastore)

    @staticmethod
    def _directory_of(key: Key) -> Key:
        return key.parent.instance(DIRECTORY_NAME)

    def put(self, key: KeyLike, value: Any) -> None:
        key = to_key(key)
        super().put(key, value)
        if not _is_directory_key(key):
            self.directory_add(self._directory_of(key), key)

    def delete(self, key: KeyLike) -> None:
        key = to_key(key)
        super().delete(key)
        if not _is_directory_key(key) and not key.is_root:
            self.directory_remove(self._directory_of(key), key)

    def put_many(self, items: Any) -> None:
        Datastore.put_many(self, items)

    def delete_many(self, keys: Any) -> None:
        Datastore.delete_many(self, keys)

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        Datastore._apply_batch(self, puts, deletes)

    def query(self, query: Query) -> Cursor:
        child_query = query.copy()
        child_query.offset, child_query.limit = 0, None
        pairs = (
            (k, v) for k, v in self.child_datastore.query(child_query).items()
            if not _is_directory_key(k)
        )
        return engine.run(query, pairs, scoped=True, filtered=True, ordered=True)
