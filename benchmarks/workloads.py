"""Benchmark workloads, written once against the LangGraph-shaped API and run on either engine.

Each workload builds its graph from an `Engine` (the modules of hitl-async or of LangGraph), runs
it, checks the final state (so a fast wrong engine cannot win) and returns its timings.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from typing_extensions import TypedDict


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
    new_saver: Callable[[], Any]


def hitl_engine() -> Engine:
    import hitl_async

    return Engine(
        "hitl-async",
        hitl_async.StateGraph,
        hitl_async.START,
        hitl_async.END,
        hitl_async.Send,
        hitl_async.Command,
        hitl_async.interrupt,
        hitl_async.InMemorySaver,
    )


def langgraph_engine() -> Engine | None:
    """LangGraph with its in-memory saver, if the `bench` extra is installed."""
    try:
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Command, Send, interrupt
    except ImportError:
        return None
    return Engine("langgraph", StateGraph, START, END, Send, Command, interrupt, InMemorySaver)


@dataclass
class Result:
    """Timings of one repetition: `value` is the headline figure in `unit`."""

    value: float
    unit: str
    detail: dict[str, float]


class _Chain(TypedDict):
    x: int


def _cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, "recursion_limit": 100}


async def chain10(engine: Engine, runs: int = 30) -> Result:
    """Per-superstep time of a chain of 10 trivial async nodes (checkpoint after each step)."""

    async def bump(state: _Chain) -> dict[str, int]:
        return {"x": state["x"] + 1}

    builder = engine.StateGraph(_Chain)
    names = [f"n{i}" for i in range(10)]
    for name in names:
        builder.add_node(name, bump)
    builder.add_edge(engine.START, names[0])
    for a, b in zip(names, names[1:], strict=False):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], engine.END)
    graph = builder.compile(checkpointer=engine.new_saver())
    await graph.ainvoke({"x": 0}, _cfg("warmup"))
    samples = []
    for i in range(runs):
        t0 = time.perf_counter()
        out = await graph.ainvoke({"x": 0}, _cfg(f"chain-{i}"))
        samples.append(time.perf_counter() - t0)
        assert out == {"x": 10}, out
    samples.sort()
    per_run = samples[len(samples) // 2]
    return Result(per_run / 10 * 1e6, "µs/step", {"per_run_ms": per_run * 1e3})


class _Approval(TypedDict):
    n: int
    decision: str


async def threads200(engine: Engine, threads: int = 200) -> Result:
    """200 threads started concurrently to an interrupt, then all resumed concurrently."""

    def ask(state: _Approval) -> dict[str, Any]:
        answer = engine.interrupt({"n": state["n"]})
        return {"decision": f"{answer}-{state['n']}"}

    async def ask_async(state: _Approval) -> dict[str, Any]:
        return ask(state)

    builder = engine.StateGraph(_Approval)
    builder.add_node("ask", ask_async)
    builder.add_edge(engine.START, "ask")
    builder.add_edge("ask", engine.END)
    graph = builder.compile(checkpointer=engine.new_saver())

    async def each(fn: Callable[[int], Awaitable[None]]) -> float:
        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(threads):
                tg.start_soon(fn, i)
        return time.perf_counter() - t0

    async def start(i: int) -> None:
        out = await graph.ainvoke({"n": i, "decision": ""}, _cfg(f"t{i}"))
        assert "__interrupt__" in out, out

    async def resume(i: int) -> None:
        out = await graph.ainvoke(engine.Command(resume="ok"), _cfg(f"t{i}"))
        assert out["decision"] == f"ok-{i}", out

    t_start = await each(start)
    t_resume = await each(resume)
    total = t_start + t_resume
    return Result(
        2 * threads / total,
        "runs/s",
        {"start_ms": t_start * 1e3, "resume_ms": t_resume * 1e3},
    )


class _Fan(TypedDict):
    items: list[int]
    results: Annotated[list[int], operator.add]


async def fanout200(engine: Engine, width: int = 200) -> Result:
    """A `Send` fan-out of 200 tasks in one superstep, reduced into a list."""

    def spread(state: _Fan) -> list[Any]:
        return [engine.Send("work", {"item": i}) for i in state["items"]]

    async def work(arg: dict[str, int]) -> dict[str, list[int]]:
        return {"results": [arg["item"] * 2]}

    builder = engine.StateGraph(_Fan)
    builder.add_node("work", work)
    builder.add_conditional_edges(engine.START, spread, ["work"])
    builder.add_edge("work", engine.END)
    graph = builder.compile(checkpointer=engine.new_saver())
    samples = []
    for i in range(5):
        t0 = time.perf_counter()
        out = await graph.ainvoke({"items": list(range(width)), "results": []}, _cfg(f"f{i}"))
        samples.append(time.perf_counter() - t0)
        assert sorted(out["results"]) == [2 * i for i in range(width)], len(out["results"])
    samples.sort()
    median = samples[len(samples) // 2]
    return Result(median * 1e3, "ms/run", {"per_task_us": median / width * 1e6})


WORKLOADS: dict[str, Callable[[Engine], Awaitable[Result]]] = {
    "chain10": chain10,
    "threads200": threads200,
    "fanout200": fanout200,
}

LOWER_IS_BETTER = {"µs/step": True, "runs/s": False, "ms/run": True}
