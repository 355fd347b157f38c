"""GitDatastore against dulwich by hand: the minimal commit per write a user would write.

The store does more per write than this baseline (its key-to-file layout,
a lock for writers in other processes, messages naming the keys, history
reads), so the ratios show what that costs; the baseline's own size trend
shows what git itself costs as a directory grows.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

from ..subject import Context, StoreSubject, Subject, Unavailable, dumps, loads, need


def git_store(ctx: Context) -> Subject:
    try:
        from datastore.git import GitDatastore
    except ImportError as exc:
        raise Unavailable(f"datastore.git: {exc}") from exc
    path = ctx.scratch("git-store") / "repo"
    return StoreSubject("GitDatastore", GitDatastore(str(path), author="bench <bench@localhost>"),
                        label="bare repository, one commit per put and per bulk call",
                        cleanup=lambda: shutil.rmtree(path.parent, ignore_errors=True))


class RawDulwich(Subject):
    """dulwich by hand, as a user who wants one commit per write would write it.

    Each key is a file (its namespaces as directories); a put writes the
    blob, rewrites the trees on the key's path, writes a commit on top of
    the branch and moves the branch with a compare-and-swap, loose objects
    for a single write and one pack for a bulk one. The point of this
    baseline is the size trend: git itself rewrites a directory's whole
    tree object on every commit, so even this minimal commit costs more in
    a larger directory.
    """

    label = "dulwich: blob + trees on the key's path + commit + compare-and-swap ref, per write"
    REF = b"refs/heads/main"

    def __init__(self, path: str) -> None:
        repo = need("dulwich.repo")
        objects = need("dulwich.objects")
        self.path = path
        self.repo = repo.Repo.init_bare(path, mkdir=True)
        self.objects = self.repo.object_store
        self.Blob, self.Commit, self.Tree = objects.Blob, objects.Commit, objects.Tree
        self.tree_lookup_path = need("dulwich.object_store").tree_lookup_path

    def key(self, string: str) -> Any:
        return tuple(string.strip("/").encode().split(b"/"))

    def _head(self) -> tuple[bytes | None, bytes | None]:
        """(commit id, root tree id) of the branch, or (None, None) before its first commit."""
        commit_id = self.repo.refs.as_dict().get(self.REF)
        if commit_id is None:
            return None, None
        return commit_id, self.objects[commit_id].tree

    def _read(self, key: tuple[bytes, ...]) -> bytes | None:
        _, tree_id = self._head()
        if tree_id is None:
            return None
        try:
            _, blob_id = self.tree_lookup_path(self.objects.__getitem__, tree_id, b"/".join(key))
        except KeyError:
            return None
        return bytes(self.objects[blob_id].data)

    def _tree(self, tree_id: bytes | None, changes: dict[tuple[bytes, ...], bytes | None],
              new: list[Any]) -> bytes | None:
        """The id of ``tree_id`` with ``changes`` (path -> blob id, None to delete) applied."""
        tree = self.Tree() if tree_id is None else self.objects[tree_id].copy()
        below: dict[bytes, dict[tuple[bytes, ...], bytes | None]] = {}
        for parts, blob_id in changes.items():
            if len(parts) > 1:
                below.setdefault(parts[0], {})[parts[1:]] = blob_id
            elif blob_id is not None:
                tree[parts[0]] = (0o100644, blob_id)
            elif parts[0] in tree:
                del tree[parts[0]]
        for name, inner in below.items():
            sub_id = self._tree(tree[name][1] if name in tree else None, inner, new)
            if sub_id is None:
                if name in tree:
                    del tree[name]
            else:
                tree[name] = (0o040000, sub_id)
        if not tree.items():
            return None
        new.append(tree)
        return tree.id  # type: ignore[no-any-return]

    def _commit(self, puts: list[tuple[tuple[bytes, ...], Any]], deletes: list[tuple[bytes, ...]]) -> None:
        new: list[Any] = []
        changes: dict[tuple[bytes, ...], bytes | None] = {}
        for key, value in puts:
            blob = self.Blob.from_string(dumps(value))
            new.append(blob)
            changes[key] = blob.id
        changes.update(dict.fromkeys(deletes))
        old, tree_id = self._head()
        commit = self.Commit()
        commit.tree = self._tree(tree_id, changes, new) or self._empty(new)
        commit.parents = [old] if old else []
        commit.author = commit.committer = b"bench <bench@localhost>"
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"write\n"
        new.append(commit)
        if len(new) > 10:
            self.objects.add_objects([(obj, None) for obj in new])
        else:
            for obj in new:
                self.objects.add_object(obj)
        if not self.repo.refs.set_if_equals(self.REF, old, commit.id):
            raise RuntimeError("the branch moved during a write")

    def _empty(self, new: list[Any]) -> bytes:
        tree = self.Tree()
        new.append(tree)
        return tree.id  # type: ignore[no-any-return]

    def put(self, key: tuple[bytes, ...], value: Any) -> None:
        self._commit([(key, value)], [])

    def get(self, key: tuple[bytes, ...]) -> Any:
        data = self._read(key)
        return None if data is None else loads(data)

    def contains(self, key: tuple[bytes, ...]) -> bool:
        return self._read(key) is not None

    def delete(self, key: tuple[bytes, ...]) -> None:
        self._commit([], [key])

    def put_many(self, pairs: list[tuple[tuple[bytes, ...], Any]]) -> None:
        self._commit(pairs, [])

    def delete_many(self, keys: list[tuple[bytes, ...]]) -> None:
        self._commit([], keys)

    def close(self) -> None:
        self.repo.close()
        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)


def raw_dulwich(ctx: Context) -> Subject:
    return RawDulwich(str(ctx.scratch("git-raw") / "repo"))
