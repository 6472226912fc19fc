"""Poison run requests never stop a worker, on every driver.

A request whose payload cannot be decoded (a damaged byte), or that was submitted for another
graph, is marked failed with the reason (what `handle.status()` and `RunFailedError` show) and
the worker goes on with the requests behind it. A request whose every worker died before
finishing it (its claim expired each time: it crashes its process) is quarantined after
`Worker(max_attempts=N)` claims, instead of crashing the fleet forever.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, RunFailedError, RunHandle, RunRequest, StateGraph, Worker
from hitl_async._checkpoint import now_iso

pytestmark = pytest.mark.anyio


class State(TypedDict):
    n: int


def _graph(saver: Any, name: str = "poison") -> Any:
    def bump(state: State) -> dict[str, int]:
        return {"n": state["n"] + 1}

    builder = StateGraph(State)
    builder.add_node("bump", bump)
    builder.add_edge(START, "bump")
    builder.add_edge("bump", END)
    return builder.compile(checkpointer=saver, name=name)


async def _enqueue_raw(saver: Any, thread_id: str, payload: bytes) -> RunHandle:
    request = RunRequest(uuid.uuid4().hex, "poison", thread_id, payload, created_at=now_iso())
    await saver.enqueue(request)
    return RunHandle(request.id, thread_id, saver, _graph(saver).serde)


async def _serve(graph: Any, requests: int, **options: Any) -> Worker:
    worker = Worker(graph, poll=0.05, **options)
    with anyio.fail_after(30):
        await worker.run(max_requests=requests)
    return worker


async def test_an_undecodable_request_fails_with_the_reason_and_the_worker_goes_on(
    saver: Any,
) -> None:
    graph = _graph(saver)
    good_payload = graph.serde.dumps({"input": {"n": 1}, "config": {}}, channel="run request")
    damaged = bytearray(good_payload)
    damaged[len(damaged) // 2] ^= 0x40  # one damaged byte (the serializer's checksum sees it)
    poison = await _enqueue_raw(saver, "t-poison", bytes(damaged))
    healthy = await graph.asubmit({"n": 1}, {"configurable": {"thread_id": "t-healthy"}})
    await _serve(graph, 2)
    assert await poison.status() == "failed"
    with pytest.raises(RunFailedError, match="cannot be decoded"):
        await poison.result(timeout=5)
    assert await healthy.result(timeout=5) == {"n": 2}


async def test_a_request_for_another_graph_fails_with_the_reason(saver: Any) -> None:
    other = _graph(saver, name="someone-else")
    mine = _graph(saver)
    stray = await other.asubmit({"n": 1}, {"configurable": {"thread_id": "t1"}}, queue="poison")
    healthy = await mine.asubmit({"n": 5}, {"configurable": {"thread_id": "t2"}})
    await _serve(mine, 2)
    with pytest.raises(RunFailedError, match="submitted for graph 'someone-else'"):
        await stray.result(timeout=5)
    assert await healthy.result(timeout=5) == {"n": 6}


async def test_a_request_that_keeps_killing_its_workers_is_quarantined(saver: Any) -> None:
    graph = _graph(saver)
    crasher = await graph.asubmit({"n": 1}, {"configurable": {"thread_id": "t-crash"}})
    for attempt in range(3):  # three workers took it and died: their claims lapsed
        claimed = await saver.claim_request("poison", f"dead-{attempt}", 0.05)
        assert claimed is not None and claimed.attempts == attempt + 1
        await anyio.sleep(0.1)
    healthy = await graph.asubmit({"n": 1}, {"configurable": {"thread_id": "t-fine"}})
    await _serve(graph, 2, max_attempts=3)
    assert await crasher.status() == "failed"
    with pytest.raises(RunFailedError, match="quarantined after 3 attempts"):
        await crasher.result(timeout=5)
    assert await healthy.result(timeout=5) == {"n": 2}
    assert (await graph.aget_state({"configurable": {"thread_id": "t-crash"}})).values == {}
