"""`update_state(config, values)` without `as_node`, restated from LangGraph's tests (and what
LangGraph 1.2.22 shows for the same graphs), run on every driver: the update is applied as the
node that last wrote the state, whose edges then route the thread anew."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.tools import tool
from typing_extensions import TypedDict

from hitl_async import Command, InvalidUpdateError, Send, interrupt
from hitl_async.graph import END, START, MessagesState, StateGraph
from hitl_async.prebuilt import ToolNode, create_react_agent, tools_condition

pytestmark = pytest.mark.anyio


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    route: str


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def call(query: str, call_id: str = "c1") -> ToolCall:
    return ToolCall(name="search", args={"query": query}, id=call_id)


class _Model(GenericFakeChatModel):
    """A chat model answering with scripted messages; tools bind to it as a no-op."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> _Model:
        return self


def model(*replies: BaseMessage) -> _Model:
    messages: Iterator[BaseMessage] = iter(replies)
    return _Model(messages=messages)


def tool_agent(saver: Any, calls: list[str], *replies: BaseMessage, **compile_kw: Any) -> Any:
    """agent -> tools_condition -> tools -> agent, built by hand."""

    @tool
    def search(query: str) -> str:
        """Search."""
        calls.append(query)
        return f"found {query}"

    llm = model(*replies)

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    b = StateGraph(MessagesState)
    b.add_node("agent", agent)
    b.add_node("tools", ToolNode([search]))
    b.add_edge(START, "agent")
    b.add_conditional_edges("agent", tools_condition)
    b.add_edge("tools", "agent")
    return b.compile(checkpointer=saver, **compile_kw)


# test_pregel_async.py::test_send_react_interrupt
async def test_send_react_interrupt_edits_and_removes_the_pending_tool_call(saver: Any) -> None:
    ai = AIMessage("", id="ai1", tool_calls=[ToolCall(name="foo", args={"hi": [1, 2, 3]}, id="")])
    ran: list[Any] = []

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": ai}

    def route(state: MessagesState) -> list[Send] | None:
        last = state["messages"][-1]
        if isinstance(last, AIMessage):
            return [Send(c["name"], c) for c in last.tool_calls]
        return None

    async def foo(c: ToolCall) -> dict[str, Any]:
        ran.append(c["args"])
        return {"messages": ToolMessage(str(c["args"]), tool_call_id=c["id"])}

    b = StateGraph(MessagesState)
    b.add_node("agent", agent)
    b.add_node("foo", foo)
    b.add_edge(START, "agent")
    b.add_conditional_edges("agent", route)
    graph = b.compile(checkpointer=saver, interrupt_before=["foo"])

    # Removing the tool call clears the pending Send.
    await graph.ainvoke({"messages": [HumanMessage("hello")]}, cfg("1"))
    snap = await graph.aget_state(cfg("1"))
    assert snap.next == ("foo",) and snap.metadata["step"] == 1
    await graph.aupdate_state(cfg("1"), {"messages": AIMessage("Bye now", id="ai1", tool_calls=[])})
    snap = await graph.aget_state(cfg("1"))
    assert snap.next == () and snap.tasks == ()
    assert snap.metadata["source"] == "update" and snap.metadata["step"] == 2
    assert [m.content for m in snap.values["messages"]] == ["hello", "Bye now"]
    assert [m.content for m in (await graph.ainvoke(None, cfg("1")))["messages"]] == [
        "hello",
        "Bye now",
    ]
    assert ran == []

    # Editing the tool call's args makes a new Send that carries them.
    await graph.ainvoke({"messages": [HumanMessage("hello")]}, cfg("2"))
    edited = AIMessage(
        "", id="ai1", tool_calls=[ToolCall(name="foo", args={"hi": [4, 5, 6]}, id="")]
    )
    await graph.aupdate_state(cfg("2"), {"messages": edited})
    snap = await graph.aget_state(cfg("2"))
    assert snap.next == ("foo",)
    assert snap.values["messages"][-1].tool_calls[0]["args"] == {"hi": [4, 5, 6]}
    out = await graph.ainvoke(None, cfg("2"))
    assert ran == [{"hi": [4, 5, 6]}]
    assert out["messages"][-1].content == str({"hi": [4, 5, 6]})


async def test_react_agent_runs_the_edited_tool_call(saver: Any) -> None:
    calls: list[str] = []

    @tool
    def search(query: str) -> str:
        """Search."""
        calls.append(query)
        return f"found {query}"

    llm = model(AIMessage("", id="ai1", tool_calls=[call("foo")]), AIMessage("done", id="ai2"))
    graph = create_react_agent(llm, [search], checkpointer=saver, interrupt_before=["tools"])
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg())
    assert (await graph.aget_state(cfg())).next == ("tools",)
    await graph.aupdate_state(
        cfg(), {"messages": [AIMessage("", id="ai1", tool_calls=[call("bar")])]}
    )
    snap = await graph.aget_state(cfg())
    assert snap.next == ("tools",) and snap.metadata["source"] == "update"
    out = await graph.ainvoke(None, cfg())
    assert calls == ["bar"]
    assert [m.content for m in out["messages"]] == ["hi", "", "found bar", "done"]


async def test_tools_condition_routes_the_edited_message(saver: Any) -> None:
    calls: list[str] = []
    graph = tool_agent(
        saver,
        calls,
        AIMessage("", id="ai1", tool_calls=[call("foo")]),
        AIMessage("done", id="ai2"),
        interrupt_before=["tools"],
    )
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg())
    await graph.aupdate_state(
        cfg(), {"messages": [AIMessage("", id="ai1", tool_calls=[call("bar")])]}
    )
    assert (await graph.aget_state(cfg())).next == ("tools",)
    # A second update is still the agent's (an edit is no node's run), and with no tool call
    # left, tools_condition ends the thread.
    await graph.aupdate_state(cfg(), {"messages": [AIMessage("no tools", id="ai1")]})
    snap = await graph.aget_state(cfg())
    assert snap.next == () and snap.metadata["step"] == 3
    await graph.ainvoke(None, cfg())
    assert calls == []


# test_pregel.py::test_interrupt_before_first_node style: paused before the first node
async def test_update_before_the_first_node_is_the_inputs(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("a", lambda s: {"log": ["a"]})
    b.add_edge(START, "a")
    graph = b.compile(checkpointer=saver, interrupt_before=["a"])
    await graph.ainvoke({"log": []}, cfg())
    await graph.aupdate_state(cfg(), {"log": ["edit"]})
    snap = await graph.aget_state(cfg())
    assert snap.next == ("a",) and snap.values == {"log": ["edit"]}
    assert await graph.ainvoke(None, cfg()) == {"log": ["edit", "a"]}


async def test_update_while_paused_on_interrupt_keeps_it_pending(saver: Any) -> None:
    """The deliberate difference (README): LangGraph reroutes and drops the interrupt."""
    b = StateGraph(Log)
    b.add_node("one", lambda s: {"log": ["one"]})
    b.add_node("ask", lambda s: {"log": [f"ask:{interrupt('q')}"]})
    b.add_edge(START, "one")
    b.add_edge("one", "ask")
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": []}, cfg())
    (pending,) = (await graph.aget_state(cfg())).interrupts
    await graph.aupdate_state(cfg(), {"log": ["edit"]})
    snap = await graph.aget_state(cfg())
    assert snap.next == ("ask",) and [i.id for i in snap.interrupts] == [pending.id]
    assert await graph.ainvoke(Command(resume="yes"), cfg()) == {"log": ["one", "edit", "ask:yes"]}


def parallel(saver: Any) -> Any:
    b = StateGraph(Log)
    b.add_node("a", lambda s: {"log": ["a"]})
    b.add_node("b", lambda s: {"log": ["b"]})
    b.add_edge(START, "a")
    b.add_edge(START, "b")
    return b.compile(checkpointer=saver)


# test_pregel.py::test_in_one_fan_out_state_graph_waiting_edge (update after parallel nodes)
async def test_update_after_a_parallel_step_is_ambiguous(saver: Any) -> None:
    graph = parallel(saver)
    await graph.ainvoke({"log": []}, cfg())
    before = await graph.aget_state(cfg())
    with pytest.raises(InvalidUpdateError, match="Ambiguous update, specify as_node") as info:
        await graph.aupdate_state(cfg(), {"log": ["x"]})
    assert "'1'" in str(info.value) and "['a', 'b']" in str(info.value)
    assert (await graph.aget_state(cfg())).config == before.config
    await graph.aupdate_state(cfg(), {"log": ["x"]}, as_node="a")
    assert (await graph.aget_state(cfg())).values == {"log": ["a", "b", "x"]}


async def test_update_of_a_fresh_thread_is_the_inputs(saver: Any) -> None:
    graph = parallel(saver)
    await graph.aupdate_state(cfg(), {"log": ["fresh"]})
    snap = await graph.aget_state(cfg())
    assert snap.next == ("a", "b") and snap.metadata["step"] == 0
    assert await graph.ainvoke(None, cfg()) == {"log": ["fresh", "a", "b"]}


async def test_update_of_a_finished_thread_reroutes_its_last_node(saver: Any) -> None:
    calls: list[str] = []
    graph = tool_agent(
        saver,
        calls,
        AIMessage("hello", id="ai0"),
        AIMessage("done", id="ai1"),
    )
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg())
    assert (await graph.aget_state(cfg())).next == ()
    edited = AIMessage("", id="ai0", tool_calls=[call("zzz", "c9")])
    await graph.aupdate_state(cfg(), {"messages": [edited]})
    assert (await graph.aget_state(cfg())).next == ("tools",)
    out = await graph.ainvoke(None, cfg())
    assert calls == ["zzz"] and out["messages"][-1].content == "done"


async def test_sends_do_not_count_as_the_last_writer(saver: Any) -> None:
    def fan_out(state: Log) -> Any:
        return [Send("w", state), Send("w", state)] if state.get("route") == "go" else END

    b = StateGraph(Log)
    b.add_node("fan", lambda s: {"log": ["fan"]})
    b.add_node("w", lambda s: {"log": ["w"]})
    b.add_edge(START, "fan")
    b.add_conditional_edges("fan", fan_out, ["w", END])
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": [], "route": "stop"}, cfg())
    await graph.aupdate_state(cfg(), {"route": "go"})
    assert (await graph.aget_state(cfg())).next == ("w", "w")
    await graph.ainvoke(None, cfg())
    # The last step ran only Sends: the update is still fan's, which sends again.
    await graph.aupdate_state(cfg(), {"route": "go"})
    assert (await graph.aget_state(cfg())).next == ("w", "w")


async def test_update_of_a_subgraph_state_reroutes_in_the_subgraph(saver: Any) -> None:
    sb = StateGraph(Log)
    sb.add_node("s1", lambda s: {"log": ["s1"], "route": "s2"})
    sb.add_node("s2", lambda s: {"log": ["s2"]})
    sb.add_node("s3", lambda s: {"log": ["s3"]})
    sb.add_edge(START, "s1")
    sb.add_conditional_edges("s1", lambda s: s["route"], ["s2", "s3"])
    pb = StateGraph(Log)
    pb.add_node("sub", sb.compile(interrupt_before=["s2", "s3"]))
    pb.add_edge(START, "sub")
    graph = pb.compile(checkpointer=saver)
    await graph.ainvoke({"log": [], "route": ""}, cfg())
    sub_state = (await graph.aget_state(cfg(), subgraphs=True)).tasks[0].state
    assert sub_state is not None and sub_state.next == ("s2",)
    await graph.aupdate_state(sub_state.config, {"route": "s3"})
    snap = await graph.aget_state(cfg(), subgraphs=True)
    assert snap.next == ("sub",)
    sub_state = snap.tasks[0].state
    assert sub_state is not None and sub_state.next == ("s3",)
    assert sub_state.metadata["source"] == "update"
    assert await graph.ainvoke(None, cfg()) == {"log": ["s1", "s3"], "route": "s3"}


async def test_under_durability_exit_the_unstored_steps_still_tell_the_writer(saver: Any) -> None:
    calls: list[str] = []
    graph = tool_agent(
        saver,
        calls,
        AIMessage("", id="ai1", tool_calls=[call("foo")]),
        AIMessage("done", id="ai2"),
        interrupt_before=["tools"],
    )
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg(), durability="exit")
    assert len([s async for s in graph.aget_state_history(cfg())]) == 1
    await graph.aupdate_state(
        cfg(), {"messages": [AIMessage("", id="ai1", tool_calls=[call("bar")])]}
    )
    await graph.ainvoke(None, cfg(), durability="exit")
    assert calls == ["bar"]

    parallel_graph = parallel(saver)
    await parallel_graph.ainvoke({"log": []}, cfg("2"), durability="exit")
    with pytest.raises(InvalidUpdateError, match="Ambiguous update, specify as_node"):
        await parallel_graph.aupdate_state(cfg("2"), {"log": ["x"]})


async def test_under_durability_exit_sends_after_a_stored_step_do_not_count(saver: Any) -> None:
    def fan_out(state: Log) -> Any:
        return [Send("w", state)] if state.get("route") == "go" else END

    b = StateGraph(Log)
    b.add_node("fan", lambda s: {"log": ["fan"]})
    b.add_node("w", lambda s: {"log": ["w"]})
    b.add_edge(START, "fan")
    b.add_conditional_edges("fan", fan_out, ["w", END])
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": [], "route": "stop"}, cfg())
    await graph.aupdate_state(cfg(), {"route": "go"})
    # Only the Send runs under exit: the writer is still fan, found in the stored chain.
    await graph.ainvoke(None, cfg(), durability="exit")
    await graph.aupdate_state(cfg(), {"route": "go"})
    assert (await graph.aget_state(cfg())).next == ("w",)
