"""Subgraphs: interrupts at any depth, no reruns of finished nodes, parallel resumes by id,
Command.PARENT, streaming and state of subgraphs."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, Command, InMemorySaver, StateGraph, interrupt


class S(TypedDict, total=False):
    x: str


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {**a, **b}


class Votes(TypedDict, total=False):
    item: str
    out: Annotated[dict[str, Any], merge]


def counted(runs: Counter[str], name: str, fn: Any) -> Any:
    def node(state: S) -> Any:
        runs[name] += 1
        return fn(state)

    return node


def nested(runs: Counter[str]) -> Any:
    """parent: first -> child -> last; child: before -> grand; grand: prep -> ask(interrupt)."""
    g = StateGraph(S)
    g.add_node("prep", counted(runs, "prep", lambda s: {"x": s["x"] + "|prep"}))
    g.add_node("ask", counted(runs, "ask", lambda s: {"x": s["x"] + "|" + interrupt("deep?")}))
    g.add_edge(START, "prep")
    g.add_edge("prep", "ask")
    g.add_edge("ask", END)
    c = StateGraph(S)
    c.add_node("before", counted(runs, "before", lambda s: {"x": s["x"] + "|before"}))
    c.add_node("grand", g.compile())
    c.add_edge(START, "before")
    c.add_edge("before", "grand")
    c.add_edge("grand", END)
    p = StateGraph(S)
    p.add_node("first", counted(runs, "first", lambda s: {"x": "first"}))
    p.add_node("child", c.compile())
    p.add_node("last", counted(runs, "last", lambda s: {"x": s["x"] + "|last"}))
    p.add_edge(START, "first")
    p.add_edge("first", "child")
    p.add_edge("child", "last")
    p.add_edge("last", END)
    return p.compile(checkpointer=InMemorySaver())


def test_interrupt_two_levels_deep_resumes_and_finished_nodes_do_not_rerun() -> None:
    runs: Counter[str] = Counter()
    graph = nested(runs)
    cfg = {"configurable": {"thread_id": "deep"}}
    events = list(graph.stream({"x": ""}, cfg))
    assert events[0] == {"first": {"x": "first"}}
    (pending,) = events[-1]["__interrupt__"]
    assert pending.value == "deep?"
    snap = graph.get_state(cfg)
    assert snap.next == ("child",)
    assert snap.interrupts == (pending,)
    assert list(graph.stream(Command(resume="yes"), cfg)) == [
        {"child": {"x": "first|before|prep|yes"}},
        {"last": {"x": "first|before|prep|yes|last"}},
    ]
    assert graph.get_state(cfg).values == {"x": "first|before|prep|yes|last"}
    assert runs == {"first": 1, "before": 1, "prep": 1, "ask": 2, "last": 1}


def test_get_state_with_subgraphs_shows_the_nested_states() -> None:
    graph = nested(Counter())
    cfg = {"configurable": {"thread_id": "s"}}
    graph.invoke({"x": ""}, cfg)
    snap = graph.get_state(cfg, subgraphs=True)
    child = snap.tasks[0].state
    assert child.next == ("grand",)
    assert child.values == {"x": "first|before"}
    grand = child.tasks[0].state
    assert grand.next == ("ask",)
    assert grand.values == {"x": "first|before|prep"}
    assert grand.interrupts == snap.interrupts
    # without subgraphs=True: the config of the child's state (its namespace), as LangGraph
    plain = graph.get_state(cfg).tasks[0].state
    assert plain["configurable"]["checkpoint_ns"] == f"child:{snap.tasks[0].id}"
    assert graph.get_state(plain).values == child.values


def test_stream_subgraphs_yields_namespaced_events() -> None:
    graph = nested(Counter())
    cfg = {"configurable": {"thread_id": "ns"}}
    events = list(graph.stream({"x": ""}, cfg, subgraphs=True))
    assert events[0] == ((), {"first": {"x": "first"}})
    namespaces = {ns for ns, _ in events}
    child_ns = next(ns for ns in namespaces if len(ns) == 1)
    assert child_ns[0].startswith("child:")
    assert (child_ns, {"before": {"x": "first|before"}}) in events
    grand_ns = next(ns for ns in namespaces if len(ns) == 2)
    assert grand_ns[0] == child_ns[0] and grand_ns[1].startswith("grand:")
    assert (grand_ns, {"prep": {"x": "first|before|prep"}}) in events
    assert events[-1][0] == () and "__interrupt__" in events[-1][1]


def test_parallel_subgraph_interrupts_resume_independently_by_id() -> None:
    sub = StateGraph(Votes)
    sub.add_node("rev", lambda s: {"out": {s["item"]: interrupt(f"ok {s['item']}?")}})
    sub.add_edge(START, "rev")
    sub.add_edge("rev", END)
    review = sub.compile()
    ran: Counter[str] = Counter()

    def done(state: Votes) -> dict[str, Any]:
        ran["done"] += 1
        return {"out": {"done": True}}

    b = StateGraph(Votes)
    b.add_node("a", lambda s: {"out": review.invoke({"item": "A"})["out"]})
    b.add_node("b", lambda s: {"out": review.invoke({"item": "B"})["out"]})
    b.add_node("done", done)
    b.add_edge(START, "a")
    b.add_edge(START, "b")
    b.add_edge(["a", "b"], "done")
    b.add_edge("done", END)
    graph = b.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "par"}}
    first = graph.invoke({"out": {}}, cfg)
    a_int, b_int = first["__interrupt__"]
    assert (a_int.value, b_int.value) == ("ok A?", "ok B?")
    graph.invoke(Command(resume={b_int.id: "yesB"}), cfg)
    snap = graph.get_state(cfg)
    assert snap.next == ("a",)
    assert snap.interrupts == (a_int,)
    assert ran["done"] == 0
    final = graph.invoke(Command(resume={a_int.id: "yesA"}), cfg)
    assert final == {"out": {"A": "yesA", "B": "yesB", "done": True}}
    assert ran["done"] == 1


def test_command_parent_goto_and_update_from_a_subgraph() -> None:
    kid = StateGraph(S)
    kid.add_node("jump", lambda s: Command(graph=Command.PARENT, goto="escape", update={"x": "j"}))
    kid.add_node("unreached", lambda s: {"x": "unreached"})
    kid.add_edge(START, "jump")
    kid.add_edge("jump", "unreached")
    parent = StateGraph(S)
    parent.add_node("kid", kid.compile(), destinations=("escape",))
    parent.add_node("escape", lambda s: {"x": s["x"] + "|escaped"})
    parent.add_edge(START, "kid")
    parent.add_edge("escape", END)
    graph = parent.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "parent"}}
    assert list(graph.stream({"x": ""}, cfg)) == [
        {"kid": {"x": "j"}},
        {"escape": {"x": "j|escaped"}},
    ]


def test_command_parent_without_a_parent_is_an_error() -> None:
    g = StateGraph(S)
    g.add_node("jump", lambda s: Command(graph=Command.PARENT, goto="x"))
    g.add_edge(START, "jump")
    with pytest.raises(ValueError, match="no parent graph"):
        g.compile().invoke({"x": ""})


@pytest.mark.anyio
async def test_subgraph_called_from_an_async_node() -> None:
    sub = StateGraph(S)
    sub.add_node("ask", lambda s: {"x": s["x"] + interrupt("?")})
    sub.add_edge(START, "ask")
    compiled = sub.compile()

    async def outer(state: S) -> dict[str, Any]:
        out = await compiled.ainvoke({"x": state["x"] + ">"})
        return {"x": out["x"]}

    p = StateGraph(S)
    p.add_node("outer", outer)
    p.add_edge(START, "outer")
    graph = p.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "call"}}
    paused = await graph.ainvoke({"x": "in"}, cfg)
    assert [i.value for i in paused["__interrupt__"]] == ["?"]
    assert await graph.ainvoke(Command(resume="ok"), cfg) == {"x": "in>ok"}


def test_subgraph_streams_every_mode_of_the_parent_with_its_namespace() -> None:
    """A subgraph run emits in the parent's stream modes (a set of modes, passed down as is)."""
    inner = StateGraph(S)
    inner.add_node("step", lambda s: {"x": s["x"] + "|in"})
    inner.add_edge(START, "step")
    sub = inner.compile()
    outer = StateGraph(S)
    outer.add_node("sub", sub)
    outer.add_edge(START, "sub")
    graph = outer.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "modes"}}
    events = list(graph.stream({"x": "a"}, cfg, stream_mode=["updates", "values"], subgraphs=True))
    nested = [(mode, chunk) for ns, mode, chunk in events if ns]
    assert ("updates", {"step": {"x": "a|in"}}) in nested
    assert ("values", {"x": "a|in"}) in nested
    assert all(ns[0].startswith("sub:") for ns, _, _ in events if ns)
    assert ((), "updates", {"sub": {"x": "a|in"}}) in events
