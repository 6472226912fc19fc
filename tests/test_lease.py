"""The run's lease on its thread: claimed before anything is read, waited for when asked,
released at the end."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import InMemorySaver, InvalidConfigError, ThreadBusyError, connect
from hitl_async.graph import START, StateGraph

pytestmark = pytest.mark.anyio


class S(TypedDict, total=False):
    x: int


def gated(gate: anyio.Event, entered: anyio.Event) -> Any:
    async def hold(state: S) -> dict[str, Any]:
        entered.set()
        await gate.wait()
        return {"x": state["x"] + 1}

    b = StateGraph(S)
    b.add_node("hold", hold)
    b.add_edge(START, "hold")
    return b.compile(checkpointer=InMemorySaver())


async def test_waiting_for_a_busy_thread_needs_a_thread_id() -> None:
    graph = gated(anyio.Event(), anyio.Event())
    with pytest.raises(InvalidConfigError, match="thread id"):
        await graph.ainvoke({"x": 1}, {"configurable": {}}, wait=1.0)


async def test_a_waiting_run_starts_once_the_thread_is_free() -> None:
    gate, entered = anyio.Event(), anyio.Event()
    graph = gated(gate, entered)
    cfg = {"configurable": {"thread_id": "busy"}}
    results: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _collect(graph.ainvoke({"x": 1}, cfg), results))
        await entered.wait()
        with pytest.raises(ThreadBusyError):
            await graph.ainvoke({"x": 10}, cfg)

        async def second() -> None:
            await _collect(graph.ainvoke({"x": 10}, cfg, wait=5.0), results)

        tg.start_soon(second)
        await anyio.sleep(0.05)
        gate.set()
    assert results == [{"x": 2}, {"x": 11}]


async def _collect(call: Any, into: list[Any]) -> None:
    into.append(await call)


# -- renewal ---------------------------------------------------------------------------------------

TTL = 0.6


def loop_blocker(seconds: float) -> Any:
    """A graph whose only node blocks its run's event loop for `seconds` (lease_ttl=TTL)."""

    async def block(state: S) -> dict[str, Any]:
        time.sleep(seconds)
        return {"x": state["x"] + 1}

    b = StateGraph(S)
    b.add_node("block", block)
    b.add_edge(START, "block")
    return b


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_lease_is_renewed_while_a_node_blocks_the_loop(saver: Any) -> None:
    """A node holds the run's event loop 2.5 x the lease's ttl; another event loop trying the
    thread meanwhile finds it busy, and the run's writes at the end are accepted."""
    graph = loop_blocker(TTL * 2.5).compile(checkpointer=saver, lease_ttl=TTL)
    cfg = {"configurable": {"thread_id": "blocked"}}
    outcome: list[str] = []

    def contender() -> None:
        time.sleep(TTL * 1.6)
        try:
            anyio.run(graph.ainvoke, {"x": 100}, cfg)
            outcome.append("ran")
        except ThreadBusyError:
            outcome.append("busy")

    thread = threading.Thread(target=contender)
    thread.start()
    try:
        assert await graph.ainvoke({"x": 1}, cfg) == {"x": 2}
    finally:
        await anyio.to_thread.run_sync(thread.join)
    assert outcome == ["busy"]


def _child(db: str, results: Any) -> None:
    """In a forked child: the sync API on the parent's in-memory graph and on SQLite, with a
    node that outlasts the lease's ttl (so only renewal lets the run finish)."""
    try:

        def slow(state: S) -> dict[str, Any]:
            time.sleep(TTL * 2)
            return {"x": state["x"] + 1}

        b = StateGraph(S)
        b.add_node("slow", slow)
        b.add_edge(START, "slow")
        cfg = {"configurable": {"thread_id": "child"}}
        memory = b.compile(checkpointer=InMemorySaver(), lease_ttl=TTL)
        sqlite = b.compile(checkpointer=connect(f"sqlite:///{db}"), lease_ttl=TTL)
        results.put([memory.invoke({"x": 1}, cfg), sqlite.invoke({"x": 10}, cfg)])
    except BaseException as exc:
        results.put(repr(exc))


def test_a_forked_child_gets_its_own_portal_and_keeper(tmp_path: Path) -> None:
    db = str(tmp_path / "fork.db")
    parent = loop_blocker(0.0).compile(checkpointer=InMemorySaver(), lease_ttl=TTL)
    cfg = {"configurable": {"thread_id": "parent"}}
    assert parent.invoke({"x": 1}, cfg) == {"x": 2}  # the portal and the keeper now run
    on_disk = loop_blocker(0.0).compile(checkpointer=connect(f"sqlite:///{db}"), lease_ttl=TTL)
    assert on_disk.invoke({"x": 1}, cfg) == {"x": 2}
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_child, args=(db, results))
    child.start()
    got = results.get(timeout=60)
    child.join(timeout=10)
    assert got == [{"x": 2}, {"x": 11}]
    assert child.exitcode == 0
    # the parent is unaffected
    assert parent.invoke({"x": 5}, {"configurable": {"thread_id": "after"}}) == {"x": 6}
    assert on_disk.invoke({"x": 5}, {"configurable": {"thread_id": "after"}}) == {"x": 6}
