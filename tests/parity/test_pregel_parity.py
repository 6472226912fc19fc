"""Parity with LangGraph: editing threads without running them — `update_state` with
`as_node="__copy__"`, END and `"__input__"`, `bulk_update_state` with `StateUpdate`s — and
`PregelTask.result` in history, restated from LangGraph's tests, on every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, Command, InvalidUpdateError, StateGraph, StateUpdate, interrupt

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


class Value(TypedDict):
    value: Annotated[list[str], operator.add]


class FooBaz(TypedDict, total=False):
    foo: str
    baz: str


def abc(saver: Any, **kw: Any) -> Any:
    """START -> a -> b -> c, each appending its name to `value`."""
    g = StateGraph(Value)
    for name in ("a", "b", "c"):
        g.add_node(name, lambda s, n=name: {"value": [n]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    return g.compile(checkpointer=saver, **kw)


def asking(saver: Any, called: list[str]) -> Any:
    """node_a -> ask_human (interrupt) -> node_b."""

    def node_a(state: Value) -> Value:
        called.append("node_a")
        return {"value": ["a"]}

    def ask_human(state: Value) -> Value:
        called.append("ask_human")
        return {"value": [f"human:{interrupt('What is your input?')}"]}

    def node_b(state: Value) -> Value:
        called.append("node_b")
        return {"value": ["b"]}

    g = StateGraph(Value)
    g.add_sequence([node_a, ask_human, node_b])
    g.add_edge(START, "node_a")
    return g.compile(checkpointer=saver)


async def history(graph: Any, config: dict[str, Any]) -> list[Any]:
    return [s async for s in graph.aget_state_history(config)]


def cid(config: dict[str, Any] | None) -> str | None:
    return None if config is None else config["configurable"]["checkpoint_id"]


# test_time_travel.py::test_copy_fork_retriggers_interrupt
async def test_copy_fork_retriggers_the_interrupt(saver: Any) -> None:
    called: list[str] = []
    graph = asking(saver, called)
    config = cfg()
    await graph.ainvoke({"value": []}, config)
    await graph.ainvoke(Command(resume="hello"), config)
    before_ask = [s for s in await history(graph, config) if s.next == ("ask_human",)][-1]
    called.clear()
    fork = await graph.aupdate_state(before_ask.config, None, as_node="__copy__")
    paused = await graph.ainvoke(None, fork)
    assert paused["__interrupt__"][0].value == "What is your input?"
    assert called == ["ask_human"]
    final = await graph.ainvoke(Command(resume="new_answer"), fork)
    assert final == {"value": ["a", "human:new_answer", "b"]}


# test_time_travel.py::test_copy_fork_creates_sibling_checkpoint
async def test_copy_is_a_sibling_with_source_fork(saver: Any) -> None:
    graph = abc(saver)
    config = cfg()
    await graph.ainvoke({"value": []}, config)
    before_b = next(s for s in await history(graph, config) if s.next == ("b",))
    copy = await graph.aget_state(await graph.aupdate_state(before_b.config, None, "__copy__"))
    assert copy.metadata["source"] == "fork"
    assert copy.metadata["step"] == before_b.metadata["step"] + 1
    assert copy.values == before_b.values and copy.next == before_b.next
    assert cid(copy.parent_config) == cid(before_b.parent_config)  # same parent: a sibling
    regular = await graph.aget_state(await graph.aupdate_state(before_b.config, {"value": ["x"]}))
    assert regular.metadata["source"] == "update"


# test_time_travel.py::test_update_state_with_none_values
async def test_update_state_with_none_values_is_an_update(saver: Any) -> None:
    graph = asking(saver, [])
    config = cfg()
    await graph.ainvoke({"value": []}, config)
    await graph.ainvoke(Command(resume="hello"), config)
    before_ask = [s for s in await history(graph, config) if s.next == ("ask_human",)][-1]
    fork = await graph.aupdate_state(before_ask.config, None)
    paused = await graph.ainvoke(None, fork)
    assert paused["__interrupt__"][0].value == "What is your input?"
    assert (await graph.aget_state(fork)).metadata["source"] == "update"


# test_pregel.py::test_bulk_state_updates (__copy__ with updates applied to the copy)
async def test_copy_with_updates_applies_them_to_the_copy(saver: Any) -> None:
    graph = abc(saver, interrupt_before=["b"])
    config = cfg()
    await graph.ainvoke({"value": ["i"]}, config)
    await graph.aupdate_state(config, [({"value": ["cb"]}, "b")], as_node="__copy__")
    hist = await history(graph, config)
    assert [(s.values["value"], s.next, s.metadata["source"]) for s in hist[:3]] == [
        (["i", "a", "cb"], ("c",), "update"),
        (["i", "a"], ("b",), "fork"),
        (["i", "a"], ("b",), "loop"),
    ]
    # the update stands for the copy's pending task b: history shows it as b's result
    assert [(t.name, t.result) for t in hist[1].tasks] == [("b", {"value": ["cb"]})]
    assert await graph.ainvoke(None, config) == {"value": ["i", "a", "cb", "c"]}


# test_pregel.py::test_bulk_state_updates (__copy__ of a thread that does not exist)
async def test_copy_of_a_missing_thread_is_invalid(saver: Any) -> None:
    graph = abc(saver)
    with pytest.raises(InvalidUpdateError, match="no checkpoint to copy"):
        await graph.aupdate_state(cfg(), None, as_node="__copy__")


# test_pregel_async.py::test_interrupt_before (tool_two.aupdate_state(thread1, None, as_node=END))
async def test_update_state_as_end_finishes_a_paused_thread(saver: Any) -> None:
    graph = abc(saver, interrupt_before=["b"])
    config = cfg()
    await graph.ainvoke({"value": ["i"]}, config)
    await graph.aupdate_state(config, None, as_node=END)
    state = await graph.aget_state(config)
    assert state.next == () and state.tasks == ()
    assert state.values == {"value": ["i", "a"]}
    assert state.metadata["source"] == "update"
    assert await graph.ainvoke(None, config) == {"value": ["i", "a"]}  # nothing left to run


# test_pregel_async.py::test_interrupt_before (END also drops a pending interrupt)
async def test_update_state_as_end_drops_a_pending_interrupt(saver: Any) -> None:
    graph = asking(saver, [])
    config = cfg()
    await graph.ainvoke({"value": []}, config)
    assert (await graph.aget_state(config)).interrupts
    await graph.aupdate_state(config, None, as_node=END)
    state = await graph.aget_state(config)
    assert state.next == () and state.interrupts == ()
    assert state.values == {"value": ["a"]}


# test_pregel_async.py::test_interrupt_before (END with values is not a node)
async def test_update_state_as_end_with_values_is_invalid(saver: Any) -> None:
    graph = abc(saver)
    config = cfg()
    await graph.ainvoke({"value": []}, config)
    with pytest.raises(InvalidUpdateError, match="__end__"):
        await graph.aupdate_state(config, {"value": ["x"]}, as_node=END)


# test_pregel_async.py::test_bulk_state_updates
async def test_bulk_updates_one_checkpoint_per_superstep(saver: Any) -> None:
    g = StateGraph(FooBaz)
    g.add_node("node_a", lambda s: {"foo": "bar"})
    g.add_node("node_b", lambda s: {"baz": "qux"})
    g.add_edge(START, "node_a")
    g.add_edge("node_a", "node_b")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    await graph.abulk_update_state(config, [[StateUpdate({"foo": "bar"}, "node_a")]])
    await graph.abulk_update_state(
        config,
        [[StateUpdate({"foo": "updated"}, "node_a"), StateUpdate({"baz": "new"}, "node_b")]],
    )
    assert (await graph.aget_state(config)).values == {"foo": "updated", "baz": "new"}
    assert len(await history(graph, config)) == 2
    other = cfg()
    await graph.abulk_update_state(
        other,
        [
            [StateUpdate({"foo": "bar"}, "node_a")],
            [StateUpdate({"foo": "updated"}, "node_a"), StateUpdate({"baz": "new"}, "node_b")],
        ],
    )
    assert (await graph.aget_state(other)).values == {"foo": "updated", "baz": "new"}
    assert len(await history(graph, other)) == 2


# test_pregel_async.py::test_bulk_state_updates (the errors)
async def test_bulk_update_errors_change_nothing(saver: Any) -> None:
    graph = abc(saver)
    config = cfg()
    await graph.ainvoke({"value": []}, config)
    before = await graph.aget_state(config)
    with pytest.raises(InvalidUpdateError, match="as_node"):
        await graph.abulk_update_state(
            config, [[StateUpdate({"value": ["e"]}), StateUpdate({"value": ["f"]})]]
        )
    with pytest.raises(ValueError, match="No supersteps provided"):
        await graph.abulk_update_state(config, [])
    with pytest.raises(ValueError, match="No updates provided"):
        await graph.abulk_update_state(config, [[], []])
    with pytest.raises(InvalidUpdateError, match="only update"):
        await graph.abulk_update_state(
            config, [[StateUpdate(None, "__end__"), StateUpdate(None, "__copy__")]]
        )
    with pytest.raises(InvalidUpdateError, match="unknown node"):
        await graph.abulk_update_state(config, [[StateUpdate({"value": ["z"]}, "zz")]])
    assert await graph.aget_state(config) == before


# test_pregel.py::test_bulk_state_updates (sync API, StateUpdate is langgraph.types.StateUpdate)
async def test_bulk_update_state_sync(saver: Any) -> None:
    graph = abc(saver, interrupt_before=["b"])
    config = cfg()

    def script() -> Any:  # a plain script: the sync API, no event loop of its own
        graph.invoke({"value": ["i"]}, config)
        graph.bulk_update_state(config, [[StateUpdate({"value": ["x"]}, "b")]])
        return graph.get_state(config)

    state = await anyio.to_thread.run_sync(script)
    assert state.values == {"value": ["i", "a", "x"]} and state.next == ("c",)
    assert StateUpdate._fields == ("values", "as_node", "task_id")


# test_pregel_async.py::test_update_as_input
async def test_update_as_input_then_nodes(saver: Any) -> None:
    graph = abc(saver)
    config = cfg()
    await graph.abulk_update_state(
        config,
        [
            [StateUpdate({"value": ["s1"]}, "__input__")],
            [StateUpdate({"value": ["a1"]}, "a"), StateUpdate({"value": ["b1"]}, "b")],
        ],
    )
    hist = await history(graph, config)
    assert [(s.metadata["source"], s.metadata["step"], s.next) for s in hist] == [
        ("update", 0, ("b", "c")),
        ("input", -1, ("__start__",)),
    ]
    assert hist[0].values == {"value": ["a1", "b1"]}
    # the update as b stands for nothing pending, as a's: the results of nothing
    assert [t.result for t in hist[1].tasks] == [None]


# test_pregel.py::test_update_state_task_result (the update becomes the pending task's result)
async def test_update_as_node_is_that_tasks_result_in_history(saver: Any) -> None:
    graph = abc(saver, interrupt_before=["b"])
    config = cfg()
    await graph.ainvoke({"value": ["i"]}, config)
    await graph.aupdate_state(config, {"value": ["ub"]}, as_node="b")
    hist = await history(graph, config)
    assert [(t.name, t.result) for t in hist[1].tasks] == [("b", {"value": ["ub"]})]
    assert hist[0].next == ("c",)
    past = await graph.aget_state(hist[1].config)
    assert [(t.name, t.result) for t in past.tasks] == [("b", {"value": ["ub"]})]


# test_pregel.py::test_multiple_writes_same_channel_from_same_node (history of a plain chain)
async def test_history_shows_each_finished_tasks_result(saver: Any) -> None:
    graph = abc(saver)
    config = cfg()
    await graph.ainvoke({"value": ["i"]}, config)
    hist = await history(graph, config)
    assert [[(t.name, t.result) for t in s.tasks] for s in hist] == [
        [],
        [("c", {"value": ["c"]})],
        [("b", {"value": ["b"]})],
        [("a", {"value": ["a"]})],
        [("__start__", {"value": ["i"]})],
    ]
    # a page of history that starts mid-thread still shows results (read from the child)
    page = [s async for s in graph.aget_state_history(config, before=hist[1].config, limit=1)]
    assert [(t.name, t.result) for t in page[0].tasks] == [("b", {"value": ["b"]})]


# test_pregel.py (PregelTask.result of a node that wrote nothing is {}; of a pending one, None)
async def test_task_result_of_a_node_returning_none_and_of_a_paused_one(saver: Any) -> None:
    g = StateGraph(FooBaz)
    g.add_node("quiet", lambda s: None)
    g.add_node("loud", lambda s: {"foo": "x"})
    g.add_node("ask", lambda s: {"baz": interrupt("q")})
    g.add_edge(START, "quiet")
    g.add_edge(START, "loud")
    g.add_edge("quiet", "ask")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"foo": ""}, config)
    hist = await history(graph, config)
    assert [(t.name, t.result) for t in hist[0].tasks] == [("ask", None)]
    assert sorted((t.name, str(t.result)) for t in hist[1].tasks) == [
        ("loud", "{'foo': 'x'}"),
        ("quiet", "{}"),
    ]


class Plain(TypedDict, total=False):
    x: str
    log: str


# test_pregel.py::test_multiple_writes_same_channel_from_same_node (keys without reducers)
async def test_history_results_of_plain_keys(saver: Any) -> None:
    g = StateGraph(Plain)
    g.add_node("a", lambda s: {"log": "a"})
    g.add_node("b", lambda s: {"x": s["x"] + "!", "log": "b"})
    g.add_node("c", lambda s: None)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"x": "hi"}, config)
    hist = await history(graph, config)
    assert [[(t.name, t.result) for t in s.tasks] for s in hist] == [
        [],
        [("c", {})],
        [("b", {"x": "hi!", "log": "b"})],
        [("a", {"log": "a"})],
        [("__start__", {"x": "hi"})],
    ]


# test_time_travel.py (a resume's Command(update=...) is not the resumed task's result)
async def test_history_result_leaves_out_a_resume_update(saver: Any) -> None:
    g = StateGraph(Plain)
    g.add_node("ask", lambda s: {"log": interrupt("ok?")})
    g.add_edge(START, "ask")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"x": "hi"}, config)
    out = await graph.ainvoke(Command(resume="yes", update={"x": "patched"}), config)
    assert out == {"x": "patched", "log": "yes"}
    hist = await history(graph, config)
    asked = next(s for s in hist if s.next == ("ask",))
    assert [t.result for t in asked.tasks] == [{"log": "yes"}]


# test_pregel.py (durability="exit": no result is shown for a task that did not run there)
async def test_history_results_with_durability_exit(saver: Any) -> None:
    graph = abc(saver, interrupt_before=["c"])
    config = cfg()
    await graph.ainvoke({"value": ["i"]}, config, durability="exit")
    await graph.ainvoke(None, config, durability="exit")
    for snap in await history(graph, config):
        for t in snap.tasks:
            assert t.result in (None, {"value": [t.name]})
