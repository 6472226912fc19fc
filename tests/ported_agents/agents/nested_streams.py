"""Ported agent 18: what a UI streams from nested graphs. A parent node calls a research
subgraph (its own state) that holds a fetcher subgraph added as a node (keys shared with
research, one private); chat models stream tokens two levels down and nodes write to the
`custom` stream at each level. Streamed as `["messages", "updates", "custom"]` with
`subgraphs=True`, without it, as `astream_events(version="v2")`; `get_state(subgraphs=True)`."""

import asyncio
import operator
from typing import Annotated

from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from ported_support import ScriptedChatModel, ai
from typing_extensions import TypedDict


class Fetch(TypedDict):
    question: str
    findings: Annotated[list[str], operator.add]
    source: str


class Research(TypedDict):
    question: str
    findings: Annotated[list[str], operator.add]
    summary: str


class Report(MessagesState):
    summary: str


def build(fetch_model, summary_model, writer_model):
    def pick_source(state: Fetch):
        get_stream_writer()({"level": 2, "picking": state["question"]})
        return {"source": "wiki"}

    def read(state: Fetch):
        reply = fetch_model.invoke(f"{state['question']} from {state['source']}")
        return {"findings": [reply.content]}

    fetcher = StateGraph(Fetch)
    fetcher.add_node(pick_source)
    fetcher.add_node(read)
    fetcher.add_edge(START, "pick_source")
    fetcher.add_edge("pick_source", "read")
    fetcher = fetcher.compile()

    def summarise(state: Research):
        get_stream_writer()({"level": 1, "findings": len(state["findings"])})
        reply = summary_model.invoke("; ".join(state["findings"]))
        return {"summary": reply.content}

    research = StateGraph(Research)
    research.add_node("fetcher", fetcher)
    research.add_node(summarise)
    research.add_edge(START, "fetcher")
    research.add_edge("fetcher", "summarise")
    research = research.compile()

    def call_research(state: Report):
        out = research.invoke({"question": state["messages"][-1].content, "findings": []})
        return {"summary": out["summary"]}

    def write(state: Report):
        text = "".join(c.content for c in writer_model.stream(f"Report on {state['summary']}"))
        return {"messages": [AIMessage(f"Report: {text}")]}

    builder = StateGraph(Report)
    builder.add_node(call_research)
    builder.add_node(write)
    builder.add_edge(START, "call_research")
    builder.add_edge("call_research", "write")
    builder.add_edge("write", END)
    return builder.compile(checkpointer=InMemorySaver())


def models(n):
    return (
        ScriptedChatModel(messages=iter([ai(f"owls hunt at night {k}") for k in range(n)])),
        ScriptedChatModel(messages=iter([ai(f"nocturnal hunters {k}") for k in range(n)])),
        ScriptedChatModel(messages=iter([ai(f"Owls are nocturnal {k}") for k in range(n)])),
    )


def events(graph, question, cfg):
    async def collect():
        out = []
        async for e in graph.astream_events(question, cfg, version="v2"):
            meta = e.get("metadata", {})
            out.append([e["event"], e["name"], meta.get("langgraph_node"), e.get("tags", [])])
        return out

    return asyncio.run(collect())


def main(rec):
    graph = build(*models(4))
    rec.add("mermaid.xray", graph.get_graph(xray=True).draw_mermaid())
    question = {"messages": [("user", "What do owls do?")]}
    cfg = {"configurable": {"thread_id": "nested"}}
    rec.stream(
        "subgraphs",
        graph.stream(question, cfg, stream_mode=["messages", "updates", "custom"], subgraphs=True),
    )
    rec.add("state", graph.get_state(cfg, subgraphs=True))
    cfg = {"configurable": {"thread_id": "flat"}}
    rec.stream("flat", graph.stream(question, cfg, stream_mode=["messages", "updates", "custom"]))
    rec.add("events", events(graph, question, {"configurable": {"thread_id": "events"}}))
