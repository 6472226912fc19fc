"""get_state / get_state_history / update_state, restated from LangGraph's tests (and what
LangGraph 1.2.22 shows for the same graphs), run on every driver."""

from __future__ import annotations

import itertools
import operator
import uuid
from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, interrupt
from hitl_async.graph import END, START, StateGraph

pytestmark = pytest.mark.anyio


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


async def history(graph: Any, config: dict[str, Any], **kw: Any) -> list[Any]:
    return [s async for s in graph.aget_state_history(config, **kw)]


def chain(saver: Any, *names: str, **compile_kw: Any) -> Any:
    b = StateGraph(Log)
    for n in names:
        b.add_node(n, lambda s, n=n: {"log": [n]})
    b.add_edge(START, names[0])
    for x, y in itertools.pairwise(names):
        b.add_edge(x, y)
    return b.compile(checkpointer=saver, **compile_kw)


def paused_with_sibling(saver: Any) -> Any:
    b = StateGraph(Log)
    b.add_node("ask", lambda s: {"log": [f"ask:{interrupt('q')}"]})
    b.add_node("other", lambda s: {"log": ["other"]})
    b.add_edge(START, "ask")
    b.add_edge(START, "other")
    return b.compile(checkpointer=saver)


# test_pregel.py::test_run_from_checkpoint_id_retains_previous_writes
async def test_running_from_an_old_checkpoint_forks_and_keeps_the_old_history(
    saver: Any,
) -> None:
    class S(TypedDict, total=False):
        myval: Annotated[int, operator.add]
        otherval: bool

    flip = {"on": False}

    def node(state: S) -> dict[str, Any]:
        flip["on"] = not flip["on"]
        return {"myval": 2 if flip["on"] else 1, "otherval": flip["on"]}

    def edge(src: str) -> Any:
        swap = "node_one" if src == "node_two" else "node_two"

        def route(st: S) -> Literal["__end__", "node_one", "node_two"]:
            if st["myval"] > 3:
                return END
            return swap if st["otherval"] else src  # type: ignore[return-value]

        return route

    b = StateGraph(S)
    b.add_node("node_one", node)
    b.add_node("node_two", node)
    b.add_edge(START, "node_one")
    b.add_conditional_edges("node_one", edge("node_one"))
    b.add_conditional_edges("node_two", edge("node_two"))
    graph = b.compile(checkpointer=saver)
    config = cfg(str(uuid.uuid4()))
    assert (await graph.ainvoke({"myval": 1}, config))["myval"] == 4
    old = await history(graph, config)
    assert len(old) == 4
    assert old[-1].values == {"myval": 0}
    assert old[0].values == {"myval": 4, "otherval": False}
    again = await graph.ainvoke(None, old[1].config)
    assert again == {"myval": 5, "otherval": True}
    new = await history(graph, config)
    assert len(new) == len(old) + 2
    assert new[1].metadata["source"] == "fork"
    for before, after in zip(old, new[2:], strict=True):
        assert (before.values, before.next, before.metadata["step"]) == (
            after.values,
            after.next,
            after.metadata["step"],
        )


# issue #14: get_state(config with checkpoint_id) returns the checkpoint as stored
async def test_get_state_of_a_named_checkpoint_does_not_apply_pending_writes(saver: Any) -> None:
    graph = paused_with_sibling(saver)
    await graph.ainvoke({"log": ["in"]}, cfg())
    head = await graph.aget_state(cfg())
    assert head.values == {"log": ["in", "other"]}
    assert head.next == ("ask",)
    named = await graph.aget_state(head.config)
    assert named.values == {"log": ["in"]}
    assert named.next == ("ask", "other")
    assert [(t.name, t.result) for t in named.tasks] == [
        ("ask", None),
        ("other", {"log": ["other"]}),
    ]
    assert [i.value for i in named.interrupts] == ["q"]
    assert named.tasks == head.tasks


# issue #14 (LangGraph: history shows checkpoints as stored, the newest too)
async def test_history_shows_the_paused_head_as_stored(saver: Any) -> None:
    graph = paused_with_sibling(saver)
    await graph.ainvoke({"log": ["in"]}, cfg())
    newest = (await history(graph, cfg()))[0]
    assert newest.values == {"log": ["in"]}
    assert newest.next == ("ask", "other")
    assert [i.value for i in newest.interrupts] == ["q"]


# test_pregel_async.py::test_dynamic_interrupt (a thread never run)
async def test_get_state_of_an_unknown_thread_is_empty(saver: Any) -> None:
    graph = chain(saver, "a")
    snap = await graph.aget_state(cfg("nobody"))
    assert (snap.values, snap.next, snap.tasks, snap.interrupts) == ({}, (), (), ())
    assert snap.metadata is None and snap.created_at is None and snap.parent_config is None
    assert await history(graph, cfg("nobody")) == []


# test_pregel.py::test_invoke_checkpoint_two (metadata of each step)
async def test_checkpoint_metadata_counts_steps_from_the_input(saver: Any) -> None:
    graph = chain(saver, "a", "b")
    await graph.ainvoke({"log": []}, cfg())
    snaps = await history(graph, cfg())
    assert [(s.metadata["source"], s.metadata["step"], s.next) for s in snaps] == [
        ("loop", 2, ()),
        ("loop", 1, ("b",)),
        ("loop", 0, ("a",)),
        ("input", -1, ("__start__",)),
    ]
    for child, parent in itertools.pairwise(snaps):
        assert (
            child.parent_config["configurable"]["checkpoint_id"]
            == (parent.config["configurable"]["checkpoint_id"])
        )
    assert snaps[-1].parent_config is None
    assert all(isinstance(datetime.fromisoformat(s.created_at), datetime) for s in snaps)


# test_pregel_async.py::test_invoke_checkpoint_three (history before / limit)
async def test_history_limit_and_before(saver: Any) -> None:
    graph = chain(saver, "a", "b", "c")
    await graph.ainvoke({"log": []}, cfg())
    every = await history(graph, cfg())
    assert len(every) == 5
    assert await history(graph, cfg(), limit=2) == every[:2]
    assert await history(graph, cfg(), before=every[1].config) == every[2:]
    assert await history(graph, cfg(), before=every[1].config, limit=1) == every[2:3]


# test_pregel_async.py::test_checkpoint_metadata (history filter on metadata)
async def test_history_filter_matches_metadata(saver: Any) -> None:
    graph = chain(saver, "a", "b")
    await graph.ainvoke({"log": []}, cfg())
    inputs = await history(graph, cfg(), filter={"source": "input"})
    assert [s.metadata["step"] for s in inputs] == [-1]
    assert [s.metadata["step"] for s in await history(graph, cfg(), filter={"step": 1})] == [1]


# test_pregel.py::test_invoke_checkpoint_two (update_state goes through the reducer)
async def test_update_state_folds_through_the_reducer_and_is_a_checkpoint(saver: Any) -> None:
    graph = chain(saver, "a")
    await graph.ainvoke({"log": ["x"]}, cfg())
    before = await graph.aget_state(cfg())
    new_config = await graph.aupdate_state(cfg(), {"log": ["y"]})
    after = await graph.aget_state(cfg())
    assert after.values == {"log": ["x", "a", "y"]}
    assert after.config == new_config
    assert after.metadata["source"] == "update"
    assert after.metadata["step"] == before.metadata["step"] + 1
    assert after.parent_config == before.config
    assert after.next == ()


# test_pregel_async.py::test_dynamic_interrupt (update_state as_node picks what runs next)
async def test_update_state_as_a_node_schedules_its_successors(saver: Any) -> None:
    graph = chain(saver, "a", "b", "c", interrupt_before=["b"])
    await graph.ainvoke({"log": []}, cfg())
    assert (await graph.aget_state(cfg())).next == ("b",)
    await graph.aupdate_state(cfg(), {"log": ["as-b"]}, as_node="b")
    snap = await graph.aget_state(cfg())
    assert snap.next == ("c",)
    assert await graph.ainvoke(None, cfg()) == {"log": ["a", "as-b", "c"]}


# test_pregel_async.py::test_dynamic_interrupt — deliberate difference: interrupt kept
async def test_update_state_while_paused_keeps_the_interrupt_pending(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("ask", lambda s: {"log": [f"ask:{interrupt('q')}"]})
    b.add_edge(START, "ask")
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": []}, cfg())
    (pending,) = (await graph.aget_state(cfg())).interrupts
    await graph.aupdate_state(cfg(), {"log": ["edit"]})
    snap = await graph.aget_state(cfg())
    assert [i.id for i in snap.interrupts] == [pending.id]
    assert snap.next == ("ask",)
    assert await graph.ainvoke(Command(resume={pending.id: "yes"}), cfg()) == {
        "log": ["edit", "ask:yes"]
    }


# test_time_travel.py::test_update_state_with_none_values (update of a finished thread)
async def test_update_state_with_none_on_a_finished_thread_adds_a_checkpoint(saver: Any) -> None:
    graph = chain(saver, "a")
    await graph.ainvoke({"log": []}, cfg())
    n = len(await history(graph, cfg()))
    await graph.aupdate_state(cfg(), None)
    snaps = await history(graph, cfg())
    assert len(snaps) == n + 1
    assert snaps[0].values == {"log": ["a"]} and snaps[0].metadata["source"] == "update"


# test_pregel_async.py::test_pending_writes_resume (the failed step's snapshot)
async def test_snapshot_of_a_failed_step_names_the_error(saver: Any) -> None:
    def bad(state: Log) -> dict[str, Any]:
        raise ValueError("nope")

    b = StateGraph(Log)
    b.add_node("good", lambda s: {"log": ["good"]})
    b.add_node("bad", bad)
    b.add_edge(START, "good")
    b.add_edge(START, "bad")
    graph = b.compile(checkpointer=saver)
    with pytest.raises(ValueError, match="nope"):
        await graph.ainvoke({"log": []}, cfg())
    snap = await graph.aget_state(cfg())
    assert snap.values == {"log": ["good"]}
    assert snap.next == ("bad",)
    errors = {t.name: t.error for t in snap.tasks}
    assert errors["good"] is None and "ValueError" in (errors["bad"] or "")
    assert "nope" in (errors["bad"] or "")


# test_pregel_async.py::test_checkpoint_metadata (config values reach the nodes)
async def test_a_nodes_config_names_its_thread(saver: Any) -> None:
    from hitl_async import get_config

    seen: list[Any] = []

    def node(state: Log) -> dict[str, Any]:
        seen.append(get_config()["configurable"]["thread_id"])
        return {"log": ["n"]}

    b = StateGraph(Log)
    b.add_node("n", node)
    b.add_edge(START, "n")
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": []}, cfg("t-42"))
    assert seen == ["t-42"]


# test_pregel_async.py::test_invoke_checkpoint_three (a new input after the end)
async def test_new_input_on_a_finished_thread_starts_from_its_state(saver: Any) -> None:
    calls: Counter[str] = Counter()

    def a(state: Log) -> dict[str, Any]:
        calls["a"] += 1
        return {"log": [f"a{calls['a']}"]}

    b = StateGraph(Log)
    b.add_node("a", a)
    b.add_edge(START, "a")
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"log": ["x"]}, cfg()) == {"log": ["x", "a1"]}
    assert await graph.ainvoke({"log": ["y"]}, cfg()) == {"log": ["x", "a1", "y", "a2"]}
    snaps = await history(graph, cfg())
    assert [(s.metadata["step"], s.metadata["source"]) for s in snaps] == [
        (4, "loop"),
        (3, "loop"),
        (2, "input"),
        (1, "loop"),
        (0, "loop"),
        (-1, "input"),
    ]
