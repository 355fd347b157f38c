"""FileSystemDatastore: the conformance suite, its layout, and what a shared tree must survive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import datastore
import datastore.filesystem
from datastore import DatastoreError, Key, Query
from datastore.corrupt import CorruptValueError
from datastore.filesystem import FileSystemDatastore
from datastore.testing import DatastoreTests

SRC = str(Path(datastore.__file__).resolve().parent.parent)


def _files_under(top: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(top) for f in files]


# -- the conformance suite, in each mode -------------------------------------------


class TestFileSystem(DatastoreTests):

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[FileSystemDatastore]:
        ds = FileSystemDatastore(tmp_path / "root")
        yield ds
        ds.close()


class TestFileSystemCaseInsensitive(DatastoreTests):
    differential_examples = 20

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[FileSystemDatastore]:
        ds = FileSystemDatastore(tmp_path / "root", case_sensitive=False)
        yield ds
        ds.close()


class TestFileSystemRawBytes(DatastoreTests):
    bytes_only = True
    differential_examples = 20

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[FileSystemDatastore]:
        ds = FileSystemDatastore(tmp_path / "root", serializer=None)
        yield ds
        ds.close()


# -- the classic example -----------------------------------------------------------


def test_hello_filesystem(tmp_path: Path) -> None:
    ds = datastore.filesystem.FileSystemDatastore(str(tmp_path / ".test_datastore"))
    hello = datastore.Key("hello")
    ds.put(hello, "world")
    assert ds.contains(hello) is True
    assert ds.get(hello) == "world"
    ds.delete(hello)
    assert ds.get(hello) is None


# -- layout ---------------------------------------------------------------------------


def test_layout_is_browsable_and_keys_coexist(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ds = FileSystemDatastore(root)
    values = {"/a": 1, "/a:b": 2, "/a/b": 3, "/a/b:": 4, "/a/b/c": 5}
    ds.put_many(values)
    names = sorted(str(p.relative_to(root)) for p in _files_under(root))
    assert names == ["a.data", "a/b.data", "a/b/c.data", "a/b:.data", "a:b.data"]
    assert (root / "a.data").read_bytes() == b"1"
    for key, value in values.items():
        assert ds.get(key) == value
    assert ds.object_path("/a/b") == str(root / "a" / "b.data")


def test_case_insensitive_names_differ_by_more_than_case(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ds = FileSystemDatastore(root, case_sensitive=False)
    ds.put("/A", 1)
    ds.put("/a", 2)
    names = {p.name for p in _files_under(root)}
    assert len(names) == 2 and len({n.lower() for n in names}) == 2
    assert (ds.get("/A"), ds.get("/a")) == (1, 2)


def test_query_ignores_subdirectories_and_foreign_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ds = FileSystemDatastore(root)
    ds.put("/c/x", 1)
    ds.put("/c/sub/deeper/y", 2)
    ds.put("/c/T:z", 3)  # in collection /c/T, not /c
    (root / "c" / "notes.txt").write_text("a person's file")
    (root / "c" / "empty-dir").mkdir()
    (root / "c" / ".tmp-leftover").write_text("{partial")
    assert [str(k) for k in ds.query(Query(Key("/c"), keys_only=True))] == ["/c/x"]
    got = sorted(str(k) for k in ds.query(Query(Key("/c"), recursive=True, keys_only=True)))
    assert got == ["/c/T:z", "/c/sub/deeper/y", "/c/x"]


def test_delete_prunes_empty_directories_but_never_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ds = FileSystemDatastore(root)
    ds.put("/x/y/z/k", 1)
    ds.put("/x/keep", 2)
    ds.delete("/x/y/z/k")
    assert not (root / "x" / "y").exists()
    assert (root / "x" / "keep.data").exists()
    ds.delete("/x/keep")
    assert root.is_dir() and list(root.iterdir()) == []


def test_corrupt_file_is_an_error_naming_it(tmp_path: Path) -> None:
    ds = FileSystemDatastore(tmp_path / "root")
    ds.put("/bad", {"ok": True})
    path = ds.object_path("/bad")
    Path(path).write_bytes(b'{"ok": tr')
    with pytest.raises(CorruptValueError) as info:
        ds.get("/bad")
    assert isinstance(info.value, DatastoreError)
    assert path in str(info.value)
    with pytest.raises(CorruptValueError):
        list(ds.query(Query(Key("/"))))
    assert ds.contains("/bad")
    ds.delete("/bad")
    assert ds.get("/bad") is None


def test_raw_bytes_mode_stores_bytes_as_given(tmp_path: Path) -> None:
    ds = FileSystemDatastore(tmp_path / "root", serializer=None)
    ds.put("/blob", b"\x00\xffraw")
    assert Path(ds.object_path("/blob")).read_bytes() == b"\x00\xffraw"
    with pytest.raises(TypeError, match="bytes only"):
        ds.put("/text", "not bytes")
    assert ds.get("/text") is None


def test_fsync_syncs_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:  # still the real fsync: only records what it flushed
        synced.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    ds = FileSystemDatastore(tmp_path / "root", fsync=True)
    ds.put("/deep/new/key", [1])
    assert "file" in synced and synced.count("dir") >= 3  # file's dir + two new directories
    assert ds.get("/deep/new/key") == [1]
    synced.clear()
    FileSystemDatastore(tmp_path / "other").put("/k", 1)
    assert synced == []


# -- no key escapes the root --------------------------------------------------------

TRAVERSAL_KEYS = [
    "/..",
    "/../x",
    "/../../etc/passwd",
    "/a/../../b",
    "/.",
    "/./x",
    "/...",
    "/.data",
    "/..data",
    "/~",
    "/~/x",
    "/a\\..\\..\\b",
    "\\..\\x",
    "/C:\\x",
    "/%2e%2e/x",
    "/..%2f..%2fx",
    "/x/..:..",
    "/..:x",
    "/$HOME",
    "/a\n../b",
    "/\x7f..",
    "/.tmp-0123456789abcdef",
    "/" + "\u2025",  # two-dot leader, not two dots
]


def test_no_key_writes_outside_the_root(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    root = outer / "root"
    outer.mkdir()
    (outer / "sibling.txt").write_text("untouched")
    ds = FileSystemDatastore(root)
    before = sorted(p.name for p in outer.iterdir())
    assert before == ["root", "sibling.txt"]
    for i, key in enumerate(TRAVERSAL_KEYS):
        ds.put(key, {"i": i})
    # Every file created is under the root, the root's parent is as it was.
    assert sorted(p.name for p in outer.iterdir()) == before
    assert (outer / "sibling.txt").read_text() == "untouched"
    created = _files_under(tmp_path)
    assert len(created) == len(TRAVERSAL_KEYS) + 1
    for path in created:
        if path != outer / "sibling.txt":
            assert path.resolve().is_relative_to(root.resolve()), path
    # ... and every key reads back as itself, and a query finds exactly them.
    for i, key in enumerate(TRAVERSAL_KEYS):
        assert ds.get(key) == {"i": i}, key
    found = {str(k) for k in ds.query(Query(Key("/"), recursive=True, keys_only=True))}
    assert found == {str(Key(k)) for k in TRAVERSAL_KEYS}
    for key in TRAVERSAL_KEYS:
        ds.delete(key)
    assert list(root.iterdir()) == []
    assert sorted(p.name for p in outer.iterdir()) == before


def test_unrepresentable_keys_are_value_errors_that_write_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ds = FileSystemDatastore(root)
    too_long = "/" + "x" * 300
    too_deep = "/" + "/".join(["d" * 200] * 30)
    for key in (too_long, too_deep):
        with pytest.raises(ValueError, match="too"):
            ds.put(key, 1)
        assert ds.get(key) is None
        assert not ds.contains(key)
        ds.delete(key)
    assert list(ds.query(Query(Key(too_long)))) == []
    assert list(ds.query(Query(Key(too_deep), recursive=True))) == []
    # A namespace as long as a file name allows: a collection, without typed siblings.
    longest = "/p/" + "x" * 250
    ds.put(longest + "/1", 1)
    assert list(ds.query(Query(Key(longest)))) == [1]
    assert list(ds.query(Query(Key(longest), recursive=True))) == [1]
    with pytest.raises(ValueError, match="too long"):
        ds.put(longest + ":typed", 2)
    ds.delete(longest + "/1")
    with pytest.raises(ValueError, match="NUL"):
        ds.put("/nul\x00", 1)
    with pytest.raises(ValueError):
        ds.put_many([("/fine", 1), (too_long, 2)])
    assert _files_under(root) == []


# -- crash safety --------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {src!r})
    from datastore.filesystem import FileSystemDatastore

    def value(k, r):
        return {{"k": k, "round": r, "pad": ("%d-%d;" % (k, r)) * (500 + (k * 37 + r) % 3000)}}

    ds = FileSystemDatastore({root!r})
    r = 0
    while True:
        for k in range(20):
            ds.put("/crash/d%d/k%d" % (k % 4, k), value(k, r))
        if r == 0:
            print("ready", flush=True)
        r += 1
    """
)


def _crash_value(k: int, r: int) -> dict[str, Any]:
    return {"k": k, "round": r, "pad": f"{k}-{r};" * (500 + (k * 37 + r) % 3000)}


def test_sigkill_mid_write_leaves_every_value_whole(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for delay in (0.05, 0.2, 0.45):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER.format(src=SRC, root=str(root))],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        proc.stdout.close()
        ds = FileSystemDatastore(root)
        for k in range(20):
            got = ds.get(f"/crash/d{k % 4}/k{k}")
            assert isinstance(got, dict) and got == _crash_value(k, got["round"]), k
        # Every object file on disk parses: no file is ever partial.
        for path in _files_under(root):
            if not path.name.startswith("."):
                json.loads(path.read_bytes())


# -- concurrency ----------------------------------------------------------------------

_CONCURRENT = textwrap.dedent(
    """
    import sys, time, os
    sys.path.insert(0, {src!r})
    from datastore.filesystem import FileSystemDatastore

    ds = FileSystemDatastore({root!r})
    print("ready", flush=True)
    while not os.path.exists({go!r}):
        time.sleep(0.001)
    worker = {worker!r}
    for i in range({count}):
        ds.put("/shared/d%d/%s-%d" % (i % 5, worker, i), {{"w": worker, "i": i}})
        ds.put("/churn/c%d/%s-tmp" % (i % 3, worker), i)
        ds.delete("/churn/c%d/%s-tmp" % (i % 3, worker))
        if i % 7 == 0:
            ds.put("/churn/c%d/%s-%d" % (i % 3, worker, i), i)
        if i % 25 == 0:
            list(ds.query(__import__("datastore").Query("/shared", recursive=True)))
    print("done", flush=True)
    """
)


def test_four_threads_and_two_processes_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    go = tmp_path / "go"
    count = 300
    ds = FileSystemDatastore(root)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CONCURRENT.format(src=SRC, root=str(root), go=str(go), worker=f"p{n}", count=count),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(2)
    ]
    errors: list[BaseException] = []

    def thread_work(worker: str) -> None:
        try:
            while not go.exists():
                time.sleep(0.001)
            for i in range(count):
                ds.put(f"/shared/d{i % 5}/{worker}-{i}", {"w": worker, "i": i})
                ds.put(f"/churn/c{i % 3}/{worker}-tmp", i)
                ds.delete(f"/churn/c{i % 3}/{worker}-tmp")
                if i % 7 == 0:
                    ds.put(f"/churn/c{i % 3}/{worker}-{i}", i)
                if i % 25 == 0:
                    list(ds.query(Query(Key("/shared"), recursive=True)))
        except BaseException as exc:
            errors.append(exc)

    workers = [f"t{n}" for n in range(4)]
    threads = [threading.Thread(target=thread_work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for proc in procs:  # both processes are imported and waiting: start everyone at once
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
    go.write_text("go")
    for thread in threads:
        thread.join()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert out.strip() == b"done"
    assert not errors, errors
    everyone = [*workers, "p0", "p1"]
    for worker in everyone:
        for i in range(count):
            assert ds.get(f"/shared/d{i % 5}/{worker}-{i}") == {"w": worker, "i": i}
            assert ds.get(f"/churn/c{i % 3}/{worker}-tmp") is None
            if i % 7 == 0:
                assert ds.get(f"/churn/c{i % 3}/{worker}-{i}") == i
    shared = list(ds.query(Query(Key("/shared"), recursive=True, keys_only=True)))
    assert len(shared) == len(everyone) * count
    assert not [p for p in _files_under(root) if p.name.startswith(".")]  # no temp file left


# -- URLs -----------------------------------------------------------------------------


def test_from_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = datastore.open(f"file://{tmp_path}/u1")
    assert isinstance(ds, FileSystemDatastore)
    assert ds.root == str(tmp_path / "u1") and ds.case_sensitive and not ds.fsync
    ds.put("/a", 1)
    assert (tmp_path / "u1" / "a.data").exists()

    ds = datastore.open(f"file://localhost{tmp_path}/u2?case_sensitive=false&fsync=yes")
    assert isinstance(ds, FileSystemDatastore)
    assert (ds.root, ds.case_sensitive, ds.fsync) == (str(tmp_path / "u2"), False, True)

    ds = datastore.open(f"file://{tmp_path}/u3?serializer=none")
    ds.put("/b", b"raw")
    assert (tmp_path / "u3" / "b.data").read_bytes() == b"raw"

    monkeypatch.chdir(tmp_path)
    ds = datastore.open("file://./rel/dir", fsync=True)
    assert isinstance(ds, FileSystemDatastore)
    assert ds.root == str(tmp_path / "rel" / "dir") and ds.fsync

    with pytest.raises(ValueError, match="unknown option"):
        datastore.open(f"file://{tmp_path}/u4?fsnyc=1")
    with pytest.raises(ValueError, match="local path"):
        datastore.open("file://example.com/data")
    with pytest.raises(ValueError, match="yes/no"):
        datastore.open(f"file://{tmp_path}/u5?fsync=maybe")
    with pytest.raises(ValueError, match="pickle"):
        datastore.open(f"file://{tmp_path}/u6?serializer=pickle")
    with pytest.raises(ValueError, match="no path"):
        datastore.open("file://")
