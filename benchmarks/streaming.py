"""What live streaming costs: per run, and per event a node writes.

    python -m benchmarks.streaming [--reps 7] [--runs 300] [--events 20000]

On the in-memory saver (no I/O, so the engine's share is as large as it gets), interleaved,
medians of CPU time:
- a 10-node chain of async nodes run with `ainvoke` (no stream), `astream` (its updates) and the
  sync `stream()`: µs per run;
- a node writing `--events` custom events through `get_stream_writer()`, a sync node (worker
  thread) and an async node, consumed with `astream` and with the sync `stream()`: µs per event,
  delivered as they are written.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import anyio
from typing_extensions import TypedDict

from hitl_async import InMemorySaver
from hitl_async.config import get_stream_writer
from hitl_async.graph import START, StateGraph


class S(TypedDict, total=False):
    x: int


def chain(n: int = 10) -> Any:
    async def step(state: S) -> dict[str, Any]:
        return {"x": state["x"] + 1}

    b = StateGraph(S)
    for i in range(n):
        b.add_node(f"n{i}", step)
    b.add_edge(START, "n0")
    for i in range(n - 1):
        b.add_edge(f"n{i}", f"n{i + 1}")
    return b.compile(checkpointer=InMemorySaver())


def writer(events: int, kind: str) -> Any:
    def sync_node(state: S) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(events):
            write(i)
        return {"x": 1}

    async def async_node(state: S) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(events):
            write(i)
            if i % 100 == 0:
                await anyio.sleep(0)
        return {"x": 1}

    b = StateGraph(S)
    b.add_node("w", sync_node if kind == "sync" else async_node)
    b.add_edge(START, "w")
    return b.compile(checkpointer=InMemorySaver())


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


_threads = iter(range(10**9))


def per_run(graph: Any, how: str, runs: int) -> float:
    """µs of CPU per run of `graph` driven `how`."""

    async def many() -> None:
        for _ in range(runs):
            thread = cfg(f"r{next(_threads)}")
            if how == "ainvoke":
                await graph.ainvoke({"x": 0}, thread)
            else:
                async for _ in graph.astream({"x": 0}, thread):
                    pass

    start = time.process_time()
    if how == "stream":
        for _ in range(runs):
            for _ in graph.stream({"x": 0}, cfg(f"r{next(_threads)}")):
                pass
    else:
        anyio.run(many)
    return (time.process_time() - start) / runs * 1e6


def per_event(graph: Any, how: str, events: int) -> float:
    """µs of CPU per custom event written by `graph`'s node and consumed `how`."""

    async def consume() -> int:
        return len([e async for e in graph.astream({"x": 0}, thread, stream_mode="custom")])

    thread = cfg(f"e{next(_threads)}")
    start = time.process_time()
    if how == "stream":
        got = len(list(graph.stream({"x": 0}, thread, stream_mode="custom")))
    else:
        got = anyio.run(consume)
    assert got == events, got
    return (time.process_time() - start) / events * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streaming")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args(argv)
    graph = chain()
    sync_writer, async_writer = writer(args.events, "sync"), writer(args.events, "async")
    cases: list[tuple[str, str, Callable[[], float]]] = [
        ("chain10, ainvoke (no stream)", "µs/run", lambda: per_run(graph, "ainvoke", args.runs)),
        ("chain10, astream updates", "µs/run", lambda: per_run(graph, "astream", args.runs)),
        ("chain10, stream() updates", "µs/run", lambda: per_run(graph, "stream", args.runs // 3)),
        (
            "custom, sync node, astream",
            "µs/event",
            lambda: per_event(sync_writer, "a", args.events),
        ),
        (
            "custom, async node, astream",
            "µs/event",
            lambda: per_event(async_writer, "a", args.events),
        ),
        (
            "custom, sync node, stream()",
            "µs/event",
            lambda: per_event(sync_writer, "stream", args.events),
        ),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(args.reps):
        for name, _, measure in cases:
            samples[name].append(measure())
    width = max(len(name) for name in samples)
    print(f"{'case':<{width}}  {'median':>9}  {'min':>9}  unit")
    for name, unit, _ in cases:
        values = samples[name]
        print(f"{name:<{width}}  {statistics.median(values):9.2f}  {min(values):9.2f}  {unit}")


if __name__ == "__main__":
    main()
