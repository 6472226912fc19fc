"""The graphs `python -m benchmarks --server` serves with hitl-async (graph_langgraph.py is the
same with LangGraph's imports): a 3-node chain, and a 3-node approval that pauses."""

from __future__ import annotations

from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, interrupt


class State(TypedDict, total=False):
    n: int
    decision: str


def step(state: State) -> dict[str, int]:
    return {"n": state.get("n", 0) + 1}


def approve(state: State) -> dict[str, str]:
    return {"decision": str(interrupt({"question": "approve?"}))}


def build(middle: object) -> object:
    builder = StateGraph(State)
    builder.add_node("first", step)
    builder.add_node("middle", middle)
    builder.add_node("last", step)
    builder.add_edge(START, "first")
    builder.add_edge("first", "middle")
    builder.add_edge("middle", "last")
    builder.add_edge("last", END)
    return builder.compile()


chain3 = build(step)
approval = build(approve)
