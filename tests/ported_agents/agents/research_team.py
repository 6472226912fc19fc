"""Ported agent 12: a research team. A planner fans out one `Send` per question to a researcher
subgraph (its own state) that may ask a human with `interrupt()`; a flaky fetch node is retried
by its `RetryPolicy`; a deferred writer waits for every branch; a reviewer loops back once.
Streams `updates` with `subgraphs=True`, `get_state(subgraphs=True)` while paused, and the
resume of the Send tasks' interrupts by id."""

import operator
from typing import Annotated

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, RetryPolicy, Send, interrupt
from typing_extensions import TypedDict


class Team(TypedDict):
    questions: list[str]
    findings: Annotated[list[str], operator.add]
    drafts: Annotated[list[str], operator.add]
    rounds: int


class Research(TypedDict):
    question: str
    findings: Annotated[list[str], operator.add]


def investigate(state: Research):
    if "?" in state["question"]:
        hint = interrupt({"needs_hint": state["question"]})
        return {"findings": [f"{state['question']} -> {hint}"]}
    return {"findings": [f"{state['question']} -> known"]}


researcher_builder = StateGraph(Research)
researcher_builder.add_node("investigate", investigate)
researcher_builder.add_edge(START, "investigate")
researcher = researcher_builder.compile()


def build():
    attempts = {"n": 0}

    def plan(state: Team):
        return {
            "questions": ["sky colour", "why grass?", "sea depth?"],
            "rounds": state.get("rounds", 0),
        }

    def fan_out(state: Team):
        return [Send("research", {"question": q, "findings": []}) for q in state["questions"]]

    def fetch(state: Team):
        attempts["n"] += 1
        if attempts["n"] % 2:
            raise ConnectionError("flaky source")
        return {"findings": ["fetched background"]}

    def write(state: Team):
        return {
            "drafts": [f"draft {len(state['drafts']) + 1} from {len(state['findings'])} findings"]
        }

    def review(state: Team):
        if state["rounds"] < 1:
            return Command(goto="write", update={"rounds": state["rounds"] + 1})
        return Command(goto=END)

    builder = StateGraph(Team)
    builder.add_node("plan", plan)
    builder.add_node("research", researcher)
    builder.add_node(
        "fetch",
        fetch,
        retry_policy=RetryPolicy(
            max_attempts=3, initial_interval=0.01, jitter=False, retry_on=ConnectionError
        ),
    )
    builder.add_node("write", write, defer=True)
    builder.add_node("review", review, destinations=("write", END))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out, ["research"])
    builder.add_edge("plan", "fetch")
    builder.add_edge("research", "write")
    builder.add_edge("fetch", "write")
    builder.add_edge("write", "review")
    return builder.compile(checkpointer=InMemorySaver())


def main(rec):
    graph = build()
    rec.add("mermaid", graph.get_graph().draw_mermaid())
    cfg = {"configurable": {"thread_id": "team"}}
    rec.stream(
        "first",
        graph.stream({"questions": [], "findings": [], "drafts": []}, cfg, subgraphs=True),
        unordered=True,
    )
    paused = graph.get_state(cfg, subgraphs=True)
    rec.add("paused", paused)
    rec.add(
        "paused.subgraphs",
        sorted(
            ([t.name, t.state.values, list(t.state.next)] for t in paused.tasks if t.state),
            key=repr,
        ),
    )
    hints = {i.id: f"hint for {i.value['needs_hint']}" for i in paused.interrupts}
    rec.stream(
        "resume", graph.stream(Command(resume=hints), cfg, stream_mode="updates"), unordered=True
    )
    done = rec.add("done", graph.get_state(cfg))
    rec.add("findings", sorted(done.values["findings"]))
    rec.add(
        "history",
        [
            [sorted(s.next), s.metadata["step"], s.metadata["source"]]
            for s in graph.get_state_history(cfg)
        ],
    )
