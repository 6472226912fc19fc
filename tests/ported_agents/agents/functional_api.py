"""Ported agent 6: the functional API. An `@entrypoint` with a checkpointer calls `@task`s,
asks for approval with `interrupt()`, and keeps a counter across calls on its thread through
`previous` and `entrypoint.final(value=..., save=...)`."""

from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.func import entrypoint, task
from langgraph.types import Command, interrupt


@task
def write_essay(topic: str) -> str:
    get_stream_writer()({"progress": f"writing about {topic}"})
    return f"An essay about {topic}"


@task
def grade(essay: str) -> int:
    return len(essay)


@entrypoint(checkpointer=InMemorySaver())
def workflow(topic: str, *, previous: Any = None) -> entrypoint.final[dict, dict]:
    essay = write_essay(topic).result()
    scores = [grade(essay), grade(essay.upper())]
    approved = interrupt({"essay": essay, "action": "Please approve or reject"})
    runs = (previous or {}).get("runs", 0) + 1
    result = {
        "essay": essay,
        "approved": approved,
        "scores": [s.result() for s in scores],
        "runs": runs,
    }
    return entrypoint.final(value=result, save={"runs": runs, "last_topic": topic})


def main(rec):
    cfg = {"configurable": {"thread_id": "essay"}}
    # The grades run beside the entrypoint, which pauses meanwhile: finish order varies.
    rec.stream("first.updates", workflow.stream("cats", cfg, stream_mode="updates"), unordered=True)
    rec.add("first.paused", workflow.get_state(cfg))
    rec.stream("first.resume", workflow.stream(Command(resume=True), cfg, stream_mode="updates"))
    rec.add("first.state", workflow.get_state(cfg))
    rec.add("second.invoke", workflow.invoke("dogs", cfg))
    rec.stream(
        "second.resume",
        workflow.stream(Command(resume="rejected"), cfg, stream_mode=["values", "custom"]),
    )
    rec.add("second.state", workflow.get_state(cfg))
    rec.add(
        "history",
        [
            [list(s.next), s.metadata["step"], s.metadata["source"]]
            for s in workflow.get_state_history(cfg)
        ],
    )
    rec.stream(
        "third.custom",
        workflow.stream("owls", {"configurable": {"thread_id": "other"}}, stream_mode="custom"),
    )
