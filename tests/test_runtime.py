"""Runtime context: `config` and `runtime` node parameters, `context=`, `get_runtime()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, InMemorySaver, StateGraph
from hitl_async.runtime import Runtime, get_runtime


@dataclass
class Ctx:
    user: str


class S(TypedDict, total=False):
    x: str


def build(store: Any = None) -> Any:
    def a(state: S, runtime: Runtime[Ctx]) -> dict[str, Any]:
        runtime.stream_writer({"progress": runtime.context.user})
        return {"x": f"{runtime.context.user}@{runtime.thread_id}:{runtime.store}"}

    async def b(state: S, config: dict[str, Any]) -> dict[str, Any]:
        thread = config["configurable"]["thread_id"]
        return {"x": f"{state['x']}|{thread}|{get_runtime().context.user}"}

    g = StateGraph(S, context_schema=Ctx)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g.compile(checkpointer=InMemorySaver(), store=store)


def test_nodes_receive_runtime_and_config_and_context_from_a_dict() -> None:
    graph = build(store="the-store")
    cfg = {"configurable": {"thread_id": "T"}}
    events = list(graph.stream({}, cfg, context={"user": "ann"}, stream_mode=["custom", "updates"]))
    assert events == [
        ("custom", {"progress": "ann"}),
        ("updates", {"a": {"x": "ann@T:the-store"}}),
        ("updates", {"b": {"x": "ann@T:the-store|T|ann"}}),
    ]


@pytest.mark.anyio
async def test_context_object_is_passed_as_is() -> None:
    graph = build()
    out = await graph.ainvoke({}, {"configurable": {"thread_id": "U"}}, context=Ctx("bob"))
    assert out == {"x": "bob@U:None|U|bob"}


def test_get_runtime_outside_a_node_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="inside a running graph node"):
        get_runtime()
