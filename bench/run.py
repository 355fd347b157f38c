"""``python -m bench`` (or ``python bench/run.py``): measure every available store and its raw driver.

Writes ``bench/results/latest.md``, ``bench/results/latest.json`` and the
chart ``docs/_static/bench.png``, and prints the Markdown report with PASS or
MISS for each target of issue 6. ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import pinning, registry, report, targets
from bench.harness import Results, run_group
from bench.subject import ROOT, Context

DEFAULT_SIZES = (1000, 10000, 100000)
QUICK_SIZES = (100, 300)


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes integers like 1000,10000: {text!r}") from None
    if not sizes or sizes[0] < 10:
        raise argparse.ArgumentTypeError("every size must be at least 10")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark every available datastore against its raw driver and peers.",
    )
    parser.add_argument("--stores", default="",
                        help="comma-separated groups to run (default: all), e.g. sqlite,dict; "
                             "--list shows them")
    parser.add_argument("--sizes", type=_sizes, default=None,
                        help="numbers of stored objects, e.g. 1000,10000,100000 (the default)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per workload; the median is reported (default 5)")
    parser.add_argument("--ops", type=int, default=None,
                        help="cap on single operations per repeat (default: per store)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run to check the machinery (sizes 100,300, 2 repeats)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results",
                        help="where latest.md and latest.json go (default bench/results)")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "_static" / "bench.png",
                        help="where the PNG chart goes (default docs/_static/bench.png)")
    parser.add_argument("--no-chart", action="store_true", help="skip the chart")
    parser.add_argument("--profile", action="store_true",
                        help="profile each store workload with cProfile into OUT/profiles/ "
                             "instead of writing a report (timings are distorted)")
    parser.add_argument("--pin", action="store_true",
                        help="run on one core with the local servers on another, so that "
                             "loopback round trips have one speed (Linux; see bench/pinning.py)")
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = args.sizes or list(QUICK_SIZES)
        args.repeats = args.repeats or 2
        args.ops = args.ops or 100
    args.sizes = args.sizes or list(DEFAULT_SIZES)
    args.repeats = args.repeats or 5
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for group in registry.GROUPS:
            names = ", ".join(f"{e.name} ({e.role})" for e in group.entries)
            print(f"{group.name:12} {names}")
        return 0
    try:
        groups = registry.find(args.stores.split(",")) if args.stores else registry.GROUPS
    except ValueError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    results = Results()
    started = time.perf_counter()
    profile_dir = args.out / "profiles" if args.profile else None
    placement = "not pinned"
    with contextlib.ExitStack() as stack:
        if args.pin:
            try:
                placement = stack.enter_context(pinning.pinned(os.environ))
            except pinning.PinningError as exc:
                print(f"python -m bench: {exc}", file=sys.stderr)
                return 2
            print(f"[bench] {placement}", file=sys.stderr)
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="datastore-bench-"))
        ctx = Context(tmp=Path(tmp), quick=args.quick)
        for group in groups:
            t0 = time.perf_counter()
            run_group(group, args.sizes, repeats=args.repeats, ops=args.ops,
                      bulk=100 if args.quick else 1000, ctx=ctx, results=results,
                      query_min_time=0.01 if args.quick else 0.2, profile_dir=profile_dir)
            print(f"[{group.name}] done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    if args.profile:
        print(f"profiles written to {profile_dir}", file=sys.stderr)
        return 0
    import datastore

    meta = {
        "datastore": str(Path(datastore.__file__).resolve().parent),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.system()} {os.cpu_count()} CPUs",
        "sizes": args.sizes,
        "repeats": args.repeats,
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "pinning": placement,
        "command": "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
    }
    data = report.as_data(results, meta)
    data["targets"] = targets.evaluate(data)
    text = report.markdown(data)
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(data, args.out / "latest.json")
    (args.out / "latest.md").write_text(text + "\n")
    if not args.no_chart:
        report.chart(data, args.chart)
    print(text)
    print(f"\nwrote {args.out / 'latest.md'}, {args.out / 'latest.json'}"
          + ("" if args.no_chart else f", {args.chart}") + f" in {meta['seconds']}s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
