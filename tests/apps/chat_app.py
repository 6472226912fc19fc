"""A graph holding langchain-core messages, for the CLI tests (`apps.chat_app:graph`)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage

from hitl_async.graph import START, MessagesState, StateGraph
from hitl_async.types import interrupt


def model(state: MessagesState) -> dict[str, Any]:
    call = {"name": "refund", "args": {"amount": 5}, "id": "call_1"}
    return {"messages": [AIMessage("", id="ai-1", tool_calls=[call])]}


def review(state: MessagesState) -> dict[str, Any]:
    call = state["messages"][-1].tool_calls[0]
    return {"messages": [("user", interrupt({"question": "refund?", "call": call}))]}


builder = StateGraph(MessagesState)
builder.add_node(model)
builder.add_node(review)
builder.add_edge(START, "model")
builder.add_edge("model", "review")
graph = builder.compile()
