"""The ``datastore`` command, run for real in a subprocess.

Every test runs ``python -m datastore`` (and one the installed console
script) with ``DATASTORE_HOME`` pointing at a temporary directory, so the
default store is a real SQLite file there. A few checks call ``cli.main``
in-process where a subprocess cannot express the input (a NUL byte in an
argument) or where the store must hold a value JSON cannot print.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import datastore
from datastore import DictDatastore, Filter, Key, Query
from datastore.cli import main, parse_filter

Run = Callable[..., subprocess.CompletedProcess[str]]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATASTORE_URL", "DATASTORE_HOME")}
    env["DATASTORE_HOME"] = str(home)
    env.update(extra)
    return env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(home: Path) -> Run:
    """Run ``python -m datastore ARGS`` against the default store under ``home``."""

    def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Any:
        return subprocess.run(
            [sys.executable, "-m", "datastore", *args],
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=_env(home, **(env or {})),
            timeout=120,
        )

    return run


@pytest.fixture
def default_store(home: Path) -> Iterator[datastore.Datastore]:
    """The default store's SQLite file, opened in-process to seed or inspect it."""
    home.mkdir(parents=True, exist_ok=True)
    store = datastore.open("sqlite:///" + (home / "datastore.db").as_posix())
    yield store
    store.close()


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


# -- the default store: put, get, delete --------------------------------------------


def test_put_then_get_uses_the_default_sqlite_file(cli: Run, home: Path) -> None:
    assert cli("put", "/hello", '"world"').returncode == 0
    result = cli("get", "/hello")
    assert (result.returncode, result.stdout, result.stderr) == (0, '"world"\n', "")
    assert (home / "datastore.db").is_file()
    info = cli("info")
    assert info.returncode == 0
    assert json.loads(info.stdout) == {
        "type": "SQLiteDatastore",
        "module": "datastore.sqlite",
        "url": "sqlite:///" + (home / "datastore.db").as_posix(),
        "chosen_by": "default",
        "objects": 1,
    }


def test_installed_console_script(home: Path) -> None:
    script = shutil.which("datastore")
    assert script, "the 'datastore' console script is not on PATH: pip install -e ."
    env = _env(home)
    put = subprocess.run(
        [script, "put", "/Comedy/MontyPython/Actor:JohnCleese", '{"born": 1939}'],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    get = subprocess.run(
        [script, "get", "/Comedy/MontyPython/Actor:JohnCleese"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert (get.returncode, json.loads(get.stdout)) == (0, {"born": 1939})


def test_values_round_trip_exactly(cli: Run) -> None:
    value = {"name": "Zoë ☃", "big": 2**70, "pi": 3.5, "ok": True, "none": None, "l": [1, "2"]}
    assert cli("put", "/v", json.dumps(value)).returncode == 0
    result = cli("get", "/v")
    assert json.loads(result.stdout) == value
    assert "Zoë ☃" in result.stdout  # printed as text, not \\u escapes


def test_get_of_an_absent_key_exits_1(cli: Run) -> None:
    result = cli("get", "/nope")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "not found: /nope" in result.stderr
    _no_traceback(result)


def test_put_reads_a_file_stdin_dash_and_stdin(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "value.json").write_text('{"from": "file"}\n', encoding="utf-8")
    assert cli("put", "/f", f"@{tmp_path / 'value.json'}").returncode == 0
    assert cli("put", "/d", "-", stdin='{"from": "dash"}').returncode == 0
    assert cli("put", "/s", stdin="[1, 2, 3]\n").returncode == 0
    assert cli("put", "/neg", "--", "-1.5e3").returncode == 0
    assert json.loads(cli("get", "/f").stdout) == {"from": "file"}
    assert json.loads(cli("get", "/d").stdout) == {"from": "dash"}
    assert json.loads(cli("get", "/s").stdout) == [1, 2, 3]
    assert json.loads(cli("get", "/neg").stdout) == -1500.0


def test_put_overwrites_and_delete_removes(cli: Run) -> None:
    assert cli("put", "/k", "1").returncode == 0
    assert cli("put", "/k", "2").returncode == 0
    assert cli("get", "/k").stdout == "2\n"
    assert cli("delete", "/k").returncode == 0
    assert cli("get", "/k").returncode == 1
    assert cli("delete", "/k").returncode == 0  # absent: a no-op, as in the library


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("put", "/x", "world"), "", "not valid JSON"),
        (("put", "/x", "NaN"), "", "not valid JSON"),
        (("put", "/x", "null"), "", "None means 'absent'"),
        (("put", "/x"), "", "stdin"),
        (("put", "/x", "@/no/such/file.json"), "", "cannot read value file"),
        (("put", "/", "1"), "", "root key"),
    ],
)
def test_bad_put_input_exits_2_and_writes_nothing(
    cli: Run, home: Path, args: tuple[str, ...], stdin: str, message: str
) -> None:
    result = cli(*args, stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
    _no_traceback(result)
    listing = cli("ls", "/", "-r")
    assert (listing.returncode, listing.stdout) == (0, "")


def test_a_key_with_nul_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    # An argv entry cannot carry a NUL byte, so this one runs the entry point in-process.
    monkeypatch.setenv("DATASTORE_HOME", str(home))
    assert main(["put", "/a\x00b", "1"]) == 2
    assert "NUL" in capsys.readouterr().err
    assert not home.exists()  # refused before any store was opened


# -- ls and query -------------------------------------------------------------------


def test_ls_lists_a_collection_in_tree_order(cli: Run, default_store: datastore.Datastore) -> None:
    default_store.put_many({"/a": 0, "/a/2": 2, "/a/1": 1, "/a:x": "x", "/a/b/c": "c", "/ab/x": "no"})
    assert _lines(cli("ls", "/a").stdout) == ["/a/1", "/a/2", "/a:x"]
    assert _lines(cli("ls", "/a", "-r").stdout) == ["/a/1", "/a/2", "/a/b/c", "/a:x"]
    assert _lines(cli("ls").stdout) == ["/a"]
    assert cli("ls", "/missing").stdout == ""


PEOPLE = {
    "/people/Person:eric": {"name": "Eric", "age": 41},
    "/people/Person:john": {"name": "John", "age": 39},
    "/people/Person:graham": {"name": "Graham", "age": 48},
    "/people/Person:terry": {"name": "Terry", "age": 41},
    "/people/Person:michael": {"name": "Michael", "age": 30},
    "/people/Person:carol": {"name": "Carol", "age": "unknown"},
    "/people/Person:eric/pets/Pet:rex": {"name": "Rex", "age": 5},
}


def test_query_filters_orders_and_pages(cli: Run, default_store: datastore.Datastore) -> None:
    default_store.put_many(PEOPLE)
    args = ["query", "/people/Person", "--filter", "age>30", "--filter", "name!=Eric"]
    result = cli(*args, "--order", "-age", "--order", "+name")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in _lines(result.stdout)]
    assert rows == [
        {"key": "/people/Person:graham", "value": {"name": "Graham", "age": 48}},
        {"key": "/people/Person:terry", "value": {"name": "Terry", "age": 41}},
        {"key": "/people/Person:john", "value": {"name": "John", "age": 39}},
    ]
    page = cli(*args, "-o", "-age", "-o", "name", "--offset", "1", "--limit", "1", "--keys-only")
    assert _lines(page.stdout) == ["/people/Person:terry"]


def test_query_filter_values_are_json_else_text(cli: Run, default_store: datastore.Datastore) -> None:
    default_store.put_many(PEOPLE)

    def keys(*args: str) -> list[str]:
        result = cli("query", "/people/Person", "--keys-only", "--order=name", *args)
        assert result.returncode == 0, result.stderr
        return _lines(result.stdout)

    assert keys("--filter", "name=Eric") == ["/people/Person:eric"]
    assert keys("--filter", "name = Eric") == ["/people/Person:eric"]
    assert keys("--filter", 'age="unknown"') == ["/people/Person:carol"]
    assert keys("--filter", 'age="41"') == []  # the string "41" is not the number 41
    assert keys("--filter", "age<=30") == ["/people/Person:michael"]
    assert keys("--filter", "age>=48") == ["/people/Person:graham"]
    # /people/Person:eric/pets is below /people, not below the collection /people/Person
    assert keys("-r", "--filter", "age<30") == []
    deep = cli("query", "/people", "-r", "--keys-only", "--filter", "age<30")
    assert _lines(deep.stdout) == ["/people/Person:eric/pets/Pet:rex"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("age>30", Filter("age", ">", 30)),
        ("age>=30", Filter("age", ">=", 30)),
        ("age<=1.5", Filter("age", "<=", 1.5)),
        ("name!=Eric", Filter("name", "!=", "Eric")),
        ("name=Eric", Filter("name", "=", "Eric")),
        ("name==Eric", Filter("name", "=", "Eric")),
        ('id="30"', Filter("id", "=", "30")),
        ("ok=true", Filter("ok", "=", True)),
        ("gone=null", Filter("gone", "=", None)),
        ("x=NaN", Filter("x", "=", "NaN")),
        ("eq=a=b", Filter("eq", "=", "a=b")),
        ("empty=", Filter("empty", "=", "")),
        ('tags=["a"]', Filter("tags", "=", ["a"])),
    ],
)
def test_parse_filter(text: str, expected: Filter) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("query", "/p", "--filter", "age"), "has no operator"),
        (("query", "/p", "--filter", ">3"), "has no field"),
        (("query", "/p", "--limit", "-1"), "whole number"),
        (("query", "/p", "--offset", "x"), "whole number"),
        (("query", "/p", "--order", "-"), "needs a field"),
        (("copy", "memory://", "sqlite:///x.db", "--chunk", "0"), "whole number >= 1"),
        (("frobnicate",), "invalid choice"),
        ((), "required"),
    ],
)
def test_usage_errors_exit_2(cli: Run, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_closing_stdout_early_is_quiet(home: Path, default_store: datastore.Datastore) -> None:
    default_store.put_many((f"/many/{i:06d}", {"i": i, "pad": "x" * 40}) for i in range(20_000))
    proc = subprocess.Popen(
        [sys.executable, "-m", "datastore", "query", "/many"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(home),
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["key"].startswith("/many/")
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert b"Traceback" not in err and b"Exception ignored" not in err


def test_a_value_json_cannot_print_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    # The SQLite store holds JSON only, so this uses an in-process memory store with bytes.
    store = DictDatastore()
    store.put("/raw", b"\x00\x01")
    datastore.register("clitest", lambda url, **options: store)
    assert main(["--store", "clitest://", "get", "/raw"]) == 1
    assert "cannot be printed as JSON" in capsys.readouterr().err


# -- choosing the store, and its errors ----------------------------------------------


def test_store_option_and_environment(cli: Run, home: Path, tmp_path: Path) -> None:
    env_url = "sqlite:///" + (tmp_path / "env.db").as_posix()
    opt_url = "sqlite:///" + (tmp_path / "opt.db").as_posix()
    assert cli("put", "/where", '"env"', env={"DATASTORE_URL": env_url}).returncode == 0
    assert cli("--store", opt_url, "put", "/where", '"opt"').returncode == 0
    assert cli("put", "/where", '"after"', "--store", opt_url).returncode == 0
    assert (tmp_path / "env.db").is_file()
    assert not (home / "datastore.db").exists()
    both = cli("get", "/where", "--store", opt_url, env={"DATASTORE_URL": env_url})
    assert both.stdout == '"after"\n'  # --store wins over DATASTORE_URL
    info = json.loads(cli("info", env={"DATASTORE_URL": env_url}).stdout)
    assert (info["chosen_by"], info["url"], info["objects"]) == ("DATASTORE_URL", env_url, 1)


def test_an_unreachable_store_exits_3_without_showing_the_password(cli: Run) -> None:
    # Nothing listens on port 1.
    result = cli("--store", "redis://user:s3cret@127.0.0.1:1/0", "get", "/x")
    assert result.returncode == 3
    assert "redis://user:***@127.0.0.1:1/0" in result.stderr
    assert "s3cret" not in result.stderr
    assert "--debug" in result.stderr
    _no_traceback(result)


def test_debug_shows_the_traceback_and_messages_stay_one_line(cli: Run) -> None:
    # psycopg's refusal spans two lines; the report stays one.
    plain = cli("--store", "postgresql://datastore:pw@127.0.0.1:1/db", "get", "/x")
    assert plain.returncode == 3
    _no_traceback(plain)
    debug = cli("get", "/x", "--debug", "--store", "postgresql://datastore:pw@127.0.0.1:1/db")
    assert debug.returncode == 3
    assert "Traceback" in debug.stderr
    assert "postgresql://datastore:***@127.0.0.1:1/db" in debug.stderr.splitlines()[-1]


def test_an_unusable_data_directory_exits_3(cli: Run, home: Path) -> None:
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("not a directory")
    result = cli("put", "/x", "1")
    assert result.returncode == 3
    assert str(home) in result.stderr
    _no_traceback(result)


def test_an_unknown_scheme_exits_2_and_lists_the_known_ones(cli: Run) -> None:
    result = cli("--store", "nosuch://x", "info")
    assert result.returncode == 2
    assert "'nosuch://'" in result.stderr
    assert "sqlite" in result.stderr and "redis" in result.stderr
    _no_traceback(result)


def test_version_and_help(cli: Run) -> None:
    version = cli("--version")
    assert (version.returncode, version.stdout) == (0, f"datastore {datastore.__version__}\n")
    top = cli("--help")
    assert top.returncode == 0
    for command in ("put", "get", "delete", "ls", "query", "copy", "info", "DATASTORE_URL"):
        assert command in top.stdout
    put = cli("put", "--help")
    assert put.returncode == 0 and "@FILE" in put.stdout
    query = cli("query", "--help")
    assert query.returncode == 0 and "--keys-only" in query.stdout and "<= >= !=" in query.stdout


# -- copy ---------------------------------------------------------------------------


def _contents(url: str) -> dict[Key, Any]:
    with datastore.open(url) as store:
        return dict(store.query(Query("/", recursive=True)).items())


@pytest.fixture
def source_url(tmp_path: Path) -> str:
    url = "sqlite:///" + (tmp_path / "source.db").as_posix()
    with datastore.open(url) as store:
        store.put_many((f"/items/{i}", {"i": i, "even": i % 2 == 0}) for i in range(1234))
        store.put_many({"/a": "top", "/a/b/c:d": [1, 2], "/x:y": 2.5, "/u/☃": "snow"})
    return url


@pytest.mark.parametrize("target", ["sqlite", "file"])
def test_copy_streams_everything_and_is_idempotent(
    cli: Run, tmp_path: Path, source_url: str, target: str
) -> None:
    dst_url = {
        "sqlite": "sqlite:///" + (tmp_path / "copy.db").as_posix(),
        "file": "file://" + (tmp_path / "copy-dir").as_posix(),
    }[target]
    first = cli("copy", source_url, dst_url, "--progress")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["copied"], summary["source"], summary["destination"]) == (1238, source_url, dst_url)
    assert "1,238 objects" in first.stderr and "/s" in first.stderr
    expected = _contents(source_url)
    assert len(expected) == 1238
    assert _contents(dst_url) == expected

    with datastore.open(dst_url) as dst:
        dst.put("/items/0", {"changed": True})
        dst.put("/only/in/destination", 1)
    again = cli("copy", source_url, dst_url)  # stderr is no terminal: no progress line
    assert (again.returncode, again.stderr) == (0, "")
    assert json.loads(again.stdout)["copied"] == 1238
    assert _contents(dst_url) == {**expected, Key("/only/in/destination"): 1}


def test_copy_refuses_the_same_store_and_reports_an_unreachable_one(cli: Run, source_url: str) -> None:
    same = cli("copy", source_url, source_url)
    assert same.returncode == 2 and "same store" in same.stderr
    down = cli("copy", source_url, "postgresql://datastore@127.0.0.1:1/db")
    assert down.returncode == 3 and "postgresql://datastore@127.0.0.1:1/db" in down.stderr
    assert "Traceback" not in down.stderr
