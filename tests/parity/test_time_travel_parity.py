"""Replay and fork, restated from LangGraph's own time-travel tests and run on every driver.

Replay: `invoke(None, config_of_an_old_checkpoint)` reruns what came after that checkpoint.
Fork: `update_state(old_config, values)` then `invoke(None, fork_config)`. Interrupts fire again
in both (no cached answers are reused), and the original checkpoints stay (history is
append-only)."""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, interrupt
from hitl_async.graph import START, StateGraph

pytestmark = pytest.mark.anyio


class State(TypedDict):
    value: Annotated[list[str], operator.add]


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


async def history(graph: Any, config: dict[str, Any]) -> list[Any]:
    return [s async for s in graph.aget_state_history(config)]


def summary(snaps: list[Any]) -> list[tuple[Any, ...]]:
    return [(s.metadata.get("source"), s.next, s.values) for s in snaps]


def chain(saver: Any, calls: Counter[str], *names: str, asks: tuple[str, ...] = ()) -> Any:
    """START -> names[0] -> ... ; a name in `asks` calls interrupt() and logs the answer."""

    def node(name: str) -> Any:
        def fn(state: State) -> dict[str, Any]:
            calls[name] += 1
            if name in asks:
                answer = interrupt(f"{name}?")
                return {"value": [f"{name}:{answer}"]}
            return {"value": [name]}

        return fn

    b = StateGraph(State)
    for n in names:
        b.add_node(n, node(n))
    b.add_edge(START, names[0])
    for x, y in itertools.pairwise(names):
        b.add_edge(x, y)
    return b.compile(checkpointer=saver)


# test_time_travel.py::test_replay_reruns_nodes_after_checkpoint
async def test_replay_reruns_only_nodes_after_the_checkpoint(saver: Any) -> None:
    calls: Counter[str] = Counter()
    graph = chain(saver, calls, "a", "b")
    assert await graph.ainvoke({"value": []}, cfg()) == {"value": ["a", "b"]}
    before_b = next(s for s in await history(graph, cfg()) if s.next == ("b",))
    calls.clear()
    assert await graph.ainvoke(None, before_b.config) == {"value": ["a", "b"]}
    assert calls == {"b": 1}


# test_time_travel.py::test_replay_from_final_checkpoint_is_noop
async def test_replay_of_the_final_checkpoint_runs_nothing(saver: Any) -> None:
    calls: Counter[str] = Counter()
    graph = chain(saver, calls, "a")
    await graph.ainvoke({"value": []}, cfg())
    state = await graph.aget_state(cfg())
    assert state.next == ()
    calls.clear()
    assert await graph.ainvoke(None, state.config) == {"value": ["a"]}
    assert calls == {}


# test_time_travel.py::test_fork_reruns_with_modified_state
async def test_fork_reruns_later_nodes_on_the_modified_state(saver: Any) -> None:
    calls: Counter[str] = Counter()
    graph = chain(saver, calls, "a", "b")
    await graph.ainvoke({"value": []}, cfg())
    before_b = next(s for s in await history(graph, cfg()) if s.next == ("b",))
    calls.clear()
    fork = await graph.aupdate_state(before_b.config, {"value": ["x"]})
    assert await graph.ainvoke(None, fork) == {"value": ["a", "x", "b"]}
    assert calls == {"b": 1}


# test_time_travel.py::test_multiple_forks_from_same_checkpoint
async def test_two_forks_of_one_checkpoint_are_independent(saver: Any) -> None:
    graph = chain(saver, Counter(), "a", "b")
    await graph.ainvoke({"value": []}, cfg())
    before_b = next(s for s in await history(graph, cfg()) if s.next == ("b",))
    one = await graph.ainvoke(None, await graph.aupdate_state(before_b.config, {"value": ["f1"]}))
    two = await graph.ainvoke(None, await graph.aupdate_state(before_b.config, {"value": ["f2"]}))
    assert one == {"value": ["a", "f1", "b"]}
    assert two == {"value": ["a", "f2", "b"]}


# test_time_travel.py::test_replay_from_before_interrupt_refires
async def test_replay_before_an_interrupt_asks_again(saver: Any) -> None:
    calls: Counter[str] = Counter()
    graph = chain(saver, calls, "a", "ask", "b", asks=("ask",))
    first = await graph.ainvoke({"value": []}, cfg())
    assert [i.value for i in first["__interrupt__"]] == ["ask?"]
    done = await graph.ainvoke(Command(resume="hello"), cfg())
    assert done == {"value": ["a", "ask:hello", "b"]}
    assert calls == {"a": 1, "ask": 2, "b": 1}
    before = [s for s in await history(graph, cfg()) if s.next == ("ask",)][-1]
    replay = await graph.ainvoke(None, before.config)
    assert [i.value for i in replay["__interrupt__"]] == ["ask?"]
    assert replay["value"] == ["a"]
    assert calls == {"a": 1, "ask": 3, "b": 1}


# test_time_travel.py::test_replay_from_before_interrupt_then_resume
async def test_replay_then_resume_branches_history(saver: Any) -> None:
    graph = chain(saver, Counter(), "a", "ask", "b", asks=("ask",))
    await graph.ainvoke({"value": []}, cfg())
    await graph.ainvoke(Command(resume="old"), cfg())
    original = await history(graph, cfg())
    assert summary(original) == [
        ("loop", (), {"value": ["a", "ask:old", "b"]}),
        ("loop", ("b",), {"value": ["a", "ask:old"]}),
        ("loop", ("ask",), {"value": ["a"]}),
        ("loop", ("a",), {"value": []}),
        ("input", ("__start__",), {"value": []}),
    ]
    before = next(s for s in original if s.next == ("ask",))
    await graph.ainvoke(None, before.config)
    assert [(s, n) for s, n, _ in summary(await history(graph, cfg()))][:2] == [
        ("fork", ("ask",)),
        ("loop", ()),
    ]
    final = await graph.ainvoke(Command(resume="new"), cfg())
    assert final == {"value": ["a", "ask:new", "b"]}
    assert summary(await history(graph, cfg())) == [
        ("loop", (), {"value": ["a", "ask:new", "b"]}),
        ("loop", ("b",), {"value": ["a", "ask:new"]}),
        ("fork", ("ask",), {"value": ["a"]}),
        *summary(original),
    ]


# test_time_travel.py::test_replay_interrupt_stable_across_replays
async def test_replaying_one_checkpoint_thrice_asks_the_same_each_time(saver: Any) -> None:
    graph = chain(saver, Counter(), "a", "ask", "b", asks=("ask",))
    await graph.ainvoke({"value": []}, cfg())
    await graph.ainvoke(Command(resume="cached"), cfg())
    before = [s for s in await history(graph, cfg()) if s.next == ("ask",)][-1]
    results = [await graph.ainvoke(None, before.config) for _ in range(3)]
    assert {r["__interrupt__"][0].value for r in results} == {"ask?"}
    assert all(r["value"] == ["a"] for r in results)


# test_time_travel.py::test_fork_from_before_interrupt_refires
async def test_fork_before_an_interrupt_asks_again_and_takes_a_new_answer(saver: Any) -> None:
    graph = chain(saver, Counter(), "a", "ask", "b", asks=("ask",))
    await graph.ainvoke({"value": []}, cfg())
    await graph.ainvoke(Command(resume="hello"), cfg())
    before = [s for s in await history(graph, cfg()) if s.next == ("ask",)][-1]
    fork = await graph.aupdate_state(before.config, {"value": ["forked"]})
    paused = await graph.ainvoke(None, fork)
    assert paused["__interrupt__"][0].value == "ask?"
    final = await graph.ainvoke(Command(resume="world"), cfg())
    assert final == {"value": ["a", "forked", "ask:world", "b"]}


# test_time_travel.py::test_fork_from_interrupt_checkpoint_refires
async def test_fork_of_the_paused_checkpoint_asks_again(saver: Any) -> None:
    graph = chain(saver, Counter(), "a", "ask", "b", asks=("ask",))
    await graph.ainvoke({"value": []}, cfg())
    await graph.ainvoke(Command(resume="hello"), cfg())
    paused_at = next(
        s
        for s in await history(graph, cfg())
        if s.next == ("ask",) and any(t.interrupts for t in s.tasks)
    )
    fork = await graph.aupdate_state(paused_at.config, {"value": ["forked"]})
    assert "__interrupt__" in await graph.ainvoke(None, fork)
    final = await graph.ainvoke(Command(resume="different"), cfg())
    assert "ask:different" in final["value"] and "ask:hello" not in final["value"]


# test_time_travel.py::test_sequential_interrupts_fork_from_middle
async def test_fork_between_two_interrupts_asks_only_the_second(saver: Any) -> None:
    calls: Counter[str] = Counter()
    graph = chain(saver, calls, "a", "q1", "q2", "b", asks=("q1", "q2"))
    assert (await graph.ainvoke({"value": []}, cfg()))["__interrupt__"][0].value == "q1?"
    assert (await graph.ainvoke(Command(resume="x"), cfg()))["__interrupt__"][0].value == "q2?"
    done = await graph.ainvoke(Command(resume="y"), cfg())
    assert done == {"value": ["a", "q1:x", "q2:y", "b"]}
    between = [s for s in await history(graph, cfg()) if s.next == ("q2",)][-1]
    fork = await graph.aupdate_state(between.config, {"value": ["mid"]})
    paused = await graph.ainvoke(None, fork)
    assert [i.value for i in paused["__interrupt__"]] == ["q2?"]
    final = await graph.ainvoke(Command(resume="z"), cfg())
    assert final == {"value": ["a", "q1:x", "mid", "q2:z", "b"]}
    first = [s for s in await history(graph, cfg()) if s.next == ("q1",)][-1]
    again = await graph.ainvoke(None, first.config)
    assert [i.value for i in again["__interrupt__"]] == ["q1?"]


# test_time_travel.py::test_multiple_interrupts_in_one_node
async def test_two_interrupts_in_one_node_are_answered_in_turn_and_replay_asks_first(
    saver: Any,
) -> None:
    def twice(state: State) -> dict[str, Any]:
        one = interrupt("first")
        two = interrupt("second")
        return {"value": [f"{one}+{two}"]}

    b = StateGraph(State)
    b.add_node("twice", twice)
    b.add_edge(START, "twice")
    graph = b.compile(checkpointer=saver)
    assert (await graph.ainvoke({"value": []}, cfg()))["__interrupt__"][0].value == "first"
    assert (await graph.ainvoke(Command(resume="1"), cfg()))["__interrupt__"][0].value == "second"
    assert await graph.ainvoke(Command(resume="2"), cfg()) == {"value": ["1+2"]}
    before = [s for s in await history(graph, cfg()) if s.next == ("twice",)][-1]
    replay = await graph.ainvoke(None, before.config)
    assert [i.value for i in replay["__interrupt__"]] == ["first"]


# test_time_travel.py::test_update_state_with_none_values
async def test_update_state_with_none_forks_and_the_interrupt_fires_again(saver: Any) -> None:
    graph = chain(saver, Counter(), "a", "ask", "b", asks=("ask",))
    await graph.ainvoke({"value": []}, cfg())
    await graph.ainvoke(Command(resume="hello"), cfg())
    before = [s for s in await history(graph, cfg()) if s.next == ("ask",)][-1]
    fork = await graph.aupdate_state(before.config, None)
    assert fork["configurable"]["checkpoint_id"] != before.config["configurable"]["checkpoint_id"]
    assert (await graph.aget_state(cfg())).metadata["source"] == "update"
    paused = await graph.ainvoke(None, fork)
    assert paused["__interrupt__"][0].value == "ask?"
    assert await graph.ainvoke(Command(resume="again"), cfg()) == {"value": ["a", "ask:again", "b"]}


# test_time_travel.py::test_replay_creates_branch_preserving_old_checkpoints
async def test_replay_appends_a_branch_and_keeps_the_old_checkpoints(saver: Any) -> None:
    graph = chain(saver, Counter(), "a", "b", "c")
    await graph.ainvoke({"value": []}, cfg())
    original = await history(graph, cfg())
    ids = [s.config["configurable"]["checkpoint_id"] for s in original]
    before_b = next(s for s in original if s.next == ("b",))
    await graph.ainvoke(None, before_b.config)
    after = await history(graph, cfg())
    assert [s.config["configurable"]["checkpoint_id"] for s in after][-len(ids) :] == ids
    new = after[: len(after) - len(ids)]
    assert [(s.metadata["source"], s.next) for s in new] == [
        ("loop", ()),
        ("loop", ("c",)),
        ("fork", ("b",)),
    ]
    # the branch's first checkpoint hangs off the replayed one
    assert (
        new[-1].parent_config["configurable"]["checkpoint_id"]
        == (before_b.config["configurable"]["checkpoint_id"])
    )
    assert new[0].values == {"value": ["a", "b", "c"]}


# test_time_travel.py::test_fork_creates_branch_preserving_old_checkpoints
async def test_fork_appends_an_update_branch_and_keeps_the_old_checkpoints(saver: Any) -> None:
    graph = chain(saver, Counter(), "a", "b", "c")
    await graph.ainvoke({"value": []}, cfg())
    original = await history(graph, cfg())
    before_b = next(s for s in original if s.next == ("b",))
    fork = await graph.aupdate_state(before_b.config, {"value": ["x"]})
    assert await graph.ainvoke(None, fork) == {"value": ["a", "x", "b", "c"]}
    after = await history(graph, cfg())
    assert after[len(after) - len(original) :] == original
    new = after[: len(after) - len(original)]
    assert [(s.metadata["source"], s.next) for s in new] == [
        ("loop", ()),
        ("loop", ("c",)),
        ("update", ("b",)),
    ]
    assert (
        new[-1].parent_config["configurable"]["checkpoint_id"]
        == (before_b.config["configurable"]["checkpoint_id"])
    )


# test_pregel_async.py::test_fork_does_not_apply_pending_writes
async def test_fork_as_a_node_replaces_that_nodes_write(saver: Any) -> None:
    class Sum(TypedDict):
        value: Annotated[int, operator.add]

    b = StateGraph(Sum)
    b.add_node("a", lambda s: {"value": 10})
    b.add_node("b", lambda s: {"value": 100})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"value": 1}, cfg()) == {"value": 111}
    before_a = next(s for s in await history(graph, cfg()) if s.next == ("a",))
    fork = await graph.aupdate_state(before_a.config, {"value": 20}, as_node="a")
    assert await graph.ainvoke(None, fork) == {"value": 121}  # 1 + 20 (as a) + 100 (b)


async def test_history_of_a_config_naming_a_checkpoint_is_that_checkpoint(saver: Any) -> None:
    """LangGraph's savers list only the checkpoint a config names (checked against 1.2.22):
    `get_state_history(snapshot.config)` is that snapshot, still subject to filter and before."""
    graph = chain(saver, Counter(), "a", "b")
    await graph.ainvoke({"value": []}, cfg())
    full = await history(graph, cfg())
    middle = full[1]
    only = await history(graph, middle.config)
    assert [s.config["configurable"]["checkpoint_id"] for s in only] == [
        middle.config["configurable"]["checkpoint_id"]
    ]
    assert summary(only) == summary([middle])
    assert [s async for s in graph.aget_state_history(middle.config, filter={"step": 99})] == []
    assert [s async for s in graph.aget_state_history(middle.config, before=middle.config)] == []
    assert [s async for s in graph.aget_state_history(middle.config, limit=0)] == []
    missing = {"configurable": {"thread_id": "1", "checkpoint_id": "nope"}}
    assert await history(graph, missing) == []
