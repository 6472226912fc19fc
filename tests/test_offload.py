"""`ainvoke` of an all-sync graph under asyncio runs on an engine thread (`_offload`): its lone
sync nodes run there without a thread round trip each, yet the caller's loop stays free, runs
overlap, contextvars reach nodes, cancellation stops the run where an inline run would stop,
errors and pauses come back as they are, and anything that may be bound to the caller's loop
(an async node or routing function, a store without `any_loop`) keeps the run in that loop."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest
from apps.services import unavailable
from typing_extensions import TypedDict

from hitl_async import Command, GraphRecursionError, InMemorySaver, interrupt
from hitl_async._offload import THREAD_NAME
from hitl_async.checkpoint.memory import InMemorySaver as MemorySaver
from hitl_async.graph import END, START, StateGraph

pytestmark = pytest.mark.anyio

WAIT = 30.0
"""How long a node waits for its partner before the test fails (a deadlock guard only)."""


class S(TypedDict, total=False):
    n: int
    where: str


def cfg(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def chain(*nodes: Callable[..., Any], saver: Any = None, **compile_kw: Any) -> Any:
    builder = StateGraph(S)
    names = [f"n{i}" for i in range(len(nodes))]
    for name, fn in zip(names, nodes, strict=True):
        builder.add_node(name, fn)
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    saver = saver if saver is not None else InMemorySaver()
    return builder.compile(checkpointer=saver, **compile_kw)


def where(state: S) -> dict[str, Any]:
    return {"n": state.get("n", 0) + 1, "where": threading.current_thread().name}


async def test_an_all_sync_graph_runs_on_an_engine_thread() -> None:
    out = await chain(where, where).ainvoke({"n": 0}, cfg())
    assert out == {"n": 2, "where": THREAD_NAME}


def test_under_trio_the_run_stays_in_trios_loop() -> None:
    out = anyio.run(chain(where, where).ainvoke, {"n": 0}, cfg(), backend="trio")
    assert out["n"] == 2 and out["where"] != THREAD_NAME  # a worker thread per node


async def test_an_async_node_keeps_the_run_in_the_callers_loop() -> None:
    caller = threading.current_thread().name

    async def anode(state: S) -> dict[str, Any]:
        return {"where": threading.current_thread().name}

    assert (await chain(where, anode).ainvoke({"n": 0}, cfg()))["where"] == caller
    builder = StateGraph(S)
    builder.add_node("a", where)
    builder.add_node("b", where)
    builder.add_edge(START, "a")

    async def route(state: S) -> str:  # an async routing function: the caller's loop too
        return "b"

    builder.add_conditional_edges("a", route, ["b"])
    builder.add_edge("b", END)
    out = await builder.compile(checkpointer=InMemorySaver()).ainvoke({"n": 0}, cfg("r"))
    assert out["n"] == 2 and out["where"] != THREAD_NAME


async def test_a_saver_that_is_bound_to_one_loop_keeps_the_run_in_the_callers_loop() -> None:
    class OneLoopSaver(MemorySaver):
        any_loop = False

    out = await chain(where, saver=OneLoopSaver()).ainvoke({"n": 0}, cfg())
    assert out["n"] == 1 and out["where"] != THREAD_NAME


async def test_langchain_callbacks_keep_the_run_in_the_callers_loop() -> None:
    from langchain_core.callbacks import AsyncCallbackHandler

    seen: list[str] = []

    class Handler(AsyncCallbackHandler):
        async def on_chain_start(self, *args: Any, **kwargs: Any) -> None:
            seen.append("start")

    graph = chain(where)
    out = await graph.ainvoke({"n": 0}, {**cfg(), "callbacks": [Handler()]})
    assert out["where"] != THREAD_NAME and seen
    bound = graph.with_config(callbacks=[Handler()])
    assert (await bound.ainvoke({"n": 0}, cfg("bound")))["where"] != THREAD_NAME


async def test_the_callers_loop_stays_free_while_a_node_runs() -> None:
    loop = asyncio.get_running_loop()
    answered = threading.Event()

    def node(state: S) -> dict[str, Any]:
        # Only a free caller's loop can run this coroutine for us.
        future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, "pong"), loop)
        return {"where": future.result(WAIT)}

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not answered.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    out = await chain(node).ainvoke({"n": 0}, cfg())
    answered.set()
    await task
    assert out["where"] == "pong" and ticks > 0


async def test_two_ainvokes_with_blocking_nodes_overlap() -> None:
    both = threading.Barrier(2, timeout=WAIT)

    def node(state: S) -> dict[str, Any]:
        both.wait()  # each run's node waits for the other's: only overlapping runs pass
        return {"n": 1}

    graph = chain(node)
    outs = await asyncio.gather(graph.ainvoke({}, cfg("a")), graph.ainvoke({}, cfg("b")))
    assert [o["n"] for o in outs] == [1, 1]


async def test_contextvars_reach_the_nodes() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("from the caller")

    def node(state: S) -> dict[str, Any]:
        return {"where": var.get()}

    assert (await chain(node).ainvoke({}, cfg()))["where"] == "from the caller"


async def test_cancelling_waits_for_the_node_and_keeps_the_thread_usable() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow(state: S) -> dict[str, Any]:
        started.set()
        release.wait(WAIT)
        finished.append("slow")
        return {"n": 1}

    saver = InMemorySaver()
    graph = chain(where, slow, where, saver=saver)
    task = asyncio.create_task(graph.ainvoke({"n": 0}, cfg()))
    await anyio.to_thread.run_sync(started.wait, WAIT)
    task.cancel()
    for _ in range(3):  # the caller takes its cancellation and hands it to the run's thread
        await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == ["slow"]  # the run ended only after its node did
    state = await graph.aget_state(cfg())
    assert state.values["n"] == 1 and state.next == ("n1",)  # the first step is stored
    out = await graph.ainvoke(None, cfg())  # the lease was released: the thread runs on
    assert out["n"] == 2


async def test_a_cancellation_before_the_run_starts_runs_nothing() -> None:
    graph = chain(where)
    task = asyncio.create_task(graph.ainvoke({"n": 0}, cfg()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await graph.ainvoke({"n": 5}, cfg("other")))["n"] == 6


async def test_errors_and_pauses_come_back_as_they_are() -> None:
    def boom(state: S) -> dict[str, Any]:
        raise KeyError("no such thing")

    with pytest.raises(KeyError, match="no such thing"):
        await chain(boom).ainvoke({}, cfg())

    def ask(state: S) -> dict[str, Any]:
        return {"where": interrupt("approve?")}

    graph = chain(ask)
    paused = await graph.ainvoke({}, cfg("p"))
    assert [i.value for i in paused["__interrupt__"]] == ["approve?"]
    assert (await graph.ainvoke(Command(resume="yes"), cfg("p")))["where"] == "yes"

    builder = StateGraph(S)
    builder.add_node("loop", where)
    builder.add_edge(START, "loop")
    builder.add_edge("loop", "loop")
    with pytest.raises(GraphRecursionError):
        await builder.compile().ainvoke({}, {"recursion_limit": 5})


def test_offloaded_runs_in_a_forked_child() -> None:
    if not hasattr(os, "fork"):
        unavailable("os.fork is not available on this platform")
    graph = chain(where, where)
    assert asyncio.run(graph.ainvoke({"n": 0}, cfg("parent")))["where"] == THREAD_NAME
    pid = os.fork()
    if pid == 0:  # the child: its parent's engine threads did not come along
        code = 1
        try:
            out = asyncio.run(graph.ainvoke({"n": 5}, cfg("child")))
            code = 0 if out == {"n": 7, "where": THREAD_NAME} else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def test_offloaded_runs_with_every_driver(saver: Any) -> None:
    def ask(state: S) -> dict[str, Any]:
        return {"where": interrupt("ok?")}

    graph = chain(where, ask, where, saver=saver)
    paused = await graph.ainvoke({"n": 0}, cfg("d"))
    assert "__interrupt__" in paused
    out = await graph.ainvoke(Command(resume="ok"), cfg("d"))
    assert out == {"n": 2, "where": THREAD_NAME}
    assert [s.values["n"] for s in [await graph.aget_state(cfg("d"))]] == [2]
