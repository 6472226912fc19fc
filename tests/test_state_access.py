"""Reading and editing a thread: get_state, get_state_history, update_state, replay and fork."""

from __future__ import annotations

import itertools
import operator
import re
from collections import Counter
from datetime import datetime
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, InMemorySaver, PregelTask, StateSnapshot, interrupt
from hitl_async.graph import END, START, StateGraph

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    x: str
    d: str
    q: str


def cfg(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def checkpoint_id(config: dict[str, Any] | None) -> str | None:
    return None if config is None else config["configurable"]["checkpoint_id"]


def pre_ask_post(runs: Counter[str] | None = None) -> Any:
    """START -> pre -> ask (interrupt) -> post -> END."""
    runs = runs if runs is not None else Counter()

    def pre(state: S) -> dict[str, Any]:
        runs["pre"] += 1
        return {"log": ["pre"]}

    def ask(state: S) -> dict[str, Any]:
        runs["ask"] += 1
        answer = interrupt({"q": state.get("q", "")})
        return {"d": answer, "log": [f"ask:{state.get('x', '')}"]}

    def post(state: S) -> dict[str, Any]:
        runs["post"] += 1
        return {"log": ["post"]}

    b = StateGraph(S)
    b.add_sequence([("pre", pre), ("ask", ask), ("post", post)])
    b.add_edge(START, "pre")
    b.add_edge("post", END)
    return b.compile(checkpointer=InMemorySaver())


# -- get_state -------------------------------------------------------------------------------------


def test_get_state_fields_while_paused() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "ok?"}, cfg("fields")))
    snap = graph.get_state(cfg("fields"))
    assert isinstance(snap, StateSnapshot)
    assert snap._fields == (
        "values",
        "next",
        "config",
        "metadata",
        "created_at",
        "parent_config",
        "tasks",
        "interrupts",
    )
    assert snap.values == {"q": "ok?", "log": ["pre"]}
    assert snap.next == ("ask",)
    conf = snap.config["configurable"]
    assert conf["thread_id"] == "fields" and conf["checkpoint_ns"] == ""
    assert UUID.fullmatch(conf["checkpoint_id"])
    assert snap.metadata == {"source": "loop", "step": 1, "parents": {}}
    created = datetime.fromisoformat(snap.created_at)
    assert created.tzinfo is not None
    assert snap.parent_config["configurable"]["thread_id"] == "fields"
    assert checkpoint_id(snap.parent_config) < conf["checkpoint_id"]
    (task,) = snap.tasks
    assert isinstance(task, PregelTask)
    assert task.name == "ask" and task.path == ("__pregel_pull", "ask")
    assert task.error is None and task.result is None
    (intr,) = snap.interrupts
    assert task.interrupts == (intr,)
    assert intr.value == {"q": "ok?"}


def test_get_state_on_unknown_thread_is_empty() -> None:
    graph = pre_ask_post()
    snap = graph.get_state(cfg("never"))
    assert snap.values == {}
    assert snap.next == () and snap.tasks == () and snap.interrupts == ()
    assert snap.created_at is None and snap.parent_config is None


def test_get_state_at_an_older_checkpoint() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "?"}, cfg()))
    graph.invoke(Command(resume="yes"), cfg())
    old = next(s for s in graph.get_state_history(cfg()) if s.metadata["step"] == 0)
    snap = graph.get_state(old.config)
    assert snap.config == old.config
    assert snap.next == ("pre",)
    assert snap.values == {"q": "?", "log": []}


# -- history ---------------------------------------------------------------------------------------


def test_history_newest_first_with_parent_chain() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "?"}, cfg()))
    graph.invoke(Command(resume="yes"), cfg())
    history = list(graph.get_state_history(cfg()))
    assert [s.metadata["step"] for s in history] == [3, 2, 1, 0, -1]
    assert [s.metadata["source"] for s in history] == ["loop", "loop", "loop", "loop", "input"]
    assert [s.next for s in history] == [(), ("post",), ("ask",), ("pre",), ("__start__",)]
    for newer, older in itertools.pairwise(history):
        assert newer.parent_config == older.config
    assert history[-1].parent_config is None
    assert history[-1].values == {"log": []}
    assert history[0] == graph.get_state(cfg())
    ids = [checkpoint_id(s.config) for s in history]
    assert ids == sorted(ids, reverse=True)


def test_history_limit_before_and_filter() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "?"}, cfg()))
    graph.invoke(Command(resume="yes"), cfg())
    history = list(graph.get_state_history(cfg()))
    assert [s.metadata["step"] for s in graph.get_state_history(cfg(), limit=2)] == [3, 2]
    older = graph.get_state_history(cfg(), before=history[2].config)
    assert [s.metadata["step"] for s in older] == [0, -1]
    inputs = list(graph.get_state_history(cfg(), filter={"source": "input"}))
    assert [(s.metadata["step"], s.next) for s in inputs] == [(-1, ("__start__",))]
    assert list(graph.get_state_history(cfg("missing"))) == []


# -- update_state ----------------------------------------------------------------------------------


def test_update_state_without_as_node_keeps_pending_interrupts() -> None:
    runs: Counter[str] = Counter()
    graph = pre_ask_post(runs)
    list(graph.stream({"q": "?"}, cfg()))
    paused = graph.get_state(cfg())
    new_config = graph.update_state(cfg(), {"x": "edited"})
    assert checkpoint_id(new_config) != checkpoint_id(paused.config)
    snap = graph.get_state(cfg())
    assert snap.config["configurable"]["checkpoint_id"] == checkpoint_id(new_config)
    assert snap.metadata["source"] == "update"
    assert snap.metadata["step"] == paused.metadata["step"] + 1
    assert snap.next == ("ask",)
    assert snap.interrupts == paused.interrupts  # same ids, still answerable
    assert snap.parent_config == paused.config
    assert snap.values == {**paused.values, "x": "edited"}
    events = list(graph.stream(Command(resume="yes"), cfg()))
    assert events == [{"ask": {"d": "yes", "log": ["ask:edited"]}}, {"post": {"log": ["post"]}}]
    assert runs == {"pre": 1, "ask": 2, "post": 1}
    sources = [s.metadata["source"] for s in graph.get_state_history(cfg())]
    assert sources == ["loop", "loop", "update", "loop", "loop", "input"]


def test_update_state_without_as_node_then_resume_by_old_id() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "?"}, cfg()))
    (intr,) = graph.get_state(cfg()).interrupts
    graph.update_state(cfg(), {"x": "e"})
    assert graph.invoke(Command(resume={intr.id: "by-id"}), cfg())["d"] == "by-id"


def test_update_state_as_the_paused_node_completes_it() -> None:
    runs: Counter[str] = Counter()
    graph = pre_ask_post(runs)
    list(graph.stream({"q": "?"}, cfg()))
    graph.update_state(cfg(), {"d": "manual"}, as_node="ask")
    snap = graph.get_state(cfg())
    assert snap.next == ("post",) and snap.interrupts == ()
    assert snap.metadata["source"] == "update"
    assert list(graph.stream(None, cfg())) == [{"post": {"log": ["post"]}}]
    assert runs == {"pre": 1, "ask": 1, "post": 1}
    assert graph.get_state(cfg()).values["d"] == "manual"


def test_update_state_as_earlier_node_keeps_next() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "?"}, cfg()))
    graph.update_state(cfg(), {"x": "p"}, as_node="pre")
    assert graph.get_state(cfg()).next == ("ask",)


def test_update_state_as_last_node_finishes() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "?"}, cfg()))
    graph.update_state(cfg(), {"x": "end"}, as_node="post")
    assert graph.get_state(cfg()).next == ()
    assert list(graph.stream(None, cfg())) == []


def test_update_state_on_finished_thread() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "?"}, cfg()))
    graph.invoke(Command(resume="yes"), cfg())
    graph.update_state(cfg(), {"x": "later"})
    snap = graph.get_state(cfg())
    assert snap.next == () and snap.metadata["source"] == "update"
    assert snap.metadata["step"] == 4
    graph.update_state(cfg(), {"x": "again"}, as_node="pre")
    assert graph.get_state(cfg()).next == ("ask",)
    events = list(graph.stream(None, cfg()))
    assert len(events) == 1 and events[0]["__interrupt__"][0].value == {"q": "?"}


def test_update_state_on_new_thread_acts_as_input() -> None:
    graph = pre_ask_post()
    graph.update_state(cfg("fresh"), {"x": "new"})
    snap = graph.get_state(cfg("fresh"))
    assert snap.metadata["source"] == "update" and snap.metadata["step"] == 0
    assert snap.next == ("pre",)
    assert snap.values == {"x": "new", "log": []}


def test_update_state_applies_reducers() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "?"}, cfg()))
    graph.update_state(cfg(), {"log": ["manual"]})
    assert graph.get_state(cfg()).values["log"] == ["pre", "manual"]


@pytest.mark.anyio
async def test_aupdate_state_and_aget_state() -> None:
    graph = pre_ask_post()
    [e async for e in graph.astream({"q": "?"}, cfg())]
    paused = await graph.aget_state(cfg())
    await graph.aupdate_state(cfg(), {"x": "async"})
    snap = await graph.aget_state(cfg())
    assert snap.values["x"] == "async" and snap.interrupts == paused.interrupts
    await graph.aupdate_state(cfg(), {"d": "done"}, as_node="ask")
    assert (await graph.aget_state(cfg())).next == ("post",)


# -- replay and fork -------------------------------------------------------------------------------


def test_replay_from_older_checkpoint_forks() -> None:
    runs: Counter[str] = Counter()

    def node(name: str) -> Any:
        def fn(state: S) -> dict[str, Any]:
            runs[name] += 1
            return {"log": [name]}

        return fn

    b = StateGraph(S)
    b.add_sequence([("a", node("a")), ("b", node("b")), ("c", node("c"))])
    b.add_edge(START, "a")
    graph = b.compile(checkpointer=InMemorySaver())
    graph.invoke({"log": []}, cfg())
    original_head = graph.get_state(cfg())
    before_b = next(s for s in graph.get_state_history(cfg()) if s.next == ("b",))

    events = list(graph.stream(None, before_b.config))
    assert events == [{"b": {"log": ["b"]}}, {"c": {"log": ["c"]}}]
    assert runs == {"a": 1, "b": 2, "c": 2}

    head = graph.get_state(cfg())
    assert head.config != original_head.config
    assert head.values == {"log": ["a", "b", "c"]} and head.next == ()
    assert ancestors(graph, head)[1:].count(checkpoint_id(before_b.config)) == 1
    assert checkpoint_id(original_head.config) not in ancestors(graph, head)


def ancestors(graph: Any, snap: StateSnapshot) -> list[str]:
    """Checkpoint ids from `snap` up its parent chain to the root."""
    thread = {"configurable": {"thread_id": snap.config["configurable"]["thread_id"]}}
    by_id = {checkpoint_id(s.config): s for s in graph.get_state_history(thread)}
    chain = [checkpoint_id(snap.config)]
    while snap.parent_config is not None:
        snap = by_id[checkpoint_id(snap.parent_config)]
        chain.append(checkpoint_id(snap.config))
    return chain


def test_replay_before_an_answered_interrupt_asks_again() -> None:
    runs: Counter[str] = Counter()
    graph = pre_ask_post(runs)
    list(graph.stream({"q": "?"}, cfg()))
    (original,) = graph.get_state(cfg()).interrupts
    graph.invoke(Command(resume="yes"), cfg())
    before_ask = next(s for s in graph.get_state_history(cfg()) if s.next == ("ask",))
    events = list(graph.stream(None, before_ask.config))
    # the old answer is not replayed: the human is asked again, under a new id
    assert len(events) == 1
    (again,) = events[0]["__interrupt__"]
    assert again.value == {"q": "?"} and again.id != original.id
    head = graph.get_state(cfg())
    assert head.next == ("ask",) and head.interrupts == (again,)
    assert checkpoint_id(before_ask.config) in ancestors(graph, head)[1:]
    assert graph.invoke(Command(resume="again"), cfg())["d"] == "again"
    assert runs == {"pre": 1, "ask": 4, "post": 2}
    # the replayed checkpoint itself is untouched
    assert graph.get_state(before_ask.config) == before_ask


def test_fork_with_update_state_on_older_checkpoint() -> None:
    graph = pre_ask_post()
    list(graph.stream({"q": "?"}, cfg()))
    graph.invoke(Command(resume="yes"), cfg())
    before_ask = next(s for s in graph.get_state_history(cfg()) if s.next == ("ask",))
    fork = graph.update_state(before_ask.config, {"x": "fork"})
    head = graph.get_state(cfg())
    assert head.config == fork
    assert head.parent_config == before_ask.config
    assert head.next == ("ask",) and head.values["x"] == "fork"
    # the fork asks the human again; the old checkpoint's answer is not replayed
    events = list(graph.stream(None, cfg()))
    assert len(events) == 1 and events[0]["__interrupt__"][0].value == {"q": "?"}
    out = graph.invoke(Command(resume="again"), cfg())
    assert out["d"] == "again" and out["log"][-2:] == ["ask:fork", "post"]


def test_update_state_keeps_a_partly_answered_node_resumable() -> None:
    runs: Counter[str] = Counter()

    def review(state: S) -> dict[str, Any]:
        runs["review"] += 1
        first = interrupt("first")
        second = interrupt("second")
        return {"d": f"{first}+{second}", "log": [state.get("x", "")]}

    b = StateGraph(S)
    b.add_node("review", review)
    b.add_edge(START, "review")
    graph = b.compile(checkpointer=InMemorySaver())
    list(graph.stream({"log": []}, cfg()))
    list(graph.stream(Command(resume="A"), cfg()))
    pending = graph.get_state(cfg()).interrupts
    assert [i.value for i in pending] == ["second"]
    graph.update_state(cfg(), {"x": "edited"})
    assert graph.get_state(cfg()).interrupts == pending
    out = graph.invoke(Command(resume="B"), cfg())
    assert out["d"] == "A+B" and out["log"] == ["edited"]
    assert runs["review"] == 3


def test_failed_task_error_is_the_exception_text_as_langgraph_shows_it() -> None:
    """`PregelTask.error` is a str (repr of the exception), as LangGraph 1.2.22 returns it: a
    snapshot comes from the store, where no exception object is kept."""

    def boom(state: S) -> dict[str, Any]:
        raise ValueError("bad thing")

    b = StateGraph(S)
    b.add_node("boom", boom)
    b.add_edge(START, "boom")
    graph = b.compile(checkpointer=InMemorySaver())
    with pytest.raises(ValueError, match="bad thing"):
        graph.invoke({"x": "a"}, cfg("err"))
    (task,) = graph.get_state(cfg("err")).tasks
    assert task.error == "ValueError('bad thing')"
    assert isinstance(task.error, str)
