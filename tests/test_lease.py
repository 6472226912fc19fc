"""The run's lease on its thread: claimed before anything is read, waited for when asked,
released at the end."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import InMemorySaver, InvalidConfigError, ThreadBusyError
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
