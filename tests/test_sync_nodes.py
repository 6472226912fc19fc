"""Sync (`def`) nodes: the sync API runs a lone sync node in the calling thread (no round trip
to a worker thread), yet no run waits for another's node, an async app's loop is never blocked
by one, the sync tasks of one step still run concurrently, the node sees its contextvars, and
it works with every driver, after `fork` and under trio."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import itertools
import operator
import os
import threading
from collections.abc import Callable
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from apps.services import POSTGRES_URL, require_package, require_service, unavailable
from typing_extensions import TypedDict

from hitl_async import (
    Command,
    InMemorySaver,
    get_config,
    get_stream_writer,
    interrupt,
)
from hitl_async.graph import END, START, StateGraph

WAIT = 30.0
"""How long a node waits for its partner before the test fails (a deadlock guard only)."""


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    n: int


def cfg(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def chain(*nodes: Callable[[S], Any], saver: Any = None) -> Any:
    builder = StateGraph(S)
    names = [f"n{i}" for i in range(len(nodes))]
    for name, fn in zip(names, nodes, strict=True):
        builder.add_node(name, fn)
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder.compile(checkpointer=saver if saver is not None else InMemorySaver())


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a plain new thread (no loop of its own running) and return what it returned."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def main() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    t = threading.Thread(target=main)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


# -- where a lone sync node runs -------------------------------------------------------------------


def test_lone_sync_node_runs_in_the_calling_thread() -> None:
    seen: list[int] = []

    def node(state: S) -> dict[str, Any]:
        seen.append(threading.get_ident())
        return {"n": state.get("n", 0) + 1}

    graph = chain(node, node, node)
    assert graph.invoke({"n": 0}, cfg())["n"] == 3
    assert seen == [threading.get_ident()] * 3
    assert [c["n0"]["n"] for c in graph.stream({"n": 0}, cfg("s")) if "n0" in c] == [1]


def test_two_sync_invokes_from_two_threads_overlap() -> None:
    both_in = threading.Barrier(2, timeout=WAIT)  # breaks unless both nodes run at once

    def node(state: S) -> dict[str, Any]:
        both_in.wait()
        return {"log": ["ran"]}

    graph = chain(node)
    results: list[Any] = []

    def call(thread: str) -> None:
        results.append(graph.invoke({"log": []}, cfg(thread)))

    threads = [threading.Thread(target=call, args=(f"t{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"log": ["ran"]}, {"log": ["ran"]}]


def test_parallel_sync_tasks_of_a_step_still_run_concurrently() -> None:
    both_in = threading.Barrier(2, timeout=WAIT)

    def a(state: S) -> dict[str, Any]:
        both_in.wait()
        return {"log": ["a"]}

    def b(state: S) -> dict[str, Any]:
        both_in.wait()
        return {"log": ["b"]}

    builder = StateGraph(S)
    builder.add_node("a", a)
    builder.add_node("b", b)
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    graph = builder.compile(checkpointer=InMemorySaver())
    assert graph.invoke({"log": []}, cfg())["log"] == ["a", "b"]
    assert anyio.run(graph.ainvoke, {"log": []}, cfg("async"))["log"] == ["a", "b"]


@pytest.mark.anyio
async def test_a_sleeping_sync_node_does_not_stall_the_apps_loop() -> None:
    other_ran = threading.Event()

    def node(state: S) -> dict[str, Any]:
        # Set by a coroutine on the app's loop: only possible if the loop is free meanwhile.
        return {"log": ["saw other" if other_ran.wait(WAIT) else "loop stalled"]}

    async def other() -> None:
        await anyio.sleep(0.01)
        other_ran.set()

    graph = chain(node)
    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        out = await graph.ainvoke({"log": []}, cfg())
    assert out == {"log": ["saw other"]}


# -- what a node sees ------------------------------------------------------------------------------

USER_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("user_var", default="unset")


def test_contextvars_reach_an_inline_node() -> None:
    seen: dict[str, Any] = {}

    def node(state: S, runtime: Any) -> dict[str, Any]:
        seen["thread_id"] = get_config()["configurable"]["thread_id"]
        seen["context"] = runtime.context
        seen["user_var"] = USER_VAR.get()
        get_stream_writer()({"custom": 1})
        return {"n": 1}

    graph = chain(node)
    token = USER_VAR.set("from the caller")
    try:
        chunks = list(graph.stream({"n": 0}, cfg("c"), stream_mode="custom", context={"k": 1}))
        out = graph.invoke({"n": 0}, cfg("i"), context={"k": 2})
    finally:
        USER_VAR.reset(token)
    assert chunks == [{"custom": 1}]
    assert out["n"] == 1
    assert seen == {"thread_id": "i", "context": {"k": 2}, "user_var": "from the caller"}


def test_an_inline_node_can_call_a_subgraph_and_another_graph() -> None:
    def inner(state: S) -> dict[str, Any]:
        return {"log": [f"inner in {threading.get_ident() == caller}"]}

    sub = chain(inner)
    other = chain(inner)

    def outer(state: S, config: dict[str, Any]) -> dict[str, Any]:
        via_sub = sub.invoke({"log": []}, config)["log"]
        via_other = other.invoke({"log": []}, cfg("other"))["log"]
        return {"log": via_sub + via_other}

    caller = threading.get_ident()
    graph = chain(outer)
    assert graph.invoke({"log": []}, cfg())["log"] == ["inner in True", "inner in True"]


@pytest.mark.anyio
async def test_a_sync_node_under_ainvoke_can_reach_the_callers_loop() -> None:
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def inner(state: S) -> dict[str, Any]:
        return {"log": ["inner"]}

    sub = chain(inner)

    async def thread_of_loop() -> int:
        return threading.get_ident()

    def outer(state: S, config: dict[str, Any]) -> dict[str, Any]:
        # The caller's loop is free while the node runs: it can run a coroutine for the node.
        on = asyncio.run_coroutine_threadsafe(thread_of_loop(), loop).result(WAIT) == loop_thread
        return {"log": [*sub.invoke({"log": []}, config)["log"], f"on loop {on}"]}

    assert (await chain(outer).ainvoke({"log": []}, cfg()))["log"] == ["inner", "on loop True"]


@pytest.mark.anyio
async def test_cancelling_ainvoke_waits_for_the_running_sync_node() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def node(state: S) -> dict[str, Any]:
        started.set()
        release.wait(WAIT)
        finished.append("node")
        return {"n": 1}

    graph = chain(node)
    async with anyio.create_task_group() as tg:
        tg.start_soon(graph.ainvoke, {"n": 0}, cfg())
        await anyio.to_thread.run_sync(started.wait, WAIT)
        tg.cancel_scope.cancel()
        release.set()
    assert finished == ["node"]  # the run ended only after its node did


def test_an_inline_node_pauses_resumes_and_fails_as_before() -> None:
    def ask(state: S) -> dict[str, Any]:
        return {"log": [interrupt("name?")]}

    def boom(state: S) -> dict[str, Any]:
        raise ValueError("boom in node")

    graph = chain(ask)
    paused = graph.invoke({"log": []}, cfg())
    assert [i.value for i in paused["__interrupt__"]] == ["name?"]
    assert graph.invoke(Command(resume="Ada"), cfg()) == {"log": ["Ada"]}
    with pytest.raises(ValueError, match="boom in node"):
        chain(boom).invoke({"log": []}, cfg())


def test_an_inline_node_runs_with_no_event_loop_running_in_its_thread() -> None:
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    def node(state: S) -> dict[str, Any]:
        return {"n": asyncio.run(fetch(state["n"]))}  # as sync code calling an async client does

    graph = chain(node)
    assert graph.invoke({"n": 21}, cfg())["n"] == 42
    assert anyio.run(graph.ainvoke, {"n": 5}, cfg("async"))["n"] == 10


def test_a_threads_loop_is_closed_when_the_thread_is_gone() -> None:
    from hitl_async import _sync

    def node(state: S) -> dict[str, Any]:
        return {"n": 1}

    graph = chain(node)

    def use() -> asyncio.AbstractEventLoop:
        assert graph.invoke({"n": 0}, cfg())["n"] == 1
        loop: asyncio.AbstractEventLoop = _sync._local.driver.loop
        assert not loop.is_closed()  # kept between calls
        return loop

    loop = in_thread(use)
    gc.collect()
    assert loop.is_closed()


def test_the_sync_api_from_a_running_loop_still_works() -> None:
    def node(state: S) -> dict[str, Any]:
        return {"n": 1}

    graph = chain(node)

    async def main() -> Any:
        return graph.invoke({"n": 0}, cfg())  # sync code called from async code

    assert asyncio.run(main())["n"] == 1


# -- drivers, fork, trio ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_inline_sync_nodes_with_every_driver(saver: Any) -> None:
    def node(state: S) -> dict[str, Any]:
        return {"n": state.get("n", 0) + 1}

    graph = chain(node, node, node, saver=saver)

    def use() -> list[int]:
        # Two calls from one thread share its loop (and the driver's pool made in it).
        return [graph.invoke({"n": 0}, cfg("a"))["n"], graph.invoke({"n": 10}, cfg("b"))["n"]]

    assert await anyio.to_thread.run_sync(in_thread, use) == [3, 13]
    assert (await graph.aget_state(cfg("b"))).values["n"] == 13


def test_sync_api_in_a_forked_child_after_the_parent_used_it() -> None:
    if not hasattr(os, "fork"):
        unavailable("os.fork is not available on this platform")

    def node(state: S) -> dict[str, Any]:
        return {"n": state.get("n", 0) + 1}

    graph = chain(node, node)
    assert graph.invoke({"n": 0}, cfg("parent"))["n"] == 2
    pid = os.fork()
    if pid == 0:  # the child: a loop of its own, inline nodes again
        code = 1
        try:
            code = 0 if graph.invoke({"n": 5}, cfg("child"))["n"] == 7 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert graph.invoke({"n": 1}, cfg("parent again"))["n"] == 3


def test_sync_nodes_under_trio() -> None:
    main_thread = threading.get_ident()
    seen: list[bool] = []

    def node(state: S) -> dict[str, Any]:
        seen.append(threading.get_ident() == main_thread)
        return {"n": state.get("n", 0) + 1}

    graph = chain(node, node)
    assert anyio.run(graph.ainvoke, {"n": 0}, cfg(), backend="trio")["n"] == 2
    assert seen == [False, False]  # a worker thread: trio's loop is never blocked by a node


def test_sync_api_threads_hold_about_one_postgres_connection_each() -> None:
    """Each thread calling the sync API has a loop and a pool of its own; such a pool opens one
    connection (no warm-up for bursts a one-run loop cannot have), so 8 threads hold ~8, not 8
    warmed-up pools (5 each by default)."""
    require_package("hitl_async_postgres", "drivers/postgres")
    require_service("postgres", POSTGRES_URL)
    import asyncpg

    from hitl_async import connect

    app = f"hitl-sync-{os.getpid()}-{threading.get_ident()}"
    sep = "&" if "?" in POSTGRES_URL else "?"
    saver: Any = connect(f"{POSTGRES_URL}{sep}application_name={app}")
    graph = chain(lambda s: {"log": ["a"]}, lambda s: {"log": ["b"]}, saver=saver)
    threads = 8
    ready = threading.Semaphore(0)
    go = threading.Event()

    def call(i: int) -> None:
        try:
            graph.invoke({"log": []}, cfg(f"conn-{i}"))
        finally:
            ready.release()
            go.wait(WAIT)  # this thread's loop and pool stay alive while connections are counted

    async def count() -> int:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app
                )
            )
        finally:
            await conn.close()

    workers = [threading.Thread(target=call, args=(i,)) for i in range(threads)]
    try:
        for w in workers:
            w.start()
        for _ in workers:
            assert ready.acquire(timeout=WAIT)
        seen = anyio.run(count)
    finally:
        go.set()
        for w in workers:
            w.join(WAIT)
        saver.close() if hasattr(saver, "close") else anyio.run(saver.aclose)
    # one per caller thread, plus the lease keeper's own (warmed-up) pool
    assert threads <= seen <= threads + 6, seen


def test_a_loop_the_driver_cannot_step_itself_runs_as_before() -> None:
    """The sync API steps asyncio's own loop itself (its set-up once per run); a loop in debug
    mode (or another loop class) goes through `run_forever` for each served node, with the
    same results: inline nodes, nested subgraph calls, pauses."""
    from hitl_async import _sync

    def inner(state: S) -> dict[str, Any]:
        return {"log": ["inner"]}

    sub = chain(inner)

    def outer(state: S, config: dict[str, Any]) -> dict[str, Any]:
        return {"log": [*sub.invoke({"log": []}, config)["log"], "outer"]}

    def ask(state: S) -> dict[str, Any]:
        return {"log": [interrupt("ok?")]}

    graph = chain(outer, ask)

    def use() -> list[Any]:
        graph.invoke({"log": []}, cfg("warm"))  # this thread's loop exists from here on
        _sync._local.driver.loop.set_debug(True)
        paused = graph.invoke({"log": []}, cfg("d"))
        done = graph.invoke(Command(resume="yes"), cfg("d"))
        return [paused["log"], done["log"], _sync._local.driver.loop.get_debug()]

    assert in_thread(use) == [["inner", "outer"], ["inner", "outer", "yes"], True]
