"""A store that keeps one file per object under a root directory.

Namespaces become directories, so a person can browse the data with a file
manager; :class:`~datastore.keypath.KeyPath` decides every name, so that no
two keys share a file and no key reaches outside the root. Every write goes
to a temporary file in the target directory that is then renamed over the
object file, so a reader sees the old or the new value and never a part,
and a killed writer leaves one or the other. Any number of threads and
processes may use one root at once: nothing is locked, and the two races a
shared tree has (a directory being created by one writer while another
prunes it) are retried.

The layout, durability and concurrency rules are described in
``docs/stores/filesystem.rst``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from . import serialize
from .core import engine
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, to_key
from .core.query import Cursor, Query
from .corrupt import decode_value
from .errors import BackendError
from .keypath import KeyPath
from .urlparams import parse_bool, parse_serializer, read_options, url_path

__all__ = ["FileSystemDatastore", "from_url"]

#: How often a write retries when a concurrent delete prunes its directory.
_RETRIES = 100
#: Room kept below PATH_MAX for the temporary file name beside an object file.
_TEMP_ROOM = 32
_DEFAULT_PATH_MAX = 4096
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(
    os, "O_BINARY", 0
)


def _temp_name() -> str:
    """A fresh temporary file name. It starts with '.', which KeyPath never produces."""
    return ".tmp-" + secrets.token_hex(8)


def _fsync_dir(path: str) -> None:
    """Flush a directory's entries (a rename or a new file) to the disk."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        return  # pruned meanwhile: nothing of ours left to flush there
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSystemDatastore(Datastore):
    """``FileSystemDatastore(root, case_sensitive=True, serializer=json, fsync=False)``.

    ``root`` is created if missing. ``case_sensitive=False`` encodes
    upper-case letters in file names, for file systems that fold case.
    ``serializer`` turns values into file contents (``None``: values are
    ``bytes`` and stored as they are). ``fsync=True`` flushes every file and
    directory change to the disk before a write returns, for durability
    against power loss; without it a returned write survives a crash of the
    process (the kernel holds it) but not necessarily of the machine.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        case_sensitive: bool = True,
        serializer: Any = serialize.json,
        fsync: bool = False,
    ) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a path (str or os.PathLike), not {type(root).__name__}")
        self.root = os.path.abspath(os.fspath(root))
        self.case_sensitive = bool(case_sensitive)
        self.fsync = bool(fsync)
        self._serializer = serialize.as_bytes_serializer(serializer)
        self._paths = KeyPath(case_sensitive=self.case_sensitive)
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create the store's root {self.root!r}: {exc}") from exc
        if not os.path.isdir(self.root):
            raise ValueError(f"the store's root {self.root!r} exists and is not a directory")
        try:
            path_max = os.pathconf(self.root, "PC_PATH_MAX")
        except (OSError, ValueError, AttributeError):
            path_max = _DEFAULT_PATH_MAX
        self._max_path = (path_max if path_max > 0 else _DEFAULT_PATH_MAX) - _TEMP_ROOM

    # -- where a key lives ---------------------------------------------------------

    def _parts(self, key: Key) -> list[str]:
        """The object file's path components (ValueError if the key cannot be a file here)."""
        parts = self._paths.object_parts(key)
        length = len(os.fsencode(self.root)) + sum(len(p.encode("utf-8")) + 1 for p in parts)
        if length > self._max_path:
            raise ValueError(
                f"the key {str(key)[:60]!r}... is too deep or too long to be a file under"
                f" {self.root!r} (its path would be about {length} bytes, more than the"
                f" {self._max_path} the file system allows); use shorter keys"
            )
        return parts

    def object_path(self, key: KeyLike) -> str:
        """The absolute path of the file that holds (or would hold) ``key``.

        ValueError for the root key and for keys that cannot be a file here.
        """
        return os.path.join(self.root, *self._parts(to_key(key)))

    def _existing_path(self, key: KeyLike) -> str | None:
        """The file for ``key``, or None when the key could never have been stored."""
        key = to_key(key)  # bad key types and NUL raise here, before anything else
        try:
            return os.path.join(self.root, *self._parts(key))
        except ValueError:
            return None  # the root, or a key too long to store: it holds nothing

    # -- reading -------------------------------------------------------------------

    def _read(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as file:
                return file.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise BackendError(f"cannot read {path}: {exc}") from exc

    def get(self, key: KeyLike) -> Any:
        path = self._existing_path(key)
        if path is None:
            return None
        data = self._read(path)
        if data is None:
            return None
        return decode_value(self._serializer, data, path)

    def contains(self, key: KeyLike) -> bool:
        path = self._existing_path(key)
        return path is not None and os.path.isfile(path)

    # -- writing -------------------------------------------------------------------

    def _encode(self, key: Key, value: Any) -> tuple[list[str], bytes]:
        """Everything a write needs, computed before any write: the parts and the bytes."""
        check_value(value)
        data = self._serializer.dumps(value)
        return self._parts(key), data

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        parts, data = self._encode(key, value)
        self._write(parts, data)

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        encoded = [self._encode(key, value) for key, value in items_of(items)]
        for parts, data in encoded:
            self._write(parts, data)

    def _make_dirs(self, dir_parts: list[str]) -> None:
        """Create the directories of ``dir_parts`` below the root, one level at a time.

        FileNotFoundError means a concurrent delete pruned a level just made;
        the caller retries.
        """
        path = self.root
        for part in dir_parts:
            parent = path
            path = os.path.join(path, part)
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            if self.fsync:
                _fsync_dir(parent)

    def _create_temp(self, directory: str) -> tuple[int, str]:
        """Open a new temporary file in ``directory`` (FileNotFoundError if it is missing)."""
        while True:
            temp = os.path.join(directory, _temp_name())
            try:
                return os.open(temp, _OPEN_FLAGS, 0o666), temp
            except FileExistsError:  # pragma: no cover - 64 random bits collided
                continue

    def _write(self, parts: list[str], data: bytes) -> None:
        """Write ``data`` to the object file ``parts`` atomically: temp file, then rename."""
        dir_parts = parts[:-1]
        directory = os.path.join(self.root, *dir_parts)
        path = os.path.join(directory, parts[-1])
        try:
            for _ in range(_RETRIES):
                try:
                    fd, temp = self._create_temp(directory)
                    break
                except FileNotFoundError:
                    # A level may be pruned under us again: the next try recreates it.
                    with contextlib.suppress(FileNotFoundError):
                        self._make_dirs(dir_parts)
            else:
                raise BackendError(
                    f"could not create the directory {directory!r}: concurrent deletes kept"
                    f" removing it ({_RETRIES} tries)"
                )
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                    if self.fsync:
                        file.flush()
                        os.fsync(file.fileno())
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            if self.fsync:
                _fsync_dir(directory)
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise ValueError(
                    f"the file system refuses the name {path!r} as too long; use shorter keys"
                ) from exc
            raise BackendError(f"cannot write {path}: {exc}") from exc

    # -- deleting ------------------------------------------------------------------

    def delete(self, key: KeyLike) -> None:
        path = self._existing_path(key)
        if path is None:
            return
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise BackendError(f"cannot delete {path}: {exc}") from exc
        self._prune(os.path.dirname(path))

    def _prune(self, directory: str) -> None:
        """Remove ``directory`` and its ancestors while they are empty, never the root.

        A directory that is not empty (or already gone) stops the climb; a
        concurrent writer that loses its directory here recreates it.
        """
        deepest = directory
        while directory != self.root and directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                break
            directory = os.path.dirname(directory)
            deepest = directory
        if self.fsync:
            _fsync_dir(deepest)

    # -- queries -------------------------------------------------------------------

    def _list(self, dir_parts: list[str]) -> list[tuple[str, bool, bool]]:
        """``(name, is_file, is_dir)`` for each entry of a directory ([] if it is missing)."""
        directory = os.path.join(self.root, *dir_parts)
        try:
            with os.scandir(directory) as entries:
                return [
                    (e.name, e.is_file(), e.is_dir(follow_symlinks=False))
                    for e in entries
                    if not e.name.startswith(".")
                ]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                return []  # deeper than any file this store can write
            raise BackendError(f"cannot list {directory}: {exc}") from exc

    def _candidates(self, query: Query) -> Iterator[tuple[list[str], str]]:
        """``(dir_parts, file_name)`` of every object file that may be in the query's scope."""
        for index, (dir_parts, type_prefix) in enumerate(self._sources(query.key)):
            if index == 0 and query.recursive:
                yield from self._walk(dir_parts)
                continue
            for name, is_file, _ in self._list(dir_parts):
                if is_file and (type_prefix is None or name.startswith(type_prefix)):
                    yield dir_parts, name

    def _sources(self, collection: Key) -> list[tuple[list[str], str | None]]:
        """KeyPath's places for a collection's objects, less those no file name can reach.

        A collection whose last namespace is nearly as long as a file name
        allows has a directory but no room for typed siblings (``name:x``);
        one whose namespaces are too long for any file holds nothing at all.
        """
        try:
            return self._paths.collection_sources(collection)
        except ValueError:
            pass
        try:
            return [(self._paths.dir_parts(collection), None)]
        except ValueError:
            return []

    def _walk(self, top: list[str]) -> Iterator[tuple[list[str], str]]:
        """Every object file below ``top``, depth first (directory symlinks are not followed)."""
        stack = [top]
        while stack:
            dir_parts = stack.pop()
            for name, is_file, is_dir in self._list(dir_parts):
                if is_file:
                    yield dir_parts, name
                elif is_dir:
                    stack.append([*dir_parts, name])

    def _pairs(self, query: Query) -> Iterator[tuple[Key, Any]]:
        """The in-scope ``(key, value)`` pairs, each file read only when it is reached."""
        in_scope = engine.scope_test(query.key, query.recursive)
        need_values = not query.keys_only or bool(query.filters) or bool(query.orders)
        paths = self._paths
        for dir_parts, name in self._candidates(query):
            if not paths.is_object_name(name):
                continue
            try:
                key = paths.key_for(dir_parts, name)
                # Only files whose name is exactly what this store would write count:
                # foreign files (or another case mode's) are not objects of this store.
                if key is None or paths.object_parts(key) != [*dir_parts, name]:
                    continue
            except ValueError:
                continue
            if not in_scope(key):
                continue
            if not need_values:
                yield key, None
                continue
            path = os.path.join(self.root, *dir_parts, name)
            data = self._read(path)
            if data is None:
                continue  # deleted since it was listed
            yield key, decode_value(self._serializer, data, path)

    def query(self, query: Query) -> Cursor:
        return engine.run(query, self._pairs(query), scoped=True)

    def __repr__(self) -> str:
        return f"<FileSystemDatastore {self.root!r}>"


def from_url(url: str, **options: Any) -> FileSystemDatastore:
    """Opener for ``file:///abs/path`` (``file://./rel``, ``file://~/x``).

    Query options: ``case_sensitive``, ``fsync`` (true/false) and
    ``serializer`` (json, prettyjson, msgpack, none).
    """
    kwargs = read_options(
        url,
        {"case_sensitive": parse_bool, "fsync": parse_bool, "serializer": parse_serializer},
        options,
    )
    return FileSystemDatastore(url_path(url), **kwargs)
