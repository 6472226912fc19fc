"""graph.py with LangGraph's imports, for `langgraph dev` in `python -m benchmarks --server`."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


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
