"""A chat graph for the server tests: MessagesState and a scripted chat model that streams
its answer token by token (langchain-core's GenericFakeChatModel)."""

from __future__ import annotations

from itertools import cycle
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from hitl_async import END, START, MessagesState, StateGraph

model = GenericFakeChatModel(messages=cycle([AIMessage(content="hello there friend")]))


async def chat(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await model.ainvoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("chat", chat)
builder.add_edge(START, "chat")
builder.add_edge("chat", END)
graph = builder.compile()
