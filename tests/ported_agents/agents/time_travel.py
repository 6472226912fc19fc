"""Ported agent 19: a human edits and rewinds a drafting loop. The graph pauses after `draft`
(`interrupt_after`); the human rewrites the draft with `update_state(as_node="draft")` so the
review sees it; the history is browsed with `limit`, `filter` and `before`; an old checkpoint
is read, replayed and forked (`update_state` on it, then run from the fork); a new thread is
seeded with `bulk_update_state` (one superstep as `draft`, the next as `review`)."""

import operator
from typing import Annotated, Literal

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import StateUpdate
from typing_extensions import TypedDict


class Doc(TypedDict):
    topic: str
    text: str
    drafts: int
    verdict: str
    trail: Annotated[list[str], operator.add]


def build():
    def draft(state: Doc):
        n = state.get("drafts", 0) + 1
        return {"text": f"{state['topic']} draft {n}", "drafts": n, "trail": [f"draft {n}"]}

    def review(state: Doc):
        good = "human" in state["text"] or state.get("drafts", 0) >= 3
        return {"verdict": "publish" if good else "redo", "trail": ["review"]}

    def route(state: Doc) -> Literal["publish", "draft"]:
        return "publish" if state["verdict"] == "publish" else "draft"

    def publish(state: Doc):
        return {"trail": [f"published: {state['text']}"]}

    builder = StateGraph(Doc)
    builder.add_node(draft)
    builder.add_node(review)
    builder.add_node(publish)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_conditional_edges("review", route)
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=InMemorySaver(), interrupt_after=["draft"])


def brief(snapshots):
    return [[list(s.next), s.metadata["source"], s.metadata["step"]] for s in snapshots]


def main(rec):
    graph = build()
    cfg = {"configurable": {"thread_id": "doc"}}
    rec.stream("first.values", graph.stream({"topic": "owls"}, cfg, stream_mode="values"))
    rec.add("first.paused", graph.get_state(cfg))
    edited = graph.update_state(cfg, {"text": "owls, by a human"}, as_node="draft")
    rec.add("edited.config.keys", sorted(edited["configurable"]))
    rec.add("edited", graph.get_state(cfg))
    rec.stream("continue.updates", graph.stream(None, cfg, stream_mode="updates"))
    rec.add("done", graph.get_state(cfg))

    history = list(graph.get_state_history(cfg))
    rec.add("history", brief(history))
    rec.add("history.limit", brief(graph.get_state_history(cfg, limit=2)))
    rec.add("history.updates", brief(graph.get_state_history(cfg, filter={"source": "update"})))
    rec.add("history.before", brief(graph.get_state_history(cfg, before=history[2].config)))

    original = next(s for s in history if s.next == ("review",) and s.metadata["source"] == "loop")
    rec.add("original", graph.get_state(original.config))
    rec.stream("replay.updates", graph.stream(None, original.config, stream_mode="updates"))
    rec.add("replay.state", graph.get_state(cfg))
    forked = graph.update_state(original.config, {"topic": "bats", "text": "bats, by a human"})
    rec.add("fork.before", graph.get_state(forked))
    rec.stream("fork.values", graph.stream(None, forked, stream_mode="values"))
    rec.add("fork.history", brief(graph.get_state_history(cfg)))

    seeded = {"configurable": {"thread_id": "seeded"}}
    graph.bulk_update_state(
        seeded,
        [
            [StateUpdate({"topic": "cats", "text": "cats draft 1", "drafts": 1}, as_node="draft")],
            [StateUpdate({"verdict": "redo", "trail": ["seeded review"]}, as_node="review")],
        ],
    )
    rec.add("seeded", graph.get_state(seeded))
    rec.add("seeded.run", graph.invoke(None, seeded))
    rec.add("seeded.run2", graph.invoke(None, seeded))
    rec.add("seeded.history", brief(graph.get_state_history(seeded)))
