"""A graph that reports what configured its run: the config's `configurable` value `x` and the
runtime context (an assistant's, merged with the run's)."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, get_config
from hitl_async.runtime import Runtime


class Seen(TypedDict, total=False):
    x: Any
    context: Any


def report(state: Seen, runtime: Runtime[Any]) -> dict[str, Any]:
    return {"x": get_config()["configurable"].get("x"), "context": runtime.context}


builder = StateGraph(Seen)
builder.add_node("report", report)
builder.add_edge(START, "report")
builder.add_edge("report", END)
graph = builder.compile()
