"""The superstep scheduler: concurrency, worker threads for sync nodes, deterministic writes,
recursion limit, retries, failures and both anyio backends."""

from __future__ import annotations

import operator
import threading
import time
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import (
    Command,
    GraphRecursionError,
    InMemorySaver,
    InvalidConfigError,
    InvalidUpdateError,
    RetryPolicy,
    interrupt,
)
from hitl_async.constants import DEFAULT_RECURSION_LIMIT
from hitl_async.graph import END, START, StateGraph


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    k: str
    n: int


def cfg(thread: str = "t", **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, **extra}


def fast_retry(**kw: Any) -> RetryPolicy:
    return RetryPolicy(initial_interval=0, jitter=False, **kw)


# -- concurrency -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tasks_of_a_step_run_concurrently() -> None:
    a_ready, b_ready = anyio.Event(), anyio.Event()

    async def a(state: S) -> dict[str, Any]:
        a_ready.set()
        await b_ready.wait()  # deadlocks unless b runs at the same time
        return {"log": ["a"]}

    async def b(state: S) -> dict[str, Any]:
        b_ready.set()
        await a_ready.wait()
        return {"log": ["b"]}

    builder = StateGraph(S)
    builder.add_node("a", a)
    builder.add_node("b", b)
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    with anyio.fail_after(5):
        out = await builder.compile().ainvoke({"log": []})
    assert out == {"log": ["a", "b"]}


@pytest.mark.anyio
async def test_sync_node_runs_in_worker_thread_without_blocking_the_loop() -> None:
    ticks = 0
    seen: dict[str, Any] = {}
    sync_done = threading.Event()

    def slow_sync(state: S) -> dict[str, Any]:
        seen["sync_thread"] = threading.current_thread()
        before = ticks
        time.sleep(0.3)
        seen["ticks_during_sleep"] = ticks - before
        sync_done.set()
        return {"log": ["sync"]}

    async def ticker(state: S) -> dict[str, Any]:
        nonlocal ticks
        seen["loop_thread"] = threading.current_thread()
        with anyio.fail_after(5):
            while not sync_done.is_set():
                ticks += 1
                await anyio.sleep(0.01)
        return {"log": ["ticker"]}

    builder = StateGraph(S)
    builder.add_node("slow_sync", slow_sync)
    builder.add_node("ticker", ticker)
    builder.add_edge(START, "slow_sync")
    builder.add_edge(START, "ticker")
    out = await builder.compile().ainvoke({"log": []})
    assert out == {"log": ["sync", "ticker"]}
    assert seen["sync_thread"] is not seen["loop_thread"]
    assert seen["loop_thread"] is threading.current_thread()
    assert seen["ticks_during_sleep"] > 0  # the event loop kept running during time.sleep


def test_write_order_is_task_order_not_completion_order() -> None:
    def sleeper(name: str, delay: float) -> Any:
        async def node(state: S) -> dict[str, Any]:
            await anyio.sleep(delay)
            return {"log": [name]}

        return node

    builder = StateGraph(S)
    # a finishes last and c first, yet writes are applied a, b, c
    for name, delay in (("a", 0.06), ("b", 0.03), ("c", 0.0)):
        builder.add_node(name, sleeper(name, delay))
        builder.add_edge(START, name)
    builder.add_node("after", lambda s: {"log": ["after"]})
    builder.add_edge(["a", "b", "c"], "after")
    graph = builder.compile(checkpointer=InMemorySaver())
    for i in range(5):
        assert graph.invoke({"log": []}, cfg(f"order-{i}")) == {"log": ["a", "b", "c", "after"]}


# -- recursion limit -------------------------------------------------------------------------------


def _self_loop(runs: list[int]) -> Any:
    def loop(state: S) -> dict[str, Any]:
        runs.append(1)
        return {"n": state.get("n", 0) + 1}

    builder = StateGraph(S)
    builder.add_node("loop", loop)
    builder.add_edge(START, "loop")
    builder.add_conditional_edges("loop", lambda s: "loop")
    return builder.compile(checkpointer=InMemorySaver())


def _chain(length: int) -> Any:
    builder = StateGraph(S)
    builder.add_sequence([(f"n{i}", lambda s: {"n": s.get("n", 0) + 1}) for i in range(length)])
    builder.add_edge(START, "n0")
    return builder.compile(checkpointer=InMemorySaver())


def test_default_recursion_limit_is_langgraphs() -> None:
    """No `recursion_limit` in the config: LangGraph 1.2.22's default, 10007 supersteps."""
    assert DEFAULT_RECURSION_LIMIT == 10007
    runs: list[int] = []
    graph = _self_loop(runs)
    with pytest.raises(GraphRecursionError) as err:
        graph.invoke({"n": 0}, cfg("looping-thread"))
    assert len(runs) == DEFAULT_RECURSION_LIMIT
    assert isinstance(err.value, RecursionError)
    assert "looping-thread" in str(err.value)
    assert "10007" in str(err.value)
    snap = graph.get_state(cfg("looping-thread"))
    assert snap.values == {"n": DEFAULT_RECURSION_LIMIT, "log": []}
    assert snap.next == ("loop",)


def test_chain_of_exactly_the_limit_completes_and_one_more_fails() -> None:
    assert _chain(25).invoke({"n": 0}, cfg(recursion_limit=25))["n"] == 25
    with pytest.raises(GraphRecursionError):
        _chain(26).invoke({"n": 0}, cfg(recursion_limit=25))


def test_custom_recursion_limit_from_config() -> None:
    runs: list[int] = []
    graph = _self_loop(runs)
    with pytest.raises(GraphRecursionError, match=r"'custom'.*\b5\b"):
        graph.invoke({"n": 0}, cfg("custom", recursion_limit=5))
    assert len(runs) == 5
    assert _chain(5).invoke({"n": 0}, cfg(recursion_limit=5))["n"] == 5


def test_recursion_limit_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="recursion_limit"):
        _chain(1).invoke({"n": 0}, cfg(recursion_limit=0))


@pytest.mark.parametrize("bad", ["25", 2.5, True])
def test_a_recursion_limit_that_is_not_an_int_is_a_config_error(bad: Any) -> None:
    graph = _chain(1)
    with pytest.raises(InvalidConfigError, match=r"recursion_limit must be an int >= 1, got"):
        graph.invoke({"n": 0}, cfg("bad-limit", recursion_limit=bad))
    assert graph.get_state(cfg("bad-limit")).values == {}


# -- retries ---------------------------------------------------------------------------------------


def _flaky_graph(fail_times: int, exc: type[Exception], policy: RetryPolicy) -> tuple[Any, list]:
    calls: list[int] = []

    def flaky(state: S) -> dict[str, Any]:
        calls.append(1)
        if len(calls) <= fail_times:
            raise exc("transient")
        return {"k": "ok"}

    builder = StateGraph(S)
    builder.add_node("flaky", flaky, retry_policy=policy)
    builder.add_edge(START, "flaky")
    return builder.compile(), calls


def test_retry_policy_retries_transient_error_then_succeeds() -> None:
    graph, calls = _flaky_graph(2, ConnectionError, fast_retry(max_attempts=3))
    assert graph.invoke({"k": ""}) == {"k": "ok", "log": []}
    assert len(calls) == 3


def test_retry_policy_exhausted_reraises() -> None:
    graph, calls = _flaky_graph(10, ConnectionError, fast_retry(max_attempts=2))
    with pytest.raises(ConnectionError, match="transient"):
        graph.invoke({"k": ""})
    assert len(calls) == 2


def test_retry_on_filter_skips_other_errors() -> None:
    graph, calls = _flaky_graph(1, ValueError, fast_retry(retry_on=KeyError))
    with pytest.raises(ValueError):
        graph.invoke({"k": ""})
    assert len(calls) == 1
    graph, calls = _flaky_graph(1, ValueError, fast_retry(retry_on=(KeyError, ValueError)))
    assert graph.invoke({"k": ""})["k"] == "ok"
    assert len(calls) == 2
    graph, calls = _flaky_graph(1, ValueError, fast_retry(retry_on=lambda e: "trans" in str(e)))
    assert graph.invoke({"k": ""})["k"] == "ok"
    assert len(calls) == 2


def test_default_retry_on_does_not_retry_value_error() -> None:
    graph, calls = _flaky_graph(1, ValueError, fast_retry())
    with pytest.raises(ValueError):
        graph.invoke({"k": ""})
    assert len(calls) == 1


# -- failures --------------------------------------------------------------------------------------


def test_failed_task_keeps_sibling_writes_and_sibling_is_not_rerun() -> None:
    calls = {"good": 0, "bad": 0, "after": 0}
    broken = True

    async def good(state: S) -> dict[str, Any]:
        calls["good"] += 1
        return {"log": ["good"]}

    async def bad(state: S) -> dict[str, Any]:
        calls["bad"] += 1
        await anyio.sleep(0.02)  # good finishes first
        if broken:
            raise ValueError("boom")
        return {"log": ["bad"]}

    def after(state: S) -> dict[str, Any]:
        calls["after"] += 1
        return {"log": ["after"]}

    builder = StateGraph(S)
    builder.add_node("good", good)
    builder.add_node("bad", bad)
    builder.add_node("after", after)
    builder.add_edge(START, "good")
    builder.add_edge(START, "bad")
    builder.add_edge(["good", "bad"], "after")
    graph = builder.compile(checkpointer=InMemorySaver())
    with pytest.raises(ValueError, match="boom"):
        list(graph.stream({"log": []}, cfg()))
    snap = graph.get_state(cfg())
    assert snap.next == ("bad",)
    assert snap.values == {"log": ["good"]}
    assert snap.metadata["step"] == 0
    by_name = {t.name: t for t in snap.tasks}
    assert by_name["good"].error is None and by_name["good"].result == {"log": ["good"]}
    assert "boom" in str(by_name["bad"].error)

    # still failing: only bad reruns
    with pytest.raises(ValueError):
        list(graph.stream(None, cfg()))
    assert calls == {"good": 1, "bad": 2, "after": 0}

    broken = False
    list(graph.stream(None, cfg()))
    assert calls == {"good": 1, "bad": 3, "after": 1}
    assert graph.get_state(cfg()).values == {"log": ["bad", "good", "after"]}  # by node name


def test_two_parallel_writes_to_a_plain_key_raise_invalid_update() -> None:
    builder = StateGraph(S)
    builder.add_node("p", lambda s: {"k": "p"})
    builder.add_node("q", lambda s: {"k": "q"})
    builder.add_edge(START, "p")
    builder.add_edge(START, "q")
    with pytest.raises(InvalidUpdateError, match="'k'"):
        builder.compile().invoke({"k": ""})


def test_two_parallel_writes_to_a_reducer_key_are_fine() -> None:
    builder = StateGraph(S)
    builder.add_node("p", lambda s: {"log": ["p"]})
    builder.add_node("q", lambda s: {"log": ["q"]})
    builder.add_edge(START, "p")
    builder.add_edge(START, "q")
    assert builder.compile().invoke({"log": []}) == {"log": ["p", "q"]}


# -- backends --------------------------------------------------------------------------------------


def _hitl_graph() -> Any:
    async def ask(state: S) -> dict[str, Any]:
        answer = interrupt({"q": "ok?"})
        return {"k": answer, "log": ["ask"]}

    def after(state: S) -> dict[str, Any]:  # a sync node: runs in a worker thread
        return {"log": [f"after:{state['k']}"]}

    builder = StateGraph(S)
    builder.add_node("ask", ask)
    builder.add_node("after", after)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "after")
    builder.add_edge("after", END)
    return builder.compile(checkpointer=InMemorySaver())


async def _interrupt_and_resume(graph: Any) -> dict[str, Any]:
    config = cfg("backend")
    events = [e async for e in graph.astream({"log": []}, config)]
    assert len(events) == 1 and events[0]["__interrupt__"][0].value == {"q": "ok?"}
    snap = await graph.aget_state(config)
    assert snap.next == ("ask",)
    return await graph.ainvoke(Command(resume="yes"), config)


def test_runs_under_trio() -> None:
    out = anyio.run(_interrupt_and_resume, _hitl_graph(), backend="trio")
    assert out == {"k": "yes", "log": ["ask", "after:yes"]}


def test_runs_under_asyncio() -> None:
    out = anyio.run(_interrupt_and_resume, _hitl_graph(), backend="asyncio")
    assert out == {"k": "yes", "log": ["ask", "after:yes"]}


def test_recursion_limit_is_per_call() -> None:
    builder = StateGraph(S)
    builder.add_sequence([(f"n{i}", lambda s: {"n": s.get("n", 0) + 1}) for i in range(8)])
    builder.add_edge(START, "n0")
    graph = builder.compile(checkpointer=InMemorySaver(), interrupt_before=["n4"])
    graph.invoke({"n": 0}, cfg(recursion_limit=5))
    assert graph.get_state(cfg()).next == ("n4",)
    assert graph.invoke(None, cfg(recursion_limit=5))["n"] == 8


def test_resumed_call_gets_the_same_limit() -> None:
    runs: list[int] = []

    def loop(state: S) -> dict[str, Any]:
        runs.append(1)
        if state.get("n", 0) == 0:
            interrupt("go?")
        return {"n": state.get("n", 0) + 1}

    builder = StateGraph(S)
    builder.add_node("loop", loop)
    builder.add_edge(START, "loop")
    builder.add_conditional_edges("loop", lambda s: "loop")
    graph = builder.compile(checkpointer=InMemorySaver())
    graph.invoke({"n": 0}, cfg(recursion_limit=5))
    assert len(runs) == 1
    with pytest.raises(GraphRecursionError):
        graph.invoke(Command(resume="go"), cfg(recursion_limit=5))
    assert len(runs) == 1 + 5  # not LangGraph's limit + 2 on continuation calls


class JoinLog(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def test_join_edge_into_end_finishes_the_run() -> None:
    b = StateGraph(JoinLog)
    b.add_node("a", lambda s: {"log": ["a"]})
    b.add_node("b", lambda s: {"log": ["b"]})
    b.add_edge(START, "a")
    b.add_edge(START, "b")
    b.add_edge(["a", "b"], END)
    assert b.compile().invoke({"log": []}) == {"log": ["a", "b"]}
