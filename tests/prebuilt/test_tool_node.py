"""`hitl_async.prebuilt.ToolNode` and `tools_condition`: the same results as LangGraph 1.2.22's
on the same inputs (golden file), and LangGraph's test_tool_node cases restated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from tool_node_cases import run_all

from hitl_async import Command, InMemorySaver, interrupt
from hitl_async.graph import END, START, MessagesState, StateGraph, add_messages
from hitl_async.prebuilt import InjectedState, InjectedStore, ToolNode, ToolRuntime, tools_condition
from hitl_async.store.memory import InMemoryStore

GOLDEN = Path(__file__).parent / "golden" / "tool_node.json"
NAMES = dict(
    StateGraph=StateGraph,
    START=START,
    ToolNode=ToolNode,
    Command=Command,
    InjectedState=InjectedState,
    add_messages=add_messages,
    ToolRuntime=ToolRuntime,
    InMemoryStore=InMemoryStore,
)


def test_same_results_as_langgraph_on_the_same_inputs() -> None:
    golden = json.loads(GOLDEN.read_text())["results"]
    ours = run_all(NAMES)
    assert set(ours) == set(golden)
    for name, expected in golden.items():
        assert ours[name] == expected, name


@tool
def echo(text: str) -> str:
    """Echo."""
    return f"echo: {text}"


def ai(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    return AIMessage(
        "", tool_calls=[{"name": n, "args": a, "id": f"c{i}"} for i, (n, a) in enumerate(calls)]
    )


def test_inputs_a_list_of_messages_or_of_tool_calls() -> None:
    node = ToolNode([echo])
    out = node.invoke([HumanMessage("hi"), ai(("echo", {"text": "a"}))])
    assert isinstance(out, list) and [m.content for m in out] == ["echo: a"]
    calls = [{"name": "echo", "args": {"text": "b"}, "id": "x", "type": "tool_call"}]
    assert node.invoke(calls)["messages"] == [
        ToolMessage(content="echo: b", tool_call_id="x", name="echo")
    ]
    with pytest.raises(ValueError, match="No AIMessage found in input"):
        node.invoke({"messages": [HumanMessage("hi")]})
    with pytest.raises(ValueError, match="No message found in input"):
        node.invoke({"messages": []})


@pytest.mark.anyio
async def test_async_calls_run_concurrently_and_keep_order() -> None:
    import anyio

    started: list[str] = []

    @tool
    async def slow(name: str, delay: float) -> str:
        """Waits, then answers."""
        started.append(name)
        await anyio.sleep(delay)
        return name

    node = ToolNode([slow])
    with anyio.fail_after(0.9):  # one after another would take 1.2 s
        out = await node.ainvoke(
            {"messages": [ai(*[("slow", {"name": n, "delay": 0.4}) for n in "abc"])]}
        )
    assert [m.content for m in out["messages"]] == ["a", "b", "c"]


def test_messages_key_and_tools_condition() -> None:
    node = ToolNode([echo], messages_key="chat")
    out = node.invoke({"chat": [ai(("echo", {"text": "k"}))]})
    assert out["chat"][0].content == "echo: k"
    assert tools_condition({"messages": [ai(("echo", {"text": "k"}))]}) == "tools"
    assert tools_condition([AIMessage("done")]) == END
    assert tools_condition({"chat": [ai(("echo", {}))]}, messages_key="chat") == "tools"
    with pytest.raises(ValueError, match="No messages found in input state to tool_edge"):
        tools_condition({"messages": []})


def test_an_interrupt_inside_a_tool_pauses_the_graph_and_resumes_it() -> None:
    @tool
    def transfer(amount: int) -> str:
        """Moves money after asking."""
        answer = interrupt({"confirm": amount})
        return f"transferred {amount}" if answer == "yes" else "cancelled"

    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode([transfer]))
    builder.add_edge(START, "tools")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "tn-interrupt"}}
    paused = graph.invoke({"messages": [ai(("transfer", {"amount": 7}))]}, config)
    assert paused["__interrupt__"][0].value == {"confirm": 7}
    done = graph.invoke(Command(resume="yes"), config)
    assert done["messages"][-1].content == "transferred 7"


def test_injected_store_and_a_missing_store() -> None:
    class Store:
        pass

    @tool
    def remember(key: str, store: Annotated[Any, InjectedStore()]) -> str:
        """Uses the graph's store."""
        return f"{key} in {type(store).__name__}"

    def graph(store: Any) -> Any:
        builder = StateGraph(MessagesState)
        builder.add_node("tools", ToolNode([remember], handle_tool_errors=False))
        builder.add_edge(START, "tools")
        return builder.compile(store=store)

    out = graph(Store()).invoke({"messages": [ai(("remember", {"key": "k"}))]})
    assert out["messages"][-1].content == "k in Store"
    with pytest.raises(ValueError, match="compile your graph with a store"):
        graph(None).invoke({"messages": [ai(("remember", {"key": "k"}))]})
    assert "store" not in remember.tool_call_schema.model_fields  # hidden from the model


def test_injected_state_is_hidden_from_the_model_and_overrides_model_values() -> None:
    @tool
    def peek(q: str, state: Annotated[dict[str, Any], InjectedState]) -> str:
        """Reads the state."""
        return f"{q}:{len(state['messages'])}"

    assert set(peek.tool_call_schema.model_fields) == {"q"}
    node = ToolNode([peek])
    out = node.invoke({"messages": [ai(("peek", {"q": "n", "state": {"messages": []}}))]})
    assert out["messages"][0].content == "n:1"
