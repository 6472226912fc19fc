"""More of LangGraph's functional-API tests, restated and run on every driver."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from hitl_async.func import entrypoint, task

pytestmark = pytest.mark.anyio


async def test_each_task_call_is_a_traced_run_inside_the_entrypoint(saver: Any) -> None:
    """LangGraph's test_imp_task (its tracer): with LangChain callbacks, the run is one root
    chain run; the entrypoint's run is its child, and each `@task` call a run of its own named
    after the task, inside the entrypoint's, with the call's arguments by name as inputs."""
    from langchain_core.callbacks import BaseCallbackHandler

    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.runs: dict[Any, tuple[str, Any, Any]] = {}

        def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
            self.runs[kw["run_id"]] = (kw.get("name"), kw.get("parent_run_id"), inputs)

    @task
    async def mapper(input: int) -> str:
        return str(input * 2)

    @entrypoint(checkpointer=saver)
    async def graph(numbers: list[int]) -> list[str]:
        return list(await asyncio.gather(*[mapper(i) for i in numbers]))

    recorder = Recorder()
    config = {"configurable": {"thread_id": uuid.uuid4().hex}, "callbacks": [recorder]}
    assert await graph.ainvoke([0, 1], config) == ["0", "2"]
    (root,) = [rid for rid, (_, parent, _) in recorder.runs.items() if parent is None]
    assert recorder.runs[root][0] == "LangGraph"
    (entry,) = [rid for rid, (_, parent, _) in recorder.runs.items() if parent == root]
    assert recorder.runs[entry][0] == "graph"
    calls = [(name, inputs) for name, parent, inputs in recorder.runs.values() if parent == entry]
    assert sorted(calls, key=str) == [("mapper", {"input": 0}), ("mapper", {"input": 1})]
