"""`hitl_async.pregel.Pregel` names the type of every compiled graph, as `langgraph.pregel.Pregel`
does (LangGraph's CompiledStateGraph and `@entrypoint` graphs are Pregel instances)."""

from __future__ import annotations

from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, entrypoint
from hitl_async.pregel import Pregel


class _S(TypedDict):
    n: int


def _compiled() -> Pregel:
    builder = StateGraph(_S)
    builder.add_node("inc", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "inc")
    builder.add_edge("inc", END)
    return builder.compile()


def test_a_compiled_state_graph_and_an_entrypoint_are_pregel_instances() -> None:
    graph = _compiled()

    @entrypoint()
    def double(n: int) -> int:
        return n * 2

    assert isinstance(graph, Pregel) and isinstance(double, Pregel)
    assert graph.invoke({"n": 1}) == {"n": 2}
    assert double.invoke(3) == 6
