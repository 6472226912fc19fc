"""`ToolRuntime` (`hitl_async.prebuilt`): a tool's `runtime: ToolRuntime` parameter is hidden
from the model and filled by the ToolNode running it, in a graph, in `create_react_agent` and
called directly. The same cases as LangGraph's are compared in `test_tool_node.py`'s golden
file; these add the agent, the stream writer and the sync path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel
from test_agents import call, model

from hitl_async import InMemorySaver
from hitl_async.graph import START, MessagesState, StateGraph
from hitl_async.prebuilt import (
    InjectedState,
    InjectedStore,
    ToolNode,
    ToolRuntime,
    create_react_agent,
)
from hitl_async.prebuilt import tool_node as tool_node_module
from hitl_async.store.memory import InMemoryStore


@dataclass
class Ctx:
    user: str


@tool
def whoami(greeting: str, runtime: ToolRuntime[Ctx, dict[str, Any]]) -> str:
    """Greets the user of the run, counting the messages so far."""
    runtime.stream_writer({"tool": "whoami", "call": runtime.tool_call_id})
    runtime.store.put(("greeted",), runtime.context.user, {"by": runtime.tool_call_id})
    return f"{greeting} {runtime.context.user}, {len(runtime.state['messages'])} messages"


def test_the_model_never_sees_the_runtime_parameter() -> None:
    parameters = convert_to_openai_tool(whoami)["function"]["parameters"]
    assert list(parameters["properties"]) == ["greeting"]
    assert parameters["required"] == ["greeting"]
    assert tool_node_module.ToolRuntime is ToolRuntime


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_create_react_agent_fills_the_runtime(version: str) -> None:
    store = InMemoryStore()
    m = model(
        AIMessage("", id="a1", tool_calls=[call("whoami", {"greeting": "hi"}, "c1")]),
        AIMessage("done", id="a2"),
    )
    agent = create_react_agent(
        m,
        [whoami],
        context_schema=Ctx,
        store=store,
        checkpointer=InMemorySaver(),
        version=version,  # type: ignore[arg-type]
    )
    chunks = list(
        agent.stream(
            {"messages": [("user", "hello")]},
            {"configurable": {"thread_id": version}},
            context=Ctx("ann"),
            stream_mode=["custom", "values"],
        )
    )
    assert [c for mode, c in chunks if mode == "custom"] == [{"tool": "whoami", "call": "c1"}]
    final = [c for mode, c in chunks if mode == "values"][-1]
    answer = [x for x in final["messages"] if isinstance(x, ToolMessage)]
    assert [x.content for x in answer] == ["hi ann, 2 messages"]
    item = store.get(("greeted",), "ann")
    assert item is not None and item.value == {"by": "c1"}


@pytest.mark.anyio
async def test_async_graph_streams_what_the_tool_writes() -> None:
    builder = StateGraph(MessagesState, context_schema=Ctx)
    builder.add_node("tools", ToolNode([whoami]))
    builder.add_edge(START, "tools")
    graph = builder.compile(store=InMemoryStore())
    calls = [call("whoami", {"greeting": "yo"}, "a"), call("whoami", {"greeting": "hey"}, "b")]
    chunks = [
        c
        async for c in graph.astream(
            {"messages": [AIMessage("", tool_calls=calls)]},
            context=Ctx("bo"),
            stream_mode=["custom", "values"],
        )
    ]
    custom = sorted(c["call"] for mode, c in chunks if mode == "custom")
    assert custom == ["a", "b"]
    final = [c for mode, c in chunks if mode == "values"][-1]
    assert [x.content for x in final["messages"][1:]] == ["yo bo, 1 messages", "hey bo, 1 messages"]


def test_outside_a_graph_the_runtime_has_the_input_and_no_context_or_store() -> None:
    seen: list[ToolRuntime[Any, Any]] = []

    @tool
    def look(x: int, runtime: ToolRuntime) -> str:
        """Records its runtime."""
        seen.append(runtime)
        runtime.stream_writer("goes nowhere")
        return str(x)

    state = {"messages": [AIMessage("", tool_calls=[call("look", {"x": 3}, "k")])]}
    out = ToolNode([look]).invoke(state, {"tags": ["mine"]})
    assert [x.content for x in out["messages"]] == ["3"]
    (runtime,) = seen
    assert runtime.state is state and runtime.tool_call_id == "k"
    assert runtime.context is None and runtime.store is None
    assert runtime.config == {"tags": ["mine"]} and [t.name for t in runtime.tools] == ["look"]


def _all_kinds_graph(tool: Any) -> Any:
    """A graph whose state has `foo` and `bar`, running `tool` in a ToolNode with a store."""

    class Extra(MessagesState):
        foo: str
        bar: int

    builder = StateGraph(Extra, context_schema=Ctx)
    builder.add_node("tools", ToolNode([tool], handle_tool_errors=True))
    builder.add_edge(START, "tools")
    store = InMemoryStore()
    store.put(("test",), "k", {"data": "from store"})
    return builder.compile(store=store)


def _comprehensive(
    x: int,
    whole: Annotated[dict[str, Any], InjectedState],
    foo: Annotated[str, InjectedState("foo")],
    store: Annotated[Any, InjectedStore()],
    runtime: ToolRuntime,
) -> str:
    """Uses every injection."""
    item = store.get(("test",), "k")
    return (
        f"x={x} bar={whole['bar']} foo={foo} store={item.value['data']} "
        f"runtime_foo={runtime.state['foo']} call={runtime.tool_call_id}"
    )


class _Schema(BaseModel):
    model_config = {"arbitrary_types_allowed": True}
    x: int
    whole: Annotated[dict[str, Any], InjectedState]
    foo: Annotated[str, InjectedState("foo")]
    store: Annotated[Any, InjectedStore()]
    runtime: ToolRuntime


@pytest.mark.parametrize(
    "make",
    [
        lambda: _comprehensive,
        lambda: tool(_comprehensive),
        lambda: tool(args_schema=_Schema)(_comprehensive),
    ],
    ids=["plain function", "@tool", "explicit args_schema"],
)
def test_runtime_beside_the_other_injections(make: Any) -> None:
    """LangGraph's test_tool_node_inject_async_all_types_* restated."""
    made = make()
    graph = _all_kinds_graph(made)
    calls = [{"name": "_comprehensive", "args": {"x": 42}, "id": "c9", "type": "tool_call"}]
    out = graph.invoke({"messages": [AIMessage("", tool_calls=calls)], "foo": "F", "bar": 99})
    assert out["messages"][-1].content == (
        "x=42 bar=99 foo=F store=from store runtime_foo=F call=c9"
    )
    if isinstance(made, BaseTool):
        assert list(made.tool_call_schema.model_json_schema()["properties"]) == ["x"]


def test_a_generic_runtime_under_another_name() -> None:
    """LangGraph's test_tool_node_tool_runtime_generic restated."""

    @tool
    def get_info(rt: ToolRuntime[Ctx]) -> str:
        """Returns the user of the run's context."""
        return rt.context.user

    builder = StateGraph(MessagesState, context_schema=Ctx)
    builder.add_node("tools", ToolNode([get_info]))
    builder.add_edge(START, "tools")
    calls = [{"name": "get_info", "args": {}, "id": "c1"}]
    out = builder.compile().invoke(
        {"messages": [AIMessage("", tool_calls=calls)]}, context=Ctx("test_info")
    )
    assert out["messages"][-1].content == "test_info"
    assert get_info.tool_call_schema.model_json_schema()["properties"] == {}


@pytest.mark.anyio
async def test_a_reviewed_tool_still_gets_its_runtime_and_state(saver: Any) -> None:
    """`human_review` shows the reviewer the model's arguments only, and passes the injected
    ones (runtime, state) through to the tool it runs."""
    from hitl_async import Command
    from hitl_async.prebuilt import AgentState, human_review

    @tool
    def note(text: str, runtime: ToolRuntime, count: Annotated[int, InjectedState("n")]) -> str:
        """Notes a text."""
        return f"{text} by {runtime.context.user} ({count}, {runtime.tool_call_id})"

    reviewed = human_review(note)
    assert list(reviewed.tool_call_schema.model_json_schema()["properties"]) == ["text"]

    class Counted(AgentState):
        n: int

    m = model(
        AIMessage("", id="a1", tool_calls=[call("note", {"text": "hi"}, "c7")]),
        AIMessage("done", id="a2"),
    )
    agent = create_react_agent(
        m, [reviewed], state_schema=Counted, context_schema=Ctx, checkpointer=saver
    )
    cfg = {"configurable": {"thread_id": "reviewed"}}
    paused = await agent.ainvoke({"messages": [("user", "x")], "n": 3}, cfg, context=Ctx("liv"))
    assert paused["__interrupt__"][0].value["action_requests"][0]["args"] == {"text": "hi"}
    out = await agent.ainvoke(
        Command(resume={"decisions": [{"type": "approve"}]}), cfg, context=Ctx("liv")
    )
    answers = [x.content for x in out["messages"] if isinstance(x, ToolMessage)]
    assert answers == ["hi by liv (3, c7)"]
