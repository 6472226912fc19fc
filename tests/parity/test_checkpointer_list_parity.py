"""Parity with LangGraph 1.2.22: reading a checkpointer directly (`list`/`alist`, `get_tuple`)
when the config names no `checkpoint_ns`. LangGraph's savers then list the checkpoints of every
namespace of the thread (the root and each subgraph call's), newest first by checkpoint id as its
SQLite and PostgreSQL savers order them, with `filter`, `before` and `limit` applied across them;
`get_tuple` without a namespace reads the root. Observed on LangGraph's SqliteSaver with the same
graph; restated here on every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph

pytestmark = pytest.mark.anyio


class Log(TypedDict):
    v: Annotated[list[str], operator.add]


def nested(saver: Any) -> Any:
    """a -> child (a two-node subgraph) -> z: one subgraph namespace per run."""
    sub = StateGraph(Log)
    sub.add_node("s1", lambda s: {"v": ["s1"]})
    sub.add_node("s2", lambda s: {"v": ["s2"]})
    sub.add_edge(START, "s1")
    sub.add_edge("s1", "s2")
    b = StateGraph(Log)
    b.add_node("a", lambda s: {"v": ["a"]})
    b.add_node("child", sub.compile())
    b.add_node("z", lambda s: {"v": ["z"]})
    b.add_edge(START, "a")
    b.add_edge("a", "child")
    b.add_edge("child", "z")
    b.add_edge("z", END)
    return b.compile(checkpointer=saver)


def where(t: Any) -> tuple[str, Any]:
    """A listed checkpoint as (its namespace's node, its step)."""
    return t.config["configurable"]["checkpoint_ns"].split(":")[0], t.metadata["step"]


# One run of `nested`, newest first, as LangGraph's SqliteSaver lists it: the subgraph's four
# checkpoints were made while the parent's step 2 ran, so they sort between its steps 2 and 1.
ONE_RUN = [("", 3), ("", 2), *[("child", s) for s in (2, 1, 0, -1)], ("", 1), ("", 0), ("", -1)]


async def ran_twice(saver: Any, thread: str) -> dict[str, Any]:
    graph = nested(saver)
    config = {"configurable": {"thread_id": thread}}
    await graph.ainvoke({"v": []}, config)
    await graph.ainvoke({"v": ["again"]}, config)
    return config


async def listed(saver: Any, config: Any, **kwargs: Any) -> list[Any]:
    return [t async for t in saver.alist(config, **kwargs)]


# checkpoint/tests/test_memory.py::TestMemorySaver::test_search ("defaults to checkpoints across
# all namespaces"), on a real graph with a subgraph
async def test_a_list_without_a_namespace_reads_every_namespace_newest_first(saver: Any) -> None:
    config = await ran_twice(saver, uuid.uuid4().hex)
    everything = await listed(saver, config)
    second = [(ns, step + 5 if ns == "" else step) for ns, step in ONE_RUN]
    assert [where(t) for t in everything] == second + ONE_RUN
    ids = [t.config["configurable"]["checkpoint_id"] for t in everything]
    assert ids == sorted(ids, reverse=True)
    assert len({t.config["configurable"]["checkpoint_ns"] for t in everything}) == 3
    root = await listed(saver, {"configurable": {**config["configurable"], "checkpoint_ns": ""}})
    assert [where(t) for t in root] == [("", s) for s in range(8, -2, -1)]
    assert [where(t) for t in saver.list(config)] == [where(t) for t in everything]  # sync form


# LangGraph's SqliteSaver.list / PostgresSaver.list: `filter`, `before` and `limit` as SQL
# predicates over every namespace of the thread
async def test_filter_before_and_limit_apply_across_namespaces(saver: Any) -> None:
    config = await ran_twice(saver, uuid.uuid4().hex)
    everything = await listed(saver, config)
    assert [where(t) for t in await listed(saver, config, limit=3)] == [
        ("", 8),
        ("", 7),
        ("child", 2),
    ]
    assert [where(t) for t in await listed(saver, config, filter={"step": 1})] == [
        ("child", 1),
        ("child", 1),
        ("", 1),
    ]
    inputs = await listed(saver, config, filter={"source": "input"})
    assert [where(t) for t in inputs] == [("child", -1), ("", 4), ("child", -1), ("", -1)]
    pivot = everything[4]  # the second run's subgraph, step 0
    older = await listed(saver, config, before=pivot.config)
    assert [t.config for t in older] == [t.config for t in everything[5:]]
    bare = {"configurable": {"checkpoint_id": pivot.config["configurable"]["checkpoint_id"]}}
    assert [t.config for t in await listed(saver, config, before=bare)] == [t.config for t in older]
    assert [t.config for t in await listed(saver, config, before=pivot.config, limit=2)] == [
        t.config for t in everything[5:7]
    ]
    picked = await listed(saver, config, before=pivot.config, filter={"source": "input"}, limit=1)
    assert [where(t) for t in picked] == [("child", -1)]
    assert await listed(saver, config, limit=0) == []


async def test_a_named_checkpoint_is_found_in_any_namespace_but_get_tuple_reads_the_root(
    saver: Any,
) -> None:
    """LangGraph: `list` with a `checkpoint_id` and no namespace finds it wherever it is (and
    still applies `filter` and `before`); `get_tuple` without a namespace reads the root
    namespace only, so a subgraph's checkpoint id finds nothing there."""
    config = await ran_twice(saver, uuid.uuid4().hex)
    sub = next(t for t in await listed(saver, config) if t.config["configurable"]["checkpoint_ns"])
    by_id = {"configurable": {**config["configurable"], **sub.config["configurable"]}}
    del by_id["configurable"]["checkpoint_ns"]
    assert [t.config for t in await listed(saver, by_id)] == [sub.config]
    assert await listed(saver, by_id, filter={"source": "input"}) == []
    assert await listed(saver, by_id, before=sub.config) == []
    assert await saver.aget_tuple(by_id) is None
    assert (await saver.aget_tuple(sub.config)).config == sub.config  # type: ignore[union-attr]
    head = await saver.aget_tuple(config)
    assert head is not None and where(head) == ("", 8)


# checkpoint/tests/test_memory.py::TestMemorySaver::test_search (`list(None, filter=...)`)
async def test_a_list_without_a_config_reads_every_thread(saver: Any) -> None:
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    await ran_twice(saver, first)
    await nested(saver).ainvoke({"v": []}, {"configurable": {"thread_id": second}})
    finals = await listed(saver, None, filter={"step": 8})
    assert [t.config["configurable"]["thread_id"] for t in finals] == [first]
    assert len(await listed(saver, None)) == 18 + 9
    newest = await listed(saver, None, limit=1)
    assert [(t.config["configurable"]["thread_id"], where(t)) for t in newest] == [
        (second, ("", 3))
    ]
