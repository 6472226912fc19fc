"""Stream chunks and the order of a step's writes, restated from LangGraph's tests (and the
behaviour LangGraph 1.2.22 shows for the same graphs), run on every driver."""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, Send, get_stream_writer, interrupt
from hitl_async.graph import START, StateGraph

pytestmark = pytest.mark.anyio


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


class AB(TypedDict, total=False):
    a: int
    b: int


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


async def collect(graph: Any, value: Any, config: Any, **kw: Any) -> list[Any]:
    return [c async for c in graph.astream(value, config, **kw)]


def logger(name: str) -> Any:
    """A node that logs its name, or `name|arg` when called through a `Send`."""

    def fn(state: Any) -> dict[str, Any]:
        if isinstance(state, dict) and "log" in state:
            return {"log": [name]}
        return {"log": [f"{name}|{state}"]}

    return fn


def one_node(saver: Any, fn: Any) -> Any:
    b = StateGraph(AB)
    b.add_node("n", fn)
    b.add_edge(START, "n")
    return b.compile(checkpointer=saver)


# issue #14: stream({}, stream_mode="values") yields no initial {} chunk
async def test_values_stream_of_empty_input_has_no_initial_chunk(saver: Any) -> None:
    graph = one_node(saver, lambda s: {"a": 1})
    assert await collect(graph, {}, cfg(), stream_mode="values") == [{"a": 1}]


# test_pregel_async.py::test_interrupt_stream_mode_values (first chunk is the input)
async def test_values_stream_starts_with_the_input(saver: Any) -> None:
    graph = one_node(saver, lambda s: {"a": 1})
    assert await collect(graph, {"a": 5}, cfg(), stream_mode="values") == [{"a": 5}, {"a": 1}]


# issue #14: a step that wrote no state yields no values chunk
async def test_values_stream_skips_steps_that_wrote_nothing(saver: Any) -> None:
    b = StateGraph(AB)
    b.add_node("empty", lambda s: {})
    b.add_node("m", lambda s: {"b": 2})
    b.add_node("none", lambda s: None)
    b.add_node("same", lambda s: {"b": 2})
    b.add_edge(START, "empty")
    b.add_edge("empty", "m")
    b.add_edge("m", "none")
    b.add_edge("none", "same")
    graph = b.compile(checkpointer=saver)
    chunks = await collect(graph, {"a": 1}, cfg(), stream_mode="values")
    # a write of the same value still counts as a write
    assert chunks == [{"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2}]
    assert len([s async for s in graph.aget_state_history(cfg())]) == 6


# issue #14: resuming yields the current state first, even when it is empty
async def test_values_stream_on_resume_starts_with_the_current_state(saver: Any) -> None:
    graph = one_node(saver, lambda s: {"a": interrupt("x")})
    first = await collect(graph, {}, cfg(), stream_mode="values")
    assert len(first) == 1 and [i.value for i in first[0]["__interrupt__"]] == ["x"]
    assert await collect(graph, Command(resume=3), cfg(), stream_mode="values") == [{}, {"a": 3}]


# issue #14: continuing a finished thread yields its state once
async def test_values_stream_of_none_on_a_finished_thread(saver: Any) -> None:
    graph = one_node(saver, lambda s: {"a": 1})
    await graph.ainvoke({"a": 5}, cfg())
    assert await collect(graph, None, cfg(), stream_mode="values") == [{"a": 1}]


# test_pregel_async.py::test_invoke_two_processes_no_out (a node with no update)
async def test_updates_stream_shows_none_for_a_node_that_wrote_nothing(saver: Any) -> None:
    graph = one_node(saver, lambda s: None)
    assert await collect(graph, {"a": 1}, cfg()) == [{"n": None}]


# test_pregel_async.py::test_imp_stream_order (several modes at once)
async def test_several_modes_yield_mode_chunk_pairs(saver: Any) -> None:
    def node(state: AB) -> dict[str, Any]:
        get_stream_writer()({"progress": 1})
        return {"b": 2}

    graph = one_node(saver, node)
    out = await collect(graph, {"a": 1}, cfg(), stream_mode=["values", "updates", "custom"])
    assert out == [
        ("values", {"a": 1}),
        ("custom", {"progress": 1}),
        ("updates", {"n": {"b": 2}}),
        ("values", {"a": 1, "b": 2}),
    ]


# test_pregel_async.py::test_invoke_single_process_in_out (invoke with another stream mode)
async def test_invoke_with_updates_mode_returns_the_chunks(saver: Any) -> None:
    graph = one_node(saver, lambda s: {"b": 2})
    assert await graph.ainvoke({"a": 1}, cfg(), stream_mode="updates") == [{"n": {"b": 2}}]


# issue #14: parallel writes land in LangGraph's order (by node name), not add order
async def test_parallel_writes_are_applied_by_node_name(saver: Any) -> None:
    b = StateGraph(Log)
    for n in ("b", "a"):
        b.add_node(n, logger(n))
        b.add_edge(START, n)
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"log": []}, cfg()) == {"log": ["a", "b"]}
    # the join after them sees the same order
    b.add_node("c", logger("c"))
    b.add_edge("b", "c")
    b.add_edge("a", "c")
    assert await b.compile(checkpointer=saver).ainvoke({"log": []}, cfg("2")) == {
        "log": ["a", "b", "c"]
    }


# issue #14: the order is by name as text ("node10" before "node9", capitals first)
async def test_parallel_writes_order_compares_names_as_text(saver: Any) -> None:
    b = StateGraph(Log)
    for n in ("node9", "node10", "Z", "_x"):
        b.add_node(n, logger(n))
        b.add_edge(START, n)
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"log": []}, cfg()) == {"log": ["Z", "_x", "node10", "node9"]}


# issue #14: a conditional edge's list order does not decide the write order
async def test_conditional_fan_out_writes_by_node_name(saver: Any) -> None:
    b = StateGraph(Log)
    for n in ("r", "c", "a", "b"):
        b.add_node(n, logger(n))
    b.add_edge(START, "r")
    b.add_conditional_edges("r", lambda s: ["c", "a", "b"])
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"log": []}, cfg()) == {"log": ["r", "a", "b", "c"]}


# issue #14: Sends write after edge-triggered nodes, in the order they were made
async def test_send_writes_follow_node_writes_in_send_order(saver: Any) -> None:
    b = StateGraph(Log)
    for n in ("r", "w", "a", "z"):
        b.add_node(n, logger(n))
    b.add_edge(START, "r")
    b.add_conditional_edges("r", lambda s: [Send("w", 2), "z", Send("w", 1), "a"])
    graph = b.compile(checkpointer=saver, interrupt_after=["r"])
    await graph.ainvoke({"log": []}, cfg())
    snap = await graph.aget_state(cfg())
    assert [t.name for t in snap.tasks] == ["w", "w", "a", "z"]  # Sends first, as LangGraph
    assert await graph.ainvoke(None, cfg()) == {"log": ["r", "a", "z", "w|2", "w|1"]}


# issue #14: Sends made by two nodes: those of the node first by name come first
async def test_sends_of_two_nodes_are_ordered_by_their_makers_names(saver: Any) -> None:
    b = StateGraph(Log)
    for n in ("b", "a", "w"):
        b.add_node(n, logger(n))
    b.add_edge(START, "b")
    b.add_edge(START, "a")
    b.add_conditional_edges("b", lambda s: [Send("w", "fromb")])
    b.add_conditional_edges("a", lambda s: [Send("w", "froma")])
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"log": []}, cfg()) == {"log": ["a", "b", "w|froma", "w|fromb"]}


# test_pregel_async.py::test_concurrent_emit_sends
async def test_sends_from_two_parallel_nodes_and_a_plain_edge(saver: Any) -> None:
    b = StateGraph(Log)
    for n in ("1", "1.1", "2", "3", "3.1"):
        b.add_node(n, logger(n))
    b.add_edge(START, "1")
    b.add_edge(START, "1.1")
    b.add_conditional_edges("1", lambda s: [Send("2", 1), Send("2", 2), "3.1"])
    b.add_conditional_edges("1.1", lambda s: [Send("2", 3), Send("2", 4)])
    b.add_conditional_edges("2", lambda s: "3")
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"log": ["0"]}, cfg()) == {
        "log": ["0", "1", "1.1", "3.1", "2|1", "2|2", "2|3", "2|4", "3"]
    }


# test_pregel_async.py::test_cond_edge_after_send
async def test_a_conditional_edge_after_sends_triggers_its_node_once(saver: Any) -> None:
    b = StateGraph(Log)
    for n in ("1", "2", "3"):
        b.add_node(n, logger(n))
    b.add_edge(START, "1")
    b.add_conditional_edges("1", lambda s: [Send("2", "x"), Send("2", "y")])
    b.add_conditional_edges("2", lambda s: "3")
    graph = b.compile(checkpointer=saver)
    out = await collect(graph, {"log": ["0"]}, cfg())
    assert out[0] == {"1": {"log": ["1"]}} and out[3] == {"3": {"log": ["3"]}}
    # the Send tasks' updates come as each finishes (live); the state is in Send order
    assert sorted(c["2"]["log"][0] for c in out[1:3]) == ["2|x", "2|y"]
    assert (await graph.aget_state(cfg())).values == {"log": ["0", "1", "2|x", "2|y", "3"]}


# test_pregel_async.py::test_send_sequences (with a static breakpoint in between)
async def test_sends_resume_after_a_breakpoint_in_the_same_order(saver: Any) -> None:
    b = StateGraph(Log)
    for n in ("1", "2", "3", "3.1"):
        b.add_node(n, logger(n))
    b.add_edge(START, "1")
    b.add_conditional_edges("1", lambda s: [Send("2", 3), Send("2", 4), "3.1"])
    b.add_conditional_edges("2", lambda s: "3")
    graph = b.compile(checkpointer=saver, interrupt_before=["3.1"])
    assert await graph.ainvoke({"log": ["0"]}, cfg()) == {"log": ["0", "1"]}
    assert await graph.ainvoke(None, cfg()) == {"log": ["0", "1", "3.1", "2|3", "2|4", "3"]}


# issue #14: keys only the output schema has are returned (LangGraph keeps them as state keys)
async def test_output_only_keys_are_returned_and_streamed(saver: Any) -> None:
    class In(TypedDict, total=False):
        a: int

    class Out(TypedDict, total=False):
        b: int
        extra: str

    b = StateGraph(AB, input_schema=In, output_schema=Out)
    b.add_node("n", lambda s: {"a": 5, "extra": "x"})
    b.add_node("m", lambda s: {"b": 2})
    b.add_edge(START, "n")
    b.add_edge("n", "m")
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"a": 1}, cfg()) == {"b": 2, "extra": "x"}
    assert (await graph.aget_state(cfg())).values == {"a": 5, "b": 2, "extra": "x"}
    # the values stream shows every state key, as LangGraph's does
    assert await collect(graph, {"a": 1}, cfg("2"), stream_mode="values") == [
        {"a": 1},
        {"a": 5, "extra": "x"},
        {"a": 5, "b": 2, "extra": "x"},
    ]
    assert await collect(graph, {"a": 1}, cfg("3")) == [
        {"n": {"a": 5, "extra": "x"}},
        {"m": {"b": 2}},
    ]


# issue #14: nodes of the state schema do not see output-only keys
async def test_nodes_see_only_their_state_schemas_keys(saver: Any) -> None:
    class Out(TypedDict, total=False):
        a: int
        extra: str

    seen: list[dict[str, Any]] = []

    def m(state: AB) -> dict[str, Any]:
        seen.append(dict(state))
        return {"a": 6}

    b = StateGraph(AB, output_schema=Out)
    b.add_node("n", lambda s: {"a": 5, "extra": "x"})
    b.add_node("m", m)
    b.add_edge(START, "n")
    b.add_edge("n", "m")
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"a": 1}, cfg()) == {"a": 6, "extra": "x"}
    assert seen == [{"a": 5}]


# test_pregel_async.py::test_debug_retry (a continued run streams the checkpoint it starts from)
async def test_checkpoints_stream_starts_with_the_checkpoint_a_run_continues_from(
    saver: Any,
) -> None:
    b = StateGraph(Log)
    b.add_node("one", logger("one"))
    b.add_node("two", lambda s: {"log": [interrupt("x")]})
    b.add_edge(START, "one")
    b.add_edge("one", "two")
    graph = b.compile(checkpointer=saver, interrupt_before=["one"])

    async def shown(value: Any, config: Any) -> list[tuple[Any, ...]]:
        chunks = await collect(graph, value, config, stream_mode="checkpoints")
        return [(c["metadata"]["source"], c["metadata"]["step"], c["next"]) for c in chunks]

    assert await shown({"log": []}, cfg()) == [("input", -1, ["__start__"]), ("loop", 0, ["one"])]
    assert await shown(None, cfg()) == [("loop", 0, ["one"]), ("loop", 1, ["two"])]
    assert await shown(Command(resume="r"), cfg()) == [("loop", 1, ["two"]), ("loop", 2, [])]
    await graph.aupdate_state(cfg(), {"log": ["u"]})
    assert await shown(None, cfg()) == [("update", 3, [])]
    third = [s async for s in graph.aget_state_history(cfg())][2]
    assert await shown(None, third.config) == [("fork", 2, ["two"])]


# issue #14 (LangGraph's tick reports every task of a resumed step, finished ones included)
async def test_tasks_stream_on_resume_starts_every_task_and_reports_the_still_paused(
    saver: Any,
) -> None:
    b = StateGraph(Log)
    b.add_node("o", logger("o"))
    b.add_node("a1", lambda s: {"log": [interrupt("q1")]})
    b.add_node("a2", lambda s: {"log": [interrupt("q2")]})
    for n in ("o", "a1", "a2"):
        b.add_edge(START, n)
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": []}, cfg())
    ids = {i.value: i.id for i in (await graph.aget_state(cfg())).interrupts}
    chunks = await collect(graph, Command(resume={ids["q1"]: "A"}), cfg(), stream_mode="tasks")
    starts = [c["name"] for c in chunks if "input" in c]
    results = {c["name"]: c for c in chunks if "result" in c}
    assert starts == ["a1", "a2", "o"]  # by name, as LangGraph's running loop orders them
    assert results["a1"]["result"] == {"log": ["A"]} and results["a1"]["interrupts"] == []
    assert results["a2"]["result"] == {}
    assert [i["value"] for i in results["a2"]["interrupts"]] == ["q2"]
    assert "o" not in results


# issue #14: cached re-emission follows the step's task order (by name), not graph order
async def test_cached_updates_on_resume_come_in_name_order(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("z", logger("z"))
    b.add_node("b", lambda s: {"log": [interrupt("q")]})
    b.add_node("a", logger("a"))
    for n in ("z", "b", "a"):
        b.add_edge(START, n)
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"log": []}, cfg())
    assert [t.name for t in (await graph.aget_state(cfg())).tasks] == ["z", "b", "a"]
    assert await collect(graph, Command(resume="B"), cfg()) == [
        {"a": {"log": ["a"]}, "__metadata__": {"cached": True}},
        {"z": {"log": ["z"]}, "__metadata__": {"cached": True}},
        {"b": {"log": ["B"]}},
    ]
