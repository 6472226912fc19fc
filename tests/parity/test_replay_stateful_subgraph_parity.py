"""Replay and fork of a parent whose subgraph keeps its state (`compile(checkpointer=True)`),
restated from LangGraph's time-travel tests and run on every driver: the subgraph's first call
in the replaying run starts from the state it had when the replayed parent checkpoint was made,
not from its newest state (later calls in the same run, e.g. in a loop, from its newest)."""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, interrupt
from hitl_async.graph import START, StateGraph

pytestmark = pytest.mark.anyio


class Sub(TypedDict):
    trail: Annotated[list[str], operator.add]


class Parent(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    n: int


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": "t"}}


async def history(graph: Any) -> list[Any]:
    return [s async for s in graph.aget_state_history(cfg())]


def counting_sub(seen: list[list[str]]) -> Any:
    """One node that records the trail it sees and appends "s"."""

    def step(state: Sub) -> dict[str, Any]:
        seen.append(list(state["trail"]))
        return {"trail": ["s"]}

    return StateGraph(Sub).add_node("step", step).add_edge(START, "step").compile(checkpointer=True)


async def test_replay_before_earlier_nodes_gives_the_subgraph_its_state_of_then(saver: Any) -> None:
    """LangGraph's test_stateful_subgraph_loads_state_across_ticks and
    test_replay_from_first_invocation_checkpoint: a -> b -> sub, run twice; replaying the second
    run from before `a` shows the subgraph the state the first run left (one "s"), and replaying
    the first run shows it nothing."""
    seen: list[list[str]] = []
    g = StateGraph(Parent)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_node("sub", counting_sub(seen))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "sub")
    graph = g.compile(checkpointer=saver)
    await graph.ainvoke({"log": []}, cfg())
    await graph.ainvoke({"log": []}, cfg())
    assert seen == [[], ["s"]]
    before_a = [s for s in await history(graph) if s.next == ("a",)]
    assert len(before_a) == 2  # newest first: the second run's, then the first's
    seen.clear()
    await graph.ainvoke(None, before_a[0].config)
    assert seen == [["s"]]
    seen.clear()
    await graph.ainvoke(None, before_a[1].config)
    assert seen == [[]]


async def test_fork_gives_the_subgraph_its_state_of_then(saver: Any) -> None:
    """LangGraph's test_stateful_subgraph_retains_state_on_parent_fork: a subgraph asks twice
    per run; after two answered runs, a fork (update_state) from before the second run's call
    shows it the first run's answers, not the second's."""
    seen: list[list[str]] = []

    def ask(name: str) -> Any:
        def node(state: Sub) -> dict[str, Any]:
            seen.append(list(state["trail"]))
            return {"trail": [f"{name}:{interrupt(name)}"]}

        return node

    sub = (
        StateGraph(Sub)
        .add_node("x", ask("x"))
        .add_node("y", ask("y"))
        .add_edge(START, "x")
        .add_edge("x", "y")
        .compile(checkpointer=True)
    )
    g = StateGraph(Parent)
    g.add_node("p", lambda s: {"log": ["p"]})
    g.add_node("sub", sub)
    g.add_edge(START, "p")
    g.add_edge("p", "sub")
    graph = g.compile(checkpointer=saver)
    for run in ("1", "2"):
        await graph.ainvoke({"log": []}, cfg())
        await graph.ainvoke(Command(resume=f"x{run}"), cfg())
        await graph.ainvoke(Command(resume=f"y{run}"), cfg())
    before_sub = next(s for s in await history(graph) if s.next == ("sub",))
    fork = await graph.aupdate_state(before_sub.config, {"log": ["forked"]})
    seen.clear()
    out = await graph.ainvoke(None, fork)
    assert "__interrupt__" in out
    assert seen == [["x:x1", "y:y1"]]


async def test_replay_of_a_loop_bounds_only_the_first_call(saver: Any) -> None:
    """LangGraph's test_subgraph_called_in_loop_loads_state_on_replay: inc -> sub looped twice
    per run; replaying the second run from its start shows the first call the state the first
    run left and the second call the state the first call just made."""
    seen: list[list[str]] = []
    g = StateGraph(Parent)
    g.add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_node("sub", counting_sub(seen))
    g.add_edge(START, "inc")
    g.add_edge("inc", "sub")
    g.add_conditional_edges("sub", lambda s: "inc" if s["n"] < 2 else "__end__", ["inc", "__end__"])
    graph = g.compile(checkpointer=saver)
    await graph.ainvoke({"n": 0}, cfg())
    await graph.ainvoke({"n": 0}, cfg())
    assert seen == [[], ["s"], ["s", "s"], ["s", "s", "s"]]
    start_2nd = next(s for s in await history(graph) if s.next == ("inc",) and s.values["n"] == 0)
    seen.clear()
    await graph.ainvoke(None, start_2nd.config)
    assert seen == [["s", "s"], ["s", "s", "s"]]


async def test_replay_at_the_head_with_its_id_is_still_bounded(saver: Any) -> None:
    """LangGraph's test_stateful_subgraph_loads_latest_after_replay: replaying from before the
    subgraph's call with an explicit checkpoint id, then running on from the new head without
    one: the next plain run sees everything made so far."""
    seen: list[list[str]] = []
    g = StateGraph(Parent)
    g.add_node("sub", counting_sub(seen))
    g.add_edge(START, "sub")
    graph = g.compile(checkpointer=saver)
    await graph.ainvoke({"log": []}, cfg())
    await graph.ainvoke({"log": []}, cfg())
    before_2nd = next(s for s in await history(graph) if s.next == ("sub",))
    seen.clear()
    await graph.ainvoke(None, before_2nd.config)
    assert seen == [["s"]]
    seen.clear()
    await graph.ainvoke({"log": []}, cfg())
    assert seen == [["s", "s"]]
