"""`add_messages` / `MessagesState` through a graph and a store, restated from LangGraph's
test_messages_state.py: each case runs the reducer in a graph whose state is written to (and
read back from) every driver."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from typing_extensions import TypedDict

from hitl_async.graph import START, MessagesState, StateGraph, add_messages
from hitl_async.graph.message import REMOVE_ALL_MESSAGES

pytestmark = pytest.mark.anyio


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


async def through_graph(saver: Any, left: Any, right: Any, schema: Any = Chat) -> list[Any]:
    """Start a thread with `left`, let a node return `right`; the stored messages."""
    b = StateGraph(schema)
    b.add_node("node", lambda s: {"messages": right})
    b.add_edge(START, "node")
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({"messages": left}, cfg())
    stored = (await graph.aget_state(cfg())).values["messages"]
    assert stored == out["messages"]
    return list(stored)


def plain(messages: list[Any]) -> list[tuple[str, Any, str | None]]:
    return [(m.type, m.content, m.id) for m in messages]


# test_messages_state.py::test_add_single_message
async def test_a_message_is_appended(saver: Any) -> None:
    got = await through_graph(
        saver, [HumanMessage("Hello", id="1")], [AIMessage("Hi there!", id="2")]
    )
    assert plain(got) == [("human", "Hello", "1"), ("ai", "Hi there!", "2")]


# test_messages_state.py::test_add_multiple_messages
async def test_several_messages_are_appended_in_order(saver: Any) -> None:
    right = [AIMessage("Hi there!", id="2"), HumanMessage("How are you?", id="3")]
    got = await through_graph(saver, [HumanMessage("Hello", id="1")], right)
    assert [m.id for m in got] == ["1", "2", "3"]


# test_messages_state.py::test_update_existing_message
async def test_a_message_with_a_known_id_replaces_it(saver: Any) -> None:
    got = await through_graph(
        saver, [HumanMessage("Hello", id="1")], [HumanMessage("Hello again", id="1")]
    )
    assert plain(got) == [("human", "Hello again", "1")]


# test_messages_state.py::test_missing_ids
async def test_messages_without_ids_get_distinct_ids(saver: Any) -> None:
    got = await through_graph(saver, [HumanMessage("Hello")], [AIMessage("Hi there!")])
    assert len(got) == 2 and all(m.id for m in got) and got[0].id != got[1].id


# test_messages_state.py::test_remove_message
async def test_remove_message_deletes_by_id(saver: Any) -> None:
    left = [HumanMessage("Hello", id="1"), AIMessage("Hi there!", id="2")]
    got = await through_graph(saver, left, [RemoveMessage(id="2")])
    assert plain(got) == [("human", "Hello", "1")]


# test_messages_state.py::test_remove_nonexistent_message
async def test_removing_an_unknown_id_is_an_error(saver: Any) -> None:
    with pytest.raises(ValueError, match=r"doesn.t exist"):
        await through_graph(saver, [HumanMessage("Hello", id="1")], [RemoveMessage(id="2")])


# test_messages_state.py::test_mixed_operations
async def test_update_add_and_remove_in_one_write(saver: Any) -> None:
    left = [HumanMessage("Hello", id="1"), AIMessage("Hi there!", id="2")]
    right = [HumanMessage("Updated hello", id="1"), RemoveMessage(id="2"), AIMessage("New", id="3")]
    got = await through_graph(saver, left, right)
    assert plain(got) == [("human", "Updated hello", "1"), ("ai", "New", "3")]


# test_messages_state.py::test_empty_inputs
async def test_an_empty_write_leaves_the_messages(saver: Any) -> None:
    got = await through_graph(saver, [HumanMessage("Hello", id="1")], [])
    assert plain(got) == [("human", "Hello", "1")]


# test_messages_state.py::test_non_list_inputs
async def test_a_single_message_or_tuple_is_taken_as_a_list(saver: Any) -> None:
    got = await through_graph(saver, HumanMessage("Hello", id="1"), ("ai", "Hi there!"))
    assert [(m.type, m.content) for m in got] == [("human", "Hello"), ("ai", "Hi there!")]


# test_messages_state.py::test_remove_all_messages
async def test_remove_all_then_new_messages_overwrites(saver: Any) -> None:
    left = [HumanMessage("Hello", id="1"), AIMessage("Hi there!", id="2")]
    right = [RemoveMessage(id=REMOVE_ALL_MESSAGES), HumanMessage("Fresh", id="3")]
    got = await through_graph(saver, left, right)
    assert plain(got) == [("human", "Fresh", "3")]
    assert await through_graph(saver, left, [RemoveMessage(id=REMOVE_ALL_MESSAGES)]) == []


# test_messages_state.py::test_messages_state
@pytest.mark.parametrize("schema", ["MessagesState", "subclass"])
async def test_messages_state_takes_role_tuples(saver: Any, schema: str) -> None:
    class Sub(MessagesState):
        extra: str

    chosen = MessagesState if schema == "MessagesState" else Sub
    got = await through_graph(saver, [("user", "meow")], [HumanMessage("foo")], chosen)
    assert [(m.type, m.content) for m in got] == [("human", "meow"), ("human", "foo")]


# test_pregel.py::test_remove_message_via_state_update
async def test_update_state_removes_a_message_and_delete_thread_forgets_it(saver: Any) -> None:
    b = StateGraph(Chat)
    b.add_node("bot", lambda s: {"messages": [AIMessage("Hello! How can I help you")]})
    b.add_edge(START, "bot")
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({"messages": [HumanMessage("Hi")]}, cfg())
    await graph.aupdate_state(cfg(), {"messages": [RemoveMessage(id=out["messages"][-1].id)]})
    left = (await graph.aget_state(cfg())).values["messages"]
    assert [m.content for m in left] == ["Hi"]
    await saver.delete_thread("1")
    assert (await graph.aget_state(cfg())).values == {}
    assert [s async for s in graph.aget_state_history(cfg())] == []


# test_pregel.py::test_remove_message_from_node
async def test_a_node_removes_a_message_it_saw(saver: Any) -> None:
    b = StateGraph(Chat)
    b.add_node("bot", lambda s: {"messages": [AIMessage("Hello!"), AIMessage("How can I help?")]})
    b.add_node("prune", lambda s: {"messages": [RemoveMessage(id=s["messages"][-2].id)]})
    b.add_edge(START, "bot")
    b.add_edge("bot", "prune")
    graph = b.compile(checkpointer=saver)
    out = await graph.ainvoke({"messages": [HumanMessage("Hi")]}, cfg())
    assert [m.content for m in out["messages"]] == ["Hi", "How can I help?"]
