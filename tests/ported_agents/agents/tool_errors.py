"""Ported agent 11: what a tool loop shows when tools misbehave, and tools that update state.
`ToolNode` with a failing tool, an unknown tool name, invalid arguments (default error handling,
a custom message, and errors raised), a tool returning `Command(update=...)`, one reading the
store through `InjectedStore` and one the state through `InjectedState`."""

from typing import Annotated

from langchain_core.messages import ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import InjectedState, InjectedStore, ToolNode, tools_condition
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command
from ported_support import ScriptedChatModel, ai
from typing_extensions import TypedDict


class State(TypedDict):
    messages: Annotated[list, add_messages]
    user_name: str


@tool
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


@tool
def set_name(name: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
    """Remember the user's name."""
    done = ToolMessage(f"Name set to {name}", tool_call_id=tool_call_id)
    return Command(update={"user_name": name, "messages": [done]})


@tool
def greet(state: Annotated[dict, InjectedState]) -> str:
    """Greet the user by name."""
    return f"Hello {state.get('user_name', 'stranger')}"


@tool
def recall(topic: str, store: Annotated[object, InjectedStore()]) -> str:
    """Recall a stored fact."""
    item = store.get(("facts",), topic)
    return item.value["text"] if item else "nothing"


def build(model, handle_tool_errors):
    def agent(state: State):
        return {"messages": [model.invoke(state["messages"])]}

    tools = ToolNode([divide, set_name, greet, recall], handle_tool_errors=handle_tool_errors)
    builder = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    store = InMemoryStore()
    store.put(("facts",), "sky", {"text": "The sky is blue."})
    return builder.compile(checkpointer=InMemorySaver(), store=store)


def script():
    return ScriptedChatModel(
        messages=iter(
            [
                ai(
                    "",
                    ("divide", {"a": 1, "b": 0}, "c1"),
                    ("nope", {}, "c2"),
                    ("divide", {"a": "x"}, "c3"),
                ),
                ai("", ("set_name", {"name": "Ada"}, "c4"), ("recall", {"topic": "sky"}, "c5")),
                ai("", ("greet", {}, "c6")),
                ai("Done."),
            ]
        )
    )


def main(rec):
    graph = build(script(), True)
    cfg = {"configurable": {"thread_id": "default"}}
    rec.stream("default.updates", graph.stream({"messages": [("user", "go")]}, cfg), unordered=True)
    rec.add("default.state", graph.get_state(cfg))

    graph = build(script(), "Tool failed, try again.")
    cfg = {"configurable": {"thread_id": "custom"}}
    rec.add("custom.invoke", graph.invoke({"messages": [("user", "go")]}, cfg))

    graph = build(script(), False)
    cfg = {"configurable": {"thread_id": "raise"}}
    try:
        graph.invoke({"messages": [("user", "go")]}, cfg)
    except Exception as exc:
        rec.error("raise.error", exc)
    rec.add("raise.state", graph.get_state(cfg))
