"""Ported agent 4: map-reduce. A conditional edge fans out one `Send` per subject, the jokes
are gathered by an `operator.add` reducer, a conditional edge after the mappers fans in to one
judge, and a conditional edge picking two nodes joins again through a waiting edge; the mappers
write progress to the `custom` stream."""

import operator
from typing import Annotated

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict


class OverallState(TypedDict):
    topic: str
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]
    best_selected_joke: str
    notes: Annotated[list[str], operator.add]


class JokeState(TypedDict):
    subject: str


def generate_topics(state: OverallState):
    return {"subjects": [f"{state['topic']} {n}" for n in ("cats", "dogs", "owls")]}


def generate_joke(state: JokeState):
    writer = get_stream_writer()
    writer({"writing": state["subject"]})
    return {"jokes": [f"A joke about {state['subject']}"]}


def continue_to_jokes(state: OverallState):
    return [Send("generate_joke", {"subject": s}) for s in state["subjects"]]


def best_joke(state: OverallState):
    return {"best_selected_joke": max(state["jokes"])}


def route_review(state: OverallState):
    return ["proofread", "rate"]


def proofread(state: OverallState):
    return {"notes": ["proofread"]}


def rate(state: OverallState):
    return {"notes": [f"rated {len(state['jokes'])}"]}


def publish(state: OverallState):
    return {"notes": ["published"]}


def build():
    graph = StateGraph(OverallState)
    graph.add_node(generate_topics)
    graph.add_node(generate_joke)
    graph.add_node(best_joke)
    graph.add_node(proofread)
    graph.add_node(rate)
    graph.add_node(publish)
    graph.add_edge(START, "generate_topics")
    graph.add_conditional_edges("generate_topics", continue_to_jokes, ["generate_joke"])
    graph.add_conditional_edges("generate_joke", lambda state: "best_joke", ["best_joke"])
    graph.add_conditional_edges("best_joke", route_review, ["proofread", "rate"])
    graph.add_edge(["proofread", "rate"], "publish")
    graph.add_edge("publish", END)
    return graph.compile(checkpointer=InMemorySaver())


def main(rec):
    app = build()
    rec.add("mermaid", app.get_graph().draw_mermaid())
    rec.add("invoke", app.invoke({"topic": "animals"}, {"configurable": {"thread_id": "1"}}))
    rec.stream(
        "updates",
        app.stream({"topic": "pets"}, {"configurable": {"thread_id": "2"}}),
        unordered=True,
    )
    rec.stream(
        "values",
        app.stream({"topic": "birds"}, {"configurable": {"thread_id": "3"}}, stream_mode="values"),
    )
    cfg = {"configurable": {"thread_id": "4"}}
    rec.stream("custom", app.stream({"topic": "fish"}, cfg, stream_mode="custom"), unordered=True)
    rec.stream(
        "custom+updates",
        app.stream({"topic": "fish"}, cfg, stream_mode=["custom", "updates"]),
        unordered=True,
    )
    rec.add("state", app.get_state(cfg))
    rec.add(
        "history",
        [
            [list(s.next), s.metadata["step"], s.metadata["source"]]
            for s in app.get_state_history(cfg)
        ],
    )
