"""The graph of tests/apps/serve/wide.py with LangGraph's imports: what `langgraph dev` served
when tests/server/golden/langgraph_dev_wide.json was recorded (tests/apps/differential_wide.py).
Never run in CI; LangGraph is not a dependency."""

from __future__ import annotations

import operator
from itertools import cycle
from typing import Annotated, Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

model = GenericFakeChatModel(messages=cycle([AIMessage(content="hello there friend")]))


class Research(TypedDict, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]


def gather(state: Research) -> dict[str, Any]:
    get_stream_writer()({"gathering": state.get("topic")})
    return {"notes": ["gathered"]}


def vet(state: Research) -> dict[str, Any]:
    answer = interrupt({"vet": state.get("topic")})
    return {"notes": [f"vetted:{answer}"]}


research_builder = StateGraph(Research)
research_builder.add_node("gather", gather)
research_builder.add_node("vet", vet)
research_builder.add_edge(START, "gather")
research_builder.add_edge("gather", "vet")
research_builder.add_edge("vet", END)


class Wide(MessagesState, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]


async def chat(state: Wide) -> dict[str, Any]:
    return {"messages": [await model.ainvoke(state["messages"])]}


def publish(state: Wide) -> dict[str, Any]:
    return {"notes": ["published"]}


def skip(state: Wide) -> dict[str, Any]:
    return {"notes": ["skipped"]}


builder = StateGraph(Wide)
builder.add_node("chat", chat)
builder.add_node("research", research_builder.compile())
builder.add_node("publish", publish)
builder.add_node("skip", skip)
builder.add_edge(START, "chat")
builder.add_edge("chat", "research")
builder.add_edge("research", "publish")
builder.add_edge("publish", END)
builder.add_edge("skip", END)
graph = builder.compile()
