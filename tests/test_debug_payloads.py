"""The `tasks` and `checkpoints` stream chunks carry what LangGraph 1.2.22's carry (its
`pregel/debug.py`: `map_debug_tasks` and `map_debug_checkpoint`, compared by running the same
graphs on both): a task's user metadata and tags, a subgraph task's namespace config, and the
interrupts pending in the checkpoint a resuming run starts from."""

from __future__ import annotations

from typing import Any

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, InMemorySaver, interrupt
from hitl_async.graph import START, StateGraph

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class S(TypedDict, total=False):
    x: int


def outer_with_asking_subgraph() -> Any:
    """START -> n (x=2) -> sub, a subgraph whose node `ask` pauses on `interrupt("q?")`."""

    def ask(state: S) -> dict[str, Any]:
        return {"x": interrupt("q?")}

    inner = StateGraph(S)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    outer = StateGraph(S)
    outer.add_node("n", lambda s: {"x": 2})
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "n")
    outer.add_edge("n", "sub")
    return outer.compile(checkpointer=InMemorySaver())


async def test_task_events_carry_user_metadata_and_tags() -> None:
    """As `map_debug_tasks`: the run's metadata without the engine's per-task keys
    (`langgraph_node`, `thread_id`, ...), and its tags without `seq:step:*`, on task starts
    only."""
    graph = outer_with_asking_subgraph()
    config = {
        "configurable": {"thread_id": "t"},
        "metadata": {"user": "ada", "langgraph_node": "x", "thread_id": "t"},
        "tags": ["mine", "seq:step:1"],
    }
    chunks = [c async for c in graph.astream({"x": 0}, config, stream_mode="tasks")]
    starts = [c for c in chunks if "input" in c]
    results = [c for c in chunks if "input" not in c]
    assert [c["name"] for c in starts] == ["n", "sub"]
    assert all(c["metadata"] == {"user": "ada", "tags": ["mine"]} for c in starts)
    assert results and all("metadata" not in c for c in results)
    plain = outer_with_asking_subgraph()
    bare = [
        c
        async for c in plain.astream(
            {"x": 0}, {"configurable": {"thread_id": "u"}}, stream_mode="tasks"
        )
    ]
    assert all("metadata" not in c for c in bare)


async def test_checkpoint_tasks_name_subgraph_namespace_and_loaded_interrupts() -> None:
    """As `map_debug_checkpoint`: a task whose node is a subgraph has `state` = the config of
    its namespace (others None); a resuming run's first checkpoint shows the interrupts the
    checkpoint was waiting on (with `response_schema`), though the run has answered them."""
    graph = outer_with_asking_subgraph()
    cfg = {"configurable": {"thread_id": "t"}}
    first = [c async for c in graph.astream({"x": 0}, cfg, stream_mode="checkpoints")]
    by_step = {c["metadata"]["step"]: c for c in first}
    (n_task,) = by_step[0]["tasks"]
    assert (n_task["name"], n_task["state"]) == ("n", None)
    (sub_task,) = by_step[1]["tasks"]
    assert sub_task["state"] == {
        "configurable": {"thread_id": "t", "checkpoint_ns": f"sub:{sub_task['id']}"}
    }
    assert sub_task["interrupts"] == ()
    resumed = [c async for c in graph.astream(Command(resume=5), cfg, stream_mode="checkpoints")]
    (loaded_task,) = resumed[0]["tasks"]
    pending = (await graph.aget_state(cfg)).tasks
    assert pending == ()  # answered and done
    assert [(i["value"], sorted(i)) for i in loaded_task["interrupts"]] == [
        ("q?", ["id", "response_schema", "value"])
    ]
    assert resumed[-1]["tasks"] == [] and resumed[-1]["values"] == {"x": 5}
