"""Parity with LangGraph: a consumer of the sync `graph.stream()` that stops early — closes the
iterator, drops it (collected by the GC), or leaves it to be collected at interpreter exit — ends
the run quietly, as LangGraph's plain generator does: nothing is printed on stderr, what
finished is stored, the thread's lease is released, and `stream(None, cfg)` continues the
thread (README, "Streaming"). Each case runs in a fresh interpreter, on every driver."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from typing import Any

import pytest
from typing_extensions import TypedDict

from hitl_async import START, StateGraph

pytestmark = pytest.mark.anyio

CHILD = textwrap.dedent(
    """
    import gc, json, sys
    from typing_extensions import TypedDict
    from hitl_async import START, StateGraph, InMemorySaver, connect

    class S(TypedDict):
        x: int

    def step(s: S) -> S:
        return {"x": s["x"] + 1}

    url, options, thread, how = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    g = StateGraph(S)
    g.add_node("a", step)
    g.add_node("b", step)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    saver = InMemorySaver() if url == "memory" else connect(url, **options)
    app = g.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": thread}}
    if how == "exit-in-loop":  # sync code called from a coroutine: the shared portal's loop
        import asyncio

        async def main():
            global keep
            keep = app.stream({"x": 0}, config)
            print(json.dumps([next(keep)]))

        asyncio.run(main())
        sys.exit(0)
    it = app.stream({"x": 0}, config)
    first = next(it)
    if how == "close":
        it.close()
    elif how == "drop":
        del it
        gc.collect()
    else:  # "exit": the iterator is still referenced when the interpreter exits
        keep = it
    if how != "exit":
        state = app.get_state(config)
        rest = list(app.stream(None, config))
        print(json.dumps([first, state.values, list(state.next), rest]))
    else:
        print(json.dumps([first]))
    """
)


def child(url: str, options: dict[str, Any], thread: str, how: str) -> list[Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, url, json.dumps(options), thread, how],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no "Exception ignored ... loop is closed / portal is not running"
    result: list[Any] = json.loads(proc.stdout)
    return result


# LangGraph behaviour: closing or dropping a sync stream generator ends the run at once (its
# loop's context exits); the step that finished is kept, and the thread goes on from there.
@pytest.mark.parametrize("how", ["close", "drop"])
async def test_a_sync_stream_stopped_early_is_cancelled_quietly(
    how: str, shared_store: Any
) -> None:
    for url, options in [("memory", {}), (shared_store.url, shared_store.options)]:
        first, values, next_nodes, rest = child(url, options, uuid.uuid4().hex, how)
        assert first == {"a": {"x": 1}}
        assert values == {"x": 1} and next_nodes == ["b"]
        assert rest == [{"b": {"x": 2}}]


# LangGraph behaviour: a generator still referenced at interpreter exit is closed without noise
# (from a plain script, and from sync code called inside `asyncio.run`).
async def test_a_sync_stream_left_open_at_exit_is_closed_quietly(shared_store: Any) -> None:
    for how in ["exit", "exit-in-loop"]:
        assert child("memory", {}, "t", how) == [{"a": {"x": 1}}]
        await check_continues(shared_store, how)


async def check_continues(shared_store: Any, how: str) -> None:
    thread = uuid.uuid4().hex
    assert child(shared_store.url, shared_store.options, thread, how) == [{"a": {"x": 1}}]
    saver = shared_store.connect()
    try:
        config = {"configurable": {"thread_id": thread}}
        graph = two_steps().compile(checkpointer=saver)
        state = await graph.aget_state(config)
        assert state.values == {"x": 1} and state.next == ("b",)
        # The lease was released at exit: the thread continues at once, from step b.
        assert [c async for c in graph.astream(None, config)] == [{"b": {"x": 2}}]
    finally:
        await saver.aclose()


class S(TypedDict):
    x: int


def step(s: S) -> S:
    return {"x": s["x"] + 1}


def two_steps() -> StateGraph:
    """The child's graph, for reading and continuing its thread here."""
    g = StateGraph(S)
    g.add_node("a", step)
    g.add_node("b", step)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    return g
