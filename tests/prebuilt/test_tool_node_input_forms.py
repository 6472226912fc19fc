"""What a `ToolNode` injects (`InjectedState`, `InjectedStore`, `ToolRuntime`) for each form of
input LangGraph 1.2.22's accepts: a list of messages ending with an AI message, a state dict,
a bare list of `ToolCall` dicts (`type: "tool_call"`) and the `tool_call_with_context` payload.
Observed on LangGraph's ToolNode with the same tools and inputs (a direct call given a runtime
under the config key `__pregel_runtime`, as LangGraph's own prebuilt tests do, and a graph
that `Send`s bare tool-call lists to the node); restated here."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.tools import tool

from hitl_async.graph import START, MessagesState, StateGraph
from hitl_async.prebuilt import InjectedState, InjectedStore, ToolNode, ToolRuntime
from hitl_async.runtime import Runtime
from hitl_async.store.memory import InMemoryStore
from hitl_async.types import Send


def shown(value: Any) -> Any:
    """Messages as their text, containers kept: what the tools below answer with."""
    if isinstance(value, dict):
        return {k: shown(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return getattr(value, "content", value)


@tool
def whole(x: int, state: Annotated[dict[str, Any], InjectedState]) -> str:
    """Answers with the whole state it was given."""
    return repr(shown(state))


@tool
def chat(x: int, messages: Annotated[list[AnyMessage], InjectedState("messages")]) -> str:
    """Answers with the messages it was given."""
    return repr(shown(messages))


@tool
def foo(x: int, foo: Annotated[str, InjectedState("foo")]) -> str:
    """Answers with the state's `foo`."""
    return repr(foo)


@tool
def maybe_foo(x: int, foo: Annotated[str | None, InjectedState("foo")] = None) -> str:
    """Answers with the state's `foo`, None when the state has none."""
    return repr(foo)


@tool
def stored(x: int, store: Annotated[Any, InjectedStore()]) -> str:
    """Answers with what the store holds."""
    return store.get(("k",), "v").value["is"]


@tool
def runtime_of(x: int, runtime: ToolRuntime) -> str:
    """Answers with its runtime's state, store item, call id and context."""
    item = runtime.store.get(("k",), "v").value["is"] if runtime.store else None
    return repr((shown(runtime.state), item, runtime.tool_call_id, runtime.context))


TOOLS = [whole, chat, foo, maybe_foo, stored, runtime_of]
MESSAGES = [HumanMessage("hi", id="h")]


def call(name: str) -> dict[str, Any]:
    return {"name": name, "args": {"x": 1}, "id": "c1", "type": "tool_call"}


def forms(name: str) -> dict[str, Any]:
    """The four inputs, each carrying one call of tool `name`."""
    ai = AIMessage("", tool_calls=[call(name)])
    return {
        "messages": [*MESSAGES, ai],
        "state": {"messages": [*MESSAGES, ai], "foo": "F"},
        "tool calls": [call(name)],
        "with context": {
            "__type": "tool_call_with_context",
            "tool_call": call(name),
            "state": {"messages": [], "foo": "CTX"},
        },
    }


def given_runtime() -> dict[str, Any]:
    store = InMemoryStore()
    store.put(("k",), "v", {"is": "from the store"})
    return {"configurable": {"__pregel_runtime": Runtime(store=store, context={"u": 1})}}


ERROR_FOR_A_LIST = (
    "Invalid input to ToolNode. Tool {} requires graph state dict as input. "
    "State should contain fields foo."
)
LISTED = ["hi", ""]  # the list form's messages: the human's and the AI's
FOUND = {
    ("whole", "messages"): {"messages": LISTED},
    ("whole", "state"): {"foo": "F", "messages": LISTED},
    ("whole", "tool calls"): {},
    ("whole", "with context"): {"foo": "CTX", "messages": []},
    ("chat", "messages"): LISTED,
    ("chat", "state"): LISTED,
    ("chat", "tool calls"): KeyError("messages"),
    ("chat", "with context"): [],
    ("foo", "messages"): ValueError(ERROR_FOR_A_LIST.format("foo")),
    ("foo", "state"): "F",
    ("foo", "tool calls"): KeyError("foo"),
    ("foo", "with context"): "CTX",
    ("maybe_foo", "messages"): ValueError(ERROR_FOR_A_LIST.format("maybe_foo")),
    ("maybe_foo", "state"): "F",
    ("maybe_foo", "tool calls"): None,
    ("maybe_foo", "with context"): "CTX",
}
"""Outside a graph: what each state-injected tool is given, or the error LangGraph raises."""


@pytest.mark.anyio
@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
@pytest.mark.parametrize("form", ["messages", "state", "tool calls", "with context"])
@pytest.mark.parametrize("name", ["whole", "chat", "foo", "maybe_foo"])
async def test_injected_state_outside_a_graph(name: str, form: str, use_async: bool) -> None:
    node = ToolNode(TOOLS, handle_tool_errors=False)
    given, config = forms(name)[form], given_runtime()

    async def run() -> Any:
        return await node.ainvoke(given, config) if use_async else node.invoke(given, config)

    expected = FOUND[(name, form)]
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)) as caught:
            await run()
        assert str(caught.value) == str(expected)
        return
    out = await run()
    (message,) = out if isinstance(out, list) else out["messages"]
    assert message.content == repr(expected)


@pytest.mark.parametrize("form", ["messages", "state", "tool calls", "with context"])
def test_store_and_runtime_outside_a_graph(form: str) -> None:
    """The store and context come from the given runtime in every form; the runtime's state
    is the input itself (a list stays a list), {} for bare tool calls."""
    node = ToolNode(TOOLS)
    out = node.invoke(forms("stored")[form], given_runtime())
    (message,) = out if isinstance(out, list) else out["messages"]
    assert message.content == "from the store"
    out = node.invoke(forms("runtime_of")[form], given_runtime())
    (message,) = out if isinstance(out, list) else out["messages"]
    state = {
        "messages": LISTED,
        "state": {"foo": "F", "messages": LISTED},
        "tool calls": {},
        "with context": {"foo": "CTX", "messages": []},
    }[form]
    assert message.content == repr((state, "from the store", "c1", {"u": 1}))


class WithFoo(MessagesState):
    foo: str


@pytest.mark.anyio
@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
async def test_bare_tool_calls_sent_in_a_graph_see_the_graphs_state(use_async: bool) -> None:
    """A node `Send`s each tool call alone (a bare list) to the ToolNode: LangGraph's tools
    then see the graph's state as the step began, not {}."""
    names = ["whole", "chat", "foo", "maybe_foo", "stored", "runtime_of"]

    def agent(state: WithFoo) -> dict[str, Any]:
        calls = [{**call(n), "id": f"c{i}"} for i, n in enumerate(names)]
        return {"messages": [AIMessage("", id="a", tool_calls=calls)], "foo": "G"}

    def fan_out(state: WithFoo) -> list[Send]:
        return [Send("tools", [c]) for c in state["messages"][-1].tool_calls]

    builder = StateGraph(WithFoo)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(TOOLS))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", fan_out, ["tools"])
    store = InMemoryStore()
    store.put(("k",), "v", {"is": "from the store"})
    graph = builder.compile(store=store)
    given = {"messages": MESSAGES, "foo": "start"}
    final = await graph.ainvoke(given) if use_async else graph.invoke(given)
    state = {"foo": "G", "messages": ["hi", ""]}
    assert {m.name: m.content for m in final["messages"][2:]} == {
        "whole": repr(state),
        "chat": repr(["hi", ""]),
        "foo": repr("G"),
        "maybe_foo": repr("G"),
        "stored": "from the store",
        "runtime_of": repr((state, "from the store", "c5", None)),
    }
