"""The benchmark harness works: one tiny run writes a well-formed report, JSON and chart.

Nothing here times anything or asserts a speed: the figures of a ``--quick``
run are meaningless. These tests check the machinery (subjects open, every
workload is measured for store and raw driver, targets are evaluated, the
outputs parse) and the pieces whose mistakes would make a benchmark lie (the
fetch-all baseline answers the query exactly as the store does; the target
rules say PASS and MISS where they should).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import registry, targets  # noqa: E402
from bench.data import Plan, QuerySpec  # noqa: E402
from bench.harness import BULK, SINGLE  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    chart = out / "chart" / "bench.png"
    done = _bench("--quick", "--stores", "dict,sqlite", "--out", str(out), "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    return {"out": out, "chart": chart, "stdout": done.stdout,
            "data": json.loads((out / "latest.json").read_text())}


def test_quick_run_writes_the_three_outputs(quick_run: dict[str, Any]) -> None:
    out = quick_run["out"]
    assert (out / "latest.md").read_text().startswith("# datastore benchmark")
    assert quick_run["stdout"].startswith("# datastore benchmark")
    data = quick_run["chart"].read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_json_holds_every_workload_of_store_and_raw(quick_run: dict[str, Any]) -> None:
    data = quick_run["data"]
    assert data["meta"]["quick"] is True
    assert data["meta"]["sizes"] == [100, 300]
    assert set(data["groups"]) == {"dict", "sqlite"}
    rows = {(r["group"], r["subject"], r["workload"], r["size"]): r for r in data["results"]}
    meta = data["groups"]["dict"]
    # --quick: 2 repeats, each split into interleaved rounds (one per bulk call)
    rounds = {**dict.fromkeys(SINGLE, min(10, meta["ops"])), **dict.fromkeys(BULK, meta["bulk_calls"]),
              "query": 1}
    for subject in ("DictDatastore", "dict"):
        for workload in (*SINGLE, *BULK, "query"):
            for size in (100, 300):
                row = rows[("dict", subject, workload, size)]
                assert row["ops_per_s"] > 0
                assert len(row["samples"]) == 2 * rounds[workload]
                assert row["ops_per_s"] == pytest.approx(statistics.median(row["samples"]), rel=1e-3)
    store_row = rows[("dict", "DictDatastore", "get_hit", 300)]
    raw_row = rows[("dict", "dict", "get_hit", 300)]
    assert store_row["raw"] == "dict"
    # the median of the per-round ratios (samples line up round by round)
    paired = [s / r for s, r in zip(store_row["samples"], raw_row["samples"], strict=True)]
    assert store_row["ratio_to_raw"] == pytest.approx(statistics.median(paired), rel=1e-3)
    assert raw_row["ratio_to_raw"] is None
    assert not [e for e in data["errors"] if e["group"] == "dict"]


def test_every_registered_subject_is_measured_or_reported_unavailable(
    quick_run: dict[str, Any],
) -> None:
    data = quick_run["data"]
    measured = {(s["group"], s["name"]) for s in data["subjects"]}
    unavailable = {(u["group"], u["subject"]): u["reason"] for u in data["unavailable"]}
    for group in registry.find(["dict", "sqlite"]):
        for entry in group.entries:
            assert (group.name, entry.name) in measured | set(unavailable)
    for reason in unavailable.values():
        assert reason  # says why
    if ("sqlite", "SQLiteDatastore") in measured:
        # next to the store, the raw baseline runs the query both ways
        done = {r["workload"] for r in data["results"] if r["subject"] == "sqlite3"}
        assert {"query", "query_pushdown", *SINGLE, *BULK} <= done


def test_targets_are_evaluated_and_printed(quick_run: dict[str, Any]) -> None:
    data = quick_run["data"]
    found = {t["id"]: t for t in data["targets"] if t["group"] == "dict"}
    assert found["dict-get"]["status"] in ("PASS", "MISS")
    assert found["dict-peer"]["status"] in ("PASS", "MISS", "N/A")
    assert {t["group"] for t in data["targets"]} <= {"dict", "sqlite"}
    text = (quick_run["out"] / "latest.md").read_text()
    for t in data["targets"]:
        assert f"| {t['status']} | {t['target']} |" in text


def test_markdown_tables_are_well_formed(quick_run: dict[str, Any]) -> None:
    lines = (quick_run["out"] / "latest.md").read_text().splitlines()
    tables = 0
    for i, line in enumerate(lines):
        if line.startswith("| ---"):
            tables += 1
            width = lines[i - 1].count("|")
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert lines[j].count("|") == width, lines[j]
                j += 1
    assert tables >= 2  # the targets and the dict group at least


def test_fetch_all_baseline_answers_like_the_store() -> None:
    """The raw baseline's filter/sort/page must be the query the store runs, or ratios lie."""
    from datastore import DictDatastore, Key, Query

    plan = Plan.build(500, ops=10, bulk=10, bulk_calls=1, repeats=1)
    store = DictDatastore()
    store.put_many((Key(k), v) for k, v in zip(plan.stored, plan.values, strict=True))
    spec = QuerySpec()
    query = Query(Key(spec.collection), limit=spec.limit).filter(
        spec.field, spec.op, spec.value).order("-" + spec.order_field)
    expected = list(store.query(query))
    assert len(expected) == spec.limit
    assert plan.expected_query() == expected


def _data(rows: list[tuple[str, str, str, str, int, float]]) -> dict[str, Any]:
    subjects = {(g, s): role for g, s, role, *_ in rows}
    return {
        "groups": {g: {} for g, *_ in rows},
        "subjects": [{"group": g, "name": s, "role": r} for (g, s), r in subjects.items()],
        "unavailable": [],
        "results": [{"group": g, "subject": s, "role": role, "workload": w, "size": n,
                     "ops_per_s": ops} for g, s, role, w, n, ops in rows],
    }


def test_target_rules_pass_and_miss() -> None:
    rows = []
    for w in SINGLE:
        rows += [("redis", "RedisDatastore", "store", w, 1000, 95.0),
                 ("redis", "redis-py", "raw", w, 1000, 100.0)]
    rows += [("redis", "RedisDatastore", "store", "put_many", 1000, 80.0),
             ("redis", "redis-py", "raw", "put_many", 1000, 100.0)]
    found = {t["id"]: t for t in targets.evaluate(_data(rows))}
    assert found["net-single"]["status"] == "PASS"  # 100/95 = 1.05x time
    assert found["net-bulk"]["status"] == "MISS"  # 0.8x throughput
    assert "put_many@1k 0.80" in found["net-bulk"]["detail"]

    rows = [("dict", "DictDatastore", "store", "get_hit", 1000, 3e6),
            ("dict", "DictDatastore", "store", "get_hit", 100000, 1.5e6),
            ("dict", "minimalkv", "peer", "get_hit", 1000, 1e6),
            ("dict", "minimalkv", "peer", "get_hit", 100000, 1e6)]
    found = {t["id"]: t for t in targets.evaluate(_data(rows))}
    assert found["dict-get"]["status"] == "PASS"
    assert found["dict-peer"]["status"] == "MISS"  # 1.5x at 100k
    assert found["flat"]["status"] == "MISS"  # get time doubled from 1k to 100k

    rows = [("sqlite", "SQLiteDatastore", "store", "query", 1000, 1000.0),
            ("sqlite", "SQLiteDatastore", "store", "query", 100000, 800.0),
            ("sqlite", "sqlite3", "raw", "query", 100000, 50.0)]
    found = {t["id"]: t for t in targets.evaluate(_data(rows))}
    assert found["query-speedup"]["status"] == "PASS"  # 16x
    assert found["query-flat"]["status"] == "PASS"  # 1.25x

    # per-op growth: 3x is not flat, unless the raw driver itself grows nearly as much
    rows = [("leveldb", "LevelDBDatastore", "store", "get_hit", 1000, 300.0),
            ("leveldb", "LevelDBDatastore", "store", "get_hit", 100000, 100.0),
            ("leveldb", "plyvel", "raw", "get_hit", 1000, 900.0),
            ("leveldb", "plyvel", "raw", "get_hit", 100000, 900.0)]
    assert targets.evaluate(_data(rows))[-1]["status"] == "MISS"
    rows[-1] = ("leveldb", "plyvel", "raw", "get_hit", 100000, 360.0)  # raw grew 2.5x
    flat = targets.evaluate(_data(rows))[-1]
    assert flat["status"] == "PASS"
    assert "3.00x (raw 2.50x)" in flat["detail"]


def test_command_line_errors_and_listing() -> None:
    done = _bench("--stores", "nosuchstore")
    assert done.returncode == 2
    assert "unknown store(s) nosuchstore" in done.stderr
    done = _bench("--list")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == [
        g.name for g in registry.GROUPS]


def test_target_out_of_reach_needs_the_raw_driver_doing_the_same_work_to_miss_too() -> None:
    """OUT OF REACH is earned by a measurement: the hand-written equivalent misses as well."""
    def redis_rows(peer_ops: float) -> list[tuple[str, str, str, str, int, float]]:
        return [("redis", "RedisDatastore", "store", "put_many", 1000, 40.0),
                ("redis", "redis-py", "raw", "put_many", 1000, 100.0),
                ("redis", "redis-py+index", "peer", "put_many", 1000, peer_ops)]

    found = {(t["id"], t["target"].split(":")[0]): t for t in targets.evaluate(_data(redis_rows(55.0)))}
    bulk = found[("net-bulk", "redis")]
    assert bulk["status"] == "OUT OF REACH"
    assert "redis-py+index by hand: 0.55" in bulk["detail"]
    # the same-work line then judges the store against the peer: 40/55 = 0.73x misses
    assert found[("net-bulk", "redis vs redis-py+index")]["status"] == "MISS"
    # a peer that meets the target leaves the store's miss a plain MISS
    found = {(t["id"], t["target"].split(":")[0]): t for t in targets.evaluate(_data(redis_rows(95.0)))}
    assert found[("net-bulk", "redis")]["status"] == "MISS"

    # an unindexed pushed-down query: out of reach only if hand-written SQL misses too
    def sqlite_rows(hand_ops: float) -> list[tuple[str, str, str, str, int, float]]:
        return [("sqlite", "SQLiteDatastore", "store", "query", 1000, 100.0),
                ("sqlite", "SQLiteDatastore", "store", "query", 100000, 2.0),
                ("sqlite", "sqlite3", "raw", "query", 1000, 50.0),
                ("sqlite", "sqlite3", "raw", "query", 100000, 1.0),
                ("sqlite", "sqlite3", "raw", "query_pushdown", 1000, 120.0),
                ("sqlite", "sqlite3", "raw", "query_pushdown", 100000, hand_ops)]

    found = {t["id"]: t for t in targets.evaluate(_data(sqlite_rows(2.4)))}
    assert found["query-speedup"]["status"] == "OUT OF REACH"  # 2x; hand SQL 2.4x
    assert found["query-flat"]["status"] == "OUT OF REACH"  # 50x growth; hand SQL 50x
    found = {t["id"]: t for t in targets.evaluate(_data(sqlite_rows(60.0)))}
    assert found["query-speedup"]["status"] == "MISS"  # hand SQL reaches 60x: no excuse
    assert found["query-flat"]["status"] == "MISS"


def test_growth_is_out_of_reach_only_where_the_same_work_by_hand_grows_too() -> None:
    """A store that does more than the raw driver (its own index) is held to the same flatness
    rule; its growth is excused only when the raw driver doing that work by hand misses too."""
    store = "SQLiteDatastore(indexes=score)"

    def rows(peer_at_100k: float) -> list[tuple[str, str, str, str, int, float]]:
        return [("sqlite", store, "store", "put", 1000, 20.0),
                ("sqlite", store, "store", "put", 100000, 10.0),  # 2x
                ("sqlite", "sqlite3", "raw", "put", 1000, 60.0),
                ("sqlite", "sqlite3", "raw", "put", 100000, 60.0),  # flat
                ("sqlite", "sqlite3+layout+index", "peer", "put", 1000, 30.0),
                ("sqlite", "sqlite3+layout+index", "peer", "put", 100000, peer_at_100k)]

    def flat(peer_at_100k: float) -> dict[str, Any]:
        return next(t for t in targets.evaluate(_data(rows(peer_at_100k))) if t["id"] == "flat")

    found = flat(16.0)  # the index by hand grows 1.88x: not flat either
    assert found["status"] == "OUT OF REACH"
    assert "sqlite3+layout+index by hand: 1.88x" in found["detail"]
    assert flat(25.0)["status"] == "MISS"  # by hand it grows 1.2x: no excuse


def test_ratios_are_paired_repeat_by_repeat() -> None:
    """A store 5% slower than the raw driver in every repeat is 1.05x, whatever the host's drift."""
    from bench.harness import paired_ratio

    raw = [100.0, 60.0, 100.0, 60.0, 80.0]  # the host's speed drifts from repeat to repeat
    store = [r / 1.05 for r in raw]
    store[4] = 40.0  # and one hiccup hit the store alone
    assert paired_ratio(raw, store) == pytest.approx(1.05)
    assert sorted(raw)[2] / sorted(store)[2] == pytest.approx(1.4)  # what two medians say
    assert paired_ratio([1.0, 2.0], [1.0, 2.0, 4.0]) == pytest.approx(1.5 / 2.0)  # misaligned

    rows = [("redis", "RedisDatastore", "store", "get_hit", 1000, sorted(store)[2]),
            ("redis", "redis-py", "raw", "get_hit", 1000, sorted(raw)[2])]
    data = _data(rows)
    data["results"][0]["samples"], data["results"][1]["samples"] = store, raw
    found = {t["id"]: t for t in targets.evaluate(data)}
    assert found["net-single"]["status"] == "PASS", found["net-single"]["detail"]
    data["results"][0]["samples"] = [s / 1.2 for s in store]  # 1.26x in every repeat
    found = {t["id"]: t for t in targets.evaluate(data)}
    assert found["net-single"]["status"] == "MISS"
    assert "get_hit@1k 1.26x time" in found["net-single"]["detail"]


def test_a_missed_ratio_shows_the_spread_of_its_rounds() -> None:
    """A miss names the quartiles of its per-round ratios; a pass and unpaired samples do not."""
    raw = [100.0] * 8
    store = [100 / t for t in (1.00, 1.05, 1.08, 1.12, 1.13, 1.15, 1.30, 1.40)]  # time ratios
    rows = [("redis", "RedisDatastore", "store", "get_hit", 1000, 1.0),
            ("redis", "redis-py", "raw", "get_hit", 1000, 1.0)]
    data = _data(rows)
    data["results"][0]["samples"], data["results"][1]["samples"] = store, raw
    data["results"][0]["ops_per_s"] = statistics.median(store)
    data["results"][1]["ops_per_s"] = statistics.median(raw)
    found = {t["id"]: t for t in targets.evaluate(data)}
    low, _, high = statistics.quantiles([r / s for s, r in zip(store, raw, strict=True)], n=4)
    assert found["net-single"]["status"] == "MISS"
    assert f"1.12x time (middle half of 8 rounds: {low:.2f}-{high:.2f})" in (
        found["net-single"]["detail"])
    assert low < 1.10 < high  # this miss straddles the line: the next run may pass it
    data["results"][0]["samples"] = raw
    found = {t["id"]: t for t in targets.evaluate(data)}
    assert found["net-single"]["status"] == "PASS"
    assert "middle half" not in found["net-single"]["detail"]
    data["results"][0]["samples"] = store[-3:]  # rounds that do not line up: no spread
    found = {t["id"]: t for t in targets.evaluate(data)}
    assert found["net-single"]["status"] == "MISS"
    assert "middle half" not in found["net-single"]["detail"]


def test_git_baseline_does_the_stores_work(tmp_path: Path) -> None:
    """dulwich by hand answers like the store (the harness checks a hit, a miss, the
    values) and writes a commit per put, so git's size trend has a baseline."""
    done = _bench("--quick", "--stores", "git", "--out", str(tmp_path), "--no-chart")
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "latest.json").read_text())
    assert not [e for e in data["errors"] if e["group"] == "git"]
    rows = {(r["subject"], r["workload"]) for r in data["results"] if r["group"] == "git"}
    for workload in (*SINGLE, *BULK):
        assert ("dulwich", workload) in rows and ("GitDatastore", workload) in rows
    flat = [t for t in data["targets"] if t["group"] == "git" and t["id"] == "flat"]
    assert flat and "raw" in flat[0]["detail"]  # judged against dulwich's own growth

    from bench.adapters.git import RawDulwich

    (tmp_path / "scratch").mkdir()
    raw = RawDulwich(str(tmp_path / "scratch" / "repo"))
    try:
        raw.put(raw.key("/a/b:1"), {"x": 1})
        raw.put_many([(raw.key("/a/b:2"), [2]), (raw.key("/c"), "c")])
        raw.delete(raw.key("/a/b:1"))
        assert [raw.get(raw.key(k)) for k in ("/a/b:1", "/a/b:2", "/c")] == [None, [2], "c"]
        log = subprocess.run(["git", "-C", raw.path, "log", "--format=%s", "main"],
                             capture_output=True, text=True, check=True).stdout.split()
        assert log == ["write"] * 3
    finally:
        raw.close()


def test_an_indexed_store_is_judged_against_its_own_index_by_hand() -> None:
    """indexes= stores pair with the +layout+index peer (the store's own DDL) when the run has it."""
    rows = [("postgresql", name, role, "put", 1000, 100.0) for name, role in (
        ("SQLDatastore", "store"), ("SQLDatastore(indexes=score)", "store"), ("psycopg", "raw"),
        ("psycopg+index", "peer"), ("psycopg+layout", "peer"), ("psycopg+layout+index", "peer"))]
    ix = targets.Index(_data(rows))
    assert targets._same_work_peer(ix, "postgresql", "SQLDatastore(indexes=score)") == "psycopg+layout+index"
    assert targets._same_work_peer(ix, "postgresql", "SQLDatastore") == "psycopg+layout"
    ix = targets.Index(_data([r for r in rows if r[1] != "psycopg+layout+index"]))
    assert targets._same_work_peer(ix, "postgresql", "SQLDatastore(indexes=score)") == "psycopg+index"


def test_pin_finds_the_servers_by_their_loopback_ports() -> None:
    import os
    import socket

    from bench import pinning

    environ = {
        "DATASTORE_TEST_REDIS_CLUSTER": "redis-cluster://127.0.0.1:7000,127.0.0.1:7001",
        "DATASTORE_TEST_S3": "s3://b?endpoint_url=http://localhost:8333",
        "DATASTORE_TEST_X": "postgresql://u:p@[::1]:5432/db",
        "OTHER": "redis://127.0.0.1:6399/0",  # not a test server's URL
        "DATASTORE_TEST_REMOTE": "redis://db.example.com:6379/0",  # not loopback
    }
    assert pinning.server_ports(environ) == {7000, 7001, 8333, 5432}
    if not hasattr(os, "sched_getaffinity") or not Path("/proc/net/tcp").exists():
        return  # what follows reads Linux's /proc
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        # This process listens on the port: its own threads are the "server".
        assert os.getpid() in pinning.server_threads({port})
    finally:
        listener.close()
    before = os.sched_getaffinity(0)
    nobody = {"DATASTORE_TEST_NONE": f"redis://127.0.0.1:{port}/0"}  # closed again
    with pytest.raises(pinning.PinningError, match="run without --pin"), pinning.pinned(nobody):
        pass
    assert os.sched_getaffinity(0) == before  # refused before pinning anything


def test_an_indexed_store_misses_the_bare_driver_out_of_reach_only_by_its_index_cost() -> None:
    """An indexes= store's miss against the bare raw driver is the index's cost when the store
    meets the threshold against the raw driver keeping the same index by hand; not otherwise."""
    store = "SQLDatastore(indexes=score)"

    def net_single(store_ops: float) -> dict[str, Any]:
        rows = [("mysql", "SQLDatastore", "store", "put", 1000, 100.0),
                ("mysql", store, "store", "put", 1000, store_ops),
                ("mysql", "PyMySQL", "raw", "put", 1000, 100.0),
                ("mysql", "PyMySQL+layout+index", "peer", "put", 1000, 91.0)]  # the index: 1.099x
        return next(t for t in targets.evaluate(_data(rows))
                    if t["id"] == "net-single" and t["target"].startswith(f"mysql {store}:"))

    found = net_single(88.0)  # 1.14x the bare driver, 1.03x the index by hand
    assert found["status"] == "OUT OF REACH"
    assert "PyMySQL+layout+index by hand: 1.10x time; the store 1.03x time of it" in found["detail"]
    assert "or by no more than its index costs it" in found["detail"]
    assert net_single(80.0)["status"] == "MISS"  # 1.14x the index by hand: the store's own cost
