"""MongoDatastore on a real MongoDB-wire server (SecantusDB in CI, see scripts/services.sh).

Besides the conformance suite (differential test included) this checks what
is particular to MongoDB: how keys, values and field names are stored, that
queries give the naive engine's answers across BSON's different type rules,
that a filtered, ordered, limited query runs on the server, that nothing a
user supplies (keys, field names, values) can act as Mongo syntax, and what
a batch does with and without transactions.
"""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from pymongo import monitoring

import datastore
from datastore import BackendError, ClosedError, ConnectionFailed, Key, Query
from datastore.core import engine
from datastore.mongo import (
    MongoDatastore,
    collection_name,
    decode_document,
    encode_document,
    escape_field,
)
from datastore.testing import DatastoreTests
from servers import server_url

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Commands(monitoring.CommandListener):
    """Records the commands a client sends and how many documents the replies carry."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.documents = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append({"name": event.command_name, **dict(event.command)})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        cursor = event.reply.get("cursor")
        if isinstance(cursor, dict):
            self.documents += len(cursor.get("firstBatch", cursor.get("nextBatch", [])))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def named(self, name: str) -> list[dict[str, Any]]:
        return [c for c in self.sent if c["name"] == name]

    def clear(self) -> None:
        self.sent.clear()
        self.documents = 0


@pytest.fixture(scope="module")
def url() -> str:
    return server_url("DATASTORE_TEST_MONGODB")


@pytest.fixture(scope="module")
def commands() -> Commands:
    return Commands()


@pytest.fixture(scope="module")
def client(url: str, commands: Commands) -> Iterator[pymongo.MongoClient[Any]]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=5000, event_listeners=[commands]
    )
    yield client
    client.close()


@pytest.fixture
def database(client: pymongo.MongoClient[Any]) -> Iterator[Any]:
    """A database of its own for each test, dropped afterwards."""
    name = f"{client.get_default_database().name}_{uuid.uuid4().hex[:10]}"
    yield client[name]
    client.drop_database(name)


@pytest.fixture
def ds(database: Any) -> Iterator[MongoDatastore]:
    store = MongoDatastore(database)
    yield store
    store.close()


class TestMongoDatastore(DatastoreTests):
    differential_examples = 200

    @pytest.fixture
    def store(self, database: Any) -> Iterator[MongoDatastore]:
        store = MongoDatastore(database)  # the classic spelling: MongoDatastore(client.test_db)
        yield store
        store.close()


# -- names ------------------------------------------------------------------------------------


def test_collection_names_are_valid_and_distinct() -> None:
    paths = [
        "/", "/a", "/A", "/a/b", "/a.b", "/a/", "/a/b/", "/a_2eb", "/a b", "/$where",
        "/system.users", "/..", "/a-b", "/日本", "/~x", "/a:b", "/_", "/a/_",
    ]  # fmt: skip
    names = [collection_name(p, "datastore", "db") for p in paths]
    assert len(set(names)) == len(names)
    assert names[:5] == [
        "datastore", "datastore.a", "datastore.A", "datastore.a.b", "datastore.a_2eb",
    ]  # fmt: skip
    for name in names:
        assert "$" not in name and "\x00" not in name and ".." not in name
        assert not name.endswith(".") and not name.startswith("system.")
    long_path = "/" + "x" * 300
    hashed = collection_name(long_path, "datastore", "db")
    assert hashed.startswith("datastore._h") and len("db." + hashed) <= 235
    assert hashed != collection_name(long_path + "y", "datastore", "db")


def test_keys_land_in_their_collections(ds: MongoDatastore, database: Any) -> None:
    ds.put("/Comedy/MontyPython/Actor:JohnCleese", {"age": 84})
    ds.put("/top", "level")
    assert database["datastore.Comedy.MontyPython.Actor"].find_one() == {
        "_id": "/Comedy/MontyPython/Actor:JohnCleese",
        "age": 84,
    }
    assert database["datastore"].find_one() == {"_id": "/top", "_v": "level"}
    assert sorted(d["_id"] for d in database["datastore-paths"].find()) == [
        "/",
        "/Comedy/MontyPython/Actor",
    ]
    assert ds.collection_for("/Comedy/MontyPython/Actor:EricIdle").name == (
        "datastore.Comedy.MontyPython.Actor"
    )


def test_long_collection_path(ds: MongoDatastore) -> None:
    deep = Key("/" + "/".join(["segment-" + "x" * 40] * 8))
    ds.put(deep.child("k"), {"n": 1})
    assert ds.collection_for(deep.child("k")).name.startswith("datastore._h")
    assert ds.get(deep.child("k")) == {"n": 1}
    got = list(ds.query(Query("/", recursive=True, keys_only=True)))
    assert got == [deep.child("k")]


def test_prefixes_keep_stores_apart(database: Any) -> None:
    one = MongoDatastore(database, collection_prefix="one")
    two = MongoDatastore(database, collection_prefix="two")
    one.put("/a/x", 1)
    two.put("/a/x", 2)
    assert (one.get("/a/x"), two.get("/a/x")) == (1, 2)
    assert list(one.query(Query("/", recursive=True))) == [1]
    with pytest.raises(ValueError):
        MongoDatastore(database, collection_prefix="system")
    with pytest.raises(ValueError):
        MongoDatastore(database, collection_prefix="a.b")
    with pytest.raises(TypeError):
        MongoDatastore(database, collection_prefix=3)  # type: ignore[arg-type]


# -- values -----------------------------------------------------------------------------------

EXACT_VALUES: list[Any] = [
    2**63 - 1,
    -(2**63),
    2**31,
    2**53 + 1,
    -0.0,
    math.inf,
    -math.inf,
    5e-324,
    b"\x00\xff",
    b"",
    "nul\x00inside",
    {"$where": "sleep(1)", "a.b": {"c.d": [{"$ref": "x", "$id": 1}]}, "~x": 1, "": 2},
    {"_id": "not the key", "_v": "not wrapped", "_e": False, "nested": {"_id": 3}},
    {"k": "\x00", "n\x00ul": [None, True, 1.0, 1]},
    [{"$gt": ""}, [[]], {}],
    {"deep": [[[{"x": [1, {"y": None}]}]]]},
    {"big": [2**40, {"n": -(2**50)}], "~esc": 2**33, "small": 7},  # int64 at any depth: plain int
]


def test_values_round_trip_exactly(ds: MongoDatastore) -> None:
    for i, value in enumerate(EXACT_VALUES):
        ds.put(f"/v/{i}", value)
    for i, value in enumerate(EXACT_VALUES):
        got = ds.get(f"/v/{i}")
        assert got == value and repr(got) == repr(value), (value, got)
    assert math.copysign(1, ds.get("/v/4")) == -1
    assert ds.get_many([f"/v/{i}" for i in range(len(EXACT_VALUES))]) == EXACT_VALUES
    assert sorted(v for v in ds.query(Query("/v")) if isinstance(v, int)) == sorted(
        v for v in EXACT_VALUES if type(v) is int
    )


def test_tuples_are_stored_as_lists(ds: MongoDatastore) -> None:
    ds.put("/t", {"point": (1, 2)})
    assert ds.get("/t") == {"point": [1, 2]}


@pytest.mark.parametrize(
    "bad",
    [
        2**63,
        -(2**63) - 1,
        {"n": 2**64},
        [1, [2**70]],
        math.nan,
        {"x": float("nan")},
        {1: "int key"},
        {"set": {1, 2}},
        bytearray(b"x"),
        object(),
        "lone \ud800 surrogate",
        {"s": ["\udfff"]},
    ],
)
def test_unrepresentable_values_are_refused_before_writing(ds: MongoDatastore, bad: Any) -> None:
    with pytest.raises(TypeError):
        ds.put("/bad/one", bad)
    with pytest.raises(TypeError):
        ds.put_many([("/bad/ok", 1), ("/bad/two", bad)])
    with pytest.raises(TypeError), ds.batch() as batch:
        batch.put("/bad/ok2", 1)
        batch.put("/bad/three", bad)
    assert ds.get_many(["/bad/one", "/bad/ok", "/bad/two", "/bad/ok2", "/bad/three"]) == [None] * 5


def test_too_large_and_too_deep_values_are_refused(ds: MongoDatastore) -> None:
    with pytest.raises(ValueError, match="16 MiB"):
        ds.put_many([("/big/ok", 1), ("/big/blob", b"x" * (16 * 1024 * 1024))])
    deep: Any = 1
    for _ in range(120):
        deep = [deep]
    with pytest.raises(TypeError, match="nests deeper"):
        ds.put("/big/deep", deep)
    assert ds.get_many(["/big/ok", "/big/blob", "/big/deep"]) == [None] * 3


def test_documents_are_native_and_escaped(ds: MongoDatastore) -> None:
    key = Key("/docs/k")
    ds.put(key, {"name": "x", "$where": 1, "a.b": {"$gt": 2}, "_id": 3})
    raw = ds.collection_for(key).find_one({"_id": "/docs/k"})
    assert raw == {
        "_id": "/docs/k",
        "name": "x",
        "~~24where": 1,
        "~a~2eb": {"~~24gt": 2},
        "~_id": 3,
        "_e": True,
    }
    ds.put(key, ["a", 1])
    assert ds.collection_for(key).find_one({"_id": "/docs/k"}) == {"_id": "/docs/k", "_v": ["a", 1]}
    assert escape_field("plain") == "plain"
    assert escape_field("~") == "~~7e"
    document = encode_document(key, {"x": 1})
    assert decode_document(dict(document)) == (key, {"x": 1})


def test_bad_keys(ds: MongoDatastore) -> None:
    with pytest.raises(ValueError, match="surrogate"):
        ds.put("/a/\ud800", 1)
    with pytest.raises(ValueError, match="surrogate"):
        ds.get("/\udc00/x")
    assert ds.get("/") is None
    assert not ds.contains("/")
    ds.delete("/")


# -- queries match the naive engine -------------------------------------------------------------

MIXED: list[Any] = [
    None, True, False, 0, 1, -1, 5, 5.0, 5.5, 2**53, 2**53 + 1, float(2**53), 2**63 - 1,
    -(2**63), math.inf, -math.inf, -0.0, "", "5", "a", "A", "ab", "é", "z", "日本", "😀",
    "\uffff", "a\x00", b"", b"a", b"ab", b"b", [], [5], [5, 6], [None], [True], ["a"],
    {}, {"k": 5}, {"$gt": 0},
]  # fmt: skip
TARGETS: list[Any] = [
    None, True, False, 0, 5, 5.0, -0.0, 2**53, float(2**53), 2**63 - 1, math.inf, "",
    "5", "a", "é", "😀", b"a", b"ab", [5], {"k": 5}, {"$gt": 0}, "$gt", 2**64,
]  # fmt: skip


def _fill_mixed(ds: MongoDatastore) -> list[tuple[Key, Any]]:
    pairs: list[tuple[Key, Any]] = []
    for i, value in enumerate(MIXED):
        pairs.append((Key(f"/m/o{i:02d}"), {"f": value, "g": i % 3}))
    pairs.append((Key("/m/missing"), {"g": 1}))
    pairs.append((Key("/m/scalar"), 5))
    pairs.append((Key("/m/list"), [5]))
    ds.put_many(pairs)
    return pairs


def _same_as_engine(ds: MongoDatastore, query: Query, pairs: list[tuple[Key, Any]]) -> None:
    got = [k for k, _ in ds.query(query.copy()).items()]
    want = [k for k, _ in engine.run(query.copy(), pairs).items()]
    if query.orders:
        assert got == want, query
    else:
        assert sorted(got) == sorted(want), query


@pytest.mark.parametrize("mixed", [False, True], ids=["find", "pipeline"])
def test_key_tie_break_is_tree_order_in_the_server(
    ds: MongoDatastore, commands: Commands, mixed: bool
) -> None:
    names = ["/tie/a", "/tie/a-b", "/tie/a b", "/tie/a.b", "/tie:a", "/tie:", "/tie/B", "/tie/é",
             "/tie/😀", "/tie/\uffff", "/tie:a:b", "/tie/a:", "/tie/0"]  # fmt: skip
    ds.put_many((name, {"same": 1}) for name in names)
    want = sorted(Key(name) for name in names if Key(name).path == Key("/tie"))
    assert len(want) == len(names) - 1  # /tie/a: is in collection /tie/a
    if mixed:  # a second class: the order needs the computed keys (strings rank after numbers)
        ds.put("/tie/zz-text", {"same": "text"})
        want.append(Key("/tie/zz-text"))
    for limit in (None, 3, 20):
        commands.clear()
        got = list(ds.query(Query("/tie", limit=limit, keys_only=True).order("same")))
        assert got == want[:limit]
        if mixed:
            assert commands.named("aggregate")[-1]["pipeline"][1]["$sort"]["_id"] == 1
        else:
            assert commands.named("find")[-1]["sort"] == {"same": 1, "_id": 1}


def test_every_filter_against_every_type(ds: MongoDatastore) -> None:
    pairs = _fill_mixed(ds)
    for target in TARGETS:
        for op in ("<", "<=", "=", "!=", ">=", ">"):
            _same_as_engine(ds, Query("/m").filter("f", op, target), pairs)


def test_orders_across_types(ds: MongoDatastore) -> None:
    pairs = []
    for key, value in _fill_mixed(ds):
        if isinstance(value, dict) and isinstance(value.get("f"), bytes):
            ds.delete(key)  # binary data has its own test: its orders finish in Python
        else:
            pairs.append((key, value))
    for orders in (["f"], ["-f"], ["g", "f"], ["-g", "-f"], ["f", "g"], ["missing"], ["-f", "f"]):
        for limit in (None, 1, 7, 30):
            query = Query("/m", limit=limit, offset=2)
            for order in orders:
                query.order(order)
            _same_as_engine(ds, query, pairs)
            _same_as_engine(ds, query.copy().filter("f", ">", 0), pairs)
            _same_as_engine(ds, query.copy().filter("f", "<", "z"), pairs)


def test_orders_on_binary_fall_back_to_python(ds: MongoDatastore) -> None:
    pairs = _fill_mixed(ds)  # holds b"b" (shorter) and b"ab": MongoDB sorts by length first
    for order in ("f", "-f"):
        _same_as_engine(ds, Query("/m", limit=5).order(order), pairs)
        _same_as_engine(ds, Query("/m", limit=3).filter("f", ">", b"").order(order), pairs)
        _same_as_engine(ds, Query("/m").filter("f", "!=", None).order(order).order("g"), pairs)


def test_custom_object_getattr_is_not_pushed(ds: MongoDatastore) -> None:
    pairs = _fill_mixed(ds)

    def upper(obj: Any, field: str) -> Any:
        return obj.get(field.lower()) if isinstance(obj, dict) else None

    query = Query("/m", limit=4, object_getattr=upper).filter("F", ">", 0).order("-F")
    _same_as_engine(ds, query, pairs)


def test_recursive_queries_merge_collections(ds: MongoDatastore) -> None:
    pairs: list[tuple[Key, Any]] = []
    for i, path in enumerate(["/r", "/r/a", "/r/a/b", "/r/a:t", "/r/ab", "/rx", "/r/a/"]):
        for j in range(4):
            key = Key(f"{path}/k{j}") if not path.endswith("/") else Key(f"{path[:-1]}/:k{j}")
            pairs.append((key, {"n": (i * 7 + j * 3) % 5, "s": f"{path}{j}"}))
    pairs.append((Key("/r"), {"n": 0}))
    ds.put_many(pairs)
    for base in ("/", "/r", "/r/a", "/ra"):
        for offset, limit in ((0, None), (2, 5), (0, 1), (9, 100)):
            query = Query(base, recursive=True, offset=offset, limit=limit)
            _same_as_engine(ds, query.copy().order("-n").order("s"), pairs)
            _same_as_engine(ds, query.copy().filter("n", ">=", 2).order("n"), pairs)
            cursor = ds.query(query.copy().order("n"))
            want = engine.run(query.copy().order("n"), pairs)
            assert len(list(cursor)) == len(list(want))
            assert cursor.skipped == want.skipped
        _same_as_engine(ds, Query(base, recursive=True), pairs)


# -- what runs on the server -------------------------------------------------------------------


def test_filtered_ordered_limited_query_runs_on_the_server(ds: MongoDatastore, commands: Commands) -> None:
    ds.put_many((f"/people/p{i:03d}", {"age": i % 90, "name": f"n{i}"}) for i in range(300))
    ds.put("/people/text", {"age": "old"})
    query = Query("/people", limit=5, offset=2).filter("age", ">", 30).order("-age")
    commands.clear()
    got = list(ds.query(query.copy()).items())
    find = commands.named("find")[-1]
    assert find["filter"] == {"age": {"$type": "number", "$gt": 30, "$not": {"$type": "array"}}}
    assert find["sort"] == {"age": -1, "_id": 1}
    assert find["limit"] == 7
    assert commands.documents == 7 < 301
    reference = [(Key(f"/people/p{i:03d}"), {"age": i % 90}) for i in range(300)]
    reference.append((Key("/people/text"), {"age": "old"}))
    assert [k for k, _ in got] == [k for k, _ in engine.run(query, reference).items()]


def test_mixed_type_order_runs_as_a_pipeline(ds: MongoDatastore, commands: Commands) -> None:
    pairs = [(Key(f"/mix/k{i:03d}"), {"v": [i, str(i), True, None, i / 2][i % 5]}) for i in range(200)]
    ds.put_many(pairs)
    query = Query("/mix", limit=10).order("-v")
    commands.clear()
    got = [k for k, _ in ds.query(query.copy()).items()]
    aggregate = commands.named("aggregate")[-1]
    stages = [next(iter(stage)) for stage in aggregate["pipeline"]]
    assert stages == ["$addFields", "$sort", "$limit", "$project"]
    assert aggregate["pipeline"][2] == {"$limit": 10}
    # The class probes before it: numbers (a string breaks it), then strings (a
    # number breaks it), then no value MongoDB cannot rank; one document at most each.
    probes = commands.named("find")
    assert len(probes) == 3 and all(c["limit"] == 1 for c in probes)
    assert commands.documents == 10 + 2
    assert got == [k for k, _ in engine.run(query, pairs).items()]


@pytest.mark.parametrize(("name", "values"), [
    ("numbers", [3, 1.5, None, -2, 2**40, 0.0]),
    ("strings", ["b", "a", "é", None, "", "B"]),
    ("bools", [True, False, None]),
])  # fmt: skip
def test_order_on_one_class_is_a_plain_sorted_find(
    ds: MongoDatastore, commands: Commands, name: str, values: list[Any]
) -> None:
    pairs = [(Key(f"/one/{name}{i:03d}"), {"v": values[i % len(values)], "i": i}) for i in range(60)]
    pairs.append((Key(f"/one/{name}-without-v"), {"i": -1}))
    ds.put_many(pairs)
    for order in ("v", "-v"):
        query = Query("/one", limit=7, offset=3).order(order)
        commands.clear()
        got = [k for k, _ in ds.query(query.copy()).items()]
        assert got == [k for k, _ in engine.run(query, pairs).items()]
        assert not commands.named("aggregate")
        find = commands.named("find")[-1]
        assert find["sort"] == {"v": -1 if order == "-v" else 1, "_id": 1}
        assert find["limit"] == 10
        # a probe for numbers first; a class other than numbers costs one probe more
        assert len(commands.named("find")) == (2 if name == "numbers" else 3)


def test_an_array_is_no_class_mongodb_sorts_as_compare_does(ds: MongoDatastore) -> None:
    # $type matches an array's elements, and MongoDB sorts an array by an element:
    # arrays of numbers alone must not pass for numbers.
    pairs = [(Key(f"/arr/k{i}"), {"v": v}) for i, v in enumerate([5, [1], 3, [9, 0], 7])]
    ds.put_many(pairs)
    for order in ("v", "-v"):
        _same_as_engine(ds, Query("/arr", limit=4).order(order), pairs)
        _same_as_engine(ds, Query("/arr").order(order).order("w"), pairs)


def test_keys_only_fetches_no_values(ds: MongoDatastore, commands: Commands) -> None:
    ds.put_many((f"/ko/{i}", {"n": i, "blob": "x" * 100}) for i in range(10))
    commands.clear()
    keys = list(ds.query(Query("/ko", keys_only=True).filter("n", "<", 5).order("n")))
    assert keys == [Key(f"/ko/{i}") for i in range(5)]
    assert commands.named("find")[-1]["projection"] == {"_id": 1}


def test_impossible_filter_asks_nothing(ds: MongoDatastore, commands: Commands) -> None:
    ds.put("/none/a", {"f": None})
    commands.clear()
    assert list(ds.query(Query("/none").filter("f", "<", None))) == []
    assert commands.named("find") == [] and commands.named("aggregate") == []


# -- injection ---------------------------------------------------------------------------------

SNEAKY_KEYS = [
    "/$where/x", "/a.b/x", "/system.users/x", "/x/$gt", "/x/{'$gt': ''}", "/x/a.b",
    "/x:$ne", "/$cmd/x", "/../x", "/x/\\", "/x/_id", "/datastore-paths",
]  # fmt: skip
SNEAKY_FIELDS = ["$where", "$gt", "$or", "a.b", "_id", "_v", "_e", "~x", "~~24where", "\x00", "$"]


def test_injection_through_keys(ds: MongoDatastore, database: Any) -> None:
    for i, key in enumerate(SNEAKY_KEYS):
        ds.put(key, {"i": i})
    for i, key in enumerate(SNEAKY_KEYS):
        assert ds.get(key) == {"i": i}
    names = database.list_collection_names()
    assert all(name.startswith("datastore") for name in names)
    assert not any("$" in name or name.startswith("system.") for name in names)
    # /x/{'$gt': ''} is in collection /x/{'$gt' (its last namespace has a type); /x:$ne is in /x
    assert [v["i"] for v in ds.query(Query("/x").order("i"))] == [3, 5, 6, 9, 10]
    pairs = [(Key(k), {"i": i}) for i, k in enumerate(SNEAKY_KEYS)]
    for base in ("/", "/x", "/$where", "/system.users"):
        _same_as_engine(ds, Query(base, recursive=True).order("-i"), pairs)
        _same_as_engine(ds, Query(base).order("-i"), pairs)
    ds.delete("/x/$gt")
    assert ds.get("/x/{'$gt': ''}") == {"i": 4}


def test_injection_through_field_names(ds: MongoDatastore) -> None:
    pairs = []
    for i, field in enumerate(SNEAKY_FIELDS):
        pairs.append((Key(f"/fields/o{i:02d}"), {field: i, "other": 1}))
    pairs.append((Key("/fields/plain"), {"x": 1, "_id_like": 2}))
    ds.put_many(pairs)
    for field in SNEAKY_FIELDS:
        for op, target in (("=", SNEAKY_FIELDS.index(field)), (">=", 0), ("!=", None), ("=", None)):
            _same_as_engine(ds, Query("/fields").filter(field, op, target).order(field), pairs)
    # '_id' is a user field like any other: it never reads the key
    assert list(ds.query(Query("/fields").filter("_id", "=", "/fields/plain"))) == []


def test_injection_through_values(ds: MongoDatastore) -> None:
    pairs = [
        (Key("/vals/a"), {"f": {"$gt": ""}}),
        (Key("/vals/b"), {"f": "$gt"}),
        (Key("/vals/c"), {"f": ""}),
        (Key("/vals/d"), {"f": "zzz"}),
        (Key("/vals/e"), {"f": {"$ne": None}}),
        (Key("/vals/g"), {"$where": "true", "f": "$where"}),
    ]
    ds.put_many(pairs)
    for target in ({"$gt": ""}, "$gt", {"$ne": None}, {"$where": "1"}, "$where", ["$gt"]):
        for op in ("=", "!=", ">", "<="):
            _same_as_engine(ds, Query("/vals").filter("f", op, target), pairs)
    assert [k for k, _ in ds.query(Query("/vals").filter("f", "=", {"$gt": ""})).items()] == [Key("/vals/a")]
    assert [k for k, _ in ds.query(Query("/vals").filter("f", "=", "$gt")).items()] == [Key("/vals/b")]


# -- batches and atomicity ----------------------------------------------------------------------


@pytest.mark.parametrize("transactions", [True, False])
def test_batch_atomicity(database: Any, transactions: bool) -> None:
    ds = MongoDatastore(database, transactions=transactions)
    # A unique index of the user's own makes the second collection's write fail on the server.
    ds.put("/b/seed", {"email": "dup"})
    ds.collection_for("/b/seed").create_index("email", unique=True)
    with pytest.raises(BackendError), ds.batch() as batch:
        batch.put("/a/x", {"n": 1})
        batch.put("/b/y", {"email": "dup"})
        batch.delete("/b/seed")
    if transactions:
        # one transaction: nothing happened
        assert ds.get("/a/x") is None
        assert ds.get("/b/seed") == {"email": "dup"}
    else:
        # per-document atomicity only: the other collection's write went through
        assert ds.get("/a/x") == {"n": 1}
    assert ds.get("/b/y") is None


def test_batch_across_collections_in_a_transaction(database: Any, commands: Commands) -> None:
    ds = MongoDatastore(database)
    ds.put("/c/old", 1)
    commands.clear()
    with ds.batch() as batch:
        batch.put("/a/1", 1)
        batch.put("/b/1", 2)
        batch.delete("/c/old")
    assert ds.get_many(["/a/1", "/b/1", "/c/old"]) == [1, 2, None]
    assert commands.named("commitTransaction"), "a replica-set server runs a batch as a transaction"
    writes = commands.named("update") + commands.named("delete")
    data = [w for w in writes if w.get("update") != "datastore-paths"]  # not the registry
    assert len(data) == 3
    assert all(w["autocommit"] is False for w in data)  # inside a transaction
    assert len({w["txnNumber"] for w in data}) == 1  # the same one
    commands.clear()
    ds.put_many([("/a/2", 1), ("/a/3", 2), ("/b/2", 3)])
    writes = [w for w in commands.named("update") if w["update"] != "datastore-paths"]
    assert [len(w["updates"]) for w in writes] == [2, 1]  # one bulk write per collection
    assert all(w["ordered"] is False and "autocommit" not in w for w in writes)


# -- lifecycle and URLs -------------------------------------------------------------------------


def test_close(database: Any, client: pymongo.MongoClient[Any]) -> None:
    ds = MongoDatastore(database)
    ds.put("/x", 1)
    ds.close()
    ds.close()
    with pytest.raises(ClosedError):
        ds.get("/x")
    assert client[database.name]["datastore"].find_one() is not None  # the client still works


def test_open_url(url: str) -> None:
    name = f"datastore_url_{uuid.uuid4().hex[:8]}"
    base = url.rsplit("/", 1)[0]
    ds = datastore.open(f"{base}/{name}?collection_prefix=p1&transactions=false&appname=t")
    try:
        assert isinstance(ds, MongoDatastore)
        assert ds.database.name == name and ds.collection_prefix == "p1"
        ds.put("/a", {"x": 1})
        assert ds.get("/a") == {"x": 1}
        assert "p1" in ds.database.list_collection_names()
        with ds.batch() as batch:
            batch.put("/b", 2)
        assert ds.get("/b") == 2
    finally:
        ds.database.client.drop_database(name)
        ds.close()
    with pytest.raises(ClosedError):
        ds.get("/a")
    with pytest.raises(ValueError, match="names no database"):
        datastore.open(base + "/")
    with pytest.raises(ValueError, match="transactions"):
        datastore.open(f"{base}/{name}?transactions=maybe")
    other = MongoDatastore(f"{base}/{name}", collection_prefix="kw", serverSelectionTimeoutMS=2000)
    assert other.collection_prefix == "kw"
    other.close()


def test_constructor_checks(database: Any, client: pymongo.MongoClient[Any]) -> None:
    with pytest.raises(TypeError):
        MongoDatastore(client)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        MongoDatastore(database, serverSelectionTimeoutMS=1)
    with pytest.raises(ValueError, match="acknowledged"):
        MongoDatastore(database.with_options(write_concern=pymongo.WriteConcern(w=0)))
    with pytest.raises(ValueError):
        MongoDatastore("postgresql://x/y")


def test_unreachable_server_raises_connection_failed() -> None:
    ds = MongoDatastore("mongodb://127.0.0.1:9/db", serverSelectionTimeoutMS=200)
    with pytest.raises(ConnectionFailed) as info:
        ds.get("/a")
    assert isinstance(info.value.__cause__, pymongo.errors.PyMongoError)
    with pytest.raises(ConnectionFailed):
        list(ds.query(Query("/a")))
    ds.close()


def test_missing_driver_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['pymongo'] = None\n"
        "import datastore\n"
        "try:\n"
        "    import datastore.mongo\n"
        "except datastore.MissingDriver as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'datastore-kit[mongo]'" in out.stdout
    plain = "import sys, datastore; print('pymongo' in sys.modules, 'bson' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
