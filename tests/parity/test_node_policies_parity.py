"""Node policies of LangGraph 1.2.22 — error handlers, timeouts, run draining — restated from
its test_retry.py and test_runtime.py (each case names the one it comes from) and checked
against LangGraph by running the same graphs on both. They run on every driver.

Timeouts need a clock: a node that must time out sleeps far longer than its limit (its
cancellation ends it at once), and one that must not makes progress well within it."""

from __future__ import annotations

import operator
from collections import Counter
from datetime import timedelta
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import (
    Command,
    GraphDrained,
    GraphValidationError,
    NodeError,
    NodeTimeoutError,
    RetryPolicy,
    RunControl,
    TimeoutPolicy,
    interrupt,
)
from hitl_async.config import get_stream_writer
from hitl_async.errors import GraphBubbleUp
from hitl_async.func import entrypoint, task
from hitl_async.graph import END, START, StateGraph
from hitl_async.runtime import Runtime

pytestmark = pytest.mark.anyio

FAST = {"initial_interval": 0.001, "jitter": False}


class Foo(TypedDict, total=False):
    foo: str


class Log(TypedDict, total=False):
    foo: str
    log: Annotated[list[str], operator.add]


class X(TypedDict):
    x: int


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def raises(exc: BaseException) -> Any:
    def node(state: Any) -> Any:
        raise exc

    return node


async def sleeps(state: X) -> X:
    await anyio.sleep(30)  # far past every limit below: ended by its timeout
    return {"x": state["x"] + 1}


# -- error handlers ------------------------------------------------------------------------------


# test_retry.py::test_graph_error_handler_runs_after_retry_exhaustion,
# test_retry.py::test_graph_error_handler_can_route_with_command
async def test_a_handler_runs_after_the_retries_and_routes_with_a_command(saver: Any) -> None:
    calls: Counter[str] = Counter()
    seen: list[NodeError] = []

    def always_fails(state: Foo) -> Foo:
        calls["node"] += 1
        raise ValueError("Always fails")

    def handler(state: Foo, error: NodeError) -> Command[str]:
        seen.append(error)
        return Command(update={"foo": "handled"}, goto="after_handler")

    graph = (
        StateGraph(Foo)
        .add_node(
            "always_failing",
            always_fails,
            retry_policy=RetryPolicy(max_attempts=2, retry_on=ValueError, **FAST),  # type: ignore[arg-type]
            error_handler=handler,
        )
        .add_node("after_handler", lambda s: {"foo": s["foo"] + "_after"})
        .add_edge(START, "always_failing")
        .compile(checkpointer=saver)
    )
    assert (await graph.ainvoke({"foo": ""}, cfg()))["foo"] == "handled_after"
    assert calls["node"] == 2
    assert [(e.node, type(e.error), str(e.error)) for e in seen] == [
        ("always_failing", ValueError, "Always fails")
    ]


# test_retry.py::test_graph_error_handler_runs_after_retry_exhaustion, observed on LangGraph
async def test_the_stream_shows_the_failure_then_the_handler_as_a_task_of_its_own(
    saver: Any,
) -> None:
    def handler(state: Log, error: NodeError) -> Command[str]:
        return Command(update={"foo": f"{error.node}: {error.error}", "log": ["h"]}, goto="after")

    b = StateGraph(Log)
    b.add_node("fail", raises(ValueError("boom")), error_handler=handler)
    b.add_node("after", lambda s: {"log": ["after"]})
    b.add_node("sib", lambda s: {"log": ["sib"]})
    b.add_edge(START, "fail")
    b.add_edge(START, "sib")
    b.add_edge("fail", END)
    graph = b.compile(checkpointer=saver)
    assert list(graph.get_graph().nodes) == [
        "__start__",
        "__error_handler__fail",
        "fail",
        "after",
        "sib",
        "__end__",
    ]
    chunks = [
        c
        async for c in graph.astream(
            {"foo": "", "log": []}, cfg(), stream_mode=["updates", "tasks"]
        )
    ]
    updates = [c for mode, c in chunks if mode == "updates"]
    assert {"__error_handler__fail": {"foo": "fail: boom", "log": ["h"]}} in updates
    assert not any("fail" in u for u in updates)  # the node itself wrote nothing
    results = {c["name"]: c for mode, c in chunks if mode == "tasks" and "result" in c}
    assert results["fail"]["error"] == "ValueError('boom')" and results["fail"]["result"] == {}
    assert results["__error_handler__fail"]["error"] is None
    # the handler's writes take the failed node's place in the step's write order
    state = await graph.aget_state(cfg())
    assert state.values == {"foo": "fail: boom", "log": ["h", "sib", "after"]}
    history = [s async for s in graph.aget_state_history(cfg())]
    assert [s.metadata["step"] for s in history] == [2, 1, 0, -1]
    # a difference (README): the handled task shows the handler's writes, not the node's error
    handled = {t.name: (t.error, t.result) for t in history[2].tasks}
    assert handled["fail"] == (None, {"foo": "fail: boom", "log": ["h"]})


# observed on LangGraph 1.2.22: a handler returning an update does not follow the node's edges
async def test_the_failed_nodes_edges_are_not_followed(saver: Any) -> None:
    b = StateGraph(Log)
    b.add_node("fail", raises(ValueError("boom")), error_handler=lambda s: {"log": ["h"]})
    b.add_node("after", lambda s: {"log": ["after"]})
    b.add_edge(START, "fail")
    b.add_edge("fail", "after")
    graph = b.compile(checkpointer=saver)
    assert await graph.ainvoke({"log": []}, cfg()) == {"log": ["h"]}


# test_retry.py::test_graph_error_handler_failure_fails_run
async def test_a_failing_handler_fails_the_run(saver: Any) -> None:
    graph = (
        StateGraph(Foo)
        .add_node(
            "f",
            raises(ValueError("Always fails")),
            error_handler=raises(RuntimeError("handler failed")),
        )
        .add_edge(START, "f")
        .compile(checkpointer=saver)
    )
    with pytest.raises(RuntimeError, match="handler failed"):
        await graph.ainvoke({"foo": ""}, cfg())


# test_retry.py::test_node_without_error_handler_still_fails_run
async def test_a_node_without_a_handler_still_fails_the_run(saver: Any) -> None:
    graph = (
        StateGraph(Foo)
        .add_node("f", raises(ValueError("no handler")))
        .add_edge(START, "f")
        .compile(checkpointer=saver)
    )
    with pytest.raises(ValueError, match="no handler"):
        await graph.ainvoke({"foo": ""}, cfg())


# test_retry.py::test_graph_error_handler_handles_subgraph_internal_failure
async def test_a_handler_catches_a_failure_inside_a_subgraph(saver: Any) -> None:
    sub = StateGraph(Foo).add_node("sub_fail", raises(ValueError("subgraph boom")))
    sub.add_edge(START, "sub_fail")

    def handler(state: Foo, error: NodeError) -> Foo:
        return {"foo": f"handled {error.node} {error.error!r}"}

    graph = (
        StateGraph(Foo)
        .add_node("subgraph_node", sub.compile(), error_handler=handler)
        .add_edge(START, "subgraph_node")
        .compile(checkpointer=saver)
    )
    result = await graph.ainvoke({"foo": ""}, cfg())
    assert result == {"foo": "handled subgraph_node ValueError('subgraph boom')"}


# test_retry.py::test_graph_error_handler_does_not_swallow_interrupt_concurrent
async def test_an_interrupt_is_not_handled_as_a_failure(saver: Any) -> None:
    def asks(state: Foo) -> Foo:
        return {"foo": f"a_{interrupt('need human input')}"}

    graph = (
        StateGraph(Foo)
        .add_node("node_a", asks, error_handler=lambda s: {"foo": "handled"})
        .add_node("node_b", lambda s: {})
        .add_edge(START, "node_a")
        .add_edge(START, "node_b")
        .compile(checkpointer=saver)
    )
    paused = await graph.ainvoke({"foo": ""}, cfg())
    assert [i.value for i in paused["__interrupt__"]] == ["need human input"]
    assert await graph.ainvoke(Command(resume="yes"), cfg()) == {"foo": "a_yes"}


# test_retry.py::test_node_error_handlers_route_to_matching_handler
async def test_each_node_gets_its_own_handler(saver: Any) -> None:
    class S(TypedDict):
        route: str
        foo: Annotated[list[str], operator.add]

    def handler_for(node: str) -> Any:
        def handler(state: S, error: NodeError) -> Any:
            assert error.node == node
            return {"foo": [f"handled_{node}"]}

        return handler

    graph = (
        StateGraph(S)
        .add_node("route_node", lambda s: {"foo": []})
        .add_node("fail_a", raises(ValueError("a")), error_handler=handler_for("fail_a"))
        .add_node("fail_b", raises(RuntimeError("b")), error_handler=handler_for("fail_b"))
        .add_edge(START, "route_node")
        .add_conditional_edges("route_node", lambda s: s["route"], ["fail_a", "fail_b"])
        .compile(checkpointer=saver)
    )
    assert (await graph.ainvoke({"route": "fail_a", "foo": []}, cfg("a")))["foo"] == [
        "handled_fail_a"
    ]
    assert (await graph.ainvoke({"route": "fail_b", "foo": []}, cfg("b")))["foo"] == [
        "handled_fail_b"
    ]


# test_retry.py::test_set_node_defaults_error_handler_catches_all_nodes,
# test_retry.py::test_set_node_defaults_error_handler_receives_runnable_config
async def test_the_default_handler_catches_every_node_and_sees_its_config(saver: Any) -> None:
    def handler(state: Log, error: NodeError, config: dict[str, Any]) -> Log:
        return {"log": [f"{error.node}@{config['metadata']['langgraph_node']}"]}

    b = StateGraph(Log).set_node_defaults(error_handler=handler)
    b.add_node("a", raises(ValueError("a")))
    b.add_node("b", raises(ValueError("b")))
    b.add_edge(START, "a")
    b.add_edge(START, "b")
    graph = b.compile(checkpointer=saver)
    assert list(graph.get_graph().nodes) == [
        "__start__",
        "a",
        "b",
        "__default_error_handler__",
        "__end__",
    ]
    result = await graph.ainvoke({"log": []}, cfg())
    assert result["log"] == ["a@__default_error_handler__", "b@__default_error_handler__"]


# test_retry.py::test_set_node_defaults_error_handler_overridden_by_node_handler
async def test_a_nodes_own_handler_wins_over_the_default(saver: Any) -> None:
    b = StateGraph(Log).set_node_defaults(error_handler=lambda s: {"log": ["default"]})
    b.add_node("a", raises(ValueError("a")), error_handler=lambda s: {"log": ["own"]})
    b.add_edge(START, "a")
    assert (await b.compile(checkpointer=saver).ainvoke({"log": []}, cfg()))["log"] == ["own"]


# test_retry.py::test_set_node_defaults_error_handler_failure_fails_run: handlers are not handled
async def test_a_failing_default_handler_fails_the_run(saver: Any) -> None:
    b = StateGraph(Foo).set_node_defaults(error_handler=raises(RuntimeError("default failed")))
    b.add_node("a", raises(ValueError("a")))
    b.add_edge(START, "a")
    with pytest.raises(RuntimeError, match="default failed"):
        await b.compile(checkpointer=saver).ainvoke({"foo": ""}, cfg())


# test_retry.py::test_set_node_defaults_error_handler_collides_with_user_node
def test_generated_handler_names_must_be_free() -> None:
    b = StateGraph(Foo).set_node_defaults(error_handler=lambda s: {})
    b.add_node("__default_error_handler__", lambda s: {})
    b.add_edge(START, "__default_error_handler__")
    with pytest.raises(ValueError, match="already exists"):
        b.compile()
    b = StateGraph(Foo).add_node("__error_handler__a", lambda s: {})
    with pytest.raises(ValueError, match="already exists"):
        b.add_node("a", lambda s: {}, error_handler=lambda s: {})


# test_retry.py::test_set_node_defaults_retry_policy, ..._retry_policy_per_node_wins,
# test_retry.py::test_set_node_defaults_combined_retry_and_error_handler
async def test_default_retry_policy_with_per_node_override_and_handler(saver: Any) -> None:
    calls: Counter[str] = Counter()

    def counted(name: str) -> Any:
        def node(state: Log) -> Log:
            calls[name] += 1
            raise ValueError(name)

        return node

    b = StateGraph(Log).set_node_defaults(
        retry_policy=RetryPolicy(max_attempts=3, retry_on=ValueError, **FAST),  # type: ignore[arg-type]
        error_handler=lambda s: {"log": ["handled"]},
    )
    b.add_node("default", counted("default"))
    b.add_node("own", counted("own"), retry_policy=RetryPolicy(max_attempts=1))
    b.add_edge(START, "default")
    b.add_edge(START, "own")
    result = await b.compile(checkpointer=saver).ainvoke({"log": []}, cfg())
    assert result["log"] == ["handled", "handled"]
    assert calls == {"default": 3, "own": 1}


# test_retry.py::test_error_handler_resumes_after_crash
async def test_running_again_after_the_handler_failed_runs_the_handler_not_the_node(
    saver: Any,
) -> None:
    calls: Counter[str] = Counter()
    errors: list[NodeError] = []
    handler_fails = [True]

    def node(state: Foo) -> Foo:
        calls["node"] += 1
        raise RuntimeError("boom")

    def handler(state: Foo, error: NodeError) -> Foo:
        calls["handler"] += 1
        errors.append(error)
        if handler_fails[0]:
            raise RuntimeError("handler crash")
        return {"foo": "recovered"}

    b = StateGraph(Foo).set_node_defaults(error_handler=handler)
    b.add_node("fail", node)
    b.add_edge(START, "fail")
    graph = b.compile(checkpointer=saver)
    with pytest.raises(RuntimeError, match="handler crash"):
        await graph.ainvoke({"foo": ""}, cfg())
    state = await graph.aget_state(cfg())
    assert state.next == ("fail",)
    assert [t.error for t in state.tasks] == ["RuntimeError('boom')"]  # the node's, as LangGraph
    handler_fails[0] = False
    assert await graph.ainvoke(None, cfg()) == {"foo": "recovered"}
    assert calls == {"node": 1, "handler": 2}
    assert errors[0].node == errors[1].node == "fail"
    assert "boom" in str(errors[1].error)  # (the stored error: its text)


# -- timeouts ------------------------------------------------------------------------------------


# test_retry.py::test_state_graph_add_node_timeout_e2e,
# test_retry.py::test_node_timeout_error_carries_both_configured_timeouts
async def test_a_node_past_its_timeout_fails_with_node_timeout_error(saver: Any) -> None:
    b = StateGraph(X).add_node(
        "slow", sleeps, timeout=TimeoutPolicy(idle_timeout=0.05, run_timeout=60)
    )
    b.add_edge(START, "slow")
    graph = b.compile(checkpointer=saver)
    with pytest.raises(NodeTimeoutError) as caught:
        await graph.ainvoke({"x": 1}, cfg())
    e = caught.value
    assert (e.node, e.kind, e.timeout, e.idle_timeout, e.run_timeout) == (
        "slow",
        "idle",
        0.05,
        0.05,
        60.0,
    )
    assert not isinstance(e, TimeoutError)  # so the default RetryPolicy retries it
    assert str(e).startswith(
        "Node 'slow' exceeded its idle timeout of 0.050s without making progress"
    )
    state = await graph.aget_state(cfg())
    assert state.next == ("slow",)
    assert state.tasks[0].error is not None and "NodeTimeoutError" in state.tasks[0].error


# observed on LangGraph 1.2.22: a number (or timedelta) is a run timeout
async def test_a_number_is_a_run_timeout(saver: Any) -> None:
    b = StateGraph(X).add_node("slow", sleeps, timeout=timedelta(milliseconds=50))
    b.add_edge(START, "slow")
    with pytest.raises(NodeTimeoutError, match=r"exceeded its run timeout of 0\.050s") as caught:
        await b.compile(checkpointer=saver).ainvoke({"x": 1}, cfg())
    assert (caught.value.kind, caught.value.idle_timeout) == ("run", None)


# test_retry.py::test_state_graph_add_node_timeout_composes_with_retry
async def test_a_timed_out_attempt_is_retried(saver: Any) -> None:
    attempts: list[int] = []

    async def flaky(state: X) -> X:
        attempts.append(1)
        if len(attempts) < 2:
            await anyio.sleep(30)
        return {"x": state["x"] + 1}

    b = StateGraph(X).add_node(
        "flaky",
        flaky,
        timeout=TimeoutPolicy(idle_timeout=0.05),
        retry_policy=RetryPolicy(max_attempts=3, retry_on=NodeTimeoutError, **FAST),  # type: ignore[arg-type]
    )
    b.add_edge(START, "flaky")
    assert await b.compile(checkpointer=saver).ainvoke({"x": 0}, cfg()) == {"x": 1}
    assert len(attempts) == 2
    assert RetryPolicy().should_retry(NodeTimeoutError("n", 1.0, kind="run", run_timeout=1.0))


# test_retry.py::test_arun_with_retry_idle_timeout_resets_on_runtime_heartbeat,
# ..._run_timeout_is_not_refreshed_by_heartbeat
async def test_heartbeats_keep_an_idle_timeout_away_but_not_a_run_timeout(saver: Any) -> None:
    async def beating(state: X, runtime: Runtime[Any]) -> X:
        for _ in range(8):  # 8 x 0.05 s: twice the idle timeout, with a heartbeat each time
            await anyio.sleep(0.05)
            runtime.heartbeat()
        return {"x": 2}

    b = StateGraph(X).add_node("hb", beating, timeout=TimeoutPolicy(idle_timeout=0.2))
    b.add_edge(START, "hb")
    assert await b.compile(checkpointer=saver).ainvoke({"x": 0}, cfg("idle")) == {"x": 2}
    b = StateGraph(X).add_node(
        "hb", beating, timeout=TimeoutPolicy(idle_timeout=0.2, run_timeout=0.1)
    )
    b.add_edge(START, "hb")
    with pytest.raises(NodeTimeoutError) as caught:
        await b.compile(checkpointer=saver).ainvoke({"x": 0}, cfg("run"))
    assert caught.value.kind == "run"


# test_retry.py::test_arun_with_retry_idle_timeout_resets_on_runtime_stream_writer,
# ..._heartbeat_refresh_mode_ignores_stream_events
async def test_stream_writes_are_progress_unless_only_heartbeats_count(saver: Any) -> None:
    async def writing(state: X) -> X:
        write = get_stream_writer()
        for i in range(8):
            await anyio.sleep(0.05)
            write(i)
        return {"x": 4}

    for refresh in ("auto", "heartbeat"):
        b = StateGraph(X).add_node(
            "w", writing, timeout=TimeoutPolicy(idle_timeout=0.2, refresh_on=refresh)
        )  # type: ignore[arg-type]
        b.add_edge(START, "w")
        graph = b.compile(checkpointer=saver)
        if refresh == "auto":
            chunks = [c async for c in graph.astream({"x": 0}, cfg(refresh), stream_mode="custom")]
            assert chunks == list(range(8))
        else:
            with pytest.raises(NodeTimeoutError, match="idle timeout"):
                await graph.ainvoke({"x": 0}, cfg(refresh))


# a difference (README): LangGraph refuses timeouts under the sync API; here they apply
def test_a_timeout_through_invoke() -> None:
    b = StateGraph(X).add_node("slow", sleeps, timeout=0.05)
    b.add_edge(START, "slow")
    with pytest.raises(NodeTimeoutError, match="'slow' exceeded its run timeout"):
        b.compile().invoke({"x": 0})


# test_retry.py::test_arun_with_retry_timeout_cannot_be_swallowed
async def test_a_node_that_swallows_its_cancellation_still_times_out(saver: Any) -> None:
    async def stubborn(state: X) -> X:
        try:
            await anyio.sleep(30)
        except BaseException:
            return {"x": -1}
        return {"x": 1}

    b = StateGraph(X).add_node("stubborn", stubborn, timeout=0.05)
    b.add_edge(START, "stubborn")
    graph = b.compile(checkpointer=saver)
    with pytest.raises(NodeTimeoutError):
        await graph.ainvoke({"x": 0}, cfg())
    assert (await graph.aget_state(cfg())).values == {"x": 0}


# observed on LangGraph 1.2.22: the handler sees the NodeTimeoutError
async def test_a_timeout_goes_to_the_error_handler(saver: Any) -> None:
    def handler(state: X, error: NodeError) -> X:
        return {"x": -1 if isinstance(error.error, NodeTimeoutError) else -2}

    b = StateGraph(X).add_node("slow", sleeps, timeout=0.05, error_handler=handler)
    b.add_edge(START, "slow")
    assert await b.compile(checkpointer=saver).ainvoke({"x": 0}, cfg()) == {"x": -1}


# test_retry.py::test_set_node_defaults_timeout, ..._timeout_per_node_wins
async def test_a_default_timeout_with_a_per_node_override(saver: Any) -> None:
    async def quick(state: X) -> X:
        await anyio.sleep(0.01)
        return {"x": state["x"] + 1}

    b = StateGraph(X).set_node_defaults(timeout=0.05)
    b.add_node("slow", sleeps)
    b.add_edge(START, "slow")
    with pytest.raises(NodeTimeoutError, match="'slow'"):
        await b.compile(checkpointer=saver).ainvoke({"x": 0}, cfg("a"))
    b = StateGraph(X).set_node_defaults(timeout=0.001)
    b.add_node("quick", quick, timeout=30)
    b.add_edge(START, "quick")
    assert await b.compile(checkpointer=saver).ainvoke({"x": 0}, cfg("b")) == {"x": 1}


# test_retry.py::test_timeout_validation_is_eager_across_apis,
# test_retry.py::test_state_graph_compile_rejects_sync_node_timeout
def test_timeouts_are_checked_when_declared_and_refused_on_sync_nodes() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        StateGraph(X).add_node("slow", sleeps, timeout=0)
    with pytest.raises(ValueError, match="refresh_on"):
        TimeoutPolicy.coerce(TimeoutPolicy(idle_timeout=1, refresh_on="x"))  # type: ignore[arg-type]
    assert TimeoutPolicy.coerce(2) == TimeoutPolicy(run_timeout=2.0)
    assert TimeoutPolicy.coerce(timedelta(seconds=1.5)) == TimeoutPolicy(run_timeout=1.5)
    assert TimeoutPolicy.coerce(TimeoutPolicy()) is None
    done = TimeoutPolicy.coerce(TimeoutPolicy(idle_timeout=0.5))
    assert TimeoutPolicy.coerce(done) is done  # test_coerce_timeout_policy_returns_same_instance
    b = StateGraph(X).add_node("sync", lambda s: s, timeout=TimeoutPolicy(idle_timeout=0.05))
    b.add_edge(START, "sync")
    with pytest.raises(GraphValidationError, match="only supported for async nodes"):
        b.compile()


# test_retry.py::test_task_decorator_timeout_e2e, ..._entrypoint_timeout_e2e,
# test_retry.py::test_timeout_rejects_sync_functional_apis_at_declaration_time
async def test_tasks_and_entrypoints_take_timeouts_too(saver: Any) -> None:
    with pytest.raises(ValueError, match=r"only supported for async nodes.*Task 'plain_task'"):
        task(timeout=TimeoutPolicy(idle_timeout=0.05))(plain_task)
    with pytest.raises(ValueError, match=r"only supported for async nodes.*Node 'plain_task'"):
        entrypoint(timeout=0.05)(plain_task)

    @task(timeout=TimeoutPolicy(idle_timeout=0.05))
    async def slow_task(x: int) -> int:
        await anyio.sleep(30)
        return x

    @entrypoint(checkpointer=saver)
    async def calls_it(x: int) -> int:
        return await slow_task(x)

    with pytest.raises(NodeTimeoutError) as caught:
        await calls_it.ainvoke(1, cfg("task"))
    assert (caught.value.node, caught.value.kind) == ("slow_task", "idle")

    @entrypoint(checkpointer=saver, timeout=0.05)
    async def slow_flow(x: int) -> int:
        await anyio.sleep(30)
        return x

    with pytest.raises(NodeTimeoutError) as caught:
        await slow_flow.ainvoke(1, cfg("entrypoint"))
    assert (caught.value.node, caught.value.kind) == ("slow_flow", "run")


def plain_task(x: int) -> int:
    return x


# test_retry.py::test_runtime_heartbeat_outside_idle_attempt_is_no_op
async def test_a_heartbeat_without_an_idle_timeout_does_nothing(saver: Any) -> None:
    def node(state: X, runtime: Runtime[Any]) -> X:
        runtime.heartbeat()
        return {"x": 1}

    b = StateGraph(X).add_node("n", node)
    b.add_edge(START, "n")
    assert await b.compile(checkpointer=saver).ainvoke({"x": 0}, cfg()) == {"x": 1}
    assert Runtime().heartbeat() is None


# -- draining ------------------------------------------------------------------------------------


def two_steps(control: RunControl, reason: str | None = None) -> StateGraph:
    class S(TypedDict, total=False):
        first: str
        second: str

    def first(state: S, runtime: Runtime[Any]) -> S:
        assert runtime.control is control and not runtime.drain_requested
        control.request_drain(*([reason] if reason else []))
        assert runtime.drain_requested and runtime.drain_reason == (reason or "shutdown")
        return {"first": "done"}

    b = StateGraph(S).add_node("first", first).add_node("second", lambda s: {"second": "done"})
    b.add_edge(START, "first")
    b.add_edge("first", "second")
    b.add_edge("second", END)
    return b


# test_runtime.py::test_run_control_request_drain_stops_future_steps (and _async)
async def test_a_drain_stops_before_the_next_step_and_the_thread_continues(saver: Any) -> None:
    control = RunControl()
    graph = two_steps(control, "sigterm").compile(checkpointer=saver)
    seen: list[Any] = []
    with pytest.raises(GraphDrained, match="sigterm") as caught:
        async for chunk in graph.astream({}, cfg(), stream_mode="updates", control=control):
            seen.append(chunk)
    assert caught.value.reason == "sigterm" and isinstance(caught.value, GraphBubbleUp)
    assert str(caught.value) == "Graph drained: sigterm"
    assert seen == [{"first": {"first": "done"}}]
    state = await graph.aget_state(cfg())
    assert (state.values, state.next) == ({"first": "done"}, ("second",))
    assert await graph.ainvoke(None, cfg()) == {"first": "done", "second": "done"}


# test_runtime.py::test_run_control_request_drain_stops_future_steps: the sync API too
def test_a_drain_through_invoke() -> None:
    control = RunControl()
    with pytest.raises(GraphDrained, match="shutdown"):
        two_steps(control).compile().invoke({}, control=control)


# test_runtime.py::test_drain_requested_in_terminal_step_finishes_normally
async def test_a_drain_asked_in_the_last_step_lets_the_run_finish(saver: Any) -> None:
    control = RunControl()

    def node(state: Foo) -> Foo:
        control.request_drain()
        return {"foo": "done"}

    b = StateGraph(Foo).add_node("node", node)
    b.add_edge(START, "node")
    assert await b.compile(checkpointer=saver).ainvoke({}, cfg(), control=control) == {
        "foo": "done"
    }
    assert control.drain_requested


# test_runtime.py::test_drain_with_exit_durability_persists_resume_checkpoint
async def test_a_drain_under_exit_durability_stores_where_to_continue(saver: Any) -> None:
    control = RunControl()
    graph = two_steps(control, "sigterm").compile(checkpointer=saver)
    with pytest.raises(GraphDrained, match="sigterm"):
        await graph.ainvoke({}, cfg(), durability="exit", control=control)
    done = await graph.ainvoke(None, cfg(), durability="exit")
    assert done == {"first": "done", "second": "done"}


# test_runtime.py::test_drain_from_subgraph_can_resume_parent
async def test_a_drain_inside_a_subgraph_is_continued_from_the_parent(saver: Any) -> None:
    class S(TypedDict, total=False):
        child_first: str
        child_second: str
        parent_second: str

    control = RunControl()

    def child_first(state: S) -> S:
        control.request_drain("sigterm")
        return {"child_first": "done"}

    child = StateGraph(S).add_node("child_first", child_first)
    child.add_node("child_second", lambda s: {"child_second": "done"})
    child.add_edge(START, "child_first")
    child.add_edge("child_first", "child_second")
    parent = StateGraph(S).add_node("child", child.compile(checkpointer=True))
    parent.add_node("parent_second", lambda s: {"parent_second": "done"})
    parent.add_edge(START, "child")
    parent.add_edge("child", "parent_second")
    graph = parent.compile(checkpointer=saver)
    with pytest.raises(GraphDrained, match="sigterm"):
        await graph.ainvoke({}, cfg(), control=control)
    state = await graph.aget_state(cfg())
    assert state.next == ("child",) and [t.error for t in state.tasks] == [None]
    assert await graph.ainvoke(None, cfg()) == {
        "child_first": "done",
        "child_second": "done",
        "parent_second": "done",
    }


# observed on LangGraph 1.2.22: a control drained before the run runs nothing, the input kept
async def test_a_run_drained_before_it_starts_keeps_its_input(saver: Any) -> None:
    control = RunControl()
    control.request_drain()
    graph = two_steps(RunControl()).compile(checkpointer=saver)
    with pytest.raises(GraphDrained, match="shutdown"):
        await graph.ainvoke({"first": "x"}, cfg(), control=control)
    state = await graph.aget_state(cfg())
    assert (state.values, state.next) == ({}, ("__start__",))
