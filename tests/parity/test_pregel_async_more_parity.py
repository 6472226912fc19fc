"""LangGraph's async pregel tests (`test_pregel_async.py`), restated in our own graphs and run on
every driver: what a cancelled or abandoned async run leaves behind, and what closing an event
stream early does to the node still running."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from typing_extensions import TypedDict

from hitl_async import START, StateGraph

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


class Word(TypedDict):
    word: str


async def test_closing_an_event_stream_early_cancels_the_running_node(saver: Any) -> None:
    """LangGraph's test_cancel_graph_astream_events_v2: leaving `astream_events` (closed with
    `aclose()`) while the next node runs cancels that node before `aclose()` returns; the node
    after it never starts, and the thread keeps the finished step."""
    log: list[str] = []

    async def quick(state: Word) -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return {"word": state["word"] + "+quick"}

    def long_running(name: str) -> Any:
        async def node(state: Word) -> dict[str, Any]:
            log.append(f"{name} started")
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                log.append(f"{name} cancelled")
                raise
            return {"word": name}

        return node

    g = StateGraph(Word)
    g.add_node("quick", quick)
    g.add_node("stuck", long_running("stuck"))
    g.add_node("never", long_running("never"))
    g.add_edge(START, "quick")
    g.add_edge("quick", "stuck")
    g.add_edge("stuck", "never")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    stream = graph.astream_events({"word": "w"}, config, version="v2")
    seen = None
    async for event in stream:
        if event["event"] == "on_chain_stream" and not event["parent_ids"]:
            seen = event["data"]["chunk"]
            await asyncio.sleep(0.2)  # "stuck" starts meanwhile
            break
    await stream.aclose()
    assert seen == {"quick": {"word": "w+quick"}}
    assert log == ["stuck started", "stuck cancelled"]
    state = await graph.aget_state(config)
    assert state.values == {"word": "w+quick"}
    assert state.next == ("stuck",)
