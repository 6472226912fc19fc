"""`step_timeout` on the scheduler's own paths: tasks waiting for `max_concurrency` room when
the limit passes do not start (and count as cancelled), and the error names what it cut short."""

from __future__ import annotations

import operator
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import START, InMemorySaver, StateGraph, StepTimeoutError

pytestmark = pytest.mark.anyio


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


async def test_tasks_queued_behind_max_concurrency_do_not_start_after_the_limit() -> None:
    started: list[str] = []

    def node(name: str, seconds: float) -> Any:
        async def run(state: Log) -> Log:
            started.append(name)
            await anyio.sleep(seconds)
            return {"log": [name]}

        return run

    b = StateGraph(Log)
    for name, seconds in (("a", 0.0), ("b", 30.0), ("c", 0.0)):
        b.add_node(name, node(name, seconds)).add_edge(START, name)
    graph = b.compile(checkpointer=InMemorySaver())
    graph.step_timeout = 0.2
    config: Any = {"configurable": {"thread_id": "t"}, "max_concurrency": 1}
    with pytest.raises(StepTimeoutError) as caught:
        await graph.ainvoke({"log": []}, config)
    assert sorted(caught.value.cancelled) == ["b", "c"] and started == ["a", "b"]
    assert (caught.value.thread_id, caught.value.step, caught.value.timeout) == ("t", 1, 0.2)
    assert "thread 't', step 1: the superstep ran past step_timeout=0.2s" in str(caught.value)
    state = await graph.aget_state(config)
    assert state.values == {"log": ["a"]} and state.next == ("b", "c")


def test_the_limit_holds_under_trio() -> None:
    async def slow(state: Log) -> Log:
        await anyio.sleep(30)
        return {"log": ["slow"]}

    async def fast(state: Log) -> Log:
        return {"log": ["fast"]}

    async def main() -> tuple[Any, Any]:
        b = StateGraph(Log).add_node("fast", fast).add_node("slow", slow)
        graph = b.add_edge(START, "fast").add_edge(START, "slow").compile(InMemorySaver())
        graph.step_timeout = 0.2
        config: Any = {"configurable": {"thread_id": "t"}}
        with pytest.raises(StepTimeoutError) as caught:
            await graph.ainvoke({"log": []}, config)
        return caught.value.cancelled, await graph.aget_state(config)

    cancelled, state = anyio.run(main, backend="trio")
    assert cancelled == ("slow",)
    assert state.values == {"log": ["fast"]} and state.next == ("slow",)
