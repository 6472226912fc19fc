"""`ToolRuntime` (`hitl_async.prebuilt`): a tool's `runtime: ToolRuntime` parameter is hidden
from the model and filled by the ToolNode running it, in a graph, in `create_react_agent` and
called directly. The same cases as LangGraph's are compared in `test_tool_node.py`'s golden
file; these add the agent, the stream writer and the sync path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from test_agents import call, model

from hitl_async import InMemorySaver
from hitl_async.graph import START, MessagesState, StateGraph
from hitl_async.prebuilt import ToolNode, ToolRuntime, create_react_agent
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
