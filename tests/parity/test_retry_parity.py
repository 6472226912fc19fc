"""Retry policies, restated from LangGraph's test_retry.py (and the retry parts of its pregel
tests), run in graphs that checkpoint to every driver. Intervals are tiny: the tests count
attempts, never time."""

from __future__ import annotations

import operator
from collections import Counter
from typing import Annotated, Any

import pytest
from apps.services import require_package
from typing_extensions import TypedDict

from hitl_async import Command, RetryPolicy, interrupt
from hitl_async.graph import END, START, StateGraph

pytestmark = pytest.mark.anyio

FAST = {"initial_interval": 0.001, "jitter": False}


class Foo(TypedDict, total=False):
    foo: str
    error_type: str


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def flaky(calls: Counter[str], fail_times: int, exc: BaseException) -> Any:
    """A node that raises `exc` on its first `fail_times` attempts."""

    def node(state: Foo) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] <= fail_times:
            raise exc
        return {"foo": "success"}

    return node


def one_node(saver: Any, node: Any, policy: Any) -> Any:
    b = StateGraph(Foo)
    b.add_node("node", node, retry_policy=policy)
    b.add_edge(START, "node")
    return b.compile(checkpointer=saver)


# test_retry.py::test_graph_with_single_retry_policy
async def test_a_node_is_retried_until_it_succeeds_then_the_graph_goes_on(saver: Any) -> None:
    calls: Counter[str] = Counter()
    policy = RetryPolicy(max_attempts=3, backoff_factor=2.0, retry_on=ValueError, **FAST)
    b = StateGraph(Foo)
    b.add_node("failing", flaky(calls, 2, ValueError("Intentional failure")), retry_policy=policy)
    b.add_node("other", lambda s: {"foo": "other_node"})
    b.add_edge(START, "failing")
    b.add_edge("failing", "other")
    graph = b.compile(checkpointer=saver)
    assert (await graph.ainvoke({"foo": ""}, cfg()))["foo"] == "other_node"
    assert calls["n"] == 3
    # retries are invisible in the history: one checkpoint per step
    steps = [s.metadata["step"] async for s in graph.aget_state_history(cfg())]
    assert steps == [2, 1, 0, -1]


# test_retry.py::test_graph_with_max_attempts_exceeded
async def test_a_node_failing_every_attempt_raises_its_error(saver: Any) -> None:
    calls: Counter[str] = Counter()
    policy = RetryPolicy(max_attempts=2, retry_on=ValueError, **FAST)
    graph = one_node(saver, flaky(calls, 99, ValueError("Always fails")), policy)
    with pytest.raises(ValueError, match="Always fails"):
        await graph.ainvoke({"foo": ""}, cfg())
    assert calls["n"] == 2
    snap = await graph.aget_state(cfg())
    assert snap.next == ("node",)
    assert "Always fails" in (snap.tasks[0].error or "")


# test_retry.py::test_graph_with_multiple_retry_policies
@pytest.mark.parametrize(("kind", "attempts"), [("value_error", 2), ("key_error", 3)])
async def test_the_first_policy_matching_the_error_applies(
    saver: Any, kind: str, attempts: int
) -> None:
    calls: Counter[str] = Counter()

    def node(state: Foo) -> dict[str, Any]:
        calls[kind] += 1
        if calls[kind] < attempts:
            raise ValueError("v") if kind == "value_error" else KeyError("k")
        return {"foo": f"recovered_from_{kind}"}

    policies = (
        RetryPolicy(max_attempts=2, retry_on=ValueError, **FAST),
        RetryPolicy(max_attempts=3, retry_on=KeyError, **FAST),
    )
    graph = one_node(saver, node, policies)
    out = await graph.ainvoke({"foo": "", "error_type": kind}, cfg())
    assert out["foo"] == f"recovered_from_{kind}"
    assert calls[kind] == attempts


# test_retry.py::test_should_retry_on_single_exception
async def test_an_error_the_policy_does_not_name_is_not_retried(saver: Any) -> None:
    calls: Counter[str] = Counter()
    graph = one_node(
        saver, flaky(calls, 1, TypeError("t")), RetryPolicy(retry_on=ValueError, **FAST)
    )
    with pytest.raises(TypeError):
        await graph.ainvoke({"foo": ""}, cfg())
    assert calls["n"] == 1


# test_retry.py::test_should_retry_on_sequence_of_exceptions
@pytest.mark.parametrize("exc", [ValueError("v"), KeyError("k")])
async def test_a_sequence_of_error_types_retries_each(saver: Any, exc: BaseException) -> None:
    calls: Counter[str] = Counter()
    policy = RetryPolicy(retry_on=(ValueError, KeyError), **FAST)
    graph = one_node(saver, flaky(calls, 1, exc), policy)
    assert await graph.ainvoke({"foo": ""}, cfg()) == {"foo": "success"}
    assert calls["n"] == 2


# test_retry.py::test_should_retry_on_subclass_of_exception
async def test_a_subclass_of_the_named_error_is_retried(saver: Any) -> None:
    class CustomError(ValueError):
        pass

    calls: Counter[str] = Counter()
    graph = one_node(
        saver, flaky(calls, 1, CustomError("c")), RetryPolicy(retry_on=ValueError, **FAST)
    )
    assert await graph.ainvoke({"foo": ""}, cfg()) == {"foo": "success"}
    assert calls["n"] == 2


# test_retry.py::test_should_retry_on_callable
@pytest.mark.parametrize(("message", "retried"), [("please retry", True), ("other", False)])
async def test_a_predicate_decides_what_is_retried(saver: Any, message: str, retried: bool) -> None:
    def should(exc: BaseException) -> bool:
        return isinstance(exc, ValueError) and "retry" in str(exc)

    calls: Counter[str] = Counter()
    graph = one_node(
        saver, flaky(calls, 1, ValueError(message)), RetryPolicy(retry_on=should, **FAST)
    )
    if retried:
        assert await graph.ainvoke({"foo": ""}, cfg()) == {"foo": "success"}
    else:
        with pytest.raises(ValueError, match=message):
            await graph.ainvoke({"foo": ""}, cfg())
    assert calls["n"] == (2 if retried else 1)


# test_retry.py::test_should_retry_on_empty_sequence
async def test_an_empty_sequence_retries_nothing(saver: Any) -> None:
    calls: Counter[str] = Counter()
    graph = one_node(saver, flaky(calls, 1, ValueError("v")), RetryPolicy(retry_on=(), **FAST))
    with pytest.raises(ValueError):
        await graph.ainvoke({"foo": ""}, cfg())
    assert calls["n"] == 1


# test_retry.py::test_should_retry_default_retry_on
@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (ConnectionError("refused"), True),
        (ValueError("invalid"), False),
        (TypeError("type"), False),
        (ArithmeticError("div"), False),
        (LookupError("key"), False),
        (RuntimeError("rt"), False),
        (OSError("file"), False),
    ],
)
async def test_the_default_policy_retries_transient_errors_only(
    saver: Any, exc: BaseException, retried: bool
) -> None:
    calls: Counter[str] = Counter()
    graph = one_node(saver, flaky(calls, 1, exc), RetryPolicy(**FAST))
    if retried:
        assert await graph.ainvoke({"foo": ""}, cfg()) == {"foo": "success"}
    else:
        with pytest.raises(type(exc)):
            await graph.ainvoke({"foo": ""}, cfg())
    assert calls["n"] == (2 if retried else 1)


# test_retry.py::test_should_retry_default_retry_on (HTTP status errors)
@pytest.mark.parametrize(("status", "retried"), [(503, True), (404, False)])
async def test_the_default_policy_retries_server_errors_of_http_clients(
    saver: Any, status: int, retried: bool
) -> None:
    import httpx

    request = httpx.Request("GET", "http://example.invalid")
    response = httpx.Response(status, request=request)
    exc = httpx.HTTPStatusError("status", request=request, response=response)
    calls: Counter[str] = Counter()
    graph = one_node(saver, flaky(calls, 1, exc), RetryPolicy(**FAST))
    if retried:
        assert await graph.ainvoke({"foo": ""}, cfg()) == {"foo": "success"}
    else:
        with pytest.raises(httpx.HTTPStatusError):
            await graph.ainvoke({"foo": ""}, cfg())
    assert calls["n"] == (2 if retried else 1)


# test_pregel_async.py::test_dynamic_interrupt ("interrupts aren't retried")
async def test_an_interrupt_is_not_retried(saver: Any) -> None:
    calls: Counter[str] = Counter()

    def ask(state: Foo) -> dict[str, Any]:
        calls["n"] += 1
        return {"foo": interrupt("why?")}

    graph = one_node(saver, ask, RetryPolicy(**FAST))
    out = await graph.ainvoke({"foo": ""}, cfg())
    assert [i.value for i in out["__interrupt__"]] == ["why?"]
    assert calls["n"] == 1
    assert await graph.ainvoke(Command(resume="because"), cfg()) == {"foo": "because"}


# test_pregel_async.py::test_debug_retry
async def test_rerunning_a_step_streams_checkpoints_that_match_history(saver: Any) -> None:
    class S(TypedDict):
        messages: Annotated[list[str], operator.add]

    b = StateGraph(S)
    b.add_node("one", lambda s: {"messages": ["entered one node"]})
    b.add_node("two", lambda s: {"messages": ["entered two node"]})
    b.add_edge(START, "one")
    b.add_edge("one", "two")
    b.add_edge("two", END)
    graph = b.compile(checkpointer=saver)
    await graph.ainvoke({"messages": []}, cfg(), durability="async")
    snaps = [s async for s in graph.aget_state_history(cfg())]
    step1 = next(s for s in snaps if s.metadata["step"] == 1)
    update_config = await graph.aupdate_state(step1.parent_config, values=None)
    events = [
        c async for c in graph.astream(None, update_config, stream_mode="debug", durability="async")
    ]
    assert [e["type"] for e in events] == [
        "checkpoint",  # the update checkpoint the run continues from
        "task",
        "task_result",
        "checkpoint",
        "task",
        "task_result",
        "checkpoint",
    ]
    streamed = [e["payload"] for e in events if e["type"] == "checkpoint"]
    stored = {
        s.config["configurable"]["checkpoint_id"]: s async for s in graph.aget_state_history(cfg())
    }
    for payload in streamed:
        conf = payload["config"]["configurable"]
        parent = (payload["parent_config"] or {}).get("configurable")
        assert conf != parent
        snap = stored[conf["checkpoint_id"]]
        assert snap.config["configurable"] == conf
        assert (snap.parent_config or {}).get("configurable") == parent
    assert (await graph.aget_state(cfg())).values["messages"] == [
        "entered one node",
        "entered two node",
    ]


# test_retry.py::test_should_retry_default_retry_on (requests.HTTPError; 4xx: README difference)
@pytest.mark.parametrize(("status", "retried"), [(None, True), (502, True), (400, False)])
async def test_the_default_policy_on_requests_http_errors(
    saver: Any, status: int | None, retried: bool
) -> None:
    require_package("requests", "requests (langchain-core brings it)")
    import requests

    exc = requests.HTTPError("http")
    if status is None:
        exc.response = None
    else:
        exc.response = requests.Response()
        exc.response.status_code = status
    calls: Counter[str] = Counter()
    graph = one_node(saver, flaky(calls, 1, exc), RetryPolicy(**FAST))
    if retried:
        assert await graph.ainvoke({"foo": ""}, cfg()) == {"foo": "success"}
    else:
        with pytest.raises(requests.HTTPError):
            await graph.ainvoke({"foo": ""}, cfg())
    assert calls["n"] == (2 if retried else 1)
