"""Parity with LangGraph: a node returning a list of updates and `Command`s (each item applied in
order, every `goto` followed), restated from LangGraph's own tests, on every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, Command, InvalidUpdateError, Send, StateGraph

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


class Foo(TypedDict):
    foo: Annotated[str, operator.add]


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    x: int


def joined(a: str, b: str) -> str:
    return ", ".join(x for x in (a, b) if x)


class Joined(TypedDict):
    foo: Annotated[str, joined]


# test_pregel.py::test_root_mixed_return
async def test_root_state_mixed_list_of_command_and_value(saver: Any) -> None:
    g = StateGraph(Annotated[list[str], operator.add])
    g.add_node("my_node", lambda s: [Command(update=["a"]), ["b"]])
    g.add_edge(START, "my_node")
    assert await g.compile(checkpointer=saver).ainvoke([], cfg()) == ["a", "b"]


# test_pregel.py::test_dict_mixed_return
async def test_dict_state_mixed_list_of_command_and_dict(saver: Any) -> None:
    g = StateGraph(Foo)
    g.add_node("my_node", lambda s: [Command(update={"foo": "a"}), {"foo": "b"}])
    g.add_edge(START, "my_node")
    assert await g.compile(checkpointer=saver).ainvoke({"foo": ""}, cfg()) == {"foo": "ab"}


# test_pregel_async.py::test_multiple_updates_root
async def test_root_state_list_of_commands_streams_every_update(saver: Any) -> None:
    g = StateGraph(Annotated[str, operator.add])
    g.add_sequence(
        [
            ("node_a", lambda s: [Command(update="a1"), Command(update="a2")]),
            ("node_b", lambda s: "b"),
        ]
    )
    g.add_edge(START, "node_a")
    graph = g.compile(checkpointer=saver)
    assert await graph.ainvoke("", cfg()) == "a1a2b"
    chunks = [c async for c in graph.astream("", cfg(), stream_mode="updates")]
    assert chunks == [{"node_a": ["a1", "a2"]}, {"node_b": "b"}]


# test_pregel_async.py::test_multiple_updates
async def test_list_of_commands_writing_one_key_streams_one_dict_per_write(saver: Any) -> None:
    g = StateGraph(Foo)
    g.add_sequence(
        [
            ("node_a", lambda s: [Command(update={"foo": "a1"}), Command(update={"foo": "a2"})]),
            ("node_b", lambda s: {"foo": "b"}),
        ]
    )
    g.add_edge(START, "node_a")
    graph = g.compile(checkpointer=saver)
    assert await graph.ainvoke({"foo": ""}, cfg()) == {"foo": "a1a2b"}
    chunks = [c async for c in graph.astream({"foo": ""}, cfg(), stream_mode="updates")]
    assert chunks == [{"node_a": [{"foo": "a1"}, {"foo": "a2"}]}, {"node_b": {"foo": "b"}}]


# test_pregel.py::test_multiple_writes_same_channel_from_same_node
async def test_repeated_writes_of_one_node_in_streams_and_history(saver: Any) -> None:
    g = StateGraph(Joined)
    g.add_node("one", lambda s: Command(update=[("foo", "one.0"), ("foo", "one.1")]))
    g.add_node("two", lambda s: {"foo": "two"})
    g.add_edge(START, "one")
    g.add_edge("one", "two")
    g.add_edge("two", END)
    graph = g.compile(checkpointer=saver)
    config = cfg()
    events = [
        e async for e in graph.astream({"foo": "input"}, config, stream_mode=["updates", "tasks"])
    ]
    updates = [chunk for mode, chunk in events if mode == "updates"]
    assert updates == [{"one": [{"foo": "one.0"}, {"foo": "one.1"}]}, {"two": {"foo": "two"}}]
    results = [c for mode, c in events if mode == "tasks" and "result" in c]
    assert [(r["name"], r["result"]) for r in results] == [
        ("one", {"foo": {"$writes": ["one.0", "one.1"]}}),
        ("two", {"foo": "two"}),
    ]
    starts = [c for mode, c in events if mode == "tasks" and "input" in c]
    assert [s["input"] for s in starts] == [{"foo": "input"}, {"foo": "input, one.0, one.1"}]
    history = [
        ([(t.name, t.result) for t in s.tasks], s.values)
        async for s in graph.aget_state_history(config)
    ]
    assert history == [
        ([], {"foo": "input, one.0, one.1, two"}),
        ([("two", {"foo": "two"})], {"foo": "input, one.0, one.1"}),
        ([("one", {"foo": {"$writes": ["one.0", "one.1"]}})], {"foo": "input"}),
        ([("__start__", {"foo": "input"})], {"foo": ""}),
    ]


# test_pregel.py::test_multiple_writes_same_channel_from_same_node (the list-of-Commands form)
async def test_list_of_commands_result_in_history(saver: Any) -> None:
    g = StateGraph(Items)
    g.add_node("a", lambda s: [{"items": ["a1"]}, Command(update={"items": ["a2"], "x": 1})])
    g.add_edge(START, "a")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    assert await graph.ainvoke({"items": [], "x": 0}, config) == {"items": ["a1", "a2"], "x": 1}
    history = [s async for s in graph.aget_state_history(config)]
    assert [(t.name, t.result) for t in history[1].tasks] == [
        ("a", {"items": {"$writes": [["a1"], ["a2"]]}, "x": 1})
    ]


# test_pregel_async.py::test_send_sequences (a list of Commands whose gotos fan out)
async def test_every_goto_of_a_list_of_commands_is_followed(saver: Any) -> None:
    g = StateGraph(Items)
    g.add_node(
        "b",
        lambda s: [
            Command(update={"items": ["b1"]}, goto="c"),
            Command(update={"items": ["b2"]}, goto=[Send("d", {"items": ["sent"]})]),
        ],
    )
    g.add_node("c", lambda s: [Command(update={"x": 3}), None, {"items": ["c2"]}])
    g.add_node("d", lambda s: {"items": ["d:" + ",".join(s["items"])]})
    g.add_edge(START, "b")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    chunks = [c async for c in graph.astream({"items": [], "x": 0}, config)]
    assert chunks[0] == {"b": [{"items": ["b1"]}, {"items": ["b2"]}]}
    assert sorted(chunks[1:], key=str) == [
        {"c": {"x": 3, "items": ["c2"]}},
        {"d": {"items": ["d:sent"]}},
    ]
    state = await graph.aget_state(config)
    assert state.values == {"items": ["b1", "b2", "c2", "d:sent"], "x": 3}


# test_pregel.py::test_multiple_updates (a key without reducer written twice by one node)
async def test_list_of_commands_writing_a_plain_key_twice_is_invalid(saver: Any) -> None:
    g = StateGraph(Items)
    g.add_node("e", lambda s: [Command(update={"x": 1}), Command(update={"x": 2})])
    g.add_edge(START, "e")
    with pytest.raises(InvalidUpdateError, match="'x'"):
        await g.compile(checkpointer=saver).ainvoke({"x": 0}, cfg())


# test_pregel.py::test_dict_mixed_return (a list without any Command is not an update)
async def test_list_of_dicts_without_a_command_is_invalid(saver: Any) -> None:
    g = StateGraph(Items)
    g.add_node("f", lambda s: [{"x": 1}])
    g.add_edge(START, "f")
    with pytest.raises(InvalidUpdateError, match="'f'"):
        await g.compile(checkpointer=saver).ainvoke({"x": 0}, cfg())


# test_parent_command.py::test_parent_command_from_subgraph (inside a list of Commands)
async def test_parent_command_in_a_list_goes_to_the_parent(saver: Any) -> None:
    sub = StateGraph(Items)
    sub.add_node(
        "inner",
        lambda s: [Command(graph=Command.PARENT, update={"items": ["up"]}, goto="after")],
    )
    sub.add_edge(START, "inner")
    parent = StateGraph(Items)
    parent.add_node("child", sub.compile())
    parent.add_node("after", lambda s: {"items": ["after"]})
    parent.add_edge(START, "child")
    out = await parent.compile(checkpointer=saver).ainvoke({"items": []}, cfg())
    assert out == {"items": ["up", "after"]}
