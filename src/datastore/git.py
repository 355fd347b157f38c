"""A versioned store in a git repository: :class:`GitDatastore`, on dulwich.

Each key is one file in the tree of a branch, at the path
:class:`~datastore.keypath.KeyPath` gives it (the filesystem store's layout),
with ``.json`` files of pretty-printed, key-sorted JSON by default so that
``git log -p`` and ``git diff`` read well. Every write is one commit on the
branch; bulk calls and batches are one commit each, so they are atomic.
:meth:`GitDatastore.history` lists the commits that changed a key and
``get(key, version=commit)`` reads an old value.

A write never touches a working tree or index: it writes the blob, trees and
commit into the object store first and then moves the branch ref with a
compare-and-swap (git's own ``ref.lock`` protocol), so a crash at any moment
leaves the repository valid, with the branch at the old or the new commit.

Importing this module imports dulwich (or raises :class:`~datastore.MissingDriver`
naming the ``git`` extra); ``import datastore`` alone never does.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

try:
    from dulwich.errors import NotGitRepository
    from dulwich.file import FileLocked
    from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tree
    from dulwich.objectspec import parse_commit
    from dulwich.refs import Ref, check_ref_format
    from dulwich.repo import Repo
except ImportError:  # pragma: no cover - exercised where dulwich is absent
    from .drivers import require

    require("dulwich", backend="GitDatastore", extra="git")
    raise

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the ref compare-and-swap still guards writes
    fcntl = None  # type: ignore[assignment]

from . import serialize
from .core import engine
from .core.datastore import Datastore, check_value, items_of, write_key
from .core.key import Key, KeyLike, to_key
from .core.query import Cursor, Query
from .corrupt import decode_value
from .errors import BackendError, ClosedError
from .keypath import KeyPath
from .urlparams import parse_serializer, read_options, url_path

__all__ = ["DEFAULT_AUTHOR", "GitDatastore", "Revision", "from_url"]

_T = TypeVar("_T")

#: The author of commits when neither ``author=`` nor the repository's ``user.name``/``user.email`` says.
DEFAULT_AUTHOR = "datastore <datastore@localhost>"
#: A ``ref.lock`` older than this (seconds) is taken to be left by a crashed writer.
STALE_REF_LOCK_SECONDS = 10.0
#: How long a write waits for a ref lock held by another git process before giving up.
LOCK_TIMEOUT_SECONDS = 30.0
#: Commits that add more new objects than this write one pack instead of loose objects.
PACK_OBJECTS_FROM = 64
#: Parsed trees kept in memory (trees are immutable: a cache entry never goes stale).
TREE_CACHE_SIZE = 4096

_FILE_MODE = 0o100644
_AUTHOR = re.compile(r"^[^<>\n]+ <[^<>\n]*>$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MESSAGE_KEYS = 50  # keys listed in a bulk commit's message body

# One lock per repository in this process, shared by every store opened on it.
_REPO_LOCKS: dict[str, threading.RLock] = {}
_REPO_LOCKS_GUARD = threading.Lock()


def _repo_lock(controldir: str) -> threading.RLock:
    with _REPO_LOCKS_GUARD:
        return _REPO_LOCKS.setdefault(os.path.realpath(controldir), threading.RLock())


def _printable(key: Key) -> str:
    """A key as it appears in a commit message: control characters escaped."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(key))


@dataclass(frozen=True)
class Revision:
    """One commit that changed a key, as :meth:`GitDatastore.history` lists it."""

    #: The commit id (40 hex digits): pass it as ``get(key, version=id)``.
    id: str
    #: The commit message (``put /a/b``, ``delete /a/b``, ``batch: ...``).
    message: str
    #: When the commit was authored, with the author's UTC offset.
    time: datetime
    #: ``Name <email>``.
    author: str


class GitDatastore(Datastore):
    """A store whose objects are files on one branch of a git repository.

    ``path`` is a repository, bare or not; a path that does not exist (or an
    empty directory) becomes a new *bare* repository whose ``HEAD`` names
    ``branch``. ``author`` (``'Name <email>'``) signs the commits, by default
    the repository's ``user.name``/``user.email`` or :data:`DEFAULT_AUTHOR`.
    ``serializer`` turns values into file bytes: pretty-printed JSON by default;
    JSON serializers give ``.json`` files, any other (or ``None``, raw bytes)
    ``.data`` files.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        branch: str = "main",
        author: str | None = None,
        serializer: Any = serialize.prettyjson,
    ) -> None:
        if not isinstance(branch, str) or not check_ref_format(Ref(b"refs/heads/" + branch.encode())):
            raise ValueError(f"{branch!r} is not a valid git branch name")
        self.path = os.fspath(path)
        self.branch = branch
        self._ref = Ref(b"refs/heads/" + branch.encode())
        self.serializer = serialize.as_bytes_serializer(serializer)
        suffix = ".json" if isinstance(self.serializer, serialize.JSONSerializer) else ".data"
        self.keypath = KeyPath(suffix)
        self._repo = self._open(self.path)
        self.author = self._author(author)
        self._lock = _repo_lock(self._repo.controldir())
        self._lock_file: int | None = None
        self._open_fds: list[int] = []
        self._swept = False
        self._trees: OrderedDict[bytes, Tree] = OrderedDict()
        self._closed = False
        # A store dropped without close() still releases its pack files, before
        # interpreter shutdown rather than in dulwich's noisy __del__ methods.
        self._release = weakref.finalize(self, _release, self._repo, self._open_fds)

    # -- opening -------------------------------------------------------------------

    def _open(self, path: str) -> Repo:
        """Open the repository at ``path``, creating a bare one where there is none."""
        if not os.path.exists(path) or (os.path.isdir(path) and not os.listdir(path)):
            os.makedirs(path, exist_ok=True)
            return Repo.init_bare(path, default_branch=self.branch.encode())
        try:
            return Repo(path)
        except NotGitRepository:
            raise ValueError(
                f"{path!r} exists but is not a git repository; give a repository, an empty"
                " directory or a path that does not exist yet"
            ) from None

    def _author(self, author: str | None) -> str:
        if author is None:
            config = self._repo.get_config_stack()
            try:
                name = config.get((b"user",), b"name").decode()
                email = config.get((b"user",), b"email").decode()
                author = f"{name} <{email}>"
            except KeyError:
                author = DEFAULT_AUTHOR
        if not isinstance(author, str) or not _AUTHOR.match(author):
            raise ValueError(f"author must look like 'Name <email@example.com>', not {author!r}")
        return author

    # -- names -------------------------------------------------------------------------

    def _parts(self, key: KeyLike) -> list[bytes] | None:
        """The path components of ``key``'s file, or None when no file can hold it."""
        key = to_key(key)
        if key.is_root:
            return None
        try:
            return [part.encode("utf-8") for part in self.keypath.object_parts(key)]
        except ValueError:
            return None

    def _key_of(self, dir_parts: list[str], name: str) -> Key | None:
        """The key of file ``name`` in ``dir_parts``; None unless this store would name it so.

        Other files (a ``README``, ``a%41.json``, which decodes to the key of
        ``aA.json``) are not objects of this store, so a key is never listed twice.
        """
        try:
            key = self.keypath.key_for(dir_parts, name)
            if key is None or self.keypath.object_parts(key) != [*dir_parts, name]:
                return None
        except ValueError:  # an escape that decodes to no text, or a NUL
            return None
        return key

    def _parts_for_write(self, key: Key) -> list[bytes]:
        return [part.encode("utf-8") for part in self.keypath.object_parts(key)]

    # -- reading the object store -----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"{self!r} is closed; open a new store")

    def _tree(self, tree_id: bytes) -> Tree:
        """The tree ``tree_id`` (cached: a tree's id is its content)."""
        tree = self._trees.get(tree_id)
        if tree is not None:
            self._trees.move_to_end(tree_id)
        else:
            obj = self._repo.object_store[ObjectID(tree_id)]
            if not isinstance(obj, Tree):
                raise BackendError(f"git object {tree_id.decode()} is not a tree")
            tree = obj
            self._trees[tree_id] = tree
            if len(self._trees) > TREE_CACHE_SIZE:
                self._trees.popitem(last=False)
        return tree

    def _head(self) -> bytes | None:
        """The commit the branch points at (None before the first write)."""
        try:
            return bytes(self._repo.refs[self._ref])
        except KeyError:
            return None

    def _commit_tree(self, commit_id: bytes | None) -> bytes | None:
        if commit_id is None:
            return None
        commit = self._repo.object_store[ObjectID(commit_id)]
        if not isinstance(commit, Commit):
            raise BackendError(f"git object {commit_id.decode()} is not a commit")
        return bytes(commit.tree)

    def _resolve(self, version: str | None) -> bytes | None:
        """The commit to read: the branch head, or ``version`` (any commit-ish)."""
        if version is None:
            return self._head()
        if not isinstance(version, str) or not version:
            raise TypeError(f"version must be a commit id (str), not {version!r}")
        try:
            return bytes(parse_commit(self._repo, version.encode()).id)
        except (KeyError, ValueError):
            raise ValueError(f"no commit {version!r} in {self.path!r}; use an id from history()") from None

    def _entry(self, tree_id: bytes | None, parts: list[bytes]) -> tuple[int, bytes] | None:
        """The (mode, id) at path ``parts`` below ``tree_id``, or None."""
        for i, name in enumerate(parts):
            if tree_id is None:
                return None
            tree = self._tree(tree_id)
            if name not in tree:
                return None
            mode, sha = tree[name]
            if i == len(parts) - 1:
                return mode, bytes(sha)
            tree_id = bytes(sha) if stat.S_ISDIR(mode) else None
        return None

    def _blob_id(self, tree_id: bytes | None, parts: list[bytes]) -> bytes | None:
        entry = self._entry(tree_id, parts)
        return entry[1] if entry is not None and stat.S_ISREG(entry[0]) else None

    def _blob(self, blob_id: bytes) -> bytes:
        obj = self._repo.object_store[ObjectID(blob_id)]
        if not isinstance(obj, Blob):
            raise BackendError(f"git object {blob_id.decode()} is not a blob")
        return obj.as_raw_string()

    def _decode(self, data: bytes, commit_id: bytes | None, parts: list[bytes]) -> Any:
        """A file's value; bytes the serializer cannot read raise CorruptValueError naming the file."""
        commit = "" if commit_id is None else commit_id.decode()[:12]
        where = f"{self.path} (commit {commit}) {b'/'.join(parts).decode()}"
        return decode_value(self.serializer, data, where)

    # -- the read contract --------------------------------------------------------------------

    def get(self, key: KeyLike, version: str | None = None) -> Any:
        """The value of ``key`` on the branch, or as of commit ``version`` (None if absent)."""
        self._check_open()
        parts = self._parts(key)
        with self._lock:
            commit_id = self._resolve(version)
            if parts is None:
                return None
            blob_id = self._blob_id(self._commit_tree(commit_id), parts)
            if blob_id is None:
                return None
            data = self._blob(blob_id)
        return self._decode(data, commit_id, parts)

    def contains(self, key: KeyLike) -> bool:
        """True when the branch's tree has the key's file (its content is not read)."""
        self._check_open()
        parts = self._parts(key)
        if parts is None:
            return False
        with self._lock:
            return self._blob_id(self._commit_tree(self._head()), parts) is not None

    def get_many(self, keys: Iterable[KeyLike]) -> list[Any]:
        """Values of ``keys``, all read from one commit (a consistent snapshot)."""
        self._check_open()
        all_parts = [self._parts(key) for key in keys]
        with self._lock:
            head = self._head()
            tree_id = self._commit_tree(head)
            blobs = [None if p is None else self._blob_id(tree_id, p) for p in all_parts]
            data = [None if b is None else self._blob(b) for b in blobs]
        return [
            None if d is None or p is None else self._decode(d, head, p)
            for d, p in zip(data, all_parts, strict=True)
        ]

    def history(self, key: KeyLike, limit: int | None = None) -> list[Revision]:
        """The commits on the branch that changed ``key`` (put or delete), newest first.

        A commit counts when the key's file differs from every parent's (so a
        merge that took the key from one side is not listed, as in ``git log``).
        """
        self._check_open()
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be an int >= 0 or None, not {limit!r}")
        parts = self._parts(key)
        revisions: list[Revision] = []
        if parts is None:
            return revisions
        with self._lock:
            head = self._head()
            if head is None:
                return revisions
            for entry in self._repo.get_walker(include=[ObjectID(head)]):
                if limit is not None and len(revisions) >= limit:
                    break
                commit = entry.commit
                mine = self._blob_id(bytes(commit.tree), parts)
                parents = [self._blob_id(self._commit_tree(bytes(p)), parts) for p in commit.parents]
                if (parents and all(mine != theirs for theirs in parents)) or (not parents and mine):
                    revisions.append(_revision(commit))
        return revisions

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold this process's lock for the repository and, where there is flock, every process's."""
        with self._lock:
            self._check_open()
            if fcntl is None:
                yield
                return
            if self._lock_file is None:
                self._lock_file = os.open(
                    os.path.join(self._repo.controldir(), "datastore-writer.lock"),
                    os.O_RDWR | os.O_CREAT,
                    0o644,
                )
                self._open_fds.append(self._lock_file)
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                self._recover_ref_update()
                if not self._swept:
                    self._sweep_object_locks()
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    # The writer lock file doubles as a journal of one line: "ref-update REF"
    # while a writer moves REF. Finding it on taking the lock means that writer
    # died holding REF's git lock file, which is then known to be stale.

    def _journal(self, ref: bytes | None) -> None:
        fd = self._lock_file
        if fd is None:
            return
        line = b"" if ref is None else b"ref-update " + ref + b"\n"
        os.ftruncate(fd, 0)
        if line:
            os.pwrite(fd, line, 0)

    def _recover_ref_update(self) -> None:
        """Remove the ref lock of a writer that died while moving a branch (see :meth:`_journal`)."""
        assert self._lock_file is not None
        line = os.pread(self._lock_file, 4096, 0)
        if not line:
            return
        ref = line.removeprefix(b"ref-update ").rstrip(b"\n")
        if ref.startswith(b"refs/heads/") and check_ref_format(Ref(ref)):
            lock = os.path.join(self._repo.controldir(), *ref.decode().split("/")) + ".lock"
            with suppress(FileNotFoundError):
                os.remove(lock)
        self._journal(None)

    def _sweep_object_locks(self) -> None:
        """Remove the half-written objects of crashed writers.

        Those are ``objects/xx/*.lock`` (loose objects) and
        ``objects/pack/tmp*.pack`` (packs): only dulwich names its temporaries
        so (git itself uses ``tmp_obj_*`` and ``tmp_pack_*``), and every
        datastore writer holds the flock we hold now, so none is in use.
        Done once per store; leftovers of later crashes (in other processes)
        that a write runs into are removed by :meth:`_locked_retry`.
        """
        self._swept = True
        objects = os.path.join(self._repo.controldir(), "objects")
        for entry in os.scandir(objects):
            if len(entry.name) == 2 and entry.is_dir():
                for item in os.scandir(entry.path):
                    if item.name.endswith(".lock"):
                        with suppress(FileNotFoundError):
                            os.remove(item.path)
        packs = os.path.join(objects, "pack")
        for item in os.scandir(packs) if os.path.isdir(packs) else ():
            name = item.name
            if name.startswith("tmp") and not name.startswith("tmp_") and name.endswith(".pack"):
                with suppress(FileNotFoundError):
                    os.remove(item.path)

    def _locked_retry(self, action: Callable[[], _T]) -> _T:
        """Run ``action``, getting past git lock files left behind by crashed writers.

        Called with the writer lock held, so no other datastore writer is
        mid-write: an object's ``.lock`` (git itself never makes those) is
        stale at once; a ref's ``.lock`` may be a running git command's, so it
        counts as stale only after :data:`STALE_REF_LOCK_SECONDS`.
        """
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                return action()
            except FileLocked as exc:
                lock = os.fsdecode(exc.lockfilename)
                objects_dir = os.path.join(self._repo.controldir(), "objects") + os.sep
                try:
                    age = time.time() - os.stat(lock).st_mtime
                except FileNotFoundError:
                    continue  # released meanwhile
                if lock.startswith(objects_dir) or age > STALE_REF_LOCK_SECONDS:
                    with suppress(FileNotFoundError):
                        os.remove(lock)
                    continue
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"{lock} has been held for {age:.0f}s by another git process; if none"
                        " is running, remove the file"
                    ) from exc
                time.sleep(0.05)

    def _edit(
        self,
        tree_id: bytes | None,
        changes: list[tuple[list[bytes], bytes | None]],
        new: list[ShaFile],
        where: bytes = b"",
    ) -> bytes | None:
        """The id of ``tree_id`` with ``changes`` applied (None when it ends up empty).

        ``changes`` are (path parts, blob id or None to remove); new trees are
        appended to ``new``. Directories left empty disappear, as in git.
        """
        tree = Tree() if tree_id is None else self._tree(tree_id).copy()
        assert isinstance(tree, Tree)
        nested: dict[bytes, list[tuple[list[bytes], bytes | None]]] = {}
        for parts, blob_id in changes:
            name = parts[0]
            if len(parts) > 1:
                nested.setdefault(name, []).append((parts[1:], blob_id))
            elif blob_id is not None:
                tree[name] = (_FILE_MODE, ObjectID(blob_id))
            elif name in tree:
                del tree[name]
        for name, subchanges in nested.items():
            old: bytes | None = None
            if name in tree:
                mode, sha = tree[name]
                if not stat.S_ISDIR(mode):
                    raise ValueError(
                        f"{(where + name).decode(errors='replace')!r} is a file in the repository,"
                        " not a directory, so no key below it can be stored"
                    )
                old = bytes(sha)
            sub = self._edit(old, subchanges, new, where + name + b"/")
            if sub is None:
                if name in tree:
                    del tree[name]
            else:
                tree[name] = (stat.S_IFDIR, ObjectID(sub))
        if not len(tree):
            return None
        if tree_id is not None and bytes(tree.id) == tree_id:
            return tree_id
        new.append(tree)
        return bytes(tree.id)

    def _commit(self, changes: Mapping[Key, bytes | None], message: str) -> str | None:
        """Commit ``changes`` (key -> file bytes, or None to delete) as one commit on the branch.

        Returns the new commit's id, or None when nothing changed (a delete
        of absent keys, a put of an identical value): like git, no empty commits.
        """
        blobs = {key: None if data is None else Blob.from_string(data) for key, data in changes.items()}
        paths = [(self._parts_for_write(key), blob) for key, blob in blobs.items()]
        edits = [(parts, None if blob is None else bytes(blob.id)) for parts, blob in paths]
        with self._writing():
            while True:
                head = self._head()
                base = self._commit_tree(head)
                new: list[ShaFile] = [blob for blob in blobs.values() if blob is not None]
                tree_id = self._edit(base, edits, new)
                if tree_id is None:  # every key deleted: git's empty tree
                    empty = Tree()
                    new.append(empty)
                    tree_id = bytes(empty.id)
                if tree_id == base:
                    return None
                commit = self._new_commit(tree_id, head, message)
                new.append(commit)
                self._store(new)
                self._journal(self._ref)
                try:
                    swapped = self._locked_retry(partial(self._move_branch, head, commit.id))
                finally:
                    self._journal(None)
                if swapped:
                    return commit.id.decode()
                # Another process moved the branch meanwhile: redo on top of its commit.

    def _move_branch(self, old: bytes | None, new: ObjectID) -> bool:
        """Point the branch at ``new`` if it still points at ``old`` (compare-and-swap)."""
        refs = self._repo.refs
        if old is None:
            return bool(refs.add_if_new(self._ref, new))
        return bool(refs.set_if_equals(self._ref, ObjectID(old), new))

    def _new_commit(self, tree_id: bytes, parent: bytes | None, message: str) -> Commit:
        commit = Commit()
        commit.tree = ObjectID(tree_id)
        commit.parents = [] if parent is None else [ObjectID(parent)]
        commit.author = commit.committer = self.author.encode("utf-8")
        now = int(time.time())
        offset = datetime.now().astimezone().utcoffset() or timedelta(0)
        commit.author_time = commit.commit_time = now
        commit.author_timezone = commit.commit_timezone = int(offset.total_seconds())
        commit.message = message.encode("utf-8") + b"\n"
        return commit

    def _store(self, objects: list[ShaFile]) -> None:
        """Write objects: loose for a few, one pack for many (thousands of loose files are slow)."""
        store = self._repo.object_store
        if len(objects) >= PACK_OBJECTS_FROM:
            store.add_objects([(obj, None) for obj in objects])
            return
        for obj in objects:
            self._locked_retry(partial(store.add_object, obj))

    def _encode(self, key: Key, value: Any) -> bytes:
        check_value(value)
        self._parts_for_write(key)  # refuses a key no file can hold, before anything is written
        data: bytes = self.serializer.dumps(value)
        return data

    def put(self, key: KeyLike, value: Any) -> None:
        key = write_key(key)
        data = self._encode(key, value)
        self._commit({key: data}, f"put {_printable(key)}")

    def delete(self, key: KeyLike) -> None:
        self._check_open()
        parts = self._parts(key)
        if parts is not None:
            key = to_key(key)
            self._commit({key: None}, f"delete {_printable(key)}")

    def put_many(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> None:
        """Store many values in one commit."""
        changes = {key: self._encode(key, value) for key, value in items_of(items)}
        if changes:
            self._commit(changes, _message("put_many", changes))

    def delete_many(self, keys: Iterable[KeyLike]) -> None:
        """Remove many keys in one commit."""
        self._check_open()
        doomed = [to_key(k) for k in keys]
        changes: dict[Key, bytes | None] = {k: None for k in doomed if self._parts(k) is not None}
        if changes:
            self._commit(changes, _message("delete_many", changes))

    def _apply_batch(self, puts: list[tuple[Key, Any]], deletes: list[Key]) -> None:
        # One commit, one ref update: a batch is applied entirely or not at all.
        changes: dict[Key, bytes | None] = {key: self._encode(key, value) for key, value in puts}
        changes.update((key, None) for key in deletes if self._parts(key) is not None)
        if changes:
            self._commit(changes, _message("batch", changes))

    # -- queries ---------------------------------------------------------------------------------

    def _files(
        self, tree_id: bytes | None, dir_parts: list[str], deep: bool, name_prefix: str = ""
    ) -> Iterator[tuple[Key, bytes]]:
        """(key, blob id) of the object files in directory ``dir_parts`` (and below, if deep).

        ``name_prefix`` narrows the files directly in ``dir_parts`` to those
        whose name starts with it (typed keys beside a collection's directory).
        """
        if dir_parts:
            entry = self._entry(tree_id, [p.encode("utf-8") for p in dir_parts])
            tree_id = entry[1] if entry is not None and stat.S_ISDIR(entry[0]) else None
        if tree_id is not None:
            yield from self._walk(tree_id, dir_parts, deep, name_prefix)

    def _walk(
        self, tree_id: bytes, dir_parts: list[str], deep: bool, name_prefix: str
    ) -> Iterator[tuple[Key, bytes]]:
        for item in self._tree(tree_id).iteritems():
            try:
                name = item.path.decode("utf-8")
            except UnicodeDecodeError:
                continue  # not a name this store writes
            if stat.S_ISREG(item.mode) and name.startswith(name_prefix):
                key = self._key_of(dir_parts, name)
                if key is not None:
                    yield key, bytes(item.sha)
            elif deep and stat.S_ISDIR(item.mode):
                yield from self._walk(bytes(item.sha), [*dir_parts, name], deep, "")

    def _scope(self, query: Query, tree_id: bytes | None) -> list[tuple[Key, bytes]]:
        """(key, blob id) of every object in the query's scope, from the tree ``tree_id``."""
        try:
            sources = self.keypath.collection_sources(query.key)
        except ValueError:  # a namespace too long to be a file name: nothing is there
            return []
        test = engine.scope_test(query.key, query.recursive)
        found: list[tuple[Key, bytes]] = []
        for dir_parts, type_prefix in sources:
            # Typed keys (/a:x) sit beside the collection's directory: one level only.
            deep = query.recursive and type_prefix is None
            for key, blob_id in self._files(tree_id, dir_parts, deep, type_prefix or ""):
                if test(key):
                    found.append((key, blob_id))
        return found

    def query(self, query: Query) -> Cursor:
        """Walk the branch head's tree for the scope, then finish in the engine."""
        self._check_open()
        with self._lock:
            head = self._head()
            listed = self._scope(query, self._commit_tree(head))
            if not query.filters and not query.orders:
                if query.limit is not None:  # any offset+limit objects are a right answer
                    listed = listed[: query.offset + query.limit]
                if query.keys_only:
                    return engine.run(query, [(key, None) for key, _ in listed], scoped=True)
            data = [(key, self._blob(blob_id)) for key, blob_id in listed]
        pairs = [(key, self._decode(raw, head, self._parts_for_write(key))) for key, raw in data]
        return engine.run(query, pairs, scoped=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the repository's open files. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lock_file = None
            self._trees.clear()
            self._release()

    def __repr__(self) -> str:
        return f"<GitDatastore {self.path} branch {self.branch}>"


def _release(repo: Repo, fds: list[int]) -> None:
    """Close a store's repository and lock file (its close(), or its finalizer)."""
    repo.close()
    while fds:
        os.close(fds.pop())


def _revision(commit: Commit) -> Revision:
    offset = timezone(timedelta(seconds=commit.author_timezone))
    return Revision(
        id=commit.id.decode(),
        message=commit.message.decode("utf-8", errors="replace").rstrip("\n"),
        time=datetime.fromtimestamp(commit.author_time, tz=offset),
        author=commit.author.decode("utf-8", errors="replace"),
    )


def _message(operation: str, changes: Mapping[Key, bytes | None]) -> str:
    """A bulk commit's message: a summary line, then one line per key (the first 50)."""
    puts = sum(1 for data in changes.values() if data is not None)
    deletes = len(changes) - puts
    counts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((puts, "put"), (deletes, "delete")) if n]
    lines = [f"{operation}: {', '.join(counts)}", ""]
    for key, data in list(changes.items())[:_MESSAGE_KEYS]:
        lines.append(f"{'put' if data is not None else 'delete'} {_printable(key)}")
    if len(changes) > _MESSAGE_KEYS:
        lines.append(f"... and {len(changes) - _MESSAGE_KEYS} more")
    return "\n".join(lines)


def _text(text: str, name: str) -> str:
    return text


def from_url(url: str, **options: Any) -> GitDatastore:
    """Open ``git:///abs/repo`` (``git://./relative``, ``git://~/repo``).

    Query options: ``branch``, ``author`` and ``serializer`` (``json``,
    ``prettyjson``, ``msgpack``, ``none``); keyword options override them.
    """
    if urlsplit(url).scheme.lower() != "git":
        raise ValueError(f"not a git:// URL: {url!r}")
    settings = read_options(url, {"branch": _text, "author": _text, "serializer": parse_serializer}, options)
    return GitDatastore(url_path(url), **settings)
