"""Time travel to a point inside a subgraph, restated from LangGraph's time-travel tests and run
on every driver: a subgraph checkpoint's config (from `get_state(subgraphs=True)`) carries a
`checkpoint_map` (the parent's checkpoint and its own), and running the root graph with it
(input None, a `Command`, or after `update_state` of it) starts the parent and the subgraph from
those checkpoints: nodes before it do not run again, the interrupt there asks again."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, interrupt
from hitl_async.graph import START, StateGraph

pytestmark = pytest.mark.anyio


class State(TypedDict):
    value: Annotated[list[str], operator.add]


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def asking_parent(saver: Any, called: list[str], keeps_state: bool) -> Any:
    """START -> executor (a subgraph: step_a -> ask_1 -> ask_2, each ask an interrupt)."""

    def step_a(state: State) -> dict[str, Any]:
        called.append("step_a")
        return {"value": ["a"]}

    def ask(name: str) -> Any:
        def node(state: State) -> dict[str, Any]:
            called.append(name)
            return {"value": [f"{name}:{interrupt(f'{name}?')}"]}

        return node

    sub = (
        StateGraph(State)
        .add_node("step_a", step_a)
        .add_node("ask_1", ask("ask_1"))
        .add_node("ask_2", ask("ask_2"))
        .add_edge(START, "step_a")
        .add_edge("step_a", "ask_1")
        .add_edge("ask_1", "ask_2")
        .compile(checkpointer=True if keeps_state else None)
    )
    g = StateGraph(State).add_node("executor", sub).add_edge(START, "executor")
    return g.compile(checkpointer=saver)


@pytest.mark.parametrize("keeps_state", [True, False])
async def test_replay_and_fork_from_a_subgraph_checkpoint(saver: Any, keeps_state: bool) -> None:
    """LangGraph's test_subgraph_time_travel_to_first_interrupt: after both interrupts were
    answered, running with the subgraph's config captured at the first asks it again without
    rerunning step_a; so does an update_state of that config, then running its fork. (A
    subgraph without checkpointer=True runs in a namespace of the calling task: the parent's
    replay is a new task, so it starts over, step_a included, in LangGraph as here.)"""
    again = ["ask_1"] if keeps_state else ["step_a", "ask_1"]
    called: list[str] = []
    graph = asking_parent(saver, called, keeps_state)
    config = cfg()
    await graph.ainvoke({"value": []}, config)
    sub_config = (await graph.aget_state(config, subgraphs=True)).tasks[0].state.config
    cmap = sub_config["configurable"]["checkpoint_map"]
    assert set(cmap) == {"", sub_config["configurable"]["checkpoint_ns"]}
    await graph.ainvoke(Command(resume="1"), config)
    done = await graph.ainvoke(Command(resume="2"), config)
    assert done["value"][-2:] == ["ask_1:1", "ask_2:2"]

    called.clear()
    replay = await graph.ainvoke(None, sub_config)
    assert [i.value for i in replay["__interrupt__"]] == ["ask_1?"]
    assert called == again

    called.clear()
    fork = await graph.aupdate_state(sub_config, {"value": ["forked"]})
    assert fork["configurable"]["checkpoint_map"][""] == cmap[""]
    forked = await graph.ainvoke(None, fork)
    assert [i.value for i in forked["__interrupt__"]] == ["ask_1?"]
    assert called == again


async def test_a_replayed_subgraph_pause_is_answered_and_the_parent_goes_on(saver: Any) -> None:
    """LangGraph's test_subgraph_replay_from_subgraph_checkpoint: replaying from the subgraph's
    own checkpoint pauses at its interrupt again; answering with that config finishes the
    subgraph and the parent's next node runs."""
    called: list[str] = []

    def ask(state: State) -> dict[str, Any]:
        called.append("ask")
        return {"value": [f"human:{interrupt('input?')}"]}

    sub = (
        StateGraph(State)
        .add_node("a", lambda s: {"value": ["a"]})
        .add_node("ask", ask)
        .add_node("b", lambda s: {"value": ["b"]})
        .add_edge(START, "a")
        .add_edge("a", "ask")
        .add_edge("ask", "b")
        .compile(checkpointer=True)
    )
    g = StateGraph(State)
    g.add_node("router", lambda s: {"value": ["routed"]})
    g.add_node("sub", sub)
    g.add_node("post", lambda s: {"value": ["post"]})
    g.add_edge(START, "router")
    g.add_edge("router", "sub")
    g.add_edge("sub", "post")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"value": []}, config)
    sub_config = (await graph.aget_state(config, subgraphs=True)).tasks[0].state.config
    called.clear()
    replay = await graph.ainvoke(None, sub_config)
    assert [i.value for i in replay["__interrupt__"]] == ["input?"]
    assert called == ["ask"]
    final = await graph.ainvoke(Command(resume="yes"), sub_config)
    assert "human:yes" in final["value"] and final["value"][-1] == "post"
