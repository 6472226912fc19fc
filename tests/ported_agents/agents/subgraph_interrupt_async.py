"""Ported agent 9: the async API on a parent graph whose subgraph (its own state schema, called
from a node) asks a human with `interrupt()`: `astream(subgraphs=True)`, `aget_state` with
`subgraphs=True` (the paused subgraph's own snapshot), resume, and `ainvoke` of a second turn;
the subgraph also runs as a node directly (shared keys)."""

import asyncio
import operator
from typing import Annotated

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict


class Parent(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]


class Review(TypedDict):
    draft: str
    verdict: str


async def write(state: Review):
    return {"draft": f"draft on {state['draft']}"}


async def ask(state: Review):
    verdict = interrupt({"draft": state["draft"], "question": "ok?"})
    return {"verdict": verdict}


review_builder = StateGraph(Review)
review_builder.add_node("write", write)
review_builder.add_node("ask", ask)
review_builder.add_edge(START, "write")
review_builder.add_edge("write", "ask")
review = review_builder.compile()


class Shared(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]


async def shared_note(state: Shared):
    answer = interrupt(f"note for {state['topic']}?")
    return {"notes": [f"note: {answer}"]}


shared_builder = StateGraph(Shared)
shared_builder.add_node("shared_note", shared_note)
shared_builder.add_edge(START, "shared_note")
shared = shared_builder.compile()


async def plan(state: Parent):
    return {"notes": [f"plan {state['topic']}"]}


async def call_review(state: Parent):
    out = await review.ainvoke({"draft": state["topic"], "verdict": ""})
    return {"notes": [f"{out['draft']}: {out['verdict']}"]}


def build():
    builder = StateGraph(Parent)
    builder.add_node("plan", plan)
    builder.add_node("call_review", call_review)
    builder.add_node("shared", shared)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "call_review")
    builder.add_edge("call_review", "shared")
    builder.add_edge("shared", END)
    return builder.compile(checkpointer=InMemorySaver())


def sub_state(snapshot):
    return [
        {
            "name": t.name,
            "state": t.state.values if hasattr(t.state, "values") else None,
            "next": list(t.state.next) if hasattr(t.state, "next") else None,
        }
        for t in snapshot.tasks
    ]


async def collect(rec, label, stream):
    async for chunk in stream:
        rec.add(label, chunk)


async def amain(rec):
    graph = build()
    rec.add("mermaid", graph.get_graph().draw_mermaid())
    cfg = {"configurable": {"thread_id": "async"}}
    await collect(rec, "first", graph.astream({"topic": "owls", "notes": []}, cfg, subgraphs=True))
    paused = await graph.aget_state(cfg, subgraphs=True)
    rec.add("paused", paused)
    rec.add("paused.sub", sub_state(paused))
    await collect(
        rec,
        "resume1",
        graph.astream(
            Command(resume="approved"), cfg, stream_mode=["updates", "values"], subgraphs=True
        ),
    )
    paused = await graph.aget_state(cfg, subgraphs=True)
    rec.add("paused2", paused)
    rec.add("paused2.sub", sub_state(paused))
    await collect(rec, "resume2", graph.astream(Command(resume="fine"), cfg, stream_mode="updates"))
    rec.add("done", await graph.aget_state(cfg))
    rec.add("second", await graph.ainvoke({"topic": "cats"}, cfg))
    rec.add("second.resume", await graph.ainvoke(Command(resume="ok"), cfg))
    rec.add(
        "history",
        [
            [list(s.next), s.metadata["step"], s.metadata["source"]]
            async for s in graph.aget_state_history(cfg)
        ],
    )


def main(rec):
    asyncio.run(amain(rec))
