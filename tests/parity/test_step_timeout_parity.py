"""`graph.step_timeout` of LangGraph 1.2.22 — a superstep that runs longer raises a
`TimeoutError`; tasks that finished keep their writes, so running the thread again runs only
the rest — restated from its test_pregel(_async).py (each case names the one it comes from) and
checked by running the same graphs on LangGraph. They run on every driver.

Slow async nodes sleep far past the limit (the timeout cancels them at once); slow sync nodes
sleep a little past it (a thread cannot be stopped: the step waits for it, as LangGraph does)."""

from __future__ import annotations

import operator
import time
import uuid
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    Command,
    InvalidConfigError,
    StateGraph,
    StepTimeoutError,
    interrupt,
)
from hitl_async.errors import ParentCommand
from hitl_async.func import entrypoint, task

pytestmark = pytest.mark.anyio

LIMIT = 0.2


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def fan_out(saver: Any, fast: Any, slow: Any) -> Any:
    """`fast` and `slow` side by side from START, then `after` once both wrote."""
    b = StateGraph(Log)
    b.add_node("fast", fast)
    b.add_node("slow", slow)
    b.add_node("after", lambda s: {"log": ["after"]})
    b.add_edge(START, "fast")
    b.add_edge(START, "slow")
    b.add_edge(["fast", "slow"], "after")
    graph = b.compile(checkpointer=saver)
    graph.step_timeout = LIMIT
    return graph


# observed on LangGraph 1.2.22 (ainvoke): the slow task is cancelled at the limit, the fast
# one's writes are pending writes, `next` names the slow one, and continuing runs only it
async def test_the_slow_task_is_cancelled_and_the_finished_one_keeps_its_writes(
    saver: Any,
) -> None:
    runs: list[str] = []
    cancelled: list[bool] = []

    async def fast(state: Log) -> Log:
        runs.append("fast")
        return {"log": ["fast"]}

    async def slow(state: Log) -> Log:
        runs.append("slow")
        if not cancelled:
            try:
                await anyio.sleep(30)
            except anyio.get_cancelled_exc_class():
                cancelled.append(True)
                raise
        return {"log": ["slow"]}

    graph = fan_out(saver, fast, slow)
    config = cfg()
    began = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        await graph.ainvoke({"log": ["in"]}, config)
    assert time.monotonic() - began < 5
    assert isinstance(caught.value, StepTimeoutError) and caught.value.cancelled == ("slow",)
    assert cancelled == [True]
    state = await graph.aget_state(config)
    assert state.values == {"log": ["in", "fast"]} and state.next == ("slow",)
    assert [(t.name, t.result) for t in state.tasks] == [
        ("fast", {"log": ["fast"]}),
        ("slow", None),
    ]
    assert await graph.ainvoke(None, config) == {"log": ["in", "fast", "slow", "after"]}
    assert sorted(runs) == ["fast", "slow", "slow"]


# observed on LangGraph 1.2.22 (invoke): sync nodes cannot be stopped, so the step raises once
# the slow one ended, and keeps both writes; continuing runs neither again
async def test_through_invoke_a_late_sync_node_ends_and_keeps_its_writes(saver: Any) -> None:
    runs: list[str] = []

    def fast(state: Log) -> Log:
        runs.append("fast")
        return {"log": ["fast"]}

    def slow(state: Log) -> Log:
        runs.append("slow")
        time.sleep(LIMIT * 2)
        return {"log": ["slow"]}

    graph = fan_out(saver, fast, slow)
    config = cfg()

    def script() -> Any:  # a plain script: the sync API, no event loop of its own
        with pytest.raises(TimeoutError, match=r"step_timeout=0\.2s"):
            graph.invoke({"log": ["in"]}, config)
        state = graph.get_state(config)
        return state, graph.invoke(None, config)

    state, out = await anyio.to_thread.run_sync(script)
    assert state.values == {"log": ["in", "fast", "slow"]} and state.next == ()
    assert out == {"log": ["in", "fast", "slow", "after"]}
    assert sorted(runs) == ["fast", "slow"]  # (each ran once, in threads of their own)


# a difference (README): under ainvoke LangGraph marks a sync node still running at the limit
# cancelled and drops its writes once its thread ends; here they are kept, as under invoke
async def test_through_ainvoke_a_late_sync_node_keeps_its_writes(saver: Any) -> None:
    def slow(state: Log) -> Log:
        time.sleep(LIMIT * 2)
        return {"log": ["slow"]}

    graph = fan_out(saver, lambda s: {"log": ["fast"]}, slow)
    config = cfg()
    with pytest.raises(StepTimeoutError, match="its tasks ended only after it") as caught:
        await graph.ainvoke({"log": ["in"]}, config)
    assert caught.value.cancelled == ()
    state = await graph.aget_state(config)
    assert state.values == {"log": ["in", "fast", "slow"]} and state.next == ()
    assert await graph.ainvoke(None, config) == {"log": ["in", "fast", "slow", "after"]}


# observed on LangGraph 1.2.22 (test_pregel.py's single-node case): a lone slow sync node
async def test_a_lone_sync_node_past_the_limit_still_keeps_its_writes(saver: Any) -> None:
    def slow(state: Log) -> Log:
        time.sleep(LIMIT * 2)
        return {"log": ["slow"]}

    graph = StateGraph(Log).add_node("slow", slow).add_edge(START, "slow").compile(saver)
    graph.step_timeout = LIMIT
    config = cfg()

    def script() -> Any:
        with pytest.raises(TimeoutError):
            graph.invoke({"log": []}, config)
        return graph.get_state(config), graph.invoke(None, config)

    state, out = await anyio.to_thread.run_sync(script)
    assert state.values == {"log": ["slow"]} and state.next == ()
    assert out == {"log": ["slow"]}


# test_pregel_async.py::test_step_timeout_on_stream_hang
@pytest.mark.parametrize("hang", [LIMIT / 2, LIMIT * 1.5])
async def test_a_consumer_that_hangs_does_not_hold_off_the_timeout(saver: Any, hang: float) -> None:
    cancelled: list[bool] = []

    async def long(state: Log) -> Log:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise
        return {"log": ["long"]}

    async def short(state: Log) -> Log:
        await anyio.sleep(LIMIT / 4)
        return {"log": ["short"]}

    b = StateGraph(Log).add_node("long", long).add_node("short", short)
    b.add_conditional_edges(START, lambda s: ["long", "short"])
    graph = b.compile(checkpointer=saver)
    graph.step_timeout = LIMIT
    chunks: list[Any] = []
    with pytest.raises(TimeoutError):
        async for chunk in graph.astream({"log": []}, cfg(), stream_mode="updates"):
            chunks.append(chunk)
            await anyio.sleep(hang)
    assert chunks == [{"short": {"log": ["short"]}}]
    assert cancelled == [True]


# observed on LangGraph 1.2.22 (ainvoke): a task that paused keeps its interrupt, the cancelled
# one runs again with the answer. Under invoke, with a sync node that ends late, LangGraph
# returns the interrupt instead (a difference, README): here the step times out the same way.
@pytest.mark.parametrize("sync", [False, True])
async def test_an_interrupt_asked_before_the_timeout_stays_pending(saver: Any, sync: bool) -> None:
    slow_runs: list[int] = []

    def asks(state: Log) -> Log:
        return {"log": [interrupt("go?")]}

    async def aslow(state: Log) -> Log:
        slow_runs.append(1)
        if len(slow_runs) == 1:
            await anyio.sleep(30)
        return {"log": ["slow"]}

    def slow(state: Log) -> Log:
        slow_runs.append(1)
        time.sleep(LIMIT * 2)
        return {"log": ["slow"]}

    b = StateGraph(Log).add_node("asks", asks).add_node("slow", slow if sync else aslow)
    b.add_edge(START, "asks").add_edge(START, "slow")
    graph = b.compile(checkpointer=saver)
    graph.step_timeout = LIMIT
    config = cfg()

    def script() -> Any:
        with pytest.raises(TimeoutError):
            graph.invoke({"log": []}, config)
        state = graph.get_state(config)
        return state, graph.invoke(Command(resume="yes"), config)

    if sync:
        state, out = await anyio.to_thread.run_sync(script)
    else:
        with pytest.raises(TimeoutError):
            await graph.ainvoke({"log": []}, config)
        state = await graph.aget_state(config)
        out = await graph.ainvoke(Command(resume="yes"), config)
    assert [i.value for i in state.interrupts] == ["go?"]
    assert state.next == (("asks",) if sync else ("asks", "slow"))
    assert out == {"log": ["yes", "slow"]}  # (in the order of node names)
    assert len(slow_runs) == (1 if sync else 2)


def _subgraph_pair(saver: Any, sync: bool) -> tuple[Any, Any]:
    """A parent running `sub` (`sfast` then `sslow`) beside `pfast`."""
    if sync:

        def sslow(state: Log) -> Log:
            time.sleep(LIMIT * 2)
            return {"log": ["sslow"]}

    else:

        async def sslow(state: Log) -> Log:
            if not sslow.ran:  # type: ignore[attr-defined]
                sslow.ran = True  # type: ignore[attr-defined]
                await anyio.sleep(30)
            return {"log": ["sslow"]}

        sslow.ran = False  # type: ignore[attr-defined]

    sb = StateGraph(Log).add_node("sfast", lambda s: {"log": ["sfast"]}).add_node("sslow", sslow)
    sub = sb.add_edge(START, "sfast").add_edge("sfast", "sslow").compile()
    pb = StateGraph(Log).add_node("sub", sub).add_node("pfast", lambda s: {"log": ["pfast"]})
    parent = pb.add_edge(START, "sub").add_edge(START, "pfast").compile(checkpointer=saver)
    return parent, sub


# observed on LangGraph 1.2.22: a subgraph's own step_timeout fails its parent's task with the
# TimeoutError; the parent's limit cancels the subgraph's task; either way continuing the
# thread finishes the subgraph where it stopped
@pytest.mark.parametrize("where", ["inner", "outer"])
@pytest.mark.parametrize("sync", [False, True])
async def test_a_subgraph_under_a_step_timeout(saver: Any, where: str, sync: bool) -> None:
    parent, sub = _subgraph_pair(saver, sync)
    (sub if where == "inner" else parent).step_timeout = LIMIT
    config = cfg()

    def script() -> Any:
        with pytest.raises(TimeoutError):
            parent.invoke({"log": []}, config)
        state = parent.get_state(config)
        sub.step_timeout = parent.step_timeout = None
        return state, parent.invoke(None, config)

    if sync:
        state, out = await anyio.to_thread.run_sync(script)
    else:
        with pytest.raises(TimeoutError):
            await parent.ainvoke({"log": []}, config)
        state = await parent.aget_state(config)
        sub.step_timeout = parent.step_timeout = None
        out = await parent.ainvoke(None, config)
    assert state.values == {"log": ["pfast"]} and state.next == ("sub",)
    assert out == {"log": ["pfast", "sfast", "sslow"]}


# test_pregel(_async).py::test_parent_command_goto (with_timeout "inner", "outer", "both")
@pytest.mark.parametrize("where", ["inner", "outer", "both"])
async def test_a_parent_command_goes_through_step_timeouts(saver: Any, where: str) -> None:
    def escalate(state: Log) -> Command[Any]:
        return Command(graph=Command.PARENT, goto="desk", update={"log": ["escalated"]})

    sb = StateGraph(Log).add_node("greet", lambda s: {"log": ["greeted"]})
    sub = sb.add_node("escalate", escalate).add_edge(START, "greet").add_edge("greet", "escalate")
    inner = sub.compile()
    pb = StateGraph(Log).add_node("desk", lambda s: {"log": ["desk"]})
    pb.add_node("team", inner, destinations=("desk",)).add_edge(START, "team")
    parent = pb.compile(checkpointer=saver)
    if where in ("inner", "both"):
        inner.step_timeout = 1
    if where in ("outer", "both"):
        parent.step_timeout = 1
    out = await parent.ainvoke({"log": ["init"]}, cfg())
    assert out == {"log": ["init", "escalated", "desk"]}


# test_pregel(_async).py::test_timeout_with_parent_command (with_timeout True and False): a
# hand-off to the parent from a graph run on its own raises ParentCommand, never a timeout
@pytest.mark.parametrize("limit", [None, 1])
async def test_a_parent_command_from_a_root_graph_is_raised_not_a_timeout(
    saver: Any, limit: float | None
) -> None:
    async def command(state: Log) -> Any:
        await anyio.sleep(0.01)
        return Command(graph=Command.PARENT, goto="elsewhere", update={"log": ["x"]})

    graph = StateGraph(Log).add_node("cmd", command).add_edge(START, "cmd")
    graph = graph.add_edge("cmd", END).compile(checkpointer=saver)
    graph.step_timeout = limit
    with pytest.raises(ParentCommand) as caught:
        await graph.ainvoke({"log": []}, cfg())
    assert not isinstance(caught.value, TimeoutError)
    assert (caught.value.args[0].goto, caught.value.args[0].update) == ("elsewhere", {"log": ["x"]})


# observed on LangGraph 1.2.22: `with_config` keeps the limit; 0 is no limit. Here a value that
# is no number of seconds is refused before the run starts (LangGraph: a TypeError inside).
async def test_the_limit_is_kept_by_with_config_and_checked(saver: Any) -> None:
    async def node(state: Log) -> Log:
        await anyio.sleep(LIMIT / 4)
        return {"log": ["n"]}

    graph = StateGraph(Log).add_node("n", node).add_edge(START, "n").compile(checkpointer=saver)
    graph.step_timeout = LIMIT / 10
    assert graph.with_config(recursion_limit=5).step_timeout == LIMIT / 10
    with pytest.raises(TimeoutError):
        await graph.with_config(recursion_limit=5).ainvoke({"log": []}, cfg())
    graph.step_timeout = 0
    assert await graph.ainvoke({"log": []}, cfg()) == {"log": ["n"]}
    graph.step_timeout = "1"  # type: ignore[assignment]
    with pytest.raises(InvalidConfigError, match="step_timeout must be seconds"):
        await graph.ainvoke({"log": []}, cfg())


# observed on LangGraph 1.2.22: an @entrypoint is a graph of one step, and takes the limit too
async def test_an_entrypoint_takes_a_step_timeout(saver: Any) -> None:
    @task
    async def slow(n: int) -> int:
        await anyio.sleep(30)
        return n

    @entrypoint(checkpointer=saver)
    async def workflow(n: int) -> int:
        return await slow(n)

    workflow.step_timeout = LIMIT
    with pytest.raises(TimeoutError, match=r"cancelled its tasks still running: \['workflow'\]"):
        await workflow.ainvoke(1, cfg())
