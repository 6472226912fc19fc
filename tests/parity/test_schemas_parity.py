"""Parity with LangGraph: root (non-dict) state schemas, `StateGraph(Annotated[list, add])` and
`StateGraph(int)`, through invoke, stream, get_state, history and update_state on every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any, Literal

import pytest

from hitl_async import START, Command, Send, StateGraph, interrupt

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


class Node:
    """A node named `name` that appends its name (or `name|arg` for a pushed argument)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = name

    def __call__(self, state: Any) -> Any:
        if isinstance(state, list):
            return [self.name]
        return ["|".join((self.name, str(state)))]


def chain() -> StateGraph:
    g = StateGraph(Annotated[list, operator.add])
    g.add_node(Node("a"))
    g.add_node(Node("b"))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    return g


# test_pregel_async.py::test_checkpointer_null_pending_writes
async def test_root_list_state_accumulates_across_runs(saver: Any) -> None:
    g = StateGraph(Annotated[list, operator.add])
    g.add_node(Node("1"))
    g.add_edge(START, "1")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    for n in range(1, 4):
        assert await graph.ainvoke([], config) == ["1"] * n


# test_pregel_async.py::test_send_sequences (the root list state as a whole)
async def test_root_list_state_invoke_stream_and_state(saver: Any) -> None:
    graph = chain().compile(checkpointer=saver)
    config = cfg()
    assert await graph.ainvoke(["x"], config) == ["x", "a", "b"]
    events = [e async for e in graph.astream(["y"], cfg(), stream_mode=["updates", "values"])]
    assert events == [
        ("values", ["y"]),
        ("updates", {"a": ["a"]}),
        ("values", ["y", "a"]),
        ("updates", {"b": ["b"]}),
        ("values", ["y", "a", "b"]),
    ]
    state = await graph.aget_state(config)
    assert state.values == ["x", "a", "b"] and state.next == ()


# test_pregel_async.py::test_send_sequences (history of a root-state thread)
async def test_root_list_state_history_values_and_task_results(saver: Any) -> None:
    graph = chain().compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke(["x"], config)
    history = [s async for s in graph.aget_state_history(config)]
    assert [s.values for s in history] == [["x", "a", "b"], ["x", "a"], ["x"], []]
    assert [s.next for s in history] == [(), ("b",), ("a",), ("__start__",)]
    assert [[t.result for t in s.tasks] for s in history] == [[], [["b"]], [["a"]], [["x"]]]
    assert [s.metadata["source"] for s in history] == ["loop", "loop", "loop", "input"]


# test_pregel_async.py::test_send_sequences (update_state on a root-state thread)
async def test_root_list_state_update_state_as_node(saver: Any) -> None:
    graph = chain().compile(checkpointer=saver, interrupt_before=["b"])
    config = cfg()
    assert await graph.ainvoke(["x"], config) == ["x", "a"]
    await graph.aupdate_state(config, ["u"], as_node="a")
    state = await graph.aget_state(config)
    assert state.values == ["x", "a", "u"] and state.next == ("b",)
    assert await graph.ainvoke(None, config) == ["x", "a", "u", "b"]


# test_pregel_async.py::test_imp_nested (StateGraph(list[str]): a plain root, last value wins)
async def test_plain_list_root_replaces_the_value(saver: Any) -> None:
    g = StateGraph(list[str])
    g.add_node("mynode", lambda s: [it + "a" for it in s])
    g.add_edge(START, "mynode")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    assert await graph.ainvoke(["0", "1"], config) == ["0a", "1a"]
    assert (await graph.aget_state(config)).values == ["0a", "1a"]


# test_large_cases.py (StateGraph(Annotated[int, operator.add]))
async def test_int_root_with_reducer(saver: Any) -> None:
    g = StateGraph(Annotated[int, operator.add])
    g.add_node("add_one", lambda s: 1)
    g.add_node("add_ten", lambda s: 10)
    g.add_edge(START, "add_one")
    g.add_edge("add_one", "add_ten")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    assert await graph.ainvoke(5, config) == 16
    assert (await graph.aget_state(config)).values == 16


# test_pregel.py::test_get_graph_root_channel (StateGraph(int): a plain-typed root)
async def test_plain_int_root(saver: Any) -> None:
    g = StateGraph(int)
    g.add_node("inc", lambda s: s + 1)
    g.add_edge(START, "inc")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    assert await graph.ainvoke(1, config) == 2
    events = [e async for e in graph.astream(5, cfg(), stream_mode=["updates", "values"])]
    assert events == [("values", 5), ("updates", {"inc": 6}), ("values", 6)]
    assert (await graph.aget_state(config)).values == 2


# test_pregel_async.py::test_concurrent_emit_sends
async def test_root_list_state_with_sends(saver: Any) -> None:
    def send_for_fun(state: Any) -> list[Any]:
        return [Send("2", 1), Send("2", 2), "3.1"]

    def send_for_profit(state: Any) -> list[Any]:
        return [Send("2", 3), Send("2", 4)]

    def route_to_three(state: Any) -> Literal["3"]:
        return "3"

    g = StateGraph(Annotated[list, operator.add])
    for name in ("1", "1.1", "2", "3", "3.1"):
        g.add_node(Node(name))
    g.add_edge(START, "1")
    g.add_edge(START, "1.1")
    g.add_conditional_edges("1", send_for_fun)
    g.add_conditional_edges("1.1", send_for_profit)
    g.add_conditional_edges("2", route_to_three)
    out = await g.compile(checkpointer=saver).ainvoke(["0"], cfg())
    assert out == ["0", "1", "1.1", "3.1", "2|1", "2|2", "2|3", "2|4", "3"]


# test_pregel_async.py::test_send_sequences (pushed Commands in a root list state)
async def test_root_list_state_with_pushed_commands(saver: Any) -> None:
    class CmdNode(Node):
        def __call__(self, state: Any) -> Any:
            update = super().__call__(state)
            if isinstance(state, Command):
                return Command(update=update, goto=state.goto)
            return update

    def send_for_fun(state: Any) -> list[Any]:
        return [Send("2", Command(goto=Send("2", 3))), Send("2", Command(goto=Send("2", 4))), "3.1"]

    def route_to_three(state: Any) -> Literal["3"]:
        return "3"

    g = StateGraph(Annotated[list, operator.add])
    for name in ("1", "2", "3", "3.1"):
        g.add_node(CmdNode(name))
    g.add_edge(START, "1")
    g.add_conditional_edges("1", send_for_fun)
    g.add_conditional_edges("2", route_to_three)
    graph = g.compile(checkpointer=saver, interrupt_before=["3.1"])
    config = cfg()
    assert await graph.ainvoke(["0"], config) == ["0", "1"]
    assert await graph.ainvoke(None, config) == [
        "0",
        "1",
        "3.1",
        "2|Command(goto=Send(node='2', arg=3))",
        "2|Command(goto=Send(node='2', arg=4))",
        "3",
        "2|3",
        "2|4",
        "3",
    ]


# test_pregel_async.py::test_max_concurrency_control (Command updates of a root list state)
async def test_root_list_state_command_update_and_goto(saver: Any) -> None:
    g = StateGraph(Annotated[list, operator.add])
    g.add_node("1", lambda s: Command(update=["1"], goto=[Send("2", i) for i in range(5)]))
    g.add_node("2", lambda s: Command(update=[s], goto="3"))
    g.add_node("3", lambda s: ["3"])
    g.add_edge(START, "1")
    graph = g.compile(checkpointer=saver, interrupt_before=["2"])
    config = cfg()
    assert await graph.ainvoke(["0"], config) == ["0", "1"]
    assert (await graph.aget_state(config)).values == ["0", "1"]
    assert await graph.ainvoke(None, config) == ["0", "1", *range(5), "3"]


# test_interruption.py (an interrupt in a root-state graph, resumed)
async def test_root_list_state_interrupt_and_resume(saver: Any) -> None:
    g = StateGraph(Annotated[list, operator.add])
    g.add_node("ask", lambda s: [interrupt("name?")])
    g.add_edge(START, "ask")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    paused = await graph.ainvoke(["hi"], config)
    assert [i.value for i in paused["__interrupt__"]] == ["name?"]
    assert (await graph.aget_state(config)).values == ["hi"]
    assert await graph.ainvoke(Command(resume="bob"), config) == ["hi", "bob"]
