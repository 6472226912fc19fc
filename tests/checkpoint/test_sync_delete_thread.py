"""`checkpointer.delete_thread(thread_id)` from synchronous code deletes the thread, as
LangGraph's sync method does, on `InMemorySaver` and the savers under LangGraph's names (ours is
a coroutine to the engine: called where no event loop runs it works at once instead of
returning a coroutine nobody awaits)."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_service
from typing_extensions import TypedDict

from hitl_async import InMemorySaver
from hitl_async.graph import START, StateGraph


class S(TypedDict):
    x: int


def _graph(saver: Any) -> Any:
    g = StateGraph(S)
    g.add_node("n", lambda s: {"x": s["x"] + 1})
    g.add_edge(START, "n")
    return g.compile(checkpointer=saver)


def _saver(kind: str, tmp_path: Path) -> Any:
    if kind == "memory":
        return InMemorySaver()
    if kind == "sqlite":
        from hitl_async.checkpoint.sqlite import SqliteSaver

        return SqliteSaver(str(tmp_path / "c.db"))
    if kind == "postgres":
        require_service("postgres", POSTGRES_URL)
        from hitl_async.checkpoint.postgres import PostgresSaver

        return PostgresSaver(POSTGRES_URL, schema=f"t_{uuid.uuid4().hex[:12]}")
    require_service("redis", REDIS_URL)
    from hitl_async.checkpoint.redis import RedisSaver

    return RedisSaver(redis_url=REDIS_URL, prefix=f"t{uuid.uuid4().hex[:12]}")


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres", "redis"])
def test_delete_thread_from_sync_code(kind: str, tmp_path: Path) -> None:
    saver = _saver(kind, tmp_path)
    graph = _graph(saver)
    keep, gone = {"configurable": {"thread_id": "keep"}}, {"configurable": {"thread_id": "gone"}}
    graph.invoke({"x": 1}, keep)
    graph.invoke({"x": 1}, gone)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        saver.delete_thread("gone")
    assert graph.get_state(gone).values == {}
    assert graph.get_state(keep).values == {"x": 2}
    if kind in ("postgres", "redis"):
        from hitl_async import _sync

        _sync.run(saver.destroy)


@pytest.mark.anyio
async def test_delete_thread_is_still_awaited_inside_a_loop() -> None:
    saver = InMemorySaver()
    graph = _graph(saver)
    config = {"configurable": {"thread_id": "t"}}
    await graph.ainvoke({"x": 1}, config)
    await saver.delete_thread("t")
    assert (await graph.aget_state(config)).values == {}
