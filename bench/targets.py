"""The targets of issue 6, evaluated on a run's results (PASS, MISS or N/A, with the figures).

Every target is a ratio measured in the same run on the same machine. The
thresholds are the issue's; the two "flat" targets need a tolerance, chosen
here and printed with the result: per-op time may grow by at most 1.5x from
the smallest to the largest size (a B-tree's extra level stays well within
that; a scan does not), or, where the engine itself is not flat (a dict's
lookups slow down once its table outgrows the CPU caches, and the raw
driver shows it), by at most 1.25x the raw driver's own growth; a
pushed-down query's time may grow by at most 2x.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from .harness import SINGLE, paired_ratio

__all__ = ["Index", "evaluate"]

NETWORKED = ("redis", "memcached", "mongo", "postgresql", "mysql")
PUSHDOWN_GROUPS = ("sqlite", "postgresql", "mysql", "mongo")
SINGLE_TIME_MAX = 1.10
BULK_THROUGHPUT_MIN = 0.9
SQLITE_PUT_MANY_MIN = 0.8
DICT_GET_MIN = 1_000_000.0
DICT_VS_MINIMALKV_MIN = 2.0
QUERY_SPEEDUP_MIN = 10.0
QUERY_GROWTH_MAX = 2.0
FLAT_GROWTH_MAX = 1.5
#: where the raw driver itself slows down with size, the store may slow down this much more
ENGINE_MARGIN = 1.25


class Index:
    """Median ops/s by (group, subject, workload, size), plus who is who in each group."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.ops = {
            (r["group"], r["subject"], r["workload"], r["size"]): r["ops_per_s"]
            for r in data["results"]
        }
        self.samples: dict[tuple[str, str, str, int], list[float]] = {
            (r["group"], r["subject"], r["workload"], r["size"]): r.get("samples") or []
            for r in data["results"]
        }
        self.subjects = data["subjects"]
        self.unavailable = {(u["group"], u["subject"]): u["reason"] for u in data["unavailable"]}

    def get(self, group: str, subject: str | None, workload: str, size: int) -> float | None:
        return None if subject is None else self.ops.get((group, subject, workload, size))

    def of_role(self, group: str, role: str) -> list[str]:
        return [s["name"] for s in self.subjects if s["group"] == group and s["role"] == role]

    def sizes(self, group: str, subject: str | None, workload: str) -> list[int]:
        return sorted(
            size for (g, s, w, size) in self.ops if (g, s, w) == (group, subject, workload)
        )

    def why_missing(self, group: str, subject: str | None = None) -> str:
        reasons = [r for (g, s), r in self.unavailable.items()
                   if g == group and (subject is None or s == subject)]
        return reasons[0] if reasons else "not measured in this run"


def _k(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


#: (what was measured, the figure, whether it meets the target, a note after the figure)
Check = tuple[str, float, bool, str]


#: label of a check -> (who proves it, their figure, whether they meet the same threshold, a note)
Proofs = dict[str, tuple[str, float, bool, str]]


def _result(tid: str, group: str, target: str, checks: list[Check],
            unit: str, na: str | None = None, proofs: Proofs | None = None) -> dict[str, Any]:
    """One target line from its checks: PASS, MISS, or OUT OF REACH.

    A missed check is out of reach when ``proofs`` holds, for its label, a
    measurement of the raw driver doing the store's work by hand that
    misses the same threshold: no library can beat the driver it calls (or,
    for a field index, see :func:`_index_proofs`). A line is OUT OF REACH
    when every miss is, and then names each proof.
    """
    if na is not None or not checks:
        return {"id": tid, "group": group, "target": target, "status": "N/A",
                "detail": na or "no measurements", "checks": []}
    misses = [c for c in checks if not c[2]]
    proofs = proofs or {}
    bound = [c for c in misses if c[0] in proofs and not proofs[c[0]][2]]
    status = "PASS" if not misses else "OUT OF REACH" if len(bound) == len(misses) else "MISS"
    shown = misses or checks

    def say(label: str, value: float, note: str) -> str:
        text = f"{label} {value:.2f}{unit}{note}"
        if status == "OUT OF REACH":
            who, figure, _, extra = proofs[label]
            text += f" ({who} by hand: {figure:.2f}{unit}{extra})"
        return text

    detail = ", ".join(say(label, value, note) for label, value, _, note in shown[:6])
    if len(shown) > 6:
        detail += f" (+{len(shown) - 6} more)"
    by_index = any(proofs[c[0]][3] for c in bound)
    lead = {"PASS": "all: ", "MISS": "missed: ", "OUT OF REACH": "missed, as is the raw driver doing"
            " the same work" + (" (or by no more than its index costs it)" if by_index else "")
            + ": "}[status]
    return {
        "id": tid, "group": group, "target": target, "status": status,
        "detail": lead + detail,
        "checks": [{"what": c[0], "value": c[1], "ok": c[2]} for c in checks],
    }


def _pairs(ix: Index, group: str, a: str | None, b: str | None, workloads: Iterable[str]
           ) -> list[tuple[str, int, float, float]]:
    """(workload, size, ops of a, ops of b) wherever both were measured (none if one is absent).

    ``b``'s figure is the one that pairs with ``a``'s: ``x / y`` is the
    median of their per-repeat ratios (:func:`~bench.harness.paired_ratio`),
    so every ratio a target takes is measured repeat by repeat.
    """
    out: list[tuple[str, int, float, float]] = []
    if a is None or b is None:
        return out
    for w in workloads:
        for size in ix.sizes(group, a, w):
            x, y = ix.get(group, a, w, size), ix.get(group, b, w, size)
            if x is not None and y is not None:
                xs, ys = ix.samples[(group, a, w, size)], ix.samples[(group, b, w, size)]
                if xs and ys:
                    y = x / paired_ratio(xs, ys)
                out.append((w, size, x, y))
    return out


def _spread(ix: Index, group: str, a: str | None, b: str | None, workload: str, size: int,
            time: bool = False) -> str:
    """The middle half of the per-round ratios behind a missed check, as a note.

    A check is judged on the median of its round-by-round ratios; their
    quartiles show whether a miss is clear (the whole middle half beyond
    the threshold) or a median at the threshold of a spread that straddles
    it, which the next run may pass. ``time`` gives ``b``'s ops over ``a``'s
    (a time ratio), else ``a``'s over ``b``'s. Empty where the rounds do not
    line up or are too few to have quartiles.
    """
    if a is None or b is None:
        return ""
    xs, ys = ix.samples.get((group, a, workload, size)), ix.samples.get((group, b, workload, size))
    if not xs or not ys or len(xs) != len(ys) or len(xs) < 4:
        return ""
    ratios = [y / x if time else x / y for x, y in zip(xs, ys, strict=True)]
    low, _, high = statistics.quantiles(ratios, n=4)
    return f" (middle half of {len(ratios)} rounds: {low:.2f}-{high:.2f})"


def _ratio_checks(ix: Index, group: str, a: str | None, b: str | None,
                  workloads: Iterable[str], limit: float, time: bool = False) -> list[Check]:
    """One check of ``a`` against ``b`` per measured point, a miss with its spread.

    ``time``: the time ratio (``b``'s ops over ``a``'s) at most ``limit``;
    otherwise the throughput ratio (``a``'s over ``b``'s) at least ``limit``.
    """
    checks: list[Check] = []
    for w, n, x, y in _pairs(ix, group, a, b, workloads):
        value = y / x if time else x / y
        ok = value <= limit if time else value >= limit
        checks.append((f"{w}@{_k(n)}", value, ok, "" if ok else _spread(ix, group, a, b, w, n, time)))
    return checks


def _proofs(who: str | None, checks: list[Check]) -> Proofs:
    """``who``'s checks (the same rule, the raw driver doing the store's work) as proofs."""
    return {} if who is None else {label: (who, value, ok, "") for label, value, ok, _ in checks}


def _index_proofs(proofs: Proofs, own: list[Check], unit: str) -> Proofs:
    """``proofs`` of a store with field indexes, where its own overhead is within the threshold.

    An index is work the user asks for and the bare raw driver does not do:
    on MariaDB its two B-trees alone cost a single put ~10% (measured by the
    ``+layout+index`` peer, the store's DDL by hand). Where the store meets
    the threshold against that peer (``own``: the store's checks against
    it), what remains of its miss against the bare driver is the index's
    cost, which no library can remove; the note gives the store's own ratio.
    """
    out = dict(proofs)
    for label, value, ok, _ in own:
        if ok and label in out:
            who, figure, _, _ = out[label]
            out[label] = (who, figure, False, f"; the store {value:.2f}{unit} of it")
    return out


def _same_work_peer(ix: Index, group: str, store: str) -> str | None:
    """The peer that does ``store``'s work with the raw driver by hand, if the run has one.

    A store with field indexes (``indexes=``) is matched with the
    ``+layout+index`` peer (its own table and index, by hand), or else the
    ``+index`` one; the plain store with the ``+layout`` peer (the store's own table
    and statements), or, where the store keeps an index of its own (Redis,
    memcached), the ``+index`` peer. A store without one (``index=False``)
    does what the raw driver does: it has no excuse.
    """
    if "index=False" in store:
        return None
    peers = ix.of_role(group, "peer")
    layout = [p for p in peers if p.endswith("+layout")]
    index = [p for p in peers if p.endswith("+index")]
    if "indexes=" in store:
        # The store's own index on its own table, by hand, when the run has it.
        exact = [p for p in index if p.endswith("+layout+index")]
        return next(iter(exact or index), None)
    return next(iter(layout or index), None)


def _networked(ix: Index, group: str, who: str, store: str | None, base: str | None,
               base_label: str, proof: str | None = None) -> list[dict[str, Any]]:
    """The two networked-store targets (single-op time, bulk throughput) of ``store`` vs ``base``.

    ``proof`` names a subject doing the store's work with the raw driver by
    hand; where it misses a threshold against ``base`` too, so may the store.
    """
    na = None if store and base else ix.why_missing(group)

    def rule(work: Iterable[str], limit: float, time: bool) -> tuple[list[Check], Proofs]:
        if na:
            return [], {}
        proofs = _proofs(proof, _ratio_checks(ix, group, proof, base, work, limit, time))
        if proof and store and "indexes=" in store:
            own = _ratio_checks(ix, group, store, proof, work, limit, time)
            proofs = _index_proofs(proofs, own, "x time" if time else "x ops/s")
        return _ratio_checks(ix, group, store, base, work, limit, time), proofs

    checks, proofs = rule(SINGLE, SINGLE_TIME_MAX, True)
    single = _result("net-single", group, f"{who}: single-op time <= {SINGLE_TIME_MAX:.2f}x {base_label}",
                     checks, "x time", na, proofs)
    checks, proofs = rule(("put_many", "get_many"), BULK_THROUGHPUT_MIN, False)
    bulk = _result("net-bulk", group, f"{who}: bulk put/get >= {BULK_THROUGHPUT_MIN}x {base_label}'s"
                   " pipelined/batched throughput", checks, "x ops/s", na, proofs)
    return [single, bulk]


def _growth(ix: Index, group: str, subject: str, workload: str, small: int, big: int
            ) -> float | None:
    """How much longer one operation of ``subject`` takes at size ``big`` than at ``small``."""
    fast, slow = ix.get(group, subject, workload, small), ix.get(group, subject, workload, big)
    return fast / slow if fast and slow else None


def _flat(growth: float, engine: float | None) -> tuple[float, bool]:
    """``growth`` and whether it is flat: within FLAT_GROWTH_MAX, or, where the
    engine itself is not flat (its raw driver's ``engine`` growth), within
    ENGINE_MARGIN of it."""
    return growth, growth <= FLAT_GROWTH_MAX or (
        engine is not None and growth <= ENGINE_MARGIN * engine)


def evaluate(data: dict[str, Any]) -> list[dict[str, Any]]:
    """All target lines for a run (see the module docstring for the tolerances)."""
    ix = Index(data)
    out: list[dict[str, Any]] = []

    def store_and_raw(group: str) -> tuple[str | None, str | None]:
        stores, raws = ix.of_role(group, "store"), ix.of_role(group, "raw")
        return (stores[0] if stores else None), (raws[0] if raws else None)

    for group in NETWORKED:
        stores, (_, raw) = ix.of_role(group, "store"), store_and_raw(group)
        same_work: list[tuple[str, str]] = []
        candidates: list[str | None] = [*stores] or [None]
        for store in candidates:
            who = group if store is None or store == stores[0] else f"{group} {store}"
            proof = _same_work_peer(ix, group, store) if store else None
            if store and proof:
                same_work.append((store, proof))
            out += _networked(ix, group, who, store, raw, "raw driver", proof)
        # The closest honest goal where the raw driver does less than the store must
        # (an index for queries, a richer table): the raw driver doing the same work.
        for store, peer in same_work:
            name = group if store == stores[0] else f"{group} {store}"
            out += _networked(ix, group, f"{name} vs {peer}", store, peer,
                              f"{peer} (the raw driver doing the same work)")

    store, raw = store_and_raw("sqlite")
    for peer in ("diskcache", "sqlitedict"):
        na = None if store and peer in ix.of_role("sqlite", "peer") else ix.why_missing("sqlite")
        checks = [] if na else [
            (f"{w}@{_k(n)}", s / p, s > p, "")
            for w, n, s, p in _pairs(ix, "sqlite", store, peer, ("get_hit", "put"))
        ]
        out.append(_result("sqlite-peer", "sqlite",
                           f"sqlite: get and put faster than {peer}", checks, "x", na))
    na = None if store and raw else ix.why_missing("sqlite")
    layout = _same_work_peer(ix, "sqlite", store) if store else None
    checks = [] if na else _ratio_checks(ix, "sqlite", store, raw, ("put_many",),
                                         SQLITE_PUT_MANY_MIN)
    proofs: Proofs = {} if na else _proofs(layout, _ratio_checks(
        ix, "sqlite", layout, raw, ("put_many",), SQLITE_PUT_MANY_MIN))
    out.append(_result("sqlite-bulk", "sqlite",
                       f"sqlite: put_many >= {SQLITE_PUT_MANY_MIN}x raw sqlite3"
                       " (one transaction per 1,000)", checks, "x ops/s", na, proofs))

    store, _ = store_and_raw("dict")
    na = None if store else ix.why_missing("dict")
    checks = [] if na else [
        (f"get_hit@{_k(n)}", v / 1e6, v >= DICT_GET_MIN, "")
        for n in ix.sizes("dict", store, "get_hit")
        if (v := ix.get("dict", store, "get_hit", n)) is not None
    ]
    out.append(_result("dict-get", "dict", "dict: DictDatastore get >= 1,000,000 ops/s",
                       checks, "M ops/s", na))
    na = None if store and "minimalkv" in ix.of_role("dict", "peer") else ix.why_missing(
        "dict", "minimalkv")
    checks = [] if na else [
        (f"get_hit@{_k(n)}", s / p, s / p >= DICT_VS_MINIMALKV_MIN, "")
        for _, n, s, p in _pairs(ix, "dict", store, "minimalkv", ("get_hit",))
    ]
    out.append(_result("dict-peer", "dict",
                       f"dict: DictDatastore get >= {DICT_VS_MINIMALKV_MIN:.0f}x minimalkv",
                       checks, "x", na))

    for group in PUSHDOWN_GROUPS:
        first, raw = store_and_raw(group)
        # Every store of the group that runs queries in its engine (the default one,
        # and variants such as indexes=... when the registry lists them).
        pushing = [x["name"] for x in ix.subjects
                   if x["group"] == group and x["role"] == "store" and x.get("pushes_down")]
        for store in pushing or [first or ""]:
            who = group if store == first else f"{group} {store}"
            na = None if store and raw else ix.why_missing(group)
            sizes = [] if na else ix.sizes(group, store, "query")
            if not na and not sizes:
                na = "the store's query was not measured (see errors)"
            # The proof for a store without an index is the raw driver's own hand-written
            # query on its unindexed table; an indexed store has no proof to lean on.
            hand = raw if "indexes=" not in store else None
            query_checks: list[Check] = []
            proofs = {}
            if not na and raw:
                top = sizes[-1]
                q_store, q_raw = ix.get(group, store, "query", top), ix.get(group, raw, "query", top)
                if q_store is not None and q_raw is not None:
                    label = f"query@{_k(top)}"
                    query_checks.append((label, q_store / q_raw, q_store / q_raw >= QUERY_SPEEDUP_MIN, ""))
                    q_hand = ix.get(group, hand, "query_pushdown", top) if hand else None
                    if q_hand is not None:
                        speedup = q_hand / q_raw
                        proofs[label] = (f"{hand}'s own query", speedup, speedup >= QUERY_SPEEDUP_MIN, "")
            out.append(_result("query-speedup", group,
                               f"{who}: pushed-down query >= {QUERY_SPEEDUP_MIN:.0f}x fetch-all-"
                               "and-filter (largest size)", query_checks, "x faster", na, proofs))
            query_checks, proofs = [], {}
            q_small = ix.get(group, store, "query", sizes[0]) if sizes else None
            q_big = ix.get(group, store, "query", sizes[-1]) if sizes else None
            if not na and len(sizes) > 1 and q_small and q_big:
                label = f"query time {_k(sizes[-1])}/{_k(sizes[0])}"
                growth = q_small / q_big
                query_checks.append((label, growth, growth <= QUERY_GROWTH_MAX, ""))
                h_small = ix.get(group, hand, "query_pushdown", sizes[0]) if hand else None
                h_big = ix.get(group, hand, "query_pushdown", sizes[-1]) if hand else None
                if h_small and h_big:
                    hand_growth = h_small / h_big
                    proofs[label] = (f"{hand}'s own query", hand_growth, hand_growth <= QUERY_GROWTH_MAX, "")
            out.append(_result("query-flat", group,
                               f"{who}: query cost follows the page, not the collection (time "
                               f"grows <= {QUERY_GROWTH_MAX:.0f}x from smallest to largest size)",
                               query_checks, "x",
                               na if na or len(sizes) > 1 else "needs two sizes", proofs))

    for s in data["subjects"]:
        if s["role"] != "store":
            continue
        group, name = s["group"], s["name"]
        who = group if name == ix.of_role(group, "store")[0] else f"{group} {name}"
        raws = ix.of_role(group, "raw")
        proof = _same_work_peer(ix, group, name)
        flat_checks: list[Check] = []
        flat_proofs: Proofs = {}
        for w in SINGLE:
            sizes = ix.sizes(group, name, w)
            if len(sizes) < 2:
                continue
            small, big = sizes[0], sizes[-1]
            label = f"{w} {_k(big)}/{_k(small)}"
            engine = _growth(ix, group, raws[0], w, small, big) if raws else None
            own = _growth(ix, group, name, w, small, big)
            if own is None:
                continue
            growth, ok = _flat(own, engine)
            flat_checks.append((label, growth, ok, "" if engine is None else f" (raw {engine:.2f}x)"))
            peer_growth = _growth(ix, group, proof, w, small, big) if proof else None
            if peer_growth is not None:
                # The raw driver doing the store's work, judged by the same rule.
                flat_proofs[label] = (str(proof), *_flat(peer_growth, engine), "")
        out.append(_result("flat", group,
                           f"{who}: per-op time flat across sizes (grows <= "
                           f"{FLAT_GROWTH_MAX}x, or <= {ENGINE_MARGIN}x the raw driver's own "
                           "growth)", flat_checks, "x",
                           None if flat_checks else "needs two sizes", flat_proofs))
    ran = set(data["groups"])
    return [t for t in out if t["group"] in ran]
