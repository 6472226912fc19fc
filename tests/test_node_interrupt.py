"""`NodeInterrupt` (`hitl_async.errors`), LangGraph's deprecated way for a node to pause: the
behaviour of LangGraph 1.2.22 on the same graph, restated (its own tests only check the
deprecation warning): the thread pauses at the node with an interrupt carrying the value
(`__interrupt__` in the stream, `state.tasks[...].interrupts`), and continuing it, with `None`
or a `Command(resume=...)`, runs the node again from its start; on memory and a durable store."""

from __future__ import annotations

from typing import Any

import pytest
from typing_extensions import TypedDict

import hitl_async
from hitl_async import Command, GraphInterrupt, Interrupt
from hitl_async.errors import NodeInterrupt
from hitl_async.graph import START, StateGraph

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:NodeInterrupt is deprecated:DeprecationWarning"),
]
DRIVERS = pytest.mark.parametrize("saver", ["memory", "sqlite"], indirect=True)


class State(TypedDict):
    n: int


def gated(calls: list[str], checkpointer: Any = None) -> Any:
    """START -> a -> b; `a` pauses with NodeInterrupt until n >= 2."""

    def a(state: State) -> dict[str, int]:
        calls.append("a")
        if state["n"] < 2:
            raise NodeInterrupt({"need": "n >= 2", "n": state["n"]})
        return {"n": state["n"] + 10}

    def b(state: State) -> dict[str, int]:
        calls.append("b")
        return {"n": state["n"] + 1}

    builder = StateGraph(State)
    builder.add_node("a", a)
    builder.add_node("b", b)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    return builder.compile(checkpointer=checkpointer)


@DRIVERS
async def test_a_node_interrupt_pauses_the_thread_with_its_value(saver: Any) -> None:
    graph = gated([], saver)
    cfg = {"configurable": {"thread_id": "t"}}
    with pytest.warns(DeprecationWarning, match="NodeInterrupt is deprecated"):
        chunks = [c async for c in graph.astream({"n": 0}, cfg, stream_mode=["updates", "values"])]
    value = {"need": "n >= 2", "n": 0}
    (update,) = [c for mode, c in chunks if mode == "updates"]
    (paused,) = update["__interrupt__"]
    assert paused.value == value and paused.id
    assert chunks[-1] == ("values", {"n": 0, "__interrupt__": (paused,)})

    state = await graph.aget_state(cfg)
    assert state.next == ("a",)
    assert state.tasks[0].name == "a" and state.tasks[0].interrupts == (paused,)
    assert state.interrupts == (paused,)


@DRIVERS
async def test_continuing_with_none_runs_the_node_again(saver: Any) -> None:
    calls: list[str] = []
    graph = gated(calls, saver)
    cfg = {"configurable": {"thread_id": "t"}}
    await graph.ainvoke({"n": 0}, cfg)
    out = await graph.ainvoke(None, cfg)  # nothing changed: it pauses again
    assert out["n"] == 0 and [i.value["n"] for i in out["__interrupt__"]] == [0]
    assert calls == ["a", "a"]

    await graph.aupdate_state(cfg, {"n": 5})  # what the node checks has changed
    assert (await graph.aget_state(cfg)).next == ("a",)
    assert await graph.ainvoke(None, cfg) == {"n": 16}
    assert calls == ["a", "a", "a", "b"]
    assert (await graph.aget_state(cfg)).next == ()


@DRIVERS
async def test_a_resume_runs_the_node_again_and_it_pauses_again(saver: Any) -> None:
    calls: list[str] = []
    graph = gated(calls, saver)
    cfg = {"configurable": {"thread_id": "t"}}
    first = (await graph.ainvoke({"n": 0}, cfg))["__interrupt__"]
    again = (await graph.ainvoke(Command(resume="go on"), cfg))["__interrupt__"]
    assert calls == ["a", "a"]
    assert [i.value for i in again] == [i.value for i in first]
    state = await graph.aget_state(cfg)
    assert state.next == ("a",) and state.tasks[0].interrupts == tuple(again)
    with pytest.raises(hitl_async.UnknownInterruptError):  # strict as ever for unknown ids
        await graph.ainvoke(Command(resume={"0" * 32: 1}), cfg)


async def test_without_a_checkpointer_the_run_ends_paused() -> None:
    out = await gated([]).ainvoke({"n": 1})
    assert out["n"] == 1 and [i.value["n"] for i in out["__interrupt__"]] == [1]


@DRIVERS
async def test_a_given_id_is_kept(saver: Any) -> None:
    def ask(state: State) -> None:
        raise NodeInterrupt("why?", id="my-id")

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    graph = builder.compile(checkpointer=saver)
    out = await graph.ainvoke({"n": 0}, {"configurable": {"thread_id": "t"}})
    assert out["__interrupt__"] == [Interrupt("why?", "my-id")]


def test_the_names_langgraph_code_imports() -> None:
    assert hitl_async.NodeInterrupt is NodeInterrupt
    with pytest.warns(DeprecationWarning, match="use `hitl_async.types.interrupt`"):
        error = NodeInterrupt("v")
    assert isinstance(error, GraphInterrupt)
    assert error.interrupts == (Interrupt("v", "placeholder-id"),)  # outside a node: LangGraph's


@DRIVERS
async def test_beside_an_interrupt_call_both_rerun_on_none(saver: Any) -> None:
    """As LangGraph 1.2.22: continuing with None reruns every paused task (the `interrupt()`
    asks again under the same id), the answer reruns them again."""
    calls: list[str] = []

    def asks(state: State) -> dict[str, int]:
        calls.append("asks")
        return {"n": hitl_async.interrupt("a number?")}

    def gate(state: State) -> None:
        calls.append("gate")
        raise NodeInterrupt("closed")

    builder = StateGraph(State)
    builder.add_node("asks", asks)
    builder.add_node("gate", gate)
    builder.add_edge(START, "asks")
    builder.add_edge(START, "gate")
    graph = builder.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "t"}}
    out = await graph.ainvoke({"n": 0}, cfg)
    by_value = {i.value: i.id for i in out["__interrupt__"]}
    assert set(by_value) == {"a number?", "closed"}
    again = await graph.ainvoke(None, cfg)
    assert sorted(calls) == ["asks", "asks", "gate", "gate"]
    assert {i.value: i.id for i in again["__interrupt__"]}["a number?"] == by_value["a number?"]
    await graph.ainvoke(Command(resume={by_value["a number?"]: 7}), cfg)
    assert sorted(calls) == ["asks", "asks", "asks", "gate", "gate", "gate"]
    state = await graph.aget_state(cfg)
    assert [i.value for i in state.interrupts] == ["closed"]
    assert state.tasks[0].result == {"n": 7} and state.tasks[1].interrupts[0].value == "closed"


@DRIVERS
async def test_in_a_subgraph_continuing_the_parent_runs_the_node_again(saver: Any) -> None:
    calls: list[str] = []

    def low(state: State) -> dict[str, int]:
        calls.append("low")
        if state["n"] < 2:
            raise NodeInterrupt("too low")
        return {"n": state["n"] + 10}

    inner = StateGraph(State)
    inner.add_node("low", low)
    inner.add_edge(START, "low")
    outer = StateGraph(State)
    outer.add_node("bump", lambda s: {"n": s["n"] + 1})
    outer.add_node("inner", inner.compile())
    outer.add_edge(START, "bump")
    outer.add_edge("bump", "inner")
    graph = outer.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "t"}}
    out = await graph.ainvoke({"n": 0}, cfg)
    assert out["n"] == 1 and [i.value for i in out["__interrupt__"]] == ["too low"]
    again = await graph.ainvoke(None, cfg)
    assert [i.value for i in again["__interrupt__"]] == ["too low"] and calls == ["low"] * 2
    again = await graph.ainvoke(Command(resume="ignored"), cfg)
    assert [i.value for i in again["__interrupt__"]] == ["too low"] and calls == ["low"] * 3
    await graph.aupdate_state(cfg, {"n": 5})  # as in LangGraph: the subgraph starts anew
    assert await graph.ainvoke(None, cfg) == {"n": 15}


@DRIVERS
async def test_in_a_task_of_an_entrypoint_continuing_runs_it_again(saver: Any) -> None:
    from hitl_async.func import entrypoint, task

    calls: list[str] = []
    gate = {"open": False}

    @task
    def check(x: int) -> int:
        calls.append("check")
        if not gate["open"]:
            raise NodeInterrupt("closed")
        return x * 2

    @entrypoint(checkpointer=saver)
    async def flow(x: int) -> int:
        calls.append("flow")
        return await check(x) + 1

    cfg = {"configurable": {"thread_id": "t"}}
    assert [i.value for i in (await flow.ainvoke(3, cfg))["__interrupt__"]] == ["closed"]
    assert [i.value for i in (await flow.ainvoke(None, cfg))["__interrupt__"]] == ["closed"]
    gate["open"] = True
    assert await flow.ainvoke(None, cfg) == 7
    assert calls == ["flow", "check"] * 3
