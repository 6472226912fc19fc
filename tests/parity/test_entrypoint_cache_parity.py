"""Parity with LangGraph: `@entrypoint(cache_policy=CachePolicy(...), cache=...)` caches the
workflow's result keyed on its input alone (not `previous`), shared by every thread, re-emitted
in `updates` marked cached; without a cache the policy changes nothing. A cached node or
workflow that paused on `interrupt()` caches the result it reaches once answered. On every
driver, with the in-memory cache and with the driver's own cache."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from typing_extensions import TypedDict

from hitl_async import START, CachePolicy, Command, StateGraph, interrupt
from hitl_async.cache.memory import InMemoryCache
from hitl_async.checkpoint.capabilities import Capability
from hitl_async.func import entrypoint

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def caches(saver: Any) -> list[Any]:
    return [InMemoryCache(), *([saver] if saver.supports(Capability.CACHE) else [])]


# LangGraph behaviour: entrypoint(cache_policy=...) is the workflow node's policy, keyed by
# `key_func(input)`; a hit skips the body, shows `{"wf": result, "__metadata__": {"cached":
# True}}` in `updates`, and becomes the thread's value, whatever the thread's `previous` was.
async def test_entrypoint_result_is_cached_by_input_across_threads(saver: Any) -> None:
    for cache in caches(saver):
        calls: list[Any] = []
        await check_cached_workflow(saver, cache, calls)


async def check_cached_workflow(saver: Any, cache: Any, calls: list[Any]) -> None:
    """One cache of the case: a fresh workflow over `cache`."""

    @entrypoint(
        checkpointer=saver,
        cache=cache,
        cache_policy=CachePolicy(key_func=lambda x: str(x["k"])),
    )
    async def wf(x: dict[str, int], previous: Any = None) -> dict[str, Any]:
        calls.append((x, previous))
        return {"k": x["k"], "n": x["n"]}

    one, other = cfg(), cfg()
    assert [c async for c in wf.astream({"k": 1, "n": 1}, one, stream_mode="updates")] == [
        {"wf": {"k": 1, "n": 1}}
    ]
    assert [c async for c in wf.astream({"k": 1, "n": 2}, one, stream_mode="updates")] == [
        {"wf": {"k": 1, "n": 1}, "__metadata__": {"cached": True}}
    ]
    assert await wf.ainvoke({"k": 1, "n": 3}, other) == {"k": 1, "n": 1}
    assert (await wf.aget_state(other)).values == {"k": 1, "n": 1}
    assert await wf.ainvoke({"k": 2, "n": 4}, other) == {"k": 2, "n": 4}  # another key
    assert calls == [({"k": 1, "n": 1}, None), ({"k": 2, "n": 4}, {"k": 1, "n": 1})]


# LangGraph behaviour: a cache policy with no cache given runs the workflow every time.
async def test_entrypoint_cache_policy_without_a_cache_runs_every_time(saver: Any) -> None:
    calls: list[int] = []

    @entrypoint(checkpointer=saver, cache_policy=CachePolicy())
    async def wf(x: int) -> int:
        calls.append(x)
        return x * 2

    config = cfg()
    assert [await wf.ainvoke(3, config) for _ in range(2)] == [6, 6]
    assert calls == [3, 3]


# LangGraph behaviour: a cached workflow that paused runs again to take its answer, and the
# result it then returns is cached for the same input on another thread.
async def test_entrypoint_paused_then_answered_caches_its_result(saver: Any) -> None:
    calls: list[int] = []

    @entrypoint(checkpointer=saver, cache=InMemoryCache(), cache_policy=CachePolicy())
    async def asker(x: int) -> int:
        calls.append(x)
        answer: int = interrupt("how much?")
        return answer + x

    config = cfg()
    assert "__interrupt__" in await asker.ainvoke(1, config)
    assert await asker.ainvoke(Command(resume=10), config) == 11
    assert await asker.ainvoke(1, cfg()) == 11
    assert calls == [1, 1]


class X(TypedDict):
    x: int


# LangGraph behaviour: the same for a graph node with a CachePolicy (test_pregel's node caching
# restated with an interrupt): the answered run's writes are cached, a new thread reuses them.
async def test_cached_node_paused_then_answered_caches_its_writes(saver: Any) -> None:
    calls: list[int] = []

    def ask(s: X) -> X:
        calls.append(s["x"])
        return {"x": interrupt("how much?") + s["x"]}

    g = StateGraph(X)
    g.add_node("ask", ask, cache_policy=CachePolicy())
    g.add_edge(START, "ask")
    app = g.compile(checkpointer=saver, cache=InMemoryCache())
    config = cfg()
    await app.ainvoke({"x": 1}, config)
    assert [c async for c in app.astream(Command(resume=10), config)] == [{"ask": {"x": 11}}]
    assert [c async for c in app.astream({"x": 1}, cfg())] == [
        {"ask": {"x": 11}, "__metadata__": {"cached": True}}
    ]
    assert calls == [1, 1]
