"""The data every subject of a benchmark works on, built once before any timing.

Keys are plain strings in the datastore's normal form (``/bench/obj:0000042``);
each subject turns them into its own native form (a :class:`~datastore.Key`,
``bytes``, a file name...) before the clock starts, so that key building is
never timed on one side only. Values are ~100-byte JSON-able dicts, generated
from a fixed seed so that every run and every subject sees the same data.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COLLECTION", "Plan", "QuerySpec", "make_value"]

#: Every benchmark object lives in this one collection (``Key.path`` of its keys).
COLLECTION = "/bench/obj"


def make_value(i: int, rng: random.Random) -> dict[str, Any]:
    """Object ``i``: about 100 bytes of compact JSON, with a filter and an order field."""
    return {
        "id": i,
        "name": f"user{i:07d}",
        "age": rng.randrange(100),
        "score": rng.random() * 1000.0,
        "active": bool(i % 2),
        "tags": ["a", "b"],
    }


@dataclass(frozen=True)
class QuerySpec:
    """The one query of the benchmark: one filter, one order, a page of ``limit``.

    ``age >= 50`` keeps about half of the collection, so a store that does
    not push the query down must read, decode and sort the whole of it.
    """

    collection: str = COLLECTION
    field: str = "age"
    op: str = ">="
    value: int = 50
    order_field: str = "score"
    descending: bool = True
    limit: int = 10

    def matches(self, value: dict[str, Any]) -> bool:
        """The filter, in plain Python (the only operator the benchmark uses is ``>=``)."""
        found = value.get(self.field)
        return isinstance(found, int) and found >= self.value

    def apply(self, pairs: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """What a user of a raw driver writes after fetching everything: filter, sort, page.

        ``heapq.nsmallest`` is the fastest honest way to take a top-10 in
        Python, so the fetch-all baseline is not handicapped by a full sort.
        """
        sign = -1.0 if self.descending else 1.0
        field_ = self.order_field
        matching = (pair for pair in pairs if self.matches(pair[1]))
        top = heapq.nsmallest(
            self.limit, matching, key=lambda pair: (sign * pair[1][field_], pair[0])
        )
        return [value for _, value in top]


@dataclass
class Plan:
    """The keys and values of one benchmark size, shared by every subject of a group.

    ``stored`` holds ``size`` objects loaded before timing. Each repeat ``r``
    then puts ``fresh[r]`` and deletes them again, reads ``hits`` and
    ``misses``, and puts, reads and deletes whole chunks in bulk, so that the
    store holds exactly ``size`` objects whenever a read or a query is timed.
    """

    size: int
    ops: int
    bulk: int
    bulk_calls: int
    repeats: int
    seed: int = 20240601
    stored: list[str] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    fresh: list[list[str]] = field(default_factory=list)
    bulk_fresh: list[list[list[str]]] = field(default_factory=list)
    bulk_hits: list[list[str]] = field(default_factory=list)
    query: QuerySpec = field(default_factory=QuerySpec)

    @classmethod
    def build(cls, size: int, ops: int, bulk: int, bulk_calls: int, repeats: int) -> Plan:
        plan = cls(size=size, ops=ops, bulk=min(bulk, size), bulk_calls=bulk_calls,
                   repeats=repeats)
        rng = random.Random(plan.seed + size)
        plan.stored = [f"{COLLECTION}:{i:07d}" for i in range(size)]
        plan.values = [make_value(i, rng) for i in range(size)]
        plan.hits = [plan.stored[rng.randrange(size)] for _ in range(ops)]
        plan.misses = [f"{COLLECTION}:miss{i:07d}" for i in range(ops)]
        plan.fresh = [[f"{COLLECTION}:new{r}-{i:07d}" for i in range(ops)] for r in range(repeats)]
        plan.bulk_fresh = [
            [[f"{COLLECTION}:bulk{r}-{c}-{i:05d}" for i in range(plan.bulk)]
             for c in range(bulk_calls)]
            for r in range(repeats)
        ]
        plan.bulk_hits = [
            [plan.stored[(start + i) % size] for i in range(plan.bulk)]
            for start in (rng.randrange(size) for _ in range(bulk_calls))
        ]
        return plan

    def value_for(self, i: int) -> dict[str, Any]:
        """The value written by the i-th put of a timed loop (stored values, reused)."""
        return self.values[i % self.size]

    def expected_query(self) -> list[dict[str, Any]]:
        """The right answer of the query over the stored objects, for checking every subject."""
        return self.query.apply(zip(self.stored, self.values, strict=True))
