"""Parity with LangGraph: a subgraph compiled with `checkpointer=False` keeps no state. A call
that runs to its end stores nothing in the parent's thread, as in LangGraph. A call that pauses
on `interrupt()` pauses the parent (LangGraph too) and, unlike LangGraph, keeps its pause so
that the answer resumes it where it paused: LangGraph reruns such a subgraph from scratch, so an
answer by id is never delivered (the rerun asks again under a new id) and a second interrupt in
it is asked again forever. README, "Porting from LangGraph": the `checkpointer=False` row."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from typing_extensions import TypedDict

from hitl_async import START, Command, StateGraph, get_config, interrupt

pytestmark = pytest.mark.anyio


class S(TypedDict, total=False):
    a: str
    b: str


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def subgraph(seen: list[Any], *, asks: int) -> Any:
    """A subgraph of two nodes; the first `asks` of them ask a question."""

    def first(s: S) -> S:
        seen.append(("first", get_config()["configurable"]["checkpoint_ns"]))
        answer = interrupt("first?") if asks >= 1 else "-"
        return {"a": f"{s['a']}+{answer}"}

    def second(s: S) -> S:
        seen.append(("second", None))
        answer = interrupt("second?") if asks >= 2 else "-"
        return {"b": f"{s['a']}+{answer}"}

    g = StateGraph(S)
    g.add_node("first", first)
    g.add_node("second", second)
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    return g.compile(checkpointer=False)


def parent(sub: Any, saver: Any, *, inline: bool) -> Any:
    g = StateGraph(S)
    if inline:
        g.add_node("sub", sub)
    else:

        async def call(s: S) -> Any:
            return await sub.ainvoke(s)

        g.add_node("sub", call)
    g.add_edge(START, "sub")
    return g.compile(checkpointer=saver)


# test_subgraph_persistence_async.py::test_checkpointer_false_no_persistence_async: the
# subgraph's checkpoints are not stored (LangGraph: no checkpointer for it at all).
@pytest.mark.parametrize("inline", [True, False])
async def test_a_finished_call_stores_nothing(saver: Any, inline: bool) -> None:
    seen: list[Any] = []
    app = parent(subgraph(seen, asks=0), saver, inline=inline)
    config = cfg()
    assert await app.ainvoke({"a": "x"}, config) == {"a": "x+-", "b": "x+-+-"}
    ns = seen[0][1]
    assert ns.startswith("sub:")
    thread = config["configurable"]["thread_id"]
    assert await saver.load(thread, ns) is None
    assert await saver.load(thread, "") is not None


# LangGraph behaviour: interrupt() in a checkpointer=False subgraph pauses the parent with it,
# and a plain Command(resume=v) answers it (LangGraph reruns the subgraph from its start).
@pytest.mark.parametrize("inline", [True, False])
async def test_a_pause_pauses_the_parent_and_a_plain_resume_answers_it(
    saver: Any, inline: bool
) -> None:
    seen: list[Any] = []
    app = parent(subgraph(seen, asks=1), saver, inline=inline)
    config = cfg()
    paused = await app.ainvoke({"a": "x"}, config)
    assert [i.value for i in paused["__interrupt__"]] == ["first?"]
    assert (await app.aget_state(config)).next == ("sub",)
    assert await app.ainvoke(Command(resume="yes"), config) == {"a": "x+yes", "b": "x+yes+-"}
    assert [name for name, _ in seen] == ["first", "first", "second"]


# Deliberate difference (README row): an answer by id resumes the paused call, and each of two
# interrupts in a row is asked once. LangGraph reruns the subgraph from scratch: the answer by
# id is dropped and the question asked again under a new id; the second interrupt is asked
# again after every answer.
async def test_answers_by_id_resume_the_paused_call_where_it_paused(saver: Any) -> None:
    seen: list[Any] = []
    app = parent(subgraph(seen, asks=2), saver, inline=True)
    config = cfg()
    first = (await app.ainvoke({"a": "x"}, config))["__interrupt__"][0]
    second = (await app.ainvoke(Command(resume={first.id: "one"}), config))["__interrupt__"][0]
    assert second.value == "second?"
    assert await app.ainvoke(Command(resume={second.id: "two"}), config) == {
        "a": "x+one",
        "b": "x+one+two",
    }
    assert [name for name, _ in seen] == ["first", "first", "second", "second"]
