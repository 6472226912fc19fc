"""Parity with LangGraph: node and task caching — `CachePolicy(key_func=, ttl=)` on
`add_node`/`@task`, `compile(cache=InMemoryCache())`: a cached node is not run again for the
same input within its ttl, and its writes are re-emitted marked cached — restated from
LangGraph's tests, on every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import START, CachePolicy, Command, Send, StateGraph, interrupt
from hitl_async.cache.memory import InMemoryCache
from hitl_async.checkpoint.capabilities import Capability
from hitl_async.func import entrypoint, task

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def sorted_add(x: list[str], y: list[str]) -> list[str]:
    return sorted(operator.add(x, y))


class Docs(TypedDict, total=False):
    query: str
    answer: str
    docs: Annotated[list[str], sorted_add]


class Log(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


def fan_out(with_cache: bool, counts: dict[str, int]) -> StateGraph:
    """rewrite_query -> (analyzer_one -> retriever_one, retriever_two) -> decider, twice."""

    async def rewrite_query(data: Docs) -> Docs:
        counts["rewrite_query"] += 1
        return {"query": f"query: {data['query']}"}

    async def analyzer_one(data: Docs) -> Docs:
        return {"query": f"analyzed: {data['query']}"}

    async def retriever_one(data: Docs) -> Docs:
        return {"docs": ["doc1", "doc2"]}

    async def retriever_two(data: Docs) -> Docs:
        await anyio.sleep(0.05)
        return {"docs": ["doc3", "doc4"]}

    async def qa(data: Docs) -> Docs:
        return {"answer": ",".join(data["docs"])}

    async def decider(data: Docs) -> None:
        return None

    def decider_cond(data: Docs) -> str:
        return "qa" if data["query"].count("analyzed") > 1 else "rewrite_query"

    g = StateGraph(Docs)
    g.add_node("rewrite_query", rewrite_query, cache_policy=CachePolicy() if with_cache else None)
    g.add_node("analyzer_one", analyzer_one)
    g.add_node("retriever_one", retriever_one)
    g.add_node("retriever_two", retriever_two)
    g.add_node("decider", decider)
    g.add_node("qa", qa)
    g.set_entry_point("rewrite_query")
    g.add_edge("rewrite_query", "analyzer_one")
    g.add_edge("analyzer_one", "retriever_one")
    g.add_edge("rewrite_query", "retriever_two")
    g.add_edge(["retriever_one", "retriever_two"], "decider")
    g.add_conditional_edges("decider", decider_cond)
    g.set_finish_point("qa")
    return g


FAN_FINAL = {
    "query": "analyzed: query: analyzed: query: what is weather in sf",
    "answer": "doc1,doc1,doc2,doc2,doc3,doc3,doc4,doc4",
    "docs": ["doc1", "doc1", "doc2", "doc2", "doc3", "doc3", "doc4", "doc4"],
}


def mark(chunk: dict[str, Any], cached: bool) -> dict[str, Any]:
    return {**chunk, "__metadata__": {"cached": True}} if cached else chunk


# test_pregel_async.py::test_in_one_fan_out_state_graph_waiting_edge_multiple
@pytest.mark.parametrize("with_cache", [True, False])
async def test_cached_node_runs_once_per_input(saver: Any, with_cache: bool) -> None:
    counts = {"rewrite_query": 0}
    app = fan_out(with_cache, counts).compile(checkpointer=saver, cache=InMemoryCache())
    assert await app.ainvoke({"query": "what is weather in sf"}, cfg()) == FAN_FINAL
    assert counts["rewrite_query"] == 2
    chunks = [c async for c in app.astream({"query": "what is weather in sf"}, cfg())]
    assert chunks[0] == mark(
        {"rewrite_query": {"query": "query: what is weather in sf"}}, with_cache
    )
    assert chunks[5] == mark(
        {"rewrite_query": {"query": "query: analyzed: query: what is weather in sf"}}, with_cache
    )
    assert chunks[-1] == {"qa": {"answer": "doc1,doc1,doc2,doc2,doc3,doc3,doc4,doc4"}}
    assert counts["rewrite_query"] == (2 if with_cache else 4)
    if with_cache:
        await app.aclear_cache()
        assert await app.ainvoke({"query": "what is weather in sf"}, cfg()) == FAN_FINAL
        assert counts["rewrite_query"] == 4


# test_pregel.py::test_in_one_fan_out_state_graph_waiting_edge_multiple (sync clear_cache)
async def test_clear_cache_of_named_nodes_only(saver: Any) -> None:
    calls: list[str] = []

    def node(name: str) -> Any:
        def run(state: Log) -> Log:
            calls.append(name)
            return {"log": [name]}

        return run

    g = StateGraph(Log)
    g.add_node("a", node("a"), cache_policy=CachePolicy())
    g.add_node("b", node("b"), cache_policy=CachePolicy())
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    app = g.compile(checkpointer=saver, cache=InMemoryCache())
    await app.ainvoke({"x": 1}, cfg())
    await anyio.to_thread.run_sync(lambda: app.clear_cache(["a"]))
    await app.ainvoke({"x": 1}, cfg())
    assert calls == ["a", "b", "a"]


# test_pregel.py::test_cache_policy_ttl (a cached result expires after its ttl)
async def test_cached_result_expires_after_ttl(saver: Any) -> None:
    calls: list[int] = []

    def a(state: Log) -> Log:
        calls.append(state["x"])
        return {"log": [f"a{state['x']}"]}

    g = StateGraph(Log)
    g.add_node("a", a, cache_policy=CachePolicy(ttl=0.3))
    g.add_edge(START, "a")
    app = g.compile(checkpointer=saver, cache=InMemoryCache())
    first = [c async for c in app.astream({"x": 1}, cfg())]
    second = [c async for c in app.astream({"x": 1}, cfg())]
    assert first == [{"a": {"log": ["a1"]}}]
    assert second == [{"a": {"log": ["a1"]}, "__metadata__": {"cached": True}}]
    await anyio.sleep(0.4)  # the ttl passes
    assert [c async for c in app.astream({"x": 1}, cfg())] == [{"a": {"log": ["a1"]}}]
    assert calls == [1, 1]


# test_pregel.py::test_cache_policy_key_func (the key decides what counts as the same input)
async def test_key_func_decides_what_is_the_same_input(saver: Any) -> None:
    calls: list[int] = []

    def b(state: Log) -> Log:
        calls.append(state["x"])
        return {"log": [f"b{state['x'] % 10}"]}

    g = StateGraph(Log)
    g.add_node("b", b, cache_policy=CachePolicy(key_func=lambda s: str(s["x"] % 10)))
    g.add_edge(START, "b")
    app = g.compile(checkpointer=saver, cache=InMemoryCache())
    assert await app.ainvoke({"x": 1}, cfg()) == {"x": 1, "log": ["b1"]}
    assert await app.ainvoke({"x": 11}, cfg()) == {"x": 11, "log": ["b1"]}  # same key: cached
    assert await app.ainvoke({"x": 2}, cfg()) == {"x": 2, "log": ["b2"]}
    assert calls == [1, 2]


# test_pregel.py (a cached node's writes, history and task events match a run of it)
async def test_cached_writes_in_history_and_task_events(saver: Any) -> None:
    g = StateGraph(Log)
    g.add_node("a", lambda s: {"log": [f"a{s['x']}"]}, cache_policy=CachePolicy())
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    app = g.compile(checkpointer=saver, cache=InMemoryCache())
    await app.ainvoke({"x": 1}, cfg())
    config = cfg()
    events = [e async for e in app.astream({"x": 1}, config, stream_mode=["updates", "tasks"])]
    assert events[0][0] == "tasks" and events[0][1]["name"] == "a"  # it starts, as a task
    assert events[1] == ("updates", {"a": {"log": ["a1"]}, "__metadata__": {"cached": True}})
    hist = [s async for s in app.aget_state_history(config)]
    assert [[(t.name, t.result) for t in s.tasks] for s in hist[:3]] == [
        [],
        [("b", {"log": ["b"]})],
        [("a", {"log": ["a1"]})],
    ]
    assert hist[0].values == {"x": 1, "log": ["a1", "b"]}


# test_pregel.py (a cached node's routing is cached with it: its Sends run again)
async def test_cached_node_routing_is_replayed(saver: Any) -> None:
    calls: list[str] = []

    def fan(state: Log) -> Command[Any]:
        calls.append("fan")
        return Command(update={"log": ["fan"]}, goto=[Send("leaf", {"x": i}) for i in range(3)])

    g = StateGraph(Log)
    g.add_node("fan", fan, cache_policy=CachePolicy())
    g.add_node("leaf", lambda s: {"log": [f"leaf{s['x']}"]})
    g.add_edge(START, "fan")
    app = g.compile(checkpointer=saver, cache=InMemoryCache())
    expected = {"x": 0, "log": ["fan", "leaf0", "leaf1", "leaf2"]}
    assert await app.ainvoke({"x": 0}, cfg()) == expected
    assert await app.ainvoke({"x": 0}, cfg()) == expected
    assert calls == ["fan"]


# test_pregel.py (a node that paused or failed is not cached)
async def test_paused_or_failed_node_is_not_cached(saver: Any) -> None:
    calls: list[str] = []

    def ask(state: Log) -> Log:
        calls.append("ask")
        return {"log": [interrupt("ok?")]}

    g = StateGraph(Log)
    g.add_node("ask", ask, cache_policy=CachePolicy())
    g.add_edge(START, "ask")
    app = g.compile(checkpointer=saver, cache=InMemoryCache())
    config = cfg()
    assert "__interrupt__" in await app.ainvoke({"x": 0}, config)
    assert "__interrupt__" in await app.ainvoke({"x": 0}, cfg())  # not served from the cache
    assert await app.ainvoke(Command(resume="yes"), config) == {"x": 0, "log": ["yes"]}
    assert calls == ["ask", "ask", "ask"]


# test_pregel_async.py::test_multiple_interrupts_functional_cache
async def test_cached_task_with_interrupts_in_the_entrypoint(saver: Any) -> None:
    counter = 0

    @task(cache_policy=CachePolicy())
    def double(x: int) -> int:
        nonlocal counter
        counter += 1
        return 2 * x

    cache = InMemoryCache()

    @entrypoint(checkpointer=saver, cache=cache)
    def graph(state: dict[str, Any]) -> dict[str, Any]:
        values: list[Any] = []
        for idx in [1, 1, 2, 2, 3, 3]:
            values.extend([double(idx).result(), interrupt({"a": "boo"})])
        return {"values": values}

    async def run_through() -> Any:
        config = cfg()
        await graph.ainvoke({}, config)
        for answer in "abcde":
            await graph.ainvoke(Command(resume=answer), config)
        return await graph.ainvoke(Command(resume="f"), config)

    expected = {"values": [2, "a", 2, "b", 4, "c", 4, "d", 6, "e", 6, "f"]}
    assert await run_through() == expected
    assert counter == 3
    assert await run_through() == expected
    assert counter == 3
    await double.aclear_cache(cache)
    assert await run_through() == expected
    assert counter == 6


# test_pregel_async.py::test_multiple_interrupts_functional_cache (the stream marks hits)
async def test_cached_task_call_is_streamed_marked_cached(saver: Any) -> None:
    @task(cache_policy=CachePolicy())
    def double(x: int) -> int:
        return 2 * x

    @entrypoint(checkpointer=saver, cache=InMemoryCache())
    def graph(n: int) -> int:
        return double(n).result()

    assert [c async for c in graph.astream(2, cfg())] == [{"double": 4}, {"graph": 4}]
    assert [c async for c in graph.astream(2, cfg())] == [
        {"double": 4, "__metadata__": {"cached": True}},
        {"graph": 4},
    ]


# test_pregel.py (a subgraph's cached nodes use the parent's cache)
async def test_subgraph_nodes_use_the_parents_cache(saver: Any) -> None:
    calls: list[str] = []

    def inner(state: Log) -> Log:
        calls.append("inner")
        return {"log": ["inner"]}

    sub = StateGraph(Log)
    sub.add_node("inner", inner, cache_policy=CachePolicy())
    sub.add_edge(START, "inner")
    parent = StateGraph(Log)
    parent.add_node("sub", sub.compile())
    parent.add_edge(START, "sub")
    app = parent.compile(checkpointer=saver, cache=InMemoryCache())
    first = await app.ainvoke({"x": 1, "log": []}, cfg())
    second = await app.ainvoke({"x": 1, "log": []}, cfg())
    assert first == second and calls == ["inner"]


def counted_chain(calls: list[str]) -> StateGraph:
    def a(state: Log) -> Log:
        calls.append("a")
        return {"log": [f"a{state['x']}"]}

    def b(state: Log) -> Log:
        calls.append("b")
        return {"log": ["b"]}

    g = StateGraph(Log)
    g.add_node("a", a, cache_policy=CachePolicy(ttl=60))
    g.add_node("b", b, cache_policy=CachePolicy())
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    return g


# test_pregel.py::test_in_one_fan_out_state_graph_waiting_edge_multiple (with the cache fixture
# of each store: LangGraph's tests run it on InMemoryCache, SqliteCache and RedisCache)
async def test_cache_in_the_store_is_shared_by_graph_objects(saver: Any) -> None:
    assert saver.supports(Capability.CACHE)
    calls: list[str] = []
    one = counted_chain(calls).compile(checkpointer=saver, cache=saver)
    other = counted_chain(calls).compile(checkpointer=saver, cache=saver)  # another process's
    assert await one.ainvoke({"x": 1}, cfg()) == {"x": 1, "log": ["a1", "b"]}
    chunks = [c async for c in other.astream({"x": 1}, cfg())]
    assert chunks == [
        {"a": {"log": ["a1"]}, "__metadata__": {"cached": True}},
        {"b": {"log": ["b"]}, "__metadata__": {"cached": True}},
    ]
    assert calls == ["a", "b"]
    await other.aclear_cache(["a"])
    await one.ainvoke({"x": 1}, cfg())
    assert calls == ["a", "b", "a"]
    await one.aclear_cache()
    await other.ainvoke({"x": 1}, cfg())
    assert calls == ["a", "b", "a", "a", "b"]


# test_pregel.py (a store-kept result expires after its ttl)
async def test_store_cache_entries_expire(saver: Any) -> None:
    calls: list[int] = []

    def a(state: Log) -> Log:
        calls.append(state["x"])
        return {"log": ["a"]}

    g = StateGraph(Log)
    g.add_node("a", a, cache_policy=CachePolicy(ttl=0.3))
    g.add_edge(START, "a")
    app = g.compile(checkpointer=saver, cache=saver)
    await app.ainvoke({"x": 1}, cfg())
    await app.ainvoke({"x": 1}, cfg())
    assert calls == [1]
    await anyio.sleep(0.5)  # the ttl passes
    await app.ainvoke({"x": 1}, cfg())
    assert calls == [1, 1]


# test_pregel_async.py::test_multiple_interrupts_functional_cache (the cache in the store)
async def test_task_cache_in_the_store(saver: Any) -> None:
    counter = 0

    @task(cache_policy=CachePolicy())
    def double(x: int) -> int:
        nonlocal counter
        counter += 1
        return 2 * x

    @entrypoint(checkpointer=saver, cache=saver)
    def graph(n: int) -> int:
        return double(n).result() + double(n + 1).result()

    assert await graph.ainvoke(1, cfg()) == 6
    assert await graph.ainvoke(1, cfg()) == 6
    assert counter == 2
    await double.aclear_cache(graph.cache)
    assert await graph.ainvoke(1, cfg()) == 6
    assert counter == 4
