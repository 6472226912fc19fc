"""Run the benchmark workloads on hitl-async and, when installed, LangGraph — interleaved in one
run — and print medians and ratios.

    python -m benchmarks.run                # all workloads, 5 repetitions
    python -m benchmarks.run --reps 3 --workloads chain10
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from typing import Any

import anyio

from benchmarks.workloads import (
    LOWER_IS_BETTER,
    WORKLOADS,
    Engine,
    Result,
    hitl_engine,
    langgraph_engine,
)

TARGETS = {
    "chain10": "hitl-async ≤ 1/10 of LangGraph per superstep (≤ 45 µs here)",
}


async def _measure(
    engines: list[Engine], workloads: list[str], reps: int
) -> dict[str, dict[str, list[Result]]]:
    results: dict[str, dict[str, list[Result]]] = {w: {e.name: [] for e in engines} for w in workloads}
    for w in workloads:
        for _ in range(reps):
            for engine in engines:  # interleaved: each repetition runs every engine once
                results[w][engine.name].append(await WORKLOADS[w](engine))
    return results


def _fmt(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per workload and engine")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"comma list of {', '.join(WORKLOADS)}"
    )
    parser.add_argument("--no-langgraph", action="store_true", help="skip LangGraph")
    args = parser.parse_args(argv)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    engines = [hitl_engine()]
    lg = None if args.no_langgraph else langgraph_engine()
    if lg is not None:
        engines.append(lg)
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{__import__('os').cpu_count()} CPUs; {args.reps} repetitions, engines interleaved; "
        f"in-memory savers"
    )
    if lg is None and not args.no_langgraph:
        print("LangGraph not installed (pip install -e '.[bench]'): hitl-async figures only")
    results = anyio.run(_measure, engines, workloads, args.reps)
    header = f"{'workload':<12} {'engine':<11} {'median':>12} {'unit':<8} {'vs LangGraph':>13}"
    print(header)
    print("-" * len(header))
    for w in workloads:
        medians: dict[str, float] = {}
        unit = ""
        for engine in engines:
            rs = results[w][engine.name]
            unit = rs[0].unit
            medians[engine.name] = statistics.median(r.value for r in rs)
        for engine in engines:
            m = medians[engine.name]
            ratio = ""
            if lg is not None and engine.name != lg.name:
                other = medians[lg.name]
                speedup = other / m if LOWER_IS_BETTER[unit] else m / other
                ratio = f"{speedup:.1f}× faster"
            print(f"{w:<12} {engine.name:<11} {_fmt(m):>12} {unit:<8} {ratio:>13}")
        if w in TARGETS:
            print(f"{'':<12} target: {TARGETS[w]}")
    return 0


def _detail(r: Any) -> str:  # pragma: no cover - debugging aid
    return ", ".join(f"{k}={v:.1f}" for k, v in r.detail.items())


if __name__ == "__main__":
    sys.exit(main())
