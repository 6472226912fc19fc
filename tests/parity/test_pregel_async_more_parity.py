"""LangGraph's async pregel tests (`test_pregel_async.py`), restated in our own graphs and run on
every driver: what a cancelled or abandoned async run leaves behind, and what closing an event
stream early does to the node still running."""

from __future__ import annotations

import asyncio
import operator
import uuid
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import (
    START,
    NodeCancelledError,
    NodeTimeoutError,
    RetryPolicy,
    StateGraph,
    TimeoutPolicy,
    entrypoint,
    task,
)
from hitl_async.runtime import Runtime

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


class Word(TypedDict):
    word: str


async def test_closing_an_event_stream_early_cancels_the_running_node(saver: Any) -> None:
    """LangGraph's test_cancel_graph_astream_events_v2: leaving `astream_events` (closed with
    `aclose()`) while the next node runs cancels that node before `aclose()` returns; the node
    after it never starts, and the thread keeps the finished step."""
    log: list[str] = []

    async def quick(state: Word) -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return {"word": state["word"] + "+quick"}

    def long_running(name: str) -> Any:
        async def node(state: Word) -> dict[str, Any]:
            log.append(f"{name} started")
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                log.append(f"{name} cancelled")
                raise
            return {"word": name}

        return node

    g = StateGraph(Word)
    g.add_node("quick", quick)
    g.add_node("stuck", long_running("stuck"))
    g.add_node("never", long_running("never"))
    g.add_edge(START, "quick")
    g.add_edge("quick", "stuck")
    g.add_edge("stuck", "never")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    stream = graph.astream_events({"word": "w"}, config, version="v2")
    seen = None
    async for event in stream:
        if event["event"] == "on_chain_stream" and not event["parent_ids"]:
            seen = event["data"]["chunk"]
            await asyncio.sleep(0.2)  # "stuck" starts meanwhile
            break
    await stream.aclose()
    assert seen == {"quick": {"word": "w+quick"}}
    assert log == ["stuck started", "stuck cancelled"]
    state = await graph.aget_state(config)
    assert state.values == {"word": "w+quick"}
    assert state.next == ("stuck",)


class Items(TypedDict):
    items: Annotated[list[str], operator.add]


def fan_out_graph(saver: Any, slow_calls: list[int]) -> Any:
    """first -> (fast, slow) -> last; `slow`'s first call takes a long time."""

    async def slow(state: Items) -> dict[str, Any]:
        slow_calls.append(len(slow_calls))
        if len(slow_calls) == 1:
            await asyncio.sleep(5)
        return {"items": ["slow"]}

    g = StateGraph(Items)
    g.add_node("first", lambda s: {"items": ["first"]})
    g.add_node("fast", lambda s: {"items": ["fast"]})
    g.add_node("slow", slow)
    g.add_node("last", lambda s: {"items": ["last"]})
    g.add_edge(START, "first")
    g.add_edge("first", "fast")
    g.add_edge("first", "slow")
    g.add_edge(["fast", "slow"], "last")
    return g.compile(checkpointer=saver)


async def test_a_cancelled_run_under_exit_durability_keeps_its_progress(saver: Any) -> None:
    """LangGraph's test_checkpoint_put_after_cancellation: with durability="exit" the run's
    checkpoint is still written when the run is cancelled: the last completed step, and the
    writes of its step's tasks that finished; the thread continues from there."""
    slow_calls: list[int] = []
    graph = fan_out_graph(saver, slow_calls)
    config = cfg()
    run = asyncio.create_task(graph.ainvoke({"items": ["in"]}, config, durability="exit"))
    while not slow_calls:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # ("fast" is done by now)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    state = await graph.aget_state(config)
    assert state.values == {"items": ["in", "first", "fast"]}
    assert state.next == ("slow",)
    assert state.metadata["step"] == 1
    assert sorted((t.name, t.result) for t in state.tasks) == [
        ("fast", {"items": ["fast"]}),
        ("slow", None),
    ]
    assert len([s async for s in graph.aget_state_history(config)]) == 1  # only the exit one
    out = await graph.ainvoke(None, config, durability="exit")
    assert out == {"items": ["in", "first", "fast", "slow", "last"]}  # "fast" did not rerun


async def test_a_cancelled_first_step_under_exit_durability_keeps_the_input(saver: Any) -> None:
    """LangGraph's test_checkpoint_put_after_cancellation: cancelled in its first step under
    durability="exit", the run still stores its input checkpoint, and a `None` input runs the
    step again."""
    calls: list[str] = []

    async def slow(state: Word) -> dict[str, Any]:
        calls.append(state["word"])
        if len(calls) == 1:
            await asyncio.sleep(5)
        return {"word": state["word"] + "!"}

    g = StateGraph(Word)
    g.add_node("slow", slow)
    g.add_edge(START, "slow")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    run = asyncio.create_task(graph.ainvoke({"word": "hi"}, config, durability="exit"))
    while not calls:
        await asyncio.sleep(0.01)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    state = await graph.aget_state(config)
    assert (state.values, state.next, state.metadata["step"]) == ({"word": "hi"}, ("slow",), 0)
    assert await graph.ainvoke(None, config, durability="exit") == {"word": "hi!"}
    assert calls == ["hi", "hi"]


async def test_leaving_a_stream_under_exit_durability_keeps_its_progress(saver: Any) -> None:
    """LangGraph's test_checkpoint_put_after_cancellation_stream_anext: a consumer that stops
    reading `astream` (durability="exit") after the first step leaves that step stored."""

    async def slow(state: Word) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {"word": "never"}

    g = StateGraph(Word)
    g.add_node("first", lambda s: {"word": s["word"] + "!"})
    g.add_node("slow", slow)
    g.add_edge(START, "first")
    g.add_edge("first", "slow")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    stream = graph.astream({"word": "hi"}, config, durability="exit")
    assert await anext(stream) == {"first": {"word": "hi!"}}
    await stream.aclose()
    state = await graph.aget_state(config)
    assert (state.values, state.next) == ({"word": "hi!"}, ("slow",))


async def test_an_entrypoint_run_in_the_event_stream_shows_its_own_input_and_output(
    saver: Any,
) -> None:
    """LangGraph's test_imp_exception: in `astream_events`, the `@entrypoint` function's chain
    run starts with the function's input and ends (and streams) with what it returned, never
    the workflow's bookkeeping; a `@task` call's run is tagged `seq:step:1` only (the
    function's run is the one tagged `graph:step:N`, triggered by `__start__`), its metadata
    giving the path of a call pushed by the function's task."""

    @task
    async def double(n: int) -> int:
        return n * 2

    @entrypoint(checkpointer=saver)
    async def workflow(n: int) -> str:
        return f"got {await double(n)}"

    events = [e async for e in workflow.astream_events(3, cfg(), version="v2")]
    mine = [(e["event"], e["data"]) for e in events if e["name"] == "workflow"]
    assert mine == [
        ("on_chain_start", {"input": 3}),
        ("on_chain_stream", {"chunk": "got 6"}),
        ("on_chain_end", {"output": "got 6", "input": 3}),
    ]
    assert {tuple(e["tags"]) for e in events if e["name"] == "workflow"} == {("graph:step:0",)}
    triggers = {e["metadata"]["langgraph_triggers"] for e in events if e["name"] == "workflow"}
    assert triggers == {("__start__",)}  # (the input triggers it, not a branch)
    calls = [e for e in events if e["name"] == "double"]
    assert [e["event"] for e in calls] == ["on_chain_start", "on_chain_stream", "on_chain_end"]
    assert calls[0]["data"] == {"input": {"n": 3}}
    assert {tuple(e["tags"]) for e in calls} == {("seq:step:1",)}
    paths = {(e["metadata"]["langgraph_path"], e["metadata"]["langgraph_triggers"]) for e in calls}
    pushed = ("__pregel_push", ("__pregel_pull", "workflow"), 0, True)
    assert paths == {(pushed, ("__pregel_push",))}
    root = [(e["event"], e["data"]) for e in events if e["name"] == "LangGraph"]
    assert root[-2:] == [
        ("on_chain_stream", {"chunk": {"workflow": "got 6"}}),
        ("on_chain_end", {"output": "got 6"}),
    ]


async def test_a_node_reads_which_execution_it_is_from_its_runtime(saver: Any) -> None:
    """LangGraph's test_execution_info_populated_in_graph_async, ..._inherited_by_subgraph and
    test_graph_with_single_retry_policy (test_runtime.py, test_retry.py): `runtime.
    execution_info` names the thread, the task (its id inside its own namespace, a subgraph's
    under its parent's), the checkpoint the step runs from, and the attempt, counting retries
    from 1 with the first attempt's start time kept; `server_info` is None outside a server."""
    seen: dict[str, list[Any]] = {"flaky": [], "inner": [], "server": []}

    def flaky(state: Word, runtime: Runtime) -> dict[str, Any]:
        seen["flaky"].append(runtime.execution_info)
        seen["server"].append(runtime.server_info)
        if len(seen["flaky"]) < 3:
            raise ValueError("try again")
        return {"word": state["word"] + "!"}

    def inner_node(state: Word, runtime: Runtime) -> dict[str, Any]:
        seen["inner"].append(runtime.execution_info)
        return {"word": state["word"] + "?"}

    sub = StateGraph(Word)
    sub.add_node("inner_node", inner_node)
    sub.add_edge(START, "inner_node")
    g = StateGraph(Word)
    retry = RetryPolicy(max_attempts=3, initial_interval=0.01, jitter=False, retry_on=ValueError)
    g.add_node("flaky", flaky, retry_policy=retry)
    g.add_node("sub", sub.compile())
    g.add_edge(START, "flaky")
    g.add_edge("flaky", "sub")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    assert await graph.ainvoke({"word": "w"}, config) == {"word": "w!?"}
    tries = seen["flaky"]
    assert [i.node_attempt for i in tries] == [1, 2, 3]
    assert {i.node_first_attempt_time for i in tries} == {tries[0].node_first_attempt_time}
    assert isinstance(tries[0].node_first_attempt_time, float)
    assert {(i.task_id, i.checkpoint_ns, i.checkpoint_id) for i in tries} == {
        (tries[0].task_id, f"flaky:{tries[0].task_id}", tries[0].checkpoint_id)
    }
    thread = config["configurable"]["thread_id"]
    assert {i.thread_id for i in tries} == {thread} and tries[0].run_id is None
    history = [s async for s in graph.aget_state_history(config)]
    (ran_from,) = [s for s in history if s.next == ("flaky",)]
    assert tries[0].checkpoint_id == ran_from.config["configurable"]["checkpoint_id"]
    (inner,) = seen["inner"]
    outer_ns, own_ns = inner.checkpoint_ns.split("|")
    assert outer_ns.startswith("sub:") and own_ns == f"inner_node:{inner.task_id}"
    assert (inner.thread_id, inner.node_attempt) == (thread, 1)
    assert seen["server"] == [None, None, None]


async def test_server_info_comes_from_the_configs_assistant_and_user(saver: Any) -> None:
    """LangGraph's test_server_info_from_configurable and test_server_info_user_from_auth_user
    (test_runtime.py): a config naming an assistant, a graph or an authenticated user (any
    object with an `identity`) gives nodes a `runtime.server_info` with them."""

    class User:
        identity = "ada"

    seen: list[Any] = []

    def node(state: Word, runtime: Runtime) -> dict[str, Any]:
        seen.append(runtime.server_info)
        return {"word": "done"}

    g = StateGraph(Word)
    g.add_node("node", node)
    g.add_edge(START, "node")
    graph = g.compile(checkpointer=saver)
    user = User()
    config = cfg()
    config["configurable"].update(assistant_id="helper", langgraph_auth_user=user)
    await graph.ainvoke({"word": "w"}, config)
    (info,) = seen
    assert (info.assistant_id, info.graph_id, info.user) == ("helper", "", user)


async def test_an_idle_timeout_counts_the_callback_events_of_what_the_node_runs(
    saver: Any,
) -> None:
    """LangGraph's test_idle_timeout_resets_on_message_stream_callbacks (test_retry.py): under
    `refresh_on="auto"`, every LangChain callback event of a runnable the node calls (a chat
    model's tokens, a chain's start and end) is progress: a node busy longer than its
    `idle_timeout` in steps shorter than it is not timed out; one silent wait is."""
    from langchain_core.runnables import RunnableLambda

    async def think(i: int) -> int:
        await asyncio.sleep(0.06)
        return i

    step = RunnableLambda(think)

    async def busy(state: Word) -> dict[str, Any]:
        for i in range(5):  # 0.3s in all, never 0.15s without an event
            await step.ainvoke(i)
        return {"word": state["word"] + "+busy"}

    async def silent(state: Word) -> dict[str, Any]:
        await asyncio.sleep(0.3)
        return {"word": "never"}

    for node, ok in ((busy, True), (silent, False)):
        g = StateGraph(Word)
        g.add_node("work", node, timeout=TimeoutPolicy(idle_timeout=0.15))
        g.add_edge(START, "work")
        graph = g.compile(checkpointer=saver)
        if ok:
            assert await graph.ainvoke({"word": "w"}, cfg()) == {"word": "w+busy"}
            chunks = [c async for c in graph.astream({"word": "w"}, cfg())]
            assert chunks == [{"work": {"word": "w+busy"}}]
        else:
            with pytest.raises(NodeTimeoutError):
                await graph.ainvoke({"word": "w"}, cfg())


async def test_a_node_that_raises_cancelled_error_itself_fails_the_run(saver: Any) -> None:
    """LangGraph's test_pregel_user_raised_cancellederror_fails_run and
    test_arun_with_retry_user_raised_cancelled_becomes_node_cancelled (test_retry.py): a node
    whose own code raises `asyncio.CancelledError` (nothing cancelled the run) fails with
    `NodeCancelledError` naming it, not retried; its sibling's finished writes are kept, and
    the run never reports success. A `@task` doing the same fails its caller's await with it."""
    calls: list[str] = []

    async def fine(state: Items) -> dict[str, Any]:
        return {"items": ["fine"]}

    async def gives_up(state: Items) -> dict[str, Any]:
        calls.append("gives_up")
        inner = asyncio.ensure_future(asyncio.sleep(5))
        inner.cancel()
        await inner  # (the inner task's cancellation reaches the node's code)
        return {"items": ["never"]}

    g = StateGraph(Items)
    g.add_node("fine", fine)
    g.add_node("gives_up", gives_up, retry_policy=RetryPolicy(retry_on=lambda e: True))
    g.add_edge(START, "fine")
    g.add_edge(START, "gives_up")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    with pytest.raises(NodeCancelledError) as caught:
        await graph.ainvoke({"items": []}, config)
    assert caught.value.node == "gives_up" and calls == ["gives_up"]
    state = await graph.aget_state(config)
    assert state.values == {"items": ["fine"]} and state.next == ("gives_up",)
    errors = {t.name: t.error for t in state.tasks}
    assert errors["fine"] is None and "NodeCancelledError" in str(errors["gives_up"])

    @task
    async def stop_myself(n: int) -> int:
        raise asyncio.CancelledError("done here")

    @entrypoint(checkpointer=saver)
    async def flow(n: int) -> str:
        try:
            await stop_myself(n)
        except NodeCancelledError as exc:
            return f"{exc.node} failed"
        return "no error"

    assert await flow.ainvoke(1, cfg()) == "stop_myself failed"


def test_a_bad_task_timeout_is_refused_before_the_function_is_given() -> None:
    """LangGraph's test_timeout_validation_is_eager_across_apis (test_retry.py): `@task(...)`
    and `@entrypoint(...)` with a timeout of zero or less raise a `ValueError` when called with
    the options, before decorating anything."""
    for bad in (0, -1):
        with pytest.raises(ValueError, match="greater than 0"):
            task(timeout=bad)
        with pytest.raises(ValueError, match="greater than 0"):
            entrypoint(timeout=bad)


async def test_a_builders_node_gives_back_its_action_as_runnable(saver: Any) -> None:
    """LangGraph's test_send_dedupe_on_resume reads a node's callable object back through
    `builder.nodes[name].runnable.func` to count its calls: a sync action is `.func`, an async
    one `.afunc` (with `.func` None), a LangChain Runnable is given back itself."""
    from langchain_core.runnables import RunnableLambda

    class Counter:
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, state: Word) -> dict[str, Any]:
            self.calls += 1
            return {"word": state["word"] + "+"}

    async def shout(state: Word) -> dict[str, Any]:
        return {"word": state["word"].upper()}

    lam = RunnableLambda(lambda s: {"word": s["word"] + "."})
    g = StateGraph(Word)
    g.add_node("count", Counter())
    g.add_node("shout", shout)
    g.add_node("dot", lam)
    g.add_edge(START, "count")
    g.add_edge("count", "shout")
    g.add_edge("shout", "dot")
    graph = g.compile(checkpointer=saver)
    assert await graph.ainvoke({"word": "a"}, cfg()) == {"word": "A+."}
    assert await graph.ainvoke({"word": "b"}, cfg()) == {"word": "B+."}
    assert g.nodes["count"].runnable.func.calls == 2
    assert (g.nodes["shout"].runnable.func, g.nodes["shout"].runnable.afunc) == (None, shout)
    assert g.nodes["dot"].runnable is lam
