"""GitDatastore on real repositories, checked with the git command itself."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

pytest.importorskip("dulwich")

import datastore
from datastore import Key, Query
from datastore.corrupt import CorruptValueError
from datastore.errors import ClosedError
from datastore.git import GitDatastore, Revision
from datastore.testing import DatastoreTests
from datastore.testing.concurrency import run_threads

GIT = os.environ.get("GIT", "git")


def git(repo: Path, *args: str) -> str:
    """Run the git command on ``repo`` and return its output (fails the test on an error)."""
    done = subprocess.run(
        [GIT, "-C", str(repo), *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def commit_count(repo: Path, branch: str = "main") -> int:
    return int(git(repo, "rev-list", "--count", branch))


class TestGitConformance(DatastoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[GitDatastore]:
        store = GitDatastore(tmp_path / "repo")
        yield store
        store.close()


# -- what the git command sees ---------------------------------------------------------------


def test_git_reads_what_the_store_wrote(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    store = GitDatastore(repo, author="Ada <ada@example.com>")
    store.put("/Comedy/MontyPython/Actor:JohnCleese", {"name": "John", "age": 84})
    store.put("/a", 1)
    store.put_many({"/x/1": "one", "/x/2": [2]})
    store.delete("/a")
    with store.batch() as batch:
        batch.put("/x/3", {"b": 1, "a": 2})
        batch.delete("/x/1")
    store.close()

    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    assert subjects == [
        "batch: 1 put, 1 delete",
        "delete /a",
        "put_many: 2 puts",
        "put /a",
        "put /Comedy/MontyPython/Actor:JohnCleese",
    ]
    assert git(repo, "log", "-1", "--format=%an <%ae>", "main").strip() == "Ada <ada@example.com>"
    body = git(repo, "log", "-1", "--format=%b", "main").splitlines()
    assert body[:2] == ["put /x/3", "delete /x/1"]
    shown = git(repo, "show", "main:Comedy/MontyPython/Actor:JohnCleese.json")
    assert shown == '{\n  "age": 84,\n  "name": "John"\n}\n'  # pretty, sorted: diffs read well
    assert json.loads(git(repo, "show", "main:x/3.json")) == {"a": 2, "b": 1}
    files = sorted(git(repo, "ls-tree", "-r", "--name-only", "main").splitlines())
    assert files == ["Comedy/MontyPython/Actor:JohnCleese.json", "x/2.json", "x/3.json"]
    assert git(repo, "rev-parse", "--is-bare-repository").strip() == "true"
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    git(repo, "fsck", "--strict")


def test_raw_bytes_store_writes_data_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    with GitDatastore(repo, serializer=None) as store:
        store.put("/blob", b"\x00\xffraw")
        assert store.get("/blob") == b"\x00\xffraw"
        with pytest.raises(TypeError):
            store.put("/text", "not bytes")
    assert git(repo, "ls-tree", "-r", "--name-only", "main").split() == ["blob.data"]


# -- history and old versions ---------------------------------------------------------------------


def test_history_lists_the_commits_that_changed_a_key(tmp_path: Path) -> None:
    store = GitDatastore(tmp_path / "repo")
    key = Key("/doc/readme")
    store.put(key, {"v": 1})
    store.put("/doc/other", 0)
    store.put(key, {"v": 2})
    store.put(key, {"v": 2})  # unchanged: no commit, like git
    store.delete(key)
    store.delete(key)  # absent: no commit
    with store.batch() as batch:
        batch.put(key, {"v": 3})
        batch.put("/doc/other", 1)

    history = store.history(key)
    assert [r.message.splitlines()[0] for r in history] == [
        "batch: 2 puts",
        f"delete {key}",
        f"put {key}",
        f"put {key}",
    ]
    assert all(isinstance(r, Revision) and len(r.id) == 40 for r in history)
    assert all(isinstance(r.time, datetime) and r.time.tzinfo is not None for r in history)
    assert history[0].time >= history[-1].time
    assert history[0].author == store.author
    assert [store.get(key, version=r.id) for r in history] == [{"v": 3}, None, {"v": 2}, {"v": 1}]
    assert store.get(key, version=history[-1].id[:10]) == {"v": 1}  # abbreviated ids work
    assert store.get("/doc/other", version=history[-1].id) is None
    assert store.history(key, limit=2) == history[:2]
    assert store.history("/doc/never") == []
    assert commit_count(tmp_path / "repo") == 5
    with pytest.raises(ValueError, match="no commit"):
        store.get(key, version="0" * 40)
    with pytest.raises(TypeError):
        store.get(key, version=5)  # type: ignore[arg-type]
    store.close()


def test_bulk_calls_and_batches_make_one_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    store = GitDatastore(repo)
    store.put_many((f"/bulk/k{i}", i) for i in range(300))  # enough objects to write a pack
    assert commit_count(repo) == 1
    assert store.get_many(["/bulk/k0", "/bulk/k299", "/bulk/none"]) == [0, 299, None]
    store.delete_many([f"/bulk/k{i}" for i in range(0, 300, 2)] + ["/bulk/none"])
    assert commit_count(repo) == 2
    with store.batch() as batch:
        for i in range(1, 300, 2):
            batch.delete(f"/bulk/k{i}")
        batch.put("/bulk/last", "x")
    assert commit_count(repo) == 3
    assert git(repo, "ls-tree", "-r", "--name-only", "main").split() == ["bulk/last.json"]
    store.delete_many([])
    store.put_many([])
    assert commit_count(repo) == 3
    store.delete("/bulk/last")  # the last file: the branch keeps an empty tree
    assert git(repo, "ls-tree", "-r", "main") == ""
    assert list(store.query(Query("/", recursive=True))) == []
    git(repo, "fsck", "--strict")
    store.close()


# -- repositories ------------------------------------------------------------------------------


def test_non_bare_repository_keeps_its_history_and_working_tree(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README").write_text("hello\n")
    git(work, "add", "README")
    git(work, "-c", "user.name=Me", "-c", "user.email=me@example.com", "commit", "-q", "-m", "start")

    store = datastore.open(f"git://{work}", author="Bot <bot@example.com>")
    assert isinstance(store, GitDatastore)
    store.put("/notes/n1", {"text": "hi"})
    assert list(store.query(Query("/", recursive=True, keys_only=True))) == [Key("/notes/n1")]
    store.close()

    assert git(work, "log", "--format=%s", "main").splitlines() == ["put /notes/n1", "start"]
    assert git(work, "show", "main:README") == "hello\n"
    assert sorted(p.name for p in work.iterdir()) == [".git", "README"]  # worktree untouched
    git(work, "fsck", "--strict")


def test_foreign_files_are_not_listed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    for name in ("README", "a%41.json", "%ff.json", "x%zz.json", "sub/.hidden.json"):
        (work / name).write_text("1\n")
    git(work, "add", ".")
    git(work, "-c", "user.name=Me", "-c", "user.email=me@example.com", "commit", "-q", "-m", "x")
    with GitDatastore(work) as store:
        store.put("/aA", 2)
        assert list(store.query(Query("/", recursive=True).order("x")).items()) == [(Key("/aA"), 2)]


def test_branches_and_urls(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    data = datastore.open(f"git://{repo}?branch=data")
    assert isinstance(data, GitDatastore) and data.branch == "data"
    data.put("/k", "on data")
    other = GitDatastore(repo, branch="other")
    assert other.get("/k") is None
    other.put("/k", "on other")
    assert data.get("/k") == "on data"
    assert git(repo, "show", "other:k.json") == '"on other"\n'
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/data"
    data.close()
    other.close()
    with pytest.raises(ValueError, match="branch"):
        GitDatastore(repo, branch="bad..name")
    with pytest.raises(ValueError, match="unknown option"):
        datastore.open(f"git://{repo}?colour=blue")
    with pytest.raises(ValueError, match="author"):
        GitDatastore(repo, author="no email")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="not a git repository"):
        GitDatastore(tmp_path / "plain")


def test_a_file_where_a_directory_is_needed_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "a").write_text("user file\n")
    git(work, "add", "a")
    git(work, "-c", "user.name=Me", "-c", "user.email=me@example.com", "commit", "-q", "-m", "a")
    store = GitDatastore(work)
    with pytest.raises(ValueError, match="is a file"):
        store.put("/a/b", 1)
    assert commit_count(work) == 1
    assert git(work, "show", "main:a") == "user file\n"
    store.close()


def test_undecodable_file_raises_instead_of_reading_absent(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "bad.json").write_text("{not json\n")
    git(work, "add", "bad.json")
    git(work, "-c", "user.name=Me", "-c", "user.email=me@example.com", "commit", "-q", "-m", "bad")
    store = GitDatastore(work)
    with pytest.raises(CorruptValueError, match=r"bad\.json"):
        store.get("/bad")
    with pytest.raises(CorruptValueError):
        list(store.query(Query("/")))
    assert store.contains("/bad")
    store.close()
    raw = datastore.open(f"git://{work}?serializer=none&branch=raw")
    raw.put("/b", b"bytes")
    assert git(work, "show", "raw:b.data") == "bytes"
    raw.close()


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = GitDatastore(tmp_path / "repo")
    store.put("/k", 1)
    store.close()
    store.close()
    with pytest.raises(ClosedError):
        store.put("/k", 2)
    with pytest.raises(ClosedError):
        store.get("/k")


# -- concurrency and crashes --------------------------------------------------------------------


def test_concurrent_writers_in_one_process_are_serialised(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    stores = [GitDatastore(repo), GitDatastore(repo)]  # two stores, one repository

    def work(n: int) -> None:
        for i in range(20):
            stores[n % 2].put(f"/w{n}/k{i}", i)

    run_threads(work)
    assert commit_count(repo) == 80  # no write lost to a race
    assert len(list(stores[0].query(Query("/", recursive=True)))) == 80
    for store in stores:
        store.close()
    git(repo, "fsck", "--strict")


WRITER = textwrap.dedent(
    """
    import sys
    from datastore.git import GitDatastore
    store = GitDatastore(sys.argv[1])
    run = sys.argv[2]
    i = 0
    while True:
        if i % 7 == 6:
            store.put_many({f"/crash/{run}/m{i}-{j}": {"i": i, "j": j} for j in range(80)})
        else:
            store.put(f"/crash/{run}/k{i}", {"i": i, "pad": "x" * 2000})
            store.delete(f"/crash/{run}/k{i - 3}")
        i += 1
    """
)


def test_writers_in_two_processes_lose_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    GitDatastore(repo).close()
    code = (
        "import sys\nfrom datastore.git import GitDatastore\n"
        "s = GitDatastore(sys.argv[1])\n"
        "for i in range(25): s.put(f'/p{sys.argv[2]}/k{i}', i)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(repo), str(n)]) for n in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert commit_count(repo) == 50
    with GitDatastore(repo) as store:
        assert len(list(store.query(Query("/", recursive=True, keys_only=True)))) == 50


def test_killed_writers_leave_a_valid_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    GitDatastore(repo).close()
    rng = random.Random(5)
    for run in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(repo), str(run)])
        time.sleep(0.6 + rng.random() * 0.6)  # past start-up, then somewhere mid-write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    git(repo, "fsck", "--strict")  # valid whatever the writers left half-done

    store = GitDatastore(repo)
    keys = list(store.query(Query("/crash", recursive=True, keys_only=True)))
    assert keys, "the writers committed nothing before they were killed"
    values = store.get_many(keys)
    assert all(isinstance(value, dict) and value["i"] >= 0 for value in values)
    for key, value in rng.sample(list(zip(keys, values, strict=True)), min(len(keys), 20)):
        assert json.loads(git(repo, "show", f"main:{store.keypath.object_path(key)}")) == value

    # A crashed writer's leftovers do not block the next writer: a fresh ref lock
    # that the writer journal names (it died moving the branch), a half-written object ...
    ref_lock = repo / "refs" / "heads" / "main.lock"
    ref_lock.write_text("0" * 40 + "\n")
    (repo / "datastore-writer.lock").write_bytes(b"ref-update refs/heads/main\n")
    data = json.dumps({"after": "crash"}, indent=2, sort_keys=True).encode() + b"\n"
    blob_id = (
        subprocess.run([GIT, "hash-object", "--stdin"], input=data, capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )
    object_lock = repo / "objects" / blob_id[:2] / (blob_id[2:] + ".lock")
    object_lock.parent.mkdir(exist_ok=True)
    object_lock.write_bytes(b"partial")
    store.put("/after", {"after": "crash"})
    assert not ref_lock.exists() and not object_lock.exists()
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "put /after"
    assert store.get("/after") == {"after": "crash"}
    # ... and an old ref lock that nobody journalled (a git command that died long ago).
    ref_lock.write_text("0" * 40 + "\n")
    os.utime(ref_lock, (time.time() - 60, time.time() - 60))
    store.put("/after", {"after": "again"})
    assert not ref_lock.exists()
    assert git(repo, "show", "main:after.json") == '{\n  "after": "again"\n}\n'
    store.close()
    checked = subprocess.run(
        [GIT, "-C", str(repo), "fsck", "--strict"], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    # Half-written loose objects and packs of the killed writers were cleaned up.
    assert "bad sha1 file" not in checked.stderr and "warning" not in checked.stderr
    assert not list((repo / "objects").glob("??/*.lock"))
    assert not list((repo / "objects" / "pack").glob("tmp*"))


def test_import_datastore_does_not_import_dulwich() -> None:
    code = "import sys, datastore; sys.exit('dulwich' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_missing_driver_names_the_extra() -> None:
    code = (
        "import sys\nsys.modules['dulwich'] = None\n"
        "from datastore.errors import MissingDriver\n"
        "try:\n    import datastore.git\nexcept MissingDriver as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'datastore-kit[git]'" in done.stdout
