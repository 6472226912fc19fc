"""A run that merely ran late keeps its thread, on every driver.

An async node blocks the event loop for 3 s with `lease_ttl=1`: the lease keeper (a thread with
its own event loop) renews it meanwhile, so the run finishes (no `LeaseLostError`) and every step
it committed stays committed. Only a take-over refuses its writes (the keeper could not reach
the store, the lease expired, another run took the thread), and even then the steps committed
before stay.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, LeaseLostError, StateGraph

pytestmark = pytest.mark.anyio


class State(TypedDict):
    steps: list[str]


def _graph(saver: Any, block: float) -> Any:
    async def first(state: State) -> dict[str, list[str]]:
        return {"steps": [*state["steps"], "first"]}

    async def slow(state: State) -> dict[str, list[str]]:
        time.sleep(block)  # blocks the event loop; the keeper thread renews meanwhile
        return {"steps": [*state["steps"], "slow"]}

    builder = StateGraph(State)
    builder.add_node("first", first)
    builder.add_node("slow", slow)
    builder.add_edge(START, "first")
    builder.add_edge("first", "slow")
    builder.add_edge("slow", END)
    return builder.compile(checkpointer=saver, lease_ttl=1.0)


@pytest.mark.parametrize("durability", ["async", "sync"])
async def test_a_run_that_blocked_past_its_lease_finishes(saver: Any, durability: str) -> None:
    graph = _graph(saver, 3.0)
    cfg = {"configurable": {"thread_id": "late"}}
    out = await graph.ainvoke({"steps": []}, cfg, durability=durability)
    assert out == {"steps": ["first", "slow"]}
    state = await graph.aget_state(cfg)
    assert state.values == {"steps": ["first", "slow"]} and state.next == ()


async def test_a_late_run_taken_over_keeps_what_it_committed(
    saver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keeper cannot reach the store, the lease expires while the run is late, and someone
    takes the thread over: the run's next write is refused (LeaseLostError), but the steps it
    committed before are still there."""
    taken: list[Any] = []

    async def unreachable(lease: Any, ttl: float) -> Any:
        raise ConnectionError("the store cannot be reached from the lease keeper")

    monkeypatch.setattr(saver, "renew_lease", unreachable)

    async def first(state: State) -> dict[str, list[str]]:
        return {"steps": [*state["steps"], "first"]}

    async def slow(state: State) -> dict[str, list[str]]:
        time.sleep(1.5)
        taken.append(await saver.acquire_lease("taken", "someone-else", 30))
        return {"steps": [*state["steps"], "slow"]}

    builder = StateGraph(State)
    builder.add_node("first", first)
    builder.add_node("slow", slow)
    builder.add_edge(START, "first")
    builder.add_edge("first", "slow")
    builder.add_edge("slow", END)
    graph = builder.compile(checkpointer=saver, lease_ttl=1.0)
    cfg = {"configurable": {"thread_id": "taken"}}
    with pytest.raises(LeaseLostError):
        await graph.ainvoke({"steps": []}, cfg, durability="sync")
    state = await graph.aget_state(cfg)
    assert state.values == {"steps": ["first"]} and state.next == ("slow",)
    await saver.release_lease(taken[0])
