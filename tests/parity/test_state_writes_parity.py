"""How node writes reach the state: `Overwrite` in stored history and `update_state` (the rest
of `Overwrite` is in test_overwrite_parity.py), pydantic states returned whole, reducer keys of
abstract collection types, enum node names, a `store` parameter and a `Send` carrying a node's
own input model, restated from LangGraph's tests (LangGraph 1.2.22's behaviour)."""

from __future__ import annotations

import enum
import operator
from collections.abc import Sequence
from typing import Annotated, Any

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from hitl_async import InMemorySaver, InMemoryStore, Send
from hitl_async.graph import END, START, StateGraph, add_messages
from hitl_async.types import Overwrite

pytestmark = pytest.mark.anyio


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


class Log(TypedDict):
    messages: Annotated[list[str], operator.add]


def diamond(saver: Any, b_writes: Any, c_writes: Any) -> Any:
    """a -> (b, c) in parallel -> d; b and c write what they are given."""
    g = StateGraph(Log)
    g.add_node("a", lambda s: {"messages": ["a"]})
    g.add_node("b", lambda s: {"messages": b_writes})
    g.add_node("c", lambda s: {"messages": c_writes})
    g.add_node("d", lambda s: {"messages": ["d"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge(["b", "c"], "d")
    return g.compile(checkpointer=saver)


def overwrite(as_json: bool, value: Any) -> Any:
    return {"__overwrite__": value} if as_json else Overwrite(value)


# test_pregel.py::test_overwrite_parallel (persisted: the step's writes are stored)
@pytest.mark.parametrize("as_json", [False, True])
async def test_an_overwrite_drops_its_siblings_writes_of_the_step(
    saver: Any, as_json: bool
) -> None:
    graph = diamond(saver, overwrite(as_json, ["b"]), ["c"])
    assert await graph.ainvoke({"messages": ["START"]}, cfg()) == {"messages": ["b", "d"]}
    values = [s.values["messages"] async for s in graph.aget_state_history(cfg())]
    assert values == [["b", "d"], ["b"], ["START", "a"], ["START"], []]


def test_an_overwrite_through_update_state() -> None:
    graph = diamond(InMemorySaver(), ["b"], ["c"])
    graph.invoke({"messages": ["START"]}, cfg())
    graph.update_state(cfg(), {"messages": Overwrite(["reset"])})
    assert graph.get_state(cfg()).values == {"messages": ["reset"]}


class Inner(BaseModel):
    a: int = 0


class Held(BaseModel):
    inner: Inner = Inner()
    outer: int = 0


class HeldByFactory(BaseModel):
    inner: Inner = Field(default_factory=Inner)
    outer: int = 0
    note: str | None = None


# test_pregel.py::test_pydantic_state_mutation
@pytest.mark.parametrize("schema", [Held, HeldByFactory])
def test_a_node_returning_its_mutated_pydantic_state_writes_every_change(schema: Any) -> None:
    def mutate(state: Any) -> Any:
        state.inner.a = 5
        state.outer = 10
        return state

    graph = StateGraph(schema).add_node("mutate", mutate).add_edge(START, "mutate").compile()
    out = graph.invoke({"outer": 1})
    assert out["outer"] == 10 and out["inner"] == Inner(a=5)
    assert "note" not in out  # None by default and never set: not written


class Greeting(TypedDict):
    hello: str
    messages: Annotated[Sequence[Any], add_messages]


# test_pregel.py::test_reducer_before_first_node (a Sequence key)
def test_a_sequence_reducer_key_starts_empty() -> None:
    seen: list[Any] = []
    g = StateGraph(Greeting)
    g.add_node("a", lambda s: seen.append(s))
    g.set_entry_point("a")
    g.set_finish_point("a")
    out = g.compile().invoke({"hello": "there", "messages": "hello"})
    assert [type(m) for m in out["messages"]] == [HumanMessage]
    assert out["messages"][0].content == "hello" and seen == [out]


class NodeName(str, enum.Enum):  # noqa: UP042 - the mixin form LangGraph users write
    BAZ = "baz"


class FooBar(TypedDict, total=False):
    foo: str
    bar: str


# test_pregel.py::test_enum_node_names
def test_str_enum_members_name_nodes() -> None:
    g = StateGraph(FooBar)
    g.add_node(NodeName.BAZ, lambda s: {"bar": s["foo"] + "!"})
    g.add_edge(START, NodeName.BAZ)
    g.add_edge(NodeName.BAZ, END)
    graph = g.compile()
    assert graph.invoke({"foo": "hello"}) == {"foo": "hello", "bar": "hello!"}
    assert list(graph.nodes) == ["baz"] and type(next(iter(graph.nodes))) is str


def test_a_router_may_return_a_str_enum_member() -> None:
    g = StateGraph(FooBar)
    g.add_node("start", lambda s: {})
    g.add_node(NodeName.BAZ, lambda s: {"bar": "routed"})
    g.add_edge(START, "start")
    g.add_conditional_edges("start", lambda s: NodeName.BAZ)
    assert g.compile().invoke({"foo": "x"}) == {"foo": "x", "bar": "routed"}


class Count(TypedDict):
    count: Annotated[int, operator.add]


# test_pregel.py::test_store_injected
async def test_a_store_parameter_gets_the_graphs_store(saver: Any) -> None:
    store = InMemoryStore()

    class Node:
        def __call__(self, state: Count, config: dict[str, Any], store: Any) -> dict[str, Any]:
            thread = config["configurable"]["thread_id"]
            store.put(("docs", thread), "doc", {"seen": state["count"]})
            return {"count": 1}

    g = StateGraph(Count)
    g.add_node("node", Node())
    g.add_edge(START, "node")
    graph = g.compile(checkpointer=saver, store=store)
    assert await graph.ainvoke({"count": 0}, cfg("t1")) == {"count": 1}
    assert await graph.ainvoke({"count": 0}, cfg("t1")) == {"count": 2}
    item = store.get(("docs", "t1"), "doc")
    assert item is not None and item.value == {"seen": 1}


class Fan(BaseModel):
    items: list[str]
    done: Annotated[list[str], operator.add] = []


class Job(BaseModel):
    item: str


# test_pregel.py::test_in_one_fan_out_state_graph_waiting_edge_custom_state_class_pydantic_input
async def test_a_send_may_carry_the_nodes_own_input_model(saver: Any) -> None:
    def work(job: Job) -> dict[str, Any]:
        return {"done": [job.item.upper()]}

    g = StateGraph(Fan)
    g.add_node("plan", lambda s: {})
    g.add_node("work", work)
    g.add_edge(START, "plan")
    g.add_conditional_edges(
        "plan", lambda s: [Send("work", Job(item=i)) for i in s.items], ["work"]
    )
    graph = g.compile(checkpointer=saver, interrupt_before=["work"])
    await graph.ainvoke({"items": ["a", "b"]}, cfg())  # the Sends are stored at the breakpoint
    snap = await graph.aget_state(cfg())
    assert snap.next == ("work", "work")
    assert await graph.ainvoke(None, cfg()) == {"items": ["a", "b"], "done": ["A", "B"]}
