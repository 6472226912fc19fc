"""Ported agent 7: two parallel nodes each ask a question with `interrupt()`; both are answered
at once with a resume map `{interrupt_id: value}`. Then `update_state(as_node=...)` seeds a
new thread before its first run, and time travel replays a past checkpoint and forks it with
`update_state`."""

import operator
import tempfile
from typing import Annotated

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict


class State(TypedDict):
    vals: Annotated[list[str], operator.add]


def begin(state: State):
    return {"vals": ["begin"]}


def ask_a(state: State):
    return {"vals": [f"a:{interrupt('question a')}"]}


def ask_b(state: State):
    return {"vals": [f"b:{interrupt({'question': 'b', 'seen': len(state['vals'])})}"]}


def finish(state: State):
    return {"vals": [f"finish after {len(state['vals'])}"]}


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node("begin", begin)
    builder.add_node("ask_a", ask_a)
    builder.add_node("ask_b", ask_b)
    builder.add_node("finish", finish)
    builder.add_edge(START, "begin")
    builder.add_edge("begin", "ask_a")
    builder.add_edge("begin", "ask_b")
    builder.add_edge(["ask_a", "ask_b"], "finish")
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=checkpointer)


def answers(snapshot):
    return {
        i.id: f"answer to {i.value if isinstance(i.value, str) else i.value['question']}"
        for i in snapshot.interrupts
    }


def run(rec, graph):
    cfg = {"configurable": {"thread_id": "parallel"}}
    rec.add("paused.invoke", graph.invoke({"vals": []}, cfg), unordered_interrupts=True)
    paused = rec.add("paused.state", graph.get_state(cfg))
    rec.stream(
        "resume.updates",
        graph.stream(Command(resume=answers(paused)), cfg, stream_mode="updates"),
        unordered=True,
    )
    rec.add("done.state", graph.get_state(cfg))
    history = list(graph.get_state_history(cfg))
    rec.add("history", [[list(s.next), s.metadata["step"], s.metadata["source"]] for s in history])

    before_finish = next(s for s in history if s.next == ("finish",))
    rec.add("replay.from", before_finish)
    rec.stream("replay.values", graph.stream(None, before_finish.config, stream_mode="values"))
    try:  # the last step ran two nodes: which one wrote this?
        graph.update_state(before_finish.config, {"vals": ["ambiguous"]})
    except Exception as exc:
        rec.error("fork.ambiguous", exc)
    forked = graph.update_state(before_finish.config, {"vals": ["forked"]}, as_node="ask_b")
    rec.add("fork.state", graph.get_state(forked))
    rec.stream("fork.updates", graph.stream(None, forked, stream_mode="updates"))
    rec.add(
        "after-fork.history",
        [
            [list(s.next), s.metadata["step"], s.metadata["source"]]
            for s in graph.get_state_history(cfg)
        ],
    )

    seeded = {"configurable": {"thread_id": "seeded"}}
    graph.update_state(seeded, {"vals": ["seed"]}, as_node="begin")
    rec.add("seeded.state", graph.get_state(seeded))
    rec.stream("seeded.run", graph.stream(None, seeded, stream_mode="updates"), unordered=True)
    rec.add("seeded.resume", graph.invoke(Command(resume=answers(graph.get_state(seeded))), seeded))
    rec.add(
        "seeded.history",
        [
            [list(s.next), s.metadata["step"], s.metadata["source"]]
            for s in graph.get_state_history(seeded)
        ],
    )


def main(rec):
    run(rec, build(InMemorySaver()))
    with (
        tempfile.TemporaryDirectory() as tmp,
        SqliteSaver.from_conn_string(f"{tmp}/threads.db") as saver,
    ):
        rec.prefix = "sqlite."
        run(rec, build(saver))
