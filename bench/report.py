"""Turning a run's results into latest.json, latest.md and the chart the docs include."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .harness import WORKLOADS, Results, paired_ratio

__all__ = ["as_data", "chart", "markdown", "write_json"]

WORKLOAD_TITLES = {
    "put": "put (new key)",
    "get_hit": "get (hit)",
    "get_miss": "get (miss)",
    "contains": "contains (hit)",
    "delete": "delete",
    "put_many": "put_many (items/s)",
    "get_many": "get_many (items/s)",
    "delete_many": "delete_many (items/s)",
    "query": "query: filter+order+limit 10 (queries/s)",
    "query_pushdown": "query pushed down by hand (queries/s)",
}


def as_data(results: Results, meta: dict[str, Any]) -> dict[str, Any]:
    """The plain-data form of a run: what latest.json holds and what the rest reads."""
    raw_of: dict[str, str] = {}
    for (group, name), info in results.subjects.items():
        if info["role"] == "raw":
            raw_of.setdefault(group, name)
    rows = []
    for (group, subject, workload, size), samples in sorted(
        results.samples.items(), key=lambda kv: (kv[0][0], WORKLOADS.index(kv[0][2]), kv[0][3])
    ):
        ops = results.median(group, subject, workload, size)
        role = results.subjects[(group, subject)]["role"]
        raw = raw_of.get(group)
        raw_samples = results.samples.get((group, raw, workload, size)) if raw and role != "raw" else None
        rows.append({
            "group": group, "subject": subject, "role": role, "workload": workload,
            "size": size, "ops_per_s": ops, "us_per_op": 1e6 / ops if ops else None,
            "samples": [round(x, 3) for x in samples],
            "raw": raw if raw_samples else None,
            "ratio_to_raw": paired_ratio(samples, raw_samples) if samples and raw_samples else None,
        })
    return {
        "meta": meta,
        "groups": {
            name: {**info, "skipped_sizes": results.skipped_sizes.get(name, [])}
            for name, info in results.groups.items()
        },
        "subjects": [
            {"group": g, "name": n, **info} for (g, n), info in results.subjects.items()
        ],
        "results": rows,
        "unavailable": [
            {"group": g, "subject": n, "reason": r} for (g, n), r in results.unavailable.items()
        ],
        "errors": results.errors,
        "targets": [],
    }


def write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def _ops(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    if x >= 10:
        return f"{x:.0f}"
    return f"{x:.2f}"


def _size(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def markdown(data: dict[str, Any]) -> str:
    """The report: targets first, then one table per group (ops/s and the ratio to raw)."""
    meta = data["meta"]
    lines = [
        "# datastore benchmark",
        "",
        f"Run {meta['date']} on {meta['machine']} (Python {meta['python']}), "
        f"sizes {', '.join(map(_size, meta['sizes']))}, median of {meta['repeats']} repeats"
        + (", **quick run: figures are not meaningful**" if meta.get("quick") else "") + ".",
        f"Command: `{meta['command']}`, measuring `{meta.get('datastore', '?')}`.",
        f"CPU placement: {meta.get('pinning', 'not pinned')}.",
        "",
        "Cells are operations per second (items per second for the bulk rows, queries per "
        "second for the query rows); `(0.93x)` is that figure divided by the raw driver's "
        "in the same run (above 1: faster than the raw driver; a time ratio is its inverse).",
        "",
        "## Targets",
        "",
        "OUT OF REACH: missed, and the raw driver doing the same work by hand (named, with its "
        "figure) misses the same threshold in this run. A missed ratio is the median of its "
        "round-by-round ratios; \"middle half of N rounds\" gives their quartiles: a spread "
        "that straddles the threshold is a miss the next run may pass.",
        "",
        "| status | target | measured |",
        "| --- | --- | --- |",
    ]
    for t in data["targets"]:
        lines.append(f"| {t['status']} | {t['target']} | {t['detail']} |")
    lines.append("")
    by_group: dict[str, list[dict[str, Any]]] = {}
    for row in data["results"]:
        by_group.setdefault(row["group"], []).append(row)
    for group, info in data["groups"].items():
        rows = by_group.get(group, [])
        lines += [f"## {info['title']}", ""]
        subjects = [s for s in data["subjects"] if s["group"] == group]
        for s in subjects:
            lines.append(f"- **{s['name']}** ({s['role']}): {s['label'] or '-'}")
        for u in data["unavailable"]:
            if u["group"] == group:
                lines.append(f"- **{u['subject']}**: unavailable ({u['reason']})")
        if info.get("note"):
            lines.append(f"- note: {info['note']}")
        if info.get("skipped_sizes"):
            lines.append(f"- sizes skipped for this group: "
                         f"{', '.join(map(_size, info['skipped_sizes']))} (see the note)")
        lines.append(f"- {info['ops']} single operations and {info['bulk_calls']} bulk calls "
                     f"per repeat, median of {info['repeats']} repeats")
        lines.append("")
        if not rows:
            lines += ["No measurements.", ""]
            continue
        sizes = sorted({r["size"] for r in rows})
        lines.append("| workload | subject | " + " | ".join(_size(n) for n in sizes) + " |")
        lines.append("| --- | --- |" + " --- |" * len(sizes))
        cell = {(r["workload"], r["subject"], r["size"]): r for r in rows}
        names = [s["name"] for s in subjects]
        for workload in WORKLOADS:
            for name in names:
                if not any((workload, name, n) in cell for n in sizes):
                    continue
                parts = []
                for n in sizes:
                    r = cell.get((workload, name, n))
                    if r is None:
                        parts.append("-")
                    elif r["ratio_to_raw"] is not None:
                        parts.append(f"{_ops(r['ops_per_s'])} ({r['ratio_to_raw']:.2f}x)")
                    else:
                        parts.append(_ops(r["ops_per_s"]))
                lines.append(f"| {WORKLOAD_TITLES[workload]} | {name} | " + " | ".join(parts)
                             + " |")
        lines.append("")
    unavailable_groups = sorted({u["group"] for u in data["unavailable"]} - set(data["groups"]))
    if unavailable_groups:
        lines += ["## Unavailable", ""]
        for u in data["unavailable"]:
            if u["group"] in unavailable_groups:
                lines.append(f"- {u['group']} / {u['subject']}: {u['reason']}")
        lines.append("")
    if data["errors"]:
        lines += ["## Errors", ""]
        for e in data["errors"]:
            lines.append(f"- {e['group']} / {e['subject']} @ {_size(e['size'])}: {e['error']}")
        lines.append("")
    return "\n".join(lines)


def chart(data: dict[str, Any], path: Path) -> None:
    """Three panels: ratio to raw per store and workload, get/put ops/s, get cost by size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["results"]
    stores = [s for s in data["subjects"] if s["role"] == "store"]
    fig, axes = plt.subplots(1, 3, figsize=(18, max(4.5, 0.45 * len(stores) + 2.5)),
                             gridspec_kw={"width_ratios": [1.3, 1.2, 1]})

    # 1. ratio store/raw at each store's largest size, per workload (a heat map).
    workloads = [w for w in WORKLOADS if w != "query_pushdown"]
    labels: list[str] = []
    matrix: list[list[float]] = []
    for s in stores:
        mine = [r for r in rows if r["group"] == s["group"] and r["subject"] == s["name"]]
        if not mine:
            continue
        top = max(r["size"] for r in mine)
        ratio: dict[str, float] = {r["workload"]: r["ratio_to_raw"] for r in mine
                                   if r["size"] == top and r["ratio_to_raw"] is not None}
        labels.append(f"{s['group']} @{_size(top)}")
        matrix.append([ratio.get(w, math.nan) for w in workloads])
    ax = axes[0]
    if matrix:
        logs = [[math.log2(v) if v == v and v > 0 else math.nan for v in row] for row in matrix]
        image = ax.imshow(logs, cmap="RdYlGn", vmin=-2, vmax=2, aspect="auto")
        ax.set_xticks(range(len(workloads)), workloads, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                if v == v:
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
        bar = fig.colorbar(image, ax=ax, fraction=0.04)
        bar.set_label("log2(store ops/s / raw ops/s)")
    ax.set_title("ops/s relative to the raw driver (1.00 = same speed)")

    # 2. get and put ops/s of every subject at its group's largest size (log scale).
    ax = axes[1]
    names, gets, puts = [], [], []
    for s in data["subjects"]:
        mine = [r for r in rows if r["group"] == s["group"] and r["subject"] == s["name"]]
        if not mine:
            continue
        top = max(r["size"] for r in mine)
        by = {r["workload"]: r["ops_per_s"] for r in mine if r["size"] == top}
        names.append(f"{s['group']}: {s['name']}")
        gets.append(by.get("get_hit") or 0)
        puts.append(by.get("put") or 0)
    y = range(len(names))
    ax.barh([i - 0.2 for i in y], gets, height=0.4, label="get (hit)")
    ax.barh([i + 0.2 for i in y], puts, height=0.4, label="put")
    ax.set_yticks(list(y), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("operations per second (log)")
    ax.legend(loc="lower right")
    ax.set_title("get and put, largest size")

    # 3. how a get's cost grows with the number of stored objects.
    ax = axes[2]
    for s in stores:
        points = sorted((r["size"], r["us_per_op"]) for r in rows
                        if r["group"] == s["group"] and r["subject"] == s["name"]
                        and r["workload"] == "get_hit" and r["us_per_op"])
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                    label=s["group"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("objects stored")
    ax.set_ylabel("microseconds per get (log)")
    ax.set_title("get cost by store size")
    if stores:
        ax.legend(fontsize=7)
    fig.suptitle(f"datastore benchmark, {data['meta']['date']}"
                 + (" (quick run)" if data["meta"].get("quick") else ""))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
