"""Workloads as most LangGraph code is written: plain `def` nodes, through the async API
(`ainvoke`, the `-def` workloads) and through the sync API (`invoke`/`stream` called from a plain
thread with no event loop, the `-sync` workloads), on both engines with the same node functions.

For the sync API LangGraph runs with its sync savers (`SqliteSaver`, `PostgresSaver`, plainredis
`RedisSaver`: its async ones refuse `invoke`); hitl-async's savers serve both APIs. Each
repetition runs its sync calls in a new thread, so every run starts from the same state (for
hitl-async: that thread's event loop and the driver's pool in it are made in the warm-up).

chain10 and fanout200 results also have `floor`: the same node functions called directly in a
loop, in the workload's unit, so the table shows what the engine adds above the nodes' own cost
(on a durable driver chain10's floor adds one raw write per step, measured by the suite).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import operator
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from typing_extensions import TypedDict

if TYPE_CHECKING:
    from benchmarks.stores import Store
    from benchmarks.workloads import Engine, Sizes

T = TypeVar("T")


async def in_plain_thread(fn: Callable[[], T]) -> T:
    """Run the sync `fn` in a new plain thread (no event loop in it), as a script would."""
    out: list[T] = []
    errors: list[BaseException] = []

    def main() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    thread = threading.Thread(target=main, name="bench sync caller")
    thread.start()
    await asyncio.to_thread(thread.join)
    if errors:
        raise errors[0]
    return out[0]


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


# -- chain10 with def nodes ----------------------------------------------------------------------


class _Chain(TypedDict):
    x: int


def bump(s: dict[str, Any]) -> dict[str, int]:
    return {"x": s["x"] + 1}


def _def_chain(engine: Engine, nodes: int, saver: Any) -> Any:
    return chain_graph(engine, _Chain, nodes, saver, bump)


def _chain_floor() -> float:
    """µs per step of calling `bump` directly (and folding its update into the state)."""

    def ten() -> None:
        state = {"x": 0}
        for _ in range(10):
            state.update(bump(state))

    return _per_call_us(ten, 2000) / 10


async def chain10_def(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """chain10 with `def` nodes through `ainvoke`."""
    graph = _def_chain(engine, 10, store.saver)
    return await time_chain10(graph, store, sizes, {"floor": _chain_floor()})


async def chain10_sync(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """chain10 with `def` nodes through `invoke`, called from a plain thread."""
    graph = _def_chain(engine, 10, store.saver)

    def body() -> list[float]:
        assert graph.invoke({"x": 0}, run_config("warmup")) == {"x": 10}
        samples = []
        for i in range(sizes.chain_runs):
            t0 = time.perf_counter()
            out = graph.invoke({"x": 0}, run_config(f"chain-{i}"))
            samples.append(time.perf_counter() - t0)
            assert out == {"x": 10}, out
        return samples

    samples = await in_plain_thread(body)

    async def one_more() -> None:
        out = await in_plain_thread(lambda: graph.invoke({"x": 0}, run_config("sized")))
        assert out == {"x": 10}, out

    per_step, _ = await per_step_bytes(store, one_more)
    per_run = median_of(samples)
    return Result(
        per_run / 10 * 1e6,
        "µs/step",
        {"per_run_ms": per_run * 1e3, "bytes/step": per_step, "floor": _chain_floor()},
    )


# -- fanout200 with def nodes --------------------------------------------------------------------


class _Fan(TypedDict):
    items: list[int]
    results: Annotated[list[int], operator.add]


def work(arg: dict[str, int]) -> dict[str, list[int]]:
    return {"results": [arg["item"] * 2]}


def _fan_graph(engine: Engine, saver: Any) -> Any:
    def spread(state: _Fan) -> list[Any]:
        return [engine.Send("work", {"item": i}) for i in state["items"]]

    builder = engine.StateGraph(_Fan)
    builder.add_node("work", work)
    builder.add_conditional_edges(engine.START, spread, ["work"])
    builder.add_edge("work", engine.END)
    return builder.compile(checkpointer=saver)


def _fan_floor(width: int) -> float:
    """ms per run of calling `work` directly for every item."""

    def run() -> None:
        results: list[int] = []
        for i in range(width):
            results += work({"item": i})["results"]

    return _per_call_us(run, 200) / 1e3


def _fan_runs(invoke: Callable[[dict[str, Any], dict[str, Any]], Any], sizes: Sizes) -> list[float]:
    width = sizes.fanout_width
    expected = [2 * i for i in range(width)]
    samples = []
    for i in range(sizes.fanout_runs + 1):  # the first run is a warm-up
        t0 = time.perf_counter()
        out = invoke({"items": list(range(width)), "results": []}, run_config(f"f{i}"))
        if i:
            samples.append(time.perf_counter() - t0)
        assert sorted(out["results"]) == expected, len(out["results"])
    return samples


async def fanout200_def(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """fanout200 with `def` workers through `ainvoke`."""
    graph = _fan_graph(engine, store.saver)
    width = sizes.fanout_width
    expected = [2 * i for i in range(width)]
    samples = []
    for i in range(sizes.fanout_runs + 1):
        t0 = time.perf_counter()
        out = await graph.ainvoke({"items": list(range(width)), "results": []}, run_config(f"f{i}"))
        if i:
            samples.append(time.perf_counter() - t0)
        assert sorted(out["results"]) == expected, len(out["results"])
    median = median_of(samples)
    return Result(
        median * 1e3, "ms/run", {"per_task_us": median / width * 1e6, "floor": _fan_floor(width)}
    )


async def fanout200_sync(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """fanout200 with `def` workers through `invoke`, from a plain thread."""
    graph = _fan_graph(engine, store.saver)
    samples = await in_plain_thread(lambda: _fan_runs(graph.invoke, sizes))
    median = median_of(samples)
    width = sizes.fanout_width
    return Result(
        median * 1e3, "ms/run", {"per_task_us": median / width * 1e6, "floor": _fan_floor(width)}
    )


# -- threads200 with a def node ------------------------------------------------------------------


class _Approval(TypedDict):
    n: int
    decision: str


def _approval(engine: Engine, saver: Any) -> Any:
    def ask(state: _Approval) -> dict[str, Any]:
        answer = engine.interrupt({"n": state["n"]})
        return {"decision": f"{answer}-{state['n']}"}

    builder = engine.StateGraph(_Approval)
    builder.add_node("ask", ask)
    builder.add_edge(engine.START, "ask")
    builder.add_edge("ask", engine.END)
    return builder.compile(checkpointer=saver)


def _check_paused(out: Any, n: int) -> None:
    interrupts = out.get("__interrupt__") if isinstance(out, dict) else None
    assert interrupts and interrupts[0].value == {"n": n}, out


async def threads200_def(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """threads200 with a `def` node: 200 concurrent `ainvoke` starts, then 200 resumes."""
    graph = _approval(engine, store.saver)

    async def start(i: int, prefix: str) -> None:
        _check_paused(await graph.ainvoke({"n": i, "decision": ""}, run_config(f"{prefix}{i}")), i)

    async def resume(i: int, prefix: str) -> None:
        out = await graph.ainvoke(engine.Command(resume="ok"), run_config(f"{prefix}{i}"))
        assert out == {"n": i, "decision": f"ok-{i}"}, out

    async def all_of(fn: Callable[[int, str], Any], count: int, prefix: str) -> float:
        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for i in range(count):
                tg.create_task(fn(i, prefix))
        return time.perf_counter() - t0

    warm = min(20, sizes.threads)
    await all_of(start, warm, "w")
    await all_of(resume, warm, "w")
    n = sizes.threads
    t_start = await all_of(start, n, "t")
    t_resume = await all_of(resume, n, "t")
    return Result(
        2 * n / (t_start + t_resume),
        "runs/s",
        {"start_ms": t_start * 1e3, "resume_ms": t_resume * 1e3},
    )


SYNC_CALLERS = 8
"""Threads a sync app would use to serve threads200 (a thread pool, as a WSGI server has)."""


async def threads200_sync(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """threads200 through `invoke` from a pool of 8 plain threads: 200 starts, then 200 resumes."""
    graph = _approval(engine, store.saver)

    def start(i: int, prefix: str) -> None:
        _check_paused(graph.invoke({"n": i, "decision": ""}, run_config(f"{prefix}{i}")), i)

    def resume(i: int, prefix: str) -> None:
        out = graph.invoke(engine.Command(resume="ok"), run_config(f"{prefix}{i}"))
        assert out == {"n": i, "decision": f"ok-{i}"}, out

    def body() -> tuple[float, float]:
        with concurrent.futures.ThreadPoolExecutor(SYNC_CALLERS) as pool:

            def all_of(fn: Callable[[int, str], None], count: int, prefix: str) -> float:
                t0 = time.perf_counter()
                for f in [pool.submit(fn, i, prefix) for i in range(count)]:
                    f.result()
                return time.perf_counter() - t0

            warm = min(40, sizes.threads)  # every caller thread's loop and pool made first
            all_of(start, warm, "w")
            all_of(resume, warm, "w")
            n = sizes.threads
            return all_of(start, n, "t"), all_of(resume, n, "t")

    t_start, t_resume = await in_plain_thread(body)
    n = sizes.threads
    return Result(
        2 * n / (t_start + t_resume),
        "runs/s",
        {"start_ms": t_start * 1e3, "resume_ms": t_resume * 1e3},
    )


# -- the chapter's Example 1, end to end ---------------------------------------------------------


class _ApprovalState(TypedDict):
    action: str
    amount: float
    decision: str


def _example1(engine: Engine, saver: Any) -> Any:
    """Chapter example 1 as printed: request_approval (interrupt) -> execute, `def` nodes."""

    def request_approval(state: _ApprovalState) -> dict[str, Any]:
        answer = engine.interrupt(
            {
                "question": f"Approve {state['action']} for ${state['amount']:.2f}?",
                "options": ["yes", "no"],
            }
        )
        return {"decision": "approved" if answer == "yes" else "rejected"}

    def execute(state: _ApprovalState) -> dict[str, Any]:
        return {"action": f"{state['decision'].upper()}: {state['action']}"}

    builder = engine.StateGraph(_ApprovalState)
    builder.add_node("request_approval", request_approval)
    builder.add_node("execute", execute)
    builder.add_edge(engine.START, "request_approval")
    builder.add_edge("request_approval", "execute")
    builder.add_edge("execute", engine.END)
    return builder.compile(checkpointer=saver)


def _example1_cycle(engine: Engine, graph: Any, thread: str) -> None:
    """stream the start (pauses), read the interrupt with get_state, stream the resume."""
    cfg = run_config(thread)
    first = list(graph.stream({"action": "transfer", "amount": 500.0}, cfg))
    assert "__interrupt__" in first[-1], first
    snap = graph.get_state(cfg)
    assert snap.interrupts[0].value["options"] == ["yes", "no"], snap
    last = list(graph.stream(engine.Command(resume="yes"), cfg))
    assert last[-1] == {"execute": {"action": "APPROVED: transfer"}}, last


async def example1_sync(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """The chapter's Example 1 through the sync API: start -> pause -> get_state -> resume."""
    graph = _example1(engine, store.saver)

    def body() -> list[float]:
        _example1_cycle(engine, graph, "warmup")
        samples = []
        for i in range(sizes.latency_iters):
            t0 = time.perf_counter()
            _example1_cycle(engine, graph, f"ex1-{i}")
            samples.append(time.perf_counter() - t0)
        return samples

    samples = await in_plain_thread(body)
    return Result(median_of(samples) * 1e3, "ms/cycle", {})


USER_WORKLOADS = {
    "example1-sync": example1_sync,
    "chain10-sync": chain10_sync,
    "chain10-def": chain10_def,
    "threads200-sync": threads200_sync,
    "threads200-def": threads200_def,
    "fanout200-sync": fanout200_sync,
    "fanout200-def": fanout200_def,
}

SYNC_API = {name for name in USER_WORKLOADS if name.endswith("-sync")}
"""Workloads that call the sync API: LangGraph needs its sync savers for them."""

USER_UNITS: dict[str, tuple[str, bool]] = {
    "chain10-def": ("µs/step", True),
    "chain10-sync": ("µs/step", True),
    "threads200-def": ("runs/s", False),
    "threads200-sync": ("runs/s", False),
    "fanout200-def": ("ms/run", True),
    "fanout200-sync": ("ms/run", True),
    "example1-sync": ("ms/cycle", True),
}

# At the end: `benchmarks.workloads` imports this module's tables at its own end (either module
# may be imported first).
from benchmarks.workloads import (  # noqa: E402
    Result,
    chain_graph,
    median_of,
    per_step_bytes,
    run_config,
    time_chain10,
)
