"""FileSystemDatastore against plain files written the same way (temp file + rename)."""

from __future__ import annotations

import os
from typing import Any

from ..data import QuerySpec
from ..subject import Context, StoreSubject, Subject, Unavailable, dumps, loads


def fs_store(ctx: Context) -> Subject:
    try:
        from datastore.filesystem import FileSystemDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.filesystem: {exc}") from exc
    root = ctx.scratch("fs-store")
    return StoreSubject("FileSystemDatastore", FileSystemDatastore(root),
                        label="JSON files, temp + rename, fsync=False (the default)",
                        cleanup=lambda: _remove_tree(str(root)))


class RawFiles(Subject):
    """One JSON file per key, written to a temporary name and renamed over the target.

    The layout is the store's (``<root>/bench/obj:0000042.data``) so that both
    sides pay the same directory costs; no fsync, like the store's default.
    """

    label = "open/write/os.replace per put, no fsync"

    def __init__(self, root: str) -> None:
        self.root = root
        self.query = self._query

    def key(self, string: str) -> Any:
        parent, _, name = string.rpartition("/")
        return os.path.join(self.root + parent, name + ".data")

    def put(self, path: str, value: Any) -> None:
        temp = path + ".tmp"
        data = dumps(value)
        try:
            with open(temp, "wb") as file:
                file.write(data)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(temp, "wb") as file:
                file.write(data)
        os.replace(temp, path)

    def get(self, path: str) -> Any:
        try:
            with open(path, "rb") as file:
                return loads(file.read())
        except FileNotFoundError:
            return None

    def contains(self, path: str) -> bool:
        return os.path.isfile(path)

    def delete(self, path: str) -> None:
        try:  # noqa: SIM105 - the plain form is the faster one, and this is the baseline
            os.unlink(path)
        except FileNotFoundError:
            pass

    def _query(self, spec: QuerySpec) -> list[Any]:
        parent, _, name = spec.collection.rpartition("/")
        directory = self.root + parent
        prefix = name + ":"

        def pairs() -> Any:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith(prefix) and entry.name.endswith(".data"):
                        with open(entry.path, "rb") as file:
                            yield entry.name, loads(file.read())

        return spec.apply(pairs())

    def close(self) -> None:
        _remove_tree(self.root)


def raw_files(ctx: Context) -> Subject:
    return RawFiles(str(ctx.scratch("fs-raw")))


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
