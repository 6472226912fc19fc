"""Parity with LangGraph 1.2.22: the `pending_writes` of the tuples a checkpointer reads
(`list`/`alist`, `get_tuple`/`aget_tuple`). LangGraph keeps every task's writes with the
checkpoint its step ran from, so every checkpoint but the newest lists the writes of the step
that ran from it: state keys, `__interrupt__`, `__resume__`, `__error__`, ordered by task
(input writes, nodes by name, `Send`s as made), a task's special writes first. Observed on
LangGraph's InMemorySaver and SqliteSaver with the same graphs (the routing writes it also lists,
`branch:to:x` and `__pregel_tasks`, are not listed here: see the README's differences table);
restated on every driver. Task ids are this engine's: the ones `get_state_history` shows."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, Command, Interrupt, Send, StateGraph, interrupt

pytestmark = pytest.mark.anyio

NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"


class S(TypedDict):
    a: str
    items: Annotated[list[Any], operator.add]


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


async def tuples(saver: Any, config: dict[str, Any], **kw: Any) -> list[Any]:
    """The root namespace's tuples, newest first; each also read by `aget_tuple` and checked."""
    conf = {"configurable": {**config["configurable"], "checkpoint_ns": ""}}
    listed = [t async for t in saver.alist(conf, **kw)]
    for t in listed:
        assert await saver.aget_tuple(t.config) == t
    return listed


async def task_ids(graph: Any, config: dict[str, Any]) -> list[dict[str, str]]:
    """Per checkpoint, newest first: task id by node name, as `get_state_history` shows them."""
    return [{t.name: t.id for t in s.tasks} async for s in graph.aget_state_history(config)]


def writes(t: Any) -> list[tuple[str, str, Any]]:
    return list(t.pending_writes)


SPECIAL = {"__interrupt__", "__resume__", "__error__"}


def no_routing(listed: list[Any]) -> None:
    """No routing (`branch:to:x`, `__pregel_tasks`) nor engine bookkeeping is listed."""
    for t in listed:
        for _, channel, _ in writes(t):
            assert channel in SPECIAL or not (channel.startswith("branch:") or channel[:2] == "__")


# test_pregel_async.py::test_pending_writes_resume (the input checkpoint's and a completed step's
# writes; LangGraph: one `put_writes` per task, kept against the checkpoint the step ran from)
async def test_a_chain_lists_each_completed_steps_writes_with_the_checkpoint_it_ran_from(
    saver: Any,
) -> None:
    b = StateGraph(S)
    b.add_node("a", lambda s: {"a": s["a"] + "a"})
    b.add_node("b", lambda s: {"a": s["a"] + "b", "items": ["b"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    b.add_edge("b", END)
    graph = b.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"a": "", "items": []}, config)
    listed = await tuples(saver, config)
    ids = await task_ids(graph, config)
    assert [t.metadata["step"] for t in listed] == [2, 1, 0, -1]
    assert [writes(t) for t in listed] == [
        [],
        [(ids[1]["b"], "a", "ab"), (ids[1]["b"], "items", ["b"])],
        [(ids[2]["a"], "a", "a")],
        [(ids[3]["__start__"], "a", ""), (ids[3]["__start__"], "items", [])],
    ]
    head = await saver.aget_tuple(config)
    assert head == listed[0] and head.pending_writes == []
    assert [t.checkpoint["updated_channels"] for t in listed[:3]] == [
        ["a", "items"],
        ["a"],
        ["a", "items"],
    ]


# test_pregel_async.py::test_send_sequences / test_send_react_interrupt_control (a fan-out's
# `Send`s and a reducer: one write per `Send` task, in the order they were made)
async def test_a_fan_out_lists_each_send_tasks_write_in_send_order(saver: Any) -> None:
    b = StateGraph(S)
    b.add_node("a", lambda s: {"a": "A"})
    b.add_node("w", lambda x: {"items": [x]})
    b.add_edge(START, "a")
    b.add_conditional_edges("a", lambda s: [Send("w", 2), Send("w", 1), Send("w", 3)])
    b.add_edge("w", END)
    graph = b.compile(checkpointer=saver)
    config = cfg()
    assert (await graph.ainvoke({"a": "", "items": []}, config))["items"] == [2, 1, 3]
    listed = await tuples(saver, config)
    fan = listed[1]
    assert [(c, v) for _, c, v in writes(fan)] == [("items", [2]), ("items", [1]), ("items", [3])]
    history = [s async for s in graph.aget_state_history(config)]
    assert [tid for tid, _, _ in writes(fan)] == [t.id for t in history[1].tasks]
    assert [(c, v) for _, c, v in writes(listed[2])] == [("a", "A")]  # no `Send` writes
    no_routing(listed)


# test_pregel_async.py::test_conditional_entrypoint_graph_state and
# ::test_command_goto_with_static_breakpoints (a branch and a `Command(goto=)`:
# only the routed node's writes; the routing itself is not listed)
async def test_a_branch_and_a_goto_list_the_routed_nodes_writes_only(saver: Any) -> None:
    b = StateGraph(S)
    b.add_node("a", lambda s: {"a": "A"})
    b.add_node("x", lambda s: Command(update={"items": ["x"]}, goto="z"))
    b.add_node("y", lambda s: {"items": ["y"]})
    b.add_node("z", lambda s: {"a": "Z"})
    b.add_edge(START, "a")
    b.add_conditional_edges("a", lambda s: "x" if s["a"] == "A" else "y")
    graph = b.compile(checkpointer=saver)
    config = cfg()
    assert await graph.ainvoke({"a": "", "items": []}, config) == {"a": "Z", "items": ["x"]}
    listed = await tuples(saver, config)
    ids = await task_ids(graph, config)
    assert [writes(t) for t in listed[:3]] == [
        [],
        [(ids[1]["z"], "a", "Z")],
        [(ids[2]["x"], "items", ["x"])],
    ]
    no_routing(listed)


# test_pregel_async.py::test_pending_writes_resume (parallel tasks: ordered by node name,
# whichever finished first; each task's writes as it made them)
async def test_parallel_tasks_writes_are_ordered_by_node_name(saver: Any) -> None:
    b = StateGraph(S)
    b.add_node("start", lambda s: {"a": "A"})
    b.add_node("zed", lambda s: {"items": ["z"]})
    b.add_node("alpha", lambda s: {"items": ["a1"], "a": "alpha"})
    b.add_edge(START, "start")
    b.add_edge("start", "zed")
    b.add_edge("start", "alpha")
    graph = b.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"a": "", "items": []}, config)
    listed = await tuples(saver, config)
    ids = await task_ids(graph, config)
    assert writes(listed[1]) == [
        (ids[1]["alpha"], "items", ["a1"]),
        (ids[1]["alpha"], "a", "alpha"),
        (ids[1]["zed"], "items", ["z"]),
    ]


def asking(saver: Any) -> Any:
    def ask(state: S) -> dict[str, Any]:
        return {"a": state["a"] + interrupt("q?")}

    b = StateGraph(S)
    b.add_node("a", lambda s: {"a": "A"})
    b.add_node("ask", ask)
    b.add_edge(START, "a")
    b.add_edge("a", "ask")
    return b.compile(checkpointer=saver)


# test_pregel_async.py::test_interrupt_task_functional / test_pending_writes_resume: a pending
# interrupt is its task's `__interrupt__` write; once answered, the step's writes are the
# answer (`__resume__`, a list), the interrupt and the node's writes, in that order
async def test_an_interrupt_then_its_answer_and_the_nodes_writes(saver: Any) -> None:
    graph = asking(saver)
    config = cfg()
    await graph.ainvoke({"a": "", "items": []}, config)
    paused = await tuples(saver, config)
    state = await graph.aget_state(config)
    (pending,) = state.interrupts
    tid = state.tasks[0].id
    assert writes(paused[0]) == [(tid, "__interrupt__", [pending])]
    assert isinstance(pending, Interrupt) and pending.value == "q?"
    await graph.ainvoke(Command(resume="!"), config)
    listed = await tuples(saver, config)
    assert listed[1].config == paused[0].config
    assert writes(listed[1]) == [
        (tid, "__resume__", ["!"]),
        (tid, "__interrupt__", [pending]),
        (tid, "a", "A!"),
    ]
    assert writes(listed[0]) == []
    # the answer does not show in the task's result
    history = [s async for s in graph.aget_state_history(config)]
    assert history[1].tasks[0].result == {"a": "A!"}


# test_pregel_async.py::test_multiple_interrupt_state_persistence (two `interrupt()` calls
# answered one after the other, beside a finished sibling: one `__resume__` with every answer,
# the last interrupt, the node's writes, then the sibling's)
async def test_answers_across_two_pauses_are_one_resume_write(saver: Any) -> None:
    def ask(state: S) -> dict[str, Any]:
        return {"a": interrupt("q1") + interrupt("q2")}

    b = StateGraph(S)
    b.add_node("ask", ask)
    b.add_node("other", lambda s: {"items": ["o"]})
    b.add_edge(START, "ask")
    b.add_edge(START, "other")
    graph = b.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"a": "", "items": []}, config)
    ids = {t.name: t.id for t in (await graph.aget_state(config)).tasks}
    await graph.ainvoke(Command(resume="1"), config)
    (second,) = (await graph.aget_state(config)).interrupts
    assert writes((await tuples(saver, config))[0]) == [
        (ids["ask"], "__resume__", ["1"]),
        (ids["ask"], "__interrupt__", [second]),
        (ids["other"], "items", ["o"]),
    ]
    await graph.ainvoke(Command(resume="2"), config)
    listed = await tuples(saver, config)
    assert writes(listed[1]) == [
        (ids["ask"], "__resume__", ["1", "2"]),
        (ids["ask"], "__interrupt__", [second]),
        (ids["ask"], "a", "12"),
        (ids["other"], "items", ["o"]),
    ]


# test_pregel_async.py::test_pending_writes_resume (a failing node with a finished sibling, then
# the step run again to its end: the error stays with the writes of both runs)
@pytest.mark.parametrize("durability", ["sync", "async"])
async def test_a_failed_step_keeps_the_error_and_the_siblings_write(
    saver: Any, durability: Any
) -> None:
    class V(TypedDict):
        value: Annotated[int, operator.add]

    broken = {"on": True}

    async def two(state: V) -> dict[str, Any]:
        if broken["on"]:
            raise ConnectionError("I'm not good")
        return {"value": 3}

    b = StateGraph(V)
    b.add_node("one", lambda s: {"value": 2})
    b.add_node("two", two)
    b.add_edge(START, "one")
    b.add_edge(START, "two")
    graph = b.compile(checkpointer=saver)
    config = cfg()
    with pytest.raises(ConnectionError):
        await graph.ainvoke({"value": 1}, config, durability=durability)
    failed = await saver.aget_tuple(config)
    ids = {t.name: t.id for t in (await graph.aget_state(config)).tasks}
    error = 'ConnectionError("I\'m not good")'
    assert writes(failed) == [(ids["one"], "value", 2), (ids["two"], "__error__", error)]
    broken["on"] = False
    assert await graph.ainvoke(None, config, durability=durability) == {"value": 6}
    listed = await tuples(saver, config)
    assert len(listed) == 3
    assert writes(listed[1]) == [
        (ids["one"], "value", 2),
        (ids["two"], "__error__", error),
        (ids["two"], "value", 3),
    ]
    assert writes(listed[2]) == [(listed[2].pending_writes[0][0], "value", 1)]
    assert listed[1].checkpoint["updated_channels"] == ["value"]


# test_pregel_async.py::test_pending_writes_resume with durability="exit": only the last
# checkpoint is stored, with no writes
async def test_durability_exit_stores_one_checkpoint_without_writes(saver: Any) -> None:
    config = cfg()
    b = StateGraph(S)
    b.add_node("a", lambda s: {"a": "A"})
    b.add_node("b", lambda s: {"items": ["b"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"a": "", "items": []}, config, durability="exit")
    listed = await tuples(saver, config)
    assert [(t.metadata["step"], writes(t), t.parent_config) for t in listed] == [(2, [], None)]


# test_pregel_async.py::test_command_with_static_breakpoints: a `Command(update=...)` while
# paused is written by the null task (LangGraph's NULL_TASK_ID), listed first
async def test_an_update_while_paused_is_the_null_tasks_write(saver: Any) -> None:
    b = StateGraph(S)
    b.add_node("a", lambda s: {"a": "a"})
    b.add_node("b", lambda s: {"a": s["a"] + "b", "items": ["b"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    graph = b.compile(checkpointer=saver, interrupt_before=["b"])
    config = cfg()
    await graph.ainvoke({"a": "", "items": []}, config)
    await graph.ainvoke(Command(update={"a": "V"}), config)
    listed = await tuples(saver, config)
    ids = await task_ids(graph, config)
    assert writes(listed[1]) == [
        (NULL_TASK_ID, "a", "V"),
        (ids[1]["b"], "a", "Vb"),
        (ids[1]["b"], "items", ["b"]),
    ]


# test_pregel_async.py::test_checkpointer_null_pending_writes (a root-value state: LangGraph's
# channel is `__root__`)
async def test_a_root_value_state_is_the_root_channel(saver: Any) -> None:
    b = StateGraph(Annotated[list, operator.add])  # type: ignore[arg-type]
    b.add_node("n", lambda s: ["n"])
    b.add_edge(START, "n")
    graph = b.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke(["x"], config)
    listed = await tuples(saver, config)
    assert [t.checkpoint["channel_values"] for t in listed[:2]] == [
        {"__root__": ["x", "n"]},
        {"__root__": ["x"]},
    ]
    assert [[(c, v) for _, c, v in writes(t)] for t in listed] == [
        [],
        [("__root__", ["n"])],
        [("__root__", ["x"])],
    ]


# test_pregel_async.py::test_subgraph_checkpoint_true and
# test_large_cases.py::test_nested_graph_state: the parent's subgraph task writes the
# subgraph's output; the subgraph's namespace lists its own steps
async def test_a_subgraph_task_and_the_subgraphs_own_steps(saver: Any) -> None:
    sb = StateGraph(S)
    sb.add_node("inner", lambda s: {"a": s["a"] + "s"})
    sb.add_edge(START, "inner")
    b = StateGraph(S)
    b.add_node("p", lambda s: {"a": "P"})
    b.add_node("sub", sb.compile())
    b.add_edge(START, "p")
    b.add_edge("p", "sub")
    graph = b.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"a": "", "items": []}, config)
    root = await tuples(saver, config)
    ids = await task_ids(graph, config)
    assert writes(root[1]) == [(ids[1]["sub"], "a", "Ps"), (ids[1]["sub"], "items", [])]
    everything = [t async for t in saver.alist(config)]
    inner = [t for t in everything if t.config["configurable"]["checkpoint_ns"]]
    assert [t.metadata["step"] for t in inner] == [1, 0, -1]
    assert [[(c, v) for _, c, v in writes(t)] for t in inner] == [
        [],
        [("a", "Ps")],
        [("a", "P"), ("items", [])],
    ]


# LangGraph's savers read pending writes per checkpoint: a page (`before`, `limit`, `filter`)
# lists the same writes as the whole history
async def test_a_page_of_the_history_lists_the_same_writes(saver: Any) -> None:
    b = StateGraph(S)
    for n in ("a", "b", "c"):
        b.add_node(n, lambda s, n=n: {"items": [n]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    b.add_edge("b", "c")
    graph = b.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"a": "", "items": []}, config)
    whole = await tuples(saver, config)
    assert await tuples(saver, config, before=whole[0].config, limit=2) == whole[1:3]
    assert await tuples(saver, config, filter={"step": 1}) == [whole[2]]
    by_id = {"configurable": {**whole[3].config["configurable"]}}
    assert [t async for t in saver.alist(by_id)] == [whole[3]]
    assert [t.metadata["step"] for t in whole] == [3, 2, 1, 0, -1]
    assert [[(c, v) for _, c, v in writes(t)] for t in whole] == [
        [],
        [("items", ["c"])],
        [("items", ["b"])],
        [("items", ["a"])],
        [("a", ""), ("items", [])],
    ]
    assert [t.pending_writes for t in saver.list(config)][1:] == [
        t.pending_writes for t in whole[1:]
    ]
