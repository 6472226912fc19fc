"""The metrics: runs, steps, nodes, the human's wait, the queue, leases, store calls."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from apps.stores import SharedStore
from conftest import Otel
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    Command,
    InMemorySaver,
    LeaseLostError,
    StateGraph,
    Worker,
    interrupt,
)
from hitl_async.telemetry import instrument_store

pytestmark = pytest.mark.anyio


class State(TypedDict, total=False):
    item: str
    answer: str


async def review(state: State) -> dict[str, Any]:
    return {"answer": interrupt({"approve": state["item"]})}


async def act(state: State) -> dict[str, Any]:
    return {}


def approval(saver: Any, name: str) -> Any:
    b = StateGraph(State)
    b.add_node("review", review)
    b.add_node("act", act)
    b.add_edge(START, "review")
    b.add_edge("review", "act")
    b.add_edge("act", END)
    return b.compile(checkpointer=saver, name=name)


async def test_runs_steps_nodes_and_the_humans_wait(otel: Otel) -> None:
    graph = approval(InMemorySaver(), "m-runs")
    cfg = {"configurable": {"thread_id": "m"}}
    await graph.ainvoke({"item": "x"}, cfg)
    await anyio.sleep(0.05)
    await graph.ainvoke(Command(resume="yes"), cfg)
    g = {"hitl.graph": "m-runs"}
    assert otel.total("hitl.run.started", **g) == 2
    assert otel.total("hitl.run.finished", **g, **{"hitl.run.outcome": "paused"}) == 1
    assert otel.total("hitl.run.finished", **g, **{"hitl.run.outcome": "completed"}) == 1
    assert otel.total("hitl.run.failed", **g) == 0
    assert otel.total("hitl.steps", **g) == 4  # input, review (paused); review, act
    review_points = otel.points("hitl.node.duration")
    outcomes = sorted(
        a["hitl.node.outcome"] for a, _ in review_points if a["hitl.node"] == "review"
    )
    assert outcomes == ["done", "interrupted"]
    ((attrs, wait),) = otel.points("hitl.interrupt.wait")
    assert attrs == {"hitl.graph": "m-runs", "hitl.node": "review"}
    assert wait.count == 1 and 0.04 <= wait.sum < 60


async def test_queue_depth_claim_latency_and_store_calls_by_driver(
    shared_store: SharedStore, otel: Otel
) -> None:
    saver = shared_store.connect()
    graph = approval(saver, "m-queue")
    handles = [
        await graph.asubmit({"item": f"i{n}"}, {"configurable": {"thread_id": f"q{n}"}})
        for n in range(3)
    ]
    queue = {"hitl.queue": "m-queue"}
    assert otel.total("hitl.queue.depth", **queue) == 3
    await anyio.sleep(0.05)
    await Worker(graph, concurrency=2, poll=0.05).run(max_requests=3)
    for handle in handles:
        assert (await handle.result(timeout=10))["__interrupt__"]
    assert otel.total("hitl.queue.depth", **queue) == 0
    ((_, latency),) = otel.points("hitl.queue.claim.latency")
    assert latency.count == 3 and latency.min >= 0.04
    system = {"sqlite": "sqlite", "postgres": "postgresql"}.get(shared_store.kind, "redis")
    calls = {
        a["db.operation.name"]: p.count
        for a, p in otel.points("db.client.operation.duration")
        if a["db.system"] == system and "error.type" not in a
    }
    assert calls["enqueue"] == 3 and calls["claim_request"] >= 3
    assert calls["acquire_and_load"] == 3 and calls["finish_request"] == 3
    await saver.aclose()


async def test_a_lease_taken_over_is_a_fencing_refusal(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = {"first": True}

    async def work(state: State) -> dict[str, Any]:
        if slow.pop("first", False):
            await anyio.sleep(0.6)  # the lease (0.2 s) expires meanwhile
        return {"answer": "done"}

    async def unreachable(lease: Any, ttl: float) -> Any:
        raise ConnectionError("the lease keeper cannot reach the store")

    store = InMemorySaver()
    monkeypatch.setattr(store, "renew_lease", unreachable)  # so the lease can expire
    b = StateGraph(State)
    b.add_node("work", work)
    b.add_edge(START, "work")
    graph = b.compile(checkpointer=store, name="m-fence", lease_ttl=0.2)
    cfg = {"configurable": {"thread_id": "fenced"}}

    async def take_over() -> None:
        await anyio.sleep(0.35)
        await graph.aupdate_state(cfg, {"item": "taken over"})

    async with anyio.create_task_group() as tg:
        tg.start_soon(take_over)
        with pytest.raises(LeaseLostError):
            await graph.ainvoke({"item": "x"}, cfg, durability="sync")
    assert otel.total("hitl.lease.lost", **{"hitl.lease.loss": "fencing"}) >= 1
    runs = [s for s in otel.named("hitl.run") if (s.attributes or {})["hitl.graph"] == "m-fence"]
    (refused,) = [s for s in runs if any(e.name == "hitl.fencing.refused" for e in s.events)]
    assert (refused.attributes or {})["hitl.run.outcome"] == "failed"
    assert otel.total("hitl.run.failed", **{"error.type": "hitl_async.errors.LeaseLostError"}) == 1

    # A renewal that finds the lease taken is a loss too.
    saver = instrument_store(InMemorySaver())
    old = await saver.acquire_lease("r", "a", 0.05)
    time.sleep(0.1)
    await saver.acquire_lease("r", "b", 30)
    with pytest.raises(LeaseLostError):
        await saver.renew_lease(old, 30)
    assert otel.total("hitl.lease.lost", **{"hitl.lease.loss": "renew"}) == 1
