"""Running one group of subjects through every workload, interleaved, in one process.

For each size the harness builds one :class:`~bench.data.Plan`, opens every
subject of the group on an empty store, loads the same objects into each
(untimed), checks that each answers correctly, then times the workloads.
Repeats are the outer loop and subjects are rotated inside it, so that a
slow phase of the machine hits store and baseline alike; the reported figure
is the median of the repeats.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import io
import pstats
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import Plan
from .subject import Context, Subject, Unavailable

__all__ = [
    "BULK", "QUERY", "SINGLE", "WORKLOADS", "Entry", "Group", "Results", "median", "paired_ratio",
    "run_group",
]

SINGLE = ("put", "get_hit", "get_miss", "contains", "delete")
BULK = ("put_many", "get_many", "delete_many")
QUERY = ("query", "query_pushdown")
WORKLOADS = SINGLE + BULK + QUERY


@dataclass
class Entry:
    """One row of the registry: a named subject and the factory that opens it empty."""

    name: str
    role: str
    factory: Callable[[Context], Subject]


@dataclass
class Group:
    """A store, its raw driver and its peers: measured together, compared to each other."""

    name: str
    title: str
    entries: list[Entry]
    #: single operations timed per repeat (each workload)
    ops: int = 2000
    #: bulk calls of ``bulk`` items each per repeat
    bulk_calls: int = 3
    #: sizes above this are skipped for the group (slow engines); None: no cap
    max_size: int | None = None
    #: at most this many repeats for the group (slow engines); None: as asked
    max_repeats: int | None = None
    #: shown under the group's table: what is unusual about the measurement
    note: str = ""
    aliases: tuple[str, ...] = ()


@dataclass
class Results:
    """Everything a run produced, in plain data (what latest.json holds)."""

    samples: dict[tuple[str, str, str, int], list[float]] = field(default_factory=dict)
    subjects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped_sizes: dict[str, list[int]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def median(self, group: str, subject: str, workload: str, size: int) -> float | None:
        values = self.samples.get((group, subject, workload, size))
        return median(values) if values else None


def median(values: list[float]) -> float:
    """The middle of ``values`` (the mean of the two middle ones for an even count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def paired_ratio(a: list[float], b: list[float]) -> float:
    """``a / b`` of two subjects' samples, as the median of their per-round ratios.

    The subjects of a group run each round of a workload one right after
    the other (see :func:`_rounds`), so the two samples of one round saw the
    same machine: their ratio cancels the drift of a shared, busy host (seen
    here: two copies of one raw-driver subject 11-16% apart in one run),
    which a ratio of two medians taken at different moments keeps. Samples
    that do not line up round by round (a subject that failed part-way)
    fall back to that ratio of medians.
    """
    if a and len(a) == len(b):
        return median([x / y for x, y in zip(a, b, strict=True)])
    return median(a) / median(b)


class _Prepared:
    """A subject with the plan's keys and values in its native form (built before timing)."""

    def __init__(self, subject: Subject, plan: Plan) -> None:
        self.subject = subject
        key = subject.key
        value = subject.value
        self.values = [value(v) for v in plan.values]
        self.stored = [key(k) for k in plan.stored]
        self.hits = [key(k) for k in plan.hits]
        self.misses = [key(k) for k in plan.misses]
        n = len(self.values)
        self.fresh = [[(key(k), self.values[i % n]) for i, k in enumerate(keys)]
                      for keys in plan.fresh]
        self.bulk_fresh = [
            [[(key(k), self.values[i % n]) for i, k in enumerate(chunk)] for chunk in calls]
            for calls in plan.bulk_fresh
        ]
        self.bulk_hits = [[key(k) for k in chunk] for chunk in plan.bulk_hits]
        self.failed: str | None = None
        self.skip: set[str] = set()


# -- the timed loops (kept tiny: the same loop drives every subject) ---------------

def _loop_put(op: Callable[[Any, Any], Any], pairs: list[tuple[Any, Any]]) -> None:
    for key, value in pairs:
        op(key, value)


def _loop_each(op: Callable[[Any], Any], keys: list[Any]) -> None:
    for key in keys:
        op(key)


def _loop_calls(op: Callable[[Any], Any], chunks: list[Any]) -> None:
    for chunk in chunks:
        op(chunk)


class _Clock:
    """Times a call with the collector off; optionally profiles store subjects."""

    def __init__(self, profile_dir: Path | None) -> None:
        self.profile_dir = profile_dir
        self.profiles: dict[str, cProfile.Profile] = {}

    def __call__(self, tag: str | None, fn: Callable[..., Any], *args: Any) -> float:
        profiler = None
        if tag is not None and self.profile_dir is not None:
            profiler = self.profiles.setdefault(tag, cProfile.Profile())
        gc.disable()
        try:
            if profiler is not None:
                profiler.enable()
            start = time.perf_counter()
            fn(*args)
            elapsed = time.perf_counter() - start
            if profiler is not None:
                profiler.disable()
        finally:
            gc.enable()
        return max(elapsed, 1e-9)

    def dump(self) -> list[Path]:
        written: list[Path] = []
        if self.profile_dir is None:
            return written
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        for tag, profiler in sorted(self.profiles.items()):
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(25)
            path = self.profile_dir / f"{tag}.txt"
            path.write_text(text.getvalue())
            written.append(path)
        return written


#: Rounds a repeat's single operations are split into (see :func:`_rounds`).
ROUNDS = 10


def _rounds(workload: str, plan: Plan) -> int:
    """How many interleaved rounds one repeat of ``workload`` is split into.

    The subjects of a group take turns round by round: the store runs a
    tenth of its operations (one bulk call), then the raw driver the same
    tenth, and so on. Each round of the store is then paired with the raw
    driver's round of the same moment, a fraction of a second apart, and a
    ratio is the median over all rounds of all repeats (see
    :func:`paired_ratio`): the host's speed, which drifts on this shared
    machine by 10-20% within seconds, cancels out of each pair.
    """
    if workload in SINGLE:
        return max(1, min(ROUNDS, plan.ops))
    if workload in BULK:
        return len(plan.bulk_hits)
    return 1


def _part(items: list[Any], index: int, parts: int) -> list[Any]:
    """Round ``index`` of ``parts`` of ``items``: a contiguous, near-equal slice."""
    size = len(items)
    return items[size * index // parts : size * (index + 1) // parts]


def _measure(
    clock: _Clock, tag: str | None, p: _Prepared, workload: str, plan: Plan, r: int,
    query_min_time: float, part: tuple[int, int] = (0, 1),
) -> tuple[int, float] | None:
    """Run round ``part`` (index, count) of one workload on one subject: (operations, seconds).

    None if the subject does not support the workload.
    """
    s = p.subject
    i, n = part
    if workload == "put":
        pairs = _part(p.fresh[r], i, n)
        return len(pairs), clock(tag, _loop_put, s.put, pairs)
    if workload in ("get_hit", "get_miss", "contains", "delete"):
        op = s.contains if workload == "contains" else s.delete if workload == "delete" else s.get
        source = (p.misses if workload == "get_miss" else p.hits if workload != "delete"
                  else [k for k, _ in p.fresh[r]])
        keys = _part(source, i, n)
        return len(keys), clock(tag, _loop_each, op, keys)
    if workload == "put_many":
        chunks = _part(p.bulk_fresh[r], i, n)
        return sum(map(len, chunks)), clock(tag, _loop_calls, s.put_many, chunks)
    if workload == "get_many":
        chunks = _part(p.bulk_hits, i, n)
        return sum(map(len, chunks)), clock(tag, _loop_calls, s.get_many, chunks)
    if workload == "delete_many":
        keys = [[k for k, _ in chunk] for chunk in _part(p.bulk_fresh[r], i, n)]
        return sum(map(len, keys)), clock(tag, _loop_calls, s.delete_many, keys)
    query = s.query if workload == "query" else s.query_pushdown
    if query is None:
        return None
    # Queries are slow and vary: repeat the call until the sample is long enough.
    calls, elapsed = 0, 0.0
    while calls == 0 or (elapsed < query_min_time and calls < 1000):
        elapsed += clock(tag, query, plan.query)
        calls += 1
    return calls, elapsed


def _check(p: _Prepared, plan: Plan) -> list[str]:
    """Untimed sanity checks after loading: a hit, a miss, and the query's right answer."""
    s = p.subject
    problems = []
    got = s.get(p.stored[0])
    if s.decoded(got) != plan.values[0]:
        problems.append(f"get returned {got!r} for {plan.stored[0]}")
    if s.get(p.misses[0]) is not None:
        problems.append("get of an absent key did not return None")
    expected = plan.expected_query()
    for workload in QUERY:
        query = s.query if workload == "query" else s.query_pushdown
        if query is None:
            continue
        answer = list(query(plan.query))
        if answer != expected:
            p.skip.add(workload)
            problems.append(
                f"{workload} answered {[v.get('name') for v in answer]} instead of "
                f"{[v['name'] for v in expected]}; its timings are left out"
            )
    return problems


def _short(text: str, limit: int = 200) -> str:
    """The first line of an error message, cut to ``limit`` characters for the report."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_group(
    group: Group,
    sizes: list[int],
    *,
    repeats: int,
    ops: int | None,
    bulk: int,
    ctx: Context,
    results: Results,
    query_min_time: float = 0.2,
    profile_dir: Path | None = None,
) -> None:
    """Measure every available subject of ``group`` at every size; add to ``results``."""
    clock = _Clock(profile_dir)
    group_ops = min(group.ops, ops) if ops else group.ops
    if group.max_repeats is not None:
        repeats = min(repeats, group.max_repeats)
    results.groups[group.name] = {
        "title": group.title, "note": group.note, "ops": group_ops,
        "bulk_calls": group.bulk_calls, "max_size": group.max_size, "repeats": repeats,
    }
    for size in _sizes_for(group, sizes, results):
        plan = Plan.build(size, group_ops, bulk, group.bulk_calls, repeats)
        prepared: list[_Prepared] = []
        try:
            for entry in group.entries:
                if (group.name, entry.name) in results.unavailable:
                    continue
                p = _open(group, entry, plan, ctx, results)
                if p is not None:
                    prepared.append(p)
            if not any(p.subject.role == "store" for p in prepared):
                continue
            _log(f"[{group.name} {size}] timing {', '.join(p.subject.name for p in prepared)}")
            for r in range(repeats):
                order = prepared[r % len(prepared):] + prepared[: r % len(prepared)]
                for workload in WORKLOADS:
                    rounds = _rounds(workload, plan)
                    for index, p in ((i, p) for i in range(rounds) for p in order):
                        if p.failed or workload in p.skip:
                            continue
                        s = p.subject
                        tag = (f"{group.name}-{s.name}-{workload}-{size}"
                               if s.role == "store" else None)
                        try:
                            done = _measure(clock, tag, p, workload, plan, r, query_min_time,
                                            (index, rounds))
                        except Exception as exc:  # a store under construction may break
                            p.failed = _short(f"{workload}: {type(exc).__name__}: {exc}")
                            results.errors.append({
                                "group": group.name, "subject": s.name, "size": size,
                                "error": p.failed,
                                "traceback": traceback.format_exc(limit=6),
                            })
                            _log(f"  ! {s.name} failed during {p.failed}")
                            continue
                        if done is None:
                            p.skip.add(workload)
                            continue
                        count, seconds = done
                        results.samples.setdefault(
                            (group.name, s.name, workload, size), []
                        ).append(count / seconds)
        finally:
            for p in prepared:
                try:
                    p.subject.close()
                except Exception as exc:
                    _log(f"  ! closing {p.subject.name}: {exc}")
    clock.dump()


def _sizes_for(group: Group, sizes: list[int], results: Results) -> list[int]:
    """The sizes a group runs: those within its cap, and two at least so a trend shows.

    A capped group left with one size also runs a tenth of it (1,000 objects
    then adds 100), so that the "flat" target has something to compare.
    """
    cap = group.max_size
    if cap is None:
        return sizes
    kept = [n for n in sizes if n <= cap]
    skipped = [n for n in sizes if n > cap]
    if skipped:
        results.skipped_sizes[group.name] = skipped
    if len(kept) < 2 and len(sizes) > 1:
        top = kept[-1] if kept else cap
        kept = sorted({top // 10, top}) if top // 10 >= 10 else [top]
    return kept


def _open(group: Group, entry: Entry, plan: Plan, ctx: Context, results: Results
          ) -> _Prepared | None:
    """Open, load and check one subject; record why not when it cannot run."""
    try:
        subject = entry.factory(ctx)
    except Unavailable as exc:
        results.unavailable[(group.name, entry.name)] = _short(str(exc))
        _log(f"[{group.name}] {entry.name}: unavailable ({exc})")
        return None
    except Exception as exc:
        results.unavailable[(group.name, entry.name)] = _short(
            f"failed to open: {type(exc).__name__}: {exc}")
        _log(f"[{group.name}] {entry.name}: failed to open ({exc})")
        return None
    subject.name = entry.name
    subject.role = entry.role
    results.subjects[(group.name, entry.name)] = {
        "role": entry.role, "label": subject.label, "pushes_down": subject.pushes_down,
    }
    try:
        p = _Prepared(subject, plan)
        started = time.perf_counter()
        subject.load(list(zip(p.stored, p.values, strict=True)))
        _log(f"[{group.name} {plan.size}] loaded {entry.name} in "
             f"{time.perf_counter() - started:.1f}s")
        for problem in _check(p, plan):
            results.errors.append({"group": group.name, "subject": entry.name,
                                   "size": plan.size, "error": problem})
            _log(f"  ! {entry.name}: {problem}")
    except Exception as exc:
        results.errors.append({
            "group": group.name, "subject": entry.name, "size": plan.size,
            "error": _short(f"load: {type(exc).__name__}: {exc}"),
            "traceback": traceback.format_exc(limit=6),
        })
        _log(f"  ! {entry.name} failed to load: {exc}")
        with contextlib.suppress(Exception):
            subject.close()
        return None
    return p
