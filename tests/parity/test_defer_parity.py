"""Parity with LangGraph: `add_node(..., defer=True)` — a deferred node runs once no other task
is left to run, restated from LangGraph's tests, on every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import START, Command, StateGraph, interrupt

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
    log: Annotated[list[str], operator.add]


def logger(name: str) -> Any:
    return lambda s: {"log": [name]}


def rag(use_waiting_edge: bool) -> StateGraph:
    async def rewrite_query(data: Docs) -> Docs:
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

    g = StateGraph(Docs)
    g.add_node("rewrite_query", rewrite_query)
    g.add_node("analyzer_one", analyzer_one)
    g.add_node("retriever_one", retriever_one)
    g.add_node("retriever_two", retriever_two)
    g.add_node("qa", qa, defer=True)
    g.set_entry_point("rewrite_query")
    g.add_edge("rewrite_query", "analyzer_one")
    g.add_edge("analyzer_one", "retriever_one")
    g.add_edge("rewrite_query", "retriever_two")
    if use_waiting_edge:
        g.add_edge(["retriever_one", "retriever_two"], "qa")
    else:
        g.add_edge("retriever_one", "qa")
        g.add_edge("retriever_two", "qa")
    g.set_finish_point("qa")
    return g


FINAL = {
    "query": "analyzed: query: what is weather in sf",
    "docs": ["doc1", "doc2", "doc3", "doc4"],
    "answer": "doc1,doc2,doc3,doc4",
}


# test_pregel_async.py::test_in_one_fan_out_state_graph_defer_node
@pytest.mark.parametrize("use_waiting_edge", [False, True])
async def test_deferred_qa_runs_once_after_both_retrievers(
    saver: Any, use_waiting_edge: bool
) -> None:
    app = rag(use_waiting_edge).compile(checkpointer=saver)
    assert await app.ainvoke({"query": "what is weather in sf"}, cfg()) == FINAL
    chunks = [c async for c in app.astream({"query": "what is weather in sf"}, cfg())]
    assert chunks[0] == {"rewrite_query": {"query": "query: what is weather in sf"}}
    assert sorted(map(str, chunks[1:4])) == sorted(
        map(
            str,
            [
                {"analyzer_one": {"query": "analyzed: query: what is weather in sf"}},
                {"retriever_two": {"docs": ["doc3", "doc4"]}},
                {"retriever_one": {"docs": ["doc1", "doc2"]}},
            ],
        )
    )
    assert chunks[4:] == [{"qa": {"answer": "doc1,doc2,doc3,doc4"}}]


# test_pregel_async.py::test_in_one_fan_out_state_graph_defer_node (interrupt_after, resume)
@pytest.mark.parametrize("use_waiting_edge", [False, True])
async def test_deferred_node_waits_across_a_breakpoint(saver: Any, use_waiting_edge: bool) -> None:
    app = rag(use_waiting_edge).compile(checkpointer=saver, interrupt_after=["retriever_one"])
    config = cfg()
    chunks = [c async for c in app.astream({"query": "what is weather in sf"}, config)]
    assert chunks[-2:] == [{"retriever_one": {"docs": ["doc1", "doc2"]}}, {"__interrupt__": ()}]
    assert all("qa" not in c for c in chunks)
    state = await app.aget_state(config)
    assert state.next == ("qa",)
    assert [c async for c in app.astream(None, config)] == [
        {"qa": {"answer": "doc1,doc2,doc3,doc4"}}
    ]
    assert (await app.aget_state(config)).values == FINAL


# test_pregel.py::test_in_one_fan_out_state_graph_defer_node (a longer branch holds it back)
async def test_deferred_node_waits_for_the_longest_branch(saver: Any) -> None:
    g = StateGraph(Log)
    for name in ("a", "b", "c", "c2", "c3"):
        g.add_node(name, logger(name))
    g.add_node("d", logger("d"), defer=True)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge("c", "c2")
    g.add_edge("c2", "c3")
    g.add_edge("b", "d")
    app = g.compile(checkpointer=saver, interrupt_after=["c2"])
    config = cfg()
    await app.ainvoke({"log": []}, config)
    state = await app.aget_state(config)
    assert state.next == ("c3",)  # d is triggered but waits: not a next task yet
    assert state.values == {"log": ["a", "b", "c", "c2"]}
    assert [c async for c in app.astream(None, config)] == [
        {"c3": {"log": ["c3"]}},
        {"d": {"log": ["d"]}},
    ]
    nexts = [s.next async for s in app.aget_state_history(config)]
    assert nexts == [(), ("d",), ("c3",), ("c2",), ("b", "c"), ("a",), ("__start__",)]


# test_pregel.py::test_in_one_fan_out_state_graph_defer_node (nothing else pending: runs next)
async def test_deferred_node_alone_runs_in_the_next_step(saver: Any) -> None:
    g = StateGraph(Log)
    g.add_node("a", logger("a"))
    g.add_node("d", logger("d"), defer=True)
    g.add_node("e", logger("e"))
    g.add_edge(START, "a")
    g.add_edge("a", "d")
    g.add_edge("d", "e")
    app = g.compile(checkpointer=saver)
    config = cfg()
    assert await app.ainvoke({"log": []}, config) == {"log": ["a", "d", "e"]}
    assert len([s async for s in app.aget_state_history(config)]) == 5


# test_pregel.py::test_in_one_fan_out_state_graph_defer_node (two deferred nodes, a loop)
async def test_waiting_deferred_nodes_are_released_together(saver: Any) -> None:
    g = StateGraph(Log)
    for name in ("a", "b", "c"):
        g.add_node(name, logger(name))
    g.add_node("d1", logger("d1"), defer=True)
    g.add_node("d2", logger("d2"), defer=True)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge("a", "d1")
    g.add_edge("b", "c")
    g.add_edge("c", "d2")
    g.add_edge("d1", "c")
    app = g.compile(checkpointer=saver)
    config = cfg()
    out = await app.ainvoke({"log": []}, config)
    assert out == {"log": ["a", "b", "c", "d1", "d2", "c", "d2"]}
    nexts = [s.next async for s in app.aget_state_history(config)]
    assert ("d1", "d2") in nexts


# test_pregel_async.py::test_in_one_fan_out_state_graph_defer_node (a deferred node pauses)
async def test_deferred_node_can_interrupt_and_resume(saver: Any) -> None:
    g = StateGraph(Log)
    g.add_node("a", logger("a"))
    g.add_node("slow", logger("slow"))
    g.add_node("slower", logger("slower"))
    g.add_node("review", lambda s: {"log": [f"review:{interrupt('ok?')}"]}, defer=True)
    g.add_edge(START, "a")
    g.add_edge(START, "slow")
    g.add_edge("slow", "slower")
    g.add_edge("a", "review")
    app = g.compile(checkpointer=saver)
    config = cfg()
    paused = await app.ainvoke({"log": []}, config)
    assert paused["log"] == ["a", "slow", "slower"]
    assert [i.value for i in paused["__interrupt__"]] == ["ok?"]
    out = await app.ainvoke(Command(resume="yes"), config)
    assert out == {"log": ["a", "slow", "slower", "review:yes"]}
