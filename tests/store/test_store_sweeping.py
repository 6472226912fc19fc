"""The store in graphs: `get_store()` and `runtime.store` in nodes, and workers sweeping
expired items of their graph's store (no cron job)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, InMemorySaver, StateGraph, Worker, get_store
from hitl_async.runtime import Runtime
from hitl_async.store import BackendStore, InMemoryStore
from hitl_async.store.sweeper import StoreSweeper, sweeper_for

pytestmark = pytest.mark.anyio


class State(TypedDict):
    user: str
    seen: int


def remember(state: State) -> dict[str, Any]:
    store = get_store()
    ns = ("users", state["user"])
    old = store.get(ns, "visits")
    count = (old.value["n"] if old else 0) + 1
    store.put(ns, "visits", {"n": count})
    return {"seen": count}


async def recall(state: State, runtime: Runtime[None]) -> dict[str, Any]:
    item = await runtime.store.aget(("users", state["user"]), "visits")
    return {"seen": item.value["n"] * 10}


def _graph(store: BackendStore) -> Any:
    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_node("recall", recall)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", "recall")
    builder.add_edge("recall", END)
    return builder.compile(checkpointer=InMemorySaver(), store=store)


async def test_nodes_reach_the_store_on_every_driver(store: BackendStore) -> None:
    graph = _graph(store)
    for thread, expected in (("t1", 10), ("t2", 20), ("t3", 30)):
        out = await graph.ainvoke(
            {"user": "ann", "seen": 0}, {"configurable": {"thread_id": thread}}
        )
        assert out["seen"] == expected  # memory across threads
    assert (await store.aget(("users", "ann"), "visits")).value == {"n": 3}  # type: ignore[union-attr]


def test_get_store_outside_a_node_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside a running graph node"):
        get_store()


async def test_worker_sweeps_its_graphs_store() -> None:
    store = InMemoryStore(ttl={"sweep_interval_minutes": 0.001})  # 60 ms
    graph = _graph(store)
    await store.aput(("tmp",), "k", {"v": 1}, ttl=0.002)  # 120 ms
    worker = Worker(graph, poll=0.02)
    assert worker.store_sweeper is not None
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run)
        with anyio.fail_after(10):
            while worker.store_sweeper.swept == 0:
                await anyio.sleep(0.02)
        worker.stop()
    assert await store.asearch(("tmp",), refresh_ttl=False) == []
    assert await store.asweep_ttl() == 0  # the worker already deleted it


async def test_sweeper_hooks() -> None:
    assert sweeper_for(None) is None
    assert sweeper_for(object()) is None
    store = InMemoryStore()
    sweeper = StoreSweeper(store, interval_minutes=0.001)
    await store.aput(("tmp",), "k", {"v": 1}, ttl=0.001)
    assert await sweeper.tick() == 0  # the interval has not passed yet
    await anyio.sleep(0.1)
    assert await sweeper.tick() == 1
    task = await sweeper.start()
    assert sweeper.running and await sweeper.start() is task
    assert await sweeper.stop(timeout=5) and not sweeper.running
    with pytest.raises(ValueError, match="positive number of minutes"):
        StoreSweeper(store, interval_minutes=-1)
