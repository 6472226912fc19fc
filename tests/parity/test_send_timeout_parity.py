"""`Send(node, arg, timeout=...)` of LangGraph 1.2.22: one pushed task's own time limit, in
place of its node's — restated from its test_retry.py (each case names the one it comes from)
and checked by running the same graphs on LangGraph. They run on every driver.

A task that must time out sleeps far past its limit (cancelled at once); one that must not
finishes well within it."""

from __future__ import annotations

import operator
import time
import uuid
from datetime import timedelta
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import (
    START,
    Command,
    GraphValidationError,
    NodeTimeoutError,
    Send,
    StateGraph,
    TimeoutPolicy,
    interrupt,
)

pytestmark = pytest.mark.anyio


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


class Job(TypedDict):
    seconds: float


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


async def work(job: Job) -> Log:
    await anyio.sleep(job["seconds"])
    return {"log": [f"slept {job['seconds']}"]}


# test_retry.py::test_coerce_timeout_policy_scalar_is_run_timeout,
# test_retry.py::test_timeout_validation_is_eager_across_apis (the Send part); repr and
# equality observed on LangGraph 1.2.22
def test_a_send_timeout_is_a_policy_checked_when_made() -> None:
    assert Send("n", None, timeout=timedelta(milliseconds=250)).timeout == TimeoutPolicy(
        run_timeout=0.25
    )
    assert Send("n", 1, timeout=2) == Send("n", 1, timeout=2.0)
    assert Send("n", 1) == Send("n", 1, timeout=None) != Send("n", 1, timeout=2)
    assert repr(Send("n", 1)) == "Send(node='n', arg=1)"
    assert repr(Send("n", 1, timeout=2)) == (
        "Send(node='n', arg=1, timeout=TimeoutPolicy(run_timeout=2.0, idle_timeout=None, "
        "refresh_on='auto'))"
    )
    for bad in (0, -1, "x"):
        with pytest.raises(ValueError, match="invalid timeout"):
            Send("n", {}, timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Send("n", {}, 5)  # type: ignore[misc]  # (keyword only, as LangGraph's)


# observed on LangGraph 1.2.22: each pushed task has its own limit; the one past it fails
# with NodeTimeoutError, its sibling's writes are kept, and the stored Send keeps its limit
async def test_each_send_has_its_own_limit(saver: Any) -> None:
    b = StateGraph(Log).add_node("work", work)
    b.add_conditional_edges(
        START, lambda s: [Send("work", {"seconds": 30}, timeout=0.1), Send("work", {"seconds": 0})]
    )
    graph = b.compile(checkpointer=saver)
    config = cfg()
    with pytest.raises(NodeTimeoutError, match=r"'work' exceeded its run timeout of 0\.100s"):
        await graph.ainvoke({"log": []}, config)
    state = await graph.aget_state(config)
    assert state.next == ("work",)
    assert [(t.result, "NodeTimeoutError" in repr(t.error)) for t in state.tasks] == [
        (None, True),
        ({"log": ["slept 0"]}, False),
    ]
    with pytest.raises(NodeTimeoutError):  # run again: the same limit, read back from the store
        await graph.ainvoke(None, config)


# test_retry.py::test_send_timeout_overrides_target_node_timeout, and the other way round
# (observed on LangGraph 1.2.22): a Send's limit replaces the node's, shorter or longer
async def test_a_send_timeout_replaces_the_nodes(saver: Any) -> None:
    b = StateGraph(Log).add_node("work", work, timeout=TimeoutPolicy(idle_timeout=1.0))
    b.add_conditional_edges(
        START, lambda s: [Send("work", {"seconds": 30}, timeout=TimeoutPolicy(idle_timeout=0.05))]
    )
    with pytest.raises(NodeTimeoutError) as caught:
        await b.compile(checkpointer=saver).ainvoke({"log": []}, cfg())
    assert (caught.value.node, caught.value.kind, caught.value.idle_timeout) == (
        "work",
        "idle",
        0.05,
    )
    b = StateGraph(Log).add_node("work", work, timeout=0.05)
    b.add_conditional_edges(START, lambda s: [Send("work", {"seconds": 0.2}, timeout=5)])
    out = await b.compile(checkpointer=saver).ainvoke({"log": []}, cfg())
    assert out == {"log": ["slept 0.2"]}


# observed on LangGraph 1.2.22: a Send made by a Command(goto=...) after a pause is stored with
# its limit, which applies when the thread goes on
async def test_a_stored_send_keeps_its_limit_across_a_pause(saver: Any) -> None:
    async def asks(state: Log) -> Command[Any]:
        interrupt("go?")
        return Command(goto=[Send("work", {"seconds": 30}, timeout=0.1)])

    b = StateGraph(Log).add_node("asks", asks).add_node("work", work).add_edge(START, "asks")
    graph = b.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"log": []}, config)
    with pytest.raises(NodeTimeoutError, match=r"run timeout of 0\.100s"):
        await graph.ainvoke(Command(resume="yes"), config)

    async def pausing(job: Job) -> Log:
        interrupt("q")
        await anyio.sleep(job["seconds"])
        return {"log": ["done"]}

    b = StateGraph(Log).add_node("work", pausing)
    b.add_conditional_edges(START, lambda s: [Send("work", {"seconds": 30}, timeout=0.1)])
    graph = b.compile(checkpointer=saver)
    config = cfg()
    assert "__interrupt__" in await graph.ainvoke({"log": []}, config)
    with pytest.raises(NodeTimeoutError, match=r"run timeout of 0\.100s"):
        await graph.ainvoke(Command(resume="yes"), config)


# observed on LangGraph 1.2.22 (invoke): a Send's limit on a sync node fails its task with
# LangGraph's message. Under ainvoke LangGraph applies it while the thread runs on (a
# difference, README): here it fails the same way under both APIs.
async def test_a_send_timeout_on_a_sync_node_is_refused(saver: Any) -> None:
    def sync_work(job: Job) -> Log:
        time.sleep(job["seconds"])
        return {"log": ["sync"]}

    b = StateGraph(Log).add_node("work", sync_work)
    b.add_conditional_edges(START, lambda s: [Send("work", {"seconds": 0}, timeout=0.05)])
    graph = b.compile(checkpointer=saver)
    message = "Node timeouts are only supported for async nodes .* Node 'work' is sync"
    with pytest.raises(GraphValidationError, match=message):
        await graph.ainvoke({"log": []}, cfg())
    config = cfg()
    with pytest.raises(GraphValidationError, match=message):
        await anyio.to_thread.run_sync(lambda: graph.invoke({"log": []}, config))
