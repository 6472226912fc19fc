"""What agent code ported from LangGraph relies on: a tool-calling loop (`ToolNode`,
`tools_condition`, a fake chat model), `interrupt()` inside a tool, checkpoint metadata from the
run's config, `batch()`, `get_runtime()` and the wording of build and update errors, restated
from LangGraph's tests (and what LangGraph 1.2.22 does with the same code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from typing_extensions import TypedDict

from hitl_async import InMemorySaver, InvalidUpdateError, interrupt
from hitl_async.graph import END, START, MessagesState, StateGraph, add_messages
from hitl_async.prebuilt import ToolNode, tools_condition
from hitl_async.runtime import Runtime, get_runtime
from hitl_async.types import Command

pytestmark = pytest.mark.anyio


def cfg(thread: str = "1", **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, **extra}}


@tool
def search_api(query: str) -> str:
    """Searches the API for the query."""
    return f"result for {query}"


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def searching_agent(checkpointer: Any, **compile_kw: Any) -> Any:
    """A model that asks for one search and then answers, looping through a `ToolNode`."""
    model = FakeMessagesListChatModel(
        responses=[
            AIMessage(
                content="",
                tool_calls=[{"id": "call1", "name": "search_api", "args": {"query": "q"}}],
            ),
            AIMessage(content="answer"),
        ]
    )

    def agent(state: Chat) -> dict[str, Any]:
        return {"messages": model.invoke(state["messages"])}

    def route(state: Chat) -> str:
        return "continue" if state["messages"][-1].tool_calls else "exit"

    b = StateGraph(Chat)
    b.add_node("agent", agent)
    b.add_node("tools", ToolNode([search_api]))
    b.add_edge(START, "agent")
    b.add_conditional_edges("agent", route, {"continue": "tools", "exit": END})
    b.add_edge("tools", "agent")
    return b.compile(checkpointer=checkpointer, **compile_kw)


def shapes(messages: list[Any]) -> list[tuple[str, Any]]:
    return [(type(m).__name__, m.content) for m in messages]


# test_pregel.py::test_checkpoint_metadata
async def test_every_checkpoint_carries_the_runs_configurable_values(saver: Any) -> None:
    graph = searching_agent(saver)
    out = await graph.ainvoke({"messages": ["what is the weather"]}, cfg("1", a="foo", b="bar"))
    assert shapes(out["messages"]) == [
        ("HumanMessage", "what is the weather"),
        ("AIMessage", ""),
        ("ToolMessage", "result for q"),
        ("AIMessage", "answer"),
    ]
    assert out["messages"][2].tool_call_id == "call1" and out["messages"][2].name == "search_api"
    snaps = [s async for s in graph.aget_state_history(cfg("1"))]
    assert len(snaps) == 5
    for s in snaps:
        assert (s.metadata["a"], s.metadata["b"]) == ("foo", "bar")
        assert "thread_id" not in s.metadata and "checkpoint_ns" not in s.metadata

    paused = searching_agent(saver, interrupt_before=["tools"])
    await paused.ainvoke({"messages": ["what is the weather"]}, cfg("2", c="x"))
    assert (await paused.aget_state(cfg("2"))).next == ("tools",)
    await paused.ainvoke(None, cfg("2", c="x", d=3))
    snaps = [s async for s in paused.aget_state_history(cfg("2"))]
    assert snaps[0].next == () and all(s.metadata["c"] == "x" for s in snaps)
    # the resumed run's checkpoints (steps 2 and 3) carry its values, earlier ones do not
    assert [s.metadata.get("d") for s in snaps] == [3, 3, None, None, None]


@tool
def ask_human(question: str) -> str:
    """Ask a human."""
    return str(interrupt({"question": question}))


@tool
def add(a: int, b: int) -> int:
    """Add two ints."""
    return a + b


def tool_loop(checkpointer: Any) -> Any:
    """An agent asking for two tools at once, one of which pauses for a human."""
    turns = {"n": 0}

    def agent(state: MessagesState) -> dict[str, Any]:
        turns["n"] += 1
        if isinstance(state["messages"][-1], ToolMessage):
            done = sorted(m.content for m in state["messages"] if isinstance(m, ToolMessage))
            return {"messages": [AIMessage(content=f"done: {done}", id=f"ai{turns['n']}")]}
        calls = [
            {"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"},
            {"name": "ask_human", "args": {"question": "ok?"}, "id": "c2"},
        ]
        return {"messages": [AIMessage(content="", id=f"ai{turns['n']}", tool_calls=calls)]}

    b = StateGraph(MessagesState)
    b.add_node("agent", agent)
    b.add_node("tools", ToolNode([add, ask_human]))
    b.add_edge(START, "agent")
    b.add_conditional_edges("agent", tools_condition)
    b.add_edge("tools", "agent")
    return b.compile(checkpointer=checkpointer)


async def test_an_interrupt_inside_a_tool_pauses_the_tool_node_until_answered(saver: Any) -> None:
    graph = tool_loop(saver)
    chunks = [c async for c in graph.astream({"messages": [HumanMessage("hi", id="h")]}, cfg())]
    assert [next(iter(c)) for c in chunks] == ["agent", "__interrupt__"]
    (asked,) = chunks[1]["__interrupt__"]
    assert asked.value == {"question": "ok?"}
    snap = await graph.aget_state(cfg())
    assert snap.next == ("tools",) and snap.interrupts == (asked,)
    assert [(t.name, t.path, t.interrupts) for t in snap.tasks] == [
        ("tools", ("__pregel_pull", "tools"), (asked,))
    ]
    assert (snap.metadata["source"], snap.metadata["step"]) == ("loop", 1)
    chunks = [c async for c in graph.astream(Command(resume="yes"), cfg())]
    assert [next(iter(c)) for c in chunks] == ["tools", "agent"]
    assert shapes(chunks[0]["tools"]["messages"]) == [("ToolMessage", "3"), ("ToolMessage", "yes")]
    final = (await graph.aget_state(cfg())).values["messages"]
    assert shapes(final)[-1] == ("AIMessage", "done: ['3', 'yes']")


def test_a_paused_tool_loop_through_the_sync_api() -> None:
    graph = tool_loop(InMemorySaver())
    out = graph.invoke({"messages": [HumanMessage("hi", id="h")]}, cfg())
    assert [i.value for i in out["__interrupt__"]] == [{"question": "ok?"}]
    assert shapes(out["messages"]) == [("HumanMessage", "hi"), ("AIMessage", "")]
    modes = [
        m for m, _ in graph.stream(Command(resume="no"), cfg(), stream_mode=["updates", "values"])
    ]
    # a resume starts with the values it continues from, as LangGraph's does
    assert modes == ["values", "updates", "values", "updates", "values"]


class Num(TypedDict):
    x: int


def doubler() -> Any:
    b = StateGraph(Num)
    b.add_node("double", lambda s: {"x": 2 * s["x"]} if s["x"] else 1 / s["x"])
    b.add_edge(START, "double")
    return b.compile()


# test_pregel.py::test_batch_two_processes_in_out (restated on a StateGraph)
def test_batch_runs_every_input_in_order() -> None:
    graph = doubler()
    assert graph.batch([{"x": 1}, {"x": 2}, {"x": 3}]) == [{"x": 2}, {"x": 4}, {"x": 6}]
    out = graph.batch([{"x": 0}, {"x": 5}], return_exceptions=True)
    assert isinstance(out[0], ZeroDivisionError) and out[1] == {"x": 10}
    with pytest.raises(ZeroDivisionError):
        graph.batch([{"x": 5}, {"x": 0}])


async def test_abatch_takes_one_config_per_input() -> None:
    b = StateGraph(Num)
    b.add_node("double", lambda s: {"x": 2 * s["x"]})
    b.add_edge(START, "double")
    graph = b.compile(checkpointer=InMemorySaver())
    assert await graph.abatch([{"x": 1}, {"x": 2}], [cfg("a"), cfg("b")]) == [{"x": 2}, {"x": 4}]
    assert (await graph.aget_state(cfg("b"))).values == {"x": 4}
    with pytest.raises(ValueError, match="2 inputs but 3 configs"):
        await graph.abatch([{"x": 1}, {"x": 2}], [cfg("a"), cfg("b"), cfg("c")])


@dataclass
class Ctx:
    user: str


def test_get_runtime_takes_the_context_schema() -> None:
    class S(TypedDict):
        x: str

    def first(state: S, runtime: Runtime[Ctx]) -> dict[str, Any]:
        return {"x": runtime.context.user}

    def second(state: S) -> dict[str, Any]:
        return {"x": state["x"] + "+" + get_runtime(Ctx).context.user}

    b = StateGraph(S, context_schema=Ctx)
    b.add_node("first", first)
    b.add_node("second", second)
    b.add_edge(START, "first")
    b.add_edge("first", "second")
    graph = b.compile()
    assert graph.invoke({"x": ""}, context=Ctx(user="bob")) == {"x": "bob+bob"}
    assert graph.invoke({"x": ""}, context={"user": "al"}) == {"x": "al+al"}


class Hello(TypedDict):
    hello: str


def one_argument(a: Any) -> Any:
    return a


class BadReducer(TypedDict):
    hello: Annotated[str, one_argument]


# test_pregel.py::test_graph_validation
def test_build_and_update_errors_use_langgraphs_wording() -> None:
    b = StateGraph(Hello)
    b.add_node("start", lambda s: s)
    b.add_edge(START, "start")
    b.add_edge("unknown", "start")
    with pytest.raises(ValueError, match="Found edge starting at unknown node "):
        b.compile()
    b = StateGraph(Hello)
    b.add_node("start", lambda s: s)
    b.add_edge(START, "start")
    b.add_edge("start", "nowhere")
    with pytest.raises(ValueError, match="Found edge ending at unknown node "):
        b.compile()

    with pytest.raises(ValueError, match="Invalid reducer"):
        StateGraph(BadReducer)

    b = StateGraph(Hello)
    for name in "abc":
        b.add_node(name, lambda s: {"hello": "world"})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    b.add_edge("a", "c")
    with pytest.raises(InvalidUpdateError, match="At key 'hello'"):
        b.compile().invoke({"hello": "there"})
    with pytest.raises(ValueError, match="Graph must have an entrypoint"):
        StateGraph(Hello).add_node("a", lambda s: s).compile()


# test_pregel_async.py::test_checkpoint_metadata (read through the checkpointer itself)
async def test_the_checkpointer_reads_as_langgraphs_do(saver: Any) -> None:
    graph = searching_agent(saver, interrupt_before=["tools"])
    await graph.ainvoke({"messages": ["what is the weather"]}, cfg("r", a="foo"))
    head = await saver.aget_tuple(cfg("r"))
    assert head is not None and head.metadata["a"] == "foo"
    snap = await graph.aget_state(cfg("r"))
    assert head.config == snap.config and head.parent_config == snap.parent_config
    assert head.checkpoint["id"] == snap.config["configurable"]["checkpoint_id"]
    assert shapes(head.checkpoint["channel_values"]["messages"]) == shapes(snap.values["messages"])
    listed = [t async for t in saver.alist(cfg("r"))]
    history = [s async for s in graph.aget_state_history(cfg("r"))]
    assert [t.config for t in listed] == [s.config for s in history]
    assert [t.metadata["step"] for t in listed] == [1, 0, -1]
    assert [t.metadata["step"] async for t in saver.alist(cfg("r"), limit=1)] == [1]
    older = [t async for t in saver.alist(cfg("r"), before=listed[0].config)]
    assert [t.metadata["step"] for t in older] == [0, -1]
    assert [t.metadata["step"] async for t in saver.alist(cfg("r"), filter={"step": 0})] == [0]
    assert (await saver.aget(listed[1].config))["id"] == listed[1].checkpoint["id"]
    assert await saver.aget_tuple(cfg("nothing here")) is None


def test_the_checkpointer_reads_through_the_sync_api() -> None:
    saver = InMemorySaver()
    graph = doubler().with_checkpointer(saver)
    graph.invoke({"x": 2}, cfg("s"))
    assert saver.get(cfg("s"))["channel_values"] == {"x": 4}
    assert [t.metadata["step"] for t in saver.list(cfg("s"))] == [1, 0, -1]
    assert saver.get_tuple(cfg("s")).pending_writes == []


# test_runtime.py::test_override_runtime, ::test_merge_runtime
def test_a_runtime_is_built_overridden_and_merged_as_langgraphs() -> None:
    first = Runtime(context=Ctx(user="abc"))
    assert (first.store, first.previous) == (None, None)
    assert first.override(context=Ctx(user="def")).context == Ctx(user="def")
    assert first.context == Ctx(user="abc")  # unchanged: a copy was made
    assert first.merge(Runtime(context=Ctx(user="def"))).context == Ctx(user="def")
    assert first.merge(Runtime(context=None)).context == Ctx(user="abc")  # unset: kept


# test_pregel_async.py::test_remove_message_via_state_update (deleting the thread)
async def test_adelete_thread_forgets_the_thread(saver: Any) -> None:
    graph = doubler().with_checkpointer(saver)
    await graph.ainvoke({"x": 1}, cfg("gone"))
    await saver.adelete_thread("gone")
    assert await saver.aget_tuple(cfg("gone")) is None
    assert [s async for s in graph.aget_state_history(cfg("gone"))] == []


# test_pregel.py::test_invalid_checkpointer_type
def test_a_checkpointer_that_is_not_a_saver_is_a_type_error() -> None:
    class NotASaver:
        pass

    with pytest.raises(TypeError, match="Invalid checkpointer provided"):
        doubler().builder.compile(checkpointer=NotASaver())  # type: ignore[arg-type]
