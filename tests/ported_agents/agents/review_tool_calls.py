"""Ported agent 2: a hand-built tool loop (`MessagesState`, `ToolNode`, `tools_condition`) with
a human review of every tool call through `interrupt()` in a node; the reviewer accepts, edits
the arguments, or rejects with feedback, each through `Command(resume=...)` (the "review tool
calls" how-to)."""

from typing import Literal

from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt
from ported_support import ScriptedChatModel, ai


@tool
def weather_search(city: str) -> str:
    """Search the weather of a city."""
    return f"Sunny in {city}!"


def build(model):
    def call_llm(state: MessagesState):
        return {"messages": [model.invoke(state["messages"])]}

    def human_review_node(state: MessagesState) -> Command[Literal["call_llm", "run_tool"]]:
        last = state["messages"][-1]
        tool_call = last.tool_calls[-1]
        review = interrupt({"question": "Is this correct?", "tool_call": tool_call})
        action, data = review["action"], review.get("data")
        if action == "continue":
            return Command(goto="run_tool")
        if action == "update":
            edited = {
                "role": "ai",
                "content": last.content,
                "tool_calls": [{"id": tool_call["id"], "name": tool_call["name"], "args": data}],
                "id": last.id,
            }
            return Command(goto="run_tool", update={"messages": [edited]})
        feedback = {
            "role": "tool",
            "content": data,
            "name": tool_call["name"],
            "tool_call_id": tool_call["id"],
        }
        return Command(goto="call_llm", update={"messages": [feedback]})

    builder = StateGraph(MessagesState)
    builder.add_node(call_llm)
    builder.add_node("run_tool", ToolNode([weather_search]))
    builder.add_node(human_review_node)
    builder.add_edge(START, "call_llm")
    builder.add_conditional_edges(
        "call_llm", tools_condition, {"tools": "human_review_node", END: END}
    )
    builder.add_edge("run_tool", "call_llm")
    return builder.compile(checkpointer=InMemorySaver())


def main(rec):
    model = ScriptedChatModel(
        messages=iter(
            [
                ai("Hi there!"),
                ai("", ("weather_search", {"city": "San Francisco"}, "call_sf")),
                ai("It is sunny in San Francisco."),
                ai("", ("weather_search", {"city": "San Francisco"}, "call_sf2")),
                ai("Sunny in San Francisco, USA."),
                ai("", ("weather_search", {"city": "Londn"}, "call_uk")),
                ai("", ("weather_search", {"city": "London, UK"}, "call_uk2")),
                ai("It is sunny in London."),
            ]
        )
    )
    graph = build(model)
    rec.add("mermaid", graph.get_graph().draw_mermaid())

    cfg = {"configurable": {"thread_id": "no-tools"}}
    rec.stream(
        "plain.updates",
        graph.stream(
            {"messages": [{"role": "user", "content": "hi!"}]}, cfg, stream_mode="updates"
        ),
    )

    cfg = {"configurable": {"thread_id": "accept"}}
    rec.stream(
        "accept.updates",
        graph.stream({"messages": [("user", "weather in SF?")]}, cfg, stream_mode="updates"),
    )
    rec.add("accept.paused", graph.get_state(cfg))
    rec.stream(
        "accept.resume",
        graph.stream(Command(resume={"action": "continue"}), cfg, stream_mode="updates"),
    )
    rec.add("accept.done", graph.get_state(cfg))

    cfg = {"configurable": {"thread_id": "edit"}}
    rec.stream(
        "edit.values",
        graph.stream({"messages": [("user", "weather in SF?")]}, cfg, stream_mode="values"),
    )
    rec.stream(
        "edit.resume",
        graph.stream(
            Command(resume={"action": "update", "data": {"city": "San Francisco, USA"}}),
            cfg,
            stream_mode="values",
        ),
    )

    cfg = {"configurable": {"thread_id": "feedback"}}
    rec.add("feedback.invoke", graph.invoke({"messages": [("user", "weather in London?")]}, cfg))
    rec.stream(
        "feedback.resume",
        graph.stream(
            Command(resume={"action": "feedback", "data": "Use the format 'City, Country'."}),
            cfg,
            stream_mode=["updates", "messages"],
        ),
    )
    rec.add("feedback.paused", graph.get_state(cfg))
    rec.add("feedback.final", graph.invoke(Command(resume={"action": "continue"}), cfg))
    rec.add(
        "feedback.history",
        [[list(s.next), s.metadata["step"]] for s in graph.get_state_history(cfg)],
    )
