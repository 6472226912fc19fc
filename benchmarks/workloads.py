"""Benchmark workloads, written once against the LangGraph-shaped API and run on either engine.

Each workload builds its graph from an `Engine` (the modules of hitl-async or of LangGraph) and a
`Store` (a fresh checkpoint saver for one driver), runs it, asserts the final states (so a fast
wrong engine cannot win) and returns its headline figure with details. Every node is async and
every call goes through the async API (`ainvoke`, `aget_state`), for both engines.

The queue-drain workload (worker processes, hitl-async only) is in `benchmarks.drain`, and
rss1000 (a fresh interpreter per measurement) in `benchmarks.rss`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import operator
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from typing_extensions import TypedDict

from benchmarks.stores import Store

HITL = "hitl-async"
LANGGRAPH = "langgraph"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Engine:
    """The pieces of one engine's public API a workload needs."""

    name: str
    StateGraph: Any
    START: str
    END: str
    Send: Any
    Command: Any
    interrupt: Callable[[Any], Any]


def hitl_engine() -> Engine:
    """hitl-async's public API."""
    import hitl_async

    return Engine(
        HITL,
        hitl_async.StateGraph,
        hitl_async.START,
        hitl_async.END,
        hitl_async.Send,
        hitl_async.Command,
        hitl_async.interrupt,
    )


def langgraph_engine() -> Engine | None:
    """LangGraph's public API, or None when the `bench` extra is not installed."""
    try:
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Command, Send, interrupt
    except ImportError:
        return None
    return Engine(LANGGRAPH, StateGraph, START, END, Send, Command, interrupt)


@dataclass(frozen=True)
class Sizes:
    """How big each workload is; `quick()` is the smoke-test size."""

    chain_runs: int = 20
    threads: int = 200
    latency_iters: int = 30
    fanout_width: int = 200
    fanout_runs: int = 3
    turns: int = 300
    big_nodes: int = 5
    rss_threads: int = 1000
    floor_writes: int = 200
    drain_requests: int = 2000
    drain_workers: int = 4
    drain_concurrency: int = 4
    store_ops: int = 500
    store_items: int = 1000
    store_searches: int = 200
    store_mix_ops: int = 40

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            chain_runs=5,
            threads=40,
            latency_iters=8,
            fanout_width=40,
            fanout_runs=1,
            turns=50,
            big_nodes=3,
            rss_threads=100,
            floor_writes=30,
            drain_requests=200,
            drain_workers=2,
            store_ops=50,
            store_items=100,
            store_searches=20,
            store_mix_ops=4,
        )


@dataclass
class Result:
    """One repetition: `value` is the headline figure in `unit`; `detail` has the rest."""

    value: float
    unit: str
    detail: dict[str, float] = field(default_factory=dict)


class RunFailed(Exception):
    """A failure already described in one line (e.g. by a measurement subprocess)."""


def describe_error(exc: BaseException, limit: int = 160) -> str:
    """One line for a failure: the first leaf of an exception group, with how many there were."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            leaves.append(e)

    walk(exc)
    first = leaves[0] if leaves else exc
    text = str(first) if isinstance(first, RunFailed) else f"{type(first).__name__}: {first}"
    text = text.strip().rstrip(":")
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if len(leaves) > 1:
        text += f" (x{len(leaves)} tasks)"
    return text


def run_config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, "recursion_limit": 1000}


def median_of(samples: list[float]) -> float:
    return statistics.median(samples)


async def per_step_bytes(store: Store, run: Callable[[], Awaitable[None]]) -> tuple[float, int]:
    """Bytes the store grew by per new checkpoint while `run()` ran, and that checkpoint count."""
    before = await store.footprint()
    await run()
    after = await store.footprint()
    steps = after.checkpoints - before.checkpoints
    assert steps > 0, f"no checkpoint was stored ({before} -> {after})"
    return (after.bytes - before.bytes) / steps, steps


# -- chain10 -------------------------------------------------------------------------------------


class ChainState(TypedDict):
    x: int


async def _abump(s: dict[str, Any]) -> dict[str, int]:
    return {"x": s["x"] + 1}


def chain_graph(
    engine: Engine, state: Any, nodes: int, saver: Any, node: Callable[..., Any] = _abump
) -> Any:
    """A chain of `nodes` copies of `node` (by default an async node adding 1 to `x`)."""
    builder = engine.StateGraph(state)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        builder.add_node(name, node)
    builder.add_edge(engine.START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], engine.END)
    return builder.compile(checkpointer=saver)


async def time_chain10(
    graph: Any, store: Store, sizes: Sizes, notes: dict[str, Any] | None = None
) -> Result:
    """Per-superstep time of `graph`, a 10-node chain adding 1 to `x`, through `ainvoke`."""
    out = await graph.ainvoke({"x": 0}, run_config("warmup"))
    assert out == {"x": 10}, out
    samples = []
    for i in range(sizes.chain_runs):
        t0 = time.perf_counter()
        out = await graph.ainvoke({"x": 0}, run_config(f"chain-{i}"))
        samples.append(time.perf_counter() - t0)
        assert out == {"x": 10}, out

    async def one_more() -> None:
        assert await graph.ainvoke({"x": 0}, run_config("sized")) == {"x": 10}

    per_step, _ = await per_step_bytes(store, one_more)
    per_run = median_of(samples)
    return Result(
        per_run / 10 * 1e6,
        "µs/step",
        {"per_run_ms": per_run * 1e3, "bytes/step": per_step, **(notes or {})},
    )


async def chain10(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """Per-superstep time of a chain of 10 trivial async nodes (a checkpoint after each step)."""
    return await time_chain10(chain_graph(engine, ChainState, 10, store.saver), store, sizes)


# -- threads200 ----------------------------------------------------------------------------------


class _Approval(TypedDict):
    n: int
    decision: str


def approval_graph(engine: Engine, saver: Any) -> Any:
    """START -> ask (pauses on `interrupt({"n": n})`, then records the answer) -> END."""

    async def ask(state: _Approval) -> dict[str, Any]:
        answer = engine.interrupt({"n": state["n"]})
        return {"decision": f"{answer}-{state['n']}"}

    builder = engine.StateGraph(_Approval)
    builder.add_node("ask", ask)
    builder.add_edge(engine.START, "ask")
    builder.add_edge("ask", engine.END)
    return builder.compile(checkpointer=saver)


async def start_thread(graph: Any, thread: str, n: int) -> None:
    """Start `thread` with `n` and assert it paused on the interrupt for `n`."""
    out = await graph.ainvoke({"n": n, "decision": ""}, run_config(thread))
    interrupts = out.get("__interrupt__") if isinstance(out, dict) else None
    assert interrupts and interrupts[0].value == {"n": n}, out


async def resume_thread(graph: Any, engine: Engine, thread: str, n: int) -> None:
    """Resume `thread` with "ok" and assert its final state."""
    out = await graph.ainvoke(engine.Command(resume="ok"), run_config(thread))
    assert out == {"n": n, "decision": f"ok-{n}"}, out


async def concurrently(fn: Callable[[int], Awaitable[None]], count: int) -> float:
    """Run `fn(0..count-1)` as concurrent tasks; seconds until all are done."""
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for i in range(count):
            tg.create_task(fn(i))
    return time.perf_counter() - t0


async def threads200(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """200 threads started concurrently to an interrupt, then all resumed concurrently."""
    graph = approval_graph(engine, store.saver)
    warm = min(20, sizes.threads)  # a concurrent warm-up: pools and prepared statements
    await concurrently(lambda i: start_thread(graph, f"w{i}", i), warm)
    await concurrently(lambda i: resume_thread(graph, engine, f"w{i}", i), warm)
    n = sizes.threads
    t_start = await concurrently(lambda i: start_thread(graph, f"t{i}", i), n)
    t_resume = await concurrently(lambda i: resume_thread(graph, engine, f"t{i}", i), n)
    return Result(
        2 * n / (t_start + t_resume),
        "runs/s",
        {"start_ms": t_start * 1e3, "resume_ms": t_resume * 1e3},
    )


# -- latency -------------------------------------------------------------------------------------


async def latency(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """Sequential start-to-interrupt, get_state and resume on fresh threads: median latencies."""
    graph = approval_graph(engine, store.saver)
    await start_thread(graph, "warmup", -1)
    await resume_thread(graph, engine, "warmup", -1)
    starts, gets, resumes = [], [], []
    for i in range(sizes.latency_iters):
        thread = f"l{i}"
        t0 = time.perf_counter()
        await start_thread(graph, thread, i)
        t1 = time.perf_counter()
        snap = await graph.aget_state(run_config(thread))
        t2 = time.perf_counter()
        assert snap.next == ("ask",) and snap.values == {"n": i, "decision": ""}, snap
        assert snap.tasks[0].interrupts[0].value == {"n": i}, snap.tasks
        await resume_thread(graph, engine, thread, i)
        t3 = time.perf_counter()
        starts.append(t1 - t0)
        gets.append(t2 - t1)
        resumes.append(t3 - t2)
    total = median_of([a + b + c for a, b, c in zip(starts, gets, resumes, strict=True)])
    return Result(
        total * 1e3,
        "ms/cycle",
        {
            "start_ms": median_of(starts) * 1e3,
            "get_state_ms": median_of(gets) * 1e3,
            "resume_ms": median_of(resumes) * 1e3,
        },
    )


# -- fanout200 -----------------------------------------------------------------------------------


class _Fan(TypedDict):
    items: list[int]
    results: Annotated[list[int], operator.add]


async def fanout200(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """A `Send` fan-out of 200 tasks in one superstep, reduced into a list."""

    def spread(state: _Fan) -> list[Any]:
        return [engine.Send("work", {"item": i}) for i in state["items"]]

    async def work(arg: dict[str, int]) -> dict[str, list[int]]:
        return {"results": [arg["item"] * 2]}

    builder = engine.StateGraph(_Fan)
    builder.add_node("work", work)
    builder.add_conditional_edges(engine.START, spread, ["work"])
    builder.add_edge("work", engine.END)
    graph = builder.compile(checkpointer=store.saver)
    width = sizes.fanout_width
    expected = [2 * i for i in range(width)]
    samples = []
    for i in range(sizes.fanout_runs + 1):  # the first run is a warm-up
        t0 = time.perf_counter()
        out = await graph.ainvoke({"items": list(range(width)), "results": []}, run_config(f"f{i}"))
        if i:
            samples.append(time.perf_counter() - t0)
        assert sorted(out["results"]) == expected, len(out["results"])
    median = median_of(samples)
    return Result(median * 1e3, "ms/run", {"per_task_us": median / width * 1e6})


# -- turns300 ------------------------------------------------------------------------------------


class _Turns(TypedDict):
    turn: int
    last: str


async def turns300(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """One thread paused and resumed 300 times: does a turn slow down as history grows?"""
    total = sizes.turns

    async def ask(state: _Turns) -> dict[str, Any]:
        answer = engine.interrupt(state["turn"])
        return {"turn": state["turn"] + 1, "last": answer}

    def again(state: _Turns) -> str:
        return "ask" if state["turn"] < total else engine.END

    builder = engine.StateGraph(_Turns)
    builder.add_node("ask", ask)
    builder.add_edge(engine.START, "ask")
    builder.add_conditional_edges("ask", again, ["ask", engine.END])
    graph = builder.compile(checkpointer=store.saver)
    cfg = run_config("turns")
    out = await graph.ainvoke({"turn": 0, "last": ""}, cfg)
    assert out["__interrupt__"][0].value == 0, out
    samples = []
    for i in range(total):
        t0 = time.perf_counter()
        out = await graph.ainvoke(engine.Command(resume=f"a{i}"), cfg)
        samples.append(time.perf_counter() - t0)
        assert out["turn"] == i + 1 and out["last"] == f"a{i}", out
        if i + 1 < total:
            assert out["__interrupt__"][0].value == i + 1, out
        else:
            assert "__interrupt__" not in out, out
    first, last = median_of(samples[:20]), median_of(samples[-20:])
    return Result(
        median_of(samples) * 1e3,
        "ms/turn",
        {"first20_ms": first * 1e3, "last20_ms": last * 1e3, "drift": last / first},
    )


# -- state1mb ------------------------------------------------------------------------------------


class _Big(TypedDict):
    blob: bytes
    x: int


async def state1mb(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """A 1 MiB channel that never changes while another one does: bytes stored per step.

    The first run writes the 1 MiB value; the second, on the same thread, only bumps `x` through
    a chain of nodes. Its cost is the store's growth (read back from the store itself) divided by
    the number of checkpoints it added.
    """
    payload = os.urandom(MIB)  # incompressible: no store can shrink it away
    digest = hashlib.sha256(payload).digest()
    nodes = sizes.big_nodes
    graph = chain_graph(engine, _Big, nodes, store.saver)
    cfg = run_config("big")
    out = await graph.ainvoke({"blob": payload, "x": 0}, cfg)
    assert out["x"] == nodes and hashlib.sha256(out["blob"]).digest() == digest
    timing: list[float] = []

    async def second() -> None:
        t0 = time.perf_counter()
        again = await graph.ainvoke({"x": 0}, cfg)
        timing.append(time.perf_counter() - t0)
        assert again["x"] == nodes and hashlib.sha256(again["blob"]).digest() == digest

    per_step, steps = await per_step_bytes(store, second)
    return Result(
        per_step,
        "B/step",
        {
            "checkpoints": steps,
            "pct_of_1MiB": per_step / MIB * 100,
            "ms/step": timing[0] / steps * 1e3,
        },
    )


Workload = Callable[[Engine, Store, Sizes], Awaitable[Result]]

WORKLOADS: dict[str, Workload] = {
    "chain10": chain10,
    "threads200": threads200,
    "latency": latency,
    "fanout200": fanout200,
    "turns300": turns300,
    "state1mb": state1mb,
}
"""In-process workloads, on both engines; `rss1000` (a subprocess per run) is in
`benchmarks.rss`, `drain` (worker processes, hitl-async only) in `benchmarks.drain`."""

# The long-term memory store's workloads (issue #18) live in their own module.
from benchmarks.store_workloads import (  # noqa: E402
    LANGGRAPH_NO_STORE,
    STORE_UNITS,
    STORE_WORKLOADS,
)

WORKLOADS.update(STORE_WORKLOADS)

# Plain `def` nodes and the sync API (issue #16), each placed before its async-node workload.
from benchmarks.user_workloads import USER_UNITS, USER_WORKLOADS  # noqa: E402

WORKLOADS = {
    **{k: v for k, v in USER_WORKLOADS.items() if k.startswith("example1")},
    **{
        name: fn
        for base_name, base_fn in WORKLOADS.items()
        for name, fn in [
            *((k, v) for k, v in USER_WORKLOADS.items() if k.split("-")[0] == base_name),
            (base_name, base_fn),
        ]
    },
}

# Token streaming through `stream_mode="messages"` (issue #13), after the store workloads.
from benchmarks.token_workloads import TOKEN_UNITS, TOKEN_WORKLOADS  # noqa: E402

WORKLOADS.update(TOKEN_WORKLOADS)

ALL_WORKLOADS = [*WORKLOADS, "rss1000", "drain"]

HITL_ONLY: dict[str, str] = {"drain": "LangGraph has no run queue"}
"""Workloads LangGraph has no equivalent for (its cell shows "—"), with why."""

SHARED_STORE_ONLY = {"drain"}

LANGGRAPH_MISSING: dict[tuple[str, str], str] = {
    (w, "redis"): LANGGRAPH_NO_STORE for w in STORE_WORKLOADS
}
"""(workload, driver) pairs LangGraph has nothing for (its cell shows "—"), with why."""
"""Workloads whose store must be shared across processes: not applicable to memory."""

UNITS: dict[str, tuple[str, bool]] = {
    "chain10": ("µs/step", True),
    "threads200": ("runs/s", False),
    "latency": ("ms/cycle", True),
    "fanout200": ("ms/run", True),
    "turns300": ("ms/turn", True),
    "state1mb": ("B/step", True),
    "rss1000": ("MB", True),
    "drain": ("resumes/s", False),
    **STORE_UNITS,
    **USER_UNITS,
    **TOKEN_UNITS,
}
"""Headline unit of each workload and whether lower is better."""
