"""Ported agent 8: static breakpoints (`interrupt_before=["tools"]`) on a hand-built tool loop,
with the state edited while paused (the "edit graph state" how-to): approve as is, edit the
tool call's arguments (same message id replaces it), replace the call with a plain answer (the
routing after the model changes), then `update_state(as_node=...)` to act as the tool."""

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from ported_support import ScriptedChatModel, ai


@tool
def search(query: str) -> str:
    """Search the web."""
    return f"Results for {query}"


def build(model):
    def agent(state: MessagesState):
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([search]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=InMemorySaver(), interrupt_before=["tools"])


def history(graph, cfg):
    return [
        [list(s.next), s.metadata["step"], s.metadata["source"]]
        for s in graph.get_state_history(cfg)
    ]


def main(rec):
    model = ScriptedChatModel(
        messages=iter(
            [
                ai("", ("search", {"query": "weather sf"}, "call_1")),
                ai("It is sunny."),
                ai("", ("search", {"query": "wether"}, "call_2")),
                ai("Found the weather."),
                ai("", ("search", {"query": "news"}, "call_3")),
                ai("", ("search", {"query": "stocks"}, "call_4")),
                ai("Stocks are up."),
            ]
        )
    )
    graph = build(model)
    rec.add("mermaid", graph.get_graph().draw_mermaid())

    cfg = {"configurable": {"thread_id": "approve"}}
    rec.stream(
        "approve.values",
        graph.stream({"messages": [("user", "weather?")]}, cfg, stream_mode="values"),
    )
    rec.add("approve.paused", graph.get_state(cfg))
    rec.stream("approve.continue", graph.stream(None, cfg, stream_mode="updates"))
    rec.add("approve.history", history(graph, cfg))

    cfg = {"configurable": {"thread_id": "edit"}}
    rec.add("edit.invoke", graph.invoke({"messages": [("user", "weather?")]}, cfg))
    last = graph.get_state(cfg).values["messages"][-1]
    call = {**last.tool_calls[0], "args": {"query": "weather"}}
    rec.add(
        "edit.config",
        graph.update_state(cfg, {"messages": [AIMessage("", id=last.id, tool_calls=[call])]}),
    )
    rec.add("edit.state", graph.get_state(cfg))
    rec.stream("edit.continue", graph.stream(None, cfg, stream_mode="updates"))
    rec.add("edit.history", history(graph, cfg))

    cfg = {"configurable": {"thread_id": "answer"}}
    rec.add("answer.invoke", graph.invoke({"messages": [("user", "news?")]}, cfg))
    last = graph.get_state(cfg).values["messages"][-1]
    graph.update_state(cfg, {"messages": [AIMessage("No search needed: all quiet.", id=last.id)]})
    rec.add("answer.state", graph.get_state(cfg))
    rec.add("answer.continue", graph.invoke(None, cfg))

    cfg = {"configurable": {"thread_id": "as-tool"}}
    rec.add("as-tool.invoke", graph.invoke({"messages": [("user", "stocks?")]}, cfg))
    last = graph.get_state(cfg).values["messages"][-1]
    reply = ToolMessage("Stocks: up 2%", tool_call_id=last.tool_calls[0]["id"], name="search")
    graph.update_state(cfg, {"messages": [reply]}, as_node="tools")
    rec.add("as-tool.state", graph.get_state(cfg))
    rec.stream("as-tool.continue", graph.stream(None, cfg, stream_mode="values"))
    rec.add("as-tool.history", history(graph, cfg))
